from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


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
