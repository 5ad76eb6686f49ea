"""Real processes: a killed run is kept as interrupted, forked workers never touch the run.

Timing tolerances come from the configured intervals plus a scheduling margin, measured
against wall time read in the test; every wait is on a condition with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import carbonmonitor

FLUSH_S, INTERVAL_S, MARGIN_S = 1.0, 0.1, 0.5

VICTIM = textwrap.dedent("""
    import sys, time, carbonmonitor
    with carbonmonitor.track(backend="constant", constant_power="cpu=100", db=sys.argv[1],
                             interval=float(sys.argv[2]), flush_interval=float(sys.argv[3]),
                             name="victim", quiet=True):
        time.sleep(600)
""")


def wait_for(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout} s")


def stored_row(db: Path) -> tuple[Any, ...] | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT run_id, duration_s, energy_j FROM runs").fetchone()
    except sqlite3.OperationalError:  # the schema is being created
        return None


def test_sigkill_after_two_flushes_leaves_an_interrupted_run(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    proc = subprocess.Popen([sys.executable, "-c", VICTIM, str(db), str(INTERVAL_S),
                             str(FLUSH_S)], start_new_session=True)
    try:
        row = wait_for(lambda: (r := stored_row(db)) and r[1] >= 2 * FLUSH_S and r)
        assert carbonmonitor.load(row[0], db=db).status == "running"  # its owner lives
        row = stored_row(db)  # the latest flush before the kill
        killed_at = time.time()
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    (run,) = carbonmonitor.runs(db=db)
    assert run.status == "interrupted" and run.identity.name == "victim"
    assert "run-interrupted" in [f.code for f in run.flags]
    assert run.energy_j >= row[2]
    assert run.energy_j == pytest.approx(100 * run.duration_s, rel=1e-6)  # constant 100 W
    elapsed = killed_at - datetime.fromisoformat(run.identity.started_at).timestamp()
    assert 0 <= elapsed - run.duration_s <= FLUSH_S + INTERVAL_S + MARGIN_S
    assert carbonmonitor.runs(db=db, status="interrupted") == [run]


FORKER = textwrap.dedent("""
    import json, multiprocessing, os, sqlite3, sys, time
    import carbonmonitor

    db = sys.argv[1]
    run = carbonmonitor.Tracker(backend="constant", constant_power="cpu=50", db=db,
                                interval=0.01, flush_interval=0.02, quiet=True, name="parent")
    run.start()

    def worker(i):
        with run.phase(f"child{i}"):  # a phase in a worker is not the parent's
            sum(range(300000))
        run.tick()
        return run.stop().status  # refused: the parent owns the run

    with run.phase("parent-work"):
        with multiprocessing.get_context("fork").Pool(2) as pool:
            statuses = pool.map(worker, range(8))
        pid = os.fork()  # a raw fork whose child exits through sys.exit: atexit runs there
        if pid == 0:
            with run.phase("raw-child"):
                pass
            sys.exit(0)
        os.waitpid(pid, 0)
        time.sleep(0.1)
    run_id = carbonmonitor.runs(db=db)[0].identity.run_id
    before_stop = carbonmonitor.load(run_id, db=db).status
    result = run.stop()
    stored = carbonmonitor.load(run_id, db=db)
    with sqlite3.connect(db) as conn:
        seqs = [r[0] for r in conn.execute(
            "SELECT DISTINCT seq FROM samples WHERE run_id = ? ORDER BY seq", (run_id,))]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        count = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    print(json.dumps({
        "statuses": statuses, "before_stop": before_stop, "status": result.status,
        "phases": [p.name for p in result.phases], "same": stored == result,
        "seqs_ok": seqs == list(range(result.sample_count)), "integrity": integrity,
        "runs": count, "energy_ok": abs(result.energy_j - 50 * result.duration_s) < 1e-6,
    }))
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork exists only on POSIX")
def test_forked_workers_leave_the_store_and_the_parents_run_intact(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", FORKER, str(tmp_path / "runs.db")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == {
        "statuses": ["running"] * 8, "before_stop": "running", "status": "completed",
        "phases": ["parent-work"], "same": True, "seqs_ok": True, "integrity": "ok", "runs": 1,
        "energy_ok": True,
    }
    assert "called in a forked child" in proc.stderr
