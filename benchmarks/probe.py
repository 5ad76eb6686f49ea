"""One measurement in a fresh interpreter; run by ``benchmarks/run.py``, not by hand.

    python probe.py {carbonmonitor|codecarbon} start [--hold S]
    python probe.py {carbonmonitor|codecarbon} edges [--count N]

Standard library only (besides the tool measured), so the figures are the tool's own. Prints one
line ``@@RESULT {json}`` on stdout; the tools' own log lines may come before it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

_STATUS = "/proc/self/status"
if not os.path.exists(_STATUS):  # macOS, Windows: psutil, imported before any baseline is taken
    import psutil

    _PROC: Any = psutil.Process()
else:
    _PROC = None


def rss_and_threads() -> tuple[float, int]:
    """Resident set size (MiB) and OS threads of this process, from /proc (no import needed)."""
    if _PROC is not None:
        return _PROC.memory_info().rss / 2**20, _PROC.num_threads()
    rss_kib, threads = 0, 0
    with open(_STATUS, encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss_kib = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss_kib / 1024, threads


# -- the two tools, behind the same three steps: import, construct, start ------------------


def cm_import() -> Any:
    import carbonmonitor

    return carbonmonitor.Tracker  # resolving the lazy name is part of what a user pays


def cm_construct(tracker_cls: Any, backend: str | None = None) -> Any:
    options = {"backend": backend} if backend else {}
    return tracker_cls(country="DE", quiet=True, **options)


def cc_import() -> Any:
    from codecarbon import OfflineEmissionsTracker  # type: ignore[import-not-found]

    return OfflineEmissionsTracker


def cc_construct(tracker_cls: Any, backend: str | None = None) -> Any:
    return tracker_cls(country_iso_code="DEU", save_to_file=False, log_level="error")


TOOLS: dict[str, tuple[Callable[[], Any], Callable[..., Any]]] = {
    "carbonmonitor": (cm_import, cm_construct),
    "codecarbon": (cc_import, cc_construct),
}


def probe_start(tool: str, hold_s: float) -> dict[str, Any]:
    """Import, construct, start (first measurement), optionally hold, stop; time and memory."""
    do_import, construct = TOOLS[tool]
    rss0, os_threads0 = rss_and_threads()
    py_threads0 = threading.active_count()
    t0 = time.perf_counter()
    tracker_cls = do_import()
    t1 = time.perf_counter()
    rss1, _ = rss_and_threads()
    tracker = construct(tracker_cls)
    t2 = time.perf_counter()
    tracker.start()
    t3 = time.perf_counter()
    rss2, os_threads2 = rss_and_threads()
    out: dict[str, Any] = {
        "import_s": t1 - t0,
        "construct_s": t2 - t1,
        "start_s": t3 - t2,
        "construct_to_started_s": t3 - t1,
        "import_to_started_s": t3 - t0,
        "rss_base_mib": rss0,
        "rss_import_mib": rss1 - rss0,
        "rss_started_mib": rss2 - rss0,
        "os_threads_started": os_threads2 - os_threads0,
        "py_threads_started": threading.active_count() - py_threads0,
    }
    if tool == "carbonmonitor":
        out["backends"] = [b.name for b in tracker.backends if b.used]
    if hold_s > 0:
        # Threads that come and go (timer threads) only show when watched for a while.
        # Idents are reused once a thread ends, so a thread is its (name, native id) pair.
        seen: set[tuple[str, int | None]] = set()
        max_os = os_threads2
        end = time.perf_counter() + hold_s
        while time.perf_counter() < end:
            seen |= {(t.name, t.native_id) for t in threading.enumerate()}
            max_os = max(max_os, rss_and_threads()[1])
            time.sleep(0.02)
        main = threading.main_thread()
        seen.discard((main.name, main.native_id))
        out["hold_s"] = hold_s
        out["distinct_threads_during_hold"] = len(seen)
        out["max_os_threads_during_hold"] = max_os - os_threads0
        out["rss_after_hold_mib"] = rss_and_threads()[0] - rss0
    t4 = time.perf_counter()
    tracker.stop()
    out["stop_s"] = time.perf_counter() - t4
    return out


def _per_call_us(func: Callable[[], Any], count: int) -> float:
    for _ in range(min(50, count)):  # warm caches and lazy paths
        func()
    started = time.perf_counter()
    for _ in range(count):
        func()
    return (time.perf_counter() - started) / count * 1e6


def probe_edges(tool: str, count: int) -> dict[str, Any]:
    """Cost of one phase (enter + exit) and of one sample, in microseconds."""
    do_import, construct = TOOLS[tool]
    if tool == "carbonmonitor":
        tracker = construct(do_import(), backend="estimate").start()

        def one_phase() -> None:
            with tracker.phase("bench"):
                pass

        out = {"count": count,
               "phase_us": _per_call_us(one_phase, count),
               "sample_us": _per_call_us(tracker.tick, count)}
        tracker.stop()
        return out
    tracker = construct(do_import())
    tracker.start()

    def one_task() -> None:
        tracker.start_task("bench")
        tracker.stop_task()

    out = {"count": count,
           # start_task/stop_task is CodeCarbon's nearest thing to a phase
           "phase_us": _per_call_us(one_task, count),
           # the periodic job its scheduler runs for each sample (private API)
           "sample_us": _per_call_us(tracker._measure_power_and_energy, count),
           "flush_us": _per_call_us(tracker.flush, count)}
    tracker.stop()
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("tool", choices=sorted(TOOLS))
    parser.add_argument("mode", choices=["start", "edges"])
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.mode == "start":
        result = probe_start(args.tool, args.hold)
    else:
        result = probe_edges(args.tool, args.count)
    sys.stdout.write("@@RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
