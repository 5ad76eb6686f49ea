"""Early prediction of a run's duration and energy, and carbon budgets. Pure: no I/O, no clock.

The tracker records a :class:`Mark` each time a unit of work (an epoch or a step) completes:
units done so far, cumulative seconds and cumulative joules since the run started.
:func:`predict` extrapolates the whole run from those marks; :func:`check` compares a
:class:`Budget` with the actual or predicted figures. CO2e is energy x a constant factor
(:func:`grams_per_joule`: PUE x intensity), so only duration and energy are predicted.

The rule (``prediction-linear-v1``, docs/prediction.md):

- **Point.** The first ``warmup`` units (compilation, caches, the first pass over the data:
  epoch 1 often costs more) are measured but not extrapolated. The mean cost per unit after
  warm-up (total cost over total units, so fractional and irregular marks weigh by their size)
  times the units still to run, plus what was measured so far.
- **Interval** on the part still to run (what is measured is not re-estimated; the sensors'
  own uncertainty is reported with the actual figures, not here):

  * fewer than 3 post-warm-up intervals (between marks): the data shows no spread, so the
    interval is a bound under an assumption, ``variation``: each unit's cost lies within
    +-``variation`` (default 10 %) of a common mean. Then the observed mean and the mean of the
    remaining units both lie in mean x [1 - v, 1 + v], and their ratio in
    [(1 - v) / (1 + v), (1 + v) / (1 - v)]: -18 % / +22 % at v = 10 %. The whole band is kept
    because one unit can sit at either end.
  * 3 or more: a Student-t prediction interval for the mean of the remaining units,
    ``m +- t(confidence, n - 1) x s x sqrt(1/n + 1/k)`` (n intervals seen, k still to run, s
    their standard deviation per unit), never narrower than +-``variation``: identical units
    have s = 0, yet later units can drift in ways earlier ones do not show (other tenants,
    throttling, evaluation or checkpoint cost), so the floor stays.

Example:
    >>> marks = [Mark(1, 130.0, 13_000.0), Mark(2, 230.0, 23_000.0)]
    >>> p = predict(marks, total=10)
    >>> round(p.duration_s), round(p.energy_j)
    (1030, 103000)
    >>> [round(g, 2) for g in p.co2e(grams_per_joule(pue=1.0, intensity_g_per_kwh=360.0))]
    [10.3, 8.85, 12.08]
    >>> verdict = check(Budget(max_emissions_g=10, on="predicted", action="stop"),
    ...                 energy_j=23_000.0, co2e_g=2.3, prediction=p, grams_per_joule=1e-4)
    >>> verdict.message
    'predicted total 10.3 g CO2e exceeds the budget of 10 g (after 2 of 10 epochs)'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from carbonmonitor.errors import ConfigError
from carbonmonitor.facts import JOULES_PER_KWH
from carbonmonitor.records import Uncertainty

__all__ = ["RULE", "Budget", "BudgetVerdict", "Comparison", "Mark", "Prediction", "check",
           "grams_per_joule", "predict"]

RULE = "prediction-linear-v1"
_MIN_SPREAD_INTERVALS = 3  # below this a sample standard deviation says too little
_MAX_DF = 200  # t quantiles above this df are taken at 200: at most 0.6 % wider than normal


@dataclass(frozen=True)
class Mark:
    """Progress when a unit completes: units done (may be fractional), cumulative seconds and
    cumulative joules since the run started."""

    done: float
    elapsed_s: float
    energy_j: float

    def __post_init__(self) -> None:
        for name in ("done", "elapsed_s", "energy_j"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0 or not math.isfinite(value):
                raise ConfigError(f"Mark.{name} must be a finite number >= 0; got {value!r}. "
                                  "Fix: pass cumulative units, seconds and joules since the start")


@dataclass(frozen=True)
class Comparison:
    """A prediction next to the run's outcome. Errors are ``predicted / actual - 1`` (None when
    the actual figure is 0); CO2e's error equals energy's (one constant factor)."""

    after_units: float
    total_units: float
    unit: str
    predicted_duration_s: float
    actual_duration_s: float
    duration_error: float | None
    duration_contained: bool
    predicted_energy_j: float
    actual_energy_j: float
    energy_error: float | None
    energy_contained: bool

    def describe(self) -> str:
        """One line per figure, e.g. ``duration: predicted 1030 s, actual 1000 s (+3.0 %), inside
        the interval``."""
        where = f"prediction after {_num(self.after_units)} of {_num(self.total_units)} " \
                f"{_plural(self.unit, self.total_units)}"
        lines = [where]
        for name, pred, act, err, inside, unit in (
                ("duration", self.predicted_duration_s, self.actual_duration_s,
                 self.duration_error, self.duration_contained, "s"),
                ("energy", self.predicted_energy_j / JOULES_PER_KWH,
                 self.actual_energy_j / JOULES_PER_KWH, self.energy_error,
                 self.energy_contained, "kWh")):
            off = "n/a" if err is None else f"{err:+.1%}"
            lines.append(f"{name}: predicted {_num(pred)} {unit}, actual {_num(act)} {unit} "
                         f"({off}), {'inside' if inside else 'OUTSIDE'} the interval")
        return "\n".join(lines)


@dataclass(frozen=True)
class Prediction:
    """The whole run's duration and energy predicted from its first units, with intervals.

    ``observed_*`` is what was measured when the prediction was made; ``rule`` names the rule
    (docs/prediction.md) and ``method`` says, in words, how these numbers were obtained.
    """

    after_units: float
    total_units: float
    unit: str
    observed_duration_s: float
    observed_energy_j: float
    duration_s: float
    duration_low_s: float
    duration_high_s: float
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    rule: str
    method: str

    @property
    def duration_uncertainty(self) -> Uncertainty:
        return Uncertainty(self.duration_low_s, self.duration_high_s, self.rule)

    @property
    def energy_uncertainty(self) -> Uncertainty:
        return Uncertainty(self.energy_low_j, self.energy_high_j, self.rule)

    @property
    def energy_kwh(self) -> float:
        return self.energy_j / JOULES_PER_KWH

    def co2e(self, grams_per_joule: float) -> tuple[float, float, float]:
        """Predicted CO2e in grams, ``(point, low, high)``: the energy figures x the factor."""
        if not _is_number(grams_per_joule) or not 0 <= grams_per_joule < math.inf:
            raise ConfigError(f"grams_per_joule must be a finite number >= 0; got "
                              f"{grams_per_joule!r}. Fix: use grams_per_joule(pue=..., "
                              "intensity_g_per_kwh=...)")
        f = grams_per_joule
        return self.energy_j * f, self.energy_low_j * f, self.energy_high_j * f

    def compare(self, actual_duration_s: float, actual_energy_j: float) -> Comparison:
        """This prediction next to the run's outcome (for the end-of-run report)."""
        def error(pred: float, actual: float) -> float | None:
            return pred / actual - 1.0 if actual > 0 else None

        return Comparison(
            self.after_units, self.total_units, self.unit,
            self.duration_s, actual_duration_s, error(self.duration_s, actual_duration_s),
            self.duration_low_s <= actual_duration_s <= self.duration_high_s,
            self.energy_j, actual_energy_j, error(self.energy_j, actual_energy_j),
            self.energy_low_j <= actual_energy_j <= self.energy_high_j)

    def describe(self, grams_per_joule: float | None = None) -> str:
        """One line for live display, e.g. ``after 2 of 10 epochs: predicted 1030 s
        (885-1208 s), 0.0286 kWh (0.0246-0.0335 kWh)``; CO2e too when the factor is given."""
        text = (f"after {_num(self.after_units)} of {_num(self.total_units)} "
                f"{_plural(self.unit, self.total_units)}: predicted {_num(self.duration_s)} s "
                f"({_num(self.duration_low_s)}-{_num(self.duration_high_s)} s), "
                f"{_num(self.energy_kwh)} kWh ({_num(self.energy_low_j / JOULES_PER_KWH)}-"
                f"{_num(self.energy_high_j / JOULES_PER_KWH)} kWh)")
        if grams_per_joule is not None:
            point, low, high = self.co2e(grams_per_joule)
            text += f", {_num(point)} g CO2e ({_num(low)}-{_num(high)} g)"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON or a store row."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prediction:
        """Rebuild from :meth:`to_dict` output (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def grams_per_joule(*, pue: float, intensity_g_per_kwh: float) -> float:
    """The constant CO2e factor, g/J: PUE x intensity / 3.6e6.

    >>> grams_per_joule(pue=1.5, intensity_g_per_kwh=400.0) * 3.6e6
    600.0
    """
    for name, value, low in (("pue", pue, 1.0), ("intensity_g_per_kwh", intensity_g_per_kwh, 0.0)):
        if not _is_number(value) or not low <= value < math.inf:
            raise ConfigError(f"{name} must be a finite number >= {low:g}; got {value!r}. "
                              "Fix: take it from the run's accounting (RunResult.emissions)")
    return pue * intensity_g_per_kwh / JOULES_PER_KWH


def predict(marks: Iterable[Mark], total: float, *, unit: str = "epoch", warmup: float = 1,
            min_units: float = 2, variation: float = 0.10,
            confidence: float = 0.95) -> Prediction | None:
    """Predict the whole run's duration and energy from the marks so far (module docstring).

    Args:
        marks: one per completed unit (or any progress point), ``done`` strictly increasing,
            ``elapsed_s`` and ``energy_j`` cumulative (never decreasing).
        total: units in the whole run (epochs, or steps when marks count steps).
        unit: the unit's name, for messages (``"epoch"``, ``"step"``).
        warmup: units treated as warm-up; warm-up ends at the first mark at or past it.
        min_units: no prediction before this many units are done; must exceed ``warmup``.
        variation: assumed bound on a unit's cost around the mean (see the interval rule).
        confidence: of the t interval used once 3 post-warm-up intervals exist.

    Returns:
        None until ``min_units`` are done and a unit after warm-up is measured.

    Raises:
        ConfigError: a bad option, marks out of order, or marks past ``total``.

    Cost: one pass over the marks; a tracker recording every step should predict on a cadence
    (e.g. each epoch or every few seconds), not on every step.
    """
    _check_options(total, warmup, min_units, variation, confidence)
    points = _ordered([Mark(0.0, 0.0, 0.0), *marks], total)
    last = points[-1]
    if last.done < min_units:
        return None
    start = next(m for m in points if m.done >= warmup or m is last)
    post = [m for m in points if m.done > start.done]
    if not post:
        return None
    pairs = list(zip([start, *post[:-1]], post, strict=True))
    sizes = [b.done - a.done for a, b in pairs]
    remaining = max(total - last.done, 0.0)
    dur = _remaining_cost(sizes, [b.elapsed_s - a.elapsed_s for a, b in pairs], remaining,
                          variation, confidence)
    energy = _remaining_cost(sizes, [b.energy_j - a.energy_j for a, b in pairs], remaining,
                             variation, confidence)
    return Prediction(
        after_units=last.done, total_units=float(total), unit=unit,
        observed_duration_s=last.elapsed_s, observed_energy_j=last.energy_j,
        duration_s=last.elapsed_s + dur[0], duration_low_s=last.elapsed_s + dur[1],
        duration_high_s=last.elapsed_s + dur[2],
        energy_j=last.energy_j + energy[0], energy_low_j=last.energy_j + energy[1],
        energy_high_j=last.energy_j + energy[2],
        rule=RULE, method=_method(unit, start.done, last.done, total, len(pairs), variation,
                                  confidence))


def _remaining_cost(sizes: list[float], costs: list[float], remaining: float, variation: float,
                    confidence: float) -> tuple[float, float, float]:
    """(point, low, high) cost of the ``remaining`` units from the post-warm-up intervals."""
    n, units = len(sizes), sum(sizes)
    mean = sum(costs) / units
    point = mean * remaining
    if n < _MIN_SPREAD_INTERVALS:
        return (point, point * (1 - variation) / (1 + variation),
                point * (1 + variation) / (1 - variation))
    # unit-weighted variance of the per-unit cost of an interval of the average size
    squares = sum(u * (c / u - mean) ** 2 for u, c in zip(sizes, costs, strict=True))
    var = squares / units * n / (n - 1)
    k = remaining / (units / n)  # intervals still to run, at the average size
    half = 0.0
    if mean > 0 and k > 0:
        half = _t_quantile(confidence, n - 1) * math.sqrt(var) * math.sqrt(1 / n + 1 / k) / mean
    half = max(half, variation)
    return point, point * max(1 - half, 0.0), point * (1 + half)


def _method(unit: str, start: float, done: float, total: float, n: int, variation: float,
            confidence: float) -> str:
    text = (f"measured {_num(done)} of {_num(total)} {_plural(unit, total)}, plus "
            f"{_num(max(total - done, 0.0))} more x the mean cost per {unit} over "
            f"{_num(done - start)} {_plural(unit, done - start)} after a warm-up of "
            f"{_num(start)} ({n} {_plural('interval', n)} between marks); ")
    if n < _MIN_SPREAD_INTERVALS:
        low, high = (1 - variation) / (1 + variation) - 1, (1 + variation) / (1 - variation) - 1
        return text + (f"interval {low:+.0%}/{high:+.0%} of the rest: a bound if each {unit} "
                       f"costs within +-{variation:.0%} of the mean (under "
                       f"{_MIN_SPREAD_INTERVALS} intervals show no spread)")
    return text + (f"interval on the rest: {confidence:.0%} Student-t prediction interval of the "
                   f"mean per {unit}, at least +-{variation:.0%}")


def _t_quantile(confidence: float, df: int) -> float:
    """t with P(|T| < t) = confidence for Student's t with ``df`` degrees of freedom."""
    df = min(df, _MAX_DF)
    low, high = 0.0, 1.0
    while _t_coverage(high, df) < confidence:
        high *= 2
    for _ in range(80):
        mid = (low + high) / 2
        low, high = (mid, high) if _t_coverage(mid, df) < confidence else (low, mid)
    return (low + high) / 2


def _t_coverage(t: float, df: int) -> float:
    """P(|T| < t), closed form for integer df (Abramowitz & Stegun 26.7.3, 26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:  # sin(theta) x [1 + 1/2 c^2 + 1.3/(2.4) c^4 + ... up to c^(df-2)]
        term = series = 1.0
        for j in range(df // 2 - 1):
            term *= c2 * (2 * j + 1) / (2 * j + 2)
            series += term
        return s * series
    # 2/pi x [theta + sin(theta) (c + 2/3 c^3 + ... up to c^(df-2))]
    c = math.sqrt(c2)
    term, series = c, (c if df > 1 else 0.0)
    for j in range(1, (df - 1) // 2):
        term *= c2 * (2 * j) / (2 * j + 1)
        series += term
    return 2 / math.pi * (theta + s * series)


BudgetOn = Literal["predicted", "actual"]
Action = Literal["warn", "stop"]
LimitName = Literal["max_emissions_g", "max_energy_kwh"]
_LIMITS: tuple[tuple[LimitName, str, str], ...] = (
    ("max_emissions_g", "g CO2e", "g"), ("max_energy_kwh", "kWh", "kWh"))


@dataclass(frozen=True)
class Budget:
    """A carbon or energy budget for a run, checked on the predicted or the actual figure.

    Args:
        max_emissions_g: CO2e limit in grams (operational: energy x PUE x intensity).
        max_energy_kwh: energy limit in kWh.
        on: ``"actual"`` trips at the first check where the cumulative figure reaches the limit
            (>=); ``"predicted"`` trips at the first check where a prediction exists and its
            point estimate exceeds the limit (>), so a run can stop long before it spends it.
        action: ``"warn"`` (log once, go on) or ``"stop"`` (end training after the unit in
            progress; the integration does it, this module only decides).
        strict: predicted budgets only: compare the interval's upper end instead of the point.

    The point estimate is the default for predicted budgets because it is the best guess:
    early in a run the upper end of the rest is 22 % above it (module docstring), so a strict
    budget stops many runs that would have stayed within it. Use ``strict=True`` when going
    over is worse than stopping early, or pair a predicted warning with an actual stop.

    Raises:
        ConfigError: no limit set, a limit that is not a positive finite number, or a bad
            ``on`` / ``action`` / ``strict``.

    Example:
        >>> Budget(max_energy_kwh=2.5, on="actual", action="stop").max_energy_kwh
        2.5
    """

    max_emissions_g: float | None = None
    max_energy_kwh: float | None = None
    on: BudgetOn = "actual"
    action: Action = "warn"
    strict: bool = False

    def __post_init__(self) -> None:
        if self.max_emissions_g is None and self.max_energy_kwh is None:
            raise ConfigError("a budget needs max_emissions_g or max_energy_kwh. Fix: pass e.g. "
                              "max_emissions_g=500 (grams CO2e) or max_energy_kwh=2.5")
        for name, unit, example in (("max_emissions_g", "grams of CO2e", "500"),
                                    ("max_energy_kwh", "kWh", "2.5")):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not 0 < value < math.inf):
                raise ConfigError(f"{name} must be a positive, finite number of {unit}; got "
                                  f"{value!r}. Fix: pass e.g. {name}={example}, or leave it "
                                  "unset for no such limit")
        if self.on not in ("predicted", "actual"):
            raise ConfigError(f"budget on={self.on!r} is not known. Fix: on='predicted' (the "
                              "prediction for the whole run) or on='actual' (measured so far)")
        if self.action not in ("warn", "stop"):
            raise ConfigError(f"budget action={self.action!r} is not known. Fix: "
                              "action='warn' or action='stop'")
        if not isinstance(self.strict, bool) or (self.strict and self.on != "predicted"):
            raise ConfigError(f"strict={self.strict!r} applies to predicted budgets only. Fix: "
                              "drop strict, or set on='predicted'")


@dataclass(frozen=True)
class BudgetVerdict:
    """A budget crossed: which limit, the figure that crossed it, and a message to show."""

    limit_name: LimitName
    figure: float
    limit: float
    figure_unit: str  # "g CO2e" or "kWh"
    on: BudgetOn
    action: Action
    message: str

    @property
    def stop(self) -> bool:
        """Whether training should end after the unit in progress."""
        return self.action == "stop"


def check(budget: Budget, *, energy_j: float, co2e_g: float, prediction: Prediction | None,
          grams_per_joule: float) -> BudgetVerdict | None:
    """The budget's verdict now, or None while it holds (see :class:`Budget` for when it trips).

    Args:
        energy_j, co2e_g: the run's actual cumulative figures.
        prediction: the latest :func:`predict` result (None: predicted budgets cannot trip).
        grams_per_joule: the factor turning predicted energy into CO2e.

    The emissions limit is checked before the energy limit; the first crossed is returned.
    The check keeps no state: the caller acts on the first verdict of each budget and stops
    checking it (a warning is given once).
    """
    where = ""
    if prediction is not None:
        where = (f" (after {_num(prediction.after_units)} of {_num(prediction.total_units)} "
                 f"{_plural(prediction.unit, prediction.total_units)})")
    if budget.on == "predicted":
        if prediction is None:
            return None
        point, _, high = prediction.co2e(grams_per_joule)
        pick = 1 if budget.strict else 0
        figures = ((point, high)[pick],
                   (prediction.energy_j, prediction.energy_high_j)[pick] / JOULES_PER_KWH)
        label = "predicted total" + (" (upper end)" if budget.strict else "")
    else:
        figures = (co2e_g, energy_j / JOULES_PER_KWH)
        label = "actual total"
    for (name, unit, limit_unit), figure in zip(_LIMITS, figures, strict=True):
        limit = getattr(budget, name)
        if limit is None:
            continue
        crossed = figure > limit if budget.on == "predicted" else figure >= limit
        if crossed:
            verb = "exceeds" if budget.on == "predicted" else "has reached"
            message = (f"{label} {_num(figure)} {unit} {verb} the budget of {limit:g} "
                       f"{limit_unit}{where}")
            return BudgetVerdict(name, figure, float(limit), unit, budget.on, budget.action,
                                 message)
    return None


def _check_options(total: float, warmup: float, min_units: float, variation: float,
                   confidence: float) -> None:
    if not _is_number(total) or not 0 < total < math.inf:
        raise ConfigError(f"total must be a positive, finite number of units; got {total!r}. "
                          "Fix: pass the number of epochs (or steps) the run will do")
    if not _is_number(warmup) or not 0 <= warmup < math.inf:
        raise ConfigError(f"warmup must be a number of units >= 0; got {warmup!r}. "
                          "Fix: warmup=1 treats the first unit as warm-up, 0 none")
    if not _is_number(min_units) or not warmup < min_units < math.inf:
        raise ConfigError(f"min_units must be greater than warmup ({warmup!r}); got "
                          f"{min_units!r}: a prediction needs a unit measured after warm-up. "
                          f"Fix: min_units={_num(math.floor(warmup) + 1)} or more")
    if not _is_number(variation) or not 0 < variation < 1:
        raise ConfigError(f"variation must lie strictly between 0 and 1; got {variation!r}. "
                          "Fix: variation=0.1 (a unit's cost within +-10 % of the mean)")
    if not _is_number(confidence) or not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie strictly between 0 and 1; got {confidence!r}. "
                          "Fix: confidence=0.95")


def _ordered(points: list[Mark], total: float) -> list[Mark]:
    for a, b in zip(points, points[1:], strict=False):
        if b.done <= a.done or b.elapsed_s < a.elapsed_s or b.energy_j < a.energy_j:
            raise ConfigError(f"marks out of order: {b} after {a}. Fix: record one mark per "
                              "completed unit, done increasing, time and energy cumulative")
    if points[-1].done > total * (1 + 1e-9):
        raise ConfigError(f"marks go past the total: done={points[-1].done!r} > total="
                          f"{total!r}. Fix: pass the run's real total number of units")
    return points


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _num(value: float) -> str:
    """Three significant figures, without exponent for ordinary sizes: 12.3, 1030, 0.0286, 2."""
    if value == 0 or 1e-4 <= abs(value) < 1e7:
        digits = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 0
        text = f"{value:.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value:.3g}"


def _plural(unit: str, count: float) -> str:
    return unit if count == 1 or unit.endswith("s") else unit + "s"
