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

from carbonmonitor._version import __version__ as __version__

# Not `from typing import TYPE_CHECKING`: importing typing would cost most of the import budget.
# Type checkers treat a module-level TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from carbonmonitor.backends.fake import FakeBackend as FakeBackend
    from carbonmonitor.clock import ManualClock as ManualClock
    from carbonmonitor.errors import BackendUnavailable as BackendUnavailable
    from carbonmonitor.errors import CarbonMonitorError as CarbonMonitorError
    from carbonmonitor.errors import ConfigError as ConfigError
    from carbonmonitor.errors import DataError as DataError
    from carbonmonitor.errors import StoreError as StoreError
    from carbonmonitor.reaccounting import reaccount as reaccount
    from carbonmonitor.records import RunResult as RunResult
    from carbonmonitor.store import RunList as RunList
    from carbonmonitor.store import Series as Series
    from carbonmonitor.store import load as load
    from carbonmonitor.store import runs as runs
    from carbonmonitor.store import series as series
    from carbonmonitor.summary import format_summary as format_summary
    from carbonmonitor.tracker import Tracker as Tracker
    from carbonmonitor.tracker import track as track

_LAZY = {
    "reaccount": "carbonmonitor.reaccounting",
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
    "runs": "carbonmonitor.store",
    "load": "carbonmonitor.store",
    "series": "carbonmonitor.store",
    "RunList": "carbonmonitor.store",
    "Series": "carbonmonitor.store",
    "StoreError": "carbonmonitor.errors",
}

__all__ = [
    "BackendUnavailable", "CarbonMonitorError", "ConfigError", "DataError", "FakeBackend",
    "ManualClock", "RunList", "RunResult", "Series", "StoreError", "Tracker", "__version__",
    "format_summary", "load", "reaccount", "runs", "series", "track",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'carbonmonitor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
