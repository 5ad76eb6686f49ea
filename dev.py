#!/usr/bin/env python3
"""Set up and run carbonmonitor's main job or its test suite, with nothing but Python 3.10+.

    python3 dev.py demo [--quick] [ARGS...]   # main job: a tiny BERT pre-trained and fine-tuned
                                              # on CPU, monitored, with its carbon report
    python3 dev.py test [PYTEST ARGS...]      # the whole test suite

Both create (or reuse) the virtual environment ``.venv`` next to this file and install what they
need into it; a stamp file skips the install when nothing relevant changed. torch is installed
on its own first, pinned to 2.13.0 (a CPU build is available offline on our CI machines; a bare
``torch`` requirement would pull a multi-GB CUDA build there); set DEV_TORCH_SPEC to override.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
TORCH_SPEC = os.environ.get("DEV_TORCH_SPEC", "torch==2.13.0")
# The demo needs only its own extra; the test suite needs both (and a venv that has both
# serves the demo too).
EXTRAS = {"demo": "demo", "test": "demo,test"}


def _say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def _pip(*args: str) -> None:
    subprocess.run([str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args],
                   check=True, cwd=ROOT)


def _digest(extras: str) -> str:
    return hashlib.sha256(b"".join(
        (ROOT / name).read_bytes() for name in ("pyproject.toml", "dev.py"))
        + TORCH_SPEC.encode() + extras.encode()).hexdigest()


def ensure_env(extras: str) -> None:
    if sys.version_info < (3, 10):  # noqa: UP036 (dev.py may be started by an older Python)
        sys.exit(f"carbonmonitor needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    stamp = VENV / ".carbonmonitor-stamp"
    if PY.exists() and stamp.exists() and stamp.read_text() in (
            _digest(extras), _digest(EXTRAS["test"])):
        return
    if not PY.exists():
        _say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    _say(f"installing {TORCH_SPEC} (CPU build where available)")
    _pip(TORCH_SPEC)
    _say(f"installing carbonmonitor[{extras}] (editable)")
    _pip("-e", f".[{extras}]")
    stamp.write_text(_digest(extras))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_env(EXTRAS[command])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if command == "demo":
        cmd = [str(PY), "-m", "examples.code_bert", *rest]
    else:  # the browser tests (tests/e2e/) need Debian's chromium and chromium-driver
        browser = subprocess.run(["sh", str(ROOT / "scripts" / "install_browser.sh")], cwd=ROOT)
        if browser.returncode != 0:
            return browser.returncode
        cmd = [str(PY), "-m", "pytest", *rest]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
