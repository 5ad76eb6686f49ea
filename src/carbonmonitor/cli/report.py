"""``carbonmonitor report RUN``: a stored run's report as one self-contained HTML file or as
Markdown, optionally with its figures written as SVG and PNG files.

The report goes to ``-o PATH`` (written to a temporary name, then renamed) or to stdout;
errors go to stderr with exit code 2 (see cli/__init__.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from carbonmonitor._fileio import set_usual_mode
from carbonmonitor.cli import UsageError, cannot_write, say

__all__ = ["add_parser", "report_command"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``report`` to the ``carbonmonitor`` subcommands; returns its parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "report", allow_abbrev=False,
        help="write a run's report: HTML (figures inline) or Markdown, with a citation",
        description="Write a stored run's report: headline figures, the carbon-impact and power "
                    "figures, energy by device, phases, metrics, forecasts, budget events, "
                    "provenance, flags and a citable paragraph. HTML is one self-contained "
                    "file (nothing is loaded from elsewhere); Markdown has the same tables.")
    parser.add_argument("run", metavar="RUN",
                        help="a run id, a unique prefix of one, its short id (the last 8 "
                             "characters, as tables show it), or 'last' for the newest run")
    parser.add_argument("--format", choices=("html", "md"), default=None,
                        help="html or md (default: from the -o suffix, else html)")
    parser.add_argument("-o", "--output", metavar="PATH", help="write here (default: stdout)")
    parser.add_argument("--figures", metavar="DIR",
                        help="also write the figures to DIR as SVG and PNG (needs matplotlib); "
                             "a Markdown report links to them")
    parser.add_argument("--db", metavar="PATH",
                        help="the run store (default: CARBONMONITOR_DB, config files, or the "
                             "user data directory)")
    return parser


def report_command(args: argparse.Namespace) -> int:
    """Run ``carbonmonitor report``; the exit code."""
    from carbonmonitor.store import open_store

    fmt = _format(args.format, args.output)
    store = open_store(args.db)
    result = store.load(args.run)
    series = store.series(result.identity.run_id)
    out = Path(args.output) if args.output not in (None, "", "-") else None
    figures = _write_figures(result, series, Path(args.figures), out) if args.figures else {}
    if fmt == "md":
        from carbonmonitor.report import render_markdown

        text = render_markdown(result, figures=figures, series=series)
    else:
        from carbonmonitor.report import render_html

        text = render_html(result, series)
    if out is None:
        sys.stdout.write(text)
        return 0
    _write(out, text)
    say(f"carbonmonitor: wrote the {fmt} report of run {result.identity.run_id} to {out}")
    return 0


SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}


def _format(given: str | None, output: str | None) -> str:
    """The format: ``--format``, else the ``-o`` suffix, else HTML. A suffix that names no
    format, or the other one, is refused rather than written as something it does not say."""
    suffix = Path(output).suffix.lower() if output and output != "-" else ""
    implied = SUFFIXES.get(suffix)
    if given is None:
        if suffix and implied is None:
            raise UsageError(f"cannot tell the report's format from {output!r}: name the file "
                             ".html or .md, or give --format html|md")
        return implied or "html"
    if implied is not None and implied != given:
        kind = "a Markdown" if implied == "md" else "an HTML"
        raise UsageError(f"--format {given} but {output!r} is named as {kind} file: use a "
                         f"{'.md' if given == 'md' else '.html'} name, or drop --format")
    return given


FIGURES = (("Carbon impact", "impact"), ("Power over time", "power"),
           ("Energy and CO2e by device", "devices"), ("Carbon intensity over the run",
                                                      "intensity"))


def _write_figures(result: Any, series: Any, folder: Path, out: Path | None) -> dict[str, str]:
    """Draw the figures into ``folder``; ``{caption: path}``, relative to the report's folder
    when the report is written to a file."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--figures {str(folder)!r} is a file: --figures names a folder to "
                         "write the figures in")
    from carbonmonitor.plot import (
        device_figure,
        impact_figure,
        intensity_figure,
        power_figure,
        save_figure,
    )

    try:
        drawn = {"impact": impact_figure(result, series=series),
                 "power": power_figure(result, series=series),
                 "devices": device_figure(result), "intensity": intensity_figure(result)}
    except ImportError as err:
        raise UsageError(f"--figures: {err}") from None
    links = {}
    run_id = result.identity.run_id
    for caption, stem in FIGURES:
        fig = drawn[stem]
        for suffix in (".png", ".svg"):
            try:
                path = save_figure(fig, folder / f"{run_id}-{stem}{suffix}")
            except OSError as err:
                raise cannot_write("--figures", folder, err) from None
        base = out.resolve().parent if out is not None else Path.cwd()
        links[caption] = Path(os.path.relpath(path.resolve(), base)).as_posix()
    say(f"carbonmonitor: wrote the figures of run {run_id} to {folder}")
    return links


def _write(path: Path, text: str, example: str = "report.html") -> None:
    """Write through a temporary file in the same folder, then rename: never half a report.
    A missing folder is made, and said."""
    if path.is_dir():
        raise UsageError(f"-o {str(path)!r} is a folder: give a file name in it, e.g. "
                         f"{str(path / example)!r}")
    made = not path.parent.exists()
    try:
        _write_through(path, text)
    except OSError as err:
        raise cannot_write("-o", path, err) from None
    if made:
        say(f"carbonmonitor: made the folder {path.parent}")


def _write_through(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        set_usual_mode(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
