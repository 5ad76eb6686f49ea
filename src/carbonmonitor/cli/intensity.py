"""``carbonmonitor intensity [PLACE]``: the shipped emission factors, and ``--mix``, the
generation mix.

Without PLACE: every grid zone and country with the factor the year rule picks. With PLACE (a
zone id, an ISO 3166-2 code, a country or a cloud region): its factors by year from each table,
and the factor a run there would use. Tables go to stdout; errors to stderr, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from carbonmonitor.cli import UsageError

if TYPE_CHECKING:  # the tables and carbon modules load only when the command runs
    from carbonmonitor.carbon import zones
    from carbonmonitor.carbon.countries import Country
    from carbonmonitor.carbon.regions import CloudRegion
    from carbonmonitor.facts import Intensity, Location

_SHORT = {"Electricity Maps": "Electricity Maps",
          "Our World in Data based on Ember and Energy Institute": "OWID/Ember",
          "Google Cloud region-carbon-info": "Google"}


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add ``intensity`` to the ``carbonmonitor`` subcommands; returns its parser."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "intensity", allow_abbrev=False,
        help="list grid zones and countries with their emission factors",
        description="Without PLACE: every grid zone and country with its emission factor for "
                    "the year (default: the latest final year), basis and source. With PLACE "
                    "(a grid zone such as US-CAL-CISO, an ISO 3166-2 code such as AU-NSW, a "
                    "country, or a cloud region): its factors by year and basis, and the "
                    "factor a run there uses. --mix: the generation mix by source.")
    parser.add_argument("place", nargs="?", metavar="PLACE",
                        help="grid zone, ISO 3166-2 code, country or cloud region")
    parser.add_argument("--search", metavar="TEXT",
                        help="list only zones and countries whose id or name contains TEXT")
    parser.add_argument("--year", "--data-year", dest="year", type=int, metavar="YEAR",
                        help="data year (default: the latest final year; a preliminary year "
                             "only when given)")
    parser.add_argument("--cloud-provider", dest="cloud_provider", metavar="PROVIDER",
                        help="aws, azure or gcp: the provider of a cloud-region PLACE")
    parser.add_argument("--mix", action="store_true",
                        help="show PLACE's generation mix by source (its country's)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def intensity_command(args: argparse.Namespace) -> int:
    """Run ``carbonmonitor intensity``; the exit code."""
    try:
        return _command(args)
    except BrokenPipeError:  # `carbonmonitor intensity | head`: the reader has had enough
        _drop_stdout()
        return 0


def _drop_stdout() -> None:
    """Point stdout at the null device, so the flush at exit does not fail again."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def _command(args: argparse.Namespace) -> int:
    if args.place is None:
        if args.mix:
            raise UsageError("--mix needs a PLACE, e.g. `carbonmonitor intensity FR --mix` "
                             "(or World)")
        _list(args)
        return 0
    if args.search is not None:
        raise UsageError("give PLACE or --search, not both")
    if args.mix:
        _mix(args)
        return 0
    _show(resolve_place(args.place, args.cloud_provider), args)
    return 0


# -- the list ---------------------------------------------------------------------------------

def _list(args: argparse.Namespace) -> None:
    from carbonmonitor.carbon import intensity as _intensity
    from carbonmonitor.carbon import zones

    found = zones.list_factors(data_year=args.year, search=args.search)
    if args.json:
        print(json.dumps([asdict(f) for f in found], indent=2))
        return
    if not found:
        print(f"no zone or country matches {args.search!r} (--search looks at zone and "
              f"country ids and names; for a cloud region, ask for it directly: "
              f"carbonmonitor intensity {args.search})", file=sys.stderr)
        return
    rows = [(f.kind, f.key, f.name, f.country_iso3, *_cells(f.lifecycle),
             _number(f.operational), _source(f.lifecycle)) for f in found]
    _table(("KIND", "ID", "NAME", "COUNTRY", "g/kWh", "YEAR", "DIRECT", "SOURCE"), rows,
           right=(4, 6))
    year = _intensity.target_year(args.year)
    print(f"\ng/kWh: life-cycle g CO2e per kWh for {year}, or the latest earlier year; "
          "* preliminary.\nDIRECT: operational (direct) basis, Electricity Maps 2024.\n"
          "Zones: Electricity Maps (ODbL 1.0), consumption-based. Countries: OWID/Ember "
          "(CC BY 4.0), generation-based.\nOne place by year: carbonmonitor intensity PLACE")


def _cells(factor: Intensity | None) -> tuple[str, str]:
    if factor is None:
        return "-", "-"
    return _number(factor), f"{factor.year}{'*' if factor.preliminary else ''}"


def _number(factor: Intensity | None) -> str:
    return "-" if factor is None else f"{factor.g_per_kwh:g}"


def _source(factor: Intensity | None) -> str:
    return "-" if factor is None else _SHORT.get(factor.source, factor.source)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right: tuple[int, ...]) -> None:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells).rstrip())


# -- one place ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Place:
    """What PLACE named: a grid zone, a country or a cloud region, and where that is."""

    kind: str  # "zone", "country" or "cloud region"
    key: str
    name: str
    location: Location
    zone: zones.Zone | None = None
    country: Country | None = None
    region: CloudRegion | None = None


def resolve_place(text: str, provider: str | None = None) -> Place:
    """A zone id or ISO 3166-2 code, else a country, else a cloud region (of ``provider``).

    Raises:
        ConfigError: none of them, with the closest names; or an ambiguous one.
    """
    from carbonmonitor.carbon import intensity as _intensity
    from carbonmonitor.carbon import zones
    from carbonmonitor.carbon.countries import resolve_country
    from carbonmonitor.carbon.regions import PROVIDERS, validate_provider
    from carbonmonitor.errors import ConfigError
    from carbonmonitor.facts import Location

    provider = validate_provider(provider) if provider else None
    zone = None if provider else zones.find_zone(text)
    if zone is not None:
        country = resolve_country(zone.country_iso3)
        where = Location("given", country.alpha3, country.name, zone=zone.zone_id)
        name = f"{zone.display_name}, {country.name}" if zone.subnational else country.name
        return Place("zone", zone.zone_id, name, where, zone=zone, country=country)
    if not provider:
        try:
            country = resolve_country(text)
        except ConfigError:
            pass
        else:
            return Place("country", country.alpha3, country.name,
                         Location("given", country.alpha3, country.name), country=country)
    regions = [r for p in ((provider,) if provider else PROVIDERS)
               if (r := _region(p, text)) is not None]
    if len(regions) == 1:
        region = regions[0]
        where = _intensity.resolve_location(country=None, cloud_provider=region.provider,
                                            cloud_region=region.region)
        return Place("cloud region", f"{region.provider}:{region.region}",
                     f"{region.display_name}, {where.country_name}", where, region=region)
    if regions:
        raise ConfigError(f"cloud region {text!r} exists for several providers "
                          f"({', '.join(r.provider for r in regions)}). Fix: add "
                          "--cloud-provider.")
    raise ConfigError(
        f"unknown place {text!r}: not a grid zone, ISO 3166-2 code, country or "
        f"{provider + ' ' if provider else ''}cloud region.{zones.suggest_place(text)} Fix: "
        "give a zone id (US-CAL-CISO), an ISO 3166-2 code (AU-NSW), a country (DE, France) or "
        "a region id (us-east-1); `carbonmonitor intensity --search TEXT` lists zones and "
        "countries.")


def _region(provider: str, text: str) -> CloudRegion | None:
    from carbonmonitor.carbon.regions import resolve_cloud_region
    from carbonmonitor.errors import ConfigError

    try:
        return resolve_cloud_region(provider, text)
    except ConfigError:
        return None


def _series(place: Place) -> list[zones.Series]:
    """Every table's factors for the place: its zone's, its region's and its country's."""
    from carbonmonitor.carbon import zones
    from carbonmonitor.carbon.countries import resolve_country

    found: list[zones.Series] = []
    if place.region is not None and place.region.provider == "gcp":
        gcp = zones.gcp_series(place.region.region)
        found.extend([gcp] if gcp else [])
    zone = place.zone
    if zone is None and place.location.zone:
        zone = zones.find_zone(place.location.zone)
    if zone is None and place.country is not None:  # a country that is also a zone
        zone = zones.find_zone(place.country.alpha2) if place.country.alpha2 else None
    if zone is not None:
        found.extend(zones.zone_series(zone))
    if place.location.country_iso3:
        owid = zones.country_series(resolve_country(place.location.country_iso3))
        found.extend([owid] if owid else [])
    return found


def _used(place: Place, year: int | None) -> dict[str, dict[str, Intensity | str]]:
    """The factor a run at the place uses, per option naming it and per basis; the reason
    where there is none. A country-wide zone (DE) is also a country, whose factor differs."""
    from carbonmonitor.carbon import intensity as _intensity
    from carbonmonitor.carbon import zones
    from carbonmonitor.errors import ConfigError
    from carbonmonitor.facts import Location

    uses: dict[str, Location | zones.Zone] = {}
    if place.zone is not None:
        uses[f"zone={place.zone.given_as or place.zone.zone_id}"] = place.zone
        if not place.zone.subnational and place.country is not None:
            uses[f"country={place.country.alpha3}"] = Location(
                "given", place.country.alpha3, place.country.name)
    elif place.region is not None:
        uses[f"cloud_region={place.region.region}"] = place.location
    else:
        uses[f"country={place.key}"] = place.location
    found: dict[str, dict[str, Intensity | str]] = {}
    for option, where in uses.items():
        found[option] = {}
        for basis in _intensity.BASES:
            try:
                found[option][basis] = (
                    zones.intensity_for_zone(where, data_year=year, basis=basis)
                    if isinstance(where, zones.Zone)
                    else _intensity.intensity_for(where, data_year=year, basis=basis))
            except ConfigError as err:  # operational figures for a year before 2024
                found[option][basis] = str(err).split(" Fix:")[0]
    return found


def _show(place: Place, args: argparse.Namespace) -> None:
    from carbonmonitor.carbon import intensity as _intensity
    from carbonmonitor.facts import Intensity

    series = _series(place)
    used = _used(place, args.year)
    if args.json:
        print(json.dumps({
            "place": args.place, "kind": place.kind, "key": place.key, "name": place.name,
            "country_iso3": place.location.country_iso3,
            "given_as": place.zone.given_as if place.zone else "",
            "used": {option: {b: asdict(f) if isinstance(f, Intensity) else {"none": f}
                              for b, f in by_basis.items()}
                     for option, by_basis in used.items()},
            "series": [_series_dict(s) for s in series],
        }, indent=2))
        return
    given = f" (ISO 3166-2 {place.zone.given_as})" if place.zone and place.zone.given_as else ""
    print(f"{place.key}{given}: {place.name} ({place.kind})")
    for option, by_basis in used.items():
        print(f"Factor used with {option}, for {_intensity.target_year(args.year)}:")
        shown: dict[tuple[str, str, int, float], list[str]] = {}
        for basis, factor in by_basis.items():
            if isinstance(factor, str):
                print(f"  {basis:<11}  none: {factor}")
                continue
            same = (factor.table, factor.zone, factor.year, factor.g_per_kwh)
            if same in shown:  # e.g. Google's figure, whatever basis is asked for
                continue
            shown[same] = [f.message for f in factor.flags]
            print(f"  {factor.basis:<11}  {factor.g_per_kwh:g} g/kWh  {factor.year}"
                  f"{' (preliminary)' if factor.preliminary else ''}  {factor.zone} "
                  f"({factor.zone_name}); {factor.source}, {factor.licence}, {factor.table}")
            for flag in factor.flags:
                print(f"               note: {flag.message}")
    _by_year(series)


BY_YEAR_SPAN = 10
"""Years shown by ``intensity PLACE`` (the latest ones); ``--json`` has every year."""


def _by_year(series: list[zones.Series]) -> None:
    if not series:
        return
    every = sorted({v[0] for s in series for v in s.values})
    years = every[-BY_YEAR_SPAN:]
    header = ("YEAR", *(f"{s.label} {s.key}" for s in series))
    cols = [{year: _cell(value, basis, s, year) for year, value, basis in s.values}
            for s in series]
    rows = [(str(year), *(c.get(year, "-") for c in cols)) for year in years]
    print("\nBy year (g CO2e/kWh):")
    _table(header, rows, right=tuple(range(1, len(header))))
    earlier = f"; {every[0]}-{years[0] - 1}: --json" if len(every) > len(years) else ""
    print(f"\n  * preliminary: used only when asked for with --year; lc/op: life-cycle/"
          f"operational basis{earlier}")
    for s in series:
        print(f"  {s.label} {s.key}: {s.name}; {s.source}, {s.licence}, {s.table}")


def _cell(value: float, basis: str, series: zones.Series, year: int) -> str:
    """The value, marked preliminary; with its basis where the series mixes bases (Google)."""
    mark = "*" if year in series.preliminary_years else ""
    mixed = len({b for _, _, b in series.values}) > 1
    tag = (" lc" if basis == "lifecycle" else " op") if mixed else ""
    return f"{value:g}{tag}{mark}"


def _series_dict(series: zones.Series) -> dict[str, Any]:
    return {"label": series.label, "key": series.key, "name": series.name,
            "source": series.source, "table": series.table, "licence": series.licence,
            "values": [{"year": y, "g_per_kwh": v, "basis": b,
                        "preliminary": y in series.preliminary_years}
                       for y, v, b in series.values]}


# -- the mix ----------------------------------------------------------------------------------

def _mix(args: argparse.Namespace) -> None:
    from carbonmonitor.carbon import zones

    text = args.place
    place = None if text.strip().lower() in ("world", "owid_wrl") else resolve_place(
        text, args.cloud_provider)
    key = text if place is None else (place.location.zone or place.location.country_iso3
                                      or text)
    mix = zones.generation_mix(key, args.year)
    if args.json:
        print(json.dumps({**asdict(mix), "total_pct": mix.total_pct}, indent=2))
        return
    print(f"Generation mix of {mix.name} ({mix.country_iso3}), {mix.year}"
          f"{' (preliminary)' if mix.preliminary else ''}: {mix.source}, {mix.licence}, "
          f"{mix.table}")
    width = max(len(name) for name, _ in mix.shares_pct)
    for name, share in sorted(mix.shares_pct, key=lambda s: -s[1]):
        print(f"  {name:<{width}}  {share:6.1f} %")
    print(f"  {'total':<{width}}  {mix.total_pct:6.1f} %")
    for flag in mix.flags:
        print(f"  note: {flag.message}")
