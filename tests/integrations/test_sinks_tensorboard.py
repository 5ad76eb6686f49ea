"""The TensorBoard sink, read back from the event files with TensorBoard's own loader."""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from integration_support import train_into
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util import tensor_util
from torch.utils.tensorboard import SummaryWriter

import carbonmonitor
from carbonmonitor import ManualClock, Tracker
from carbonmonitor.errors import ConfigError
from carbonmonitor.integrations.sinks import Sink, final_scalars, provenance
from carbonmonitor.integrations.tensorboard import TensorBoardSink, log_result
from carbonmonitor.records import RunResult
from carbonmonitor.summary import format_summary

P = "carbonmonitor/"
F32 = 1e-6  # TensorBoard keeps scalars as float32


def train(tmp_path: Path, sink: Sink) -> tuple[RunResult, list[dict[str, float]]]:
    return train_into(tmp_path, sink, project="sinks")


def read_events(log_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, str]]:
    """Scalars (tag -> [(step, value)]) and texts (tag -> text) of every event file there:
    the tensor form TensorBoard's plugins write and the simple_value form torch writes."""
    scalars: dict[str, list[tuple[int, float]]] = defaultdict(list)
    texts: dict[str, str] = {}
    files = sorted(log_dir.glob("events.out.tfevents.*"))
    assert files, f"no event file in {log_dir}"
    for path in files:
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars[value.tag].append((event.step, value.simple_value))
                elif value.metadata.plugin_data.plugin_name == "text":
                    texts[value.tag] = tensor_util.make_ndarray(value.tensor).item().decode()
                else:
                    array = tensor_util.make_ndarray(value.tensor)
                    scalars[value.tag].append((event.step, float(array.item())))
    return scalars, texts


def expected_series(sent: list[dict[str, float]], final: dict[str, float]
                    ) -> dict[str, list[tuple[int, float]]]:
    """Live values at their steps; final figures at the last step (2)."""
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for step, row in enumerate(sent):
        for key, value in row.items():
            out[key].append((step, value))
    for key, value in final.items():
        out[key].append((2, value))
    return out


def assert_series(got: dict[str, list[tuple[int, float]]],
                  expected: dict[str, list[tuple[int, float]]]) -> None:
    assert set(got) == set(expected)
    for tag, points in expected.items():
        assert [s for s, _ in got[tag]] == [s for s, _ in points], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in points], rel=F32), tag


def test_own_event_file_read_back(tmp_path: Path) -> None:
    sink = TensorBoardSink(tmp_path / "tb")
    assert isinstance(sink, Sink)
    result, sent = train(tmp_path, sink)
    scalars, texts = read_events(tmp_path / "tb")
    final = {P + k: v for k, v in final_scalars(result).items()}
    assert_series(scalars, expected_series(sent, final))

    assert scalars[P + "energy_kwh"][-1][1] == pytest.approx(result.energy_kwh, rel=F32)
    assert scalars[P + "co2e_g"][-1][1] == pytest.approx(result.co2e_g, rel=F32)
    picked = {P + "phase/validation/co2e_g": [(2, result.phase_co2e_g("validation"))],
              P + "phase/train/energy_kwh": [(2, result.phase("train").energy_kwh)],
              P + "per_sample/energy_j": [(2, result.unit_costs[0].energy_j)]}
    assert_series({tag: scalars[tag] for tag in picked}, picked)
    assert result.unit_costs[0].per == "sample"

    text = texts[P + "summary"]
    for line in format_summary(result).splitlines():
        assert "    " + line in text
    for key, value in provenance(result).items():
        assert f"| {key} | {value} |" in text
    assert f"| intensity_source | {result.intensity.source} |" in text


def test_through_a_torch_summary_writer(tmp_path: Path) -> None:
    writer = SummaryWriter(str(tmp_path / "tb"))
    sink = TensorBoardSink(writer=writer)
    result, sent = train(tmp_path, sink)
    writer.add_scalar("user/after", 7.0, 3)  # the sink left the framework's writer open
    writer.close()
    scalars, texts = read_events(tmp_path / "tb")
    final = {P + k: v for k, v in final_scalars(result).items()}
    assert scalars.pop("user/after") == [(3, 7.0)]
    assert_series(scalars, expected_series(sent, final))
    # torch's add_text files the text under "<tag>/text_summary"
    assert format_summary(result).splitlines()[0] in texts[P + "summary/text_summary"]


def test_log_result_of_a_stored_run(tmp_path: Path) -> None:
    clock = ManualClock()
    tracker = Tracker(backend="fake", clock=clock, sampling="manual", quiet=True,
                      db=str(tmp_path / "runs.db"), country="FR")
    tracker.start()
    with tracker.phase("train"):
        clock.advance(30)
        tracker.add_work(samples=10)
    done = tracker.stop()
    stored = carbonmonitor.load(done.identity.run_id, db=tmp_path / "runs.db")

    log_result(stored, tmp_path / "tb", prefix="energy/")
    scalars, texts = read_events(tmp_path / "tb")
    final = final_scalars(stored)
    assert_series(scalars, {"energy/" + k: [(0, v)] for k, v in final.items()})
    assert scalars["energy/per_sample/co2e_g"][0][1] == pytest.approx(stored.co2e_g / 10,
                                                                      rel=F32)
    assert "| intensity_zone | FRA |" in texts["energy/summary"]


def test_needs_exactly_one_destination(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="either log_dir="):
        TensorBoardSink()
    with pytest.raises(ConfigError, match="not both"):
        TensorBoardSink(tmp_path, writer=SummaryWriter(str(tmp_path)))


def test_missing_tensorboard_names_the_extra(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ImportError, match=r"pip install 'carbonmonitor\[tensorboard\]'"):
        TensorBoardSink(tmp_path / "tb")
    with pytest.raises(ImportError, match=r"carbonmonitor\[tensorboard\]"):
        log_result(None, tmp_path / "tb")  # type: ignore[arg-type]  # fails on the import


def test_an_unwritable_log_dir_logs_one_warning_and_the_run_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "tb"
    blocker.write_text("a file where the event folder should be")
    sink = TensorBoardSink(blocker)
    with caplog.at_level(logging.DEBUG, logger="carbonmonitor"):
        result, _ = train(tmp_path, sink)
    assert result.status == "completed"
    failures = [r for r in caplog.records if "TensorBoard sink could not" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.WARNING] + [logging.DEBUG] * 3
