"""The dashboard and the HTML report in headless Chromium: what a person sees, live updates,
inline SVG figures, hostile stored strings kept as text, no console errors, no request beyond
127.0.0.1 (or the report's own file). Screenshots go to test-artifacts/e2e/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import carbonmonitor
from carbonmonitor import FakeBackend, ManualClock, Tracker
from carbonmonitor.dashboard import Dashboard, serve
from carbonmonitor.report import render_html
from carbonmonitor.summary import MASS_UNITS, duration_text, energy_text, mass_text

IMG = "<img src=x onerror=window.__x=1>"
SCRIPT = "</script><script>window.__y=1</script>"
NO_INJECTION = "return [typeof window.__x, typeof window.__y]"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


@pytest.fixture
def server(db: Path, make_run: Callable[..., str]) -> Iterator[Dashboard]:
    make_run(db, name="resnet", tags=("seed0",))
    make_run(db, name="bert", project="nlp", tags=("seed1",), start_wall=1_764_000_500.0,
             watts=200.0)
    with serve(db) as running:
        yield running


def updates(page: Any) -> int:
    return int(page.js("return Number(document.getElementById('live-status')"
                       ".dataset.updates || 0)"))


def test_runs_page_shows_the_store_and_the_live_table_follows_a_run(
        page: Any, server: Dashboard, db: Path) -> None:
    page.visit(server.url)
    runs = carbonmonitor.runs(db=str(db))
    table = page.text("runs")
    for r in runs:
        assert page.driver.find_element("id", f"run-{r.identity.run_id}").is_displayed()
        for value in (r.identity.run_id, r.identity.name, r.identity.project,
                      duration_text(r.duration_s), energy_text(r.energy_j), mass_text(r.co2e_g)):
            assert value in table, value
    assert page.text("projects")
    page.wait(lambda d: updates(page) >= 1, "the first live poll")
    page.js("window.__sameDocument = true")  # gone if the page reloads
    page.screenshot("dashboard-runs.png")

    clock = ManualClock(start_wall=1_764_000_900.0)
    t = Tracker(backend=[FakeBackend({"cpu": 100.0, "memory": 10.0})], clock=clock,
                sampling="manual", quiet=True, db=str(db), name="live-one", flush_interval=1)
    t.start()
    try:
        clock.advance(2)
        t.tick()  # due: flushes a provisional result
        run_id = t.run_id
        row = f"live-{run_id}"
        page.wait(lambda d: page.js("return !!document.getElementById(arguments[0])", row),
                  "the running run in the live table")
        first = page.text(row)
        assert "live-one" in first and "110.0 W" in first and energy_text(2 * 110.0) in first
        seen = updates(page)
        clock.advance(3)
        t.tick()
        page.wait(lambda d: energy_text(5 * 110.0) in page.text(row),
                  "the live row's energy to grow after the flush")
        assert updates(page) > seen
        assert page.js("return window.__sameDocument") is True  # updated in place
        page.screenshot("dashboard-live.png")
    finally:
        t.stop()
    page.wait(lambda d: not page.js("return !!document.getElementById(arguments[0])", row),
              "the stopped run to leave the live table")
    page.check(server.url)

    # a run listed as running when the page loaded is marked once it leaves the live table
    clock = ManualClock(start_wall=1_764_000_950.0)
    t = Tracker(backend=[FakeBackend({"cpu": 50.0})], clock=clock, sampling="manual",
                quiet=True, db=str(db), name="short-one", flush_interval=1)
    t.start()
    try:
        clock.advance(2)
        t.tick()
        page.visit(server.url)
        status = f"#run-{t.run_id} td.status"
        assert page.js("return document.querySelector(arguments[0]).textContent",
                       status) == "running"
    finally:
        t.stop()
    page.wait(lambda d: page.js("return document.querySelector(arguments[0]).textContent",
                                status).startswith("ended"), "the ended run's row to be marked")

    # tick two runs and compare them
    page.visit(server.url)
    ticked = [r.identity.run_id for r in runs[:2]]
    for run_id in ticked:
        page.driver.find_element("css selector", f'input[name="run"][value="{run_id}"]').click()
    page.driver.find_element("id", "compare-picked").click()
    page.wait(lambda d: d.title.endswith("comparison by run"), "the comparison of the ticked")
    rows = page.text("compare").splitlines()[1:]
    assert sorted(r.split("\t")[-1].strip() for r in rows) == sorted(i[-8:] for i in ticked)
    page.check(server.url)


def test_run_and_compare_pages_and_a_report_file_render_their_figures(
        page: Any, server: Dashboard, db: Path, tmp_path: Path) -> None:
    runs = carbonmonitor.runs(db=str(db))
    run_id = runs[0].identity.run_id
    svg_sizes = ("return Array.from(document.querySelectorAll(arguments[0])).map("
                 "function(s){var r=s.getBoundingClientRect();return [r.width,r.height];})")

    page.visit(server.url + f"run/{run_id}")
    assert energy_text(runs[0].energy_j) in page.text("headline")
    sizes = page.js(svg_sizes, "#figures figure > svg")
    assert len(sizes) >= 2 and all(w > 100 and h > 100 for w, h in sizes), sizes
    page.screenshot("dashboard-run.png")

    ids = ",".join(r.identity.run_id for r in runs)
    page.visit(server.url + f"compare?runs={ids}")
    header, *rows = [line.split("\t") for line in page.text("compare").splitlines()]
    co2e = next(i for i, h in enumerate(header) if h.startswith("CO2e ("))
    size = MASS_UNITS[header[co2e][len("CO2e ("):-1]]
    for r in runs:  # the store's CO2e, in the column's unit
        (row,) = [row for row in rows if row[-1].strip() == r.identity.run_id[-8:]]
        assert float(row[co2e]) == pytest.approx(r.co2e_g / size, rel=5e-3)
    sizes = page.js(svg_sizes, "#compare-figure > svg")
    assert len(sizes) == 1 and all(w > 100 and h > 100 for w, h in sizes), sizes
    page.screenshot("dashboard-compare.png")
    # regroup with the form's controls: by name, the runs chosen carried along
    page.js("document.getElementById('by').value='name';"
            "document.getElementById('regroup').click();")
    page.wait(lambda d: d.title.endswith("comparison by name"), "the regrouped comparison")
    header = page.text("compare").splitlines()[0].split("\t")
    assert header[1] == "name"
    assert page.js("return new URL(location.href).searchParams.get('runs')") == ids
    page.check(server.url)

    report = tmp_path / "report.html"
    report.write_text(render_html(runs[0], carbonmonitor.series(run_id, db=str(db))),
                      encoding="utf-8")
    page.visit(report.as_uri())
    assert energy_text(runs[0].energy_j) in page.text("headline")
    sizes = page.js(svg_sizes, "#figures figure > svg")
    assert len(sizes) >= 2 and all(w > 100 and h > 100 for w, h in sizes), sizes
    page.screenshot("report.png")
    page.check(report.as_uri())


def test_hostile_strings_are_literal_text_everywhere(page: Any, tmp_path: Path,
                                                     make_run: Callable[..., str]) -> None:
    db = tmp_path / "runs.db"
    hostile = {s: make_run(db, name=s, tags=(s,), phase=s, metric=s,
                           start_wall=1_764_000_000.0 + 500 * i)
               for i, s in enumerate((IMG, SCRIPT))}

    def safe(where: str) -> str:
        assert page.js(NO_INJECTION) == ["undefined", "undefined"], where
        assert page.js("return document.querySelectorAll('img').length") == 0, where
        scripts = page.js("return Array.from(document.scripts).map(s => s.text)")
        assert all("window.__" not in s for s in scripts), where
        return str(page.js("return document.body.innerText"))

    def each_place_shows(s: str, run_id: str) -> None:
        """The name and tag in the header, the metric in its table, and each phase as the
        tracker stored it ('/' nests phases, so the stored names are the parts of the string
        between slashes) in the phases table: all as literal text."""
        stored = carbonmonitor.load(run_id, db=str(db))
        header = str(page.js("return document.querySelector('header').innerText"))
        assert header.count(s) >= 2, (s, header)  # title or Run, and Tags
        assert s in page.text("metrics"), s
        phases = page.text("phases")
        assert [p.name for p in stored.phases] and all(p.name.rsplit("/", 1)[-1] in phases
                                                       for p in stored.phases), phases

    with serve(db) as server:
        page.visit(server.url)
        page.wait(lambda d: updates(page) >= 1, "the first live poll")
        safe("runs page")
        for s, run_id in hostile.items():
            row = page.text(f"run-{run_id}")
            assert row.count(s) == 2, (s, row)  # name and tag

        for s, run_id in hostile.items():
            page.visit(server.url + f"run/{run_id}")
            safe(f"run page of {s!r}")
            each_place_shows(s, run_id)

        # a running run with a hostile name reaches the page through /api/live and script
        clock = ManualClock(start_wall=1_764_009_000.0)
        live = Tracker(backend=[FakeBackend({"cpu": 10.0})], clock=clock, sampling="manual",
                       quiet=True, db=str(db), name=IMG + SCRIPT, project=SCRIPT,
                       flush_interval=1)
        live.start()
        try:
            clock.advance(2)
            live.tick()
            page.visit(server.url)
            row = f"live-{live.run_id}"
            page.wait(lambda d: page.js("return !!document.getElementById(arguments[0])", row),
                      "the hostile running run in the live table")
            page.wait(lambda d: updates(page) >= 2, "a poll after the first")
            shown = page.text(row)
            assert IMG + SCRIPT in shown and SCRIPT in shown.replace(IMG + SCRIPT, ""), shown
            safe("live panel")
        finally:
            live.stop()

        page.visit(server.url + "compare?by=name&runs=" + quote(",".join(hostile.values())))
        safe("compare page")
        for s in hostile:
            assert s in page.text("compare"), s
        page.check(server.url)

    for s, run_id in hostile.items():
        report = tmp_path / f"report-{run_id}.html"
        report.write_text(render_html(carbonmonitor.load(run_id, db=str(db)),
                                      carbonmonitor.series(run_id, db=str(db))),
                          encoding="utf-8")
        page.visit(report.as_uri())
        safe(f"report of {s!r}")
        each_place_shows(s, run_id)
        page.check(report.as_uri())
    assert page.js(NO_INJECTION) == ["undefined", "undefined"]
