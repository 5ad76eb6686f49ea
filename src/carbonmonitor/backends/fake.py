"""``fake``: a scriptable backend for tests (ours and yours), driven by the tracker's clock.

A profile gives, per domain, breakpoints ``(t_s, power_w)`` measured from the first read. With
``interpolation="step"`` power holds until the next breakpoint; with ``"linear"`` it ramps. The
energy is integrated in closed form, so a run under a :class:`~carbonmonitor.clock.ManualClock`
yields exactly the profile's energy.

Example:
    >>> from carbonmonitor.backends.fake import FakeBackend
    >>> fake = FakeBackend({"cpu": [(0, 100.0), (10, 50.0)], "gpu:0": 300.0})
    >>> fake.energy_between("cpu", 0, 20)
    1500.0
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from carbonmonitor.backends.base import Cumulative, Domain, ProbeContext
from carbonmonitor.errors import BackendUnavailable, ConfigError
from carbonmonitor.facts import Method
from carbonmonitor.uncertainty import RULE_BY_METHOD, relative

Profile = Mapping[str, "float | Sequence[tuple[float, float]]"]
# Used by ``backend="fake"`` with no trace: a plausible small workstation.
DEFAULT_PROFILE: dict[str, float] = {"cpu": 40.0, "memory": 5.0}


class _Curve:
    """Piecewise power curve with its cumulative integral at each breakpoint."""

    def __init__(self, points: Sequence[tuple[float, float]], linear: bool) -> None:
        pts = sorted((float(t), float(w)) for t, w in points)
        if not pts:
            raise ConfigError("a fake profile needs at least one (t_s, power_w) point")
        if not all(math.isfinite(t) and math.isfinite(w) for t, w in pts):
            raise ConfigError(f"fake profile points must be finite numbers; got {pts}")
        if pts[0][0] > 0:
            pts.insert(0, (0.0, pts[0][1]))
        if any(w < 0 for _, w in pts):
            raise ConfigError("fake profile power must be >= 0 W")
        self.times = [t for t, _ in pts]
        self.watts = [w for _, w in pts]
        self.linear = linear
        self.cumulative = [0.0]
        for i in range(1, len(pts)):
            self.cumulative.append(self.cumulative[-1] + self._segment(i - 1, self.times[i]))

    def _segment(self, i: int, t: float) -> float:
        """Energy from breakpoint i to time t (t within segment i)."""
        dt = t - self.times[i]
        if not self.linear or i + 1 >= len(self.times):
            return self.watts[i] * dt
        span = self.times[i + 1] - self.times[i]
        w_t = self.watts[i] + (self.watts[i + 1] - self.watts[i]) * dt / span if span else 0.0
        return (self.watts[i] + w_t) / 2 * dt

    def energy_to(self, t: float) -> float:
        if t <= 0:
            return 0.0
        i = bisect.bisect_right(self.times, t) - 1
        return self.cumulative[i] + self._segment(i, t)


class FakeBackend:
    """A backend whose power follows a script. Also usable as a factory (``probe`` returns self).

    Args:
        profile: domain key -> constant watts or ``[(t_s, power_w), ...]``; the device kind is
            the part of the key before ``":"``.
        interpolation: ``"step"`` or ``"linear"`` between breakpoints.
        method: the method the fake claims (default ``"counter"``).
        fail_at_s: from this many seconds after the first read, ``read`` raises OSError (to test
            how a run copes with a backend that dies).
        name: backend name shown in results.

    Example:
        >>> from carbonmonitor import FakeBackend, ManualClock, Tracker
        >>> clock = ManualClock()
        >>> tracker = Tracker(backend=[FakeBackend({"gpu:0": 300.0})], clock=clock,
        ...                   sampling="manual", quiet=True).start()
        >>> clock.advance(60)
        >>> tracker.stop().energy_j
        18000.0
    """

    devices: tuple[str, ...] = ("cpu", "memory", "gpu")

    def __init__(
        self,
        profile: Profile | None = None,
        *,
        interpolation: Literal["step", "linear"] = "step",
        method: Method = "counter",
        fail_at_s: float | None = None,
        name: str = "fake",
    ) -> None:
        if interpolation not in ("step", "linear"):
            raise ConfigError(f"interpolation must be 'step' or 'linear'; got {interpolation!r}")
        if method not in RULE_BY_METHOD:
            raise ConfigError(
                f"fake method must be one of {sorted(RULE_BY_METHOD)}; got {method!r}")
        profile = DEFAULT_PROFILE if profile is None else profile
        if not profile:
            raise ConfigError("a fake profile needs at least one domain, e.g. {'cpu': 50.0}")
        self.name = name
        self.poll_period_s: float | None = None
        self.method: Method = method
        self.fail_at_s = fail_at_s
        self._curves = {
            key: _Curve([(0.0, spec)] if isinstance(spec, (int, float)) else spec,
                        interpolation == "linear")
            for key, spec in profile.items()
        }
        self._t0: float | None = None

    @classmethod
    def from_csv(cls, path: str | Path, **kwargs: object) -> FakeBackend:
        """A replayed trace: CSV with columns ``t_s,domain,power_w`` (one row per point)."""
        points: dict[str, list[tuple[float, float]]] = {}
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    points.setdefault(row["domain"], []).append(
                        (float(row["t_s"]), float(row["power_w"])))
        except (OSError, KeyError, ValueError, TypeError) as err:
            raise ConfigError(
                f"cannot read fake trace {str(path)!r} ({err}); it needs a CSV header "
                "t_s,domain,power_w and numeric rows") from err
        return cls(points, **kwargs)  # type: ignore[arg-type]

    def probe(self, context: ProbeContext) -> FakeBackend:
        return self

    def domains(self) -> tuple[Domain, ...]:
        return tuple(
            Domain(key, key.split(":")[0], self.method, RULE_BY_METHOD[self.method],
                   "scripted profile")
            for key in self._curves)

    def energy_between(self, key: str, t0_s: float, t1_s: float) -> float:
        """The profile's exact energy for ``key`` between two times after the first read."""
        curve = self._curves[key]
        return curve.energy_to(t1_s) - curve.energy_to(t0_s)

    def read(self, now_s: float) -> dict[str, Cumulative]:
        if self._t0 is None:
            self._t0 = now_s
        t = now_s - self._t0
        if self.fail_at_s is not None and t >= self.fail_at_s:
            raise OSError(f"fake backend {self.name!r} scripted to fail at {self.fail_at_s} s")
        return {key: relative(c.energy_to(t), RULE_BY_METHOD[self.method])
                for key, c in self._curves.items()}

    def close(self) -> None:
        pass


class FakeFactory:
    """``backend="fake"``: the default profile, or ``fake_trace=PATH``."""

    name = "fake"
    devices: tuple[str, ...] = FakeBackend.devices

    def probe(self, context: ProbeContext) -> FakeBackend:
        trace = context.options.fake_trace
        if trace is not None:
            try:
                return FakeBackend.from_csv(trace)
            except ConfigError as err:
                raise BackendUnavailable(str(err), "fix the trace file") from err
        return FakeBackend()

