"""The device figure: energy and CO2e by device, and energy by phase split by device.

Artists that hold data have SVG ids: ``device-energy-<domain>``, ``device-co2e-<domain>`` and
``phase-device-<i>-<domain>`` (``:`` becomes ``_``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from carbonmonitor._version import __version__
from carbonmonitor.plot import _mpl
from carbonmonitor.plot._mpl import gid, text
from carbonmonitor.plot.data import OUTSIDE_PHASES, DeviceShare, device_breakdown, phase_devices
from carbonmonitor.plot.figures import (
    ERROR,
    LABEL_BOX,
    PALETTE,
    PathLike,
    _footer,
    result_of,
)
from carbonmonitor.records import RunResult
from carbonmonitor.summary import sig3

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["device_figure"]


def device_figure(run: RunResult | str, *, db: PathLike | None = None,
                  path: PathLike | None = None) -> Figure:
    """Energy and CO2e by device, each bar with its interval and how it was measured
    (counter, power-integration, model), and, when the run has phases, the energy of each
    top-level phase stacked by device.

    Args:
        run: a result, or a run id (or unique prefix, or ``"last"``) in ``db``.
        db: the store to read a run id from; default: the default store.
        path: also save the figure there (``.png`` or ``.svg``).

    Raises:
        ImportError: matplotlib is missing (the message says ``pip install
            'carbonmonitor[plot]'``).
        ConfigError: a bad suffix. StoreError: the run is not stored.

    Example:
        >>> import carbonmonitor, carbonmonitor.plot
        >>> with carbonmonitor.track(backend="fake", db="off", quiet=True) as run:
        ...     pass
        >>> [d["domain"] for d in carbonmonitor.plot.figure_data(device_figure(run.result))[
        ...     "devices"]]
        ['cpu', 'memory']
    """
    out = _mpl.check_path(path)
    result = result_of(run, db)
    devices = device_breakdown(result)
    phases = phase_devices(result)
    fig = _mpl.new_figure(figsize=(12.0, 9.0) if phases else (12.0, 5.0), layout="constrained")
    axes = fig.subplot_mosaic("ab;cc" if phases else "ab")
    colours = {d.domain: PALETTE[i % len(PALETTE)] for i, d in enumerate(devices)}
    data: dict[str, Any] = {"kind": "devices", "carbonmonitor": __version__,
                            "run_id": result.identity.run_id,
                            "devices": [dataclasses.asdict(d) for d in devices],
                            "phases": [{"label": p, "energy_j": e} for p, e in phases],
                            "units": {}}
    if devices:
        data["units"]["energy"] = _bars(axes["a"], devices, colours, "energy")
        data["units"]["co2e"] = _bars(axes["b"], devices, colours, "co2e")
    axes["a"].set_title("(a) Energy by device (error bars: interval)", loc="left")
    axes["b"].set_title("(b) CO2e by device (at the run's mean factor)", loc="left")
    if phases:
        data["units"]["phase_energy"] = _phase_panel(axes["c"], phases, colours)
    fig.suptitle(text(f"Energy and CO2e by device: {result.identity.name}"), fontsize=13,
                 fontweight="bold")
    _footer(fig, _mpl.footnote([result]))
    _mpl.attach(fig, data)
    if out is not None:
        _mpl.save_figure(fig, out)
    return fig


def _bars(ax: Axes, devices: Sequence[DeviceShare], colours: dict[str, str],
          what: str) -> list[Any]:
    """One bar per device (energy or CO2e) with its interval, its value over it and its
    method under it, in one unit for the panel; returns ``[unit, size]``."""
    if what == "energy":
        values = [(d.energy_j, d.energy_low_j, d.energy_high_j) for d in devices]
        unit, size = _mpl.energy_unit(max(v[2] for v in values))
    else:
        values = [(d.co2e_g, d.co2e_low_g, d.co2e_high_g) for d in devices]
        unit, size = _mpl.mass_unit(max(v[2] for v in values))
    xs = list(range(len(devices)))
    bars = ax.bar(xs, [v[0] / size for v in values], width=0.6,
                  color=[colours[d.domain] for d in devices])
    ax.errorbar(xs, [v[0] / size for v in values],
                yerr=[[(v[0] - v[1]) / size for v in values],
                      [(v[2] - v[0]) / size for v in values]],
                fmt="none", ecolor=ERROR, elinewidth=1.4, capsize=4.0, zorder=3)
    for i, (bar, d, v) in enumerate(zip(bars, devices, values, strict=True)):
        bar.set_gid(gid(f"device-{what}", d.domain))
        ax.annotate(f"{sig3(v[0] / size)} {unit}", (i, v[2] / size), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8,
                    bbox=LABEL_BOX, zorder=4, gid=gid(f"device-{what}-label", str(i)))
    ax.set_xticks(xs, [text(f"{d.domain}\n{d.method}\n({d.backend})") for d in devices],
                  fontsize=8)
    ax.set_ylim(0, max(v[2] for v in values) / size * 1.2 or 1.0)  # room for the labels
    ax.set_ylabel(f"{'Energy' if what == 'energy' else 'CO2e'} ({unit})")
    ax.grid(axis="y", alpha=0.3)
    return [unit, size]


def _phase_panel(ax: Axes, phases: Sequence[tuple[str, dict[str, float]]],
                 colours: dict[str, str]) -> list[Any]:
    """(c) Energy of each top-level phase, stacked by device; returns ``[unit, size]``."""
    unit, size = _mpl.energy_unit(max(sum(e.values()) for _, e in phases))
    xs = list(range(len(phases)))
    bottom = [0.0] * len(phases)
    for domain, colour in colours.items():
        heights = [e.get(domain, 0.0) / size for _, e in phases]
        bars = ax.bar(xs, heights, width=0.6, bottom=bottom, color=colour,
                      label=text(domain))
        for i, bar in enumerate(bars):
            bar.set_gid(gid("phase-device", str(i), domain))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    for i, total in enumerate(bottom):
        ax.annotate(f"{sig3(total)} {unit}", (i, total), xytext=(0, 3),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8,
                    bbox=LABEL_BOX, gid=gid("phase-device-label", str(i)))
    long = max(len(p) for p, _ in phases) > 12 and len(phases) > 3
    ax.set_xticks(xs, [text(p) for p, _ in phases], rotation=20 if long else 0,
                  ha="right" if long else "center")
    for tick, (p, _) in zip(ax.get_xticklabels(), phases, strict=True):
        if p == OUTSIDE_PHASES:
            tick.set_fontstyle("italic")
    ax.set_ylim(0, max(bottom) * 1.15 or 1.0)
    ax.set_ylabel(f"Energy ({unit})")
    ax.set_title("(c) Energy by phase and device", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return [unit, size]
