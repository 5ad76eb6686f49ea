"""Electricity Maps: hourly carbon intensity of a grid zone, life-cycle or direct.

API v3, ``GET /v3/carbon-intensity/past-range`` with ``zone``, ``start``, ``end`` (ISO 8601,
UTC), ``emissionFactorType`` (``lifecycle``, the API's default, or ``direct``) and
``temporalGranularity=hourly``; the token goes in the ``auth-token`` header
(https://portal.electricitymaps.com/developer-hub/api/reference). The answer is
``{"zone": "DE", "data": [{"datetime": "2025-06-01T10:00:00.000Z", "carbonIntensity": 322,
"emissionFactorType": "lifecycle", "isEstimated": false, "estimationMethod": null, ...}]}`` in
gCO2eq/kWh, one point per hour, ``datetime`` being the start of the hour. One request covers
at most 10 days of hourly data, so longer runs are asked for in 10-day pieces.
``/past-range`` needs a commercial or trial plan; the free tier has only the last 24 h.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

from carbonmonitor.carbon.live import IntensityBin, ProviderError
from carbonmonitor.carbon.providers._base import (
    DEFAULT_TIMEOUT_S,
    HOUR,
    HourlyProvider,
    iso_z,
    parse_time,
    shape_error,
)
from carbonmonitor.carbon.providers._cache import DiskCache
from carbonmonitor.carbon.providers._http import Backoff, get_json
from carbonmonitor.clock import Clock
from carbonmonitor.errors import ConfigError, did_you_mean

BASE_URL = "https://api.electricitymap.org"
_FACTOR_TYPES = {"lifecycle": "lifecycle", "direct": "direct", "operational": "direct"}


class ElectricityMaps(HourlyProvider):
    """Hourly life-cycle (default) or direct intensity of an Electricity Maps zone.

    Args:
        token: the API token (``CARBONMONITOR_ELECTRICITYMAPS_TOKEN``). Never logged, cached,
            shown in a repr or put in an error message.
        base_url: the API root; tests pass a loopback server.
        basis: ``"lifecycle"`` or ``"direct"`` (``"operational"`` is accepted for ``direct``).
        timeout_s: per request; a call returns within about twice this per request.
        cache: where answers are kept between runs (None: no cache).
        backoff: the pause after a failure (default: one per process).
        clock: time for the cache and the back-off.

    Example:
        >>> ElectricityMaps("secret-token", basis="direct")
        ElectricityMaps(base_url='https://api.electricitymap.org', basis='operational', token=***)
    """

    name = "electricitymaps"
    label = "Electricity Maps"
    max_span = timedelta(days=10)

    def __init__(self, token: str, *, base_url: str = BASE_URL, basis: str = "lifecycle",
                 timeout_s: float = DEFAULT_TIMEOUT_S, cache: DiskCache | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        if not isinstance(token, str) or not token.strip():
            raise ConfigError("Electricity Maps needs an API token. Fix: set "
                              "CARBONMONITOR_ELECTRICITYMAPS_TOKEN (or electricitymaps_token=); "
                              "get one at https://portal.electricitymaps.com")
        if basis not in _FACTOR_TYPES:
            raise ConfigError(f"intensity_basis {basis!r} is not one Electricity Maps offers; "
                              f"use 'lifecycle' or 'direct'.{did_you_mean(basis, _FACTOR_TYPES)}")
        self._factor_type = _FACTOR_TYPES[basis]
        super().__init__(base_url=base_url,
                         basis="lifecycle" if self._factor_type == "lifecycle" else "operational",
                         timeout_s=timeout_s, cache=cache, backoff=backoff, clock=clock)
        self._token = token.strip()

    def __repr__(self) -> str:
        return f"ElectricityMaps(base_url={self.base_url!r}, basis={self.basis!r}, token=***)"

    def _fetch(self, zone: str, start: datetime, end: datetime) -> list[IntensityBin]:
        query = urlencode({"zone": zone, "start": iso_z(start), "end": iso_z(end),
                           "emissionFactorType": self._factor_type,
                           "temporalGranularity": "hourly"})
        answer = get_json(
            f"{self.base_url}/v3/carbon-intensity/past-range?{query}", label=self.label,
            headers={"auth-token": self._token}, timeout_s=self.timeout_s,
            secrets=(self._token,),
            auth_fix="check CARBONMONITOR_ELECTRICITYMAPS_TOKEN (electricitymaps_token=) and that "
                     "your plan includes past-range data for this zone")
        return self._parse(answer, zone)

    def _parse(self, answer: object, zone: str) -> list[IntensityBin]:
        if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
            raise shape_error(self.label, "no 'data' list")
        source = f"Electricity Maps API v3 past-range ({self._factor_type})"
        out = []
        for point in answer["data"]:
            try:
                value = point["carbonIntensity"]
                if value is None:  # the API has no value for that hour
                    continue
                answered_type = point.get("emissionFactorType", self._factor_type)
                if answered_type != self._factor_type:
                    raise ProviderError(
                        f"{self.label} answered {answered_type!r} factors when "
                        f"{self._factor_type!r} were asked for",
                        "report this to carbonmonitor; the static table was used")
                start = parse_time(point["datetime"])
                out.append(IntensityBin(
                    start, start + HOUR, float(value), self.basis,
                    "estimated" if point.get("isEstimated") else "measured",
                    str(point.get("zone") or answer.get("zone") or zone), source))
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise shape_error(self.label, f"bad point: {type(err).__name__}") from None
        return out
