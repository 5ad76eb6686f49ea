"""Export runs: a CSV with CodeCarbon's ``emissions.csv`` columns (then ours), or JSON.

The CSV starts with CodeCarbon 3.3.2's columns, in its order and units (s, kg, kg/s, W, kWh), so
notebooks written for ``emissions.csv`` keep working, followed by carbonmonitor's provenance
columns. As in CodeCarbon, energy and power columns include PUE. What carbonmonitor does not
measure (water, utilisation, coordinates) is left empty rather than invented: pandas reads it as
NaN. See docs/cli.md.

Example:
    >>> import io, carbonmonitor
    >>> with carbonmonitor.track(backend="fake", db="off", quiet=True) as run:
    ...     pass
    >>> out = io.StringIO()
    >>> write_csv([run.result], out)
    >>> out.getvalue().splitlines()[0].split(",")[:4]
    ['timestamp', 'project_name', 'run_id', 'experiment_id']
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TextIO

from carbonmonitor._csvsafe import spreadsheet_safe
from carbonmonitor.records import JOULES_PER_KWH, RunResult

CODECARBON_VERSION = "3.3.2"
"""The CodeCarbon release whose ``emissions.csv`` layout the CSV export follows."""


def _kwh(result: RunResult, device: str) -> float:
    """Energy of one device kind in kWh, times PUE: CodeCarbon scales every energy and power
    column by PUE, so that ``emissions = energy_consumed x intensity``."""
    joules = sum(f.energy_j for f in result.energy if f.device == device)
    return joules * result.pue.value / JOULES_PER_KWH


def _watts(result: RunResult, device: str) -> float:
    """Mean power over the run (energy / duration), times PUE."""
    joules = sum(f.energy_j for f in result.energy if f.device == device)
    return joules * result.pue.value / result.duration_s if result.duration_s > 0 else 0.0


def _gpu_model(result: RunResult) -> str:
    """``1 x NVIDIA H200``, as CodeCarbon writes it; several models separated by ``, ``."""
    from collections import Counter

    gpus = result.identity.hardware.gpus if result.identity.hardware else ()
    return ", ".join(f"{n} x {name}" for name, n in Counter(gpus).items())


def _timestamp(result: RunResult) -> str:
    """When the run ended, in local time to the second, as CodeCarbon writes it."""
    try:
        return datetime.fromisoformat(result.ended_at).astimezone().strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return result.ended_at


def _ram_gb(result: RunResult) -> Any:
    hw = result.identity.hardware
    return hw.ram_total_bytes / 2**30 if hw and hw.ram_total_bytes else ""


def _os(result: RunResult) -> str:
    return result.identity.platform


def _python(result: RunResult) -> str:
    return result.identity.python.split()[-1]


# CodeCarbon 3.3.2 emissions.csv: column -> value for one run. As in CodeCarbon, energy (kWh)
# and power (W) columns include PUE; the devices' own energy is in cm_device_energy_kwh.
CODECARBON_COLUMNS: dict[str, Callable[[RunResult], Any]] = {
    "timestamp": _timestamp,
    "project_name": lambda r: r.identity.project,
    "run_id": lambda r: r.identity.run_id,
    "experiment_id": lambda r: r.identity.name,
    "duration": lambda r: r.duration_s,
    "emissions": lambda r: r.emissions.co2e_kg,
    "emissions_rate": lambda r: r.emissions.co2e_kg / r.duration_s if r.duration_s > 0 else 0.0,
    "cpu_power": lambda r: _watts(r, "cpu"),
    "gpu_power": lambda r: _watts(r, "gpu"),
    "ram_power": lambda r: _watts(r, "memory"),
    "cpu_energy": lambda r: _kwh(r, "cpu"),
    "gpu_energy": lambda r: _kwh(r, "gpu"),
    "ram_energy": lambda r: _kwh(r, "memory"),
    "energy_consumed": lambda r: r.energy_kwh * r.pue.value,
    "water_consumed": lambda r: "",
    "country_name": lambda r: r.location.country_name or "",
    "country_iso_code": lambda r: r.location.country_iso3 or "",
    "region": lambda r: "",
    "cloud_provider": lambda r: r.location.cloud_provider or "",
    "cloud_region": lambda r: r.location.cloud_region or "",
    "os": _os,
    "python_version": _python,
    "codecarbon_version": lambda r: "",
    "cpu_count": lambda r: r.identity.hardware.cpu_count if r.identity.hardware else "",
    "cpu_model": lambda r: r.identity.hardware.cpu_model if r.identity.hardware else "",
    "gpu_count": lambda r: len(r.identity.hardware.gpus) if r.identity.hardware else 0,
    "gpu_model": _gpu_model,
    "longitude": lambda r: "",
    "latitude": lambda r: "",
    "ram_total_size": _ram_gb,
    "tracking_mode": lambda r: "machine",
    "cpu_utilization_percent": lambda r: "",
    "gpu_utilization_percent": lambda r: "",
    "ram_utilization_percent": lambda r: "",
    "ram_used_gb": lambda r: "",
    "on_cloud": lambda r: "Y" if r.location.cloud_provider else "N",
    "pue": lambda r: r.pue.value,
    "wue": lambda r: "",
}


def _idle_kwh(r: RunResult) -> float | str:
    """Energy an idle baseline accounts for; empty without a baseline."""
    idle = [f.idle_j for f in r.energy if f.idle_j is not None]
    return sum(idle) / JOULES_PER_KWH if idle else ""


def _methods(result: RunResult) -> str:
    return ";".join(f"{f.domain}={f.method}" for f in result.energy)


PROVENANCE_COLUMNS: dict[str, Callable[[RunResult], Any]] = {
    "cm_name": lambda r: r.identity.name,
    "cm_status": lambda r: r.status,
    "cm_started_at": lambda r: r.identity.started_at,
    "cm_ended_at": lambda r: r.ended_at,
    "cm_tags": lambda r: ";".join(r.identity.tags),
    "cm_device_energy_kwh": lambda r: r.energy_kwh,
    "cm_attributed_energy_kwh": lambda r: r.attributed_j / JOULES_PER_KWH,
    "cm_attribution": lambda r: r.attribution.policy if r.attribution else "",
    "cm_idle_energy_kwh": lambda r: _idle_kwh(r),
    "cm_energy_methods": _methods,
    "cm_device_energy_kwh_low": lambda r: r.energy_uncertainty.low / JOULES_PER_KWH,
    "cm_device_energy_kwh_high": lambda r: r.energy_uncertainty.high / JOULES_PER_KWH,
    "cm_energy_uncertainty_rule": lambda r: r.energy_uncertainty.rule,
    "cm_emissions_kg_low": lambda r: r.emissions.uncertainty.low / 1000,
    "cm_emissions_kg_high": lambda r: r.emissions.uncertainty.high / 1000,
    "cm_intensity_g_per_kwh": lambda r: r.intensity.g_per_kwh,
    "cm_intensity_zone": lambda r: r.intensity.zone,
    "cm_intensity_year": lambda r: r.intensity.year,
    "cm_intensity_basis": lambda r: r.intensity.basis,
    "cm_intensity_source": lambda r: r.intensity.source,
    "cm_intensity_licence": lambda r: r.intensity.licence,
    "cm_pue_kind": lambda r: r.pue.kind,
    "cm_pue_source": lambda r: r.pue.source,
    "cm_location": lambda r: r.location.describe(),
    "cm_flags": lambda r: ";".join(f.code for f in r.flags),
    "cm_carbonmonitor_version": lambda r: r.identity.carbonmonitor_version,
}


def csv_row(result: RunResult) -> dict[str, Any]:
    """One run as a CSV row: CodeCarbon's columns, then carbonmonitor's."""
    return {name: value(result) for name, value in
            {**CODECARBON_COLUMNS, **PROVENANCE_COLUMNS}.items()}


def write_csv(results: Iterable[RunResult], out: TextIO) -> None:
    """Write a header and one row per run to ``out`` (open it with ``newline=""``). Text a
    spreadsheet would evaluate (``=...``, ``@...``) gets a leading ``'`` (see _csvsafe)."""
    writer = csv.DictWriter(out, fieldnames=[*CODECARBON_COLUMNS, *PROVENANCE_COLUMNS],
                            lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow({k: spreadsheet_safe(v) for k, v in csv_row(result).items()})


def write_json(results: Iterable[RunResult], out: TextIO) -> None:
    """Write the full results, as ``RunResult.to_dict()``, as one JSON array."""
    json.dump([r.to_dict() for r in results], out, indent=2)
    out.write("\n")


__all__ = ["CODECARBON_COLUMNS", "PROVENANCE_COLUMNS", "csv_row", "write_csv", "write_json"]
