"""Fake-backend runs under a manual clock: exact energy per phase and in total.

Expected values are integrated here by hand from the scripted profile, not via product helpers.
"""

from __future__ import annotations

import pytest

from carbonmonitor import ManualClock, Tracker
from carbonmonitor.backends.fake import FakeBackend


def make(profile, **kwargs):  # type: ignore[no-untyped-def]
    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend(profile, **kwargs)], clock=clock, sampling="manual",
                      quiet=True)
    return clock, tracker


def test_step_profile_total_and_phases_exact() -> None:
    # cpu: 100 W for 10 s, then 40 W; gpu:0 constant 250 W.
    clock, t = make({"cpu": [(0, 100.0), (10, 40.0)], "gpu:0": 250.0})
    t.start()
    clock.advance(4)
    t.tick()
    with t.phase("train"):          # 4 s .. 13 s
        clock.advance(3)
        t.tick()
        clock.advance(6)
    clock.advance(2)                  # 13 .. 15 outside phases
    with t.phase("eval"):            # 15 .. 16
        clock.advance(1)
    result = t.stop()
    cpu_total = 100 * 10 + 40 * 6
    assert result.duration_s == 16
    by_domain = {f.domain: f for f in result.energy}
    assert by_domain["cpu"].energy_j == pytest.approx(cpu_total, rel=1e-12)
    assert by_domain["gpu:0"].energy_j == pytest.approx(250 * 16, rel=1e-12)
    train = result.phase("train")
    assert train.count == 1 and train.duration_s == 9
    train_cpu = next(f for f in train.energy if f.domain == "cpu")
    assert train_cpu.energy_j == pytest.approx(100 * 6 + 40 * 3, rel=1e-12)
    assert train.energy_j == pytest.approx(100 * 6 + 40 * 3 + 250 * 9, rel=1e-12)
    assert result.phase("eval").energy_j == pytest.approx(40 * 1 + 250 * 1, rel=1e-12)
    assert result.mean_power_w == pytest.approx((cpu_total + 250 * 16) / 16, rel=1e-12)


def test_linear_ramp_is_integrated_exactly_whatever_the_ticks() -> None:
    clock, t = make({"gpu:0": [(0, 0.0), (10, 300.0)]}, interpolation="linear")
    t.start()
    for _ in range(7):  # uneven ticks inside the ramp
        clock.advance(1.3)
        t.tick()
    clock.advance(10 - 7 * 1.3 + 5)  # to t = 15 s, 5 s at 300 W
    result = t.stop()
    assert result.energy_j == pytest.approx(0.5 * 10 * 300 + 5 * 300, rel=1e-12)


def test_repeated_phase_aggregates_by_name_and_nests_by_path() -> None:
    clock, t = make({"cpu": 10.0})
    t.start()
    for _ in range(1000):
        with t.phase("epoch"):
            with t.phase("step"):
                clock.advance(0.01)
            clock.advance(0.002)
    result = t.stop()
    names = [p.name for p in result.phases]
    assert names == ["epoch", "epoch/step"]
    step = result.phase("epoch/step")
    assert step.count == 1000
    assert step.duration_s == pytest.approx(10.0, rel=1e-9)
    assert step.energy_j == pytest.approx(100.0, rel=1e-9)
    assert result.phase("epoch").energy_j == pytest.approx(120.0, rel=1e-9)


def test_failing_backend_is_flagged_and_the_rest_keeps_sampling(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    dying = FakeBackend({"gpu:0": 200.0}, fail_at_s=5, name="dying")
    alive = FakeBackend({"cpu": 50.0}, name="alive")
    t = Tracker(backend=[dying, alive], clock=clock, sampling="manual", quiet=True)
    t.start()
    for _ in range(10):
        clock.advance(1)
        t.tick()
    result = t.stop()
    energy = {f.domain: f.energy_j for f in result.energy}
    assert energy["gpu:0"] == pytest.approx(200 * 4)  # last good read at 4 s
    assert energy["cpu"] == pytest.approx(50 * 10)
    assert [f.code for f in result.flags].count("backend-failed") == 1
    assert sum("dying" in r.getMessage() for r in caplog.records) == 1  # logged once


def test_uncertainty_bounds_follow_the_method_rule() -> None:
    clock, t = make({"cpu": 100.0}, method="power-integration")
    t.start()
    clock.advance(10)
    result = t.stop()
    unc = result.energy[0].uncertainty
    assert (unc.low, unc.high) == pytest.approx((900.0, 1100.0))
    assert unc.rule == "power-integration-v1"
    assert result.emissions.uncertainty.low < result.co2e_g < result.emissions.uncertainty.high


def test_stop_is_idempotent_and_phase_after_stop_is_harmless() -> None:
    clock, t = make({"cpu": 1.0})
    t.start()
    clock.advance(1)
    first = t.stop()
    with t.phase("late"):
        clock.advance(1)
    assert t.stop() is first
    assert first.phases == ()


def test_open_phase_at_stop_is_closed_and_flagged() -> None:
    clock, t = make({"cpu": 2.0})
    t.start()
    ctx = t.phase("never-closed")
    ctx.__enter__()
    clock.advance(3)
    result = t.stop()
    assert result.phase("never-closed").energy_j == pytest.approx(6.0)
    assert "phase-open-at-stop" in {f.code for f in result.flags}


def test_context_manager_records_failure_and_reraises() -> None:
    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"cpu": 1.0})], clock=clock, sampling="manual",
                      quiet=True)
    with pytest.raises(ZeroDivisionError):
        with tracker:
            clock.advance(2)
            1 / 0  # noqa: B018
    assert tracker.result is not None
    assert tracker.result.status == "failed"
    assert tracker.result.energy_j == pytest.approx(2.0)


def test_decorator_measures_each_call_separately() -> None:
    import carbonmonitor

    clock = ManualClock()

    @carbonmonitor.track(backend="fake", clock=clock, sampling="manual", quiet=True)
    def work(seconds: float) -> str:
        clock.advance(seconds)
        return "done"

    assert work(2) == "done"
    first = work.last_result  # type: ignore[attr-defined]
    assert work(3) == "done"
    second = work.last_result  # type: ignore[attr-defined]
    assert first.duration_s == 2 and second.duration_s == 3
    assert first.identity.run_id != second.identity.run_id
    assert first.identity.name.endswith("work")


def test_result_round_trips_through_json() -> None:
    from carbonmonitor import RunResult

    clock, t = make({"cpu": 5.0})
    t.start()
    with t.phase("p"):
        clock.advance(2)
    result = t.stop()
    data = result.to_dict()
    assert data["energy"][0]["energy_kwh"] == pytest.approx(10.0 / 3.6e6)
    again = RunResult.from_dict(__import__("json").loads(result.to_json()))
    assert again == result


@pytest.mark.parametrize("options, table, key_col, key, value_col, pue_provider", [
    ({"country": "Germany"}, "grid/owid_electricity_by_country_year.csv", "iso_code", "DEU",
     "carbon_intensity_elec", None),
    ({"cloud_region": "europe-west1", "cloud_provider": "gcp"},
     "cloud/gcp_region_carbon_info_2019_2024.csv", "region", "europe-west1",
     "grid_carbon_intensity_gco2e_per_kwh", "gcp"),
    ({"cloud_region": "eu-west-1"}, "subnational/electricitymaps_yearly_2021_2025.csv", "zone",
     "IE", "carbon_intensity_lifecycle_gco2e_per_kwh", "aws"),
])
def test_emissions_are_energy_times_pue_times_the_shipped_factor(
        options, table, key_col, key, value_col, pue_provider) -> None:  # type: ignore[no-untyped-def]
    import csv
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "src" / "carbonmonitor" / "data"
    with open(data / table, newline="", encoding="utf-8") as fh:
        factor = float(next(r[value_col] for r in csv.DictReader(fh)
                            if r[key_col] == key and r["year"] == "2024"))
    pue = 1.0
    if pue_provider:
        with open(data / "cloud" / "pue.csv", newline="", encoding="utf-8") as fh:
            fleet = [r for r in csv.DictReader(fh)
                     if r["provider"] == pue_provider and r["scope"] == "fleet"
                     and int(r["year"]) <= 2024]
        pue = float(max(fleet, key=lambda r: int(r["year"]))["pue"])
    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"cpu": 123.0, "gpu:0": 300.0})], clock=clock,
                      sampling="manual", quiet=True, **options)
    tracker.start()
    clock.advance(3600)
    result = tracker.stop()
    expected_g = (123.0 + 300.0) * 3600 / 3.6e6 * pue * factor
    assert abs(result.co2e_g - expected_g) / expected_g < 1e-12
    assert result.intensity.year == 2024
    assert result.pue.value == pue


@pytest.mark.parametrize("exc, status", [
    (KeyboardInterrupt(), "interrupted"), (SystemExit(0), "completed"), (SystemExit(3), "failed"),
])
def test_status_follows_how_the_block_ended(exc: BaseException, status: str) -> None:
    tracker = Tracker(backend="fake", clock=ManualClock(), sampling="manual", quiet=True)
    with pytest.raises(type(exc)):
        with tracker:
            raise exc
    assert tracker.result is not None and tracker.result.status == status


class _Broken:
    """A backend that breaks its contract: returns floats instead of Cumulative."""

    name = "broken"
    poll_period_s = None

    def domains(self):  # type: ignore[no-untyped-def]
        from carbonmonitor.backends.base import Domain

        return (Domain("gpu:0", "gpu", "counter", "counter-v1"),)

    def read(self, now_s: float):  # type: ignore[no-untyped-def]
        return {"gpu:0": 5.0 * now_s}

    def close(self) -> None:
        pass


def test_backend_returning_garbage_is_flagged_and_never_raises_into_user_code() -> None:
    clock = ManualClock()
    tracker = Tracker(backend=[_Broken(), FakeBackend({"cpu": 10.0})], clock=clock,
                      sampling="manual", quiet=True)
    with tracker:
        with tracker.phase("p"):
            clock.advance(2)
    result = tracker.result
    assert result is not None and result.status == "completed"
    assert {f.domain: f.energy_j for f in result.energy} == {"gpu:0": 0.0, "cpu": 20.0}
    assert [f.code for f in result.flags].count("backend-failed") == 1


def test_non_backend_entry_is_a_config_error() -> None:
    from carbonmonitor import ConfigError

    with pytest.raises(ConfigError, match="names or backend objects"):
        Tracker(backend=["fake", 3])


def test_counter_restart_keeps_the_energy_since_the_restart_and_flags_once() -> None:
    from carbonmonitor.backends.base import Cumulative, Domain

    class Restarting:
        name = "restarting"
        poll_period_s = None
        readings = iter([0.0, 100.0, 30.0, 80.0, 10.0])  # restarts before reads 3 and 5

        def domains(self):  # type: ignore[no-untyped-def]
            return (Domain("gpu:0", "gpu", "counter", "counter-v1"),)

        def read(self, now_s: float):  # type: ignore[no-untyped-def]
            e = next(self.readings)
            return {"gpu:0": Cumulative(e, e, e)}

        def close(self) -> None:
            pass

    clock = ManualClock()
    tracker = Tracker(backend=[Restarting()], clock=clock, sampling="manual", quiet=True)
    tracker.start()
    for _ in range(3):
        clock.advance(1)
        tracker.tick()
    clock.advance(1)
    result = tracker.stop()
    assert result.energy_j == pytest.approx(100 + 30 + 50 + 10)
    resets = [f for f in result.flags if f.code == "counter-reset"]
    assert len(resets) == 1 and "2 time(s)" in resets[0].message


def test_phase_paths_are_per_asyncio_task() -> None:
    import asyncio

    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"cpu": 1.0})], clock=clock, sampling="manual",
                      quiet=True)

    async def task(name: str, steps: int) -> None:
        with tracker.phase(name):
            for _ in range(steps):
                with tracker.phase("step"):
                    await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(task("load", 3), task("train", 2))

    tracker.start()
    asyncio.run(main())
    with tracker.phase("evaluate"):
        clock.advance(1)
    result = tracker.stop()
    assert sorted(p.name for p in result.phases) == [
        "evaluate", "load", "load/step", "train", "train/step"]
    assert result.phase("load/step").count == 3 and result.phase("train/step").count == 2
    assert result.phase("evaluate").energy_j == pytest.approx(1.0)


def test_async_function_is_measured_until_its_coroutine_finishes() -> None:
    import asyncio

    import carbonmonitor

    clock = ManualClock()

    @carbonmonitor.track(backend="fake", clock=clock, sampling="manual", quiet=True)
    async def work() -> int:
        await asyncio.sleep(0)
        clock.advance(5)
        return 7

    assert asyncio.run(work()) == 7
    assert work.last_result.duration_s == 5  # type: ignore[attr-defined]


def test_generator_cannot_be_decorated() -> None:
    import carbonmonitor

    with pytest.raises(carbonmonitor.ConfigError, match="generator"):
        @carbonmonitor.track(backend="fake", quiet=True)
        def gen():  # type: ignore[no-untyped-def]
            yield 1


def test_phase_edges_do_not_grow_the_time_series() -> None:
    clock, t = make({"cpu": 1.0})
    t.start()
    for _ in range(100):
        with t.phase("step"):
            clock.advance(0.01)
    t.tick()
    clock.advance(0.5)
    result = t.stop()
    assert result.sample_count == 3  # start, one tick, stop
    assert result.phase("step").count == 100


def test_a_stop_with_no_time_passed_since_a_tick_adds_no_point() -> None:
    clock, t = make({"cpu": 1.0})
    t.start()
    clock.advance(2)
    t.tick()
    result = t.stop()
    assert result.sample_count == 2
    assert t.series() == ([0.0, 2.0], {"cpu": [0.0, 2.0]})


def test_sampling_period_is_the_smallest_a_backend_needs() -> None:
    fast = FakeBackend({"gpu:0": 1.0}, name="fast")
    fast.poll_period_s = 0.2
    tracker = Tracker(backend=[fast, FakeBackend({"cpu": 1.0}, name="slow")], interval=1.0,
                      sampling="manual", quiet=True)
    assert tracker.period_s == 0.2
    assert Tracker(backend="fake", interval=2.5, sampling="manual", quiet=True).period_s == 2.5


def test_gpu_sync_waits_for_queued_gpu_work_at_phase_edges(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    calls: list[str] = []
    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_initialized=lambda: True, synchronize=lambda: calls.append("sync"))
    monkeypatch.setitem(sys.modules, "torch", torch)
    clock, t = make({"gpu:0": 300.0})
    t.start()
    with t.phase("step"):
        clock.advance(1)
    assert calls == []  # off by default: a sync can cost the program its overlap
    synced = Tracker(backend=[FakeBackend({"gpu:0": 300.0})], clock=clock, sampling="manual",
                     quiet=True, gpu_sync=True)
    synced.start()
    with synced.phase("step"):
        assert calls == ["sync"]  # before the edge is read
        clock.advance(1)
    assert calls == ["sync", "sync"]
    torch.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_initialized=lambda: False, synchronize=lambda: calls.append("sync"))
    with synced.phase("step"):  # CUDA never initialised: nothing to wait for
        clock.advance(1)
    assert calls == ["sync", "sync"]
    t.stop()
    synced.stop()


def test_gpu_sync_waits_for_jax_devices_once_jax_has_started_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in JAX: one computation per accelerator (not the CPU) is dispatched and waited
    for; nothing happens while JAX's backends are not initialised (starting them here would
    claim the GPU's memory)."""
    import sys
    import types

    waited: list[str] = []

    class Value:
        def __init__(self, device: str) -> None:
            self.device = device

        def __add__(self, other: object) -> Value:
            return self

        def block_until_ready(self) -> Value:
            waited.append(self.device)
            return self

    started = [False]
    jax = types.ModuleType("jax")
    jax.local_devices = lambda: [types.SimpleNamespace(platform="gpu", id="cuda:0"),  # type: ignore[attr-defined]
                                 types.SimpleNamespace(platform="cpu", id="cpu:0"),
                                 types.SimpleNamespace(platform="gpu", id="cuda:1")]
    jax.device_put = lambda value, device: Value(device.id)  # type: ignore[attr-defined]
    bridge = types.ModuleType("jax._src.xla_bridge")
    bridge.backends_are_initialized = lambda: started[0]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "jax", jax)
    monkeypatch.setitem(sys.modules, "jax._src.xla_bridge", bridge)
    clock = ManualClock()
    t = Tracker(backend=[FakeBackend({"gpu:0": 300.0})], clock=clock, sampling="manual",
                quiet=True, gpu_sync=True)
    t.start()
    with t.phase("step"):
        clock.advance(1)
    assert waited == []
    started[0] = True
    with t.phase("step"):
        assert waited == ["cuda:0", "cuda:1"]
        clock.advance(1)
    assert waited == ["cuda:0", "cuda:1"] * 2
    t.stop()


def test_a_failing_gpu_sync_is_logged_once_and_the_phase_still_measured(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import sys
    import types

    def broken() -> None:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(is_initialized=lambda: True,  # type: ignore[attr-defined]
                                       synchronize=broken)
    monkeypatch.setitem(sys.modules, "torch", torch)
    clock = ManualClock()
    t = Tracker(backend=[FakeBackend({"gpu:0": 300.0})], clock=clock, sampling="manual",
                quiet=True, gpu_sync=True)
    t.start()
    for _ in range(3):
        with t.phase("step"):
            clock.advance(1)
    result = t.stop()
    assert result.phase("step").energy_j == pytest.approx(900.0)
    assert caplog.text.count("synchronising the GPU failed") == 1
