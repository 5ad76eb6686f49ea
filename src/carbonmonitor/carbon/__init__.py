"""Carbon accounting: location -> grid intensity, PUE, energy -> CO2e (DESIGN "Carbon accounting").

Example:
    >>> from carbonmonitor.carbon import intensity_for, resolve_location
    >>> where = resolve_location(country="France", cloud_provider=None, cloud_region=None)
    >>> intensity_for(where).zone
    'FRA'
"""

from __future__ import annotations

from carbonmonitor.carbon.accounting import account
from carbonmonitor.carbon.countries import Country, resolve_country
from carbonmonitor.carbon.intensity import default_data_year, intensity_for, resolve_location
from carbonmonitor.carbon.place import place
from carbonmonitor.carbon.pue import pue_flags, resolve_pue
from carbonmonitor.carbon.regions import (
    PROVIDERS,
    CloudRegion,
    resolve_cloud_region,
    validate_provider,
)

__all__ = [
    "PROVIDERS",
    "CloudRegion",
    "Country",
    "account",
    "default_data_year",
    "intensity_for",
    "place",
    "pue_flags",
    "resolve_cloud_region",
    "resolve_country",
    "resolve_location",
    "resolve_pue",
    "validate_provider",
]
