"""The Weights & Biases sink, offline, read back from the run's transaction log (.wandb)."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wandb
from integration_support import train_into
from wandb.proto import wandb_internal_pb2

import carbonmonitor
from carbonmonitor import ManualClock, Tracker
from carbonmonitor.integrations.sinks import Sink, final_scalars, provenance
from carbonmonitor.integrations.wandb import WandbSink, log_result
from carbonmonitor.records import RunResult

P = "carbonmonitor/"


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Offline runs under tmp_path; wandb reads its settings once per process setup, so each
    test tears the setup down."""
    for key, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path),
                       "WANDB_SILENT": "true", "WANDB_ERROR_REPORTING": "false",
                       "WANDB_CONSOLE": "off"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    yield
    wandb.teardown()


def train(tmp_path: Path, sink: Sink) -> tuple[RunResult, list[dict[str, float]]]:
    return train_into(tmp_path, sink, project="sinks")


def read_records(path: Path) -> list[Any]:
    """The records of a .wandb transaction log: a 7-byte header (":W&B", magic, version),
    then LevelDB-log-style 32 KiB blocks of chunks (crc32, length, type: 1 full, 2 first,
    3 middle, 4 last), each record a serialized ``wandb_internal_pb2.Record``."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    records, payload, pos, block = [], b"", 7, 32768
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        payload += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(payload)
            records.append(record)
            payload = b""
    return records


def _key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


def read_run(tmp_path: Path, run_id: str) -> dict[str, Any]:
    """History rows, the summary (updates applied in order) and the config of an offline run.

    wandb's core process writes the log behind ``finish()``; ``teardown()`` waits for it to
    exit, and so for the file to be complete."""
    wandb.teardown()
    (path,) = tmp_path.glob(f"wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    config: dict[str, Any] = {}
    finished = False
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
        elif kind == "config":
            config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "exit":
            finished = True
    return {"history": history, "summary": summary, "config": config, "finished": finished}


def assert_logged(run: dict[str, Any], result: RunResult, sent: list[dict[str, float]]) -> None:
    rows = [{k: v for k, v in row.items() if k.startswith(P)} for row in run["history"]]
    assert rows == [{**row, P + "step": step} for step, row in enumerate(sent)]
    final = final_scalars(result)
    assert {k: run["summary"][P + k] for k in final} == final
    assert run["summary"][P + "co2e_g"] == result.co2e_g
    assert run["summary"][P + "phase/train/co2e_g"] == result.phase_co2e_g("train")
    assert run["summary"][P + "per_1k_tokens/co2e_g"] == result.unit_costs[1].co2e_g
    assert result.unit_costs[1].per == "1k tokens"
    assert {k: run["config"][P + k] for k in provenance(result)} == provenance(result)
    assert run["config"][P + "intensity_source"] == result.intensity.source


def test_own_run_read_back(tmp_path: Path) -> None:
    # a copy of a copy (keras-tuner deep-copies callbacks, ddp_spawn pickles them)
    sink = copy.deepcopy(pickle.loads(pickle.dumps(WandbSink())))
    assert isinstance(sink, Sink)
    sink.bind(project="sinks", run_name="bert")  # what a callback tells it at its start
    result, sent = train(tmp_path, sink)
    assert (sink.run.project, sink.run.name) == ("sinks", "bert")
    run = read_run(tmp_path, sink.run.id)
    assert_logged(run, result, sent)
    assert run["finished"]  # the sink started the run, so it finished it
    assert wandb.run is None


def test_the_active_run_is_used_and_left_open(tmp_path: Path) -> None:
    active = wandb.init(project="sinks")
    try:
        active.log({"loss": 1.0})  # the framework's own logging moves W&B's step on
        active.log({"loss": 0.5})
        sink = WandbSink()
        result, sent = train(tmp_path, sink)
        assert sink.run is active
        active.log({"loss": 0.25})  # still open
    finally:
        active.finish()
    run = read_run(tmp_path, active.id)
    assert [row["loss"] for row in run["history"] if "loss" in row] == [1.0, 0.5, 0.25]
    run["history"] = [row for row in run["history"] if "loss" not in row]
    assert_logged(run, result, sent)


def test_log_result_of_a_stored_run(tmp_path: Path) -> None:
    clock = ManualClock()
    tracker = Tracker(backend="fake", clock=clock, sampling="manual", quiet=True,
                      db=str(tmp_path / "runs.db"), country="FR", project="stored", name="r1")
    tracker.start()
    with tracker.phase("train"):
        clock.advance(30)
        tracker.add_work(samples=10)
    done = tracker.stop()
    stored = carbonmonitor.load(done.identity.run_id, db=tmp_path / "runs.db")

    made = log_result(stored)
    assert (made.project, made.name) == ("stored", "r1")
    run = read_run(tmp_path, made.id)
    assert run["history"] == []
    assert {k: run["summary"][P + k] for k in final_scalars(stored)} == final_scalars(stored)
    assert run["summary"][P + "per_sample/co2e_g"] == pytest.approx(stored.co2e_g / 10)
    assert run["config"][P + "intensity_zone"] == "FRA"
    assert run["finished"]


def test_missing_wandb_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install 'carbonmonitor\[wandb\]'"):
        WandbSink()
    with pytest.raises(ImportError, match=r"carbonmonitor\[wandb\]"):
        log_result(None)  # type: ignore[arg-type]  # fails on the import, before the result


def test_a_finished_run_logs_one_warning_and_the_run_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gone = wandb.init(project="sinks")
    gone.finish()
    sink = WandbSink(gone)
    with caplog.at_level(logging.DEBUG, logger="carbonmonitor"):
        result, _ = train(tmp_path, sink)
    assert result.status == "completed"
    failures = [r for r in caplog.records if "Weights & Biases sink could not" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.WARNING] + [logging.DEBUG] * 3
