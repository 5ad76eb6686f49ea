"""The dashboard's HTTP server: standard library only (``ThreadingHTTPServer``), bound to
127.0.0.1 unless asked otherwise, reading the store on every request (runs are written every
flush interval while they run, so a reload, or the live panel's poll, shows new samples)."""

from __future__ import annotations

import json
import secrets
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from carbonmonitor.errors import CarbonMonitorError, ConfigError, StoreError
from carbonmonitor.records import RunResult
from carbonmonitor.store import Store, open_store
from carbonmonitor.summary import duration_text, energy_text, mass_text

__all__ = ["Dashboard", "live_runs", "serve"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class Dashboard(ThreadingHTTPServer):
    """A running dashboard: ``url``, ``store``; ``stop()`` shuts it down (also on ``with``)."""

    daemon_threads = True

    def __init__(self, store: Store, host: str, port: int) -> None:
        self.store = store
        self._thread: threading.Thread | None = None
        if ":" in host:  # an IPv6 literal such as ::1
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host!s}]" if ":" in str(host) else str(host)
        return f"http://{host}:{port}/"

    def start(self) -> Dashboard:
        """Serve in a background thread; returns at once."""
        self._thread = threading.Thread(target=self.serve_forever, name="carbonmonitor-dashboard",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        self.server_close()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(db: Path | str | None = None, host: str = "127.0.0.1", port: int = 0, *,
          start: bool = True) -> Dashboard:
    """Start the dashboard on ``host:port`` (port 0: a free one) over the store ``db``.

    Raises:
        StoreError: the store does not exist (the message says how to make or name one).

    Example:
        >>> import tempfile, urllib.request, carbonmonitor
        >>> from carbonmonitor.dashboard import serve
        >>> db = tempfile.mkdtemp() + "/runs.db"
        >>> with carbonmonitor.track(backend="fake", db=db, quiet=True, name="demo"):
        ...     pass
        >>> with serve(db) as server:
        ...     page = urllib.request.urlopen(server.url).read().decode()
        >>> "demo" in page
        True
    """
    store = open_store(db)
    if not store.path.exists():
        raise StoreError(f"no run store at {store.path}: nothing has been recorded there yet. "
                         "Fix: track a run first (carbonmonitor run -- python train.py), or "
                         "name an existing store with --db PATH (or CARBONMONITOR_DB)")
    store.runs(limit=1)  # a file that is not a store fails here, not on the first request
    server = Dashboard(store, host, port)
    return server.start() if start else server


def live_runs(store: Store) -> list[dict[str, Any]]:
    """The running runs with their latest power (from the last two stored samples), energy and
    CO2e so far, as JSON-ready dicts: raw SI numbers and the summary's texts."""
    out = []
    for r in store.runs(status="running"):
        power_w = _latest_power_w(store, r.identity.run_id)
        out.append({
            "run_id": r.identity.run_id, "project": r.identity.project, "name": r.identity.name,
            "tags": list(r.identity.tags), "duration_s": r.duration_s, "energy_j": r.energy_j,
            "co2e_g": r.co2e_g, "power_w": power_w, "samples": r.sample_count,
            "duration": duration_text(r.duration_s), "energy": energy_text(r.energy_j),
            "co2e": mass_text(r.co2e_g),
            "power": "-" if power_w is None else f"{power_w:.1f} W"})
    return out


def _latest_power_w(store: Store, run_id: str) -> float | None:
    try:
        return store.latest_power_w(run_id)
    except StoreError:  # the store went away between the two reads
        return None


def run_json(r: RunResult) -> dict[str, Any]:
    ident = r.identity
    return {"run_id": ident.run_id, "project": ident.project, "name": ident.name,
            "tags": list(ident.tags), "status": r.status, "started_at": ident.started_at,
            "duration_s": r.duration_s, "energy_j": r.energy_j, "co2e_g": r.co2e_g,
            "duration": duration_text(r.duration_s), "energy": energy_text(r.energy_j),
            "co2e": mass_text(r.co2e_g)}


def json_text(data: Any) -> str:
    """JSON that stays inert even if a browser sniffed it as HTML: ``<``, ``>``, ``&`` escaped."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _Handler(BaseHTTPRequestHandler):
    server: Dashboard
    server_version = "carbonmonitor-dashboard"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass  # quiet: the terminal shows the URL, not every poll

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        from carbonmonitor.dashboard import pages

        refused = self._foreign_host()
        if refused:
            self._send_html(HTTPStatus.FORBIDDEN, pages.error_page("Wrong host name", refused))
            return
        url = urlsplit(self.path)
        given = parse_qs(url.query)
        query = {k: v[-1] for k, v in given.items()}
        if given.get("run"):  # the runs page's ticked boxes: run=ID&run=ID
            query["runs"] = ",".join([*query.get("runs", "").split(","), *given["run"]]).strip(",")
        try:
            if url.path == "/favicon.ico":  # browsers ask for it: no icon, and no error
                self.send_response(HTTPStatus.NO_CONTENT)
                self.end_headers()
            elif url.path == "/":
                self._runs_page(query)
            elif url.path.startswith("/run/"):
                self._run_page(unquote(url.path[len("/run/"):]))
            elif url.path == "/compare":
                self._compare_page(query)
            elif url.path == "/api/runs":
                runs = self.server.store.runs(project=query.get("project") or None,
                                              tags=_tags(query), limit=_limit(query))
                self._send_json({"runs": [run_json(r) for r in runs]})
            elif url.path == "/api/live":
                self._send_json({"runs": live_runs(self.server.store)})
            else:
                self._send_html(HTTPStatus.NOT_FOUND, pages.error_page(
                    "Not found", f"There is no page {url.path!r} here."))
        except CarbonMonitorError as err:
            self._send_html(HTTPStatus.BAD_REQUEST, pages.error_page("Cannot show that",
                                                                     str(err)))

    def _foreign_host(self) -> str:
        """Why the request's Host header is refused ('' if it is not). Bound to loopback, the
        dashboard answers only to loopback names: a web page whose own host name was made to
        resolve to 127.0.0.1 (DNS rebinding) would otherwise read every run as its own site."""
        bound = str(self.server.server_address[0])
        if bound not in LOOPBACK and not bound.startswith("127."):
            return ""  # served on purpose to other machines (with a warning at start-up)
        port = self.server.server_address[1]
        host = (self.headers.get("Host") or "").strip().lower()
        allowed = {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]", bound)}
        if port == 80:
            allowed |= {"127.0.0.1", "localhost", "[::1]", bound}
        if host in allowed:
            return ""
        return (f"This dashboard answers only to {self.server.url} (or localhost:{port}); the "
                f"request named the host {host or '(none)'!r}. Open the address the dashboard "
                "printed. (A page from another site reaching 127.0.0.1 under its own name is "
                "refused, so it cannot read your runs.)")

    def _runs_page(self, query: dict[str, str]) -> None:
        from carbonmonitor.dashboard import pages

        store = self.server.store
        limit = _limit(query)
        runs = store.runs(project=query.get("project") or None, tags=_tags(query),
                          limit=limit + 1)
        live = live_runs(store)
        nonce = secrets.token_urlsafe(16)
        self._send_html(HTTPStatus.OK, pages.runs_page(
            runs[:limit], live, nonce=nonce, project=query.get("project", ""),
            tag=query.get("tag", ""), more=len(runs) > limit, limit=limit,
            projects=store.project_totals()), nonce=nonce)

    def _run_page(self, run_id: str) -> None:
        from carbonmonitor.dashboard import pages
        from carbonmonitor.report import render_html

        store = self.server.store
        try:
            result = store.load(run_id)
        except StoreError as err:
            self._send_html(HTTPStatus.NOT_FOUND, pages.error_page(
                f"No run {run_id!r}", f"{err}. The list of runs is on the first page."))
            return
        try:
            series = store.series(result.identity.run_id)
        except StoreError:
            series = None
        page = render_html(result, series)
        nav = '<nav id="nav"><a href="/">Runs</a><a href="/compare">Compare</a></nav>'
        self._send_html(HTTPStatus.OK, page.replace("<main>", "<main>" + nav, 1))

    def _compare_page(self, query: dict[str, str]) -> None:
        from carbonmonitor.compare import compare, compare_figure, finished
        from carbonmonitor.dashboard import pages
        from carbonmonitor.report.html import svg_text

        store = self.server.store
        left = ""
        ids = [i.strip() for i in query.get("runs", "").split(",") if i.strip()]
        if ids:  # each run once, however often it was named
            results = list({r.identity.run_id: r for r in map(store.load, ids)}.values())
        elif query.get("project") or query.get("tag") or query.get("since"):
            selected = list(store.runs(project=query.get("project") or None, tags=_tags(query),
                                       since=query.get("since") or None, limit=COMPARE_MAX + 1))
            results, unfinished = finished(selected)  # as `carbonmonitor compare` selects
            if unfinished:
                left = (f"{len(unfinished)} running or interrupted run(s) left out (partial "
                        "figures); tick them on the runs page to compare them anyway.")
        else:
            results = []
        if not results:
            self._send_html(HTTPStatus.OK, pages.error_page(
                "Nothing to compare", "Tick runs on the runs page and press \"compare the runs "
                "ticked\", or choose runs with ?runs=ID,ID, a project with "
                "?project=NAME&by=name or a tag with ?tag=TAG."))
            return
        if len(results) > COMPARE_MAX:
            raise ConfigError(f"more than {COMPARE_MAX} runs selected: narrow the selection "
                              "(a project and a tag together, or runs=ID,ID), or use "
                              "`carbonmonitor compare`, which has no limit")
        table = compare(results, by=query.get("by", "run"), metric=query.get("metric") or None)
        svg, note = "", ""
        try:  # a Figure on the Agg canvas, not pyplot: nothing global to close, thread-safe
            svg = svg_text(compare_figure(table))
        except ImportError:
            from carbonmonitor.plot import INSTALL

            note = f"No figure: matplotlib is not installed. Fix: {INSTALL}, then reload."
        note = " ".join(n for n in (left, note) if n)
        self._send_html(HTTPStatus.OK, pages.compare_page(table, svg, note, results=results,
                                                          query=query))

    def _send_html(self, status: HTTPStatus, page: str, nonce: str | None = None) -> None:
        from carbonmonitor.dashboard.pages import csp

        self._send(status, page.encode("utf-8"), "text/html; charset=utf-8", csp(nonce))

    def _send_json(self, data: Any) -> None:
        self._send(HTTPStatus.OK, json_text(data).encode("ascii"), "application/json",
                   "default-src 'none'")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, policy: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", policy)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)


RUNS_SHOWN = 100
"""Runs listed on ``/`` and by ``/api/runs`` unless ``?limit=N`` asks for more."""
COMPARE_MAX = 200
"""Runs compared at most on ``/compare`` (a project or tag selecting more is refused)."""


def _limit(query: dict[str, str]) -> int:
    text = query.get("limit", "").strip()
    if not text:
        return RUNS_SHOWN
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"limit must be a positive whole number of runs; got {text!r}")
    return int(text)


def _tags(query: dict[str, str]) -> list[str]:
    return [t.strip() for t in query.get("tag", "").split(",") if t.strip()]
