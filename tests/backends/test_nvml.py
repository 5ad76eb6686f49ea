"""The NVIDIA backend's behaviour where NVML cannot be used (no nvidia-ml-py here)."""

from __future__ import annotations

import sys

import pytest

from carbonmonitor import Tracker
from carbonmonitor.errors import ConfigError


def test_without_nvidia_ml_py_auto_skips_it_with_the_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    tracker = Tracker(quiet=True, sampling="manual", db="off")
    status = {b.name: b for b in tracker.backends}["nvml"]
    assert not status.used
    assert "nvidia-ml-py" in status.reason and 'carbonmonitor[nvidia]' in status.fix
    with pytest.raises(ConfigError, match=r"backend .nvml. is unavailable"):
        Tracker(backend="nvml", quiet=True, db="off")
