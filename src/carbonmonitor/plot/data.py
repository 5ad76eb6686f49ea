"""The numbers the figures draw, as pure functions of a stored run (no matplotlib).

Each function returns plain numbers in SI-style units (seconds, joules, watts, grams), so a test
or a report can compare a figure with the store it came from.

Example:
    >>> import tempfile, carbonmonitor
    >>> from carbonmonitor import FakeBackend, ManualClock, Tracker
    >>> clock, db = ManualClock(), tempfile.mkdtemp() + "/runs.db"
    >>> tracker = Tracker(backend=[FakeBackend({"cpu": 50.0})], clock=clock, sampling="manual",
    ...                   quiet=True, db=db, country="FR").start()
    >>> clock.advance(10); tracker.tick()
    >>> result = tracker.stop()
    >>> series = carbonmonitor.series(result.identity.run_id, db=db)
    >>> power_series(series)["cpu"]
    ([0.0, 10.0], [50.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from carbonmonitor.facts import JOULES_PER_KWH
from carbonmonitor.records import HourBin, RunResult
from carbonmonitor.store import Series

__all__ = ["DeviceShare", "IntensityStep", "Stage", "cumulative_co2e", "device_breakdown",
           "intensity_steps", "phase_breakdown", "phase_devices", "power_series", "run_stages",
           "total_energy", "total_power"]

OUTSIDE_PHASES = "between phases"  # before, between and after the top-level phases


@dataclass(frozen=True)
class Stage:
    """One bar of a breakdown: a top-level phase of a run, the time outside its phases, or a
    whole run; energy and CO2e with their intervals (``low``/``high``)."""

    label: str
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    co2e_g: float
    co2e_low_g: float
    co2e_high_g: float
    duration_s: float
    count: int = 1

    @property
    def co2e_energy_low_g(self) -> float:
        """The CO2e interval's low end from the energy interval alone (the factor as used)."""
        return self.energy_low_j * self.co2e_g / self.energy_j if self.energy_j > 0 else 0.0

    @property
    def co2e_energy_high_g(self) -> float:
        """The CO2e interval's high end from the energy interval alone (the factor as used)."""
        return self.energy_high_j * self.co2e_g / self.energy_j if self.energy_j > 0 else 0.0


def power_series(series: Series) -> dict[str, tuple[list[float], list[float]]]:
    """Mean power per domain over each sample interval.

    Returns ``{domain: (t_s, power_w)}``: ``t_s`` are the sample times (the interval edges, one
    more than ``power_w``) and ``power_w[i]`` is the energy drawn from ``t_s[i]`` to
    ``t_s[i + 1]`` over that time. Where a domain has no reading the power is NaN (a gap), never
    a made-up zero.
    """
    power = series.power_w()
    return {domain: (list(series.t_s), power[domain]) for domain in series.energy_j}


def total_energy(series: Series) -> tuple[list[float], list[float]]:
    """``(t_s, cumulative J)`` of all domains together; a missing reading of one domain
    carries its last value forward (as the hourly accounting does)."""
    last = dict.fromkeys(series.energy_j, 0.0)
    totals = []
    for i in range(len(series.t_s)):
        for domain, values in series.energy_j.items():
            if i < len(values) and math.isfinite(values[i]):
                last[domain] = values[i]
        totals.append(sum(last.values()))
    return list(series.t_s), totals


def total_power(series: Series) -> tuple[list[float], list[float]]:
    """``(t_s, power_w)`` of all domains together, with edges as in :func:`power_series`."""
    t_s, energy = total_energy(series)
    return t_s, [(energy[i + 1] - energy[i]) / (t_s[i + 1] - t_s[i])
                 if t_s[i + 1] > t_s[i] else 0.0 for i in range(len(t_s) - 1)]


def cumulative_co2e(series: Series, result: RunResult) -> tuple[list[float], list[float]]:
    """``(t_s, grams)``: the run's CO2e accumulated over time, ending at ``result.co2e_g``.

    The energy drawn up to each sample is converted with the result's own factor (PUE x
    intensity); when the result was accounted hour by hour (``emissions.hourly``), each sample
    interval's energy is spread uniformly over its time and each part takes the factor of the
    hourly bin it falls in, as the accounting did. Pass a re-accounted result to see the run
    elsewhere.
    """
    t_s, energy = total_energy(series)
    em = result.emissions
    static = em.pue * em.intensity_g_per_kwh / JOULES_PER_KWH
    if not em.hourly:
        return t_s, [static * (e - energy[0]) for e in energy] if energy else []
    start = datetime.fromisoformat(result.identity.started_at).timestamp()
    bins = [(_epoch(b.start), _epoch(b.end), _factor(b, em.pue)) for b in em.hourly]
    grams = [0.0] * len(t_s)
    for i in range(1, len(t_s)):
        factor = _mean_factor(start + t_s[i - 1], start + t_s[i], bins, static)
        grams[i] = grams[i - 1] + (energy[i] - energy[i - 1]) * factor
    return t_s, grams


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _factor(hour: HourBin, pue: float) -> float:
    """Grams per joule in one bin: its own ratio, or its intensity where it holds no energy."""
    if hour.energy_j > 0:
        return hour.co2e_g / hour.energy_j
    return pue * hour.g_per_kwh / JOULES_PER_KWH


def _mean_factor(lo: float, hi: float, bins: Sequence[tuple[float, float, float]],
                 fallback: float) -> float:
    """The time-weighted factor over ``[lo, hi]``; time no bin covers takes ``fallback``."""
    if hi <= lo:
        return fallback
    covered = weighted = 0.0
    for start, end, factor in bins:
        overlap = min(hi, end) - max(lo, start)
        if overlap > 0:
            covered += overlap
            weighted += overlap * factor
    return (weighted + max(hi - lo - covered, 0.0) * fallback) / (hi - lo)


def phase_breakdown(result: RunResult) -> list[Stage]:
    """Energy and CO2e of each top-level phase (nested ``"a/b"`` phases are inside their
    parent), in the order the phases first opened, then the energy drawn outside every phase
    when there is any (labelled ``"between phases"``: before, between and after them).

    CO2e uses the run's mean factor (``co2e_g / energy_j``). A phase's CO2e interval is its
    energy interval at the run's factor interval (the factor's spread that the run's CO2e
    interval holds beyond its energy interval), so a phase covering the whole run gets the
    run's interval. Energy outside the phases takes the run's relative interval.
    """
    grams_per_j = result.co2e_g / result.energy_j if result.energy_j > 0 else 0.0
    unc, em = result.energy_uncertainty, result.emissions.uncertainty
    f_low = em.low / (unc.low * grams_per_j) if unc.low * grams_per_j > 0 else 1.0
    f_high = em.high / (unc.high * grams_per_j) if unc.high * grams_per_j > 0 else 1.0
    stages = []
    for phase in result.phases:
        if "/" in phase.name:
            continue
        low_j, high_j = phase.uncertainty.low, phase.uncertainty.high
        stages.append(Stage(phase.name, phase.energy_j, low_j, high_j,
                            phase.energy_j * grams_per_j, low_j * grams_per_j * f_low,
                            high_j * grams_per_j * f_high, phase.duration_s, phase.count))
    outside_j = result.energy_j - sum(s.energy_j for s in stages)
    if stages and outside_j > 1e-9 * max(result.energy_j, 1.0):
        # the parts' bounds are not kept apart: the run's relative interval
        low, high = unc.low / result.energy_j, unc.high / result.energy_j
        outside_s = max(result.duration_s - sum(s.duration_s for s in stages), 0.0)
        stages.append(Stage(OUTSIDE_PHASES, outside_j, outside_j * low, outside_j * high,
                            outside_j * grams_per_j, outside_j * low * grams_per_j * f_low,
                            outside_j * high * grams_per_j * f_high, outside_s))
    return stages


def run_stages(results: Sequence[RunResult]) -> list[Stage]:
    """One stage per run (its name, or its id when names repeat), with its CO2e interval."""
    names = [r.identity.name for r in results]
    stages = []
    for r in results:
        label = r.identity.name if names.count(r.identity.name) == 1 else (
            f"{r.identity.name} ({r.identity.run_id[:8]})")
        unc, em = r.energy_uncertainty, r.emissions
        stages.append(Stage(label, r.energy_j, unc.low, unc.high, em.co2e_g,
                            em.uncertainty.low, em.uncertainty.high, r.duration_s))
    return stages


@dataclass(frozen=True)
class DeviceShare:
    """One device (domain) of a run: its energy with the interval, how it was measured, and
    its CO2e at the run's mean factor (``co2e_g / energy_j``, hourly factors included)."""

    domain: str
    method: str
    backend: str
    energy_j: float
    energy_low_j: float
    energy_high_j: float
    co2e_g: float
    co2e_low_g: float
    co2e_high_g: float


def device_breakdown(result: RunResult) -> list[DeviceShare]:
    """Energy and CO2e of each device in the order the run lists them; the CO2e interval is
    the energy interval at the run's mean factor (the factor's own spread is not in it)."""
    grams_per_j = result.co2e_g / result.energy_j if result.energy_j > 0 else 0.0
    return [DeviceShare(f.domain, f.method, f.backend, f.energy_j, f.uncertainty.low,
                        f.uncertainty.high, f.energy_j * grams_per_j,
                        f.uncertainty.low * grams_per_j, f.uncertainty.high * grams_per_j)
            for f in result.energy]


def phase_devices(result: RunResult) -> list[tuple[str, dict[str, float]]]:
    """``[(phase, {domain: J})]``: each top-level phase's energy by device, in the order of
    :func:`phase_breakdown`, then what was drawn outside every phase (``"between phases"``)
    when there is any; empty for a run without phases."""
    domains = [f.domain for f in result.energy]
    rows = []
    for phase in result.phases:
        if "/" in phase.name:
            continue
        per = dict.fromkeys(domains, 0.0)
        for f in phase.energy:
            per[f.domain] = per.get(f.domain, 0.0) + f.energy_j
        rows.append((phase.name, per))
    if not rows:
        return []
    outside = {f.domain: f.energy_j - sum(per.get(f.domain, 0.0) for _, per in rows)
               for f in result.energy}
    if sum(outside.values()) > 1e-9 * max(result.energy_j, 1.0):
        # a domain's phases may sum a hair above its total (rounding): no negative part
        rows.append((OUTSIDE_PHASES, {d: max(j, 0.0) for d, j in outside.items()}))
    return rows


@dataclass(frozen=True)
class IntensityStep:
    """The factor that held from ``start_s`` to ``end_s`` (seconds since the run started):
    an hourly bin, or the yearly factor over the whole run; ``source`` is where it came from
    (``"fallback: ..."`` for an hour the provider had no data for)."""

    start_s: float
    end_s: float
    g_per_kwh: float
    source: str

    @property
    def fallback(self) -> bool:
        return self.source.startswith("fallback")


def intensity_steps(result: RunResult) -> list[IntensityStep]:
    """The intensity over the run: its hourly bins (``emissions.hourly``), cut to the run's
    time, when it has them, else one step at the yearly factor it was accounted with, from 0
    to its duration."""
    em = result.emissions
    if not em.hourly:
        return [IntensityStep(0.0, result.duration_s, em.intensity_g_per_kwh,
                              result.intensity.source)]
    start, end = _epoch(result.identity.started_at), result.duration_s
    # a provider's bin is a whole hour, which may begin before the run or end after it
    steps = [IntensityStep(max(_epoch(b.start) - start, 0.0), min(_epoch(b.end) - start, end),
                           b.g_per_kwh, b.source) for b in em.hourly]
    return [s for s in steps if s.end_s > s.start_s] or steps[:1]
