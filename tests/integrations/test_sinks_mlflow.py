"""The MLflow sink, read back through MLflow's own client from a local file store."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import mlflow
import pytest
from integration_support import train_into
from mlflow.tracking import MlflowClient

import carbonmonitor
from carbonmonitor import ManualClock, Tracker
from carbonmonitor.integrations.mlflow import MLflowSink, log_result
from carbonmonitor.integrations.sinks import Sink, final_scalars, provenance
from carbonmonitor.records import RunResult
from carbonmonitor.summary import format_summary

P = "carbonmonitor/"
# power changes between epochs, and a GPU domain ("gpu:0") tests key cleaning


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local file store; MLflow 3 refuses one unless told (sqlite needs SQLAlchemy, which
    mlflow-skinny does not bring)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("CARBONMONITOR_PROJECT", "sinks")
    return uri


def train(tmp_path: Path, sink: Sink) -> tuple[RunResult, list[dict[str, float]]]:
    return train_into(tmp_path, sink, name="bert")


def history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    points = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
    return [(m.step, m.value) for m in points]


def test_live_and_final_figures_read_back(tmp_path: Path, uri: str) -> None:
    sink = MLflowSink(tracking_uri=uri)
    assert isinstance(sink, Sink)
    result, sent = train(tmp_path, sink)
    client = MlflowClient(uri)
    assert sink.run_id is not None
    run = client.get_run(sink.run_id)
    final = {P + k: v for k, v in final_scalars(result).items()}

    # every live series holds what was sent at its steps, then the final total at the last step
    for key in {k for row in sent for k in row}:
        expected = [(step, row[key]) for step, row in enumerate(sent) if key in row]
        if key in final:
            expected.append((2, final[key]))
        assert history(client, sink.run_id, key) == expected  # MLflow keeps doubles exactly
    assert len(history(client, sink.run_id, P + "forecast_co2e_g")) == 2  # from epoch 2 on

    # the run's latest values are the final figures (and the last forecast sent)
    live_only = {k: v for k, v in sent[-1].items() if k not in final}
    assert set(live_only) == {P + "forecast_co2e_g", P + "forecast_energy_kwh"}
    assert run.data.metrics == {**final, **live_only}
    assert final[P + "energy_kwh"] == pytest.approx(result.energy_kwh)
    assert final[P + "co2e_g"] == pytest.approx(result.co2e_g)
    for phase in ("train", "validation"):
        assert final[f"{P}phase/{phase}/energy_kwh"] == pytest.approx(
            result.phase(phase).energy_kwh)
        assert final[f"{P}phase/{phase}/co2e_g"] == pytest.approx(result.phase_co2e_g(phase))
    costs = {c.per: c for c in result.unit_costs}
    assert final[P + "per_sample/co2e_g"] == pytest.approx(costs["sample"].co2e_g)
    assert final[P + "per_1k_tokens/energy_j"] == pytest.approx(costs["1k tokens"].energy_j)
    assert final[P + "per_step/energy_j"] == pytest.approx(costs["step"].energy_j)

    # provenance as tags
    tags = run.data.tags
    assert {k: tags[P + k] for k in provenance(result)} == provenance(result)
    assert tags[P + "intensity_source"] == result.intensity.source
    assert tags[P + "intensity_year"] == str(result.intensity.year)
    assert tags[P + "intensity_basis"] == result.intensity.basis
    assert tags[P + "intensity_zone"] == result.intensity.zone == "DEU"
    assert tags[P + "pue_source"] == result.pue.describe()
    assert tags[P + "method/cpu"].startswith("counter (fake: cpu")
    assert tags[P + "method/gpu_0"].startswith("counter (fake: gpu")
    assert final[P + "device/gpu_0/energy_kwh"] == pytest.approx(
        next(f.energy_kwh for f in result.energy if f.domain == "gpu:0"))
    assert tags[P + "carbonmonitor_version"] == carbonmonitor.__version__
    assert tags[P + "run_id"] == result.identity.run_id

    # summary and the whole result as artifacts
    folder = Path(client.download_artifacts(sink.run_id, "carbonmonitor", str(tmp_path / "a")))
    assert (folder / "summary.txt").read_text() == format_summary(result)
    assert json.loads((folder / "result.json").read_text()) == json.loads(result.to_json())

    # the sink made the run (no active run), in the project's experiment, and ended it
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.runName"] == result.identity.name == "bert"
    assert client.get_experiment(run.info.experiment_id).name == "sinks"
    assert result.identity.project == "sinks"


def test_the_active_run_is_used_and_left_open(tmp_path: Path, uri: str) -> None:
    with mlflow.start_run() as active:
        sink = MLflowSink()
        result, sent = train(tmp_path, sink)
        assert sink.run_id == active.info.run_id
        client = MlflowClient()
        assert client.get_run(active.info.run_id).info.status == "RUNNING"
        assert history(client, active.info.run_id, P + "power_w") == [
            (0, sent[0][P + "power_w"]), (1, sent[1][P + "power_w"]),
            (2, sent[2][P + "power_w"]), (2, result.mean_power_w)]
    assert client.get_run(active.info.run_id).info.status == "FINISHED"


def test_a_given_store_gets_its_own_run_even_with_an_active_one(tmp_path: Path,
                                                                 uri: str) -> None:
    other = (tmp_path / "other").as_uri()
    with mlflow.start_run() as active:
        sink = MLflowSink(tracking_uri=other)
        result, _ = train(tmp_path, sink)
    assert sink.run_id != active.info.run_id
    assert MlflowClient(other).get_run(sink.run_id).data.metrics[P + "co2e_g"] == result.co2e_g
    assert P + "co2e_g" not in MlflowClient(uri).get_run(active.info.run_id).data.metrics


def test_log_result_of_a_stored_run(tmp_path: Path, uri: str) -> None:
    clock = ManualClock()
    tracker = Tracker(backend="fake", clock=clock, sampling="manual", quiet=True,
                      db=str(tmp_path / "runs.db"), country="FR", project="stored", name="r1")
    tracker.start()
    with tracker.phase("train"):
        clock.advance(30)
        tracker.add_work(samples=10)
    done = tracker.stop()
    stored = carbonmonitor.load(done.identity.run_id, db=tmp_path / "runs.db")

    run_id = log_result(stored, tracking_uri=uri)
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    final = {P + k: v for k, v in final_scalars(stored).items()}
    assert run.data.metrics == final
    assert history(client, run_id, P + "co2e_g") == [(0, stored.co2e_g)]
    assert final[P + "per_sample/co2e_g"] == pytest.approx(stored.co2e_g / 10)
    assert run.data.tags[P + "intensity_zone"] == "FRA"
    assert run.data.tags["mlflow.runName"] == "r1"
    assert client.get_experiment(run.info.experiment_id).name == "stored"
    assert run.info.status == "FINISHED"
    assert run.info.end_time - run.info.start_time == pytest.approx(30_000, abs=1)


def test_missing_mlflow_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r"pip install 'carbonmonitor\[mlflow\]'"):
        MLflowSink()
    with pytest.raises(ImportError, match=r"carbonmonitor\[mlflow\]"):
        log_result(None)  # type: ignore[arg-type]  # fails on the import, before the result


def test_a_failing_store_logs_one_warning_and_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # MLflow 3 refuses a file store without MLFLOW_ALLOW_FILE_STORE: every call fails
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    sink = MLflowSink(tracking_uri=(tmp_path / "mlruns").as_uri())
    with caplog.at_level(logging.DEBUG, logger="carbonmonitor"):
        result, _ = train(tmp_path, sink)
    assert result.status == "completed"
    failures = [r for r in caplog.records if "MLflow sink could not" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.WARNING] + [logging.DEBUG] * 3
    assert "maintenance mode" in failures[0].getMessage()
    with pytest.raises(Exception, match="maintenance mode"):  # a direct request reports it
        log_result(result, tracking_uri=(tmp_path / "mlruns").as_uri())
