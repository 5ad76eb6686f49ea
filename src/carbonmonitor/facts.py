"""The small frozen records a tracker needs before its first sample: flags, backend statuses,
where the run is and the factors that will convert its energy (intensity, PUE).

They are re-exported by :mod:`carbonmonitor.records`, which holds the result records; these
live apart so that starting a run does not pay for building the result classes (each frozen
dataclass costs ~0.7 ms to create), which the first write to the store, on the sampler thread,
imports instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

JOULES_PER_KWH = 3.6e6

Method = Literal["counter", "power-integration", "model", "user-constant"]
"""How an energy figure was obtained, best first (docs/measurement.md)."""

Basis = Literal["lifecycle", "operational", "marginal"]
"""Emission-factor basis: life-cycle (includes plant construction, fuel supply), operational
(direct: combustion only), or marginal (the plants that follow load; WattTime)."""


@dataclass(frozen=True)
class Flag:
    """Something a reader of the result must know: a fallback, a degraded backend, a guess.

    ``code`` is stable and machine-readable (``"location-unknown"``); ``fix`` says what to do.
    """

    code: str
    message: str
    fix: str = ""


@dataclass(frozen=True)
class Intensity:
    """Carbon intensity of electricity used for a run, with full provenance."""

    g_per_kwh: float
    zone: str
    zone_name: str
    year: int
    basis: Basis
    source: str
    table: str
    licence: str
    preliminary: bool = False
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class Pue:
    """Power usage effectiveness applied to measured energy, with its source."""

    value: float
    kind: Literal["local-default", "user-constant", "provider-fleet", "industry-average"]
    source: str
    year: int | None = None

    def describe(self) -> str:
        """``PUE 1.0 (local machine; set pue= or cloud_provider=)``, ``PUE 1.15 (..., 2024)``."""
        year = f", {self.year}" if self.year else ""
        return f"PUE {pue_text(self.value)} ({self.source}{year})"


def pue_text(value: float) -> str:
    """``1.0``, ``1.15``, ``1.56``: two decimals, a trailing zero dropped."""
    text = f"{value:.2f}"
    return text[:-1] if text.endswith("0") else text


@dataclass(frozen=True)
class Location:
    """Where the energy was drawn. ``status`` is ``"given"`` or ``"unknown"``."""

    status: Literal["given", "unknown"]
    country_iso3: str | None = None
    country_name: str | None = None
    cloud_provider: str | None = None
    cloud_region: str | None = None
    zone: str | None = None

    def describe(self) -> str:
        if self.status == "unknown":
            return "unknown"
        if self.cloud_region:
            return f"{self.cloud_provider}:{self.cloud_region} ({self.country_name})"
        if self.zone:
            return f"grid zone {self.zone} ({self.country_name})"
        return f"{self.country_name} ({self.country_iso3})"


@dataclass(frozen=True)
class BackendStatus:
    """A backend that was considered for a run: used, or not and why."""

    name: str
    used: bool
    devices: tuple[str, ...] = ()
    reason: str = ""
    fix: str = ""
