"""A short paragraph to cite a run's footprint in a paper: energy and CO2e with their intervals,
the factors and where they come from, the hardware and how it was measured, the tool version."""

from __future__ import annotations

from carbonmonitor.records import RunResult, pue_text
from carbonmonitor.summary import duration_text, energy_text, mass_text

__all__ = ["citation"]

# How each method reads in prose (docs/measurement.md); the weakest one is said plainly.
_HOW = {"counter": "read from hardware energy counters",
        "power-integration": "integrated from sampled power readings",
        "model": "estimated with a power model (TDP x utilisation), not measured",
        "user-constant": "from a constant power given by the user, not measured"}


def citation(result: RunResult) -> str:
    """A citable paragraph on ``result``: energy (with interval), location-based CO2e (with
    interval, the factor's basis, source and year), the hardware and how its energy was
    obtained, location, PUE, duration, and "measured with carbonmonitor X.Y.Z".

    Example:
        >>> import carbonmonitor
        >>> from carbonmonitor.report import citation
        >>> with carbonmonitor.track(backend="fake", db="off", quiet=True, country="FR") as run:
        ...     pass
        >>> "measured with carbonmonitor" in citation(run.result)
        True
    """
    ident, em, inten = result.identity, result.emissions, result.intensity
    energy = result.energy_j
    unc = result.energy_uncertainty
    year = f"{inten.year}{' (preliminary)' if inten.preliminary else ''}"
    parts = [
        f"The run {ident.name!r} ({ident.run_id}) used {energy_text(energy)} of electricity "
        f"(interval {energy_text(unc.low, energy)} to {energy_text(unc.high, energy)}) "
        f"over {duration_text(result.duration_s)}, measured with carbonmonitor "
        f"{ident.carbonmonitor_version} on {_hardware(result)}.",
        f"With a PUE of {pue_text(result.pue.value)} ({result.pue.source}) and a "
        f"{inten.basis} emission factor of {inten.g_per_kwh:g} g CO2e/kWh for "
        f"{inten.zone_name} ({inten.zone}; {inten.source}, {year}), this corresponds to "
        f"{mass_text(em.co2e_g)} CO2e (location-based; interval "
        f"{mass_text(em.uncertainty.low, em.co2e_g)} to "
        f"{mass_text(em.uncertainty.high, em.co2e_g)}).",
        f"Location: {result.location.describe()}.",
    ]
    if result.partial:
        parts.insert(0, f"[Partial: the run was {result.status} at its last write; these "
                        "figures cover it up to then.]")
    if em.time_resolved:
        parts.append(f"Hourly factors came from {em.time_resolved}.")
    if result.location.status == "unknown":
        parts.append("The location was not known, so the world average factor was used.")
    return " ".join(parts)


def _hardware(result: RunResult) -> str:
    """``cpu (rapl; read from hardware energy counters) and gpu:0 (...)``, then the models."""
    groups: dict[str, list[str]] = {}
    for f in result.energy:
        groups.setdefault(f"{f.backend}; {_HOW.get(f.method, f.method)}", []).append(f.domain)
    measured = "; ".join(f"{', '.join(domains)} ({how})" for how, domains in groups.items())
    hw = result.identity.hardware
    models = []
    if hw is not None:
        if hw.cpu_model:
            models.append(f"CPU {hw.cpu_model}")
        models.extend(f"GPU {gpu}" for gpu in hw.gpus)
    hardware = f"; hardware: {', '.join(models)}" if models else ""
    return (measured or "no device measured") + hardware
