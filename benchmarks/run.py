#!/usr/bin/env python3
"""Benchmark carbonmonitor's overhead side by side with CodeCarbon on this machine.

    python3 benchmarks/run.py [--python PY] [--skip-codecarbon] [--quick]

Creates (or reuses) ``benchmarks/.venv-codecarbon`` with ``pip install codecarbon`` from the
package index, uses ``.venv`` (or ``--python``) for carbonmonitor, and measures in fresh
processes:

  (a) import time added to a bare interpreter (median of ``-c "import X"`` minus ``-c "pass"``),
      plus ``-X importtime``;
  (b) time from constructing the tracker to ``start()`` returning (first measurement taken);
  (c) extra RSS after import and after start, and the threads started;
  (d) cost of one phase (enter + exit) and of one sample.

Prints a table and writes the same figures to ``benchmarks/results/latest.json``. CodeCarbon
runs as ``OfflineEmissionsTracker(country_iso_code="DEU", save_to_file=False,
log_level="error")``: its default tracker calls the network. Nothing here touches the network
except the one ``pip install``. See docs/benchmarks.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROBE = HERE / "probe.py"
CC_VENV = HERE / ".venv-codecarbon"
RESULTS = HERE / "results" / "latest.json"
IMPORT_BUDGET_MS = 30.0
TOOLS = ("carbonmonitor", "codecarbon")
# What a user writes to get the tracker class: the cost that matters in practice.
FIRST_USE = {"carbonmonitor": "import carbonmonitor; carbonmonitor.Tracker",
             "codecarbon": "from codecarbon import OfflineEmissionsTracker"}


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def clean_env() -> dict[str, str]:
    """No tool configuration or path tweaks from the caller's shell leak into the probes."""
    drop = ("CARBONMONITOR_", "CODECARBON_", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def ensure_codecarbon(base_python: str) -> Path:
    """The CodeCarbon venv, built from the same base interpreter as carbonmonitor's."""
    python = venv_python(CC_VENV)
    if python.exists() and subprocess.run([str(python), "-c", "import codecarbon"],
                                          capture_output=True).returncode == 0:
        return python
    say(f"creating {CC_VENV.relative_to(ROOT)} and installing codecarbon from the index")
    subprocess.run([base_python, "-m", "venv", "--clear", str(CC_VENV)], check=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", "codecarbon"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"pip install codecarbon failed:\n{proc.stderr[-2000:]}\n"
                 "Re-run with --skip-codecarbon to measure carbonmonitor alone.")
    return python


def version_of(python: Path | str, dist: str) -> str:
    code = f"from importlib.metadata import version; print(version({dist!r}))"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return proc.stdout.strip() or "?"


def wall_s(cmd: list[str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=clean_env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def import_cost(python: str, code: str, runs: int, cwd: str) -> dict[str, float]:
    """Median wall time of ``-c code`` minus that of ``-c pass``, runs interleaved."""
    bare, loaded = [python, "-I", "-c", "pass"], [python, "-I", "-c", code]
    for _ in range(2):  # warm the page cache and write any missing .pyc files
        wall_s(bare, cwd), wall_s(loaded, cwd)
    t_bare, t_loaded = [], []
    for _ in range(runs):
        t_bare.append(wall_s(bare, cwd))
        t_loaded.append(wall_s(loaded, cwd))
    m_bare, m_loaded = statistics.median(t_bare), statistics.median(t_loaded)
    return {"bare_ms": m_bare * 1e3, "with_import_ms": m_loaded * 1e3,
            "added_ms": (m_loaded - m_bare) * 1e3, "runs": runs}


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def importtime(python: str, code: str, top: str, runs: int, cwd: str) -> dict[str, Any]:
    """``-X importtime``: median cumulative time of ``top`` and the costliest modules."""
    totals: list[float] = []
    entries: list[tuple[int, int, int, str]] = []
    baseline = _importtime_modules(python, "pass", cwd)
    for _ in range(runs):
        proc = subprocess.run([python, "-I", "-X", "importtime", "-c", code], cwd=cwd,
                              env=clean_env(), capture_output=True, text=True, check=True)
        entries = [(int(m[1]), int(m[2]), len(m[3]), m[4])
                   for m in _IMPORTTIME.finditer(proc.stderr)]
        # every top-level import the code caused, not only ``top`` (lazy names import later)
        totals.append(sum(cum for _, cum, depth, name in entries
                          if depth == 1 and name not in baseline) / 1e3)
    new = [e for e in entries if e[3] not in baseline]
    by_self = sorted(new, key=lambda e: -e[0])[:12]
    top_level = sorted((e for e in new if e[2] == 1), key=lambda e: -e[1])[:12]
    return {
        "total_ms": statistics.median(totals),
        "modules": len(new),
        "top_self": [{"module": n, "self_ms": s / 1e3, "cumulative_ms": c / 1e3}
                     for s, c, _, n in by_self],
        "top_level": [{"module": n, "self_ms": s / 1e3, "cumulative_ms": c / 1e3}
                      for s, c, _, n in top_level],
        "top": top,
    }


def _importtime_modules(python: str, code: str, cwd: str) -> set[str]:
    proc = subprocess.run([python, "-I", "-X", "importtime", "-c", code], cwd=cwd,
                          env=clean_env(), capture_output=True, text=True, check=True)
    return {m[4] for m in _IMPORTTIME.finditer(proc.stderr)}


def probe(python: str, tool: str, args: list[str], cwd: str) -> dict[str, Any]:
    proc = subprocess.run([python, "-I", str(PROBE), tool, *args], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"probe {tool} {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("@@RESULT "):])  # type: ignore[no-any-return]


def start_runs(python: str, tool: str, runs: int, hold_s: float, cwd: str) -> dict[str, Any]:
    """``runs`` fresh processes; the first also holds the tracker ``hold_s`` to watch threads."""
    samples = [probe(python, tool, ["start", "--hold", str(hold_s if i == 0 else 0)], cwd)
               for i in range(runs)]
    keys = [k for k, v in samples[-1].items() if isinstance(v, (int, float))]
    out: dict[str, Any] = {k: statistics.median(s[k] for s in samples) for k in keys}
    for key in ("hold_s", "distinct_threads_during_hold", "max_os_threads_during_hold",
                "rss_after_hold_mib", "backends"):
        if key in samples[0]:
            out[key] = samples[0][key]
    out["runs"] = runs
    return out


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cpu_model": cpu, "platform": platform.platform(), "kernel": platform.release()}


def measure(python: str, tool: str, args: argparse.Namespace, cwd: str) -> dict[str, Any]:
    say(f"{tool}: import time ({args.import_runs} runs)")
    out: dict[str, Any] = {
        "python": python,
        "version": version_of(python, tool),
        "python_version": subprocess.run(
            [python, "-c", "import sys; print(sys.version.split()[0])"],
            capture_output=True, text=True).stdout.strip(),
        "import": import_cost(python, f"import {tool}", args.import_runs, cwd),
        "first_use": import_cost(python, FIRST_USE[tool], args.import_runs, cwd),
        "importtime": importtime(python, f"import {tool}", tool, 5, cwd),
        "importtime_first_use": importtime(python, FIRST_USE[tool], tool, 5, cwd),
    }
    say(f"{tool}: construct and start ({args.start_runs} fresh processes)")
    out["start"] = start_runs(python, tool, args.start_runs, args.hold, cwd)
    count = args.phases if tool == "carbonmonitor" else args.cc_calls
    say(f"{tool}: phase and sample cost ({count} each)")
    out["edges"] = probe(python, tool, ["edges", "--count", str(count)], cwd)
    return out


# (label, unit, path into a tool's results, digits)
ROWS = [
    ("(a) import X: added wall time", "ms", ("import", "added_ms"), 1),
    ("(a) import + tracker class: added wall time", "ms", ("first_use", "added_ms"), 1),
    ("(a) -X importtime, import X", "ms", ("importtime", "total_ms"), 1),
    ("(a) -X importtime, import + tracker class", "ms", ("importtime_first_use", "total_ms"), 1),
    ("(b) construct tracker", "ms", ("start", "construct_s"), 1),
    ("(b) start() (first measurement)", "ms", ("start", "start_s"), 1),
    ("(b) construct -> start() returned", "ms", ("start", "construct_to_started_s"), 1),
    ("(b) import -> start() returned", "ms", ("start", "import_to_started_s"), 1),
    ("(b) stop()", "ms", ("start", "stop_s"), 1),
    ("(c) extra RSS after import", "MiB", ("start", "rss_import_mib"), 1),
    ("(c) extra RSS after import + start", "MiB", ("start", "rss_started_mib"), 1),
    ("(c) OS threads started", "", ("start", "os_threads_started"), 0),
    ("(c) distinct threads seen in hold", "", ("start", "distinct_threads_during_hold"), 0),
    ("(d) one phase (enter+exit)", "us", ("edges", "phase_us"), 1),
    ("(d) one sample", "us", ("edges", "sample_us"), 1),
    ("(d) flush()", "us", ("edges", "flush_us"), 1),
]


def _get(results: dict[str, Any], path: tuple[str, str], unit: str) -> float | None:
    value = results.get(path[0], {}).get(path[1])
    if value is None:
        return None
    return value * 1e3 if unit == "ms" and path[1].endswith("_s") else float(value)


def table(report: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    tools = report["tools"]
    rows, lines = [], []
    head = f"{'figure':46} {'unit':>4} {'carbonmonitor':>14} {'CodeCarbon':>12} {'cm/cc':>8}"
    lines += [head, "-" * len(head)]
    for label, unit, path, digits in ROWS:
        cm = _get(tools.get("carbonmonitor", {}), path, unit)
        cc = _get(tools.get("codecarbon", {}), path, unit)
        ratio = cm / cc if cm is not None and cc not in (None, 0) else None
        rows.append({"figure": label, "unit": unit, "carbonmonitor": cm, "codecarbon": cc,
                     "ratio_cm_over_cc": ratio})

        def fmt(v: float | None, width: int, digits: int = digits) -> str:
            return f"{'n/a':>{width}}" if v is None else f"{v:>{width}.{digits}f}"

        rtxt = "n/a" if ratio is None else f"{ratio:.3f}"
        lines.append(f"{label:46} {unit:>4} {fmt(cm, 14)} {fmt(cc, 12)} {rtxt:>8}")
    return "\n".join(lines), rows


def write_json(report: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=str(venv_python(ROOT / ".venv")),
                        help="interpreter with carbonmonitor installed (default: .venv)")
    parser.add_argument("--codecarbon-python", help="interpreter with codecarbon installed "
                        "(default: create/reuse benchmarks/.venv-codecarbon)")
    parser.add_argument("--skip-codecarbon", action="store_true")
    parser.add_argument("--import-runs", type=int, default=21)
    parser.add_argument("--start-runs", type=int, default=7)
    parser.add_argument("--hold", type=float, default=5.0,
                        help="seconds the first start run keeps the tracker running")
    parser.add_argument("--phases", type=int, default=10_000)
    parser.add_argument("--cc-calls", type=int, default=200,
                        help="CodeCarbon calls per (d) figure (each takes milliseconds)")
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.import_runs, args.start_runs, args.hold = 5, 2, 1.0
        args.phases, args.cc_calls = 1000, 20
    if not Path(args.python).exists():
        sys.exit(f"{args.python} not found: run `python3 dev.py test` once to create .venv, "
                 "or pass --python")

    pythons = {"carbonmonitor": args.python}
    if not args.skip_codecarbon:
        pythons["codecarbon"] = args.codecarbon_python or str(ensure_codecarbon(args.python))
    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "command": " ".join(["python3 benchmarks/run.py", *argv]),
        "machine": machine(),
        "settings": {k: v for k, v in vars(args).items()
                     if k not in ("python", "codecarbon_python")},
        "codecarbon_tracker": 'OfflineEmissionsTracker(country_iso_code="DEU", '
                              'save_to_file=False, log_level="error")',
        "carbonmonitor_tracker": 'Tracker(country="DE", quiet=True) (auto backend); '
                                 '(d) with backend="estimate"',
        "tools": {},
    }
    with tempfile.TemporaryDirectory(prefix="cm-bench-") as cwd:  # no config files of ours
        for tool, python in pythons.items():
            report["tools"][tool] = measure(python, tool, args, cwd)
    text, rows = table(report)
    report["table"] = rows
    cm_import = report["tools"]["carbonmonitor"]["import"]["added_ms"]
    report["import_budget"] = {"budget_ms": IMPORT_BUDGET_MS, "measured_ms": cm_import,
                               "holds": cm_import < IMPORT_BUDGET_MS}
    report["elapsed_s"] = time.perf_counter() - started
    write_json(report)

    m = report["machine"]
    print(f"\n{m['cpu_model']}, {m['nproc']} CPUs, Python "
          f"{report['tools']['carbonmonitor']['python_version']}, {report['date']}")
    versions = ", ".join(f"{t} {r['version']}" for t, r in report["tools"].items())
    print(f"{versions}; medians; ratio < 1 means carbonmonitor costs less\n")
    print(text)
    print(f"\nbudget: import carbonmonitor adds {cm_import:.1f} ms "
          f"({'under' if cm_import < IMPORT_BUDGET_MS else 'OVER'} {IMPORT_BUDGET_MS:.0f} ms)")
    it = report["tools"]["carbonmonitor"]["importtime_first_use"]
    print("costliest modules imported by `import carbonmonitor; carbonmonitor.Tracker` "
          "(-X importtime, self ms / cumulative ms):")
    for e in it["top_self"][:8]:
        print(f"  {e['module']:40} {e['self_ms']:7.2f} {e['cumulative_ms']:8.2f}")
    print(f"\nwritten {RESULTS.relative_to(ROOT)} in {report['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
