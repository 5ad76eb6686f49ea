"""The dashboard over real HTTP on 127.0.0.1, on runs stored with the fake backend."""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import carbonmonitor
from carbonmonitor import FakeBackend, ManualClock, Tracker
from carbonmonitor.dashboard import Dashboard, serve
from carbonmonitor.errors import StoreError
from carbonmonitor.summary import duration_text, energy_text, mass_text

IMG = "<img src=x onerror=window.__x=1>"
SCRIPT = "</script><script>window.__y=1</script>"


def make_run(db: Path, *, name: str = "resnet", project: str = "vision",
             tags: tuple[str, ...] = (), phase: str = "train", metric: str = "accuracy",
             start_wall: float = 1_764_000_000.0) -> str:
    """100 W cpu + 10 W memory for 10 s, one phase, one metric."""
    clock = ManualClock(start_wall=start_wall)
    t = Tracker(backend=[FakeBackend({"cpu": 100.0, "memory": 10.0})], clock=clock,
                sampling="manual", quiet=True, db=str(db), name=name, project=project,
                tags=list(tags), country="DE")
    t.start()
    with t.phase(phase):
        clock.advance(10)
        t.tick()
        t.add_work(samples=100)
    t.log_metric(metric, 0.9)
    return t.stop().identity.run_id


class Parsed(HTMLParser):
    """Text, tags, and elements by id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())

    def ids(self) -> set[str]:
        return {a["id"] or "" for _, a in self.tags if "id" in a}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def server(db: Path) -> Iterator[Dashboard]:
    make_run(db)
    with serve(db) as running:
        yield running


def get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode("utf-8"), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8"), dict(err.headers)


def wait_for(condition: Callable[[], Any], deadline_s: float = 10.0) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)


def test_binds_loopback_only_on_a_free_port(server: Dashboard) -> None:
    host, port = server.server_address[:2]
    assert host == "127.0.0.1" and port != 0
    assert server.url == f"http://127.0.0.1:{port}/"


def test_a_foreign_host_name_is_refused_against_dns_rebinding(server: Dashboard) -> None:
    import http.client

    port = server.server_address[1]

    def status_for(host: str | None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.putrequest("GET", "/api/runs", skip_host=True)
            if host is not None:
                conn.putheader("Host", host)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8")
        finally:
            conn.close()

    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert status_for(host)[0] == 200, host
    for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1", None,
                 f"127.0.0.1:{port + 1}"):
        status, page = status_for(host)
        assert status == 403, host
        text = Parsed(page).text
        assert server.url in text and "resnet" not in text  # no run leaks
        assert repr((host or "(none)").lower()) in text


def test_runs_page_shows_a_limited_number_of_runs_with_a_way_to_more(
        server: Dashboard, db: Path) -> None:
    for i in range(3):
        make_run(db, name=f"extra{i}", start_wall=1_764_000_100.0 + i)
    status, page, _ = get(server.url + "?limit=2")
    parsed = Parsed(page)
    shown = [i for i in parsed.ids() if i.startswith("run-")]
    assert status == 200 and len(shown) == 2 and "more" in parsed.ids()
    assert ("a", {"href": "/?limit=20"}) in parsed.tags
    projects = Cells(page, "projects").rows[1:]  # totals over every run, not the ones shown
    runs = carbonmonitor.runs(db=str(db))
    assert projects == [["vision", "4", energy_text(sum(r.energy_j for r in runs)),
                         mass_text(sum(r.co2e_g for r in runs)), "compare by name"]]
    status, page, _ = get(server.url)
    assert status == 200 and "more" not in Parsed(page).ids()
    assert len(json.loads(get(server.url + "api/runs?limit=1")[1])["runs"]) == 1
    for bad in ("0", "x", "-1"):
        status, page, _ = get(server.url + f"?limit={bad}")
        assert status == 400 and "limit must be a positive whole number" in Parsed(page).text


def test_compare_needs_a_selection_and_caps_it(server: Dashboard, db: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonmonitor.dashboard import server as server_module

    status, page, _ = get(server.url + "compare")
    assert status == 200 and "Nothing to compare" in Parsed(page).text
    make_run(db, name="bert", start_wall=1_764_000_100.0)
    monkeypatch.setattr(server_module, "COMPARE_MAX", 1)
    status, page, _ = get(server.url + "compare?project=vision")
    assert status == 400 and "more than 1 runs selected" in Parsed(page).text
    run_id = carbonmonitor.runs(db=str(db))[0].identity.run_id
    status, page, _ = get(server.url + f"compare?runs={run_id},{run_id[:-2]}&run={run_id}")
    rows = Cells(page, "compare").rows[1:]  # one run named three ways: one row, n = 1
    assert status == 200 and len(rows) == 1 and rows[0][2] == "1"


def test_runs_page_shows_the_stores_numbers(server: Dashboard, db: Path) -> None:
    make_run(db, name="bert", project="nlp", tags=("seed1",), start_wall=1_764_000_500.0)
    status, page, headers = get(server.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'nonce-" in csp
    parsed = Parsed(page)
    nonce = csp.split("'nonce-")[1].split("'")[0]
    scripts = [a for tag, a in parsed.tags if tag == "script"]
    assert scripts == [{"nonce": nonce}]  # one script, ours, no src
    assert {"runs", "live", "live-body", "live-status", "projects", "filter"} <= parsed.ids()
    runs = carbonmonitor.runs(db=str(db))
    assert [r.identity.name for r in runs] == ["bert", "resnet"]  # newest first
    text = parsed.text
    for r in runs:
        assert f"run-{r.identity.run_id}" in parsed.ids()
        for value in (r.identity.run_id, r.identity.project, duration_text(r.duration_s),
                      energy_text(r.energy_j), mass_text(r.co2e_g)):
            assert value in text
    assert text.index("bert") < text.index("resnet")
    total = sum(r.co2e_g for r in runs if r.identity.project == "nlp")
    assert mass_text(total) in text

    boxes = [a for tag, a in parsed.tags if tag == "input" and a.get("type") == "checkbox"]
    assert [(b["name"], b["value"]) for b in boxes] == [("run", r.identity.run_id) for r in runs]
    assert {"pick", "compare-picked", "compare-shown"} <= parsed.ids()
    picked = "&".join(f"run={quote(r.identity.run_id)}" for r in runs)  # what ticking submits
    status, compared, _ = get(server.url + "compare?" + picked)
    rows = Cells(compared, "compare").rows[1:]
    assert status == 200 and sorted(row[-1] for row in rows) == sorted(
        r.identity.run_id[-8:] for r in runs)  # the short ids, linked to the runs

    _, filtered, _ = get(server.url + "?project=nlp")
    assert "bert" in Parsed(filtered).text and "resnet" not in Parsed(filtered).text
    _, by_tag, _ = get(server.url + "?tag=seed1")
    ids = Parsed(by_tag).ids()
    assert f"run-{runs[0].identity.run_id}" in ids and f"run-{runs[1].identity.run_id}" not in ids

    _, body, headers = get(server.url + "api/runs")
    assert headers["Content-Type"] == "application/json"
    data = json.loads(body)["runs"]
    assert [d["run_id"] for d in data] == [r.identity.run_id for r in runs]
    assert data[0]["energy_j"] == pytest.approx(runs[0].energy_j)
    assert data[0]["co2e"] == mass_text(runs[0].co2e_g)


def test_run_page_is_the_report_with_a_way_back(server: Dashboard, db: Path) -> None:
    result = carbonmonitor.load("last", db=str(db))
    status, page, _ = get(server.url + f"run/{result.identity.run_id}")
    parsed = Parsed(page)
    assert status == 200 and "nav" in parsed.ids() and "headline" in parsed.ids()
    assert energy_text(result.energy_j) in parsed.text and mass_text(result.co2e_g) in parsed.text
    assert "script" not in {tag for tag, _ in parsed.tags}


def test_unknown_run_is_a_404_naming_it(server: Dashboard) -> None:
    status, page, _ = get(server.url + "run/nope-123")
    parsed = Parsed(page)
    assert status == 404 and "nope-123" in parsed.text
    assert ("a", {"id": "back", "href": "/"}) in parsed.tags
    status, _, _ = get(server.url + "no/such/page")
    assert status == 404


class Cells(HTMLParser):
    """The header and body cells (text) of the table with id ``table_id``, and the form's
    selects: ``{name: ([option values], selected value)}``, and hidden inputs."""

    def __init__(self, html: str, table_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.table_id, self.inside, self.cell = table_id, False, None
        self.rows: list[list[str]] = []
        self.selects: dict[str, tuple[list[str], str]] = {}
        self.hidden: dict[str, str] = {}
        self._select = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self.inside = a.get("id") == self.table_id
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = ""
        elif tag == "select":
            self._select = a["name"]
            self.selects[self._select] = ([], "")
        elif tag == "option":
            values, chosen = self.selects[self._select]
            values.append(a["value"])
            if "selected" in a:
                self.selects[self._select] = (values, a["value"])
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a["value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join(self.cell.split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell += data


def test_compare_page_shows_the_clis_cells_with_controls(server: Dashboard, db: Path) -> None:
    from carbonmonitor.cli.compare import format_table
    from carbonmonitor.compare import compare
    from carbonmonitor.summary import MASS_UNITS

    pytest.importorskip("matplotlib")
    make_run(db, name="bert", project="vision", start_wall=1_764_000_500.0)
    clock = ManualClock(start_wall=1_764_001_000.0)  # a third run: 40 W for 7 s, params, loss
    t = Tracker(backend=[FakeBackend({"cpu": 40.0})], clock=clock, sampling="manual",
                quiet=True, db=str(db), name="bert", project="vision", country="DE",
                params={"seed": 1})
    t.start()
    clock.advance(7)
    t.add_work(samples=50)
    t.log_metric("accuracy", 0.8)
    t.log_metric("val_loss", 0.3)
    t.stop()
    runs = carbonmonitor.runs(db=str(db))
    ids = ",".join(r.identity.run_id for r in runs)
    status, page, _ = get(server.url + f"compare?runs={ids}")
    parsed, cells = Parsed(page), Cells(page, "compare")
    assert status == 200 and {"compare", "compare-figure", "compare-form"} <= parsed.ids()
    assert "svg" in {tag for tag, _ in parsed.tags}
    header, *rows = cells.rows
    assert header[:4] == ["#", "run", "n", "basis"] and header[-2:] == ["Pareto", "runs"]
    assert len(rows) == 3
    co2e_col = next(i for i, h in enumerate(header) if h.startswith("CO2e ("))
    unit = header[co2e_col][len("CO2e ("):-1]
    stored = {r.identity.run_id[-8:]: r.co2e_g for r in runs}  # the runs column: short ids
    for row in rows:  # the store's CO2e, in the column's unit, three significant digits
        grams = stored[row[-1]]
        assert float(row[co2e_col]) == pytest.approx(grams / MASS_UNITS[unit], rel=5e-3)
    cli = format_table(compare(runs)).splitlines()  # the terminal shows the same cells
    for row in rows:
        line = next(li for li in cli[1:] if row[1] in li)
        assert all(c in line for c in row[:-1])
    assert cells.hidden == {"runs": ids}
    groups, chosen = cells.selects["by"]
    assert groups == ["run", "name", "project", "tag", "param:seed"] and chosen == "run"
    metrics, chosen = cells.selects["metric"]
    assert metrics == ["", "accuracy", "val_loss"] and chosen == ""

    status, page, _ = get(server.url + f"compare?runs={ids}&by=name&metric=val_loss")
    cells = Cells(page, "compare")
    header, *rows = cells.rows
    assert status == 200 and "Comparison by name" in Parsed(page).text
    assert header[1] == "name" and "val_loss (best)" in header
    assert sorted(r[1] for r in rows) == ["bert", "resnet"]
    assert cells.selects["by"][1] == "name" and cells.selects["metric"][1] == "val_loss"
    assert "mean ± standard deviation" in Parsed(page).text  # bert is a group of two
    status, page, _ = get(server.url + "compare?project=vision&by=name")
    assert status == 200 and Cells(page, "compare").hidden == {"project": "vision"}
    status, page, _ = get(server.url + "compare?runs=nope")
    assert status == 400 and "nope" in Parsed(page).text
    status, page, _ = get(server.url + f"compare?runs={ids}&by=colour")
    assert status == 400 and "cannot group runs by 'colour'" in Parsed(page).text


def test_live_endpoint_follows_a_running_runs_flushes(server: Dashboard, db: Path) -> None:
    clock = ManualClock(start_wall=1_764_000_100.0)
    t = Tracker(backend=[FakeBackend({"cpu": 100.0, "memory": 10.0})], clock=clock,
                sampling="manual", quiet=True, db=str(db), name="live-one", flush_interval=1)
    t.start()
    try:
        clock.advance(2)
        t.tick()  # due: flushes a provisional result and the samples

        def live() -> list[dict[str, Any]]:
            return list(json.loads(get(server.url + "api/live")[1])["runs"])

        first = wait_for(lambda: [r for r in live() if r["name"] == "live-one"])[0]
        assert first["power_w"] == pytest.approx(110.0)
        assert first["power"] == "110.0 W"
        clock.advance(3)
        t.tick()
        later = wait_for(lambda: [r for r in live() if r["energy_j"] > first["energy_j"]])[0]
        assert later["energy_j"] == pytest.approx(5 * 110.0)
        assert later["energy"] == energy_text(later["energy_j"])
        _, page, _ = get(server.url)
        assert f"live-{later['run_id']}" in Parsed(page).ids()
    finally:
        t.stop()
    assert wait_for(lambda: not json.loads(get(server.url + "api/live")[1])["runs"])


@pytest.mark.parametrize("hostile", [IMG, SCRIPT])
def test_hostile_strings_are_only_text(tmp_path: Path, hostile: str) -> None:
    db = tmp_path / "runs.db"
    run_id = make_run(db, name=hostile, project=hostile, tags=(hostile,), phase=hostile,
                      metric=hostile)
    with serve(db) as server:
        urls = ["", "?project=" + quote(hostile), f"run/{run_id}",
                f"compare?runs={run_id}", "run/" + quote(hostile)]
        for url in urls:
            _, page, _ = get(server.url + url)
            parsed = Parsed(page)
            assert "img" not in {tag for tag, _ in parsed.tags}, url
            scripts = [a for tag, a in parsed.tags if tag == "script"]
            assert all(set(a) == {"nonce"} for a in scripts) and len(scripts) <= 1, url
            if scripts:  # the one script is ours: no stored string inside it
                assert "window.__" not in page.split("<script", 1)[1].split("</script>")[0]
            if url in ("", f"run/{run_id}"):
                assert hostile in parsed.text, url
        for api in ("api/runs", "api/live"):
            raw = get(server.url + api)[1]
            assert "<" not in raw and ">" not in raw
        assert json.loads(get(server.url + "api/runs")[1])["runs"][0]["name"] == hostile


def test_a_missing_store_fails_at_startup_with_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "runs.db"
    with pytest.raises(StoreError, match="no run store at .*Fix: .*--db PATH"):
        serve(missing)
    from carbonmonitor.cli.dashboard import add_parser, dashboard_command

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dashboard", "--db", str(missing), "--port", "0"])
    with pytest.raises(StoreError, match="no run store"):
        dashboard_command(args)


def test_a_non_loopback_host_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from carbonmonitor.cli.dashboard import add_parser, dashboard_command

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dashboard", "--db", str(tmp_path / "none.db"),
                              "--host", "0.0.0.0", "--port", "0"])
    with pytest.raises(StoreError):  # the warning comes before anything is bound
        dashboard_command(args)
    assert "readable from the network" in capsys.readouterr().err


def test_compare_without_matplotlib_shows_the_table_and_the_fix(
        server: Dashboard, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    make_run(db, name="bert", start_wall=1_764_000_100.0)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    status, page, _ = get(server.url + "compare?project=vision&by=name")
    parsed = Parsed(page)
    assert status == 200 and "compare" in parsed.ids() and "compare-figure" not in parsed.ids()
    assert "No figure: matplotlib is not installed. Fix: pip install 'carbonmonitor[plot]'" \
        in parsed.text


def test_compare_by_filter_leaves_out_unfinished_runs_and_names_the_default_metric(
        server: Dashboard, db: Path) -> None:
    make_run(db, name="bert", start_wall=1_764_000_100.0)
    clock = ManualClock(start_wall=1_764_000_200.0)
    t = Tracker(backend=[FakeBackend({"cpu": 10.0})], clock=clock, sampling="manual",
                quiet=True, db=str(db), name="still-going", project="vision", flush_interval=1)
    t.start()
    try:
        clock.advance(2)
        t.tick()
        status, page, _ = get(server.url + "compare?project=vision&metric=accuracy")
        parsed, cells = Parsed(page), Cells(page, "compare")
        assert status == 200 and len(cells.rows) == 3  # header + the two finished runs
        assert "still-going" not in " ".join(" ".join(r) for r in cells.rows)
        assert "1 running or interrupted run(s) left out" in parsed.text
        metrics, chosen = cells.selects["metric"]
        assert chosen == "accuracy"
        assert ("option", {"value": ""}) in parsed.tags and "default (accuracy)" in parsed.text
        # named one by one, the running run is compared, with a note
        status, page, _ = get(server.url + f"compare?runs={t.run_id}")
        assert status == 200 and "did not finish" in Parsed(page).text
    finally:
        t.stop()
