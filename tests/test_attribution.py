"""Attribution readers and shares, on fake procfs trees built in tmp_path (known utime, stime,
cutime, cstime and RSS), a fake pynvml (tests/fakes/fake_nvml.py), and once on the real /proc.

The fake tree follows the kernel: ``/proc/<pid>/stat`` (proc(5) field order), ``statm``, one
``task/<tid>/children`` file per thread listing the children that thread forked
(CONFIG_PROC_CHILDREN), and reaping adds the child's utime+cutime / stime+cstime to its parent's
cutime / cstime (kernel/exit.c, wait_task_zombie).
"""

from __future__ import annotations

import os
import random
import select
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes import fake_procfs
from fakes.fake_nvml import FAKE_EPOCH_US, FakeGpu, FakeNvml
from fakes.fake_procfs import FakeProcfs

from carbonmonitor import ManualClock
from carbonmonitor.attribution import (
    ProcessTree,
    SystemSample,
    TreeSample,
    cpu_share,
    gpu_process_samples,
    gpu_share,
    last_seen_us,
    memory_share,
    system_sample,
)
from carbonmonitor.backends.host import ProcHost

HZ, PAGE = fake_procfs.HZ, fake_procfs.PAGE


@pytest.fixture
def procfs(tmp_path: Path) -> FakeProcfs:
    return FakeProcfs(tmp_path / "proc")


def tree_of(fs: FakeProcfs, root_pid: int = 100, **kw: Any) -> ProcessTree:
    kw.setdefault("clock", ManualClock())
    return ProcessTree(root_pid, proc_root=fs.root, clk_tck=HZ, page_size=PAGE, **kw)


def ticks(sample: TreeSample) -> int:
    """The sample's CPU time back in clock ticks (exact: ticks / HZ * HZ rounds back)."""
    return round(sample.cpu_s * HZ)


# -- the tree ---------------------------------------------------------------------------------


def test_a_tree_is_its_root_children_and_grandchildren_with_their_reaped_time(
        procfs: FakeProcfs) -> None:
    procfs.add(1, 0, comm="init", utime=99_999)  # not ours
    procfs.add(100, 1, utime=500, stime=120, cutime=30, cstime=7, rss_pages=25_000)
    procfs.add(101, 100, comm="pt_data_worker", utime=200, stime=40, rss_pages=5_000)
    procfs.add(102, 100, comm="pt_data_worker", utime=210, stime=35, rss_pages=5_100)
    procfs.add(103, 101, comm="sh", utime=3, stime=1, cutime=2, cstime=1, rss_pages=100)
    procfs.add(200, 1, comm="someone else", utime=7_000, rss_pages=90_000)

    sample = tree_of(procfs).sample()

    assert sample.pids == {100, 101, 102, 103}
    assert ticks(sample) == (500 + 120 + 30 + 7) + (200 + 40) + (210 + 35) + (3 + 1 + 2 + 1)
    assert sample.rss_bytes == (25_000 + 5_000 + 5_100 + 100) * PAGE
    assert sample.unreadable == 0


def test_cpu_and_memory_shares_are_exact_against_the_machine(procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=1_000, stime=200, rss_pages=262_144)  # 1 GiB
    procfs.add(101, 100, utime=50, stime=10, rss_pages=131_072)  # 0.5 GiB
    procfs.stat_cpu = [40_000, 500, 9_000, 800_000, 3_000, 100, 400, 2_500, 7_000, 0]
    procfs.mem_available_kb = procfs.mem_total_kb - 6 * 1024 * 1024  # 6 GiB in use
    procfs.write()
    tree, host = tree_of(procfs), ProcHost(procfs.root)
    t0, s0 = tree.sample(), system_sample(host)
    assert s0.busy_cpu_s == pytest.approx((40_000 + 500 + 9_000 + 100 + 400) / HZ, abs=1e-9)
    assert s0.mem_used_bytes == 6 * 1024**3

    procfs.procs[100].utime += 300  # the tree: +300 + 60 + 40 ticks
    procfs.procs[101].utime += 60
    procfs.procs[101].stime += 40
    # the machine: +800 busy ticks (user 600, system 150, softirq 50); steal, guest, idle,
    # iowait move too and must not count (guest is already inside user)
    procfs.stat_cpu[0] += 600
    procfs.stat_cpu[2] += 150
    procfs.stat_cpu[6] += 50
    for i, extra in ((3, 5_000), (4, 70), (7, 900), (8, 300)):
        procfs.stat_cpu[i] += extra
    procfs.write()
    t1, s1 = tree.sample(), system_sample(host)

    assert cpu_share(t0, t1, s0, s1) == pytest.approx(400 / 800, abs=1e-12)
    assert memory_share(t1, s1) == pytest.approx(1.5 / 6, abs=1e-12)


def test_a_worker_reaped_mid_run_keeps_its_time_without_counting_it_twice(
        procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=1_000, stime=100)
    procfs.add(101, 100, comm="pt_data_worker", utime=400, stime=50)
    tree = tree_of(procfs)
    t0 = tree.sample()

    procfs.procs[101].utime += 70  # runs 70 more ticks after the last sample, then exits
    procfs.procs[100].utime += 10
    procfs.reap(101)
    t1 = tree.sample()

    assert t1.pids == {100}
    assert ticks(t1) - ticks(t0) == 70 + 10  # all of it, once
    assert ticks(t1) == 1_000 + 100 + 10 + (400 + 70 + 50)


def test_a_worker_reaped_by_a_parent_that_exits_too_in_the_same_interval(
        procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=1_000)
    procfs.add(101, 100, comm="launcher", utime=100)
    procfs.add(102, 101, comm="worker", utime=300, stime=20)
    tree = tree_of(procfs)
    t0 = tree.sample()
    procfs.procs[102].utime += 5
    procfs.reap(102)  # into 101
    procfs.reap(101)  # into 100, with 102's time inside
    t1 = tree.sample()
    assert t1.pids == {100}
    assert ticks(t1) - ticks(t0) == 5


def test_an_orphan_reaped_by_init_keeps_the_time_seen_before_it_exited(
        procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=1_000)
    procfs.add(101, 100, comm="launcher", utime=100)
    procfs.add(102, 101, comm="daemonised worker", utime=300)
    tree = tree_of(procfs)
    t0 = tree.sample()

    procfs.reap(101)  # the launcher exits first: 102 is reparented to init (ppid 1)
    assert procfs.procs[102].ppid == 1
    procfs.procs[102].utime += 40
    procfs.write()
    t1 = tree.sample()
    assert t1.pids == {100, 102}  # still followed by pid after reparenting
    assert ticks(t1) - ticks(t0) == 40

    procfs.procs[102].utime += 25  # runs a little more, then exits and init reaps it
    procfs.vanish(102)
    t2 = tree.sample()
    assert t2.pids == {100}
    # kept up to its last sample; the 25 ticks after it are what cannot be seen
    assert ticks(t2) == ticks(t1)


def test_an_orphan_whose_parent_left_in_the_same_interval_is_not_assumed_reaped(
        procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=1_000)
    procfs.add(101, 100, comm="launcher", utime=100)
    procfs.add(102, 101, comm="worker", utime=300)
    tree = tree_of(procfs)
    t0 = tree.sample()
    procfs.reap(101)  # 100 takes up 101's 100 ticks, not 102's
    procfs.vanish(102)  # reaped by init
    t1 = tree.sample()
    assert ticks(t1) == ticks(t0)


def test_children_of_a_parent_that_ignores_sigchld_keep_their_time(procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=1_000)
    procfs.add(101, 100, utime=250, stime=50)
    tree = tree_of(procfs)
    t0 = tree.sample()
    procfs.vanish(101)  # autoreaped: the parent's cutime does not grow
    t1 = tree.sample()
    assert ticks(t1) == ticks(t0)


@pytest.mark.parametrize("comm", ["python train.py", "a) b", "((x))", ") S 999 ", ":)"])
def test_comm_with_spaces_and_parentheses_is_parsed(procfs: FakeProcfs, comm: str) -> None:
    procfs.add(100, 1, comm=comm, utime=11, stime=22, cutime=33, cstime=44, rss_pages=7)
    procfs.add(101, 100, comm=comm, utime=1)
    sample = tree_of(procfs).sample()
    assert ticks(sample) == 11 + 22 + 33 + 44 + 1
    assert sample.pids == {100, 101}
    assert sample.rss_bytes == 7 * PAGE


def test_a_pid_that_vanishes_between_listing_and_reading_is_skipped(procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=10)
    procfs.add(101, 100, utime=20)
    # listed by the parent, gone before its stat is read
    (procfs.root / "100" / "task" / "100" / "children").write_text("101 555 ")
    sample = tree_of(procfs).sample()
    assert sample.pids == {100, 101}
    assert ticks(sample) == 30


def test_a_process_gone_after_stat_but_before_statm_counts_no_memory(procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=10, rss_pages=50)
    procfs.add(101, 100, utime=20, rss_pages=70)
    (procfs.root / "101" / "statm").unlink()
    sample = tree_of(procfs).sample()
    assert sample.rss_bytes == 50 * PAGE and ticks(sample) == 30


def denying(paths: set[Path]) -> Callable[[Path], str]:
    def read(path: Path) -> str:
        if path in paths:
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    return read


def test_an_unreadable_member_holds_its_last_values_and_is_counted(procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=100, rss_pages=10)
    procfs.add(101, 100, utime=40, rss_pages=20)
    denied: set[Path] = set()
    tree = tree_of(procfs, read_text=denying(denied))
    t0 = tree.sample()
    assert t0.unreadable == 0

    procfs.procs[101].utime += 60  # not visible while unreadable
    procfs.procs[100].utime += 5
    procfs.write()
    denied.add(procfs.root / "101" / "stat")
    t1 = tree.sample()
    assert t1.unreadable == 1 and t1.pids == {100, 101}
    assert ticks(t1) - ticks(t0) == 5
    assert t1.rss_bytes == 30 * PAGE

    denied.clear()  # readable again: nothing was lost, only late
    t2 = tree.sample()
    assert t2.unreadable == 0 and ticks(t2) - ticks(t0) == 65


def test_a_new_child_that_cannot_be_read_is_ours_but_counts_nothing(procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=100)
    procfs.add(101, 100, utime=40)
    sample = tree_of(procfs, read_text=denying({procfs.root / "101" / "stat"})).sample()
    assert sample.pids == {100, 101} and sample.unreadable == 1 and ticks(sample) == 100


def test_an_unreadable_root_says_why_and_how_to_fix_it(procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=100)
    tree = tree_of(procfs, read_text=denying({procfs.root / "100" / "stat"}))
    with pytest.raises(PermissionError, match=r"cannot read .*100/stat.*Fix: .*hidepid"):
        tree.sample()
    with pytest.raises(ProcessLookupError, match=r"process 4242 is not in .*Fix: "):
        tree_of(procfs, root_pid=4242).sample()


def test_a_reused_pid_is_not_taken_for_the_old_member(procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=100)
    procfs.add(101, 100, utime=40, start=5_000)
    tree = tree_of(procfs)
    t0 = tree.sample()
    procfs.reap(101)  # into 100: +40
    procfs.add(101, 1, comm="stranger", utime=9_000, start=8_000)  # same pid, not ours
    t1 = tree.sample()
    assert t1.pids == {100}
    assert ticks(t1) == ticks(t0)


def test_once_the_root_is_gone_a_process_reusing_its_pid_is_not_adopted(
        procfs: FakeProcfs) -> None:
    procfs.add(50, 1, comm="carbonmonitor run")
    procfs.add(100, 50, utime=100)
    tree = tree_of(procfs)
    t0 = tree.sample()
    procfs.reap(100)  # the monitored command ends; its parent (not in the tree) reaps it
    t1 = tree.sample()
    assert t1.pids == frozenset() and ticks(t1) == ticks(t0)
    procfs.add(100, 1, comm="stranger", utime=5_000, start=9_999)
    t2 = tree.sample()
    assert t2.pids == frozenset() and ticks(t2) == ticks(t0)


def test_children_forked_by_other_threads_are_found_at_the_next_rescan(
        procfs: FakeProcfs) -> None:
    procfs.add(100, 1, utime=100, threads=[100, 110, 111])
    procfs.add(101, 100, utime=10)  # forked by the main thread
    clock = ManualClock()
    tree = tree_of(procfs, clock=clock, rescan_s=5.0)
    assert tree.sample().pids == {100, 101}  # the first call reads every thread

    procfs.add(102, 100, utime=20)  # main thread: found on the next call
    procfs.add(103, 100, utime=30, forked_by=111)  # another thread: at the next rescan
    clock.advance(1.0)
    t1 = tree.sample()
    assert t1.pids == {100, 101, 102}
    clock.advance(4.0)
    t2 = tree.sample()
    assert t2.pids == {100, 101, 102, 103}
    assert ticks(t2) == 100 + 10 + 20 + 30  # found late, none of its time lost


def test_without_children_files_a_throttled_scan_of_parent_pids_finds_descendants(
        tmp_path: Path) -> None:
    fs = FakeProcfs(tmp_path / "proc", children_files=False)
    fs.add(1, 0, comm="init")
    fs.add(100, 1, utime=100)
    fs.add(101, 100, utime=10)
    fs.add(102, 101, utime=20)
    for pid in range(300, 340):
        fs.add(pid, 1, comm="other", utime=1)
    reads: Counter[str] = Counter()

    def counting(path: Path) -> str:
        reads[path.name] += 1
        return path.read_text()

    clock = ManualClock()
    tree = tree_of(fs, clock=clock, rescan_s=5.0, read_text=counting)
    t0 = tree.sample()
    assert t0.pids == {100, 101, 102} and ticks(t0) == 130
    first_scan = reads["stat"]
    assert first_scan >= 44  # every process's stat was read once

    fs.add(103, 100, utime=7)
    reads.clear()
    for _ in range(10):  # no full scan inside rescan_s: only the members' own files
        clock.advance(0.4)
        assert tree.sample().pids == {100, 101, 102}
    assert reads["stat"] == 10 * 3
    clock.advance(1.0)
    assert tree.sample().pids == {100, 101, 102, 103}


# -- shares -----------------------------------------------------------------------------------


def ts(cpu_s: float, rss: int = 0) -> TreeSample:
    return TreeSample(cpu_s, rss, frozenset({1}))


def test_cpu_share_degenerate_cases() -> None:
    s0 = SystemSample(100.0, 0)
    assert cpu_share(ts(5.0), ts(5.0), s0, SystemSample(100.0, 0)) == 0.0  # nobody ran
    assert cpu_share(ts(5.0), ts(5.5), s0, SystemSample(100.0, 0)) == 1.0  # only we ran
    assert cpu_share(ts(5.0), ts(5.5), s0, SystemSample(99.0, 0)) == 1.0  # machine went back
    assert cpu_share(ts(5.0), ts(4.0), s0, SystemSample(101.0, 0)) == 0.0  # tree went back
    assert cpu_share(ts(5.0), ts(7.0), s0, SystemSample(101.0, 0)) == 1.0  # rounding: clamp
    assert cpu_share(ts(5.0), ts(5.25), s0, SystemSample(101.0, 0)) == 0.25


def test_memory_share_is_clamped_and_zero_without_memory_in_use() -> None:
    assert memory_share(ts(0, 3 * 1024**3), SystemSample(0, 2 * 1024**3)) == 1.0
    assert memory_share(ts(0, 1024**3), SystemSample(0, 4 * 1024**3)) == 0.25
    assert memory_share(ts(0, 1024**3), SystemSample(0, 0)) == 0.0


def test_attributed_energy_never_exceeds_device_energy_over_a_random_run(
        procfs: FakeProcfs) -> None:
    """A tree that spawns, reaps and orphans workers next to a machine whose busy counter moves
    more, less (rounding) or not at all: every share is in [0, 1], so per interval and in total
    the attributed energy is at most the device's; and the tree's time is exactly what its
    processes used, less what orphans used after their last sample."""
    rng = random.Random(1234)
    procfs.add(100, 1, utime=10)
    tree, host = tree_of(procfs), ProcHost(procfs.root)
    first = prev_t = tree.sample()
    prev_s = system_sample(host)
    device_j = attributed_j = 0.0
    used_total = lost_total = 0
    next_pid = 101
    procfs.autowrite = False
    for _ in range(150):
        steps = {pid: rng.randint(0, 30) for pid in procfs.procs}
        for pid, step in steps.items():
            procfs.procs[pid].utime += step
        if rng.random() < 0.3:
            steps[next_pid] = rng.randint(0, 50)  # all of a new worker's time is new
            procfs.add(next_pid, rng.choice(list(procfs.procs)), utime=steps[next_pid])
            next_pid += 1
        used = sum(steps.values())
        others = [p for p in procfs.procs if p != 100]
        if others and rng.random() < 0.2:
            victim = procfs.procs[rng.choice(others)]
            if rng.random() < 0.3 or victim.ppid == 1:  # reaped outside the tree
                lost_total += victim.ticks if victim.pid not in prev_t.pids \
                    else steps[victim.pid]
                procfs.vanish(victim.pid)
            else:
                procfs.reap(victim.pid)
        used_total += used
        procfs.stat_cpu[0] += max(used + rng.randint(-20, 200), 0)
        procfs.write()
        cur_t, cur_s = tree.sample(), system_sample(host)
        dev = rng.uniform(0.0, 300.0)
        share = cpu_share(prev_t, cur_t, prev_s, cur_s)
        assert 0.0 <= share <= 1.0
        assert 0.0 <= memory_share(cur_t, cur_s) <= 1.0
        assert dev * share <= dev
        assert ticks(cur_t) >= ticks(prev_t)
        device_j += dev
        attributed_j += dev * share
        prev_t, prev_s = cur_t, cur_s
    assert 0.0 < attributed_j <= device_j
    assert lost_total > 0 and next_pid > 130  # the run did orphan and spawn
    assert ticks(prev_t) - ticks(first) == used_total - lost_total


# -- GPU --------------------------------------------------------------------------------------


@pytest.fixture
def gpu() -> Callable[..., tuple[FakeNvml, Any, ManualClock]]:
    def make(**kw: Any) -> tuple[FakeNvml, Any, ManualClock]:
        clock = ManualClock()
        fake = FakeNvml([FakeGpu(**kw)], clock=clock)
        fake.module.nvmlInit()
        return fake, fake.module.nvmlDeviceGetHandleByIndex(0), clock

    return make


def test_gpu_share_is_all_of_it_when_every_process_on_the_gpu_is_ours(gpu: Any) -> None:
    fake, handle, clock = gpu(processes=[(100, 2 << 30, 80), (101, 1 << 30, 15)])
    clock.advance(1.0)
    samples = gpu_process_samples(fake.module, handle, FAKE_EPOCH_US)
    assert samples is not None and {s.pid for s in samples} == {100, 101}
    assert gpu_share(samples, {100, 101, 102}) == 1.0
    assert last_seen_us(samples, FAKE_EPOCH_US) == FAKE_EPOCH_US + 1_000_000


def test_gpu_share_with_foreign_processes_is_our_part_of_the_sm_utilisation(gpu: Any) -> None:
    fake, handle, clock = gpu(processes=[(100, 1 << 30, 60), (101, 1 << 30, 15),
                                         (9_000, 1 << 30, 25)])
    clock.advance(1.0)
    samples = gpu_process_samples(fake.module, handle, FAKE_EPOCH_US)
    assert gpu_share(samples, {100, 101}) == pytest.approx(75 / 100, abs=1e-12)
    assert gpu_share(samples, {555}) == 0.0


def test_gpu_samples_not_found_yet_is_empty_and_not_supported_is_none(gpu: Any) -> None:
    fake, handle, clock = gpu(processes=[(100, 1 << 30, 60)])
    clock.advance(1.0)
    seen = last_seen_us(gpu_process_samples(fake.module, handle, 0), 0)
    assert gpu_process_samples(fake.module, handle, seen) == []  # nothing newer: NOT_FOUND
    assert gpu_share([], {100}) is None
    clock.advance(0.5)
    assert gpu_share(gpu_process_samples(fake.module, handle, seen), {100}) == 1.0

    idle, idle_handle, _ = gpu(processes=[])  # no process on the GPU
    assert gpu_process_samples(idle.module, idle_handle, 0) == []

    mig, mig_handle, _ = gpu(mig=True, mig_instances=["MIG-a"])
    assert gpu_process_samples(mig.module, mig_handle, 0) is None
    assert gpu_share(None, {100}) is None

    lost, lost_handle, lost_clock = gpu(processes=[(100, 1, 50)], lost_at_s=0.5)
    lost_clock.advance(1.0)
    with pytest.raises(lost.module.NVMLError_GpuIsLost):
        gpu_process_samples(lost.module, lost_handle, 0)


def test_gpu_share_drops_impossible_and_stale_samples() -> None:
    def s(pid: int, sm: int, t: int = 10) -> SimpleNamespace:
        return SimpleNamespace(pid=pid, smUtil=sm, timeStamp=t, memUtil=0, encUtil=0, decUtil=0)

    # a driver padding its buffer with garbage (Syllo/nvtop#110)
    assert gpu_share([s(100, 30), s(7, 4_294_967_295), s(0, 50)], {100}) == 1.0
    # several periods per process all count; idle samples split by process count
    assert gpu_share([s(100, 30, 1), s(100, 30, 2), s(7, 20, 2)], {100}) == 0.75
    assert gpu_share([s(100, 0), s(7, 0), s(8, 0), s(9, 0)], {100}) == 0.25
    nvml = SimpleNamespace(NVMLError=RuntimeError,
                           nvmlDeviceGetProcessUtilization=lambda h, t: [s(100, 5, 9),
                                                                         s(100, 6, 11)])
    assert [x.timeStamp for x in gpu_process_samples(nvml, None, 10) or []] == [11]


# -- the real /proc ---------------------------------------------------------------------------


def _readline(stream: Any, deadline: float) -> str:
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], max(deadline - time.monotonic(), 0))
        if ready:
            return str(stream.readline())
    raise AssertionError("the child did not report within the deadline")


@pytest.fixture
def burner() -> Iterator[subprocess.Popen[str]]:
    code = ("import sys, time\n"
            "end = float(sys.argv[1])\n"
            "while time.process_time() < end: pass\n"
            "print(time.process_time(), flush=True)\n"
            "sys.stdin.read()\n")
    child = subprocess.Popen([sys.executable, "-c", code, "0.4"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    yield child
    if child.poll() is None:
        child.kill()
        child.wait(timeout=60)


def test_on_the_real_proc_a_burning_child_is_in_the_tree_and_its_time_too(
        burner: subprocess.Popen[str]) -> None:
    tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
    tree = ProcessTree()
    before = os.times()
    t0 = tree.sample()
    after0 = os.times()

    deadline = time.monotonic() + 120
    reported_s = float(_readline(burner.stdout, deadline))  # the child's own CPU time
    t1 = tree.sample()
    assert burner.pid in t1.pids
    # the live child is counted: its reported time, less the rounding of its two fields
    assert t1.cpu_s - t0.cpu_s >= reported_s - 2 * tick_s

    assert burner.stdin is not None
    burner.stdin.close()  # it exits; wait() reaps it into our cutime
    burner.wait(timeout=max(deadline - time.monotonic(), 1))
    before2 = os.times()
    t2 = tree.sample()
    after2 = os.times()
    assert burner.pid not in t2.pids
    child_total_s = after2.children_user + after2.children_system - (
        before.children_user + before.children_system)
    assert child_total_s >= reported_s - 2 * tick_s

    def total(t: Any) -> float:
        return float(t.user + t.system + t.children_user + t.children_system)

    # the tree is this process plus the reaped child: the same kernel counters os.times()
    # reads, bracketed in time, within the rounding of four tick fields
    assert total(before2) - total(after0) - 4 * tick_s <= t2.cpu_s - t0.cpu_s
    assert t2.cpu_s - t0.cpu_s <= total(after2) - total(before) + 4 * tick_s
    assert t2.cpu_s - t0.cpu_s >= reported_s - 2 * tick_s
