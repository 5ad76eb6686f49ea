"""``carbonmonitor run`` exits with its command's code, and ``--json`` writes the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import CLI, DEADLINE_S, clean_env, run_cli

PY = sys.executable


@pytest.mark.parametrize(("code", "expected"), [
    ("pass", 0),
    ("raise SystemExit(3)", 3),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 128 + 9),
    ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", 128 + 15),
])
def test_exit_code_is_the_commands(code: str, expected: int) -> None:
    done = run_cli(["run", "--backend", "fake", "--", PY, "-c", code])
    assert done.returncode == expected, done.stderr
    assert "Traceback" not in done.stderr
    assert "carbonmonitor: run " in done.stderr  # the summary is printed in every case


def test_summary_goes_to_stderr_and_child_output_is_untouched() -> None:
    done = run_cli(["run", "--backend", "fake", "--", PY, "-c", "print('hello from child')"])
    assert done.returncode == 0
    assert done.stdout == "hello from child\n"
    assert "CO2e" in done.stderr and "completed" in done.stderr


def test_everything_after_the_double_dash_belongs_to_the_command() -> None:
    done = run_cli(["run", "--quiet", "--backend", "fake", "--",
                    PY, "-c", "import sys; print(sys.argv[1:])", "--quiet", "--json", "x",
                    "--contry", "--"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['--quiet', '--json', 'x', '--contry', '--']"
    assert done.stderr == ""


def test_missing_command_is_one_line_and_127(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    done = run_cli(["run", "--backend", "fake", "--json", str(out),
                    "--", "carbonmonitor-no-such-command", "arg"])
    assert done.returncode == 127
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "'carbonmonitor-no-such-command'" in lines[0] and "PATH" in lines[0]
    result = json.loads(out.read_text(encoding="utf-8"))  # scripts still get a result
    assert result["status"] == "failed" and result["exit_code"] == 127


def test_non_executable_command_is_one_line_and_126(tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    script.chmod(0o644)
    done = run_cli(["run", "--backend", "fake", "--", str(script)])
    assert done.returncode == 126
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "chmod +x" in lines[0], done.stderr


def test_json_result(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    command = [PY, "-c", "raise SystemExit(3)"]
    done = run_cli(["run", "--quiet", "--backend", "fake", "--json", str(out), "--", *command])
    assert done.returncode == 3
    assert done.stderr == ""  # --quiet: no summary, no live line
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["exit_code"] == 3
    assert result["status"] == "failed"
    assert result["identity"]["argv"] == command
    assert result["energy"] and all(fig["energy_j"] >= 0 for fig in result["energy"])
    assert {"cpu", "memory"} <= {fig["domain"] for fig in result["energy"]}
    assert result["emissions"]["co2e_g"] >= 0
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed into place


@pytest.mark.parametrize(("args", "expected"), [
    (["run", "--backend", "fake", "--", "sh", "-c", "exit 7"], 7),
    # the child writes to the closed pipe too and dies of SIGPIPE: that is its exit code
    (["run", "--backend", "fake", "--", "sh", "-c", "echo from child >&2; exit 7"], 128 + 13),
    (["run", "--quiet", "--backend", "fake", "--", "sh", "-c", "exit 7"], 7),
    (["run", "--backend", "fake", "--", "carbonmonitor-no-such-command"], 127),
    (["run", "--country", "Narnia", "--", "true"], 2),
], ids=["summary", "child-gets-sigpipe", "quiet", "not-found", "usage-error"])
def test_exit_code_survives_a_closed_stderr(args: list[str], expected: int) -> None:
    """``carbonmonitor run ... 2>&1 | head -0``: stderr is a pipe nobody reads any more. The
    summary (or error line) is lost, the exit code is not (nor 120 from the flush at exit)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([*CLI, *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=write_end, env=clean_env(),
                              timeout=DEADLINE_S, start_new_session=True)
    finally:
        os.close(write_end)
    assert done.returncode == expected
