"""``nvml``: NVIDIA GPUs through NVML (the ``pynvml`` module of the ``nvidia-ml-py`` package).

Per GPU, the best method the GPU offers:

- ``counter``: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta and
  newer). The counter updates every ~10-100 ms: the probe measures that period in the
  background, and every window (run or phase) gets its two edges' worth of uncertainty
  (``update period x highest power seen`` each), which dominates for short windows and
  vanishes for long ones. A window shorter than a few update periods is flagged.
- ``power-integration``: ``nvmlDeviceGetPowerUsage`` (mW) integrated with the trapezoid rule at
  each read, where the counter is not supported. On Ampere and newer the reading is a 1 s
  average, so short windows are smeared.

Which GPUs: those the job can see. ``gpus=`` names them (NVML indices or UUIDs, or ``all`` for
the whole machine); otherwise ``CUDA_VISIBLE_DEVICES`` decides (indices, ``GPU-`` UUIDs or unique
prefixes of them, ``MIG-`` instance UUIDs; as CUDA does, the list ends at the first entry that
names no device), and when it is unset every GPU is measured. MIG instances report no power of
their own: the whole GPU is measured and flagged as shared.

Failures never end the run: a GPU that is lost or whose counter restarts (driver reload) is
flagged and the others go on; NVML missing or failing to start is a reason and a fix in
``carbonmonitor devices``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from carbonmonitor.backends.base import Cumulative, Domain, ProbeContext
from carbonmonitor.errors import BackendUnavailable, ConfigError
from carbonmonitor.facts import Flag
from carbonmonitor.uncertainty import Bounds, Sensor

# NVML error codes (nvml.h) that mean "no usable NVIDIA GPU here", with the fix for each.
_INIT_FIXES = {
    9: "load the NVIDIA kernel driver (nvidia-smi must work); in a container, run it with "
       "--gpus all (Docker) or the NVIDIA container toolkit",  # DRIVER_NOT_LOADED
    12: "install the NVIDIA driver (it provides libnvidia-ml.so.1); on a machine without an "
        "NVIDIA GPU there is nothing to measure",  # LIBRARY_NOT_FOUND
    4: "run as a user allowed to open /dev/nvidia* (the video group on most distributions)",
}
# Until the probe has measured it: the slowest update period NVML's counter is known to have
# (DESIGN.md: every ~10-100 ms), so a window's interval is never too narrow.
DEFAULT_UPDATE_PERIOD_S = 0.1
UPDATE_PROBE_S = 0.5  # longest time spent measuring the counter's update period
SHORT_WINDOW_PERIODS = 10  # a window shorter than this many update periods is flagged
# docs/uncertainty.md. Calibration: NVML documents power readings as accurate to +-5 % of the
# current draw (nvmlDeviceGetPowerUsage, NVML API reference); the energy counter integrates the
# same sensor. Resolution: the counter counts whole mJ. Sampling duty: A100 and H100 sample
# their power sensor ~25 % of the time (Yang et al., "Part-time Power Measurements: nvidia-smi's
# Lack of Attention", SC'24); H200, H800, A800 and GH200 share those designs. Other GPUs are
# taken as sampling all the time: nothing published says otherwise.
COUNTER = Sensor("nvml-counter-v2", relative=0.05, resolution_j=0.001,
                 update_s=DEFAULT_UPDATE_PERIOD_S)
# Power readings: a 1 s average on Ampere and newer, one sample per 1/6-1 s on older GPUs (the
# ones without the counter): one second of smearing at each window edge.
POWER = Sensor("nvml-power-v2", relative=0.05, update_s=1.0, sampled=True)
PARTIAL_DUTY = 0.25
# NVML's utilisation covers the last 1/6-1 s: reading it more often (at phase edges) adds calls
# and no information.
UTILISATION_EVERY_S = 0.5
_PARTIAL_DUTY_MODELS = ("A100", "A800", "H100", "H800", "H200", "GH200")


def sensor_for(method: str, name: str) -> Sensor:
    """The sensor description of one GPU: its method's, with the duty its model is known for."""
    base = COUNTER if method == "counter" else POWER
    if any(model in name.upper() for model in _PARTIAL_DUTY_MODELS):
        return Sensor(base.rule, base.relative, base.absolute_w, base.resolution_j,
                      base.update_s, PARTIAL_DUTY, base.sampled)
    return base


@dataclass
class Gpu:
    """One measured GPU and its running state."""

    index: int
    uuid: str
    name: str
    handle: Any
    method: str  # "counter" or "power-integration"
    shared_by: str = ""  # why its energy is shared with other jobs (MIG), if it is
    last_mj: float = 0.0  # the counter at the last read
    last_w: float | None = None
    last_t: float | None = None
    bounds: Bounds | None = None  # energy since probe and its interval (set by _start)
    utilisation_pct: float | None = None  # at the last read; None: not reported
    utilisation_t: float = float("-inf")
    floor_w: float | None = None  # lowest power seen (at probe and per read interval)
    ceiling_w: float | None = None  # the enforced power limit
    update_period_s: float | None = None
    process_since_us: int = 0  # newest per-process utilisation sample seen (attribution)
    lost_at: float | None = None
    resets: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"gpu:{self.index}"


def _nvml() -> Any:
    try:
        import pynvml  # from nvidia-ml-py
    except ImportError:
        from carbonmonitor.backends import NEEDS_NVML

        raise BackendUnavailable(*NEEDS_NVML) from None
    return pynvml


def _code(err: Exception) -> int | None:
    value = getattr(err, "value", None)
    return value if isinstance(value, int) else None


class NvmlFactory:
    name = "nvml"
    devices: tuple[str, ...] = ("gpu",)

    def probe(self, context: ProbeContext) -> NvmlBackend:
        nvml = _nvml()
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            raise BackendUnavailable(f"NVML could not start ({err})", _INIT_FIXES.get(
                _code(err) or 0, "check that `nvidia-smi` works; reinstall the driver if not")
            ) from None
        try:
            gpus, flags = choose_gpus(nvml, context.options.values.get("gpus"),
                                      context.environ)
            for gpu in gpus:
                _start(nvml, gpu, context.clock.monotonic())
        except BaseException:
            nvml.nvmlShutdown()
            raise
        return NvmlBackend(nvml, gpus, flags, context.clock)


def choose_gpus(nvml: Any, wanted: Any, environ: Mapping[str, str]
                ) -> tuple[list[Gpu], list[Flag]]:
    """The GPUs to measure (see the module docstring) and what a reader must know about them."""
    count = nvml.nvmlDeviceGetCount()
    if count == 0:
        raise BackendUnavailable("NVML sees no NVIDIA GPU", "nothing to measure on this machine")
    by_index = {i: nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)}
    uuids = {i: str(nvml.nvmlDeviceGetUUID(h)) for i, h in by_index.items()}
    flags: list[Flag] = []
    if wanted:
        tokens = [str(t) for t in wanted]
        if [t.lower() for t in tokens] == ["all"]:
            tokens = [str(i) for i in range(count)]
        source = "gpus"
    else:
        visible = environ.get("CUDA_VISIBLE_DEVICES")
        if visible is None:
            tokens, source = [str(i) for i in range(count)], ""
        else:
            tokens = [t.strip() for t in visible.split(",") if t.strip()]
            source = "CUDA_VISIBLE_DEVICES"
            if not tokens or tokens[0].startswith("-"):
                raise BackendUnavailable(
                    f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from this job",
                    "nothing to measure for this job; set gpus=all to measure the machine's "
                    "GPUs anyway")
    chosen: dict[int, Gpu] = {}
    for position, token in enumerate(tokens):
        found = _find(nvml, token, by_index, uuids)
        if found is None:
            if source == "gpus":
                raise ConfigError(f"gpus: no GPU {token!r}; GPUs here: " + ", ".join(
                    f"{i} ({u})" for i, u in uuids.items()) + ", or 'all'")
            ignored = ",".join(tokens[position:])
            flags.append(Flag("gpu-visibility", f"CUDA_VISIBLE_DEVICES entry {token!r} names no "
                              f"GPU; as CUDA does, it and what follows ({ignored}) are ignored",
                              "fix CUDA_VISIBLE_DEVICES"))
            break
        index, mig = found
        gpu = chosen.get(index)
        if gpu is None:
            handle = by_index[index]
            gpu = chosen[index] = Gpu(index, uuids[index], str(nvml.nvmlDeviceGetName(handle)),
                                      handle, "counter")
        if mig or _mig_enabled(nvml, gpu.handle):
            gpu.shared_by = "MIG"
    models = {str(nvml.nvmlDeviceGetName(h)) for h in by_index.values()}
    if (source == "CUDA_VISIBLE_DEVICES" and any(t.isdigit() for t in tokens)
            and environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID" and len(models) > 1):
        flags.append(Flag("gpu-order", "CUDA_VISIBLE_DEVICES uses indices and this machine has "
                          "different GPU models: CUDA numbers them fastest first, NVML by PCI "
                          "bus, so the indices may name other GPUs",
                          "set CUDA_DEVICE_ORDER=PCI_BUS_ID, or use GPU UUIDs"))
    if not chosen:
        raise BackendUnavailable(f"{source or 'the job'} selects no GPU",
                                 "fix CUDA_VISIBLE_DEVICES, or set gpus=")
    for gpu in chosen.values():
        if gpu.shared_by == "MIG":
            flags.append(Flag("gpu-mig", f"GPU {gpu.index} ({gpu.name}) is in MIG mode: NVML "
                              "reports no power per MIG instance, so this is the whole GPU's "
                              "energy, shared by every instance on it",
                              "compare runs on the same MIG layout, or measure without MIG"))
    return list(chosen.values()), flags


def _find(nvml: Any, token: str, by_index: dict[int, Any], uuids: dict[int, str]
          ) -> tuple[int, bool] | None:
    """(NVML index, is a MIG instance) for an index, a GPU UUID (or unique prefix), or a MIG
    instance UUID; None when it names nothing."""
    if token.isdigit():
        return (int(token), False) if int(token) in by_index else None
    if token.startswith("MIG-"):
        try:
            handle = nvml.nvmlDeviceGetHandleByUUID(token)
            parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
            return int(nvml.nvmlDeviceGetIndex(parent)), True
        except nvml.NVMLError:
            return None
    matches = [i for i, u in uuids.items() if u.startswith(token)]
    if token.startswith("GPU-") and len(matches) == 1:
        return matches[0], False
    return None


def _mig_enabled(nvml: Any, handle: Any) -> bool:
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
        return bool(current)
    except nvml.NVMLError:  # not supported: no MIG on this GPU
        return False


def _start(nvml: Any, gpu: Gpu, now: float) -> None:
    """Choose the method: the energy counter if the GPU has one, else sampled power; note the
    power now (the floor of the sampling-duty term) and the power limit (its ceiling)."""
    try:
        gpu.floor_w = nvml.nvmlDeviceGetPowerUsage(gpu.handle) / 1000.0
    except nvml.NVMLError:
        gpu.floor_w = None
    try:
        gpu.ceiling_w = nvml.nvmlDeviceGetEnforcedPowerLimit(gpu.handle) / 1000.0
    except nvml.NVMLError:
        gpu.ceiling_w = None
    try:
        gpu.last_mj = float(nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
        gpu.last_t = now
    except nvml.NVMLError as err:
        if _code(err) != getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", 3):
            raise BackendUnavailable(f"GPU {gpu.index}: NVML energy query failed ({err})",
                                     "check `nvidia-smi -q -d POWER`") from None
        gpu.method = "power-integration"
        try:
            gpu.last_w = nvml.nvmlDeviceGetPowerUsage(gpu.handle) / 1000.0
        except nvml.NVMLError as err2:
            raise BackendUnavailable(f"GPU {gpu.index} ({gpu.name}) reports neither energy nor "
                                     f"power ({err2})", "nothing to measure on this GPU"
                                     ) from None
        gpu.last_t = now
    gpu.bounds = Bounds(sensor_for(gpu.method, gpu.name))


class NvmlBackend:
    """Reads the chosen GPUs; see the module docstring."""

    name = "nvml"
    poll_period_s: float | None = None  # the mJ counter does not wrap in practice (64 bit)

    def __init__(self, nvml: Any, gpus: list[Gpu], flags: list[Flag], clock: Any) -> None:
        self._nvml = nvml
        self.gpus = gpus
        self._flags = flags
        self._clock = clock
        self._lock = threading.Lock()
        self._opened_at = clock.monotonic()
        for gpu in gpus:  # per-process samples from before the run are not the run's
            gpu.process_since_us = int(clock.wall() * 1e6)
        self._prober: threading.Thread | None = None
        self._closing = threading.Event()
        counters = [g for g in gpus if g.method == "counter"]
        if counters:
            self._prober = threading.Thread(target=self._measure_update_periods,
                                            args=(counters,), name="carbonmonitor-nvml-probe",
                                            daemon=True)
            self._prober.start()

    def domains(self) -> tuple[Domain, ...]:
        out = []
        for g in self.gpus:
            how = ("NVML total-energy counter" if g.method == "counter"
                   else "NVML power readings integrated (trapezoid)")
            shared = "; MIG: whole GPU, shared" if g.shared_by else ""
            sensor = self._bounds(g).sensor
            duty = (f"; sensor sees ~{sensor.duty:.0%} of the time (bursty loads widen the "
                    "interval)" if sensor.duty < 1 else "")
            out.append(Domain(g.key, "gpu", g.method, sensor.rule,  # type: ignore[arg-type]
                              f"{g.name} {g.uuid}; {how}{shared}{duty}"))
        return tuple(out)

    def read(self, now_s: float) -> dict[str, Cumulative]:
        out = {}
        with self._lock:
            for gpu in self.gpus:
                if gpu.lost_at is None:
                    try:
                        self._read_one(gpu, now_s)
                    except self._nvml.NVMLError as err:
                        gpu.lost_at = now_s
                        gpu.errors.append(str(err))
                out[gpu.key] = self._bounds(gpu).cumulative()
        return out

    @staticmethod
    def _bounds(gpu: Gpu) -> Bounds:
        assert gpu.bounds is not None, "set when the GPU was started"
        return gpu.bounds

    def _read_one(self, gpu: Gpu, now: float) -> None:
        nvml = self._nvml
        # MIG mode reports no utilisation; phase edges between ticks reuse the last reading
        if not gpu.shared_by and now - gpu.utilisation_t >= UTILISATION_EVERY_S:
            gpu.utilisation_t = now
            try:
                gpu.utilisation_pct = float(nvml.nvmlDeviceGetUtilizationRates(gpu.handle).gpu)
            except nvml.NVMLError:
                gpu.utilisation_pct = None
        dt = 0.0 if gpu.last_t is None else max(now - gpu.last_t, 0.0)
        step_w = 0.0
        if gpu.method == "counter":
            mj = float(nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle))
            if mj < gpu.last_mj:  # the driver reloaded: what it counts now is since then
                gpu.resets += 1
                energy = mj / 1000.0
            else:
                energy = (mj - gpu.last_mj) / 1000.0
            gpu.last_mj = mj
        else:
            watts = nvml.nvmlDeviceGetPowerUsage(gpu.handle) / 1000.0
            last = watts if gpu.last_w is None else gpu.last_w
            energy, step_w = (watts + last) / 2.0 * dt, watts - last
            gpu.last_w = watts
        gpu.last_t = now
        if dt <= 0:
            return
        seen_w = energy / dt
        gpu.floor_w = seen_w if gpu.floor_w is None else min(gpu.floor_w, seen_w)
        self._bounds(gpu).add(energy, dt, step_w=step_w, utilisation_pct=(
            None if gpu.shared_by else gpu.utilisation_pct), floor_w=gpu.floor_w,
            ceiling_w=gpu.ceiling_w)

    def utilisation(self) -> dict[str, float]:
        """GPU utilisation (%, share of time a kernel ran) per GPU at the last read, as NVML
        reports it; none for MIG GPUs (not reported in MIG mode) or lost ones."""
        with self._lock:
            return {gpu.key: gpu.utilisation_pct for gpu in self.gpus
                    if gpu.lost_at is None and gpu.utilisation_pct is not None}

    def process_shares(self, pids: Collection[int]) -> dict[str, float | None]:
        """Each GPU's share used by ``pids`` since the last call, from NVML's per-process
        utilisation samples (None: no sample, or not supported, e.g. in MIG mode). Called at
        a low rate by the attribution (it takes a driver lock), never on a tick."""
        from carbonmonitor.attribution import gpu_process_samples, gpu_share, last_seen_us

        out: dict[str, float | None] = {}
        with self._lock:
            for gpu in self.gpus:
                if gpu.lost_at is not None:
                    continue
                try:
                    samples = gpu_process_samples(self._nvml, gpu.handle, gpu.process_since_us)
                except self._nvml.NVMLError:
                    out[gpu.key] = None
                    continue
                gpu.process_since_us = last_seen_us(samples, gpu.process_since_us)
                out[gpu.key] = gpu_share(samples, pids)
        return out

    def _measure_update_periods(self, gpus: list[Gpu]) -> None:
        """Poll each counter for up to UPDATE_PROBE_S and take the median time between changes.
        Runs in the background: the run's start never waits for it."""
        try:
            for gpu in gpus:
                changes: list[float] = []
                last = None
                deadline = time.monotonic() + UPDATE_PROBE_S
                while (time.monotonic() < deadline and len(changes) < 6
                       and not self._closing.is_set()):
                    with self._lock:
                        if gpu.lost_at is not None:
                            break
                        value = self._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
                    now = time.monotonic()
                    if last is not None and value != last:
                        changes.append(now)
                    last = value
                    time.sleep(0.002)
                if len(changes) >= 3:
                    import statistics

                    gaps = [b - a for a, b in zip(changes, changes[1:], strict=False)]
                    gpu.update_period_s = statistics.median(gaps)
        except Exception:  # a probe of the probe: never worth a failure
            return

    def edge_uncertainty_j(self, key: str) -> float:
        """Energy one window edge can miss: a quantum plus one update period (measured for the
        counter; the averaging window for power readings) at the highest power seen."""
        for gpu in self.gpus:
            if gpu.key == key:
                bounds = self._bounds(gpu)
                if gpu.method == "counter" and gpu.update_period_s:
                    bounds.update_s = gpu.update_period_s
                return bounds.edge_j()
        return 0.0

    def shortest_window_s(self, key: str) -> float:
        for gpu in self.gpus:
            if gpu.key == key and gpu.method == "counter":
                return SHORT_WINDOW_PERIODS * (gpu.update_period_s or DEFAULT_UPDATE_PERIOD_S)
        return 0.0

    @property
    def flags(self) -> list[Flag]:
        out = list(self._flags)
        for gpu in self.gpus:
            if gpu.lost_at is not None:
                out.append(Flag("gpu-lost", f"GPU {gpu.index} ({gpu.name}) stopped answering "
                                f"at {gpu.lost_at - self._opened_at:.1f} s ({gpu.errors[-1]}); "
                                "its energy covers the run only up to then",
                                "check `nvidia-smi` and the kernel log (Xid errors)"))
            if gpu.resets:
                out.append(Flag("gpu-counter-reset", f"GPU {gpu.index}: the energy counter "
                                f"restarted {gpu.resets} time(s) (driver reload); energy between "
                                "the last read and each restart is missing",
                                "keep the driver loaded during runs (nvidia-persistenced)"))
        return out

    def close(self) -> None:
        self._closing.set()  # a run shorter than the probe does not wait for it
        if self._prober is not None:
            self._prober.join(timeout=UPDATE_PROBE_S + 1)
        try:
            self._nvml.nvmlShutdown()
        except Exception:
            pass

