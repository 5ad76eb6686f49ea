"""Attribution and the idle baseline through a whole run: a fake procfs with known CPU times and
RSS (tests/fakes/fake_procfs.py), a fake pynvml with known per-process utilisation, and scripted
power, so every attributed figure is computed here exactly."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes.fake_nvml import FakeGpu, FakeNvml
from fakes.fake_procfs import HZ, PAGE, FakeProcfs
from runs import by_domain

import carbonmonitor
from carbonmonitor import FakeBackend, ManualClock, Tracker, attribution
from carbonmonitor.records import RunResult

ROOT, WORKER, STRANGER = 100, 101, 999


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeProcfs:
    """Our process (pid 100) with a DataLoader-like worker (101), on a machine that also runs
    someone else's process; the tracker's process tree reads this procfs."""
    fs = FakeProcfs(tmp_path / "proc")
    fs.add(ROOT, 1, rss_pages=50_000)
    fs.add(WORKER, ROOT, rss_pages=25_000)
    fs.add(STRANGER, 1, rss_pages=10_000)
    real_tree = attribution.ProcessTree

    def our_tree(**kwargs: Any) -> attribution.ProcessTree:
        return real_tree(ROOT, proc_root=fs.root, clk_tck=HZ, page_size=PAGE, **kwargs)

    monkeypatch.setattr(attribution, "ProcessTree", our_tree)
    monkeypatch.setattr(attribution, "SHARE_EVERY_S", 5.0)  # two share periods in 10 s
    monkeypatch.setattr(attribution, "in_pid_namespace", lambda *a, **k: False)
    return fs


def busy(fs: FakeProcfs, ticks: int) -> None:
    """The machine spends ``ticks`` more clock ticks of busy (user) CPU time."""
    fs.stat_cpu[0] += ticks
    fs.write()


def run_ten_seconds(clock: ManualClock, tracker: Tracker,
                    at: dict[float, Callable[[], None]]) -> RunResult:
    """Tick every second for 10 s; ``at[t]`` runs just before the tick at ``t``."""
    tracker.start()
    for t in range(1, 11):
        clock.advance(1)
        if t in at:
            at[t]()
        tracker.tick()
    return tracker.stop()


def test_cpu_and_memory_shares_of_the_process_tree_are_exact(machine: FakeProcfs) -> None:
    clock = ManualClock()
    tracker = Tracker(backend="constant", constant_power="cpu=100,memory=10", clock=clock,
                      sampling="manual", quiet=True, db="off", procfs_root=machine.root)

    def first_period() -> None:  # 0-5 s: the tree used 1 CPU-s of the machine's 4
        machine.procs[ROOT].utime += 60
        machine.procs[WORKER].utime += 40
        busy(machine, 400)

    def second_period() -> None:  # 5-10 s: the worker exited; only our tree was busy
        machine.procs[WORKER].stime += 100
        machine.reap(WORKER)
        machine.procs[ROOT].utime += 100
        busy(machine, 200)

    result = run_ten_seconds(clock, tracker, {5: first_period, 10: second_period})
    cpu, memory = by_domain(result)["cpu"], by_domain(result)["memory"]
    assert cpu.energy_j == pytest.approx(1000.0)
    assert cpu.attributed_j == pytest.approx(100 * 5 * 0.25 + 100 * 5 * 1.0)
    used = machine.mem_total_kb * 1024 - machine.mem_available_kb * 1024
    # RSS share at 5 s (root + worker), then at 10 s (root alone)
    first, second = 75_000 * PAGE / used, 50_000 * PAGE / used
    assert memory.attributed_j == pytest.approx(10 * 5 * first + 10 * 5 * second)
    assert result.attribution is not None and result.attribution.policy == "process"
    for fig in result.energy:
        assert fig.attributed_j is not None and 0 <= fig.attributed_j <= fig.energy_j
    assert result.attributed_j == pytest.approx(cpu.attributed_j + memory.attributed_j)
    assert result.attributed_co2e_g == pytest.approx(
        result.co2e_g * result.attributed_j / result.energy_j)


def test_a_phase_gets_the_shares_of_the_periods_it_spans(machine: FakeProcfs) -> None:
    clock = ManualClock()
    tracker = Tracker(backend="constant", constant_power="cpu=100", clock=clock,
                      sampling="manual", quiet=True, db="off", procfs_root=machine.root)
    tracker.start()
    clock.advance(2.5)
    with tracker.phase("epoch"):
        clock.advance(2.5)
        machine.procs[ROOT].utime += 100
        busy(machine, 400)  # 0-5 s: share 0.25
        tracker.tick()
        clock.advance(2.5)
    clock.advance(2.5)
    machine.procs[ROOT].utime += 200
    busy(machine, 400)  # 5-10 s: share 0.5
    result = tracker.stop()
    phase = result.phase("epoch").energy[0]
    assert phase.energy_j == pytest.approx(500.0)
    assert phase.attributed_j == pytest.approx(100 * 2.5 * 0.25 + 100 * 2.5 * 0.5)
    assert by_domain(result)["cpu"].attributed_j == pytest.approx(100 * 5 * 0.25 + 100 * 5 * 0.5)


@pytest.fixture
def gpu(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[FakeNvml, ManualClock]]:
    def make(processes: list[tuple[int, int, int]]) -> tuple[FakeNvml, ManualClock]:
        clock = ManualClock()
        fake = FakeNvml([FakeGpu(power=200.0, processes=processes,
                                 utilization=((0.0, 100.0, 50.0),))], clock=clock)
        monkeypatch.setitem(sys.modules, "pynvml", fake.module)
        return fake, clock

    return make


def test_a_shared_gpu_is_attributed_by_per_process_utilisation(
        machine: FakeProcfs, gpu: Callable[..., tuple[FakeNvml, ManualClock]]) -> None:
    fake, clock = gpu([(WORKER, 2 << 30, 60), (STRANGER, 1 << 30, 40)])
    tracker = Tracker(backend="nvml", clock=clock, sampling="manual", quiet=True, db="off",
                      procfs_root=machine.root, environ={}, cloud_detect=False)
    fig = by_domain(run_ten_seconds(clock, tracker, {}))["gpu:0"]
    assert fig.energy_j == pytest.approx(2000.0, rel=0.005)
    assert fig.attributed_j == pytest.approx(fig.energy_j * 0.6)
    assert fake.calls["nvmlDeviceGetProcessUtilization"] <= 3  # at share updates, not ticks


def test_a_gpu_the_job_owns_is_all_its_own(
        machine: FakeProcfs, gpu: Callable[..., tuple[FakeNvml, ManualClock]]) -> None:
    _fake, clock = gpu([(ROOT, 2 << 30, 90)])
    tracker = Tracker(backend="nvml", clock=clock, sampling="manual", quiet=True, db="off",
                      procfs_root=machine.root, environ={}, cloud_detect=False)
    fig = by_domain(run_ten_seconds(clock, tracker, {}))["gpu:0"]
    assert fig.attributed_j == pytest.approx(fig.energy_j)


def test_in_a_pid_namespace_the_gpu_is_attributed_whole_and_the_result_says_why(
        machine: FakeProcfs, gpu: Callable[..., tuple[FakeNvml, ManualClock]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake, clock = gpu([(4242, 2 << 30, 50), (STRANGER, 1 << 30, 50)])  # host pids
    monkeypatch.setattr(attribution, "in_pid_namespace", lambda *a, **k: True)
    tracker = Tracker(backend="nvml", clock=clock, sampling="manual", quiet=True, db="off",
                      procfs_root=machine.root, environ={}, cloud_detect=False)
    result = run_ten_seconds(clock, tracker, {})
    assert by_domain(result)["gpu:0"].attributed_j == pytest.approx(
        by_domain(result)["gpu:0"].energy_j)
    assert result.attribution is not None
    assert any("PID namespace" in note for note in result.attribution.notes)
    assert fake.calls["nvmlDeviceGetProcessUtilization"] == 0


def test_machine_policy_attributes_everything_and_reads_no_process_tree(
        machine: FakeProcfs, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(**kwargs: Any) -> None:
        raise AssertionError("the machine policy must not read the process tree")

    monkeypatch.setattr(attribution, "ProcessTree", forbidden)
    clock = ManualClock()
    tracker = Tracker(backend="constant", constant_power="cpu=100", attribution="machine",
                      clock=clock, sampling="manual", quiet=True, db="off")
    result = run_ten_seconds(clock, tracker, {})
    assert by_domain(result)["cpu"].attributed_j == pytest.approx(1000.0)
    assert result.attribution is not None and result.attribution.policy == "machine"
    assert "attribution: machine" in carbonmonitor.format_summary(result)


def test_without_a_readable_process_tree_the_run_says_so_and_attributes_all(
        machine: FakeProcfs, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreadable(**kwargs: Any) -> None:
        raise PermissionError("cannot read /proc/100/stat (Permission denied)")

    monkeypatch.setattr(attribution, "ProcessTree", unreadable)
    clock = ManualClock()
    tracker = Tracker(backend="constant", constant_power="cpu=100", clock=clock,
                      sampling="manual", quiet=True, db="off", procfs_root=machine.root)
    result = run_ten_seconds(clock, tracker, {})
    flag = {f.code: f for f in result.flags}["attribution-unavailable"]
    assert "Permission denied" in flag.message and flag.fix
    assert result.attribution is not None and result.attribution.policy == "machine"
    assert by_domain(result)["cpu"].attributed_j == pytest.approx(1000.0)


def test_a_given_idle_baseline_splits_idle_from_dynamic_energy() -> None:
    clock = ManualClock()
    tracker = Tracker(backend="constant", constant_power="cpu=100,memory=10",
                      idle_power="cpu=20", attribution="machine", clock=clock,
                      sampling="manual", quiet=True, db="off")
    result = run_ten_seconds(clock, tracker, {})
    cpu, memory = by_domain(result)["cpu"], by_domain(result)["memory"]
    assert (cpu.idle_j, cpu.dynamic_j) == (pytest.approx(200.0), pytest.approx(800.0))
    assert memory.idle_j is None and memory.dynamic_j is None  # no baseline given for memory
    assert result.attribution is not None and result.attribution.idle == "given (idle_power)"
    assert "idle-power-unused" not in {f.code for f in result.flags}
    assert "Idle     " in carbonmonitor.format_summary(result)


def test_an_idle_baseline_named_for_nothing_measured_is_flagged() -> None:
    tracker = Tracker(backend="constant", constant_power="cpu=100", idle_power="cpus=20,gpu=5",
                      attribution="machine", clock=ManualClock(), sampling="manual",
                      quiet=True, db="off")
    flag = {f.code: f for f in tracker.start().stop().flags}["idle-power-unused"]
    assert "cpus, gpu" in flag.message and flag.fix


def test_a_measured_idle_baseline_is_taken_before_the_run_starts() -> None:
    """30 W while start() waits 2 s, then 100 W: idle 30 W over the run's 10 s."""
    clock = ManualClock()
    fake = FakeBackend({"cpu": [(0.0, 30.0), (2.0, 100.0)]})
    tracker = Tracker(backend=[fake], idle_measure_s=2, attribution="machine", clock=clock,
                      sampling="manual", quiet=True, db="off")
    result = run_ten_seconds(clock, tracker, {})
    cpu = by_domain(result)["cpu"]
    assert result.duration_s == pytest.approx(10.0)
    assert cpu.energy_j == pytest.approx(1000.0)
    assert cpu.idle_j == pytest.approx(300.0) and cpu.dynamic_j == pytest.approx(700.0)
    assert result.attribution is not None
    assert result.attribution.idle == "measured over 2 s before the run"


@pytest.mark.parametrize("bad, words", [
    ({"attribution": "procss"}, "Did you mean 'process'"),
    ({"idle_measure_s": -1}, r"between 0 \(off\)"),
    ({"idle_power": "cpu=lots"}, "must be a number"),
])
def test_bad_attribution_options_are_config_errors(bad: dict[str, Any], words: str) -> None:
    with pytest.raises(carbonmonitor.ConfigError, match=words):
        Tracker(backend="fake", quiet=True, db="off", **bad)


def test_attributed_energy_round_trips_through_the_store(machine: FakeProcfs,
                                                         tmp_path: Path) -> None:
    clock = ManualClock()
    tracker = Tracker(backend="constant", constant_power="cpu=100", idle_power="cpu=10",
                      clock=clock, sampling="manual", quiet=True, db=tmp_path / "runs.db",
                      procfs_root=machine.root)

    def period() -> None:
        machine.procs[ROOT].utime += 100
        busy(machine, 200)

    result = run_ten_seconds(clock, tracker, {5: period, 10: period})
    loaded = carbonmonitor.load(result.identity.run_id, db=tmp_path / "runs.db")
    assert loaded.attribution == result.attribution
    assert by_domain(loaded)["cpu"].attributed_j == pytest.approx(500.0)
    assert by_domain(loaded)["cpu"].idle_j == pytest.approx(100.0)


def _busy_s() -> float:
    """This machine's busy CPU seconds, read here independently of carbonmonitor."""
    import os

    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def test_real_time_smoke_the_cpu_share_matches_what_this_process_used() -> None:
    """A real run on this machine's /proc with the sampler thread, while a process that is not
    ours (started through a shell that exits at once, so it is init's child) burns CPU too: the
    CPU share is this process's CPU time over the machine's busy time, both measured here
    around the run (the tolerance covers the few ticks either side of the run's own samples)."""
    import os
    import subprocess
    import time

    burn = "import time\nend = time.monotonic() + 2\nwhile time.monotonic() < end: pass\n"
    subprocess.run(["sh", "-c", f'"{sys.executable}" -c "$0" >/dev/null 2>&1 &', burn],
                   check=True, timeout=10)
    cpu0, busy0 = sum(os.times()[:4]), _busy_s()
    with carbonmonitor.track(backend="estimate", quiet=True, db="off", interval=0.05) as run:
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            sum(i * i for i in range(10_000))
    ours, busy = sum(os.times()[:4]) - cpu0, _busy_s() - busy0
    result = run.result
    assert result is not None and result.attribution is not None
    assert result.attribution.policy == "process"
    cpu = by_domain(result)["cpu"]
    assert cpu.share is not None
    expected = min(ours / busy, 1.0) if busy > 0 else 1.0
    assert abs(cpu.share - expected) <= 0.2, (cpu.share, ours, busy)
    for fig in result.energy:
        assert fig.attributed_j is not None and fig.attributed_j <= fig.energy_j


def test_without_procfs_the_psutil_tree_attributes_the_same_way(tmp_path: Path) -> None:
    """Where there is no procfs (macOS, Windows) the tree and the machine are read through
    psutil: the same path, run here by pointing procfs_root at a folder without ``stat``."""
    import os
    import time

    cpu0 = sum(os.times()[:4])
    with carbonmonitor.track(backend="constant", constant_power="cpu=50", quiet=True, db="off",
                             interval=0.05, procfs_root=tmp_path) as run:
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline:
            sum(i * i for i in range(10_000))
    result = run.result
    assert result is not None and result.attribution is not None
    assert result.attribution.policy == "process"
    assert "attribution-unavailable" not in {f.code for f in result.flags}
    cpu = by_domain(result)["cpu"]
    assert cpu.share is not None and 0 < cpu.share <= 1
    assert sum(os.times()[:4]) - cpu0 > 0.1  # this process did the work it is credited with


def test_the_psutil_tree_keeps_the_time_of_children_that_exited(tmp_path: Path) -> None:
    import subprocess

    tree = attribution.PsutilTree()
    before = tree.sample()
    child = subprocess.run([sys.executable, "-c",
                            "import time\nend = time.process_time() + 0.3\n"
                            "while time.process_time() < end: pass"], check=True, timeout=30)
    assert child.returncode == 0
    after = tree.sample()
    assert after.cpu_s - before.cpu_s >= 0.25  # the reaped child's 0.3 s, less tick rounding
