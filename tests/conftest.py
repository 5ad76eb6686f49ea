from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

# Keras 3 on the torch backend (TensorFlow is not installed); Hugging Face and W&B offline. Set
# before any test imports them, and inherited by the subprocesses tests start.
os.environ.setdefault("KERAS_BACKEND", "torch")
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(autouse=True)
def _clean_carbonmonitor_env(monkeypatch: pytest.MonkeyPatch,
                             tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests start with no CARBONMONITOR_* variables from the developer's shell, and the default
    run store (in the user data directory) is a fresh one in a temporary directory. Cloud
    detection is off: on a cloud CI runner it would ask the real metadata endpoint; the tests
    that exercise it turn it on with a fake DMI tree and a loopback endpoint."""
    for key in list(os.environ):
        if key.startswith("CARBONMONITOR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CARBONMONITOR_CLOUD_DETECT", "false")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield


_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _loopback_only(address: object) -> None:
    host = address[0] if isinstance(address, tuple) else None
    if isinstance(host, str) and host not in _LOOPBACK:
        raise OSError(f"tests may only reach 127.0.0.1, not {host!r} (tests/conftest.py)")


@pytest.fixture(autouse=True)
def _network_is_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sends traffic anywhere but 127.0.0.1: not to a cloud metadata endpoint (a CI
    runner on a cloud VM has one), not to a live API. A test that tries fails loudly."""
    def connect(self: socket.socket, address: object) -> None:
        _loopback_only(address)
        _connect(self, address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        _loopback_only(address)
        return _connect_ex(self, address)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if isinstance(host, str) and host not in _LOOPBACK:
            raise OSError(f"tests may only resolve localhost, not {host!r} (tests/conftest.py)")
        return _getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
