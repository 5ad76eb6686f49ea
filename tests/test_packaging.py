"""The built wheel installs and works on its own: data, typing marker, licences, console scripts.

Builds the wheel from this checkout, installs it into a fresh virtual environment and runs it
from a directory outside the repository, so nothing can come from ``src/`` by accident. pip may
fetch the hatchling build backend and psutil from the package index (or its cache); nothing else
touches the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

WHEEL_MUST_HOLD = (
    "carbonmonitor/py.typed",
    "carbonmonitor/data/MANIFEST.csv",
    "carbonmonitor/data/grid/owid_electricity_by_country_year.csv",
    "carbonmonitor/data/hardware/memory_power.csv",
    "carbonmonitor/data/LICENSES/CC-BY-4.0.txt",
    "carbonmonitor/data/LICENSES/ODbL-1.0.txt",
    "carbonmonitor/data/LICENSES/MIT-codecarbon.txt",
    "carbonmonitor/data/LICENSES/Apache-2.0.txt",
)
DIST_INFO_LICENCES = ("licenses/LICENSE", "licenses/NOTICE")

# Runs inside the fresh venv; prints one JSON object on its last line.
SMOKE_SCRIPT = """\
import json, sys
import carbonmonitor

with carbonmonitor.track(country="FR", backend="estimate", quiet=True) as run:
    with run.phase("work"):
        total = sum(i * i for i in range(400_000))
result = run.result
print(json.dumps({
    "file": carbonmonitor.__file__,
    "version": carbonmonitor.__version__,
    "prefix": sys.prefix,
    "status": result.status,
    "energy_j": result.energy_j,
    "zone": result.intensity.zone,
    "co2e_g": result.co2e_g,
    "phases": {p.name: p.count for p in result.phases},
    "methods": sorted({f.method for f in result.energy}),
}))
"""


def _env() -> dict[str, str]:
    """The caller's environment without anything that could leak the checkout into the venv."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CARBONMONITOR_", "PYTHON", "VIRTUAL_ENV", "PIP_TARGET"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
        f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    return proc


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_runs_outside_the_repo(tmp_path: Path) -> None:
    started = time.perf_counter()
    wheel_dir = tmp_path / "wheelhouse"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir),
          str(ROOT)], cwd=tmp_path)
    wheels = sorted(wheel_dir.glob("carbonmonitor-*.whl"))
    assert len(wheels) == 1, wheels

    with zipfile.ZipFile(wheels[0]) as whl:
        names = set(whl.namelist())
    missing = [n for n in WHEEL_MUST_HOLD if n not in names]
    dist_info = {n.split("/", 1)[1] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    missing += [n for n in DIST_INFO_LICENCES if n not in dist_info]
    assert not missing, f"wheel lacks {missing}"
    assert not any("/tests/" in n or n.startswith(("tests/", "src/")) for n in names)

    venv_dir = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv_dir)], cwd=tmp_path)
    bindir = venv_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    _run([str(python), "-m", "pip", "install", "-q", str(wheels[0])], cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "smoke.py").write_text(SMOKE_SCRIPT, encoding="utf-8")
    proc = _run([str(python), "-W", "error", "smoke.py"], cwd=outside)
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    installed = Path(report["file"]).resolve()
    assert installed.is_relative_to(venv_dir.resolve()), installed
    assert not installed.is_relative_to(SRC.resolve()), installed
    assert Path(report["prefix"]).resolve() == venv_dir.resolve()
    assert report["status"] == "completed"
    assert report["energy_j"] > 0
    assert report["co2e_g"] > 0
    assert report["zone"] == "FRA"
    assert report["phases"] == {"work": 1}
    assert report["methods"] == ["model"]

    for script in ("carbonmonitor", "cmml"):
        exe = bindir / (f"{script}.exe" if os.name == "nt" else script)
        out = _run([str(exe), "--version"], cwd=outside)
        assert out.stdout.strip() == f"carbonmonitor {report['version']}", out.stdout
    print(f"packaging round trip: {time.perf_counter() - started:.1f} s")
