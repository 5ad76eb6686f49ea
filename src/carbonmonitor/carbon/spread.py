"""How far a grid's hourly intensity can stray from the yearly average a run was accounted with.

A yearly factor is an average over 8,760 hours; the hours a run actually drew its energy in can
be cleaner or dirtier. The envelope here bounds that spread from the grid's generation mix, for
the main cause of hourly variation: variable renewables (solar, wind) coming and going, with fossil
generation filling the gap. See docs/uncertainty.md ("CO2e") for the rule and what it leaves out.

    high hour: solar and wind both at zero (a windless night), their energy made by the grid's
               fossil fleet at its average factor;
    low hour:  one of them at its nameplate peak (average share / capacity factor), the other
               at its average, displacing fossil generation (never more than there is).

The intensities of these two hours, recomputed from the mix with the life-cycle factor of each
source, are divided by the mix's own recomputed average: the ratios scale the run's factor. The
envelope holds for a run of any length (an average of hours inside it is inside it); for runs of
days it is conservative.

Example:
    >>> env = factor_envelope("FRA", 2024)
    >>> env.low_ratio < 1.0 < env.high_ratio
    True
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from carbonmonitor.data import read_columns

if TYPE_CHECKING:
    from carbonmonitor.facts import Intensity, Location

__all__ = ["CAPACITY_FACTORS", "Envelope", "envelope_for", "factor_envelope"]

RULE = "factor-envelope-v1"
# Global weighted-average capacity factors of plants commissioned in 2021: IRENA (2022),
# "Renewable Power Generation Costs in 2021", Table H.1: solar PV 17 %, onshore wind 39 %.
# A peak hour produces at most nameplate capacity, i.e. average output / capacity factor.
CAPACITY_FACTORS = {"solar": 0.17, "wind": 0.39}
FOSSIL = ("coal", "gas", "oil")
VARIABLE = ("solar", "wind")
# OWID mix names -> the life-cycle factor table's sources
_SOURCE_OF = {"bioenergy": "biomass", "other renewables": "other_renewables",
              "other renewables incl. bioenergy": "other_renewables"}
FACTORS_TABLE = "grid/lifecycle_emission_factors.csv"


@dataclass(frozen=True)
class Envelope:
    """Multipliers bounding the hourly factor around the yearly one, and where they came from."""

    low_ratio: float
    high_ratio: float
    rule: str
    basis: str  # what the envelope was computed from, for the output

    def bounds(self, g_per_kwh: float) -> tuple[float, float]:
        return g_per_kwh * self.low_ratio, g_per_kwh * self.high_ratio


@functools.lru_cache(maxsize=1)
def _factors() -> dict[str, float]:
    rows = read_columns(FACTORS_TABLE, ("source", "gco2e_per_kwh"))
    return {r["source"]: float(r["gco2e_per_kwh"]) for r in rows}


@functools.lru_cache(maxsize=64)
def factor_envelope(place: str, year: int | None = None) -> Envelope:
    """The envelope for a country (ISO code or name), a grid zone (its country's mix) or
    ``"World"``, from the generation mix of ``year`` (the intensity's year rule).

    Raises:
        ConfigError: an unknown place, or no mix for it (see ``generation_mix``).
    """
    from carbonmonitor.carbon.zones import generation_mix

    mix = generation_mix(place, year)
    factor = _factors()
    share: dict[str, float] = {}
    for name, pct in mix.shares_pct:
        source = _SOURCE_OF.get(name, name)
        share[source] = share.get(source, 0.0) + max(pct, 0.0) / 100.0
    total = sum(share.values())
    where = f"{mix.name} {mix.year} generation mix (OWID/Ember)"
    if mix.zone:
        where += f", the country's mix for grid zone {mix.zone}"
    if total <= 0:
        return Envelope(1.0, 1.0, RULE, f"{where}: empty, no spread")
    share = {s: v / total for s, v in share.items()}
    average = sum(v * factor.get(s, factor["unknown"]) for s, v in share.items())
    fossil = sum(share.get(s, 0.0) for s in FOSSIL)
    variable = sum(share.get(s, 0.0) for s in VARIABLE)
    if average <= 0 or variable <= 0:
        return Envelope(1.0, 1.0, RULE, f"{where}: no solar or wind, so no spread from them "
                        "(dispatch, demand and imports are not bounded)")
    variable_factor = sum(share.get(s, 0.0) * factor[s] for s in VARIABLE) / variable
    if fossil > 0:
        filler = sum(share.get(s, 0.0) * factor[s] for s in FOSSIL) / fossil
    else:  # no fossil fleet: what is left of the mix fills in
        rest = 1.0 - variable
        filler = (sum(v * factor.get(s, factor["unknown"]) for s, v in share.items()
                      if s not in VARIABLE) / rest) if rest > 0 else variable_factor
    high = average + variable * max(filler - variable_factor, 0.0)
    peaks = [share.get(s, 0.0) / CAPACITY_FACTORS[s] - share.get(s, 0.0) for s in VARIABLE]
    displaced = min(max(peaks), fossil)
    low = average - displaced * max(filler - variable_factor, 0.0)
    return Envelope(max(low, 0.0) / average, high / average, RULE,
                    f"{where}: solar {share.get('solar', 0.0):.0%}, wind "
                    f"{share.get('wind', 0.0):.0%}, fossil {fossil:.0%}")


def envelope_for(location: Location, intensity: Intensity) -> Envelope | None:
    """The envelope for the place a run was accounted for (its country's mix; the world's when
    the place is unknown), at the intensity's year; None when no mix exists for it."""
    from carbonmonitor.errors import CarbonMonitorError

    if location.status == "unknown":
        return unknown_place_envelope(intensity.year)
    place = location.country_iso3 or location.zone or "World"
    try:
        return factor_envelope(place, intensity.year)
    except CarbonMonitorError:
        try:  # a year the mix table lacks: the latest final one
            return factor_envelope(place, None)
        except CarbonMonitorError:
            return None


@functools.lru_cache(maxsize=8)
def unknown_place_envelope(year: int) -> Envelope | None:
    """Where the run was is not known: the factor could be any country's. The envelope spans
    the lowest to the highest country factor of ``year`` in the OWID table, around the world
    average (None when the table has no such year)."""
    from carbonmonitor.carbon.intensity import OWID, WORLD

    rows = read_columns(OWID.path, ("iso_code", "entity_type", "year",
                                     "carbon_intensity_elec"))
    world, countries = None, []
    for r in rows:
        if r["year"] != str(year) or not r["carbon_intensity_elec"]:
            continue
        if r["iso_code"] == WORLD:
            world = float(r["carbon_intensity_elec"])
        elif r["entity_type"] == "country" and r["iso_code"]:
            countries.append(float(r["carbon_intensity_elec"]))
    if not world or not countries:
        return None
    return Envelope(min(countries) / world, max(countries) / world, RULE,
                    f"location unknown: the range of {len(countries)} countries' {year} "
                    "factors (OWID/Ember), around the world average")
