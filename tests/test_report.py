"""carbonmonitor.report: the HTML and Markdown reports show the stored run's numbers as the
summary formats them, the inline figures plot the stored series, user strings stay text, and
the citation says what a paper needs.

Runs are made with the fake backend under a manual clock in a store under tmp_path, then read
back from the store, so what is checked is what ``carbonmonitor report`` would show.
"""

from __future__ import annotations

import dataclasses
import html
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import carbonmonitor
from carbonmonitor import FakeBackend, ManualClock, Tracker
from carbonmonitor.plot import INSTALL, cumulative_co2e, phase_breakdown
from carbonmonitor.records import RunResult
from carbonmonitor.report import citation, render_html, render_markdown
from carbonmonitor.report.markdown import md_escape
from carbonmonitor.store import Series
from carbonmonitor.summary import duration_text, energy_text, format_summary, mass_text

WATTS = {"cpu": 100.0, "gpu:0": 250.0}
IMG = "<img src=x onerror=window.__x=1>"
SCRIPT = "</script><script>window.__y=1</script>"


@dataclasses.dataclass
class Stored:
    result: RunResult
    series: Series
    db: str


def make_run(tmp_path: Path, *, name: str = "bert", tags: str = "demo",
             phases: tuple[str, str] = ("train", "eval"), metric: str = "accuracy",
             db: str | None = None) -> Stored:
    """3 epochs of 5 s training (100 samples, 5000 tokens each) and 2 s evaluation, an
    accuracy per epoch and a forecast after epoch 2; read back from the store."""
    db = db or str(tmp_path / "runs.db")
    clock = ManualClock(start_wall=1_750_000_000.0)
    t = Tracker(backend=[FakeBackend(WATTS)], clock=clock, sampling="manual", quiet=True,
                db=db, country="DE", name=name, tags=tags, params={"lr": 0.1})
    t.start()
    for epoch in range(1, 4):
        with t.phase(phases[0]):
            for _ in range(5):
                clock.advance(1)
                t.tick()
            t.add_work(samples=100, tokens=5000)
        with t.phase(phases[1]):
            clock.advance(2)
            t.tick()
        t.log_metric(metric, 0.5 + epoch / 10, epoch=epoch, direction="higher")
        t.progress(epoch, total=3)
    run_id = t.stop().identity.run_id
    return Stored(carbonmonitor.load(run_id, db=db), carbonmonitor.series(run_id, db=db), db)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    return make_run(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def page(stored: Stored) -> str:
    return render_html(stored.result)


class Page(HTMLParser):
    """Tags, attributes and text of an HTML page; the ``d`` of each path inside each
    element with an id (SVG groups carry the plot module's gids)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.paths: dict[str, list[str]] = {}
        self._open: list[str | None] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        found = dict(attrs)
        if tag == "path" and found.get("d"):
            for gid in self._open:
                if gid is not None:
                    self.paths.setdefault(gid, []).append(str(found["d"]))
        if tag == "g":
            self._open.append(found.get("id"))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "g":
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag == "g" and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return " ".join("".join(self.text).split())


def vertices(d: str) -> list[tuple[float, float]]:
    """The points of an SVG path made of M/L commands (what matplotlib writes for lines)."""
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", d)]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def expected_numbers(r: RunResult) -> list[str]:
    """The figures the report must show, formatted as the summary formats them."""
    summary = format_summary(r)
    energy = f"{energy_text(r.energy_j)}  ["
    assert energy in summary  # the same helpers and rounding as `carbonmonitor show`
    unc, em = r.energy_uncertainty, r.emissions
    out = [energy_text(r.energy_j), energy_text(unc.low, r.energy_j),
           energy_text(unc.high, r.energy_j), mass_text(em.co2e_g),
           mass_text(em.uncertainty.low, em.co2e_g), mass_text(em.uncertainty.high, em.co2e_g),
           f"{r.mean_power_w:.1f} W",
           duration_text(r.duration_s), f"{r.intensity.g_per_kwh:g} g/kWh",
           r.pue.describe().split(" (")[0].replace("PUE ", ""), r.identity.run_id,
           f"carbonmonitor {r.identity.carbonmonitor_version}"]
    out += [energy_text(f.energy_j, r.energy_j) for f in r.energy]
    out += [f"{f.mean_power_w:.1f} W" for f in r.energy]
    out += [f"{energy_text(c.energy_j)}, {mass_text(c.co2e_g)} CO2e" for c in r.unit_costs]
    for p in r.phases:
        out += [p.name, energy_text(p.energy_j, r.energy_j), mass_text(r.phase_co2e_g(p.name)),
                f"{100 * p.energy_j / r.energy_j:.0f}%"]
        assert energy_text(p.energy_j, r.energy_j) in summary
    for m in r.metrics:
        out += [m.name, f"{m.last:.4g}", f"{m.best:.4g}"]
    for fc in r.forecasts:
        out += [mass_text(fc.co2e_g), mass_text(fc.co2e_low_g, fc.co2e_g),
                mass_text(fc.co2e_high_g, fc.co2e_g), fc.rule]
    return out


def test_the_run_has_what_the_report_shows(stored: Stored) -> None:
    r = stored.result
    assert [p.name for p in r.phases] == ["train", "eval"]
    assert r.work is not None and r.work.samples == 300 and r.metrics and r.forecasts
    assert r.forecasts[0].outcome is not None
    assert r.energy_j == pytest.approx(350.0 * 21.0)


def test_html_shows_the_stored_numbers(stored: Stored, page: str) -> None:
    text = Page(page).all_text
    for number in expected_numbers(stored.result):
        assert number in text, number
    r = stored.result
    assert "counter-v1" in text and "fake" in text and r.intensity.source in text
    assert r.pue.source in text and r.intensity.licence in text
    if r.identity.git is not None:
        assert r.identity.git.commit in text
    for flag in r.flags:
        assert flag.code in text and flag.fix in text
    assert citation(r) in text


def test_html_is_self_contained(page: str) -> None:
    parsed = Page(page)
    assert page.startswith("<!DOCTYPE html>")
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert "img" not in parsed.tags and "iframe" not in parsed.tags
    for name, value in parsed.attrs:  # nothing fetched: no URL but in-page references
        if name in ("src", "href", "xlink:href"):
            assert value is not None and value.startswith("#"), (name, value)
    # namespace names (xmlns="http://www.w3.org/2000/svg") are identifiers, never fetched
    assert "http://" not in re.sub(r'xmlns(:\w+)?="[^"]*"', "", page)
    assert "https://" not in page and "@import" not in page and "url(http" not in page
    assert "default-src 'none'" in page  # and a CSP that would block it anyway


def test_inline_svg_plots_the_stored_series(stored: Stored, page: str) -> None:
    r, series = stored.result, stored.series
    parsed = Page(page)
    ids = {value for name, value in parsed.attrs if name == "id"}
    for gid in (f"cumulative-co2e-{r.identity.run_id}", "power-total", "power-cpu",
                "power-gpu_0", "stage-0", "stage-1"):
        assert gid in ids, gid
    # the cumulative CO2e line: every vertex is a stored (time, CO2e) point, ends at the total
    (line,) = parsed.paths[f"cumulative-co2e-{r.identity.run_id}"]
    points = vertices(line)
    t_s, grams = cumulative_co2e(series, r)
    assert grams[-1] == pytest.approx(r.co2e_g)
    (x0, y0), (xn, yn) = points[0], points[-1]
    assert len(points) >= 3
    for x, y in points:
        t = (x - x0) / (xn - x0) * t_s[-1]
        i = min(range(len(t_s)), key=lambda k: abs(t_s[k] - t))
        assert t == pytest.approx(t_s[i], abs=1e-3 * t_s[-1])
        assert (y0 - y) / (y0 - yn) * grams[-1] == pytest.approx(grams[i], abs=1e-3 * grams[-1])
    # the phase bars: heights in the ratio of the phases' CO2e
    stages = phase_breakdown(r)
    assert [s.label for s in stages] == ["train", "eval"]
    heights = []
    for i in range(2):
        ys = [y for _, y in vertices(parsed.paths[f"stage-{i}"][0])]
        heights.append(max(ys) - min(ys))
    assert heights[0] / heights[1] == pytest.approx(stages[0].co2e_g / stages[1].co2e_g,
                                                    rel=1e-3)
    assert stages[0].co2e_g == pytest.approx(r.phase_co2e_g("train"))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    return make_run(tmp_path_factory.mktemp("hostile"), name=f"{IMG} {SCRIPT}",
                    tags=f"{IMG},{SCRIPT}", phases=(IMG, SCRIPT), metric=SCRIPT)


def test_user_strings_stay_text_in_html(hostile: Stored) -> None:
    r = hostile.result
    assert r.identity.tags == (IMG, SCRIPT) and r.metrics[0].name == SCRIPT
    page = render_html(r)
    parsed = Page(page)
    assert "img" not in parsed.tags and "script" not in parsed.tags
    assert not [name for name, _ in parsed.attrs if name.startswith("on")]
    assert "window.__" not in "".join(str(v) for _, v in parsed.attrs)
    text = parsed.all_text
    assert f"{IMG} {SCRIPT}" in text  # name (header, title, citation)
    assert f"{IMG}, {SCRIPT}" in text  # tags
    assert SCRIPT in text  # metric
    # "/" nests phases, so the tracker stores the second phase as "<_script>...": that text
    for phase in r.phases:
        assert phase.name in text
    assert "<img" not in page and "<script" not in page


def test_user_strings_stay_text_in_markdown(hostile: Stored) -> None:
    md = render_markdown(hostile.result)
    assert "<" not in md and ">" not in md.replace("\n> ", "\n")
    assert md_escape(f"{IMG} {SCRIPT}") in md
    assert "&lt;img src=x onerror=window.\\_\\_x=1&gt;" in md
    for phase in hostile.result.phases:
        assert f"| {md_escape(phase.name)} |" in md


def test_markdown_has_the_same_tables_and_numbers(stored: Stored) -> None:
    r = stored.result
    md = render_markdown(r)
    plain = md.replace("\\", "")
    for number in expected_numbers(r):
        assert number in plain, number
    for title in ("## Headline figures", "## Energy by device", "## Phases", "## Metrics",
                  "## Forecasts and outcomes", "## Provenance", "## Flags", "## How to cite"):
        assert title in md
    assert "| train | 3 | 15.00 s |" in md and "300 samples, 15,000 tokens" in md
    assert "![" not in md and "<svg" not in md
    assert f"> {md_escape(citation(r))}" in md
    linked = render_markdown(r, figures={"Carbon impact": "figs/run-impact.svg"})
    assert "![Carbon impact](<figs/run-impact.svg>)" in linked


def test_citation_says_what_a_paper_needs(stored: Stored) -> None:
    r = stored.result
    text = citation(r)
    unc, em = r.energy_uncertainty, r.emissions
    for part in (energy_text(r.energy_j), energy_text(unc.low, r.energy_j),
                 energy_text(unc.high, r.energy_j), mass_text(em.co2e_g),
                 mass_text(em.uncertainty.low, em.co2e_g),
                 mass_text(em.uncertainty.high, em.co2e_g),
                 "location-based", "lifecycle", f"{r.intensity.g_per_kwh:g} g CO2e/kWh",
                 r.intensity.source, str(r.intensity.year), "Germany (DEU)", "PUE of 1.0",
                 r.pue.source, duration_text(r.duration_s), "cpu, gpu:0",
                 "read from hardware energy counters",
                 f"measured with carbonmonitor {carbonmonitor.__version__}"):
        assert part in text, part
    assert text in render_markdown(r).replace("\\", "")


def test_a_modelled_figure_is_cited_as_estimated(tmp_path: Path) -> None:
    clock = ManualClock()
    t = Tracker(backend="constant", constant_power="cpu=50", clock=clock, sampling="manual",
                quiet=True, db="off", country="FR").start()
    clock.advance(10)
    text = citation(t.stop())
    assert "not measured" in text and "France" in text


def test_without_matplotlib_html_has_no_figures_but_says_how(
        stored: Stored, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    page = render_html(stored.result)
    parsed = Page(page)
    assert "svg" not in parsed.tags and INSTALL in parsed.all_text
    assert mass_text(stored.result.co2e_g) in parsed.all_text
    assert "## Phases" in render_markdown(stored.result)


def test_a_run_without_stored_series_still_reports(tmp_path: Path) -> None:
    clock = ManualClock()
    t = Tracker(backend=[FakeBackend(WATTS)], clock=clock, sampling="manual", quiet=True,
                db="off", country="DE").start()
    clock.advance(5)
    t.tick()
    r = t.stop()
    parsed = Page(render_html(r))
    assert "svg" not in parsed.tags and "No figures" in parsed.all_text
    assert energy_text(r.energy_j) in parsed.all_text


def test_the_report_carries_the_runs_advice(tmp_path: Path) -> None:
    """A run in Poland, 80 % of it one phase: the advice the CLI gives is in both formats."""
    from runs import poland_train_eval_run

    from carbonmonitor.advice import advise

    db = tmp_path / "runs.db"
    result = poland_train_eval_run(str(db))
    items = advise(result, carbonmonitor.series(result.identity.run_id, db=str(db)))
    assert items
    page, md = render_html(result), render_markdown(result)
    assert "Advice" in page and "Advice" in md
    assert "| Advice | Evidence | Saving | Confidence | Action | Caveats |" in md
    for item in items:
        assert f"| {item.confidence} |" in md
        assert html.escape(item.title) in page
        if item.saving is not None:
            assert mass_text(item.saving.co2e_g) in page and mass_text(item.saving.co2e_g) in md


def test_both_formats_give_the_advice_that_needs_the_series(tmp_path: Path) -> None:
    """An idle GPU while the CPU works is only seen in the stored series: Markdown reads it
    from the store as HTML does, so both carry the same advice."""
    from carbonmonitor import FakeBackend, ManualClock, Tracker
    from carbonmonitor.advice import advise

    db = str(tmp_path / "runs.db")
    clock = ManualClock(start_wall=1_764_000_000.0)
    t = Tracker(backend=[FakeBackend({"cpu": [(0.0, 40.0), (20.0, 120.0)],
                                      "gpu:0": [(0.0, 300.0), (20.0, 60.0)]})],
                clock=clock, sampling="manual", quiet=True, db=db, country="SE")
    t.start()
    for _ in range(100):
        clock.advance(1)
        t.tick()
    t.log_metric("learning_rate", 0.1)  # no direction: no "best"
    result = t.stop()
    (item,) = advise(result, carbonmonitor.series(result.identity.run_id, db=db))
    assert item.code == "accelerator-waiting"
    page, md = render_html(result), render_markdown(result)
    assert html.escape(item.title) in page and item.title in md
    assert "| learning\\_rate | unknown | 0.1 | - | 1 |" in md


def test_a_running_run_and_failing_advice_are_said_not_hidden(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonmonitor import FakeBackend, ManualClock, Tracker

    db = str(tmp_path / "runs.db")
    clock = ManualClock(start_wall=1_764_000_000.0)
    t = Tracker(backend=[FakeBackend({"cpu": 50.0})], clock=clock, sampling="manual",
                quiet=True, db=db, country="DE", flush_interval=1)
    t.start()
    try:
        clock.advance(3)
        t.tick()  # a provisional record, as the dashboard and `report` read it meanwhile
        running = carbonmonitor.load(t.run_id, db=db)
        md = render_markdown(running)
        assert running.status == "running"
        assert "| Status | running: still measuring; this report covers it up to its last " \
               "write |" in md and "| Last written |" in md and "| Ended |" not in md
        assert citation(running).startswith("[Partial: the run was running at its last write")
    finally:
        done = t.stop()

    def broken(*args: object, **kwargs: object) -> list[object]:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("carbonmonitor.advice.advise", broken)
    md = render_markdown(done)
    assert "Advice could not be computed" in md and "ZeroDivisionError" in md
    assert "No advice is not the same as nothing to advise" in md
