"""Cloud regions of AWS, Azure and GCP: region id (or display name) in, :class:`CloudRegion` out.

The index is ``cloud/cloud_regions.csv`` (data README section 3.1): each region's country and,
where known, its Electricity Maps grid zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from carbonmonitor.data import read_table
from carbonmonitor.errors import ConfigError, closest, did_you_mean

__all__ = ["PROVIDERS", "CloudRegion", "resolve_cloud_region", "validate_provider"]

REGIONS_TABLE = "cloud/cloud_regions.csv"
PROVIDERS = ("aws", "azure", "gcp")

_NEW_REGION_FIX = (
    "use the provider's region id (e.g. 'us-east-1', 'westeurope', 'europe-west1'); "
    "a region newer than carbonmonitor's list can be given as country= instead"
)

_Index = dict[str, dict[str, "CloudRegion"]]


@dataclass(frozen=True)
class CloudRegion:
    """A provider's region and where it is. ``em_zone`` is None where no grid zone is known."""

    provider: str
    region: str
    display_name: str
    location: str
    country_iso2: str
    country_iso3: str
    em_zone: str | None


def validate_provider(provider: str) -> str:
    """The provider name lower-cased, if it is one of :data:`PROVIDERS`.

    Example:
        >>> validate_provider("AWS")
        'aws'

    Raises:
        ConfigError: not a known provider; the message names the closest one.
    """
    key = provider.strip().lower()
    if key in PROVIDERS:
        return key
    raise ConfigError(
        f"unknown cloud_provider {provider!r}.{did_you_mean(key, PROVIDERS)} "
        f"Fix: use one of {', '.join(PROVIDERS)}."
    )


def resolve_cloud_region(
    provider: str | None, region: str, *, table: Iterable[Mapping[str, str]] | None = None
) -> CloudRegion:
    """The cloud region named by its id or display name (case-insensitive).

    Args:
        provider: ``"aws"``, ``"azure"`` or ``"gcp"``; None infers it when the region id exists
            for exactly one provider.
        region: region id (``"us-east-1"``, ``"westeurope"``) or display name (``"West Europe"``).
        table: region rows to use instead of the shipped table (for tests).

    Example:
        >>> resolve_cloud_region(None, "westeurope").country_iso3
        'NLD'

    Raises:
        ConfigError: unknown provider or region, or a region id that several providers use.
    """
    wanted = validate_provider(provider) if provider is not None else None
    index = _shipped_index() if table is None else _build_index(table)
    matches = index.get(region.strip().lower(), {})
    if wanted is not None:
        matches = {p: r for p, r in matches.items() if p == wanted}
    if len(matches) == 1:
        return next(iter(matches.values()))
    if matches:
        raise ConfigError(
            f"cloud_region {region!r} exists for several providers ({', '.join(sorted(matches))}). "
            "Fix: set cloud_provider= to one of them."
        )
    raise ConfigError(_unknown_message(wanted, region, index))


def _unknown_message(provider: str | None, region: str, index: _Index) -> str:
    candidates = {
        r.region: r for by_provider in index.values() for r in by_provider.values()
        if provider is None or r.provider == provider
    }
    match = closest(region.strip(), candidates)
    hint = f" Did you mean {match!r} ({candidates[match].provider})?" if match else ""
    where = f"{provider} " if provider else ""
    return f"unknown {where}cloud_region {region!r}.{hint} Fix: {_NEW_REGION_FIX}."


@lru_cache(maxsize=1)
def _shipped_index() -> _Index:
    return _build_index(read_table(REGIONS_TABLE))


def _build_index(rows: Iterable[Mapping[str, str]]) -> _Index:
    """Lower-cased id or display name -> provider -> region; ids win over display names."""
    regions = [_region(row) for row in rows]
    index: _Index = {}
    keys = [(r.display_name, r) for r in regions] + [(r.region, r) for r in regions]
    for key, r in keys:
        index.setdefault(key.lower(), {})[r.provider] = r
    return index


def _region(row: Mapping[str, str]) -> CloudRegion:
    return CloudRegion(
        provider=row["provider"],
        region=row["region"],
        display_name=row["display_name"],
        location=row["location"],
        country_iso2=row["country_iso2"],
        country_iso3=row["country_iso3"],
        em_zone=row["em_zone"] or None,
    )
