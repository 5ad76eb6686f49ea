"""On-disk cache of provider answers: one small JSON file per provider, zone, basis and hour.

Files hold the bins only: no token, no URL, no header. An hour the provider had settled when it
was fetched is final and reused forever; anything else (the current hour, a forecast, an hour
with no value yet) expires ``ttl_s`` after it was fetched. A file that cannot be read or does
not have the expected shape is ignored (and rewritten at the next fetch); a cache that cannot
be written is skipped. Nothing here raises.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from carbonmonitor.carbon.live import IntensityBin

log = logging.getLogger("carbonmonitor.carbon.providers")

VERSION = 1
_FIELDS = ("start_utc", "end_utc", "g_per_kwh", "basis", "kind", "zone", "source")


class DiskCache:
    """Provider answers under ``directory`` (the tracker passes the user cache directory).

    Example:
        >>> import tempfile
        >>> cache = DiskCache(tempfile.mkdtemp())
        >>> hour = datetime(2025, 6, 1, 10, tzinfo=timezone.utc)
        >>> cache.get("ukci", "GB", "operational", hour, now=0.0) is None
        True
    """

    def __init__(self, directory: Path | str, *, ttl_s: float = 900.0) -> None:
        self.directory = Path(directory)
        self.ttl_s = ttl_s

    def __repr__(self) -> str:
        return f"DiskCache({str(self.directory)!r}, ttl_s={self.ttl_s:g})"

    def path(self, provider: str, zone: str, basis: str, hour: datetime) -> Path:
        """The file for one hour: ``provider/zone/basis/YYYYMMDDTHHZ.json``."""
        stamp = hour.astimezone(timezone.utc).strftime("%Y%m%dT%HZ")
        return self.directory / _safe(provider) / _safe(zone) / _safe(basis) / f"{stamp}.json"

    def get(self, provider: str, zone: str, basis: str, hour: datetime, *,
            now: float) -> list[IntensityBin] | None:
        """The cached bins of ``hour`` (possibly none), or None when absent, stale or unreadable."""
        path = self.path(provider, zone, basis, hour)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            bins = _entry_bins(entry, provider, zone, basis, hour)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError, KeyError) as err:
            log.debug("ignoring unreadable cache file %s (%s)", path, type(err).__name__)
            return None
        if entry["final"] is True or now - float(entry["fetched_at"]) <= self.ttl_s:
            return bins
        return None

    def put(self, provider: str, zone: str, basis: str, hour: datetime,
            bins: list[IntensityBin], *, fetched_at: float, final: bool) -> None:
        """Store the bins of ``hour``; a failure to write is logged at debug level only."""
        path = self.path(provider, zone, basis, hour)
        entry = {
            "version": VERSION, "provider": provider, "zone": zone, "basis": basis,
            "hour": _iso(hour), "fetched_at": fetched_at, "final": final,
            "bins": [{**{f: getattr(b, f) for f in _FIELDS},
                      "start_utc": _iso(b.start_utc), "end_utc": _iso(b.end_utc)} for b in bins],
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(entry, f)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as err:
            log.debug("could not write cache file %s (%s)", path, type(err).__name__)


def _entry_bins(entry: Any, provider: str, zone: str, basis: str,
                hour: datetime) -> list[IntensityBin]:
    """The bins of a cache entry; ValueError/TypeError/KeyError when it is not one of ours."""
    if not isinstance(entry, dict) or entry.get("version") != VERSION:
        raise ValueError("not a cache entry of this version")
    if (entry["provider"], entry["zone"], entry["basis"], entry["hour"]) != (
            provider, zone, basis, _iso(hour)):
        raise ValueError("entry for another key")
    if not isinstance(entry["final"], bool) or not isinstance(entry["fetched_at"], (int, float)):
        raise TypeError("bad entry header")
    bins = []
    for item in entry["bins"]:
        if set(item) != set(_FIELDS) or not isinstance(item["g_per_kwh"], (int, float)):
            raise ValueError("bad bin")
        if not all(isinstance(item[f], str) for f in _FIELDS if f != "g_per_kwh"):
            raise TypeError("bad bin field")
        bins.append(IntensityBin(
            _parse(item["start_utc"]), _parse(item["end_utc"]), float(item["g_per_kwh"]),
            item["basis"], item["kind"], item["zone"], item["source"]))
    return bins


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("naive time in cache")
    return moment


def _safe(part: str) -> str:
    """A path component from any string: unchanged when plain, else cleaned plus a hash."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", part):
        return part
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", part)[:40]
    return f"{cleaned}-{hashlib.sha256(part.encode()).hexdigest()[:10]}"
