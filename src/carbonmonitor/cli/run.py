"""``carbonmonitor run -- COMMAND``: run a command under a tracker and exit with its code.

Signals: Ctrl-C in a terminal reaches the whole foreground process group, so when the child
shares that group it already has the signal and we do not send it again; a SIGINT/SIGHUP sent to
us alone, and every SIGTERM, is forwarded once. Our handlers are installed before the child
starts: one that arrives before the launch means the command is not started at all, one that
arrives during it is sent to the child once it exists (never lost, never killing us and
orphaning the child). While the child runs we only wait; its exit code becomes ours (128+N when a
signal N ended it, as shells do; 127/126 when it cannot be started, as ``env`` and shells do),
and a run that received one of these signals is recorded as ``interrupted``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from carbonmonitor.cli import UsageError
from carbonmonitor.options import SPECS

if TYPE_CHECKING:
    from carbonmonitor.records import RunResult
    from carbonmonitor.tracker import Tracker

# As POSIX shells and env(1): 127 when the command is not found, 126 when it cannot be executed.
EXIT_NOT_FOUND = 127
EXIT_CANNOT_EXECUTE = 126
_INTERRUPTS = ("SIGINT", "SIGTERM", "SIGHUP")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {spec.name: getattr(args, spec.name) for spec in SPECS
            if getattr(args, spec.name) is not None}


def _terminal_delivered(child_pid: int) -> bool:
    """True when a SIGINT/SIGHUP we got came from our terminal and reached the child too: our
    process group is the terminal's foreground group and the child is still in it."""
    for fd in (0, 1, 2):
        try:
            if not os.isatty(fd):
                continue
            foreground = os.tcgetpgrp(fd)
        except OSError:
            continue  # a tty that is not our controlling terminal
        try:
            return foreground == os.getpgrp() == os.getpgid(child_pid)
        except OSError:
            return True  # the child is gone: nothing to forward
    return False


class _Signals:
    """Forwards SIGINT/SIGTERM/SIGHUP to the child once and remembers that one arrived."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.received: list[int] = []
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
        self.received.append(signum)
        if self.child is not None:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        assert self.child is not None
        if signum != signal.SIGTERM and _terminal_delivered(self.child.pid):
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
    if args.json and not Path(args.json).expanduser().parent.is_dir():
        raise UsageError(f"--json {args.json}: folder {str(Path(args.json).parent)!r} does not "
                         "exist; create it or give another path")
    signals = _Signals()
    signals.install()
    try:
        return _monitor(args, command, signals)
    finally:
        signals.restore()


def _monitor(args: argparse.Namespace, command: list[str], signals: _Signals) -> int:
    from carbonmonitor.options import resolve
    from carbonmonitor.tracker import Tracker

    resolve(_options(args), where="on the command line", flags=True)  # flag-named errors first
    tracker = Tracker(quiet=True, argv=tuple(command), **_options(args))
    live = None
    if not args.quiet and os.isatty(2) and os.environ.get("TERM") != "dumb":
        from carbonmonitor.cli.live import LiveLine

        live = LiveLine(tracker)
    tracker.start()
    if signals.received:  # interrupted before the command started: do not start it
        result = tracker.stop("interrupted", exit_code=128 + signals.received[0])
        _report(args, result)
        return 128 + signals.received[0]
    if live is not None:
        live.start()  # reserve the last row before the child can write anything
    try:
        child = subprocess.Popen(command)
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
    _report(args, result)
    return exit_code


def _signal_numbers() -> set[int]:
    return {getattr(signal, name) for name in _INTERRUPTS if hasattr(signal, name)}


def _cannot_start(args: argparse.Namespace, tracker: Tracker, command: list[str],
                  err: OSError) -> int:
    code = EXIT_NOT_FOUND if err.errno == errno.ENOENT else EXIT_CANNOT_EXECUTE
    result = tracker.stop("failed", exit_code=code)
    if args.json:
        _write_json(Path(args.json).expanduser(), result.to_json(indent=2))
    fix = ("check the command name and PATH" if code == EXIT_NOT_FOUND
           else "check that it is an executable file (chmod +x) for this platform")
    print(f"carbonmonitor: error: cannot run {command[0]!r}: {err.strerror or err}; {fix}",
          file=sys.stderr, flush=True)
    return code


def _report(args: argparse.Namespace, result: RunResult) -> None:
    if args.json:
        _write_json(Path(args.json).expanduser(), result.to_json(indent=2))
    if not args.quiet:
        from carbonmonitor.summary import format_summary

        print(format_summary(result), file=sys.stderr, flush=True)


def _write_json(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        print(f"carbonmonitor: warning: could not write the result to {path} ({err})",
              file=sys.stderr)

