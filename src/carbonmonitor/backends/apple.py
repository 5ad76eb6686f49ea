"""``apple``: Apple Silicon energy without sudo, from IOReport's "Energy Model" channels.

macOS keeps, per SoC block, an energy counter since boot in the private IOReport library's
"Energy Model" group; any user may subscribe to it (``powermetrics`` reads the same channels
but insists on root). The ``zeus-apple-silicon`` package (``zeus_apple_silicon``, Apache-2.0,
by the Zeus team) does the subscription and parsing; this backend calls its
``AppleEnergyMonitor.get_cumulative_energy()``, one IOReport sample per read, each field the
whole mJ since boot:

- ``cpu``: ``cpu_total_mj``, the "CPU Energy" channel (every CPU cluster);
- ``gpu:0``: ``gpu_mj`` + ``gpu_sram_mj`` ("GPU Energy", "GPU SRAM": separate blocks, both part
  of the SoC total, as macmon adds them);
- ``memory``: ``dram_mj`` ("DRAM"), where the chip reports it; where it does not, memory is
  left to the next backend (the estimate);
- ``ane``: ``ane_mj``, the Neural Engine, a device kind of its own (neither CPU nor GPU).

The counters are cumulative, so nothing is lost between reads: a read that fails, or a
channel missing from one sample, is made up by the next good read. Only a counter that goes
backwards (a restart) loses its interval, which is dropped and flagged. The figures are the
SoC's own power estimates, not a shunt measurement; docs/apple.md explains the bounds.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from carbonmonitor.backends import not_macos
from carbonmonitor.backends.base import Cumulative, Domain, ProbeContext
from carbonmonitor.errors import BackendUnavailable
from carbonmonitor.facts import Flag
from carbonmonitor.uncertainty import Bounds, Sensor

LIBRARY = "zeus_apple_silicon"
FIX_INSTALL = 'pip install "carbonmonitor[apple]" (installs zeus-apple-silicon)'
FIX_UPGRADE = 'pip install -U "zeus-apple-silicon>=1.1"'
FIX_CHECK = ("check that `python -c \"from zeus_apple_silicon import AppleEnergyMonitor as M; "
             f"print(M().get_cumulative_energy())\"` prints energies; if not, {FIX_UPGRADE}, "
             "and report the chip and macOS version to ml-energy/zeus-apple-silicon")

# The "Energy Model" channels are the SoC's own estimates (Apple's on-chip power estimator,
# per PowerMetricsKit's notes), and no published validation against an external meter was
# found, only qualitative agreement with a USB-C meter (PowerMetricsKit README). So the band
# is a judgement: three times the +-5 % of validated counters (counter-v1). The library gives
# whole mJ per channel (resolution). How often the counters move is undocumented; powermetrics
# reports them over 100 ms windows (macmon docs/powermetrics-sampling.md), so a read is taken
# to be at most 0.1 s stale (update_s).
SENSOR = Sensor(rule="apple-counter-v2", relative=0.15, resolution_j=0.001, update_s=0.1)


@dataclass(frozen=True)
class Part:
    """One domain: its key, device kind, AppleEnergyMetrics fields (the first one required)."""

    key: str
    device: str
    fields: tuple[str, ...]
    what: str


PARTS = (
    Part("cpu", "cpu", ("cpu_total_mj",), "'CPU Energy' channel (all CPU clusters)"),
    Part("gpu:0", "gpu", ("gpu_mj", "gpu_sram_mj"), "'GPU Energy' + 'GPU SRAM' channels"),
    Part("memory", "memory", ("dram_mj",), "'DRAM' channel (unified memory)"),
    Part("ane", "ane", ("ane_mj",), "'ANE' channel (Neural Engine)"),
)


@dataclass
class Block:
    """One measured domain and its running state."""

    part: Part
    fields: tuple[str, ...]  # those the chip reports
    last_mj: dict[str, int]
    last_t: float
    bounds: Bounds = field(default_factory=lambda: Bounds(SENSOR))
    missing: int = 0  # samples from which one of its channels was absent
    resets: int = 0  # intervals dropped because a counter went backwards


def host_platform() -> tuple[str, str]:
    """(``sys.platform``, machine architecture) of this Python process."""
    machine = os.uname().machine if hasattr(os, "uname") else ""
    return sys.platform, machine


def _library() -> Any:
    try:
        return importlib.import_module(LIBRARY)
    except ImportError:
        raise BackendUnavailable("the Apple Silicon backend needs the zeus-apple-silicon "
                                 "package", FIX_INSTALL) from None


def _mj(value: Any) -> int | None:
    """A field's value as whole mJ; None when absent; TypeError/ValueError when garbage."""
    return None if value is None else int(value)


class AppleFactory:
    """Probes for Apple Silicon. ``platform`` returns (``sys.platform``, machine) and is a
    parameter so that tests can pretend to be a Mac."""

    name = "apple"
    devices: tuple[str, ...] = ("cpu", "gpu", "memory", "ane")

    def __init__(self, *, platform: Callable[[], tuple[str, str]] = host_platform) -> None:
        self._platform = platform

    def probe(self, context: ProbeContext) -> AppleBackend:
        system, machine = self._platform()
        if system != "darwin":
            raise not_macos(system)
        if machine not in ("arm64", "aarch64"):
            raise BackendUnavailable(
                f"this Python runs as {machine or 'an unknown architecture'}, not arm64: an "
                "Intel Mac, or Rosetta 2 on an Apple Silicon Mac",
                "on Apple Silicon, run an arm64 Python (`python3 -c \"import platform; "
                "print(platform.machine())\"` must print arm64); Intel Macs have no IOReport "
                "energy model, so the estimate backend is used")
        library = _library()
        try:
            monitor = library.AppleEnergyMonitor()
            first = monitor.get_cumulative_energy()
        except Exception as err:  # a C++ exception surfaces as RuntimeError or ValueError
            raise BackendUnavailable(f"IOReport energy counters could not be read ({err})",
                                     "run on macOS itself, not in a virtual machine; "
                                     + FIX_CHECK) from None
        blocks = discover(first, context.clock.monotonic())
        if not blocks:
            raise BackendUnavailable("IOReport reports none of the CPU, GPU, DRAM or ANE energy "
                                     "channels on this Mac", FIX_CHECK)
        flags = []
        if not hasattr(first, "efficiency_cluster_mj"):  # added in 1.1 with M5 and Ultra support
            flags.append(Flag("apple-old-library", "zeus-apple-silicon is older than 1.1: it "
                              "does not know the M5's channel names nor add up the two dies "
                              "of Ultra chips, so those chips may be undercounted", FIX_UPGRADE))
        return AppleBackend(monitor, blocks, flags, context.clock.monotonic())


def discover(first: Any, now_s: float) -> list[Block]:
    """The domains this chip reports (its first field not None), with their starting values."""
    blocks = []
    for part in PARTS:
        values = {f: _mj(getattr(first, f, None)) for f in part.fields}
        if values[part.fields[0]] is None:
            continue
        present = {f: v for f, v in values.items() if v is not None}
        blocks.append(Block(part, tuple(present), present, now_s))
    return blocks


class AppleBackend:
    """Reads the SoC's cumulative energy per block; see the module docstring."""

    name = "apple"
    poll_period_s: float | None = None  # int64 counters since boot: no wrap to outrun

    def __init__(self, monitor: Any, blocks: list[Block], flags: list[Flag],
                 opened_at: float) -> None:
        self._monitor: Any = monitor
        self.blocks = blocks
        self._flags = flags
        self._opened_at = opened_at
        self._lock = threading.Lock()
        self._failures = 0
        self._last_error = ""
        self._failing_since: float | None = None

    def domains(self) -> tuple[Domain, ...]:
        return tuple(Domain(b.part.key, b.part.device, "counter", SENSOR.rule,
                            f"IOReport Energy Model {b.part.what}, via zeus-apple-silicon; "
                            "the SoC's own estimate")
                     for b in self.blocks)

    def read(self, now_s: float) -> dict[str, Cumulative]:
        """One IOReport sample (Zeus puts its measurement calls under 10 ms). A failed sample
        changes nothing: the next good one covers the interval, the counters being cumulative."""
        with self._lock:
            if self._monitor is not None:
                try:
                    sample = self._monitor.get_cumulative_energy()
                    values = [{f: _mj(getattr(sample, f, None)) for f in b.fields}
                              for b in self.blocks]
                except Exception as err:  # any failure of the library is contained here
                    self._failures += 1
                    self._last_error = f"{type(err).__name__}: {err}"
                    if self._failing_since is None:
                        self._failing_since = now_s
                else:
                    self._failing_since = None
                    for block, fields in zip(self.blocks, values, strict=True):
                        _advance(block, fields, now_s)
            return {b.part.key: b.bounds.cumulative() for b in self.blocks}

    def edge_uncertainty_j(self, key: str) -> float:
        """What one window edge can miss: a mJ, plus one update at the highest power seen."""
        for block in self.blocks:
            if block.part.key == key:
                return block.bounds.edge_j()
        return 0.0

    @property
    def flags(self) -> list[Flag]:
        out = list(self._flags)
        if self._failures:
            if self._failing_since is None:
                lost = "the next good read covered them (the counters are cumulative)"
            else:
                lost = (f"every read from {self._failing_since - self._opened_at:.1f} s on "
                        "failed, so the energy after the last good read is missing")
            out.append(Flag("apple-read-failed", f"zeus-apple-silicon failed {self._failures} "
                            f"read(s) (last: {self._last_error}); {lost}", FIX_CHECK))
        for b in self.blocks:
            if b.missing:
                out.append(Flag("apple-channel-missing", f"{b.part.key}: a channel of "
                                f"{', '.join(b.fields)} was absent from {b.missing} IOReport "
                                "sample(s); its energy counts when it reappears (if it never "
                                "did, its energy after its last appearance is missing)",
                                FIX_CHECK))
            if b.resets:
                out.append(Flag("apple-counter-reset", f"{b.part.key}: an IOReport counter went "
                                f"backwards in {b.resets} read interval(s); its energy in those "
                                "intervals was dropped",
                                "nothing to do unless it repeats; then " + FIX_CHECK))
        return out

    def close(self) -> None:
        with self._lock:
            self._monitor = None  # the library frees its IOReport subscription on collection


def _advance(block: Block, values: dict[str, int | None], now_s: float) -> None:
    """Add one sample's increase to a domain. A channel absent from this sample keeps its last
    value (its energy is counted at its next appearance); one that went backwards restarted,
    and its interval is dropped."""
    delta_mj = 0
    restarted = False
    for name, value in values.items():
        if value is None:
            continue
        step = value - block.last_mj[name]
        block.last_mj[name] = value
        if step < 0:
            restarted = True
            continue
        delta_mj += step
    if None in values.values():
        block.missing += 1
    if restarted:
        block.resets += 1
    block.bounds.add(delta_mj / 1000.0, max(now_s - block.last_t, 0.0))
    block.last_t = now_s
