"""A fake ``zeus_apple_silicon`` module (the zeus-apple-silicon package) driven by a manual clock.

It follows the real library (zeus-apple-silicon 1.1.0, ``apple_energy/apple_energy.hpp`` and
``bindings/energy_bindings.hpp``):

- ``AppleEnergyMonitor()`` subscribes to IOReport's "Energy Model" group; a failed subscription
  raises ``RuntimeError("Failed to create IOReport subscription.")``.
- ``get_cumulative_energy()`` takes one IOReport sample: each channel's energy since boot,
  converted to whole mJ by integer division (the "GPU Energy" channel counts in nJ, the others
  in mJ), channels of several dies (Ultra chips) summed. A field whose channel the chip lacks
  is ``None``.
- Its measurement windows (``begin_window``/``end_window``) are left out: the backend reads
  the cumulative counters only.
- A sample the library cannot parse raises ``RuntimeError`` (an unreadable channel name) or
  ``ValueError`` (an unknown unit); :attr:`FakeChip.fail` schedules such failures.

The true power of each channel is a constant or ``(t_s, watts)`` steps on the clock;
:meth:`FakeAppleSilicon.true_energy_j` integrates it for the tests' expected values.
"""

from __future__ import annotations

import threading
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Field of AppleEnergyMetrics -> (IOReport channel name, unit the channel counts in).
CHANNELS: dict[str, tuple[str, str]] = {
    "cpu_total_mj": ("CPU Energy", "mJ"),
    "dram_mj": ("DRAM", "mJ"),
    "gpu_mj": ("GPU Energy", "nJ"),
    "gpu_sram_mj": ("GPU SRAM", "mJ"),
    "ane_mj": ("ANE", "mJ"),
}
# Fields of AppleEnergyMetrics that this fake leaves None (per-core and per-cluster lists).
OTHER_FIELDS = ("efficiency_cores_mj", "performance_cores_mj", "efficiency_cluster_mj",
                "performance_cluster_mj", "efficiency_core_manager_mj",
                "performance_core_manager_mj")
_PER_MJ = {"mJ": 1, "nJ": 1_000_000}

Power = float | tuple[tuple[float, float], ...]


@dataclass
class FakeChip:
    """One Apple Silicon SoC as IOReport shows it.

    Attributes:
        power: true power per AppleEnergyMetrics field (``"cpu_total_mj"``, ``"gpu_mj"``, ...):
            watts, or ``(t_s, watts)`` steps; a field not named here has no channel (None).
        dies: 2 for an Ultra chip: every channel exists once per die (each draws ``power``).
        uptime_s: how long the Mac had been up at t = 0: the counters do not start at zero.
        fail: ``(from_s, until_s, exception)``: samples taken in ``[from_s, until_s)`` raise it.
        missing: ``(field, from_s, until_s)``: the channel is absent from those samples.
        reset_at_s: the counters restart from zero at this time.
        init_error: the constructor raises ``RuntimeError`` with this message.
        library_version: before (1, 1) the metrics lack the per-cluster fields, as 1.0.x did.
    """

    power: dict[str, Power] = field(default_factory=lambda: {
        "cpu_total_mj": 12.0, "gpu_mj": 8.0, "gpu_sram_mj": 0.3, "dram_mj": 1.5,
        "ane_mj": 0.0})
    dies: int = 1
    uptime_s: float = 5_000.0
    fail: tuple[tuple[float, float, Exception], ...] = ()
    missing: tuple[tuple[str, float, float], ...] = ()
    reset_at_s: float | None = None
    init_error: str | None = None
    library_version: tuple[int, int] = (1, 1)


def _joules(power: Power, t0: float, t1: float) -> float:
    """Integral of constant or step power over [t0, t1]."""
    if isinstance(power, (int, float)):
        return float(power) * (t1 - t0)
    steps = sorted(power)
    total = 0.0
    for i, (start, watts) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else float("inf")
        lo, hi = max(start, t0), min(end, t1)
        if hi > lo:
            total += watts * (hi - lo)
    if steps and t0 < steps[0][0]:  # before the first step: its power
        total += steps[0][1] * (min(steps[0][0], t1) - t0)
    return total


class FakeAppleSilicon:
    """The fake library: :attr:`module` goes into ``sys.modules["zeus_apple_silicon"]``."""

    def __init__(self, chip: FakeChip, clock: Any) -> None:
        self.chip = chip
        self.clock = clock
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.module = self._build_module()

    def true_energy_j(self, name: str, t0: float, t1: float) -> float:
        """Energy (J) the SoC really drew in ``name``'s channels between two clock times."""
        return self.chip.dies * _joules(self.chip.power[name], t0, t1)

    def _raw(self, name: str, t: float) -> int:
        """One die's channel counter at clock time ``t``, in the channel's own unit."""
        start = -self.chip.uptime_s
        if self.chip.reset_at_s is not None and t >= self.chip.reset_at_s:
            start = self.chip.reset_at_s
        joules = _joules(self.chip.power[name], start, t)
        return int(joules * 1000 * _PER_MJ[CHANNELS[name][1]])

    def sample(self) -> dict[str, int | None]:
        """An IOReport sample parsed as the library does: whole mJ per field, or None."""
        t = self.clock.monotonic()
        for start, end, error in self.chip.fail:
            if start <= t < end:
                raise error
        out: dict[str, int | None] = dict.fromkeys(OTHER_FIELDS)
        for name in CHANNELS:
            gone = any(f == name and start <= t < end for f, start, end in self.chip.missing)
            if name not in self.chip.power or gone:
                out[name] = None
                continue
            # the library converts each channel to mJ (integer division), then sums the dies
            out[name] = self.chip.dies * (self._raw(name, t) // _PER_MJ[CHANNELS[name][1]])
        return out

    def _build_module(self) -> types.ModuleType:
        fake = self

        class AppleEnergyMetrics:
            """Fields in mJ; None where the chip has no such channel."""

            def __init__(self, values: dict[str, int | None] | None = None) -> None:
                for name in (*CHANNELS, *OTHER_FIELDS):
                    if "cluster" in name and fake.chip.library_version < (1, 1):
                        continue
                    setattr(self, name, (values or {}).get(name))

        class AppleEnergyMonitor:
            def __init__(self) -> None:
                fake._count("AppleEnergyMonitor")
                if fake.chip.init_error is not None:
                    raise RuntimeError(fake.chip.init_error)

            def get_cumulative_energy(self) -> AppleEnergyMetrics:
                fake._count("get_cumulative_energy")
                return AppleEnergyMetrics(fake.sample())

        module = types.ModuleType("zeus_apple_silicon",
                                  "Fake zeus_apple_silicon (tests/fakes/fake_apple.py).")
        module.AppleEnergyMonitor = AppleEnergyMonitor  # type: ignore[attr-defined]
        module.AppleEnergyMetrics = AppleEnergyMetrics  # type: ignore[attr-defined]
        module.fake = self  # type: ignore[attr-defined]  # for debugging; not in the library
        return module

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] += 1


def mac(system: str = "darwin", machine: str = "arm64") -> Callable[[], tuple[str, str]]:
    """Platform facts for :class:`~carbonmonitor.backends.apple.AppleFactory`."""
    return lambda: (system, machine)
