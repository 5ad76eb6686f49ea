"""The transformers callback, driven by a real ``Trainer`` on a tiny BERT built from a config
(no download) on CPU."""

from __future__ import annotations

import copy
import math
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from integration_support import POWER_W, RecordingSink
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from carbonmonitor import ManualClock, Tracker
from carbonmonitor.integrations._common import TOKENS_NOTE
from carbonmonitor.integrations.transformers import CarbonMonitorCallback

N_TRAIN, N_VAL, BATCH, VAL_BATCH = 60, 20, 8, 16
TRAIN_S, VAL_S = 1.0, 0.5  # clock seconds per optimizer step / evaluation batch
TRAIN_BATCHES, VAL_BATCHES = math.ceil(N_TRAIN / BATCH), math.ceil(N_VAL / VAL_BATCH)
EPOCH_J = (TRAIN_BATCHES * TRAIN_S + VAL_BATCHES * VAL_S) * POWER_W


def make_data(n: int, seed: int) -> list[dict[str, Any]]:
    """Token sequences of 3 to 12 ids (1..49; 0 pads) labelled by their first token's parity."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        length = int(torch.randint(3, 13, (1,), generator=g))
        ids = torch.randint(1, 50, (length,), generator=g).tolist()
        rows.append({"input_ids": ids, "labels": ids[0] % 2})
    return rows


TRAIN, VAL = make_data(N_TRAIN, 0), make_data(N_VAL, 1)


def tokens(rows: list[dict[str, Any]]) -> int:
    return sum(len(r["input_ids"]) for r in rows)


def collate(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pads each batch to its longest sequence: the attention mask marks the real tokens."""
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row["input_ids"])] = torch.tensor(row["input_ids"])
        mask[i, :len(row["input_ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask,
            "labels": torch.tensor([r["labels"] for r in rows])}


def accuracy(prediction: Any) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1)
                               == prediction.label_ids).mean())}


class Clockwork(TrainerCallback):  # type: ignore[misc]
    """Moves the test's clock inside each optimizer step and each evaluation batch."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def on_step_end(self, *args: Any, **kwargs: Any) -> None:
        self.clock.advance(TRAIN_S)

    def on_prediction_step(self, *args: Any, **kwargs: Any) -> None:
        self.clock.advance(VAL_S)


def trainer_for(tmp_path: Path, callback: CarbonMonitorCallback, clock: ManualClock,
                epochs: int, arguments: type[TrainingArguments] = TrainingArguments,
                **more: Any) -> Trainer:
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2, pad_token_id=0))
    args = arguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=epochs, learning_rate=1e-3,
        per_device_train_batch_size=BATCH, per_device_eval_batch_size=VAL_BATCH,
        eval_strategy="epoch", logging_strategy="epoch", save_strategy="no", report_to="none",
        use_cpu=True, disable_tqdm=True, remove_unused_columns=False, seed=0,
        include_num_input_tokens_seen="non_padding", **more)
    return Trainer(model=model, args=args, train_dataset=TRAIN, eval_dataset=VAL,
                   data_collator=collate, compute_metrics=accuracy,
                   callbacks=[callback, Clockwork(clock)])


def test_train_records_phases_work_metrics_and_sinks(options: dict[str, Any],
                                                     clock: ManualClock, tmp_path: Path) -> None:
    epochs, sink = 3, RecordingSink()
    callback = CarbonMonitorCallback(sinks=[sink], **options)
    trainer = trainer_for(tmp_path, callback, clock, epochs)
    trainer.train()
    result = callback.result
    assert result is not None and result.status == "completed"

    train, val = result.phase("train"), result.phase("validation")
    assert (train.count, val.count) == (epochs, epochs)
    assert train.work is not None and val.work is not None and result.work is not None
    assert (train.work.samples, train.work.steps, train.work.tokens) == (
        N_TRAIN * epochs, TRAIN_BATCHES * epochs, tokens(TRAIN) * epochs)
    assert train.work.tokens == trainer.state.num_input_tokens_seen  # the Trainer's own count
    assert (val.work.samples, val.work.steps, val.work.tokens) == (
        N_VAL * epochs, 0, tokens(VAL) * epochs)
    assert TOKENS_NOTE in result.work.notes
    assert train.energy_j == pytest.approx(epochs * TRAIN_BATCHES * TRAIN_S * POWER_W)
    assert val.energy_j == pytest.approx(epochs * VAL_BATCHES * VAL_S * POWER_W)

    # every number the Trainer logged (state.log_history), at its step, and nothing else
    expected: dict[str, list[tuple[int, float]]] = {}
    for entry in trainer.state.log_history:
        for name, value in entry.items():
            if name not in ("epoch", "step") and isinstance(value, (int, float)):
                expected.setdefault(name, []).append((entry["step"], value))
    assert {m.name for m in result.metrics} == set(expected)
    for name, points in expected.items():
        assert [(p.step, p.value) for p in result.metric(name).points] == points
    assert len(result.metric("eval_accuracy").points) == epochs

    # marks at each epoch end, after its evaluation
    assert [step for _, step in sink.logged] == [TRAIN_BATCHES * e for e in (1, 2, 3)]
    assert [s["carbonmonitor/energy_kwh"] for s, _ in sink.logged] == pytest.approx(
        [EPOCH_J * e / 3.6e6 for e in (1, 2, 3)])
    assert sink.finished == [result]


def test_budget_stops_training_at_the_computed_epoch(options: dict[str, Any],
                                                     clock: ManualClock, tmp_path: Path) -> None:
    limit_j = 1.5 * EPOCH_J
    stop_epoch = math.ceil(limit_j / EPOCH_J)  # the first epoch end at or over the budget
    callback = CarbonMonitorCallback(max_energy_kwh=limit_j / 3.6e6, budget_action="stop",
                                     **options)
    trainer = trainer_for(tmp_path, callback, clock, epochs=10)
    trainer.train()
    result = callback.result
    assert result is not None and result.status == "completed"
    assert trainer.state.epoch == stop_epoch
    assert result.phase("train").count == result.phase("validation").count == stop_epoch
    assert [(e.limit, e.units_done) for e in result.budget_events] == [
        ("max_energy_kwh", stop_epoch)]


def test_one_tracker_holds_two_trainings_each_with_its_forecast(options: dict[str, Any],
                                                                clock: ManualClock,
                                                                tmp_path: Path) -> None:
    epochs = 3
    with Tracker(**options) as run:
        for prefix in ("pre-training/", "fine-tuning/"):
            callback = CarbonMonitorCallback(tracker=run, phase_prefix=prefix)
            trainer = trainer_for(tmp_path / prefix.strip("/"), callback, clock, epochs)
            trainer.train()
        assert run.result is None  # a given running tracker is not stopped
        trainer.predict(VAL)  # type: ignore[arg-type]
    result = run.result
    assert result is not None
    counts = {p.name: p.count for p in result.phases}
    assert counts == {"pre-training": 1, "pre-training/train": 3, "pre-training/validation": 3,
                      "fine-tuning": 2, "fine-tuning/train": 3, "fine-tuning/validation": 3,
                      "fine-tuning/test": 1}
    test = result.phase("fine-tuning/test").work
    assert test is not None and (test.samples, test.tokens) == (N_VAL, tokens(VAL))
    assert result.work is not None
    assert result.work.samples == (N_TRAIN + N_VAL) * epochs * 2 + N_VAL

    # each training's metrics are its own history
    for prefix in ("pre-training", "fine-tuning"):
        assert [p.epoch for p in result.metric(f"{prefix}/eval_accuracy").points] == [1, 2, 3]

    # one forecast per training, each made after 2 of its own 3 epochs and compared with it
    assert [f.label for f in result.forecasts] == ["pre-training", "fine-tuning"]
    for forecast in result.forecasts:
        assert (forecast.after, forecast.total) == (2, epochs)
        assert forecast.energy_j == pytest.approx(epochs * EPOCH_J)
        outcome = forecast.outcome
        assert outcome is not None and outcome.units_done == epochs
        assert outcome.energy_error == pytest.approx(0, abs=1e-9)
        assert outcome.duration_error == pytest.approx(0, abs=1e-9)
        assert outcome.energy_contained and outcome.co2e_contained


def test_steps_are_optimizer_steps_with_gradient_accumulation(options: dict[str, Any],
                                                              clock: ManualClock,
                                                              tmp_path: Path) -> None:
    epochs = 2
    callback = CarbonMonitorCallback(**options)
    trainer = trainer_for(tmp_path, callback, clock, epochs, gradient_accumulation_steps=2)
    trainer.train()
    train = callback.result.phase("train").work  # type: ignore[union-attr]
    assert train is not None
    assert train.steps == trainer.state.global_step == math.ceil(TRAIN_BATCHES / 2) * epochs
    assert train.samples == N_TRAIN * epochs  # every micro-batch's forward


class SecondProcess(TrainingArguments):  # type: ignore[misc]
    """The arguments of the second of two processes, as the Trainer reads them."""

    @property
    def process_index(self) -> int:
        return 1


def test_a_second_process_measures_nothing(options: dict[str, Any], clock: ManualClock,
                                           tmp_path: Path) -> None:
    callback = CarbonMonitorCallback(**options)
    trainer = trainer_for(tmp_path, callback, clock, 2, arguments=SecondProcess)
    assert not trainer.state.is_world_process_zero
    trainer.train()
    assert callback.tracker is None and callback.result is None
    assert not (tmp_path / "runs.db").exists()
    assert not trainer.model._forward_pre_hooks and "generate" not in trainer.model.__dict__


def test_the_callback_survives_pickle_and_deepcopy(options: dict[str, Any], clock: ManualClock,
                                                   tmp_path: Path) -> None:
    plain = dict(backend="fake", sampling="manual", quiet=True, country="FR",
                 db=str(tmp_path / "plain.db"))
    callback = pickle.loads(pickle.dumps(CarbonMonitorCallback(**plain)))
    trainer_for(tmp_path, callback, clock, 1).train()
    assert callback.result is not None and callback.result.phase("train").count == 1

    with Tracker(**options) as run:
        given = CarbonMonitorCallback(tracker=run)
        model = trainer_for(tmp_path, given, clock, 1).model  # the hook is on it now
        assert model._forward_pre_hooks
        assert copy.deepcopy(given).tracker is run
        twin = copy.deepcopy(model)  # the model with its hook and generate
        twin(**collate(VAL[:2]))
        assert pickle.loads(pickle.dumps(given)).tracker is None
        pickle.dumps(model)
    assert run.result is not None and run.result.work is None  # no training: nothing counted


EOS, NEW = 48, 5
PROMPTS = [[5, 6, 7], [8, 9], [10, 11, 12, 13], [14], [15, 16, 17], [18, 19]]


def left_pad(rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.tensor([[0] * (width - len(r["input_ids"])) + r["input_ids"] for r in rows])
    return {"input_ids": ids, "attention_mask": (ids != 0).long()}


def test_generate_counts_its_prompt_once_and_its_new_tokens(options: dict[str, Any],
                                                            tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2,
                                       n_positions=32, bos_token_id=1, eos_token_id=EOS,
                                       pad_token_id=0))
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path / "out"), predict_with_generate=True, report_to="none",
        per_device_eval_batch_size=3, use_cpu=True, disable_tqdm=True,
        remove_unused_columns=False)
    rows = [{"input_ids": p} for p in PROMPTS]
    with Tracker(**options) as run:
        callback = CarbonMonitorCallback(tracker=run, phase_prefix="serve")
        trainer = Seq2SeqTrainer(model=model, args=args, data_collator=left_pad,
                                 callbacks=[callback])
        output = trainer.predict(rows, max_new_tokens=NEW)  # type: ignore[arg-type]
        # the same model used outside the Trainer is not this Trainer's work
        batch = left_pad(rows)
        model.generate(**batch, max_new_tokens=NEW)
        model(**batch)
    result = run.result
    assert result is not None
    assert [(p.name, p.count) for p in result.phases] == [("serve", 1), ("serve/test", 1)]

    # the Trainer's own output: each batch's prompts (left-padded), then the new tokens
    made = []
    for first in range(0, len(PROMPTS), 3):
        width = max(len(p) for p in PROMPTS[first:first + 3])
        for row in output.predictions[first:first + 3].tolist():
            new = row[width:width + NEW]
            made.append(new.index(EOS) + 1 if EOS in new else NEW)
    assert 0 < made.count(NEW) < len(made)  # some sequences ended early, some did not
    work = result.phase("serve/test").work
    assert work is not None
    assert (work.samples, work.tokens) == (len(PROMPTS), sum(map(len, PROMPTS)))
    assert work.generated_tokens == sum(made)
    assert result.work == work


def test_missing_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "carbonmonitor.integrations.transformers")
    with pytest.raises(ImportError, match=r"pip install 'carbonmonitor\[transformers\]'"):
        from carbonmonitor.integrations.transformers import CarbonMonitorCallback  # noqa: F401
