"""The AMD backend through its real code path: ``import amdsmi`` finds nothing (as on this
machine), a package whose ROCm library is missing, or the fake in tests/fakes/fake_amdsmi.py,
which reproduces AMD SMI's semantics under a manual clock. Expected energies come from the
fake's own integral of the true power."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_amdsmi import RESOLUTION_UJ, FakeAmdsmi, FakeGpu
from runs import by_domain, run_for

from carbonmonitor import ManualClock, Tracker
from carbonmonitor.backends.amdsmi import (
    CHECK_FIRST_S,
    PLAUSIBLE_MAX_W,
    POLL_SAFETY,
    AmdsmiBackend,
    AmdsmiFactory,
    counter_step,
)
from carbonmonitor.backends.base import ProbeContext
from carbonmonitor.errors import BackendUnavailable, ConfigError
from carbonmonitor.options import resolve
from carbonmonitor.records import RunResult


def probe(clock: ManualClock, environ: dict[str, str] | None = None, **options: Any
          ) -> AmdsmiBackend:
    environ = environ or {}
    return AmdsmiFactory().probe(ProbeContext(resolve(options, environ={}), clock, environ))


def run(clock: ManualClock, seconds: float, *, backend: Any = None, tick_s: float = 1.0,
        environ: dict[str, str] | None = None, **options: Any) -> RunResult:
    tracker = Tracker(backend=[backend or AmdsmiFactory()], clock=clock, sampling="manual",
                      quiet=True, db="off", environ=environ or {}, cloud_detect=False,
                      **options)
    return run_for(tracker, clock, seconds, tick_s)


def codes(result: RunResult) -> set[str]:
    return {f.code for f in result.flags}


# -- without the package, or without ROCm's library --------------------------------------------


def test_without_amdsmi_the_probe_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # import amdsmi raises ImportError
    with pytest.raises(BackendUnavailable) as info:
        probe(ManualClock())
    assert "needs the amdsmi package" in info.value.reason
    assert 'pip install "carbonmonitor[amd]"' in info.value.fix
    with pytest.raises(ConfigError, match=r"backend .amdsmi. is unavailable.*carbonmonitor\[amd\]"):
        Tracker(backend=[AmdsmiFactory()], quiet=True, db="off")


def test_a_package_without_its_rocm_library_says_so_and_prints_nothing(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # What amdsmi's wrapper does when libamd_smi.so is missing: print, then fail on import.
    package = tmp_path / "amdsmi"
    package.mkdir()
    (package / "__init__.py").write_text(
        "print('libamd_smi.so: cannot open shared object file: No such file or directory')\n"
        "print('Unable to find libamd_smi.so library try installing amd-smi-lib from your "
        "package manager')\n"
        "_libraries = {}\n"
        "_libraries['libamd_smi.so']\n")
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BackendUnavailable) as info:
        probe(ManualClock())
    assert "cannot load ROCm's AMD SMI library" in info.value.reason
    assert "Unable to find libamd_smi.so" in info.value.reason
    assert "ROCM_PATH" in info.value.fix and "amd-smi-lib" in info.value.fix
    assert capsys.readouterr().out == ""


# -- through a fake amdsmi (tests/fakes/fake_amdsmi.py) -----------------------------------------


@pytest.fixture
def amd(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Install a fake amdsmi built from the GPUs given; returns (fake, clock)."""

    def make(gpus: list[FakeGpu], **kwargs: Any) -> tuple[FakeAmdsmi, ManualClock]:
        clock = ManualClock()
        fake = FakeAmdsmi(gpus, clock=clock, **kwargs)
        monkeypatch.setitem(sys.modules, "amdsmi", fake.module)
        return fake, clock

    yield make


@pytest.mark.parametrize("code, reason, fix", [
    (34, "AMDSMI_STATUS_DRIVER_NOT_LOADED", "modprobe amdgpu"),
    (10, "Permission Denied", "usermod -aG video,render"),
    (18, "Initialization error", "amd-smi list"),
])
def test_amd_smi_that_cannot_start_gives_the_reason_and_fix(amd: Any, code: int, reason: str,
                                                            fix: str) -> None:
    fake, clock = amd([FakeGpu()], init_error=code)
    with pytest.raises(BackendUnavailable) as info:
        probe(clock)
    assert reason in info.value.reason and fix in info.value.fix
    assert fake.calls["amdsmi_get_processor_handles"] == 0


def test_counters_of_two_gpus_match_the_true_energy(amd: Any) -> None:
    fake, clock = amd([FakeGpu(power=[(0, 200.0), (20, 650.0)]),
                       FakeGpu(power=[(0, 120.0), (7.3, 480.0), (41.7, 90.0)])])
    result = run(clock, 60)
    figures = by_domain(result)
    assert sorted(figures) == ["gpu:0", "gpu:1"]
    for i in (0, 1):
        fig, truth = figures[f"gpu:{i}"], fake.true_energy_j(i, 0, 60)
        assert fig.method == "counter" and fig.device == "gpu" and fig.backend == "amdsmi"
        assert fig.uncertainty.rule == "amdsmi-counter-v2"
        assert fig.energy_j == pytest.approx(truth, rel=0.005)
        assert fig.uncertainty.contains(truth)
    assert not {c for c in codes(result) if c.startswith("gpu-")}
    assert fake.calls["amdsmi_shut_down"] == 1


@pytest.mark.parametrize("rocm", [(6, 2, 1), (6, 3, 0), (6, 4, 4), (7, 0, 2)])
def test_every_amdsmi_release_shape_is_read(amd: Any, rocm: tuple[int, int, int]) -> None:
    """The accumulator was "power" up to 6.2, both keys in 6.3, "energy_accumulator" after;
    socket_power exists from 7.0; MI200-class cards report average_socket_power only."""
    fake, clock = amd([FakeGpu(name="AMD Instinct MI210", power_field="average", power=[
        (0, 60.0), (12, 300.0)])], rocm=rocm)
    fig = by_domain(run(clock, 40))["gpu:0"]
    assert fig.method == "counter"
    assert fig.energy_j == pytest.approx(fake.true_energy_j(0, 0, 40), rel=0.005)
    assert fig.uncertainty.contains(fake.true_energy_j(0, 0, 40))


@pytest.mark.parametrize("gpu", [
    FakeGpu(energy_counter=False, power_field="average", power=180.0),  # NOT_SUPPORTED
    FakeGpu(counter_sentinel=True, power=180.0),  # reads UINT_MAX: deprecated by the firmware
])
def test_power_is_integrated_where_there_is_no_usable_counter(amd: Any, gpu: FakeGpu) -> None:
    fake, clock = amd([gpu])
    fig = by_domain(run(clock, 30))["gpu:0"]
    assert fig.method == "power-integration"
    assert fig.uncertainty.rule == "amdsmi-power-integration-v2"
    assert fig.energy_j == pytest.approx(fake.true_energy_j(0, 0, 30), rel=0.005)
    assert fig.uncertainty.contains(fake.true_energy_j(0, 0, 30))


def test_integrated_power_bounds_cover_a_load_step(amd: Any) -> None:
    fake, clock = amd([FakeGpu(energy_counter=False, power_field="average",
                               power=[(0, 90.0), (10.4, 520.0), (21.2, 150.0)])])
    fig = by_domain(run(clock, 30))["gpu:0"]
    assert fig.uncertainty.contains(fake.true_energy_j(0, 0, 30))
    assert fig.energy_j == pytest.approx(fake.true_energy_j(0, 0, 30), rel=0.05)


def test_a_stuck_counter_on_old_rocm_is_caught_by_the_power_check(amd: Any) -> None:
    """MI100 on ROCm 6.0.2: the accumulator never moves (ROCm/amdsmi#22)."""
    fake, clock = amd([FakeGpu(name="AMD Instinct MI100", power_field="average",
                               counter_stuck_at_s=0.0, power=250.0)], rocm=(6, 0, 2))
    backend = probe(clock)
    assert backend.domains()[0].method == "counter"  # nothing is wrong until checked
    result = run(clock, 60, backend=backend)
    fig = by_domain(result)["gpu:0"]
    truth = fake.true_energy_j(0, 0, 60)
    assert fig.energy_j == pytest.approx(truth, rel=0.005)
    assert fig.uncertainty.contains(truth)
    assert fig.method == "power-integration"  # the result says what the figure really is
    rejected = [f for f in result.flags if f.code == "gpu-counter-rejected"]
    assert len(rejected) == 1 and "0.00x the integrated power" in rejected[0].message
    assert "ROCm to 6.3" in rejected[0].fix
    domain = backend.domains()[0]
    assert domain.method == "power-integration" and "counter rejected" in domain.detail


def test_a_counter_that_stops_mid_run_is_caught_by_a_later_check(amd: Any) -> None:
    fake, clock = amd([FakeGpu(power=300.0, counter_stuck_at_s=40.0)])
    result = run(clock, 120)
    assert by_domain(result)["gpu:0"].energy_j == pytest.approx(
        fake.true_energy_j(0, 0, 120), rel=0.005)
    (flag,) = [f for f in result.flags if f.code == "gpu-counter-rejected"]
    assert "at 70 s" in flag.message  # the window 40..70 s: the first one the stall spoils


def test_a_counter_running_fast_is_rejected_without_going_backwards(amd: Any) -> None:
    """A wrong scale (ROCm/amdsmi#38): the figure may not drop, so it waits for the power
    integral to catch up; the meter never sees a decrease (it would flag a counter reset)."""
    fake, clock = amd([FakeGpu(power=400.0, counter_scale=2.0)])
    backend = probe(clock)
    seen = []
    for _ in range(60):
        clock.advance(1.0)
        seen.append(backend.read(clock.monotonic())["gpu:0"])
    assert all(b.energy_j >= a.energy_j and b.low_j >= a.low_j and b.high_j >= a.high_j
               for a, b in zip(seen, seen[1:], strict=False))
    assert seen[9].energy_j == pytest.approx(2 * fake.true_energy_j(0, 0, CHECK_FIRST_S))
    assert seen[-1].energy_j == pytest.approx(fake.true_energy_j(0, 0, 60), rel=0.005)
    assert "gpu-counter-rejected" in {f.code for f in backend.flags}
    backend.close()


@pytest.mark.parametrize("field, period_s", [
    ("average", 4.0),  # MI200-class: a 1 s average lags the steps
    ("current", 0.6),  # MI300-class: instantaneous readings alias a sub-second burst
])
def test_a_good_counter_passes_every_check_under_a_bursty_load(amd: Any, field: str,
                                                                period_s: float) -> None:
    steps = [(k * period_s / 2, 650.0 if k % 2 == 0 else 90.0)
             for k in range(int(400 / period_s))]
    fake, clock = amd([FakeGpu(power=steps, power_field=field)])
    backend = probe(clock)
    result = run(clock, 200, backend=backend)
    assert "gpu-counter-rejected" not in codes(result)
    assert backend.cards[0].checks == 7  # at 10 s, then every 30 s
    assert by_domain(result)["gpu:0"].energy_j == pytest.approx(
        fake.true_energy_j(0, 0, 200), rel=0.005)


def test_a_run_shorter_than_the_first_check_says_the_counter_is_unchecked(amd: Any) -> None:
    _, clock = amd([FakeGpu()])
    assert "gpu-counter-unchecked" in codes(run(clock, 3))


def test_a_32_bit_accumulator_wraps_without_losing_energy(amd: Any) -> None:
    fake, clock = amd([FakeGpu(power=500.0, counter_bits=32, counter_offset=2**32 - 10_000)])
    backend = probe(clock)
    assert backend.poll_period_s == pytest.approx(
        2**32 * RESOLUTION_UJ * 1e-6 / PLAUSIBLE_MAX_W / POLL_SAFETY)
    result = run(clock, 300, backend=backend)  # 150 kJ: two more wraps after the first
    assert by_domain(result)["gpu:0"].energy_j == pytest.approx(
        fake.true_energy_j(0, 0, 300), rel=0.005)
    assert backend.cards[0].events == {"wrap": 3}
    assert not {"gpu-counter-reset", "counter-reset"} & codes(result)


def test_a_64_bit_accumulator_asks_for_no_poll_period(amd: Any) -> None:
    _, clock = amd([FakeGpu(counter_offset=2**40)])
    assert probe(clock).poll_period_s is None


def test_a_counter_reset_is_flagged_and_counting_goes_on(amd: Any) -> None:
    fake, clock = amd([FakeGpu(power=100.0, reset_at_s=30.5)])
    result = run(clock, 60)
    energy = by_domain(result)["gpu:0"].energy_j
    truth = fake.true_energy_j(0, 0, 60)
    assert truth - 100 * 0.5 * 1.01 <= energy <= truth  # at most the 0.5 s before the reset
    assert "gpu-counter-reset" in codes(result)


def test_a_lost_gpu_is_flagged_and_the_others_go_on(amd: Any) -> None:
    fake, clock = amd([FakeGpu(power=100.0, lost_at_s=20.0), FakeGpu(power=50.0)])
    result = run(clock, 40)
    figures = by_domain(result)
    assert figures["gpu:0"].energy_j == pytest.approx(100 * 19, rel=0.005)
    assert figures["gpu:1"].energy_j == pytest.approx(fake.true_energy_j(1, 0, 40), rel=0.005)
    (lost,) = [f for f in result.flags if f.code == "gpu-lost"]
    assert "GPU 0" in lost.message and "Device Not found" in lost.message


def test_a_busy_gpu_is_read_again_and_loses_nothing(amd: Any) -> None:
    fake, clock = amd([FakeGpu(power=[(0, 200.0), (11.5, 600.0)], busy=(10.0, 12.5))])
    result = run(clock, 30)
    assert by_domain(result)["gpu:0"].energy_j == pytest.approx(
        fake.true_energy_j(0, 0, 30), rel=0.005)
    assert "gpu-lost" not in codes(result)


# -- MI250-class cards: two dies, one reports ----------------------------------------------------


def mi250x(power: float) -> FakeGpu:
    return FakeGpu(name="AMD Instinct MI250X", dual_die=True, power_field="average",
                   power=power)


def test_a_dual_die_card_is_measured_once_never_as_a_gpu_at_0_w(amd: Any) -> None:
    fake, clock = amd([mi250x(420.0), mi250x(380.0)])  # four dies: 0+1, 2+3
    result = run(clock, 60)
    figures = by_domain(result)
    assert sorted(figures) == ["gpu:0", "gpu:2"]
    for key, card in (("gpu:0", 0), ("gpu:2", 1)):
        assert figures[key].method == "counter"
        assert figures[key].energy_j == pytest.approx(fake.true_energy_j(card, 0, 60), rel=0.005)
        assert "card of dies" in figures[key].detail
    dual = [f for f in result.flags if f.code == "gpu-dual-die"]
    assert len(dual) == 2 and "GPU 0 and GPU 1 are the dies of one AMD Instinct MI250X" in \
        dual[0].message


def test_a_job_on_the_silent_die_gets_the_card_and_a_warning(amd: Any) -> None:
    fake, clock = amd([mi250x(420.0), mi250x(380.0)])
    result = run(clock, 30, environ={"ROCR_VISIBLE_DEVICES": "1"})
    figures = by_domain(result)
    assert list(figures) == ["gpu:1"]
    assert figures["gpu:1"].energy_j == pytest.approx(fake.true_energy_j(0, 0, 30), rel=0.005)
    (shared,) = [f for f in result.flags if f.code == "gpu-dual-die-shared"]
    assert "die 0, which this job does not use" in shared.message


def test_two_mi300x_are_not_mistaken_for_dies(amd: Any) -> None:
    _, clock = amd([FakeGpu(), FakeGpu()])
    assert [d.key for d in probe(clock).domains()] == ["gpu:0", "gpu:1"]


# -- which GPUs ------------------------------------------------------------------------------


@pytest.mark.parametrize("environ, measured", [
    ({"ROCR_VISIBLE_DEVICES": "2,0"}, ["gpu:0", "gpu:2"]),
    ({"ROCR_VISIBLE_DEVICES": "1,2,3", "HIP_VISIBLE_DEVICES": "0,2"}, ["gpu:1", "gpu:3"]),
    ({"HIP_VISIBLE_DEVICES": "3"}, ["gpu:3"]),
    ({"CUDA_VISIBLE_DEVICES": "1"}, ["gpu:1"]),  # HIP reads it when HIP_VISIBLE_DEVICES is unset
    ({"HIP_VISIBLE_DEVICES": "2", "CUDA_VISIBLE_DEVICES": "1"}, ["gpu:2"]),
    ({"ROCR_VISIBLE_DEVICES": "0,7"}, ["gpu:0"]),
])
def test_visible_devices_decide_which_gpus_count(amd: Any, environ: dict[str, str],
                                                 measured: list[str]) -> None:
    _, clock = amd([FakeGpu() for _ in range(4)])
    result = run(clock, 5, environ=environ)
    assert sorted(by_domain(result)) == measured
    assert ("gpu-visibility" in codes(result)) == (environ.get("ROCR_VISIBLE_DEVICES") == "0,7")


def test_rocr_uuids_and_runtime_order_come_from_amdsmi(amd: Any) -> None:
    fake, clock = amd([FakeGpu() for _ in range(4)], hip_order=[1, 0, 3, 2])
    uuid = fake.hip_uuid(3)
    assert [d.key for d in probe(clock, {"ROCR_VISIBLE_DEVICES": uuid}).domains()] == ["gpu:3"]
    # the runtime's GPU 0 is amdsmi's GPU 1 here
    assert [d.key for d in probe(clock, {"ROCR_VISIBLE_DEVICES": "0"}).domains()] == ["gpu:1"]


def test_mixed_models_without_runtime_indices_are_flagged(amd: Any) -> None:
    _, clock = amd([FakeGpu(name="AMD Instinct MI210"), FakeGpu()], rocm=(6, 2, 1))
    result = run(clock, 5, environ={"HIP_VISIBLE_DEVICES": "0"})
    assert "gpu-order" in codes(result)


def test_all_hidden_skips_the_backend_unless_gpus_all(amd: Any) -> None:
    fake, clock = amd([FakeGpu(), FakeGpu()])
    with pytest.raises(BackendUnavailable) as info:
        probe(clock, {"ROCR_VISIBLE_DEVICES": ""})
    assert "hides every AMD GPU" in info.value.reason and "gpus=all" in info.value.fix
    result = run(clock, 5, environ={"ROCR_VISIBLE_DEVICES": ""}, gpus="all")
    assert sorted(by_domain(result)) == ["gpu:0", "gpu:1"]
    smi = fake.module
    smi.amdsmi_init()
    uuid = smi.amdsmi_get_gpu_device_uuid(smi.amdsmi_get_processor_handles()[1])
    smi.amdsmi_shut_down()
    assert [d.key for d in probe(clock, gpus=uuid).domains()] == ["gpu:1"]
    with pytest.raises(ConfigError, match="gpus: no AMD GPU '5'"):
        probe(clock, gpus="5")


def test_a_gpu_with_nothing_to_read_is_left_out_and_flagged(amd: Any) -> None:
    _, clock = amd([FakeGpu(energy_counter=False, power_field=None), FakeGpu(power=90.0)])
    result = run(clock, 10)
    assert list(by_domain(result)) == ["gpu:1"]
    assert "gpu-unmeasured" in codes(result)
    _, clock = amd([FakeGpu(energy_counter=False, power_field=None)])
    with pytest.raises(BackendUnavailable, match="reports neither energy nor power"):
        probe(clock)


def test_utilisation_is_gfx_activity_averaged_over_the_jobs_dies(amd: Any) -> None:
    _, clock = amd([FakeGpu(activity=[(0, 30.0), (5, 80.0)]), FakeGpu(activity=None),
                    FakeGpu(name="AMD Instinct MI250X", dual_die=True, power_field="average",
                            activity=64.0)])
    backend = probe(clock)
    assert backend.utilisation() == {"gpu:0": 30.0, "gpu:2": 64.0}
    clock.advance(6)
    assert backend.utilisation()["gpu:0"] == 80.0


# -- the counter arithmetic ---------------------------------------------------------------------


@pytest.mark.parametrize("prev, now, wrap, expected", [
    (100, 250, 1 << 64, (150, "")),
    (2**32 - 50, 70, 1 << 32, (120, "wrap")),
    (2**40, 70, 1 << 64, (70, "reset")),              # a 64-bit counter does not wrap
    (2**32 - 50, 70, 1 << 64, (70, "reset")),
    (100, 10**9, 1 << 64, (None, "glitch")),          # more than any GPU draws
    (10**9, 10**8, 1 << 64, (None, "glitch")),        # backwards, to a value no restart gives
])
def test_counter_steps(prev: int, now: int, wrap: int, expected: tuple[int | None, str]) -> None:
    assert counter_step(prev, now, wrap, max_units=10**6) == expected


# -- the fake answers as amdsmi does -----------------------------------------------------------


def test_the_fake_raises_and_returns_what_amdsmi_does() -> None:
    from fakes import fake_amdsmi as f

    old = FakeAmdsmi([FakeGpu()], clock=ManualClock(), rocm=(6, 2, 1)).module
    with pytest.raises(f.AmdSmiLibraryException) as info:
        old.amdsmi_get_processor_handles()  # before amdsmi_init
    assert info.value.get_error_code() == 32
    assert str(info.value) == "Error code:\n\t32 | AMDSMI_STATUS_NOT_INIT - Device not initialized"
    with pytest.raises(f.AmdSmiParameterException):
        old.amdsmi_init(2)  # a plain int is not an AmdSmiInitFlags
    old.amdsmi_init()
    (handle,) = old.amdsmi_get_processor_handles()
    with pytest.raises(f.AmdSmiParameterException):
        old.amdsmi_get_energy_count(0)
    assert sorted(old.amdsmi_get_energy_count(handle)) == ["counter_resolution", "power",
                                                            "timestamp"]
    assert old.amdsmi_get_power_info(handle)["average_socket_power"] == "N/A"
    assert not hasattr(old, "amdsmi_get_gpu_enumeration_info")  # added in 6.4
    assert issubclass(f.AmdSmiRetryException, old.AmdSmiLibraryException)
