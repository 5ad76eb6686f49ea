from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_carbonmonitor_env(monkeypatch: pytest.MonkeyPatch,
                             tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests start with no CARBONMONITOR_* variables from the developer's shell, and the default
    run store (in the user data directory) is a fresh one in a temporary directory."""
    for key in list(os.environ):
        if key.startswith("CARBONMONITOR_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    yield
