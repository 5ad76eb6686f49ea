"""Re-accounting a run for another place, year, PUE or contract, without re-measuring: the
factor used is the shipped table's (read here with the csv module) and CO2e = energy x PUE x
factor, in Python and through ``carbonmonitor show RUN --...``."""

from __future__ import annotations

from pathlib import Path

import pytest

import carbonmonitor
from carbonmonitor import FakeBackend, ManualClock, Tracker

KWH = 3.6e6


def measured(tmp_path: Path, **where: object) -> carbonmonitor.RunResult:
    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"cpu": 200.0, "memory": 20.0})], clock=clock,
                      sampling="manual", quiet=True, db=tmp_path / "runs.db",
                      attribution="machine", **where)
    tracker.start()
    clock.advance(3600)
    return tracker.stop()


def test_a_run_moved_to_another_country_uses_that_countrys_factor(shipped, tmp_path):
    run = measured(tmp_path, country="FR")
    moved = carbonmonitor.reaccount(run, country="Poland")
    year = shipped.final_year()
    assert moved.intensity.g_per_kwh == shipped.owid("POL", year)
    assert (moved.intensity.zone, moved.intensity.year) == ("POL", year)
    assert moved.energy == run.energy  # the measurement is untouched
    assert moved.co2e_g == pytest.approx(run.energy_j / KWH * 1.0 * shipped.owid("POL", year))
    assert moved.location.describe() == "Poland (POL)"
    note = {f.code: f for f in moved.flags}["reaccounted"]
    assert "Poland" in note.message and "France" in note.message


def test_a_run_moved_to_a_cloud_region_takes_its_factor_and_fleet_pue(shipped, tmp_path):
    run = measured(tmp_path, country="DE")
    moved = carbonmonitor.reaccount(run, cloud_region="europe-west1", cloud_provider="gcp")
    year = shipped.final_year()
    assert moved.intensity.g_per_kwh == shipped.gcp("europe-west1", year)
    assert moved.pue.kind == "provider-fleet"
    assert moved.co2e_g == pytest.approx(
        run.energy_j / KWH * moved.pue.value * shipped.gcp("europe-west1", year))
    assert "pue-local-default" not in {f.code for f in moved.flags}


def test_another_year_pue_and_a_market_factor(shipped, tmp_path):
    run = measured(tmp_path, country="DE")
    moved = carbonmonitor.reaccount(run, data_year=2022, pue=1.3, market_factor=25)
    assert moved.intensity.year == 2022
    assert moved.intensity.g_per_kwh == shipped.owid("DEU", 2022)
    kwh = run.energy_j / KWH
    assert moved.co2e_g == pytest.approx(kwh * 1.3 * shipped.owid("DEU", 2022))
    assert moved.emissions.market_co2e_g == pytest.approx(kwh * 1.3 * 25)
    assert moved.emissions.market_factor_g_per_kwh == 25


def test_a_market_factor_given_at_run_time_is_kept(tmp_path):
    run = measured(tmp_path, country="DE", market_factor=0)
    assert run.emissions.market_co2e_g == 0.0
    moved = carbonmonitor.reaccount(run, country="FR")
    assert moved.emissions.market_co2e_g == 0.0 and moved.emissions.market_factor_g_per_kwh == 0


def test_bad_places_are_config_errors_with_suggestions(tmp_path):
    run = measured(tmp_path, country="DE")
    with pytest.raises(carbonmonitor.ConfigError, match="Poland"):
        carbonmonitor.reaccount(run, country="Polend")
    with pytest.raises(carbonmonitor.ConfigError, match="europe-west1"):
        carbonmonitor.reaccount(run, cloud_provider="gcp", cloud_region="europe-wst1")


def test_show_re_accounts_without_changing_the_stored_run(shipped, tmp_path):
    from cli.cli_helpers import run_cli

    run = measured(tmp_path, country="FR")
    db = str(tmp_path / "runs.db")
    done = run_cli(["show", run.identity.run_id, "--db", db, "--country", "PL", "--pue", "1.2"])
    assert done.returncode == 0, done.stderr
    factor = shipped.owid("POL", shipped.final_year())
    assert f"x PUE 1.2 x {factor:g} g/kWh" in done.stdout
    assert "reaccounted: re-accounted for Poland (POL)" in done.stdout
    again = carbonmonitor.load(run.identity.run_id, db=db)
    assert again.location.country_iso3 == "FRA" and again.co2e_g == run.co2e_g
    bad = run_cli(["show", run.identity.run_id, "--db", db, "--country", "Polend"])
    assert bad.returncode == 2 and "Poland" in bad.stderr and bad.stderr.count("\n") == 1


def test_a_run_from_an_earlier_year_uses_that_years_factors(shipped, tmp_path):
    """The year rule: a run in 2022 (final data exists) gets 2022's factor; a run in the
    current year gets the latest final year's."""
    from datetime import datetime, timezone

    clock = ManualClock(start_wall=datetime(2022, 7, 1, tzinfo=timezone.utc).timestamp())
    tracker = Tracker(backend=[FakeBackend({"cpu": 100.0})], clock=clock, sampling="manual",
                      quiet=True, db="off", country="DE", attribution="machine")
    tracker.start()
    clock.advance(36)
    run = tracker.stop()
    assert run.intensity.year == 2022
    assert run.intensity.g_per_kwh == shipped.owid("DEU", 2022)
    assert carbonmonitor.reaccount(run, country="FR").intensity.year == 2022
    now = measured(tmp_path, country="DE")
    assert now.intensity.year == shipped.final_year()


def test_re_accounting_keeps_what_the_run_itself_set(tmp_path):
    """A PUE, a provider or a year the run was given stay unless the call changes them."""
    run = measured(tmp_path, country="DE", pue=1.4)
    assert carbonmonitor.reaccount(run, data_year=2023).pue.value == 1.4
    aws = measured(tmp_path, country="DE", cloud_provider="aws")
    assert aws.pue.kind == "provider-fleet"
    again = carbonmonitor.reaccount(aws, market_factor=10)
    assert again.pue == aws.pue and again.intensity == aws.intensity
    old = measured(tmp_path, country="DE", data_year=2022)
    assert carbonmonitor.reaccount(old, market_factor=10).intensity.year == 2022


def test_re_accounting_on_the_direct_basis_from_the_command_line(tmp_path):
    from cli.cli_helpers import run_cli

    run = measured(tmp_path, zone="SE-SE3")
    done = run_cli(["show", run.identity.run_id, "--db", str(tmp_path / "runs.db"),
                    "--intensity-basis", "direct"])
    assert done.returncode == 0, done.stderr
    assert "operational" in done.stdout and "SE-SE3" in done.stdout
