"""carbonmonitor.compare: group means and spreads, ranking, Pareto front, CSV/JSON and the figure,
from runs made with the fake backend under a manual clock in a store under tmp_path.

Expected figures are computed here from the stored runs (and checked against the scripted
power x duration); expected Pareto membership from the group means by brute force.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import carbonmonitor
from carbonmonitor import ConfigError, FakeBackend, ManualClock, Tracker
from carbonmonitor.compare import Comparison, compare, compare_figure, pareto_front
from carbonmonitor.records import RunResult

HOSTILE = "<img src=x onerror=window.__x=1> & $5 </script><script>window.__y=1</script>"
# name: (cpu watts, [(seconds, accuracy values logged, loss values logged) per seed])
GROUPS = {
    "small": (50.0, [(10, [0.78, 0.80], [0.9, 0.7]), (12, [0.82, 0.81], [0.8, 0.6])]),
    "medium": (100.0, [(10, [0.90, 0.85], [0.5, 0.4]), (14, [0.86], [0.45])]),
    "large": (200.0, [(10, [0.85], [0.4]), (10, [0.80, 0.87], [0.5, 0.3])]),
}


def make_run(db: str, name: str, watts: float, seconds: int, accuracy: list[float],
             loss: list[float], *, seed: int = 0, start_wall: float = 1_764_000_000.0,
             **options: Any) -> RunResult:
    clock = ManualClock(start_wall=start_wall)
    tracker = Tracker(backend=[FakeBackend({"cpu": watts})], clock=clock, sampling="manual",
                      quiet=True, db=db, name=name, country=options.pop("country", "DE"),
                      project=f"proj-{name}", tags=[name, f"seed{seed}"],
                      params={"size": name, "seed": seed}, **options)
    tracker.start()
    for _ in range(seconds):
        clock.advance(1)
        tracker.tick()
    for value in accuracy:
        tracker.log_metric("accuracy", value)
    for value in loss:
        tracker.log_metric("loss", value)
    tracker.add_work(samples=100 * (seed + 1), tokens=4000)
    return tracker.stop()


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[RunResult]]:
    db = str(tmp_path_factory.mktemp("compare") / "runs.db")
    made: list[RunResult] = []
    for name, (watts, seeds) in GROUPS.items():
        for seed, (seconds, accuracy, loss) in enumerate(seeds):
            made.append(make_run(db, name, watts, seconds, accuracy, loss, seed=seed,
                                 start_wall=1_764_000_000.0 + 100 * len(made)))
    return db, made


def by_name(runs: list[RunResult]) -> dict[str, list[RunResult]]:
    out: dict[str, list[RunResult]] = {}
    for r in runs:
        out.setdefault(r.identity.name, []).append(r)
    return out


def dominated(i: int, points: list[tuple[float, float]]) -> bool:
    """(quality, co2e), higher quality and lower CO2e better."""
    q, c = points[i]
    return any(q2 >= q and c2 <= c and (q2 > q or c2 < c)
               for j, (q2, c2) in enumerate(points) if j != i)


def test_groups_of_seeds_give_means_spreads_ranking_and_front(
        stored: tuple[str, list[RunResult]]) -> None:
    db, made = stored
    table = compare(carbonmonitor.runs(db=db), by="name")
    assert table.metric == "accuracy" and table.direction == "higher"
    assert table.bases == ("lifecycle",) and not table.mixed_bases and table.note == ""
    groups = by_name(made)
    rows = {r.group: r for r in table.rows}
    assert set(rows) == set(GROUPS)
    for name, runs in groups.items():
        row, (watts, seeds) = rows[name], GROUPS[name]
        energy = [r.energy_j for r in runs]
        assert sorted(energy) == pytest.approx(sorted(watts * s for s, _, _ in seeds))
        co2e = [r.co2e_g for r in runs]
        best = [max(acc) for _, acc, _ in seeds]
        assert row.n == 2 and set(row.run_ids) == {r.identity.run_id for r in runs}
        assert row.energy_j.mean == pytest.approx(statistics.fmean(energy))
        assert row.energy_j.std == pytest.approx(statistics.stdev(energy))
        assert (row.energy_j.low, row.energy_j.high) == (min(energy), max(energy))
        assert row.co2e_g.mean == pytest.approx(statistics.fmean(co2e))
        assert row.co2e_g.std == pytest.approx(statistics.stdev(co2e))
        assert row.duration_s.mean == pytest.approx(statistics.fmean(s for s, _, _ in seeds))
        assert row.quality is not None
        assert row.quality.mean == pytest.approx(statistics.fmean(best))
        assert (row.quality.low, row.quality.high) == (min(best), max(best))
        per_sample = [r.energy_j / (100 * (i + 1)) for i, r in
                      enumerate(sorted(runs, key=lambda r: r.identity.params["seed"]))]
        assert row.energy_per_sample_j is not None
        assert row.energy_per_sample_j.mean == pytest.approx(statistics.fmean(per_sample))
        assert row.co2e_per_1k_tokens_g is not None
        assert row.co2e_per_1k_tokens_g.mean == pytest.approx(statistics.fmean(
            r.co2e_g / 4 for r in runs))
    means = {n: statistics.fmean(r.co2e_g for r in runs) for n, runs in groups.items()}
    assert [r.group for r in table.rows] == sorted(means, key=means.__getitem__)
    assert [r.rank for r in table.rows] == [1, 2, 3]
    names = list(groups)
    points = [(statistics.fmean(max(a) for _, a, _ in GROUPS[n][1]), means[n]) for n in names]
    expected = {names[i] for i in range(len(names)) if not dominated(i, points)}
    assert {r.group for r in table.front} == expected == {"small", "medium"}


def test_a_lower_is_better_metric_flips_the_front(stored: tuple[str, list[RunResult]]) -> None:
    db, made = stored
    table = compare(made, by="name", metric="loss")
    assert table.direction == "lower"
    groups = by_name(made)
    names = list(groups)
    # negate loss so that higher is better in the brute-force check
    points = [(-statistics.fmean(min(loss) for _, _, loss in GROUPS[n][1]),
               statistics.fmean(r.co2e_g for r in groups[n])) for n in names]
    expected = {names[i] for i in range(len(names)) if not dominated(i, points)}
    assert {r.group for r in table.front} == expected
    row = next(r for r in table.rows if r.group == "large")
    assert row.quality is not None and row.quality.low == min(min(x[2]) for x in GROUPS["large"][1])


def test_grouping_by_run_tag_and_param(stored: tuple[str, list[RunResult]]) -> None:
    db, made = stored
    ids = [r.identity.run_id for r in made]
    one = compare(ids, db=db)
    assert len(one.rows) == 6 and all(r.n == 1 and r.co2e_g.std is None for r in one.rows)
    assert sorted(r.co2e_g.mean for r in one.rows) == [r.co2e_g.mean for r in one.rows]
    tags = compare(made, by="tag")
    seed0 = next(r for r in tags.rows if r.group == "seed0")
    assert seed0.n == 3 and seed0.co2e_g.mean == pytest.approx(statistics.fmean(
        r.co2e_g for r in made if r.identity.params["seed"] == 0))
    params = compare(made, by="param:seed")
    assert {r.group for r in params.rows} == {"seed=0", "seed=1"}
    assert {r.group for r in compare(made, by="project").rows} == {f"proj-{n}" for n in GROUPS}


def test_pareto_front_ties_and_missing_quality() -> None:
    assert pareto_front([(0.9, 1.0), (0.9, 1.0)], "higher") == {0, 1}  # equal: neither better
    assert pareto_front([(0.9, 1.0), (0.9, 2.0), (None, 0.1)], "higher") == {0}
    assert pareto_front([(0.9, 1.0)], None) == set()


def test_csv_and_json_round_trip(stored: tuple[str, list[RunResult]]) -> None:
    _, made = stored
    table = compare(made, by="name")
    back = json.loads(table.to_json())
    assert back["metric"] == "accuracy" and back["mixed_bases"] is False
    for row, plain in zip(table.rows, back["rows"], strict=True):
        assert plain["group"] == row.group and plain["n"] == row.n
        assert plain["co2e_g"]["mean"] == row.co2e_g.mean
        assert plain["energy_j"]["std"] == row.energy_j.std
        assert plain["quality"]["high"] == (row.quality.high if row.quality else None)
    lines = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert [line["group"] for line in lines] == [r.group for r in table.rows]
    for row, line in zip(table.rows, lines, strict=True):
        assert float(line["co2e_g_mean"]) == row.co2e_g.mean  # repr: exact round trip
        assert float(line["energy_j_min"]) == row.energy_j.low
        assert float(line["duration_s_std"]) == row.duration_s.std
        assert line["pareto"] == str(row.pareto) and int(line["rank"]) == row.rank
        assert line["run_ids"].split() == list(row.run_ids)


def test_mixed_bases_are_noted_not_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    a = make_run(db, "a", 100.0, 10, [0.9], [0.1])
    b = make_run(db, "b", 100.0, 10, [0.8], [0.2], intensity_basis="operational")
    table = compare([a, b], by="name")
    assert table.mixed_bases and table.bases == ("lifecycle", "operational")
    assert "mixes bases" in table.note and len(table.rows) == 2
    assert {r.group: r.bases for r in table.rows} == {"a": ("lifecycle",),
                                                      "b": ("operational",)}


def test_errors_name_the_fix(stored: tuple[str, list[RunResult]]) -> None:
    _, made = stored
    with pytest.raises(ConfigError, match="no run here has a metric 'bleu'.*accuracy, loss"):
        compare(made, metric="bleu")
    with pytest.raises(ConfigError, match="param:KEY"):
        compare(made, by="colour")
    with pytest.raises(ConfigError, match="carbonmonitor runs"):
        compare([])


def test_no_metric_in_common_means_no_quality(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    a = make_run(db, "a", 100.0, 5, [0.9], [])
    b = make_run(db, "b", 100.0, 5, [], [0.2])
    table = compare([a, b])
    assert table.metric is None and all(r.quality is None for r in table.rows)
    assert table.front == ()


def test_figure_plots_the_table(stored: tuple[str, list[RunResult]], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from carbonmonitor.plot import figure_data

    _, made = stored
    table = compare(made, by="name")
    fig = compare_figure(table, path=tmp_path / "c.svg")
    data = figure_data(fig)
    assert data["kind"] == "compare" and data["groups"] == [r.group for r in table.rows]
    assert data["co2e_g"] == [[r.co2e_g.mean, r.co2e_g.low, r.co2e_g.high] for r in table.rows]
    assert [(p["group"], p["co2e_g"], p["quality"], p["pareto"]) for p in data["points"]] == [
        (r.group, r.co2e_g.mean, r.quality.mean if r.quality else None, r.pareto)
        for r in table.rows]
    assert data["front"] == [r.group for r in table.front]
    svg = ET.parse(tmp_path / "c.svg").getroot()
    ids = {e.get("id") for e in svg.iter()}
    assert {"compare-front", "compare-bar-0", "compare-point-2"} <= ids
    # the other figures of the table, one bar panel each, in the table's order
    for name in ("duration_s", "energy_j", "co2e_per_sample_g", "co2e_per_1k_tokens_g"):
        assert data["figures"][name] == [
            [getattr(r, name).mean, getattr(r, name).low, getattr(r, name).high]
            for r in table.rows], name
        assert {f"compare-{name}-{i}" for i in range(len(table.rows))} <= ids
    from carbonmonitor.summary import energy_unit

    _, size = energy_unit(max(r.energy_j.high for r in table.rows))  # the summary's unit
    for i, r in enumerate(table.rows):  # the bars are the means, in that unit
        bar = next(a for a in fig.findobj() if a.get_gid() == f"compare-energy_j-{i}")
        assert bar.get_width() * size == pytest.approx(r.energy_j.mean, rel=1e-12)


def test_hostile_names_are_text_in_the_svg(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    db = str(tmp_path / "runs.db")
    a = make_run(db, HOSTILE, 100.0, 5, [], [], seed=1)
    clock = ManualClock(start_wall=1_764_000_500.0)
    tracker = Tracker(backend=[FakeBackend({"cpu": 50.0})], clock=clock, sampling="manual",
                      quiet=True, db=db, name="plain", country="DE", tags=[HOSTILE])
    tracker.start()
    clock.advance(5)
    tracker.tick()
    b = tracker.stop()
    path = tmp_path / "h.svg"
    table = compare([a, b], by="tag")
    compare_figure(table, path=path)
    raw = path.read_text(encoding="utf-8")
    assert "<img" not in raw and "<script" not in raw
    texts = " ".join("".join(e.itertext()) for e in ET.parse(path).getroot().iter()
                     if e.tag.endswith("text"))
    assert HOSTILE in texts


def test_hostile_metric_name_is_text_in_the_svg(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    db = str(tmp_path / "runs.db")
    runs = []
    for i, watts in enumerate((50.0, 80.0)):
        clock = ManualClock(start_wall=1_764_000_000.0 + 100 * i)
        tracker = Tracker(backend=[FakeBackend({"cpu": watts})], clock=clock, quiet=True,
                          sampling="manual", db=db, name=f"m{i}", country="DE")
        tracker.start()
        clock.advance(5)
        tracker.tick()
        tracker.log_metric(HOSTILE, 0.5 + i / 10, direction="higher")
        runs.append(tracker.stop())
    path = tmp_path / "m.svg"
    compare_figure(compare(runs, by="name"), path=path)
    raw = path.read_text(encoding="utf-8")
    assert "<img" not in raw and "<script" not in raw
    texts = "".join("".join(e.itertext()) for e in ET.parse(path).getroot().iter()
                    if e.tag.endswith("text"))
    assert HOSTILE in texts


def test_without_matplotlib_the_table_works_and_the_figure_names_the_extra(
        stored: tuple[str, list[RunResult]], monkeypatch: pytest.MonkeyPatch) -> None:
    _, made = stored
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    table = compare(made, by="name")
    assert isinstance(table, Comparison) and table.to_csv() and table.to_json()
    with pytest.raises(ImportError, match=r"pip install 'carbonmonitor\[plot\]'"):
        compare_figure(table)


def test_a_parameter_no_run_has_is_refused_with_the_ones_there_are(
        stored: tuple[str, list[RunResult]]) -> None:
    _, runs = stored
    with pytest.raises(ConfigError, match=r"no run has the parameter 'sede'.*seed, size.*"
                                          r"Did you mean 'seed'"):
        compare(runs, by="param:sede")


def test_runs_from_several_places_are_noted(tmp_path: Path) -> None:
    db = str(tmp_path / "runs.db")
    runs = [make_run(db, "m", 100.0, 5, [0.9], [0.1], country="DE"),
            make_run(db, "m", 100.0, 5, [0.9], [0.1], seed=1, country="SE")]
    table = compare(runs, by="name")
    assert "measured in 2 places (Germany (DEU); Sweden (SWE))" in table.note
    [row] = table.rows
    assert row.energy_j.low == row.energy_j.high  # same energy: the spread is the grids'
