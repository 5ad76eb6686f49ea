"""``estimate``: a power model for machines where nothing can be measured (method ``model``).

CPU power is linear in utilisation, ``W = a + b*u``, so integrating it needs only the change in
CPU time between two reads: the estimate is exact for the model whatever the tick rate, and
utilisation never needs a blocking call. Decision table (first matching row wins; rationale in
docs/measurement.md):

=====================  =====================================================  ==================
row                    when                                                   rule
=====================  =====================================================  ==================
``ccf-vcpu``           cloud_provider set, CPU microarchitecture known        model-ccf-v1
``tdp-share``          CPU model found in the TDP table                       model-tdp-v1
``ccf-provider-mean``  cloud_provider set, microarchitecture unknown           model-ccf-mean-v1
``default``            model unknown or masked ("AMD EPYC", "Intel Xeon ...")  model-default-v1
=====================  =====================================================  ==================

Cloud rows come first: a VM cannot see what share of a physical package it owns, while the CCF
per-vCPU coefficients (from SPECpower runs of the host platforms) already describe one vCPU.
Memory: watts per GB *in use* (MemTotal - MemAvailable), never installed capacity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from carbonmonitor.backends.base import Cumulative, Domain, ProbeContext
from carbonmonitor.backends.host import CpuInfo, Host, default_host
from carbonmonitor.data import read_table
from carbonmonitor.errors import BackendUnavailable
from carbonmonitor.facts import Flag

TDP_TABLE = "hardware/cpu_tdp_codecarbon.csv"
CORES_TABLE = "hardware/cpu_tdp_greenalgorithms.csv"
MICROARCH_TABLE = "hardware/cpu_microarchitecture_ccf.csv"
CCF_TABLE = "hardware/ccf_cpu_power_coefficients.csv"
MEMORY_TABLE = "hardware/memory_power.csv"

_MARKS = re.compile(r"\((?:r|tm)\)|[®™]", re.I)
_NOISE = re.compile(r"@.*$|\b(?:intel|amd|cpu|processor|\d+-core|with radeon.*)(?=\s|$)", re.I)


def normalise_model(name: str) -> tuple[str, ...]:
    """Lower-case tokens of a CPU name without vendor, trademark and clock noise."""
    cleaned = _NOISE.sub(" ", _MARKS.sub(" ", name)).lower()
    return tuple(cleaned.replace(",", " ").split())


def _is_masked(tokens: tuple[str, ...]) -> bool:
    """A model string with no model number ('AMD EPYC', 'Intel Xeon Processor') names no part."""
    return not any(any(ch.isdigit() for ch in tok) for tok in tokens)


def match_model(model: str | None, names: tuple[str, ...]) -> str | None:
    """The table name that ``model`` refers to: exact token match, else the longest table name
    whose tokens (with a model number among them) all occur in ``model``."""
    if not model:
        return None
    tokens = normalise_model(model)
    if _is_masked(tokens):
        return None
    index = _token_index(names)
    if tokens in index:
        return index[tokens]
    present = set(tokens)
    best: tuple[str, ...] | None = None
    for cand in index:
        if cand and not _is_masked(cand) and set(cand) <= present:
            if best is None or len(cand) > len(best):
                best = cand
    return index[best] if best else None


@lru_cache(maxsize=8)
def _token_index(names: tuple[str, ...]) -> dict[tuple[str, ...], str]:
    return {normalise_model(n): n for n in names}


@dataclass(frozen=True)
class Linear:
    """Watts as ``a_w + b_w * utilisation`` (utilisation 0..1 of the CPUs this OS sees)."""

    a_w: float
    b_w: float

    def energy_j(self, dt_s: float, utilisation: float) -> float:
        return (self.a_w + self.b_w * utilisation) * dt_s


@dataclass(frozen=True)
class CpuModel:
    row: str
    rule: str
    point: Linear
    low: Linear
    high: Linear
    detail: str
    flags: tuple[Flag, ...] = ()


def _ccf_rows(provider: str | None) -> list[dict[str, str]]:
    return [r for r in read_table(CCF_TABLE) if provider is None or r["provider"] == provider]


PerVcpu = tuple[float, float]  # (watts at idle, watts at full load) for one vCPU


def _vcpu_model(row: str, rule: str, n: int, point: PerVcpu, low: PerVcpu, high: PerVcpu,
                detail: str, flags: tuple[Flag, ...] = ()) -> CpuModel:
    """A per-vCPU linear model scaled to ``n`` vCPUs, with its bounding models."""
    def scaled(w: PerVcpu) -> Linear:
        return Linear(n * w[0], n * max(w[1] - w[0], 0.0))

    return CpuModel(row, rule, scaled(point), scaled(low), scaled(high), detail, flags)


def _median(values: list[float]) -> float:
    """The median (the statistics module would add ~5 ms of imports to every start-up)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _spread(rows: list[dict[str, str]]) -> tuple[PerVcpu, PerVcpu, PerVcpu]:
    """Median point, and the widest bounds (smallest/largest idle and full-load watts)."""
    mins = [float(r["min_watts_per_vcpu"]) for r in rows]
    maxs = [float(r["max_watts_per_vcpu"]) for r in rows]
    return ((_median(mins), _median(maxs)), (min(mins), min(maxs)),
            (max(mins), max(maxs)))


def choose_cpu_model(info: CpuInfo, cloud_provider: str | None) -> CpuModel:
    """Apply the decision table (module docstring) to this machine's CPU."""
    n = info.logical_cpus
    if cloud_provider:
        micro_rows = read_table(MICROARCH_TABLE)
        name = match_model(info.model, tuple(r["cpu_model"] for r in micro_rows))
        arch = next((r["microarchitecture"] for r in micro_rows if r["cpu_model"] == name), None)
        rows = [r for r in _ccf_rows(cloud_provider) if r["microarchitecture"] == arch]
        if rows:
            lo, hi = float(rows[0]["min_watts_per_vcpu"]), float(rows[0]["max_watts_per_vcpu"])
            band = 0.3  # CCF coefficients average many SPECpower systems: -/+ 30%
            return _vcpu_model("ccf-vcpu", "model-ccf-v1", n, (lo, hi),
                               (lo * (1 - band), hi * (1 - band)),
                               (lo * (1 + band), hi * (1 + band)),
                               f"{info.model}: {arch} on {cloud_provider}, {lo:g}-{hi:g} W/vCPU "
                               f"(CCF) x {n} vCPUs")
    masked = not info.model or _is_masked(normalise_model(info.model))
    tdp_rows = () if masked else read_table(TDP_TABLE)  # a masked name matches no row
    name = None if masked else match_model(info.model, tuple(r["Name"] for r in tdp_rows))
    if name is not None:
        model = _tdp_model(info, name, next(float(r["TDP"]) for r in tdp_rows if r["Name"] == name))
        if normalise_model(name) != normalise_model(info.model or ""):
            model = replace(model, flags=(*model.flags, Flag(
                "cpu-model-approximate",
                f"CPU {info.model!r} matched the TDP table's {name!r} on shared tokens",
                "if that is a different part, use constant_power= or a measuring backend")))
        return model
    if cloud_provider:
        point, low, high = _spread(_ccf_rows(cloud_provider))
        return _vcpu_model("ccf-provider-mean", "model-ccf-mean-v1", n, point, low, high,
                           f"{info.model or 'unknown CPU'}: microarchitecture unknown; median of "
                           f"{cloud_provider} CCF coefficients x {n} vCPUs")
    point, low, high = _spread(_ccf_rows(None))
    flag = Flag("cpu-model-unknown",
                f"CPU model {info.model!r} is unknown or masked: default per-CPU power used, "
                "widest interval",
                "set cloud_provider= on a cloud VM, or measure with a counter backend (RAPL) or "
                "constant_power='machine=95' with a wall meter's reading")
    return _vcpu_model("default", "model-default-v1", n, point, low, high,
                       f"{info.model or 'unknown CPU'}: model unknown/masked; median "
                       f"{point[0]:g}-{point[1]:g} W per CPU (CCF, all providers) x {n}",
                       (flag,))


def _tdp_model(info: CpuInfo, name: str, tdp_w: float) -> CpuModel:
    cores_row = next((r for r in read_table(CORES_TABLE)
                      if match_model(name, (r["model"],)) is not None and r["n_cores"]), None)
    flags: tuple[Flag, ...] = ()
    if cores_row is not None:
        per_package = int(cores_row["n_cores"]) * (info.threads_per_core or 1)
    else:
        per_package = info.threads_per_package or info.logical_cpus
        if info.logical_cpus <= per_package and info.packages <= 1:
            flags = (Flag("cpu-share-assumed",
                          f"threads per {name} package unknown: the whole package is assumed",
                          "on a VM, set cloud_provider= for per-vCPU coefficients"),)
    share = info.logical_cpus / per_package
    watts = tdp_w * share
    # TDP x share x u under-reads at low load (idle draw) and may under-read turbo: the high
    # bound adds a 30% idle floor and 25% above TDP; the low bound halves the point.
    return CpuModel("tdp-share", "model-tdp-v1", Linear(0.0, watts), Linear(0.0, 0.5 * watts),
                    Linear(1.25 * 0.3 * watts, 1.25 * 0.7 * watts),
                    f"{name}: TDP {tdp_w:g} W x {info.logical_cpus}/{per_package} threads "
                    "x utilisation", flags)


@dataclass(frozen=True)
class MemoryModel:
    w_per_gb: float
    low_w_per_gb: float
    high_w_per_gb: float
    source: str


def memory_model() -> MemoryModel:
    row = read_table(MEMORY_TABLE)[0]
    return MemoryModel(float(row["watts_per_gb"]), float(row["low_watts_per_gb"]),
                       float(row["high_watts_per_gb"]), row["source"])


# Memory in use is read at most this often: it changes slowly, and reading /proc/meminfo costs
# as much as reading the CPU times, which are needed at every tick and phase edge.
MEMORY_REFRESH_S = 5.0


class EstimateBackend:
    """CPU and memory energy from the models above, integrated between reads."""

    name = "estimate"
    poll_period_s: float | None = None

    def __init__(self, host: Host, cpu: CpuModel, memory: MemoryModel) -> None:
        self.host = host
        self.cpu = cpu
        self.memory = memory
        self.flags = cpu.flags
        self._last: tuple[float, float, int] | None = None
        self._sums = {"cpu": [0.0, 0.0, 0.0], "memory": [0.0, 0.0, 0.0]}
        self._mem_at: float | None = None
        self._mem_used = 0
        self._last_u: float | None = None

    def utilisation(self) -> dict[str, float]:
        """CPU utilisation (%) over the last interval between reads: the model's input."""
        return {} if self._last_u is None else {"cpu": 100.0 * self._last_u}

    def domains(self) -> tuple[Domain, ...]:
        return (
            Domain("cpu", "cpu", "model", self.cpu.rule, self.cpu.detail),
            Domain("memory", "memory", "model", "model-memory-v1",
                   f"{self.memory.w_per_gb:g} W per GB in use ("
                   f"{self.memory.source.split(' (')[0]})"),
        )

    def read(self, now_s: float) -> dict[str, Cumulative]:
        times = self.host.cpu_times()
        if self._mem_at is None or not 0 <= now_s - self._mem_at < MEMORY_REFRESH_S:
            self._mem_used, self._mem_at = self.host.memory_used_bytes(), now_s
        used = self._mem_used
        if self._last is not None:
            t0, busy0, used0 = self._last
            dt = now_s - t0
            if dt > 0:
                u = min(max((times.busy_s - busy0) / (times.n_cpus * dt), 0.0), 1.0)
                self._last_u = u
                cpu = self._sums["cpu"]
                cpu[0] += self.cpu.point.energy_j(dt, u)
                cpu[1] += self.cpu.low.energy_j(dt, u)
                cpu[2] += self.cpu.high.energy_j(dt, u)
                gb_s = (used0 + used) / 2 / 1e9 * dt  # trapezoid of GB in use over the window
                mem = self._sums["memory"]
                mem[0] += gb_s * self.memory.w_per_gb
                mem[1] += gb_s * self.memory.low_w_per_gb
                mem[2] += gb_s * self.memory.high_w_per_gb
        if self._last is None or now_s > self._last[0]:
            self._last = (now_s, times.busy_s, used)
        return {key: Cumulative(*vals) for key, vals in self._sums.items()}

    def close(self) -> None:
        close = getattr(self.host, "close", None)
        if close is not None:
            close()


class EstimateFactory:
    name = "estimate"
    devices: tuple[str, ...] = ("cpu", "memory")

    def probe(self, context: ProbeContext, host: Host | None = None) -> EstimateBackend:
        options = context.options
        host = host or default_host(options.procfs_root)
        try:
            host.cpu_times()
            host.memory_used_bytes()
            info = host.cpu_info()
        except (OSError, ValueError, KeyError) as err:
            raise BackendUnavailable(
                f"cannot read CPU times and memory use ({err})",
                f"make {options.procfs_root} readable (containers: mount the host's /proc and "
                "set procfs_root=)") from err
        return EstimateBackend(host, choose_cpu_model(info, options.cloud_provider),
                               memory_model())
