"""``carbonmonitor runs``, ``show RUN`` and ``export``: the stored runs, on the terminal or as data.

Tables go to stdout (for pipes); errors to stderr with exit code 2 (see cli/__init__.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from carbonmonitor.cli import UsageError
from carbonmonitor.records import RunResult
from carbonmonitor.store import RunList, Store, open_store
from carbonmonitor.summary import energy_text, format_summary, mass_text, when_text


def add_filters(parser: argparse.ArgumentParser) -> None:
    """The run filters shared by ``runs`` and ``export``."""
    parser.add_argument("--project", help="only runs of this project")
    parser.add_argument("--name", help="only runs with this name")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="only runs with this tag (repeat, or a,b: runs with all of them)")
    parser.add_argument("--since", metavar="WHEN",
                        help="only runs started since WHEN: 2026-11-01, 2026-11-01T12:00, or an "
                             "age such as 12h, 7d")
    parser.add_argument("--status", help="running, completed, failed or interrupted")


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH",
                        help="the run store (default: CARBONMONITOR_DB, config files, or the "
                             "user data directory)")


def _store(args: argparse.Namespace) -> Store:
    return open_store(args.db)


def _selected(args: argparse.Namespace, store: Store, limit: int | None) -> RunList:
    """The matching runs. A default store that does not exist yet simply holds no runs (a
    store named with --db that does not exist is an error: probably a typo)."""
    tags = [t for item in args.tag for t in item.split(",") if t.strip()]
    if args.db is None and not store.path.exists():
        print(f"no runs stored yet (the store {store.path} does not exist)", file=sys.stderr)
        return RunList()
    return store.runs(project=args.project, name=args.name, tags=tags, since=args.since,
                      status=args.status, limit=limit)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def runs_command(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be a positive whole number; got {args.limit}")
    limit = None if args.all else (args.limit or 20)
    store = _store(args)
    found = _selected(args, store, None if limit is None else limit + 1)
    more = limit is not None and len(found) > limit
    shown = found[:limit] if limit is not None else found
    if args.json:
        print(json.dumps([r.to_dict() for r in shown], indent=2))
        return 0
    if not shown:
        if store.path.exists():
            print("no runs match" if _filtered(args) else "no runs stored yet", file=sys.stderr)
        return 0
    header = ("RUN", "STARTED", "PROJECT", "NAME", "STATUS", "DURATION", "ENERGY", "CO2e",
              "TAGS")
    rows = [(r.identity.run_id, when_text(r.identity.started_at), r.identity.project,
             r.identity.name, r.status, _duration(r.duration_s), energy_text(r.energy_j),
             mass_text(r.co2e_g), ",".join(r.identity.tags)) for r in shown]
    _table(header, rows, right=(5, 6, 7), out=sys.stdout)
    bases = sorted({r.emissions.basis for r in shown})
    if len(bases) > 1:  # CO2e on different bases is not comparable row to row
        print(f"note: these runs' CO2e mix emission-factor bases ({', '.join(bases)}): compare "
              "within one basis, or re-account with `carbonmonitor show RUN --zone/--country`",
              file=sys.stderr)
    if more:
        print(f"(newest {limit} shown; --limit N or --all for more)", file=sys.stderr)
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any((args.project, args.name, args.tag, args.since, args.status))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: tuple[int, ...],
           out: TextIO) -> None:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells).rstrip(), file=out)


REACCOUNT = ("country", "cloud_provider", "cloud_region", "zone", "pue", "data_year",
             "market_factor", "intensity_basis")


def show_command(args: argparse.Namespace) -> int:
    result = _store(args).load(args.run)
    where = {"basis" if name == "intensity_basis" else name: getattr(args, name)
             for name in REACCOUNT if getattr(args, name) is not None}
    if where:
        from carbonmonitor.reaccounting import reaccount

        result = reaccount(result, **where)
    if args.json:
        print(result.to_json(indent=2))
    else:
        print(describe(result))
    return 0


def describe(result: RunResult) -> str:
    """The summary followed by the run's identity, options and backends."""
    ident = result.identity
    lines = [format_summary(result), "Identity"]

    def row(label: str, value: Any) -> None:
        if value not in (None, "", (), [], {}):
            lines.append(f"  {label:<11}{value}")

    row("started", f"{ident.started_at}  ended {result.ended_at}")
    row("tags", ", ".join(ident.tags))
    row("params", ", ".join(f"{k}={v}" for k, v in ident.params.items()))
    row("command", " ".join(ident.argv))
    row("host", f"{ident.host} (pid {ident.pid})")
    if ident.git:
        dirty = {True: ", uncommitted changes", False: ", clean", None: ""}[ident.git.dirty]
        row("git", f"{ident.git.commit[:12]} on {ident.git.branch or 'detached HEAD'}{dirty}")
    hw = ident.hardware
    if hw:
        ram = f", {hw.ram_total_bytes / 2**30:.1f} GiB RAM" if hw.ram_total_bytes else ""
        row("hardware", f"{hw.cpu_model or 'unknown CPU'} x{hw.cpu_count or '?'} "
                        f"({hw.cpu_usable or '?'} usable){ram}"
                        + (f"; GPUs: {', '.join(hw.gpus)}" if hw.gpus else ""))
    row("software", f"{ident.python} on {ident.platform}; "
                    + ", ".join(f"{k} {v}" for k, v in ident.packages.items()))
    row("data", f"{len(ident.data_tables)} reference tables (versions: show --json)")
    used = [f"{b.name} ({', '.join(b.devices)})" for b in result.backends if b.used]
    row("backends", "; ".join(used))
    row("samples", f"{result.sample_count}")
    given = [f"{name}={opt['value']} ({opt['source']})" for name, opt in result.options.items()
             if isinstance(opt, dict) and opt.get("source") != "default"]
    row("options", ", ".join(given))
    if result.exit_code is not None:
        row("exit code", result.exit_code)
    return "\n".join(lines)


def export_command(args: argparse.Namespace) -> int:
    from carbonmonitor.export import write_csv, write_json

    found = _selected(args, _store(args), None)
    writer = write_csv if args.format == "csv" else write_json
    if args.output in (None, "-"):
        writer(found, sys.stdout)
    else:
        from pathlib import Path

        path = Path(args.output)
        if path.is_dir():
            raise UsageError(f"--output {args.output!r} is a directory; give a file name such "
                             f"as emissions.{args.format}")
        try:
            with path.open("w", encoding="utf-8", newline="") as out:
                writer(found, out)
        except OSError as err:
            raise UsageError(f"cannot write --output {args.output!r} ({err.strerror or err}); "
                             "choose a writable path") from err
    print(f"exported {len(found)} run(s)", file=sys.stderr)
    return 0
