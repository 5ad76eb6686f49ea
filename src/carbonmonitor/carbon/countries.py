"""Countries: an ISO 3166 code or English name in, one :class:`Country` out.

Codes and names come from ``grid/iso3166_countries.csv`` (datasets/country-codes, PDDL); the
display name is the OWID entity name where OWID has the country, so it matches the factor's label.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from carbonmonitor.data import read_columns, read_matching, read_table
from carbonmonitor.errors import ConfigError, closest

__all__ = ["Country", "resolve_country"]

ISO_TABLE = "grid/iso3166_countries.csv"
ALIAS_TABLE = "grid/country_aliases.csv"
OWID_TABLE = "grid/owid_electricity_by_country_year.csv"
# The OWID columns carbonmonitor reads (names here, intensity in carbon.intensity): one cached
# parse of the 1.1 MB table serves both.
OWID_COLUMNS = ("iso_code", "country", "entity_type", "year", "carbon_intensity_elec")

# Kosovo has no ISO 3166-1 code: OWID uses OWID_KOS, others the user-assigned XK / XKX
# (data README section 1.3). All of them resolve to OWID's entity.
_KOSOVO_ALIASES = ("xk", "xkx", "owid_kos", "kosovo")

_FIX = ("use an ISO 3166 code such as DE or DEU, or an English name such as Germany "
        "(all names: carbonmonitor/data/grid/iso3166_countries.csv)")


@dataclass(frozen=True)
class Country:
    """A country as carbonmonitor names it.

    ``alpha3`` is the key into the OWID table: ISO alpha-3, or ``OWID_KOS`` for Kosovo.
    ``numeric`` is the zero-padded ISO numeric code (``"004"``), empty for Kosovo.
    """

    alpha2: str
    alpha3: str
    numeric: str
    name: str


def resolve_country(text: str) -> Country:
    """The country that an ISO 3166-1 code or an English name denotes (case-insensitive).

    Accepts alpha-2 (``"DE"``, ``"NA"`` is Namibia), alpha-3 (``"DEU"``), numeric (``"276"``,
    unpadded ``"4"`` too), the short or official English name, or OWID's name.

    Example:
        >>> resolve_country("deu").name
        'Germany'

    Raises:
        ConfigError: nothing matches; the message names the closest country and the fix.
    """
    key = text.strip().lower()
    if key.isdigit():
        key = key.zfill(3)
    found = _codes().get(key)
    if found is not None:  # a code: no need to read every OWID name
        return _with_owid_name(found)
    found = _index().get(key)
    if found is None:
        raise ConfigError(f"unknown country {text!r}.{_suggestion(text)} Fix: {_FIX}.")
    return found


@lru_cache(maxsize=1)
def _codes() -> dict[str, Country]:
    """Lower-cased alpha-2, alpha-3 and numeric code -> country (ISO name), Kosovo's codes."""
    codes: dict[str, Country] = {}
    for row in read_table(ISO_TABLE):
        numeric = row["numeric"].zfill(3) if row["numeric"] else ""
        country = Country(row["alpha2"], row["alpha3"], numeric, row["name"])
        for code in (row["alpha2"], row["alpha3"], numeric):
            if code:
                codes[code.lower()] = country
    kosovo = Country("XK", "OWID_KOS", "", "Kosovo")
    codes.update(dict.fromkeys(_KOSOVO_ALIASES, kosovo))
    return codes


@lru_cache(maxsize=256)
def _with_owid_name(country: Country) -> Country:
    """The country named as OWID names it (the label of its emission factor), read from the
    OWID rows of that country only."""
    rows = read_matching(OWID_TABLE, OWID_COLUMNS, "iso_code", (country.alpha3,))
    for row in rows:
        if row["entity_type"] == "country":
            return replace(country, name=row["country"])
    return country


def _suggestion(text: str) -> str:
    index = _index()
    names = {c.name for c in index.values()} | {k for k in index if not k.isdigit()}
    match = closest(text.strip(), names)
    if match is None:
        return ""
    country = index[match.lower()]
    return f" Did you mean {country.name!r} ({country.alpha2 or country.alpha3})?"


@lru_cache(maxsize=1)
def _index() -> dict[str, Country]:
    """Lower-cased code or name -> country; codes are added last so a code wins over a name."""
    owid_names = _owid_names()
    index: dict[str, Country] = {}
    codes: dict[str, Country] = {}
    for row in read_table(ISO_TABLE):
        numeric = row["numeric"].zfill(3) if row["numeric"] else ""
        name = owid_names.get(row["alpha3"], row["name"])
        country = Country(row["alpha2"], row["alpha3"], numeric, name)
        for alias in (row["name"], row["official_name"], name):
            index[alias.lower()] = country
        for code in (row["alpha2"], row["alpha3"], numeric):
            if code:
                codes[code.lower()] = country
    by_alpha3 = {c.alpha3: c for c in codes.values()}
    for row in read_table(ALIAS_TABLE):  # "Czech Republic", "Holland", ... (curated)
        index[row["alias"].lower()] = by_alpha3[row["alpha3"]]
    kosovo = Country("XK", "OWID_KOS", "", owid_names.get("OWID_KOS", "Kosovo"))
    codes.update(dict.fromkeys(_KOSOVO_ALIASES, kosovo))
    index.update(codes)
    return index


def _owid_names() -> dict[str, str]:
    """OWID's entity name per ISO alpha-3, for countries only."""
    return {
        row["iso_code"]: row["country"]
        for row in read_columns(OWID_TABLE, OWID_COLUMNS)
        if row["entity_type"] == "country" and row["iso_code"]
    }
