"""The sink contract: where a run's figures go besides carbonmonitor's own store.

A sink takes the live scalars a framework callback sends at each epoch end and, once, the
finished :class:`~carbonmonitor.records.RunResult`. The built-in sinks are
:class:`~carbonmonitor.integrations.mlflow.MLflowSink`,
:class:`~carbonmonitor.integrations.tensorboard.TensorBoardSink` and
:class:`~carbonmonitor.integrations.wandb.WandbSink` (docs/sinks.md). Anything with the two
methods of :class:`Sink` is one.

This module also holds what the sinks share: the final figures as flat ``name -> float``
scalars (:func:`final_scalars`), the provenance as ``name -> str`` (:func:`provenance`), and the
guard that keeps a failing sink from reaching the user's program (:class:`Failures`).

Example:
    >>> from carbonmonitor import ManualClock, Tracker
    >>> clock = ManualClock()
    >>> tracker = Tracker(backend="fake", clock=clock, sampling="manual", quiet=True, db="off",
    ...                   country="DE")
    >>> _ = tracker.start()
    >>> clock.advance(10)
    >>> result = tracker.stop()
    >>> round(final_scalars(result)["power_w"], 3)
    45.0
    >>> provenance(result)["intensity_zone"]
    'DEU'
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from carbonmonitor.facts import JOULES_PER_KWH

if TYPE_CHECKING:
    from carbonmonitor.records import RunResult

__all__ = ["PREFIX", "Failures", "Sink", "final_scalars", "provenance", "rekey", "safe_key"]

log = logging.getLogger("carbonmonitor")

PREFIX = "carbonmonitor/"
"""The namespace of every key carbonmonitor writes to a tracking tool."""


@runtime_checkable
class Sink(Protocol):
    """Receives a run's figures. Both methods must return promptly and may raise: the
    built-in sinks never do (a failure is logged once on the ``carbonmonitor`` logger).

    ``log`` is called at each epoch end with live scalars keyed ``"carbonmonitor/energy_kwh"``,
    ``"carbonmonitor/co2e_g"``, ``"carbonmonitor/power_w"``, ``"carbonmonitor/forecast_co2e_g"``
    (the figures so far; the forecast once there is one) and the epoch or global step.
    ``finish`` is called once, with the final result: totals, per-phase and per-unit figures,
    and the provenance of every factor.

    A sink may also have ``bind(*, project: str | None, run_name: str | None)``: a framework
    callback calls it when its run starts, so a run the sink creates in its tool is named
    after the carbonmonitor project and run (the MLflow and W&B sinks have it).
    """

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        """Record live scalars at ``step``."""

    def finish(self, result: RunResult) -> None:
        """Record the finished run's figures and provenance; close what the sink opened."""


def rekey(key: str, prefix: str) -> str:
    """A live scalar's key under the sink's ``prefix`` (``carbonmonitor/`` swapped for it);
    keys from elsewhere are kept as they are."""
    return prefix + key[len(PREFIX):] if key.startswith(PREFIX) else key


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\- /]")


def safe_key(key: str) -> str:
    """A key every tracking tool accepts as it is: letters, digits, ``_ - . /`` and spaces
    (MLflow's rule, without ``:`` which it refuses on Windows); path segments that are empty,
    ``.`` or ``..`` (MLflow refuses keys that normalise to another path) become ``_``.

    Example:
        >>> safe_key("device/gpu:0/energy_kwh")
        'device/gpu_0/energy_kwh'
    """
    parts = [_UNSAFE.sub("_", part) for part in key.split("/")]
    return "/".join(part if part.strip(". ") else "_" for part in parts)


def final_scalars(result: RunResult) -> dict[str, float]:
    """The finished run's figures, flat, keyed without a prefix (docs/sinks.md lists them):
    totals with their intervals, per device, per phase, per unit of work, and the forecast
    compared with the outcome. Keys pass :func:`safe_key`; values are finite."""
    em = result.emissions
    span = result.energy_uncertainty
    out: dict[str, float] = {
        "energy_kwh": result.energy_kwh,
        "energy_low_kwh": span.low / JOULES_PER_KWH,
        "energy_high_kwh": span.high / JOULES_PER_KWH,
        "co2e_g": result.co2e_g,
        "co2e_low_g": em.uncertainty.low,
        "co2e_high_g": em.uncertainty.high,
        "power_w": result.mean_power_w,
        "duration_s": result.duration_s,
        "intensity_g_per_kwh": em.intensity_g_per_kwh,
        "pue": em.pue,
    }
    if any(f.attributed_j is not None for f in result.energy):
        out["attributed_energy_kwh"] = result.attributed_j / JOULES_PER_KWH
        out["attributed_co2e_g"] = result.attributed_co2e_g
    if em.market_co2e_g is not None:
        out["market_co2e_g"] = em.market_co2e_g
    if result.embodied is not None:
        out["embodied_co2e_g"] = result.embodied.co2e_g
    for figure in result.energy:
        out[f"device/{figure.domain}/energy_kwh"] = figure.energy_kwh
    for phase in result.phases:
        out[f"phase/{phase.name}/energy_kwh"] = phase.energy_kwh
        out[f"phase/{phase.name}/co2e_g"] = result.phase_co2e_g(phase.name)
        out[f"phase/{phase.name}/duration_s"] = phase.duration_s
    if result.work:
        for unit in ("samples", "tokens", "steps", "requests", "generated_tokens"):
            if getattr(result.work, unit):
                out[f"work/{unit}"] = float(getattr(result.work, unit))
    for cost in result.unit_costs:
        per = "per_" + cost.per.replace(" ", "_")
        out[f"{per}/energy_j"] = cost.energy_j
        out[f"{per}/co2e_g"] = cost.co2e_g
    forecast = result.forecast
    if forecast is not None:
        out.update({"forecast/after": forecast.after, "forecast/co2e_g": forecast.co2e_g,
                    "forecast/co2e_low_g": forecast.co2e_low_g,
                    "forecast/co2e_high_g": forecast.co2e_high_g,
                    "forecast/energy_kwh": forecast.energy_j / JOULES_PER_KWH,
                    "forecast/duration_s": forecast.duration_s})
        if forecast.outcome is not None and forecast.outcome.co2e_error is not None:
            out["forecast/co2e_error"] = forecast.outcome.co2e_error
    return {safe_key(k): float(v) for k, v in out.items() if math.isfinite(v)}


def provenance(result: RunResult) -> dict[str, str]:
    """Where the figures came from, as text keyed without a prefix: the run, the factors
    (intensity source, table, year, basis, zone; PUE and its source), how each device was
    measured (``method/<domain>``), and the flags a reader must know about."""
    ident, inten, pue = result.identity, result.intensity, result.pue
    out = {
        "carbonmonitor_version": ident.carbonmonitor_version,
        "run_id": ident.run_id,
        "project": ident.project,
        "run_name": ident.name,
        "status": result.status,
        "location": result.location.describe(),
        "intensity_g_per_kwh": f"{inten.g_per_kwh:g}",
        "intensity_source": inten.source,
        "intensity_table": inten.table,
        "intensity_licence": inten.licence,
        "intensity_year": str(inten.year) + (" (preliminary)" if inten.preliminary else ""),
        "intensity_basis": inten.basis,
        "intensity_zone": inten.zone,
        "intensity_zone_name": inten.zone_name,
        "pue": f"{pue.value:g}",
        "pue_source": pue.describe(),
        "co2e_rule": result.emissions.uncertainty.rule,
    }
    for figure in result.energy:
        detail = f"; {figure.detail}" if figure.detail else ""
        out[f"method/{figure.domain}"] = (f"{figure.method} ({figure.backend}: {figure.device}"
                                          f"{detail})")
    if result.emissions.time_resolved:
        out["time_resolved"] = result.emissions.time_resolved
    if result.attribution is not None:
        out["attribution"] = result.attribution.policy
    if result.work is not None and result.work.notes:
        out["work_notes"] = "; ".join(result.work.notes)
    if result.forecast is not None:
        out["forecast_rule"] = result.forecast.rule
    if result.flags:
        out["flags"] = ", ".join(dict.fromkeys(f.code for f in result.flags))
    return {safe_key(k): v for k, v in out.items()}


class Failures:
    """Contains a sink's failures: the first is logged as a warning on the ``carbonmonitor``
    logger (with its traceback), later ones at debug level, and the user's program goes on."""

    def __init__(self, sink: str) -> None:
        self.sink = sink
        self.count = 0

    @contextmanager
    def guard(self, action: str, *, strict: bool = False) -> Iterator[None]:
        """Run the block; an exception is logged and swallowed (re-raised when ``strict``:
        the ``log_result`` functions, which a user calls directly, report failures)."""
        try:
            yield
        except Exception as err:
            if strict:
                raise
            self.count += 1
            first = self.count == 1
            log.log(logging.WARNING if first else logging.DEBUG,
                    "carbonmonitor: the %s sink could not %s (%s: %s); the run goes on, and "
                    "carbonmonitor's own result is not affected%s", self.sink, action,
                    type(err).__name__, err,
                    "" if first else f" (failure {self.count} of this sink)", exc_info=first)
