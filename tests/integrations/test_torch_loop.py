"""The hand-written loop helper, driving a real PyTorch loop on a tiny model on CPU."""

from __future__ import annotations

import importlib
import logging
import math
import sys
from typing import Any

import pytest
import torch
from integration_support import POWER_W, RecordingSink

from carbonmonitor import ManualClock, Tracker
from carbonmonitor.errors import ConfigError
from carbonmonitor.integrations._common import TOKENS_NOTE
from carbonmonitor.integrations.torch import TrainingMonitor

N_TRAIN, N_VAL, BATCH, SEQ = 90, 30, 16, 8
TRAIN_S, VAL_S = 1.0, 0.5  # clock seconds per training / validation batch
TRAIN_BATCHES, VAL_BATCHES = math.ceil(N_TRAIN / BATCH), math.ceil(N_VAL / BATCH)
EPOCH_J = (TRAIN_BATCHES * TRAIN_S + VAL_BATCHES * VAL_S) * POWER_W


def make_data(n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    lengths = torch.randint(1, SEQ + 1, (n,), generator=g)
    return [{"x": x[i], "y": (x[i, 0] > 0).long(),
             "attention_mask": (torch.arange(SEQ) < lengths[i]).long()} for i in range(n)]


TRAIN, VAL = make_data(N_TRAIN, 0), make_data(N_VAL, 1)


def tokens(data: list[dict[str, torch.Tensor]]) -> int:
    return int(sum(int(d["attention_mask"].sum()) for d in data))


def run_loop(monitor: TrainingMonitor, clock: ManualClock, epochs: int) -> list[float]:
    """A plain PyTorch loop; returns the validation accuracy of each epoch it ran."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train = torch.utils.data.DataLoader(TRAIN, batch_size=BATCH)
    val = torch.utils.data.DataLoader(VAL, batch_size=BATCH)
    accuracies = []
    for _ in monitor.epochs(epochs):
        for batch in monitor.train(train):
            loss = torch.nn.functional.cross_entropy(model(batch["x"]), batch["y"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            clock.advance(TRAIN_S)
        right = 0
        with torch.no_grad():
            for batch in monitor.validate(val):
                right += int((model(batch["x"]).argmax(-1) == batch["y"]).sum())
                clock.advance(VAL_S)
        accuracies.append(right / N_VAL)
        monitor.log_metrics({"val_accuracy": torch.tensor(accuracies[-1])})
    return accuracies


def test_loop_records_phases_work_metrics_and_sinks(options: dict[str, Any],
                                                    clock: ManualClock) -> None:
    epochs, sink = 3, RecordingSink()
    with TrainingMonitor(sinks=[sink], **options) as monitor:
        accuracies = run_loop(monitor, clock, epochs)
    result = monitor.result
    assert result is not None and result.status == "completed"

    train, val = result.phase("train"), result.phase("validation")
    assert (train.count, val.count) == (epochs, epochs)
    assert train.work is not None and val.work is not None and result.work is not None
    assert (train.work.samples, train.work.steps, train.work.tokens) == (
        N_TRAIN * epochs, TRAIN_BATCHES * epochs, tokens(TRAIN) * epochs)
    assert (val.work.samples, val.work.steps, val.work.tokens) == (
        N_VAL * epochs, 0, tokens(VAL) * epochs)
    assert TOKENS_NOTE in result.work.notes
    assert train.energy_j == pytest.approx(epochs * TRAIN_BATCHES * TRAIN_S * POWER_W)
    assert val.energy_j == pytest.approx(epochs * VAL_BATCHES * VAL_S * POWER_W)

    points = result.metric("val_accuracy").points
    assert [(p.value, p.epoch, p.step) for p in points] == [
        (pytest.approx(a), e + 1, TRAIN_BATCHES * (e + 1)) for e, a in enumerate(accuracies)]

    assert [step for _, step in sink.logged] == [TRAIN_BATCHES * e for e in (1, 2, 3)]
    assert [s["carbonmonitor/energy_kwh"] for s, _ in sink.logged] == pytest.approx(
        [EPOCH_J * e / 3.6e6 for e in (1, 2, 3)])
    assert sink.finished == [result]


def test_budget_stops_the_loop_at_the_computed_epoch(options: dict[str, Any],
                                                     clock: ManualClock) -> None:
    limit_j = 3.2 * EPOCH_J
    stop_epoch = math.ceil(limit_j / EPOCH_J)  # the first epoch end at or over the budget
    monitor = TrainingMonitor(max_energy_kwh=limit_j / 3.6e6, budget_action="stop", **options)
    accuracies = run_loop(monitor, clock, epochs=10)  # no `with`: the loop is the run
    result = monitor.result
    assert result is not None and result.status == "completed"
    assert len(accuracies) == stop_epoch
    assert result.phase("train").count == stop_epoch
    assert [(e.limit, e.units_done) for e in result.budget_events] == [
        ("max_energy_kwh", stop_epoch)]


def test_a_failing_loop_is_recorded_as_failed(options: dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="the loop failed"):
        with TrainingMonitor(**options) as monitor:
            for _ in monitor.epochs(2):
                for _batch in monitor.train(torch.utils.data.DataLoader(TRAIN, batch_size=BATCH)):
                    raise RuntimeError("the loop failed")
    assert monitor.result is not None and monitor.result.status == "failed"
    assert monitor.result.phase("train").work.samples == BATCH  # type: ignore[union-attr]


def test_given_tracker_and_batches_without_arrays(options: dict[str, Any],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with Tracker(**options) as run:
        monitor = TrainingMonitor(tracker=run, phase_prefix="eval")
        with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
            seen = list(monitor.test(["a text", "another"]))  # not arrays: not counted
        assert monitor.result is None and run.result is None
    assert seen == ["a text", "another"]
    result = run.result
    assert result is not None and [p.name for p in result.phases] == ["eval", "eval/test"]
    assert result.phase("eval/test").work is None
    assert len([r for r in caplog.records if "no array" in r.getMessage()]) == 1


def test_steps_with_gradient_accumulation(options: dict[str, Any], clock: ManualClock) -> None:
    """A step after every 4th batch (6 batches: 1 step), or the loop's own step() calls."""
    loader = torch.utils.data.DataLoader(TRAIN, batch_size=BATCH)
    with TrainingMonitor(**options) as monitor:
        for _ in monitor.epochs(2):
            for _batch in monitor.train(loader, accumulate=4):
                clock.advance(TRAIN_S)
    train = monitor.result.phase("train").work  # type: ignore[union-attr]
    assert train is not None and TRAIN_BATCHES == 6
    assert (train.samples, train.steps) == (N_TRAIN * 2, TRAIN_BATCHES // 4 * 2)

    with TrainingMonitor(**options) as monitor:
        for _ in monitor.epochs(2):
            for i, _batch in enumerate(monitor.train(loader, accumulate=0), 1):
                if i % 4 == 0 or i == TRAIN_BATCHES:  # this loop also steps on the last group
                    monitor.step()
    train = monitor.result.phase("train").work  # type: ignore[union-attr]
    assert train is not None and train.steps == math.ceil(TRAIN_BATCHES / 4) * 2
    with pytest.raises(ConfigError, match="accumulate"):
        monitor.train(loader, accumulate=-1)


def test_only_process_0_measures(options: dict[str, Any], clock: ManualClock, tmp_path: Any,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")  # torchrun's variables
    monkeypatch.setenv("WORLD_SIZE", "2")
    monitor = TrainingMonitor(max_energy_kwh=1e-9, budget_action="stop", **options)
    assert len(run_loop(monitor, clock, epochs=3)) == 3
    assert monitor.tracker is None and monitor.result is None
    assert not (tmp_path / "runs.db").exists()


def test_the_helper_does_not_need_torch(monkeypatch: pytest.MonkeyPatch,
                                        options: dict[str, Any]) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "carbonmonitor.integrations.torch")
    module = importlib.import_module("carbonmonitor.integrations.torch")

    class Rows:  # any array type: only .shape is read
        shape = (5, 3)

    with module.TrainingMonitor(**options) as monitor:
        for _ in monitor.epochs(2):
            for _batch in monitor.train([Rows(), Rows()]):
                pass
    assert monitor.result.phase("train").work.samples == 20


def test_real_clock_and_sampler_thread(tmp_path: Any) -> None:
    """The default set-up (a sampler thread, the real clock): energy is the fake's power over
    the measured duration, and the phases and counts are the same as under a manual clock."""
    watts = 45.0  # the default fake profile: cpu 40 W + memory 5 W
    with TrainingMonitor(backend="fake", interval=0.05, quiet=True,
                         db=str(tmp_path / "runs.db")) as monitor:
        run_loop(monitor, ManualClock(), epochs=2)  # this clock moves nothing here
    result = monitor.result
    assert result is not None and result.status == "completed"
    assert result.energy_j == pytest.approx(watts * result.duration_s)
    assert result.phase("train").count == result.phase("validation").count == 2
    assert result.work is not None and result.work.samples == (N_TRAIN + N_VAL) * 2
