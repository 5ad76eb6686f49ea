"""The exceptions carbonmonitor raises.

::

    CarbonMonitorError                 base of everything below
    ├── ConfigError                    bad option, unknown country/region, bad PUE ...; raised by
    │                                  track()/Tracker() before any work starts (CLI: exit code 2)
    ├── BackendUnavailable             a backend cannot measure here; carries reason and fix
    ├── DataError                      a shipped data table is missing or malformed
    └── StoreError                     the run store cannot be opened or read (reading runs:
                                       runs(), load(), `carbonmonitor runs/show/export`)

Every message says what was wrong and how to fix it. Nothing here is raised into the user's code
after ``Tracker.start()``: failures while measuring are logged once and flagged in the result.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CarbonMonitorError(Exception):
    """Base class of carbonmonitor's exceptions."""


class ConfigError(CarbonMonitorError, ValueError):
    """An option or input value is invalid; the message names the value and the fix."""


class DataError(CarbonMonitorError):
    """A shipped reference table is missing or malformed (a packaging bug: please report it)."""


class StoreError(CarbonMonitorError):
    """The run store cannot be opened or read; the message names the file and the fix."""


class BackendUnavailable(CarbonMonitorError):
    """A measurement backend cannot run on this machine.

    Args:
        reason: what is missing, e.g. ``"no NVIDIA driver (libnvidia-ml.so.1 not found)"``.
        fix: the exact action that makes it usable, e.g. ``pip install "carbonmonitor[nvidia]"``.
    """

    def __init__(self, reason: str, fix: str = "") -> None:
        self.reason = reason
        self.fix = fix
        super().__init__(f"{reason}. Fix: {fix}" if fix else reason)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (case-insensitive), or None when nothing is close."""
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` when a choice is close to ``word``, else an empty string."""
    match = closest(word, choices)
    return f" Did you mean {match!r}?" if match else ""
