"""hwmon on fake sysfs trees: Jetson INA3221 boards, an INA228 energy counter, resets,
permissions, rails that vanish and trees with nothing usable.

The fake writes what the drivers write (drivers/hwmon/ina3221.c: bus voltage in 8 mV steps,
current in mA from 40 uV shunt steps over the shunt resistor; the INA228's energy1_input in
uJ and power1_input in uW). Expected energy is the integral of the fake's true power over the
fake clock's time, computed here.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_hwmon import FakeHwmon, agx_orin, flat, orin_nx

from carbonmonitor import ManualClock, Tracker
from carbonmonitor.backends.base import ProbeContext
from carbonmonitor.backends.hwmon import POLL_PERIOD_S, HwmonFactory, device_of
from carbonmonitor.errors import BackendUnavailable, ConfigError
from carbonmonitor.options import resolve
from carbonmonitor.records import RunResult


def measure(tree: FakeHwmon, seconds: float, step_s: float = POLL_PERIOD_S,
            backend: list[Any] | None = None, between: Callable[[int], None] | None = None
            ) -> tuple[Tracker, RunResult]:
    clock = ManualClock()
    tracker = Tracker(backend=backend or [HwmonFactory()], sysfs_root=tree.base.parent.parent,
                      clock=clock, sampling="manual", quiet=True, db="off")
    tracker.start()
    for step in range(round(seconds / step_s)):
        tree.run(step_s)
        clock.advance(step_s)
        if between is not None:
            between(step)
        tracker.tick()
    return tracker, tracker.stop()


def figures(result: RunResult) -> dict[str, Any]:
    return {f.domain: f for f in result.energy}


def codes(result: RunResult) -> list[str]:
    return [f.code for f in result.flags]


def test_orin_nx_uses_the_module_input_alone_and_covers_the_machine(tmp_path: Path) -> None:
    tree = FakeHwmon(tmp_path)
    orin_nx(tree)
    tracker, result = measure(tree, 60, backend=[HwmonFactory(), "estimate"])
    assert tracker.period_s == POLL_PERIOD_S
    fig = figures(result)["machine:VDD_IN"]
    assert list(figures(result)) == ["machine:VDD_IN"]  # the estimate adds nothing
    assert (fig.device, fig.method, fig.backend) == ("machine", "power-integration", "hwmon")
    assert fig.uncertainty.rule == "hwmon-power-integration-v2"
    truth = tree.true_j("VDD_IN")
    assert fig.energy_j == pytest.approx(truth, rel=0.005)
    assert fig.uncertainty.contains(truth)
    assert (fig.uncertainty.high - fig.uncertainty.low) / truth < 0.1  # datasheet-sized
    assert result.energy_j == pytest.approx(truth, rel=0.005)  # sub-rails not added
    assert "used alone" in fig.detail and "VDD_CPU_GPU_CV, VDD_SOC" in fig.detail
    assert "not added" in fig.detail
    estimate = next(b for b in result.backends if b.name == "estimate")
    assert not estimate.used and "already measured" in estimate.reason


def test_agx_orin_without_a_total_sums_its_parts_by_device(tmp_path: Path) -> None:
    tree = FakeHwmon(tmp_path)
    agx_orin(tree)
    _, result = measure(tree, 60)
    got = figures(result)
    assert {k: f.device for k, f in got.items()} == {
        "gpu:VDD_GPU_SOC": "gpu", "cpu:VDD_CPU_CV": "cpu", "machine:VIN_SYS_5V0": "machine",
        "memory:VDDQ_VDD2_1V8AO": "memory"}  # the NC inputs and the shunt sum are not rails
    for key, fig in got.items():
        truth = tree.true_j(key.split(":")[1])
        assert fig.energy_j == pytest.approx(truth, rel=0.005)
        assert fig.uncertainty.contains(truth)
    assert result.energy_j == pytest.approx(sum(tree.true_j(k) for k in tree.profiles),
                                            rel=0.005)
    assert "no module input rail" in got["cpu:VDD_CPU_CV"].detail


@pytest.mark.parametrize(("label", "device"), [
    ("VDD_CPU_GPU_CV", "cpu"), ("VDD_GPU_SOC", "gpu"), ("VDD_CPU_CV", "cpu"),
    ("VDD_SOC", "machine"), ("VIN_SYS_5V0", "machine"), ("VDDQ_VDD2_1V8AO", "memory"),
    ("POM_5V_GPU", "gpu"), ("VDD_SYS_DDR", "memory"), ("VDDRQ", "memory"), ("CV", "machine"),
    ("SYS5V", "machine")])
def test_jetson_rail_names_map_to_the_first_unit_they_name(label: str, device: str) -> None:
    assert device_of(label) == device


def test_energy_counter_is_preferred_and_a_reset_is_flagged_and_counted_on(
        tmp_path: Path) -> None:
    tree = FakeHwmon(tmp_path)
    chip = tree.ina228("VDD_IN", flat(24.0), start_uj=5_000_000_000)

    def reset(step: int) -> None:
        if step == 9:  # driver reload 0.75 s before this read: the counter restarts from 0
            tree.set_energy(chip, round(24.0 * 0.75 * 1e6))

    tracker, result = measure(tree, 60, step_s=1.0, between=reset)
    assert tracker.period_s == 1.0  # a counter needs no faster polling than the interval
    fig = figures(result)["machine:VDD_IN"]
    assert fig.method == "counter" and fig.uncertainty.rule == "hwmon-counter-v2"
    missing = 24.0 * 0.25  # from the read before the reset to the reset (dropping the
    # whole window instead would lose 24 J: outside the tolerance)
    assert fig.energy_j == pytest.approx(tree.true_j("VDD_IN") - missing, rel=0.005)
    assert fig.energy_j < tree.true_j("VDD_IN") - missing / 2  # the missing part is not faked
    assert fig.uncertainty.contains(tree.true_j("VDD_IN") - missing)
    assert codes(result).count("counter-reset") == 1


def test_permission_denied_says_how_to_grant_access(tmp_path: Path) -> None:
    tree = FakeHwmon(tmp_path)
    orin_nx(tree)

    def root_only(path: Path) -> str:
        if path.name.endswith("_input"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return path.read_text(encoding="ascii").strip()

    context = ProbeContext(resolve({"sysfs_root": tmp_path}, environ={}), ManualClock())
    with pytest.raises(BackendUnavailable) as err:
        HwmonFactory(read_text=root_only).probe(context)
    assert "not readable" in err.value.reason and "in1_input" in err.value.reason
    assert "chmod o+r" in err.value.fix and "udev" in err.value.fix
    assert "sysfs_root" in err.value.fix
    with pytest.raises(ConfigError, match="backend 'hwmon' is unavailable here.*chmod o"):
        Tracker(backend=[HwmonFactory(read_text=root_only)], sysfs_root=tmp_path, db="off")


def test_an_unreadable_part_is_left_out_and_flagged(tmp_path: Path) -> None:
    tree = FakeHwmon(tmp_path)
    _, second = agx_orin(tree)

    def deny_second(path: Path) -> str:
        if path.parent == second and path.name.endswith("_input"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return path.read_text(encoding="ascii").strip()

    _, result = measure(tree, 10, backend=[HwmonFactory(read_text=deny_second)])
    assert "memory:VDDQ_VDD2_1V8AO" not in figures(result) and len(figures(result)) == 3
    flag = next(f for f in result.flags if f.code == "hwmon-rail-unreadable")
    assert "VDDQ_VDD2_1V8AO" in flag.message and "chmod o+r" in flag.fix


def test_nothing_usable_names_what_was_seen_and_the_fix(tmp_path: Path) -> None:
    tree = FakeHwmon(tmp_path)
    tree.plain("coretemp", temp1_input="52000", temp1_label="Package id 0")
    tree.plain("nvme", temp1_input="38850")
    tree.plain("amdgpu", power1_average="41000000", power1_cap="220000000")
    tree.plain("ina226", power1_input="3500000")  # no label: its rail is unknown
    context = ProbeContext(resolve({"sysfs_root": tmp_path}, environ={}), ManualClock())
    with pytest.raises(BackendUnavailable) as err:
        HwmonFactory().probe(context)
    reason = err.value.reason
    assert "coretemp, nvme, amdgpu, ina226" in reason
    assert "amdgpu) is a GPU: left to the GPU backends" in reason
    assert "no label" in reason
    assert "ina3221" in err.value.fix and "sysfs_root" in err.value.fix

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"unavailable here: no hwmon devices: .* does not "
                       r"exist\. Fix: on a Jetson"):
        Tracker(sysfs_root=empty, backend=[HwmonFactory()], quiet=True, db="off")


def test_a_rail_whose_files_vanish_is_flagged_and_the_others_go_on(tmp_path: Path) -> None:
    tree = FakeHwmon(tmp_path)
    _, second = agx_orin(tree)

    def unbind(step: int) -> None:
        if step == 39:  # before the read at 20.0 s
            tree.remove(second)

    _, result = measure(tree, 60, between=unbind)
    got = figures(result)
    assert got["memory:VDDQ_VDD2_1V8AO"].energy_j == pytest.approx(2.0 * 19.5, rel=0.005)
    for label in ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"):
        fig = next(f for k, f in got.items() if k.endswith(label))
        assert fig.energy_j == pytest.approx(tree.true_j(label), rel=0.005)
    lost = next(f for f in result.flags if f.code == "hwmon-rail-lost")
    assert "VDDQ_VDD2_1V8AO" in lost.message and "20.0 s" in lost.message
    assert "backend-failed" not in codes(result)


def test_failed_reads_are_bridged_and_flagged(tmp_path: Path) -> None:
    tree = FakeHwmon(tmp_path)
    chip = orin_nx(tree)
    failing = {"left": 0}

    def flaky(path: Path) -> str:
        if path == chip / "curr1_input" and failing["left"]:
            failing["left"] -= 1
            raise OSError(errno.EIO, "Remote I/O error", str(path))
        return path.read_text(encoding="ascii").strip()

    def glitch(step: int) -> None:
        if step == 50:
            failing["left"] = 3  # three reads in a row fail

    _, result = measure(tree, 60, backend=[HwmonFactory(read_text=flaky)], between=glitch)
    fig = figures(result)["machine:VDD_IN"]
    assert fig.energy_j == pytest.approx(tree.true_j("VDD_IN"), rel=0.005)
    assert fig.uncertainty.contains(tree.true_j("VDD_IN"))
    flag = next(f for f in result.flags if f.code == "hwmon-read-errors")
    assert "3 read(s) failed" in flag.message


def test_a_disabled_total_falls_back_to_the_parts(tmp_path: Path) -> None:
    tree = FakeHwmon(tmp_path)
    tree.ina3221([("VDD_IN", 5.0, flat(12.0)), ("VDD_CPU_GPU_CV", 5.0, flat(6.0)),
                  ("VDD_SOC", 5.0, flat(2.0))], enabled=(2, 3))
    _, result = measure(tree, 10)
    assert sorted(figures(result)) == ["cpu:VDD_CPU_GPU_CV", "machine:VDD_SOC"]
    assert "VDD_IN (hwmon0 channel 1) is disabled" in result.energy[0].detail
    assert result.energy_j == pytest.approx((6.0 + 2.0) * 10, rel=0.005)


def test_a_chip_averaging_for_seconds_is_not_read(tmp_path: Path) -> None:
    tree = FakeHwmon(tmp_path)
    tree.ina3221([("VDD_IN", 5.0, flat(12.0))], update_ms=6758)  # samples=1024
    context = ProbeContext(resolve({"sysfs_root": tmp_path}, environ={}), ManualClock())
    with pytest.raises(BackendUnavailable, match="averages over 6.758 s"):
        HwmonFactory().probe(context)
