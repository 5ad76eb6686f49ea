"""Re-accounting: a stored run's CO2e for another place, year, PUE or contract, without
re-measuring (DESIGN: accounting is a pure function of stored measurements and data tables).

Example:
    >>> import carbonmonitor
    >>> with carbonmonitor.track(backend="fake", country="FR", quiet=True, db="off") as run:
    ...     pass
    >>> moved = carbonmonitor.reaccount(run.result, country="PL")
    >>> (run.result.intensity.zone, moved.intensity.zone, moved.energy_j == run.result.energy_j)
    ('FRA', 'POL', True)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from carbonmonitor.facts import JOULES_PER_KWH, Flag
from carbonmonitor.records import RunResult, sum_uncertainty

__all__ = ["reaccount"]

# Flags that describe where and how a run was accounted, replaced when it is re-accounted.
_ACCOUNTING_FLAGS = ("location-", "intensity-", "pue-", "zone-", "reaccounted")


def reaccount(run: RunResult | str, *, country: str | None = None,
              cloud_provider: str | None = None, cloud_region: str | None = None,
              zone: str | None = None, pue: Any = None, data_year: int | None = None,
              market_factor: float | None = None, basis: Any = None, db: Any = None
              ) -> RunResult:
    """The run's result accounted as if it had run elsewhere (or in another year, under another
    PUE or contract): the same energy, new location, intensity, PUE and emissions.

    Args:
        run: a result, or a run id (or unique prefix, or ``"last"``) in the store ``db``.
        country, cloud_provider, cloud_region, zone: the new place, with the same meaning and
            checks as the options of the same names. None of them: the run's own place.
        pue, data_year, market_factor: as the options; None keeps the run's PUE source rule
            (the provider's fleet PUE, or 1.0 for a local machine) and the year rule (the
            run's own year where final data exists for it, else the latest final year).
        basis: ``"lifecycle"`` or ``"operational"``; None: the run's own basis.

    Raises:
        ConfigError: an unknown or contradictory place, year or value.
    """
    from carbonmonitor import carbon
    from carbonmonitor.carbon.spread import envelope_for
    from carbonmonitor.options import resolve

    result = run if isinstance(run, RunResult) else _load(run, db)
    given = {"country": country, "cloud_provider": cloud_provider,
             "cloud_region": cloud_region, "zone": zone, "pue": pue, "data_year": data_year,
             "market_factor": market_factor, "intensity_basis": basis}
    opts = resolve({k: v for k, v in given.items() if v is not None}, environ={},
                   where="in reaccount()")
    moved = any(v is not None for v in (country, cloud_provider, cloud_region, zone))
    if moved:
        location, provider = carbon.place(country=opts.country, cloud_provider=opts.cloud_provider,
                                          cloud_region=opts.cloud_region, zone=opts.zone)
    else:  # the run's own place, provider included (a country with cloud_provider=aws)
        location = result.location
        provider = location.cloud_provider or _asked(result, "cloud_provider")
    basis = opts.intensity_basis if basis is not None else _asked(result, "intensity_basis")
    basis = basis or "lifecycle"
    year = opts.data_year if data_year is not None else _asked(result, "data_year")
    if year is None and basis == "lifecycle":  # the run's own year where it has final data
        from carbonmonitor.carbon.intensity import year_for_run

        year = year_for_run(int(result.identity.started_at[:4]))
    pue_given = opts.pue if pue is not None else _asked(result, "pue")
    pue_record = carbon.resolve_pue(pue_given, provider, data_year=year)
    intensity = carbon.intensity_for(location, data_year=year, basis=basis)
    factor = (opts.market_factor if opts.market_factor is not None
              else result.emissions.market_factor_g_per_kwh)
    emissions = carbon.account(result.energy_j, sum_uncertainty(result.energy), pue_record,
                               intensity, market_factor=factor,
                               envelope=envelope_for(location, intensity))
    old, note = result.emissions, ""
    if old.time_resolved and not moved and intensity == result.intensity:
        # same place and factors: keep the hourly account, scaled to the new PUE
        scale = pue_record.value / old.pue
        emissions = dataclasses.replace(
            old, co2e_g=old.co2e_g * scale, uncertainty=old.uncertainty.scaled(scale),
            pue=pue_record.value, market_co2e_g=emissions.market_co2e_g,
            market_factor_g_per_kwh=factor,
            hourly=tuple(dataclasses.replace(b, co2e_g=b.co2e_g * scale) for b in old.hourly))
    elif old.time_resolved:
        note = ("; the hourly factors of the run's own place were not carried over: "
                      "re-accounted with the static tables")
    # a detected or guessed place stays flagged as such while the run is not moved
    dropped = _ACCOUNTING_FLAGS if moved else _ACCOUNTING_FLAGS[1:]
    kept = [f for f in result.flags if not f.code.startswith(dropped)]
    flags = [*kept, *intensity.flags]
    if zone is not None:
        from carbonmonitor.carbon.zones import resolve_zone

        flags.extend(resolve_zone(zone).flags())
    flags.extend(carbon.pue_flags(pue_record))
    flags.append(Flag("reaccounted", f"re-accounted for {location.describe()} "
                      f"({intensity.zone_name} {intensity.year}, PUE {pue_record.value:g}); "
                      f"measured in {result.location.describe()} at "
                      f"{result.intensity.g_per_kwh:g} g/kWh{note}", ""))
    envelope = envelope_for(location, intensity)
    grams_per_joule = pue_record.value * intensity.g_per_kwh / JOULES_PER_KWH
    forecasts = tuple(dataclasses.replace(  # the same predicted energy at the new factor
        f, co2e_g=f.energy_j * grams_per_joule,
        co2e_low_g=f.energy_low_j * grams_per_joule * (envelope.low_ratio if envelope else 1),
        co2e_high_g=f.energy_high_j * grams_per_joule * (envelope.high_ratio if envelope else 1))
        for f in result.forecasts)
    return dataclasses.replace(result, location=location, intensity=intensity, pue=pue_record,
                               emissions=emissions, flags=tuple(flags), forecasts=forecasts)


def _asked(result: RunResult, name: str) -> Any:
    """What the run's own options set ``name`` to, when it was set (not a default)."""
    entry = result.options.get(name)
    if isinstance(entry, dict) and entry.get("source") not in (None, "default"):
        return entry.get("value")
    return None


def _load(run_id: str, db: Any) -> RunResult:
    from carbonmonitor.store import load

    return load(run_id, db=db)  # StoreError names the store and how to list its runs
