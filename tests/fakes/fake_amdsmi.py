"""A fake ``amdsmi`` (AMD SMI's Python package, from ROCm or PyPI) for tests without an AMD GPU.

``FakeAmdsmi(gpus, clock=...)`` builds a scenario; ``fake.module`` is a
``types.ModuleType("amdsmi")`` whose functions answer from it, so code under test runs its real
``import amdsmi`` path::

    clock = ManualClock()
    fake = FakeAmdsmi([FakeGpu(power=[(0, 300.0), (10, 550.0)])], clock=clock)
    monkeypatch.setitem(sys.modules, "amdsmi", fake.module)

Names, return shapes and errors follow the package's ``amdsmi_interface.py`` and
``amdsmi_exception.py`` (read in the PyPI wheels 6.0.2, 6.2.1, 6.3.0, 6.4.4 and 7.0.2):

- ``amdsmi_init(flag=AmdSmiInitFlags.INIT_AMD_GPUS)``; a flag that is not an
  ``AmdSmiInitFlags`` raises ``AmdSmiParameterException``. Handles are
  ``amdsmi_wrapper.amdsmi_processor_handle`` objects (``ctypes.c_void_p``), new ones on every
  ``amdsmi_get_processor_handles()`` call; any other handle raises AmdSmiParameterException.
- Library errors are ``AmdSmiLibraryException(err_code)`` (``.err_code``, ``.err_info``,
  ``get_error_code()``, ``str()`` = ``"Error code:\\n\\t34 | AMDSMI_STATUS_DRIVER_NOT_LOADED -
  Driver not loaded"``); RETRY and TIMEOUT raise their subclasses, as ``_check_res`` does.
- ``amdsmi_get_energy_count`` returns ``{"energy_accumulator", "counter_resolution",
  "timestamp"}``: the accumulator in units of ``counter_resolution`` microjoules (15.259 uJ =
  2^-16 J, kgd_pp_interface.h), the timestamp in ns. The accumulator's key was ``"power"`` up to
  amdsmi 6.2, both keys in 6.3, ``"energy_accumulator"`` from 6.4 (``rocm=`` picks).
- ``amdsmi_get_power_info`` returns integer watts in ``current_socket_power`` (MI300-class,
  instantaneous) or ``average_socket_power`` (MI200 and older, an average), the other one
  ``"N/A"`` (the wrapper turns 0xFFFF into "N/A"; zeus PR #203: "MI300X: average_socket_power
  is N/A", "MI210: current_socket_power is N/A"); from 7.0 also ``socket_power``, the unified
  field. ``amdsmi_get_gpu_activity``: ``gfx_activity`` percent, or "N/A".
- ``amdsmi_get_gpu_enumeration_info`` (from 6.4): ``hip_id`` and ``hip_uuid`` (``GPU-`` + 16 hex
  digits, the UUID ``ROCR_VISIBLE_DEVICES`` takes); absent from the module before 6.4.

Times: scenario times (``t_s``) are seconds on ``clock.monotonic()`` since the fake was made.
The fake reads the clock on every call; nothing happens in the background.

What the knobs reproduce (per GPU, see :class:`FakeGpu`):

- The energy accumulator and the power reading change only every ``update_s`` (default 1 ms:
  the amdgpu driver re-reads the SMU metrics table when its copy is older than 1 ms,
  ``smu_cmn_get_metrics_table``); between updates they hold the last value.
- ``counter_bits=32``: the firmware's ``EnergyAccumulator`` is a uint32 on several SMU
  generations (smu11 Navi/Arcturus, smu 13.0.7), so the 64-bit field wraps at 2^32 units
  (65.5 kJ). Aldebaran (MI200) and MI300 keep 64 bits.
- Unreliable counters, which a check against the power readings must catch:
  ``counter_stuck_at_s`` (the value stops moving: MI100 on ROCm 6.0.2, ROCm/amdsmi#22 and
  AMDResearch/hpcfund#21), ``counter_scale`` (the counter runs at that multiple of the truth:
  "physically impossible" values, ROCm/amdsmi#38), ``counter_sentinel`` (reads UINT_MAX: the
  kernel's answer where the firmware deprecated the accumulator, smu 13.0.7 PMFW >= 82.20).
- ``dual_die=True`` (MI250/MI250X): the card shows as two handles; the first reports the whole
  card's power and energy, the second 0 W and an accumulator that stays at 0 (zeus PR #203,
  codecarbon #1097: "only one GCD reports power"). ``power`` is the card's true power.
- ``reset_at_s``: a driver reload or GPU reset; the accumulator restarts from 0.
  ``lost_at_s``: from then on every call on the GPU's handles raises AMDSMI_STATUS_NOT_FOUND.
  ``busy``: ``(from_s, to_s)``, while every call on them raises AMDSMI_STATUS_BUSY.
- Library state: calls before ``amdsmi_init`` (or after the matching shut-down) raise
  AMDSMI_STATUS_NOT_INIT; ``init_error`` makes ``amdsmi_init`` fail the way a machine without
  the driver does (AMDSMI_STATUS_DRIVER_NOT_LOADED = 34, AMDSMI_STATUS_NO_PERM = 10, ...).

Choices where the real behaviour is not documented (tests should not depend on them): the
error a lost GPU raises; the secondary die's activity (the card's); the handle values; the
reference counting of ``amdsmi_init``.
"""

from __future__ import annotations

import bisect
import ctypes
import enum
import functools
import hashlib
import math
import threading
import time
import types
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# --- Status codes (amdsmi.h; the same numbers in amdsmi_wrapper.py) -------------------------

AMDSMI_STATUS_SUCCESS = 0
AMDSMI_STATUS_INVAL = 1
AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_FAIL_LOAD_MODULE = 4
AMDSMI_STATUS_TIMEOUT = 8
AMDSMI_STATUS_RETRY = 9
AMDSMI_STATUS_NO_PERM = 10
AMDSMI_STATUS_IO = 12
AMDSMI_STATUS_INIT_ERROR = 18
AMDSMI_STATUS_BUSY = 30
AMDSMI_STATUS_NOT_FOUND = 31
AMDSMI_STATUS_NOT_INIT = 32
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34

_ERR_INFO = {  # amdsmi_exception.py (7.0.2), AmdSmiLibraryException.set_err_info
    AMDSMI_STATUS_INVAL: "AMDSMI_STATUS_INVAL - Invalid parameters",
    AMDSMI_STATUS_NOT_SUPPORTED: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
    AMDSMI_STATUS_FAIL_LOAD_MODULE: "AMDSMI_STATUS_FAIL_LOAD_MODULE - Fail to load lib",
    AMDSMI_STATUS_TIMEOUT: "AMDSMI_STATUS_TIMEOUT - Timeout in API call",
    AMDSMI_STATUS_RETRY: "AMDSMI_STATUS_RETRY - Retry operation",
    AMDSMI_STATUS_NO_PERM: "AMDSMI_STATUS_NO_PERM - Permission Denied",
    AMDSMI_STATUS_IO: "AMDSMI_STATUS_IO - I/O Error",
    AMDSMI_STATUS_INIT_ERROR: "AMDSMI_STATUS_INIT_ERROR - Initialization error",
    AMDSMI_STATUS_BUSY: "AMDSMI_STATUS_BUSY - Device busy",
    AMDSMI_STATUS_NOT_FOUND: "AMDSMI_STATUS_NOT_FOUND - Device Not found",
    AMDSMI_STATUS_NOT_INIT: "AMDSMI_STATUS_NOT_INIT - Device not initialized",
    AMDSMI_STATUS_DRIVER_NOT_LOADED: "AMDSMI_STATUS_DRIVER_NOT_LOADED - Driver not loaded",
}

UINT32_MAX = 0xFFFF_FFFF
RESOLUTION_UJ = 15.2587890625  # 2^-16 J, as a float32 holds it
NA = "N/A"


# --- Errors and types, as the package defines them -------------------------------------------

class AmdSmiException(Exception):
    """Base smi exception class."""


class AmdSmiLibraryException(AmdSmiException):
    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        self.err_info = _ERR_INFO.get(err_code,
                                      "AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred")

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_code(self) -> int:
        return self.err_code

    def get_error_info(self, detailed: bool = True) -> str:
        return self.err_info if detailed else self.err_info.split(" - ")[0]


class AmdSmiRetryException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(AMDSMI_STATUS_RETRY)


class AmdSmiTimeoutException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(AMDSMI_STATUS_TIMEOUT)


class AmdSmiParameterException(AmdSmiException):
    def __init__(self, receivedValue: object, expectedType: object, msg: str | None = None
                 ) -> None:
        super().__init__(msg)
        self.err_msg = msg or (f"Invalid parameter:\nActual type: {type(receivedValue)}\n"
                               f"Expected type: {expectedType}")

    def __str__(self) -> str:
        return self.err_msg


for _cls in (AmdSmiException, AmdSmiLibraryException, AmdSmiRetryException,
             AmdSmiTimeoutException, AmdSmiParameterException):
    _cls.__module__ = "amdsmi.amdsmi_exception"


def _raise(code: int) -> None:
    """``_check_res``: RETRY and TIMEOUT have their own classes."""
    if code == AMDSMI_STATUS_RETRY:
        raise AmdSmiRetryException()
    if code == AMDSMI_STATUS_TIMEOUT:
        raise AmdSmiTimeoutException()
    raise AmdSmiLibraryException(code)


class AmdSmiInitFlags(enum.IntEnum):
    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_CPUS = 1 << 0
    INIT_AMD_GPUS = 1 << 1
    INIT_NON_AMD_CPUS = 1 << 2
    INIT_NON_AMD_GPUS = 1 << 3
    INIT_AMD_APUS = (1 << 0) | (1 << 1)


class amdsmi_processor_handle(ctypes.c_void_p):
    """``amdsmi_wrapper.amdsmi_processor_handle``: an opaque pointer."""


# --- Scenario --------------------------------------------------------------------------------

class MonotonicClock(Protocol):
    def monotonic(self) -> float: ...


class _SystemMonotonic:
    def monotonic(self) -> float:
        return time.monotonic()


PowerProfile = Sequence[tuple[float, float]]


@dataclass
class FakeGpu:
    """One AMD GPU (card) in a scenario. Times are seconds since the ``FakeAmdsmi`` was made.

    Attributes:
        name: ``market_name`` of ``amdsmi_get_gpu_asic_info``.
        power: the card's TRUE power, watts, piecewise constant ``[(t_s, watts), ...]`` (each
            step holds until the next), or one number.
        activity: ``gfx_activity`` percent, ``[(t_s, percent), ...]`` or one number; None: N/A.
        power_field: ``"current"`` (MI300-class: ``current_socket_power``, the power at the last
            update) or ``"average"`` (MI200 and older: ``average_socket_power``, the mean over
            the last ``average_s``); None: both N/A.
        energy_counter: False: ``amdsmi_get_energy_count`` raises AMDSMI_STATUS_NOT_SUPPORTED.
        counter_bits: 64, or 32 for firmware whose accumulator wraps at 2^32 units.
        counter_offset: the accumulator at t = 0 (units since the driver loaded).
        counter_stuck_at_s / counter_scale / counter_sentinel: unreliable counters (module doc).
        dual_die: an MI250-class card: two handles, only the first reports (module doc).
        reset_at_s / lost_at_s / busy: module doc.
    """

    name: str = "AMD Instinct MI300X"
    power: PowerProfile | float = 300.0
    activity: Sequence[tuple[float, float]] | float | None = 95.0
    power_field: str | None = "current"
    average_s: float = 1.0
    energy_counter: bool = True
    counter_bits: int = 64
    counter_offset: int = 5_000_000_000
    update_s: float = 0.001
    counter_stuck_at_s: float | None = None
    counter_scale: float = 1.0
    counter_sentinel: bool = False
    dual_die: bool = False
    reset_at_s: float | None = None
    lost_at_s: float | None = None
    busy: tuple[float, float] | None = None
    power_limit_w: int = 750

    def __post_init__(self) -> None:
        if self.power_field not in ("current", "average", None):
            raise ValueError(f"power_field must be 'current', 'average' or None; got "
                             f"{self.power_field!r}")
        if self.counter_bits not in (32, 64):
            raise ValueError(f"counter_bits must be 32 or 64; got {self.counter_bits}")
        if not self.update_s > 0:
            raise ValueError(f"update_s must be > 0; got {self.update_s}")
        _Profile(self.power)  # validates


class _Profile:
    """A piecewise-constant signal and its integral, in closed form."""

    def __init__(self, steps: Sequence[tuple[float, float]] | float) -> None:
        points = [(0.0, float(steps))] if isinstance(steps, (int, float)) else sorted(
            (float(t), float(v)) for t, v in steps)
        if not points or any(not math.isfinite(v) or v < 0 for _, v in points):
            raise ValueError(f"a profile needs finite steps >= 0; got {points}")
        self.times = [t for t, _ in points]
        self.values = [v for _, v in points]
        self._at = [0.0]
        for i in range(1, len(points)):
            self._at.append(self._at[-1] + self.values[i - 1] * (self.times[i] - self.times[i - 1]))

    def value(self, t: float) -> float:
        return self.values[max(bisect.bisect_right(self.times, t) - 1, 0)]

    def integral(self, t: float) -> float:
        """From times[0] (the first step holds before it too) to t."""
        i = max(bisect.bisect_right(self.times, t) - 1, 0)
        return self._at[i] + self.values[i] * (t - self.times[i])

    def between(self, a: float, b: float) -> float:
        return self.integral(b) - self.integral(a)


@dataclass
class _Die:
    card: int        # index into FakeAmdsmi.gpus
    secondary: bool  # the second die of a dual-die card: reports nothing


def fake_hex(*key: object, digits: int = 32) -> str:
    return hashlib.md5(repr(key).encode(), usedforsecurity=False).hexdigest()[:digits]


class FakeAmdsmi:
    """A scenario of AMD GPUs and the ``amdsmi`` module that reports it (module docstring).

    Args:
        gpus: the cards, in amdsmi's order (a dual-die card takes two places).
        clock: what ``monotonic()`` the scenario runs on (a ManualClock in tests).
        rocm: the amdsmi package version, which decides return shapes (module docstring).
        init_error: an AMDSMI_STATUS_* code ``amdsmi_init`` raises, or None.
        hip_order: the HIP/ROCr runtime index of each handle (``hip_id``), when it differs
            from amdsmi's order; default: the same order.
    """

    def __init__(self, gpus: Sequence[FakeGpu], *, clock: MonotonicClock | None = None,
                 rocm: tuple[int, int, int] = (7, 0, 2), init_error: int | None = None,
                 hip_order: Sequence[int] | None = None) -> None:
        self.gpus = list(gpus)
        self.clock = clock or _SystemMonotonic()
        self.rocm = rocm
        self.init_error = init_error
        self.dies = [_Die(c, s) for c, g in enumerate(self.gpus)
                     for s in ((False, True) if g.dual_die else (False,))]
        self.hip_order = list(hip_order) if hip_order is not None else list(range(len(self.dies)))
        if sorted(self.hip_order) != list(range(len(self.dies))):
            raise ValueError(f"hip_order must permute 0..{len(self.dies) - 1}")
        self._power = [_Profile(g.power) for g in self.gpus]
        self._activity = [None if g.activity is None else _Profile(g.activity)
                          for g in self.gpus]
        self._t0 = self.clock.monotonic()
        self._refs = 0
        self._lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.module = self._build_module()

    # -- truth, for tests ------------------------------------------------------------------------

    def true_energy_j(self, card: int, a_s: float, b_s: float) -> float:
        """The card's true energy between two scenario times."""
        return self._power[card].between(a_s, b_s)

    def now_s(self) -> float:
        return self.clock.monotonic() - self._t0

    # -- helpers ---------------------------------------------------------------------------------

    def _die(self, handle: object) -> tuple[_Die, FakeGpu, float]:
        if not isinstance(handle, amdsmi_processor_handle):
            raise AmdSmiParameterException(handle, amdsmi_processor_handle)
        if self._refs <= 0:
            _raise(AMDSMI_STATUS_NOT_INIT)
        index = (handle.value or 0) - 0x1000
        if not 0 <= index < len(self.dies):
            _raise(AMDSMI_STATUS_INVAL)
        die = self.dies[index]
        gpu = self.gpus[die.card]
        t = self.now_s()
        if gpu.lost_at_s is not None and t >= gpu.lost_at_s:
            _raise(AMDSMI_STATUS_NOT_FOUND)
        if gpu.busy is not None and gpu.busy[0] <= t < gpu.busy[1]:
            _raise(AMDSMI_STATUS_BUSY)
        return die, gpu, t

    @staticmethod
    def _tick(gpu: FakeGpu, t: float) -> float:
        return math.floor(t / gpu.update_s + 1e-9) * gpu.update_s

    def _units(self, die: _Die, gpu: FakeGpu, t: float) -> int:
        if gpu.counter_sentinel:
            return UINT32_MAX
        if die.secondary:
            return 0
        t = self._tick(gpu, t)
        if gpu.counter_stuck_at_s is not None:
            t = min(t, gpu.counter_stuck_at_s)
        power = self._power[die.card]
        if gpu.reset_at_s is not None and t >= gpu.reset_at_s:
            start, offset = gpu.reset_at_s, 0
        else:
            start, offset = 0.0, gpu.counter_offset
        energy_uj = power.between(start, t) * gpu.counter_scale * 1e6
        return (offset + math.floor(energy_uj / RESOLUTION_UJ)) % (1 << gpu.counter_bits)

    def _watts(self, die: _Die, gpu: FakeGpu, t: float) -> int:
        if die.secondary:
            return 0
        t = self._tick(gpu, t)
        power = self._power[die.card]
        if gpu.power_field == "average":
            return round(power.between(t - gpu.average_s, t) / gpu.average_s)
        return round(power.value(t))

    # -- the API ---------------------------------------------------------------------------------

    def amdsmi_init(self, flag: Any = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
        if not isinstance(flag, AmdSmiInitFlags):
            raise AmdSmiParameterException(flag, AmdSmiInitFlags)
        if self.init_error is not None:
            _raise(self.init_error)
        self._refs += 1

    def amdsmi_shut_down(self) -> None:
        if self._refs <= 0:
            _raise(AMDSMI_STATUS_NOT_INIT)
        self._refs -= 1

    def amdsmi_get_processor_handles(self) -> list[amdsmi_processor_handle]:
        if self._refs <= 0:
            _raise(AMDSMI_STATUS_NOT_INIT)
        return [amdsmi_processor_handle(0x1000 + i) for i in range(len(self.dies))]

    def amdsmi_get_gpu_device_uuid(self, processor_handle: object) -> str:
        self._die(processor_handle)
        h = fake_hex("uuid", self._index(processor_handle))
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    def amdsmi_get_gpu_device_bdf(self, processor_handle: object) -> str:
        self._die(processor_handle)
        return f"0000:{0xc1 + self._index(processor_handle):02x}:00.0"

    def amdsmi_get_gpu_enumeration_info(self, processor_handle: object) -> dict[str, Any]:
        self._die(processor_handle)
        i = self._index(processor_handle)
        return {"drm_render": 128 + i, "drm_card": i, "hsa_id": i + 1,
                "hip_id": self.hip_order[i], "hip_uuid": self.hip_uuid(i)}

    def hip_uuid(self, index: int) -> str:
        """The ROCr/HIP UUID of handle ``index`` (``GPU-`` + 16 hex digits)."""
        return "GPU-" + fake_hex("hip", index, digits=16)

    def amdsmi_get_gpu_asic_info(self, processor_handle: object) -> dict[str, Any]:
        die, gpu, _ = self._die(processor_handle)
        i = self._index(processor_handle)
        return {"market_name": gpu.name, "vendor_id": "0x1002",
                "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]", "subvendor_id": "0x1002",
                "device_id": "0x74a1", "rev_id": "0x00",
                "asic_serial": "0x" + fake_hex("serial", i, digits=16).upper(),
                "oam_id": die.card, "num_compute_units": 304,
                "target_graphics_version": "gfx942", "subsystem_id": "0x74a1"}

    def amdsmi_get_energy_count(self, processor_handle: object) -> dict[str, Any]:
        die, gpu, t = self._die(processor_handle)
        if not gpu.energy_counter:
            _raise(AMDSMI_STATUS_NOT_SUPPORTED)
        units = self._units(die, gpu, t)
        out: dict[str, Any] = {}
        if self.rocm < (6, 4, 0):
            out["power"] = units
        if self.rocm >= (6, 3, 0):
            out["energy_accumulator"] = units
        out["counter_resolution"] = RESOLUTION_UJ
        out["timestamp"] = round(self._tick(gpu, t) * 1e9)
        return out

    def amdsmi_get_power_info(self, processor_handle: object) -> dict[str, Any]:
        die, gpu, t = self._die(processor_handle)
        watts = self._watts(die, gpu, t)
        out: dict[str, Any] = {}
        if self.rocm >= (7, 0, 0):
            out["socket_power"] = watts if gpu.power_field else NA
        out["current_socket_power"] = watts if gpu.power_field == "current" else NA
        out["average_socket_power"] = watts if gpu.power_field == "average" else NA
        out.update(gfx_voltage=NA, soc_voltage=NA, mem_voltage=NA, power_limit=gpu.power_limit_w)
        return out

    def amdsmi_get_gpu_activity(self, processor_handle: object) -> dict[str, Any]:
        die, gpu, t = self._die(processor_handle)
        profile = self._activity[die.card]
        gfx = NA if profile is None else round(profile.value(self._tick(gpu, t)))
        return {"gfx_activity": gfx, "umc_activity": NA, "mm_activity": NA}

    @staticmethod
    def _index(handle: object) -> int:
        return int(handle.value or 0) - 0x1000  # type: ignore[attr-defined]

    # -- the module ------------------------------------------------------------------------------

    API = ("amdsmi_init", "amdsmi_shut_down", "amdsmi_get_processor_handles",
           "amdsmi_get_gpu_device_uuid", "amdsmi_get_gpu_device_bdf", "amdsmi_get_gpu_asic_info",
           "amdsmi_get_energy_count", "amdsmi_get_power_info", "amdsmi_get_gpu_activity",
           "amdsmi_get_gpu_enumeration_info")

    def _build_module(self) -> types.ModuleType:
        module = types.ModuleType("amdsmi", "Fake amdsmi (tests/fakes/fake_amdsmi.py).")
        wrapper = types.ModuleType("amdsmi.amdsmi_wrapper")
        wrapper.amdsmi_processor_handle = amdsmi_processor_handle  # type: ignore[attr-defined]
        for name, value in globals().items():
            if name.startswith("AMDSMI_STATUS_"):
                setattr(wrapper, name, value)
        module.amdsmi_wrapper = wrapper  # type: ignore[attr-defined]
        module.__version__ = ".".join(map(str, self.rocm))  # type: ignore[attr-defined]
        module.AmdSmiInitFlags = AmdSmiInitFlags  # type: ignore[attr-defined]
        for cls in (AmdSmiException, AmdSmiLibraryException, AmdSmiRetryException,
                    AmdSmiTimeoutException, AmdSmiParameterException):
            setattr(module, cls.__name__, cls)
        for name in self.API:
            if name == "amdsmi_get_gpu_enumeration_info" and self.rocm < (6, 4, 0):
                continue  # added in amdsmi 6.4
            setattr(module, name, self._counted(name, getattr(self, name)))
        module.fake = self  # type: ignore[attr-defined]  # for debugging; not in amdsmi
        return module

    def _counted(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
                return method(*args, **kwargs)

        call.__module__ = "amdsmi.amdsmi_interface"
        return call
