"""Uncertainty rules: one documented rule per method, producing [low, high] bounds.

The representation (:class:`~carbonmonitor.records.Uncertainty`: low, high, rule) is fixed; the
rules may be refined later (GPU sampling duty, counter resolution vs window) under new rule names.
Full text and rationale: docs/uncertainty.md.

- ``counter-v1``: hardware energy counter, +-5% (published RAPL/NVML validations against wall
  meters land within a few percent; a later rule adds resolution vs window length).
- ``power-integration-v1``: trapezoid over sampled power, +-10% (sensor accuracy and sampling).
- ``user-constant-v1``: watts given by the user, +-20% (a constant hides load changes).
- ``model-*``: the estimate backend's own bounds from its decision table (backends/estimate.py).
"""

from __future__ import annotations

from carbonmonitor.backends.base import Cumulative

# The rule for each measured method; model rules come from the estimate backend's table.
RULE_BY_METHOD: dict[str, str] = {
    "counter": "counter-v1",
    "power-integration": "power-integration-v1",
    "user-constant": "user-constant-v1",
}

RELATIVE_BOUNDS: dict[str, tuple[float, float]] = {
    "counter-v1": (0.95, 1.05),
    "power-integration-v1": (0.90, 1.10),
    "user-constant-v1": (0.80, 1.20),
}


def relative(energy_j: float, rule: str) -> Cumulative:
    """Energy with the bounds of a relative rule."""
    low, high = RELATIVE_BOUNDS[rule]
    return Cumulative(energy_j, energy_j * low, energy_j * high)
