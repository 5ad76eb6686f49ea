"""carbonmonitor.plot: the plotted numbers are the stored ones, and figures are written as asked.

Runs are made with the fake backend under a manual clock, in a store under tmp_path. Expected
powers come from the scripted profile; expected CO2e from the stored series and the result's
own factors; what-if figures from reaccount itself.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import carbonmonitor
from carbonmonitor import ConfigError, FakeBackend, ManualClock, StoreError, Tracker
from carbonmonitor.carbon.live import IntensityBin, hourly_emissions, points_from_series
from carbonmonitor.plot import (
    IntensityStep,
    Place,
    cumulative_co2e,
    device_breakdown,
    device_figure,
    figure_data,
    impact_figure,
    intensity_figure,
    intensity_steps,
    phase_breakdown,
    phase_devices,
    power_figure,
    power_series,
    run_stages,
    save_figure,
    total_power,
    what_if,
)
from carbonmonitor.records import HourBin, RunResult
from carbonmonitor.store import Series
from carbonmonitor.summary import sig3

# Watts from each breakpoint on (step profile): idle, pre-training, fine-tuning, idle again.
PROFILE = {"cpu": [(0.0, 20.0), (4.0, 100.0), (12.0, 40.0), (18.0, 10.0)],
           "gpu:0": [(0.0, 30.0), (4.0, 250.0), (12.0, 150.0), (18.0, 30.0)]}
HOSTILE = "<img src=x onerror=window.__x=1> & $5 </script>"
KWH = 3.6e6


def watts(domain: str, t: float) -> float:
    """The scripted power of ``domain`` at time ``t`` (the profile holds between points)."""
    return [w for start, w in PROFILE[domain] if start <= t][-1]


@dataclasses.dataclass
class Run:
    result: RunResult
    series: Series
    db: str


def make_run(tmp_path: Path, *, name: str = "bert demo", country: str = "DE",
             start_wall: float = 1_750_000_000.0, db: str | None = None) -> Run:
    """20 s ticked every second: idle 0-4 s, pre-training 4-12 s (two nested epochs),
    fine-tuning 12-18 s, idle 18-20 s."""
    db = db or str(tmp_path / "runs.db")
    clock = ManualClock(start_wall=start_wall)
    tracker = Tracker(backend=[FakeBackend(PROFILE)], clock=clock, sampling="manual",
                      quiet=True, db=db, country=country, name=name)

    def tick(seconds: int) -> None:
        for _ in range(seconds):
            clock.advance(1)
            tracker.tick()

    tracker.start()
    tick(4)
    with tracker.phase("pre-training"):
        for _ in range(2):
            with tracker.phase("epoch"):
                tick(4)
    with tracker.phase("fine-tuning"):
        tick(6)
    tick(2)
    result = tracker.stop()
    return Run(result, carbonmonitor.series(result.identity.run_id, db=db), db)


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return make_run(tmp_path)


def by_gid(fig: Any, gid: str) -> Any:
    found = fig.findobj(lambda artist: artist.get_gid() == gid)
    assert len(found) == 1, f"{len(found)} artists with gid {gid!r}"
    return found[0]


# -- data functions ------------------------------------------------------------------------


def test_power_series_is_the_scripted_power(run: Run) -> None:
    traces = power_series(run.series)
    assert sorted(traces) == ["cpu", "gpu:0"]
    for domain, (t_s, power_w) in traces.items():
        assert t_s == [float(i) for i in range(21)]
        assert power_w == pytest.approx([watts(domain, i) for i in range(20)], rel=1e-12)
    t_s, total_w = total_power(run.series)
    assert t_s == run.series.t_s
    assert total_w == pytest.approx([watts("cpu", i) + watts("gpu:0", i) for i in range(20)],
                                    rel=1e-12)


def test_power_series_leaves_a_gap_where_a_reading_is_missing() -> None:
    nan = float("nan")
    traces = power_series(Series("r", [0.0, 1.0, 2.0, 3.0], {"cpu": [0.0, 5.0, nan, 20.0]}, []))
    t_s, power_w = traces["cpu"]
    assert t_s == [0.0, 1.0, 2.0, 3.0]
    assert power_w[0] == 5.0 and math.isnan(power_w[1]) and math.isnan(power_w[2])


def test_cumulative_co2e_follows_the_stored_energy_and_ends_at_the_result(run: Run) -> None:
    t_s, grams = cumulative_co2e(run.series, run.result)
    em = run.result.emissions
    g_per_j = em.pue * em.intensity_g_per_kwh / KWH
    energy = [sum(run.series.energy_j[d][i] for d in run.series.energy_j)
              for i in range(len(run.series.t_s))]
    assert t_s == run.series.t_s
    assert grams == pytest.approx([e * g_per_j for e in energy], rel=1e-12)
    assert grams[-1] == pytest.approx(run.result.co2e_g, rel=1e-12)
    assert run.result.co2e_g > 0


def test_cumulative_co2e_uses_the_hourly_factors_when_the_run_has_them(tmp_path: Path) -> None:
    hour = 1_750_000_000.0 - 1_750_000_000.0 % 3600  # an hour boundary, 10 s into the run
    made = make_run(tmp_path, start_wall=hour - 10)
    assert made.result.identity.started_at.startswith("2025-06-15T14:59:50")
    zone_bins = [IntensityBin(datetime_utc(hour - 3600), datetime_utc(hour), 100.0,
                              "lifecycle", "measured", "DE", "test"),
                 IntensityBin(datetime_utc(hour), datetime_utc(hour + 3600), 500.0,
                              "lifecycle", "measured", "DE", "test")]
    points = points_from_series(hour - 10, made.series.t_s, made.series.energy_j)
    account = hourly_emissions(points, zone_bins, fallback_g_per_kwh=999.0)
    hourly = tuple(HourBin(r.start_utc.isoformat(), r.end_utc.isoformat(), r.energy_j,
                           r.g_per_kwh, r.co2e_g, r.source) for r in account.rows)
    result = dataclasses.replace(made.result, emissions=dataclasses.replace(
        made.result.emissions, co2e_g=account.co2e_g, time_resolved="test", hourly=hourly))

    t_s, grams = cumulative_co2e(made.series, result)
    before = sum(watts(d, i) for d in PROFILE for i in range(10))  # J in the first hour
    after = sum(watts(d, i) for d in PROFILE for i in range(10, 20))
    assert grams[10] == pytest.approx(before * 100.0 / KWH, rel=1e-9)
    assert grams[-1] == pytest.approx((before * 100.0 + after * 500.0) / KWH, rel=1e-9)
    assert grams[-1] == pytest.approx(result.co2e_g, rel=1e-9)
    # what-if compares places on the static tables: the own place too, not its hourly figure
    assert what_if(result, [])[0].co2e_g == pytest.approx(made.result.co2e_g, rel=1e-12)


def datetime_utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def test_phase_breakdown_gives_top_level_phases_and_the_rest(run: Run) -> None:
    stages = phase_breakdown(run.result)
    assert [s.label for s in stages] == ["pre-training", "fine-tuning", "between phases"]
    g_per_j = run.result.co2e_g / run.result.energy_j
    for stage in stages[:2]:
        phase = run.result.phase(stage.label)
        assert stage.energy_j == phase.energy_j and stage.duration_s == phase.duration_s
        assert stage.co2e_g == pytest.approx(phase.energy_j * g_per_j, rel=1e-12)
    pre = sum(watts(d, i) for d in PROFILE for i in range(4, 12))
    assert stages[0].energy_j == pytest.approx(pre, rel=1e-12)
    outside = sum(watts(d, i) for d in PROFILE for i in [*range(4), 18, 19])
    assert stages[2].energy_j == pytest.approx(outside, rel=1e-9)
    assert stages[2].duration_s == pytest.approx(6.0)
    assert sum(s.energy_j for s in stages) == pytest.approx(run.result.energy_j, rel=1e-12)
    assert sum(s.co2e_g for s in stages) == pytest.approx(run.result.co2e_g, rel=1e-12)
    for s in stages:
        assert s.energy_low_j <= s.energy_j <= s.energy_high_j
        assert s.co2e_low_g <= s.co2e_g <= s.co2e_high_g
    # the parts' intervals add up to the run's, factor spread included
    unc = run.result.emissions.uncertainty
    assert sum(s.co2e_low_g for s in stages) == pytest.approx(unc.low, rel=1e-9)
    assert sum(s.co2e_high_g for s in stages) == pytest.approx(unc.high, rel=1e-9)


def test_what_if_equals_reaccount(run: Run) -> None:
    places: list[Place] = ["country:FR", "zone:SE-SE3", "aws:us-east-1", {"country": "PL"},
                           "country:DE"]
    impacts = what_if(run.result, places)
    own, *others = impacts
    assert own.own and own.co2e_g == run.result.co2e_g and own.label == "Germany"
    assert own.intensity_g_per_kwh == run.result.intensity.g_per_kwh
    basis = run.result.intensity.basis
    expected = [carbonmonitor.reaccount(run.result, basis=basis, country="FR"),
                carbonmonitor.reaccount(run.result, basis=basis, zone="SE-SE3"),
                carbonmonitor.reaccount(run.result, basis=basis, cloud_provider="aws",
                                        cloud_region="us-east-1"),
                carbonmonitor.reaccount(run.result, basis=basis, country="PL")]
    assert len(others) == 4  # "country:DE" is the run's own place: not repeated
    for got, want in zip(others, expected, strict=True):
        assert not got.own
        assert got.co2e_g == want.co2e_g
        assert (got.co2e_low_g, got.co2e_high_g) == (want.emissions.uncertainty.low,
                                                     want.emissions.uncertainty.high)
        assert got.intensity_g_per_kwh == want.intensity.g_per_kwh
        assert got.pue == want.pue.value and got.basis == basis
    assert others[2].pue == 1.15  # AWS's fleet PUE: a cloud brings its data centre


def test_what_if_rejects_unknown_places_with_the_fix(run: Run) -> None:
    with pytest.raises(ConfigError, match="Atlantis"):
        what_if(run.result, ["country:Atlantis"])
    with pytest.raises(ConfigError, match=r"'country:FR'.*aws"):
        what_if(run.result, ["mars:olympus-mons"])
    with pytest.raises(ConfigError, match="keys country, zone"):
        what_if(run.result, [{"planet": "Mars"}])


# -- figures -------------------------------------------------------------------------------


def test_impact_figure_plots_the_stored_numbers(run: Run) -> None:
    places = ["country:FR", "country:PL"]
    fig = impact_figure(run.result, places=places)
    data = figure_data(fig)
    run_id = run.result.identity.run_id
    assert data["run_ids"] == [run_id]
    units = data["units"]
    tsize, msize = units["timeline"]["time"][1], units["timeline"]["co2e"][1]

    t_s, grams = cumulative_co2e(run.series, run.result)
    xy = by_gid(fig, f"cumulative-co2e-{run_id}").get_xydata()
    assert [x * tsize for x in xy[:, 0]] == pytest.approx(t_s, rel=1e-12)
    assert [y * msize for y in xy[:, 1]] == pytest.approx(grams, rel=1e-12)
    assert data["timeline"]["runs"][run_id] == {"t_s": t_s, "co2e_g": grams}

    edges, total_w = total_power(run.series)
    steps = by_gid(fig, "power-total").get_data()
    psize = units["timeline"]["power"][1]
    assert [v * psize for v in steps.values] == pytest.approx(total_w, rel=1e-12)
    assert [e * tsize for e in steps.edges] == pytest.approx(edges, rel=1e-12)
    assert data["timeline"]["spans"] == [[p, a, b] for p, a, b in run.series.spans
                                         if "/" not in p]
    assert [p for p, _, _ in data["timeline"]["spans"]] == ["pre-training", "fine-tuning"]

    stages = phase_breakdown(run.result)
    ssize = units["stages_co2e"][1]
    heights = [by_gid(fig, f"stage-{i}").get_height() * ssize for i in range(len(stages))]
    assert heights == pytest.approx([s.co2e_g for s in stages], rel=1e-12)
    assert data["stages"] == [dataclasses.asdict(s) for s in stages]

    impacts = sorted(what_if(run.result, places), key=lambda p: p.co2e_g)
    wsize = units["what_if_co2e"][1]
    widths = [by_gid(fig, f"whatif-{i}").get_width() * wsize for i in range(len(impacts))]
    assert widths == pytest.approx([p.co2e_g for p in impacts], rel=1e-12)
    assert [p["label"] for p in data["what_if"]] == ["France", "Germany", "Poland"]


def test_power_figure_plots_power_per_device(run: Run) -> None:
    fig = power_figure(run.result.identity.run_id, db=run.db)
    data = figure_data(fig)
    tsize, psize = data["units"]["time"][1], data["units"]["power"][1]
    for domain, (t_s, power_w) in power_series(run.series).items():
        steps = by_gid(fig, f"power-{domain.replace(':', '_')}").get_data()
        assert [v * psize for v in steps.values] == pytest.approx(power_w, rel=1e-12)
        assert [e * tsize for e in steps.edges] == pytest.approx(t_s, rel=1e-12)
        assert data["power"][domain] == {"t_s": t_s, "power_w": power_w}


def test_several_runs_are_stages_and_their_what_if_is_summed(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    first = make_run(tmp_path, name="pre-training", db=db)
    second = make_run(tmp_path, name="fine-tuning", country="FR", db=db,
                      start_wall=1_750_000_100.0)
    results = [first.result, second.result]
    fig = impact_figure([r.identity.run_id for r in results], places=["country:PL"], db=db)
    data = figure_data(fig)
    assert [s["label"] for s in data["stages"]] == ["pre-training", "fine-tuning"]
    assert [s["co2e_g"] for s in data["stages"]] == [r.co2e_g for r in results]
    assert data["stages"] == [dataclasses.asdict(s) for s in run_stages(results)]
    for made in (first, second):
        run_id = made.result.identity.run_id
        xy = by_gid(fig, f"cumulative-co2e-{run_id}").get_xydata()
        msize = data["units"]["timeline"]["co2e"][1]
        assert xy[-1, 1] * msize == pytest.approx(made.result.co2e_g, rel=1e-12)
    poland = next(p for p in data["what_if"] if not p["own"])
    assert poland["co2e_g"] == pytest.approx(sum(
        carbonmonitor.reaccount(r, country="PL").co2e_g for r in results), rel=1e-12)
    own = next(p for p in data["what_if"] if p["own"])
    assert own["co2e_g"] == pytest.approx(sum(r.co2e_g for r in results), rel=1e-12)
    assert own["label"] == "several places"


def test_png_and_svg_are_written_and_user_text_stays_text(tmp_path: Path) -> None:
    made = make_run(tmp_path, name=HOSTILE)
    png, svg = tmp_path / "out" / "impact.png", tmp_path / "impact.SVG"
    fig = impact_figure(made.result, places=["country:FR"], path=png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    save_figure(fig, svg)
    raw = svg.read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=window.__x=1&gt; &amp; $5 &lt;/script&gt;" in raw
    tree = ET.fromstring(raw)
    tags = {element.tag.rsplit("}", 1)[-1] for element in tree.iter()}
    assert "img" not in tags and "script" not in tags
    texts = ["".join(element.itertext()) for element in tree.iter()
             if element.tag.endswith("}text")]
    assert any(HOSTILE in t for t in texts)
    assert any(f"carbonmonitor {carbonmonitor.__version__}" in t for t in texts)
    assert not list(tmp_path.glob("**/.impact*"))  # no temporary file left behind
    power = power_figure(made.result, path=tmp_path / "power.svg")
    assert figure_data(power)["kind"] == "power"
    assert HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in (
        tmp_path / "power.svg").read_text(encoding="utf-8")


def test_a_bad_suffix_is_refused_before_drawing(run: Run, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.png or \.svg.*'impact\.png'"):
        impact_figure(run.result, path=tmp_path / "impact.pdf")
    with pytest.raises(ConfigError, match=r"\.png or \.svg"):
        save_figure(power_figure(run.result), tmp_path / "power")
    assert not list(tmp_path.glob("impact*")) and not list(tmp_path.glob("power*"))


def test_missing_matplotlib_names_the_extra(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(ImportError, match=r"pip install 'carbonmonitor\[plot\]'"):
        impact_figure(run.result)
    with pytest.raises(ImportError, match=r"pip install 'carbonmonitor\[plot\]'"):
        power_figure(run.result)
    # the data functions need no matplotlib
    assert cumulative_co2e(run.series, run.result)[1][-1] == pytest.approx(run.result.co2e_g)


def test_importing_carbonmonitor_plot_does_not_import_matplotlib() -> None:
    code = "import sys, carbonmonitor, carbonmonitor.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_a_run_without_a_stored_series_says_how_to_plot_it() -> None:
    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"cpu": 10.0})], clock=clock, sampling="manual",
                      quiet=True, db="off", country="DE")
    tracker.start()
    clock.advance(5)
    tracker.tick()
    result = tracker.stop()
    with pytest.raises(StoreError, match=r"db='off'.*series="):
        impact_figure(result)
    t_s, energy = tracker.series()
    fig = impact_figure(result, places=(), series=Series(result.identity.run_id, t_s, energy,
                                                          []))
    assert figure_data(fig)["timeline"]["runs"][result.identity.run_id]["co2e_g"][-1] == (
        pytest.approx(result.co2e_g, rel=1e-12))
    assert "what_if" not in figure_data(fig)
    with pytest.raises(ValueError, match="carries no carbonmonitor data"):
        figure_data(object())  # type: ignore[arg-type]


def test_stage_labels_use_one_unit_each_and_shares_add_up(run: Run) -> None:
    fig = impact_figure(run.result, places=())
    stages = phase_breakdown(run.result)
    labels = [by_gid(fig, f"stage-label-{i}").get_text() for i in range(len(stages))]
    mass, energy = figure_data(fig)["units"]["stages_co2e"][0], figure_data(fig)["units"][
        "stages_energy"][0]
    for label, stage in zip(labels, stages, strict=True):
        co2e, rest = label.split("\n")
        value, unit = co2e.split(" ")
        assert unit == mass
        amount, unit, _, _ = rest.split(" ")
        assert unit == energy
        assert float(amount) == pytest.approx(
            stage.energy_j / figure_data(fig)["units"]["stages_energy"][1], rel=5e-3)
    assert sum(int(label.rsplit(" ", 1)[1].rstrip("%")) for label in labels) == 100


def test_phase_names_fit_whole_inside_their_span_and_the_axes(run: Run) -> None:
    # a 0.2 s phase at the very start: too narrow for its name, which is left out, not cut
    spans = [("preparation", 0.0, 0.2), *run.series.spans]
    series = Series(run.series.run_id, run.series.t_s, run.series.energy_j, spans)
    for fig in (impact_figure(run.result, places=(), series=series),
                power_figure(run.result, series)):
        renderer = fig.canvas.get_renderer()
        shown = []
        for label in fig.findobj(lambda a: str(a.get_gid()).startswith("span-label-")):
            if not label.get_visible():
                continue
            ax = label.axes
            name, start, end = [s for s in spans if "/" not in s[0]][
                int(label.get_gid().rsplit("-", 1)[1])]
            box = label.get_window_extent(renderer)
            axes = ax.get_window_extent(renderer)
            lo = ax.transData.transform((start / 1.0, 0))[0]
            hi = ax.transData.transform((end / 1.0, 0))[0]
            assert label.get_text() == name
            assert axes.x0 <= box.x0 and box.x1 <= axes.x1
            assert lo <= box.x0 + 1 and box.x1 <= hi + 1
            shown.append(name)
        assert "preparation" not in shown
        assert {"pre-training", "fine-tuning"} <= set(shown)


def test_the_factor_range_is_cut_at_the_axis_and_its_top_written(tmp_path: Path) -> None:
    made = make_run(tmp_path, country="FR")  # France: the factor's high end is x2.4 the mean
    fig = impact_figure(made.result, places=(), series=made.series)
    data = figure_data(fig)
    unit, size = data["units"]["stages_co2e"]
    stages = phase_breakdown(made.result)
    ax = by_gid(fig, "stage-0").axes
    top = ax.get_ylim()[1] * size
    energy_top = max(max(s.co2e_energy_high_g, s.co2e_g) for s in stages)
    assert 1.3 * energy_top <= top * (1 + 1e-12) and top <= 1.45 * energy_top * (1 + 1e-12)
    assert data["stages_cut"] == [i for i, s in enumerate(stages) if s.co2e_high_g > top]
    assert data["stages_cut"]  # the tallest bar's range reaches past the axis
    for i in data["stages_cut"]:
        mark = by_gid(fig, f"stage-cut-{i}")
        assert mark.get_text() == f"↑ {sig3(stages[i].co2e_high_g / size)} {unit}"
    assert not fig.findobj(lambda a: str(a.get_gid()).startswith("stage-cut-")
                           and int(a.get_gid().rsplit("-", 1)[1]) not in data["stages_cut"])


def test_a_phase_too_short_to_shade_is_named_in_the_legend(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    clock = ManualClock(start_wall=1_750_000_000.0)
    tracker = Tracker(backend=[FakeBackend({"cpu": 50.0})], clock=clock, sampling="manual",
                      quiet=True, db=db, country="DE")
    tracker.start()
    with tracker.phase("warm-up"):  # half a sampling period: the store keeps no span
        clock.advance(0.5)
    with tracker.phase("train"):
        for _ in range(4):
            clock.advance(1)
            tracker.tick()
    result = tracker.stop()
    stored = carbonmonitor.series(result.identity.run_id, db=db)
    assert [p for p, _, _ in stored.spans] == ["train"]

    def legend(fig: Any) -> list[str]:
        (run_id,) = figure_data(fig)["run_ids"]
        timeline = by_gid(fig, f"cumulative-co2e-{run_id}").axes
        return [t.get_text() for t in timeline.get_legend().get_texts()]

    fig = impact_figure(result, places=(), series=stored)
    assert "not shaded (each under one sampling period): warm-up" in legend(fig)
    standard = make_run(tmp_path / "other")
    assert not any(t.startswith("not shaded") for t in
                   legend(impact_figure(standard.result, places=(), series=standard.series)))


# -- the device and intensity figures ------------------------------------------------------


def hourly_run(tmp_path: Path) -> Run:
    """The standard run accounted hour by hour: the hour before 10 s into it at 100 g/kWh,
    the next with no provider data (the static factor, 999 g/kWh, as a fallback)."""
    hour = 1_750_000_000.0 - 1_750_000_000.0 % 3600
    made = make_run(tmp_path, start_wall=hour - 10)
    zone_bins = [IntensityBin(datetime_utc(hour - 3600), datetime_utc(hour), 100.0,
                              "lifecycle", "measured", "DE", "test")]
    points = points_from_series(hour - 10, made.series.t_s, made.series.energy_j)
    account = hourly_emissions(points, zone_bins, fallback_g_per_kwh=999.0)
    hourly = tuple(HourBin(r.start_utc.isoformat(), r.end_utc.isoformat(), r.energy_j,
                           r.g_per_kwh, r.co2e_g,
                           "fallback: table" if r.source == "fallback" else r.source)
                   for r in account.rows)
    result = dataclasses.replace(made.result, emissions=dataclasses.replace(
        made.result.emissions, co2e_g=account.co2e_g, time_resolved="test", hourly=hourly))
    return Run(result, made.series, made.db)


def assert_text_inside(fig: Any) -> None:
    """Everything drawn, every label included, lies whole inside the figure (nothing
    clipped): the tight box of what is drawn is within the page."""
    fig.draw_without_rendering()
    tight, page = fig.get_tightbbox(fig.canvas.get_renderer()), fig.bbox_inches
    assert page.x0 - 0.01 <= tight.x0 and tight.x1 <= page.x1 + 0.01, (tight, page)
    assert page.y0 - 0.01 <= tight.y0 and tight.y1 <= page.y1 + 0.01, (tight, page)


def test_device_breakdown_is_each_device_at_the_runs_factor(run: Run) -> None:
    devices = device_breakdown(run.result)
    factor = run.result.co2e_g / run.result.energy_j
    assert [d.domain for d in devices] == ["cpu", "gpu:0"]
    for d, f in zip(devices, run.result.energy, strict=True):
        assert (d.energy_j, d.energy_low_j, d.energy_high_j) == (
            f.energy_j, f.uncertainty.low, f.uncertainty.high)
        assert d.co2e_g == pytest.approx(f.energy_j * factor, rel=1e-12)
        assert d.method == f.method == "counter"
        assert d.energy_j == pytest.approx(sum(watts(d.domain, i) for i in range(20)))
    assert sum(d.co2e_g for d in devices) == pytest.approx(run.result.co2e_g, rel=1e-12)


def test_phase_devices_split_each_phase_and_the_rest_by_device(run: Run) -> None:
    rows = dict(phase_devices(run.result))
    assert list(rows) == ["pre-training", "fine-tuning", "between phases"]
    for domain in PROFILE:
        assert rows["pre-training"][domain] == pytest.approx(
            sum(watts(domain, i) for i in range(4, 12)))
        assert rows["fine-tuning"][domain] == pytest.approx(
            sum(watts(domain, i) for i in range(12, 18)))
        outside = sum(watts(domain, i) for i in (*range(4), 18, 19))
        assert rows["between phases"][domain] == pytest.approx(outside)
    assert [sum(r.values()) for r in rows.values()] == pytest.approx(
        [s.energy_j for s in phase_breakdown(run.result)])


def test_device_figure_plots_the_stored_numbers(run: Run) -> None:
    fig = device_figure(run.result.identity.run_id, db=run.db)
    data = figure_data(fig)
    (eunit, esize), (munit, msize) = data["units"]["energy"], data["units"]["co2e"]
    # 0.3..0.9 Wh, 0.1..0.3 g: the units the summary writes those in (0.1 g, not 100 mg)
    assert (eunit, munit) == ("Wh", "g") and (esize, msize) == (3600.0, 1.0)
    devices = device_breakdown(run.result)
    assert data["devices"] == [dataclasses.asdict(d) for d in devices]
    for i, d in enumerate(devices):
        name = d.domain.replace(":", "_")
        assert by_gid(fig, f"device-energy-{name}").get_height() * esize == pytest.approx(
            d.energy_j, rel=1e-12)
        assert by_gid(fig, f"device-co2e-{name}").get_height() * msize == pytest.approx(
            d.co2e_g, rel=1e-12)
        assert by_gid(fig, f"device-energy-label-{i}").get_text() == (
            f"{sig3(d.energy_j / esize)} Wh")
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["cpu\ncounter\n(fake)", "gpu:0\ncounter\n(fake)"]
    psize = data["units"]["phase_energy"][1]
    for i, (label, per) in enumerate(phase_devices(run.result)):
        assert data["phases"][i] == {"label": label, "energy_j": per}
        for domain, joules in per.items():
            bar = by_gid(fig, f"phase-device-{i}-{domain.replace(':', '_')}")
            assert bar.get_height() * psize == pytest.approx(joules, rel=1e-12)
    assert_text_inside(fig)


def test_device_figure_without_phases_has_no_phase_panel(tmp_path: Path) -> None:
    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"cpu": 4000.0})], clock=clock, sampling="manual",
                      quiet=True, db="off", country="PL").start()
    clock.advance(3600)
    tracker.tick()
    fig = device_figure(tracker.stop())
    data = figure_data(fig)
    assert data["phases"] == [] and "phase_energy" not in data["units"]
    assert data["units"]["energy"][0] == "kWh" and data["units"]["co2e"][0] == "kg"
    assert len(fig.axes) == 2
    assert_text_inside(fig)


def test_intensity_figure_static_is_the_yearly_factor_and_its_hourly_range(run: Run) -> None:
    fig = intensity_figure(run.result)
    data = figure_data(fig)
    em, inten = run.result.emissions, run.result.intensity
    assert data["hourly"] is False and not em.hourly
    steps = intensity_steps(run.result)
    assert steps == [IntensityStep(0.0, run.result.duration_s, em.intensity_g_per_kwh,
                                   inten.source)]
    line = by_gid(fig, "intensity").get_data()
    tsize = data["units"]["time"][1]
    assert list(line.values) == [em.intensity_g_per_kwh]
    assert [e * tsize for e in line.edges] == pytest.approx([0.0, run.result.duration_s])
    spread = em.factor_spread
    assert spread is not None
    band = by_gid(fig, "intensity-band").get_paths()[0].vertices[:, 1]
    assert (min(band), max(band)) == pytest.approx((spread.low_g_per_kwh,
                                                    spread.high_g_per_kwh))
    assert "No hourly intensity data was used" in by_gid(fig, "intensity-note").get_text()
    ylabel = fig.axes[0].get_ylabel().replace("\n", " ")
    for part in ("g CO2e/kWh", em.basis, str(inten.year), inten.zone_name):
        assert part in ylabel
    assert_text_inside(fig)


def test_intensity_figure_hourly_is_the_bins_with_fallback_hours_marked(
        tmp_path: Path) -> None:
    made = hourly_run(tmp_path)
    fig = intensity_figure(made.result)
    data = figure_data(fig)
    assert data["hourly"] is True
    steps = intensity_steps(made.result)
    assert [(s.start_s, s.end_s, s.g_per_kwh, s.fallback) for s in steps] == [
        (0.0, 10.0, 100.0, False), (10.0, 20.0, 999.0, True)]
    line = by_gid(fig, "intensity").get_data()
    tsize = data["units"]["time"][1]
    assert list(line.values) == [h.g_per_kwh for h in made.result.emissions.hourly]
    assert [e * tsize for e in line.edges] == pytest.approx([0.0, 10.0, 20.0])
    span = by_gid(fig, "intensity-fallback-0")
    xs = [span.get_x(), span.get_x() + span.get_width()]  # a Rectangle
    assert [x * tsize for x in xs] == pytest.approx([10.0, 20.0])
    assert [s["fallback"] for s in data["steps"]] == [False, True]
    assert "test hourly 2025" in fig.axes[0].get_ylabel().replace("\n", " ")
    assert "1 of 2 bins on the static factor" in by_gid(fig, "intensity-note").get_text()
    assert not fig.findobj(lambda a: a.get_gid() == "intensity-band")
    assert_text_inside(fig)


def test_new_figures_are_written_as_png_and_svg(run: Run, tmp_path: Path) -> None:
    for make, name in ((device_figure, "devices"), (intensity_figure, "intensity")):
        make(run.result, path=tmp_path / f"{name}.png")
        make(run.result, path=tmp_path / f"{name}.svg")
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        ET.parse(tmp_path / f"{name}.svg")


def test_bar_labels_of_neighbours_at_one_height_never_overlap(tmp_path: Path) -> None:
    from carbonmonitor.plot.figures import _raised_labels

    assert _raised_labels([1.0, 1.0, 1.0]) == [False, False, False]  # room enough for three
    assert _raised_labels([0.1, 0.11, 0.12, 1.0, 0.5]) == [False, True, False, False, False]
    db = str(tmp_path / "runs.db")
    clock = ManualClock(start_wall=1_750_000_000.0)
    tracker = Tracker(backend=[FakeBackend({"cpu": 30.0})], clock=clock, sampling="manual",
                      quiet=True, db=db, country="DE")
    tracker.start()
    names = ("load", "tokenize", "train", "eval", "test", "export", "save")
    for name in names:  # seven phases of one size: side by side, their labels would overlap
        with tracker.phase(name):
            for _ in range(3):
                clock.advance(1)
                tracker.tick()
    result = tracker.stop()
    fig = impact_figure(result, db=db)
    renderer = fig.canvas.get_renderer()
    boxes = [by_gid(fig, f"stage-label-{i}").get_window_extent(renderer)
             for i in range(len(names))]
    for a, b in zip(boxes, boxes[1:], strict=False):
        assert not a.overlaps(b), (a, b)
