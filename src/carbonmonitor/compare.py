"""Compare stored runs, or groups of them (seeds of one model): duration, energy, CO2e, per-unit
costs and a quality metric, ranked by CO2e, with the Pareto front of quality against CO2e.

Each group's figures are the mean, the range (min..max) and, from two runs on, the sample
standard deviation of its runs' figures. CO2e is location-based; ``bases`` lists the
emission-factor bases involved, and a ranking across more than one basis says so in ``note``.
The figure (:func:`compare_figure`) needs the ``plot`` extra; nothing else here does.

Example:
    >>> import tempfile, carbonmonitor
    >>> from carbonmonitor.compare import compare
    >>> db = tempfile.mkdtemp() + "/runs.db"
    >>> for name in ("small", "large"):
    ...     with carbonmonitor.track(backend="fake", db=db, name=name, quiet=True) as run:
    ...         run.log_metric("accuracy", 0.9)
    >>> table = compare(carbonmonitor.runs(db=db), by="name")
    >>> sorted(row.group for row in table.rows), table.metric
    (['large', 'small'], 'accuracy')
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, TextIO

from carbonmonitor._csvsafe import safe_row
from carbonmonitor.errors import ConfigError, did_you_mean
from carbonmonitor.records import RunResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Comparison", "GroupRow", "Spread", "check_by", "compare", "compare_figure",
           "default_metric", "finished", "pareto_front"]

BY = ("run", "name", "project", "tag")  # and "param:<key>"
# per-unit columns: (column stem, UnitCost.per)
UNITS = (("per_sample", "sample"), ("per_1k_tokens", "1k tokens"))
NO_TAG = "(no tag)"


@dataclass(frozen=True)
class Spread:
    """Mean, range and spread of one figure over ``n`` runs (``std``: sample standard deviation,
    None for a single run)."""

    mean: float
    low: float
    high: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.fmean(values), min(values), max(values),
                   statistics.stdev(values) if len(values) >= 2 else None, len(values))


@dataclass(frozen=True)
class GroupRow:
    """One group of runs: its figures (SI units: s, J, g), rank by mean CO2e (1: lowest) and
    whether it is on the Pareto front of quality against CO2e. Per-unit figures cover the
    runs that counted that unit (None: none did); ``quality`` is each run's best value of the
    comparison's metric (None: no run of the group has it)."""

    group: str
    run_ids: tuple[str, ...]
    duration_s: Spread
    energy_j: Spread
    co2e_g: Spread
    bases: tuple[str, ...]
    energy_per_sample_j: Spread | None
    co2e_per_sample_g: Spread | None
    energy_per_1k_tokens_j: Spread | None
    co2e_per_1k_tokens_g: Spread | None
    quality: Spread | None
    rank: int
    pareto: bool

    @property
    def n(self) -> int:
        return len(self.run_ids)


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` returns: ``rows`` ranked by mean CO2e, lowest first."""

    by: str
    metric: str | None
    direction: Literal["higher", "lower"] | None
    rows: tuple[GroupRow, ...]
    bases: tuple[str, ...]
    note: str = ""  # why the ranking needs care (mixed bases, a metric without a direction)

    @property
    def mixed_bases(self) -> bool:
        return len(self.bases) > 1

    @property
    def front(self) -> tuple[GroupRow, ...]:
        """The Pareto-front groups, by CO2e."""
        return tuple(r for r in self.rows if r.pareto)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (SI units), ``mixed_bases`` included."""
        out = asdict(self)
        out["mixed_bases"] = self.mixed_bases
        for row, plain in zip(self.rows, out["rows"], strict=True):
            plain["n"] = row.n
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def write_csv(self, out: TextIO) -> None:
        """One line per group, raw SI numbers: ``<figure>_mean``, ``_min``, ``_max``, ``_std``.
        Text a spreadsheet would evaluate (``=...``, ``@...``) gets a leading ``'``."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(csv_header())
        for row in self.rows:
            writer.writerow(safe_row(_csv_row(row, self)))

    def to_csv(self) -> str:
        buffer = io.StringIO()
        self.write_csv(buffer)
        return buffer.getvalue()


SPREADS = ("duration_s", "energy_j", "co2e_g", "energy_per_sample_j", "co2e_per_sample_g",
           "energy_per_1k_tokens_j", "co2e_per_1k_tokens_g", "quality")


def csv_header() -> list[str]:
    cols = ["group", "n", "run_ids", "rank", "pareto", "bases", "metric"]
    for name in SPREADS:
        cols += [f"{name}_mean", f"{name}_min", f"{name}_max", f"{name}_std"]
    return cols


def _csv_row(row: GroupRow, table: Comparison) -> list[Any]:
    cells: list[Any] = [row.group, row.n, " ".join(row.run_ids), row.rank, row.pareto,
                        " ".join(row.bases), table.metric or ""]
    for name in SPREADS:
        s: Spread | None = getattr(row, name)
        cells += ["", "", "", ""] if s is None else [
            repr(s.mean), repr(s.low), repr(s.high), "" if s.std is None else repr(s.std)]
    return cells


# (header, loud header, GroupRow field, kind) of the figures a table shows, in order
COLUMNS = (("duration", "DURATION", "duration_s", "time"),
           ("energy", "ENERGY", "energy_j", "energy"), ("CO2e", "CO2e", "co2e_g", "mass"),
           ("energy/sample", "ENERGY/SAMPLE", "energy_per_sample_j", "energy"),
           ("CO2e/sample", "CO2e/SAMPLE", "co2e_per_sample_g", "mass"),
           ("energy/1k tokens", "ENERGY/1k TOK", "energy_per_1k_tokens_j", "energy"),
           ("CO2e/1k tokens", "CO2e/1k TOK", "co2e_per_1k_tokens_g", "mass"))


def table_cells(table: Comparison, *, loud: bool = False) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of text cells, as ``carbonmonitor compare`` and the dashboard show
    them: rank, group, n, basis, then each figure in one unit per column (chosen from the
    column's largest value as the run summary chooses units; the unit is in the header), groups
    as ``mean ± std [min..max]`` with three significant digits, the quality metric's best value
    and ``yes`` on the Pareto front. A unit nobody counted has no column. ``loud``: the
    terminal's upper-case headers."""
    from carbonmonitor.summary import energy_unit, mass_unit, time_unit

    kinds: dict[str, Callable[[float], tuple[str, float]]] = {
        "time": time_unit, "energy": energy_unit, "mass": mass_unit}
    rows = table.rows
    header = ["#", table.by.upper(), "N", "BASIS"] if loud else ["#", table.by, "n", "basis"]
    cells = [[str(r.rank), r.group, str(r.n), ",".join(r.bases)] for r in rows]
    for quiet, shout, name, kind in COLUMNS:
        spreads: list[Spread | None] = [getattr(r, name) for r in rows]
        known = [s.high for s in spreads if s is not None]
        if not known:  # nobody counted that unit
            continue
        unit, size = kinds[kind](max(known, key=abs))
        header.append(f"{shout if loud else quiet} ({unit})")
        for line, spread in zip(cells, spreads, strict=True):
            line.append(_spread_cell(spread, size))
    if table.metric:
        header.append(f"{table.metric} ({'best' if table.direction else 'last'})")
        for line, r in zip(cells, rows, strict=True):
            line.append(_spread_cell(r.quality, 1.0))
    header.append("PARETO" if loud else "Pareto")
    for line, r in zip(cells, rows, strict=True):
        line.append("yes" if r.pareto else "")
    return header, cells


def _spread_cell(spread: Spread | None, size: float) -> str:
    """``mean ± std [min..max]`` in ``size`` units, three significant digits (summary.sig3)."""
    from carbonmonitor.summary import sig3

    if spread is None:
        return "-"
    mean = sig3(spread.mean / size)
    if spread.std is None:
        return mean
    return (f"{mean} ± {sig3(spread.std / size)} "
            f"[{sig3(spread.low / size)}..{sig3(spread.high / size)}]")


def compare(runs_or_ids: Sequence[RunResult | str], *, by: str = "run",
            metric: str | None = None, db: str | os.PathLike[str] | None = None) -> Comparison:
    """Compare runs one by one or in groups, ranked by mean CO2e.

    Args:
        runs_or_ids: results, run ids (or unique prefixes, or ``"last"``), or both.
        by: ``"run"``, ``"name"``, ``"project"``, ``"tag"`` (a run is in one group per tag) or
            ``"param:<key>"`` (a group per value of that parameter).
        metric: the quality metric (each run's best value, by its direction); default: the
            first metric with a direction that every run has (none: no quality column).
        db: the store to load ids from.

    Raises:
        ConfigError: no runs, a bad ``by``, or a ``metric`` no run has (the message lists the
            metrics there are). StoreError: an id not stored.
    """
    results = _load(runs_or_ids, db)
    if not results:
        raise ConfigError("nothing to compare: no runs given; `carbonmonitor runs` lists the "
                          "stored runs")
    groups = _groups(results, by)
    name, direction = _metric(results, metric)
    rows = [_row(label, members, name) for label, members in groups.items()]
    rows.sort(key=lambda r: (r.co2e_g.mean, r.group))
    front = pareto_front([(r.quality.mean if r.quality else None, r.co2e_g.mean) for r in rows],
                         direction)
    rows = [_ranked(r, i + 1, i in front) for i, r in enumerate(rows)]
    bases = tuple(sorted({r.emissions.basis for r in results}))
    notes = []
    if len(bases) > 1:
        notes.append(f"these runs' CO2e mix emission-factor bases ({', '.join(bases)}): the "
                     "ranking mixes bases; re-account them on one basis to compare")
    places = sorted({r.location.describe() for r in results})
    if len(places) > 1:
        notes.append(f"these runs were measured in {len(places)} places ({'; '.join(places)}): "
                     "CO2e differences include the grids' (compare energy, or re-account "
                     "them to one place with `carbonmonitor show RUN --country ...`)")
    if name is not None and direction is None:
        notes.append(f"metric {name!r} has no direction (higher or lower is better): no "
                     "Pareto front")
    _, unfinished = finished(results)
    if unfinished:
        listed = ", ".join(f"{r.identity.run_id} ({r.status})" for r in unfinished[:3])
        more = f" and {len(unfinished) - 3} more" if len(unfinished) > 3 else ""
        notes.append(f"{listed}{more} did not finish: their figures cover only what was "
                     "recorded, so they rank lower than a whole run would")
    return Comparison(by, name, direction, tuple(rows), bases, "; ".join(notes))


def pareto_front(points: Sequence[tuple[float | None, float]],
                 direction: Literal["higher", "lower"] | None) -> set[int]:
    """Indices of the ``(quality, co2e_g)`` points no other point dominates (at least as good
    on both, better on one); points without a quality, or no direction, are never on it.

    Example:
        >>> sorted(pareto_front([(0.9, 10.0), (0.8, 5.0), (0.7, 6.0)], "higher"))
        [0, 1]
    """
    if direction is None:
        return set()
    sign = 1.0 if direction == "higher" else -1.0
    known = [(i, sign * q, c) for i, (q, c) in enumerate(points) if q is not None]
    return {i for i, q, c in known
            if not any(q2 >= q and c2 <= c and (q2 > q or c2 < c) for _, q2, c2 in known)}


def _load(items: Sequence[RunResult | str], db: str | os.PathLike[str] | None
          ) -> list[RunResult]:
    """The runs, each once: a run named twice (an id and a prefix of it) would count as two
    seeds and fake a spread."""
    if any(isinstance(item, str) for item in items):
        from carbonmonitor.store import open_store

        store = open_store(None if db is None else os.fspath(db))
        items = [store.load(item) if isinstance(item, str) else item for item in items]
    unique: dict[str, RunResult] = {}
    for r in items:
        if isinstance(r, RunResult):
            unique.setdefault(r.identity.run_id, r)
    return list(unique.values())


def check_by(by: str) -> None:
    """Raise ConfigError unless ``by`` is run, name, project, tag or ``param:KEY``."""
    if by not in BY and not (by.startswith("param:") and by[6:]):
        raise ConfigError(f"cannot group runs by {by!r}: use run, name, project, tag or "
                          "param:KEY (e.g. param:lr)")


def _groups(results: Sequence[RunResult], by: str) -> dict[str, list[RunResult]]:
    check_by(by)
    if by.startswith("param:"):
        keys_there = sorted({k for r in results for k in r.identity.params})
        if by[6:] not in keys_there:
            raise ConfigError(
                f"no run has the parameter {by[6:]!r}: "
                + (f"the parameters these runs have are {', '.join(keys_there)}"
                   if keys_there else "these runs have no parameters (params= when tracking)")
                + did_you_mean(by[6:], keys_there))
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        ident = r.identity
        if by == "run":  # the name and the id's random tail; the whole id where that repeats
            short = f"{ident.name} ({ident.run_id[-8:]})" if ident.name else ident.run_id
            keys = [ident.run_id if short in groups else short]
        elif by in ("name", "project"):
            keys = [getattr(ident, by) or "(none)"]
        elif by == "tag":
            keys = list(ident.tags) or [NO_TAG]
        else:
            key = by[6:]
            keys = [f"{key}={ident.params[key]}" if key in ident.params else f"{key} unset"]
        for key in keys:
            groups.setdefault(key, []).append(r)
    return groups


def default_metric(results: Sequence[RunResult]) -> str | None:
    """The quality metric ``compare`` uses when none is named: the first metric with a
    direction that every run logged (None when there is none)."""
    return _metric(results, None)[0] if results else None


def finished(results: Sequence[RunResult]) -> tuple[list[RunResult], list[RunResult]]:
    """``(finished, unfinished)``: runs still running or interrupted have partial figures, so
    a selection by filters leaves them out (runs named one by one are kept, with a note)."""
    return [r for r in results if not r.partial], [r for r in results if r.partial]


def _metric(results: Sequence[RunResult], name: str | None
            ) -> tuple[str | None, Literal["higher", "lower"] | None]:
    """The metric to compare on and its direction (from the first run that knows it)."""
    have = list(dict.fromkeys(m.name for r in results for m in r.metrics))
    if name is None:
        for m in results[0].metrics:
            if m.direction and all(any(o.name == m.name and o.direction for o in r.metrics)
                                   for r in results):
                return m.name, m.direction
        return None, None
    if name not in have:
        listed = f"metrics there are: {', '.join(have)}" if have else "these runs logged none"
        raise ConfigError(f"no run here has a metric {name!r}; {listed}")
    directions = [m.direction for r in results for m in r.metrics
                  if m.name == name and m.direction]
    return name, directions[0] if directions else None


def _spread(values: Sequence[float | None]) -> Spread | None:
    known = [v for v in values if v is not None and math.isfinite(v)]
    return Spread.of(known) if known else None


def _unit(r: RunResult, per: str, what: str) -> float | None:
    for cost in r.unit_costs:
        if cost.per == per:
            return float(getattr(cost, what))
    return None


def _best(r: RunResult, metric: str | None) -> float | None:
    if metric is None:
        return None
    for m in r.metrics:
        if m.name == metric:  # no direction: no best, so the last value
            return m.best if m.direction is not None else m.last
    return None


def _row(label: str, runs: list[RunResult], metric: str | None) -> GroupRow:
    per: dict[str, Spread | None] = {}
    for stem, unit in UNITS:
        per[f"energy_{stem}_j"] = _spread([_unit(r, unit, "energy_j") for r in runs])
        per[f"co2e_{stem}_g"] = _spread([_unit(r, unit, "co2e_g") for r in runs])
    return GroupRow(
        group=label, run_ids=tuple(r.identity.run_id for r in runs),
        duration_s=Spread.of([r.duration_s for r in runs]),
        energy_j=Spread.of([r.energy_j for r in runs]),
        co2e_g=Spread.of([r.co2e_g for r in runs]),
        bases=tuple(sorted({r.emissions.basis for r in runs})),
        quality=_spread([_best(r, metric) for r in runs]), rank=0, pareto=False, **per)


def _ranked(row: GroupRow, rank: int, pareto: bool) -> GroupRow:
    from dataclasses import replace

    return replace(row, rank=rank, pareto=pareto)


# -- the figure ------------------------------------------------------------------------------

POINT = "#0072B2"
FRONT = "#D55E00"


def compare_figure(table: Comparison, *, path: str | os.PathLike[str] | None = None) -> Figure:
    """Quality against CO2e (means, bars from min to max, the Pareto front as a step line,
    each point labelled) beside bars of mean CO2e per group; only the bars without a metric.
    ``figure_data(fig)`` gives the plotted numbers; ``path`` also saves it (.png or .svg).

    Raises:
        ImportError: matplotlib is missing (the message says ``pip install
            'carbonmonitor[plot]'``). ConfigError: a bad suffix.
    """
    from carbonmonitor.plot import _mpl
    from carbonmonitor.plot._mpl import gid, text

    _mpl.check_path(path)
    scatter = [r for r in table.rows if r.quality is not None]
    small = [c for c in SMALL_PANELS if any(getattr(r, c[0]) is not None for r in table.rows)]
    height = 5.0 + 0.3 * max(0, len(table.rows) - 6)
    fig = _mpl.new_figure(figsize=(12 if scatter else 9, height * (1.55 if small else 1.0)),
                          layout="constrained")
    unit, size = _mpl.mass_unit(max(r.co2e_g.high for r in table.rows))
    parts: Any = fig.subfigures(2, 1, height_ratios=(1.0, 0.55)) if small else [fig]
    if scatter:
        ax, bars_ax = parts[0].subplots(1, 2, width_ratios=(3, 2))
        _scatter(ax, table, scatter, unit, size, gid, text)
    else:
        bars_ax = parts[0].subplots()
    small_data = _small_panels(parts[1], table, small, gid, text) if small else {}
    labels = [text(r.group + (f" ({', '.join(r.bases)})" if table.mixed_bases else ""))
              for r in table.rows]
    bars = bars_ax.barh(range(len(table.rows)), [r.co2e_g.mean / size for r in table.rows],
                        color=[FRONT if r.pareto else POINT for r in table.rows],
                        xerr=[[(r.co2e_g.mean - r.co2e_g.low) / size for r in table.rows],
                              [(r.co2e_g.high - r.co2e_g.mean) / size for r in table.rows]],
                        capsize=3)
    from carbonmonitor.summary import sig3

    for i, (bar, r) in enumerate(zip(bars, table.rows, strict=True)):
        bar.set_gid(gid("compare-bar", str(i)))
        bars_ax.annotate(f"{sig3(r.co2e_g.mean / size)} {unit}", (r.co2e_g.high / size, i),
                         xytext=(4, 0), textcoords="offset points", va="center", fontsize=8,
                         gid=gid("compare-bar-label", str(i)))
    bars_ax.set_yticks(range(len(labels)), labels)
    bars_ax.invert_yaxis()
    bars_ax.set_xlim(0, max(r.co2e_g.high for r in table.rows) / size * 1.2 or 1.0)
    bars_ax.set_xlabel(_co2e_label(table, unit))
    basis = (" (mixed emission-factor bases)" if table.mixed_bases
             else f" ({', '.join(table.bases)} basis)")
    title = (f"{table.metric} against CO2e, by {table.by}" if scatter
             else f"CO2e by {table.by}") + basis
    fig.suptitle(text(title))
    if table.note:  # below the panels, wrapped to the figure: a strip of its own
        import textwrap

        from matplotlib.layout_engine import ConstrainedLayoutEngine

        lines = textwrap.wrap("note: " + table.note, width=int(fig.get_figwidth() * 17))
        engine = fig.get_layout_engine()
        if isinstance(engine, ConstrainedLayoutEngine):
            engine.set(rect=(0, 0.035 * len(lines) + 0.01, 1, 1 - 0.035 * len(lines) - 0.01))
        fig.text(0.01, 0.005, text("\n".join(lines)), fontsize=7, va="bottom")
    _mpl.attach(fig, {**_data(table, scatter), "figures": small_data})
    if path is not None:
        _mpl.save_figure(fig, path)
    return fig


def _scatter(ax: Any, table: Comparison, rows: Sequence[GroupRow], unit: str, size: float,
             gid: Any, text: Any) -> None:
    xs = [r.co2e_g.mean / size for r in rows]
    ys = [r.quality.mean for r in rows if r.quality is not None]
    span_x = (max(xs) - min(xs)) or 1.0
    span_y = (max(ys) - min(ys)) or 1.0
    placed: list[tuple[float, float]] = []
    for i, r in enumerate(rows):
        q = r.quality
        assert q is not None
        x = r.co2e_g.mean / size
        ax.errorbar([x], [q.mean], xerr=[[x - r.co2e_g.low / size], [r.co2e_g.high / size - x]],
                    yerr=[[q.mean - q.low], [q.high - q.mean]], fmt="o", capsize=3,
                    color=FRONT if r.pareto else POINT, zorder=3 if r.pareto else 2,
                    gid=gid("compare-point", str(i)))
        # a label near one already placed goes one line lower, so none is written over another
        near = sum(1 for px, py in placed
                   if abs(px - x) < 0.08 * span_x and abs(py - q.mean) < 0.05 * span_y)
        placed.append((x, q.mean))
        ax.annotate(text(r.group), (x, q.mean), xytext=(4, 4 - 11 * near),
                    textcoords="offset points", fontsize=8, gid=gid("compare-label", str(i)))
    xs, ys = _front_line(table, size)
    if xs:
        ax.step(xs, ys, where="post", color=FRONT, linestyle="--", label="Pareto front",
                gid="compare-front")
        ax.legend(loc="best", fontsize=8)
    arrow = {"higher": "higher is better", "lower": "lower is better"}.get(
        table.direction or "", "direction unknown")
    ax.set_xlabel(_co2e_label(table, unit))
    which = "best" if table.direction else "last"
    ax.set_ylabel(text(f"{table.metric} ({which} per run; {arrow})"))


SMALL_PANELS = (("duration_s", "Duration", "time"), ("energy_j", "Energy", "energy"),
                ("co2e_per_sample_g", "CO2e per sample", "mass"),
                ("co2e_per_1k_tokens_g", "CO2e per 1k tokens", "mass"))
"""The figures beside CO2e and quality: (GroupRow field, title, kind), drawn when a run has it."""


def _small_panels(sub: Any, table: Comparison, panels: Sequence[tuple[str, str, str]],
                  gid: Any, text: Any) -> dict[str, list[list[float] | None]]:
    """One bar panel per figure (mean, min..max for groups), groups in the table's order;
    ``{field: [[mean, low, high] or None per group]}``."""
    from matplotlib.ticker import MaxNLocator

    from carbonmonitor.summary import energy_unit, mass_unit, sig3, time_unit

    kinds = {"time": time_unit, "energy": energy_unit, "mass": mass_unit}
    axes = sub.subplots(1, len(panels), sharey=True)
    axes = list(axes) if len(panels) > 1 else [axes]
    out: dict[str, list[list[float] | None]] = {}
    ys = list(range(len(table.rows)))
    for ax, (name, title, kind) in zip(axes, panels, strict=True):
        spreads: list[Spread | None] = [getattr(r, name) for r in table.rows]
        unit, size = kinds[kind](max(s.high for s in spreads if s is not None))
        means = [s.mean / size if s else 0.0 for s in spreads]
        lows = [(s.mean - s.low) / size if s else 0.0 for s in spreads]
        highs = [(s.high - s.mean) / size if s else 0.0 for s in spreads]
        bars = ax.barh(ys, means, xerr=[lows, highs], capsize=2,
                       color=[FRONT if r.pareto else POINT for r in table.rows])
        for i, (bar, spread) in enumerate(zip(bars, spreads, strict=True)):
            bar.set_gid(gid(f"compare-{name}", str(i)))
            label = "-" if spread is None else sig3(spread.mean / size)
            ax.annotate(label, (0 if spread is None else spread.high / size, i),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_title(f"{title} ({unit})", fontsize=9, loc="left")
        ax.set_xlim(0, max(s.high / size for s in spreads if s is not None) * 1.35 or 1.0)
        ax.tick_params(axis="x", labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))  # narrow panels: few, readable ticks
        out[name] = [None if s is None else [s.mean, s.low, s.high] for s in spreads]
    axes[0].set_yticks(ys, [text(r.group) for r in table.rows], fontsize=8)
    axes[0].invert_yaxis()
    return out


def _co2e_label(table: Comparison, unit: str) -> str:
    groups = any(r.n > 1 for r in table.rows)
    return f"CO2e ({unit})" + ("; groups: mean, bars from min to max" if groups else "")


def _front_line(table: Comparison, size: float) -> tuple[list[float], list[float]]:
    """The front's points by CO2e (the step line joins them), in the figure's unit."""
    front = sorted((r for r in table.front if r.quality is not None),
                   key=lambda r: r.co2e_g.mean)
    return ([r.co2e_g.mean / size for r in front],
            [r.quality.mean for r in front if r.quality is not None])


def _data(table: Comparison, scatter: Sequence[GroupRow]) -> dict[str, Any]:
    from carbonmonitor._version import __version__

    return {
        "carbonmonitor": __version__, "kind": "compare", "by": table.by,
        "metric": table.metric, "direction": table.direction, "bases": list(table.bases),
        "groups": [r.group for r in table.rows],
        "co2e_g": [[r.co2e_g.mean, r.co2e_g.low, r.co2e_g.high] for r in table.rows],
        "points": [{"group": r.group, "co2e_g": r.co2e_g.mean,
                    "quality": r.quality.mean if r.quality else None, "pareto": r.pareto}
                   for r in scatter],
        "front": [r.group for r in table.front],
    }
