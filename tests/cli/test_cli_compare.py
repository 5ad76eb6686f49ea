"""``carbonmonitor compare`` through the real CLI (a subprocess), on runs stored with the fake
backend: the table, CSV and JSON show the library's numbers; errors say what to do."""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_cli

import carbonmonitor
from carbonmonitor import FakeBackend, ManualClock, Tracker
from carbonmonitor.cli import UsageError
from carbonmonitor.compare import compare
from carbonmonitor.records import RunResult
from carbonmonitor.summary import mass_text, sig3

HOSTILE = "<img src=x onerror=window.__x=1> </script><script>window.__y=1</script>"
# name: cpu watts, seconds per seed, best accuracy per seed
GROUPS = {"small": (50.0, (10, 12), (0.80, 0.82)),
          "medium": (100.0, (10, 14), (0.90, 0.86)),
          "large": (200.0, (10, 10), (0.85, 0.87))}


def make_run(db: Path, name: str, watts: float, seconds: int, accuracy: float, start: float,
             **options: Any) -> RunResult:
    clock = ManualClock(start_wall=start)
    t = Tracker(backend=[FakeBackend({"cpu": watts})], clock=clock, sampling="manual",
                quiet=True, db=str(db), name=name, project="zoo", tags=[name],
                country="DE", **options)
    t.start()
    clock.advance(seconds)
    t.tick()
    t.log_metric("accuracy", accuracy)
    t.add_work(samples=100)
    return t.stop()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    start = 1_764_000_000.0
    for name, (watts, seconds, accuracy) in GROUPS.items():
        for s, a in zip(seconds, accuracy, strict=True):
            start += 100
            make_run(path, name, watts, s, a, start)
    return path


def test_table_groups_ranks_and_marks_the_front(db: Path) -> None:
    done = run_cli(["compare", "--project", "zoo", "--by", "name", "--db", str(db)])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["#", "NAME", "N"] and "accuracy (best)" in lines[0]
    co2e = {}
    for name, (watts, seconds, _) in GROUPS.items():  # from the runs the store holds
        co2e[name] = statistics.fmean(watts * s for s in seconds)
    order = sorted(co2e, key=co2e.__getitem__)
    assert [line.split()[1] for line in lines[1:4]] == order
    table = compare(carbonmonitor.runs(db=str(db)), by="name")
    unit = mass_text(max(r.co2e_g.high for r in table.rows)).split()[-1]
    size = {"g": 1.0, "mg": 1e-3}[unit]  # one unit for the column, as the summary picks it
    assert f"CO2e ({unit})" in lines[0]
    for line, row in zip(lines[1:4], table.rows, strict=True):
        assert row.co2e_g.std is not None
        assert (f"{sig3(row.co2e_g.mean / size)} ± {sig3(row.co2e_g.std / size)} "
                f"[{sig3(row.co2e_g.low / size)}..{sig3(row.co2e_g.high / size)}]") in line
        assert line.endswith("yes") == (row.group in ("small", "medium"))


def test_csv_and_json_carry_raw_si_numbers(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.csv"
    done = run_cli(["compare", "--by", "name", "--format", "csv", "-o", str(out),
                    "--db", str(db)])
    assert done.returncode == 0 and done.stdout == "" and str(out) in done.stderr
    rows = {r["group"]: r for r in csv.DictReader(io.StringIO(out.read_text()))}
    for name, (watts, seconds, accuracy) in GROUPS.items():
        energy = [watts * s for s in seconds]
        assert float(rows[name]["energy_j_mean"]) == pytest.approx(statistics.fmean(energy))
        assert float(rows[name]["energy_j_std"]) == pytest.approx(statistics.stdev(energy))
        assert float(rows[name]["quality_max"]) == max(accuracy)
        assert float(rows[name]["energy_per_sample_j_mean"]) == pytest.approx(
            statistics.fmean(energy) / 100)
    done = run_cli(["compare", "--by", "name", "--format", "json", "--db", str(db)])
    data = json.loads(done.stdout)
    assert data["metric"] == "accuracy" and data["bases"] == ["lifecycle"]
    assert {r["group"]: r["co2e_g"]["mean"] for r in data["rows"]} == pytest.approx(
        {g: float(r["co2e_g_mean"]) for g, r in rows.items()})
    assert {r["group"] for r in data["rows"] if r["pareto"]} == {"small", "medium"}


def test_run_ids_and_a_figure(db: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    found = carbonmonitor.runs(db=str(db), tags=["small"])
    fig = tmp_path / "cmp.svg"
    done = run_cli(["compare", *(r.identity.run_id for r in found), "--figure", str(fig),
                    "--db", str(db)])
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 3
    assert ET.parse(fig).getroot().tag.endswith("svg")


def test_hostile_names_stay_text(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    db = tmp_path / "runs.db"
    make_run(db, HOSTILE, 50.0, 5, 0.5, 1_764_000_000.0)
    make_run(db, "plain", 80.0, 5, 0.6, 1_764_000_100.0)
    fig = tmp_path / "h.svg"
    done = run_cli(["compare", "--by", "tag", "--figure", str(fig), "--db", str(db)])
    assert done.returncode == 0, done.stderr
    assert HOSTILE in done.stdout  # a terminal table is plain text
    raw = fig.read_text(encoding="utf-8")
    assert "<img" not in raw and "<script" not in raw
    texts = "".join("".join(e.itertext()) for e in ET.parse(fig).getroot().iter()
                    if e.tag.endswith("text"))
    assert HOSTILE in texts


def test_no_runs_matched_names_the_filters(db: Path) -> None:
    done = run_cli(["compare", "--project", "nope", "--tag", "x", "--db", str(db)])
    assert done.returncode == 2 and done.stdout == ""
    assert "--project nope, --tag x" in done.stderr and "carbonmonitor runs" in done.stderr


def test_a_metric_nobody_has_lists_the_metrics(db: Path) -> None:
    done = run_cli(["compare", "--metric", "bleu", "--db", str(db)])
    assert done.returncode == 2
    assert "'bleu'" in done.stderr and "accuracy" in done.stderr


def test_mixed_bases_give_a_note_not_an_error(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    make_run(db, "a", 50.0, 5, 0.5, 1_764_000_000.0)
    make_run(db, "b", 50.0, 5, 0.6, 1_764_000_100.0, intensity_basis="operational")
    done = run_cli(["compare", "--by", "name", "--db", str(db)])
    assert done.returncode == 0, done.stderr
    assert "mixes bases" in done.stderr and "lifecycle, operational" in done.stderr
    assert "operational" in done.stdout and "lifecycle" in done.stdout


def test_figure_without_matplotlib_names_the_extra(db: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from carbonmonitor.cli.compare import add_parser, compare_command

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compare", "--figure", str(tmp_path / "f.png"), "--db", str(db)])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    with pytest.raises(UsageError, match=r"--figure: .*pip install 'carbonmonitor\[plot\]'"):
        compare_command(args)
    args = parser.parse_args(["compare", "--format", "csv", "--db", str(db)])
    assert compare_command(args) == 0
    assert capsys.readouterr().out.startswith("group,n,run_ids")


def test_format_follows_the_output_suffix(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.csv"
    done = run_cli(["compare", "--by", "name", "-o", str(out), "--db", str(db)])
    assert done.returncode == 0, done.stderr
    assert [r["group"] for r in csv.DictReader(io.StringIO(out.read_text()))] == \
        [r.group for r in compare(carbonmonitor.runs(db=str(db)), by="name").rows]
    out = tmp_path / "c.json"
    assert run_cli(["compare", "-o", str(out), "--db", str(db)]).returncode == 0
    assert json.loads(out.read_text())["by"] == "run"
    done = run_cli(["compare", "--format", "csv", "-o", str(tmp_path / "x.json"),
                    "--db", str(db)])
    assert done.returncode == 2 and "named as a json file" in done.stderr
    assert not (tmp_path / "x.json").exists()


def test_unfinished_runs_are_left_out_of_a_selection_and_noted_when_named(
        db: Path, tmp_path: Path) -> None:
    clock = ManualClock(start_wall=1_764_100_000.0)
    t = Tracker(backend=[FakeBackend({"cpu": 10.0})], clock=clock, sampling="manual",
                quiet=True, db=str(db), name="small", project="zoo", flush_interval=1,
                country="DE")
    t.start()
    try:
        clock.advance(2)
        t.tick()  # written as running, its owner (this process) alive
        running = t.run_id
        done = run_cli(["compare", "--by", "name", "--format", "json", "--db", str(db)])
        assert done.returncode == 0, done.stderr
        groups = {g["group"]: g for g in json.loads(done.stdout)["rows"]}
        assert groups["small"]["n"] == 2 and running not in done.stdout
        assert "1 running or interrupted run(s) left out" in done.stderr
        done = run_cli(["compare", running, "last", "--db", str(db)])
        assert done.returncode == 0, done.stderr
        assert f"{running} (running) did not finish" in done.stderr
    finally:
        t.stop()


def test_a_run_named_twice_counts_once_and_short_ids_work(db: Path) -> None:
    run_id = carbonmonitor.runs(db=str(db))[0].identity.run_id
    short = run_id[-8:]
    done = run_cli(["compare", run_id, short, short[:5], "--by", "name", "--format", "json",
                    "--db", str(db)])
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["rows"]
    assert row["n"] == 1 and row["run_ids"] == [run_id]
    assert run_cli(["show", short, "--db", str(db)]).returncode == 0
    done = run_cli(["show", "", "--db", str(db)])
    assert done.returncode == 2 and "the run id is empty" in done.stderr


def test_a_metric_without_direction_shows_its_last_value(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    for i, lrs in enumerate(([0.1, 0.01], [0.2, 0.05])):
        clock = ManualClock(start_wall=1_764_000_000.0 + 100 * i)
        t = Tracker(backend=[FakeBackend({"cpu": 10.0})], clock=clock, sampling="manual",
                    quiet=True, db=str(db), name=f"m{i}", country="DE")
        t.start()
        clock.advance(5)
        for lr in lrs:
            t.log_metric("learning_rate", lr)  # no direction known
        t.stop()
    done = run_cli(["compare", "--metric", "learning_rate", "--by", "name", "--db", str(db)])
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert "learning_rate (last)" in header and "(best)" not in header
    values = {row.split()[1]: row.split()[-1] for row in rows[:2]}
    assert values == {"m0": "0.0100", "m1": "0.0500"}
    assert "no direction" in done.stderr


def test_a_bad_group_is_refused_before_anything_is_read(db: Path) -> None:
    done = run_cli(["compare", "--by", "colour", "--db", str(db)])
    assert done.returncode == 2
    assert done.stderr.strip() == ("carbonmonitor: error: cannot group runs by 'colour': use "
                                   "run, name, project, tag or param:KEY (e.g. param:lr)")
