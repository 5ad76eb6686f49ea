"""Fixtures for the end-to-end tests of ``carbonmonitor run`` (helpers: cli_helpers.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_helpers import PtyRun, start_in_pty


@pytest.fixture
def pty_cli() -> Iterator[Callable[..., PtyRun]]:
    """``start_in_pty``, with every process group it started killed and its pty closed after."""
    started: list[PtyRun] = []

    def start(*args: Any, **kwargs: Any) -> PtyRun:
        run = start_in_pty(*args, **kwargs)
        started.append(run)
        return run

    yield start
    for run in started:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
        if run.master >= 0:  # not already closed by hang_up()
            os.close(run.master)
