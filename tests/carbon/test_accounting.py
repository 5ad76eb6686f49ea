from __future__ import annotations

import pytest

from carbonmonitor.carbon import account, intensity_for, resolve_location, resolve_pue
from carbonmonitor.records import Intensity, Pue, Uncertainty

ENERGY_J = 12_345_678.9


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize(
    ("country", "provider", "region", "expected"),
    [
        ("DE", None, None, lambda s, y: s.owid("DEU", y)),
        ("France", None, None, lambda s, y: s.owid("FRA", y)),
        ("USA", None, None, lambda s, y: s.owid("USA", y)),
        ("356", None, None, lambda s, y: s.owid("IND", y)),
        ("NA", None, None, lambda s, y: s.owid("NAM", y)),
        ("XK", None, None, lambda s, y: s.owid("OWID_KOS", y)),
        (None, "gcp", "europe-west1", lambda s, y: s.gcp("europe-west1", y)),
        (None, "aws", "us-east-1", lambda s, y: s.em(s.region("aws", "us-east-1")["em_zone"], y)),
        (None, "azure", "westeurope",
         lambda s, y: s.em(s.region("azure", "westeurope")["em_zone"], y)),
        (None, "azure", "westus2", lambda s, y: s.em(s.region("azure", "westus2")["em_zone"], y)),
    ],
)
def test_emissions_are_energy_times_pue_times_factor(shipped, country, provider, region, expected):
    year = shipped.final_year()
    factor = expected(shipped, year)
    assert factor is not None
    location = resolve_location(country=country, cloud_provider=provider, cloud_region=region)
    pue = resolve_pue(None, provider)
    intensity = intensity_for(location)
    assert intensity.g_per_kwh == factor
    energy_u = Uncertainty(ENERGY_J * 0.9, ENERGY_J * 1.1, "counter")
    got = account(ENERGY_J, energy_u, pue, intensity)
    want = ENERGY_J / 3.6e6 * pue.value * factor
    assert rel(got.co2e_g, want) < 1e-12
    assert rel(got.uncertainty.low, want * 0.9) < 1e-12
    assert rel(got.uncertainty.high, want * 1.1) < 1e-12
    assert got.uncertainty.contains(got.co2e_g)
    assert (got.pue, got.intensity_g_per_kwh, got.basis) == (pue.value, factor, intensity.basis)
    assert rel(got.energy_kwh, ENERGY_J / 3.6e6) < 1e-12


def test_one_kwh_at_pue_and_factor():
    grid = Intensity(400.0, "DEU", "Germany", 2024, "lifecycle", "s", "t", "l")
    pue = Pue(1.5, "user-constant", "u")
    got = account(3.6e6, Uncertainty(3.0e6, 4.0e6, "model-tdp-v1"), pue, grid)
    assert got.co2e_g == pytest.approx(600.0, rel=1e-12)
    assert got.co2e_kg == pytest.approx(0.6, rel=1e-12)
    assert got.uncertainty.low == pytest.approx(500.0, rel=1e-12)
    assert got.uncertainty.high == pytest.approx(666.6666666666666, rel=1e-12)
    assert got.uncertainty.rule.startswith("energy(model-tdp-v1)xPUExfactor")
    assert "factor spread unknown" in got.uncertainty.rule  # no envelope given


def test_zero_energy_is_zero_emissions():
    grid = Intensity(400.0, "DEU", "Germany", 2024, "lifecycle", "s", "t", "l")
    got = account(0.0, Uncertainty(0.0, 0.0, "counter"), Pue(1.0, "local-default", "l"), grid)
    assert (got.co2e_g, got.uncertainty.low, got.uncertainty.high) == (0.0, 0.0, 0.0)
