"""``carbonmonitor devices``: every backend, usable here or not, with the reason and the fix."""

from __future__ import annotations

import argparse
import json
from typing import Any

from carbonmonitor.cli import option_values


def probe_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Probe each built-in and plugin backend with the options in effect; close what opened."""
    from carbonmonitor.backends import (
        FALLBACK,
        MEASURING_BUILTINS,
        ProbeContext,
        builtin_factories,
        plugin_factories,
    )
    from carbonmonitor.clock import SystemClock
    from carbonmonitor.config import find_config_files
    from carbonmonitor.errors import BackendUnavailable
    from carbonmonitor.options import resolve

    options = resolve(option_values(args), files=find_config_files(),
                      where="on the command line", flags=True)
    context = ProbeContext(options, SystemClock())
    builtins = builtin_factories()
    plugins = plugin_factories()
    order = [*MEASURING_BUILTINS, *plugins, FALLBACK]
    order += [name for name in builtins if name not in order]  # named-only: constant, fake
    rows = []
    for name in order:
        factory = builtins.get(name) or plugins[name]
        row: dict[str, Any] = {"backend": name, "in_auto": name in (*MEASURING_BUILTINS,
                                                                    *plugins, FALLBACK)}
        try:
            backend = factory.probe(context)
        except BackendUnavailable as err:
            rows.append({**row, "usable": False, "reason": err.reason, "fix": err.fix})
            continue
        except Exception as err:  # a bad option (ConfigError) or a plugin failing in any way
            rows.append({**row, "usable": False, "reason": f"{type(err).__name__}: {err}",
                         "fix": "check the options it needs (docs/measurement.md)"})
            continue
        rows.append({**row, "usable": True, "poll_period_s": backend.poll_period_s,
                     "domains": [{"key": d.key, "device": d.device, "method": d.method,
                                  "rule": d.rule, "detail": d.detail}
                                 for d in backend.domains()]})
        backend.close()
    return rows


def devices_command(args: argparse.Namespace) -> int:
    rows = probe_all(args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        auto = "" if row["in_auto"] else " (only when named)"
        if row["usable"]:
            print(f"{row['backend']}: usable{auto}")
            for d in row["domains"]:
                print(f"  {d['key']:<16} {d['method']:<15} {d['detail']}")
        else:
            print(f"{row['backend']}: not usable{auto}: {row['reason']}")
            print(f"  fix: {row['fix']}")
    return 0
