"""The emission factor's own interval: how far the hours a run drew its energy in may lie from
the yearly average (carbonmonitor.carbon.spread, docs/uncertainty.md "CO2e").

Expected envelopes are recomputed here from the shipped CSV rows, read by this test, with the
rule written out step by step.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import carbonmonitor
from carbonmonitor import ManualClock, Tracker
from carbonmonitor.carbon import account
from carbonmonitor.carbon.spread import CAPACITY_FACTORS, factor_envelope
from carbonmonitor.facts import Intensity, Pue
from carbonmonitor.records import Uncertainty

DATA = Path(carbonmonitor.__file__).parent / "data" / "grid"


def owid_row(iso3: str, year: int) -> dict[str, str]:
    with open(DATA / "owid_electricity_by_country_year.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["iso_code"] == iso3 and row["year"] == str(year):
                return row
    raise AssertionError(f"no OWID row for {iso3} {year}")


def factors() -> dict[str, float]:
    with open(DATA / "lifecycle_emission_factors.csv", newline="") as f:
        return {r["source"]: float(r["gco2e_per_kwh"]) for r in csv.DictReader(f)}


def by_hand(iso3: str, year: int) -> tuple[float, float]:
    """The documented rule, step by step, from the CSV rows."""
    row, f = owid_row(iso3, year), factors()
    pct = {name: float(row[f"{col}_share_elec"] or 0) for name, col in (
        ("coal", "coal"), ("gas", "gas"), ("oil", "oil"), ("nuclear", "nuclear"),
        ("hydro", "hydro"), ("solar", "solar"), ("wind", "wind"), ("biomass", "biofuel"),
        ("other_renewables", "other_renewables"))}
    pct["other_renewables"] = float(row["other_renewables_share_elec_exc_biofuel"] or 0)
    total = sum(pct.values())
    share = {k: v / total for k, v in pct.items()}
    average = sum(share[k] * f[k] for k in share)
    fossil = share["coal"] + share["gas"] + share["oil"]
    variable = share["solar"] + share["wind"]
    fossil_factor = (share["coal"] * f["coal"] + share["gas"] * f["gas"]
                     + share["oil"] * f["oil"]) / fossil
    variable_factor = (share["solar"] * f["solar"] + share["wind"] * f["wind"]) / variable
    gap = fossil_factor - variable_factor
    high = average + variable * gap  # no sun, no wind: fossil makes their share
    peak = max(share["solar"] / CAPACITY_FACTORS["solar"] - share["solar"],
               share["wind"] / CAPACITY_FACTORS["wind"] - share["wind"])
    low = average - min(peak, fossil) * gap  # one of them at nameplate, displacing fossil
    return low / average, high / average


@pytest.mark.parametrize("iso3", ["DEU", "FRA", "POL", "IND", "BRA"])
def test_envelope_is_the_documented_rule_on_the_shipped_mix(iso3: str) -> None:
    low, high = by_hand(iso3, 2024)
    env = factor_envelope(iso3, 2024)
    assert env.low_ratio == pytest.approx(low, rel=1e-9)
    assert env.high_ratio == pytest.approx(high, rel=1e-9)
    assert env.low_ratio < 1.0 < env.high_ratio
    assert env.rule == "factor-envelope-v1"
    assert "2024 generation mix" in env.basis


def test_germany_2024_worked_example() -> None:
    """Germany 2024: solar 15 %, wind 29 %, fossil 41 % of generation. With no sun or wind the
    fossil fleet (about 690 g/kWh) makes their 43 %: about 1.9x the average hour; with the sun
    at nameplate all fossil is displaced: about 0.14x."""
    env = factor_envelope("Germany", 2024)
    assert env.high_ratio == pytest.approx(1.90, abs=0.01)
    assert env.low_ratio == pytest.approx(0.14, abs=0.01)


def test_a_grid_without_sun_or_wind_gets_no_spread_and_says_why() -> None:
    with open(DATA / "owid_electricity_by_country_year.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["year"] == "2024"
                and r["entity_type"] == "country" and r["iso_code"]
                and float(r["solar_share_elec"] or 0) == 0
                and float(r["wind_share_elec"] or 0) == 0
                and float(r["electricity_generation"] or 0) > 0]
    assert rows, "the shipped table has countries with neither solar nor wind"
    env = factor_envelope(rows[0]["iso_code"], 2024)
    assert (env.low_ratio, env.high_ratio) == (1.0, 1.0)
    assert "no solar or wind" in env.basis and "not bounded" in env.basis


def test_a_zone_uses_its_countrys_mix_and_says_so() -> None:
    env, usa = factor_envelope("US-CAL-CISO", 2024), factor_envelope("USA", 2024)
    assert (env.low_ratio, env.high_ratio) == (usa.low_ratio, usa.high_ratio)
    assert "grid zone US-CAL-CISO" in env.basis


def test_account_combines_energy_and_factor_intervals() -> None:
    grid = Intensity(400.0, "DEU", "Germany", 2024, "lifecycle", "s", "t", "l")
    env = factor_envelope("DEU", 2024)
    got = account(3.6e6, Uncertainty(3.0e6, 4.0e6, "c"), Pue(1.5, "user-constant", "u"), grid,
                  envelope=env)
    assert got.co2e_g == pytest.approx(600.0)
    # low energy at the low factor .. high energy at the high factor
    assert got.uncertainty.low == pytest.approx(3.0e6 / 3.6e6 * 1.5 * 400.0 * env.low_ratio)
    assert got.uncertainty.high == pytest.approx(4.0e6 / 3.6e6 * 1.5 * 400.0 * env.high_ratio)
    assert got.uncertainty.rule == "energy(c)xPUExfactor(factor-envelope-v1)"
    assert got.factor_spread is not None
    assert got.factor_spread.low_g_per_kwh == pytest.approx(400.0 * env.low_ratio)
    assert got.factor_spread.high_g_per_kwh == pytest.approx(400.0 * env.high_ratio)


def test_a_run_carries_the_spread_into_its_co2e_interval_and_summary() -> None:
    clock = ManualClock()
    tracker = Tracker(backend="fake", clock=clock, sampling="manual", quiet=True, db="off",
                      country="PL", attribution="machine")
    tracker.start()
    clock.advance(60)
    result = tracker.stop()
    env = factor_envelope("POL", result.intensity.year)
    gpj = result.pue.value * result.intensity.g_per_kwh / 3.6e6
    assert result.emissions.uncertainty.low == pytest.approx(
        result.energy_uncertainty.low * gpj * env.low_ratio)
    assert result.emissions.uncertainty.high == pytest.approx(
        result.energy_uncertainty.high * gpj * env.high_ratio)
    text = carbonmonitor.format_summary(result)
    assert "in any hour, around the yearly" in text and "factor-envelope-v1" in text
    moved = carbonmonitor.reaccount(result, country="FR")
    fr = factor_envelope("FRA", moved.intensity.year)
    assert moved.emissions.uncertainty.high == pytest.approx(
        result.energy_uncertainty.high * moved.pue.value * moved.intensity.g_per_kwh / 3.6e6
        * fr.high_ratio)


def test_an_unknown_place_spans_every_countrys_factor() -> None:
    """No location: the hourly spread is not the question, the place is; the interval runs
    from the cleanest to the dirtiest country's yearly factor, read here from the CSV."""
    clock = ManualClock()
    tracker = Tracker(backend="fake", clock=clock, sampling="manual", quiet=True, db="off",
                      attribution="machine")
    tracker.start()
    clock.advance(60)
    result = tracker.stop()
    year = result.intensity.year
    with open(DATA / "owid_electricity_by_country_year.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["year"] == str(year)
                and r["carbon_intensity_elec"]]
    countries = [float(r["carbon_intensity_elec"]) for r in rows
                 if r["entity_type"] == "country" and r["iso_code"]]
    world = next(float(r["carbon_intensity_elec"]) for r in rows if r["iso_code"] == "OWID_WRL")
    spread = result.emissions.factor_spread
    assert spread is not None and "location unknown" in spread.basis
    assert spread.low_g_per_kwh == pytest.approx(min(countries) * result.intensity.g_per_kwh
                                                 / world)
    assert spread.high_g_per_kwh == pytest.approx(max(countries) * result.intensity.g_per_kwh
                                                  / world)
