"""co2_eq_emissions model-card metadata, written into README.md and read back."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

from carbonmonitor import FakeBackend, ManualClock, Tracker
from carbonmonitor.errors import ConfigError
from carbonmonitor.integrations.model_card import co2_eq_emissions, update_model_card
from carbonmonitor.records import RunResult

PROFILE = {"cpu": [(0.0, 40.0), (13.0, 90.0)], "gpu:0": 250.0, "gpu:1": 240.0, "memory": 5.0}
EXISTING = """---
license: apache-2.0
tags:
- code
- text-classification  # a comment stays
base_model: tiny-bert
co2_eq_emissions:
  emissions: 999
  source: an older estimate
---

# tiny-bert-code

Classifies which standard-library package a function comes from.
"""


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run(tmp_path: Path, seconds: float = 60.0, country: str = "DE") -> RunResult:
    """Two phases with work and a metric, two GPUs measured."""
    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend(PROFILE)], clock=clock, sampling="manual",
                      quiet=True, db=str(tmp_path / "runs.db"), country=country)
    tracker.start()
    with tracker.phase("pre-training"):
        clock.advance(seconds * 0.7)
        tracker.add_work(samples=100, tokens=12_000)
    with tracker.phase("fine-tuning"):
        clock.advance(seconds * 0.3)
        tracker.add_work(samples=20)
    tracker.log_metric("accuracy", 0.8)
    return tracker.stop()


def front_matter(path: Path) -> tuple[dict[str, object], str]:
    text = path.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n(.*)", text, re.DOTALL)
    assert match, text
    return yaml.safe_load(match.group(1)), match.group(2)


def test_metadata_shape(tmp_path: Path) -> None:
    result = run(tmp_path)
    hw = result.identity.hardware
    assert hw is not None
    meta = co2_eq_emissions(result, training_type="pre-training")
    assert list(meta) == ["emissions", "source", "training_type", "geographical_location",
                          "hardware_used"]
    assert meta["emissions"] == round(result.co2e_g, 4)
    assert meta["emissions"] == pytest.approx(result.co2e_g, abs=5e-5)
    assert meta["source"] == "carbonmonitor"
    assert meta["training_type"] == "pre-training"
    assert meta["geographical_location"] == result.location.describe() == "Germany (DEU)"
    # the GPUs the run measured, then the CPU (the machine's GPU names are not known here)
    cpus = hw.cpu_usable or hw.cpu_count
    cpu = f"{hw.cpu_model} ({cpus} logical CPUs)" if hw.cpu_model else f"CPU ({cpus} logical CPUs)"
    assert meta["hardware_used"] == f"2 x GPU, {cpu}"
    assert co2_eq_emissions(result, hardware_used="8 x A100")["hardware_used"] == "8 x A100"


def test_bad_training_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'fine-tuning'"):
        co2_eq_emissions(run(tmp_path), training_type="finetuning")


def test_a_new_card_is_created_and_read_back_by_huggingface_hub(tmp_path: Path) -> None:
    result = run(tmp_path)
    path = update_model_card(tmp_path / "model", result, hardware_used="2 x test GPU")
    assert path == tmp_path / "model" / "README.md"
    card = ModelCard.load(path)
    assert card.data["co2_eq_emissions"] == co2_eq_emissions(result,
                                                             hardware_used="2 x test GPU")
    assert card.data["co2_eq_emissions"]["emissions"] == round(result.co2e_g, 4)


def test_merge_keeps_other_metadata_and_the_body(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text(EXISTING, encoding="utf-8")
    first = run(tmp_path)
    update_model_card(path, first)
    second = run(tmp_path, seconds=120, country="FR")
    update_model_card(tmp_path, second, training_type="pre-training")  # the folder works too

    data, body = front_matter(path)
    assert data == {"license": "apache-2.0", "tags": ["code", "text-classification"],
                    "base_model": "tiny-bert",
                    "co2_eq_emissions": co2_eq_emissions(second, training_type="pre-training")}
    assert body == EXISTING.split("---\n", 2)[2]
    assert ModelCard.load(path).data["co2_eq_emissions"]["geographical_location"] == \
        "France (FRA)"


def test_without_huggingface_hub_the_text_is_merged(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    path = tmp_path / "README.md"
    path.write_text(EXISTING, encoding="utf-8")
    result = run(tmp_path)
    update_model_card(path, result)
    update_model_card(path, result, source='carbonmonitor "0.1"')  # replaced, not added

    text = path.read_text(encoding="utf-8")
    old_lines = EXISTING.splitlines()
    kept = [line for line in old_lines if not line.startswith(("co2_eq_emissions", "  "))]
    assert [line for line in text.splitlines() if line in kept] == kept  # byte for byte
    assert text.count("co2_eq_emissions:") == 1
    data, _ = front_matter(path)
    assert data["co2_eq_emissions"] == co2_eq_emissions(result, source='carbonmonitor "0.1"')
    assert data["license"] == "apache-2.0"

    fresh = update_model_card(tmp_path / "other", result)  # no card yet: one is made
    assert front_matter(fresh)[0] == {"co2_eq_emissions": co2_eq_emissions(result)}


def test_tiny_emissions_are_written_without_an_exponent(tmp_path: Path) -> None:
    # The Hub's emissions filter matches digits in the text: "1e-05" would read as 1 g.
    result = run(tmp_path, seconds=0.002)
    path = update_model_card(tmp_path / "m", result)
    line = next(x for x in path.read_text().splitlines() if "emissions:" in x and "co2" not in x)
    assert re.fullmatch(r"\s+emissions: \d+\.\d+", line), line
    assert float(line.split(":")[1]) == round(result.co2e_g, 4)


def test_the_card_keeps_its_permissions(tmp_path: Path) -> None:
    """os.replace of a temporary file would leave the card at 0o600."""
    import os
    import stat

    result = run(tmp_path)
    kept = tmp_path / "kept" / "README.md"
    kept.parent.mkdir()
    kept.write_text(EXISTING)
    kept.chmod(0o640)
    update_model_card(kept, result)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640

    umask = os.umask(0o027)  # the process's own: what any new file gets
    try:
        made = update_model_card(tmp_path / "new-model", result)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(made.stat().st_mode) == 0o640  # 0o666 less the umask
    assert [p.name for p in made.parent.iterdir()] == ["README.md"]  # no temporary left
