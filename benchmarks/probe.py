"""One measurement in a fresh interpreter; run by ``benchmarks/run.py``, not by hand.

    python probe.py {carbonmonitor|codecarbon} start [--settle S --hold S] [--watch-threads S]
    python probe.py {carbonmonitor|codecarbon} edges [--count N]
    python probe.py {none|carbonmonitor|codecarbon} train [--steps N]
    python probe.py {none|carbonmonitor|codecarbon} train-blocks [--pairs P --steps N]

Standard library only (besides the tool measured, and torch for ``train``), so the figures are
the tool's own. Prints one line ``@@RESULT {json}`` on stdout; the tools' own log lines may come
before it.

Both tools persist their results the normal way: carbonmonitor to the SQLite file named by
``CARBONMONITOR_DB`` (set by run.py), CodeCarbon to ``emissions.csv`` in ``--output-dir``.
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

try:  # process CPU time split into user/system; Windows has no ``resource``
    import resource
except ImportError:  # pragma: no cover - not on the reference machine
    resource = None  # type: ignore[assignment]

_STATUS = "/proc/self/status"
if not os.path.exists(_STATUS):  # macOS, Windows: psutil, imported before any baseline is taken
    import psutil

    _PROC: Any = psutil.Process()
else:
    _PROC = None

INTERVAL_S = 1.0  # both tools sample every second (CodeCarbon's own default is 15 s)


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


def process_cpu_s() -> tuple[float, float]:
    """(user, system) CPU seconds of the whole process, every thread included."""
    if resource is None:
        return time.process_time(), 0.0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


# -- the two tools, behind the same three steps: import, construct, start ------------------


def cm_import() -> Any:
    import carbonmonitor

    return carbonmonitor.track  # resolving the lazy name is part of what a user pays


def cm_construct(track: Any, output_dir: str, backend: str | None = None) -> Any:
    # Default options: the store is CARBONMONITOR_DB from the environment, interval 1 s.
    options = {"backend": backend} if backend else {}
    return track(country="DE", quiet=True, **options)


def cc_import() -> Any:
    from codecarbon import OfflineEmissionsTracker  # type: ignore[import-not-found]

    return OfflineEmissionsTracker


def cc_construct(tracker_cls: Any, output_dir: str, backend: str | None = None) -> Any:
    # The offline tracker: the default EmissionsTracker looks up the location on the network.
    return tracker_cls(country_iso_code="DEU", measure_power_secs=INTERVAL_S,
                       save_to_file=True, output_dir=output_dir, log_level="error")


TOOLS: dict[str, tuple[Callable[[], Any], Callable[..., Any]]] = {
    "carbonmonitor": (cm_import, cm_construct),
    "codecarbon": (cc_import, cc_construct),
}


def persisted(tool: str, tracker: Any, output_dir: str) -> str | None:
    """Where the run was written, or None: proves both tools really paid for persisting."""
    if tool == "carbonmonitor":
        store = getattr(tracker, "store", None)  # absent before the run store existed
        path = str(store.path) if store is not None else None
    else:
        path = os.path.join(output_dir, "emissions.csv")
    return path if path and os.path.exists(path) else None


def probe_start(tool: str, output_dir: str, settle_s: float, hold_s: float,
                watch_s: float) -> dict[str, Any]:
    """Import, construct, start (first sample), hold while only the tracker works, stop."""
    do_import, construct = TOOLS[tool]
    rss0, os_threads0 = rss_and_threads()
    t0 = time.perf_counter()
    tracker_cls = do_import()
    t1 = time.perf_counter()
    rss1, _ = rss_and_threads()
    tracker = construct(tracker_cls, output_dir)
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
    }
    if tool == "carbonmonitor":
        out["backends"] = [b.name for b in tracker.backends if b.used]
    if hold_s > 0:
        out.update(_hold(settle_s, hold_s))
        out["rss_after_hold_mib"] = rss_and_threads()[0] - rss0
    if watch_s > 0:
        out.update(_watch_threads(watch_s, os_threads0))
    t4 = time.perf_counter()
    tracker.stop()
    out["stop_s"] = time.perf_counter() - t4
    out["persisted_to"] = persisted(tool, tracker, output_dir)
    return out


def _hold(settle_s: float, hold_s: float) -> dict[str, Any]:
    """CPU the process spends while the main thread only sleeps: the sampler's cost.

    The window opens ``settle_s`` after start() returned, so one-off work right after the
    start (carbonmonitor's first store write, thread start-up) is not scaled up to an hour as
    if it recurred; it is recorded as ``settle_cpu_s``. One long sleep per stretch, so the
    main thread itself adds nothing; the rusage totals come from the scheduler's per-thread
    runtime, so they are exact even for bursts far shorter than a clock tick.
    """
    settle0 = sum(process_cpu_s())
    time.sleep(settle_s)
    user0, sys0 = process_cpu_s()
    w0 = time.perf_counter()
    time.sleep(hold_s)
    wall = time.perf_counter() - w0
    user1, sys1 = process_cpu_s()
    cpu = (user1 - user0) + (sys1 - sys0)
    return {"settle_s": settle_s, "settle_cpu_s": user0 + sys0 - settle0,
            "hold_s": wall, "hold_cpu_s": cpu, "hold_user_s": user1 - user0,
            "hold_sys_s": sys1 - sys0,
            "cpu_s_per_hour": cpu / wall * 3600, "cpu_pct_of_core": cpu / wall * 100}


def _watch_threads(watch_s: float, os_threads0: int) -> dict[str, Any]:
    """Threads that come and go (timer threads) only show when watched for a while.

    Idents are reused once a thread ends, so a thread is its (name, native id) pair. Kept
    apart from the CPU hold because this polling costs CPU itself."""
    seen: set[tuple[str, int | None]] = set()
    max_os = 0
    end = time.perf_counter() + watch_s
    while time.perf_counter() < end:
        seen |= {(t.name, t.native_id) for t in threading.enumerate()}
        max_os = max(max_os, rss_and_threads()[1])
        time.sleep(0.02)
    main = threading.main_thread()
    seen.discard((main.name, main.native_id))
    return {"watch_s": watch_s, "distinct_threads_seen": len(seen),
            "max_os_threads_started": max_os - os_threads0}


def _per_call_us(func: Callable[[], Any], count: int) -> float:
    for _ in range(min(50, count)):  # warm caches and lazy paths
        func()
    started = time.perf_counter()
    for _ in range(count):
        func()
    return (time.perf_counter() - started) / count * 1e6


def probe_edges(tool: str, output_dir: str, count: int) -> dict[str, Any]:
    """Cost of one phase (enter + exit) and of one sample, in microseconds."""
    do_import, construct = TOOLS[tool]
    if tool == "carbonmonitor":
        tracker = construct(do_import(), output_dir, backend="estimate").start()

        def one_phase() -> None:
            with tracker.phase("bench"):
                pass

        out = {"count": count,
               "phase_us": _per_call_us(one_phase, count),
               "sample_us": _per_call_us(tracker.tick, count)}
        tracker.stop()
        return out
    tracker = construct(do_import(), output_dir)
    tracker.start()

    def one_task() -> None:
        tracker.start_task("bench")
        tracker.stop_task()

    out = {"count": count,
           # start_task/stop_task is CodeCarbon's nearest thing to a phase
           "phase_us": _per_call_us(one_task, count),
           # the periodic job its scheduler runs for each sample (private API)
           "sample_us": _per_call_us(tracker._measure_power_and_energy, count),
           # measures if the last sample is stale, then writes emissions.csv (save_to_file)
           "flush_us": _per_call_us(tracker.flush, count)}
    tracker.stop()
    return out


def training_step() -> Callable[[int], None]:
    """One optimiser step of a small MLP on random data (set up here, outside any timing)."""
    import torch

    torch.set_num_threads(2)  # both cores, as a training job would: the sampler must compete
    torch.manual_seed(0)
    batch, features, classes = 128, 256, 10
    x = torch.randn(64 * batch, features)
    y = torch.randint(0, classes, (64 * batch,))
    model = torch.nn.Sequential(
        torch.nn.Linear(features, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, classes))
    params = list(model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    batches = len(x) // batch

    def step(i: int) -> None:
        lo = (i % batches) * batch
        for p in params:
            p.grad = None
        loss_fn(model(x[lo:lo + batch]), y[lo:lo + batch]).backward()
        # Plain SGD by hand: constructing torch.optim.SGD costs ~1.2 s of imports per process
        # here, which would only lengthen the benchmark.
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-0.01)

    for i in range(20):  # warm-up: allocator, kernels' first-call paths
        step(i)
    return step


def probe_train(tool: str, output_dir: str, steps: int) -> dict[str, Any]:
    """Wall time of ``steps`` optimiser steps, tracker running.

    torch, the model and the data are set up before the tracker starts and the timed loop
    covers only training, so the figure is the tracker's effect on throughput and nothing else.
    """
    import torch

    step = training_step()
    tracker = None
    if tool != "none":
        do_import, construct = TOOLS[tool]
        tracker = construct(do_import(), output_dir)
        tracker.start()
    started = time.perf_counter()
    for i in range(steps):
        step(i)
    loop_s = time.perf_counter() - started
    out: dict[str, Any] = {"steps": steps, "loop_s": loop_s, "steps_per_s": steps / loop_s,
                           "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    if tracker is not None:
        tracker.stop()
        out["persisted_to"] = persisted(tool, tracker, output_dir)
    return out


def probe_train_blocks(tool: str, output_dir: str, pairs: int, steps: int) -> dict[str, Any]:
    """``pairs`` pairs of timed blocks of ``steps`` steps in one process, one block of each
    pair untracked and the other tracked, the order alternating pair by pair (UT, TU, ...).

    Comparing blocks seconds apart in the same process cancels what differs between processes
    and what drifts over minutes on a shared machine; alternating the order cancels a trend
    within a pair. Each tracked block gets a fresh tracker, started (and given 20 untimed steps
    for its first store write) before the clock starts and stopped after it stops. With
    ``none`` both blocks are untracked: the spread of that control is the method's resolution.
    """
    step = training_step()
    tracker_cls = None if tool == "none" else TOOLS[tool][0]()
    untracked: list[float] = []
    tracked: list[float] = []
    i = 0

    def block(with_tracker: bool) -> float:
        nonlocal i
        tracker = None
        if with_tracker and tracker_cls is not None:
            tracker = TOOLS[tool][1](tracker_cls, output_dir)
            tracker.start()
        for _ in range(20):
            step(i)
            i += 1
        started = time.perf_counter()
        for _ in range(steps):
            step(i)
            i += 1
        elapsed = time.perf_counter() - started
        if tracker is not None:
            tracker.stop()
        return elapsed

    block(False)  # untimed: the first block of a process runs slower (caches, clocks)
    for n in range(pairs):
        if n % 2 == 0:
            untracked.append(block(False))
            tracked.append(block(True))
        else:
            tracked.append(block(True))
            untracked.append(block(False))
    return {"steps": steps, "pairs": pairs, "untracked_s": untracked, "tracked_s": tracked}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("tool", choices=[*sorted(TOOLS), "none"])
    parser.add_argument("mode", choices=["start", "edges", "train", "train-blocks"])
    parser.add_argument("--output-dir", default=".", help="CodeCarbon's output_dir")
    parser.add_argument("--settle", type=float, default=0.0)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--watch-threads", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=12)
    args = parser.parse_args(argv)
    if args.tool == "none" and not args.mode.startswith("train"):
        parser.error("'none' (no tracker) is only for train")
    if args.mode == "start":
        result = probe_start(args.tool, args.output_dir, args.settle, args.hold,
                             args.watch_threads)
    elif args.mode == "edges":
        result = probe_edges(args.tool, args.output_dir, args.count)
    elif args.mode == "train":
        result = probe_train(args.tool, args.output_dir, args.steps)
    else:
        result = probe_train_blocks(args.tool, args.output_dir, args.pairs, args.steps)
    sys.stdout.write("@@RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
