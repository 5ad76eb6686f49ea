from __future__ import annotations

import pytest

from carbonmonitor.carbon import default_data_year, intensity_for, resolve_location
from carbonmonitor.errors import ConfigError
from carbonmonitor.records import Location

OWID = "grid/owid_electricity_by_country_year.csv"
EM = "subnational/electricitymaps_yearly_2021_2025.csv"
GCP = "cloud/gcp_region_carbon_info_2019_2024.csv"


def where(country=None, provider=None, region=None) -> Location:
    return resolve_location(country=country, cloud_provider=provider, cloud_region=region)


def codes(flags) -> list[str]:
    return [f.code for f in flags]


def test_default_year_is_latest_final_owid_year(shipped):
    assert default_data_year() == shipped.final_year() == 2024


@pytest.mark.parametrize(
    ("text", "iso3"),
    [("DE", "DEU"), ("France", "FRA"), ("USA", "USA"), ("356", "IND"), ("Namibia", "NAM"),
     ("NA", "NAM"), ("Kosovo", "OWID_KOS")],
)
def test_country_factor_is_owid_value(shipped, text, iso3):
    year = shipped.final_year()
    got = intensity_for(where(country=text))
    assert got.g_per_kwh == shipped.owid(iso3, year)
    assert (got.zone, got.year, got.basis, got.table) == (iso3, year, "lifecycle", OWID)
    assert (got.licence, got.preliminary, got.flags) == ("CC BY 4.0", False, ())
    assert got.source == "Our World in Data based on Ember and Energy Institute"


def test_gcp_region_uses_googles_figure_and_basis(shipped):
    year = shipped.final_year()
    got = intensity_for(where(region="europe-west1"))
    assert got.g_per_kwh == shipped.gcp("europe-west1", year)
    assert got.basis == shipped.gcp_basis("europe-west1", year) == "operational"
    assert (got.table, got.licence, got.flags) == (GCP, "Apache-2.0", ())


def test_gcp_basis_follows_the_year(shipped):
    got = intensity_for(where(provider="gcp", region="europe-west1"), data_year=2019)
    assert got.g_per_kwh == shipped.gcp("europe-west1", 2019)
    assert got.basis == shipped.gcp_basis("europe-west1", 2019) == "lifecycle"


@pytest.mark.parametrize(("provider", "region"), [("aws", "us-east-1"), ("azure", "westeurope")])
def test_aws_azure_region_uses_electricity_maps_zone(shipped, provider, region):
    zone = shipped.region(provider, region)["em_zone"]
    year = shipped.final_year()
    got = intensity_for(where(provider=provider, region=region))
    assert got.g_per_kwh == shipped.em(zone, year)
    assert (got.zone, got.basis, got.table, got.licence, got.source) == (
        zone, "lifecycle", EM, "ODbL 1.0", "Electricity Maps")
    assert got.flags == ()


def test_region_without_zone_falls_back_to_country(shipped):
    # every shipped region has a zone now; a region listed without one resolves to this
    region = Location("given", "USA", "United States", "azure", "westus2", None)
    got = intensity_for(region)
    assert got.g_per_kwh == shipped.owid("USA", shipped.final_year())
    assert got.zone == "USA"
    assert codes(got.flags) == ["intensity-country-fallback"]


def test_region_before_zone_data_falls_back_to_country(shipped):
    got = intensity_for(where(provider="aws", region="us-east-1"), data_year=2020)
    assert shipped.em("US-MIDA-PJM", 2020) is None
    assert got.g_per_kwh == shipped.owid("USA", 2020)
    assert codes(got.flags) == ["intensity-country-fallback"]


def test_gcp_region_missing_year_uses_earlier_year(shipped):
    got = intensity_for(where(region="europe-west1"), data_year=2025)
    assert shipped.gcp("europe-west1", 2025) is None
    assert (got.year, got.g_per_kwh) == (2024, shipped.gcp("europe-west1", 2024))
    assert codes(got.flags) == ["intensity-year-fallback"]


def test_gcp_region_without_any_earlier_year_falls_back_to_country(shipped):
    rows = shipped.rows(GCP)
    first = min(int(r["year"]) for r in rows)
    region = next(r["region"] for r in rows if all(
        int(s["year"]) > first for s in rows if s["region"] == r["region"]))
    location = where(provider="gcp", region=region)
    got = intensity_for(location, data_year=first)
    assert got.g_per_kwh == shipped.owid(location.country_iso3, first)
    assert "intensity-country-fallback" in codes(got.flags)


def test_missing_year_falls_back_to_latest_earlier_year(shipped):
    final = shipped.final_year()
    iso = {r["alpha3"] for r in shipped.rows("grid/iso3166_countries.csv")}
    iso3 = next(r["iso_code"] for r in shipped.rows(OWID)
                if r["iso_code"] in iso and int(r["year"]) == final - 1
                and r["carbon_intensity_elec"] and shipped.owid(r["iso_code"], final) is None)
    got = intensity_for(where(country=iso3))
    assert (got.year, got.g_per_kwh) == (final - 1, shipped.owid(iso3, final - 1))
    assert codes(got.flags) == ["intensity-year-fallback"]
    assert not got.preliminary


def test_preliminary_year_only_on_request(shipped):
    prelim = max(shipped.preliminary(OWID))
    assert intensity_for(where(country="DE")).year == shipped.final_year()
    got = intensity_for(where(country="DE"), data_year=prelim)
    assert (got.year, got.g_per_kwh) == (prelim, shipped.owid("DEU", prelim))
    assert got.preliminary
    assert codes(got.flags) == ["intensity-preliminary"]


def test_preliminary_request_without_value_uses_final_year(shipped):
    prelim = max(shipped.preliminary(OWID))
    iso = {r["alpha3"] for r in shipped.rows("grid/iso3166_countries.csv")}
    iso3 = next(r["iso_code"] for r in shipped.rows(OWID)
                if r["iso_code"] in iso and int(r["year"]) == prelim - 1
                and r["carbon_intensity_elec"] and shipped.owid(r["iso_code"], prelim) is None)
    got = intensity_for(where(country=iso3), data_year=prelim)
    assert (got.year, got.preliminary) == (prelim - 1, False)
    assert codes(got.flags) == ["intensity-year-fallback"]


def test_preliminary_zone_value_on_request(shipped):
    prelim = max(shipped.preliminary(EM))
    got = intensity_for(where(provider="aws", region="us-east-1"), data_year=prelim)
    assert (got.g_per_kwh, got.preliminary) == (shipped.em("US-MIDA-PJM", prelim), True)


def test_unknown_location_uses_world_and_flags_it(shipped):
    got = intensity_for(Location("unknown"))
    assert got.g_per_kwh == shipped.owid("OWID_WRL", shipped.final_year())
    assert (got.zone, got.zone_name) == ("OWID_WRL", "World")
    (flag,) = got.flags
    assert flag.code == "location-unknown"
    assert flag.message == "no location given: world average used"
    assert "country=" in flag.fix and "never guesses" in flag.fix


def test_data_year_outside_range_lists_range(shipped):
    # the World row bounds the range: a year without a world figure has no fallback
    years = [int(r["year"]) for r in shipped.rows(OWID)
             if r["carbon_intensity_elec"] and r["iso_code"] == "OWID_WRL"]
    with pytest.raises(ConfigError, match=f"{min(years)}-{max(years)}"):
        intensity_for(where(country="DE"), data_year=min(years) - 1)
    assert intensity_for(where(country="DE"), data_year=min(years)).year == min(years)
    with pytest.raises(ConfigError, match="data_year 2100"):
        intensity_for(where(country="DE"), data_year=2100)


def test_location_from_region(shipped):
    row = shipped.region("aws", "us-east-1")
    loc = where(provider="aws", region="us-east-1")
    assert loc == Location("given", row["country_iso3"], "United States", "aws", "us-east-1",
                           row["em_zone"])


def test_location_from_country_only_and_nothing():
    assert where(country="FR") == Location("given", "FRA", "France")
    assert where() == Location("unknown")
    assert where(provider="aws") == Location("unknown")


def test_country_consistent_with_region_is_fine():
    assert where(country="US", provider="aws", region="us-east-1").cloud_region == "us-east-1"


def test_country_contradicting_region_names_both():
    with pytest.raises(ConfigError) as err:
        where(country="FR", provider="aws", region="us-east-1")
    assert "'FR'" in str(err.value) and "us-east-1" in str(err.value)
    assert "United States" in str(err.value)


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="'Frnace'.*'France'"):
        where(country="Frnace")
    with pytest.raises(ConfigError, match="'gpc'.*'gcp'"):
        where(provider="gpc")
