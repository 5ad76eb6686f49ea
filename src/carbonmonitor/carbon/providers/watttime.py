"""WattTime: marginal operating emission rate (MOER) of a grid region, by the hour.

API v3 (https://docs.watttime.org): ``GET /login`` with HTTP basic auth answers
``{"token": "..."}``, a bearer token valid for 30 minutes; ``GET /v3/historical`` with
``region``, ``start``, ``end`` (ISO 8601 with offset) and ``signal_type=co2_moer`` answers
``{"data": [{"point_time": "2025-06-01T10:00:00+00:00", "value": 870.2}, ...], "meta":
{"units": "lbs_co2_per_mwh", "data_point_period_seconds": 300, "region": "CAISO_NORTH", ...}}``.
One request covers at most 32 days, so longer runs are asked for in 31-day pieces.

Units: 1 lb = 0.45359237 kg exactly (international avoirdupois pound, NIST SP 811 appendix B),
so x lb/MWh = x * 453.59237 g / 1000 kWh = x * 0.45359237 g/kWh.

Hours: each point covers ``[point_time, point_time + data_point_period_seconds)``; an hour's
intensity is the mean of the points that start in it (equal periods, so the time-weighted
mean). An hour with fewer points than it should have (12 at 5 minutes) is labelled
``estimated``: the missing minutes take the mean of the others. MOER is marginal and CO2 only.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from urllib.parse import urlencode

from carbonmonitor.carbon.live import IntensityBin, ProviderError
from carbonmonitor.carbon.providers._base import (
    DEFAULT_TIMEOUT_S,
    HOUR,
    HourlyProvider,
    floor_hour,
    parse_time,
    shape_error,
)
from carbonmonitor.carbon.providers._cache import DiskCache
from carbonmonitor.carbon.providers._http import Backoff, get_json
from carbonmonitor.clock import Clock
from carbonmonitor.errors import ConfigError

BASE_URL = "https://api.watttime.org"
G_PER_KWH_PER_LB_PER_MWH = 0.45359237
TOKEN_LIFETIME_S = 25 * 60.0  # WattTime tokens last 30 minutes; renew a little before
_UNITS = "lbs_co2_per_mwh"
_AUTH_FIX = ("check CARBONMONITOR_WATTTIME_USERNAME and CARBONMONITOR_WATTTIME_PASSWORD, and "
             "that your WattTime plan includes historical data for this region")


class WattTime(HourlyProvider):
    """Hourly marginal CO2 rate of a WattTime region (basis ``"marginal"``).

    Args:
        username, password: the WattTime account. Never logged, cached, shown or put in errors.
        region: the WattTime region (``CAISO_NORTH``); when None, the ``zone`` passed to
            :meth:`bins` is used as the region. WattTime regions are not grid-zone ids.
        base_url, timeout_s, cache, backoff, clock: as for :class:`ElectricityMaps`.

    Example:
        >>> WattTime("me", "secret", region="CAISO_NORTH")  # doctest: +NORMALIZE_WHITESPACE
        WattTime(base_url='https://api.watttime.org', region='CAISO_NORTH', username='me',
                 password=***)
    """

    name = "watttime"
    label = "WattTime"
    max_span = timedelta(days=31)

    def __init__(self, username: str, password: str, *, base_url: str = BASE_URL,
                 region: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 cache: DiskCache | None = None, backoff: Backoff | None = None,
                 clock: Clock | None = None) -> None:
        if not (isinstance(username, str) and username and isinstance(password, str)
                and password):
            raise ConfigError("WattTime needs a username and a password. Fix: set "
                              "CARBONMONITOR_WATTTIME_USERNAME and "
                              "CARBONMONITOR_WATTTIME_PASSWORD (or watttime_username=/"
                              "watttime_password=); register at https://watttime.org")
        super().__init__(base_url=base_url, basis="marginal", timeout_s=timeout_s, cache=cache,
                         backoff=backoff, clock=clock)
        self.username = username
        self.region = region
        self._password = password
        self._basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._token: str | None = None
        self._token_at = 0.0

    def __repr__(self) -> str:
        return (f"WattTime(base_url={self.base_url!r}, region={self.region!r}, "
                f"username={self.username!r}, password=***)")

    def _check_zone(self, zone: str) -> None:
        if not self.region:
            super()._check_zone(zone)

    def _cache_zone(self, zone: str) -> str:
        return self.region or zone

    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._password, self._basic, self._token) if s)

    def _login(self) -> str:
        now = self.clock.monotonic()
        if self._token and now - self._token_at < TOKEN_LIFETIME_S:
            return self._token
        answer = get_json(f"{self.base_url}/login", label=self.label,
                          headers={"Authorization": f"Basic {self._basic}"},
                          timeout_s=self.timeout_s, secrets=self._secrets(), auth_fix=_AUTH_FIX)
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise shape_error(self.label, "login answer without 'token'")
        self._token, self._token_at = token, now
        return token

    def _fetch(self, zone: str, start: datetime, end: datetime) -> list[IntensityBin]:
        region = self.region or zone
        query = urlencode({"region": region, "start": start.isoformat(), "end": end.isoformat(),
                           "signal_type": "co2_moer"})
        url = f"{self.base_url}/v3/historical?{query}"
        reused = (self._token is not None
                  and self.clock.monotonic() - self._token_at < TOKEN_LIFETIME_S)
        try:
            answer = get_json(url, label=self.label,
                              headers={"Authorization": f"Bearer {self._login()}"},
                              timeout_s=self.timeout_s, secrets=self._secrets(),
                              auth_fix=_AUTH_FIX)
        except ProviderError as err:
            if "(HTTP 401)" not in err.reason or not reused:
                raise
            self._token = None  # a kept token expired early: log in again, once
            answer = get_json(url, label=self.label,
                              headers={"Authorization": f"Bearer {self._login()}"},
                              timeout_s=self.timeout_s, secrets=self._secrets(),
                              auth_fix=_AUTH_FIX)
        return self._parse(answer, region)

    def _parse(self, answer: object, region: str) -> list[IntensityBin]:
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise shape_error(self.label, "no 'data' list")
        meta = answer.get("meta")
        if not isinstance(meta, dict):
            meta = {}
        units = meta.get("units", _UNITS)
        if units != _UNITS:
            raise shape_error(self.label, f"units {units!r}, expected {_UNITS!r}")
        period_s = meta.get("data_point_period_seconds", 300)
        if not isinstance(period_s, (int, float)) or not 0 < period_s <= 3600:
            raise shape_error(self.label, f"data_point_period_seconds {period_s!r}")
        hours: dict[datetime, list[float]] = {}
        try:
            for point in answer["data"]:
                if point["value"] is None:
                    continue
                moment = parse_time(point["point_time"])
                hours.setdefault(floor_hour(moment), []).append(float(point["value"]))
        except (KeyError, TypeError, ValueError) as err:
            raise shape_error(self.label, f"bad point: {type(err).__name__}") from None
        expected = round(3600 / period_s)
        source = "WattTime API v3 historical co2_moer (marginal, CO2 only)"
        out = []
        for hour, values in sorted(hours.items()):
            mean = sum(values) / len(values) * G_PER_KWH_PER_LB_PER_MWH
            kind = "measured" if len(values) >= expected else "estimated"
            try:
                out.append(IntensityBin(hour, hour + HOUR, mean, "marginal", kind, region,
                                        source))
            except ValueError as err:
                raise shape_error(self.label, str(err)) from None
        return out
