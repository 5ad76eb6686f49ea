"""Signals reach the monitored command exactly once.

A terminal's Ctrl-C goes to the whole foreground process group, so the child has it already and
the monitor must not send it again; a signal sent to the monitor alone (SIGTERM from a scheduler,
``kill -INT`` with no terminal) must be forwarded once. Outside a terminal's foreground (no
terminal, ``timeout``, a batch scheduler, a background job) the child runs in a process group of
its own, so a signal sent to the monitor's whole group reaches it once, through the monitor. The
child below counts what it receives.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import CLI, PtyRun, clean_env, wait_for

# Counts SIGINT/SIGTERM/SIGHUP, says 'ready' once its handlers are in place, and after the first
# signal keeps listening for a short window (a duplicate from the monitor follows within
# milliseconds) before writing the counts and exiting: with status 0 ('exit0') or killed by that
# first signal ('rekill'), as an unhandled one would. 'own-group-MODE' first leaves the monitor's
# process group.
CHILD = r'''
import json, os, signal, sys, time
counts_path, ready_path, mode = sys.argv[1:4]
LISTEN_AFTER_FIRST_S = 1.0
counts = {"SIGINT": 0, "SIGTERM": 0, "SIGHUP": 0}
first = []

def handler(signum, frame):
    counts[signal.Signals(signum).name] += 1
    if not first:
        first.append((signum, time.monotonic()))

for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, handler)
if mode.startswith("own-group-"):  # as some launchers do: out of the terminal's reach
    os.setpgid(0, 0)
    mode = mode[len("own-group-"):]
open(ready_path, "w").close()
give_up = time.monotonic() + 30
while time.monotonic() < give_up:
    if first and time.monotonic() - first[0][1] > LISTEN_AFTER_FIRST_S:
        break
    time.sleep(0.01)
with open(counts_path + ".tmp", "w") as f:
    json.dump(counts, f)
os.replace(counts_path + ".tmp", counts_path)
if mode == "rekill" and first:
    signal.signal(first[0][0], signal.SIG_DFL)
    os.kill(os.getpid(), first[0][0])
sys.exit(0)
'''


class Child:
    def __init__(self, tmp_path: Path, mode: str) -> None:
        self.script = tmp_path / "count_signals.py"
        self.script.write_text(CHILD, encoding="utf-8")
        self.counts = tmp_path / "counts.json"
        self.ready = tmp_path / "ready"
        self.result = tmp_path / "result.json"
        self.mode = mode

    def run_args(self) -> list[str]:
        return ["run", "--backend", "fake", "--json", str(self.result), "--",
                sys.executable, str(self.script), str(self.counts), str(self.ready), self.mode]

    def received(self) -> dict[str, int]:
        counts: dict[str, int] = json.loads(self.counts.read_text(encoding="utf-8"))
        return counts

    def status(self) -> str:
        status: str = json.loads(self.result.read_text(encoding="utf-8"))["status"]
        return status


def start_without_tty(child: Child, stderr_path: Path) -> subprocess.Popen[bytes]:
    with stderr_path.open("wb") as stderr:
        return subprocess.Popen([*CLI, *child.run_args()], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=stderr,
                                env=clean_env(), start_new_session=True)


def once(name: str) -> dict[str, int]:
    """The counts of a child that received signal ``name`` exactly once and nothing else."""
    counts = {"SIGINT": 0, "SIGTERM": 0, "SIGHUP": 0}
    counts[name] = 1
    return counts


def stop(proc: subprocess.Popen[bytes]) -> int:
    try:
        return proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize(("mode", "exit_code"), [("exit0", 0), ("rekill", 128 + 15)])
def test_sigterm_to_the_monitor_is_forwarded_once(tmp_path: Path, mode: str,
                                                  exit_code: int) -> None:
    child = Child(tmp_path, mode)
    proc = start_without_tty(child, tmp_path / "stderr.txt")
    try:
        wait_for(child.ready.exists, "the child to install its handlers")
        os.kill(proc.pid, signal.SIGTERM)
        assert stop(proc) == exit_code
    finally:
        stop(proc)
    assert child.received() == {"SIGINT": 0, "SIGTERM": 1, "SIGHUP": 0}
    assert child.status() == "interrupted"
    stderr = (tmp_path / "stderr.txt").read_text(encoding="utf-8")
    assert "interrupted in" in stderr and "CO2e" in stderr  # the summary is still printed
    assert "Traceback" not in stderr


def test_sigint_to_the_monitor_without_a_terminal_is_forwarded_once(tmp_path: Path) -> None:
    child = Child(tmp_path, "rekill")
    proc = start_without_tty(child, tmp_path / "stderr.txt")
    try:
        wait_for(child.ready.exists, "the child to install its handlers")
        os.kill(proc.pid, signal.SIGINT)  # the monitor's pid only, as `kill -INT PID` does
        assert stop(proc) == 128 + 2
    finally:
        stop(proc)
    assert child.received() == {"SIGINT": 1, "SIGTERM": 0, "SIGHUP": 0}
    assert child.status() == "interrupted"
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text(encoding="utf-8")


def _ctrl_c_by_killpg(run: PtyRun) -> None:
    foreground = os.tcgetpgrp(run.master)
    assert foreground == run.proc.pid  # the monitor leads the terminal's foreground group
    os.killpg(foreground, signal.SIGINT)


def _ctrl_c_by_keystroke(run: PtyRun) -> None:
    os.write(run.master, b"\x03")  # the line discipline turns ^C into SIGINT for the group


@pytest.mark.parametrize("press", [_ctrl_c_by_killpg, _ctrl_c_by_keystroke],
                         ids=["killpg", "keystroke"])
def test_ctrl_c_in_a_terminal_reaches_the_child_once(
        tmp_path: Path, pty_cli: Callable[..., PtyRun],
        press: Callable[[PtyRun], None]) -> None:
    child = Child(tmp_path, "rekill")
    run = pty_cli(child.run_args())
    run.pump_until(child.ready.exists, "the child to install its handlers")
    press(run)
    assert run.finish() == 128 + 2
    assert child.received() == {"SIGINT": 1, "SIGTERM": 0, "SIGHUP": 0}
    assert child.status() == "interrupted"
    screen = run.output.decode("utf-8", "replace")
    assert "interrupted in" in screen and "Traceback" not in screen


def test_ctrl_c_is_forwarded_to_a_child_that_left_the_foreground_group(
        tmp_path: Path, pty_cli: Callable[..., PtyRun]) -> None:
    """The terminal's SIGINT reaches only the monitor's group, so the monitor must pass it on."""
    child = Child(tmp_path, "own-group-rekill")
    run = pty_cli(child.run_args())
    run.pump_until(child.ready.exists, "the child to install its handlers")
    _ctrl_c_by_killpg(run)
    assert run.finish() == 128 + 2
    assert child.received() == {"SIGINT": 1, "SIGTERM": 0, "SIGHUP": 0}
    assert child.status() == "interrupted"


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_to_the_monitors_process_group_reaches_the_child_once(
        tmp_path: Path, name: str) -> None:
    """As a batch scheduler or ``kill -INT -- -PGID`` signals a job: to its whole group. The
    monitor leads a group of its own here (start_new_session), so pytest is not in it."""
    child = Child(tmp_path, "rekill")
    proc = start_without_tty(child, tmp_path / "stderr.txt")
    try:
        wait_for(child.ready.exists, "the child to install its handlers")
        assert os.getpgid(proc.pid) == proc.pid
        os.killpg(proc.pid, signal.Signals[name])
        assert stop(proc) == 128 + signal.Signals[name]
    finally:
        stop(proc)
    assert child.received() == once(name)
    assert child.status() == "interrupted"
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_timeout_signals_the_child_once(tmp_path: Path, name: str) -> None:
    """``timeout -s SIG N carbonmonitor run -- ...`` sends SIG to the monitor and to its whole
    process group. The timer must fire after the child is ready; when it fired too early (a slow
    start), the run is repeated with a longer one."""
    assert shutil.which("timeout"), "this test needs timeout(1) from coreutils"
    short = name.removeprefix("SIG")
    for duration_s in (2, 4, 8, 16):
        child = Child(tmp_path, "exit0")
        for path in (child.counts, child.ready, child.result):
            path.unlink(missing_ok=True)
        done = subprocess.run(["timeout", "-s", short, str(duration_s), *CLI,
                               *child.run_args()],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=clean_env(), timeout=duration_s + 20, start_new_session=True)
        if child.ready.exists():
            break
    else:
        pytest.fail("the child never got ready before timeout(1) fired")
    assert done.returncode == 124, done.stderr  # timeout(1): the command timed out
    assert child.received() == once(name)
    assert child.status() == "interrupted"
    assert "Traceback" not in done.stderr


def test_a_background_job_of_a_terminal_gets_a_group_signal_once(
        tmp_path: Path, pty_cli: Callable[..., PtyRun]) -> None:
    """A job a shell runs in the background has the terminal on its fds but is not its
    foreground group: a signal to the job's group reaches the child once, forwarded."""
    child = Child(tmp_path, "rekill")
    run = pty_cli(child.run_args(), job="bg")
    job = run.job_pid()
    run.pump_until(child.ready.exists, "the child to install its handlers")
    assert os.tcgetpgrp(run.master) != os.getpgid(job)  # a background job indeed
    os.killpg(job, signal.SIGINT)
    assert run.finish() == 128 + 2
    assert child.received() == once("SIGINT")
    assert child.status() == "interrupted"
    assert b"Traceback" not in run.output


@pytest.mark.parametrize("job", [None, "fg"], ids=["monitor-leads-session", "job-of-a-shell"])
def test_closing_the_terminal_sends_the_child_one_sighup(
        tmp_path: Path, pty_cli: Callable[..., PtyRun], job: str | None) -> None:
    """A hung-up terminal signals only its session leader. When that is the monitor, it must
    forward SIGHUP; when it is a shell, the shell sends SIGHUP on to its foreground job's group,
    which the child shares, and the monitor must not send it again. The summary cannot be shown
    any more (the terminal is gone): the exit code is still the child's."""
    child = Child(tmp_path, "rekill")
    run = pty_cli(child.run_args(), job=job)
    if job is not None:
        job_pid = run.job_pid()
        run.pump_until(lambda: os.tcgetpgrp(run.master) == job_pid, "the job to be in front")
    run.pump_until(child.ready.exists, "the child to install its handlers")
    run.hang_up()
    assert stop(run.proc) == 128 + 1
    assert child.received() == once("SIGHUP")
    assert child.status() == "interrupted"
