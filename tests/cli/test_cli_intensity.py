"""``carbonmonitor intensity [PLACE] [--mix]``: the handler called on parsed arguments, the
figures checked against the shipped CSVs read here; one end-to-end run of the real CLI."""

from __future__ import annotations

import argparse
import csv
import json
from functools import cache
from importlib import resources

import pytest
from cli_helpers import run_cli

from carbonmonitor.cli import UsageError
from carbonmonitor.cli.intensity import add_parser, intensity_command
from carbonmonitor.errors import ConfigError

EM = "subnational/electricitymaps_yearly_2021_2025.csv"
DIRECT = "subnational/electricitymaps_yearly_2024_direct_and_lifecycle.csv"
OWID = "grid/owid_electricity_by_country_year.csv"
FINAL = 2024  # the latest year of the tables that the manifest does not mark preliminary


@cache
def rows(relpath: str) -> tuple[dict[str, str], ...]:
    with resources.files("carbonmonitor.data").joinpath(relpath).open(
            encoding="utf-8", newline="") as f:
        return tuple(csv.DictReader(f))


def value(relpath: str, key_col: str, key: str, col: str, year: int) -> float:
    return next(float(r[col]) for r in rows(relpath)
                if r[key_col] == key and int(r["year"]) == year and r[col])


def em(zone: str, year: int = FINAL) -> float:
    return value(EM, "zone", zone, "carbon_intensity_lifecycle_gco2e_per_kwh", year)


def direct(zone: str) -> float:
    return value(DIRECT, "zone", zone, "carbon_intensity_direct_gco2e_per_kwh", FINAL)


def owid(iso3: str, year: int = FINAL) -> float:
    return value(OWID, "iso_code", iso3, "carbon_intensity_elec", year)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    parser = argparse.ArgumentParser(prog="carbonmonitor")
    add_parser(parser.add_subparsers(dest="command"))
    assert intensity_command(parser.parse_args(["intensity", *argv])) == 0
    return capsys.readouterr().out


def test_list_json_has_the_table_values(capsys):
    listed = json.loads(run(capsys, "--search", "US-CAL", "--json"))
    assert {f["key"] for f in listed} == {r["zone"] for r in rows(EM)
                                          if r["zone"].startswith("US-CAL")}
    for f in listed:
        assert (f["kind"], f["lifecycle"]["year"], f["lifecycle"]["basis"]) == (
            "zone", FINAL, "lifecycle")
        assert f["lifecycle"]["g_per_kwh"] == em(f["key"])
        assert f["operational"]["g_per_kwh"] == direct(f["key"])
        assert f["lifecycle"]["licence"] == "ODbL 1.0"


def test_list_text_shows_zones_and_countries(capsys):
    out = run(capsys, "--search", "sweden")
    lines = out.splitlines()
    assert lines[0].split() == ["KIND", "ID", "NAME", "COUNTRY", "g/kWh", "YEAR", "DIRECT",
                                "SOURCE"]
    se3 = next(line for line in lines if " SE-SE3 " in line).split()
    assert se3[-6:] == ["SWE", f"{em('SE-SE3'):g}", str(FINAL), f"{direct('SE-SE3'):g}",
                        "Electricity", "Maps"]
    swe = next(line for line in lines if line.startswith("country") and " SWE " in line)
    assert f" {owid('SWE'):g} " in swe and "OWID/Ember" in swe


def test_list_for_a_year_before_direct_data(capsys):
    listed = json.loads(run(capsys, "--search", "CA-ON", "--year", "2022", "--json"))
    (zone,) = [f for f in listed if f["key"] == "CA-ON"]
    assert (zone["lifecycle"]["g_per_kwh"], zone["operational"]) == (em("CA-ON", 2022), None)


def test_zone_json_has_factors_used_and_every_year(capsys):
    shown = json.loads(run(capsys, "ca-on", "--json"))
    assert (shown["kind"], shown["key"], shown["country_iso3"]) == ("zone", "CA-ON", "CAN")
    used = shown["used"]["zone=CA-ON"]
    assert (used["lifecycle"]["g_per_kwh"], used["operational"]["g_per_kwh"]) == (
        em("CA-ON"), direct("CA-ON"))
    series = {s["label"]: s for s in shown["series"]}
    assert {v["year"]: v["g_per_kwh"] for v in series["EM lifecycle"]["values"]} == {
        int(r["year"]): float(r["carbon_intensity_lifecycle_gco2e_per_kwh"])
        for r in rows(EM) if r["zone"] == "CA-ON"}
    assert [v["preliminary"] for v in series["EM lifecycle"]["values"]] == [
        False, False, False, False, True]
    assert series["OWID/Ember"]["key"] == "CAN"


def test_zone_text_names_source_year_and_basis(capsys):
    out = run(capsys, "US-CAL-CISO")
    assert out.startswith("US-CAL-CISO: California ISO, United States (zone)\n")
    assert (f"  lifecycle    {em('US-CAL-CISO'):g} g/kWh  {FINAL}  US-CAL-CISO (CAISO); "
            f"Electricity Maps, ODbL 1.0, {EM}") in out
    assert f"  operational  {direct('US-CAL-CISO'):g} g/kWh  {FINAL}" in out
    assert "By year (g CO2e/kWh):" in out and f"{em('US-CAL-CISO', 2025):g}*" in out


def test_iso_code_alias_and_year(capsys):
    assert run(capsys, "AU-ACT", "--data-year", "2022") == run(capsys, "AU-ACT", "--year", "2022")
    shown = json.loads(run(capsys, "AU-ACT", "--year", "2022", "--json"))
    assert (shown["key"], shown["given_as"]) == ("AU-NSW", "AU-ACT")
    used = shown["used"]["zone=AU-ACT"]
    assert (used["lifecycle"]["g_per_kwh"], used["lifecycle"]["year"]) == (em("AU-NSW", 2022),
                                                                          2022)
    assert "2024 only" in used["operational"]["none"]


def test_country_and_cloud_region(capsys):
    france = json.loads(run(capsys, "France", "--json"))
    assert france["used"]["country=FRA"]["lifecycle"]["g_per_kwh"] == owid("FRA")
    region = json.loads(run(capsys, "us-east-1", "--json"))
    zone = next(r["em_zone"] for r in rows("cloud/cloud_regions.csv")
                if r["provider"] == "aws" and r["region"] == "us-east-1")
    assert region["kind"] == "cloud region"
    assert region["used"]["cloud_region=us-east-1"]["lifecycle"]["g_per_kwh"] == em(zone)


def test_mix(capsys):
    mix = json.loads(run(capsys, "FR", "--mix", "--json"))
    row = next(r for r in rows(OWID) if r["iso_code"] == "FRA" and int(r["year"]) == FINAL)
    assert (mix["country_iso3"], mix["year"]) == ("FRA", FINAL)
    assert dict(mix["shares_pct"])["nuclear"] == float(row["nuclear_share_elec"])
    assert abs(mix["total_pct"] - 100) <= 0.1
    out = run(capsys, "SE-SE3", "--mix")
    assert out.startswith(f"Generation mix of Sweden (SWE), {FINAL}: ")
    assert "  note: the mix of all of Sweden" in out


@pytest.mark.parametrize(("argv", "error", "pattern"), [
    (["Frnace"], ConfigError, r"unknown place 'Frnace'.*Did you mean 'FR' \(France\)\?"),
    (["US-CA"], ConfigError, r"several grid zones: US-CAL-BANC.*US-CAL-CISO"),
    (["--mix"], UsageError, r"--mix needs a PLACE"),
    (["DE", "--search", "x"], UsageError, r"PLACE or --search, not both"),
    (["us-east-1", "--cloud-provider", "gcp"], ConfigError, r"not a grid zone.*gcp cloud region"),
    (["us-east-1", "--cloud-provider", "gpc"], ConfigError, r"'gpc'\. Did you mean 'gcp'\?"),
])
def test_bad_input_says_what_and_how(capsys, argv, error, pattern):
    with pytest.raises(error, match=pattern):
        run(capsys, *argv)


def test_through_the_real_cli():
    # needs `intensity` registered in carbonmonitor/cli/__init__.py
    done = run_cli(["intensity", "SE-SE3"])
    assert done.returncode == 0, done.stderr
    assert f"  lifecycle    {em('SE-SE3'):g} g/kWh  {FINAL}  SE-SE3" in done.stdout
    bad = run_cli(["intensity", "US-CAL-CSIO"])
    assert bad.returncode == 2 and bad.stdout == ""
    assert "Did you mean 'US-CAL-CISO' (California ISO)?" in bad.stderr


def test_a_search_that_finds_nothing_says_how_to_ask_for_a_cloud_region() -> None:
    done = run_cli(["intensity", "--search", "us-west-1"])
    assert done.returncode == 0
    assert "no zone or country matches 'us-west-1'" in done.stderr
    assert "carbonmonitor intensity us-west-1" in done.stderr
    direct = run_cli(["intensity", "us-west-1"])
    assert direct.returncode == 0 and "us-west-1" in direct.stdout
