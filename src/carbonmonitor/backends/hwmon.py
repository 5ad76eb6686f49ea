"""``hwmon``: board power rails from Linux hwmon (Jetson INA3221, INA2xx power monitors).

Tree: ``{sysfs_root}/class/hwmon/hwmonN``, each with ``name`` and the files of the hwmon sysfs
ABI (Documentation/hwmon/sysfs-interface.rst): ``energyN_input`` (uJ, cumulative),
``powerN_average``/``powerN_input`` (uW), ``inN_input`` (mV), ``currN_input`` (mA), labels.
Full text: docs/hwmon.md. Rules:

- Chips: ``ina3221`` (Jetson modules, JetPack 5+) and the single-rail INA2xx family. GPU
  drivers (amdgpu's ``power1_average`` ...) are left to the GPU backends, which know which GPUs
  the job uses; CPU energy drivers (amd_energy ...) to ``rapl``; other chips with power files
  (PMBus supplies, whose input and output channels overlap) have no known scope: not used.
- Per rail the best reading: an energy counter (``counter``; a backwards jump is a reset,
  flagged, and counting goes on from the new value), else a power reading or, on the INA3221,
  bus voltage x current (``power-integration``, trapezoid between reads).
- Scope: a module input rail (``VDD_IN``, ``POM_5V_IN``) is used alone, as device ``machine``
  (NVIDIA: "VDD_IN is the total power of module"); its sub-rails are never added to it. With
  no such rail, every rail is a part: device cpu/gpu/memory after the first unit its name
  names (``VDD_GPU_SOC`` is gpu), ``machine`` for the rest of the board (``VIN_SYS_5V0``).
- A rail whose files vanish is flagged and its energy stops there; the others go on.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from carbonmonitor.backends import HWMON_FIX_MISSING
from carbonmonitor.backends.base import Cumulative, Domain, ProbeContext
from carbonmonitor.errors import BackendUnavailable
from carbonmonitor.facts import Flag, Method
from carbonmonitor.uncertainty import Bounds, Sensor

Reader = Callable[[Path], str]

# INA3221 (TI datasheet SBOS576, 7.5 Electrical Characteristics, maximum figures): shunt and bus
# gain error 0.25 % each; offsets 80 uV (shunt) and 16 mV (bus), plus one LSB each (40 uV,
# 8 mV) for quantisation. The shunt resistor's tolerance is not in sysfs: 1 % is assumed (a
# common current-sense part). P = V_bus x V_shunt / R, so gains and tolerance are relative
# errors, the shunt offset is offset / R x V_bus watts, the bus offset offset / V_bus of the
# power: the last two depend on the channel and are filled in per rail (ina3221_sensor).
INA3221_GAIN = 0.0025 + 0.0025
INA3221_SHUNT_OFFSET_V = 80e-6 + 40e-6
INA3221_BUS_OFFSET_V = 16e-3 + 8e-3
SHUNT_TOLERANCE = 0.01
# The driver's default configuration (0x7127): 3 channels x (1.1 ms bus + 1.1 ms shunt) x 1
# sample. A reading is one such conversion, so the power between reads is interpolated.
INA3221_UPDATE_S = 0.0066
INA3221 = Sensor("hwmon-power-integration-v2", relative=INA3221_GAIN + SHUNT_TOLERANCE,
                 update_s=INA3221_UPDATE_S, sampled=True)
# INA2xx power register: the family's loosest figure, INA219A's 1 % (max over temperature, TI
# datasheet SBOS448, Features), plus the shunt tolerance.
INA2XX_POWER = Sensor("hwmon-power-integration-v2", relative=0.01 + SHUNT_TOLERANCE,
                      sampled=True)
# INA228-class energy accumulator: 1.0 % energy accuracy (max, stated at full scale; TI INA228
# datasheet, Features), plus the shunt tolerance; sysfs counts whole microjoules.
INA2XX_ENERGY = Sensor("hwmon-counter-v2", relative=0.01 + SHUNT_TOLERANCE, resolution_j=1e-6)

# Power readings are samples: 2 Hz halves the interpolation error of the usual 1 s (tegrastats'
# default) while each INA3221 read, which waits for a fresh conversion (the driver polls its
# conversion-ready bit), blocks ~7 ms: 2 files per rail, under 3 % of the time per rail.
POLL_PERIOD_S = 0.5
# A chip that averages longer blocks every read up to twice its update interval: not used.
MAX_UPDATE_S = 1.0
LOST_AFTER_FAILURES = 10  # consecutive failed reads that end a rail

# Module input rails on Jetson boards (NVIDIA L4T power guides; jetson_stats' total_power)
TOTAL_RAILS = frozenset({"VDD_IN", "POM_5V_IN", "5V_IN"})
UNIT_DEVICES = {"CPU": "cpu", "GPU": "gpu", "DDR": "memory", "DDRQ": "memory",
                "VDDQ": "memory", "VDDRQ": "memory", "DRAM": "memory", "DIMM": "memory",
                "MEM": "memory", "MEMORY": "memory"}
GPU_DRIVERS = frozenset({"amdgpu", "radeon", "nouveau", "i915", "xe"})
CPU_DRIVERS = frozenset({"amd_energy", "zenergy", "zenpower", "fam15h_power"})
_INA2XX = re.compile(r"^(ina\d{3}|sq52206|sy24655)$")
_HWMON = re.compile(r"^hwmon(\d+)$")
_SINGLE = re.compile(r"^(energy|power)(\d+)_(input|average)$")
_VANISHED = {errno.ENOENT, errno.ENODEV, errno.ENXIO}

FIX_MISSING = HWMON_FIX_MISSING
FIX_PERMISSION = (
    "grant read access: `sudo chmod o+r /sys/class/hwmon/hwmon*/*_input "
    "/sys/class/hwmon/hwmon*/power*_average` (until reboot), or permanently with a udev rule in "
    "/etc/udev/rules.d/99-hwmon.rules: `ACTION==\"add\", SUBSYSTEM==\"hwmon\", "
    "RUN+=\"/bin/sh -c 'chmod o+r /sys%p/*_input'\"`; in a container mount the host's /sys "
    "read-only and set sysfs_root=")
FIX_LOST = ("check that the driver is still loaded (`cat /sys/class/hwmon/hwmon*/name`, "
            "`dmesg`); a driver reload renumbers hwmon devices: start a new run")


def _read(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()


@dataclass(frozen=True)
class Channel:
    """One rail a chip measures and how to read it."""

    chip: str                # hwmon ``name``: "ina3221"
    where: str               # "hwmon3"
    index: int
    label: str
    method: Method
    paths: tuple[Path, ...]  # counter or power: one file; INA3221: (inN_input, currN_input)
    sensor: Sensor

    def describe(self) -> str:
        return f"{self.label} ({self.chip} {self.where}, channel {self.index})"


def ina3221_sensor(bus_v: float, shunt_ohm: float, update_s: float) -> Sensor:
    """The INA3221 figures for one channel: its offsets in watts at its bus voltage."""
    volts = max(bus_v, 1.0)  # a rail that is off draws ~0 W: keep the relative term finite
    return replace(INA3221, relative=INA3221.relative + INA3221_BUS_OFFSET_V / volts,
                   absolute_w=INA3221_SHUNT_OFFSET_V / shunt_ohm * volts, update_s=update_s)


def discover(base: Path, read: Reader = _read) -> tuple[list[Channel], list[str], list[str]]:
    """Rails of known scope, notes on what was left out, and the names of all chips seen."""
    channels: list[Channel] = []
    notes: list[str] = []
    seen: list[str] = []
    entries = [p for p in base.iterdir() if _HWMON.match(p.name)] if base.is_dir() else []
    for entry in sorted(entries, key=lambda p: int(p.name[5:])):
        try:
            chip = read(entry / "name")
            names = {p.name for p in entry.iterdir()}
        except (OSError, ValueError):
            continue  # no name: not a chip we could ever use
        seen.append(chip)
        has_power = any(_SINGLE.match(n) for n in names)
        if chip in GPU_DRIVERS and has_power:
            notes.append(f"{entry.name} ({chip}) is a GPU: left to the GPU backends")
        elif chip in CPU_DRIVERS and has_power:
            notes.append(f"{entry.name} ({chip}) mirrors the CPU's RAPL counters: left to rapl")
        elif chip == "ina3221" or _INA2XX.match(chip):
            channels.extend(_chip_channels(entry, chip, names, read, notes))
        elif has_power:
            notes.append(f"{entry.name} ({chip}): power channels of unknown scope, not used")
    return channels, notes, seen


def _chip_channels(entry: Path, chip: str, names: set[str], read: Reader,
                   notes: list[str]) -> list[Channel]:
    update_s = _update_s(entry, names, read, INA3221_UPDATE_S if chip == "ina3221" else 0.0)
    if update_s > MAX_UPDATE_S:
        notes.append(f"{entry.name} ({chip}) averages over {update_s:g} s: each read would "
                     "block up to twice that, not used (lower its `samples` or "
                     "`update_interval`)")
        return []
    found: list[tuple[int, tuple[Path, ...], str]]
    if chip == "ina3221":
        found = [(n, (entry / f"in{n}_input", entry / f"curr{n}_input"), "in")
                 for n in (1, 2, 3) if f"in{n}_input" in names and f"curr{n}_input" in names]
    else:
        found = _single_channels(entry, names)
    out = []
    for index, paths, prefix in found:
        where = f"{entry.name} channel {index}"
        label = _label(entry, names, chip, prefix, index, read)
        if label.upper() == "NC":
            continue  # an input the board leaves unconnected
        if f"{prefix}{index}_enable" in names and _text(entry / f"{prefix}{index}_enable",
                                                        read) == "0":
            if label:  # unlabelled and off: an unused input, not worth a note
                notes.append(f"{label} ({where}) is disabled")
            continue
        if not label:
            notes.append(f"{where} ({chip}) has no label: what it measures is unknown")
            continue
        method: Method = "counter" if prefix == "energy" else "power-integration"
        sensor = (INA3221 if chip == "ina3221" else
                  INA2XX_ENERGY if method == "counter" else INA2XX_POWER)
        out.append(Channel(chip, entry.name, index, label, method, paths,
                           replace(sensor, update_s=update_s)))
    return out


def _single_channels(entry: Path, names: set[str]) -> list[tuple[int, tuple[Path, ...], str]]:
    """Per channel index the best single file: energy, else average power, else power."""
    rank = {"energy": 0, "average": 1, "input": 2}
    best: dict[int, tuple[int, str, str]] = {}
    for name in names:
        match = _SINGLE.match(name)
        if match:
            kind, index, which = match.group(1), int(match.group(2)), match.group(3)
            score = rank["energy" if kind == "energy" else which]
            if index not in best or score < best[index][0]:
                best[index] = (score, name, kind)
    return [(i, (entry / name,), kind) for i, (_, name, kind) in sorted(best.items())]


def _label(entry: Path, names: set[str], chip: str, prefix: str, index: int,
           read: Reader) -> str:
    # an INA2xx measures one rail, named by the device tree's label (the chip's `label` file)
    for name in ([f"{prefix}{index}_label"] if chip == "ina3221" else
                 ["label", f"{prefix}{index}_label"]):
        if name in names:
            return _text(entry / name, read)
    return ""


def _update_s(entry: Path, names: set[str], read: Reader, default: float) -> float:
    if "update_interval" in names:
        try:
            return int(read(entry / "update_interval")) / 1000.0
        except (OSError, ValueError):
            pass
    return default


def _text(path: Path, read: Reader) -> str:
    try:
        return read(path)
    except (OSError, ValueError):
        return ""


def _reading(channel: Channel, read: Reader) -> tuple[float, float]:
    """(joules so far for a counter or watts now, bus volts or 0). A load rail draws no
    negative power: a reading below zero is offset noise at ~0 A and counts as 0 W."""
    if channel.method == "counter":
        return int(read(channel.paths[0])) * 1e-6, 0.0
    if len(channel.paths) == 2:
        mv, ma = int(read(channel.paths[0])), int(read(channel.paths[1]))
        return max(mv * ma, 0) * 1e-6, mv / 1000.0
    return max(int(read(channel.paths[0])), 0) * 1e-6, 0.0


def device_of(label: str) -> str:
    """The first unit a rail's name names (``VDD_CPU_GPU_CV`` is cpu), else ``machine``."""
    for token in re.split(r"[^A-Z0-9]+", label.upper()):
        if token in UNIT_DEVICES:
            return UNIT_DEVICES[token]
    return "machine"


@dataclass
class Rail:
    """A measured rail and its running state."""

    channel: Channel
    key: str
    device: str
    detail: str
    bounds: Bounds
    last: float
    last_t: float
    failures: int = 0       # consecutive
    failed_reads: int = 0
    last_error: str = ""
    lost_at: float | None = None
    resets: int = 0


class HwmonBackend:
    """Reads the chosen rails; see the module docstring."""

    name = "hwmon"

    def __init__(self, rails: list[Rail], flags: list[Flag], opened_at: float,
                 read_text: Reader = _read) -> None:
        self.rails = rails
        self._flags = flags
        self._opened_at = opened_at
        self._read = read_text
        sampled = any(r.channel.method == "power-integration" for r in rails)
        self.poll_period_s: float | None = POLL_PERIOD_S if sampled else None

    def domains(self) -> tuple[Domain, ...]:
        return tuple(Domain(r.key, r.device, r.channel.method, r.channel.sensor.rule, r.detail)
                     for r in self.rails)

    def read(self, now_s: float) -> dict[str, Cumulative]:
        for rail in self.rails:
            if rail.lost_at is None:
                self._read_one(rail, now_s)
        return {r.key: r.bounds.cumulative() for r in self.rails}

    def _read_one(self, rail: Rail, now: float) -> None:
        try:
            value, _ = _reading(rail.channel, self._read)
        except (OSError, ValueError) as err:
            # a missed read is interpolated over by the next; a vanished file ends the rail
            rail.failures += 1
            rail.failed_reads += 1
            rail.last_error = str(err)
            if (isinstance(err, OSError) and err.errno in _VANISHED
                    or rail.failures >= LOST_AFTER_FAILURES):
                rail.lost_at = now
            return
        rail.failures = 0
        dt = now - rail.last_t
        if rail.channel.method == "counter":
            delta = value - rail.last
            if delta < 0:  # restarted (driver reload): what it counts now was drawn since
                rail.resets += 1
                delta = value
            rail.bounds.add(delta, max(dt, 0.0))
        elif dt > 0:
            rail.bounds.add((value + rail.last) / 2.0 * dt, dt, step_w=value - rail.last)
        rail.last, rail.last_t = value, now

    def edge_uncertainty_j(self, key: str) -> float:
        """What one window edge can miss: a quantum plus one sensor update at the top power."""
        return next((r.bounds.edge_j() for r in self.rails if r.key == key), 0.0)

    @property
    def flags(self) -> list[Flag]:
        out = list(self._flags)
        for r in self.rails:
            if r.lost_at is not None:
                out.append(Flag("hwmon-rail-lost", f"{r.key} ({r.channel.describe()}) stopped "
                                f"answering at {r.lost_at - self._opened_at:.1f} s "
                                f"({r.last_error}); its energy covers the run only up to then",
                                FIX_LOST))
            elif r.failed_reads:
                out.append(Flag("hwmon-read-errors", f"{r.key}: {r.failed_reads} read(s) "
                                f"failed (last: {r.last_error}); the energy across those gaps "
                                "was interpolated from the readings around them",
                                "check the kernel log (`dmesg`) for I2C errors if they repeat"))
            if r.resets:
                out.append(Flag("counter-reset", f"{r.key}: the energy counter went backwards "
                                f"{r.resets} time(s); counting went on from the new value, the "
                                "energy between the last read and each reset is missing",
                                "usually a driver reload; nothing to do unless it repeats"))
        return out

    def close(self) -> None:
        pass


class HwmonFactory:
    """Probes ``{sysfs_root}/class/hwmon``; ``read_text`` is injectable for tests."""

    name = "hwmon"
    devices: tuple[str, ...] = ("cpu", "gpu", "memory", "machine")

    def __init__(self, read_text: Reader = _read) -> None:
        self._read = read_text

    def probe(self, context: ProbeContext) -> HwmonBackend:
        base = Path(context.options.sysfs_root) / "class" / "hwmon"
        try:
            channels, notes, seen = discover(base, self._read)
        except OSError as err:
            raise BackendUnavailable(f"cannot list {base} ({err})", FIX_MISSING) from err
        if not channels:
            raise BackendUnavailable(_nothing_usable(base, seen, notes), FIX_MISSING)
        now = context.clock.monotonic()
        first: dict[Channel, tuple[float, float]] = {}
        failed: list[tuple[Channel, Exception]] = []
        for channel in channels:  # every rail read once: an unreadable one fails here
            try:
                first[channel] = _reading(channel, self._read)
            except (OSError, ValueError) as err:
                failed.append((channel, err))
        if not first:
            denied = [e for _, e in failed if isinstance(e, PermissionError)]
            if denied:
                raise BackendUnavailable(f"hwmon power rails are not readable by this user "
                                         f"({denied[0].filename or denied[0]})",
                                         FIX_PERMISSION) from denied[0]
            raise BackendUnavailable(f"cannot read hwmon power rails ({failed[0][1]})",
                                     FIX_MISSING) from failed[0][1]
        chosen, scope = _choose([c for c in channels if c in first])
        # an unreadable rail matters if it would have been used: a total, or any rail when the
        # parts are summed (sub-rails of a total in use are not added anyway)
        by_total = any(device == "machine" and _is_total(c) for c, device in chosen)
        flags = [_unreadable_flag(c, e) for c, e in failed if _is_total(c) or not by_total]
        rails: list[Rail] = []
        for channel, device in chosen:
            value, bus_v = first[channel]
            if channel.chip == "ina3221":
                channel = replace(channel, sensor=_ina3221_channel(channel, bus_v, self._read))
            key = f"{device}:{channel.label}"
            if any(r.key == key for r in rails):
                key = f"{key}@{channel.where}"
            how = ("energy counter" if channel.method == "counter" else
                   "bus voltage x current, integrated (trapezoid)" if len(channel.paths) == 2
                   else "power readings integrated (trapezoid)")
            detail = "; ".join([f"{channel.describe()}: {how}", scope, *notes])
            rails.append(Rail(channel, key, device, detail, Bounds(channel.sensor), value, now))
        return HwmonBackend(rails, flags, now, self._read)


def _ina3221_channel(channel: Channel, bus_v: float, read: Reader) -> Sensor:
    path = channel.paths[0].parent / f"shunt{channel.index}_resistor"
    try:
        shunt_ohm = int(read(path)) * 1e-6
    except (OSError, ValueError):
        shunt_ohm = 0.0
    if shunt_ohm <= 0:
        shunt_ohm = 0.01  # the driver's default, 10 mOhm (INA3221_RSHUNT_DEFAULT)
    return ina3221_sensor(bus_v, shunt_ohm, channel.sensor.update_s)


def _choose(readable: list[Channel]) -> tuple[list[tuple[Channel, str]], str]:
    """A module input rail alone, or else all rails as parts; and why, for the detail."""
    totals = [c for c in readable if _is_total(c)]
    others = [c.label for c in readable if c not in totals]
    if totals:
        names = ", ".join(c.label for c in totals)
        scope = f"{names}: the module's input, used alone"
        if others:
            scope += (f"; the other rails ({', '.join(others)}) are parts of it or outside "
                      "the module: not added")
        return [(c, "machine") for c in totals], scope
    scope = ("no module input rail (VDD_IN): the rails are the parts of the board, each "
             "counted once, as the unit they name first (machine for the rest)")
    return [(c, device_of(c.label)) for c in readable], scope


def _is_total(channel: Channel) -> bool:
    return channel.label.upper() in TOTAL_RAILS


def _unreadable_flag(channel: Channel, err: Exception) -> Flag:
    return Flag("hwmon-rail-unreadable", f"{channel.describe()} could not be read at the start "
                f"({err}): left out, so the energy is short of that rail",
                FIX_PERMISSION if isinstance(err, PermissionError) else FIX_LOST)


def _nothing_usable(base: Path, seen: list[str], notes: list[str]) -> str:
    if not base.is_dir():
        return f"no hwmon devices: {base} does not exist"
    reason = f"no power rails of known scope under {base}"
    if seen:
        reason += f" (chips: {', '.join(seen)})"
    return reason + (f": {'; '.join(notes)}" if notes else "")
