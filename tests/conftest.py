from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_carbonmonitor_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests start with no CARBONMONITOR_* variables from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("CARBONMONITOR_"):
            monkeypatch.delenv(key)
    yield
