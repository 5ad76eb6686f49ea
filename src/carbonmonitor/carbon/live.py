"""Time-resolved grid intensity: hourly bins from a live provider, and the hourly account of a run.

Emissions of a run with live data are the sum over intensity bins of the energy drawn in the bin
times the bin's intensity (DESIGN "Carbon accounting"). Energy between two stored samples is
spread uniformly in time, so a sample interval that crosses an hour boundary gives each hour its
share. Hours that no bin covers use the static factor (the shipped tables) and say so.

The providers (Electricity Maps, WattTime, UK Carbon Intensity) live in
:mod:`carbonmonitor.carbon.providers`; this module holds what they return and the accounting,
and imports none of them.

Example:
    >>> from datetime import datetime, timezone
    >>> hour = datetime(2025, 6, 1, 10, tzinfo=timezone.utc)
    >>> one = IntensityBin(hour, hour.replace(hour=11), 200.0, "lifecycle", "measured", "DE",
    ...                    "example")
    >>> start = hour.timestamp()
    >>> account = hourly_emissions([(start, 0.0), (start + 3600, 3.6e6)], [one],
    ...                            fallback_g_per_kwh=400.0)
    >>> account.co2e_g
    200.0
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import pairwise
from typing import Protocol

from carbonmonitor.errors import CarbonMonitorError
from carbonmonitor.facts import JOULES_PER_KWH, Flag

__all__ = [
    "BASES",
    "KINDS",
    "HourlyAccount",
    "HourlyRow",
    "IntensityBin",
    "Provider",
    "ProviderError",
    "hourly_emissions",
    "live_emissions",
    "points_from_series",
]

log = logging.getLogger(__name__)

BASES = ("lifecycle", "operational", "marginal")
"""Average life-cycle, average operational (direct), or marginal (the plants that follow load)."""

KINDS = ("measured", "estimated", "forecast")
"""As the provider labels the value: reported, estimated by the provider, or forecast."""

FALLBACK = "fallback"
_HOUR_S = 3600.0


class ProviderError(CarbonMonitorError):
    """A live intensity provider could not give bins: unreachable, slow, refused, or garbled.

    The message never contains a token or password. ``transient`` is False for failures that
    asking again cannot fix (a zone the provider does not cover); those start no back-off.

    Args:
        reason: what went wrong, e.g. ``"Electricity Maps answered HTTP 500 (server error)"``.
        fix: what the user can do, e.g. ``"try again later; the static table was used"``.
    """

    def __init__(self, reason: str, fix: str = "", *, transient: bool = True) -> None:
        self.reason = reason
        self.fix = fix
        self.transient = transient
        super().__init__(f"{reason}. Fix: {fix}" if fix else reason)


@dataclass(frozen=True)
class IntensityBin:
    """Grid intensity over ``[start_utc, end_utc)`` for one zone, as a provider reported it."""

    start_utc: datetime
    end_utc: datetime
    g_per_kwh: float
    basis: str
    kind: str
    zone: str
    source: str

    def __post_init__(self) -> None:
        if self.start_utc.tzinfo is None or self.end_utc.tzinfo is None:
            raise ValueError("IntensityBin times must be timezone-aware (UTC)")
        if self.end_utc <= self.start_utc:
            raise ValueError(f"IntensityBin ends before it starts: {self.start_utc} .. "
                             f"{self.end_utc}")
        if not math.isfinite(self.g_per_kwh) or self.g_per_kwh < 0:
            raise ValueError(f"intensity must be a finite number >= 0; got {self.g_per_kwh!r}")
        if self.basis not in BASES:
            raise ValueError(f"basis must be one of {BASES}; got {self.basis!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {self.kind!r}")


class Provider(Protocol):
    """A source of time-resolved intensity. The whole contract is :meth:`bins`."""

    name: str

    def bins(self, zone: str, start_utc: datetime, end_utc: datetime) -> list[IntensityBin]:
        """Bins overlapping ``[start_utc, end_utc)``, sorted, not overlapping each other.

        Hours the provider has no value for are simply absent. Raises :class:`ProviderError`
        (and nothing else) when the provider cannot be asked or answers wrongly.
        """
        ...


@dataclass(frozen=True)
class HourlyRow:
    """One bin of a run's hourly account: the run's energy in it and its emissions.

    ``start_utc``/``end_utc`` are the bin's own bounds (a provider hour, or for energy no bin
    covers, the uncovered part of a UTC hour). ``source`` and ``kind`` are ``"fallback"`` where
    the static factor was used. ``co2e_g`` includes the PUE given to the account.
    """

    start_utc: datetime
    end_utc: datetime
    energy_j: float
    g_per_kwh: float
    co2e_g: float
    source: str
    kind: str
    basis: str | None
    zone: str | None


@dataclass(frozen=True)
class HourlyAccount:
    """A run's emissions from time-resolved intensity, bin by bin, with totals and flags."""

    rows: tuple[HourlyRow, ...]
    energy_j: float
    co2e_g: float
    fallback_energy_j: float
    fallback_co2e_g: float
    pue: float
    bases: tuple[str, ...]
    flags: tuple[Flag, ...] = ()

    @property
    def g_per_kwh(self) -> float | None:
        """Energy-weighted mean intensity over the run (None when no energy was drawn)."""
        kwh = self.energy_j / JOULES_PER_KWH * self.pue
        return self.co2e_g / kwh if kwh > 0 else None

    @property
    def live_share(self) -> float:
        """Fraction of the energy accounted with provider bins rather than the fallback."""
        return 1.0 - self.fallback_energy_j / self.energy_j if self.energy_j > 0 else 0.0


@dataclass
class _Slot:
    lo: float  # the part of the run inside this slot, epoch seconds
    hi: float
    row_start: float  # what the row reports: the bin, or the uncovered part of an hour
    row_end: float
    bin: IntensityBin | None
    energy_j: float = 0.0


def hourly_emissions(
    points: Sequence[tuple[float, float]], bins: Sequence[IntensityBin], *,
    fallback_g_per_kwh: float, fallback_source: str = "static table",
    fallback_basis: str | None = None, pue: float = 1.0,
) -> HourlyAccount:
    """Emissions of a run from its samples and hourly intensity bins. Pure.

    Args:
        points: ``(wall-clock epoch seconds, cumulative energy in J)`` in time order (the run's
            stored series; see :func:`points_from_series`). Energy between two points is spread
            uniformly over the time between them.
        bins: intensity bins (any order, none overlapping another).
        fallback_g_per_kwh: factor for energy no bin covers (the static table's).
        fallback_source: where the fallback factor comes from, for the flag.
        fallback_basis: its basis; a flag says so when it differs from the bins' basis.
        pue: multiplies energy before the intensity (grams include it; ``energy_j`` does not).

    Raises:
        ValueError: times going backwards, cumulative energy decreasing, non-finite values,
            overlapping bins, or a negative factor.
    """
    if not math.isfinite(fallback_g_per_kwh) or fallback_g_per_kwh < 0:
        raise ValueError(f"fallback_g_per_kwh must be >= 0; got {fallback_g_per_kwh!r}")
    if not math.isfinite(pue) or pue <= 0:
        raise ValueError(f"pue must be > 0; got {pue!r}")
    pts = _checked_points(points)
    ordered = _checked_bins(bins)
    slots = _slots(pts[0][0], pts[-1][0], ordered) if len(pts) >= 2 else []
    _spread(pts, slots)
    rows = tuple(_row(s, fallback_g_per_kwh, pue) for s in slots)
    energy = sum(r.energy_j for r in rows)
    fallback_rows = [r for r in rows if r.source == FALLBACK]
    fallback_energy = sum(r.energy_j for r in fallback_rows)
    bases = tuple(sorted({s.bin.basis for s in slots if s.bin is not None and s.energy_j > 0}))
    flags = _flags(energy, fallback_rows, bases, fallback_g_per_kwh, fallback_source,
                   fallback_basis)
    return HourlyAccount(rows, energy, sum(r.co2e_g for r in rows), fallback_energy,
                         sum(r.co2e_g for r in fallback_rows), pue, bases, flags)


def live_emissions(
    provider: Provider, zone: str, points: Sequence[tuple[float, float]], *,
    fallback_g_per_kwh: float, fallback_source: str = "static table",
    fallback_basis: str | None = None, pue: float = 1.0,
) -> HourlyAccount:
    """Ask ``provider`` for the run's hours and account them; never raises for the provider.

    Any failure of the provider (a :class:`ProviderError`, or a bug in a plugin) is logged once
    and recorded as the flag ``intensity-live-failed``: the whole run then uses the fallback.
    """
    pts = _checked_points(points)
    bins: list[IntensityBin] = []
    failure: Flag | None = None
    if len(pts) >= 2 and pts[-1][1] > pts[0][1]:
        start = datetime.fromtimestamp(pts[0][0], timezone.utc)
        end = datetime.fromtimestamp(pts[-1][0], timezone.utc)
        label = str(getattr(provider, "label", "") or getattr(provider, "name", "provider"))
        try:
            bins = _checked_bins(provider.bins(zone, start, end))
        except ProviderError as err:
            failure = _failure_flag(label, err.reason, err.fix, fallback_g_per_kwh,
                                    fallback_source)
        except Exception as err:  # a plugin's bug must not reach the user's program
            failure = _failure_flag(label, f"internal error {type(err).__name__}",
                                    "please report this to carbonmonitor", fallback_g_per_kwh,
                                    fallback_source)
        if failure is not None:
            log.warning("carbonmonitor: %s. Fix: %s", failure.message, failure.fix)
            bins = []
    account = hourly_emissions(pts, bins, fallback_g_per_kwh=fallback_g_per_kwh,
                               fallback_source=fallback_source, fallback_basis=fallback_basis,
                               pue=pue)
    if failure is None:
        return account
    kept = tuple(f for f in account.flags if f.code != "intensity-hours-fallback")
    return HourlyAccount(account.rows, account.energy_j, account.co2e_g,
                         account.fallback_energy_j, account.fallback_co2e_g, account.pue,
                         account.bases, (failure, *kept))


def points_from_series(start_unix: float, t_s: Sequence[float],
                       energy_j: Mapping[str, Sequence[float]]) -> list[tuple[float, float]]:
    """``(epoch s, total cumulative J)`` from a stored series (``Store.series``): the domains'
    cumulative energies summed, a missing (NaN) value carrying the domain's last one forward."""
    last = dict.fromkeys(energy_j, 0.0)
    out = []
    for i, t in enumerate(t_s):
        for domain, values in energy_j.items():
            if i < len(values) and math.isfinite(values[i]):
                last[domain] = values[i]
        out.append((start_unix + t, sum(last.values())))
    return out


def _checked_points(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    pts = [(float(t), float(e)) for t, e in points]
    for (t0, e0), (t1, e1) in pairwise(pts):
        if not (math.isfinite(t1) and math.isfinite(e1)):
            raise ValueError(f"points must be finite; got ({t1!r}, {e1!r})")
        if t1 < t0:
            raise ValueError(f"points must be in time order; {t1} comes after {t0}")
        if e1 < e0:
            raise ValueError(f"cumulative energy must not decrease; {e0} J then {e1} J")
    if pts and not (math.isfinite(pts[0][0]) and math.isfinite(pts[0][1])):
        raise ValueError(f"points must be finite; got {pts[0]!r}")
    return pts


def _checked_bins(bins: Sequence[IntensityBin]) -> list[IntensityBin]:
    ordered = sorted(bins, key=lambda b: b.start_utc)
    for a, b in pairwise(ordered):
        if b.start_utc < a.end_utc:
            raise ValueError(f"intensity bins overlap: {a.start_utc}..{a.end_utc} and "
                             f"{b.start_utc}..{b.end_utc}")
    return ordered


def _slots(t0: float, t1: float, bins: list[IntensityBin]) -> list[_Slot]:
    """Partition ``[t0, t1]`` into provider bins and, between them, uncovered parts of hours."""
    spans = [(b.start_utc.timestamp(), b.end_utc.timestamp(), b) for b in bins]
    i = 0
    gap_start = -math.inf
    while i < len(spans) and spans[i][1] <= t0:
        gap_start = spans[i][1]
        i += 1
    if t1 == t0:  # all energy at one instant: one slot where it falls
        return [_slot_at(t0, t0, spans, i, gap_start)]
    slots = []
    t = t0
    while t < t1:
        slot = _slot_at(t, t1, spans, i, gap_start)
        slots.append(slot)
        if slot.bin is not None:
            gap_start = spans[i][1]
            i += 1
        t = slot.hi
    return slots


def _slot_at(t: float, t1: float, spans: list[tuple[float, float, IntensityBin]], i: int,
             gap_start: float) -> _Slot:
    if i < len(spans) and spans[i][0] <= t:
        lo, hi, b = spans[i]
        return _Slot(t, min(hi, t1), lo, hi, b)
    hour = math.floor(t / _HOUR_S) * _HOUR_S
    next_bin = spans[i][0] if i < len(spans) else math.inf
    row_end = min(hour + _HOUR_S, next_bin)
    return _Slot(t, min(row_end, t1), max(hour, gap_start), row_end, None)


def _spread(pts: list[tuple[float, float]], slots: list[_Slot]) -> None:
    """Add each sample interval's energy to the slots it overlaps, in proportion to time."""
    los = [s.lo for s in slots]
    for (a, e0), (b, e1) in pairwise(pts):
        energy = e1 - e0
        if energy == 0:
            continue
        j = max(bisect.bisect_right(los, a) - 1, 0)
        if b == a:
            slots[j].energy_j += energy
            continue
        while j < len(slots) and slots[j].lo < b:
            overlap = min(b, slots[j].hi) - max(a, slots[j].lo)
            if overlap > 0:
                slots[j].energy_j += energy * overlap / (b - a)
            j += 1


def _row(slot: _Slot, fallback_g_per_kwh: float, pue: float) -> HourlyRow:
    b = slot.bin
    factor = float(fallback_g_per_kwh) if b is None else b.g_per_kwh
    return HourlyRow(
        start_utc=datetime.fromtimestamp(slot.row_start, timezone.utc),
        end_utc=datetime.fromtimestamp(slot.row_end, timezone.utc),
        energy_j=slot.energy_j,
        g_per_kwh=factor,
        co2e_g=slot.energy_j / JOULES_PER_KWH * pue * factor,
        source=FALLBACK if b is None else b.source,
        kind=FALLBACK if b is None else b.kind,
        basis=None if b is None else b.basis,
        zone=None if b is None else b.zone,
    )


def _flags(energy_j: float, fallback_rows: list[HourlyRow], bases: tuple[str, ...],
           fallback_g_per_kwh: float, fallback_source: str,
           fallback_basis: str | None) -> tuple[Flag, ...]:
    flags = []
    fallback_j = sum(r.energy_j for r in fallback_rows)
    if fallback_j > 0:
        hours = len({r.start_utc.replace(minute=0, second=0, microsecond=0)
                     for r in fallback_rows if r.energy_j > 0})
        flags.append(Flag(
            "intensity-hours-fallback",
            f"{fallback_j / JOULES_PER_KWH:.4g} of {energy_j / JOULES_PER_KWH:.4g} kWh "
            f"({hours} hour{'s' if hours != 1 else ''}) had no hourly intensity from the "
            f"provider; the static factor {fallback_g_per_kwh:g} g/kWh ({fallback_source}) "
            "was used there",
            "the provider had not published those hours yet: nothing to do (a provider "
            "publishes the latest hours with a delay)"))
    if "marginal" in bases:
        flags.append(Flag(
            "intensity-marginal",
            "hourly factors are marginal emission rates (WattTime MOER): the emissions caused "
            "by added load, not the grid's average mix; do not compare them with average "
            "(lifecycle/operational) figures"))
    mixed = set(bases) | ({fallback_basis} if fallback_basis and fallback_j > 0 else set())
    if len(mixed) > 1:
        flags.append(Flag(
            "intensity-mixed-basis",
            f"this run mixes emission-factor bases ({', '.join(sorted(mixed))})",
            "use a provider basis that matches the static table (intensity_basis=lifecycle) "
            "to compare runs on one basis"))
    return tuple(flags)


def _failure_flag(label: str, reason: str, fix: str, fallback_g_per_kwh: float,
                  fallback_source: str) -> Flag:
    return Flag(
        "intensity-live-failed",
        f"live intensity from {label} unavailable ({reason}); the static factor "
        f"{fallback_g_per_kwh:g} g/kWh ({fallback_source}) was used for the whole run",
        fix or "check the network and the provider's status")
