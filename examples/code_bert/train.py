"""The pipeline: corpus -> tokenizer -> masked-LM pre-training -> fine-tuning -> test accuracy.

Both training stages run through ``transformers.Trainer``, so a ``TrainerCallback`` passed to
``run`` sees every step, epoch, evaluation and log of both. Sizes come from ``Settings``:
``QUICK`` (CI, seconds), ``DEFAULT`` (a few minutes on 2 CPU cores), ``LARGE`` (for a GPU).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .corpus import Corpus, Function, build_corpus
from .model import ModelSize, classifier, masked_lm, train_tokenizer

STAGES = ("preparation", "pre-training", "fine-tuning")


@dataclass(frozen=True)
class Settings:
    """Sizes and hyper-parameters of one run."""

    n_labels: int = 8
    max_per_label: int = 250
    max_per_file: int = 30
    vocab_size: int = 3000
    model: ModelSize = field(default_factory=ModelSize)
    pretrain_epochs: float = 2.0
    finetune_epochs: float = 10.0
    batch_size: int = 32
    pretrain_lr: float = 2e-3
    finetune_lr: float = 2e-3
    seed: int = 0
    device: str = "cpu"  # "cpu", "cuda" or "auto" (the GPU when there is one)


# Measured on 2 shared CPU cores (Python 3.11): QUICK trains in about 5 s (7 s with the corpus
# and tokenizer); DEFAULT in 1.5-3 minutes, with test accuracy 3-4x the majority baseline on the
# 3.10, 3.11 and 3.13 standard libraries and on other seeds of the file split.
QUICK = Settings(n_labels=4, max_per_label=100, max_per_file=10, vocab_size=1500,
                 model=ModelSize(hidden=64, layers=2, heads=2, max_length=64),
                 pretrain_epochs=1.0, finetune_epochs=8.0, batch_size=16)
DEFAULT = Settings()
LARGE = Settings(max_per_label=600, max_per_file=60, vocab_size=8000,
                 model=ModelSize(hidden=256, layers=4, heads=4, max_length=256),
                 pretrain_epochs=20.0, finetune_epochs=10.0, pretrain_lr=1e-3,
                 finetune_lr=5e-4, device="auto")


@dataclass(frozen=True)
class StageReport:
    """What one training stage did: its work units come from the batches the model saw."""

    name: str
    duration_s: float
    epochs: float
    steps: int
    samples: int
    tokens: int  # non-padding tokens (the attention-mask sum) of the training batches
    losses: tuple[float, ...]  # training loss at each logging step, in order


@dataclass(frozen=True)
class Report:
    """The outcome of ``run``."""

    settings: Settings
    labels: tuple[str, ...]
    counts: dict[str, dict[str, int]]  # functions per label in each split
    files: dict[str, int]  # files in each split
    vocab_size: int
    parameters: int  # of the classifier
    device: str
    preparation_s: float  # corpus, tokenizer and tokenization
    stages: tuple[StageReport, ...]
    validation_accuracy: tuple[float, ...]  # after each fine-tuning epoch
    test_accuracy: float
    majority_label: str
    baseline_accuracy: float  # of always answering the test split's most common label
    total_s: float

    def stage(self, name: str) -> StageReport:
        return next(s for s in self.stages if s.name == name)


OnStage = Callable[[str], None]
OnBatch = Callable[[str, int, int], None]  # (stage, samples, tokens) of one training batch


def run(settings: Settings = DEFAULT, *,
        callbacks: Sequence[Any] | Callable[[str], Sequence[Any]] = (),
        on_stage: OnStage | None = None, on_batch: OnBatch | None = None,
        corpus: Corpus | None = None, tokenizer: Any = None) -> Report:
    """Run the whole pipeline; ``callbacks`` (``TrainerCallback`` instances, or a function of the
    stage name giving them) go to both Trainers; ``on_stage(name)`` is called as each of
    ``STAGES`` begins; ``on_batch`` after each training batch. ``corpus`` and ``tokenizer`` are
    built from ``settings`` unless given.

    Training is seeded, but the tokenizer is not exactly reproducible: the ``tokenizers``
    trainer breaks ties between equally frequent merges in hash-map order, so two runs can
    differ by a few vocabulary entries and their results by a little."""
    import torch
    from transformers import set_seed

    started = time.perf_counter()
    announce = on_stage or (lambda name: None)
    stage_callbacks = callbacks if callable(callbacks) else (lambda name: callbacks)
    announce("preparation")
    use_gpu = _use_gpu(settings.device, torch.cuda.is_available())
    if corpus is None:
        corpus = build_corpus(n_labels=settings.n_labels, max_per_label=settings.max_per_label,
                              max_per_file=settings.max_per_file, seed=settings.seed)
    if tokenizer is None:
        tokenizer = train_tokenizer((f.source for f in corpus.train),
                                    vocab_size=settings.vocab_size,
                                    max_length=settings.model.max_length)
    data = {name: encode(tokenizer, corpus.split(name), corpus.labels)
            for name in ("train", "validation", "test")}
    preparation_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="code_bert-") as workdir:
        announce("pre-training")
        set_seed(settings.seed)
        mlm = masked_lm(tokenizer, settings.model)
        pre = _pretrain(mlm, tokenizer, data["train"], settings, workdir, use_gpu,
                        stage_callbacks("pre-training"), on_batch)

        announce("fine-tuning")
        set_seed(settings.seed)
        model = classifier(mlm, corpus.labels)
        fine, validation, test_accuracy = _finetune(model, tokenizer, data, settings, workdir,
                                                    use_gpu, stage_callbacks("fine-tuning"),
                                                    on_batch)

    test_labels = Counter(f.label for f in corpus.test)
    majority_label, majority_count = test_labels.most_common(1)[0]
    return Report(
        settings=settings, labels=corpus.labels, counts=corpus.counts(),
        files={name: len(corpus.files(name)) for name in ("train", "validation", "test")},
        vocab_size=len(tokenizer), parameters=sum(p.numel() for p in model.parameters()),
        device="cuda" if use_gpu else "cpu", preparation_s=preparation_s, stages=(pre, fine),
        validation_accuracy=validation, test_accuracy=test_accuracy,
        majority_label=majority_label, baseline_accuracy=majority_count / len(corpus.test),
        total_s=time.perf_counter() - started)


def encode(tokenizer: Any, functions: Sequence[Function],
           labels: tuple[str, ...]) -> list[dict[str, Any]]:
    """One example per function: token ids (truncated), attention mask and label index."""
    encoded = tokenizer([f.source for f in functions], truncation=True)
    index = {label: i for i, label in enumerate(labels)}
    return [{"input_ids": ids, "attention_mask": mask, "labels": index[f.label]}
            for ids, mask, f in zip(encoded["input_ids"], encoded["attention_mask"], functions,
                                    strict=True)]


def _use_gpu(device: str, available: bool) -> bool:
    if device == "cuda" and not available:
        raise RuntimeError("--device cuda: torch sees no GPU (torch.cuda.is_available() is False)")
    return device == "cuda" or (device == "auto" and available)


def _pretrain(model: Any, tokenizer: Any, train: list[dict[str, Any]], settings: Settings,
              workdir: str, use_gpu: bool, callbacks: Sequence[Any],
              on_batch: OnBatch | None) -> StageReport:
    from transformers import DataCollatorForLanguageModeling

    # The masked LM predicts tokens, not labels: the classification labels stay out of it.
    texts = [{k: v for k, v in example.items() if k != "labels"} for example in train]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15,
                                               seed=settings.seed)
    args = _arguments(workdir, "pre-training", settings, len(texts), settings.pretrain_epochs,
                      settings.pretrain_lr, use_gpu, evaluate=False)
    trainer = _trainer(model, args, collator, texts, None, callbacks, tokenizer, on_batch,
                       "pre-training")
    started = time.perf_counter()
    trainer.train()
    return _stage_report(trainer, "pre-training", settings.pretrain_epochs,
                         time.perf_counter() - started)


def _finetune(model: Any, tokenizer: Any, data: dict[str, list[dict[str, Any]]],
              settings: Settings, workdir: str, use_gpu: bool, callbacks: Sequence[Any],
              on_batch: OnBatch | None) -> tuple[StageReport, tuple[float, ...], float]:
    from transformers import DataCollatorWithPadding

    args = _arguments(workdir, "fine-tuning", settings, len(data["train"]),
                      settings.finetune_epochs, settings.finetune_lr, use_gpu, evaluate=True)
    trainer = _trainer(model, args, DataCollatorWithPadding(tokenizer), data["train"],
                       data["validation"], callbacks, tokenizer, on_batch, "fine-tuning",
                       compute_metrics=_accuracy)
    started = time.perf_counter()
    trainer.train()
    test = trainer.predict(data["test"], metric_key_prefix="test")
    duration_s = time.perf_counter() - started
    validation = tuple(entry["eval_accuracy"] for entry in trainer.state.log_history
                       if "eval_accuracy" in entry)
    return (_stage_report(trainer, "fine-tuning", settings.finetune_epochs, duration_s),
            validation, float(test.metrics["test_accuracy"]))


def _accuracy(prediction: Any) -> dict[str, float]:
    logits, labels = prediction.predictions, prediction.label_ids
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def _arguments(workdir: str, stage: str, settings: Settings, n_examples: int, epochs: float,
               learning_rate: float, use_gpu: bool, *, evaluate: bool) -> Any:
    from transformers import TrainingArguments

    steps = math.ceil(n_examples / settings.batch_size) * epochs
    return TrainingArguments(
        output_dir=f"{workdir}/{stage}", num_train_epochs=epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=2 * settings.batch_size,
        learning_rate=learning_rate, weight_decay=0.01, warmup_steps=max(1, int(0.1 * steps)),
        eval_strategy="epoch" if evaluate else "no", save_strategy="no",
        logging_strategy="steps", logging_steps=max(1, int(steps // 20)),
        include_num_input_tokens_seen="non_padding",
        # Pre-training on batches of similar lengths pads less, so it costs less for the same
        # tokens. Fine-tuning on them learned far worse (24% validation accuracy instead of 55%
        # after 6 epochs): lengths differ by package, so such batches are lopsided.
        train_sampling_strategy="random" if evaluate else "group_by_length",
        use_cpu=not use_gpu, dataloader_num_workers=0, seed=settings.seed,
        data_seed=settings.seed, report_to="none", disable_tqdm=True, log_level="error")


def _trainer(model: Any, args: Any, collator: Any, train: list[dict[str, Any]],
             validation: list[dict[str, Any]] | None, callbacks: Sequence[Any],
             tokenizer: Any, on_batch: OnBatch | None, stage: str, **kwargs: Any) -> Any:
    from transformers import PrinterCallback, Trainer

    class CountingTrainer(Trainer):
        """Counts the samples and non-padding tokens of every training batch."""

        samples = 0
        tokens = 0

        def training_step(self, model: Any, inputs: dict[str, Any],
                          *args: Any, **kwargs: Any) -> Any:
            samples = int(inputs["input_ids"].shape[0])
            tokens = int(inputs["attention_mask"].sum())
            self.samples += samples
            self.tokens += tokens
            loss = super().training_step(model, inputs, *args, **kwargs)
            if on_batch is not None:
                on_batch(stage, samples, tokens)
            return loss

    trainer = CountingTrainer(model=model, args=args, data_collator=collator,
                              train_dataset=train, eval_dataset=validation,
                              processing_class=tokenizer, callbacks=list(callbacks), **kwargs)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout
    return trainer


def _stage_report(trainer: Any, name: str, epochs: float, duration_s: float) -> StageReport:
    losses = tuple(entry["loss"] for entry in trainer.state.log_history if "loss" in entry)
    return StageReport(name=name, duration_s=duration_s, epochs=epochs,
                       steps=trainer.state.global_step, samples=trainer.samples,
                       tokens=trainer.tokens, losses=losses)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options, for a caller that adds its own."""
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="tiny model and corpus: well under 30 s (CI)")
    size.add_argument("--large", action="store_true",
                      help="bigger model, more data and epochs: meant for a GPU")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default=None,
                        help="where to train (default: cpu; auto with --large)")
    parser.add_argument("--seed", type=int, default=0)


def settings_from(args: argparse.Namespace) -> Settings:
    """``Settings`` for options parsed with ``add_arguments``."""
    base = QUICK if args.quick else LARGE if args.large else DEFAULT
    return replace(base, seed=args.seed, device=args.device or base.device)
