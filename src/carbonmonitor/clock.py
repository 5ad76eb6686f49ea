"""Clocks: the real one, and a manual one for exact tests.

The tracker reads time only through a :class:`Clock`, so tests advance time by hand and get the
same numbers on a loaded machine as on an idle one.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never goes backwards."""

    def wall(self) -> float:
        """Seconds since the Unix epoch (for timestamps only, never for durations)."""


class SystemClock:
    """The machine's clocks: ``time.monotonic`` and ``time.time``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to. Thread-safe.

    Example:
        >>> clock = ManualClock(start_wall=1_700_000_000.0)
        >>> clock.advance(2.5)
        >>> clock.monotonic()
        2.5
    """

    def __init__(self, start: float = 0.0, start_wall: float = 1_750_000_000.0) -> None:
        self._now = start
        self._wall_offset = start_wall - start
        self._lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a ManualClock cannot go backwards")
        with self._lock:
            self._now += seconds

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def wall(self) -> float:
        with self._lock:
            return self._now + self._wall_offset

    def sleep(self, seconds: float) -> None:
        """What a wait means under a manual clock: the time passes at once."""
        self.advance(seconds)
