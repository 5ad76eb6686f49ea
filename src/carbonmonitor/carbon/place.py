"""Where a run's energy is drawn, from the place options: ``country``, ``cloud_provider`` +
``cloud_region``, or ``zone`` (a grid zone). Shared by the tracker and re-accounting."""

from __future__ import annotations

from carbonmonitor.carbon.intensity import resolve_location
from carbonmonitor.carbon.regions import validate_provider
from carbonmonitor.errors import ConfigError
from carbonmonitor.facts import Location

__all__ = ["place"]


def place(*, country: str | None, cloud_provider: str | None, cloud_region: str | None,
          zone: str | None = None) -> tuple[Location, str | None]:
    """The location and the cloud provider (given, or implied by the region).

    Raises:
        ConfigError: an unknown name (with the closest valid ones), or places that contradict
            each other (a zone in another country than ``country``, a zone with a cloud region).
    """
    provider = validate_provider(cloud_provider) if cloud_provider else None
    if zone:
        if cloud_region:
            raise ConfigError(f"zone {zone!r} and cloud_region {cloud_region!r} both name where "
                              "the energy is drawn. Fix: give one of them (a cloud region "
                              "already implies its grid zone)")
        return _zone_location(zone, country), provider
    location = resolve_location(country=country, cloud_provider=provider,
                                cloud_region=cloud_region)
    return location, location.cloud_provider or provider


def _zone_location(zone: str, country: str | None) -> Location:
    from carbonmonitor.carbon.countries import resolve_country
    from carbonmonitor.carbon.zones import resolve_zone

    found = resolve_zone(zone)
    home = resolve_country(found.country_iso3)
    if country and resolve_country(country) != home:
        raise ConfigError(f"zone {zone!r} is in {home.name} ({home.alpha2}), not in "
                          f"{country!r}. Fix: drop country= or correct zone=")
    return Location("given", home.alpha3, home.name, zone=found.zone_id)
