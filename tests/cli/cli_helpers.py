"""Helpers for the end-to-end tests of ``carbonmonitor run``: each test runs the real CLI as
``python -m carbonmonitor`` in a subprocess, optionally inside a pseudo-terminal.

Nothing here sleeps for a fixed time: waits poll a condition until a deadline.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "carbonmonitor"]
DEADLINE_S = 20.0  # generous: the box is small and noisy; a passing test takes far less
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Makes the process (a session leader, thanks to start_new_session) take the pty on its stdin as
# its controlling terminal, which also makes its process group the terminal's foreground group,
# then becomes ``python ARGS...`` in the same process, as a login shell's job would be.
_TAKE_TTY = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
             "os.execv(sys.executable, [sys.executable] + sys.argv[1:])")

# A job of a shell: puts itself in a process group of its own, brings it to the terminal's
# foreground when argv[1] is 'fg' (a background job otherwise), then becomes ``python ARGS...``.
_JOB = ("import os, signal, sys; os.setpgid(0, 0); "
        "sys.argv[1] == 'fg' and os.tcsetpgrp(0, os.getpgrp()); "
        "signal.signal(signal.SIGTTOU, signal.SIG_DFL); "
        "os.execv(sys.executable, [sys.executable] + sys.argv[2:])")

# A minimal job-control shell, session leader of the pty: runs one job (_JOB), writes
# 'job PID' on the terminal, and on SIGHUP (the terminal was hung up) sends SIGHUP on to the
# job's process group, as interactive shells do; exits with the job's code.
_SHELL = f"""
import contextlib, fcntl, os, signal, subprocess, sys, termios
fcntl.ioctl(0, termios.TIOCSCTTY, 0)
signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # let the job take the foreground before exec
job = subprocess.Popen([sys.executable, "-c", {_JOB!r}, *sys.argv[1:]])
os.write(1, f"job {{job.pid}}\\n".encode())

def hangup(signum, frame):
    with contextlib.suppress(OSError):
        os.killpg(job.pid, signal.SIGHUP)

signal.signal(signal.SIGHUP, hangup)
code = job.wait()
sys.exit(128 - code if code < 0 else code)
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without CARBONMONITOR_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARBONMONITOR_")}
    env["CARBONMONITOR_CLOUD_DETECT"] = "false"  # never the real metadata endpoint in tests
    env.pop("PYTHONSTARTUP", None)
    env.update(extra)
    return env


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.01)


def run_cli(args: Sequence[str], env: Mapping[str, str] | None = None,
            timeout_s: float = DEADLINE_S) -> subprocess.CompletedProcess[str]:
    """``carbonmonitor ARGS`` with no terminal: stdin from /dev/null, output captured."""
    return subprocess.run([*CLI, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=dict(env) if env is not None else clean_env(),
                          timeout=timeout_s, start_new_session=True)


@dataclass
class PtyRun:
    """A process whose stdin/stdout/stderr (by default) are the slave side of a pty."""

    proc: subprocess.Popen[bytes]
    master: int
    chunks: list[bytes] = field(default_factory=list)
    closed: bool = False

    @property
    def output(self) -> bytes:
        return b"".join(self.chunks)

    def pump(self, timeout_s: float = 0.05) -> bytes:
        """Read what is available (waiting up to ``timeout_s``); b"" when nothing came."""
        if self.closed:
            return b""
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if not ready:
            return b""
        try:
            data = os.read(self.master, 65536)
        except OSError as err:  # EIO: every slave descriptor is closed, i.e. all exited
            if err.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.closed = True
        else:
            self.chunks.append(data)
        return data

    def pump_until(self, condition: Callable[[], bool], what: str,
                   on_data: Callable[[bytes], None] | None = None,
                   timeout_s: float = DEADLINE_S) -> None:
        """Keep draining the pty (so no writer blocks) until ``condition`` holds."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; output so "
                            f"far: {self.output[-2000:]!r}")
            data = self.pump()
            if data and on_data is not None:
                on_data(data)

    def hang_up(self) -> None:
        """Close the master side, as a terminal window that is closed does: the kernel hangs
        the terminal up and sends SIGHUP to its session leader."""
        os.close(self.master)
        self.master = -1
        self.closed = True

    def job_pid(self) -> int:
        """The pid of the job started by ``start_in_pty(..., job=...)`` (its shell says it)."""
        found: list[int] = []

        def said() -> bool:
            for line in self.output.splitlines():
                if line.startswith(b"job "):
                    found.append(int(line.split()[1]))
                    return True
            return False

        self.pump_until(said, "the shell to say the job's pid")
        return found[0]

    def finish(self, on_data: Callable[[bytes], None] | None = None) -> int:
        """Drain until the process has exited and the pty is closed; its exit code."""
        self.pump_until(lambda: self.closed and self.proc.poll() is not None,
                        "the process to exit and close the terminal", on_data)
        return self.proc.wait()


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def start_in_pty(args: Sequence[str], *, rows: int = 24, cols: int = 80,
                 env: Mapping[str, str] | None = None, stdout: int | None = None,
                 stderr: int | None = None, job: str | None = None) -> PtyRun:
    """Start ``carbonmonitor ARGS`` on a fresh pty as the controlling terminal's foreground job.

    ``stdout``/``stderr`` may be given to redirect one of them away from the terminal. With
    ``job`` ('fg' or 'bg') it is instead a foreground or background job of a minimal shell that
    leads the session (``proc`` is then that shell; ``PtyRun.job_pid()`` gives the job's pid);
    by default it leads the session itself.
    """
    master, slave = os.openpty()
    set_size(slave, rows, cols)
    launcher = ["-c", _TAKE_TTY] if job is None else ["-c", _SHELL, job]
    try:
        proc = subprocess.Popen(
            [sys.executable, *launcher, "-m", "carbonmonitor", *args],
            stdin=slave, stdout=slave if stdout is None else stdout,
            stderr=slave if stderr is None else stderr, start_new_session=True,
            env=dict(env) if env is not None else clean_env(TERM="xterm"))
    finally:
        os.close(slave)
    return PtyRun(proc, master)
