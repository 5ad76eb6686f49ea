"""The Keras 3 callback, driven by a real ``model.fit`` (torch backend) on a tiny model on CPU."""

from __future__ import annotations

import copy
import logging
import math
import pickle
import sys
from pathlib import Path
from typing import Any

import keras  # the backend was set to torch in conftest.py, before this import
import numpy as np
import pytest
from integration_support import POWER_W, RecordingSink

from carbonmonitor import ManualClock, Tracker
from carbonmonitor.integrations._distributed import share_note
from carbonmonitor.integrations.keras import CarbonMonitorCallback

# Keras (torch backend) converting its own logs with numpy 2; not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

N_TRAIN, N_VAL, BATCH = 100, 40, 32
TRAIN_S, VAL_S = 1.0, 0.5  # clock seconds per training / validation batch
TRAIN_BATCHES, VAL_BATCHES = math.ceil(N_TRAIN / BATCH), math.ceil(N_VAL / BATCH)
EPOCH_J = (TRAIN_BATCHES * TRAIN_S + VAL_BATCHES * VAL_S) * POWER_W


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


X, Y = data(N_TRAIN, 0)
XV, YV = data(N_VAL, 1)


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class Clockwork(keras.callbacks.Callback):  # type: ignore[misc]
    """Moves the test's clock inside each training and validation batch."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.clock.advance(TRAIN_S)

    def on_test_batch_end(self, batch: int, logs: Any = None) -> None:
        self.clock.advance(VAL_S)


def fit(model: keras.Model, callback: CarbonMonitorCallback, clock: ManualClock,
        epochs: int) -> keras.callbacks.History:
    return model.fit(X, Y, batch_size=BATCH, epochs=epochs, validation_data=(XV, YV),
                     callbacks=[callback, Clockwork(clock)], verbose=0)


def test_fit_records_phases_work_metrics_and_sinks(options: dict[str, Any],
                                                   clock: ManualClock) -> None:
    epochs, sink = 3, RecordingSink()
    callback = CarbonMonitorCallback(sinks=[sink], **options)
    history = fit(tiny_model(), callback, clock, epochs)
    result = callback.result
    assert result is not None and result.status == "completed"

    train, val = result.phase("train"), result.phase("validation")
    assert (train.count, val.count) == (epochs, epochs)
    assert train.work is not None and val.work is not None
    assert (train.work.samples, train.work.steps) == (N_TRAIN * epochs, TRAIN_BATCHES * epochs)
    assert (val.work.samples, val.work.steps) == (N_VAL * epochs, 0)
    assert train.energy_j == pytest.approx(epochs * TRAIN_BATCHES * TRAIN_S * POWER_W)
    assert val.energy_j == pytest.approx(epochs * VAL_BATCHES * VAL_S * POWER_W)

    # every value Keras's History holds, and no other
    assert {m.name for m in result.metrics} == set(history.history)
    for name, values in history.history.items():
        points = result.metric(name).points
        assert [p.value for p in points] == values
        assert [p.epoch for p in points] == [1.0, 2.0, 3.0]
    assert result.metric("val_accuracy").direction == "higher"

    assert [step for _, step in sink.logged] == [TRAIN_BATCHES * e for e in (1, 2, 3)]
    assert [s["carbonmonitor/energy_kwh"] for s, _ in sink.logged] == pytest.approx(
        [EPOCH_J * e / 3.6e6 for e in (1, 2, 3)])
    assert sink.finished == [result]


def test_budget_stops_training_at_the_computed_epoch(options: dict[str, Any],
                                                     clock: ManualClock) -> None:
    limit_j = 1.5 * EPOCH_J
    stop_epoch = math.ceil(limit_j / EPOCH_J)  # the first epoch end at or over the budget
    callback = CarbonMonitorCallback(max_energy_kwh=limit_j / 3.6e6, budget_action="stop",
                                     **options)
    history = fit(tiny_model(), callback, clock, epochs=10)
    result = callback.result
    assert result is not None and result.status == "completed"
    assert len(history.history["loss"]) == stop_epoch
    assert result.phase("train").count == result.phase("validation").count == stop_epoch
    assert [(e.limit, e.units_done) for e in result.budget_events] == [
        ("max_energy_kwh", stop_epoch)]


def test_evaluate_outside_fit(options: dict[str, Any], clock: ManualClock) -> None:
    model = tiny_model()
    with Tracker(**options) as run:  # a given tracker: fit and evaluate in one run
        callback = CarbonMonitorCallback(tracker=run, phase_prefix="keras")
        fit(model, callback, clock, epochs=1)
        scores = model.evaluate(XV, YV, batch_size=BATCH, callbacks=[callback], verbose=0,
                                return_dict=True)
    result = run.result
    assert result is not None
    assert [(p.name, p.count) for p in result.phases] == [
        ("keras", 2), ("keras/train", 1), ("keras/validation", 1), ("keras/test", 1)]
    test = result.phase("keras/test").work
    assert test is not None and test.samples == N_VAL
    assert result.metric("keras/test_loss").last == scores["loss"]

    own = CarbonMonitorCallback(**{**options, "backend": "fake"})  # no tracker: its own run
    model.evaluate(XV, YV, batch_size=BATCH, callbacks=[own], verbose=0)
    assert own.result is not None and own.result.phase("test").work.samples == N_VAL  # type: ignore[union-attr]


def test_only_process_0_measures_and_without_a_process_group_a_budget_only_warns(
        options: dict[str, Any], clock: ManualClock, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    budget = dict(max_energy_kwh=1.5 * EPOCH_J / 3.6e6, budget_action="stop")
    monkeypatch.setenv("WORLD_SIZE", "2")  # torchrun's variables, no torch process group
    monkeypatch.setenv("RANK", "1")
    second = CarbonMonitorCallback(**budget, **options)
    history = fit(tiny_model(), second, clock, epochs=3)
    assert len(history.history["loss"]) == 3
    assert second.tracker is None and second.result is None
    assert not (tmp_path / "runs.db").exists()

    monkeypatch.setenv("RANK", "0")
    first = CarbonMonitorCallback(**budget, **options)
    with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
        history = fit(tiny_model(), first, clock, epochs=3)
    # stopping process 0 alone would leave process 1 waiting: the budget only warns
    assert len(history.history["loss"]) == 3
    result = first.result
    assert result is not None and [e.units_done for e in result.budget_events] == [2]
    assert result.work is not None and share_note(2) in result.work.notes
    assert len([r for r in caplog.records if "torch process group" in r.getMessage()]) == 1


def test_the_callback_survives_pickle_and_deepcopy(options: dict[str, Any], clock: ManualClock,
                                                   tmp_path: Path) -> None:
    plain = dict(backend="fake", sampling="manual", quiet=True, country="FR",
                 db=str(tmp_path / "plain.db"))
    model = tiny_model()
    used = CarbonMonitorCallback(**plain)
    fit(model, used, clock, epochs=1)  # now it holds the model and a result
    for twin in (copy.deepcopy(used), pickle.loads(pickle.dumps(used))):
        assert twin.model is None and twin.result is None and twin.tracker is None
        fit(model, twin, clock, epochs=1)
        assert twin.result is not None and twin.result.phase("train").work.samples == N_TRAIN  # type: ignore[union-attr]
    assert used.result is not None and used.result.identity.run_id != twin.result.identity.run_id


def test_missing_keras_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keras", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "carbonmonitor.integrations.keras")
    with pytest.raises(ImportError, match=r"pip install 'carbonmonitor\[keras\]'"):
        from carbonmonitor.integrations.keras import CarbonMonitorCallback  # noqa: F401
