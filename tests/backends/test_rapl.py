"""RAPL on fake powercap trees: wraps, mirrors, domain rules, resets, gaps and permissions.

Expected energy is power x fake-clock time, computed here; the tree's counters are advanced by
the test the way the hardware does (wrapping at max_energy_range_uj).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonmonitor import ConfigError, ManualClock, Tracker
from carbonmonitor.backends.base import ProbeContext
from carbonmonitor.backends.rapl import PLAUSIBLE_MAX_W, POLL_SAFETY, RaplFactory
from carbonmonitor.errors import BackendUnavailable
from carbonmonitor.options import resolve

RANGE_UJ = 262_143_999_938  # a common max_energy_range_uj (~262 kJ)


class FakePowercap:
    """class/powercap zones whose energy_uj the test advances at a given power."""

    def __init__(self, root: Path) -> None:
        self.base = root / "class" / "powercap"
        self.base.mkdir(parents=True)
        self.zones: dict[str, dict[str, float]] = {}

    def add(self, zone: str, name: str, watts: float, start_uj: int = 0,
            range_uj: int | None = RANGE_UJ) -> None:
        path = self.base / zone
        path.mkdir()
        (path / "name").write_text(name + "\n")
        if range_uj is not None:
            (path / "max_energy_range_uj").write_text(f"{range_uj}\n")
        self.zones[zone] = {"watts": watts, "uj": float(start_uj), "range": float(range_uj or 0)}
        self._write(zone)

    def _write(self, zone: str) -> None:
        (self.base / zone / "energy_uj").write_text(f"{int(self.zones[zone]['uj'])}\n")

    def run(self, seconds: float) -> None:
        for zone, z in self.zones.items():
            z["uj"] += z["watts"] * seconds * 1e6
            if z["range"]:
                z["uj"] %= z["range"]
            self._write(zone)

    def set_raw(self, zone: str, uj: int) -> None:
        self.zones[zone]["uj"] = float(uj)
        self._write(zone)


def measure(tree: FakePowercap, root: Path, steps: int, step_s: float, **kwargs: object):  # type: ignore[no-untyped-def]
    clock = ManualClock()
    tracker = Tracker(backend=kwargs.pop("backend", "rapl"), sysfs_root=root, clock=clock,
                      sampling="manual", quiet=True, **kwargs)
    tracker.start()
    for _ in range(steps):
        tree.run(step_s)
        clock.advance(step_s)
        tracker.tick()
    return tracker, tracker.stop()


def energy(result, key: str) -> float:  # type: ignore[no-untyped-def]
    return next(f.energy_j for f in result.energy if f.domain == key)


def test_several_wraps_package_and_dram(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 180.0, start_uj=RANGE_UJ - 5_000_000)
    tree.add("intel-rapl:0:0", "dram", 12.0)
    # 200 s steps (< the 262 s wrap period at 1000 W) for 2 h: the package wraps ~4-5 times
    _, result = measure(tree, tmp_path, steps=36, step_s=200.0)
    assert energy(result, "cpu:package-0") == pytest.approx(180.0 * 7200, rel=0.005)
    assert energy(result, "memory:dram-0") == pytest.approx(12.0 * 7200, rel=0.005)
    assert 180.0 * 7200 / (RANGE_UJ / 1e6) > 4  # really several wraps
    assert {f.method for f in result.energy} == {"counter"}
    assert not any(f.code == "rapl-gap" for f in result.flags)


def test_two_packages_core_uncore_psys_and_mmio_mirror(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 100.0)
    tree.add("intel-rapl:0:0", "core", 70.0)
    tree.add("intel-rapl:0:1", "uncore", 10.0)
    tree.add("intel-rapl:0:2", "dram", 8.0)
    tree.add("intel-rapl:1", "package-1", 90.0, start_uj=123_456)
    tree.add("intel-rapl:2", "psys", 300.0)
    tree.add("intel-rapl-mmio:0", "package-0", 100.0)
    _, result = measure(tree, tmp_path, steps=10, step_s=10.0)
    assert sorted(f.domain for f in result.energy) == [
        "cpu:package-0", "cpu:package-1", "memory:dram-0"]
    assert result.energy_j == pytest.approx((100.0 + 90.0 + 8.0) * 100, rel=0.005)
    detail = result.energy[0].detail
    assert "core" in detail and "psys" in detail and "mirrors" in detail


def test_identical_counters_of_a_multi_die_part_count_once(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 120.0, start_uj=5_000_000)
    tree.add("intel-rapl:1", "package-1", 120.0, start_uj=5_000_000)  # the same counter twice
    _, result = measure(tree, tmp_path, steps=5, step_s=10.0)
    assert [f.domain for f in result.energy] == ["cpu:package-0"]
    assert result.energy_j == pytest.approx(120.0 * 50, rel=0.005)


def test_reset_without_range_drops_that_window_and_goes_on(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 50.0, start_uj=10_000_000, range_uj=None)
    clock = ManualClock()
    tracker = Tracker(backend="rapl", sysfs_root=tmp_path, clock=clock, sampling="manual",
                      quiet=True)
    tracker.start()
    for step in range(6):
        tree.run(10.0)
        if step == 2:
            tree.set_raw("intel-rapl:0", 1_000)  # driver reload: counter restarts
        clock.advance(10.0)
        tracker.tick()
    result = tracker.stop()
    assert energy(result, "cpu:package-0") == pytest.approx(50.0 * 10 * 5, rel=0.005)
    assert [f.code for f in result.flags].count("counter-reset") == 1


def test_poll_period_follows_the_wrap_period_and_gaps_are_flagged(tmp_path: Path) -> None:
    small = 50_000_000  # 50 J range: wraps every 0.05 s at the plausible maximum power
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 10.0, range_uj=small)
    tracker, result = measure(tree, tmp_path, steps=3, step_s=1.0)
    assert tracker.period_s == pytest.approx(small / 1e6 / PLAUSIBLE_MAX_W / POLL_SAFETY)
    assert any(f.code == "rapl-gap" for f in result.flags)


def test_auto_prefers_rapl_and_estimate_fills_what_it_lacks(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 60.0)  # no dram zone
    _, result = measure(tree, tmp_path, steps=2, step_s=5.0, backend="auto")
    assert {f.domain: f.backend for f in result.energy} == {
        "cpu:package-0": "rapl", "memory": "estimate"}


def test_missing_powercap_is_unavailable_with_reason_and_fix(tmp_path: Path) -> None:
    result = Tracker(sysfs_root=tmp_path, quiet=True).start().stop()
    rapl = next(b for b in result.backends if b.name == "rapl")
    assert not rapl.used and "no RAPL" in rapl.reason and "modprobe" in rapl.fix
    with pytest.raises(ConfigError, match="backend 'rapl' is unavailable here"):
        Tracker(backend="rapl", sysfs_root=tmp_path)


def test_permission_denied_says_how_to_grant_access(tmp_path: Path) -> None:
    tree = FakePowercap(tmp_path)
    tree.add("intel-rapl:0", "package-0", 60.0)

    def root_only(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text(encoding="ascii").strip()

    context = ProbeContext(resolve({"sysfs_root": tmp_path}, environ={}), ManualClock())
    with pytest.raises(BackendUnavailable) as err:
        RaplFactory().probe(context, read_text=root_only)
    assert "root-only" in err.value.reason and "energy_uj" in err.value.reason
    assert "chmod o+r" in err.value.fix and "udev" in err.value.fix
    assert "sysfs_root" in err.value.fix
