"""Frozen records that cross module boundaries: what a run measured and how it was accounted.

Units live in names (``energy_j``, ``power_w``, ``intensity_g_per_kwh``). Every energy figure
carries its method and an :class:`Uncertainty`; every factor carries its source, year and basis.
``to_dict()`` gives plain JSON-ready data; ``RunResult.from_dict`` reads it back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from carbonmonitor.facts import (
    JOULES_PER_KWH,
    BackendStatus,
    Basis,
    Flag,
    Intensity,
    Location,
    Method,
    Pue,
    pue_text,
)

__all__ = ["JOULES_PER_KWH", "Attribution", "BackendStatus", "Basis", "EmbodiedEmissions",
           "Emissions", "EnergyFigure", "Flag", "GitInfo", "Hardware", "HourBin", "Intensity",
           "Location", "Method", "PhaseResult", "Pue", "RunIdentity", "RunResult", "Uncertainty",
           "pue_text", "sum_uncertainty"]


@dataclass(frozen=True)
class Uncertainty:
    """An interval [low, high] in the unit of the figure it belongs to, and the rule that made it.

    ``rule`` names a documented rule (docs/uncertainty.md), e.g. ``"model-tdp-v1"``.
    Bounds of a sum are the sums of the bounds (worst case, no cancellation assumed).
    """

    low: float
    high: float
    rule: str

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"uncertainty low {self.low} > high {self.high}")

    def scaled(self, factor: float) -> Uncertainty:
        """The same interval multiplied by a non-negative factor (a unit change, PUE, intensity)."""
        return Uncertainty(self.low * factor, self.high * factor, self.rule)

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the closed interval."""
        return self.low <= value <= self.high


@dataclass(frozen=True)
class EnergyFigure:
    """Energy of one device/domain over a window, with how it was obtained.

    ``energy_j`` (``scope: "machine"``) is what the hardware drew. ``attributed_j`` is this
    job's share of it under the run's attribution policy (None when not attributed), and
    ``idle_j`` the part an idle baseline accounts for (None without a baseline); see
    docs/attribution.md.
    """

    domain: str
    device: str
    backend: str
    method: Method
    energy_j: float
    duration_s: float
    uncertainty: Uncertainty
    scope: str = "machine"
    detail: str = ""
    attributed_j: float | None = None
    idle_j: float | None = None

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / JOULES_PER_KWH

    @property
    def share(self) -> float | None:
        """The job's share of this energy (attributed / device), None when not attributed."""
        if self.attributed_j is None:
            return None
        return self.attributed_j / self.energy_j if self.energy_j > 0 else 1.0

    @property
    def dynamic_j(self) -> float | None:
        """Energy above the idle baseline, None without a baseline."""
        return None if self.idle_j is None else max(self.energy_j - self.idle_j, 0.0)

    @property
    def mean_power_w(self) -> float:
        """Time-weighted mean power: energy over the window's duration."""
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0


WORK_UNITS = ("samples", "tokens", "steps", "requests", "generated_tokens")
# per-unit figures: (unit name in output, the Work field, how many of it make one unit)
_PER_UNIT = (("sample", "samples", 1), ("1k tokens", "tokens", 1000), ("step", "steps", 1),
             ("request", "requests", 1), ("generated token", "generated_tokens", 1))


@dataclass(frozen=True)
class Work:
    """Units of work done in a run or phase (``Tracker.add_work``, or counted by callbacks).

    ``notes`` says how a count was made, e.g. that tokens are non-padding tokens.
    """

    samples: int = 0
    tokens: int = 0
    steps: int = 0
    requests: int = 0
    generated_tokens: int = 0
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return any(getattr(self, unit) for unit in WORK_UNITS)


@dataclass(frozen=True)
class UnitCost:
    """Energy and CO2e per unit of work: ``per`` is "sample", "1k tokens", "step", "request" or
    "generated token"; ``count`` how many units the figure divides by."""

    per: str
    count: float
    energy_j: float
    co2e_g: float


def unit_costs(work: Work | None, energy_j: float, co2e_g: float) -> tuple[UnitCost, ...]:
    """Energy and CO2e per unit for every unit ``work`` counted (none counted: empty).

    Example:
        >>> unit_costs(Work(samples=100, tokens=5000), 1000.0, 2.0)[1]
        UnitCost(per='1k tokens', count=5.0, energy_j=200.0, co2e_g=0.4)
    """
    if work is None:
        return ()
    out = []
    for per, field_name, size in _PER_UNIT:
        n = getattr(work, field_name)
        if n > 0:
            count = n / size
            out.append(UnitCost(per, count, energy_j / count, co2e_g / count))
    return tuple(out)


@dataclass(frozen=True)
class MetricPoint:
    """One value of a metric: when (seconds since the run started), at which step and epoch."""

    t_s: float
    value: float
    step: int | None = None
    epoch: float | None = None


@dataclass(frozen=True)
class MetricSeries:
    """A metric's history. ``direction``: "higher" or "lower" is better (None: not known)."""

    name: str
    direction: Literal["higher", "lower"] | None
    points: tuple[MetricPoint, ...]

    @property
    def last(self) -> float | None:
        return self.points[-1].value if self.points else None

    @property
    def best(self) -> float | None:
        """The best value by ``direction`` (the last one when the direction is not known)."""
        if not self.points:
            return None
        values = [p.value for p in self.points]
        if self.direction == "higher":
            return max(values)
        if self.direction == "lower":
            return min(values)
        return values[-1]


@dataclass(frozen=True)
class Forecast:
    """The run's predicted total, made after ``after`` of ``total`` units (``unit``: epoch or
    step), with intervals; and, once the run ended, how it compared with the outcome
    (``outcome``: None while running or when the run did not complete its units)."""

    after: float
    total: float
    unit: str
    rule: str
    made_at_s: float
    duration_s: float
    duration_low_s: float
    duration_high_s: float
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    co2e_g: float
    co2e_low_g: float
    co2e_high_g: float
    outcome: ForecastOutcome | None = None
    label: str = ""  # the training it forecasts ("pre-training"), "" for the run's only one


@dataclass(frozen=True)
class ForecastOutcome:
    """How a forecast compared with the run's real totals (relative errors: (forecast - actual)
    / actual; ``contained``: each actual figure lay inside the forecast's interval)."""

    units_done: float
    duration_error: float | None  # None: the actual figure was 0
    energy_error: float | None
    co2e_error: float | None
    duration_contained: bool
    energy_contained: bool
    co2e_contained: bool


@dataclass(frozen=True)
class BudgetEvent:
    """A carbon budget crossed: which limit, on the actual or the predicted figure, what was done
    ("warn" or "stop"), when, and the message shown."""

    limit: Literal["max_emissions_g", "max_energy_kwh"]
    on: Literal["actual", "predicted"]
    action: Literal["warn", "stop"]
    value: float
    threshold: float
    units_done: float | None
    at_s: float
    message: str


@dataclass(frozen=True)
class PhaseResult:
    """All entries of one phase path (``"train"``, ``"train/step"``), aggregated."""

    name: str
    count: int
    duration_s: float
    energy: tuple[EnergyFigure, ...]
    work: Work | None = None

    @property
    def energy_j(self) -> float:
        return sum(f.energy_j for f in self.energy)

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / JOULES_PER_KWH

    @property
    def uncertainty(self) -> Uncertainty:
        return sum_uncertainty(self.energy)


@dataclass(frozen=True)
class HourBin:
    """One time bin of time-resolved accounting: the energy drawn in it and its factor."""

    start: str  # ISO 8601, UTC
    end: str
    energy_j: float
    g_per_kwh: float
    co2e_g: float
    source: str  # the provider, or "fallback: <static factor's source>"


@dataclass(frozen=True)
class FactorSpread:
    """How far the hourly factor may lie from the yearly one used (docs/uncertainty.md, CO2e):
    the bounds in g/kWh, the rule, and what they were computed from."""

    low_g_per_kwh: float
    high_g_per_kwh: float
    rule: str
    basis: str


@dataclass(frozen=True)
class Emissions:
    """CO2e of a run: energy x PUE x intensity, and its interval (location-based).

    With ``market_factor`` given, ``market_co2e_g`` is the same energy x PUE x that contractual
    factor (market-based), side by side. With a live provider, ``hourly`` holds the bins the
    location-based figure was summed from (``time_resolved`` names the provider).
    """

    co2e_g: float
    uncertainty: Uncertainty
    energy_kwh: float
    pue: float
    intensity_g_per_kwh: float
    basis: Basis
    market_co2e_g: float | None = None
    market_factor_g_per_kwh: float | None = None
    time_resolved: str = ""
    hourly: tuple[HourBin, ...] = ()
    factor_spread: FactorSpread | None = None

    @property
    def co2e_kg(self) -> float:
        return self.co2e_g / 1000.0


@dataclass(frozen=True)
class EmbodiedEmissions:
    """The run's amortised share of its hardware's manufacturing footprint (reported apart from
    operational emissions): ``sum(kg CO2e x run duration / lifetime x share)`` over ``parts``."""

    co2e_g: float
    parts: tuple[str, ...]
    rule: str
    low_g: float | None = None  # where a source gives a spread
    high_g: float | None = None


@dataclass(frozen=True)
class GitInfo:
    commit: str
    dirty: bool | None
    branch: str | None = None


@dataclass(frozen=True)
class Hardware:
    cpu_model: str | None
    cpu_count: int | None
    cpu_usable: int | None
    ram_total_bytes: int | None
    gpus: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunIdentity:
    """Who, what and where: everything needed to reproduce or compare a run."""

    run_id: str
    name: str
    project: str
    tags: tuple[str, ...]
    params: dict[str, Any]
    argv: tuple[str, ...]
    host: str
    pid: int
    started_at: str
    python: str
    platform: str
    carbonmonitor_version: str
    packages: dict[str, str] = field(default_factory=dict)
    data_tables: dict[str, str] = field(default_factory=dict)
    hardware: Hardware | None = None
    git: GitInfo | None = None


@dataclass(frozen=True)
class Attribution:
    """How a run's device energy was shared out to the job (docs/attribution.md).

    Attributes:
        policy: ``"process"`` (CPU by CPU-time share of the process tree, memory by RSS share,
            GPUs by per-process utilisation share) or ``"machine"`` (everything is the job's).
        idle: where the idle baseline came from (``"measured 5 s before the run"``,
            ``"given (idle_power)"``), ``""`` without one.
        notes: what a reader must know (a share that could not be measured, and what was used).
    """

    policy: str
    idle: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunResult:
    """What ``Tracker.stop()`` returns: the whole measured and accounted run."""

    identity: RunIdentity
    status: Literal["running", "completed", "failed", "interrupted"]
    ended_at: str
    duration_s: float
    energy: tuple[EnergyFigure, ...]
    phases: tuple[PhaseResult, ...]
    location: Location
    intensity: Intensity
    pue: Pue
    emissions: Emissions
    backends: tuple[BackendStatus, ...]
    flags: tuple[Flag, ...]
    options: dict[str, Any]
    sample_count: int = 0
    exit_code: int | None = None
    attribution: Attribution | None = None
    embodied: EmbodiedEmissions | None = None
    work: Work | None = None
    metrics: tuple[MetricSeries, ...] = ()
    forecasts: tuple[Forecast, ...] = ()
    budget_events: tuple[BudgetEvent, ...] = ()

    @property
    def energy_j(self) -> float:
        return sum(f.energy_j for f in self.energy)

    @property
    def attributed_j(self) -> float:
        """This job's share of the energy (device energy where a figure is not attributed)."""
        return sum(f.energy_j if f.attributed_j is None else f.attributed_j for f in self.energy)

    @property
    def attributed_co2e_g(self) -> float:
        """CO2e of the attributed energy (same PUE and intensity as the run's)."""
        total = self.energy_j
        return self.emissions.co2e_g * self.attributed_j / total if total > 0 else 0.0

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / JOULES_PER_KWH

    @property
    def mean_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def partial(self) -> bool:
        """Still running, or interrupted: the figures cover the run up to its last write."""
        return self.status in ("running", "interrupted")

    @property
    def energy_uncertainty(self) -> Uncertainty:
        return sum_uncertainty(self.energy)

    @property
    def co2e_g(self) -> float:
        return self.emissions.co2e_g

    @property
    def forecast(self) -> Forecast | None:
        """The run's first forecast (each training's is in ``forecasts``)."""
        return self.forecasts[0] if self.forecasts else None

    @property
    def unit_costs(self) -> tuple[UnitCost, ...]:
        """Energy and CO2e per sample, per 1k tokens, per step, ... for the units counted (the
        run's whole energy and location-based CO2e divided by the count)."""
        return unit_costs(self.work, self.energy_j, self.co2e_g)

    def phase_co2e_g(self, name: str) -> float:
        """CO2e of a phase at the run's PUE and mean intensity (hourly factors included)."""
        total = self.energy_j
        return self.co2e_g * self.phase(name).energy_j / total if total > 0 else 0.0

    def metric(self, name: str) -> MetricSeries:
        """The metric called ``name``; KeyError lists the metrics there are."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"no metric {name!r}; metrics: {', '.join(m.name for m in self.metrics)}"
                       if self.metrics else f"no metric {name!r}: this run recorded none")

    def phase(self, name: str) -> PhaseResult:
        """The aggregated phase called ``name``; KeyError lists the phases there are."""
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(f"no phase {name!r}; phases: {', '.join(p.name for p in self.phases)}")

    def to_dict(self, memo: dict[Any, Any] | None = None) -> dict[str, Any]:
        """Plain data for JSON: records as dicts, derived figures (kWh, mean W) included.

        ``memo`` (a dict kept by the caller) reuses the plain form of the parts that do not
        change during a run (identity, location, intensity, PUE, backends) across calls: the
        tracker's periodic writes use it. Do not mutate what is returned when passing one."""
        return _to_plain(self, memo)  # type: ignore[no-any-return]

    def to_json(self, memo: dict[Any, Any] | None = None, **kwargs: Any) -> str:
        """``json.dumps(self.to_dict())``. With ``memo`` (see :meth:`to_dict`) the JSON text of
        the parts that stay the same object during a run is reused too; the text is the same."""
        if memo is None or kwargs:
            return json.dumps(self.to_dict(memo), **kwargs)
        parts = []
        for name in (*(f.name for f in dataclasses.fields(self)), *_DERIVED[RunResult]):
            value = getattr(self, name)
            if name in _STABLE_FIELDS:
                hit = memo.get(("json", name))
                if hit is None or hit[0] is not value:
                    hit = memo[("json", name)] = (value, json.dumps(_to_plain(value, memo)))
                text = hit[1]
            else:
                text = json.dumps(_to_plain(value, memo))
            parts.append(f"{json.dumps(name)}: {text}")
        return "{" + ", ".join(parts) + "}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """Rebuild a result from ``to_dict()`` output (derived fields are ignored)."""
        return _from_plain(cls, data)  # type: ignore[no-any-return]


def sum_uncertainty(figures: tuple[EnergyFigure, ...] | list[EnergyFigure]) -> Uncertainty:
    """Bounds of a sum of energy figures: sums of the bounds; the rule lists the parts' rules."""
    rules = sorted({f.uncertainty.rule for f in figures})
    return Uncertainty(
        sum(f.uncertainty.low for f in figures),
        sum(f.uncertainty.high for f in figures),
        "sum(" + ",".join(rules) + ")" if len(rules) > 1 else (rules[0] if rules else "none"),
    )


# Derived read-only properties exported by to_dict(), per record type.
_DERIVED: dict[type, tuple[str, ...]] = {
    EnergyFigure: ("energy_kwh", "mean_power_w", "share", "dynamic_j"),
    PhaseResult: ("energy_j", "energy_kwh", "uncertainty"),
    Emissions: ("co2e_kg",),
    RunResult: ("energy_j", "energy_kwh", "mean_power_w", "energy_uncertainty", "attributed_j",
                "attributed_co2e_g", "unit_costs"),
}


# Per record type: its fields, then its derived properties (found once: the store converts a
# provisional result every flush interval).
_NAMES: dict[type, tuple[str, ...]] = {}
_SCALARS = (str, float, int, bool, type(None))


def _names(cls: type) -> tuple[str, ...] | None:
    names = _NAMES.get(cls)
    if names is None and dataclasses.is_dataclass(cls):
        names = _NAMES[cls] = (*(f.name for f in dataclasses.fields(cls)),
                               *_DERIVED.get(cls, ()))
    return names


def _to_plain(value: Any, memo: dict[Any, Any] | None = None) -> Any:
    cls = type(value)
    if cls in _SCALARS:
        return value
    names = _names(cls)
    if names is not None:
        stable = memo is not None and cls in _STABLE
        if stable:
            hit = memo.get(id(value))  # type: ignore[union-attr]
            if hit is not None and hit[0] is value:
                return hit[1]
        out = {name: _to_plain(getattr(value, name), memo) for name in names}
        if stable:
            memo[id(value)] = (value, out)  # type: ignore[index]  # kept: its id is not reused
        return out
    if isinstance(value, (list, tuple)):
        return [_to_plain(v, memo) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v, memo) for k, v in value.items()}
    return value


# RunResult fields that a tracker passes as the same object in every provisional result.
_STABLE_FIELDS = frozenset({"identity", "location", "intensity", "pue", "backends", "options"})
# Frozen records that stay the same object for a whole run: their plain form can be memoised.
_STABLE = frozenset({RunIdentity, Location, Intensity, Pue, BackendStatus})


def _from_plain(cls: Any, data: Any) -> Any:
    import typing

    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    import types
    import typing

    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if arg is not type(None):
                return _convert(arg, value)
    if dataclasses.is_dataclass(hint):
        return _from_plain(hint, value)
    if origin is tuple:
        return tuple(_convert(args[0], v) for v in value)
    return value
