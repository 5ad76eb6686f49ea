"""The dashboard's HTML pages: the runs list (with the live panel), a comparison, and errors.

Every user-supplied string goes through :func:`html.escape`; the only script is a fixed inline
one, allowed by a per-response nonce, that fetches JSON and writes it with ``textContent``, so no
stored string is ever parsed as HTML or script. Numbers are formatted as the summary does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from urllib.parse import quote, urlencode

from carbonmonitor.compare import BY, Comparison, default_metric, table_cells
from carbonmonitor.records import RunResult
from carbonmonitor.report.html import _CSS
from carbonmonitor.summary import duration_text, energy_text, mass_text, when_text

__all__ = ["compare_page", "csp", "error_page", "live_rows", "runs_page"]

POLL_MS = 2000

_EXTRA_CSS = """
nav{margin:0 0 1rem}nav a{margin-right:1rem}
form.filter{margin:.5rem 0}form.filter input,form.filter select{margin:0 .6rem 0 .2rem}
#live-status{color:#57606a;font-size:.85rem}
td.n{white-space:nowrap}
div.wide{overflow-x:auto}
"""

# Fetches /api/live and updates the live table in place; strings go in through textContent.
_LIVE_SCRIPT = """
(function(){
  var body=document.getElementById("live-body"),status=document.getElementById("live-status");
  function cell(text){var td=document.createElement("td");td.textContent=text;return td;}
  function link(run){var td=document.createElement("td"),a=document.createElement("a");
    a.href="/run/"+encodeURIComponent(run.run_id);a.textContent=run.run_id;td.appendChild(a);
    return td;}
  var live={};
  function ended(id){  // a run that left the live table: its row below is out of date
    var row=document.getElementById("run-"+id),c=row&&row.querySelector("td.status");
    if(c){c.textContent="ended: reload for its final figures";}
  }
  function update(){
    fetch("/api/live",{cache:"no-store"}).then(function(r){return r.json();}).then(function(d){
      var rows=[],now={};
      d.runs.forEach(function(run){now[run.run_id]=true;});
      Object.keys(live).forEach(function(id){if(!now[id]){ended(id);}});
      live=now;
      d.runs.forEach(function(run){var tr=document.createElement("tr");
        tr.id="live-"+run.run_id;tr.appendChild(link(run));
        [run.project,run.name,run.duration,run.power,run.energy,run.co2e].forEach(
          function(t){tr.appendChild(cell(t));});rows.push(tr);});
      body.replaceChildren.apply(body,rows);
      status.textContent=d.runs.length+" running; updated "+new Date().toLocaleTimeString();
      status.dataset.updates=String(Number(status.dataset.updates||"0")+1);
    }).catch(function(e){status.textContent="live update failed: "+e;})
      .finally(function(){setTimeout(update,POLL_MS);});  // the next poll after this one
  }
  update();
})();
""".replace("POLL_MS", str(POLL_MS))


def csp(nonce: str | None) -> str:
    """The Content-Security-Policy: only this server (``'self'``), inline styles, inline SVG
    figures, and no script but the one carrying ``nonce``."""
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return (f"default-src 'self'; script-src {script}; style-src 'unsafe-inline'; "
            "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


def _page(title: str, body: str, *, nonce: str | None = None, script: str = "") -> str:
    tag = f'<script nonce="{escape(nonce)}">{script}</script>' if nonce and script else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}{_EXTRA_CSS}</style></head><body><main>"
            '<nav id="nav"><a href="/">Runs</a><a href="/compare">Compare</a></nav>'
            f"{body}{tag}</main></body></html>\n")


def _run_link(run_id: str, *, short: bool = False) -> str:
    """A link to the run's page; ``short``: named by its short id (the last 8 characters, as
    the comparison's groups name runs), the whole id as its title."""
    shown = run_id[-8:] if short and len(run_id) > 8 else run_id
    return (f'<a href="/run/{quote(run_id, safe="")}" title="{escape(run_id)}">'
            f"{escape(shown)}</a>")


def _table(table_id: str, header: Sequence[str], rows: Iterable[str], body_id: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    tbody = f' id="{body_id}"' if body_id else ""
    return (f'<table id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody{tbody}>{''.join(rows)}</tbody></table>")


def live_rows(live: Sequence[dict[str, str]]) -> list[str]:
    """The live table's rows, as the script draws them (the page is right before its first
    update, and without script)."""
    cells = ("project", "name", "duration", "power", "energy", "co2e")
    return [f'<tr id="live-{escape(run["run_id"])}"><td>{_run_link(run["run_id"])}</td>'
            + "".join(f"<td>{escape(run[c])}</td>" for c in cells) + "</tr>" for run in live]


def runs_page(runs: Sequence[RunResult], live: Sequence[dict[str, str]], *, nonce: str,
              project: str = "", tag: str = "", more: bool = False, limit: int = 0,
              projects: Sequence[tuple[str, int, float, float]] = ()) -> str:
    """``/``: running runs (live), the runs table (newest first; ``more``: older runs match
    beyond the ``limit`` shown) and the projects' totals."""
    filters = (f'<form class="filter" id="filter" method="get" action="/">'
               f'<label>project<input name="project" value="{escape(project)}"></label>'
               f'<label>tag<input name="tag" value="{escape(tag)}"></label>'
               '<button type="submit">filter</button></form>')
    live_table = _table("live", ("run", "project", "name", "running for", "power", "energy",
                                 "CO2e"), live_rows(live), body_id="live-body")
    rows = []
    for r in runs:
        ident = r.identity
        tags = ", ".join(ident.tags)
        rows.append(
            f'<tr id="run-{escape(ident.run_id)}"><td><input type="checkbox" name="run" '
            f'value="{escape(ident.run_id)}" aria-label="pick {escape(ident.run_id)}"></td>'
            f"<td>{_run_link(ident.run_id)}</td>"
            f'<td class="n" title="{escape(ident.started_at)}">'
            f"{escape(when_text(ident.started_at))}</td><td>{escape(ident.project)}</td>"
            f"<td>{escape(ident.name)}</td><td>{escape(tags)}</td>"
            f'<td class="status">{escape(r.status)}</td>'
            f'<td class="n">{escape(duration_text(r.duration_s))}</td>'
            f'<td class="n">{escape(energy_text(r.energy_j))}</td>'
            f'<td class="n">{escape(mass_text(r.co2e_g))}</td>'
            f'<td><a href="/compare?{escape(urlencode({"runs": ident.run_id}))}">compare</a>'
            "</td></tr>")
    runs_table = _table("runs", ("", "run", "started", "project", "name", "tags", "status",
                                 "duration", "energy", "CO2e", ""), rows)
    ids = ",".join(r.identity.run_id for r in runs[:10])
    compare_all = (f'<a id="compare-shown" href="/compare?{escape(urlencode({"runs": ids}))}">'
                   "or compare the runs shown (up to 10)</a>" if len(runs) > 1 else "")
    if more:
        older = urlencode({k: v for k, v in (("project", project), ("tag", tag),
                                              ("limit", str(limit * 10))) if v})
        runs_table += (f'<p class="note" id="more">The newest {limit} runs are shown. '
                       f'<a href="/?{escape(older)}">Show up to {limit * 10}</a>, or filter '
                       "by project or tag.</p>")
    picker = ('<form id="pick" method="get" action="/compare">' + runs_table
              + '<p><button type="submit" id="compare-picked">compare the runs ticked</button> '
              + compare_all + "</p></form>") if runs else runs_table
    body = ("<h1>carbonmonitor dashboard</h1>"
            '<section id="live-section"><h2>Running now</h2>'
            f'<p id="live-status">{len(live)} running</p>{live_table}</section>'
            f'<section id="runs-section"><h2>Runs</h2>{filters}{picker}'
            f"</section>{_projects(projects)}")
    return _page("carbonmonitor dashboard", body, nonce=nonce, script=_LIVE_SCRIPT)


def _projects(totals: Sequence[tuple[str, int, float, float]]) -> str:
    rows = [f'<tr><td><a href="/?{escape(urlencode({"project": p}))}">{escape(p)}</a></td>'
            f'<td class="n">{int(n)}</td><td class="n">{escape(energy_text(e))}</td>'
            f'<td class="n">{escape(mass_text(c))}</td>'
            f'<td><a href="/compare?{escape(urlencode({"project": p, "by": "name"}))}">'
            "compare by name</a></td></tr>" for p, n, e, c in totals]
    return ('<section id="projects-section"><h2>Projects</h2>'
            + _table("projects", ("project", "runs", "energy", "CO2e", ""), rows)
            + "</section>")


def compare_page(table: Comparison, svg: str, note: str, *, results: Sequence[RunResult],
                 query: Mapping[str, str]) -> str:
    """``/compare``: a form to regroup (by) and choose the quality metric, the comparison table
    (ranked by CO2e, the same cells as ``carbonmonitor compare``) and its figure (inline SVG).
    ``results`` are the runs compared (for the form's choices), ``query`` the request's."""
    header, cells = table_cells(table)
    rows = ["<tr>" + "".join(f'<td class="n">{escape(c)}</td>' if k > 1 else
                             f"<td>{escape(c)}</td>" for k, c in enumerate(line))
            + "<td>" + " ".join(_run_link(i, short=True) for i in r.run_ids) + "</td></tr>"
            for r, line in zip(table.rows, cells, strict=True)]
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in (table.note, note) if n)
    if any(r.n > 1 for r in table.rows):
        notes += '<p class="note">groups: mean ± standard deviation [min..max] over their runs</p>'
    figure = f'<figure id="compare-figure">{svg}</figure>' if svg else ""
    body = (f"<h1>Comparison by {escape(table.by)}</h1>" + _compare_form(table, results, query)
            + '<div class="wide">' + _table("compare", [*header, "runs"], rows) + "</div>"
            + notes + figure)
    return _page(f"carbonmonitor: comparison by {table.by}", body)


def _compare_form(table: Comparison, results: Sequence[RunResult],
                  query: Mapping[str, str]) -> str:
    """Group by and metric choices; the selection (runs, project, tag) rides along hidden."""
    params = sorted({k for r in results for k in r.identity.params})
    groups = [*BY, *(f"param:{k}" for k in params)]
    directed = {m.name for r in results for m in r.metrics if m.direction}
    metrics = sorted(dict.fromkeys(m.name for r in results for m in r.metrics),
                     key=lambda name: name not in directed)  # those with a direction first
    shown = {m: m if m in directed else f"{m} (no direction: last value, no front)"
             for m in metrics}

    def options(values: Sequence[str], chosen: str, default: str = "") -> str:
        first = f'<option value="">{escape(default)}</option>' if default else ""
        return first + "".join(
            f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>'
            f"{escape(shown.get(v, v))}</option>" for v in values)

    hidden = "".join(f'<input type="hidden" name="{k}" value="{escape(query[k])}">'
                     for k in ("runs", "project", "tag", "since") if query.get(k))
    chosen_metric = query.get("metric") or ""
    return ('<form class="filter" id="compare-form" method="get" action="/compare">' + hidden
            + f'<label>group by<select id="by" name="by">{options(groups, table.by)}</select>'
            '</label><label>quality metric<select id="metric" name="metric">'
            + options(metrics, chosen_metric,
                      default=f"default ({default_metric(results) or 'none'})")
            + '</select></label><button type="submit" id="regroup">show</button></form>')


def error_page(title: str, message: str) -> str:
    """A 404/400 page: what was asked for (as text) and the way back to the list."""
    body = (f'<h1 id="error">{escape(title)}</h1><p id="error-message">{escape(message)}</p>'
            '<p><a id="back" href="/">Back to the runs</a></p>')
    return _page(title, body)
