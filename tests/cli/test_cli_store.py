"""``carbonmonitor runs``, ``show`` and the interrupted-run path, through the real CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from cli_helpers import CLI, clean_env, run_cli, wait_for

from carbonmonitor import FakeBackend, ManualClock, Tracker


def make_runs(db: Path) -> list[str]:
    """Three runs with a known fake profile: 100 W cpu + 10 W memory for 10 s each."""
    ids = []
    for i, (project, tags) in enumerate([("bert", "a"), ("cnn", "a,b"), ("bert", "b")]):
        clock = ManualClock(start_wall=1_764_000_000.0 + 3600 * i)
        t = Tracker(backend=[FakeBackend({"cpu": 100.0, "memory": 10.0})], clock=clock,
                    sampling="manual", quiet=True, db=str(db), project=project, tags=tags,
                    name=f"run{i}", country="DE")
        t.start()
        with t.phase("train"):
            clock.advance(10)
        ids.append(t.stop().identity.run_id)
    return ids


def test_runs_lists_newest_first_with_filters(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    ids = make_runs(db)
    done = run_cli(["runs", "--db", str(db)])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["RUN", "STARTED", "PROJECT", "NAME", "STATUS", "DURATION",
                                "ENERGY", "CO2e", "TAGS"]
    assert [line.split()[0] for line in lines[1:]] == ids[::-1]
    assert "completed" in lines[1] and "10.0 s" in lines[1] and "0.306 Wh" in lines[1]
    done = run_cli(["runs", "--db", str(db), "--project", "bert", "--tag", "b", "--json"])
    assert [r["identity"]["run_id"] for r in json.loads(done.stdout)] == [ids[2]]
    done = run_cli(["runs", "--db", str(db), "--limit", "1"])
    assert len(done.stdout.splitlines()) == 2 and "--all" in done.stderr
    done = run_cli(["runs", "--db", str(db), "--since", "2025-11-24T17:30", "--json"])
    assert [r["identity"]["run_id"] for r in json.loads(done.stdout)] == [ids[2]]
    done = run_cli(["runs", "--db", str(db), "--project", "none"])
    assert done.stdout == "" and "no runs match" in done.stderr


def test_show_gives_energy_phases_co2e_provenance_and_identity(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    ids = make_runs(db)
    done = run_cli(["show", ids[1][:-3], "--db", str(db)])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"run {ids[1]} 'run1' (project cnn) completed in 10.0 s" in out
    assert "cpu" in out and "counter" in out and "train" in out
    assert "Germany (DEU)" in out and "lifecycle" in out and "PUE 1.0" in out
    assert "Identity" in out and "tags       a, b" in out
    done = run_cli(["show", "last", "--db", str(db), "--json"])
    data = json.loads(done.stdout)
    assert data["identity"]["run_id"] == ids[2]
    assert data["energy_j"] == pytest.approx(110 * 10)


@pytest.mark.parametrize("args, message", [
    (["show", "nope"], "no run 'nope' in .*runs.db; `carbonmonitor runs` lists"),
    (["runs", "--status", "done"], "status must be one of .*got 'done'"),
    (["runs", "--since", "yesterday"], "such as 12h or 7d; got 'yesterday'"),
    (["runs", "--limit", "0"], "--limit must be a positive whole number"),
    (["export", "--format", "xml"], "invalid choice: 'xml'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                          message: str) -> None:
    db = tmp_path / "runs.db"
    make_runs(db)
    done = run_cli([*args, "--db", str(db)])
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert re.search(message, done.stderr), done.stderr


def test_a_missing_store_says_so(tmp_path: Path) -> None:
    done = run_cli(["runs", "--db", str(tmp_path / "none.db")])
    assert done.returncode == 2 and "no run store at" in done.stderr
    env = clean_env(XDG_DATA_HOME=str(tmp_path / "fresh"))  # a new user: nothing stored yet
    done = run_cli(["runs"], env=env)
    assert done.returncode == 0 and done.stdout == ""
    assert "no runs stored yet (the store " in done.stderr and "fresh" in done.stderr
    done = run_cli(["export"], env=env)
    assert done.returncode == 0 and done.stdout.startswith("timestamp,project_name,")


def test_sigkill_of_a_monitored_process_group_shows_interrupted(tmp_path: Path) -> None:
    db, pid_file = tmp_path / "runs.db", tmp_path / "child.pid"
    child = (f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
             "time.sleep(600)")
    proc = subprocess.Popen([*CLI, "run", "--db", str(db), "--backend", "constant",
                             "--constant-power", "cpu=100", "--interval", "0.1",
                             "--flush-interval", "1", "--quiet", "--", sys.executable, "-c",
                             child], env=clean_env(), start_new_session=True)
    try:
        def flushed_twice() -> bool:
            try:
                with sqlite3.connect(db) as conn:
                    row = conn.execute("SELECT duration_s FROM runs").fetchone()
            except sqlite3.Error:
                return False
            return row is not None and row[0] >= 2.0
        wait_for(flushed_twice, "two flushes")
        assert "running" in run_cli(["runs", "--db", str(db)]).stdout
        with sqlite3.connect(db) as conn:
            flushed_energy = conn.execute("SELECT energy_j FROM runs").fetchone()[0]
        killed_at = time.time()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if pid_file.exists():  # the command runs in its own session: a SIGKILL cannot be passed on
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    done = run_cli(["runs", "--db", str(db), "--json"])
    (run,) = json.loads(done.stdout)
    assert run["status"] == "interrupted"
    assert run["energy_j"] >= flushed_energy
    started = datetime.fromisoformat(run["identity"]["started_at"])
    assert 0 <= killed_at - started.timestamp() - run["duration_s"] <= 1.0 + 0.1 + 0.5
    assert "interrupted" in run_cli(["runs", "--db", str(db)]).stdout


# CodeCarbon 3.3.2's emissions.csv header, in its order (issue 3; docs/cli.md).
CODECARBON_HEADER = (
    "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,"
    "gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed,"
    "country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,"
    "codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,"
    "ram_total_size,tracking_mode,cpu_utilization_percent,gpu_utilization_percent,"
    "ram_utilization_percent,ram_used_gb,on_cloud,pue,wue").split(",")


def test_export_csv_has_codecarbon_columns_units_then_provenance(tmp_path: Path) -> None:
    import pandas

    db, out = tmp_path / "runs.db", tmp_path / "emissions.csv"
    ids = make_runs(db)
    done = run_cli(["export", "--format", "csv", "--output", str(out), "--db", str(db),
                    "--project", "bert"])
    assert done.returncode == 0, done.stderr
    assert "exported 2 run(s)" in done.stderr
    frame = pandas.read_csv(out)
    assert list(frame.columns[:len(CODECARBON_HEADER)]) == CODECARBON_HEADER
    extra = list(frame.columns[len(CODECARBON_HEADER):])
    assert {"cm_energy_methods", "cm_device_energy_kwh_low", "cm_device_energy_kwh_high",
            "cm_intensity_source", "cm_intensity_year", "cm_intensity_basis",
            "cm_pue_source"} <= set(extra)
    assert list(frame["run_id"]) == [ids[2], ids[0]]
    row = frame.iloc[0]
    # 100 W cpu + 10 W memory for 10 s in Germany, PUE 1.0
    assert row["duration"] == pytest.approx(10.0)
    assert row["cpu_energy"] == pytest.approx(100 * 10 / 3.6e6, rel=1e-9)
    assert row["ram_energy"] == pytest.approx(10 * 10 / 3.6e6, rel=1e-9)
    assert row["energy_consumed"] == pytest.approx(110 * 10 / 3.6e6, rel=1e-9)
    assert row["cpu_power"] == pytest.approx(100.0) and row["ram_power"] == pytest.approx(10.0)
    stored = json.loads(run_cli(["show", ids[2], "--json", "--db", str(db)]).stdout)
    grams = stored["emissions"]["co2e_g"]
    assert row["emissions"] == pytest.approx(grams / 1000, rel=1e-9)
    assert row["emissions_rate"] == pytest.approx(grams / 1000 / 10, rel=1e-9)
    assert row["country_iso_code"] == "DEU" and row["country_name"] == "Germany"
    assert row["on_cloud"] == "N" and row["pue"] == 1.0 and row["tracking_mode"] == "machine"
    assert row["cm_intensity_year"] == stored["intensity"]["year"]
    assert row["cm_energy_methods"] == "cpu=counter;memory=counter"
    assert pandas.isna(row["water_consumed"])  # not measured: empty, not invented


def test_export_csv_scales_energy_and_power_by_pue_as_codecarbon_does(tmp_path: Path) -> None:
    import csv

    db = tmp_path / "runs.db"
    clock = ManualClock()
    t = Tracker(backend=[FakeBackend({"cpu": 100.0, "memory": 10.0})], clock=clock,
                sampling="manual", quiet=True, db=str(db), country="FR", pue=1.5,
                attribution="machine", idle_power="cpu=20")
    t.start()
    clock.advance(36)
    result = t.stop()
    done = run_cli(["export", "--db", str(db)])
    (row,) = list(csv.DictReader(done.stdout.splitlines()))
    device_kwh = 110 * 36 / 3.6e6
    assert float(row["energy_consumed"]) == pytest.approx(device_kwh * 1.5, rel=1e-9)
    assert float(row["cpu_energy"]) + float(row["ram_energy"]) + float(row["gpu_energy"]) == \
        pytest.approx(float(row["energy_consumed"]), rel=1e-12)
    assert float(row["cpu_power"]) == pytest.approx(150.0)
    assert float(row["cm_device_energy_kwh"]) == pytest.approx(device_kwh, rel=1e-9)
    assert float(row["cm_attributed_energy_kwh"]) == pytest.approx(device_kwh, rel=1e-9)
    assert row["cm_attribution"] == "machine"
    assert float(row["cm_idle_energy_kwh"]) == pytest.approx(20 * 36 / 3.6e6, rel=1e-9)
    intensity = result.intensity.g_per_kwh / 1000  # kg/kWh
    assert float(row["emissions"]) == pytest.approx(float(row["energy_consumed"]) * intensity,
                                                    rel=1e-9)
    assert row["pue"] == "1.5" and row["gpu_count"] == "0" and row["gpu_model"] == ""


def test_export_json_is_the_stored_results(tmp_path: Path) -> None:
    from carbonmonitor import RunResult, load

    db = tmp_path / "runs.db"
    ids = make_runs(db)
    done = run_cli(["export", "--format", "json", "--db", str(db)])
    assert done.returncode == 0, done.stderr
    exported = [RunResult.from_dict(d) for d in json.loads(done.stdout)]
    assert exported == [load(i, db=db) for i in ids[::-1]]


def test_export_to_a_directory_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    make_runs(db)
    done = run_cli(["export", "--output", str(tmp_path), "--db", str(db)])
    assert done.returncode == 2 and "is a directory" in done.stderr


def test_runs_says_when_the_listed_co2e_mix_bases(tmp_path: Path) -> None:
    """GCP's own factors are operational, OWID's life-cycle: a list with both says so."""
    db = str(tmp_path / "runs.db")
    for where in ({"country": "FR"}, {"cloud_provider": "gcp", "cloud_region": "europe-west1"}):
        t = Tracker(backend="fake", sampling="manual", quiet=True, db=db, **where)
        t.start().stop()
    done = run_cli(["runs", "--db", db])
    assert done.returncode == 0
    assert "mix emission-factor bases (lifecycle, operational)" in done.stderr
    one = run_cli(["runs", "--db", db, "--limit", "1"])
    assert "mix emission-factor bases" not in one.stderr
