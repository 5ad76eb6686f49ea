"""What a report says, as plain text in tables: one model that the HTML and Markdown renderers
both draw, so the two formats show the same numbers. Nothing here is escaped: each renderer
escapes every cell for its own format.

Numbers are formatted by :mod:`carbonmonitor.summary`, so a report agrees with the summary
``carbonmonitor run`` and ``show`` print.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carbonmonitor._version import __version__
from carbonmonitor.records import WORK_UNITS, RunResult, Uncertainty, Work, pue_text
from carbonmonitor.report.citation import citation
from carbonmonitor.summary import duration_text, energy_text, mass_text

__all__ = ["Report", "Table", "build_report"]


@dataclass(frozen=True)
class Table:
    """A titled table of text cells; ``note`` is a line shown under it."""

    key: str  # a stable id ("energy", "phases", ...), used as the HTML section id
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Report:
    """A run's report: title, identity facts, headline figures, tables, flags, citation."""

    title: str
    facts: tuple[tuple[str, str], ...]
    headline: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]
    flags: tuple[tuple[str, str, str], ...]  # (code, message, fix)
    citation: str


def interval(unc: Uncertainty, value: float, *, mass: bool = False) -> str:
    """``[a .. b]`` as the summary writes it (energies in the unit of ``value``)."""
    if mass:
        return f"[{mass_text(unc.low, value)} .. {mass_text(unc.high, value)}]"
    return f"[{energy_text(unc.low, value)} .. {energy_text(unc.high, value)}]"


def work_text(work: Work | None) -> str:
    """``1,000 samples, 8 steps``: the units counted (empty when none)."""
    if not work:
        return ""
    return ", ".join(f"{getattr(work, unit):,} {unit.replace('_', ' ')}" for unit in WORK_UNITS
                     if getattr(work, unit))


def build_report(result: RunResult, series: Any = None) -> Report:
    """Everything a report on ``result`` shows, as text (``series``, the run's stored time
    series, lets the advice look at power over time)."""
    ident = result.identity
    tables = [_energy_table(result), _phase_table(result), _metric_table(result),
              _forecast_table(result), _budget_table(result), _advice_table(result, series),
              _provenance_table(result)]
    return Report(
        title=f"Carbon report: {ident.name}",
        facts=_facts(result),
        headline=_headline(result),
        tables=tuple(t for t in tables if t.rows),
        flags=tuple((f.code, f.message, f.fix) for f in result.flags),
        citation=citation(result))


def _facts(result: RunResult) -> tuple[tuple[str, str], ...]:
    ident = result.identity
    facts = [("Run", ident.name), ("Run id", ident.run_id), ("Project", ident.project),
             ("Status", result.status + (f" (exit code {result.exit_code})"
                                         if result.exit_code is not None else "")
              + (": still measuring; this report covers it up to its last write"
                 if result.status == "running" else "")),
             ("Started", ident.started_at),
             ("Last written" if result.status == "running" else "Ended",
              result.ended_at or "not yet"),
             ("Tags", ", ".join(ident.tags)),
             ("Params", ", ".join(f"{k}={v}" for k, v in ident.params.items())),
             ("Host", ident.host)]
    return tuple((k, v) for k, v in facts if v)


def _headline(result: RunResult) -> tuple[tuple[str, str], ...]:
    em = result.emissions
    rows = [("Energy", f"{energy_text(result.energy_j)} "
                       f"{interval(result.energy_uncertainty, result.energy_j)}"),
            ("CO2e", f"{mass_text(em.co2e_g)} {interval(em.uncertainty, em.co2e_g, mass=True)}"
                     " (location-based)"),
            ("Duration", duration_text(result.duration_s)),
            ("Mean power", f"{result.mean_power_w:.1f} W")]
    if em.market_co2e_g is not None:
        rows.append(("CO2e, market-based", f"{mass_text(em.market_co2e_g)} at "
                                           f"{em.market_factor_g_per_kwh:g} g/kWh"))
    if result.embodied is not None:
        rows.append(("Embodied CO2e (apart)", mass_text(result.embodied.co2e_g)))
    rows.extend((f"Per {c.per}", f"{energy_text(c.energy_j)}, {mass_text(c.co2e_g)} CO2e")
                for c in result.unit_costs)
    return tuple(rows)


def _energy_table(result: RunResult) -> Table:
    total = result.energy_j
    rows = tuple((f.domain, f.device, f.backend, f.method, energy_text(f.energy_j, total),
                  f"{f.mean_power_w:.1f} W", interval(f.uncertainty, total), f.uncertainty.rule,
                  "" if f.share is None else f"{f.share:.0%}", f.detail)
                 for f in result.energy)
    how, notes = result.attribution, []
    if how is not None:
        notes.append(f"Attribution: {how.policy}")
        if how.idle:
            notes.append(f"idle baseline {how.idle}")
        notes.extend(how.notes)
    return Table("energy", "Energy by device",
                 ("Domain", "Device", "Backend", "Method", "Energy", "Mean power", "Interval",
                  "Uncertainty rule", "Job's share", "Detail"), rows, "; ".join(notes))


def _phase_table(result: RunResult) -> Table:
    total = result.energy_j or 1.0
    rows = tuple((p.name, f"{p.count}", f"{p.duration_s:.2f} s",
                  energy_text(p.energy_j, result.energy_j),
                  mass_text(result.phase_co2e_g(p.name)), f"{100 * p.energy_j / total:.0f}%",
                  work_text(p.work)) for p in result.phases)
    return Table("phases", "Phases", ("Phase", "Count", "Time", "Energy", "CO2e", "Share",
                                      "Work"), rows,
                 "Nested phases (a/b) are inside their parent; CO2e at the run's mean factor.")


def _metric_table(result: RunResult) -> Table:
    rows = tuple((m.name, {"higher": "higher is better", "lower": "lower is better",
                           None: "unknown"}[m.direction],
                  "" if m.last is None else f"{m.last:.4g}",
                  "-" if m.best is None or m.direction is None else f"{m.best:.4g}",
                  f"{len(m.points)}")
                 for m in result.metrics)
    return Table("metrics", "Metrics", ("Metric", "Direction", "Last", "Best", "Values"), rows)


def _forecast_table(result: RunResult) -> Table:
    rows = []
    for f in result.forecasts:
        o = f.outcome
        if o is None:
            outcome = "no outcome (the run did not complete its units)"
        else:
            errors = ", ".join(
                f"{name} {abs(err):.1%} too {'high' if err > 0 else 'low'}" for name, err in (
                    ("energy", o.energy_error), ("duration", o.duration_error),
                    ("CO2e", o.co2e_error)) if err is not None)
            inside = "inside" if o.energy_contained and o.duration_contained else "OUTSIDE"
            outcome = (f"forecast {errors or 'not comparable'}; the actual figures lay "
                       f"{inside} its interval")
        rows.append((f.label or "run", f"{f.after:g} of {f.total:g} {f.unit}s",
                     f"{duration_text(f.duration_s)} [{duration_text(f.duration_low_s)} .. "
                     f"{duration_text(f.duration_high_s)}]",
                     f"{energy_text(f.energy_j)} [{energy_text(f.energy_low_j, f.energy_j)} .. "
                     f"{energy_text(f.energy_high_j, f.energy_j)}]",
                     f"{mass_text(f.co2e_g)} [{mass_text(f.co2e_low_g, f.co2e_g)} .. "
                     f"{mass_text(f.co2e_high_g, f.co2e_g)}]", f.rule, outcome))
    return Table("forecasts", "Forecasts and outcomes",
                 ("Training", "Made after", "Duration", "Energy", "CO2e", "Rule", "Outcome"),
                 tuple(rows))


def _budget_table(result: RunResult) -> Table:
    rows = tuple((e.limit, e.on, e.action, f"{e.value:.4g}", f"{e.threshold:.4g}",
                  duration_text(e.at_s), e.message) for e in result.budget_events)
    return Table("budgets", "Budget events", ("Limit", "On", "Action", "Value", "Threshold",
                                              "At", "Message"), rows)


ADVICE_COLUMNS = ("Advice", "Evidence", "Saving", "Confidence", "Action", "Caveats")


def _advice_table(result: RunResult, series: Any) -> Table:
    """What would cut the footprint (carbonmonitor.advice), largest saving first; a report
    without advice says nothing (the rules' thresholds are in docs/advice.md)."""
    from carbonmonitor.advice import advise

    try:
        items = advise(result, series)
    except Exception as err:  # advice is a reading of the numbers; a report never fails for it
        return Table("advice", "Advice", ADVICE_COLUMNS, (
            ("Advice could not be computed", f"{type(err).__name__}: {err}", "-", "-",
             f"`carbonmonitor advice {result.identity.run_id}` shows the error", "-"),),
            note="No advice is not the same as nothing to advise: this is a carbonmonitor "
                 "bug; please report it with the run's JSON (carbonmonitor show RUN --json).")
    rows = tuple((a.title, a.evidence,
                  f"{mass_text(a.saving.co2e_g, result.co2e_g)} CO2e ({a.saving.pct:.0f} %): "
                  f"{a.saving.how}" if a.saving else f"not estimated: {a.no_saving}",
                  a.confidence, a.action, "; ".join(a.caveats) or "-") for a in items)
    return Table("advice", "Advice", ADVICE_COLUMNS, rows,
                 note="Each item's numbers come from this run; thresholds: docs/advice.md.")


def _provenance_table(result: RunResult) -> Table:
    ident, inten, em = result.identity, result.intensity, result.emissions
    rows = [("Intensity", f"{inten.g_per_kwh:g} g/kWh"),
            ("Intensity zone", f"{inten.zone_name} ({inten.zone})"),
            ("Intensity year", f"{inten.year}" + (" (preliminary)" if inten.preliminary else "")),
            ("Intensity basis", inten.basis),
            ("Intensity source", f"{inten.source} (table {inten.table})"),
            ("Intensity licence", inten.licence),
            ("PUE", f"{pue_text(result.pue.value)} ({result.pue.kind})"),
            ("PUE source", result.pue.source + (f", {result.pue.year}" if result.pue.year
                                                else "")),
            ("CO2e formula", f"{em.energy_kwh * 1000:.4g} Wh x PUE {pue_text(em.pue)} x "
                             f"{em.intensity_g_per_kwh:g} g/kWh")]
    spread = em.factor_spread
    if spread is not None:
        rows.append(("Factor spread", f"{spread.low_g_per_kwh:.4g} .. "
                     f"{spread.high_g_per_kwh:.4g} g/kWh ({spread.rule}: {spread.basis})"))
    if em.time_resolved:
        rows.append(("Hourly factors", f"{len(em.hourly)} bins from {em.time_resolved}"))
    if result.embodied is not None:
        rows.append(("Embodied", f"{mass_text(result.embodied.co2e_g)} "
                                 f"({result.embodied.rule}): {'; '.join(result.embodied.parts)}"))
    rows.append(("Location", result.location.describe()))
    rows.extend((f"Backend used: {b.name}", ", ".join(b.devices) or "-")
                for b in result.backends if b.used)
    rows.extend((f"Backend not used: {b.name}", b.reason + (f" Fix: {b.fix}" if b.fix else ""))
                for b in result.backends if not b.used)
    rows.append(("Measured with", f"carbonmonitor {ident.carbonmonitor_version}"
                 + ("" if ident.carbonmonitor_version == __version__
                    else f" (report by {__version__})")))
    if ident.git is not None:
        dirty = {True: ", uncommitted changes", False: ", clean", None: ""}[ident.git.dirty]
        rows.append(("Git commit", f"{ident.git.commit} on {ident.git.branch or 'detached HEAD'}"
                                   f"{dirty}"))
    rows.append(("Samples", f"{result.sample_count}"))
    rows.append(("Software", f"{ident.python} on {ident.platform}"))
    return Table("provenance", "Provenance", ("Item", "Value"), tuple(rows))


def stored_series(result: RunResult) -> Any:
    """The run's stored time series, or None when it was not stored or cannot be read."""
    from carbonmonitor.errors import CarbonMonitorError
    from carbonmonitor.plot.figures import _series

    try:
        return _series(result, None)
    except (CarbonMonitorError, OSError, ImportError):
        return None
