"""The figures: a run's carbon impact (by phase, over time, elsewhere) and power by device.

Each figure function returns a matplotlib ``Figure`` (drawn by the Agg canvas, no display
needed) carrying the numbers it plots (:func:`~carbonmonitor.plot.figure_data`); artists that
hold data have SVG ids (``gid``) such as ``cumulative-co2e-<run id>`` or ``power-cpu``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from carbonmonitor._version import __version__
from carbonmonitor.errors import ConfigError, StoreError
from carbonmonitor.plot import _mpl
from carbonmonitor.plot._mpl import gid, text
from carbonmonitor.plot.data import (
    OUTSIDE_PHASES,
    Stage,
    cumulative_co2e,
    phase_breakdown,
    power_series,
    run_stages,
    total_power,
)
from carbonmonitor.plot.whatif import DEFAULT_PLACES, Place, PlaceImpact, what_if
from carbonmonitor.records import RunResult, pue_text
from carbonmonitor.store import Series
from carbonmonitor.summary import duration_text, energy_text, mass_text, sig3

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

__all__ = ["impact_figure", "power_figure"]

Runs = RunResult | str | Sequence[RunResult | str]
PathLike = str | os.PathLike[str]

# Colour-blind-safe (Okabe-Ito) for phases and runs; the run's own place stands out in vermilion.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
OUTSIDE = "#B0B0B0"
OWN = "#D55E00"
OTHER = "#9AA5B1"
LINE = "#1B3A57"
POWER = "#7F7F7F"
NOTE = "#555555"
ERROR = "#222222"     # the energy interval: the error bar proper
ENVELOPE = "#A8A8A8"  # with the emission factor's hourly spread: lighter and thinner
LABEL_BOX = {"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none",
             "alpha": 0.85}


def impact_figure(runs: Runs, *, places: Sequence[Place] = DEFAULT_PLACES,
                  series: Series | Sequence[Series] | None = None,
                  db: PathLike | None = None, path: PathLike | None = None) -> Figure:
    """The carbon impact of a run (or of several runs, as stages of one job), in three panels:
    (a) CO2e by top-level phase (or by run) with its interval, (b) cumulative CO2e and power
    over time with the phases shaded, (c) the same energy at other ``places``, on one
    intensity basis, the run's own place highlighted (no panel when ``places`` is empty).

    Args:
        runs: a result, a run id (or unique prefix, or ``"last"``), or a list of them.
        places: see :mod:`carbonmonitor.plot.whatif`; default :data:`DEFAULT_PLACES`.
        series: the runs' time series, one per run; default: read from the store.
        db: the store to read ids and series from; default: where each run was recorded.
        path: also save the figure there (``.png`` or ``.svg``).

    Raises:
        ImportError: matplotlib is missing (the message says ``pip install
            'carbonmonitor[plot]'``).
        ConfigError: a bad suffix or place. StoreError: a run or its series is not stored.

    Example:
        >>> import tempfile, carbonmonitor.plot
        >>> db = tempfile.mkdtemp() + "/runs.db"
        >>> with carbonmonitor.track(backend="fake", db=db, quiet=True, country="DE") as run:
        ...     with run.phase("train"):
        ...         pass
        >>> fig = impact_figure(run.result, places=["country:FR"])
        >>> [p["label"] for p in carbonmonitor.plot.figure_data(fig)["what_if"]]
        ['France', 'Germany']
    """
    out = _mpl.check_path(path)
    pairs = _inputs(runs, series, db)
    results = [r for r, _ in pairs]
    impacts = what_if(results, places) if places else []
    fig = _mpl.new_figure(figsize=(13.0, 9.5) if impacts else (13.0, 5.5), layout="constrained")
    mosaic = "ac;bb" if impacts else "ab"
    axes = fig.subplot_mosaic(mosaic, width_ratios=[1.0, 1.35] if impacts else [1.0, 2.0])
    one = len(results) == 1
    stages = _stages(results)
    colours = _colours([s.label for s in stages])
    data: dict[str, Any] = {"kind": "impact", "carbonmonitor": __version__,
                            "run_ids": [r.identity.run_id for r in results]}
    by_phase = one and bool(phase_breakdown(results[0]))
    _stage_panel(axes["a"], stages, colours, "phase" if by_phase else "run", data)
    labels = _timeline_panel(axes["b"], pairs, colours, data)
    extra = []
    if impacts:
        _what_if_panel(axes["c"], impacts, data)
        extra.append("what-if: same energy re-accounted with " + ", ".join(
            sorted({f"{p.source} {p.year}" for p in impacts})))
    fig.suptitle(_title(results), fontsize=13, fontweight="bold")
    _footer(fig, _mpl.footnote(results, extra))
    _fit_span_labels(fig, axes["b"], labels)
    _mpl.attach(fig, data)
    if out is not None:
        _mpl.save_figure(fig, out)
    return fig


def power_figure(run: RunResult | str, series: Series | None = None, *,
                 db: PathLike | None = None, path: PathLike | None = None) -> Figure:
    """Power over time per device (mean power over each sample interval), phases shaded.

    Args: as :func:`impact_figure`, for one run.

    Example:
        >>> import tempfile, carbonmonitor.plot
        >>> db = tempfile.mkdtemp() + "/runs.db"
        >>> with carbonmonitor.track(backend="fake", db=db, quiet=True) as run:
        ...     pass
        >>> sorted(carbonmonitor.plot.figure_data(power_figure(run.result))["power"])
        ['cpu', 'memory']
    """
    out = _mpl.check_path(path)
    ((result, stored),) = _inputs(run, series, db)
    fig = _mpl.new_figure(figsize=(11.0, 5.0), layout="constrained")
    ax = fig.add_subplot()
    traces = power_series(stored)
    tunit, tsize = _mpl.time_unit(_duration(result, stored))
    peak_w = max((w for _, ws in traces.values() for w in ws if math.isfinite(w)), default=0.0)
    punit, psize = _mpl.power_unit(peak_w)
    figures = {f.domain: f for f in result.energy}
    for i, (domain, (t_s, watts)) in enumerate(traces.items()):
        figure = figures.get(domain)
        how = (f": {figure.mean_power_w:.3g} W mean, {figure.method} ({figure.backend})"
               if figure is not None else "")
        if len(t_s) >= 2:
            ax.stairs([w / psize for w in watts], [t / tsize for t in t_s], baseline=None,
                      color=PALETTE[i % len(PALETTE)], linewidth=1.8,
                      label=text(domain + how), gid=gid("power", domain))
    _, labels = _shade_spans(ax, stored.spans, tsize, _colours(_phase_names(result)))
    ax.set_ylim(0, peak_w / psize * 1.12 or 1.0)  # room for the phase names at the top
    ax.set_xlim(left=0)
    ax.set_xlabel(f"Time since start ({tunit})")
    ax.set_ylabel(f"Power ({punit})")
    ax.set_title(text(f"Power by device: {result.identity.name}"), loc="left",
                 fontweight="bold")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    _footer(fig, _mpl.footnote([result]))
    _fit_span_labels(fig, ax, labels)
    _mpl.attach(fig, {
        "kind": "power", "carbonmonitor": __version__, "run_id": result.identity.run_id,
        "units": {"time": [tunit, tsize], "power": [punit, psize]},
        "power": {d: {"t_s": t, "power_w": w} for d, (t, w) in traces.items()},
        "spans": [list(s) for s in stored.spans]})
    if out is not None:
        _mpl.save_figure(fig, out)
    return fig


# -- inputs --------------------------------------------------------------------------------


def _inputs(runs: Runs, series: Series | Sequence[Series] | None,
            db: PathLike | None) -> list[tuple[RunResult, Series]]:
    from carbonmonitor.store import load

    items = [runs] if isinstance(runs, (RunResult, str)) else list(runs)
    if not items:
        raise ConfigError("no run to plot: pass a RunResult, a run id or a list of them")
    given = [series] if isinstance(series, Series) else list(series or [])
    if given and len(given) != len(items):
        raise ConfigError(f"series= gives {len(given)} series for {len(items)} runs. Fix: "
                          "pass one series per run, in the same order, or none")
    out = []
    for i, item in enumerate(items):
        result = item if isinstance(item, RunResult) else load(item, db=_db(db))
        out.append((result, given[i] if given else _series(result, db)))
    return out


def result_of(run: RunResult | str, db: PathLike | None) -> RunResult:
    """``run`` itself, or the stored run with that id (or prefix, or ``"last"``)."""
    from carbonmonitor.store import load

    return run if isinstance(run, RunResult) else load(run, db=_db(db))


def _db(db: PathLike | None) -> str | None:
    return None if db is None else os.fspath(db)


def _series(result: RunResult, db: PathLike | None) -> Series:
    """The run's stored series, from ``db`` or the store the run was recorded in."""
    from carbonmonitor.store import series

    entry = result.options.get("db")
    where = _db(db) if db is not None else (entry.get("value") if isinstance(entry, dict)
                                            else None)
    run_id = result.identity.run_id
    if where == "off":
        raise StoreError(f"run {run_id} was not stored (db='off'), so its time series was not "
                         "kept. Fix: record the run in a store (db=PATH) to plot it over time, "
                         "or pass series=")
    try:
        return series(run_id, db=where)
    except StoreError as err:
        raise StoreError(f"{err}. The figure needs the run's time series: pass db= (the store "
                         "the run was recorded in) or series=") from err


def _duration(result: RunResult, stored: Series) -> float:
    return max(result.duration_s, max(stored.t_s, default=0.0))


def _stages(results: Sequence[RunResult]) -> list[Stage]:
    if len(results) == 1:
        stages = phase_breakdown(results[0])
        if stages:
            return stages
    return run_stages(results)


def _phase_names(result: RunResult) -> list[str]:
    return [p.name for p in result.phases if "/" not in p.name]


def _colours(labels: Sequence[str]) -> dict[str, str]:
    out = {OUTSIDE_PHASES: OUTSIDE}
    for label in labels:
        if label not in out:
            out[label] = PALETTE[(len(out) - 1) % len(PALETTE)]
    return out


def _title(results: Sequence[RunResult]) -> str:
    co2e = sum(r.co2e_g for r in results)
    energy = sum(r.energy_j for r in results)
    seconds = sum(r.duration_s for r in results)
    tunit, tsize = _mpl.time_unit(seconds)
    head = (f"Carbon impact of {results[0].identity.name}" if len(results) == 1 else
            f"Carbon impact of {len(results)} runs: "
            + ", ".join(r.identity.name for r in results[:4]) + (" ..." if len(results) > 4
                                                                  else ""))
    where = sorted({"location unknown (world average)" if r.location.status == "unknown"
                    else r.location.describe() for r in results})
    return text(f"{head}\n{mass_text(co2e)} CO2e · {energy_text(energy)} · "
                f"{duration_text(seconds)} · {'; '.join(where)}")


def _footer(fig: Figure, note: str) -> None:
    """The provenance note under the panels, with room kept for it by the layout."""
    lines = note.count("\n") + 1
    height_in = fig.get_figheight()
    share = (lines * 7 * 1.4 + 10) / 72 / height_in
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.set(rect=(0.0, share, 1.0, 1.0 - share))  # type: ignore[call-arg]
    fig.text(0.01, 0.008, note, fontsize=7, color=NOTE, ha="left", va="bottom")


def _mass(grams: float, unit: str, size: float) -> str:
    return f"{sig3(grams / size)} {unit}"


# -- panels --------------------------------------------------------------------------------


def _stage_panel(ax: Axes, stages: Sequence[Stage], colours: dict[str, str], what: str,
                 data: dict[str, Any]) -> None:
    """(a) CO2e per stage with its interval, labelled with energy and share, one unit each."""
    unit, size = _mpl.mass_unit(max(s.co2e_high_g for s in stages))
    eunit, esize = _mpl.energy_unit(max(s.energy_j for s in stages))
    xs = list(range(len(stages)))
    bars = ax.bar(xs, [s.co2e_g / size for s in stages], width=0.6,
                  color=[colours.get(s.label, OUTSIDE) for s in stages])
    spread = _intervals(ax, xs, [(s.co2e_g, s.co2e_energy_low_g, s.co2e_energy_high_g,
                                  s.co2e_low_g, s.co2e_high_g) for s in stages], size, "y")
    shares = _shares([s.co2e_g for s in stages])
    tops = [max(s.co2e_energy_high_g, s.co2e_g) for s in stages]
    raised = _raised_labels(tops)
    for i, (bar, s, share) in enumerate(zip(bars, stages, shares, strict=True)):
        bar.set_gid(gid("stage", str(i)))
        ax.annotate(f"{_mass(s.co2e_g, unit, size)}\n{sig3(s.energy_j / esize)} {eunit} · {share}",
                    (i, tops[i] / size), xytext=(0, 27 if raised[i] else 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8,
                    bbox=LABEL_BOX, zorder=4, gid=gid("stage-label", str(i)))
    long = max(len(s.label) for s in stages) > 12 and len(stages) > 2
    ax.set_xticks(xs, [text(s.label) for s in stages], rotation=20 if long else 0,
                  ha="right" if long else "center")
    _stage_limit(ax, stages, unit, size, data)
    ax.set_ylabel(f"CO2e ({unit})")
    ax.set_title(f"(a) CO2e by {what}" + ("" if spread else " (error bars: interval)"),
                 loc="left")
    if spread:  # said under the axis, where it covers no bar, label or cut mark
        ax.set_xlabel("error bars: dark, the interval from energy; light, with the emission "
                      "factor's hourly range", fontsize=7, color=NOTE)
    ax.grid(axis="y", alpha=0.3)
    data["stages"] = [dataclasses.asdict(s) for s in stages]
    units = data.setdefault("units", {})
    units["stages_co2e"] = [unit, size]
    units["stages_energy"] = [eunit, esize]


def _raised_labels(tops: Sequence[float]) -> list[bool]:
    """Which bar labels go one label higher: with four bars or more the labels are wider than
    a bar's slot, so of two neighbours at about the same height (within 12 % of the tallest)
    the second is raised, and they never sit side by side."""
    raised = [False] * len(tops)
    ref = max(tops, default=0.0) or 1.0
    if len(tops) < 4:
        return raised
    for i in range(1, len(tops)):
        raised[i] = not raised[i - 1] and abs(tops[i] - tops[i - 1]) < 0.12 * ref
    return raised


STAGE_HEADROOM = 1.45
"""Panel (a)'s height is at most this x the tallest bar with its energy interval: the factor's
hourly range (up to x2.4 for some grids) would otherwise squeeze the bars into its bottom third.
A whisker cut there ends in an arrow with its top value."""


def _stage_limit(ax: Axes, stages: Sequence[Stage], unit: str, size: float,
                 data: dict[str, Any]) -> None:
    energy_top = max(max(s.co2e_energy_high_g, s.co2e_g) for s in stages)
    whole_top = max(s.co2e_high_g for s in stages) * 1.08  # room for the labels
    limit = max(min(whole_top, energy_top * STAGE_HEADROOM), energy_top * 1.3) or size
    ax.set_ylim(0, limit / size)
    cut = [i for i, s in enumerate(stages) if s.co2e_high_g > limit]
    for i in cut:
        ax.annotate(f"↑ {_mass(stages[i].co2e_high_g, unit, size)}", (i, 1.0),
                    xycoords=("data", "axes fraction"), xytext=(0, -2),
                    textcoords="offset points", ha="center", va="top", fontsize=7,
                    color="#6E6E6E", bbox=LABEL_BOX, zorder=4,
                    gid=gid("stage-cut", str(i)))
    data["stages_cut"] = cut


def _intervals(ax: Axes, at: Sequence[float], values: Sequence[tuple[float, ...]], size: float,
               axis: str, offset: float = 0.0) -> bool:
    """Error bars at ``at`` for ``(co2e, energy low, energy high, low, high)`` grams: the
    energy interval dark, the whole interval (with the factor's hourly spread) light and thin,
    behind it or ``offset`` beside it. True when the factor's spread shows (it then has a
    legend line)."""
    def bounds(lo: int, hi: int) -> list[list[float]]:
        return [[(v[0] - v[lo]) / size for v in values], [(v[hi] - v[0]) / size for v in values]]

    mids = [v[0] / size for v in values]
    spread = any(abs(v[3] - v[1]) + abs(v[4] - v[2]) > 1e-9 * max(v[4], 1e-12) for v in values)
    for lo, hi, colour, width, cap, label in (
            (3, 4, ENVELOPE, 1.0, 2.0, "with the factor's hourly range"),
            (1, 2, ERROR, 1.4, 4.0, "interval from energy")):
        if lo == 3 and not spread:
            continue
        style: dict[str, Any] = {"fmt": "none", "ecolor": colour, "elinewidth": width,
                                 "capsize": cap, "zorder": 3, "label": label if spread else None}
        where = [a + offset for a in at] if lo == 3 else list(at)
        if axis == "y":
            ax.errorbar(where, mids, yerr=bounds(lo, hi), **style)
        else:
            ax.errorbar(mids, where, xerr=bounds(lo, hi), **style)
    return spread


def _shares(grams: Sequence[float]) -> list[str]:
    """Each part's share of the total in whole percent, adding up to 100 % as printed
    (largest remainders); a part that rounds to 0 but is not 0 reads ``<1%``."""
    total = sum(grams)
    if total <= 0:
        return ["0%"] * len(grams)
    exact = [g / total * 100 for g in grams]
    whole = [math.floor(e) for e in exact]
    order = sorted(range(len(exact)), key=lambda i: whole[i] - exact[i])
    for i in order[:100 - sum(whole)]:
        whole[i] += 1
    return [f"{w}%" if w or g <= 0 else "<1%" for w, g in zip(whole, grams, strict=True)]


def _timeline_panel(ax: Axes, pairs: Sequence[tuple[RunResult, Series]],
                    colours: dict[str, str], data: dict[str, Any]) -> list[SpanLabel]:
    """(b) cumulative CO2e (its energy interval as a band; the factor's hourly range, which
    panel (a) draws, named in the legend) per run; for one run also its total power on a
    second axis and its top-level phases shaded. Returns the phase names to fit."""
    tunit, tsize = _mpl.time_unit(max(_duration(r, s) for r, s in pairs))
    curves = [(r, *cumulative_co2e(s, r)) for r, s in pairs]
    top = max((g[-1] * max(_ratios(r)[1], 1.0) for r, _, g in curves if g), default=0.0)
    munit, msize = _mpl.mass_unit(top)
    run_names = [s.label for s in run_stages([r for r, _ in pairs])]
    one = len(pairs) == 1
    timeline: dict[str, Any] = {"runs": {}}
    for (r, t_s, grams), label in zip(curves, run_names, strict=True):
        colour = LINE if one else colours.get(label, LINE)
        xs, ys = [t / tsize for t in t_s], [g / msize for g in grams]
        low, high = _ratios(r)
        ax.fill_between(xs, [y * low for y in ys], [y * high for y in ys], color=colour,
                        alpha=0.06, linewidth=0,  # light: the line, not the wedge, leads
                        label="interval from energy" if one else None,
                        gid=gid("cumulative-co2e-interval", r.identity.run_id))
        ax.plot(xs, ys, color=colour, linewidth=2.2, zorder=3,
                label=text("CO2e, cumulative" if one else label),
                gid=gid("cumulative-co2e", r.identity.run_id))
        timeline["runs"][r.identity.run_id] = {"t_s": t_s, "co2e_g": grams}
    units: dict[str, Any] = {"time": [tunit, tsize], "co2e": [munit, msize]}
    handles, names = ax.get_legend_handles_labels()
    from matplotlib.lines import Line2D

    notes = [_envelope_note(pairs[0][0], munit, msize), _unshaded_note(*pairs[0])] if one else []
    for note in notes:
        if note is not None:
            handles.append(Line2D([], [], linestyle="none"))
            names.append(text(note))
    labels: list[SpanLabel] = []
    if one:
        result, stored = pairs[0]
        timeline["spans"], labels = _shade_spans(ax, stored.spans, tsize, colours)
        t_s, watts = total_power(stored)
        punit, psize = _mpl.power_unit(max((w for w in watts if math.isfinite(w)),
                                           default=0.0))
        twin = ax.twinx()
        if len(t_s) >= 2:
            twin.stairs([w / psize for w in watts], [t / tsize for t in t_s], baseline=None,
                        color=POWER, linewidth=1.0, label="power, all devices",
                        gid="power-total")
        twin.set_ylim(0, max((w for w in watts if math.isfinite(w)), default=1.0)
                      / psize * 1.15 or 1.0)
        twin.set_ylabel(f"Power ({punit})", color=POWER)
        twin.tick_params(axis="y", colors=POWER)
        ax.set_zorder(twin.get_zorder() + 1)  # the CO2e line over the power steps
        ax.patch.set_visible(False)
        more = twin.get_legend_handles_labels()
        handles, names = handles + more[0], names + more[1]
        timeline["power"] = {"t_s": t_s, "power_w": watts}
        units["power"] = [punit, psize]
    ax.legend(handles, names, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2,
              fontsize=8, frameon=False, borderaxespad=0.2)  # above the axes: over no line
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=0)
    ax.set_xlabel(f"Time since start ({tunit})")
    ax.set_ylabel(f"CO2e, cumulative ({munit})")
    ax.set_title("(b) CO2e over time" + (", power and phases" if one else ", per run"),
                 loc="left")
    ax.grid(alpha=0.3)
    data["timeline"] = timeline
    data.setdefault("units", {})["timeline"] = units
    return labels


def _ratios(result: RunResult) -> tuple[float, float]:
    """The run's energy interval relative to its energy (1, 1 when it has none)."""
    unc = result.energy_uncertainty
    if result.energy_j <= 0:
        return 1.0, 1.0
    return unc.low / result.energy_j, unc.high / result.energy_j


def _envelope_note(result: RunResult, unit: str, size: float) -> str | None:
    """The whole CO2e interval at the end, when the factor's hourly range widens it."""
    unc, (low, high) = result.emissions.uncertainty, _ratios(result)
    co2e = result.co2e_g
    if co2e <= 0 or (abs(unc.low - co2e * low) + abs(unc.high - co2e * high)) <= 1e-9 * co2e:
        return None
    return (f"with the factor's hourly range: {sig3(unc.low / size)}..{sig3(unc.high / size)} "
            f"{unit} at the end")


def _unshaded_note(result: RunResult, stored: Series) -> str | None:
    """Top-level phases with no shaded span: the store keeps no span shorter than a sampling
    period (the series cannot resolve it), so say which phases are missing and why."""
    shaded = {p for p, _, _ in stored.spans}
    missing = [p.name for p in result.phases if "/" not in p.name and p.name not in shaded]
    if not missing:
        return None
    names = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return f"not shaded (each under one sampling period): {names}"


def _shade_spans(ax: Axes, spans: Sequence[tuple[str, float, float]], tsize: float,
                 colours: dict[str, str]) -> tuple[list[list[Any]], list[SpanLabel]]:
    """Shade each top-level phase span; its name goes on each wide span, else its first one,
    where :func:`_fit_span_labels` finds room for it."""
    top = [(p, a, b) for p, a, b in spans if "/" not in p]
    width = max((b for _, _, b in top), default=0.0) or 1.0
    labels = []
    for i, (name, start, end) in enumerate(top):
        colour = colours.get(name, OUTSIDE)
        ax.axvspan(start / tsize, end / tsize, color=colour, alpha=0.13, linewidth=0,
                   gid=gid("span", str(i)))
        label = ax.text((start + end) / 2 / tsize, 0.98, text(name), ha="center", va="top",
                        fontsize=8, color="#222222", transform=ax.get_xaxis_transform(),
                        gid=gid("span-label", str(i)))
        label.set_in_layout(False)  # placed after the layout, so it must not move it
        labels.append(SpanLabel(label, name, start / tsize, end / tsize,
                                (end - start) / width > 0.08))
    return [[p, a, b] for p, a, b in top], labels


@dataclasses.dataclass(frozen=True)
class SpanLabel:
    """A phase name over its span (``start``..``end`` in the axis' time unit)."""

    artist: Text
    name: str
    start: float
    end: float
    wide: bool


def _fit_span_labels(fig: Figure, ax: Axes, labels: Sequence[SpanLabel]) -> None:
    """Lay the figure out, then keep each phase name inside its span and the axes, whole: a
    name that does not fit its span is left out (each phase is named where it first fits, and
    on every wide span), never cut."""
    if not labels:
        return
    fig.draw_without_rendering()  # the layout: the axes' final size in pixels
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box = ax.get_window_extent(renderer)
    to_px = ax.transData.transform
    named: set[str] = set()
    for label in labels:
        text_w = label.artist.get_window_extent(renderer).width
        left = max(to_px((label.start, 0))[0], box.x0) + 2
        right = min(to_px((label.end, 0))[0], box.x1) - 2
        fits = right - left >= text_w and (label.name not in named or label.wide)
        label.artist.set_visible(fits)
        if fits:  # centred on the part of the span inside the axes
            named.add(label.name)
            label.artist.set_x(ax.transData.inverted().transform(((left + right) / 2, 0))[0])



def _what_if_panel(ax: Axes, impacts: Sequence[PlaceImpact], data: dict[str, Any]) -> None:
    """(c) CO2e of the same energy at each place, cleanest first, the own place highlighted."""
    ordered = sorted(impacts, key=lambda p: p.co2e_g)
    own = next(p for p in impacts if p.own)
    unit, size = _mpl.mass_unit(max(p.co2e_high_g for p in ordered))
    ys = list(range(len(ordered)))
    bars = ax.barh(ys, [p.co2e_g / size for p in ordered], height=0.65,
                   color=[OWN if p.own else OTHER for p in ordered])
    spread = _intervals(ax, ys, [(p.co2e_g, p.co2e_energy_low_g, p.co2e_energy_high_g,
                                  p.co2e_low_g, p.co2e_high_g) for p in ordered], size, "x",
                        offset=0.42)  # in the gap under each bar, clear of its label
    for i, (bar, p) in enumerate(zip(bars, ordered, strict=True)):
        bar.set_gid(gid("whatif", str(i)))
        if p.basis != own.basis:
            bar.set_hatch("//")
        change = "" if p.own or own.co2e_g <= 0 else f" ({p.co2e_g / own.co2e_g - 1:+.0%})"
        ax.annotate(f"{_mass(p.co2e_g, unit, size)}{change} · {p.intensity_g_per_kwh:.0f} "
                    f"g/kWh × PUE {pue_text(p.pue)}",
                    (max(p.co2e_energy_high_g, p.co2e_g) / size, i), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=8, bbox=LABEL_BOX,
                    zorder=4)
    mine = "this run: " if len(data["run_ids"]) == 1 else "these runs: "
    names = [(mine if p.own else "") + text(p.label)
             + (f" [{p.basis}]" if p.basis != own.basis else "") for p in ordered]
    ax.set_yticks(ys, names)
    for tick, p in zip(ax.get_yticklabels(), ordered, strict=True):
        if p.own:
            tick.set_fontweight("bold")
            tick.set_color(OWN)
    ax.invert_yaxis()
    ax.set_xlim(0, max(max(p.co2e_high_g for p in ordered) * 1.05,
                       max(max(p.co2e_energy_high_g, p.co2e_g) for p in ordered) * 1.75)
                / size or 1.0)
    if spread:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.9)  # cleanest, shortest bars
    years = sorted({p.year for p in ordered})
    year = str(years[0]) if len(years) == 1 else f"{years[0]}-{years[-1]}"
    other = " (hatched: another basis, not comparable)" if any(
        p.basis != own.basis for p in ordered) else ""
    ax.set_xlabel(f"CO2e ({unit}) · {own.basis} intensity, {year} data{other}")
    ax.set_title("(c) The same energy drawn elsewhere", loc="left")
    ax.grid(axis="x", alpha=0.3)
    data["what_if"] = [dataclasses.asdict(p) for p in ordered]
    data.setdefault("units", {})["what_if_co2e"] = [unit, size]
