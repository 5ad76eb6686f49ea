"""The uncertainty model: what each energy figure's ``[low, high]`` interval covers.

The representation (:class:`~carbonmonitor.records.Uncertainty`: low, high, rule) is fixed; a
rule's name says which sensor description produced the interval (``nvml-counter-v2``), so old
results stay interpretable when a description is refined. Full text: docs/uncertainty.md.

A measured domain is described by a :class:`Sensor`; its backend feeds a :class:`Bounds` one
read interval at a time, and each interval adds:

- **calibration**: ``relative`` x energy plus ``absolute_w`` x duration, each side (the vendor's
  or the literature's accuracy figure for the sensor);
- **sampling between reads** (``sampled`` sensors, power readings integrated with the trapezoid
  rule): half the change in power between the interval's two readings, x its duration, each side;
- **sampling duty** (``duty`` < 1: the sensor sees only that share of the time, as A100/H100 do,
  Yang et al. SC'24): in an interval where the load is bursty, the unseen ``1 - duty`` of the
  time may have drawn anything between ``floor_w`` and ``ceiling_w`` instead of the seen power.

Per window (run or phase) the meter adds, at each of its two edges, what a read can miss: the
counter's resolution plus one update period at the highest power seen (:meth:`Bounds.edge_j`).

Everything is added linearly, within an interval, across intervals and across domains: these
errors are systematic (one sensor's calibration, a load locked to the sampling period), so they
do not cancel the way independent noise would, and a quadrature sum would understate them.

Two backends keep fixed relative bands: ``user-constant-v1`` (watts the user gave) and the
``fake`` backend's ``counter-v1``/``power-integration-v1`` (a simulation, not a sensor).
Model bounds (``model-*``) come from the estimate backend's decision table.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbonmonitor.backends.base import Cumulative

# Fixed relative bands: the constant backend (watts given by the user: a constant hides load
# changes) and the fake backend, whose scripted methods have no sensor behind them.
RULE_BY_METHOD: dict[str, str] = {
    "counter": "counter-v1",
    "power-integration": "power-integration-v1",
    "user-constant": "user-constant-v1",
}

RELATIVE_BOUNDS: dict[str, tuple[float, float]] = {
    "counter-v1": (0.95, 1.05),
    "power-integration-v1": (0.90, 1.10),
    "user-constant-v1": (0.80, 1.20),
}

# A utilisation (%) strictly between these means the device alternated between busy and idle
# within the reading's window: the load is bursty, and a partial-duty sensor may alias it.
STEADY_LOW_PCT = 5.0
STEADY_HIGH_PCT = 95.0


def relative(energy_j: float, rule: str) -> Cumulative:
    """Energy with the bounds of a fixed relative rule."""
    low, high = RELATIVE_BOUNDS[rule]
    return Cumulative(energy_j, energy_j * low, energy_j * high)


def bursty(utilisation_pct: float | None) -> bool:
    """Whether a load could be aliased by partial sampling: unknown counts as bursty."""
    return utilisation_pct is None or STEADY_LOW_PCT < utilisation_pct < STEADY_HIGH_PCT


@dataclass(frozen=True)
class Sensor:
    """What is known about one kind of energy sensor (docs/uncertainty.md has the sources).

    Attributes:
        rule: the name results carry, ``<backend>-<method>-v2``.
        relative: calibration, +- this fraction of the energy.
        absolute_w: calibration, +- these watts over the duration.
        resolution_j: the counter's quantum: one may be missed at each window edge.
        update_s: how often the reading changes: a read can be one period old at each edge
            (a backend that measures the period passes it to :class:`Bounds`).
        duty: the share of the time the sensor sees (1: all of it).
        sampled: energy is integrated from power readings, not read from a counter.
    """

    rule: str
    relative: float = 0.0
    absolute_w: float = 0.0
    resolution_j: float = 0.0
    update_s: float = 0.0
    duty: float = 1.0
    sampled: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.duty <= 1:
            raise ValueError(f"duty must be in (0, 1]; got {self.duty}")


class Bounds:
    """One domain's cumulative energy and its bounds, fed one read interval at a time."""

    __slots__ = ("energy_j", "high_j", "low_j", "max_w", "sensor", "update_s")

    def __init__(self, sensor: Sensor, update_s: float | None = None) -> None:
        self.sensor = sensor
        self.update_s = sensor.update_s if update_s is None else update_s
        self.energy_j = 0.0
        self.low_j = 0.0
        self.high_j = 0.0
        self.max_w = 0.0

    def add(self, energy_j: float, dt_s: float, *, step_w: float = 0.0,
            utilisation_pct: float | None = None, floor_w: float = 0.0,
            ceiling_w: float | None = None) -> None:
        """Add one read interval: ``energy_j`` over ``dt_s`` seconds.

        ``step_w`` is the change in power between the interval's two readings (sampled
        sensors); ``utilisation_pct`` decides whether the load was bursty (None: unknown,
        treated as bursty); ``floor_w``/``ceiling_w`` are the lowest and highest power the
        device can plausibly draw (its idle draw, its power limit) for the duty term.
        """
        s = self.sensor
        margin = s.relative * energy_j + s.absolute_w * dt_s
        low, high = energy_j - margin, energy_j + margin
        if s.sampled:
            low -= abs(step_w) * dt_s / 2.0
            high += abs(step_w) * dt_s / 2.0
        if dt_s > 0:
            seen_w = energy_j / dt_s
            self.max_w = max(self.max_w, seen_w)
            if s.duty < 1.0 and bursty(utilisation_pct):
                unseen = (1.0 - s.duty) * dt_s
                low -= unseen * max(seen_w - floor_w, 0.0)
                high += unseen * max((seen_w if ceiling_w is None else ceiling_w) - seen_w, 0.0)
        self.energy_j += energy_j
        self.low_j += max(low, 0.0)
        self.high_j += high

    def cumulative(self) -> Cumulative:
        return Cumulative(self.energy_j, min(self.low_j, self.energy_j),
                          max(self.high_j, self.energy_j))

    def edge_j(self) -> float:
        """What one window edge can miss: a quantum plus one update at the highest power."""
        return self.sensor.resolution_j + self.update_s * self.max_w
