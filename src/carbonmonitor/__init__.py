"""carbonmonitor: energy and CO2e of machine-learning work, with every number's provenance.

Example:
    >>> import carbonmonitor
    >>> with carbonmonitor.track(project="demo", country="DE", backend="fake", quiet=True) as run:
    ...     with run.phase("train"):
    ...         pass
    >>> run.result.emissions.basis
    'lifecycle'

Public names are loaded on first use, so ``import carbonmonitor`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from carbonmonitor._version import __version__

if TYPE_CHECKING:
    from carbonmonitor.backends.fake import FakeBackend
    from carbonmonitor.clock import ManualClock
    from carbonmonitor.errors import BackendUnavailable, CarbonMonitorError, ConfigError, DataError
    from carbonmonitor.records import RunResult
    from carbonmonitor.summary import format_summary
    from carbonmonitor.tracker import Tracker, track

_LAZY = {
    "track": "carbonmonitor.tracker",
    "Tracker": "carbonmonitor.tracker",
    "RunResult": "carbonmonitor.records",
    "ManualClock": "carbonmonitor.clock",
    "FakeBackend": "carbonmonitor.backends.fake",
    "format_summary": "carbonmonitor.summary",
    "CarbonMonitorError": "carbonmonitor.errors",
    "ConfigError": "carbonmonitor.errors",
    "BackendUnavailable": "carbonmonitor.errors",
    "DataError": "carbonmonitor.errors",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'carbonmonitor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
