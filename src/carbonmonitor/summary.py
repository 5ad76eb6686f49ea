"""Plain-text summary of a run: energy by device and phase, CO2e, and each number's origin."""

from __future__ import annotations

import math

from carbonmonitor.records import WORK_UNITS, EnergyFigure, RunResult, Uncertainty, pue_text


def energy_text(joules: float, like: float | None = None) -> str:
    """Joules in the unit a reader expects: J below 0.1 Wh (360 J), Wh below 1 kWh, then kWh;
    mJ and µJ below 1 J. ``like`` chooses the unit instead, so that the rows of one table share
    one; a value far smaller than ``like`` keeps three significant digits in it (``0.00365 Wh``,
    not ``0.004 Wh``)."""
    size = abs(joules if like is None else like)
    if size >= 3.6e6:
        number, unit = joules / 3.6e6, "kWh"
        text = f"{number:.3f}"
    elif size >= 360.0:
        number, unit = joules / 3600.0, "Wh"
        text = f"{number:.3f}"
    elif size >= 1 or joules == 0:
        number, unit = joules, "J"
        text = f"{number:.2f}"
    else:  # mJ or µJ, three significant digits; 1000 and over written out, never 3.24e+03
        scaled, unit = (joules * 1e3, "mJ") if size >= 1e-3 else (joules * 1e6, "µJ")
        return f"{sig3(scaled)} {unit}"
    if joules != 0 and abs(number) < 0.1:  # only with like=: a larger unit than the value's
        text = sig3(number)
    return f"{text} {unit}"


def mass_text(grams: float, like: float | None = None) -> str:
    """Grams of CO2e in kg, g, mg or µg, three significant digits (trailing zeros kept: 1.50 mg),
    never in e-notation.
    ``like`` chooses the unit instead (an interval's bounds in its value's unit), unless the
    value would need e-notation there."""
    if like is not None:
        unit, size = mass_unit(like)
        scaled = grams / size
        if scaled == 0 or 1e-3 <= abs(scaled):
            return f"{scaled:.3f} kg" if unit == "kg" else f"{sig3(scaled)} {unit}"
    size = abs(grams)
    if size >= 1000:
        return f"{grams / 1000:.3f} kg"
    if size >= 0.1 or size == 0:
        return f"{sig3(grams)} g"
    if size >= 1e-4:
        return f"{sig3(grams * 1e3)} mg"
    return f"{sig3(grams * 1e6)} µg"


def duration_text(seconds: float) -> str:
    """``42.0 s``, ``12.5 min``, ``3.20 h``."""
    if abs(seconds) >= 3600:
        return f"{seconds / 3600:.2f} h"
    if abs(seconds) >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def sig3(value: float) -> str:
    """Three significant digits with their trailing zeros (``0.100``, ``0.0868``, ``12.0``),
    whole numbers from 100 (``123``, ``4560``), never e-notation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 99.95:  # what rounds to 100 or more
        return f"{value:.0f}"
    digits = 2 - math.floor(math.log10(abs(value)))
    if abs(round(value, digits)) >= 10 ** (2 - digits + 1):  # 0.09996 rounds up to 0.100
        digits -= 1
    return f"{value:.{digits}f}"


def when_text(iso: str) -> str:
    """An ISO 8601 time in the reader's local time zone, to the minute (as given if it does
    not parse)."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


# The units the texts above end in, and the size of one in SI units (s, J, g).
TIME_UNITS = {"h": 3600.0, "min": 60.0, "s": 1.0}
ENERGY_UNITS = {"kWh": 3.6e6, "Wh": 3600.0, "J": 1.0, "mJ": 1e-3, "µJ": 1e-6}
MASS_UNITS = {"kg": 1000.0, "g": 1.0, "mg": 1e-3, "µg": 1e-6}


def energy_unit(joules: float) -> tuple[str, float]:
    """``(unit, joules per unit)`` that :func:`energy_text` writes ``joules`` in: for an axis or
    a column whose largest value is ``joules``."""
    unit = energy_text(joules).split()[-1]
    return unit, ENERGY_UNITS[unit]


def mass_unit(grams: float) -> tuple[str, float]:
    """``(unit, grams per unit)`` that :func:`mass_text` writes ``grams`` in."""
    unit = mass_text(grams).split()[-1]
    return unit, MASS_UNITS[unit]


def time_unit(seconds: float) -> tuple[str, float]:
    """``(unit, seconds per unit)`` that :func:`duration_text` writes ``seconds`` in."""
    unit = duration_text(seconds).split()[-1]
    return unit, TIME_UNITS[unit]


def _ml_lines(result: RunResult) -> list[str]:
    """Work units and per-unit costs, metrics, the forecast and its outcome, budget events."""
    lines = []
    costs = result.unit_costs
    if costs:
        lines.append("Per unit " + "; ".join(
            f"{energy_text(c.energy_j)}, {mass_text(c.co2e_g)} CO2e per {c.per}"
            for c in costs))
        counts = result.work
        if counts is not None:
            lines.append("  work     " + ", ".join(
                f"{getattr(counts, unit):,} {unit.replace('_', ' ')}" for unit in WORK_UNITS
                if getattr(counts, unit)))
            lines.extend(f"  note: {note}" for note in counts.notes)
    for m in result.metrics:  # quality metrics (a known direction); the rest named after
        if m.direction is not None:
            way = "best (max)" if m.direction == "higher" else "best (min)"
            lines.append(f"Metric   {m.name}: last {m.last:.4g}, {way} {m.best:.4g} "
                         f"({len(m.points)} value{'s' if len(m.points) != 1 else ''})")
    others = [m.name for m in result.metrics if m.direction is None]
    if others:
        lines.append(f"  also recorded: {', '.join(others)}")
    for f in result.forecasts:
        lines.append(f"Forecast {f.label + ': ' if f.label else ''}after {f.after:g} of "
                     f"{f.total:g} {f.unit}s: {duration_text(f.duration_s)}, "
                     f"{energy_text(f.energy_j)}, {mass_text(f.co2e_g)} CO2e "
                     f"[{mass_text(f.co2e_low_g, f.co2e_g)} .. "
                     f"{mass_text(f.co2e_high_g, f.co2e_g)}] ({f.rule})")
        o = f.outcome
        if o is not None:
            inside = "inside" if o.energy_contained and o.duration_contained else "OUTSIDE"
            errors = ", ".join(
                f"{name} {abs(err):.1%} too {'high' if err > 0 else 'low'}" for name, err in (
                    ("energy", o.energy_error), ("duration", o.duration_error))
                if err is not None)
            lines.append(f"  outcome  forecast {errors or 'not comparable'}; the actual figures "
                         f"lay {inside} its interval")
    lines.extend(f"  ! budget: {e.message}" for e in result.budget_events)
    return lines


def _interval(unc: Uncertainty, value: float, mass: bool = False) -> str:
    if mass:
        return f"[{mass_text(unc.low, value)} .. {mass_text(unc.high, value)}]"
    return f"[{energy_text(unc.low, value)} .. {energy_text(unc.high, value)}]"


def _figure_row(fig: EnergyFigure, width: int, total_j: float) -> str:
    return (f"  {fig.domain:<{width}} {energy_text(fig.energy_j, total_j):>11}  "
            f"{fig.mean_power_w:7.1f} W  {fig.method:<17} {fig.detail}")


def _attribution_lines(result: RunResult) -> list[str]:
    """The job's share (and the policy that gave it), the idle baseline, and their notes."""
    how = result.attribution
    if how is None:  # a result stored before attribution existed
        return []
    total = result.energy_j
    shares = ", ".join(f"{f.domain} {f.share:.0%}" for f in result.energy if f.share is not None)
    lines = [f"Job's    {energy_text(result.attributed_j, total)}  "
             f"({mass_text(result.attributed_co2e_g)} CO2e; attribution: {how.policy}"
             + (f": {shares}" if how.policy == "process" and shares else "") + ")"]
    idle = [f for f in result.energy if f.idle_j is not None]
    if idle:
        idle_j = sum(f.idle_j or 0.0 for f in idle)
        dynamic_j = sum(f.dynamic_j or 0.0 for f in idle)
        lines.append(f"Idle     {energy_text(idle_j, total)}, dynamic "
                     f"{energy_text(dynamic_j, total)} of {', '.join(f.domain for f in idle)} "
                     f"(baseline {how.idle})")
    lines.extend(f"  note: {note}" for note in how.notes)
    return lines


def _more_emissions(result: RunResult) -> list[str]:
    """Time-resolved bins, the market-based figure and embodied emissions, when present."""
    em, lines = result.emissions, []
    spread = em.factor_spread
    if spread is not None:
        bounds = f"{spread.low_g_per_kwh:.4g} .. {spread.high_g_per_kwh:.4g} g/kWh"
        lines.append(f"  factor     {bounds} in any hour, around the yearly "
                     f"{em.intensity_g_per_kwh:.4g} ({spread.rule}: {spread.basis})"
                     if not em.time_resolved else
                     f"  factor     hours without provider data: {bounds} ({spread.rule})")
    if em.time_resolved:
        fallback = sum(1 for b in em.hourly if b.source.startswith("fallback"))
        lines.append(f"  hourly     {len(em.hourly)} bins from {em.time_resolved}"
                     + (f" ({fallback} on the static factor)" if fallback else ""))
    if em.market_co2e_g is not None:
        lines.append(f"  market-based {mass_text(em.market_co2e_g)} at your contract's "
                     f"{em.market_factor_g_per_kwh:g} g/kWh (location-based above)")
    if result.embodied is not None:
        lines.append(f"Embodied {mass_text(result.embodied.co2e_g)} CO2e, apart from the "
                     f"operational figure: {'; '.join(result.embodied.parts)}")
    return lines


def format_summary(result: RunResult) -> str:
    """A multi-line summary, the one printed by ``carbonmonitor run``.

    Example:
        >>> import carbonmonitor
        >>> with carbonmonitor.track(backend="fake", quiet=True) as run:
        ...     pass
        >>> "CO2e" in carbonmonitor.format_summary(run.result)
        True
    """
    ident, em, inten = result.identity, result.emissions, result.intensity
    width = max([len(f.domain) for f in result.energy] + [6])
    lines = [
        f"carbonmonitor: run {ident.run_id} {ident.name!r} (project {ident.project}) "
        f"{result.status} in {result.duration_s:.1f} s",
        f"Energy  {energy_text(result.energy_j)}  "
        f"{_interval(result.energy_uncertainty, result.energy_j)}  "
        f"mean {result.mean_power_w:.1f} W  (scope: machine)",
        *(_figure_row(f, width, result.energy_j) for f in result.energy),
        *_attribution_lines(result),
        f"CO2e    {mass_text(em.co2e_g)}  {_interval(em.uncertainty, em.co2e_g, mass=True)}  = "
        f"{em.energy_kwh * 1000:.4g} Wh x PUE {pue_text(em.pue)} x "
        f"{em.intensity_g_per_kwh:g} g/kWh",
        f"  intensity  {inten.g_per_kwh:g} g/kWh, {inten.zone_name} ({inten.zone}) {inten.year}"
        f"{' preliminary' if inten.preliminary else ''}, {inten.basis}; {inten.source} "
        f"[{inten.licence}]",
        f"  {result.pue.describe()}",
        f"  location   {result.location.describe()}",
        *_more_emissions(result),
        *_ml_lines(result),
    ]
    if result.phases:
        pw = max(len(p.name) for p in result.phases)
        lines.append(f"Phases  {'':<{pw}}  count       time       energy  share")
        total = result.energy_j or 1.0
        for p in result.phases:
            lines.append(f"  {p.name:<{pw}}  {p.count:>6} {p.duration_s:>9.2f} s "
                         f"{energy_text(p.energy_j, result.energy_j):>12}  "
                         f"{100 * p.energy_j / total:4.0f}%")
    unused = [b for b in result.backends if not b.used]
    if unused:
        lines.append("Backends not used: " + "; ".join(f"{b.name} ({b.reason})" for b in unused))
    for flag in result.flags:
        fix = f" Fix: {flag.fix}" if flag.fix else ""
        lines.append(f"  ! {flag.code}: {flag.message}.{fix}")
    return "\n".join(lines)


__all__ = ["duration_text", "energy_text", "format_summary", "mass_text"]
