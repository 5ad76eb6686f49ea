"""A fake procfs (``/proc/<pid>/stat``, ``statm``, ``task/<tid>/children``, ``/proc/stat``,
``/proc/meminfo``) with known CPU times and RSS, for the attribution tests.

It follows the kernel: proc(5) field order, one ``children`` file per thread listing the
children that thread forked (CONFIG_PROC_CHILDREN), and reaping adds the child's utime+cutime /
stime+cstime to its parent's cutime / cstime (kernel/exit.c, wait_task_zombie).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HZ = 100
PAGE = 4096


@dataclass
class Proc:
    pid: int
    ppid: int
    comm: str = "python"
    utime: int = 0
    stime: int = 0
    cutime: int = 0
    cstime: int = 0
    rss_pages: int = 0
    start: int = 1000
    threads: list[int] = field(default_factory=list)
    forked_by: int | None = None  # the parent's thread that forked it (default: main thread)

    @property
    def ticks(self) -> int:
        return self.utime + self.stime + self.cutime + self.cstime


class FakeProcfs:
    """A /proc tree under ``root``; call ``write()`` after changing ``procs``."""

    def __init__(self, root: Path, *, children_files: bool = True) -> None:
        self.root = root
        self.children_files = children_files
        self.procs: dict[int, Proc] = {}
        self.written: set[int] = set()
        self.stat_cpu = [0] * 10  # user nice system idle iowait irq softirq steal guest gnice
        self.mem_total_kb = 16 * 1024 * 1024
        self.mem_available_kb = 8 * 1024 * 1024
        self.autowrite = True  # False: changes reach the files at the next write()
        self._on_disk: dict[Path, str] = {}

    def add(self, pid: int, ppid: int, **kw: Any) -> Proc:
        proc = self.procs[pid] = Proc(pid, ppid, **kw)
        proc.threads = proc.threads or [pid]
        self._changed()
        return proc

    def reap(self, pid: int) -> None:
        """``pid`` exits and its parent waits for it."""
        child = self.procs.pop(pid)
        parent = self.procs.get(child.ppid)  # None: init, outside the fake
        if parent is not None:
            parent.cutime += child.utime + child.cutime
            parent.cstime += child.stime + child.cstime
        self._orphan_children_of(pid)
        self._changed()

    def vanish(self, pid: int) -> None:
        """``pid`` exits and is reaped outside the tree (by init, or autoreaped)."""
        self.procs.pop(pid)
        self._orphan_children_of(pid)
        self._changed()

    def _orphan_children_of(self, pid: int) -> None:
        for proc in self.procs.values():
            if proc.ppid == pid:
                proc.ppid, proc.forked_by = 1, None  # reparented to init

    def _changed(self) -> None:
        if self.autowrite:
            self.write()

    def write(self) -> None:
        for pid in self.written - set(self.procs):
            for path in sorted((self.root / str(pid)).rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
            (self.root / str(pid)).rmdir()
            self._on_disk = {k: v for k, v in self._on_disk.items()
                             if not k.is_relative_to(self.root / str(pid))}
        for proc in self.procs.values():
            base = self.root / str(proc.pid)
            self._put(base / "stat", _stat_line(proc))
            self._put(base / "statm", f"{proc.rss_pages * 3} {proc.rss_pages} 100 10 0 50 0\n")
            if self.children_files:
                for tid in proc.threads:
                    kids = [c.pid for c in self.procs.values()
                            if c.ppid == proc.pid and (c.forked_by or c.ppid) == tid]
                    self._put(base / "task" / str(tid) / "children",
                              "".join(f"{k} " for k in kids))
        self.written = set(self.procs)
        cpu = " ".join(str(v) for v in self.stat_cpu)
        self._put(self.root / "stat", f"cpu  {cpu}\ncpu0 {cpu}\nintr 0\n")
        self._put(self.root / "meminfo",
                  f"MemTotal:       {self.mem_total_kb} kB\nMemFree:         1000 kB\n"
                  f"MemAvailable:   {self.mem_available_kb} kB\nBuffers:           0 kB\n")

    def _put(self, path: Path, text: str) -> None:
        if self._on_disk.get(path) != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            self._on_disk[path] = text


def _stat_line(p: Proc) -> str:
    """All 52 fields of proc(5), in order; the ones the readers use are filled in."""
    fields = [str(p.pid), f"({p.comm})", "S", str(p.ppid), str(p.pid), str(p.pid), "0", "-1",
              "4194560", "100", "0", "0", "0", str(p.utime), str(p.stime), str(p.cutime),
              str(p.cstime), "20", "0", str(len(p.threads)), "0", str(p.start),
              str(p.rss_pages * 3 * PAGE), str(p.rss_pages)] + ["0"] * 28
    assert len(fields) == 52
    return " ".join(fields) + "\n"


