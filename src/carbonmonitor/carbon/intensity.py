"""Grid carbon intensity for a location and year, from the shipped tables (data README section 0).

Chain: GCP region -> Google's own figure; AWS/Azure region or grid zone -> its Electricity Maps
zone; any region or zone without a value -> its country in OWID; country -> OWID; nothing ->
OWID's World row. Each step that falls back adds a :class:`~carbonmonitor.records.Flag` to the
result.

Basis: OWID and the Electricity Maps yearly table are life-cycle. The operational (direct)
basis comes from Electricity Maps' 2024 table only, for zones and for countries that are a
zone; Google's region figures keep their own basis (operational since 2021).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from carbonmonitor.carbon.countries import OWID_COLUMNS, resolve_country
from carbonmonitor.carbon.regions import resolve_cloud_region, validate_provider
from carbonmonitor.data import preliminary_years, read_columns, read_matching
from carbonmonitor.errors import ConfigError, DataError, did_you_mean
from carbonmonitor.facts import Basis, Flag, Intensity, Location

__all__ = ["BASES", "default_data_year", "intensity_for", "resolve_location", "year_for_run"]

WORLD = "OWID_WRL"
BASES: tuple[Basis, ...] = ("lifecycle", "operational")
"""The bases the static tables offer (``marginal`` comes only from a live provider)."""


@dataclass(frozen=True)
class _Table:
    """How to read one intensity table: key, label and value columns, and its provenance."""

    path: str
    source: str
    licence: str
    key: str
    label: str
    value: str
    basis: str = ""  # column holding the basis per row; empty: the whole table has table_basis
    table_basis: Basis = "lifecycle"
    zone_prefix: str = ""
    columns: tuple[str, ...] = ()  # columns to read; default: key, label, value, year, basis

    def read(self) -> tuple[dict[str, str], ...]:
        wanted = self.columns or tuple(
            c for c in (self.key, self.label, self.value, "year", self.basis) if c)
        return read_columns(self.path, wanted)


OWID = _Table(
    "grid/owid_electricity_by_country_year.csv",
    "Our World in Data based on Ember and Energy Institute", "CC BY 4.0",
    key="iso_code", label="country", value="carbon_intensity_elec", columns=OWID_COLUMNS,
)
EM = _Table(
    "subnational/electricitymaps_yearly_2021_2025.csv", "Electricity Maps", "ODbL 1.0",
    key="zone", label="zone_name", value="carbon_intensity_lifecycle_gco2e_per_kwh",
)
# Electricity Maps' 2024 release with both bases (data README 2.2); read for its direct column.
DIRECT = _Table(
    "subnational/electricitymaps_yearly_2024_direct_and_lifecycle.csv", "Electricity Maps",
    "ODbL 1.0", key="zone", label="zone_name", value="carbon_intensity_direct_gco2e_per_kwh",
    table_basis="operational",
)
GCP = _Table(
    "cloud/gcp_region_carbon_info_2019_2024.csv", "Google Cloud region-carbon-info", "Apache-2.0",
    key="region", label="location", value="grid_carbon_intensity_gco2e_per_kwh",
    basis="intensity_basis", zone_prefix="gcp:",
)

_Series = dict[int, tuple[float, Basis]]


def resolve_location(
    *, country: str | None, cloud_provider: str | None, cloud_region: str | None
) -> Location:
    """Where the energy is drawn, from the user's options; never guessed.

    Example:
        >>> resolve_location(country="FR", cloud_provider=None, cloud_region=None).country_iso3
        'FRA'

    Raises:
        ConfigError: unknown country, provider or region, or a country that contradicts the region.
    """
    if cloud_region:
        region = resolve_cloud_region(cloud_provider, cloud_region)
        home = resolve_country(region.country_iso3)
        given = resolve_country(country) if country else home
        if given != home:
            raise ConfigError(
                f"country {country!r} ({given.name}) contradicts cloud_region "
                f"{region.provider}:{region.region}, which is in {home.name} ({home.alpha2}). "
                "Fix: drop country= or correct cloud_region=."
            )
        return Location(
            "given", home.alpha3, home.name, region.provider, region.region, region.em_zone
        )
    if cloud_provider:
        validate_provider(cloud_provider)  # the provider alone only sets the PUE
    if country:
        found = resolve_country(country)
        return Location("given", found.alpha3, found.name)
    return Location("unknown")


def year_for_run(started_utc_year: int) -> int | None:
    """The year rule for a run's factors: the run's own year when it is before the latest final
    year (its values are final), else None, meaning the latest final year (a run this year is
    accounted with the latest final data, never a preliminary year unless asked)."""
    return started_utc_year if started_utc_year < default_data_year() else None


def default_data_year() -> int:
    """The latest year of the OWID table's World row that is not preliminary (the World row
    covers every year any country has)."""
    entry = _entry(OWID, WORLD)
    if entry is None:
        raise DataError(f"no World row ({WORLD}) in {OWID.path}")
    return max(set(entry[1]) - preliminary_years(OWID.path))


def intensity_for(location: Location, *, data_year: int | None = None,
                  basis: Basis = "lifecycle") -> Intensity:
    """Carbon intensity of the grid at ``location`` for ``data_year`` (default: latest final year).

    A missing year falls back to the latest earlier one; preliminary years are used only when
    asked for explicitly. Every fallback is flagged on the result.

    Args:
        location: where the energy is drawn (:func:`resolve_location`, or a grid zone).
        data_year: the year of the factor; None for the latest final year.
        basis: ``"lifecycle"`` or ``"operational"`` (direct: combustion only; Electricity Maps
            2024 figures, for grid zones and for countries that are one). Where no figure of
            that basis exists, the life-cycle figure is used and flagged; a GCP region always
            gets Google's own figure, whose basis is recorded.

    Example:
        >>> intensity_for(Location("unknown")).zone
        'OWID_WRL'

    Raises:
        ConfigError: ``data_year`` is outside the years the tables cover, an unknown ``basis``,
            or operational figures asked for a year before the first one shipped.
    """
    _check_basis(basis)
    target = target_year(data_year)
    explicit = data_year is not None
    if location.status == "unknown":
        return _with(_world(target, explicit, basis), Flag(
            "location-unknown", "no location given: world average used",
            'set country= (e.g. country="DE") or cloud_provider= and cloud_region=; '
            "carbonmonitor never guesses a country",
        ))
    if location.cloud_region or location.zone:
        regional = _regional(location, target, explicit, basis)
        if regional is not None:
            return regional
        where = (f"{location.cloud_provider}:{location.cloud_region}" if location.cloud_region
                 else f"zone {location.zone}")
        return _with(_country(location, target, explicit, basis), Flag(
            "intensity-country-fallback",
            f"no grid-zone figure for {where} in {target} or earlier: "
            f"{location.country_name} country average used",
            "none possible with the shipped data; the country average ignores regional grids",
        ))
    return _country(location, target, explicit, basis)


def _check_basis(basis: str) -> None:
    if basis not in BASES:
        raise ConfigError(
            f"unknown intensity basis {basis!r}.{did_you_mean(basis, BASES)} "
            f"Fix: use one of {', '.join(BASES)}."
        )


def _regional(location: Location, target: int, explicit: bool, basis: Basis
              ) -> Intensity | None:
    if location.cloud_provider == "gcp" and location.cloud_region:
        return _lookup(GCP, location.cloud_region, target, explicit)
    if location.zone:
        return _zone(location.zone, target, explicit, basis)
    return None


def _zone(zone: str, target: int, explicit: bool, basis: Basis) -> Intensity | None:
    """The Electricity Maps figure of ``zone``; an operational request without an operational
    figure for the zone falls back to its life-cycle figure, flagged."""
    if basis == "operational":
        direct = _direct(zone, target, explicit)
        if direct is not None:
            return direct
        found = _lookup(EM, zone, target, explicit)
        return None if found is None else _with(found, _basis_fallback(found.zone_name))
    return _lookup(EM, zone, target, explicit)


def _direct(key: str, target: int, explicit: bool) -> Intensity | None:
    """The operational figure of zone ``key``; the table starts in 2024, so an earlier year
    has no "latest earlier year" to fall back to and is refused."""
    entry = _entry(DIRECT, key)
    if entry is None:
        return None
    first = min(entry[1])
    if target < first:
        years = sorted(entry[1])
        raise ConfigError(
            f"operational (direct) intensity is shipped for {', '.join(map(str, years))} only "
            f"(Electricity Maps, {DIRECT.path}); data_year {target} has none. Fix: pass "
            f"data_year={years[-1]} or omit data_year=, or use intensity_basis=\"lifecycle\" "
            f"for {target}."
        )
    return _lookup(DIRECT, key, target, explicit)


def _basis_fallback(name: str) -> Flag:
    return Flag(
        "intensity-basis-fallback",
        f"no operational (direct) intensity for {name}: life-cycle value used",
        'use intensity_basis="lifecycle" to compare like with like',
    )


def _country(location: Location, target: int, explicit: bool, basis: Basis) -> Intensity:
    if basis == "operational":
        # Electricity Maps names a country's zone by its ISO alpha-2 code (Kosovo: XK).
        alpha2 = resolve_country(location.country_iso3 or "").alpha2
        direct = _direct(alpha2, target, explicit) if alpha2 else None
        if direct is not None:
            return direct
    found = _lookup(OWID, location.country_iso3 or "", target, explicit)
    if found is None:
        found = _with(_world(target, explicit, "lifecycle"), Flag(
            "intensity-world-fallback",
            f"no grid intensity for {location.country_name} in {OWID.path}: world average used",
            "none possible with the shipped data",
        ))
    return found if basis == "lifecycle" else _with(found, _basis_fallback(
        location.country_name or found.zone_name))


def _world(target: int, explicit: bool, basis: Basis) -> Intensity:
    world = _lookup(OWID, WORLD, target, explicit)
    if world is None:
        raise DataError(f"no World row ({WORLD}) in {OWID.path}")
    return world if basis == "lifecycle" else _with(world, _basis_fallback("World"))


def target_year(data_year: int | None) -> int:
    """The year a factor is wanted for: ``data_year``, checked against the years the World
    row covers, or the default year.

    Raises:
        ConfigError: ``data_year`` is outside that range.
    """
    if data_year is None:
        return default_data_year()
    world = _entry(OWID, WORLD)
    if world is None:
        raise DataError(f"no World row ({WORLD}) in {OWID.path}")
    years = world[1].keys()  # the world row bounds what any location can use
    if not min(years) <= data_year <= max(years):
        raise ConfigError(
            f"data_year {data_year} is outside the shipped intensity data "
            f"({min(years)}-{max(years)}). Fix: pass a year in that range, or omit data_year= "
            f"for {default_data_year()}."
        )
    return data_year


def series_of(table: _Table, key: str) -> tuple[str, _Series] | None:
    """(label, year -> (g/kWh, basis)) of one key of ``table``; None when it has no value."""
    return _entry(table, key)


def _lookup(table: _Table, key: str, target: int, explicit: bool) -> Intensity | None:
    """The value for ``target``, else the latest earlier final year; None when there is none."""
    entry = _entry(table, key)
    if entry is None:
        return None
    return choose_year(table, key, entry, target, explicit)


def choose_year(table: _Table, key: str, entry: tuple[str, _Series], target: int,
                explicit: bool) -> Intensity | None:
    """The factor of ``entry`` (label, series of ``key``) that the year rule picks for
    ``target``, with its flags; None when no year qualifies."""
    label, series = entry
    prelim = preliminary_years(table.path)
    usable = [y for y in series if y <= target and (y not in prelim or (explicit and y == target))]
    if not usable:
        return None
    year = max(usable)
    value, basis = series[year]
    flags: list[Flag] = []
    if year != target:
        flags.append(Flag(
            "intensity-year-fallback", f"no {target} intensity for {label}: {year} used",
            "pass data_year= to choose another year",
        ))
    if year in prelim:
        flags.append(Flag(
            "intensity-preliminary",
            f"{year} intensity for {label} is preliminary and may be revised",
            f"omit data_year= to use {default_data_year()}, the latest final year",
        ))
    return Intensity(
        value, table.zone_prefix + key, label, year, basis, table.source, table.path,
        table.licence, preliminary=year in prelim, flags=tuple(flags),
    )


def _with(intensity: Intensity, flag: Flag) -> Intensity:
    return replace(intensity, flags=(*intensity.flags, flag))


@cache
def _entry(table: _Table, key: str) -> tuple[str, _Series] | None:
    """(label, year -> (g/kWh, basis)) for one key. The large OWID table is read for that key
    only (a run needs one country and the World row); the small tables are indexed whole."""
    if table is OWID:
        rows = read_matching(table.path, OWID_COLUMNS, table.key, (key,))
        return _build_index(table, rows).get(key)
    return _index(table).get(key)


def series_index(table: _Table) -> dict[str, tuple[str, _Series]]:
    """Key -> (label, year -> (g/kWh, basis)) for every key of ``table`` (the OWID table: each
    entity with an ISO or OWID code)."""
    return _index(table)


@cache
def _index(table: _Table) -> dict[str, tuple[str, _Series]]:
    return _build_index(table, table.read())


def _build_index(table: _Table, rows: tuple[dict[str, str], ...]
                 ) -> dict[str, tuple[str, _Series]]:
    """Key -> (label, year -> (g/kWh, basis)), for the rows that have a value."""
    index: dict[str, tuple[str, _Series]] = {}
    for row in rows:
        if not row[table.key] or not row[table.value]:
            continue
        label = row[table.label]
        if table.zone_prefix:  # a provider's region: "europe-west1 (Belgium)"
            label = f"{row[table.key]} ({label})"
        _, series = index.setdefault(row[table.key], (label, {}))
        series[int(row["year"])] = (float(row[table.value]), _basis(row, table))
    return index


def _basis(row: dict[str, str], table: _Table) -> Basis:
    text = row[table.basis] if table.basis else table.table_basis
    if text == "lifecycle":
        return "lifecycle"
    if text == "operational":
        return "operational"
    raise DataError(f"unknown intensity basis {text!r} in {table.path}")
