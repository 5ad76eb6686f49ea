"""Attribution on shared machines: this job's share of what the hardware drew.

Device energy is what the hardware drew; attributed energy is ``device energy x share``, where the
share is the job's part of the work the device did over the same interval:

- CPU: CPU time of the monitored process tree (the root process, its children, DataLoader
  workers, grandchildren, ...) over the machine's busy CPU time (:func:`cpu_share`);
- memory: resident memory of the tree over the memory in use (:func:`memory_share`);
- GPU: the tree's part of NVML's per-process SM utilisation, all of it when every process on the
  GPU is ours (:func:`gpu_share`, :func:`gpu_process_samples`).

Every share lies in [0, 1], so attributed energy never exceeds device energy.

**Why the tree's CPU time is conserved.** :class:`ProcessTree` sums ``utime + stime + cutime +
cstime`` (``/proc/<pid>/stat`` fields 14-17, proc(5)) over the live members. When a member exits
and its parent reaps it with ``wait()``, the kernel adds the child's whole time (its own plus
what it had reaped itself) to the parent's ``cutime``/``cstime`` (``wait_task_zombie`` in
kernel/exit.c): the child leaves the sum and its parent's field grows by the same amount, so the
sum does not drop. Nested exits chain the same way. It cannot hold when the time is not added
to a live member:

- an orphan: its parent exits first, so it is reparented to init or a subreaper outside the tree
  (prctl(2) ``PR_SET_CHILD_SUBREAPER``), which reaps it;
- a parent that ignores ``SIGCHLD`` (or sets ``SA_NOCLDWAIT``): its children are reaped
  automatically and their time is added to no one (wait(2), NOTES).

So the tree also keeps, for each member that vanished, the time it had when last seen: if its
nearest live ancestor's ``cutime + cstime`` did not grow by at least that much, the shortfall is
retained (:attr:`TreeSample.cpu_s` includes it). What is still lost is the CPU time such a member
used between its last sample and its exit (at most one sampling interval). A vanished member's
time is counted once: a subreaper *inside* the tree that reaps an orphan which exited in the same
interval as its parent can count it twice (rare; not corrected).

Linux only: the tree reads procfs (any root, so a host's ``/proc`` mounted elsewhere works).
In a container with its own PID namespace, NVML reports host PIDs, which match none of the
tree's (container) PIDs: :func:`gpu_share` then says 0 for a GPU the job uses.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from carbonmonitor.clock import SystemClock

if TYPE_CHECKING:
    from carbonmonitor.backends.host import Host

__all__ = [
    "ProcessTree",
    "ProcessUtilizationSample",
    "SystemSample",
    "TreeSample",
    "cpu_share",
    "gpu_process_samples",
    "gpu_share",
    "last_seen_us",
    "memory_share",
    "system_sample",
]


@dataclass(frozen=True)
class TreeSample:
    """What a process tree has used, read at one instant.

    Attributes:
        cpu_s: cumulative CPU seconds of the tree since its processes started, including exited
            members (see the module docstring); only differences between samples mean anything.
        rss_bytes: resident memory of the live members, summed (pages shared between members,
            e.g. copy-on-write after fork, are counted once per member).
        pids: the live members (processes whose files could not be read included).
        unreadable: members whose procfs files could not be read this time; their last values
            are held (never-read ones count nothing).
    """

    cpu_s: float
    rss_bytes: int
    pids: frozenset[int]
    unreadable: int = 0


@dataclass(frozen=True)
class SystemSample:
    """The whole machine at one instant: busy CPU seconds (cumulative) and memory in use."""

    busy_cpu_s: float
    mem_used_bytes: int


def system_sample(host: Host) -> SystemSample:
    """Reads the machine through the same host reader the estimate backend uses.

    Busy time is ``user + nice + system + irq + softirq`` of ``/proc/stat`` (guest time is
    inside user; idle, iowait and steal are not work done here), memory in use is ``MemTotal -
    MemAvailable``: see :class:`carbonmonitor.backends.host.ProcHost`.
    """
    return SystemSample(host.cpu_times().busy_s, host.memory_used_bytes())


class MonotonicClock(Protocol):
    def monotonic(self) -> float: ...


def _read_bytes(path: Path) -> str:
    """One procfs file, opened and closed: no descriptors held in the user's process (a
    DataLoader with many workers can be near its open-file limit)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


@dataclass(frozen=True)
class _Stat:
    ppid: int
    own_ticks: int  # utime + stime
    child_ticks: int  # cutime + cstime
    start: int  # starttime, clock ticks after boot: tells a reused pid from the old process


def _parse_stat(text: str) -> _Stat:
    """``/proc/<pid>/stat``; the comm field (2) may hold spaces and ')', so split at the last
    ')' (proc(5)). Fields after it, from 3: state ppid ... utime(14) stime cutime cstime ...
    starttime(22)."""
    fields = text[text.rindex(")") + 2:].split()
    return _Stat(ppid=int(fields[1]), own_ticks=int(fields[11]) + int(fields[12]),
                 child_ticks=int(fields[13]) + int(fields[14]), start=int(fields[19]))


def _vanished(err: OSError) -> bool:
    # ENOENT: the directory is gone; ESRCH: a file opened before the process was reaped.
    return isinstance(err, (FileNotFoundError, ProcessLookupError))


class _Member:
    """A process of the tree and its last reading (ticks)."""

    __slots__ = ("pid", "stat_path", "statm_path", "children_path", "start", "ppid", "own",
                 "child", "prev_child", "rss_pages", "read_ok")

    def __init__(self, pid: int, root: Path) -> None:
        self.pid = pid
        base = root / str(pid)
        self.stat_path = base / "stat"
        self.statm_path = base / "statm"
        self.children_path = base / "task" / str(pid) / "children"  # the main thread's
        self.start: int | None = None  # None: never read
        self.ppid = 0
        self.own = 0
        self.child = 0
        self.prev_child: int | None = None  # child ticks at the previous sample
        self.rss_pages = 0
        self.read_ok = False  # read in the current sample

    def update(self, st: _Stat) -> None:
        self.prev_child = self.child if self.start is not None else None
        self.start, self.ppid = st.start, st.ppid
        self.own, self.child = st.own_ticks, st.child_ticks

    @property
    def ticks(self) -> int:
        return self.own + self.child


# Per vanished member, how far its ancestor's cutime+cstime may fall short of its last-seen time
# without counting as lost: /proc floors utime and stime to ticks separately, and the utime/stime
# split can shift at exit (cputime_adjust), so the reaped sum may read up to ~1 tick lower.
_REAP_SLACK_TICKS = 2


class ProcessTree:
    """Cumulative CPU time and resident memory of a process and all its descendants, from procfs.

    Descendants come from ``/proc/<pid>/task/<tid>/children`` (CONFIG_PROC_CHILDREN, see
    Documentation/filesystems/proc.rst): the main thread's list on every call, every thread's
    list at most every ``rescan_s`` (a child belongs to the thread that forked it). Without
    those files, descendants come from the parent pid of every ``/proc/*/stat``, also at most
    every ``rescan_s``. Known members are followed by pid on every call, also after they are
    reparented. A child found late loses no time (its counters are cumulative, and once reaped
    its time is in its parent's), only the moment it is counted. Not thread-safe: one sampler.

    Args:
        root_pid: the process at the top of the tree; default: this process.
        proc_root: where procfs is mounted.
        read_text: reads one file (tests inject one that raises PermissionError).
        clock: anything with ``monotonic()``; it times the rescans.
        rescan_s: at most this often, a full search for descendants.
        clk_tck: USER_HZ, the unit of the stat times; default ``os.sysconf("SC_CLK_TCK")``.
        page_size: bytes per page of ``statm``; default ``os.sysconf("SC_PAGE_SIZE")``.

    Example:
        >>> import os
        >>> tree = ProcessTree()
        >>> first = tree.sample()
        >>> os.getpid() in first.pids, tree.sample().cpu_s >= first.cpu_s
        (True, True)
    """

    def __init__(self, root_pid: int | None = None, *, proc_root: str | Path = Path("/proc"),
                 read_text: Callable[[Path], str] | None = None,
                 clock: MonotonicClock | None = None, rescan_s: float = 5.0,
                 clk_tck: int | None = None, page_size: int | None = None) -> None:
        self.root_pid = os.getpid() if root_pid is None else root_pid
        self.proc_root = Path(proc_root)
        self._read: Callable[[Path], str] = read_text or _read_bytes
        self._clock: MonotonicClock = clock if clock is not None else SystemClock()
        self.rescan_s = rescan_s
        tck = clk_tck if clk_tck is not None else os.sysconf("SC_CLK_TCK")
        self._tick_s = 1.0 / (tck if tck > 0 else 100)
        self._page_bytes = page_size if page_size is not None else os.sysconf("SC_PAGE_SIZE")
        self._members: dict[int, _Member] = {}
        self._retained_ticks = 0  # time of vanished members that no live member holds
        self._scanned_at: float | None = None
        self._children_files: bool | None = None  # None: not probed yet
        self._sampled = False

    def sample(self) -> TreeSample:
        """Reads the tree now. Raises OSError only when the root process cannot be read on the
        first call (the message says why and what to do); afterwards never."""
        if self._children_files is None:
            self._probe_root()
        now = self._clock.monotonic()
        full = self._scanned_at is None or now - self._scanned_at >= self.rescan_s
        if full:
            self._scanned_at = now
        # once the root is gone, a process that reuses its pid is not ours
        order = list(self._members) or ([] if self._sampled else [self.root_pid])
        self._sampled = True
        if full and not self._children_files:
            known = set(order)
            order += [p for p in self._scan_descendants(known) if p not in known]
        seen = set(order)
        members: dict[int, _Member] = {}
        vanished: list[_Member] = []
        unreadable = 0
        i = 0
        while i < len(order):
            pid = order[i]
            i += 1
            old = self._members.get(pid)
            m = old if old is not None else _Member(pid, self.proc_root)
            m.read_ok = False
            try:
                st = _parse_stat(self._read(m.stat_path))
            except (OSError, ValueError, IndexError) as err:
                if isinstance(err, OSError) and _vanished(err):
                    if old is not None and old.start is not None:
                        vanished.append(old)
                else:
                    unreadable += 1
                    members[pid] = m  # hold its last values; its pid is still ours
                continue
            if m.start is not None and st.start != m.start:
                vanished.append(m)  # the pid was reused; a new child on it is found next time
                continue
            m.update(st)
            m.read_ok = True
            m.rss_pages = self._rss_pages(m)
            members[pid] = m
            if self._children_files:
                for child in self._children(m, all_threads=full):
                    if child not in seen:
                        seen.add(child)
                        order.append(child)
        self._retained_ticks += self._lost_ticks(vanished, members)
        self._members = members
        ticks = self._retained_ticks + sum(m.ticks for m in members.values())
        return TreeSample(
            cpu_s=ticks * self._tick_s,
            rss_bytes=sum(m.rss_pages for m in members.values()) * self._page_bytes,
            pids=frozenset(members),
            unreadable=unreadable,
        )

    def _probe_root(self) -> None:
        root = _Member(self.root_pid, self.proc_root)
        try:
            _parse_stat(self._read(root.stat_path))
        except OSError as err:
            if _vanished(err):
                raise ProcessLookupError(
                    f"process {self.root_pid} is not in {self.proc_root}: it has exited, or "
                    f"{self.proc_root} is another PID namespace's procfs. Fix: attribute to a "
                    f"running process, with procfs_root pointing at its namespace's /proc"
                ) from err
            raise type(err)(
                f"cannot read {root.stat_path} ({err.strerror or err}). Fix: run as the user "
                f"who owns process {self.root_pid}, or remount procfs without hidepid "
                f"(mount -o remount,hidepid=0 {self.proc_root})") from err
        except (ValueError, IndexError) as err:
            raise OSError(f"{root.stat_path} is not a procfs stat file ({err}). Fix: point "
                          f"procfs_root at a mounted procfs") from err
        try:
            self._read(root.children_path)
            self._children_files = True
        except OSError:  # no CONFIG_PROC_CHILDREN (or unreadable): scan parent pids instead
            self._children_files = False

    def _rss_pages(self, m: _Member) -> int:
        try:
            return int(self._read(m.statm_path).split()[1])  # size resident shared ...
        except (OSError, ValueError, IndexError):
            return m.rss_pages  # vanished just now (next call sees it) or unreadable: hold

    def _children(self, m: _Member, *, all_threads: bool) -> list[int]:
        paths = [m.children_path]
        if all_threads:
            task_dir = m.children_path.parent.parent
            try:
                paths = [task_dir / tid / "children" for tid in os.listdir(task_dir)]
            except OSError:
                pass
        pids: list[int] = []
        for path in paths:
            try:
                pids.extend(int(p) for p in self._read(path).split())
            except (OSError, ValueError):
                continue  # the thread or process is gone: its children show up elsewhere
        return pids

    def _scan_descendants(self, known: set[int]) -> list[int]:
        """All descendants of ``known`` from the parent pid in every ``/proc/<pid>/stat``."""
        try:
            names = [n for n in os.listdir(self.proc_root) if n.isdigit()]
        except OSError:
            return []
        children: dict[int, list[int]] = {}
        for name in names:
            try:
                ppid = _parse_stat(self._read(self.proc_root / name / "stat")).ppid
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(name))
        found: list[int] = []
        stack = list(known)
        reached = set(known)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in reached:
                    reached.add(child)
                    found.append(child)
                    stack.append(child)
        return found

    @staticmethod
    def _lost_ticks(vanished: list[_Member], live: dict[int, _Member]) -> int:
        """Time of the vanished members that no live member's cutime+cstime took up."""
        by_pid = {v.pid: v for v in vanished}
        lost = 0
        expected: dict[int, tuple[int, int]] = {}  # ancestor -> (ticks, members)
        for v in vanished:
            anc, hops = v.ppid, 0
            while anc in by_pid and hops <= len(by_pid):  # through parents that left too
                anc, hops = by_pid[anc].ppid, hops + 1
            parent = live.get(anc)
            if parent is None:
                lost += v.ticks  # reaped outside the tree (orphan)
            elif parent.read_ok and parent.prev_child is not None:
                ticks, n = expected.get(anc, (0, 0))
                expected[anc] = (ticks + v.ticks, n + 1)
            # else the ancestor is new or unreadable: no evidence either way, assume reaped
        for anc, (ticks, n) in expected.items():
            parent = live[anc]
            shortfall = ticks - (parent.child - (parent.prev_child or 0))
            if shortfall > _REAP_SLACK_TICKS * n:  # e.g. the parent ignores SIGCHLD
                lost += shortfall
        return lost


def _clamp01(x: float) -> float:
    return 0.0 if x <= 0.0 else 1.0 if x >= 1.0 else x


def cpu_share(prev_tree: TreeSample, cur_tree: TreeSample, prev_sys: SystemSample,
              cur_sys: SystemSample) -> float:
    """The tree's part of the machine's busy CPU time between two samples, in [0, 1].

    Degenerate cases: a tree that used no time (or whose sum went backwards) has share 0; a tree
    that used time while the machine's busy counter did not move or went backwards (tick
    granularity, a virtualised /proc/stat) has share 1, being the only known user; a tree delta
    above the machine's (the two are rounded differently) is clamped to 1.

    Example:
        >>> t0, t1 = TreeSample(10.0, 0, frozenset()), TreeSample(13.0, 0, frozenset())
        >>> s0, s1 = SystemSample(100.0, 0), SystemSample(112.0, 0)
        >>> cpu_share(t0, t1, s0, s1)
        0.25
    """
    used_s = cur_tree.cpu_s - prev_tree.cpu_s
    busy_s = cur_sys.busy_cpu_s - prev_sys.busy_cpu_s
    if used_s <= 0.0:
        return 0.0
    if busy_s <= 0.0:
        return 1.0
    return _clamp01(used_s / busy_s)


def memory_share(tree: TreeSample, system: SystemSample) -> float:
    """The tree's resident memory over the memory in use, in [0, 1] (0 when none is in use).

    RSS counts pages shared between members once per member and file pages that MemAvailable
    calls available, so it can exceed the memory in use: then the share is 1.
    """
    if system.mem_used_bytes <= 0:
        return 0.0
    return _clamp01(tree.rss_bytes / system.mem_used_bytes)


class ProcessUtilizationSample(Protocol):
    """One ``c_nvmlProcessUtilizationSample_t`` of ``pynvml.nvmlDeviceGetProcessUtilization``:
    ``smUtil`` in percent of the sample period, ``timeStamp`` in µs of CPU (epoch) time."""

    pid: int
    smUtil: int
    timeStamp: int


def gpu_share(samples: Sequence[ProcessUtilizationSample] | None,
              tree_pids: Collection[int]) -> float | None:
    """The tree's part of a GPU's per-process SM utilisation, in [0, 1]; None without samples.

    All samples count (a process sampled in several periods weighs more). 1.0 when every
    sampled process is ours, 0.0 when none is; when every sample reads 0 % the share is the
    tree's fraction of the sampled processes. Samples with an impossible ``smUtil`` (> 100 %)
    or pid 0 are dropped: drivers have returned such entries (Syllo/nvtop#110).
    """
    valid = [s for s in samples or () if s.pid > 0 and 0 <= s.smUtil <= 100]
    if not valid:
        return None
    pids = {s.pid for s in valid}
    ours = {p for p in pids if p in tree_pids}
    if not ours:
        return 0.0
    if ours == pids:
        return 1.0
    total = sum(s.smUtil for s in valid)
    if total == 0:
        return len(ours) / len(pids)
    return _clamp01(sum(s.smUtil for s in valid if s.pid in ours) / total)


def gpu_process_samples(nvml: Any, handle: Any, since_us: int
                        ) -> list[ProcessUtilizationSample] | None:
    """Per-process utilisation samples of a GPU newer than ``since_us``, through pynvml.

    ``nvmlDeviceGetProcessUtilization(handle, lastSeenTimeStamp)`` returns the samples with a
    timestamp (CPU time, µs since the epoch) greater than ``lastSeenTimeStamp`` and raises
    NVML_ERROR_NOT_FOUND when there is none yet (NVML API reference): that is an empty list,
    as is pynvml's ``NVMLError(NVML_SUCCESS)`` for a zero count. NOT_SUPPORTED (MIG mode,
    pre-Maxwell GPUs) and FUNCTION_NOT_FOUND (an old driver) give None; other NVML errors
    propagate. Pass :func:`last_seen_us` of the result as the next ``since_us`` (the driver's
    sample period is about 1/6 to 1 s, so shorter windows are often empty). Samples not newer
    than ``since_us`` are dropped in case a driver returns its whole buffer.
    """
    try:
        samples = nvml.nvmlDeviceGetProcessUtilization(handle, since_us)
    except nvml.NVMLError as err:
        code = getattr(err, "value", None)
        if code in (getattr(nvml, "NVML_ERROR_NOT_FOUND", 6), getattr(nvml, "NVML_SUCCESS", 0)):
            return []
        if code in (getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", 3),
                    getattr(nvml, "NVML_ERROR_FUNCTION_NOT_FOUND", 13)):
            return None
        raise
    return [s for s in samples if s.timeStamp > since_us]


def last_seen_us(samples: Sequence[ProcessUtilizationSample] | None, since_us: int) -> int:
    """The newest sample's timestamp, or ``since_us`` when there is none: the next query's
    ``lastSeenTimeStamp``."""
    return max((s.timeStamp for s in samples or ()), default=since_us)


class PsutilTree:
    """The same readings as :class:`ProcessTree` through psutil, where there is no procfs
    (macOS, Windows). CPU time is user + system of the live members, plus the children's
    times where psutil reports them (Linux); where it does not (macOS, Windows), a member that
    exits keeps the time it had when last seen. Descendants are listed at every sample, which
    scans the process table: the tracker samples every few seconds."""

    def __init__(self, root_pid: int | None = None) -> None:
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(os.getpid() if root_pid is None else root_pid)
        self._seen: dict[int, tuple[float, float]] = {}  # pid -> (create time, cpu s)
        self._retained_s = 0.0
        # psutil's children_user/children_system hold reaped children's time on Linux only
        # (always 0 on macOS and Windows, psutil docs)
        self._reaped_time_moves = sys.platform.startswith("linux")

    def sample(self) -> TreeSample:
        psutil = self._psutil
        try:
            members = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            members = []
        cpu_s, rss, seen = 0.0, 0, {}
        for proc in members:
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    used = (t.user + t.system + getattr(t, "children_user", 0.0)
                            + getattr(t, "children_system", 0.0))
                    rss += proc.memory_info().rss
                    seen[proc.pid] = (proc.create_time(), used)
            except psutil.Error:  # exited, or not ours to read
                continue
            cpu_s += used
        if not self._reaped_time_moves:
            self._retained_s += sum(used for pid, (born, used) in self._seen.items()
                                    if seen.get(pid, (None,))[0] != born)
        self._seen = seen
        return TreeSample(cpu_s + self._retained_s, rss, frozenset(seen))


# -- the running share of each domain (the tracker's side) ------------------------------------

# How often shares are updated: a tree sample costs ~0.05-0.3 ms (one stat read per process),
# and NVML's per-process utilisation covers 1/6-1 s periods and takes a driver lock.
SHARE_EVERY_S = 10.0
# Below this much busy CPU time on the whole machine (a few clock ticks) a CPU share is noise:
# the previous share (1 at the start) is kept and the next update measures a longer period.
MIN_BUSY_S = 0.05


def in_pid_namespace(read_text: Callable[[Path], str] = _read_bytes,
                     proc_root: Path = Path("/proc")) -> bool:
    """Whether this process runs in a nested PID namespace (a container): the ``NSpid`` line of
    ``/proc/self/status`` lists one pid per namespace level. NVML reports host pids, which match
    none of ours there."""
    try:
        for line in read_text(proc_root / "self" / "status").splitlines():
            if line.startswith("NSpid:"):
                return len(line.split()) > 2
    except OSError:
        pass
    return False


class Attributor:
    """Each domain's current share under the ``process`` policy (see the module docstring).

    Args:
        kinds: domain key -> device kind (``cpu``, ``memory``, ``gpu``, ...).
        reporters: backends with ``process_shares(pids) -> {key: share or None}`` (nvml).
        tree: the monitored process tree (default: this process and its descendants).
        host: the machine's CPU and memory reader (a ``ProcHost`` on ``procfs_root``).
        namespaced: whether pids here differ from the host's (default: from ``NSpid``).

    Raises OSError at construction when the tree or the machine cannot be read: the caller
    falls back to the ``machine`` policy and says why.
    """

    def __init__(self, kinds: Mapping[str, str], reporters: Sequence[Any], tree: ProcessTree,
                 host: Host, namespaced: bool | None = None) -> None:
        self.kinds = dict(kinds)
        self.tree = tree
        self.host = host
        self.shares = {key: 1.0 for key in kinds}
        self.notes: list[str] = []
        self._gpu_seen: set[str] = set()
        self._reporters = list(reporters)
        gpus = [k for k, kind in kinds.items() if kind == "gpu"]
        if namespaced is None:
            namespaced = bool(gpus) and in_pid_namespace()
        if namespaced and gpus:
            self._reporters = []
            self._note("GPU: this job runs in its own PID namespace (a container) and NVML "
                       "reports host pids, so its GPU share cannot be measured: all of each "
                       "GPU's energy is attributed to it")
        others = sorted({kind for kind in kinds.values()
                         if kind not in ("cpu", "memory", "gpu", "machine")})
        if others:
            self._note(f"{', '.join(others)}: no per-process share is measured for this "
                       "device kind: all of its energy is attributed to the job")
        self._prev = (tree.sample(), system_sample(host))

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def update(self) -> dict[str, float]:
        """Shares over the period since the last update (or since construction)."""
        tree, system = self.tree.sample(), system_sample(self.host)
        prev_tree, prev_system = self._prev
        measurable = system.busy_cpu_s - prev_system.busy_cpu_s >= MIN_BUSY_S
        if measurable:  # else the next update measures from the same start
            self._prev = (tree, system)
        cpu = cpu_share(prev_tree, tree, prev_system, system) if measurable else None
        memory = memory_share(tree, system)
        gpu: dict[str, float | None] = {}
        for reporter in self._reporters:
            try:
                gpu.update(reporter.process_shares(tree.pids))
            except Exception as err:  # a failing query leaves the previous shares
                self._note(f"GPU per-process utilisation could not be read ({err}); the "
                           "previous shares were kept")
        for key, kind in self.kinds.items():
            if kind in ("cpu", "machine"):
                if cpu is not None:
                    self.shares[key] = cpu
            elif kind == "memory":
                self.shares[key] = memory
            elif kind == "gpu" and gpu.get(key) is not None:
                self.shares[key] = gpu[key]  # type: ignore[assignment]
                self._gpu_seen.add(key)
        return dict(self.shares)

    def final_notes(self) -> tuple[str, ...]:
        """The notes, plus one per GPU whose share was never measured."""
        unseen = sorted(k for k, kind in self.kinds.items()
                        if kind == "gpu" and k not in self._gpu_seen)
        if unseen and self._reporters:
            self._note(f"{', '.join(unseen)}: NVML reported no per-process utilisation (no "
                       "process sampled, or not supported), so all of the GPU's energy is "
                       "attributed to the job")
        return tuple(self.notes)
