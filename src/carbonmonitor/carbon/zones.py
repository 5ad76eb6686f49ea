"""Grid zones: an Electricity Maps zone id, or an ISO 3166-2 code mapped to one, in; a
:class:`Zone`, its factors by year and basis, and its country's generation mix out.

Tables (data README sections 1.1, 2.1 and 2.2):

- ``subnational/electricitymaps_yearly_2021_2025.csv``: the zones and their life-cycle
  intensity, 2021-2025 (Electricity Maps, ODbL 1.0; 2025 is preliminary);
- ``subnational/electricitymaps_yearly_2024_direct_and_lifecycle.csv``: direct (operational)
  intensity, 2024 only (Electricity Maps, ODbL 1.0);
- ``grid/iso3166_2_zones.csv`` (curated, a source per row): ISO 3166-2 subdivisions that are not
  zone ids. A subdivision lies in one zone (``whole``), mostly in one zone that carbonmonitor
  picks and flags (``main``), or in several (``part``): those are refused with the list;
- ``grid/owid_electricity_by_country_year.csv``: generation shares per source (CC BY 4.0).

A zone id wins over an ISO 3166-2 code spelt the same: ``IT-NO`` and ``IT-SO`` are the North and
South Italy bidding zones, not the provinces of Novara and Sondrio.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from carbonmonitor.carbon import intensity as _intensity
from carbonmonitor.carbon.countries import Country, resolve_country
from carbonmonitor.data import preliminary_years, read_columns, read_matching, read_table
from carbonmonitor.errors import ConfigError, closest
from carbonmonitor.facts import Basis, Flag, Intensity, Location

__all__ = ["MIX_TOLERANCE_PCT", "Listed", "Mix", "Series", "Zone", "country_series",
           "find_zone", "gcp_series", "generation_mix", "intensity_for_zone", "list_factors",
           "resolve_zone", "suggest_place", "zone_series"]

ZONES_TABLE = _intensity.EM.path
SUBDIVISION_TABLE = "grid/iso3166_2_zones.csv"
OWID_TABLE = _intensity.OWID.path

_FIX = ("use an Electricity Maps zone id such as US-CAL-CISO, CA-ON or SE-SE3, or an ISO 3166-2 "
        "code such as AU-NSW; `carbonmonitor intensity --search TEXT` lists them")


@dataclass(frozen=True)
class Zone:
    """An Electricity Maps grid zone.

    ``country_iso3`` is as the zone table has it (``XKX`` for Kosovo). ``given_as`` is the ISO
    3166-2 code it was named by, if any; ``note`` says which part of that subdivision lies in
    another zone, when the zone was picked as the one serving most of it.
    """

    zone_id: str
    name: str
    display_name: str
    country_iso3: str
    subnational: bool
    given_as: str = ""
    note: str = ""

    def flags(self) -> tuple[Flag, ...]:
        """``zone-subdivision-main`` when the zone serves most, not all, of ``given_as``."""
        if not self.note:
            return ()
        return (Flag(
            "zone-subdivision-main",
            f"{self.given_as} mapped to grid zone {self.zone_id} ({self.name}), which serves "
            f"most of it; {self.note}",
            "to be exact, give the grid zone where the energy is drawn as zone=",
        ),)


def resolve_zone(name: str) -> Zone:
    """The grid zone named by an Electricity Maps zone id or an ISO 3166-2 code (any case).

    Example:
        >>> resolve_zone("au-act").zone_id
        'AU-NSW'

    Raises:
        ConfigError: an unknown name (with the closest zone ids), or a subdivision served by
            several zones (with those zones).
    """
    found = find_zone(name)
    if found is None:
        raise ConfigError(f"unknown grid zone {name!r}.{suggest_place(name)}"
                          f"{_country_hint(name)} Fix: {_FIX}.")
    return found


def find_zone(name: str) -> Zone | None:
    """:func:`resolve_zone`, but None for a name that is neither a zone nor a mapped code.

    Raises:
        ConfigError: a subdivision served by several zones.
    """
    key = name.strip().upper()
    zones = _zones()
    if key in zones:
        return zones[key]
    rows = _subdivisions().get(key)
    if not rows:
        return None
    picked = [r for r in rows if r["relation"] in ("whole", "main")]
    if picked:
        row = picked[0]
        return replace(zones[row["zone"]], given_as=row["subdivision"],
                       note=row["note"] if row["relation"] == "main" else "")
    options = "; ".join(f"{r['zone']} ({r['note']})" if r["note"] else r["zone"] for r in rows)
    raise ConfigError(
        f"{rows[0]['subdivision']} ({rows[0]['subdivision_name']}) is served by several grid "
        f"zones: {options}. Fix: give instead the zone id of the one where the energy is "
        f"drawn (source: {rows[0]['source']})."
    )


def intensity_for_zone(zone: str | Zone, *, data_year: int | None = None,
                       basis: Basis = "lifecycle") -> Intensity:
    """Carbon intensity of a grid zone, with the year rule and flags of
    :func:`~carbonmonitor.carbon.intensity_for`.

    Args:
        zone: a zone id, an ISO 3166-2 code or a :class:`Zone`.
        data_year: the year of the factor; None for the latest final year. Preliminary years
            are used only when asked for; a missing year falls back to the latest earlier one.
        basis: ``"lifecycle"`` (2021-2025) or ``"operational"`` (direct; 2024 only: an earlier
            year is refused, a later one falls back to 2024, flagged).

    Example:
        >>> intensity_for_zone("SE-SE3").table
        'subnational/electricitymaps_yearly_2021_2025.csv'

    Raises:
        ConfigError: an unknown zone, year or basis.
    """
    found = zone if isinstance(zone, Zone) else resolve_zone(zone)
    country = resolve_country(found.country_iso3)
    location = Location("given", country.alpha3, country.name, zone=found.zone_id)
    result = _intensity.intensity_for(location, data_year=data_year, basis=basis)
    return replace(result, flags=(*found.flags(), *result.flags)) if found.note else result


@lru_cache(maxsize=1)
def _zones() -> dict[str, Zone]:
    columns = ("zone", "country_iso3", "is_subnational", "zone_name", "display_name")
    zones: dict[str, Zone] = {}
    for row in read_columns(ZONES_TABLE, columns):
        if row["zone"].upper() not in zones:
            zones[row["zone"].upper()] = Zone(
                row["zone"], row["zone_name"], row["display_name"] or row["zone_name"],
                row["country_iso3"], row["is_subnational"] == "True")
    return zones


@lru_cache(maxsize=1)
def _subdivisions() -> dict[str, list[dict[str, str]]]:
    index: dict[str, list[dict[str, str]]] = {}
    for row in read_table(SUBDIVISION_TABLE):
        index.setdefault(row["subdivision"].upper(), []).append(row)
    return index


def suggest_place(text: str) -> str:
    """``" Did you mean 'CA-ON' (Ontario)?"``: the zone id, ISO 3166-2 code or zone name
    closest to ``text``, or an empty string."""
    candidates: dict[str, str] = {}  # what may match -> the id to suggest
    for zone in _zones().values():
        candidates[zone.name] = candidates[zone.display_name] = zone.zone_id
    for code, rows in _subdivisions().items():
        candidates[rows[0]["subdivision_name"]] = code
    for zone in _zones().values():  # ids last: an id beats a name spelt the same
        candidates[zone.zone_id] = zone.zone_id
    candidates.update({code: code for code in _subdivisions()})
    match = closest(text.strip(), candidates)
    if match is None:
        return ""
    key = candidates[match]
    found = _zones().get(key.upper())
    label = found.display_name if found else _subdivisions()[key][0]["subdivision_name"]
    return f" Did you mean {key!r} ({label})?"


def _country_hint(name: str) -> str:
    """Where ``name`` is a country, or starts with the code of a country that has zones, say
    which zones to use."""
    try:
        country: Country | None = resolve_country(name)
    except ConfigError:
        country = None
    if country is not None:
        own = " or zone=" + repr(country.alpha2) if country.alpha2.upper() in _zones() else ""
        return f" {name!r} is a country ({country.name}): use country={name!r}{own}."
    prefix = name.strip().upper().split("-")[0]
    inside = sorted(z.zone_id for z in _zones().values()
                    if z.zone_id.upper().startswith(prefix + "-"))
    if not 1 < len(prefix) < 4 or not inside:
        return ""
    shown = ", ".join(inside[:12]) + (f" and {len(inside) - 12} more" if len(inside) > 12 else "")
    return f" Zones starting {prefix}-: {shown}."


# -- factors by year, for listing and display -----------------------------------------------

@dataclass(frozen=True)
class Series:
    """One place's factors by year from one table. ``label`` is short (``EM direct``);
    ``values`` holds (year, g/kWh, basis), oldest first; ``preliminary_years`` those years
    that may be revised."""

    label: str
    key: str
    name: str
    source: str
    table: str
    licence: str
    values: tuple[tuple[int, float, Basis], ...]
    preliminary_years: frozenset[int]


def zone_series(zone: Zone) -> tuple[Series, ...]:
    """The zone's life-cycle series and, where shipped, its direct (operational) one."""
    tables = ((_intensity.EM, "EM lifecycle"), (_intensity.DIRECT, "EM direct"))
    return tuple(s for t, label in tables if (s := _series(t, zone.zone_id, label)) is not None)


def country_series(country: Country) -> Series | None:
    """The country's OWID (Ember) series, life-cycle and generation-based."""
    return _series(_intensity.OWID, country.alpha3, "OWID/Ember")


def gcp_series(region: str) -> Series | None:
    """Google's own figures for a GCP region (life-cycle to 2020, operational since 2021)."""
    return _series(_intensity.GCP, region, "Google")


def _series(table: _intensity._Table, key: str, label: str) -> Series | None:
    entry = _intensity.series_of(table, key)
    if entry is None:
        return None
    name, by_year = entry
    values = tuple((year, value, basis) for year, (value, basis) in sorted(by_year.items()))
    return Series(label, table.zone_prefix + key, name, table.source, table.path,
                  table.licence, values, preliminary_years(table.path))


@dataclass(frozen=True)
class Listed:
    """A zone or country with the factors the year rule picks for one year: life-cycle, and
    operational (direct) for zones that have it."""

    kind: Literal["zone", "country"]
    key: str
    name: str
    country_iso3: str
    lifecycle: Intensity | None
    operational: Intensity | None


def list_factors(*, data_year: int | None = None, search: str | None = None
                 ) -> tuple[Listed, ...]:
    """Every grid zone and country (and the World row) with its factor for ``data_year``.

    Args:
        data_year: as for :func:`intensity_for_zone`; None for the latest final year.
        search: keep only entries whose id or name contains this text (any case).

    Raises:
        ConfigError: ``data_year`` is outside the shipped years.
    """
    target = _intensity.target_year(data_year)
    explicit = data_year is not None
    em = _intensity.series_index(_intensity.EM)
    direct = _intensity.series_index(_intensity.DIRECT)
    found: list[Listed] = []
    for zone in sorted(_zones().values(), key=lambda z: z.zone_id):
        oper = direct.get(zone.zone_id)
        if oper is not None and target < min(oper[1]):
            oper = None  # no earlier direct year to fall back to
        found.append(Listed(
            "zone", zone.zone_id, zone.display_name, zone.country_iso3,
            _pick(_intensity.EM, zone.zone_id, em.get(zone.zone_id), target, explicit),
            _pick(_intensity.DIRECT, zone.zone_id, oper, target, explicit)))
    owid = _intensity.series_index(_intensity.OWID)
    for key, entry in sorted(owid.items()):
        if key.startswith("OWID_") and key not in (_intensity.WORLD, "OWID_KOS"):
            continue  # continents and income groups
        found.append(Listed("country", key, entry[0], key,
                            _pick(_intensity.OWID, key, entry, target, explicit), None))
    if search:
        text = search.strip().lower()
        found = [f for f in found if text in f.key.lower() or text in f.name.lower()]
    return tuple(found)


def _pick(table: _intensity._Table, key: str, entry: tuple[str, _intensity._Series] | None,
          target: int, explicit: bool) -> Intensity | None:
    return None if entry is None else _intensity.choose_year(table, key, entry, target, explicit)


# -- generation mix ---------------------------------------------------------------------------

MIX_SOURCES = (
    ("coal", "coal_share_elec"), ("gas", "gas_share_elec"), ("oil", "oil_share_elec"),
    ("nuclear", "nuclear_share_elec"), ("hydro", "hydro_share_elec"),
    ("solar", "solar_share_elec"), ("wind", "wind_share_elec"),
    ("bioenergy", "biofuel_share_elec"),
    ("other renewables", "other_renewables_share_elec_exc_biofuel"),
)
# Where OWID has no split of bioenergy (aggregates, years before 2000) it has only this total.
_OTHER_INCL_BIO = ("other renewables incl. bioenergy", "other_renewables_share_elec")
_MIX_COLUMNS = ("iso_code", "country", "year", *(c for _, c in MIX_SOURCES), _OTHER_INCL_BIO[1])

MIX_TOLERANCE_PCT = 0.1
"""How far the shares may sum from 100 %. OWID publishes each share to 3 decimals, so nine
rounded shares can miss 100 by up to 0.0045 points (every country row from 2000 on is within
0.002); a larger gap means unclassified generation (rows before 2000), and is flagged."""


@dataclass(frozen=True)
class Mix:
    """Shares of electricity generation by source (% of generation) of a country in one year.

    ``zone`` is the grid zone asked for when the mix is that of the zone's whole country.
    """

    country_iso3: str
    name: str
    year: int
    shares_pct: tuple[tuple[str, float], ...]
    source: str
    table: str
    licence: str
    zone: str | None = None
    preliminary: bool = False
    flags: tuple[Flag, ...] = ()

    @property
    def total_pct(self) -> float:
        return sum(share for _, share in self.shares_pct)


def generation_mix(country_or_zone: str, year: int | None = None) -> Mix:
    """The generation mix of a country, a grid zone's country, or ``"World"`` (OWID/Ember).

    The year rule is that of the intensity: ``year`` when it has a final mix, else the latest
    earlier final year; a preliminary year only when asked for. A share OWID leaves empty is 0
    (it has no generation from that source). Shares that do not sum to 100 % within
    :data:`MIX_TOLERANCE_PCT` are flagged ``mix-incomplete``.

    Example:
        >>> round(generation_mix("FR", 2024).total_pct)
        100

    Raises:
        ConfigError: an unknown name or year, or no mix in ``year`` or earlier.
    """
    iso3, name, zone = _mix_place(country_or_zone)
    target = _intensity.default_data_year() if year is None else year
    rows = {int(r["year"]): r for r in read_matching(OWID_TABLE, _MIX_COLUMNS, "iso_code",
                                                     (iso3,))}
    every = {y: _shares(r) for y, r in rows.items()}
    shares = {y: s for y, s in every.items() if sum(v for _, v in s) > 0}
    prelim = preliminary_years(OWID_TABLE)
    usable = [y for y in shares if y <= target
              and (y not in prelim or (year is not None and y == target))]
    if not shares:
        raise ConfigError(f"{OWID_TABLE} has no generation mix for {name}. Fix: none possible "
                          "with the shipped data; give a neighbouring country or 'World'.")
    if not usable:
        raise ConfigError(f"no generation mix for {name} in {target} or earlier in {OWID_TABLE} "
                          f"(it has {min(shares)}-{max(shares)}). Fix: pass a later year, or "
                          "omit it.")
    used = max(usable)
    mix = Mix(iso3, name, used, shares[used], _intensity.OWID.source, OWID_TABLE,
              _intensity.OWID.licence, zone.zone_id if zone else None, used in prelim)
    return replace(mix, flags=_mix_flags(mix, target, zone))


def _mix_place(text: str) -> tuple[str, str, Zone | None]:
    """(OWID key, name, zone) for a country, a zone (its country) or the World."""
    if text.strip().lower() in ("world", _intensity.WORLD.lower()):
        return _intensity.WORLD, "World", None
    zone = find_zone(text)
    if zone is None:
        try:
            country = resolve_country(text)
        except ConfigError:
            raise ConfigError(f"unknown country or grid zone {text!r}.{suggest_place(text)} "
                              "Fix: give a country (ISO code or English name), 'World', or "
                              f"a grid zone ({_FIX}).") from None
        return country.alpha3, country.name, None
    country = resolve_country(zone.country_iso3)
    return country.alpha3, country.name, zone if zone.subnational else None


def _shares(row: dict[str, str]) -> tuple[tuple[str, float], ...]:
    shares = [(label, float(row[col]) if row[col] else 0.0) for label, col in MIX_SOURCES]
    split = row["biofuel_share_elec"] or row["other_renewables_share_elec_exc_biofuel"]
    if not split and row[_OTHER_INCL_BIO[1]]:
        shares = [*shares[:-2], (_OTHER_INCL_BIO[0], float(row[_OTHER_INCL_BIO[1]]))]
    return tuple(shares)


def _mix_flags(mix: Mix, target: int, zone: Zone | None) -> tuple[Flag, ...]:
    flags: list[Flag] = []
    if zone is not None:
        flags.append(Flag("mix-country-of-zone",
                          f"the mix of all of {mix.name}: OWID has no mix for zone {zone.zone_id}",
                          "none possible with the shipped data"))
    if mix.year != target:
        flags.append(Flag("mix-year-fallback", f"no {target} mix for {mix.name}: {mix.year} used",
                          "pass another year"))
    if mix.preliminary:
        flags.append(Flag("mix-preliminary", f"the {mix.year} mix is preliminary and may be "
                          "revised", "omit the year to use the latest final year"))
    if abs(mix.total_pct - 100.0) > MIX_TOLERANCE_PCT:
        flags.append(Flag("mix-incomplete",
                          f"the shares sum to {mix.total_pct:.1f} %: the rest of the generation "
                          "is not classified by source in the table",
                          "use a year from 2000 on for a complete split"))
    return tuple(flags)
