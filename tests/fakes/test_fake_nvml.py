"""The fake NVML itself (tests/fakes/fake_nvml.py): does it behave like NVML through pynvml?"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from carbonmonitor import ManualClock
from fakes.fake_nvml import (
    FAKE_EPOCH_US,
    FakeGpu,
    FakeNvml,
    NVMLError,
    NVMLError_DriverNotLoaded,
    NVMLError_GpuIsLost,
    NVMLError_InvalidArgument,
    NVMLError_LibraryNotFound,
    NVMLError_NoPermission,
    NVMLError_NotFound,
    NVMLError_NotSupported,
    NVMLError_Uninitialized,
    fake_uuid,
)

FAKES = Path(__file__).resolve().parent


def started(*gpus: FakeGpu, **options: Any) -> tuple[FakeNvml, ManualClock, Any]:
    """A fake with nvmlInit already called: (fake, clock, the pynvml module)."""
    clock = ManualClock()
    fake = FakeNvml(list(gpus) or [FakeGpu()], clock=clock, **options)
    fake.module.nvmlInit()
    return fake, clock, fake.module


def at(clock: ManualClock, t: float) -> None:
    clock.advance(t - clock.monotonic())


# --- the energy counter ----------------------------------------------------------------------

def test_counter_changes_only_at_update_ticks_in_whole_millijoules() -> None:
    fake, clock, nvml = started(FakeGpu(power=200.0, counter_update_s=0.1))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    base = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    assert base == 123_456_789 and isinstance(base, int)
    seen = {}
    for t in (0.05, 0.0999, 0.1, 0.19, 0.2, 1.0):
        at(clock, t)
        seen[t] = nvml.nvmlDeviceGetTotalEnergyConsumption(h) - base
    assert seen == {0.05: 0, 0.0999: 0, 0.1: 20_000, 0.19: 20_000, 0.2: 40_000, 1.0: 200_000}


def test_counter_truncates_to_millijoules_and_honours_phase() -> None:
    fake, clock, nvml = started(FakeGpu(power=123.4567, counter_update_s=0.05,
                                        counter_phase_s=0.02, counter_offset_mj=0))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    at(clock, 0.019)  # last tick at -0.03: a little before t = 0
    assert nvml.nvmlDeviceGetTotalEnergyConsumption(h) == 0
    at(clock, 0.07)  # tick at 0.07: 0.07 s x 123.4567 W = 8641.969 mJ
    assert nvml.nvmlDeviceGetTotalEnergyConsumption(h) == 8641


@pytest.mark.parametrize("duty", [1.0, 0.25])
def test_counter_equals_the_true_energy_over_a_long_steady_run(duty: float) -> None:
    profile = [(0.0, 250.0), (1800.0, 310.0), (2700.0, 90.0)]
    fake, clock, nvml = started(FakeGpu(power=profile, sample_duty=duty))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    start = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    for _ in range(3600):
        clock.advance(1.0)
    clock.advance(0.05)
    measured_j = (nvml.nvmlDeviceGetTotalEnergyConsumption(h) - start) / 1000
    true_j = fake.true_energy_j(0)
    assert true_j == pytest.approx(250 * 1800 + 310 * 900 + 90 * 900.05)
    assert measured_j == pytest.approx(true_j, rel=0.005)


def test_counter_not_supported_before_volta_but_power_is() -> None:
    fake, clock, nvml = started(FakeGpu(energy_counter=False, power=75.0))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(NVMLError_NotSupported) as err:
        nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    assert err.value.value == nvml.NVML_ERROR_NOT_SUPPORTED
    assert nvml.nvmlDeviceGetPowerUsage(h) == 75_000


def test_power_can_be_unsupported_too() -> None:
    fake, clock, nvml = started(FakeGpu(energy_counter=False, power_supported=False))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(nvml.NVMLError_NotSupported):
        nvml.nvmlDeviceGetPowerUsage(h)


# --- the power reading -----------------------------------------------------------------------

def test_one_second_average_lags_a_step() -> None:
    fake, clock, nvml = started(FakeGpu(power=[(0, 100.0), (10, 300.0)]))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    readings = {}
    for t in (10.0, 10.05, 10.1, 10.5, 10.99, 11.0, 12.0):
        at(clock, t)
        readings[t] = nvml.nvmlDeviceGetPowerUsage(h)
    assert readings == {10.0: 100_000, 10.05: 100_000, 10.1: 120_000, 10.5: 200_000,
                        10.99: 280_000, 11.0: 300_000, 12.0: 300_000}
    assert all(isinstance(mw, int) for mw in readings.values())


def test_instantaneous_reading_lags_only_one_update() -> None:
    fake, clock, nvml = started(FakeGpu(power=[(0, 100.0), (10, 300.0)], power_average_s=0))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    at(clock, 10.05)
    assert nvml.nvmlDeviceGetPowerUsage(h) == 100_000  # the update at 10.0 covers [9.9, 10.0)
    at(clock, 10.1)
    assert nvml.nvmlDeviceGetPowerUsage(h) == 300_000


# --- partial sampling (Yang et al., SC'24) ---------------------------------------------------

def bursts(offset_s: float, length_s: float, period_s: float, seconds: float,
           idle_w: float = 100.0, burst_w: float = 400.0) -> list[tuple[float, float]]:
    steps = [(0.0, idle_w)]
    for k in range(round(seconds / period_s)):
        start = k * period_s + offset_s
        steps += [(start, burst_w), (start + length_s, idle_w)]
    return steps


def sensed_over_true(profile: list[tuple[float, float]], duty: float, seconds: float) -> float:
    fake, clock, nvml = started(FakeGpu(power=profile, sample_duty=duty))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    start = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    at(clock, seconds)
    return (nvml.nvmlDeviceGetTotalEnergyConsumption(h) - start) / 1000 / fake.true_energy_j(0)


@pytest.mark.parametrize(("offset_s", "low", "high"), [
    (0.0, 2.0, 2.2),    # 20 ms bursts inside the sampled 25 ms: 340 W sensed for 160 W true
    (0.05, 0.6, 0.65),  # the same bursts outside it: only the 100 W idle is seen
])
def test_quarter_duty_misjudges_bursts_locked_to_the_update_period(
        offset_s: float, low: float, high: float) -> None:
    profile = bursts(offset_s, 0.02, 0.1, 60)
    assert low < sensed_over_true(profile, 0.25, 60) < high
    assert sensed_over_true(profile, 1.0, 60) == pytest.approx(1.0, rel=0.005)


def test_quarter_duty_power_reading_is_biased_the_same_way() -> None:
    fake, clock, nvml = started(FakeGpu(power=bursts(0.0, 0.02, 0.1, 10), sample_duty=0.25))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    at(clock, 5.0)
    assert nvml.nvmlDeviceGetPowerUsage(h) == 340_000  # true mean: 160 W


@pytest.mark.parametrize("offset_s", [0.0, 0.0125, 0.05])
def test_quarter_duty_sees_100ms_bursts_right_whatever_their_phase(offset_s: float) -> None:
    # 100 ms on, 100 ms off: each burst spans one whole update period, so every burst covers
    # exactly one sampled slice's worth of time; the bias needs bursts shorter than the period.
    assert sensed_over_true(bursts(offset_s, 0.1, 0.2, 60), 0.25, 60) == pytest.approx(
        1.0, rel=0.005)


def test_quarter_duty_leaves_a_steady_load_alone() -> None:
    assert sensed_over_true([(0, 250.0)], 0.25, 60) == pytest.approx(1.0, rel=1e-9)


# --- driver reload and lost GPUs -------------------------------------------------------------

def test_driver_reload_restarts_the_counter_from_zero() -> None:
    fake, clock, nvml = started(FakeGpu(power=200.0, reset_at_s=5.0))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    at(clock, 4.95)
    before = nvml.nvmlDeviceGetTotalEnergyConsumption(h)
    assert before == 123_456_789 + 980_000  # last update at 4.9
    at(clock, 5.0)
    assert nvml.nvmlDeviceGetTotalEnergyConsumption(h) == 0
    at(clock, 5.55)
    assert nvml.nvmlDeviceGetTotalEnergyConsumption(h) == 100_000
    assert nvml.nvmlDeviceGetPowerUsage(h) == 200_000  # the power reading is unaffected


HANDLE_CALLS: dict[str, Callable[[Any, Any], Any]] = {
    "energy": lambda nvml, h: nvml.nvmlDeviceGetTotalEnergyConsumption(h),
    "power": lambda nvml, h: nvml.nvmlDeviceGetPowerUsage(h),
    "name": lambda nvml, h: nvml.nvmlDeviceGetName(h),
    "uuid": lambda nvml, h: nvml.nvmlDeviceGetUUID(h),
    "index": lambda nvml, h: nvml.nvmlDeviceGetIndex(h),
    "mig": lambda nvml, h: nvml.nvmlDeviceGetMigMode(h),
    "limit": lambda nvml, h: nvml.nvmlDeviceGetEnforcedPowerLimit(h),
    "utilization": lambda nvml, h: nvml.nvmlDeviceGetUtilizationRates(h),
    "processes": lambda nvml, h: nvml.nvmlDeviceGetComputeRunningProcesses(h),
}


@pytest.mark.parametrize("call", sorted(HANDLE_CALLS))
def test_a_lost_gpu_answers_every_call_with_gpu_is_lost(call: str) -> None:
    fake, clock, nvml = started(FakeGpu(), FakeGpu(lost_at_s=3.0))
    good, lost = nvml.nvmlDeviceGetHandleByIndex(0), nvml.nvmlDeviceGetHandleByIndex(1)
    at(clock, 2.99)
    HANDLE_CALLS[call](nvml, lost)
    at(clock, 3.0)
    with pytest.raises(NVMLError_GpuIsLost) as err:
        HANDLE_CALLS[call](nvml, lost)
    assert isinstance(err.value, nvml.NVMLError) and str(err.value) == "GPU is lost"
    assert err.value.value == nvml.NVML_ERROR_GPU_IS_LOST == 15
    HANDLE_CALLS[call](nvml, good)


def test_a_lost_gpu_still_counts_but_cannot_be_opened_again() -> None:
    fake, clock, nvml = started(FakeGpu(), FakeGpu(lost_at_s=1.0))
    uuid = nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(1))
    at(clock, 1.0)
    assert nvml.nvmlDeviceGetCount() == 2
    with pytest.raises(NVMLError_GpuIsLost):
        nvml.nvmlDeviceGetHandleByIndex(1)
    with pytest.raises(NVMLError_GpuIsLost):
        nvml.nvmlDeviceGetHandleByUUID(uuid)


def test_set_gpu_changes_a_gpu_mid_run() -> None:
    fake, clock, nvml = started(FakeGpu())
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    at(clock, 2.0)
    fake.set_gpu(0, lost_at_s=2.0)
    with pytest.raises(NVMLError_GpuIsLost):
        nvml.nvmlDeviceGetPowerUsage(h)


# --- MIG -------------------------------------------------------------------------------------

MIGS = (fake_uuid("MIG", 0, 0), fake_uuid("MIG", 0, 1))


def test_mig_devices_report_no_power_of_their_own() -> None:
    fake, clock, nvml = started(FakeGpu(mig=True, mig_instances=MIGS, power=300.0))
    parent = nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlDeviceGetMigMode(parent) == [nvml.NVML_DEVICE_MIG_ENABLE] * 2 == [1, 1]
    assert nvml.nvmlDeviceGetMaxMigDeviceCount(parent) == 7
    mig = nvml.nvmlDeviceGetHandleByUUID(MIGS[1])
    is_mig = nvml.nvmlDeviceIsMigDeviceHandle(mig)
    assert isinstance(is_mig, ctypes.c_uint) and is_mig and is_mig.value == 1
    assert not nvml.nvmlDeviceIsMigDeviceHandle(parent)
    assert nvml.nvmlDeviceGetUUID(mig) == MIGS[1] and MIGS[1].startswith("MIG-")
    back = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
    assert nvml.nvmlDeviceGetIndex(back) == 0
    assert nvml.nvmlDeviceGetUUID(back) == nvml.nvmlDeviceGetUUID(parent)
    for call in (nvml.nvmlDeviceGetPowerUsage, nvml.nvmlDeviceGetTotalEnergyConsumption):
        with pytest.raises(NVMLError_NotSupported):
            call(mig)
    assert nvml.nvmlDeviceGetPowerUsage(parent) == 300_000
    by_index = nvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, 0)
    assert nvml.nvmlDeviceGetUUID(by_index) == MIGS[0]
    with pytest.raises(NVMLError_NotFound):
        nvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, 2)
    with pytest.raises(NVMLError_InvalidArgument):
        nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(parent)
    with pytest.raises(NVMLError_NotSupported):  # no utilisation in MIG mode
        nvml.nvmlDeviceGetUtilizationRates(parent)


def test_mig_modes_without_mig() -> None:
    fake, clock, nvml = started(FakeGpu(), FakeGpu(name="Tesla V100-SXM2-16GB",
                                                   mig_capable=False))
    a100, v100 = (nvml.nvmlDeviceGetHandleByIndex(i) for i in range(2))
    assert nvml.nvmlDeviceGetMigMode(a100) == [0, 0]
    assert nvml.nvmlDeviceGetMaxMigDeviceCount(a100) == 0
    with pytest.raises(NVMLError_NotSupported):
        nvml.nvmlDeviceGetMigMode(v100)


def test_unknown_uuids_are_not_found() -> None:
    fake, clock, nvml = started(FakeGpu(mig=True, mig_instances=MIGS))
    for uuid in ("GPU-00000000-0000-0000-0000-000000000000", "MIG-nope", "0", ""):
        with pytest.raises(NVMLError_NotFound):
            nvml.nvmlDeviceGetHandleByUUID(uuid)
    gpu_uuid = fake.gpus[0].uuid
    assert gpu_uuid is not None and gpu_uuid.startswith("GPU-")
    assert nvml.nvmlDeviceGetIndex(nvml.nvmlDeviceGetHandleByUUID(gpu_uuid.encode())) == 0
    with pytest.raises(NVMLError_InvalidArgument):
        nvml.nvmlDeviceGetHandleByIndex(1)


# --- errors and library state ----------------------------------------------------------------

@pytest.mark.parametrize(("code", "cls", "message"), [
    (1, NVMLError_Uninitialized, "Uninitialized"),
    (2, NVMLError_InvalidArgument, "Invalid Argument"),
    (3, NVMLError_NotSupported, "Not Supported"),
    (4, NVMLError_NoPermission, "Insufficient Permissions"),
    (6, NVMLError_NotFound, "Not Found"),
    (9, NVMLError_DriverNotLoaded, "Driver Not Loaded"),
    (12, NVMLError_LibraryNotFound, "NVML Shared Library Not Found"),
    (15, NVMLError_GpuIsLost, "GPU is lost"),
])
def test_errors_are_pynvmls(code: int, cls: type[NVMLError], message: str) -> None:
    err = NVMLError(code)
    assert type(err) is cls and isinstance(err, NVMLError) and err.value == code
    assert str(err) == message and str(cls()) == message and cls().value == code
    assert cls() == NVMLError(code) and cls() != NVMLError(999)
    assert cls.__name__.startswith("NVMLError_") and cls.__module__ == "pynvml"
    module = FakeNvml([]).module
    assert getattr(module, cls.__name__) is cls
    assert module.nvmlExceptionClass(code) is cls


def test_error_oddities_are_kept() -> None:
    assert str(NVMLError(12345)) == "NVML Error with code 12345"
    assert type(NVMLError(12345)) is NVMLError
    with pytest.raises(TypeError):  # __eq__ without __hash__, as in pynvml
        hash(NVMLError(3))


@pytest.mark.parametrize(("code", "cls"), [(12, NVMLError_LibraryNotFound),
                                           (9, NVMLError_DriverNotLoaded),
                                           (4, NVMLError_NoPermission)])
def test_init_error_is_what_a_machine_without_the_driver_says(
        code: int, cls: type[NVMLError]) -> None:
    fake = FakeNvml([FakeGpu()], clock=ManualClock(), init_error=code)
    with pytest.raises(cls):
        fake.module.nvmlInit()
    with pytest.raises(NVMLError_Uninitialized):
        fake.module.nvmlDeviceGetCount()
    assert not fake.initialized


def test_calls_need_init_and_init_is_reference_counted() -> None:
    fake = FakeNvml([FakeGpu()], clock=ManualClock())
    nvml = fake.module
    for call in (nvml.nvmlDeviceGetCount, nvml.nvmlSystemGetDriverVersion, nvml.nvmlShutdown):
        with pytest.raises(NVMLError_Uninitialized):
            call()
    nvml.nvmlInit()
    nvml.nvmlInit()
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    nvml.nvmlShutdown()
    assert nvml.nvmlSystemGetDriverVersion() == "550.54.15"  # one init still open
    nvml.nvmlShutdown()
    with pytest.raises(NVMLError_Uninitialized):
        nvml.nvmlDeviceGetPowerUsage(h)  # handles outlive nothing


def test_handles_are_opaque_and_new_each_time() -> None:
    fake, clock, nvml = started(FakeGpu())
    a, b = nvml.nvmlDeviceGetHandleByIndex(0), nvml.nvmlDeviceGetHandleByIndex(0)
    assert a is not b and a != b  # ctypes pointers compare by identity
    assert nvml.nvmlDeviceGetUUID(a) == nvml.nvmlDeviceGetUUID(b)
    with pytest.raises(NVMLError_InvalidArgument):
        nvml.nvmlDeviceGetPowerUsage(0)


def test_strings_and_limits_have_pynvmls_types() -> None:
    fake, clock, nvml = started(FakeGpu(power_limit_mw=350_000, enforced_power_limit_mw=300_000),
                                driver_version="535.104.05")
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlSystemGetDriverVersion() == "535.104.05"
    assert isinstance(nvml.nvmlDeviceGetName(h), str) and isinstance(nvml.nvmlDeviceGetUUID(h),
                                                                     str)
    assert nvml.nvmlDeviceGetPowerManagementLimit(h) == 350_000
    assert nvml.nvmlDeviceGetEnforcedPowerLimit(h) == 300_000


# --- utilisation and processes ---------------------------------------------------------------

def test_utilisation_follows_its_profile() -> None:
    fake, clock, nvml = started(FakeGpu(utilization=[(0, 0, 0), (5, 97, 41)]))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    rates = nvml.nvmlDeviceGetUtilizationRates(h)
    assert (rates.gpu, rates.memory) == (0, 0)
    at(clock, 5.0)
    rates = nvml.nvmlDeviceGetUtilizationRates(h)
    assert (rates.gpu, rates.memory) == (97, 41)
    assert str(rates) == "c_nvmlUtilization_t(gpu: 97 %, memory: 41 %)"


def test_processes_and_their_utilisation() -> None:
    fake, clock, nvml = started(FakeGpu(processes=[(4242, 2**30, 90), (77, 2**20, 3)]))
    h = nvml.nvmlDeviceGetHandleByIndex(0)
    procs = nvml.nvmlDeviceGetComputeRunningProcesses(h)
    assert [(p.pid, p.usedGpuMemory) for p in procs] == [(4242, 2**30), (77, 2**20)]
    at(clock, 1.0)
    samples = nvml.nvmlDeviceGetProcessUtilization(h, 0)
    assert [(s.pid, s.smUtil) for s in samples] == [(4242, 90), (77, 3)]
    assert samples[0].timeStamp == FAKE_EPOCH_US + 1_000_000
    with pytest.raises(NVMLError_NotFound):  # nothing newer than what was seen
        nvml.nvmlDeviceGetProcessUtilization(h, samples[0].timeStamp)
    empty, _, nvml2 = started(FakeGpu())
    assert nvml2.nvmlDeviceGetComputeRunningProcesses(nvml2.nvmlDeviceGetHandleByIndex(0)) == []


def test_processes_on_a_mig_device() -> None:
    fake, clock, nvml = started(FakeGpu(mig=True, mig_instances=MIGS,
                                        processes=[(1, 10, 50, 0), (2, 20, 60, 1)]))
    parent, mig1 = nvml.nvmlDeviceGetHandleByIndex(0), nvml.nvmlDeviceGetHandleByUUID(MIGS[1])
    assert [p.pid for p in nvml.nvmlDeviceGetComputeRunningProcesses(parent)] == [1, 2]
    assert [p.pid for p in nvml.nvmlDeviceGetComputeRunningProcesses(mig1)] == [2]


def test_calls_are_counted_per_function_failures_included() -> None:
    fake, clock, nvml = started(FakeGpu(processes=[(1, 1, 1)]), FakeGpu(energy_counter=False))
    handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(2)]
    for _ in range(3):
        for h in handles:
            try:
                nvml.nvmlDeviceGetTotalEnergyConsumption(h)
            except nvml.NVMLError_NotSupported:
                pass
    nvml.nvmlDeviceGetComputeRunningProcesses(handles[0])
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 6
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses"] == 1
    assert fake.calls["nvmlDeviceGetHandleByIndex"] == 2 and fake.calls["nvmlInit"] == 1
    assert fake.calls["nvmlDeviceGetProcessUtilization"] == 0


# --- getting it imported ---------------------------------------------------------------------

def test_sys_modules_swap_gives_code_the_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml([FakeGpu(), FakeGpu()], clock=ManualClock())
    monkeypatch.setitem(sys.modules, "pynvml", fake.module)
    import pynvml

    assert isinstance(pynvml, types.ModuleType) and pynvml is fake.module
    pynvml.nvmlInit()
    assert pynvml.nvmlDeviceGetCount() == 2


def test_scenarios_reject_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown FakeGpu fields"):
        FakeNvml.from_scenario({"gpus": [{"watts": 3}]})
    with pytest.raises(ValueError, match="unknown scenario keys"):
        FakeNvml.from_scenario({"gpu": []})
    with pytest.raises(ValueError, match="sample_duty"):
        FakeGpu(sample_duty=0)


CHILD = """
import json, pynvml
out = {}
pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
out["name"] = pynvml.nvmlDeviceGetName(h)
out["driver"] = pynvml.nvmlSystemGetDriverVersion()
out["count"] = pynvml.nvmlDeviceGetCount()
out["mj"] = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
out["mig"] = pynvml.nvmlDeviceGetMigMode(pynvml.nvmlDeviceGetHandleByIndex(1))
try:
    pynvml.nvmlDeviceGetTotalEnergyConsumption(pynvml.nvmlDeviceGetHandleByIndex(1))
except pynvml.NVMLError as err:
    out["error"] = [type(err).__name__, str(err), err.value]
print(json.dumps(out))
"""


def run_child(tmp_path: Path, code: str, scenario: dict[str, Any] | None
              ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_NVML_")}
    env["PYTHONPATH"] = os.pathsep.join([str(FAKES), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if scenario is not None:
        path = tmp_path / "scenario.json"
        path.write_text(json.dumps(scenario), encoding="utf-8")
        env["FAKE_NVML_SCENARIO"] = str(path)
        env["FAKE_NVML_CALLS_OUT"] = str(tmp_path / "calls.json")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_json_shim_gives_a_subprocess_the_fake(tmp_path: Path) -> None:
    scenario = {"driver_version": "560.35.03", "gpus": [
        {"name": "NVIDIA H100 80GB HBM3", "power": [[0, 0], [1e6, 700]],
         "counter_offset_mj": 42},
        {"energy_counter": False, "mig": True,
         "mig_instances": [fake_uuid("MIG", 1, 0)]},
    ]}
    done = run_child(tmp_path, CHILD, scenario)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "name": "NVIDIA H100 80GB HBM3", "driver": "560.35.03", "count": 2, "mj": 42,
        "mig": [1, 1], "error": ["NVMLError_NotSupported", "Not Supported", 3]}
    calls = json.loads((tmp_path / "calls.json").read_text(encoding="utf-8"))
    assert calls["nvmlDeviceGetTotalEnergyConsumption"] == 2 and calls["nvmlInit"] == 1


def test_json_shim_init_error_and_no_scenario(tmp_path: Path) -> None:
    code = ("import pynvml\ntry:\n    pynvml.nvmlInit()\nexcept pynvml.NVMLError as e:\n"
            "    print(type(e).__name__, e.value)")
    done = run_child(tmp_path, code, {"init_error": 9})
    assert done.stdout.strip() == "NVMLError_DriverNotLoaded 9", done.stderr
    done = run_child(tmp_path, "import pynvml", None)
    assert done.returncode != 0 and "ImportError" in done.stderr
