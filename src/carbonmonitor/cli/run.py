"""``carbonmonitor run -- COMMAND``: run a command under a tracker and exit with its code.

Signals, so that the command gets each SIGINT/SIGTERM/SIGHUP exactly once:

* When we are the foreground job of our controlling terminal (one of fds 0-2 is that terminal
  and its foreground process group is ours), the command stays in our process group, so Ctrl-C,
  Ctrl-Z and reads from the terminal work as usual. A SIGINT/SIGHUP that reaches us then came
  from the terminal to the whole group (or, once the terminal is closed, a SIGHUP from the shell
  to its job's group), the command has it already and it is not forwarded; SIGTERM is forwarded.
  When we lead the session ourselves, the SIGHUP of a closed terminal comes to us alone and is
  forwarded.
* Otherwise (no terminal, or a background job, e.g. under ``timeout`` or a batch scheduler,
  which signal a whole process group) the command starts in a new session and process group, so
  a group-directed signal reaches only us, and we forward every SIGINT/SIGTERM/SIGHUP once.

Our handlers are installed before the command starts: a signal that arrives before the launch
means the command is not started at all, one that arrives during it is sent to the command once
it exists (never lost, never killing us and orphaning the command). While the command runs we
only wait; its exit code becomes ours (128+N when a signal N ended it, as shells do; 127/126 when
it cannot be started, as ``env`` and shells do), also when stderr can no longer be written, and a
run that received one of these signals is recorded as ``interrupted``.

Limitations: in a terminal's foreground job, a signal sent to the whole process group by hand
(``kill -TERM -PGID``) reaches the command directly and again through forwarding, and a SIGINT or
SIGHUP sent to our pid alone (``kill -INT PID``) is taken for the terminal's and not forwarded.
Outside the foreground, the command is in its own session: it has no controlling terminal (it
cannot read /dev/tty, and Ctrl-Z after ``fg`` stops only us), and a SIGKILL sent to our process
group (``timeout -k``) does not reach it, since a SIGKILL cannot be forwarded.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import subprocess
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from carbonmonitor.cli import UsageError, option_values, say

if TYPE_CHECKING:
    from carbonmonitor.records import RunResult
    from carbonmonitor.tracker import Tracker

# As POSIX shells and env(1): 127 when the command is not found, 126 when it cannot be executed.
EXIT_NOT_FOUND = 127
EXIT_CANNOT_EXECUTE = 126
_INTERRUPTS = ("SIGINT", "SIGTERM", "SIGHUP")
# timeout(1) and batch schedulers send one signal twice, to our pid and to our process group.
# The kernel merges the two only when both arrive before the handler runs; when another thread
# (the sampler) takes the first, both reach the handler. The same signal again within this
# window is that second copy, not a new request, and is not forwarded again.
DUPLICATE_WINDOW_S = 0.25


def _terminal_state() -> Literal["foreground", "background", "hung up", "none"]:
    """Where we stand with our controlling terminal, looked up through fds 0-2: our process group
    is its foreground group, or another one is; it has been hung up (closed); or none of the
    fds is our controlling terminal."""
    hung_up = False
    for fd in (0, 1, 2):
        try:
            return "foreground" if os.tcgetpgrp(fd) == os.getpgrp() else "background"
        except OSError as err:  # ENOTTY: not a tty or not ours; EBADF: closed
            hung_up = hung_up or err.errno == errno.EIO
    return "hung up" if hung_up else "none"


def _is_terminal_foreground() -> bool:
    """True when a Ctrl-C on our controlling terminal reaches everything in our process group."""
    return _terminal_state() == "foreground"


def _terminal_delivered(signum: int, child_pid: int) -> bool:
    """True when a SIGINT/SIGHUP we got was sent to our whole process group by the terminal's
    side and so reached the child too, which must then still share our group (it does not when
    it was started in its own session because we were not the foreground job): our group is the
    terminal's foreground group (Ctrl-C); or, for SIGHUP, the terminal has been hung up and we
    are not the session leader, which alone the kernel signals and which (a shell) sends SIGHUP
    on to the groups of its jobs, ours included."""
    try:
        if os.getpgid(child_pid) != os.getpgrp():
            return False
    except OSError:
        return True  # the child is gone: nothing to forward
    state = _terminal_state()
    if state == "foreground":
        return True
    return signum == signal.SIGHUP and state == "hung up" and os.getsid(0) != os.getpid()


class _Signals:
    """Forwards SIGINT/SIGTERM/SIGHUP to the child once and remembers that one arrived."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.received: list[int] = []
        self._last: tuple[int, float] | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for name in _INTERRUPTS:
            sig = getattr(signal, name, None)
            if sig is not None:
                self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous.clear()

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        """Start forwarding to ``child``. A signal that came while it was being launched cannot
        have reached it, so it is sent now whatever the terminal did."""
        self.child = child
        for signum in self.received:
            _send(child, signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        repeat = (self._last is not None and self._last[0] == signum
                  and now - self._last[1] < DUPLICATE_WINDOW_S)
        self.received.append(signum)
        self._last = (signum, now)
        if self.child is not None and not repeat:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        assert self.child is not None
        if signum != signal.SIGTERM and _terminal_delivered(signum, self.child.pid):
            return  # the terminal already sent it to the child's process group
        _send(self.child, signum)


def _send(child: subprocess.Popen[bytes], signum: int) -> None:
    try:
        child.send_signal(signum)  # a no-op once the child has been reaped
    except OSError:
        pass


def run_command(args: argparse.Namespace) -> int:
    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("no command given; usage: carbonmonitor run [options] -- COMMAND ...")
    if args.json is not None:
        _check_json_path(args.json)
    signals = _Signals()
    signals.install()
    try:
        return _monitor(args, command, signals)
    finally:
        signals.restore()


def _check_json_path(text: str) -> None:
    """Reject a --json path that cannot be written before the command is started."""
    if not text.strip():
        raise UsageError("--json needs a file path, got an empty string; give a path such as "
                         "--json result.json or leave --json out")
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) or path.is_dir():
        raise UsageError(f"--json {text}: names a folder, not a file; give a file path such as "
                         f"--json {str(path / 'result.json')!r}")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"--json {text}: folder {str(folder)!r} does not exist; create it or "
                         "give another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--json {text}: folder {str(folder)!r} is not writable; give a path "
                         "in a folder you can write to")


def _monitor(args: argparse.Namespace, command: list[str], signals: _Signals) -> int:
    from carbonmonitor.options import resolve
    from carbonmonitor.tracker import Tracker

    resolve(option_values(args), where="on the command line", flags=True)  # flag-named errors first
    tracker = Tracker(quiet=True, argv=tuple(command), **option_values(args))
    live = None
    if not args.quiet and os.isatty(2) and os.environ.get("TERM") != "dumb":
        from carbonmonitor.cli.live import LiveLine

        live = LiveLine(tracker)
    tracker.start()
    if signals.received:  # interrupted before the command started: do not start it
        result = tracker.stop("interrupted", exit_code=128 + signals.received[0])
        _report(args, result, tracker.store.path if tracker.store else None)
        return 128 + signals.received[0]
    if live is not None:
        live.start()  # reserve the last row before the child can write anything
    # In the terminal's foreground the child shares our group (job control works as usual);
    # elsewhere it gets its own, so a signal sent to our group is not delivered to it twice.
    own_session = not _is_terminal_foreground()
    try:
        child = subprocess.Popen(command, start_new_session=own_session)
    except OSError as err:
        if live is not None:
            live.stop()
        return _cannot_start(args, tracker, command, err)
    signals.attach(child)
    try:
        code = child.wait()
    finally:
        if live is not None:
            live.stop()
    exit_code = 128 - code if code < 0 else code
    status: Literal["completed", "failed", "interrupted"] = (
        "interrupted" if signals.received or -code in _signal_numbers()
        else "completed" if code == 0 else "failed")
    result = tracker.stop(status, exit_code=exit_code)
    _report(args, result, tracker.store.path if tracker.store else None)
    return exit_code


def _signal_numbers() -> set[int]:
    return {getattr(signal, name) for name in _INTERRUPTS if hasattr(signal, name)}


def _cannot_start(args: argparse.Namespace, tracker: Tracker, command: list[str],
                  err: OSError) -> int:
    code = EXIT_NOT_FOUND if err.errno == errno.ENOENT else EXIT_CANNOT_EXECUTE
    result = tracker.stop("failed", exit_code=code)
    if args.json is not None:
        _write_json(Path(args.json).expanduser(), result.to_json(indent=2))
    fix = ("check the command name and PATH" if code == EXIT_NOT_FOUND
           else "check that it is an executable file (chmod +x) for this platform")
    say(f"carbonmonitor: error: cannot run {command[0]!r}: {err.strerror or err}; {fix}")
    return code


def _report(args: argparse.Namespace, result: RunResult, store: Path | None = None) -> None:
    if args.json is not None:
        _write_json(Path(args.json).expanduser(), result.to_json(indent=2))
    if not args.quiet:
        from carbonmonitor.summary import format_summary

        say(format_summary(result))
        if store is not None and "store-failed" not in {f.code for f in result.flags}:
            say(f"Stored in {store}: carbonmonitor show {result.identity.run_id}")


def _write_json(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        say(f"carbonmonitor: warning: could not write the result to {path} ({err})")

