"""UK Carbon Intensity (National Energy System Operator, carbonintensity.org.uk): half-hourly
intensity of Great Britain's grid, national or for one of its regions. No token.

National: ``GET /intensity/{from}/{to}`` answers ``{"data": [{"from": "2025-06-01T10:00Z",
"to": "2025-06-01T10:30Z", "intensity": {"forecast": 266, "actual": 263, "index":
"moderate"}}]}``; ``actual`` is null until the half hour has been estimated from metered
generation. Regional: ``GET /regional/intensity/{from}/{to}/regionid/{id}`` (ids 1-17, e.g. 13
London) answers ``{"data": {"regionid": 13, "shortname": "London", "data": [{"from": ..., "to":
..., "intensity": {"forecast": 180, "index": "low"}, "generationmix": [...]}]}}``: forecasts
only, so a past regional forecast is the final value. Times are ``YYYY-MM-DDThh:mmZ``
(https://carbon-intensity.github.io/api-definitions/). Values are gCO2/kWh of generation,
direct emissions only: basis ``operational``, CO2 only.

Bins are the API's half hours, unchanged (the accounting takes any bin length): a national
half hour is ``measured`` when ``actual`` is given, else ``forecast``; regional ones are
``forecast``. Ranges longer than 7 days are asked for in 7-day pieces (the API caps a range at
14 days).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from carbonmonitor.carbon.live import IntensityBin, ProviderError
from carbonmonitor.carbon.providers._base import (
    DEFAULT_TIMEOUT_S,
    HourlyProvider,
    iso_z,
    parse_time,
    shape_error,
)
from carbonmonitor.carbon.providers._cache import DiskCache
from carbonmonitor.carbon.providers._http import Backoff, get_json
from carbonmonitor.clock import Clock
from carbonmonitor.errors import ConfigError

BASE_URL = "https://api.carbonintensity.org.uk"
REGION_IDS = range(1, 18)
ZONES = ("GB", "GBR")  # the Electricity Maps zone of Great Britain, and the UK's ISO alpha-3


class UKCarbonIntensity(HourlyProvider):
    """Half-hourly operational intensity of Great Britain, national or of one region.

    Args:
        region_id: 1-17 for a region (13 is London), None for Great Britain as a whole.
        base_url, timeout_s, cache, backoff, clock: as for :class:`ElectricityMaps`.

    Example:
        >>> UKCarbonIntensity(region_id=13)
        UKCarbonIntensity(base_url='https://api.carbonintensity.org.uk', region_id=13)
    """

    name = "ukci"
    label = "UK Carbon Intensity"
    max_span = timedelta(days=7)

    def __init__(self, *, base_url: str = BASE_URL, region_id: int | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, cache: DiskCache | None = None,
                 backoff: Backoff | None = None, clock: Clock | None = None) -> None:
        if region_id is not None and (isinstance(region_id, bool) or region_id not in REGION_IDS):
            raise ConfigError(f"UK Carbon Intensity region id must be 1-17 (13 is London) or "
                              f"unset for Great Britain; got {region_id!r}")
        super().__init__(base_url=base_url, basis="operational", timeout_s=timeout_s,
                         cache=cache, backoff=backoff, clock=clock)
        self.region_id = region_id
        self.forecasts_final = region_id is not None

    def __repr__(self) -> str:
        return f"UKCarbonIntensity(base_url={self.base_url!r}, region_id={self.region_id!r})"

    def _cache_zone(self, zone: str) -> str:
        return "GB" if self.region_id is None else f"GB-region-{self.region_id}"

    def _check_zone(self, zone: str) -> None:
        if not isinstance(zone, str) or zone.strip().upper() not in ZONES:
            raise ProviderError(
                f"UK Carbon Intensity covers Great Britain only, not zone {zone!r}",
                "use intensity_provider='electricitymaps' for other zones", transient=False)

    def _fetch(self, zone: str, start: datetime, end: datetime) -> list[IntensityBin]:
        span = f"{iso_z(start, seconds=False)}/{iso_z(end, seconds=False)}"
        path = (f"/intensity/{span}" if self.region_id is None
                else f"/regional/intensity/{span}/regionid/{self.region_id}")
        answer = get_json(f"{self.base_url}{path}", label=self.label, headers={},
                          timeout_s=self.timeout_s, secrets=(),
                          auth_fix="the UK API needs no credentials: check intensity_url")
        return self._parse(answer)

    def _parse(self, answer: object) -> list[IntensityBin]:
        if not isinstance(answer, dict) or "data" not in answer:
            raise shape_error(self.label, "no 'data'")
        periods = answer["data"]
        zone = self._cache_zone("GB")
        source = "UK Carbon Intensity API (NESO), national"
        if self.region_id is not None:
            region = periods[0] if isinstance(periods, list) and len(periods) == 1 else periods
            if not isinstance(region, dict) or not isinstance(region.get("data"), list):
                raise shape_error(self.label, "no regional 'data' list")
            periods = region["data"]
            source = f"UK Carbon Intensity API (NESO), region {self.region_id}"
        if not isinstance(periods, list):
            raise shape_error(self.label, "'data' is not a list")
        out = []
        try:
            for period in periods:
                intensity = period["intensity"]
                actual = intensity.get("actual")
                value = actual if actual is not None else intensity["forecast"]
                if value is None:
                    continue
                out.append(IntensityBin(
                    parse_time(period["from"]), parse_time(period["to"]), float(value),
                    "operational", "measured" if actual is not None else "forecast", zone,
                    source))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise shape_error(self.label, f"bad period: {type(err).__name__}") from None
        return out
