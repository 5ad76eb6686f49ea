"""Grid zones, ISO 3166-2 aliases, both bases and the generation mix, checked against the shipped
CSVs read here with the csv module (conftest.Shipped)."""

from __future__ import annotations

import pytest

from carbonmonitor.carbon import intensity_for, resolve_location
from carbonmonitor.carbon.place import place
from carbonmonitor.carbon.zones import (
    MIX_SOURCES,
    MIX_TOLERANCE_PCT,
    generation_mix,
    intensity_for_zone,
    list_factors,
    resolve_zone,
)
from carbonmonitor.errors import ConfigError
from carbonmonitor.facts import Location

EM = "subnational/electricitymaps_yearly_2021_2025.csv"
DIRECT = "subnational/electricitymaps_yearly_2024_direct_and_lifecycle.csv"
SUBDIVISIONS = "grid/iso3166_2_zones.csv"
OWID = "grid/owid_electricity_by_country_year.csv"
SAMPLE = ("US-CAL-CISO", "CA-ON", "AU-NSW", "SE-SE3", "JP-TK", "IN-WE", "DE", "NA")


def codes(flags) -> list[str]:
    return [f.code for f in flags]


def em_row(shipped, zone: str) -> dict[str, str]:
    return next(r for r in shipped.rows(EM) if r["zone"] == zone)


def direct(shipped, zone: str) -> float | None:
    return next((float(r["carbon_intensity_direct_gco2e_per_kwh"]) for r in shipped.rows(DIRECT)
                 if r["zone"] == zone), None)


def subdivisions(shipped) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for row in shipped.rows(SUBDIVISIONS):
        found.setdefault(row["subdivision"], []).append(row)
    return found


@pytest.mark.parametrize("text", [*SAMPLE, "us-cal-ciso", " ca-on ", "Se-Se3"])
def test_zone_id_resolves_in_any_case(shipped, text):
    zone = resolve_zone(text)
    row = em_row(shipped, text.strip().upper())
    assert (zone.zone_id, zone.name, zone.country_iso3) == (
        row["zone"], row["zone_name"], row["country_iso3"])
    assert zone.subnational == (row["is_subnational"] == "True")
    assert (zone.given_as, zone.note, zone.flags()) == ("", "", ())


@pytest.mark.parametrize("zone", SAMPLE)
def test_zone_factor_is_the_table_value_for_the_final_year(shipped, zone):
    year = shipped.final_year()
    got = intensity_for_zone(zone)
    assert got.g_per_kwh == shipped.em(zone, year)
    assert (got.zone, got.zone_name, got.year, got.basis) == (
        zone, em_row(shipped, zone)["zone_name"], year, "lifecycle")
    assert (got.source, got.table, got.licence, got.preliminary, got.flags) == (
        "Electricity Maps", EM, "ODbL 1.0", False, ())


def test_every_zone_gets_its_own_table_value(shipped):
    year = shipped.final_year()
    zones = {r["zone"] for r in shipped.rows(EM)}
    assert len(zones) > 300
    for zone in sorted(zones):
        got = intensity_for_zone(zone)
        assert (got.zone, got.g_per_kwh, got.flags) == (zone, shipped.em(zone, year), ()), zone


def test_each_final_year_is_the_table_value(shipped):
    years = {int(r["year"]) for r in shipped.rows(EM)} - shipped.preliminary(EM)
    for year in sorted(years):
        got = intensity_for_zone("CA-ON", data_year=year)
        assert (got.year, got.g_per_kwh, got.flags) == (year, shipped.em("CA-ON", year), ())


def test_preliminary_zone_year_only_on_request(shipped):
    prelim = max(shipped.preliminary(EM))
    assert intensity_for_zone("AU-NSW").year == shipped.final_year() < prelim
    got = intensity_for_zone("AU-NSW", data_year=prelim)
    assert (got.year, got.g_per_kwh, got.preliminary) == (
        prelim, shipped.em("AU-NSW", prelim), True)
    assert codes(got.flags) == ["intensity-preliminary"]


def test_year_before_the_zone_table_falls_back_to_the_country(shipped):
    first = min(int(r["year"]) for r in shipped.rows(EM))
    got = intensity_for_zone("SE-SE3", data_year=first - 1)
    assert (got.zone, got.year, got.g_per_kwh) == ("SWE", first - 1, shipped.owid("SWE", first - 1))
    assert codes(got.flags) == ["intensity-country-fallback"]
    assert "zone SE-SE3" in got.flags[0].message


def test_zone_location_goes_through_intensity_for(shipped):
    where, _ = place(country=None, cloud_provider=None, cloud_region=None, zone="ca-on")
    assert where == Location("given", "CAN", "Canada", zone="CA-ON")
    assert intensity_for(where) == intensity_for_zone("CA-ON")
    assert intensity_for(where).g_per_kwh == shipped.em("CA-ON", shipped.final_year())


# -- operational (direct) basis --------------------------------------------------------------

@pytest.mark.parametrize("zone", ["US-CAL-CISO", "CA-ON", "AU-NSW", "SE-SE3", "XK"])
def test_direct_basis_is_the_2024_table_value(shipped, zone):
    (year,) = {int(r["year"]) for r in shipped.rows(DIRECT)}
    got = intensity_for_zone(zone, basis="operational", data_year=year)
    assert (got.g_per_kwh, got.year, got.basis, got.table) == (
        direct(shipped, zone), year, "operational", DIRECT)
    assert (got.source, got.licence, got.preliminary, got.flags) == (
        "Electricity Maps", "ODbL 1.0", False, ())
    assert intensity_for_zone(zone, basis="operational") == got  # the default year is 2024


def test_direct_basis_for_a_later_year_uses_2024_and_says_so(shipped):
    prelim = max(shipped.preliminary(EM))
    got = intensity_for_zone("US-CAL-CISO", basis="operational", data_year=prelim)
    assert (got.year, got.g_per_kwh) == (2024, direct(shipped, "US-CAL-CISO"))
    assert codes(got.flags) == ["intensity-year-fallback"]


def test_direct_basis_for_an_earlier_year_is_refused():
    with pytest.raises(ConfigError, match=r"2024 only.*data_year 2023.*Fix:.*lifecycle"):
        intensity_for_zone("US-CAL-CISO", basis="operational", data_year=2023)


def test_zone_without_direct_value_uses_lifecycle_and_flags_it(shipped):
    only_lifecycle = sorted({r["zone"] for r in shipped.rows(EM)}
                            - {r["zone"] for r in shipped.rows(DIRECT)})
    assert only_lifecycle
    got = intensity_for_zone(only_lifecycle[0], basis="operational")
    assert (got.basis, got.g_per_kwh) == (
        "lifecycle", shipped.em(only_lifecycle[0], shipped.final_year()))
    assert codes(got.flags) == ["intensity-basis-fallback"]


def test_operational_country_uses_its_zone_and_region_its_zone(shipped):
    france = resolve_location(country="France", cloud_provider=None, cloud_region=None)
    got = intensity_for(france, basis="operational")
    assert (got.zone, got.g_per_kwh, got.basis) == ("FR", direct(shipped, "FR"), "operational")
    zone = shipped.region("aws", "us-east-1")["em_zone"]
    region = resolve_location(country=None, cloud_provider="aws", cloud_region="us-east-1")
    assert intensity_for(region, basis="operational").g_per_kwh == direct(shipped, zone)


def test_unknown_basis_is_refused_with_the_closest():
    with pytest.raises(ConfigError, match="'operatinal'.*'operational'"):
        intensity_for_zone("CA-ON", basis="operatinal")  # type: ignore[arg-type]


# -- ISO 3166-2 codes -------------------------------------------------------------------------

def test_subdivision_table_is_consistent(shipped):
    zones = {r["zone"]: r["country_iso3"] for r in shipped.rows(EM)}
    alpha3 = {r["alpha2"]: r["alpha3"] for r in shipped.rows("grid/iso3166_countries.csv")}
    for code, rows in subdivisions(shipped).items():
        assert code not in zones, code  # a zone id is never shadowed by a mapping
        relations = sorted(r["relation"] for r in rows)
        assert relations in (["whole"], ["main"]) or set(relations) == {"part"} and len(rows) > 1
        for row in rows:
            assert row["zone"] in zones and row["source"] and row["subdivision_name"], row
            assert zones[row["zone"]] == alpha3[code.split("-")[0]], row
            assert row["relation"] != "main" or row["note"], row


def test_subdivision_in_one_zone_resolves_to_it(shipped):
    whole = [(c, rows[0]) for c, rows in subdivisions(shipped).items()
             if rows[0]["relation"] == "whole"]
    assert len(whole) > 100
    for code, row in whole:
        zone = resolve_zone(code.lower())
        assert (zone.zone_id, zone.given_as, zone.flags()) == (row["zone"], code, ()), code


@pytest.mark.parametrize(("code", "zone"), [("AU-ACT", "AU-NSW"), ("JP-13", "JP-TK"),
                                            ("IT-25", "IT-NO"), ("US-NY", "US-NY-NYIS")])
def test_alias_factor_is_the_zone_table_value(shipped, code, zone):
    row = next(r for r in shipped.rows(SUBDIVISIONS) if r["subdivision"] == code)
    assert row["zone"] == zone
    got = intensity_for_zone(code)
    assert (got.zone, got.g_per_kwh) == (zone, shipped.em(zone, shipped.final_year()))


def test_subdivision_mostly_in_one_zone_is_mapped_and_flagged(shipped):
    main = [rows[0] for rows in subdivisions(shipped).values() if rows[0]["relation"] == "main"]
    assert main
    for row in main:
        got = intensity_for_zone(row["subdivision"])
        assert got.zone == row["zone"]
        assert codes(got.flags) == ["zone-subdivision-main"]
        assert row["note"] in got.flags[0].message and row["subdivision"] in got.flags[0].message


def test_subdivision_in_several_zones_is_refused_with_the_list(shipped):
    parts = {c: rows for c, rows in subdivisions(shipped).items() if rows[0]["relation"] == "part"}
    assert {"US-CA", "US-TX", "JP-22"} <= set(parts)
    for code, rows in parts.items():
        with pytest.raises(ConfigError, match="several grid zones") as err:
            resolve_zone(code)
        assert all(r["zone"] in str(err.value) for r in rows), code
        assert "Fix:" in str(err.value)


def test_a_zone_id_wins_over_an_iso_code_spelt_the_same(shipped):
    # IT-SO is also ISO 3166-2 for the province of Sondrio (which lies in IT-NO)
    assert resolve_zone("IT-SO").name == em_row(shipped, "IT-SO")["zone_name"] == "South Italy"


@pytest.mark.parametrize(("text", "pattern"), [
    ("US-CAL-CSIO", r"unknown grid zone 'US-CAL-CSIO'\. Did you mean 'US-CAL-CISO'"),
    ("Ontario", r"Did you mean 'CA-ON' \(Ontario\)\?"),
    ("DEU", r"'DEU' is a country \(Germany\): use country='DEU' or zone='DE'"),
    ("US-WY", r"Zones starting US-: US-AK, .* and \d+ more"),
    ("nowhere-at-all", r"Fix: use an Electricity Maps zone id"),
])
def test_unknown_zone_fails_with_suggestions(text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        resolve_zone(text)
    with pytest.raises(ConfigError, match=pattern):
        place(country=None, cloud_provider=None, cloud_region=None, zone=text)


# -- the list ---------------------------------------------------------------------------------

def test_list_has_every_zone_and_the_table_values(shipped):
    year = shipped.final_year()
    listed = list_factors()
    zones = {f.key: f for f in listed if f.kind == "zone"}
    assert set(zones) == {r["zone"] for r in shipped.rows(EM)}
    for key in SAMPLE:
        assert zones[key].lifecycle is not None and zones[key].operational is not None
        assert zones[key].lifecycle.g_per_kwh == shipped.em(key, year)
        assert zones[key].operational.g_per_kwh == direct(shipped, key)
    countries = {f.key: f for f in listed if f.kind == "country"}
    for iso3 in ("FRA", "USA", "IND", "OWID_WRL", "OWID_KOS"):
        factor = countries[iso3].lifecycle
        assert factor is not None and factor.g_per_kwh == shipped.owid(iso3, year)
    assert "OWID_EUR" not in countries  # aggregates other than the World are left out


def test_list_search_and_year(shipped):
    found = list_factors(search="us-cal", data_year=2023)
    assert {f.key for f in found} == {r["zone"] for r in shipped.rows(EM)
                                      if "us-cal" in r["zone"].lower()
                                      or "us-cal" in r["zone_name"].lower()}
    for f in found:
        assert f.lifecycle is not None and f.lifecycle.g_per_kwh == shipped.em(f.key, 2023)
        assert f.operational is None  # no direct figure before 2024
    assert list_factors(search="no such place") == ()


# -- generation mix ---------------------------------------------------------------------------

def shares_of(row: dict[str, str]) -> dict[str, float]:
    """Missing shares are 0; where OWID does not split off bioenergy (aggregates, some
    territories, years before 2000) its one 'other renewables' total stands for both."""
    shares = {label: float(row[col]) if row[col] else 0.0 for label, col in MIX_SOURCES}
    if not row["biofuel_share_elec"] and not row["other_renewables_share_elec_exc_biofuel"] \
            and row["other_renewables_share_elec"]:
        del shares["bioenergy"], shares["other renewables"]
        shares["other renewables incl. bioenergy"] = float(row["other_renewables_share_elec"])
    return shares


def owid_shares(shipped, iso3: str, year: int) -> dict[str, float]:
    return shares_of(next(r for r in shipped.rows(OWID)
                          if r["iso_code"] == iso3 and int(r["year"]) == year))


@pytest.mark.parametrize(("text", "iso3"), [("FR", "FRA"), ("Germany", "DEU"), ("USA", "USA"),
                                            ("IN", "IND"), ("BRA", "BRA")])
def test_mix_is_the_table_shares_and_sums_to_100(shipped, text, iso3):
    year = shipped.final_year()
    mix = generation_mix(text)
    assert (mix.country_iso3, mix.year, mix.table, mix.licence) == (iso3, year, OWID, "CC BY 4.0")
    assert dict(mix.shares_pct) == owid_shares(shipped, iso3, year)
    assert abs(mix.total_pct - 100) <= MIX_TOLERANCE_PCT
    assert (mix.zone, mix.preliminary, mix.flags) == (None, False, ())


def test_every_country_mix_since_2000_is_within_the_tolerance(shipped):
    checked = 0
    for row in shipped.rows(OWID):
        if row["entity_type"] != "country" or int(row["year"]) < 2000:
            continue
        if any(row[c] for _, c in MIX_SOURCES):
            total = sum(shares_of(row).values())
            assert abs(total - 100) <= MIX_TOLERANCE_PCT, (row["iso_code"], row["year"])
            checked += 1
    assert checked > 4000


def test_mix_without_a_bioenergy_split_uses_the_combined_share(shipped):
    row = next(r for r in shipped.rows(OWID) if r["iso_code"] == "MTQ" and r["year"] == "2010")
    assert row["biofuel_share_elec"] == row["other_renewables_share_elec_exc_biofuel"] == ""
    mix = generation_mix("MTQ", 2010)
    assert dict(mix.shares_pct) == shares_of(row)
    assert abs(mix.total_pct - 100) <= MIX_TOLERANCE_PCT and mix.flags == ()


def test_zone_mix_is_its_countrys_and_says_so(shipped):
    mix = generation_mix("SE-SE3")
    assert (mix.country_iso3, mix.zone) == ("SWE", "SE-SE3")
    assert dict(mix.shares_pct) == owid_shares(shipped, "SWE", shipped.final_year())
    assert codes(mix.flags) == ["mix-country-of-zone"]
    assert generation_mix("FR").flags == ()  # a country-wide zone is the country


def test_mix_preliminary_only_on_request(shipped):
    prelim = max(shipped.preliminary(OWID))
    mix = generation_mix("FR", prelim)
    assert (mix.year, mix.preliminary) == (prelim, True)
    assert dict(mix.shares_pct) == owid_shares(shipped, "FRA", prelim)
    assert codes(mix.flags) == ["mix-preliminary"]


def test_mix_missing_year_falls_back_to_the_latest_earlier_year(shipped):
    final = shipped.final_year()
    years: dict[str, set[int]] = {}
    for r in shipped.rows(OWID):
        if r["entity_type"] == "country" and r["iso_code"] and r["coal_share_elec"]:
            years.setdefault(r["iso_code"], set()).add(int(r["year"]))
    iso3 = next(k for k, v in sorted(years.items()) if final - 1 in v and final not in v
                and k != "OWID_KOS")
    mix = generation_mix(iso3)
    assert mix.year == final - 1
    assert codes(mix.flags) == ["mix-year-fallback"]


def test_mix_before_2000_is_flagged_incomplete(shipped):
    mix = generation_mix("ARG", 1995)
    row = next(r for r in shipped.rows(OWID) if r["iso_code"] == "ARG" and r["year"] == "1995")
    assert row["biofuel_share_elec"] == ""
    assert dict(mix.shares_pct)["other renewables incl. bioenergy"] == float(
        row["other_renewables_share_elec"])
    assert abs(mix.total_pct - 100) > MIX_TOLERANCE_PCT
    assert codes(mix.flags) == ["mix-incomplete"]


def test_world_mix(shipped):
    mix = generation_mix("World")
    assert (mix.country_iso3, mix.year) == ("OWID_WRL", shipped.final_year())
    assert abs(mix.total_pct - 100) <= MIX_TOLERANCE_PCT


def test_mix_errors():
    with pytest.raises(ConfigError, match="'Frnace'.*Did you mean 'FR'"):
        generation_mix("Frnace")
    with pytest.raises(ConfigError, match="several grid zones"):
        generation_mix("US-CA")
    with pytest.raises(ConfigError, match="no generation mix for France in 1980"):
        generation_mix("FR", 1980)


# -- through a run and re-accounting -----------------------------------------------------------


@pytest.mark.parametrize("zone", ["US-CAL-CISO", "CA-ON", "AU-NSW", "SE-SE3"])
def test_a_run_in_a_zone_uses_the_zones_factor(zone: str) -> None:
    import csv
    from importlib import resources

    from carbonmonitor import FakeBackend, ManualClock, Tracker

    with resources.files("carbonmonitor.data").joinpath(
            "subnational/electricitymaps_yearly_2021_2025.csv").open(encoding="utf-8") as fh:
        factor = next(float(r["carbon_intensity_lifecycle_gco2e_per_kwh"])
                      for r in csv.DictReader(fh) if r["zone"] == zone and r["year"] == "2024")
    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"cpu": 100.0})], clock=clock, sampling="manual",
                      quiet=True, db="off", zone=zone.lower(), attribution="machine")
    tracker.start()
    clock.advance(36)
    result = tracker.stop()
    assert result.intensity.g_per_kwh == factor and result.intensity.year == 2024
    assert result.location.zone == zone
    assert result.co2e_g == pytest.approx(0.001 * factor)
    assert result.location.describe().startswith(f"grid zone {zone}")


def test_a_subdivision_served_mostly_by_one_zone_is_flagged_on_the_run() -> None:
    from carbonmonitor import Tracker

    result = Tracker(backend="fake", sampling="manual", quiet=True, db="off",
                     zone="US-VA").start().stop()
    assert result.location.zone == "US-MIDA-PJM"
    assert "zone-subdivision-main" in {f.code for f in result.flags}


def test_a_zone_that_names_several_grids_is_refused_with_the_choices() -> None:
    from carbonmonitor import Tracker

    with pytest.raises(ConfigError, match="US-CAL-CISO"):
        Tracker(backend="fake", quiet=True, db="off", zone="US-CA")


def test_a_run_is_re_accounted_for_a_zone_on_the_direct_basis() -> None:
    import carbonmonitor
    from carbonmonitor import FakeBackend, ManualClock, Tracker

    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"cpu": 100.0})], clock=clock, sampling="manual",
                      quiet=True, db="off", country="SE")
    tracker.start()
    clock.advance(36)
    moved = carbonmonitor.reaccount(tracker.stop(), zone="SE-SE3", basis="operational")
    assert (moved.location.zone, moved.intensity.basis) == ("SE-SE3", "operational")
    assert moved.intensity.g_per_kwh == carbonmonitor.carbon.zones.intensity_for_zone(
        "SE-SE3", basis="operational").g_per_kwh
