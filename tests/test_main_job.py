"""The main job (``examples/train_digits.py --quick``) runs end to end and its report adds up.

Needs the ``demo`` extra (torch, scikit-learn), which ``python3 dev.py test`` installs; it is not
skipped without it, because the main job is what the README promises.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "train_digits.py"
QUICK_WALL_BUDGET_S = 30.0
TRAIN_SAMPLES = 1797 - 450  # scikit-learn's digits, less the 25 % held out for testing
PER_1K = re.compile(r"(\d+) training samples; per 1k samples: (\S+) J, (\S+) mg CO2e "
                    r"\[(\S+) \.\. (\S+)\]$", re.M)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONMONITOR_")}
    env.update(extra)
    return env


def _assert_printed(text: str, value: float, what: str) -> None:
    """``text`` is ``value`` rounded to the digits it shows."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    assert abs(float(text) - value) <= 0.5 * 10 ** -decimals * (1 + 1e-9), (
        f"{what}: printed {text}, the JSON gives {value!r}")


@pytest.mark.slow
def test_quick_demo_trains_reports_and_accounts(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    env = _env()
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(DEMO), "--quick", "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    wall_s = time.perf_counter() - started
    print(f"quick demo wall time: {wall_s:.1f} s")
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    epochs = re.findall(r"^epoch\s+(\d+)/(\d+)\s.*test accuracy (\d\.\d+)", proc.stdout, re.M)
    assert epochs, proc.stdout
    n_epochs = int(epochs[0][1])
    assert [int(e[0]) for e in epochs] == list(range(1, n_epochs + 1))
    assert all(0.0 <= float(e[2]) <= 1.0 for e in epochs)
    assert "CO2e" in proc.stdout
    assert "Traceback" not in proc.stderr

    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["status"] == "completed"
    phases = {p["name"]: p for p in result["phases"]}
    assert {"load", "train", "evaluate"} <= set(phases)
    assert phases["load"]["count"] == 1
    assert phases["train"]["count"] == n_epochs
    assert phases["evaluate"]["count"] == n_epochs
    assert result["energy_j"] > 0
    assert result["energy_kwh"] > 0

    emissions = result["emissions"]
    expected = emissions["energy_kwh"] * emissions["pue"] * emissions["intensity_g_per_kwh"]
    assert emissions["co2e_g"] == pytest.approx(expected, rel=1e-12)
    assert emissions["energy_kwh"] == pytest.approx(result["energy_kwh"], rel=1e-12)
    assert emissions["pue"] == result["pue"]["value"]
    assert emissions["intensity_g_per_kwh"] == result["intensity"]["g_per_kwh"]

    identity = result["identity"]
    assert identity["params"] == {"epochs": n_epochs, "width": 16, "seed": 0}
    assert identity["name"] == "digits-cnn"
    assert identity["project"] == "carbonmonitor-demo"

    # The per-1k-samples line: energy in J, CO2e in mg with its interval, as the JSON says.
    match = PER_1K.search(proc.stdout)
    assert match, proc.stdout
    samples = int(match[1])
    assert samples == n_epochs * TRAIN_SAMPLES
    per_1k = 1000 / samples
    _assert_printed(match[2], result["energy_j"] * per_1k, "J per 1k samples")
    _assert_printed(match[3], emissions["co2e_g"] * per_1k * 1000, "mg CO2e per 1k samples")
    _assert_printed(match[4], emissions["uncertainty"]["low"] * per_1k * 1000, "low, mg")
    _assert_printed(match[5], emissions["uncertainty"]["high"] * per_1k * 1000, "high, mg")
    assert float(match[4]) <= float(match[3]) <= float(match[5])

    assert wall_s < QUICK_WALL_BUDGET_S, f"quick demo took {wall_s:.1f} s"


def test_demo_bad_option_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, str(DEMO), "--quick", "--json", str(out)],
                          cwd=ROOT, env=_env(CARBONMONITOR_COUNTRY="Germny"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.endswith("\n"), repr(proc.stderr)
    assert proc.stderr.startswith("train_digits: error: ")
    assert "'Germny'" in proc.stderr and "Germany" in proc.stderr
    assert not out.exists()
