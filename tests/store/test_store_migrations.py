"""Schema versions: a store written by the first released schema opens and is migrated."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

import carbonmonitor
from carbonmonitor import ConfigError, StoreError, Tracker
from carbonmonitor.store import SCHEMA_VERSION, Store

FIXTURE = Path(__file__).parent / "fixtures" / "runs-v1.db"


# Result fields added after the fixture was written, with what an old result reads as.
LATER_FIELDS = {"attributed_j": None, "idle_j": None, "share": None, "dynamic_j": None,
                "attribution": None, "embodied": None, "market_co2e_g": None,
                "market_factor_g_per_kwh": None, "time_resolved": "", "hourly": [],
                "factor_spread": None, "work": None, "metrics": [], "forecasts": [],
                "budget_events": [], "unit_costs": []}


def without_later_fields(value: object) -> object:
    """``value`` with the fields added since the fixture removed, after checking that an old
    result reads them as their "not measured" value (run totals fall back to device energy)."""
    if isinstance(value, dict):
        if "attributed_co2e_g" in value:  # a run: nothing attributed, so all of it counts
            assert value.pop("attributed_co2e_g") == pytest.approx(value["emissions"]["co2e_g"])
            assert value.pop("attributed_j") == pytest.approx(value["energy_j"])
        out = {}
        for key, item in value.items():
            if key in LATER_FIELDS:
                assert item == LATER_FIELDS[key], (key, item)
            else:
                out[key] = without_later_fields(item)
        return out
    if isinstance(value, list):
        return [without_later_fields(v) for v in value]
    return value


def test_a_version_1_store_is_migrated_and_keeps_every_run(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    shutil.copy(FIXTURE, db)
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (1,)
        before = raw.execute("SELECT run_id, energy_j, result FROM runs ORDER BY run_id").fetchall()
        samples = raw.execute("SELECT count(*) FROM samples").fetchone()[0]
    runs = carbonmonitor.runs(db=db)
    assert sorted(r.identity.run_id for r in runs) == [row[0] for row in before]
    for run_id, energy_j, result in before:
        loaded = carbonmonitor.load(run_id, db=db)
        assert loaded.energy_j == pytest.approx(energy_j, rel=1e-12)
        assert without_later_fields(loaded.to_dict()) == json.loads(result)
    # version 2 added the tags table, filled from the stored results
    assert [r.identity.project for r in carbonmonitor.runs(db=db, tags="baseline")] == ["bert"]
    assert [r.identity.project for r in carbonmonitor.runs(db=db, tags="small")] == ["cnn"]
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("SELECT count(*) FROM samples").fetchone()[0] == samples
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    series = carbonmonitor.series(before[0][0], db=db)  # 40 W cpu, 5 W memory, ticks at 2 s
    assert series.t_s == [0.0, 2.0, 4.0, 6.0, 6.0]  # version 1 stored a stop point twice
    assert series.energy_j == {"cpu": [0.0, 80.0, 160.0, 240.0, 240.0],
                               "memory": [0.0, 10.0, 20.0, 30.0, 30.0]}
    # and new runs go into the migrated store beside the old ones
    with carbonmonitor.track(backend="fake", db=db, quiet=True, tags="new"):
        pass
    assert len(carbonmonitor.runs(db=db)) == 3


def test_a_store_from_a_newer_carbonmonitor_is_refused_with_the_fix(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    shutil.copy(FIXTURE, db)
    with sqlite3.connect(db) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="written by a newer carbonmonitor.*pip install -U"):
        carbonmonitor.runs(db=db)
    with pytest.raises(ConfigError, match="newer carbonmonitor"):
        Tracker(backend="fake", db=str(db))


def test_another_applications_database_is_not_touched(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as raw:
        raw.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match="another application, not a carbonmonitor run store"):
        Store(db).runs()
    with sqlite3.connect(db) as raw:
        names = [r[0] for r in raw.execute("SELECT name FROM sqlite_master")]
        assert names == ["invoices"] and raw.execute("PRAGMA user_version").fetchone() == (0,)
