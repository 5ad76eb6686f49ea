"""The Markdown report: the HTML report's content as tables, figures as links to files.

Every cell is escaped: Markdown punctuation gets a backslash and ``<``, ``>``, ``&`` become
entities, because most Markdown renderers pass raw HTML through (a run name must not become a
tag).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carbonmonitor.records import RunResult
from carbonmonitor.report.content import Table, build_report

__all__ = ["md_escape", "render_markdown"]

_ESCAPES = {c: "\\" + c for c in "\\`*_[]|#!{}~"}
_ESCAPES.update({"<": "&lt;", ">": "&gt;", "&": "&amp;", "\n": " ", "\r": " "})
_TABLE = str.maketrans(_ESCAPES)


def md_escape(text: str) -> str:
    """``text`` shown literally in Markdown (one line; no tag, link or emphasis)."""
    return text.translate(_TABLE)


def render_markdown(result: RunResult, *, figures: Mapping[str, str] | None = None,
                    series: Any = None) -> str:
    """The run's report in Markdown (GitHub-flavoured tables).

    Args:
        result: the run.
        figures: ``{caption: path}`` of figure files to link (``carbonmonitor report
            --figures DIR`` writes them); none by default.
        series: the run's stored time series (default: read from the store, as the HTML
            report does), so that the advice is the same in both formats.

    Example:
        >>> import carbonmonitor
        >>> from carbonmonitor.report import render_markdown
        >>> with carbonmonitor.track(backend="fake", db="off", quiet=True, country="DE") as run:
        ...     pass
        >>> "| Energy |" in render_markdown(run.result)
        True
    """
    if series is None:
        from carbonmonitor.report.content import stored_series

        series = stored_series(result)
    report = build_report(result, series)
    lines = [f"# {md_escape(report.title)}", ""]
    lines += _table(("Fact", "Value"), report.facts)
    lines += ["## Headline figures", ""]
    lines += _table(("Figure", "Value"), report.headline)
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{md_escape(caption)}](<{path.replace('>', '%3E')}>)" + "  "
                  for caption, path in figures.items()]
        lines.append("")
    for table in report.tables:
        lines += _section(table)
    lines += ["## Flags", ""]
    lines += [f"- `{code.replace('`', '')}`: {md_escape(message)}"
              + (f". Fix: {md_escape(fix)}" if fix else "") for code, message, fix in report.flags]
    if not report.flags:
        lines.append("None: nothing was estimated or degraded beyond what the tables say.")
    lines += ["", "## How to cite", "", f"> {md_escape(report.citation)}", ""]
    return "\n".join(lines)


def _section(table: Table) -> list[str]:
    lines = [f"## {md_escape(table.title)}", ""]
    lines += _table(table.header, table.rows)
    if table.note:
        lines += [md_escape(table.note), ""]
    return lines


def _table(header: tuple[str, ...], rows: tuple[tuple[str, ...], ...]) -> list[str]:
    """A GitHub-flavoured table, then a blank line."""
    out = ["| " + " | ".join(md_escape(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return [*out, ""]
