"""What every callback shares (``_common.Monitor``): options checked when a callback is built,
a run ended at exit when training never reached its end, and copies for other processes."""

from __future__ import annotations

import gc
import logging
import pickle
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import pytest
from integration_support import RecordingSink

from carbonmonitor.errors import ConfigError
from carbonmonitor.integrations._common import Monitor
from carbonmonitor.store import load


def monitor(options: dict[str, Any], **more: Any) -> Monitor:
    return Monitor(tracker=None, sinks=more.pop("sinks", None), phase_prefix=None,
                   options={**options, **more}, framework="test")


def test_options_are_checked_when_the_callback_is_built(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="Atlantis"):
        monitor(options, country="Atlantis")
    with pytest.raises(ConfigError, match="max_energy_kwh"):
        monitor(options, max_energy_kwh=-1)
    with pytest.raises(ConfigError, match="not_an_option"):
        monitor(options, not_an_option=1)
    assert monitor(options).tracker is None  # built when training starts


# A training that raises where its framework has no end hook (Keras, transformers).
CRASH = """
import sys
from carbonmonitor.integrations._common import Monitor

class FileSink:
    def log(self, scalars, step): pass
    def finish(self, result): open(sys.argv[2], "w").write(result.status)

monitor = Monitor(tracker=None, sinks=[FileSink()], phase_prefix=None, framework="test",
                  options=dict(backend="fake", sampling="manual", quiet=True, country="FR",
                               db=sys.argv[1]))
monitor.begin_run()
monitor.open("train")
raise RuntimeError("the training failed")
"""


def test_a_run_left_running_ends_interrupted_at_exit_and_sinks_finish(tmp_path: Path) -> None:
    db, finished = tmp_path / "runs.db", tmp_path / "finished.txt"
    proc = subprocess.run([sys.executable, "-c", CRASH, str(db), str(finished)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "the training failed" in proc.stderr
    assert "still running at exit" in proc.stderr
    assert finished.read_text() == "interrupted"
    stored = load("last", db=db)
    assert stored.status == "interrupted" and stored.phase("train").count == 1


def test_the_exit_hook_is_removed_when_the_run_ends(options: dict[str, Any]) -> None:
    """The exit hook holds the monitor: once removed, nothing else does."""
    ended, running = monitor(options), monitor(options)
    for m in (ended, running):
        m.begin_run()
    assert ended.end_run() is not None
    refs = [weakref.ref(ended), weakref.ref(running)]
    del ended, running
    gc.collect()
    assert [ref() is None for ref in refs] == [True, False]
    left = refs[1]()
    assert left is not None and left.end_run() is not None  # the test's own clean-up


class Unpicklable(RecordingSink):
    def __reduce__(self) -> Any:
        raise TypeError("not this one")


def test_a_copy_for_another_process_keeps_what_can_cross(
        options: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    # the test's ManualClock holds a lock: those options cannot cross, so the copy cannot
    # measure, and says so when its training starts
    kept, lost = RecordingSink(), Unpicklable()
    with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
        copy = pickle.loads(pickle.dumps(monitor(options, sinks=[kept, lost])))
        copy.begin_run()
    assert copy.tracker is None and not copy.active
    assert [type(s) for s in copy.sinks] == [RecordingSink]
    messages = [r.getMessage() for r in caplog.records]
    assert any("could not be pickled; the copy sends nothing" in m for m in messages)
    assert any("options could not be pickled" in m for m in messages)
