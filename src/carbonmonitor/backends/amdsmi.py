"""``amdsmi``: AMD GPUs through AMD SMI (the ``amdsmi`` Python package of ROCm).

Per GPU (card), the best method it offers:

- ``counter``: ``amdsmi_get_energy_count``, an accumulator in ``counter_resolution`` microjoule
  units (15.259 uJ = 2^-16 J). It is trusted only while it agrees with the power readings: each
  read also integrates ``amdsmi_get_power_info`` (trapezoid), and after the first
  ``CHECK_FIRST_S`` seconds, then every ``CHECK_EVERY_S``, the counter's energy over the window
  must lie within ``CHECK_TOLERANCE`` of the integrated power. Counters before ROCm 6.3 were
  unreliable (stuck on MI100, ROCm/amdsmi#22; "physically impossible" values, ROCm/amdsmi#38;
  zeus #113 falls back to power the same way, with a 10x band); firmware that deprecated the
  accumulator reads UINT_MAX (amdgpu, smu 13.0.7 PMFW >= 82.20). A counter that fails the check
  is flagged and its GPU falls back to the integrated power, for the whole run: from then on the
  figure is the power integral since the start, never lower than what was already reported.
- ``power-integration``: the power readings (integer watts) integrated with the trapezoid rule,
  where there is no usable counter.

The accumulator is 64 bits wide in the driver's gpu_metrics, but several SMU generations fill
it from a uint32 (smu11, smu 13.0.7), so a counter first seen below 2^32 is treated as one that
may wrap there; a decrease that is not a plausible wrap is a reset (driver reload, GPU reset),
and a step no GPU could draw is a glitch (ROCm/amdsmi#115: the counter went backwards): that
interval takes the integrated power instead. All three are flagged.

MI250/MI250X cards show as two GPUs (one per die) and report the whole card's power and energy
on the first die only, 0 W on the second (zeus PR #203, codecarbon #1097): the two dies are
measured once, as one card, and the second die's zero is never reported as a GPU at 0 W.

Which GPUs: ``gpus=`` names them (amdsmi indices, amdsmi UUIDs, ``GPU-`` ROCr UUIDs, or
``all``); otherwise ``ROCR_VISIBLE_DEVICES`` (indices or UUIDs), then ``HIP_VISIBLE_DEVICES``
(or ``CUDA_VISIBLE_DEVICES``, which HIP also reads) as indices into what ROCr left, decide; with
none set every GPU is measured. Runtime indices follow ``hip_id`` (amdsmi 6.4+), else amdsmi's
order, which the runtime may not share (flagged on mixed machines).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from carbonmonitor.backends import NEEDS_AMDSMI
from carbonmonitor.backends.base import Cumulative, Domain, ProbeContext
from carbonmonitor.errors import BackendUnavailable, ConfigError
from carbonmonitor.facts import Flag, Method
from carbonmonitor.uncertainty import Bounds, Sensor

FIX_LIBRARY = ("install ROCm's AMD SMI library (the amd-smi-lib package) and set ROCM_PATH to "
               "the ROCm directory (libamd_smi.so is looked up in $ROCM_PATH/lib); the amdsmi "
               "Python package must match the ROCm version: pip install /opt/rocm/share/amd_smi")
FIX_CHECK = "check that `amd-smi list` works; reinstall ROCm's amd-smi-lib if not"

# AMD SMI status codes (amdsmi.h) this backend tells apart.
NOT_SUPPORTED, TIMEOUT, RETRY, INTERRUPT, BUSY = 2, 8, 9, 11, 30
TRANSIENT = frozenset({TIMEOUT, RETRY, INTERRUPT, BUSY})  # try again at the next read
_INIT_FIXES = {
    34: "load the amdgpu kernel driver (`sudo modprobe amdgpu`; `amd-smi list` must work); in a "
        "container pass the devices: --device=/dev/kfd --device=/dev/dri",  # DRIVER_NOT_LOADED
    10: "run as a user in the video and render groups (`sudo usermod -aG video,render $USER`), "
        "who may open /dev/kfd and /dev/dri/renderD*",  # NO_PERM
    4: FIX_LIBRARY,  # FAIL_LOAD_MODULE
}
# AMD publishes no accuracy figure for the SMU's power and energy telemetry (none in the AMD SMI
# reference or the Instinct data sheets), so calibration is a conservative +-5 % of the energy
# (our choice, the counter band carbonmonitor used before sensor descriptions). The readings are
# integer watts (amdsmi_power_info_t): +-0.5 W. A read can be one driver refresh old: the amdgpu
# driver re-reads the SMU metrics when its copy is older than 1 ms (smu_cmn_get_metrics_table),
# i.e. one kernel tick, up to 10 ms at HZ=100, and McDaniel et al. (arXiv:2604.06056) measured
# delays of several ms on MI250X/MI300A: 20 ms covers both. average_socket_power is an average
# over an undocumented window: one second is assumed. No partial-duty sampling is documented.
UPDATE_S = 0.02
COUNTER = Sensor(rule="amdsmi-counter-v2", relative=0.05, resolution_j=15.2587890625e-6,
                 update_s=UPDATE_S)
POWER = Sensor(rule="amdsmi-power-integration-v2", relative=0.05, absolute_w=0.5,
               update_s=1.0, sampled=True)
# The check catches the documented failures (a stuck counter reads 0x the power, a wrong scale
# several x) without rejecting good counters: sampled power can alias a bursty load (MI300-class
# cards report instantaneous power), which a +-50 % band over >= 10 samples absorbs. A false
# rejection only costs the counter's precision, and is flagged.
CHECK_FIRST_S = 10.0   # first verdict on a counter after this much time
CHECK_EVERY_S = 30.0   # then every window this long
CHECK_TOLERANCE = 0.5  # counter / integrated power must lie within [1/1.5, 1.5]
CHECK_MIN_W = 5.0      # a window below this mean power says nothing (no GPU idles below it)
PLAUSIBLE_MAX_W = 3000.0  # above any card (MI355X: 1.4 kW), to tell glitches from energy
POLL_SAFETY = 4.0      # reads per shortest 32-bit wrap period at PLAUSIBLE_MAX_W
MAX_TRANSIENT = 10     # consecutive busy/retry answers before a GPU counts as lost
POWER_FIELDS = ("socket_power", "current_socket_power", "average_socket_power")
_DUAL_DIE = re.compile(r"MI250", re.IGNORECASE)  # MI250, MI250X: two dies, one reports


@dataclass
class Card:
    """One measured GPU (both dies of an MI250-class card) and its running state."""

    key: str
    dies: tuple[int, ...]       # amdsmi indices of the dies this job uses
    all_dies: tuple[int, ...]   # every die of the card
    handle: Any                 # the die that reports the card
    die_handles: tuple[Any, ...]  # of ``dies``, for their activity
    name: str
    uuid: str
    method: Method              # "counter" or "power-integration" (current)
    power_field: str | None
    resolution_j: float = 0.0
    wrap_units: int = 1 << 64
    counter: Bounds = field(default_factory=lambda: Bounds(COUNTER))
    power: Bounds = field(default_factory=lambda: Bounds(POWER))  # every interval, when read
    patch: Bounds = field(default_factory=lambda: Bounds(POWER))  # glitch intervals
    floor: Cumulative | None = None  # what was reported when the counter was rejected
    last_units: int | None = None
    last_w: float | None = None
    last_t: float = 0.0
    window: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # s, counter J, power J
    checks: int = 0
    rejected: str = ""
    events: dict[str, int] = field(default_factory=dict)
    transient: int = 0
    lost_at: float | None = None
    error: str = ""


def _amdsmi() -> Any:
    """Import amdsmi. Without libamd_smi.so its import prints to stdout and then fails with a
    KeyError (OSError or AttributeError on a version mismatch): the print is kept out of the
    user's output and goes into the reason instead."""
    import importlib

    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            module = importlib.import_module("amdsmi")
    except ImportError:
        raise BackendUnavailable(*NEEDS_AMDSMI) from None
    except Exception as err:  # KeyError, OSError, AttributeError: see above
        said = " ".join(printed.getvalue().split())
        raise BackendUnavailable(f"amdsmi is installed but cannot load ROCm's AMD SMI library "
                                 f"({said or repr(err)})", FIX_LIBRARY) from None
    if printed.getvalue():  # not amdsmi's complaint: someone else's output, give it back
        print(printed.getvalue(), end="")
    return module


def _code(err: BaseException) -> int | None:
    code = getattr(err, "err_code", None)
    return code if isinstance(code, int) else None


def _number(value: Any) -> float | None:
    """A reading, or None for "N/A" and the unsupported sentinels (0xFFFF in amdsmi <= 6.0,
    UINT32_MAX in the C struct): nothing above PLAUSIBLE_MAX_W is a real watt figure."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if 0 <= value <= PLAUSIBLE_MAX_W else None


class AmdsmiFactory:
    name = "amdsmi"
    devices: tuple[str, ...] = ("gpu",)

    def probe(self, context: ProbeContext) -> AmdsmiBackend:
        smi = _amdsmi()
        try:
            smi.amdsmi_init()  # AMD GPUs only: the default flag in every amdsmi release
        except smi.AmdSmiException as err:
            raise BackendUnavailable(f"AMD SMI could not start ({' '.join(str(err).split())})",
                                     _INIT_FIXES.get(_code(err) or 0, FIX_CHECK)) from None
        try:
            try:
                cards, flags = choose_cards(smi, context.options.values.get("gpus"),
                                            context.environ)
            except smi.AmdSmiException as err:
                raise BackendUnavailable(f"AMD SMI failed while listing the GPUs "
                                         f"({' '.join(str(err).split())})", FIX_CHECK) from None
            now = context.clock.monotonic()
            ready = []
            for card in cards:
                try:
                    _start(smi, card, now)
                    ready.append(card)
                except BackendUnavailable as err:
                    if card is cards[-1] and not ready:
                        raise
                    flags.append(Flag("gpu-unmeasured", f"{err.reason}: not measured",
                                      err.fix or FIX_CHECK))
            return AmdsmiBackend(smi, ready, flags)
        except BaseException:
            with contextlib.suppress(Exception):
                smi.amdsmi_shut_down()
            raise


def choose_cards(smi: Any, wanted: Any, environ: Mapping[str, str]
                 ) -> tuple[list[Card], list[Flag]]:
    """The cards to measure (module docstring) and what a reader must know about them."""
    handles = list(smi.amdsmi_get_processor_handles())
    if not handles:
        raise BackendUnavailable("AMD SMI sees no AMD GPU", "nothing to measure on this machine")
    names = [str(smi.amdsmi_get_gpu_asic_info(h).get("market_name", "AMD GPU")) for h in handles]
    uuids = [str(smi.amdsmi_get_gpu_device_uuid(h)) for h in handles]
    hip_ids, hip_uuids = _enumeration(smi, handles)
    flags: list[Flag] = []
    dies = _visible(wanted, environ, uuids, hip_ids, hip_uuids, flags)
    if (not wanted and hip_ids is None and len(set(names)) > 1
            and any(environ.get(v) for v in ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES",
                                              "CUDA_VISIBLE_DEVICES"))):
        flags.append(Flag("gpu-order", "the visible-devices variables use runtime indices, this "
                          "amdsmi cannot say which GPU has which (no hip_id before amdsmi 6.4) "
                          "and this machine mixes GPU models: amdsmi's order was assumed",
                          "use GPU UUIDs (`rocminfo | grep Uuid`), or gpus= with amdsmi indices"))
    primary = {i: i for i in range(len(handles))}
    for i in range(1, len(handles)):
        if (_DUAL_DIE.search(names[i]) and names[i - 1] == names[i] and primary[i - 1] == i - 1
                and i % 2 == 1 and _silent(smi, handles[i])):
            primary[i] = i - 1
    cards: dict[int, Card] = {}
    for die in dies:
        p = primary[die]
        card = cards.get(p)
        if card is None:
            whole = tuple(i for i in range(len(handles)) if primary[i] == p)
            cards[p] = Card(f"gpu:{die}", (die,), whole, handles[p], (handles[die],), names[p],
                            uuids[p], "counter", None)
        elif die not in card.dies:
            card.dies = (*card.dies, die)
            card.die_handles = (*card.die_handles, handles[die])
    for card in cards.values():
        if len(card.all_dies) > 1:
            flags.append(_dual_die_flag(card))
    return list(cards.values()), flags


def _enumeration(smi: Any, handles: list[Any]) -> tuple[list[int] | None, list[str] | None]:
    """Runtime indices and ROCr UUIDs per handle (amdsmi 6.4+), or None where unknown."""
    get = getattr(smi, "amdsmi_get_gpu_enumeration_info", None)
    if get is None:
        return None, None
    try:
        infos = [get(h) for h in handles]
    except smi.AmdSmiException:
        return None, None
    ids = [i.get("hip_id") for i in infos]
    uuids = [str(i.get("hip_uuid") or "") for i in infos]
    return ([int(i) for i in ids] if all(isinstance(i, int) for i in ids) else None), uuids


def _visible(wanted: Any, environ: Mapping[str, str], uuids: list[str],
             hip_ids: list[int] | None, hip_uuids: list[str] | None, flags: list[Flag]
             ) -> list[int]:
    """amdsmi indices of the dies this job uses."""
    count = len(uuids)

    def find(token: str, among: list[int]) -> int | None:
        if token.isdigit():
            return among[int(token)] if int(token) < len(among) else None
        low = token.lower()
        hits = [i for i in among if low in (uuids[i].lower(), (hip_uuids or [""] * count)[i]
                                             .lower())]
        return hits[0] if len(hits) == 1 else None

    if wanted:
        tokens = [str(t) for t in wanted]
        if [t.lower() for t in tokens] == ["all"]:
            return list(range(count))
        out = []
        for token in tokens:
            found = find(token, list(range(count)))
            if found is None:
                raise ConfigError(f"gpus: no AMD GPU {token!r}; GPUs here: " + ", ".join(
                    f"{i} ({u})" for i, u in enumerate(uuids)) + ", or 'all'")
            out.append(found)
        return list(dict.fromkeys(out))
    order = sorted(range(count), key=lambda i: hip_ids[i]) if hip_ids else list(range(count))
    for var in ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        value = environ.get(var)
        if value is None:
            continue
        if var == "CUDA_VISIBLE_DEVICES" and "HIP_VISIBLE_DEVICES" in environ:
            continue  # HIP reads CUDA_VISIBLE_DEVICES only when HIP_VISIBLE_DEVICES is unset
        picked = []
        for token in (t.strip() for t in value.split(",") if t.strip()):
            found = find(token, order)
            if found is None:
                flags.append(Flag("gpu-visibility", f"{var} entry {token!r} names no AMD GPU "
                                  "here; it was ignored", f"fix {var}"))
            elif found not in picked:
                picked.append(found)
        if not picked:
            raise BackendUnavailable(f"{var}={value!r} hides every AMD GPU from this job",
                                     "nothing to measure for this job; set gpus=all to measure "
                                     "the machine's GPUs anyway")
        order = picked  # HIP's indices count what ROCr left
    return order


def _silent(smi: Any, handle: Any) -> bool:
    """Whether a die reports no power of its own (0 W or N/A everywhere)."""
    try:
        info = smi.amdsmi_get_power_info(handle)
    except smi.AmdSmiException:
        return True
    return not any(_number(info.get(f)) for f in POWER_FIELDS)


def _dual_die_flag(card: Card) -> Flag:
    first, *rest = card.all_dies
    others = [d for d in card.all_dies if d not in card.dies]
    where = (f"; it includes die {', '.join(map(str, others))}, which this job does not use "
             "(another job's work on it is counted here too)" if others else "")
    return Flag("gpu-dual-die-shared" if others else "gpu-dual-die",
                f"GPU {first} and GPU {', '.join(map(str, rest))} are the dies of one "
                f"{card.name}: AMD SMI reports the whole card's power and energy on GPU {first} "
                f"and 0 W on the other, so the card is measured once, as {card.key}{where}",
                "give a job both dies of a card, or compare runs with the same layout"
                if others else "nothing to do: per-die energy is not available on this card")


def _start(smi: Any, card: Card, now: float) -> None:
    """Choose the method: the counter if it answers sensibly, else the power readings."""
    try:
        info = smi.amdsmi_get_power_info(card.handle)
        card.power_field = next((f for f in POWER_FIELDS if _number(info.get(f)) is not None),
                                None)
        card.last_w = _number(info.get(card.power_field)) if card.power_field else None
    except smi.AmdSmiException:
        card.power_field = None
    card.last_t = now
    units = None
    try:
        count = smi.amdsmi_get_energy_count(card.handle)
        units = count.get("energy_accumulator", count.get("power"))  # "power" up to amdsmi 6.3
        card.resolution_j = float(count.get("counter_resolution", 0.0)) / 1e6
    except smi.AmdSmiException as err:
        if _code(err) != NOT_SUPPORTED and card.power_field is None:
            raise BackendUnavailable(f"GPU {card.dies[0]} ({card.name}): AMD SMI energy query "
                                     f"failed ({' '.join(str(err).split())})", FIX_CHECK) from None
    usable = (isinstance(units, int) and units not in (0xFFFF_FFFF, (1 << 64) - 1)
              and 0 < card.resolution_j < 1.0)
    if usable:
        card.last_units = int(units)  # type: ignore[arg-type]
        card.wrap_units = 1 << (32 if card.last_units < 1 << 32 else 64)
        card.counter = Bounds(dataclasses.replace(COUNTER, resolution_j=card.resolution_j))
    elif card.power_field is not None:
        card.method = "power-integration"
    else:
        raise BackendUnavailable(f"GPU {card.dies[0]} ({card.name}) reports neither energy nor "
                                 "power", "nothing to measure on this GPU")


def counter_step(prev: int, now: int, wrap_units: int, max_units: float) -> tuple[int | None, str]:
    """Units counted between two reads and what happened: "" (normal), "wrap", "reset" (the
    counter restarted from 0) or "glitch" (a step no GPU could draw: None units)."""
    if now >= prev:
        return (now - prev, "") if now - prev <= max_units else (None, "glitch")
    if wrap_units == 1 << 32 and now + wrap_units - prev <= max_units:
        return now + wrap_units - prev, "wrap"
    return (now, "reset") if now <= max_units else (None, "glitch")


def _add(a: Cumulative, b: Cumulative) -> Cumulative:
    return Cumulative(a.energy_j + b.energy_j, a.low_j + b.low_j, a.high_j + b.high_j)


def _max(a: Cumulative, b: Cumulative) -> Cumulative:
    return Cumulative(max(a.energy_j, b.energy_j), max(a.low_j, b.low_j), max(a.high_j, b.high_j))


class AmdsmiBackend:
    """Reads the chosen cards; see the module docstring."""

    name = "amdsmi"

    def __init__(self, smi: Any, cards: list[Card], flags: list[Flag]) -> None:
        self._smi = smi
        self.cards = cards
        self._flags = flags
        self._lock = threading.Lock()
        self._opened_at = min((c.last_t for c in cards), default=0.0)
        wraps = [c.resolution_j * c.wrap_units / PLAUSIBLE_MAX_W for c in cards
                 if c.method == "counter" and c.wrap_units == 1 << 32]
        self.poll_period_s: float | None = min(wraps) / POLL_SAFETY if wraps else None

    def domains(self) -> tuple[Domain, ...]:
        out = []
        for c in self.cards:
            if c.method == "counter":
                how = f"AMD SMI energy counter ({c.resolution_j * 1e6:.3f} uJ units)" + (
                    f", checked against {c.power_field}" if c.power_field else
                    ", not checked (no power reading)")
            else:
                how = f"AMD SMI {c.power_field} readings integrated (trapezoid)" + (
                    f"; counter rejected: {c.rejected}" if c.rejected else "")
            dies = (f"; card of dies {', '.join(map(str, c.all_dies))}, read on die "
                    f"{c.all_dies[0]}" if len(c.all_dies) > 1 else "")
            rule = (c.counter if c.method == "counter" else c.power).sensor.rule
            out.append(Domain(c.key, "gpu", c.method, rule, f"{c.name} {c.uuid}; {how}{dies}"))
        return tuple(out)

    def read(self, now_s: float) -> dict[str, Cumulative]:
        out = {}
        with self._lock:
            for card in self.cards:
                if card.lost_at is None:
                    try:
                        self._read_one(card, now_s)
                        card.transient = 0
                    except self._smi.AmdSmiException as err:
                        card.transient += 1
                        if _code(err) not in TRANSIENT or card.transient >= MAX_TRANSIENT:
                            card.lost_at, card.error = now_s, " ".join(str(err).split())
                out[card.key] = self._reported(card)
        return out

    def _reported(self, card: Card) -> Cumulative:
        if card.method == "counter":
            return _add(card.counter.cumulative(), card.patch.cumulative())
        power = card.power.cumulative()
        return power if card.floor is None else _max(card.floor, power)

    def _read_one(self, card: Card, now: float) -> None:
        smi = self._smi
        units = None
        if card.method == "counter":  # read first: a failure leaves the state as it was
            count = smi.amdsmi_get_energy_count(card.handle)
            units = int(count.get("energy_accumulator", count.get("power")))
        watts = None
        if card.power_field is not None:
            watts = _number(smi.amdsmi_get_power_info(card.handle).get(card.power_field))
        dt = now - card.last_t
        if dt <= 0:
            return
        power_j = None
        if card.power_field is not None and card.last_w is not None:
            w = card.last_w if watts is None else watts  # a missing reading holds the last one
            power_j = (w + card.last_w) / 2.0 * dt
            card.power.add(power_j, dt, step_w=w - card.last_w)
            card.last_w = w
        elif watts is not None:
            card.last_w = watts
        card.last_t = now
        if units is None or card.last_units is None:
            return
        max_units = PLAUSIBLE_MAX_W * (dt + UPDATE_S) / card.resolution_j
        step, event = counter_step(card.last_units, units, card.wrap_units, max_units)
        card.last_units = units
        if event:
            card.events[event] = card.events.get(event, 0) + 1
        if step is None:  # glitch: this interval from the power readings, when there are some
            if power_j is not None:
                card.patch.add(power_j, dt)
            counter_j = power_j or 0.0
        else:
            counter_j = step * card.resolution_j
            card.counter.add(counter_j, dt)
        if power_j is not None:
            self._check(card, now, dt, counter_j, power_j)

    def _check(self, card: Card, now: float, dt: float, counter_j: float, power_j: float) -> None:
        """Compare the counter with the integrated power over each window (module docstring)."""
        window = card.window
        window[0] += dt
        window[1] += counter_j
        window[2] += power_j
        if window[0] < (CHECK_FIRST_S if card.checks == 0 else CHECK_EVERY_S):
            return
        seconds, by_counter, by_power = window
        card.window = [0.0, 0.0, 0.0]
        card.checks += 1
        if by_power < CHECK_MIN_W * seconds:
            return
        ratio = by_counter / by_power
        if 1.0 / (1.0 + CHECK_TOLERANCE) <= ratio <= 1.0 + CHECK_TOLERANCE:
            return
        card.floor = self._reported(card)
        card.method = "power-integration"
        card.rejected = (f"{ratio:.2f}x the integrated power over {seconds:.0f} s at "
                         f"{now - self._opened_at:.0f} s")

    def utilisation(self) -> dict[str, float]:
        """gfx_activity (%) per card, the mean over the dies this job uses; none where N/A."""
        out = {}
        with self._lock:
            for card in self.cards:
                if card.lost_at is not None:
                    continue
                values = []
                for handle in card.die_handles:
                    try:
                        value = self._smi.amdsmi_get_gpu_activity(handle)["gfx_activity"]
                    except (self._smi.AmdSmiException, KeyError):
                        continue
                    if isinstance(value, (int, float)) and 0 <= value <= 100:
                        values.append(float(value))
                if values:
                    out[card.key] = sum(values) / len(values)
        return out

    def edge_uncertainty_j(self, key: str) -> float:
        """Energy one window edge can miss: a counter quantum plus one update at the highest
        power seen (a power reading: one averaging window)."""
        for card in self.cards:
            if card.key == key:
                return (card.counter if card.method == "counter" else card.power).edge_j()
        return 0.0

    def shortest_window_s(self, key: str) -> float:
        for card in self.cards:
            if card.key == key and card.method == "counter":
                return 10 * UPDATE_S
        return 0.0

    @property
    def flags(self) -> list[Flag]:
        out = list(self._flags)
        for c in self.cards:
            gpu = f"GPU {c.dies[0]} ({c.name})"
            if c.rejected:
                out.append(Flag("gpu-counter-rejected", f"{gpu}: the energy counter read "
                                f"{c.rejected} (tolerance {CHECK_TOLERANCE:.0%}); its energy is "
                                "the integral of the power readings since the start instead",
                                "update ROCm to 6.3 or newer (energy counters before it are "
                                "unreliable) and the GPU firmware; reboot if it persists"))
            elif c.method == "counter" and c.power_field and c.checks == 0 and c.lost_at is None:
                out.append(Flag("gpu-counter-unchecked", f"{gpu}: the run ended before the "
                                f"energy counter could be checked against the power readings "
                                f"(first check after {CHECK_FIRST_S:.0f} s)",
                                "nothing to do for long runs; short runs rely on the counter"))
            if c.lost_at is not None:
                out.append(Flag("gpu-lost", f"{gpu} stopped answering at "
                                f"{c.lost_at - self._opened_at:.1f} s ({c.error}); its energy "
                                "covers the run only up to then",
                                "check `amd-smi list` and the kernel log (dmesg | grep amdgpu)"))
            if c.events.get("reset"):
                out.append(Flag("gpu-counter-reset", f"{gpu}: the energy counter restarted "
                                f"{c.events['reset']} time(s) (driver reload or GPU reset); "
                                "energy between the last read and each restart is missing",
                                "keep the driver loaded and the GPU from resetting during runs"))
            if c.events.get("glitch"):
                out.append(Flag("gpu-counter-glitch", f"{gpu}: the energy counter jumped by "
                                f"more than any GPU draws {c.events['glitch']} time(s); those "
                                "intervals use the power readings (or 0 J without them)",
                                "update ROCm (ROCm/amdsmi#115)"))
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._smi.amdsmi_shut_down()
