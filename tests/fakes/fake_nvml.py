"""A fake ``pynvml`` (the ``nvidia-ml-py`` bindings) with NVML's semantics, for tests without a GPU.

``FakeNvml(gpus, clock=...)`` builds a scenario; ``fake.module`` is a ``types.ModuleType("pynvml")``
whose functions answer from it, so code under test runs its real ``import pynvml`` path::

    clock = ManualClock()
    fake = FakeNvml([FakeGpu(power=[(0, 100.0), (10, 300.0)])], clock=clock)
    monkeypatch.setitem(sys.modules, "pynvml", fake.module)

Names, return types and error behaviour follow nvidia-ml-py's ``pynvml.py`` (checked against a
recent copy, "2011-2025" header, as vendored in ray-project/ray):

- strings are ``str``; ``nvmlDeviceGetMigMode`` returns a ``[current, pending]`` list;
- ``nvmlDeviceIsMigDeviceHandle`` returns a ``ctypes.c_uint``, not an int (``c_uint(1) == 1`` is
  False, ``bool(c_uint(1))`` is True);
- ``nvmlDeviceGetUtilizationRates`` returns a ctypes structure (``.gpu``, ``.memory``);
  ``nvmlDeviceGetComputeRunningProcesses`` a list of ``nvmlFriendlyObject`` (``.pid``,
  ``.usedGpuMemory``, ...); ``nvmlDeviceGetProcessUtilization`` a list of ctypes samples;
- handles are opaque, and each ``nvmlDeviceGetHandleBy*`` call returns a new handle object that
  compares equal only to itself (real handles are ctypes pointers);
- ``NVMLError(code)`` returns the code's subclass (``NVMLError(3)`` is an
  ``NVMLError_NotSupported``); errors compare by ``.value`` (and so are unhashable); ``str()`` is
  NVML's message ("Not Supported", "GPU is lost", ...).

Times: a scenario's times (``t_s``) are seconds on ``clock.monotonic()`` since the ``FakeNvml``
was made. The fake reads the clock on every call; nothing happens in the background, so a
``ManualClock`` gives exact, repeatable numbers.

What the knobs reproduce (per GPU, see :class:`FakeGpu`):

- ``nvmlDeviceGetTotalEnergyConsumption``: "total energy consumption for this GPU in millijoules
  (mJ) since the driver was last reloaded. For Volta or newer fully supported devices" (NVML
  API reference). The value only changes every ``counter_update_s``; between updates it holds the
  energy as of the last update.
- ``nvmlDeviceGetPowerUsage``: milliwatts. "On Ampere (except GA100) or newer GPUs, the API
  returns power averaged over 1 sec interval. On GA100 and older architectures, instantaneous
  power is returned" (NVML API reference): ``power_average_s`` (1.0 by default; set 0 for the
  instantaneous reading of GA100 = A100 and older). Like the counter, the reading updates every
  ``counter_update_s``.
- ``sample_duty``: Yang et al., "Accurate and Convenient Energy Measurements for GPUs: A Detailed
  Study of NVIDIA GPU's Built-in Power Sensor" (SC'24) found that "on the A100 and H100 GPUs only
  25% of the runtime is sampled": the sensor sees part of each update period and the driver
  scales it up. Here the sensor sees the first ``sample_duty * counter_update_s`` of each period
  and both the counter and the power reading count that power ``1 / sample_duty`` times, so a load
  whose bursts are shorter than the period and locked to it is over- or under-counted.
- MIG (Ampere+): ``nvmlDeviceGetMigMode`` -> ``[1, 1]``; ``MIG-`` UUIDs open MIG device handles,
  which report no power or energy of their own (``NVMLError_NotSupported``): only the parent GPU's
  handle does. Utilisation is not reported in MIG mode.
- A driver reload restarts the counter from 0 (``reset_at_s``); a GPU that falls off the bus
  answers every call on its handles with ``NVMLError_GpuIsLost`` (``lost_at_s``, NVML's
  NVML_ERROR_GPU_IS_LOST, Xid 79).
- Library state: every call before ``nvmlInit`` (or after the matching ``nvmlShutdown``) raises
  ``NVMLError_Uninitialized``; ``nvmlInit`` is reference-counted as NVML documents ("shutdown
  only occurs when the reference count reaches zero"); ``init_error`` makes ``nvmlInit`` fail
  the way a machine without the driver does (``NVML_ERROR_LIBRARY_NOT_FOUND`` = 12,
  ``NVML_ERROR_DRIVER_NOT_LOADED`` = 9, ``NVML_ERROR_NO_PERMISSION`` = 4).

Choices where the real behaviour is not documented (so tests should not depend on them):
``nvmlDeviceGetIndex`` and ``nvmlDeviceGetMigMode`` on a MIG device handle raise
``NVMLError_NotSupported``; ``nvmlDeviceGetMaxMigDeviceCount`` is 7 with MIG enabled and 0
otherwise; process-utilisation samples are stamped with ``FAKE_EPOCH_US`` plus the fake's time
in microseconds.
"""

from __future__ import annotations

import bisect
import ctypes
import functools
import hashlib
import math
import string
import threading
import time
import types
import uuid as uuidlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

# --- Return codes, as in nvml.h and pynvml.py ------------------------------------------------

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_INSUFFICIENT_POWER = 8
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_IRQ_ISSUE = 11
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_CORRUPTED_INFOROM = 14
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_OPERATING_SYSTEM = 17
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_IN_USE = 19
NVML_ERROR_MEMORY = 20
NVML_ERROR_NO_DATA = 21
NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22
NVML_ERROR_INSUFFICIENT_RESOURCES = 23
NVML_ERROR_FREQ_NOT_SUPPORTED = 24
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_DEPRECATED = 26
NVML_ERROR_NOT_READY = 27
NVML_ERROR_GPU_NOT_FOUND = 28
NVML_ERROR_INVALID_STATE = 29
NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30
NVML_ERROR_UNKNOWN = 999

NVML_FEATURE_DISABLED = 0
NVML_FEATURE_ENABLED = 1
NVML_DEVICE_MIG_DISABLE = 0x0
NVML_DEVICE_MIG_ENABLE = 0x1

_CONSTANTS: dict[str, int] = {
    name: value for name, value in list(globals().items())
    if name.startswith("NVML_") and isinstance(value, int)
}
_ERROR_CODES: dict[str, int] = {
    name: value for name, value in _CONSTANTS.items() if name.startswith("NVML_ERROR_")
}

# pynvml's own table (NVMLError._errcode_to_string); other codes come from the library's
# nvmlErrorString, which the fake does not have (it answers like pynvml when that call fails).
_ERROR_STRINGS: dict[int, str] = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_INSUFFICIENT_SIZE: "Insufficient Size",
    NVML_ERROR_INSUFFICIENT_POWER: "Insufficient External Power",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_TIMEOUT: "Timeout",
    NVML_ERROR_IRQ_ISSUE: "Interrupt Request Issue",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_CORRUPTED_INFOROM: "Corrupted infoROM",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_RESET_REQUIRED: "GPU requires restart",
    NVML_ERROR_OPERATING_SYSTEM: "The operating system has blocked the request.",
    NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
    NVML_ERROR_MEMORY: "Insufficient Memory",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}

FAKE_EPOCH_US = 1_750_000_000 * 1_000_000  # process-utilisation timestamps start here (µs)
MAX_MIG_DEVICES = 7  # an A100/H100 splits into at most 7 MIG devices
_NOT_AVAILABLE_UINT = 0xFFFFFFFF  # pynvml's NVML_VALUE_NOT_AVAILABLE_uint (gpuInstanceId off MIG)


# --- Errors ----------------------------------------------------------------------------------

class NVMLError(Exception):
    """NVML's error: ``.value`` is the return code; ``NVMLError(code)`` is the code's subclass.

    As in pynvml: subclasses are ``NVMLError_<CamelCase of NVML_ERROR_*>``, instantiated with no
    arguments; two errors are equal when their codes are (so they are unhashable); ``str()`` is
    NVML's message, or ``"NVML Error with code N"`` for a code it cannot name.
    """

    _valClassMapping: dict[int, type[NVMLError]] = {}
    _errcode_to_string: dict[int, str] = dict(_ERROR_STRINGS)
    value: int

    def __new__(cls, value: int, *args: object) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __str__(self) -> str:
        return NVMLError._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other: object) -> bool:
        return bool(self.value == other.value)  # type: ignore[attr-defined]  # as pynvml

    __hash__ = None  # type: ignore[assignment]  # what defining __eq__ implies, as in pynvml


NVMLError.__module__ = "pynvml"


def _error_class_name(constant: str) -> str:
    """``NVML_ERROR_GPU_IS_LOST`` -> ``NVMLError_GpuIsLost`` (pynvml's rule)."""
    words = string.capwords(constant.replace("NVML_ERROR_", ""), "_")
    return "NVMLError_" + words.replace("_", "")


def _make_error_class(name: str, code: int) -> type[NVMLError]:
    def __new__(cls: type[NVMLError], *args: object) -> NVMLError:
        return NVMLError.__new__(cls, code)

    cls = type(name, (NVMLError,), {"__new__": __new__, "__module__": "pynvml"})
    NVMLError._valClassMapping[code] = cls
    return cls


ERROR_CLASSES: dict[str, type[NVMLError]] = {
    _error_class_name(const): _make_error_class(_error_class_name(const), code)
    for const, code in _ERROR_CODES.items()
}
NVMLError_Uninitialized = ERROR_CLASSES["NVMLError_Uninitialized"]
NVMLError_InvalidArgument = ERROR_CLASSES["NVMLError_InvalidArgument"]
NVMLError_NotSupported = ERROR_CLASSES["NVMLError_NotSupported"]
NVMLError_NoPermission = ERROR_CLASSES["NVMLError_NoPermission"]
NVMLError_NotFound = ERROR_CLASSES["NVMLError_NotFound"]
NVMLError_DriverNotLoaded = ERROR_CLASSES["NVMLError_DriverNotLoaded"]
NVMLError_LibraryNotFound = ERROR_CLASSES["NVMLError_LibraryNotFound"]
NVMLError_GpuIsLost = ERROR_CLASSES["NVMLError_GpuIsLost"]


def nvmlExceptionClass(nvmlErrorCode: int) -> type[NVMLError]:
    """The NVMLError subclass for a code (pynvml's ``nvmlExceptionClass``)."""
    if nvmlErrorCode not in NVMLError._valClassMapping:
        raise ValueError(f"nvmlErrorCode {nvmlErrorCode} is not valid")
    return NVMLError._valClassMapping[nvmlErrorCode]


# --- Returned structures ---------------------------------------------------------------------

class _PrintableStructure(ctypes.Structure):
    """pynvml's ``_PrintableStructure``: a ctypes structure that prints its fields."""

    _fmt_: dict[str, str] = {}

    def __str__(self) -> str:
        parts = []
        for name, *_ in self._fields_:
            fmt = self._fmt_.get(name, self._fmt_.get("<default>", "%s"))
            parts.append(f"{name}: " + fmt % (getattr(self, name),))
        return f"{type(self).__name__}({', '.join(parts)})"


class c_nvmlUtilization_t(_PrintableStructure):
    """``nvmlDeviceGetUtilizationRates``: percent of the last sample period the GPU (``gpu``)
    and its memory controller (``memory``) were busy."""

    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]
    _fmt_ = {"<default>": "%d %%"}


class c_nvmlProcessUtilizationSample_t(_PrintableStructure):
    """One ``nvmlDeviceGetProcessUtilization`` sample; ``timeStamp`` in µs."""

    _fields_ = [
        ("pid", ctypes.c_uint),
        ("timeStamp", ctypes.c_ulonglong),
        ("smUtil", ctypes.c_uint),
        ("memUtil", ctypes.c_uint),
        ("encUtil", ctypes.c_uint),
        ("decUtil", ctypes.c_uint),
    ]


class nvmlFriendlyObject:
    """pynvml's plain attribute bag (used for running processes)."""

    def __init__(self, dictionary: Mapping[str, Any]) -> None:
        for key, value in dictionary.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return str(self.__dict__)


# --- Scenario --------------------------------------------------------------------------------

class MonotonicClock(Protocol):
    def monotonic(self) -> float: ...


class _SystemMonotonic:
    def monotonic(self) -> float:
        return time.monotonic()


def fake_uuid(prefix: str, *key: object) -> str:
    """A deterministic NVML-style UUID: ``fake_uuid("GPU", 0)`` -> ``GPU-xxxxxxxx-xxxx-...``;
    ``fake_uuid("MIG", 0, 1)`` for a MIG device of GPU 0."""
    digest = hashlib.md5(repr((prefix, *key)).encode(), usedforsecurity=False).digest()
    return f"{prefix}-{uuidlib.UUID(bytes=digest)}"


PowerProfile = Sequence[tuple[float, float]]
UtilizationProfile = Sequence[tuple[float, float, float]]
# (pid, used GPU memory in bytes, SM utilisation %) or, on a MIG GPU, plus the MIG device index.
Process = tuple[int, int, int] | tuple[int, int, int, int]


@dataclass
class FakeGpu:
    """One GPU in a scenario. Times are seconds since the ``FakeNvml`` was made.

    Attributes:
        name: ``nvmlDeviceGetName``.
        uuid: ``nvmlDeviceGetUUID``; None gives ``fake_uuid("GPU", index)``.
        power: the TRUE power, watts, piecewise constant: ``[(t_s, watts), ...]`` (each step
            holds until the next; before the first it is the first), or one number.
        energy_counter: whether ``nvmlDeviceGetTotalEnergyConsumption`` works (Volta and newer);
            False raises NVMLError_NotSupported, as on Pascal and older.
        power_supported: whether ``nvmlDeviceGetPowerUsage`` works (False: NotSupported).
        counter_update_s: the sensor's update period: the counter and the power reading change
            only at ``counter_phase_s + k * counter_update_s``.
        counter_phase_s: where the update ticks fall (the real phase is arbitrary).
        power_average_s: ``nvmlDeviceGetPowerUsage`` is the mean (sensed) power over this window
            ending at the last update (1 s on Ampere-except-GA100 and newer); 0 gives the latest
            single sample, i.e. the mean over the last update period (GA100 and older).
        sample_duty: the fraction of each update period the sensor sees (its first
            ``sample_duty * counter_update_s``), counted ``1 / sample_duty`` times; 0.25 for
            A100/H100 per Yang et al. (SC'24). 1.0 integrates everything.
        counter_offset_mj: the counter at t = 0 (energy since the driver loaded).
        reset_at_s: the driver reloads then: from then on the counter is the energy since then.
        lost_at_s: from then on every call on this GPU's handles (and opening them) raises
            NVMLError_GpuIsLost.
        mig_capable: False: ``nvmlDeviceGetMigMode`` raises NotSupported (pre-Ampere).
        mig: MIG mode enabled (``nvmlDeviceGetMigMode`` -> ``[1, 1]``).
        mig_instances: UUIDs (``MIG-...``) of its MIG devices, index 0 first; see ``fake_uuid``.
        utilization: ``[(t_s, gpu_percent, memory_percent), ...]``, piecewise constant.
        processes: ``[(pid, used_memory_bytes, sm_util_percent), ...]`` (add a 4th item, the MIG
            device index, to put a process on a MIG device).
        power_limit_mw: ``nvmlDeviceGetPowerManagementLimit`` (mW).
        enforced_power_limit_mw: ``nvmlDeviceGetEnforcedPowerLimit``; None: ``power_limit_mw``.
    """

    name: str = "NVIDIA A100-SXM4-40GB"
    uuid: str | None = None
    power: PowerProfile | float = 100.0
    energy_counter: bool = True
    power_supported: bool = True
    counter_update_s: float = 0.1
    counter_phase_s: float = 0.0
    power_average_s: float = 1.0
    sample_duty: float = 1.0
    counter_offset_mj: int = 123_456_789
    reset_at_s: float | None = None
    lost_at_s: float | None = None
    mig_capable: bool = True
    mig: bool = False
    mig_instances: Sequence[str] = ()
    utilization: UtilizationProfile = ((0.0, 0.0, 0.0),)
    processes: Sequence[Process] = ()
    power_limit_mw: int = 400_000
    enforced_power_limit_mw: int | None = None

    def __post_init__(self) -> None:
        if not self.counter_update_s > 0:
            raise ValueError(f"counter_update_s must be > 0; got {self.counter_update_s}")
        if not 0 < self.sample_duty <= 1:
            raise ValueError(f"sample_duty must be in (0, 1]; got {self.sample_duty}")
        if self.power_average_s < 0:
            raise ValueError(f"power_average_s must be >= 0; got {self.power_average_s}")
        if self.mig and not self.mig_capable:
            raise ValueError("mig=True needs mig_capable=True")
        bad = [u for u in self.mig_instances if not u.startswith("MIG-")]
        if bad:
            raise ValueError(f"MIG device UUIDs start with 'MIG-'; got {bad}")
        if self.mig_instances and not self.mig:
            raise ValueError("mig_instances need mig=True")
        _steps(self.power)  # validates


def _steps(power: PowerProfile | float) -> tuple[list[float], list[float]]:
    points = [(0.0, float(power))] if isinstance(power, (int, float)) else sorted(
        (float(t), float(w)) for t, w in power)
    if not points:
        raise ValueError("a power profile needs at least one (t_s, watts) step")
    if any(not (math.isfinite(t) and math.isfinite(w)) or w < 0 for t, w in points):
        raise ValueError(f"power steps must be finite and >= 0 W; got {points}")
    return [t for t, _ in points], [w for _, w in points]


_EPS = 1e-9  # float slack when finding the update period a time falls in


class _Sensor:
    """One GPU's true and sensed energy, in closed form (O(log steps) per query)."""

    def __init__(self, gpu: FakeGpu) -> None:
        self.times, self.watts = _steps(gpu.power)
        self.period = gpu.counter_update_s
        self.phase = gpu.counter_phase_s
        self.duty = gpu.sample_duty
        self._true = self._cumulate(lambda x: x, 1.0)
        self._sensed = self._true if self.duty == 1 else self._cumulate(self._sampled, self.duty)

    def tick(self, t: float) -> float:
        """The last sensor update at or before t."""
        k = math.floor((t - self.phase) / self.period + _EPS)
        return self.phase + k * self.period

    def _sampled(self, x: float) -> float:
        """Seconds of sampled slices between the phase origin and x (signed)."""
        k = math.floor((x - self.phase) / self.period + _EPS)
        into = x - self.phase - k * self.period
        return k * self.duty * self.period + min(max(into, 0.0), self.duty * self.period)

    def _cumulate(self, seen: Callable[[float], float], scale: float
                  ) -> Callable[[float], float]:
        at = [0.0]  # energy (J) from times[0] to each breakpoint
        for i in range(1, len(self.times)):
            at.append(at[-1] + self.watts[i - 1] / scale * (seen(self.times[i])
                                                            - seen(self.times[i - 1])))

        def energy_to(x: float) -> float:
            i = max(bisect.bisect_right(self.times, x) - 1, 0)
            return at[i] + self.watts[i] / scale * (seen(x) - seen(self.times[i]))

        return energy_to

    def true_j(self, a: float, b: float) -> float:
        return self._true(b) - self._true(a)

    def sensed_j(self, a: float, b: float) -> float:
        return self._sensed(b) - self._sensed(a)

    def true_w(self, t: float) -> float:
        return self.watts[max(bisect.bisect_right(self.times, t) - 1, 0)]


class _Handle:
    """An opaque device handle (the real one is a ctypes pointer: identity equality only)."""

    __slots__ = ("gpu", "mig")

    def __init__(self, gpu: int, mig: int | None) -> None:
        self.gpu = gpu
        self.mig = mig

    def __repr__(self) -> str:
        where = f"GPU {self.gpu}" + ("" if self.mig is None else f" MIG {self.mig}")
        return f"<fake c_nvmlDevice_t {where}>"


# Every NVML function the fake module offers (all counted in FakeNvml.calls).
API_FUNCTIONS: tuple[str, ...] = (
    "nvmlInit", "nvmlInitWithFlags", "nvmlShutdown", "nvmlErrorString",
    "nvmlSystemGetDriverVersion", "nvmlSystemGetNVMLVersion",
    "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetIndex", "nvmlDeviceGetUUID", "nvmlDeviceGetName",
    "nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetMigMode", "nvmlDeviceIsMigDeviceHandle", "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetMigDeviceHandleByIndex", "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
    "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetComputeRunningProcesses",
    "nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetProcessUtilization",
)


class FakeNvml:
    """A scenario of GPUs behind a fake ``pynvml`` module (see the module docstring).

    Args:
        gpus: the GPUs, NVML index order.
        clock: anything with ``monotonic()`` (a ``carbonmonitor.ManualClock`` in tests); the
            scenario's t = 0 is its reading now. Default: ``time.monotonic``.
        init_error: an NVML_ERROR_* code that ``nvmlInit`` raises (no driver, no library, ...).
        driver_version: ``nvmlSystemGetDriverVersion``.

    Attributes:
        module: the ``pynvml`` stand-in, to put in ``sys.modules["pynvml"]``.
        gpus: the GPUs (UUIDs filled in); change a field at run time with ``set_gpu``.
        calls: ``Counter`` of calls per NVML function name, failed calls included.
    """

    def __init__(self, gpus: Sequence[FakeGpu], *, clock: MonotonicClock | None = None,
                 init_error: int | None = None, driver_version: str = "550.54.15") -> None:
        if init_error is not None and init_error not in NVMLError._valClassMapping:
            raise ValueError(f"init_error must be an NVML_ERROR_* code; got {init_error!r}")
        self.clock: MonotonicClock = clock if clock is not None else _SystemMonotonic()
        self.init_error = init_error
        self.driver_version = driver_version
        self.gpus: list[FakeGpu] = [
            g if g.uuid is not None else replace(g, uuid=fake_uuid("GPU", i))
            for i, g in enumerate(gpus)]
        uuids = [g.uuid for g in self.gpus] + [u for g in self.gpus for u in g.mig_instances]
        if len(set(uuids)) != len(uuids):
            raise ValueError(f"UUIDs must be unique; got {uuids}")
        self._sensors = [_Sensor(g) for g in self.gpus]
        self.calls: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._refcount = 0
        self._t0 = self.clock.monotonic()
        self.module = self._build_module()

    # -- helpers for tests --------------------------------------------------------------------

    @classmethod
    def from_scenario(cls, scenario: Mapping[str, Any], *,
                      clock: MonotonicClock | None = None) -> FakeNvml:
        """From a JSON-style dict: ``{"gpus": [{FakeGpu field: value}], "init_error": ...,
        "driver_version": ...}``; lists stand for tuples."""
        unknown = set(scenario) - {"gpus", "init_error", "driver_version"}
        if unknown:
            raise ValueError(f"unknown scenario keys {sorted(unknown)}")
        names = {f.name for f in fields(FakeGpu)}
        gpus = []
        for spec in scenario.get("gpus", []):
            bad = set(spec) - names
            if bad:
                raise ValueError(f"unknown FakeGpu fields {sorted(bad)}; known: {sorted(names)}")
            gpus.append(FakeGpu(**{k: _tuples(v) for k, v in spec.items()}))
        return cls(gpus, clock=clock, init_error=scenario.get("init_error"),
                   driver_version=scenario.get("driver_version", "550.54.15"))

    def elapsed_s(self) -> float:
        """Scenario time now (seconds since the fake was made)."""
        return self.clock.monotonic() - self._t0

    def true_energy_j(self, index: int, start_s: float = 0.0, end_s: float | None = None
                      ) -> float:
        """The TRUE energy of GPU ``index`` between two scenario times (end: now)."""
        end = self.elapsed_s() if end_s is None else end_s
        return self._sensors[index].true_j(start_s, end)

    def set_gpu(self, index: int, **changes: Any) -> None:
        """Change a GPU's fields mid-scenario (e.g. ``lost_at_s``); the power model is rebuilt,
        so changing ``power`` rewrites history too."""
        with self._lock:
            self.gpus[index] = replace(self.gpus[index], **changes)
            self._sensors[index] = _Sensor(self.gpus[index])

    @property
    def initialized(self) -> bool:
        return self._refcount > 0

    # -- the NVML functions ---------------------------------------------------------------------

    def _check_init(self) -> None:
        if self._refcount <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: object, *, mig_ok: bool = True) -> tuple[FakeGpu, _Sensor, float]:
        """The GPU behind a handle, checking that it still answers; and the scenario time."""
        self._check_init()
        if not isinstance(handle, _Handle) or not 0 <= handle.gpu < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        gpu, t = self.gpus[handle.gpu], self.elapsed_s()
        if gpu.lost_at_s is not None and t >= gpu.lost_at_s:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if handle.mig is not None and not mig_ok:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return gpu, self._sensors[handle.gpu], t

    def nvmlInit(self) -> None:
        self.nvmlInitWithFlags(0)

    def nvmlInitWithFlags(self, flags: int) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self._refcount += 1

    def nvmlShutdown(self) -> None:
        self._check_init()
        self._refcount -= 1

    def nvmlErrorString(self, result: int) -> str:
        return str(NVMLError(result))

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check_init()
        return self.driver_version

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._check_init()
        return "12." + self.driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._check_init()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._check_init()
        if not isinstance(index, int) or not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        handle = _Handle(index, None)
        self._gpu(handle)
        return handle

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> _Handle:
        self._check_init()
        wanted = uuid.decode() if isinstance(uuid, bytes) else uuid
        for i, gpu in enumerate(self.gpus):
            if gpu.uuid == wanted:
                handle = _Handle(i, None)
            elif wanted in gpu.mig_instances:
                handle = _Handle(i, list(gpu.mig_instances).index(wanted))
            else:
                continue
            self._gpu(handle)
            return handle
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetIndex(self, handle: _Handle) -> int:
        self._gpu(handle, mig_ok=False)
        return handle.gpu

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        gpu, _, _ = self._gpu(handle)
        return str(gpu.uuid) if handle.mig is None else gpu.mig_instances[handle.mig]

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        gpu, _, _ = self._gpu(handle)
        return gpu.name if handle.mig is None else f"{gpu.name} MIG 1g.5gb"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        gpu, sensor, t = self._gpu(handle, mig_ok=False)
        if not gpu.energy_counter:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        tick = sensor.tick(t)
        if gpu.reset_at_s is not None and t >= gpu.reset_at_s:
            mj = 1000.0 * max(sensor.sensed_j(gpu.reset_at_s, tick), 0.0)
        else:
            mj = gpu.counter_offset_mj + 1000.0 * sensor.sensed_j(0.0, tick)
        return max(math.floor(mj + 1e-6), 0)

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        gpu, sensor, t = self._gpu(handle, mig_ok=False)
        if not gpu.power_supported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        tick = sensor.tick(t)
        window = gpu.power_average_s or gpu.counter_update_s
        return round(1000.0 * sensor.sensed_j(tick - window, tick) / window)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        gpu, _, _ = self._gpu(handle, mig_ok=False)
        limit = gpu.enforced_power_limit_mw
        return gpu.power_limit_mw if limit is None else limit

    def nvmlDeviceGetPowerManagementLimit(self, handle: _Handle) -> int:
        gpu, _, _ = self._gpu(handle, mig_ok=False)
        return gpu.power_limit_mw

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        gpu, _, _ = self._gpu(handle, mig_ok=False)
        if not gpu.mig_capable:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        mode = NVML_DEVICE_MIG_ENABLE if gpu.mig else NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceIsMigDeviceHandle(self, handle: _Handle) -> ctypes.c_uint:
        self._gpu(handle)
        return ctypes.c_uint(0 if handle.mig is None else 1)  # a c_uint, as pynvml returns

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        gpu, _, _ = self._gpu(handle, mig_ok=False)
        return MAX_MIG_DEVICES if gpu.mig else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, device: _Handle, index: int
                                            ) -> _Handle:
        gpu, _, _ = self._gpu(device, mig_ok=False)
        if not gpu.mig_capable:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        if not isinstance(index, int) or not 0 <= index < MAX_MIG_DEVICES:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        if index >= len(gpu.mig_instances):
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return _Handle(device.gpu, index)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(
            self, migDevice: _Handle) -> _Handle:
        self._gpu(migDevice)
        if migDevice.mig is None:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return _Handle(migDevice.gpu, None)

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> c_nvmlUtilization_t:
        gpu, sensor, t = self._gpu(handle, mig_ok=False)
        if gpu.mig:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        steps = sorted(gpu.utilization)
        i = max(bisect.bisect_right([s[0] for s in steps], sensor.tick(t)) - 1, 0)
        return c_nvmlUtilization_t(gpu=round(steps[i][1]), memory=round(steps[i][2]))

    def nvmlDeviceGetComputeRunningProcesses(
            self, handle: _Handle) -> list[nvmlFriendlyObject]:
        gpu, _, _ = self._gpu(handle)
        out = []
        for proc in gpu.processes:
            pid, used = proc[0], proc[1]
            on_mig = proc[3] if len(proc) > 3 else None
            if handle.mig is not None and on_mig != handle.mig:
                continue
            out.append(nvmlFriendlyObject({
                "pid": pid, "usedGpuMemory": used,
                "gpuInstanceId": _NOT_AVAILABLE_UINT if on_mig is None else on_mig,
                "computeInstanceId": _NOT_AVAILABLE_UINT if on_mig is None else 0}))
        return out

    def nvmlDeviceGetComputeRunningProcesses_v3(
            self, handle: _Handle) -> list[nvmlFriendlyObject]:
        return self.nvmlDeviceGetComputeRunningProcesses(handle)

    def nvmlDeviceGetProcessUtilization(
            self, handle: _Handle, timeStamp: int
    ) -> list[c_nvmlProcessUtilizationSample_t]:
        """Samples newer than ``timeStamp`` (µs); none: NVMLError_NotFound, as NVML says."""
        gpu, sensor, t = self._gpu(handle, mig_ok=False)
        if gpu.mig:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        stamp = FAKE_EPOCH_US + round(sensor.tick(t) * 1e6)
        if not gpu.processes or stamp <= timeStamp:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return [c_nvmlProcessUtilizationSample_t(pid=p[0], timeStamp=stamp, smUtil=p[2],
                                                 memUtil=0, encUtil=0, decUtil=0)
                for p in gpu.processes]

    # -- the module ------------------------------------------------------------------------------

    def _build_module(self) -> types.ModuleType:
        module = types.ModuleType("pynvml", f"Fake pynvml (tests/fakes/fake_nvml.py), "
                                            f"{len(self.gpus)} GPU(s).")
        for name, value in _CONSTANTS.items():
            setattr(module, name, value)
        module.NVMLError = NVMLError  # type: ignore[attr-defined]
        for name, cls in ERROR_CLASSES.items():
            setattr(module, name, cls)
        module.nvmlExceptionClass = nvmlExceptionClass  # type: ignore[attr-defined]
        module.nvmlFriendlyObject = nvmlFriendlyObject  # type: ignore[attr-defined]
        module.c_nvmlUtilization_t = c_nvmlUtilization_t  # type: ignore[attr-defined]
        module.c_nvmlProcessUtilizationSample_t = (  # type: ignore[attr-defined]
            c_nvmlProcessUtilizationSample_t)
        for name in API_FUNCTIONS:
            setattr(module, name, self._counted(name, getattr(self, name)))
        module.fake = self  # type: ignore[attr-defined]  # for debugging; not in pynvml
        return module

    def _counted(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:  # NVML is thread-safe; so is the fake
                self.calls[name] += 1
                return method(*args, **kwargs)

        call.__module__ = "pynvml"
        return call


def _tuples(value: Any) -> Any:
    """JSON lists -> tuples, recursively (a profile's steps are tuples)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value
