"""The run store under a manual clock: what is written when, and what the query API returns.

Expected energies are computed here from the fake profile (watts x fake-clock seconds).
"""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import carbonmonitor
from carbonmonitor import ConfigError, FakeBackend, ManualClock, StoreError, Tracker
from carbonmonitor.store import Store, owner_alive, parse_since, process_start


def tracker(db: Path, clock: ManualClock, watts: float = 100.0, **options: Any) -> Tracker:
    return Tracker(backend=[FakeBackend({"cpu": watts, "memory": 10.0})], clock=clock,
                   sampling="manual", quiet=True, db=str(db), **options)


def rows(db: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query, args).fetchall()


def test_stop_result_round_trips_exactly(tmp_path: Path) -> None:
    db, clock = tmp_path / "runs.db", ManualClock()
    t = tracker(db, clock, project="p", name="n", tags="a,b", params={"lr": 0.1}, country="FR")
    t.start()
    with t.phase("train"):
        clock.advance(5)
        t.tick()
    result = t.stop()
    loaded = carbonmonitor.load(result.identity.run_id, db=db)
    assert loaded == result
    assert loaded.energy_j == pytest.approx(110 * 5, rel=1e-12)
    assert carbonmonitor.runs(db=db) == [result]


def test_flushes_every_flush_interval_with_the_samples_so_far(tmp_path: Path) -> None:
    db, clock = tmp_path / "runs.db", ManualClock()
    t = tracker(db, clock, flush_interval=10)
    t.start()  # the run row is written at start: visible as running at once
    run_id = rows(db, "SELECT run_id FROM runs")[0][0]
    assert carbonmonitor.load(run_id, db=db).status == "running"
    for _ in range(9):  # 9 s: no flush due yet
        clock.advance(1)
        t.tick()
    assert rows(db, "SELECT count(DISTINCT seq), max(duration_s) FROM samples, runs") == [(1, 0)]
    clock.advance(1)
    t.tick()  # 10 s: flush
    running = carbonmonitor.load(run_id, db=db)
    assert running.status == "running" and running.duration_s == 10
    assert running.energy_j == pytest.approx(110 * 10, rel=1e-12)
    assert rows(db, "SELECT count(DISTINCT seq) FROM samples") == [(11,)]
    clock.advance(3.5)
    result = t.stop()
    assert rows(db, "SELECT count(DISTINCT seq) FROM samples") == [(result.sample_count,)]
    series = carbonmonitor.series(run_id, db=db)
    assert series.t_s == pytest.approx([float(i) for i in range(11)] + [13.5])
    assert series.energy_j["cpu"][-1] == pytest.approx(100 * 13.5, rel=1e-12)
    assert series.power_w()["cpu"] == pytest.approx([100.0] * 11)


def test_open_phases_count_in_provisional_results(tmp_path: Path) -> None:
    db, clock = tmp_path / "runs.db", ManualClock()
    t = tracker(db, clock, flush_interval=2)
    t.start()
    with t.phase("train"):
        clock.advance(3)
        t.tick()  # flush while the phase is open
        provisional = carbonmonitor.load("last", db=db)
        assert provisional.phase("train").duration_s == 3
        assert provisional.phase("train").energy_j == pytest.approx(330, rel=1e-12)
    t.stop()
    assert rows(db, "SELECT name, count, duration_s FROM phases") == [("train", 1, 3.0)]
    assert rows(db, "SELECT phase, start_s, end_s FROM spans") == [("train", 0.0, 3.0)]


def test_spans_shorter_than_a_sampling_period_are_not_stored(tmp_path: Path) -> None:
    db, clock = tmp_path / "runs.db", ManualClock()
    t = tracker(db, clock, interval=1.0)
    t.start()
    for _ in range(5):
        with t.phase("step"):
            clock.advance(0.2)
    with t.phase("eval"):
        clock.advance(1.5)
    result = t.stop()
    assert result.phase("step").count == 5
    assert rows(db, "SELECT phase FROM spans") == [("eval",)]


def test_query_filters_newest_first_and_limit(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    made = []
    for i, (project, tags) in enumerate([("a", "x"), ("b", "x,y"), ("a", "y"), ("a", "x,y")]):
        clock = ManualClock(start_wall=1_764_000_000.0 + 86400 * i)
        t = tracker(db, clock, project=project, tags=tags, name=f"r{i}")
        t.start()
        clock.advance(1)
        made.append(t.stop())
    ids = [r.identity.run_id for r in made]

    def found(**kw: Any) -> list[str]:
        return [r.identity.run_id for r in carbonmonitor.runs(db=db, **kw)]

    assert found() == ids[::-1]
    assert found(project="a") == [ids[3], ids[2], ids[0]]
    assert found(tags=["x", "y"]) == [ids[3], ids[1]]
    assert found(tags="y") == [ids[3], ids[2], ids[1]]
    assert found(name="r1") == [ids[1]]
    since = datetime.fromtimestamp(1_764_000_000.0 + 86400 * 2, tz=timezone.utc)
    assert found(since=since) == [ids[3], ids[2]]
    assert found(since=since.isoformat()) == [ids[3], ids[2]]
    assert found(limit=2) == [ids[3], ids[2]]
    assert found(status="completed", project="b") == [ids[1]]
    assert found(status="running") == []


def test_load_by_prefix_last_and_clear_errors(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    results = []
    for _ in range(2):
        t = tracker(db, ManualClock())  # same fake wall clock: ids share the time stamp prefix
        t.start()
        results.append(t.stop())
    first = results[0].identity.run_id
    assert carbonmonitor.load(first[:-2], db=db).identity.run_id == first
    assert carbonmonitor.load("last", db=db).identity.run_id in {r.identity.run_id
                                                                 for r in results}
    with pytest.raises(StoreError, match="ambiguous.*give more characters"):
        carbonmonitor.load(first[:16], db=db)
    with pytest.raises(StoreError, match="no run 'nope'.*carbonmonitor runs"):
        carbonmonitor.load("nope", db=db)
    with pytest.raises(StoreError, match="no run store at .*missing.db"):
        carbonmonitor.runs(db=tmp_path / "missing.db")
    with pytest.raises(ConfigError, match="status must be one of.*Did you mean 'completed'"):
        carbonmonitor.runs(db=db, status="complete")
    with pytest.raises(ConfigError, match="limit must be a positive"):
        carbonmonitor.runs(db=db, limit=0)


def test_since_accepts_ages_dates_and_says_what_it_wants() -> None:
    now = datetime.now(timezone.utc)
    assert abs(parse_since("12h") - (now - timedelta(hours=12))) < timedelta(seconds=5)
    assert abs(parse_since("1.5d") - (now - timedelta(hours=36))) < timedelta(seconds=5)
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=timezone.utc)
    with pytest.raises(ConfigError, match="such as 12h or 7d; got 'yesterday'"):
        parse_since("yesterday")


def test_default_location_is_the_user_data_directory(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with carbonmonitor.track(backend="fake", quiet=True) as run:
        pass
    assert (tmp_path / "data" / "carbonmonitor" / "runs.db").is_file()
    assert carbonmonitor.load("last") == run.result


def test_environment_and_config_file_choose_the_store(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARBONMONITOR_DB", str(tmp_path / "env.db"))
    with carbonmonitor.track(backend="fake", quiet=True):
        pass
    assert len(carbonmonitor.runs()) == 1 and (tmp_path / "env.db").is_file()
    monkeypatch.delenv("CARBONMONITOR_DB")
    (tmp_path / "carbonmonitor.toml").write_text('db = "stored/runs.db"\n')
    monkeypatch.chdir(tmp_path)
    with carbonmonitor.track(backend="fake", quiet=True):
        pass
    assert (tmp_path / "stored" / "runs.db").is_file() and len(carbonmonitor.runs()) == 1


def test_db_off_stores_nothing_and_reading_says_why(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with carbonmonitor.track(backend="fake", db="off", quiet=True) as run:
        pass
    assert run.result.status == "completed" and not (tmp_path / "data").exists()
    with pytest.raises(ConfigError, match="db is 'off'"):
        carbonmonitor.runs(db="off")


def test_an_unusable_explicit_store_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="db .*cannot be used"):
        Tracker(backend="fake", db=str(tmp_path / "file" / "runs.db"))
    (tmp_path / "text.db").write_text("this is not a database " * 100)
    with pytest.raises(ConfigError, match="not a database.*set db= to another file"):
        Tracker(backend="fake", db=str(tmp_path / "text.db"))
    with pytest.raises(ConfigError, match="is a directory.*or 'off'"):
        Tracker(backend="fake", db=str(tmp_path))


def test_an_unusable_default_store_is_flagged_and_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "not-a-dir").write_text("x")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "not-a-dir"))
    with carbonmonitor.track(backend="fake", quiet=True) as run:
        pass
    assert run.result.status == "completed"
    assert "store-unavailable" in [f.code for f in run.result.flags]
    assert "kept in memory only" in caplog.text


def test_a_failing_write_is_retried_and_a_lost_final_write_is_flagged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db, clock = tmp_path / "runs.db", ManualClock()
    t = tracker(db, clock, flush_interval=1)
    t.start()
    store = t.store
    assert store is not None
    real_write = store.write
    failures = {"left": 1}

    def flaky(batch: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("disk I/O error")
        real_write(batch)

    store.write = flaky  # type: ignore[method-assign]
    clock.advance(1)
    t.tick()  # fails: logged once, measuring goes on
    clock.advance(1)
    t.tick()  # succeeds, with the samples the failed write did not store
    assert rows(db, "SELECT count(DISTINCT seq) FROM samples") == [(3,)]
    failures["left"] = 1
    result = t.stop()
    assert "store-failed" in [f.code for f in result.flags]
    assert result.energy_j == pytest.approx(110 * 2, rel=1e-12)
    assert caplog.text.count("could not write run") == 1


def test_keyboard_interrupt_in_a_with_block_is_stored_as_interrupted(tmp_path: Path) -> None:
    db, clock = tmp_path / "runs.db", ManualClock()
    with pytest.raises(KeyboardInterrupt), tracker(db, clock) as t:
        clock.advance(2)
        raise KeyboardInterrupt
    stored = carbonmonitor.load("last", db=db)
    assert stored.status == "interrupted" and stored == t.result


def test_a_notebook_cell_run_twice_leaves_two_consistent_runs(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    cell = ("tracker = carbonmonitor.Tracker(backend='fake', db=db, quiet=True, interval=0.05)\n"
            "tracker.start()\n")
    namespace: dict[str, Any] = {"carbonmonitor": carbonmonitor, "db": str(db)}
    exec(cell, namespace)
    first = namespace["tracker"].result
    exec(cell, namespace)  # rebinds `tracker`: the first one is unreachable
    gc.collect()
    # The new run's first record is written by its sampler thread, and the old tracker is
    # finalised in whichever thread drops the last reference (its sampler's, mid-tick): wait.
    deadline = time.monotonic() + 30
    runs = carbonmonitor.runs(db=db)
    while [r.status for r in runs] != ["running", "interrupted"] and time.monotonic() < deadline:
        time.sleep(0.01)
        runs = carbonmonitor.runs(db=db)
    assert first is None and [r.status for r in runs] == ["running", "interrupted"]
    assert "tracker-abandoned" in [f.code for f in runs[1].flags]
    namespace["tracker"].stop()
    assert [r.status for r in carbonmonitor.runs(db=db)] == ["completed", "interrupted"]
    assert len([t for t in threading.enumerate() if t.name == "carbonmonitor-sampler"]) == 0


def test_trackers_in_threads_share_one_store(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    results = []

    def work(i: int) -> None:
        clock = ManualClock()
        t = tracker(db, clock, watts=10.0 * (i + 1), flush_interval=0.5, name=f"t{i}")
        t.start()
        for _ in range(40):
            clock.advance(0.25)
            t.tick()
        results.append(t.stop())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stored = {r.identity.run_id: r for r in carbonmonitor.runs(db=db)}
    assert len(stored) == 4
    for result in results:
        assert stored[result.identity.run_id] == result
        counts = rows(db, "SELECT count(*) FROM samples WHERE run_id = ?", result.identity.run_id)
        assert counts == [(result.sample_count * 2,)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_to_pandas_one_row_per_run_and_series_frames(tmp_path: Path) -> None:
    db, clock = tmp_path / "runs.db", ManualClock()
    t = tracker(db, clock, project="p", tags="a,b")
    t.start()
    clock.advance(36)
    t.tick()
    result = t.stop()
    frame = carbonmonitor.runs(db=db).to_pandas()
    assert list(frame["run_id"]) == [result.identity.run_id]
    assert frame["energy_kwh"][0] == pytest.approx(110 * 36 / 3.6e6, rel=1e-12)
    assert frame["cpu_energy_kwh"][0] == pytest.approx(100 * 36 / 3.6e6, rel=1e-12)
    assert frame["co2e_g"][0] == pytest.approx(result.co2e_g, rel=1e-12)
    assert frame["tags"][0] == "a,b" and frame["status"][0] == "completed"
    series = carbonmonitor.series(result.identity.run_id, db=db).to_pandas()
    assert list(series.index) == [0.0, 36.0]
    assert list(series["memory"]) == pytest.approx([0.0, 360.0])


def test_owner_liveness_uses_pid_start_time_and_heartbeat() -> None:
    import os
    import socket

    me, host = process_start(os.getpid()), socket.gethostname()
    assert me is not None
    assert owner_alive(host, os.getpid(), me, 0.0, 10.0)
    assert not owner_alive(host, os.getpid(), me + "0", 0.0, 10.0)  # pid reused by another
    now = 1_000_000.0
    assert owner_alive("elsewhere", 1, "x", now - 20, 10.0, now=now)  # fresh heartbeat
    assert not owner_alive("elsewhere", 1, "x", now - 61, 10.0, now=now)
    assert not owner_alive("elsewhere", 1, "x", now - 301, 100.0, now=now)
    assert owner_alive("elsewhere", 1, "x", now - 299, 100.0, now=now)


def test_a_store_object_repr_and_delete(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    with tracker(db, ManualClock()) as t:
        pass
    store = Store(db)
    assert repr(store) == f"Store({str(db)!r})"
    assert t.result is not None
    assert store.delete([t.result.identity.run_id]) == 1
    assert carbonmonitor.runs(db=db) == [] and rows(db, "SELECT count(*) FROM samples") == [(0,)]


def test_memoised_json_is_the_same_text_as_plain_json(tmp_path: Path) -> None:
    clock = ManualClock()
    t = tracker(tmp_path / "runs.db", clock, tags="a", params={"x": 1})
    t.start()
    memo: dict[Any, Any] = {}
    texts = []
    for _ in range(3):
        with t.phase("p"):
            clock.advance(1)
            t.tick()
        provisional = t._build_result(t._t_last, "running", None, provisional=True)
        texts.append((provisional.to_json(memo), provisional.to_json()))
    assert all(cached == plain for cached, plain in texts)
    assert len({cached for cached, _ in texts}) == 3  # the energy changed each time
    t.stop()


def test_trackers_creating_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    failures: list[str] = []
    for trial in range(10):
        db = tmp_path / f"runs{trial}.db"
        barrier = threading.Barrier(4)

        def work(db: Path, barrier: threading.Barrier) -> None:
            barrier.wait()  # all four open the missing store at the same moment
            try:
                with tracker(db, ManualClock()):
                    pass
            except Exception as err:  # collected: a thread's exception would be lost
                failures.append(repr(err))

        threads = [threading.Thread(target=work, args=(db, barrier)) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(carbonmonitor.runs(db=db)) == 4
        assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert failures == []
