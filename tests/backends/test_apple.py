"""The Apple Silicon backend, through its real code path: ``import zeus_apple_silicon`` finds the
fake of tests/fakes/fake_apple.py (or nothing, as on this machine), and the platform facts say
"a Mac" or not. Expected energies come from the fake's own integral of the true power."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from fakes.fake_apple import FakeAppleSilicon, FakeChip, mac
from runs import by_domain

from carbonmonitor import ConfigError, ManualClock, Tracker
from carbonmonitor.backends.apple import AppleFactory, host_platform
from carbonmonitor.backends.base import ProbeContext
from carbonmonitor.errors import BackendUnavailable
from carbonmonitor.options import resolve
from carbonmonitor.records import RunResult

# domain key -> the AppleEnergyMetrics fields it adds up
FIELDS = {"cpu": ("cpu_total_mj",), "gpu:0": ("gpu_mj", "gpu_sram_mj"), "memory": ("dram_mj",),
          "ane": ("ane_mj",)}

Make = Callable[..., tuple[FakeAppleSilicon, ManualClock]]


@pytest.fixture
def apple(monkeypatch: pytest.MonkeyPatch) -> Make:
    """Install a fake zeus_apple_silicon for the chip given; returns (fake, clock)."""

    def make(**chip: Any) -> tuple[FakeAppleSilicon, ManualClock]:
        clock = ManualClock()
        fake = FakeAppleSilicon(FakeChip(**chip), clock)
        monkeypatch.setitem(sys.modules, "zeus_apple_silicon", fake.module)
        return fake, clock

    return make


def run(clock: ManualClock, seconds: int, backend: list[Any] | None = None,
        **options: Any) -> RunResult:
    tracker = Tracker(backend=backend or [AppleFactory(platform=mac())], clock=clock,
                      sampling="manual", quiet=True, db="off", **options)
    tracker.start()
    for _ in range(seconds):
        clock.advance(1.0)
        tracker.tick()
    return tracker.stop()


def truth(fake: FakeAppleSilicon, key: str, t0: float, t1: float) -> float:
    return sum(fake.true_energy_j(f, t0, t1) for f in FIELDS[key] if f in fake.chip.power)


def probe(platform: Callable[[], tuple[str, str]]) -> BackendUnavailable:
    context = ProbeContext(resolve({}, environ={}), ManualClock())
    with pytest.raises(BackendUnavailable) as caught:
        AppleFactory(platform=platform).probe(context)
    return caught.value


def test_each_block_matches_the_true_energy(apple: Make) -> None:
    fake, clock = apple(power={"cpu_total_mj": ((0, 4.0), (20, 22.0)), "gpu_mj": 15.0,
                               "gpu_sram_mj": 0.8, "dram_mj": 1.2, "ane_mj": ((0, 0.0),
                                                                             (30, 2.5))})
    result = run(clock, 60)
    figures = by_domain(result)
    assert sorted(figures) == ["ane", "cpu", "gpu:0", "memory"]
    assert {k: f.device for k, f in figures.items()} == {
        "ane": "ane", "cpu": "cpu", "gpu:0": "gpu", "memory": "memory"}
    for key, fig in figures.items():
        expected = truth(fake, key, 0, 60)
        assert fig.method == "counter" and fig.uncertainty.rule == "apple-counter-v2"
        assert fig.energy_j == pytest.approx(expected, rel=0.005)
        assert fig.uncertainty.contains(expected)
    # one IOReport sample at probe, then one per read (start, 60 ticks, stop)
    assert fake.calls["get_cumulative_energy"] == 1 + 62


def test_an_ultra_chip_counts_both_dies(apple: Make) -> None:
    fake, clock = apple(dies=2, power={"cpu_total_mj": 30.0, "gpu_mj": 40.0})
    figures = by_domain(run(clock, 30))
    assert figures["cpu"].energy_j == pytest.approx(2 * 30.0 * 30, rel=0.005)
    assert figures["gpu:0"].energy_j == pytest.approx(truth(fake, "gpu:0", 0, 30), rel=0.005)


def test_a_chip_without_dram_reporting_leaves_memory_to_the_estimate(apple: Make) -> None:
    fake, clock = apple(power={"cpu_total_mj": 10.0, "gpu_mj": 5.0})  # no DRAM, SRAM nor ANE
    result = run(clock, 20, backend=[AppleFactory(platform=mac()), "estimate"])
    figures = by_domain(result)
    assert figures["cpu"].backend == "apple" and figures["gpu:0"].backend == "apple"
    assert "ane" not in figures
    assert figures["memory"].backend == "estimate" and figures["memory"].method == "model"
    assert figures["gpu:0"].energy_j == pytest.approx(5.0 * 20, rel=0.005)
    assert {s.name: s.devices for s in result.backends if s.used}["apple"] == ("cpu", "gpu")


def test_a_library_failure_mid_run_is_made_up_by_the_next_read(apple: Make) -> None:
    fake, clock = apple(fail=((20.5, 25.5, RuntimeError("Failed to convert CFString to "
                                                        "std::string")),))
    result = run(clock, 40)
    for key, fig in by_domain(result).items():
        assert fig.energy_j == pytest.approx(truth(fake, key, 0, 40), rel=0.005)
    failed = [f for f in result.flags if f.code == "apple-read-failed"]
    assert len(failed) == 1 and "failed 5 read(s)" in failed[0].message
    assert "covered" in failed[0].message and "backend-failed" not in {
        f.code for f in result.flags}


def test_a_library_that_stops_working_is_flagged_and_other_backends_go_on(
        apple: Make) -> None:
    fake, clock = apple(power={"cpu_total_mj": 10.0, "gpu_mj": 6.0},
                        fail=((30.5, 1e9, ValueError("Unsupported or invalid energy unit "
                                                     "provided: fJ")),))
    result = run(clock, 60, backend=[AppleFactory(platform=mac()), "constant"],
                 constant_power="memory=3")
    figures = by_domain(result)
    # read every second: the last good read before the failure at 30.5 s came at 30 s
    assert figures["cpu"].energy_j == pytest.approx(10.0 * 30, rel=0.005)
    assert figures["memory"].energy_j == pytest.approx(3.0 * 60, rel=0.005)
    failed = [f for f in result.flags if f.code == "apple-read-failed"]
    assert len(failed) == 1 and "from 31.0 s on" in failed[0].message
    assert "invalid energy unit" in failed[0].message and "zeus-apple-silicon" in failed[0].fix


def test_a_channel_absent_from_some_samples_loses_nothing(apple: Make) -> None:
    fake, clock = apple(missing=(("gpu_sram_mj", 10.5, 14.5),))
    result = run(clock, 30)
    assert by_domain(result)["gpu:0"].energy_j == pytest.approx(truth(fake, "gpu:0", 0, 30),
                                                                 rel=0.005)
    missing = [f for f in result.flags if f.code == "apple-channel-missing"]
    assert len(missing) == 1 and "gpu:0" in missing[0].message
    assert "absent from 4 IOReport sample(s)" in missing[0].message  # read at 11, 12, 13, 14 s


def test_a_counter_restart_drops_only_its_interval(apple: Make) -> None:
    fake, clock = apple(power={"cpu_total_mj": 10.0}, reset_at_s=20.5)
    result = run(clock, 40)
    energy = by_domain(result)["cpu"].energy_j
    assert energy == pytest.approx(10.0 * 39, rel=0.005)  # the 20 -> 21 s interval is dropped
    assert "apple-counter-reset" in {f.code for f in result.flags}


def test_a_short_phase_interval_covers_an_update_at_each_edge(apple: Make) -> None:
    fake, clock = apple(power={"cpu_total_mj": 20.0})
    tracker = Tracker(backend=[AppleFactory(platform=mac())], clock=clock, sampling="manual",
                      quiet=True, db="off")
    tracker.start()
    clock.advance(5)
    tracker.tick()
    with tracker.phase("step"):
        clock.advance(0.25)
    clock.advance(5)
    step = tracker.stop().phase("step").energy[0]
    assert step.uncertainty.contains(20.0 * 0.25)
    assert step.uncertainty.high - step.energy_j >= 2 * 0.1 * 20.0 * 0.99


def test_a_library_older_than_1_1_is_flagged(apple: Make) -> None:
    fake, clock = apple(library_version=(1, 0))
    result = run(clock, 5)
    old = [f for f in result.flags if f.code == "apple-old-library"]
    assert len(old) == 1 and "Ultra" in old[0].message and ">=1.1" in old[0].fix
    assert by_domain(result)["cpu"].energy_j == pytest.approx(truth(fake, "cpu", 0, 5), rel=0.005)


@pytest.mark.parametrize("system, machine, reason, fix", [
    ("linux", "x86_64", "only on macOS (this is linux)", "other backends"),
    ("win32", "", "only on macOS (this is win32)", "other backends"),
    ("darwin", "x86_64", "Rosetta 2", "arm64 Python"),
])
def test_not_an_apple_silicon_python_is_a_reason_and_a_fix(
        apple: Make, system: str, machine: str, reason: str, fix: str) -> None:
    fake, _ = apple()
    err = probe(mac(system, machine))
    assert reason in err.reason and fix in err.fix
    assert not fake.calls  # the library is never touched off Apple Silicon


def test_without_zeus_apple_silicon_the_fix_names_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zeus_apple_silicon", None)  # import raises ImportError
    err = probe(mac())
    assert "zeus-apple-silicon" in err.reason and 'carbonmonitor[apple]' in err.fix
    with pytest.raises(ConfigError, match=r"backend .apple. is unavailable.*\[apple\]"):
        Tracker(backend=[AppleFactory(platform=mac())], quiet=True, db="off")


def test_an_ioreport_that_cannot_be_opened_gives_the_reason_and_fix(apple: Make) -> None:
    apple(init_error="Failed to create IOReport subscription.")
    err = probe(mac())
    assert "Failed to create IOReport subscription" in err.reason
    assert "virtual machine" in err.fix


def test_a_mac_whose_ioreport_has_no_known_channel_is_unavailable(apple: Make) -> None:
    apple(power={})
    assert "none of the CPU, GPU, DRAM or ANE" in probe(mac()).reason


def test_the_default_platform_facts_are_those_of_this_process() -> None:
    import platform

    assert host_platform() == (sys.platform, platform.machine())
