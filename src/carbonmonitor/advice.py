"""Advice: where a run could have cut its footprint, each item with the numbers that justify it.

Every rule fires only when its figures cross a named threshold (docs/advice.md says each one and
why); an item carries its evidence (as text and as figures), its estimated saving (g CO2e and %
of the run, with how it was estimated) or why no saving can be put on it, its caveats and the
action. Items are ranked by saving, largest first; those without one come last. A clean,
efficient run gets no advice.

Example:
    >>> import carbonmonitor
    >>> with carbonmonitor.track(backend="fake", country="PL", quiet=True, db="off") as run:
    ...     pass
    >>> [a.code for a in advise(run.result)]
    ['cleaner-place']
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from carbonmonitor.records import HourBin, MetricPoint, MetricSeries, RunResult
from carbonmonitor.summary import duration_text, energy_text, mass_text

if TYPE_CHECKING:
    from carbonmonitor.store import Series

__all__ = [
    "ACCEL_BUSY_CPU_SHARE", "ACCEL_IDLE_MARGIN", "ACCEL_IDLE_MARGIN_W", "ACCEL_IDLE_MIN_FRACTION",
    "ACCEL_IDLE_UTIL_PCT",
    "CLEANER_HOURS_MIN_PCT", "CLEANER_PLACE_MIN_PCT", "IDLE_MIN_SHARE", "PHASE_MIN_SHARE",
    "PLATEAU_MIN_SHARE", "PLATEAU_POINTS", "PLATEAU_REL_TOL", "Advice", "Saving", "advise",
]

CLEANER_PLACE_MIN_PCT = 20.0
"""Rule ``cleaner-place``: advise moving only when the cleanest candidate saves >= 20 %."""
CLEANER_HOURS_MIN_PCT = 10.0
"""Rule ``cleaner-hours``: advise retiming only when the cleanest window saves >= 10 %."""
ACCEL_IDLE_MARGIN = 0.25
ACCEL_IDLE_MARGIN_W = 10.0
"""An accelerator is near its idle floor at <= floor x (1 + 0.25) + 10 W ..."""
ACCEL_IDLE_UTIL_PCT = 10.0
"""... or, where the series records its utilisation, below 10 %."""
ACCEL_BUSY_CPU_SHARE = 0.5
"""The CPU is busy at >= 50 % utilisation where recorded, else with its power in the upper half
of its range between its idle floor and its peak in the run (a CPU whose power never moved, with
no idle baseline, is never called busy)."""
ACCEL_IDLE_MIN_FRACTION = 0.3
"""Rule ``accelerator-waiting``: advise when that holds for >= 30 % of the sampled time."""
IDLE_MIN_SHARE = 0.3
"""Rule ``idle-baseline``: idle >= 30 % of the energy of the devices with a baseline."""
PHASE_MIN_SHARE = 0.6
"""Rule ``dominant-phase``: one top-level phase >= 60 % of the run's energy."""
TRAINING = re.compile(r"train|fit|epoch|tun|sft|learn", re.IGNORECASE)
"""A phase named so (training, fine-tuning, fit, SFT...) is the job's main work: it is named only
when it is also power-hungry."""
PHASE_POWER_RATIO = 1.2
"""... whose action is to make its work cheaper when its mean power is >= 1.2 x the rest's, else
to shorten it (its share then follows its time)."""
PLATEAU_POINTS = 5
PLATEAU_REL_TOL = 1e-3
"""Rule ``metric-plateau``: >= 5 points after the last one that beat the best so far by more
than 0.1 % of its magnitude."""
PLATEAU_MIN_SHARE = 0.1
"""... and >= 10 % of the run's energy drawn since that best point."""

Confidence = Literal["high", "medium", "low"]


@dataclass(frozen=True)
class Saving:
    """An estimated saving: CO2e, its share of the run's CO2e, the energy (None where the
    energy stays the same, e.g. moving it elsewhere) and how it was estimated."""

    co2e_g: float
    pct: float
    how: str
    energy_j: float | None = None


@dataclass(frozen=True)
class Advice:
    """One piece of advice.

    Attributes:
        code: stable rule name (``"cleaner-place"``, ``"cleaner-hours"``,
            ``"accelerator-waiting"``, ``"idle-baseline"``, ``"dominant-phase"``,
            ``"metric-plateau"``).
        title: one line.
        evidence: the numbers that justify it, as text; ``figures`` holds them as numbers.
        saving: the estimated saving, None when it cannot be quantified (``no_saving`` says why).
        confidence: how far to trust the saving; ``caveats`` says what could make it wrong.
        action: what to do.
    """

    code: str
    title: str
    evidence: str
    figures: Mapping[str, float]
    saving: Saving | None
    confidence: Confidence
    action: str
    caveats: tuple[str, ...] = ()
    no_saving: str = ""


def advise(result: RunResult, series: Series | None = None, *,
           places: Sequence[str | Mapping[str, str]] | None = None) -> list[Advice]:
    """The advice a run's numbers justify, ranked by estimated saving (largest first).

    Args:
        result: the run.
        series: its stored samples (``carbonmonitor.series(run_id)``); without them the
            accelerator rule is skipped and the plateau rule assumes constant power.
        places: candidate places for ``cleaner-place`` (as in ``what_if``); default: the
            provider's other regions on a cloud, else ``plot.whatif.DEFAULT_PLACES``.
    """
    rules: tuple[Callable[[], Advice | None], ...] = (
        lambda: _cleaner_place(result, places), lambda: _cleaner_hours(result),
        lambda: _accelerator_waiting(result, series), lambda: _idle_baseline(result),
        lambda: _dominant_phase(result))
    items = [a for a in (rule() for rule in rules) if a is not None]
    items.extend(_plateaus(result, series))
    return sorted(items, key=lambda a: -a.saving.co2e_g if a.saving else math.inf)


def _g_per_j(result: RunResult) -> float:
    return result.co2e_g / result.energy_j if result.energy_j > 0 else 0.0


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole > 0 else 0.0


# -- 1. cleaner place --------------------------------------------------------------------------


def _candidates(result: RunResult) -> list[str]:
    from carbonmonitor.data import read_table
    from carbonmonitor.plot.whatif import DEFAULT_PLACES

    provider = result.location.cloud_provider
    if not (provider and result.location.cloud_region):
        return list(DEFAULT_PLACES)
    rows = read_table("cloud/cloud_regions.csv")
    return [f"{provider}:{r['region']}" for r in rows if r["provider"] == provider]


def _cleaner_place(result: RunResult, places: Sequence[str | Mapping[str, str]] | None
                   ) -> Advice | None:
    from carbonmonitor.plot.whatif import what_if

    if result.energy_j <= 0:
        return None
    basis = result.intensity.basis
    own, *others = what_if(result, list(places) if places is not None else _candidates(result),
                           basis=basis)
    same = [p for p in others if p.basis == basis]
    if not same or own.co2e_g <= 0:
        return None
    best = min(same, key=lambda p: p.co2e_g)
    saved = own.co2e_g - best.co2e_g
    pct = _pct(saved, own.co2e_g)
    if pct < CLEANER_PLACE_MIN_PCT:
        return None
    top = sorted(same, key=lambda p: p.co2e_g)[:3]
    ranking = "; ".join(f"{p.label} {p.intensity_g_per_kwh:g} g/kWh, PUE {p.pue:g}: "
                        f"{mass_text(p.co2e_g)} "
                        f"({_pct(own.co2e_g - p.co2e_g, own.co2e_g):.0f} % less)"
                        for p in top)
    caveats = [f"all places on one basis, the run's: {basis} ({best.source} {best.year})"]
    if len(same) < len(others):
        caveats.append(f"{len(others) - len(same)} candidate(s) only have another basis and "
                       "were left out")
    if result.emissions.time_resolved:
        caveats.append("the run's own place is taken from the static table, like the others, "
                       "not from its hourly figure")
    if result.location.status == "unknown":
        caveats.append("the run's place is unknown: its figure is the world average")
    return Advice(
        "cleaner-place", f"Run where the grid is cleaner: {best.label} saves {pct:.0f} %",
        f"the same {energy_text(result.energy_j)} at {own.label} ({own.intensity_g_per_kwh:g} "
        f"g/kWh, PUE {own.pue:g}) is {mass_text(own.co2e_g)} CO2e; cleanest of {len(same)} "
        f"candidates on the {basis} basis: {ranking}",
        {"energy_kwh": result.energy_kwh, "own_g_per_kwh": own.intensity_g_per_kwh,
         "own_pue": own.pue, "own_co2e_g": own.co2e_g,
         "best_g_per_kwh": best.intensity_g_per_kwh, "best_pue": best.pue,
         "best_co2e_g": best.co2e_g, "candidates": float(len(same))},
        Saving(saved, pct, f"the run's energy re-accounted at {best.place} with the shipped "
               f"{basis} tables (reaccount), minus the same at its own place"),
        "medium" if result.location.status == "unknown" else "high",
        f"run the next job at {best.place} (or another place of the list)",
        tuple(caveats))


# -- 2. cleaner hours --------------------------------------------------------------------------


def _epoch(text: str) -> float:
    when = datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def _mean_factor(bins: Sequence[tuple[float, float, float]], lo: float, hi: float) -> float:
    """Time-weighted mean factor of the bins over ``[lo, hi]`` (the bins cover it)."""
    if hi <= lo:
        return next(g for b0, b1, g in bins if b0 <= lo <= b1)
    return sum(g * max(0.0, min(b1, hi) - max(b0, lo)) for b0, b1, g in bins) / (hi - lo)


def _cleaner_hours(result: RunResult) -> Advice | None:
    hourly: tuple[HourBin, ...] = result.emissions.hourly
    if len(hourly) < 2 or result.energy_j <= 0:
        return None
    # the provider's bins only: a fallback bin holds the yearly factor (maybe on another
    # basis), and ranking it against hourly ones would not be like with like
    bins = sorted((_epoch(b.start), _epoch(b.end), b.g_per_kwh) for b in hourly
                  if not b.source.startswith("fallback"))
    if len(bins) < 2 or any(b[1] != c[0] for b, c in zip(bins, bins[1:], strict=False)):
        return None  # the bins seen are not contiguous: no window to slide in
    start = _epoch(result.identity.started_at)
    length = result.duration_s
    first, last = bins[0][0], bins[-1][1]
    if last - first < length:
        return None
    if len(bins) < len(hourly) and not first <= start <= last - length:
        return None  # part of the run fell in a fallback bin: its own factor is not hourly
    start = min(max(start, first), last - length)
    # the mean over a sliding window is piecewise linear: its minimum lies where an edge of the
    # window meets an edge of a bin
    edges = {b[0] for b in bins} | {bins[-1][1]}
    starts = {s for e in edges for s in (e, e - length) if first <= s <= last - length}
    best_start = min(starts | {start}, key=lambda s: _mean_factor(bins, s, s + length))
    own = _mean_factor(bins, start, start + length)
    best = _mean_factor(bins, best_start, best_start + length)
    kwh = result.energy_kwh * result.emissions.pue
    saved = kwh * (own - best)
    pct = _pct(own - best, own)
    if pct < CLEANER_HOURS_MIN_PCT:
        return None
    low, high = min(b[2] for b in bins), max(b[2] for b in bins)
    window = (f"{datetime.fromtimestamp(best_start, timezone.utc):%Y-%m-%d %H:%M}-"
              f"{datetime.fromtimestamp(best_start + length, timezone.utc):%H:%M} UTC")
    return Advice(
        "cleaner-hours", f"Run in cleaner hours: {window} would have saved {pct:.0f} %",
        f"the grid ranged {low:g}-{high:g} g/kWh over the {len(bins)} bins seen; the run's "
        f"{length / 3600:.3g} h averaged {own:.4g} g/kWh, the cleanest window of that length "
        f"{best:.4g} g/kWh ({window})",
        {"own_g_per_kwh": own, "best_g_per_kwh": best, "low_g_per_kwh": low,
         "high_g_per_kwh": high, "duration_s": length, "best_start_unix": best_start,
         "bins": float(len(bins))},
        Saving(saved, pct, f"{result.energy_kwh:.4g} kWh x PUE {result.emissions.pue:g} drawn "
               "at constant power over the run's window and over the cleanest window of the "
               "same length; the difference of the two"),
        "medium", "schedule such runs in the cleaner hours (or use a carbon-aware scheduler)",
        ("hindsight: the factors of the bins the run itself saw, within its own hours, not a "
         "forecast", "assumes constant power, so it compares timing only"))


# -- 3. accelerator waiting --------------------------------------------------------------------


def _floor(result: RunResult, domain: str, power: list[float]) -> float | None:
    """The idle power of ``domain``: its measured baseline, else the lowest power seen when the
    device clearly worked too (peak >= 2 x lowest); None when it cannot be told."""
    for f in result.energy:
        if f.domain == domain and f.idle_j is not None and f.duration_s > 0:
            return f.idle_j / f.duration_s
    finite = [w for w in power if math.isfinite(w)]
    if not finite or max(finite) < 2 * min(finite):
        return None
    return min(finite)


def _interval_util(series: Series, domain: str, i: int) -> float:
    """The utilisation recorded at the end of interval ``i`` (NaN where none was)."""
    values = series.utilisation_pct.get(domain, [])
    return values[i + 1] if len(values) > i + 1 else math.nan


def _cpu_busy(result: RunResult, series: Series, cpus: list[str], n: int) -> list[bool]:
    """Per interval, whether the CPU was busy: utilisation >= 50 % where recorded, else power
    in the upper half of its range above its idle floor (its baseline, or the lowest power when
    the range is clear). A CPU whose power never moved, with no baseline, is never called busy:
    flat power says nothing about work."""
    power = series.power_w()
    cpu_w = [sum(power[c][i] for c in cpus) for i in range(n)]
    finite = [w for w in cpu_w if math.isfinite(w)]
    peak = max(finite, default=0.0)
    floors = [_floor(result, c, power[c]) for c in cpus]  # as the accelerators' floor
    floor = (sum(f for f in floors if f is not None) if all(f is not None for f in floors)
             else None)
    out = []
    for i in range(n):
        utils = [_interval_util(series, c, i) for c in cpus]
        if all(math.isfinite(u) for u in utils):
            out.append(sum(utils) / len(utils) >= 100 * ACCEL_BUSY_CPU_SHARE)
        else:
            out.append(floor is not None and peak > floor and math.isfinite(cpu_w[i])
                       and cpu_w[i] >= floor + ACCEL_BUSY_CPU_SHARE * (peak - floor))
    return out


def _waiting(result: RunResult, series: Series, gpu: str, cpus: list[str]) -> list[int]:
    """Intervals where ``gpu`` is near its floor while the CPU is busy."""
    power = series.power_w()
    floor = _floor(result, gpu, power[gpu])
    busy = _cpu_busy(result, series, cpus, len(power[gpu]))
    out = []
    for i, w in enumerate(power[gpu]):
        gpu_util = _interval_util(series, gpu, i)
        near = floor is not None and w <= floor * (1 + ACCEL_IDLE_MARGIN) + ACCEL_IDLE_MARGIN_W
        idle = gpu_util < ACCEL_IDLE_UTIL_PCT if math.isfinite(gpu_util) else near
        if idle and busy[i]:
            out.append(i)
    return out


def _accelerator_waiting(result: RunResult, series: Series | None) -> Advice | None:
    if series is None or len(series.t_s) < 2:
        return None
    accels = [d for d in series.energy_j if d.split(":")[0] in ("gpu", "npu", "tpu", "xpu")]
    cpus = [d for d in series.energy_j if d.split(":")[0] == "cpu"]
    if not accels or not cpus:
        return None
    dt = [b - a for a, b in zip(series.t_s, series.t_s[1:], strict=False)]
    sampled = sum(dt)
    power = series.power_w()
    worst: Advice | None = None
    for gpu in accels:
        idx = _waiting(result, series, gpu, cpus)
        waited = sum(dt[i] for i in idx)
        fraction = waited / sampled if sampled > 0 else 0.0
        if fraction < ACCEL_IDLE_MIN_FRACTION:
            continue
        all_j = sum(power[d][i] * dt[i] for d in power for i in idx if math.isfinite(power[d][i]))
        gpu_j = sum(power[gpu][i] * dt[i] for i in idx)
        g = gpu_j * _g_per_j(result)
        item = Advice(
            "accelerator-waiting",
            f"{gpu} waited near idle while the CPU was busy for {100 * fraction:.0f} % of the run",
            f"{gpu} near its idle floor with the CPU busy (>= {100 * ACCEL_BUSY_CPU_SHARE:.0f} "
            f"% utilisation, or power in the upper half of its range above idle) for "
            f"{duration_text(waited)} of {duration_text(sampled)} ({100 * fraction:.0f} %); the "
            f"machine drew {energy_text(all_j)} meanwhile, {gpu} {energy_text(gpu_j, all_j)}",
            {"fraction": fraction, "waiting_s": waited, "sampled_s": sampled,
             "energy_meanwhile_j": all_j, "accelerator_energy_meanwhile_j": gpu_j},
            Saving(g, _pct(g, result.co2e_g), f"the energy {gpu} drew while waiting, at the "
                   "run's mean g/J: what overlapping the input pipeline with compute would "
                   "remove if it removed the waiting (the CPU work remains)", gpu_j),
            "medium", "speed up the input pipeline: more data-loader workers, prefetching, "
            "pinned memory, preprocessed or cached data",
            ("inferred from power (or utilisation where recorded), not from a profiler",))
        if worst is None or (item.saving and worst.saving
                             and item.saving.co2e_g > worst.saving.co2e_g):
            worst = item
    return worst


# -- 4. idle baseline --------------------------------------------------------------------------


def _idle_baseline(result: RunResult) -> Advice | None:
    known = [f for f in result.energy if f.idle_j is not None]
    total = sum(f.energy_j for f in known)
    idle = sum(f.idle_j or 0.0 for f in known)
    if total <= 0 or idle / total < IDLE_MIN_SHARE:
        return None
    share = idle / total
    g = idle * _g_per_j(result)
    parts = ", ".join(f"{f.domain} {energy_text(f.idle_j or 0.0, f.energy_j)} of "
                      f"{energy_text(f.energy_j)}" for f in known)
    return Advice(
        "idle-baseline", f"Idle baseline is {100 * share:.0f} % of the energy",
        f"idle {energy_text(idle, total)} of {energy_text(total)} ({100 * share:.0f} %) on the "
        f"devices with a "
        f"baseline ({parts}); {mass_text(g)} CO2e",
        {"idle_j": idle, "energy_j": total, "idle_share": share, "idle_co2e_g": g},
        None, "medium", "use fewer or smaller devices, pack more work onto them (larger "
        "batches, several jobs), or power idle machines down",
        (result.attribution.idle if result.attribution and result.attribution.idle
         else "idle baseline source not recorded",),
        no_saving=f"the baseline is drawn while the machine is on, job or not: how much of its "
        f"{mass_text(g)} is saved depends on what else the machine could do or whether it can "
        "be off")


# -- 5. dominant phase -------------------------------------------------------------------------


def _dominant_phase(result: RunResult) -> Advice | None:
    top = [p for p in result.phases if "/" not in p.name]
    if len(top) < 2 or result.energy_j <= 0:
        return None
    phase = max(top, key=lambda p: p.energy_j)
    share = phase.energy_j / result.energy_j
    if share < PHASE_MIN_SHARE:
        return None
    time_share = phase.duration_s / result.duration_s if result.duration_s > 0 else 0.0
    g = result.phase_co2e_g(phase.name)
    power = phase.energy_j / phase.duration_s if phase.duration_s > 0 else 0.0
    rest_s = result.duration_s - phase.duration_s
    rest_w = (result.energy_j - phase.energy_j) / rest_s if rest_s > 0 else None
    figures = {"share": share, "energy_j": phase.energy_j, "run_energy_j": result.energy_j,
               "co2e_g": g, "time_share": time_share, "power_w": power,
               "rest_power_w": math.nan if rest_w is None else rest_w}
    evidence = (f"{phase.name!r}: {energy_text(phase.energy_j, result.energy_j)} of "
                f"{energy_text(result.energy_j)} ({100 * share:.0f} %), {mass_text(g)} CO2e, in "
                f"{100 * time_share:.0f} % of the time")
    hungry = rest_w is not None and power > rest_w * PHASE_POWER_RATIO
    if not hungry and TRAINING.search(phase.name):
        return None  # training taking most of a training run's time and energy is no news
    if rest_w is not None:
        evidence += f", at {power:.3g} W against {rest_w:.3g} W for the rest of the run"
    if hungry:
        action = (f"{phase.name!r} draws more power per second than the rest: make its work "
                  "cheaper (mixed precision, a smaller model, larger batches, caching) before "
                  "the other phases")
    else:
        action = (f"the share of {phase.name!r} follows its time, not its power: shortening it "
                  "(fewer steps or epochs, early stopping, a smaller dataset or sequence "
                  "length) saves in proportion; per-step efficiency helps as much anywhere")
    return Advice(
        "dominant-phase", f"Phase {phase.name!r} is {100 * share:.0f} % of the footprint",
        evidence, figures, None, "medium", action, (),
        no_saving="it says where savings are, not how large: that depends on the change made")


# -- 6. metric plateau -------------------------------------------------------------------------


def _last_gain(metric: MetricSeries) -> int:
    """Index of the last point that beat the best so far by more than the tolerance."""
    sign = 1.0 if metric.direction == "higher" else -1.0
    best_i, best = 0, metric.points[0].value
    for i, p in enumerate(metric.points[1:], start=1):
        if sign * (p.value - best) > PLATEAU_REL_TOL * max(abs(best), 1e-12):
            best_i, best = i, p.value
    return best_i


def _energy_at(result: RunResult, series: Series | None, t_s: float) -> float:
    """Cumulative energy at ``t_s``: interpolated in the series, else at the run's mean power."""
    if series is None or len(series.t_s) < 2:
        return result.mean_power_w * t_s
    total = [sum(v[i] for v in series.energy_j.values() if math.isfinite(v[i]))
             for i in range(len(series.t_s))]
    ts = series.t_s
    if t_s <= ts[0]:
        return total[0]
    for i in range(1, len(ts)):
        if t_s <= ts[i]:
            frac = (t_s - ts[i - 1]) / (ts[i] - ts[i - 1]) if ts[i] > ts[i - 1] else 1.0
            return total[i - 1] + frac * (total[i] - total[i - 1])
    return total[-1]


def _plateaus(result: RunResult, series: Series | None) -> list[Advice]:
    out: list[tuple[str, Advice]] = []  # (metric, its plateau)
    for m in result.metrics:
        if m.direction is None or len(m.points) <= PLATEAU_POINTS:
            continue
        i = _last_gain(m)
        after = len(m.points) - 1 - i
        if after < PLATEAU_POINTS:
            continue
        best = m.points[i]
        since_j = result.energy_j - _energy_at(result, series, best.t_s)
        share = since_j / result.energy_j if result.energy_j > 0 else 0.0
        if share < PLATEAU_MIN_SHARE:
            continue
        g = since_j * _g_per_j(result)
        out.append((m.name, Advice(
            "metric-plateau", f"{m.name!r} stopped improving: {100 * share:.0f} % of the energy "
            "came after its best value",
            f"{m.name!r} ({m.direction} is better) best {best.value:g} at {_when(best)}; "
            f"{after} later points, none better by > {100 * PLATEAU_REL_TOL:g} %; "
            f"{energy_text(since_j)} ({100 * share:.0f} %) drawn since, {mass_text(g)} CO2e",
            {"best_value": best.value, "best_t_s": best.t_s, "points_after": float(after),
             "energy_since_j": since_j, "energy_share": share, "co2e_since_g": g},
            Saving(g, _pct(g, result.co2e_g), "energy drawn after the best value (from the "
                   "series, interpolated at its time" + ("" if series else "; no series: at "
                   "the run's mean power") + "), at the run's mean g/J", since_j),
            "medium" if series else "low", "stop early (e.g. patience of a few evaluations on "
            f"{m.name!r}) or checkpoint the best model and cut the schedule",
            ("hindsight: the metric might have improved later had the run gone on",))))
    if len(out) < 2:
        return [advice for _, advice in out]
    # one stop saves once: keep the plateau that saves the most, and name the others in it
    out.sort(key=lambda pair: pair[1].saving.co2e_g if pair[1].saving else 0.0, reverse=True)
    kept = out[0][1]
    names = ", ".join(repr(name) for name, _ in out[1:])
    return [dataclasses.replace(kept, caveats=(
        *kept.caveats, f"{names} stopped improving too; their savings overlap this one, so "
        "they are not listed again"))]


def _when(point: MetricPoint) -> str:
    """Where a metric point lies: its epoch or step when logged with one, else the time."""
    if point.epoch is not None:
        return f"epoch {point.epoch:g} ({duration_text(point.t_s)} in)"
    if point.step is not None:
        return f"step {point.step:g} ({duration_text(point.t_s)} in)"
    return f"{duration_text(point.t_s)} in"

