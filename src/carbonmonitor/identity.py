"""Run identity: name, tags, params, argv, host, git state, hardware, versions.

Cheap parts are read at start; the git dirty check runs as a subprocess started by the first
write to the store (on the sampler thread, so starting git never delays ``start()``) and
collected at stop, so a large repository never delays the user's program.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonmonitor._version import __version__

if TYPE_CHECKING:
    import subprocess

    from carbonmonitor.clock import Clock
    from carbonmonitor.options import Options
    from carbonmonitor.records import GitInfo, Hardware, RunIdentity

# Distributions whose versions matter when comparing ML runs; recorded when already imported.
_PACKAGES = {
    "torch": "torch", "numpy": "numpy", "jax": "jax", "tensorflow": "tensorflow",
    "keras": "keras", "transformers": "transformers", "lightning": "lightning",
    "pytorch_lightning": "pytorch-lightning", "sklearn": "scikit-learn", "accelerate": "accelerate",
}


@dataclass
class _Pending:
    run_id: str
    started_at: str
    argv: tuple[str, ...]
    git_dir: Path | None
    git_commit: str | None
    git_branch: str | None
    git_status: subprocess.Popen[str] | None = None
    git_launched: bool = False
    git_dirty: bool | None = None
    git_done: bool = False


def new_run_id(epoch_s: float) -> str:
    """Sortable and unique: ``20261128-153012-1a2b3c4d``."""
    stamp = datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{os.urandom(4).hex()}"  # the uuid module would import platform


def find_git_dir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if candidate.is_dir():
            return candidate
        if candidate.is_file():  # worktrees and submodules: "gitdir: <path>"
            text = candidate.read_text(encoding="utf-8").strip()
            if text.startswith("gitdir:"):
                return (folder / text[7:].strip()).resolve()
    return None


def read_head(git_dir: Path) -> tuple[str | None, str | None]:
    """(commit, branch) from the files under .git, without running git."""
    head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref:"):
        return head or None, None
    ref = head[4:].strip()
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    for base in (git_dir, common):
        if (base / ref).is_file():
            return (base / ref).read_text(encoding="utf-8").strip(), ref.removeprefix("refs/heads/")
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == ref:
                return parts[0], ref.removeprefix("refs/heads/")
    return None, ref.removeprefix("refs/heads/")  # a branch with no commits yet


def collect_identity(options: Options, clock: Clock, argv: tuple[str, ...] | None) -> _Pending:
    git_dir = find_git_dir(Path.cwd())
    commit = branch = None
    if git_dir is not None:
        try:
            commit, branch = read_head(git_dir)
        except OSError:
            pass
    return _Pending(new_run_id(clock.wall()), iso_utc(clock.wall()),
                    tuple(sys.argv if argv is None else argv), git_dir, commit, branch)


def _launch_git_status(pending: _Pending) -> None:
    """Start ``git status`` once; its answer is collected by :func:`_git_info`."""
    import subprocess

    pending.git_launched = True
    if pending.git_dir is None:
        return
    try:
        pending.git_status = subprocess.Popen(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=pending.git_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL, text=True)
    except OSError:  # git not installed: dirty flag unknown
        pending.git_status = None


def bare_pending(clock: Clock, argv: tuple[str, ...] | None) -> _Pending:
    """An identity with no git state, for when collecting one failed."""
    return _Pending(new_run_id(clock.wall()), iso_utc(clock.wall()),
                    tuple(sys.argv if argv is None else argv), None, None, None)


def _git_info(pending: _Pending, wait: bool = True) -> GitInfo | None:
    """The commit, branch and dirty flag. ``wait=False`` (provisional results) does not wait
    for ``git status``: the dirty flag is unknown until it has finished."""
    import subprocess

    from carbonmonitor.records import GitInfo

    if pending.git_commit is None:
        return None
    if not pending.git_launched:
        _launch_git_status(pending)
    status = pending.git_status
    if not pending.git_done and status is not None and (wait or status.poll() is not None):
        try:
            out, _ = status.communicate(timeout=5)
            pending.git_dirty = bool(out.strip()) if status.returncode == 0 else None
        except subprocess.TimeoutExpired:
            status.kill()
            status.communicate()
        pending.git_done = True
    return GitInfo(pending.git_commit, pending.git_dirty, pending.git_branch)


def hardware_inventory(procfs_root: Path) -> Hardware:
    """CPU model and count, RAM, NVIDIA GPUs listed by the driver under procfs (no NVML call)."""
    from carbonmonitor.backends.host import default_host
    from carbonmonitor.records import Hardware

    cpu_model = cpu_count = ram = None
    try:
        host = default_host(procfs_root)
        info = host.cpu_info()
        cpu_model, cpu_count = info.model, info.logical_cpus
        ram = host.memory_total_bytes()
    except (OSError, ValueError, ImportError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = []
    for info_file in sorted((procfs_root / "driver" / "nvidia" / "gpus").glob("*/information")):
        try:
            for line in info_file.read_text(encoding="utf-8").splitlines():
                if line.startswith("Model:"):
                    gpus.append(line.partition(":")[2].strip())
        except OSError:
            continue
    return Hardware(cpu_model, cpu_count, usable, ram, tuple(gpus))


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"carbonmonitor": __version__}
    for module, dist in _PACKAGES.items():
        if module in sys.modules:
            try:
                out[dist] = version(dist)
            except PackageNotFoundError:
                continue
    return out


def finish_identity(pending: _Pending | None, options: Options, clock: Clock,
                    argv: tuple[str, ...] | None, wait: bool = True) -> RunIdentity:
    import platform
    import socket

    from carbonmonitor.data import table_versions
    from carbonmonitor.records import RunIdentity

    if pending is None:  # collection failed at start: still give the run an identity
        pending = bare_pending(clock, argv)
    name = options.name or default_name(pending.argv)
    return RunIdentity(
        run_id=pending.run_id, name=name, project=options.project, tags=tuple(options.tags),
        params=dict(options.params), argv=pending.argv, host=socket.gethostname(),
        pid=os.getpid(), started_at=pending.started_at,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=platform.platform(), carbonmonitor_version=__version__,
        packages=package_versions(), data_tables=table_versions(),
        hardware=_safe_hardware(options.procfs_root), git=_git_info(pending, wait))


def _safe_hardware(procfs_root: Any) -> Hardware | None:
    try:
        return hardware_inventory(Path(procfs_root))
    except Exception:
        return None


def default_name(argv: tuple[str, ...]) -> str:
    """The script or command name: ``train`` for ``python train.py``; ``python`` otherwise."""
    for arg in argv:
        if arg.endswith(".py"):
            return Path(arg).stem
    if argv and argv[0] not in ("", "-c", "-m"):
        return Path(argv[0]).name
    return "python"


def iso_utc(epoch_s: float) -> str:
    """``2026-11-28T15:30:12.345+00:00``."""
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).isoformat(timespec="milliseconds")
