"""``carbonmonitor dashboard``: serve the local dashboard until Ctrl-C (docs/dashboard.md).

The URL goes to stderr; a host other than loopback is served, with a warning that the store
becomes readable from the network; errors exit with code 2 (see cli/__init__.py).
"""

from __future__ import annotations

import argparse
from typing import Any

from carbonmonitor.cli import UsageError, say

__all__ = ["add_parser", "dashboard_command"]

DEFAULT_PORT = 8765


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``dashboard`` to the ``carbonmonitor`` subcommands; returns its parser."""
    from carbonmonitor.cli.store import add_db

    parser: argparse.ArgumentParser = commands.add_parser(
        "dashboard", allow_abbrev=False,
        help="a local web page: runs, projects, reports, comparisons, live power",
        description="Serve a local web page over the run store: runs and projects with their "
                    "energy and CO2e, each run's report, comparisons, and the power of running "
                    "runs updating live. Bound to 127.0.0.1 by default; Ctrl-C stops it.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    parser.add_argument("--open", action="store_true", help="open the page in a browser")
    add_db(parser)
    return parser


def dashboard_command(args: argparse.Namespace) -> int:
    """Run ``carbonmonitor dashboard`` until interrupted; the exit code."""
    from carbonmonitor.dashboard import serve
    from carbonmonitor.dashboard.server import LOOPBACK

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535; got {args.port}")
    if args.host not in LOOPBACK:
        say(f"carbonmonitor: warning: --host {args.host} makes the dashboard, and so every run "
            "in the store (names, parameters, hosts), readable from the network; it has no "
            "login. Use --host 127.0.0.1 to keep it on this machine.")
    try:
        server = serve(args.db, host=args.host, port=args.port, start=False)
    except OSError as err:
        raise UsageError(f"cannot listen on {args.host}:{args.port} ({err.strerror or err}); "
                         "choose another --port (0: any free one)") from err
    say(f"carbonmonitor: dashboard of {server.store.path} at {server.url} (Ctrl-C stops it)")
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
