"""Emissions of a run: energy x PUE x grid intensity, with the energy and factor intervals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from carbonmonitor.facts import JOULES_PER_KWH, Intensity, Pue

if TYPE_CHECKING:
    from carbonmonitor.carbon.spread import Envelope
    from carbonmonitor.records import Emissions, Uncertainty

__all__ = ["account"]


def account(
    energy_j: float, energy_uncertainty: Uncertainty, pue: Pue, intensity: Intensity,
    market_factor: float | None = None, envelope: Envelope | None = None,
) -> Emissions:
    """CO2e in grams of ``energy_j`` drawn at ``pue`` from a grid of ``intensity``.

    The interval combines the energy interval with the factor's ``envelope`` (how far the hours
    the run drew its energy in may lie from the yearly average; :mod:`carbonmonitor.carbon.spread`):
    low energy at the low factor .. high energy at the high factor. Without an envelope the
    interval is the energy's alone, and its rule says so. ``market_factor`` (g/kWh, a
    contract's) adds the market-based figure beside the location-based one.

    Example:
        >>> from carbonmonitor.records import Intensity, Pue, Uncertainty
        >>> grid = Intensity(400.0, "DEU", "Germany", 2024, "lifecycle", "s", "t", "l")
        >>> pue = Pue(1.5, "user-constant", "given by user")
        >>> account(3.6e6, Uncertainty(3.0e6, 4.0e6, "counter"), pue, grid).co2e_g
        600.0
    """
    from carbonmonitor.records import Emissions, FactorSpread, Uncertainty

    energy_kwh = energy_j / JOULES_PER_KWH
    grams_per_joule = pue.value * intensity.g_per_kwh / JOULES_PER_KWH
    scaled = energy_uncertainty.scaled(grams_per_joule)
    spread = None
    if envelope is None:
        low, high = scaled.low, scaled.high
        rule = f"energy({energy_uncertainty.rule})xPUExfactor; factor spread unknown"
    else:
        low, high = scaled.low * envelope.low_ratio, scaled.high * envelope.high_ratio
        rule = f"energy({energy_uncertainty.rule})xPUExfactor({envelope.rule})"
        spread = FactorSpread(*envelope.bounds(intensity.g_per_kwh), envelope.rule,
                              envelope.basis)
    return Emissions(
        co2e_g=energy_kwh * pue.value * intensity.g_per_kwh,
        uncertainty=Uncertainty(low, high, rule),
        energy_kwh=energy_kwh,
        pue=pue.value,
        intensity_g_per_kwh=intensity.g_per_kwh,
        basis=intensity.basis,
        market_co2e_g=None if market_factor is None else energy_kwh * pue.value * market_factor,
        market_factor_g_per_kwh=market_factor,
        factor_spread=spread,
    )
