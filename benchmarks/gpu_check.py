#!/usr/bin/env python3
"""Check carbonmonitor's NVIDIA path on a real GPU: one command, under 3 minutes.

    .venv/bin/python benchmarks/gpu_check.py [--out DIR] [--load-s 20] [--gpu 0]

Needs nvidia-ml-py (``pip install "carbonmonitor[nvidia]"``) and, for the load, a CUDA build
of torch. Steps, each with its own time limit, results written to ``DIR/gpu_check.json`` after
every step (so a step that hangs still leaves the others' results):

1. ``inventory``: driver, GPU name and UUID, whether the energy counter is supported.
2. ``idle``: mean power over 5 s with nothing running (sampled every 50 ms).
3. ``update_period``: the energy counter polled every ~1 ms for 1.5 s; the median time between
   changes.
4. ``load``: a known load (fp32 matmuls on the GPU for ``--load-s`` seconds) measured three ways
   at once: the energy counter read before and after, power sampled every 50 ms and integrated
   (trapezoid), and a carbonmonitor run (``backend="nvml"``, 1 s interval).
5. ``sampler_cpu``: the process CPU time a carbonmonitor run with the nvml backend uses while the
   main thread sleeps for 20 s, as a share of one core.

Exit status: 0 when counter and integrated energy agree within 5 %, 1 when they differ by more,
2 when there is no usable NVIDIA GPU. A GPU without the counter is a result
("counter unsupported"), not a failure. It never changes power limits, clocks or MIG settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STEP_TIMEOUT_S = {"inventory": 20, "idle": 20, "update_period": 20, "load": 90,
                  "sampler_cpu": 40}
TOLERANCE = 0.05


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Checker:
    def __init__(self, out: Path, gpu: int, load_s: float) -> None:
        self.out = out
        self.gpu = gpu
        self.load_s = load_s
        self.results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                                        "host": platform.node(), "steps": {}}
        self.nvml: Any = None
        self.handle: Any = None

    def save(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        tmp = self.out / "gpu_check.json.tmp"
        tmp.write_text(json.dumps(self.results, indent=2))
        tmp.replace(self.out / "gpu_check.json")

    def step(self, name: str, func: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one step in a thread with its own time limit; record what it returned or why
        it did not finish."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = func()
            except Exception as err:  # a step's failure is a result
                box["result"] = {"error": f"{type(err).__name__}: {err}"}

        started = time.monotonic()
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(STEP_TIMEOUT_S[name])
        result = box.get("result", {"error": f"timed out after {STEP_TIMEOUT_S[name]} s"})
        result["wall_s"] = round(time.monotonic() - started, 3)
        self.results["steps"][name] = result
        self.save()
        print(f"[gpu-check] {name}: {json.dumps(result)}", flush=True)
        return result

    # -- steps -----------------------------------------------------------------------------

    def inventory(self) -> dict[str, Any]:
        import pynvml

        pynvml.nvmlInit()
        self.nvml = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(self.gpu)
        out: dict[str, Any] = {
            "driver": str(pynvml.nvmlSystemGetDriverVersion()),
            "gpu_count": pynvml.nvmlDeviceGetCount(),
            "name": str(pynvml.nvmlDeviceGetName(self.handle)),
            "uuid": str(pynvml.nvmlDeviceGetUUID(self.handle)),
        }
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            out["counter"] = "supported"
        except pynvml.NVMLError as err:
            out["counter"] = f"counter unsupported ({err})"
        try:
            out["mig_mode"] = list(pynvml.nvmlDeviceGetMigMode(self.handle))
        except pynvml.NVMLError:
            out["mig_mode"] = "not supported"
        try:
            import torch

            out["torch"] = torch.__version__
            out["cuda_available"] = bool(torch.cuda.is_available())
        except ImportError:
            out["torch"] = None
        return out

    def power_w(self) -> float:
        return float(self.nvml.nvmlDeviceGetPowerUsage(self.handle)) / 1000.0

    def counter_j(self) -> float:
        return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)) / 1000.0

    def idle(self) -> dict[str, Any]:
        samples = []
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            samples.append(self.power_w())
            time.sleep(0.05)
        return {"idle_power_w": round(statistics.mean(samples), 2),
                "min_w": min(samples), "max_w": max(samples), "samples": len(samples)}

    def update_period(self) -> dict[str, Any]:
        changes, last = [], None
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            value = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            now = time.monotonic()
            if last is not None and value != last:
                changes.append(now)
            last = value
            time.sleep(0.001)
        gaps = [b - a for a, b in zip(changes, changes[1:], strict=False)]
        if not gaps:
            return {"update_period_s": None, "changes": len(changes)}
        return {"update_period_s": round(statistics.median(gaps), 4),
                "min_s": round(min(gaps), 4), "max_s": round(max(gaps), 4),
                "changes": len(changes)}

    def load(self, counter: bool) -> dict[str, Any]:
        import torch

        import carbonmonitor

        device = torch.device(f"cuda:{self.gpu}")
        a = torch.randn(8192, 8192, device=device)
        b = torch.randn(8192, 8192, device=device)
        torch.cuda.synchronize(device)
        stop = threading.Event()
        trace: list[tuple[float, float]] = []

        def sample() -> None:
            while not stop.is_set():
                trace.append((time.monotonic(), self.power_w()))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(self.gpu)}
        tracker = carbonmonitor.Tracker(backend="nvml", quiet=True, db="off", environ=env)
        e0 = self.counter_j() if counter else None
        sampler.start()
        tracker.start()
        steps = 0
        end = time.monotonic() + self.load_s
        while time.monotonic() < end:
            a @ b
            steps += 1
            if steps % 20 == 0:
                torch.cuda.synchronize(device)
        torch.cuda.synchronize(device)
        result = tracker.stop()
        e1 = self.counter_j() if counter else None
        stop.set()
        sampler.join()
        integrated = sum((t2 - t1) * (p1 + p2) / 2
                         for (t1, p1), (t2, p2) in zip(trace, trace[1:], strict=False))
        reported = sum(f.energy_j for f in result.energy if f.device == "gpu")
        out: dict[str, Any] = {
            "matmuls": steps, "seconds": round(result.duration_s, 3),
            "integrated_power_j": round(integrated, 1),
            "carbonmonitor_j": round(reported, 1),
            "carbonmonitor_method": sorted({f.method for f in result.energy
                                            if f.device == "gpu"}),
            "carbonmonitor_interval_j": [round(result.energy_uncertainty.low, 1),
                                         round(result.energy_uncertainty.high, 1)],
            "flags": [f.code for f in result.flags],
        }
        if e0 is not None and e1 is not None:
            # the sampler window is a little wider than the tracker's: compare like with like
            out["counter_j"] = round(e1 - e0, 1)
            out["counter_vs_integrated"] = round((e1 - e0) / integrated - 1, 4)
            out["carbonmonitor_vs_counter"] = round(reported / (e1 - e0) - 1, 4)
        else:
            out["counter_j"] = "counter unsupported"
        return out

    def sampler_cpu(self) -> dict[str, Any]:
        import carbonmonitor

        tracker = carbonmonitor.Tracker(backend="nvml", quiet=True, db="off")
        tracker.start()
        time.sleep(1.5)  # let start-up work finish
        c0, w0 = cpu_s(), time.monotonic()
        time.sleep(20)
        c1, w1 = cpu_s(), time.monotonic()
        tracker.stop()
        share = (c1 - c0) / (w1 - w0)
        return {"cpu_s_per_hour": round(share * 3600, 3),
                "percent_of_one_core": round(100 * share, 4)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu-check-results"))
    parser.add_argument("--gpu", type=int, default=0)
    parser.add_argument("--load-s", type=float, default=20.0)
    args = parser.parse_args(argv)
    checker = Checker(Path(args.out), args.gpu, args.load_s)
    inventory = checker.step("inventory", checker.inventory)
    if "error" in inventory:
        print("[gpu-check] no usable NVIDIA GPU: " + inventory["error"], file=sys.stderr)
        return 2
    counter = inventory.get("counter") == "supported"
    checker.step("idle", checker.idle)
    if counter:
        checker.step("update_period", checker.update_period)
    load = checker.step("load", lambda: checker.load(counter))
    checker.step("sampler_cpu", checker.sampler_cpu)
    gap = load.get("counter_vs_integrated")
    verdict = ("counter unsupported" if not counter else "no load result" if gap is None
               else "ok" if abs(gap) <= TOLERANCE else "counter and integrated power differ")
    checker.results["verdict"] = verdict
    checker.save()
    print(f"[gpu-check] verdict: {verdict}", flush=True)
    return 1 if verdict in ("counter and integrated power differ", "no load result") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
