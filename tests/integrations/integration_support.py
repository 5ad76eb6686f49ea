"""What the integration tests share (the fixtures are in conftest.py): the fake backend's power
and sinks that record or fail."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from carbonmonitor import FakeBackend, ManualClock, Tracker
from carbonmonitor.integrations._common import scalars
from carbonmonitor.records import RunResult

POWER_W = 100.0


class RecordingSink:
    """A sink that keeps every call."""

    def __init__(self) -> None:
        self.logged: list[tuple[dict[str, float], int]] = []
        self.finished: list[RunResult] = []

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self.logged.append((dict(scalars), step))

    def finish(self, result: RunResult) -> None:
        self.finished.append(result)


class BrokenSink:
    """A sink that fails at every call: training must not notice."""

    def __init__(self) -> None:
        self.calls = 0

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self.calls += 1
        raise RuntimeError("sink is down")

    def finish(self, result: RunResult) -> None:
        self.calls += 1
        raise RuntimeError("sink is down")


# The sink tests' run: power changing over time, a GPU domain (its key has a colon).
SINK_PROFILE = {"cpu": [(0.0, 40.0), (13.0, 90.0), (27.0, 60.0)],
                "gpu:0": [(0.0, 20.0), (5.0, 250.0)], "memory": 5.0}


def train_into(tmp_path: Path, sink: Any,
               **options: Any) -> tuple[RunResult, list[dict[str, float]]]:
    """Three epochs of train + validation phases with work and a metric; the sink gets live
    scalars at steps 0, 1, 2 (what the callbacks send) and the result at the end."""
    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend(SINK_PROFILE)], clock=clock, sampling="manual",
                      quiet=True, db=str(tmp_path / "runs.db"), country="DE", **options)
    tracker.start()
    sent = []
    for epoch in range(3):
        with tracker.phase("train"):
            clock.advance(10)
            tracker.tick()
            tracker.add_work(samples=64, tokens=3000, steps=4)
        with tracker.phase("validation"):
            clock.advance(3 + epoch)
            tracker.tick()
        tracker.log_metric("val_accuracy", 0.5 + 0.1 * epoch, epoch=epoch + 1)
        tracker.progress(epoch + 1, total=3)
        sent.append(scalars(tracker))
        sink.log(sent[-1], step=epoch)
    clock.advance(2)
    result = tracker.stop()
    sink.finish(result)
    return result, sent
