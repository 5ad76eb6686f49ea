"""Shared by the integration tests: the environment the frameworks need (set before any of them is
imported), a manual clock the test advances from the framework's own hooks, tracker options with
a fake backend of known power, and a sink that records what it is given.

Energy is exact: the fake backend draws ``POWER_W`` and time moves only when a test advances the
clock, so a phase's energy is its advanced seconds times ``POWER_W``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Keras reads its backend once, at import; the Hugging Face libraries must never download.
os.environ["KERAS_BACKEND"] = "torch"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from integration_support import POWER_W  # noqa: E402

from carbonmonitor import FakeBackend, ManualClock  # noqa: E402


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def options(tmp_path: Path, clock: ManualClock) -> dict[str, Any]:
    """Tracker options: fake backend at POWER_W, the test's clock, readings only at phase edges,
    progress marks and ticks, a run store in tmp_path."""
    return dict(backend=[FakeBackend({"cpu": POWER_W})], clock=clock, sampling="manual",
                quiet=True, db=str(tmp_path / "runs.db"), country="FR")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; on a shared 2-core runner two threads contend with
    other processes (a 16-wide BERT step went from 0.07 s to 0.5 s)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
