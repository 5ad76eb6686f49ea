"""The NVIDIA backend, through its real code path: ``import pynvml`` finds nothing (as on this
machine), or the fake in tests/fakes/fake_nvml.py, which reproduces NVML's semantics under a
manual clock. Expected energies come from the fake's own integral of the true power."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.fake_nvml import FakeGpu, FakeNvml, fake_uuid
from runs import by_domain, run_for

from carbonmonitor import ManualClock, Tracker
from carbonmonitor.errors import ConfigError
from carbonmonitor.records import RunResult


def test_without_nvidia_ml_py_auto_skips_it_with_the_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    tracker = Tracker(quiet=True, sampling="manual", db="off")
    status = {b.name: b for b in tracker.backends}["nvml"]
    assert not status.used
    assert "nvidia-ml-py" in status.reason and 'carbonmonitor[nvidia]' in status.fix
    with pytest.raises(ConfigError, match=r"backend .nvml. is unavailable"):
        Tracker(backend="nvml", quiet=True, db="off")


# -- through a fake pynvml (tests/fakes/fake_nvml.py) ---------------------------------------


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Install a fake pynvml built from the GPUs given; returns (fake, clock)."""
    made: list[FakeNvml] = []

    def make(gpus: list[FakeGpu], **kwargs: Any) -> tuple[FakeNvml, ManualClock]:
        clock = ManualClock()
        fake = FakeNvml(gpus, clock=clock, **kwargs)
        monkeypatch.setitem(sys.modules, "pynvml", fake.module)
        made.append(fake)
        return fake, clock

    yield make


def run(clock: ManualClock, seconds: float, tick_s: float = 1.0, environ: dict[str, str] | None
        = None, **options: Any) -> RunResult:
    tracker = Tracker(backend="nvml", clock=clock, sampling="manual", quiet=True, db="off",
                      environ=environ or {}, cloud_detect=False, **options)
    return run_for(tracker, clock, seconds, tick_s)


def test_counters_of_two_gpus_match_the_true_energy(nvml: Any) -> None:
    fake, clock = nvml([FakeGpu(power=[(0, 100.0), (20, 300.0)]), FakeGpu(power=250.0)])
    result = run(clock, 60)
    figures = by_domain(result)
    for i in (0, 1):
        fig = figures[f"gpu:{i}"]
        assert fig.method == "counter" and fig.device == "gpu"
        assert fig.energy_j == pytest.approx(fake.true_energy_j(i, 0, 60), rel=0.005)
        assert fig.uncertainty.contains(fake.true_energy_j(i, 0, 60))
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses"] == 0  # never on a tick


def test_power_is_integrated_where_the_counter_is_not_supported(nvml: Any) -> None:
    fake, clock = nvml([FakeGpu(energy_counter=False, power=180.0)])
    fig = by_domain(run(clock, 30))["gpu:0"]
    assert fig.method == "power-integration"
    assert fig.energy_j == pytest.approx(fake.true_energy_j(0, 0, 30), rel=0.005)
    assert fig.uncertainty.contains(fake.true_energy_j(0, 0, 30))


@pytest.mark.parametrize("visible, measured", [
    ("1", ["gpu:1"]),
    ("2,0", ["gpu:0", "gpu:2"]),
    (fake_uuid("GPU", 2)[:12], ["gpu:2"]),
    ("0,7,1", ["gpu:0"]),  # as CUDA does: the list ends at the entry that names no GPU
])
def test_cuda_visible_devices_decides_which_gpus_count(nvml: Any, visible: str,
                                                       measured: list[str]) -> None:
    _, clock = nvml([FakeGpu(), FakeGpu(), FakeGpu()])
    result = run(clock, 5, environ={"CUDA_VISIBLE_DEVICES": visible})
    assert sorted(by_domain(result)) == measured
    if visible == "0,7,1":
        assert "gpu-visibility" in {f.code for f in result.flags}


def test_all_gpus_hidden_skips_nvml_unless_gpus_all(nvml: Any) -> None:
    _, clock = nvml([FakeGpu(), FakeGpu()])
    tracker = Tracker(clock=clock, sampling="manual", quiet=True, db="off",
                      environ={"CUDA_VISIBLE_DEVICES": ""})
    status = {b.name: b for b in tracker.backends}["nvml"]
    assert not status.used and "hides every GPU" in status.reason and "gpus=all" in status.fix
    result = run(clock, 5, environ={"CUDA_VISIBLE_DEVICES": ""}, gpus="all")
    assert sorted(by_domain(result)) == ["gpu:0", "gpu:1"]
    with pytest.raises(ConfigError, match="gpus: no GPU '5'"):
        Tracker(backend="nvml", quiet=True, db="off", gpus="5")


def test_mig_measures_the_whole_gpu_and_says_so(nvml: Any) -> None:
    mig = fake_uuid("MIG", 0, 0)
    fake, clock = nvml([FakeGpu(mig=True, mig_instances=(mig, fake_uuid("MIG", 0, 1)),
                                power=200.0)])
    result = run(clock, 10, environ={"CUDA_VISIBLE_DEVICES": mig})
    assert by_domain(result)["gpu:0"].energy_j == pytest.approx(fake.true_energy_j(0, 0, 10),
                                                                 rel=0.005)
    assert "gpu-mig" in {f.code for f in result.flags}


def test_a_counter_reset_is_flagged_and_counting_goes_on(nvml: Any) -> None:
    fake, clock = nvml([FakeGpu(power=100.0, reset_at_s=30.5)])
    result = run(clock, 60)
    energy = by_domain(result)["gpu:0"].energy_j
    truth = fake.true_energy_j(0, 0, 60)
    assert truth - 100 * 0.5 * 1.01 <= energy <= truth  # at most the 0.5 s before the reset
    assert "gpu-counter-reset" in {f.code for f in result.flags}


def test_a_lost_gpu_is_flagged_and_the_others_go_on(nvml: Any) -> None:
    fake, clock = nvml([FakeGpu(power=100.0, lost_at_s=20.0), FakeGpu(power=50.0)])
    result = run(clock, 40)
    figures = by_domain(result)
    # read every second: the last answer before the loss at 20 s came at 19 s
    assert figures["gpu:0"].energy_j == pytest.approx(100 * 19, rel=0.005)
    assert figures["gpu:1"].energy_j == pytest.approx(fake.true_energy_j(1, 0, 40), rel=0.005)
    lost = [f for f in result.flags if f.code == "gpu-lost"]
    assert len(lost) == 1 and "GPU 0" in lost[0].message


def test_nvml_that_cannot_start_gives_the_reason_and_fix(nvml: Any) -> None:
    nvml([FakeGpu()], init_error=9)  # NVML_ERROR_DRIVER_NOT_LOADED
    tracker = Tracker(quiet=True, sampling="manual", db="off")
    status = {b.name: b for b in tracker.backends}["nvml"]
    assert not status.used and "Driver Not Loaded" in status.reason
    assert "nvidia-smi" in status.fix


def test_short_phases_are_flagged_and_their_interval_covers_an_update_each_edge(
        nvml: Any) -> None:
    fake, clock = nvml([FakeGpu(power=300.0, counter_update_s=0.1)])
    tracker = Tracker(backend="nvml", clock=clock, sampling="manual", quiet=True, db="off")
    tracker.start()
    clock.advance(5)
    tracker.tick()
    with tracker.phase("step"):
        clock.advance(0.25)
    clock.advance(5)
    result = tracker.stop()
    step = result.phase("step").energy[0]
    assert step.uncertainty.contains(300 * 0.25)
    assert step.uncertainty.high - step.energy_j >= 2 * 0.1 * 300 * 0.99
    assert "window-too-short" in {f.code for f in result.flags}


def test_gpu_utilisation_is_stored_beside_energy(nvml: Any, tmp_path: Any) -> None:
    import carbonmonitor

    _, clock = nvml([FakeGpu(power=200.0, utilization=((0, 10, 5), (10.5, 90, 40)))])
    db = tmp_path / "runs.db"
    tracker = Tracker(backend="nvml", clock=clock, sampling="manual", quiet=True, db=str(db),
                      flush_interval=5)
    tracker.start()
    for _ in range(20):
        clock.advance(1)
        tracker.tick()
    result = tracker.stop()
    series = carbonmonitor.series(result.identity.run_id, db=db)
    assert series.t_s == [float(i) for i in range(21)]
    assert series.utilisation_pct["gpu:0"] == [10.0] * 11 + [90.0] * 10
    assert series.energy_j["gpu:0"][-1] == pytest.approx(200 * 20, rel=0.005)


# -- the uncertainty model (docs/uncertainty.md) --------------------------------------------


def locked_bursts(seconds: float, burst_first: bool, high: float = 400.0, low: float = 60.0,
                  period: float = 0.1, duty: float = 0.25) -> list[tuple[float, float]]:
    """Idle until 0.1 s, then a load locked to the sensor's period: ``high`` for the slice the
    sensor sees (``burst_first``) or for the rest of each period (the sensor sees ``low``)."""
    steps = [(0.0, low)]
    for k in range(1, round(seconds / period) + 1):
        t = k * period
        seen, unseen = (high, low) if burst_first else (low, high)
        steps += [(t, seen), (t + duty * period, unseen)]
    return steps


@pytest.mark.parametrize("burst_first", [True, False])
def test_a_bursty_load_aliased_by_partial_sampling_stays_inside_the_interval(
        nvml: Any, burst_first: bool) -> None:
    """An A100 sees 25 % of each 100 ms (Yang et al., SC'24). A load locked to that period is
    misread by the hardware itself, up or down by a factor of 2-5; the sampling-duty term, from
    the power at the start (idle) to the power limit, still contains the truth."""
    fake, clock = nvml([FakeGpu(name="NVIDIA A100-SXM4-80GB", sample_duty=0.25,
                                power=locked_bursts(20, burst_first), power_limit_mw=400_000,
                                utilization=((0.0, 25.0, 10.0),))])
    fig = by_domain(run(clock, 20))["gpu:0"]
    truth = fake.true_energy_j(0, 0, 20)
    assert abs(fig.energy_j / truth - 1) > 0.5  # the hardware's own reading is far off
    assert fig.uncertainty.contains(truth)
    assert fig.uncertainty.rule == "nvml-counter-v2"
    assert "25%" in fig.detail


def test_a_steady_load_gets_no_sampling_duty_term(nvml: Any) -> None:
    """Near 100 % utilisation nothing alternates within a sensor period to alias: the interval
    is calibration (+-5 %) and the two edges only."""
    fake, clock = nvml([FakeGpu(name="NVIDIA H100 80GB HBM3", sample_duty=0.25, power=350.0,
                                power_limit_mw=700_000, utilization=((0.0, 99.0, 40.0),))])
    fig = by_domain(run(clock, 60))["gpu:0"]
    truth = fake.true_energy_j(0, 0, 60)
    assert fig.energy_j == pytest.approx(truth, rel=0.005)
    assert fig.uncertainty.contains(truth)
    edges = 2 * (0.001 + 0.1 * 350)
    assert fig.uncertainty.high == pytest.approx(fig.energy_j * 1.05 + edges, rel=0.01)
    assert fig.uncertainty.low == pytest.approx(fig.energy_j * 0.95 - edges, rel=0.01)


def test_power_integration_widens_with_the_change_between_readings(nvml: Any) -> None:
    """A sampled GPU's interval adds half the power step of each read interval (the trapezoid
    cannot know when in the interval the change happened)."""
    fake, clock = nvml([FakeGpu(energy_counter=False, power_average_s=0.0,
                                power=[(0, 100.0), (10.5, 300.0)],
                                utilization=((0.0, 100.0, 0.0),))])
    fig = by_domain(run(clock, 20))["gpu:0"]
    truth = fake.true_energy_j(0, 0, 20)
    assert fig.uncertainty.rule == "nvml-power-v2"
    assert fig.uncertainty.contains(truth)
    assert fig.uncertainty.high - fig.energy_j >= 0.05 * fig.energy_j + 200 * 1.0 / 2
