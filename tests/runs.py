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
