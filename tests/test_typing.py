"""The package type-checks under mypy --strict and the tree passes ruff (pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_strict_is_clean() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy", "--config-file", "pyproject.toml"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_users_code_type_checks_against_the_public_api(tmp_path: Path) -> None:
    user = tmp_path / "user_code.py"
    user.write_text(
        "import carbonmonitor\n"
        "from carbonmonitor import ConfigError, RunResult, Tracker\n\n\n"
        "def measure() -> float:\n"
        "    with carbonmonitor.track(backend='fake', quiet=True) as run:\n"
        "        with run.phase('train'):\n"
        "            pass\n"
        "    result: RunResult | None = run.result\n"
        "    assert result is not None\n"
        "    tracker: Tracker = Tracker(backend='fake')\n"
        "    del tracker\n"
        "    return result.energy_kwh + len(carbonmonitor.format_summary(result))\n\n\n"
        "def bad() -> type[Exception]:\n"
        "    return ConfigError\n")
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                          str(user)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_ruff_is_clean() -> None:
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
