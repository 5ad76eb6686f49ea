"""Driving a tracker under a ManualClock, shared by the backend and attribution tests."""

from __future__ import annotations

from carbonmonitor import ManualClock, Tracker
from carbonmonitor.records import EnergyFigure, RunResult


def run_for(tracker: Tracker, clock: ManualClock, seconds: float, tick_s: float = 1.0
            ) -> RunResult:
    """Start, tick every ``tick_s`` for ``seconds`` (a remainder shorter than a tick passes
    before the stop), stop."""
    tracker.start()
    elapsed = 0.0
    while elapsed + tick_s <= seconds + 1e-9:
        clock.advance(tick_s)
        elapsed += tick_s
        tracker.tick()
    if seconds > elapsed:
        clock.advance(seconds - elapsed)
    return tracker.stop()


def by_domain(result: RunResult) -> dict[str, EnergyFigure]:
    return {f.domain: f for f in result.energy}


def poland_train_eval_run(db: str) -> RunResult:
    """150 W for 80 s of 'train' then 50 W for 20 s of 'eval', stored in ``db``, in Poland: the
    cleaner-place and dominant-phase (a power-hungry phase) advice rules both speak for it."""
    from carbonmonitor import FakeBackend

    clock = ManualClock(start_wall=1_764_000_000.0)
    t = Tracker(backend=[FakeBackend({"cpu": [(0.0, 150.0), (80.0, 50.0)]})], clock=clock,
                sampling="manual",
                quiet=True, db=db, country="PL")
    t.start()
    with t.phase("train"):
        clock.advance(80)
        t.tick()
    with t.phase("eval"):
        clock.advance(20)
        t.tick()
    return t.stop()
