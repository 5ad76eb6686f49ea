"""The ``carbonmonitor`` (alias ``cmml``) command line.

Bad input exits with code 2 and one line naming the bad value and the fix, never a traceback.
A stderr that cannot be written (a closed pipe) never changes the exit code.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from carbonmonitor._version import __version__
from carbonmonitor.errors import CarbonMonitorError, did_you_mean
from carbonmonitor.options import SPEC_BY_NAME, SPECS

EXIT_USAGE = 2
EXIT_INTERRUPTED = 128 + 2  # SIGINT, as shells report it


class UsageError(Exception):
    """A command-line mistake; printed as one line, exit code 2."""


def say(line: str) -> None:
    """Print ``line`` on stderr. If stderr cannot be written (a closed pipe, a full disk), the
    line is dropped: our exit code is the command's, not that of a failed message."""
    if sys.stderr is None:  # pythonw: print(file=None) would go to stdout
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # ValueError: sys.stderr was closed
        _silence_stderr()


def _silence_stderr() -> None:
    """Point fd 2 at the null device, so that what is still buffered for it, and the flush at
    exit (which would otherwise turn our exit code into 120), go nowhere without an error."""
    try:
        fd = sys.stderr.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def _settle_stderr() -> None:
    """Flush stderr now (logging may have written to it); silence it if that fails."""
    if sys.stderr is None:
        return
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        _silence_stderr()


def option_values(args: argparse.Namespace) -> dict[str, Any]:
    """The options given as flags; absent ones are left to environment, config and defaults."""
    return {spec.name: getattr(args, spec.name) for spec in SPECS
            if getattr(args, spec.name, None) is not None}


def cli_spelling(message: str) -> str:
    """Library messages name options as keywords (``pue=1.2``); on the command line the same
    fix reads ``--pue 1.2``."""
    for spec in sorted(SPECS, key=lambda s: -len(s.name)):
        message = re.sub(rf"(?<![\w-]){spec.name}=(?=['\"\w])", f"{spec.flag} ", message)
        message = re.sub(rf"(?<![\w-]){spec.name}=", spec.flag, message)
    return message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            bad = message.split(":", 1)[1].split()[0]
            flags = _all_flags(self)
            hint = did_you_mean(bad.split("=")[0], flags) or f" See `{self.prog} --help`."
            message = f"unknown option {bad}.{hint}"
        elif "the following arguments are required" in message:
            message = f"{message}. See `{self.prog} --help`."
        raise UsageError(message)


def _all_flags(parser: argparse.ArgumentParser) -> list[str]:
    flags: list[str] = []
    for action in parser._actions:
        flags.extend(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags.extend(_all_flags(sub))
    return flags


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="carbonmonitor", allow_abbrev=False,
                     description="Measure the energy and CO2e of ML work.")
    parser.add_argument("--version", action="version", version=f"carbonmonitor {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = commands.add_parser(
        "run", allow_abbrev=False, help="run a command and measure it",
        usage="carbonmonitor run [options] -- COMMAND [ARGS ...]",
        description="Run COMMAND, measure the machine's energy while it runs, print a summary "
                    "on stderr and exit with COMMAND's exit code.")
    for spec in SPECS:
        if not spec.secret:  # credentials come from the environment or a config file
            run.add_argument(spec.flag, dest=spec.name, metavar=spec.name.upper(),
                             help=spec.help)
    run.add_argument("--quiet", action="store_true", help="no live power line, no summary")
    run.add_argument("--json", metavar="PATH", help="also write the result as JSON to PATH")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND",
                     help="the command to run (after --)")
    devices = commands.add_parser(
        "devices", allow_abbrev=False, help="list every backend, usable here or not, and why",
        description="Probe every measurement backend with the options in effect and show what "
                    "each measures here, or why it cannot and how to fix that.")
    for spec in SPECS:
        if not spec.secret:
            devices.add_argument(spec.flag, dest=spec.name, metavar=spec.name.upper(),
                                 help=argparse.SUPPRESS)
    devices.add_argument("--json", action="store_true", help="print JSON")
    _store_commands(commands)
    from carbonmonitor.cli.intensity import add_parser as add_intensity

    add_intensity(commands)
    from carbonmonitor.cli.report import add_parser as add_report

    add_report(commands)
    from carbonmonitor.cli.compare import add_parser as add_compare

    add_compare(commands)
    from carbonmonitor.cli.dashboard import add_parser as add_dashboard

    add_dashboard(commands)
    add_advice(commands)
    return parser


def add_advice(commands: Any) -> None:
    """``carbonmonitor advice RUN``: what would cut this run's footprint, with the evidence."""
    from carbonmonitor.cli.store import add_db

    parser = commands.add_parser(
        "advice", allow_abbrev=False, help="what would cut a run's footprint, with evidence",
        description="Advice for a stored run, each item with the numbers behind it and its "
                    "estimated saving, largest first; nothing when no rule's numbers justify "
                    "advice (docs/advice.md).")
    parser.add_argument("run", metavar="RUN",
                        help="run id (a unique prefix, or the short id tables show), or 'last'")
    add_db(parser)


def _store_commands(commands: Any) -> None:
    from carbonmonitor.cli.store import add_db, add_filters

    runs = commands.add_parser(
        "runs", allow_abbrev=False, help="list stored runs, newest first",
        description="List the runs in the store, newest first: id, start, project, name, "
                    "status (running, completed, failed, interrupted), duration, energy, CO2e.")
    add_filters(runs)
    runs.add_argument("--limit", type=int, metavar="N", help="show the newest N (default 20)")
    runs.add_argument("--all", action="store_true", help="show every matching run")
    add_db(runs)
    runs.add_argument("--json", action="store_true", help="print the full results as JSON")
    show = commands.add_parser(
        "show", allow_abbrev=False, help="show one run: energy, CO2e, provenance, identity",
        description="Show one stored run: energy by device and phase with methods and "
                    "uncertainty, CO2e with the factors and their sources, and the run's "
                    "identity (host, git, hardware, software, options).")
    show.add_argument("run", metavar="RUN",
                      help="a run id, a unique prefix of one, its short id, or 'last' for the "
                           "newest run")
    add_db(show)
    show.add_argument("--json", action="store_true", help="print the full result as JSON")
    again = show.add_argument_group(
        "re-accounting", "recompute the run's CO2e for another place, year, PUE or contract, "
        "without re-measuring (the stored run is not changed)")
    for name in ("country", "cloud_provider", "cloud_region", "zone", "pue", "data_year",
                 "market_factor", "intensity_basis"):
        spec = SPEC_BY_NAME[name]
        again.add_argument(spec.flag, dest=name, metavar=name.upper(), help=spec.help)
    export = commands.add_parser(
        "export", allow_abbrev=False, help="export runs as CSV (CodeCarbon's columns) or JSON",
        description="Export stored runs. CSV: one row per run with CodeCarbon 3.3.2's "
                    "emissions.csv columns, in its order and units, then carbonmonitor's "
                    "provenance columns (docs/cli.md). JSON: the full results.")
    export.add_argument("--format", choices=("csv", "json"), default="csv",
                        help="csv (default) or json")
    export.add_argument("--output", "-o", metavar="PATH", help="write here (default: stdout)")
    add_filters(export)
    add_db(export)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console scripts; returns the exit code."""
    try:
        return _main(argv)
    finally:
        _settle_stderr()


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
        if args.command is None:
            try:
                parser.print_help(sys.stderr)
            except (OSError, ValueError, AttributeError):  # no usable stderr: exit code only
                _silence_stderr()
            return EXIT_USAGE
        if args.command == "devices":
            from carbonmonitor.cli.devices import devices_command

            return devices_command(args)
        if args.command == "intensity":
            from carbonmonitor.cli.intensity import intensity_command

            return int(intensity_command(args))
        if args.command == "dashboard":
            from carbonmonitor.cli.dashboard import dashboard_command

            return int(dashboard_command(args))
        if args.command == "compare":
            from carbonmonitor.cli.compare import compare_command

            return int(compare_command(args))
        if args.command == "report":
            from carbonmonitor.cli.report import report_command

            return int(report_command(args))
        if args.command == "advice":
            return _advice_command(args)
        if args.command in ("runs", "show", "export"):
            from carbonmonitor.cli import store

            command: Any = getattr(store, f"{args.command}_command")
            return int(command(args))
        from carbonmonitor.cli.run import run_command

        return run_command(args)
    except UsageError as err:
        say(f"carbonmonitor: error: {err}")
        return EXIT_USAGE
    except CarbonMonitorError as err:
        say(f"carbonmonitor: error: {cli_spelling(str(err))}")
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C before the command started: no traceback
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `carbonmonitor runs | head`: the reader has all it wanted
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as err:  # a path the user gave that cannot be written or read
        say(f"carbonmonitor: error: {path_error('', err.filename2 or err.filename, err)}")
        return EXIT_USAGE


EXIT_BROKEN_PIPE = 141
"""As a shell reports a program ended by SIGPIPE (128 + 13)."""


def path_error(what: str, path: object, err: OSError) -> str:
    """What an OSError on a path the user gave (as ``what``, e.g. ``-o``) means, and the fix.
    For ``os.replace(tmp, path)`` the caller passes ``err.filename2``: the user's path."""
    named = " ".join(p for p in (what, repr(str(path)) if path else "") if p)
    if isinstance(err, IsADirectoryError):
        return f"{named} is a folder: give a file name in it"
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        return (f"cannot write {named}: a part of that path is a file, not a folder. Fix: "
                "choose a path whose folders are folders")
    return (f"cannot write {named}: {err.strerror or err}. Fix: choose a path in a folder you "
            "can write")


def cannot_write(what: str, path: object, err: OSError) -> UsageError:
    """The usage error for ``path`` (given as ``what``) that could not be written."""
    return UsageError(path_error(what, path, err))


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that flushing it at exit raises nothing more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _advice_command(args: argparse.Namespace) -> int:
    import carbonmonitor
    from carbonmonitor.advice import advise
    from carbonmonitor.summary import mass_text

    result = carbonmonitor.load(args.run, db=args.db)
    try:
        series = carbonmonitor.series(result.identity.run_id, db=args.db)
    except carbonmonitor.StoreError:
        series = None
    items = advise(result, series)
    if result.partial:
        say(f"note: run {result.identity.run_id} is {result.status}: the advice reads it up to "
            "its last write")
    if not items:
        print(f"no advice for run {result.identity.run_id}: no rule's numbers justify any "
              "(docs/advice.md lists the rules and their thresholds)")
        return 0
    for i, item in enumerate(items, start=1):
        saving = (f"saves about {mass_text(item.saving.co2e_g, result.co2e_g)} CO2e "
                  f"({item.saving.pct:.0f} %)" if item.saving
                  else f"no saving figure: {item.no_saving}")
        print(f"{i}. {item.title} [{item.confidence} confidence; {saving}]")
        print(f"   evidence: {item.evidence}")
        print(f"   action:   {item.action}")
        for caveat in item.caveats:
            print(f"   caveat:   {caveat}")
    return 0
