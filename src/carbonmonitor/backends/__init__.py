"""Measurement backends and how a run picks them.

Priority order for ``backend="auto"`` (counters first, then integrated power, then models):
measured built-ins (``rapl``, ``nvml``, ``amdsmi``, ``apple``, ``hwmon``), then third-party
backends from the ``carbonmonitor.backends`` entry-point group, then ``estimate``. ``constant``
and ``fake`` run only when named. For each device kind (cpu, memory, gpu ...) the first backend
that covers it wins, so ``backend="constant,estimate"`` with ``constant_power="cpu=65"`` takes
the CPU from the constant and memory from the estimate.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from carbonmonitor.backends.base import (
    Backend,
    BackendFactory,
    Cumulative,
    Domain,
    ProbeContext,
)
from carbonmonitor.errors import BackendUnavailable, ConfigError, did_you_mean
from carbonmonitor.facts import BackendStatus

__all__ = [
    "FALLBACK",
    "MEASURING_BUILTINS",
    "Backend",
    "BackendFactory",
    "Cumulative",
    "Domain",
    "ProbeContext",
    "Selection",
    "builtin_factories",
    "select_backends",
]

log = logging.getLogger("carbonmonitor")

ENTRY_POINT_GROUP = "carbonmonitor.backends"
# What "auto" tries, best first: measuring built-ins (GPU backends come next), then plugins,
# then the model of last resort.
MEASURING_BUILTINS: tuple[str, ...] = ("rapl", "nvml", "amdsmi", "apple", "hwmon")
FALLBACK = "estimate"


# name -> (module, factory class): a module is imported only when its backend is wanted.
BUILTINS: dict[str, tuple[str, str]] = {
    "rapl": ("carbonmonitor.backends.rapl", "RaplFactory"),
    "nvml": ("carbonmonitor.backends.nvml", "NvmlFactory"),
    "amdsmi": ("carbonmonitor.backends.amdsmi", "AmdsmiFactory"),
    "apple": ("carbonmonitor.backends.apple", "AppleFactory"),
    "hwmon": ("carbonmonitor.backends.hwmon", "HwmonFactory"),
    "estimate": ("carbonmonitor.backends.estimate", "EstimateFactory"),
    "constant": ("carbonmonitor.backends.constant", "ConstantFactory"),
    "fake": ("carbonmonitor.backends.fake", "FakeFactory"),
}


# What a built-in needs before its module is worth importing (each costs ~2 ms of a tracker's
# start-up); the modules raise the same reasons when they are imported anyway.
NEEDS_NVML = ("the NVIDIA backend needs the nvidia-ml-py package",
              'pip install "carbonmonitor[nvidia]" (installs nvidia-ml-py)')
NEEDS_AMDSMI = ("the AMD backend needs the amdsmi package",
                'pip install "carbonmonitor[amd]" (installs amdsmi), or the copy that matches '
                "your ROCm: pip install /opt/rocm/share/amd_smi")
HWMON_FIX_MISSING = (
    "on a Jetson (JetPack 5 or newer) the ina3221 driver exposes the rails: `cat "
    "/sys/class/hwmon/hwmon*/name` must list ina3221 (JetPack 4's ina3221x driver uses IIO, "
    "not hwmon, and is not read); in a container mount the host's /sys read-only and set "
    "sysfs_root= (e.g. -v /sys:/host/sys:ro, sysfs_root=/host/sys); elsewhere the rapl and GPU "
    "backends or the estimate measure instead")


def not_macos(system: str) -> BackendUnavailable:
    return BackendUnavailable(f"IOReport energy counters exist only on macOS (this is {system})",
                              "nothing to do: other backends (rapl, nvml, estimate) measure here")


def _missing(module: str) -> bool:
    """Whether ``module`` cannot be imported, found without importing it (a module already in
    sys.modules, a test's fake included, is left to the backend to judge)."""
    if module in sys.modules:
        return False
    import importlib.util

    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def precheck(name: str, context: ProbeContext) -> BackendUnavailable | None:
    """Why a built-in backend cannot run here, when that is known without importing it."""
    if name == "nvml" and _missing("pynvml"):
        return BackendUnavailable(*NEEDS_NVML)
    if name == "amdsmi" and _missing("amdsmi"):
        return BackendUnavailable(*NEEDS_AMDSMI)
    if name == "apple" and sys.platform != "darwin":
        return not_macos(sys.platform)
    if name == "hwmon":
        base = os.path.join(str(context.options.sysfs_root), "class", "hwmon")
        if not os.path.isdir(base):
            return BackendUnavailable(f"no hwmon devices: {base} does not exist",
                                      HWMON_FIX_MISSING)
    return None


class _Unavailable:
    """Stands for a built-in whose precheck failed: its probe raises the reason."""

    def __init__(self, name: str, why: BackendUnavailable) -> None:
        self.name = name
        self.why = why

    def probe(self, context: ProbeContext) -> Backend:
        raise self.why


def builtin_factory(name: str) -> BackendFactory:
    import importlib

    module, cls = BUILTINS[name]
    factory: BackendFactory = getattr(importlib.import_module(module), cls)()
    return factory


def builtin_factories() -> dict[str, BackendFactory]:
    return {name: builtin_factory(name) for name in BUILTINS}


def plugin_factories() -> dict[str, BackendFactory]:
    """Backends registered by other packages; a broken plugin is logged, never fatal."""
    import importlib

    out: dict[str, BackendFactory] = {}
    for name, target in entry_points(ENTRY_POINT_GROUP):
        try:
            module, _, attrs = target.partition(":")
            factory: Any = importlib.import_module(module.strip())
            for attr in filter(None, attrs.split("[")[0].strip().split(".")):
                factory = getattr(factory, attr)
            out[getattr(factory, "name", name)] = factory
        except Exception as err:  # a third-party import can fail in any way
            log.warning("carbonmonitor: backend plugin %r failed to load (%s); fix or uninstall "
                        "the package that provides it", name, err)
    return out


def entry_points(group: str) -> list[tuple[str, str]]:
    """(name, "module:attr") of every installed distribution's entry points in ``group``.

    The ``entry_points.txt`` files of the ``*.dist-info``/``*.egg-info`` folders on sys.path
    are read directly, first distribution of a name wins, as importlib.metadata does; importing
    importlib.metadata alone costs 15-30 ms of a tracker's start-up. When sys.path holds
    something else (a zip file), importlib.metadata is used.
    """
    import os
    import sys

    if any(os.path.isfile(p) for p in sys.path if p):
        from importlib.metadata import entry_points as metadata_entry_points

        return [(ep.name, ep.value) for ep in metadata_entry_points(group=group)]
    seen: set[str] = set()
    found: list[tuple[str, str]] = []
    for folder in sys.path:
        try:
            entries = sorted(os.scandir(folder or "."), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")):
                continue
            dist = entry.name.rsplit(".", 1)[0].split("-")[0].lower().replace("_", "-")
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(entry.path, "entry_points.txt"), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            found.extend(_section(text, group))
    return found


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """``name = value`` lines of the ``[group]`` section of an entry_points.txt (INI)."""
    out, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            out.append((name.strip(), value.strip()))
    return out


@dataclass
class Selection:
    backends: list[Backend]
    domains: dict[str, tuple[Backend, Domain]]
    statuses: list[BackendStatus]


def select_backends(requested: Sequence[Any], context: ProbeContext) -> Selection:
    """Probe the requested backends in order; ConfigError when a named one cannot run.

    Setting ``constant_power`` or ``fake_trace`` puts that backend first when the user left
    ``backend`` at ``auto``: asking for watts is asking to use them.
    """
    plugins: dict[str, BackendFactory] | None = None
    opts = context.options
    if opts.sources.get("backend") == "default":
        implied = [n for n, o in (("constant", "constant_power"), ("fake", "fake_trace"))
                   if opts.values.get(o) is not None]
        requested = [*implied, *requested]
    items: list[tuple[Any, bool]] = []  # (name, factory or backend instance; explicit?)
    for item in requested:
        if item == "auto":
            plugins = plugin_factories() if plugins is None else plugins
            auto = [*MEASURING_BUILTINS, *plugins, FALLBACK]
            items.extend((name, False) for name in auto)
        else:
            items.append((item, True))
    selection = Selection([], {}, [])
    covered: dict[str, str] = {}
    seen: set[str] = set()
    for item, explicit in items:
        if isinstance(item, str):
            if item in seen:
                continue
            seen.add(item)
            if item not in BUILTINS:
                plugins = plugin_factories() if plugins is None else plugins
                if item not in plugins:
                    known = sorted({*BUILTINS, *plugins, "auto"})
                    raise ConfigError(f"unknown backend {item!r}.{did_you_mean(item, known)} "
                                      f"Known backends: {', '.join(known)}")
            if item in BUILTINS:
                why = precheck(item, context)
                factory = builtin_factory(item) if why is None else _Unavailable(item, why)
            else:
                factory = plugins[item]  # type: ignore[index]
        elif hasattr(item, "read") or hasattr(item, "probe"):
            factory = item
        else:
            raise ConfigError(f"backend entries must be names or backend objects; got {item!r}")
        _add(selection, factory, context, explicit, covered)
    if not selection.backends:
        raise ConfigError("no backend can measure on this machine: " + "; ".join(
            f"{s.name}: {s.reason}" + (f" (fix: {s.fix})" if s.fix else "")
            for s in selection.statuses))
    return selection


def _add(selection: Selection, item: Any, context: ProbeContext, explicit: bool,
         covered: dict[str, str]) -> None:
    name = getattr(item, "name", type(item).__name__)
    try:
        backend = item if hasattr(item, "read") else item.probe(context)
    except ConfigError:
        raise  # the user's option is wrong: say so, whatever the mode
    except Exception as err:  # a third-party probe can fail in any way: never fatal in auto
        reason, fix = ((err.reason, err.fix) if isinstance(err, BackendUnavailable) else
                       (f"probe failed: {type(err).__name__}: {err}",
                        "fix or uninstall the package that provides it"))
        if explicit:
            raise ConfigError(f"backend {name!r} is unavailable here: {reason}. "
                              f"Fix: {fix}") from err
        if not isinstance(err, BackendUnavailable):
            log.warning("carbonmonitor: backend %r skipped: %s", name, reason)
        selection.statuses.append(BackendStatus(name, False, (), reason, fix))
        return
    kept = []
    for domain in backend.domains():
        # "machine" (a wall meter) covers every device kind, and is covered by any of them
        if domain.device in covered or "machine" in covered or (
                domain.device == "machine" and covered):
            continue
        if domain.key in selection.domains:
            raise ConfigError(f"backends {selection.domains[domain.key][0].name!r} and {name!r} "
                              f"both report domain {domain.key!r}; name only one of them")
        kept.append(domain)
    for domain in kept:
        selection.domains[domain.key] = (backend, domain)
    for device in {d.device for d in kept}:
        covered[device] = name
    devices = tuple(sorted({d.device for d in kept}))
    if kept:
        selection.backends.append(backend)
        selection.statuses.append(BackendStatus(name, True, devices))
    else:
        backend.close()
        selection.statuses.append(BackendStatus(
            name, False, (), "its devices are already measured by a backend earlier in the list",
            "reorder backend= to prefer it"))
