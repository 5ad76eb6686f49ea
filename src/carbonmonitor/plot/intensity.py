"""The intensity figure: the carbon intensity of the electricity over the run.

Artists that hold data have SVG ids: ``intensity`` (the step line), ``intensity-band`` (the
yearly factor's hourly range), ``intensity-fallback-<i>`` (hours on the static factor).
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from typing import TYPE_CHECKING

from carbonmonitor._version import __version__
from carbonmonitor.plot import _mpl
from carbonmonitor.plot._mpl import gid, text
from carbonmonitor.plot.data import IntensityStep, intensity_steps
from carbonmonitor.plot.figures import LINE, NOTE, OUTSIDE, PathLike, _footer, result_of
from carbonmonitor.records import RunResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["intensity_figure"]

UNIT = "g CO2e/kWh"


def intensity_figure(run: RunResult | str, *, db: PathLike | None = None,
                     path: PathLike | None = None) -> Figure:
    """The intensity over the run: each hourly bin's factor as a step line when the run was
    accounted hour by hour (hours the provider had no data for marked), else the yearly
    factor as a flat line with its hourly range as a band and a note that no hourly data
    was used. The axis names the source, year and basis.

    Args: as :func:`~carbonmonitor.plot.device_figure`.

    Example:
        >>> import carbonmonitor, carbonmonitor.plot
        >>> with carbonmonitor.track(backend="fake", db="off", quiet=True, country="FR") as run:
        ...     pass
        >>> carbonmonitor.plot.figure_data(intensity_figure(run.result))["hourly"]
        False
    """
    out = _mpl.check_path(path)
    result = result_of(run, db)
    steps = intensity_steps(result)
    em = result.emissions
    hourly = bool(em.hourly)
    fig = _mpl.new_figure(figsize=(11.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    lo_s = min((s.start_s for s in steps), default=0.0)
    hi_s = max((s.end_s for s in steps), default=0.0)
    tunit, tsize = _mpl.time_unit(max(hi_s - lo_s, abs(lo_s), hi_s))
    edges, values = _stairs(steps)
    ax.stairs(values, [e / tsize for e in edges], baseline=None, color=LINE, linewidth=2.0,
              label="hourly factor" if hourly else "yearly factor, every hour",
              gid="intensity")
    spread = em.factor_spread
    top = max((s.g_per_kwh for s in steps), default=0.0)
    if hourly:
        for i, s in enumerate(st for st in steps if st.fallback):
            ax.axvspan(s.start_s / tsize, s.end_s / tsize, facecolor=OUTSIDE, alpha=0.25,
                       hatch="//", edgecolor=NOTE, linewidth=0,
                       label="no provider data: static factor" if i == 0 else None,
                       gid=gid("intensity-fallback", str(i)))
        note = (f"Hourly factors from {em.time_resolved}; "
                f"{sum(1 for s in steps if s.fallback)} of {len(steps)} bins on the static "
                "factor")
    else:
        if spread is not None:
            ax.fill_between([e / tsize for e in edges[:2]], spread.low_g_per_kwh,
                            spread.high_g_per_kwh, color=LINE, alpha=0.12, linewidth=0,
                            label=f"hourly range ({spread.rule})", gid="intensity-band")
            top = max(top, spread.high_g_per_kwh)
        note = ("No hourly intensity data was used: the yearly factor applies to every hour"
                + ("" if spread is not None else " (no hourly range known for this zone)"))
    ax.text(0.01, 0.97, note, transform=ax.transAxes, fontsize=8, color=NOTE, ha="left",
            va="top", bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85},
            gid="intensity-note")
    label = _axis_label(result)
    ax.set_ylabel("\n".join(textwrap.wrap(text(label), width=60)), fontsize=9)
    ax.set_ylim(0, top * 1.25 or 1.0)  # room for the note over the line
    ax.set_xlim(lo_s / tsize, hi_s / tsize if hi_s > lo_s else lo_s / tsize + 1.0)
    ax.set_xlabel(f"Time since start ({tunit})")
    ax.set_title(text(f"Carbon intensity over the run: {result.identity.name}"), loc="left",
                 fontweight="bold")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    _footer(fig, _mpl.footnote([result]))
    _mpl.attach(fig, {
        "kind": "intensity", "carbonmonitor": __version__, "run_id": result.identity.run_id,
        "hourly": hourly, "label": label, "note": note,
        "steps": [dataclasses.asdict(s) | {"fallback": s.fallback} for s in steps],
        "factor_spread": dataclasses.asdict(spread) if spread is not None else None,
        "units": {"time": [tunit, tsize], "intensity": [UNIT, 1.0]}})
    if out is not None:
        _mpl.save_figure(fig, out)
    return fig


def _stairs(steps: list[IntensityStep]) -> tuple[list[float], list[float]]:
    """Edges and values for a step line; a gap between two bins is NaN (no line)."""
    edges: list[float] = []
    values: list[float] = []
    for s in steps:
        if edges and s.start_s > edges[-1]:
            values.append(math.nan)
            edges.append(s.start_s)
        elif not edges:
            edges.append(s.start_s)
        values.append(s.g_per_kwh)
        edges.append(s.end_s)
    return edges, values


def _axis_label(result: RunResult) -> str:
    """``Intensity (g CO2e/kWh) · <basis>, <source> <year>, <zone>``."""
    em, inten = result.emissions, result.intensity
    if em.hourly:
        years = sorted({h.start[:4] for h in em.hourly})
        year = years[0] if len(years) == 1 else f"{years[0]}-{years[-1]}"
        where = f"{em.time_resolved} hourly {year}, {inten.zone_name}"
    else:
        where = (f"{inten.source} {inten.year}{' preliminary' if inten.preliminary else ''}, "
                 f"{inten.zone_name}")
    return f"Intensity ({UNIT}) · {em.basis}, {where}"
