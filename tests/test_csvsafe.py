"""Formula injection: user text that a spreadsheet would evaluate is written inert, in the compare
CSV and the CodeCarbon-style export, while numbers stay numbers (OWASP's CSV injection advice)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from carbonmonitor import FakeBackend, ManualClock, Tracker
from carbonmonitor._csvsafe import spreadsheet_safe
from carbonmonitor.compare import compare
from carbonmonitor.export import write_csv

FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1,1)", "\t=1", "\r=1"]


@pytest.mark.parametrize("text", FORMULAS)
def test_text_a_spreadsheet_would_evaluate_gets_a_quote(text: str) -> None:
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("value", ["-0.5", "+3e-2", "-7", "bert-base", "a=b", "", 12, -1.5,
                                   None, True])
def test_numbers_and_plain_text_are_unchanged(value: object) -> None:
    assert spreadsheet_safe(value) == value


def _run(db: Path, name: str, tags: list[str], project: str) -> object:
    clock = ManualClock(start_wall=1_764_000_000.0)
    t = Tracker(backend=[FakeBackend({"cpu": 10.0})], clock=clock, sampling="manual",
                quiet=True, db=str(db), name=name, tags=tags, project=project, country="DE")
    t.start()
    clock.advance(5)
    return t.stop()


def test_compare_and_export_csv_neutralise_formulas(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    runs = [_run(db, text, [text], text) for text in FORMULAS[:4]]
    table = compare(runs, by="name")
    lines = list(csv.DictReader(io.StringIO(table.to_csv())))
    assert sorted(line["group"] for line in lines) == sorted("'" + t for t in FORMULAS[:4])
    for line in lines:  # the numbers beside them are still numbers
        assert float(line["co2e_g_mean"]) > 0

    out = io.StringIO()
    write_csv(runs, out)  # type: ignore[arg-type]
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert sorted(r["project_name"] for r in rows) == sorted("'" + t for t in FORMULAS[:4])
    assert all(float(r["emissions"]) > 0 and float(r["duration"]) == 5.0 for r in rows)
    for row in rows:  # no cell of the file starts a formula
        assert not any(v.startswith(("=", "+", "@")) for v in row.values() if v)
