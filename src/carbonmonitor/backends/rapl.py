"""``rapl``: CPU package and DRAM energy counters from Linux powercap (Intel, and AMD Zen).

Tree: ``{sysfs_root}/class/powercap/intel-rapl:N[:M]`` (MSR interface) and
``intel-rapl-mmio:N`` (MMIO interface, a mirror of the same package counter on recent Intel
parts). Each zone has ``name``, ``energy_uj`` and ``max_energy_range_uj``
(https://www.kernel.org/doc/html/latest/power/powercap/powercap.html). Rules (DESIGN.md):

- ``package-N`` zones measure the CPU (cores + uncore); ``dram`` zones measure memory and are
  not part of the package figure; ``core``/``uncore`` are subdomains of a package and are
  never added to it; ``psys`` covers the whole platform, so it is not mixed with the others.
- Mirrors are dropped: an MMIO zone with the name of an MSR zone, and zones whose counters read
  identically (multi-die AMD parts can expose one counter several times).
- ``energy_uj`` wraps at ``max_energy_range_uj``: a delta corrects one wrap, so the backend asks
  to be polled well inside the shortest wrap period at the highest plausible power, and flags a
  gap between reads longer than a wrap period. A counter that goes backwards with no known range
  has been reset: that delta is dropped and flagged, accumulation goes on.
- Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694): the probe says how to
  grant read access.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from carbonmonitor.backends.base import Cumulative, Domain, ProbeContext
from carbonmonitor.errors import BackendUnavailable
from carbonmonitor.facts import Flag
from carbonmonitor.uncertainty import Bounds, Sensor

# docs/uncertainty.md. Calibration: RAPL package and DRAM energy track external meters within a
# few percent on Intel since Haswell (Hackenberg et al., "An Energy Efficiency Feature Survey of
# the Intel Haswell Processor", 2015; Khan et al., "RAPL in Action", ACM TOMPECS 2018); AMD's
# counters are less studied, and the same band is applied. Resolution: the energy status unit,
# 2^-14 J (61 us) on most parts (Intel SDM vol. 4, MSR_RAPL_POWER_UNIT). The counters update
# about every 1 ms (Intel SDM vol. 3B, 15.10.1).
SENSOR = Sensor("rapl-counter-v2", relative=0.05, resolution_j=2.0**-14, update_s=0.001)
RULE = SENSOR.rule
# Highest plausible draw of one zone, to size the poll period: well above any shipping CPU
# package (server parts stay under ~500 W), so a wrap can never go unseen.
PLAUSIBLE_MAX_W = 1000.0
# Poll four times per shortest wrap period at that power.
POLL_SAFETY = 4.0
_ZONE = re.compile(r"^intel-rapl(-mmio)?:(\d+)(?::(\d+))?$")

FIX_PERMISSION = (
    "grant read access to the counters: `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj "
    "/sys/class/powercap/intel-rapl:*:*/energy_uj` (until reboot), or permanently with a udev rule "
    "in /etc/udev/rules.d/99-rapl.rules: `ACTION==\"add\", SUBSYSTEM==\"powercap\", "
    "RUN+=\"/bin/chmod o+r /sys%p/energy_uj\"`; in a container, run it privileged or mount the "
    "host's /sys read-only and set sysfs_root= (e.g. -v /sys:/host/sys:ro, sysfs_root=/host/sys)"
)
FIX_MISSING = (
    "on bare-metal Linux load the driver (`sudo modprobe intel_rapl_msr`); in a container mount "
    "the host's /sys and set sysfs_root=; virtual machines rarely expose RAPL: the estimate "
    "backend is used instead"
)


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()


@dataclass(frozen=True)
class Zone:
    key: str          # "cpu:package-0", "memory:dram-0"
    device: str       # "cpu" | "memory"
    path: Path
    range_uj: int     # 0 when unknown


def discover(root: Path, read_text: Callable[[Path], str] = _read) -> tuple[list[Zone], list[str]]:
    """Zones to measure and notes on what was left out (mirrors, subdomains, psys)."""
    base = root / "class" / "powercap"
    entries = [p for p in base.iterdir() if _ZONE.match(p.name)] if base.is_dir() else []
    zones: list[Zone] = []
    notes: list[str] = []
    seen_names: set[str] = set()
    # MSR zones first, so that an MMIO zone of the same name is the one dropped as a mirror
    for entry in sorted(entries, key=lambda p: ("mmio" in p.name, p.name)):
        mmio, top, _ = _ZONE.match(entry.name).groups()  # type: ignore[union-attr]
        name = read_text(entry / "name")
        if name in ("core", "uncore"):
            notes.append(f"{entry.name} ({name}) is part of its package: not added")
            continue
        if name == "psys":
            notes.append(f"{entry.name} (psys) covers the whole platform: not mixed with "
                         "package/dram")
            continue
        if name.startswith("package"):
            key, device = f"cpu:{name}", "cpu"
        elif name == "dram":
            key, device = f"memory:dram-{top}", "memory"
        else:
            notes.append(f"{entry.name} ({name}): unknown zone, not used")
            continue
        if key in seen_names:
            notes.append(f"{entry.name} mirrors {key}{' (MMIO)' if mmio else ''}: not added")
            continue
        seen_names.add(key)
        try:
            range_uj = int(read_text(entry / "max_energy_range_uj"))
        except (OSError, ValueError):
            range_uj = 0
        zones.append(Zone(key, device, entry / "energy_uj", range_uj))
    return zones, notes


class RaplBackend:
    """Wrap-safe cumulative energy per zone."""

    name = "rapl"

    def __init__(self, zones: list[Zone], notes: list[str],
                 read_text: Callable[[Path], str] = _read) -> None:
        self.zones = zones
        self.notes = notes
        self._read = read_text
        ranges = [z.range_uj for z in zones if z.range_uj > 0]
        self.wrap_period_s = min(ranges) / 1e6 / PLAUSIBLE_MAX_W if ranges else None
        self.poll_period_s: float | None = (self.wrap_period_s / POLL_SAFETY
                                            if self.wrap_period_s else None)
        self._last: dict[str, int] = {}
        self._bounds = {z.key: Bounds(SENSOR) for z in zones}
        self._t_last: float | None = None
        self._events: dict[str, int] = {}

    @property
    def flags(self) -> tuple[Flag, ...]:
        out = []
        if self._events.get("gap"):
            out.append(Flag("rapl-gap", f"{self._events['gap']} gap(s) between counter reads "
                            "were longer than a wrap period; a wrap may have been missed",
                            "keep the process responsive (the sampler thread needs CPU time) "
                            "or lower interval="))
        for key, count in self._events.items():
            if key.startswith("reset:"):
                out.append(Flag("counter-reset", f"{key[6:]}: counter went backwards with no "
                                f"wrap range {count} time(s); those windows were dropped",
                                "usually a driver reload; nothing to do unless it repeats"))
        return tuple(out)

    def domains(self) -> tuple[Domain, ...]:
        detail = "powercap RAPL energy counter" + (
            f"; {'; '.join(self.notes)}" if self.notes else "")
        return tuple(Domain(z.key, z.device, "counter", RULE, detail) for z in self.zones)

    def read(self, now_s: float) -> dict[str, Cumulative]:
        raw = {z.key: int(self._read(z.path)) for z in self.zones}  # OSError: backend fails
        dt = 0.0 if self._t_last is None else now_s - self._t_last
        if self.wrap_period_s is not None and dt > self.wrap_period_s:
            self._events["gap"] = self._events.get("gap", 0) + 1
        for zone in self.zones:
            value = raw[zone.key]
            prev = self._last.get(zone.key)
            self._last[zone.key] = value
            if prev is None:
                continue
            delta = value - prev
            if delta < 0:
                if zone.range_uj > 0:
                    delta += zone.range_uj  # one wrap (the poll period keeps it to one)
                else:
                    self._events[f"reset:{zone.key}"] = self._events.get(
                        f"reset:{zone.key}", 0) + 1
                    continue
            self._bounds[zone.key].add(delta / 1e6, dt)
        self._t_last = now_s
        return {key: bounds.cumulative() for key, bounds in self._bounds.items()}

    def edge_uncertainty_j(self, key: str) -> float:
        """A quantum plus one ~1 ms update at the highest power seen, per window edge."""
        return self._bounds[key].edge_j()

    def close(self) -> None:
        pass


class RaplFactory:
    name = "rapl"
    devices: tuple[str, ...] = ("cpu", "memory")

    def probe(self, context: ProbeContext,
              read_text: Callable[[Path], str] = _read) -> RaplBackend:
        root = Path(context.options.sysfs_root)
        try:
            zones, notes = discover(root, read_text)
        except OSError as err:
            raise BackendUnavailable(f"cannot list RAPL zones under {root}/class/powercap "
                                     f"({err})", FIX_MISSING) from err
        if not zones:
            raise BackendUnavailable(f"no RAPL package or dram zones under "
                                     f"{root}/class/powercap", FIX_MISSING)
        try:
            zones, notes = _drop_identical(zones, notes, read_text)
        except PermissionError as err:
            raise BackendUnavailable(
                f"RAPL counters are not readable by this user ({err.filename or err}); since "
                "Linux 5.10 energy_uj is root-only", FIX_PERMISSION) from err
        except (OSError, ValueError) as err:
            raise BackendUnavailable(f"cannot read RAPL counters ({err})", FIX_MISSING) from err
        return RaplBackend(zones, notes, read_text)


def _drop_identical(zones: list[Zone], notes: list[str], read_text: Callable[[Path], str]
                    ) -> tuple[list[Zone], list[str]]:
    """Zones of one device whose counters read the same value and range are one counter
    exposed several times (multi-die AMD parts): keep the first. Reads every counter once, so
    an unreadable one fails here, at probe time."""
    kept: list[Zone] = []
    notes = list(notes)
    seen: dict[tuple[str, int, int], str] = {}
    for zone in zones:
        value = int(read_text(zone.path))
        signature = (zone.device, value, zone.range_uj)
        if value > 0 and signature in seen:
            notes.append(f"{zone.key} reads the same counter as {seen[signature]}: not added")
            continue
        seen[signature] = zone.key
        kept.append(zone)
    return kept, notes
