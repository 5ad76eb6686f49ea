"""``carbonmonitor run -- COMMAND``: run a command under a tracker and exit with its code.

Signals: Ctrl-C in a terminal reaches the whole foreground process group, so the child already
has it and we do not send it again; a SIGINT/SIGHUP sent to us alone, and every SIGTERM, is
forwarded once. While the child runs we only wait; its exit code becomes ours (128+N when a
signal N ended it, as shells do).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from carbonmonitor.cli import UsageError
from carbonmonitor.options import SPECS


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {spec.name: getattr(args, spec.name) for spec in SPECS
            if getattr(args, spec.name) is not None}


def _terminal_delivers_sigint() -> bool:
    """True when our process group is the terminal's foreground group: a Ctrl-C there was
    delivered by the kernel to the child as well."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            continue
    return False


def run_command(args: argparse.Namespace) -> int:
    from carbonmonitor.options import resolve
    from carbonmonitor.tracker import Tracker

    command = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("no command given; usage: carbonmonitor run [options] -- COMMAND ...")
    resolve(_options(args), where="on the command line", flags=True)  # flag-named errors first
    tracker = Tracker(quiet=True, argv=tuple(command), **_options(args))
    live = None
    if not args.quiet and os.isatty(2):
        from carbonmonitor.cli.live import LiveLine

        live = LiveLine(tracker)
    tracker.start()
    try:
        child = subprocess.Popen(command)
    except OSError as err:
        tracker.stop("failed", exit_code=127)
        raise UsageError(f"cannot run {command[0]!r}: {err.strerror or err}; check the "
                         "command name and PATH") from None
    restore = _forward_signals(child)
    if live is not None:
        live.start()
    try:
        code = child.wait()
    finally:
        if live is not None:
            live.stop()
        restore()
    exit_code = 128 - code if code < 0 else code
    killed_by = -code if code < 0 else None
    status = ("interrupted" if killed_by in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", -1))
              else "completed" if code == 0 else "failed")
    result = tracker.stop(status, exit_code=exit_code)
    if args.json:
        _write_json(Path(args.json), result.to_json(indent=2))
    if not args.quiet:
        from carbonmonitor.summary import format_summary

        print(format_summary(result), file=sys.stderr, flush=True)
    return exit_code


def _forward_signals(child: subprocess.Popen[bytes]) -> Any:
    names = ["SIGINT", "SIGTERM"] + (["SIGHUP"] if hasattr(signal, "SIGHUP") else [])
    previous = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGTERM and _terminal_delivers_sigint():
            return  # the terminal already sent it to the child's process group
        try:
            child.send_signal(signum)
        except OSError:
            pass

    for name in names:
        sig = getattr(signal, name)
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def _write_json(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        print(f"carbonmonitor: warning: could not write {path} ({err}); the summary above is "
              "the only copy", file=sys.stderr)
