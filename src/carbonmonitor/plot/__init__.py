"""Figures of a run's energy and carbon impact, and the numbers they draw.

The data functions (:func:`power_series`, :func:`cumulative_co2e`, :func:`phase_breakdown`,
:func:`device_breakdown`, :func:`phase_devices`, :func:`intensity_steps`, :func:`what_if`) are
pure and need nothing beyond carbonmonitor. The figure functions (:func:`impact_figure`,
:func:`power_figure`, :func:`device_figure`, :func:`intensity_figure`) need matplotlib, the
``plot`` extra (``pip install 'carbonmonitor[plot]'``), imported only when a figure is drawn;
they draw with the non-interactive Agg canvas, so no display is needed, and save PNG or SVG.
See docs/plots.md.

Example:
    >>> import tempfile, carbonmonitor, carbonmonitor.plot
    >>> db = tempfile.mkdtemp() + "/runs.db"
    >>> with carbonmonitor.track(backend="fake", db=db, quiet=True, country="DE") as run:
    ...     with run.phase("train"):
    ...         pass
    >>> fig = carbonmonitor.plot.impact_figure(run.result, path=tempfile.mkdtemp() + "/i.png")
    >>> sorted(carbonmonitor.plot.figure_data(fig))
    ['carbonmonitor', 'kind', 'run_ids', 'stages', 'stages_cut', 'timeline', 'units', 'what_if']
"""

from __future__ import annotations

from carbonmonitor.plot._mpl import INSTALL, figure_data, save_figure
from carbonmonitor.plot.data import (
    DeviceShare,
    IntensityStep,
    Stage,
    cumulative_co2e,
    device_breakdown,
    intensity_steps,
    phase_breakdown,
    phase_devices,
    power_series,
    run_stages,
    total_energy,
    total_power,
)
from carbonmonitor.plot.devices import device_figure
from carbonmonitor.plot.figures import impact_figure, power_figure
from carbonmonitor.plot.intensity import intensity_figure
from carbonmonitor.plot.whatif import DEFAULT_PLACES, Place, PlaceImpact, parse_place, what_if

__all__ = ["DEFAULT_PLACES", "INSTALL", "DeviceShare", "IntensityStep", "Place", "PlaceImpact",
           "Stage", "cumulative_co2e", "device_breakdown", "device_figure", "figure_data",
           "impact_figure", "intensity_figure", "intensity_steps", "parse_place",
           "phase_breakdown", "phase_devices", "power_figure", "power_series", "run_stages",
           "save_figure", "total_energy", "total_power", "what_if"]
