"""``carbonmonitor compare``: stored runs, or groups of them, side by side, ranked by CO2e, as a
table, CSV or JSON, with an optional figure (quality against CO2e and its Pareto front).

The output goes to ``-o PATH`` or stdout; notes and errors go to stderr (errors: exit code 2,
see cli/__init__.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from carbonmonitor.cli import UsageError, cannot_write, say
from carbonmonitor.compare import Comparison, table_cells

__all__ = ["add_parser", "compare_command", "format_table"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``compare`` to the ``carbonmonitor`` subcommands; returns its parser."""
    from carbonmonitor.cli.store import add_db

    parser: argparse.ArgumentParser = commands.add_parser(
        "compare", allow_abbrev=False,
        help="compare runs or groups of runs: energy, CO2e, per-unit costs, quality",
        description="Compare stored runs, one by one or grouped (by name, project, tag or a "
                    "parameter: seeds of one model give a mean and a spread), ranked by CO2e, "
                    "with per-sample and per-1k-token figures, a quality metric and the Pareto "
                    "front of quality against CO2e (docs/compare.md).")
    parser.add_argument("runs", nargs="*", metavar="RUN",
                        help="run ids (unique prefixes, short ids, or 'last'); none: the runs the "
                             "filters select")
    parser.add_argument("--project", help="only runs of this project")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="only runs with this tag (repeat, or a,b: runs with all of them)")
    parser.add_argument("--since", metavar="WHEN",
                        help="only runs started since WHEN: 2026-11-01, or an age such as 7d")
    parser.add_argument("--by", default="run", metavar="GROUP",
                        help="run (default), name, project, tag or param:KEY")
    parser.add_argument("--metric", metavar="NAME",
                        help="the quality metric (default: the first one every run logged "
                             "with a direction)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default=None,
                        help="table, csv or json (raw SI numbers); default: from the -o "
                             "suffix (.csv, .json), else table")
    parser.add_argument("-o", "--output", metavar="PATH", help="write here (default: stdout)")
    parser.add_argument("--figure", metavar="PATH",
                        help="also draw the comparison to PATH (.svg or .png; needs "
                             "matplotlib)")
    add_db(parser)
    return parser


def compare_command(args: argparse.Namespace) -> int:
    """Run ``carbonmonitor compare``; the exit code."""
    from carbonmonitor.compare import check_by, compare

    fmt = _format(args.format, args.output)
    check_by(args.by)  # before anything is read
    results = _selected(args)
    table = compare(results, by=args.by, metric=args.metric)
    if args.figure:
        _figure(table, args.figure)
    if fmt == "csv":
        text = table.to_csv()
    elif fmt == "json":
        text = table.to_json(indent=2) + "\n"
    else:
        text = format_table(table) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        from carbonmonitor.cli.report import _write

        _write(Path(args.output), text, example=f"comparison.{'txt' if fmt == 'table' else fmt}")
        say(f"carbonmonitor: wrote the comparison of {len(results)} run(s) to {args.output}")
    if table.note:
        say(f"note: {table.note}")
    return 0


SUFFIXES = {".csv": "csv", ".json": "json"}


def _format(given: str | None, output: str | None) -> str:
    """``--format``, else the ``-o`` suffix (.csv, .json), else the table; a suffix naming
    the other format than ``--format`` is refused."""
    implied = SUFFIXES.get(Path(output).suffix.lower()) if output and output != "-" else None
    if given is None:
        return implied or "table"
    if implied is not None and implied != given:
        raise UsageError(f"--format {given} but {output!r} is named as a {implied} file: name "
                         f"it for {given} or drop --format")
    return given


def _selected(args: argparse.Namespace) -> list[Any]:
    from carbonmonitor.store import open_store

    store = open_store(args.db)
    tags = [t for item in args.tag for t in item.split(",") if t.strip()]
    filters = {"--project": args.project, "--tag": ",".join(tags) or None,
               "--since": args.since}
    given = ", ".join(f"{k} {v}" for k, v in filters.items() if v)
    if args.runs:
        if given:
            raise UsageError(f"give run ids or filters ({given}), not both")
        return [store.load(run) for run in args.runs]
    if not store.path.exists():
        raise UsageError(f"no runs to compare: the store {store.path} does not exist (runs are "
                         "stored there once tracked; --db names another store)")
    from carbonmonitor.compare import finished

    everything = list(store.runs(project=args.project, tags=tags, since=args.since))
    found, unfinished = finished(everything)
    if unfinished:
        say(f"note: {len(unfinished)} running or interrupted run(s) left out (partial "
            "figures); name them as RUN arguments to include them")
    if not found and everything:
        raise UsageError("every run matching the filters is running or was interrupted; name "
                         "them as RUN arguments to compare them anyway")
    if not found:
        where = f"runs matching {given}" if given else "runs"
        same = " (with the same filters)" if given else ""
        raise UsageError(f"no {where} in {store.path}; carbonmonitor runs{same} lists the "
                         "runs there are")
    return found


def _figure(table: Comparison, path: str) -> None:
    from carbonmonitor.compare import compare_figure

    try:
        compare_figure(table, path=path)
    except ImportError as err:
        raise UsageError(f"--figure: {err}") from None
    except OSError as err:
        raise cannot_write("--figure", path, err) from None
    say(f"carbonmonitor: wrote the figure to {path}")


def format_table(table: Comparison) -> str:
    """The comparison as aligned text: one line per group; each column in one unit, chosen from
    its largest figure as the summary chooses it; groups show mean ± std [min..max]."""
    header, cells = table_cells(table, loud=True)
    out = _aligned(header, cells)
    if any(r.n > 1 for r in table.rows):
        out.append("groups: mean ± standard deviation [min..max] over their runs")
    if table.mixed_bases:
        out.append("the ranking mixes emission-factor bases: see the note")
    return "\n".join(out)


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    left = {1, 3}
    return ["  ".join(c.ljust(w) if i in left else c.rjust(w)
                      for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in (header, *rows)]
