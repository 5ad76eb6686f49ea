"""What every hourly provider shares: the hours a range needs, the cache in front of the
network, the back-off, and parsing of the providers' time stamps."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from itertools import pairwise

from carbonmonitor.carbon.live import IntensityBin, ProviderError
from carbonmonitor.carbon.providers._cache import DiskCache
from carbonmonitor.carbon.providers._http import DEFAULT_BACKOFF, Backoff
from carbonmonitor.clock import Clock, SystemClock

log = logging.getLogger("carbonmonitor.carbon.providers")

HOUR = timedelta(hours=1)
DEFAULT_TIMEOUT_S = 2.0

# An hour fetched this long after it ended is taken as final and cached for good. Electricity
# Maps and the UK API publish an hour's value within about an hour; later revisions of
# estimates are not picked up (re-account with a fresh cache to get them).
SETTLE_S = 2 * 3600.0


class HourlyProvider:
    """Base of the built-in providers. Subclasses set :attr:`name`, :attr:`label`,
    :attr:`max_span` and implement :meth:`_fetch` (and :meth:`_cache_zone` where needed)."""

    name = ""
    label = ""
    max_span = timedelta(days=7)  # the longest range one request may ask for
    forecasts_final = False  # True where a past forecast is the only value there will be

    def __init__(self, *, base_url: str, basis: str, timeout_s: float,
                 cache: DiskCache | None, backoff: Backoff | None,
                 clock: Clock | None) -> None:
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a positive number of seconds; got {timeout_s!r}")
        self.base_url = base_url.rstrip("/")
        self.basis = basis
        self.timeout_s = timeout_s
        self.cache = cache
        self.backoff = DEFAULT_BACKOFF if backoff is None else backoff
        self.clock: Clock = SystemClock() if clock is None else clock


    @property
    def _cache_name(self) -> str:
        """The provider's name in the cache, with the API root when it is not the provider's
        own (a proxy or a test server): their answers never stand in for the real API's."""
        import hashlib
        import sys

        own = getattr(sys.modules[type(self).__module__], "BASE_URL", self.base_url)
        if self.base_url == own.rstrip("/"):
            return self.name
        return f"{self.name}@{hashlib.sha256(self.base_url.encode()).hexdigest()[:10]}"
    def bins(self, zone: str, start_utc: datetime, end_utc: datetime) -> list[IntensityBin]:
        """Bins overlapping ``[start_utc, end_utc)``: cached hours from disk, the rest asked
        for in as few requests as the provider allows. Raises :class:`ProviderError`."""
        if start_utc.tzinfo is None or end_utc.tzinfo is None:
            raise ValueError("start_utc and end_utc must be timezone-aware")
        if end_utc < start_utc:
            raise ValueError(f"end_utc {end_utc} is before start_utc {start_utc}")
        self._check_zone(zone)
        key_zone = self._cache_zone(zone)
        hours = list(hours_between(start_utc, end_utc))
        found: dict[datetime, list[IntensityBin]] = {}
        missing = []
        for hour in hours:
            cached = (None if self.cache is None else
                      self.cache.get(self._cache_name, key_zone, self.basis, hour,
                                     now=self.clock.wall()))
            if cached is None:
                missing.append(hour)
            else:
                found[hour] = cached
        if missing:
            found.update(self._ask(zone, key_zone, missing))
        return [b for hour in hours for b in found[hour] if _overlaps(b, start_utc, end_utc)]

    def _ask(self, zone: str, key_zone: str,
             missing: list[datetime]) -> dict[datetime, list[IntensityBin]]:
        key = (self.name, self.base_url)
        wait_s, last = self.backoff.remaining_s(key, self.clock.monotonic())
        if wait_s > 0:
            raise ProviderError(
                f"{self.label} is not asked for {wait_s:.0f} s more after an earlier failure "
                f"({last})", "nothing to do: it is asked again after the pause, in this process")
        fetched: list[IntensityBin] = []
        try:
            for lo, hi in spans(missing[0], missing[-1] + HOUR, self.max_span):
                fetched += self._fetch(zone, lo, hi)
            # a period at the boundary of two requests can come back in both: the same
            # period with the same value counts once; two values for one period still fail
            fetched = sorted({(b.start_utc, b.end_utc, b.g_per_kwh): b
                              for b in fetched}.values(), key=lambda b: b.start_utc)
            for a, b in pairwise(fetched):
                if b.start_utc < a.end_utc:
                    raise shape_error(self.label,
                                      f"overlapping periods at {b.start_utc:%Y-%m-%d %H:%M}")
        except ProviderError as err:
            if err.transient:
                pause = self.backoff.failed(key, self.clock.monotonic(), err.reason)
                log.debug("%s failed; not asked again for %.0f s", self.label, pause)
            raise
        self.backoff.succeeded(key)
        now = self.clock.wall()
        wanted = set(missing)
        by_hour: dict[datetime, list[IntensityBin]] = {h: [] for h in missing}
        for b in fetched:
            hour = floor_hour(b.start_utc)
            if hour in wanted:
                by_hour[hour].append(b)
        for hour, got in by_hour.items():
            if self.cache is not None:
                self.cache.put(self._cache_name, key_zone, self.basis, hour, got, fetched_at=now,
                               final=self._final(hour, got, now))
        return by_hour

    def _final(self, hour: datetime, got: list[IntensityBin], now: float) -> bool:
        settled = now >= (hour + HOUR).timestamp() + SETTLE_S
        forecasts_ok = self.forecasts_final or all(b.kind != "forecast" for b in got)
        return bool(got) and settled and forecasts_ok

    def _check_zone(self, zone: str) -> None:
        """Raise a non-transient :class:`ProviderError` for a zone the provider never covers."""
        if not isinstance(zone, str) or not zone.strip():
            raise ProviderError(f"{self.label} needs a zone or region; none is known for this run",
                                "give zone= (or country=/cloud_region=)", transient=False)

    def _cache_zone(self, zone: str) -> str:
        return zone

    def _fetch(self, zone: str, start: datetime, end: datetime) -> list[IntensityBin]:
        """One request to the provider's API: the bins of ``[start, end)``. Each provider
        (Electricity Maps, WattTime, UK Carbon Intensity) defines its own."""
        raise NotImplementedError(f"{type(self).__name__} must define _fetch")


def _overlaps(b: IntensityBin, start: datetime, end: datetime) -> bool:
    if end > start:
        return b.end_utc > start and b.start_utc < end
    return b.start_utc <= start < b.end_utc  # an instant: the bin that holds it


def floor_hour(moment: datetime) -> datetime:
    utc = moment.astimezone(timezone.utc)
    return utc.replace(minute=0, second=0, microsecond=0)


def hours_between(start: datetime, end: datetime) -> Iterator[datetime]:
    """The UTC hours that ``[start, end)`` touches (at least the hour of ``start``)."""
    hour = floor_hour(start)
    yield hour
    hour += HOUR
    while hour < end:
        yield hour
        hour += HOUR


def spans(start: datetime, end: datetime,
          longest: timedelta) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` cut into pieces no longer than ``longest``."""
    while start < end:
        yield start, min(start + longest, end)
        start += longest


def parse_time(text: object) -> datetime:
    """A provider time stamp (``2025-06-01T10:00Z``, ``...:00.000Z``, ``+00:00``) as aware UTC.

    ``Z`` is rewritten because ``datetime.fromisoformat`` reads it only from Python 3.11.
    A stamp without an offset is taken as UTC (all three APIs answer in UTC)."""
    if not isinstance(text, str):
        raise TypeError(f"time stamp must be a string; got {text!r}")
    stamp = text.strip()
    if stamp.endswith(("Z", "z")):
        stamp = stamp[:-1] + "+00:00"
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def iso_z(moment: datetime, *, seconds: bool = True) -> str:
    """``2025-06-01T10:00:00Z`` (or ``2025-06-01T10:00Z`` without seconds)."""
    return moment.astimezone(timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ" if seconds else "%Y-%m-%dT%H:%MZ")


def shape_error(label: str, what: str) -> ProviderError:
    return ProviderError(f"{label} answered JSON of an unexpected shape ({what})",
                         "check that intensity_url points at the provider's API; if it does, "
                         "the API may have changed: please report it to carbonmonitor")
