"""The HTML report: one self-contained file (inline CSS, figures as inline SVG), nothing loaded
from anywhere else, every user-supplied string escaped, and a Content-Security-Policy that
allows no script and no request at all, so a hostile run name cannot do anything even where a
renderer slipped."""

from __future__ import annotations

import io
import re
from html import escape
from typing import TYPE_CHECKING

from carbonmonitor._version import __version__
from carbonmonitor.errors import StoreError
from carbonmonitor.records import RunResult
from carbonmonitor.report.content import Report, Table, build_report

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from carbonmonitor.store import Series

__all__ = ["render_html", "svg_text"]

# No script may run and nothing may be fetched: styles are inline, figures inline SVG.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0;background:#f6f7f9;color:#1b1f24;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:1.5rem}
nav{margin:0 0 1rem}nav a{margin-right:1rem}
h1{font-size:1.6rem;margin:.2rem 0 .8rem}h2{font-size:1.2rem;margin:1.8rem 0 .6rem;
border-bottom:2px solid #d0d7de;padding-bottom:.2rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:0}
dl.facts dt{color:#57606a}dl.facts dd{margin:0;overflow-wrap:anywhere}
.cards{display:flex;flex-wrap:wrap;gap:.7rem}
.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.6rem .9rem;
min-width:11rem}.card .label{color:#57606a;font-size:.85rem}.card .value{font-size:1.1rem;
font-weight:600}
table{border-collapse:collapse;background:#fff;font-size:.9rem;width:100%}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:break-word}th{background:#eef1f4}
.note{color:#57606a;font-size:.85rem;margin:.3rem 0}
figure{margin:0 0 1rem;background:#fff;border:1px solid #d0d7de;padding:.5rem}
figure svg{max-width:100%;height:auto}
.flag{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.4rem .7rem;
margin:.4rem 0}
blockquote{background:#fff;border-left:4px solid #0072b2;margin:0;padding:.6rem 1rem}
footer{color:#57606a;font-size:.8rem;margin-top:2rem}
"""


def render_html(result: RunResult, series: Series | None = None) -> str:
    """The run's report as one self-contained HTML page.

    Figures (carbon impact, power by device) are drawn with matplotlib and inlined as SVG;
    without matplotlib, or when the run's time series is not stored, the page says why and
    how to get them, and everything else is still there.

    Args:
        result: a run (``Tracker.stop()``, ``carbonmonitor.load(...)``).
        series: its time series; default: read from the store the run was recorded in.

    Example:
        >>> import tempfile, carbonmonitor
        >>> from carbonmonitor.report import render_html
        >>> db = tempfile.mkdtemp() + "/runs.db"
        >>> with carbonmonitor.track(backend="fake", db=db, quiet=True, country="DE") as run:
        ...     pass
        >>> render_html(run.result).startswith("<!DOCTYPE html>")
        True
    """
    figures, note = figure_svgs(result, series)
    if series is None:
        from carbonmonitor.report.content import stored_series

        series = stored_series(result)
    report = build_report(result, series)
    parts = [_head(report), _header(report), _headline(report), _figures(figures, note)]
    parts.extend(_table(t) for t in report.tables)
    parts.append(_flags(report))
    parts.append(f'<section id="citation"><h2>How to cite</h2><blockquote>'
                 f"{escape(report.citation)}</blockquote></section>")
    parts.append(f"<footer>Report made by carbonmonitor {escape(__version__)} from the stored "
                 "run; every number above is in the store and in <code>carbonmonitor show "
                 f"{escape(result.identity.run_id)}</code>.</footer></main></body></html>\n")
    return "\n".join(parts)


def figure_svgs(result: RunResult, series: Series | None) -> tuple[list[tuple[str, str]], str]:
    """``([(caption, svg text)], note)``: the figures, or none and a note saying why."""
    from carbonmonitor.plot import (
        INSTALL,
        device_figure,
        impact_figure,
        intensity_figure,
        power_figure,
    )

    try:
        impact = impact_figure(result, series=series)
        power = power_figure(result, series=series)
        devices = device_figure(result)
        intensity = intensity_figure(result)
    except ImportError:
        return [], (f"Figures need matplotlib, which is not installed. Fix: {INSTALL}, then "
                    "make the report again.")
    except StoreError as err:
        return [], f"No figures: {err}"
    hourly = ("hourly factors, hours without provider data marked" if result.emissions.hourly
              else "the yearly factor with its hourly range; no hourly data was used")
    return [("Carbon impact: CO2e by phase, over time, and the same energy elsewhere",
             svg_text(impact)), ("Power over time by device", svg_text(power)),
            ("Energy and CO2e by device, with intervals and measurement methods"
             + (", and energy by phase and device" if result.phases else ""),
             svg_text(devices)),
            (f"Carbon intensity over the run: {hourly}", svg_text(intensity))], ""


def svg_text(fig: Figure) -> str:
    """``fig`` as an ``<svg>`` element to inline in HTML (text kept as escaped text, no date,
    stable ids), without the XML declaration and doctype."""
    import matplotlib

    out = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "carbonmonitor"}):
        fig.savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    # the RDF metadata block only names namespaces and a generator: not needed inline
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.DOTALL)
    return text[text.index("<svg"):]


def _head(report: Report) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body><main>")


def _header(report: Report) -> str:
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in report.facts)
    return f'<header><h1>{escape(report.title)}</h1><dl class="facts">{facts}</dl></header>'


def _headline(report: Report) -> str:
    cards = "".join(f'<div class="card"><div class="label">{escape(k)}</div>'
                    f'<div class="value">{escape(v)}</div></div>' for k, v in report.headline)
    return (f'<section id="headline"><h2>Headline figures</h2><div class="cards">{cards}'
            "</div></section>")


def _figures(figures: list[tuple[str, str]], note: str) -> str:
    body = "".join(f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"
                   for caption, svg in figures)
    if note:
        body += f'<p class="note">{escape(note)}</p>'
    return f'<section id="figures"><h2>Figures</h2>{body}</section>'


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    rows = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in table.rows)
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    return (f'<section id="{escape(table.key)}"><h2>{escape(table.title)}</h2><table>'
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{note}</section>")


def _flags(report: Report) -> str:
    if not report.flags:
        return '<section id="flags"><h2>Flags</h2><p>None: nothing was estimated or ' \
               "degraded beyond what the tables say.</p></section>"
    items = "".join(f'<div class="flag"><code>{escape(code)}</code>: {escape(message)}'
                    + (f".<br>Fix: {escape(fix)}" if fix else "") + "</div>"
                    for code, message, fix in report.flags)
    return f'<section id="flags"><h2>Flags</h2>{items}</section>'
