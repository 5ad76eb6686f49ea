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


@pytest.mark.slow
def test_quick_demo_trains_reports_and_accounts(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONMONITOR_")}
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

    assert wall_s < QUICK_WALL_BUDGET_S, f"quick demo took {wall_s:.1f} s"
