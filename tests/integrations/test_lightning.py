"""The Lightning callback, driven by a real ``lightning.Trainer`` on a tiny model on CPU."""

from __future__ import annotations

import copy
import logging
import math
import pickle
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from integration_support import POWER_W, BrokenSink, RecordingSink
from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.strategies import SingleDeviceStrategy

from carbonmonitor import ManualClock, Tracker
from carbonmonitor.integrations._common import TOKENS_NOTE
from carbonmonitor.integrations._distributed import share_note
from carbonmonitor.integrations.lightning import CarbonMonitorCallback

# Lightning's own use of torch's pytree API (deprecated in torch 2.13); not ours
pytestmark = pytest.mark.filterwarnings("ignore:`isinstance.treespec, LeafSpec.` is deprecated")

N_TRAIN, N_VAL, BATCH, VAL_BATCH, SEQ = 100, 40, 32, 16, 6
TRAIN_S, VAL_S = 1.0, 0.5  # clock seconds per training / validation batch


def make_data(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Samples with an attention mask of varying length (the model ignores it: it is counted)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    lengths = torch.randint(1, SEQ + 1, (n,), generator=g)
    return [{"x": x[i], "y": (x[i, 0] > 0).long(),
             "attention_mask": (torch.arange(SEQ) < lengths[i]).long()} for i in range(n)]


TRAIN, VAL = make_data(N_TRAIN, 0), make_data(N_VAL, 1)


def tokens(data: list[dict[str, torch.Tensor]]) -> int:
    return int(sum(int(d["attention_mask"].sum()) for d in data))


class Tiny(pl.LightningModule):
    def __init__(self, fail_at_batch: int | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)
        self.fail_at_batch = fail_at_batch

    def _loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.layer(batch["x"])
        accuracy = (logits.argmax(-1) == batch["y"]).float().mean()
        return torch.nn.functional.cross_entropy(logits, batch["y"]), accuracy

    def training_step(self, batch: dict[str, torch.Tensor], idx: int) -> torch.Tensor:
        if idx == self.fail_at_batch:
            raise RuntimeError("the model failed")
        loss, _ = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(batch["y"]))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], idx: int) -> None:
        loss, accuracy = self._loss(batch)
        self.log_dict({"val_loss": loss, "val_acc": accuracy}, batch_size=len(batch["y"]))

    def test_step(self, batch: dict[str, torch.Tensor], idx: int) -> None:
        self.log("test_loss", self._loss(batch)[0], batch_size=len(batch["y"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class MemoryLogger(Logger):
    """Lightning's own logged values, kept in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, float]] = []

    @property
    def name(self) -> str:
        return "memory"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.rows.append(dict(metrics))

    def values(self, name: str) -> list[float]:
        return [row[name] for row in self.rows if name in row]


class Clockwork(pl.Callback):
    """Moves the test's clock inside each training and validation batch."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        self.clock.advance(TRAIN_S)

    def on_validation_batch_end(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
        if not trainer.sanity_checking:
            self.clock.advance(VAL_S)


def fit(callback: CarbonMonitorCallback, clock: ManualClock, epochs: int | None,
        model: Tiny | None = None, logger: Logger | bool = False,
        callbacks: tuple[pl.Callback, ...] = (), **trainer_options: Any) -> pl.Trainer:
    """``epochs=None``: Lightning's default limit."""
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[callback, Clockwork(clock), *callbacks],
                         logger=logger, accelerator="cpu", enable_checkpointing=False,
                         log_every_n_steps=1, enable_progress_bar=False,
                         enable_model_summary=False, **trainer_options)
    trainer.fit(model or Tiny(), torch.utils.data.DataLoader(TRAIN, batch_size=BATCH),
                torch.utils.data.DataLoader(VAL, batch_size=VAL_BATCH))
    return trainer


TRAIN_BATCHES, VAL_BATCHES = math.ceil(N_TRAIN / BATCH), math.ceil(N_VAL / VAL_BATCH)
EPOCH_J = (TRAIN_BATCHES * TRAIN_S + VAL_BATCHES * VAL_S) * POWER_W


def test_fit_records_phases_work_metrics_and_sinks(options: dict[str, Any],
                                                   clock: ManualClock) -> None:
    epochs, sink, logger = 3, RecordingSink(), MemoryLogger()
    callback = CarbonMonitorCallback(sinks=[sink], **options)
    trainer = fit(callback, clock, epochs, logger=logger)
    result = callback.result
    assert result is not None and result.status == "completed"

    train, val = result.phase("train"), result.phase("validation")
    assert (train.count, val.count, result.phase("sanity_check").count) == (epochs, epochs, 1)
    assert train.work is not None and val.work is not None and result.work is not None
    assert (train.work.samples, train.work.steps, train.work.tokens) == (
        N_TRAIN * epochs, TRAIN_BATCHES * epochs, tokens(TRAIN) * epochs)
    assert (val.work.samples, val.work.steps, val.work.tokens) == (
        N_VAL * epochs, 0, tokens(VAL) * epochs)
    # the sanity check's batches are not work
    assert result.work.samples == (N_TRAIN + N_VAL) * epochs
    assert TOKENS_NOTE in result.work.notes
    assert train.energy_j == pytest.approx(epochs * TRAIN_BATCHES * TRAIN_S * POWER_W)
    assert val.energy_j == pytest.approx(epochs * VAL_BATCHES * VAL_S * POWER_W)

    # metric values: exactly those Lightning logged, one per epoch
    for name in ("train_loss", "val_loss", "val_acc"):
        points = result.metric(name).points
        assert [p.value for p in points] == logger.values(name)
        assert [p.epoch for p in points] == [1.0, 2.0, 3.0]
    assert result.metric("val_loss").last == float(trainer.callback_metrics["val_loss"])
    assert result.metric("val_loss").direction == "lower"

    # the sink: the run's figures at each epoch end, then the final result
    assert [step for _, step in sink.logged] == [TRAIN_BATCHES * e for e in (1, 2, 3)]
    assert [s["carbonmonitor/energy_kwh"] for s, _ in sink.logged] == pytest.approx(
        [EPOCH_J * e / 3.6e6 for e in (1, 2, 3)])
    assert "carbonmonitor/forecast_co2e_g" not in sink.logged[0][0]
    assert sink.logged[-1][0]["carbonmonitor/forecast_energy_kwh"] == pytest.approx(
        3 * EPOCH_J / 3.6e6)  # constant power and work per epoch: the forecast is exact
    assert sink.finished == [result]


def test_budget_stops_training_at_the_computed_epoch(options: dict[str, Any],
                                                     clock: ManualClock) -> None:
    limit_j = 2.5 * EPOCH_J
    stop_epoch = math.ceil(limit_j / EPOCH_J)  # the first epoch end at or over the budget
    callback = CarbonMonitorCallback(max_energy_kwh=limit_j / 3.6e6, budget_action="stop",
                                     **options)
    trainer = fit(callback, clock, epochs=10)
    result = callback.result
    assert result is not None and result.status == "completed"
    assert trainer.current_epoch == stop_epoch
    assert result.phase("train").count == result.phase("validation").count == stop_epoch
    assert [(e.limit, e.units_done) for e in result.budget_events] == [
        ("max_energy_kwh", stop_epoch)]


def test_given_tracker_holds_fit_and_test_under_a_prefix(options: dict[str, Any],
                                                         clock: ManualClock) -> None:
    with Tracker(**options) as run:
        callback = CarbonMonitorCallback(tracker=run, phase_prefix="fine-tuning/")
        trainer = fit(callback, clock, epochs=2)
        assert run.result is None  # a given running tracker is not stopped
        trainer.test(trainer.lightning_module,
                     torch.utils.data.DataLoader(VAL, batch_size=VAL_BATCH), verbose=False)
    result = run.result
    assert result is not None
    names = {p.name: p.count for p in result.phases}
    assert names["fine-tuning/train"] == names["fine-tuning/validation"] == 2
    assert names["fine-tuning/test"] == 1
    test = result.phase("fine-tuning/test").work
    assert test is not None and test.samples == N_VAL
    # under a prefix the metrics are the training's own
    assert result.metric("fine-tuning/test_loss").last == float(
        trainer.callback_metrics["test_loss"])


def test_failed_fit_is_recorded_and_a_broken_sink_is_contained(
        options: dict[str, Any], clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    sink = BrokenSink()
    callback = CarbonMonitorCallback(sinks=[sink], **options)
    with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
        fit(callback, clock, epochs=2)  # the sink fails at every epoch: training goes on
    assert callback.result is not None and callback.result.phase("train").count == 2
    assert sink.calls == 3
    assert len([r for r in caplog.records if "sink" in r.getMessage()]) == 2  # once per method

    with pytest.raises(RuntimeError, match="the model failed"):
        fit(callback, clock, epochs=2, model=Tiny(fail_at_batch=2))
    assert callback.result.status == "failed"
    assert callback.result.phase("train").work.samples == 2 * BATCH  # type: ignore[union-attr]


def test_steps_are_optimizer_steps_with_gradient_accumulation(options: dict[str, Any],
                                                              clock: ManualClock) -> None:
    epochs = 2
    callback = CarbonMonitorCallback(**options)
    trainer = fit(callback, clock, epochs, accumulate_grad_batches=2)
    train = callback.result.phase("train").work  # type: ignore[union-attr]
    assert train is not None
    # Lightning steps after every 2nd batch and after the last batch of an epoch
    assert train.steps == trainer.global_step == math.ceil(TRAIN_BATCHES / 2) * epochs
    assert train.samples == N_TRAIN * epochs


def test_predicted_budget_stops_at_the_first_forecast_over_it(options: dict[str, Any],
                                                              clock: ManualClock) -> None:
    epochs, predict_after = 10, 3
    limit_j = 0.6 * epochs * EPOCH_J  # the actual figure stays under it until epoch 6
    # each epoch costs the same, so the forecast is the whole fit's cost from its first one on
    stop_epoch = predict_after if epochs * EPOCH_J > limit_j else epochs
    callback = CarbonMonitorCallback(max_energy_kwh=limit_j / 3.6e6, budget_on="predicted",
                                     budget_action="stop", predict_after=predict_after,
                                     **options)
    trainer = fit(callback, clock, epochs)
    result = callback.result
    assert result is not None and trainer.current_epoch == stop_epoch == 3
    assert [(e.on, e.units_done) for e in result.budget_events] == [("predicted", stop_epoch)]
    assert result.energy_j == pytest.approx(stop_epoch * EPOCH_J)
    assert result.forecast is not None and result.forecast.energy_j == pytest.approx(
        epochs * EPOCH_J)


def test_max_steps_marks_progress_in_optimizer_steps(options: dict[str, Any],
                                                     clock: ManualClock) -> None:
    sink = RecordingSink()
    callback = CarbonMonitorCallback(sinks=[sink], **options)
    trainer = fit(callback, clock, epochs=None, max_steps=10)
    assert trainer.global_step == 10
    assert [step for _, step in sink.logged] == list(range(1, 11))  # 10 // 100 -> every step
    forecast = callback.result.forecast  # type: ignore[union-attr]
    assert forecast is not None and (forecast.unit, forecast.total, forecast.after) == (
        "step", 10, 2)
    assert forecast.outcome is not None and forecast.outcome.units_done == 10


@pytest.mark.filterwarnings("ignore:`max_epochs` was not set")  # Lightning's, as intended
def test_no_forecast_on_lightnings_default_limit_and_an_upper_bound_with_early_stopping(
        options: dict[str, Any], clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    budget = CarbonMonitorCallback(max_energy_kwh=2.5 * EPOCH_J / 3.6e6, budget_action="stop",
                                   **options)
    early = CarbonMonitorCallback(**options)
    with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
        # neither max_epochs nor max_steps: Lightning trains up to 1000 epochs
        trainer = fit(budget, clock, epochs=None)
        fit(early, clock, epochs=3,
            callbacks=(pl.callbacks.EarlyStopping("val_loss", patience=10),))
    assert trainer.current_epoch == 3 and budget.result is not None
    assert budget.result.forecasts == ()
    assert early.result is not None and early.result.forecast is not None
    assert early.result.forecast.total == 3
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "Lightning's default" in m]) == 1
    assert len([m for m in messages if "upper bound" in m]) == 1


class Ranked(SingleDeviceStrategy):
    """One process of a two-process fit, on one CPU: Lightning's own attributes say which.
    The other process's stop decision at each reduction comes from ``other_stops`` (the
    reduction's number, from 1)."""

    def __init__(self, rank: int, other_stops: tuple[int, ...] = ()) -> None:
        super().__init__(device=torch.device("cpu"))
        self.global_rank, self.world_size = rank, 2
        self.other_stops = other_stops
        self.decisions: list[bool] = []

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:
        self.decisions.append(decision)
        other = len(self.decisions) in self.other_stops
        return (decision and other) if all else (decision or other)


def test_a_second_process_measures_nothing_and_stops_with_the_first(
        options: dict[str, Any], clock: ManualClock, tmp_path: Path) -> None:
    strategy = Ranked(1, other_stops=(2,))  # process 0 asks to stop at the 2nd epoch end
    callback = CarbonMonitorCallback(max_energy_kwh=1e-9, budget_action="stop", **options)
    trainer = fit(callback, clock, epochs=10, strategy=strategy)
    assert trainer.current_epoch == 2
    assert strategy.decisions == [False, False]  # its own decision: it measures nothing
    assert callback.tracker is None and callback.result is None
    assert not (tmp_path / "runs.db").exists()  # no run written


def test_the_first_process_measures_and_its_stop_reaches_the_others(
        options: dict[str, Any], clock: ManualClock) -> None:
    strategy = Ranked(0)
    callback = CarbonMonitorCallback(max_energy_kwh=1.5 * EPOCH_J / 3.6e6, budget_action="stop",
                                     **options)
    trainer = fit(callback, clock, epochs=10, strategy=strategy)
    assert strategy.decisions == [False, True] and trainer.current_epoch == 2
    result = callback.result
    assert result is not None and result.work is not None
    assert result.work.samples == (N_TRAIN + N_VAL) * 2  # this process's batches
    assert share_note(2) in result.work.notes


def test_without_stop_options_the_processes_are_never_asked(
        options: dict[str, Any], clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    """A callback given to process 0 alone must not wait for the others: the processes agree
    only when the callback's own options (the same everywhere) hold a stop budget."""
    strategy = Ranked(0)
    with Tracker(max_energy_kwh=1.5 * EPOCH_J / 3.6e6, budget_action="stop", **options) as run:
        callback = CarbonMonitorCallback(tracker=run)
        with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
            trainer = fit(callback, clock, epochs=3, strategy=strategy)
    assert strategy.decisions == [] and trainer.current_epoch == 3
    assert run.result is not None and [e.units_done for e in run.result.budget_events] == [2]
    assert len([r for r in caplog.records
                if "give the budget options to the callback" in r.getMessage()]) == 1


def test_the_callback_survives_pickle_and_deepcopy(options: dict[str, Any], clock: ManualClock,
                                                   tmp_path: Path) -> None:
    plain = dict(backend="fake", sampling="manual", quiet=True, country="FR",
                 db=str(tmp_path / "plain.db"))  # options that can cross to another process
    sink = RecordingSink()
    callback = pickle.loads(pickle.dumps(CarbonMonitorCallback(sinks=[sink], **plain)))
    fit(callback, clock, epochs=1)
    result = callback.result
    assert result is not None and result.phase("train").work.samples == N_TRAIN  # type: ignore[union-attr]
    assert len(callback._monitor.sinks[0].finished) == 1  # the copy's own sink
    again = pickle.loads(pickle.dumps(callback))  # after a run: no tracker, no result
    assert again.tracker is None and again.result is None

    with Tracker(**options) as run:
        given = CarbonMonitorCallback(tracker=run, phase_prefix="copy")
        twin = copy.deepcopy(given)
        assert twin.tracker is run  # a copy in this process records into the same run
        fit(twin, clock, epochs=1)
        far = pickle.loads(pickle.dumps(given))  # a given tracker cannot cross processes
        assert far.tracker is None
    assert run.result is not None and run.result.phase("copy/train").count == 1


def test_an_mlflow_sink_through_the_callback(options: dict[str, Any], clock: ManualClock,
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    from carbonmonitor.integrations.mlflow import MLflowSink

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    sink = MLflowSink(tracking_uri=uri)
    callback = CarbonMonitorCallback(sinks=[sink], project="tiny-lightning", **options)
    fit(callback, clock, epochs=2)
    result = callback.result
    assert result is not None and sink.run_id is not None
    client = MlflowClient(uri)
    run = client.get_run(sink.run_id)
    # the experiment is the callback's project (told to the sink when the run started)
    assert client.get_experiment(run.info.experiment_id).name == "tiny-lightning"
    assert run.info.status == "FINISHED" and run.info.run_name == result.identity.name
    energy = sorted(client.get_metric_history(sink.run_id, "carbonmonitor/energy_kwh"),
                    key=lambda m: (m.step, m.timestamp))
    assert [(m.step, m.value) for m in energy] == [
        (TRAIN_BATCHES, pytest.approx(EPOCH_J / 3.6e6)),
        (2 * TRAIN_BATCHES, pytest.approx(2 * EPOCH_J / 3.6e6)),
        (2 * TRAIN_BATCHES, pytest.approx(result.energy_kwh))]
    assert run.data.tags["carbonmonitor/project"] == "tiny-lightning"
    assert run.data.metrics["carbonmonitor/work/samples"] == (N_TRAIN + N_VAL) * 2


def test_missing_lightning_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "carbonmonitor.integrations.lightning")
    with pytest.raises(ImportError, match=r"pip install 'carbonmonitor\[lightning\]'"):
        from carbonmonitor.integrations.lightning import CarbonMonitorCallback  # noqa: F401
