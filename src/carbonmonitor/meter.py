"""The meter: reads every backend, turns cumulative readings into per-window energy.

A window is the run or one phase path. Readings are validated inside the per-backend guard, so a
backend that returns garbage is treated like one that raised: flagged once, dropped, and the
others keep measuring. A counter that goes backwards has restarted (driver reload, reset): the
energy since the restart is its new value, and the reset is counted and flagged once per domain.
"""

from __future__ import annotations

import logging
import math
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from carbonmonitor.backends.base import Backend, Cumulative, Domain
from carbonmonitor.facts import Flag

if TYPE_CHECKING:
    from carbonmonitor.records import EnergyFigure

log = logging.getLogger("carbonmonitor")


@dataclass
class Window:
    """Energy [point, low, high] per domain over one window, plus phase bookkeeping.

    With attribution on, ``attributed`` is the job's share of each domain's energy up to the last
    share update, and ``marked`` the domain's energy at that update: what came after it is not
    attributed yet (see :meth:`Meter.attribute`). Nothing is added per reading.
    """

    energy: dict[str, list[float]] = field(default_factory=dict)
    attributed: dict[str, float] = field(default_factory=dict)
    marked: dict[str, float] = field(default_factory=dict)
    count: int = 0
    open: int = 0
    opened_at: float = 0.0
    duration_s: float = 0.0
    work: dict[str, int] = field(default_factory=dict)  # units of work done in the window

    def add(self, key: str, delta: Cumulative) -> None:
        acc = self.energy.setdefault(key, [0.0, 0.0, 0.0])
        acc[0] += delta.energy_j
        acc[1] += delta.low_j
        acc[2] += delta.high_j


def _checked(values: Mapping[str, object], keys: Iterable[str]) -> dict[str, Cumulative]:
    """The readings for ``keys``; TypeError/ValueError/KeyError when a backend broke its
    contract (missing domain, not a Cumulative, a non-finite or negative figure)."""
    out = {}
    for key in keys:
        value = values[key]
        if not isinstance(value, Cumulative):
            raise TypeError(f"domain {key!r}: expected Cumulative, got {type(value).__name__}")
        e, lo, hi = value.energy_j, value.low_j, value.high_j
        if not (math.isfinite(e) and math.isfinite(lo) and math.isfinite(hi)
                and e >= 0 and lo >= 0 and hi >= 0):
            raise ValueError(f"domain {key!r}: energy must be finite and >= 0; got {value}")
        out[key] = value
    return out


def _safe_domains(backend: Backend) -> tuple[Domain, ...]:
    try:
        return tuple(backend.domains())
    except Exception:  # a backend's own description failing must not lose its figures
        return ()


class Meter:
    """Backends and their domains, the last reading of each, failures and the time series."""

    def __init__(self, backends: list[Backend], domains: dict[str, tuple[Backend, Domain]],
                 ) -> None:
        self.backends = backends
        self.domains = domains
        self.failed: dict[str, Flag] = {}
        self.resets: dict[str, int] = {}
        self.series_t = array("d")
        self.series = {key: array("d") for key in domains}
        # utilisation (%) per domain at each point, NaN where the backend reports none
        self.utilisation = {key: array("d") for key in domains}
        self._last: dict[str, Cumulative] = {}
        self.attributing = False  # figures use the windows' attributed energy
        self._keys = {id(b): [k for k, (owner, _) in domains.items() if owner is b]
                      for b in backends}
        # utilisation() is optional, not part of the Backend protocol
        self._reporters = [(b, getattr(b, "utilisation"), frozenset(self._keys[id(b)]))  # noqa: B009
                           for b in backends if callable(getattr(b, "utilisation", None))]

    def read(self, now: float, elapsed: float, windows: list[Window], record: bool) -> None:
        """Read all live backends at ``now`` and add the deltas to ``windows``; with
        ``record``, append a point (``elapsed`` seconds, cumulative energy) to the series."""
        readings: dict[str, Cumulative] = {}
        for backend in self.backends:
            if backend.name in self.failed:
                continue
            try:
                readings.update(_checked(backend.read(now), self._keys[id(backend)]))
            except Exception as err:  # any backend failure is contained and flagged
                self._fail(backend, err, elapsed)
        for key, cur in readings.items():
            prev = self._last.get(key)
            self._last[key] = cur
            if prev is None:
                continue
            delta = Cumulative(cur.energy_j - prev.energy_j, cur.low_j - prev.low_j,
                               cur.high_j - prev.high_j)
            if delta.energy_j < 0 or delta.low_j < 0 or delta.high_j < 0:
                # restarted from zero: what it counts now was drawn since the restart
                self.resets[key] = self.resets.get(key, 0) + 1
                delta = cur
            for window in windows:
                window.add(key, delta)
        if record:
            run = windows[0].energy
            busy = self._utilisation()
            if self.series_t and elapsed <= self.series_t[-1]:
                # no time has passed since the last point (a stop right after a tick): update it
                for key, series in self.series.items():
                    series[-1] = run.get(key, [0.0])[0]
                    self.utilisation[key][-1] = busy.get(key, math.nan)
                return
            self.series_t.append(elapsed)
            for key, series in self.series.items():
                series.append(run.get(key, [0.0])[0])
                self.utilisation[key].append(busy.get(key, math.nan))

    def read_cumulative(self, now: float) -> dict[str, float]:
        """Each domain's cumulative energy now, outside the run's accounting (the idle
        baseline is measured this way before the run); a failing backend is left out."""
        out: dict[str, float] = {}
        for backend in self.backends:
            try:
                for key, value in _checked(backend.read(now), self._keys[id(backend)]).items():
                    out[key] = value.energy_j
            except Exception:
                continue
        return out

    def _utilisation(self) -> dict[str, float]:
        """Utilisation (%) per domain from backends that report it (``utilisation()``); a
        failure here only leaves the value out."""
        out: dict[str, float] = {}
        for backend, report, keys in self._reporters:
            if backend.name in self.failed:
                continue
            try:
                for key, value in report().items():
                    if key in keys and math.isfinite(value):
                        out[key] = float(value)
            except Exception:
                continue
        return out

    def _fail(self, backend: Backend, err: Exception, elapsed: float) -> None:
        flag = Flag("backend-failed",
                    f"backend {backend.name!r} failed at {elapsed:.1f} s ({err}); its energy "
                    "covers the run only up to then",
                    "run `carbonmonitor devices` to see what the backend needs, or choose "
                    "another with backend=")
        self.failed[backend.name] = flag
        log.warning("carbonmonitor: %s. Fix: %s", flag.message, flag.fix)

    def flags(self) -> list[Flag]:
        out = list(self.failed.values())
        for key, count in self.resets.items():
            out.append(Flag("counter-reset", f"{key}: counter restarted {count} time(s); the "
                            "energy after each restart was kept, any drawn between the last "
                            "read and the restart is missing",
                            "usually a driver reload; nothing to do unless it repeats"))
        for backend in self.backends:
            out.extend(getattr(backend, "flags", ()))
        return out

    @staticmethod
    def attribute(windows: Iterable[Window], shares: Mapping[str, float]) -> None:
        """Give each window's energy drawn since the last update the shares of that period,
        and start a new period."""
        for window in windows:
            for key, acc in window.energy.items():
                since = acc[0] - window.marked.get(key, 0.0)
                window.attributed[key] = (window.attributed.get(key, 0.0)
                                          + since * shares.get(key, 1.0))
                window.marked[key] = acc[0]

    def figures(self, window: Window, duration_s: float,
                shares: Mapping[str, float] | None = None,
                idle_w: Mapping[str, float] | None = None) -> tuple[EnergyFigure, ...]:
        """The window's figures. ``shares`` (attribution on): the current share of each domain,
        applied to the energy not yet attributed; ``idle_w``: the idle baseline per domain."""
        from carbonmonitor.records import EnergyFigure, Uncertainty

        out = []
        # a backend can change a domain's method during a run (amdsmi rejecting a counter)
        current = {(id(b), d.key): d for b in self.backends for d in _safe_domains(b)}
        for key, (backend, domain) in self.domains.items():
            domain = current.get((id(backend), key), domain)
            e, lo, hi = window.energy.get(key, (0.0, 0.0, 0.0))
            attributed = idle = None
            if shares is not None and self.attributing:
                since = e - window.marked.get(key, 0.0)
                attributed = min(window.attributed.get(key, 0.0) + since * shares.get(key, 1.0),
                                 e)
            elif shares is not None:  # one share for the whole run ('machine': 1)
                attributed = e * shares.get(key, 1.0)
            if idle_w is not None and key in idle_w:
                idle = min(idle_w[key] * duration_s, e)
            edge = getattr(backend, "edge_uncertainty_j", None)
            if edge is not None:
                # a counter read can be up to one update old at each of the window's two edges
                try:
                    miss = 2.0 * float(edge(key))
                except Exception:
                    miss = 0.0
                lo, hi = max(lo - miss, 0.0), hi + miss
            out.append(EnergyFigure(
                domain=key, device=domain.device, backend=backend.name, method=domain.method,
                energy_j=e, duration_s=duration_s,
                uncertainty=Uncertainty(min(lo, e), max(hi, e), domain.rule),
                detail=domain.detail, attributed_j=attributed, idle_j=idle))
        return tuple(out)

    def close(self) -> None:
        for backend in self.backends:
            try:
                backend.close()
            except Exception as err:  # closing must not fail a run that measured fine
                log.warning("carbonmonitor: closing backend %r failed (%s)", backend.name, err)
