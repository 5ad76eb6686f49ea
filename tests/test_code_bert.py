"""The BERT demo's pipeline (``examples/code_bert``): corpus split by file, a tokenizer that gives
the code back, and a ``--quick`` run end to end whose reported work units are the tokens and
samples the model was fed."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def code_bert() -> ModuleType:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(ROOT))
        package = importlib.import_module("examples.code_bert")
        for name in ("corpus", "model", "train", "__main__"):
            importlib.import_module(f"examples.code_bert.{name}")
    # Imported here, not in a test: transformers prints a line on import when W&B is offline.
    importlib.import_module("transformers.integrations.integration_utils")
    return package


@pytest.fixture(scope="module")
def quick_corpus(code_bert: ModuleType) -> Any:
    quick = code_bert.train.QUICK
    return code_bert.corpus.build_corpus(n_labels=quick.n_labels,
                                         max_per_label=quick.max_per_label,
                                         max_per_file=quick.max_per_file, seed=quick.seed)


def test_corpus_is_split_by_file_with_known_labels(code_bert: ModuleType,
                                                   quick_corpus: Any) -> None:
    corpus = quick_corpus
    train, validation, test = (corpus.files(name) for name in ("train", "validation", "test"))
    assert not train & validation and not train & test and not validation & test
    assert set(corpus.labels) <= set(code_bert.corpus.CANDIDATES)
    assert len(corpus.labels) == code_bert.train.QUICK.n_labels
    for split, per_label in corpus.counts().items():
        assert all(count > 0 for count in per_label.values()), (split, per_label)
    every = corpus.train + corpus.validation + corpus.test
    assert all(f.path.startswith(f"{f.label}/") and f.path.endswith(".py") for f in every)
    assert len({f.source for f in every}) == len(every)  # no function in two splits either


def test_split_is_deterministic_and_changes_with_the_seed(code_bert: ModuleType,
                                                          quick_corpus: Any) -> None:
    build = code_bert.corpus.build_corpus
    quick = code_bert.train.QUICK
    sizes = {"n_labels": quick.n_labels, "max_per_label": quick.max_per_label,
             "max_per_file": quick.max_per_file}
    assert build(**sizes, seed=quick.seed) == quick_corpus
    assert build(**sizes, seed=quick.seed + 1).files("test") != quick_corpus.files("test")


def test_missing_packages_are_skipped_and_too_few_is_an_error(code_bert: ModuleType,
                                                              tmp_path: Path) -> None:
    build = code_bert.corpus.build_corpus
    body = "".join(f"def f{i}(x):\n    y = x + {i}\n    return y * 2\n\n" for i in range(12))
    for package in ("alpha", "gamma"):
        for module in range(4):
            path = tmp_path / package / f"m{module}.py"
            path.parent.mkdir(exist_ok=True)
            path.write_text(body.replace("def f", f"def {package}{module}_"))
    (tmp_path / "gamma" / "test").mkdir()
    (tmp_path / "gamma" / "test" / "test_gamma.py").write_text(body)
    corpus = build(n_labels=2, min_files=4, min_functions=40, stdlib=tmp_path,
                   candidates=("alpha", "beta", "gamma"))
    assert corpus.labels == ("alpha", "gamma")  # beta is absent
    every = corpus.train + corpus.validation + corpus.test
    assert len(every) == 2 * 4 * 12 and not any("/test/" in f.path for f in every)
    with pytest.raises(RuntimeError, match="only 2 packages"):
        build(n_labels=3, min_files=4, min_functions=40, stdlib=tmp_path,
              candidates=("alpha", "beta", "gamma"))


def test_tokenizer_gives_the_code_back(code_bert: ModuleType, quick_corpus: Any) -> None:
    model = code_bert.model
    tokenizer = model.train_tokenizer((f.source for f in quick_corpus.train), vocab_size=800,
                                      max_length=64)
    assert set(tokenizer.all_special_tokens) == set(model.SPECIAL_TOKENS)
    split = model.pre_tokenizer().pre_tokenize_str
    snippet = "async def _wait(self, fut):\n    return await asyncio.wait_for(fut, 1.5)  # ok\n"
    for source in [snippet] + [f.source for f in quick_corpus.train]:
        ids = tokenizer(source)["input_ids"]  # no truncation: the whole function
        assert tokenizer.unk_token_id not in ids
        assert (ids[0], ids[-1]) == (tokenizer.cls_token_id, tokenizer.sep_token_id)
        decoded = tokenizer.decode(ids, skip_special_tokens=True)
        assert decoded.split() == [word for word, _ in split(source)]
    # Truncation keeps [CLS] ... [SEP] within the model's length.
    long = tokenizer(snippet * 20, truncation=True)["input_ids"]
    assert len(long) == 64 and long[-1] == tokenizer.sep_token_id


def test_classifier_starts_from_the_pretrained_encoder(code_bert: ModuleType,
                                                       quick_corpus: Any) -> None:
    import torch

    model = code_bert.model
    tokenizer = model.train_tokenizer((f.source for f in quick_corpus.train), vocab_size=500,
                                      max_length=32)
    mlm = model.masked_lm(tokenizer, model.ModelSize(hidden=32, layers=1, heads=2,
                                                     max_length=32))
    clf = model.classifier(mlm, ("a", "b", "c"))
    encoder = mlm.bert.state_dict()
    assert clf.config.num_labels == 3 and clf.config.id2label[2] == "c"
    for key, value in clf.bert.state_dict().items():
        if not key.startswith("pooler."):
            assert torch.equal(value, encoder[key]), key


class Recorder:
    """A ``TrainerCallback`` that keeps what transformers tells it."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        recorder = self

        class Callback(TrainerCallback):  # type: ignore[misc]
            def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                recorder.trainings.append((state.global_step, state.num_input_tokens_seen))

            def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                recorder.evaluations.append(kw["metrics"])

        self.callback = Callback()
        self.trainings: list[tuple[int, int]] = []
        self.evaluations: list[dict[str, float]] = []


def test_quick_run_end_to_end(code_bert: ModuleType, quick_corpus: Any,
                              capsys: pytest.CaptureFixture[str]) -> None:
    train = code_bert.train
    quick = train.QUICK
    # The tokenizer is made here to recount tokens with it (training one is not reproducible
    # to the last merge: see ``run``).
    tokenizer = code_bert.model.train_tokenizer(
        (f.source for f in quick_corpus.train), vocab_size=quick.vocab_size,
        max_length=quick.model.max_length)
    recorder = Recorder()
    stages: list[str] = []
    batches: dict[str, list[tuple[int, int]]] = {"pre-training": [], "fine-tuning": []}
    report = train.run(quick, callbacks=[recorder.callback], on_stage=stages.append,
                       on_batch=lambda stage, samples, tokens:
                       batches[stage].append((samples, tokens)),
                       corpus=quick_corpus, tokenizer=tokenizer)

    assert stages == list(train.STAGES)
    assert report.labels == quick_corpus.labels and report.counts == quick_corpus.counts()
    n_train = sum(report.counts["train"].values())
    n_test = sum(report.counts["test"].values())

    # Work units: samples are the training split once per epoch; tokens are the non-padding
    # tokens, recounted here from the tokenized functions, and equal to transformers' own
    # attention-mask count.
    assert len(tokenizer) == report.vocab_size
    lengths = [len(ids) for ids in
               tokenizer([f.source for f in quick_corpus.train], truncation=True)["input_ids"]]
    pre, fine = report.stage("pre-training"), report.stage("fine-tuning")
    for stage, epochs in ((pre, quick.pretrain_epochs), (fine, quick.finetune_epochs)):
        assert stage.samples == epochs * n_train
        assert stage.tokens == epochs * sum(lengths)
        assert [sum(column) for column in zip(*batches[stage.name], strict=True)] == \
            [stage.samples, stage.tokens]
        assert stage.steps == len(batches[stage.name])
    assert recorder.trainings == [(pre.steps, pre.tokens), (fine.steps, fine.tokens)]

    # Both stages learned something.
    for stage in (pre, fine):
        assert len(stage.losses) >= 2 and stage.losses[-1] < stage.losses[0], stage

    # One validation per fine-tuning epoch, as the callbacks saw it; then the held-out test.
    assert len(report.validation_accuracy) == quick.finetune_epochs
    assert [m["eval_accuracy"] for m in recorder.evaluations] == \
        list(report.validation_accuracy)
    correct = round(report.test_accuracy * n_test)
    assert report.test_accuracy == pytest.approx(correct / n_test)
    majority = max(report.counts["test"].values())
    assert report.counts["test"][report.majority_label] == majority
    assert report.baseline_accuracy == pytest.approx(majority / n_test)
    assert report.device == "cpu" and report.total_s > pre.duration_s + fine.duration_s

    text = code_bert.__main__.format_report(report)
    assert f"{report.test_accuracy:.1%}" in text and f"{report.baseline_accuracy:.1%}" in text
    assert capsys.readouterr().out == ""  # the pipeline itself prints nothing


def test_command_line_sizes(code_bert: ModuleType) -> None:
    import argparse

    train = code_bert.train
    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    assert train.settings_from(parser.parse_args([])) == train.DEFAULT
    assert train.settings_from(parser.parse_args(["--quick", "--seed", "3"])).seed == 3
    large = train.settings_from(parser.parse_args(["--large"]))
    assert large.device == "auto" and large.model.hidden > train.DEFAULT.model.hidden
    assert large.max_per_label > train.DEFAULT.max_per_label
    assert train.settings_from(parser.parse_args(["--large", "--device", "cpu"])).device == "cpu"
    with pytest.raises(SystemExit):
        parser.parse_args(["--quick", "--large"])
