"""Emissions of a run: energy x PUE x grid intensity, with the energy interval carried through."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carbonmonitor.facts import JOULES_PER_KWH, Intensity, Pue

if TYPE_CHECKING:
    from carbonmonitor.records import Emissions, Uncertainty

__all__ = ["account"]


def account(
    energy_j: float, energy_uncertainty: Uncertainty, pue: Pue, intensity: Intensity,
    market_factor: float | None = None,
) -> Emissions:
    """CO2e in grams of ``energy_j`` drawn at ``pue`` from a grid of ``intensity``.

    The interval is the energy interval scaled by the same factors; the factor's own
    uncertainty is not yet included (the rule says so). ``market_factor`` (g/kWh, a contract's)
    adds the market-based figure beside the location-based one.

    Example:
        >>> from carbonmonitor.records import Intensity, Pue, Uncertainty
        >>> grid = Intensity(400.0, "DEU", "Germany", 2024, "lifecycle", "s", "t", "l")
        >>> pue = Pue(1.5, "user-constant", "given by user")
        >>> account(3.6e6, Uncertainty(3.0e6, 4.0e6, "counter"), pue, grid).co2e_g
        600.0
    """
    from carbonmonitor.records import Emissions, Uncertainty  # results: built at the first write

    energy_kwh = energy_j / JOULES_PER_KWH
    grams_per_joule = pue.value * intensity.g_per_kwh / JOULES_PER_KWH
    scaled = energy_uncertainty.scaled(grams_per_joule)
    return Emissions(
        co2e_g=energy_kwh * pue.value * intensity.g_per_kwh,
        uncertainty=Uncertainty(
            scaled.low,
            scaled.high,
            f"energy({energy_uncertainty.rule})xPUExfactor; factor uncertainty not yet included",
        ),
        energy_kwh=energy_kwh,
        pue=pue.value,
        intensity_g_per_kwh=intensity.g_per_kwh,
        basis=intensity.basis,
        market_co2e_g=None if market_factor is None else energy_kwh * pue.value * market_factor,
        market_factor_g_per_kwh=market_factor,
    )
