"""What every figure shares: the lazy matplotlib import, units chosen by magnitude, the
provenance footnote, the attached data, and saving as PNG or SVG."""

from __future__ import annotations

import os
import re
import tempfile
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonmonitor._fileio import set_usual_mode
from carbonmonitor._version import __version__
from carbonmonitor.errors import ConfigError
from carbonmonitor.records import RunResult
from carbonmonitor.summary import energy_unit as energy_unit  # the summary's units
from carbonmonitor.summary import mass_unit as mass_unit
from carbonmonitor.summary import time_unit as time_unit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL = "pip install 'carbonmonitor[plot]'"
SUFFIXES = (".png", ".svg")
DATA_ATTR = "_carbonmonitor_data"

# Units are the run summary's (carbonmonitor.summary): a figure's axis and the text beside it
# name the same unit for the same value.
POWER_UNITS = (("kW", 1000.0), ("W", 0.0))


def new_figure(**kwargs: Any) -> Figure:
    """A matplotlib Figure drawn by the non-interactive Agg canvas (no display, no pyplot state).

    Raises:
        ImportError: matplotlib is not installed; the message gives the install command.
    """
    try:  # the package first: a blocked or missing matplotlib fails here, not in a submodule
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(f"carbonmonitor's figures need matplotlib, which is not installed "
                          f"({err}). Fix: {INSTALL} (or pip install matplotlib)") from None
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def check_path(path: str | os.PathLike[str] | None) -> Path | None:
    """``path`` as a Path when its suffix is one we write; ConfigError otherwise."""
    if path is None:
        return None
    out = Path(path)
    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"cannot save a figure as {str(out)!r}: the file name must end in "
                          f"{' or '.join(SUFFIXES)}. Fix: e.g. {out.with_suffix('.png').name!r}")
    return out


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG or SVG (by the suffix), through a temporary file then a rename, so a
    reader never sees half a file. SVG text stays text (searchable, escaped).

    Raises:
        ConfigError: a suffix other than ``.png`` or ``.svg``.
    """
    out = check_path(path)
    assert out is not None
    import matplotlib

    fmt = out.suffix.lower()[1:]
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "carbonmonitor"}):
            fig.savefig(tmp, format=fmt, dpi=150 if fmt == "png" else "figure",
                        metadata={"Date": None} if fmt == "svg" else None)
        set_usual_mode(tmp, out)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def figure_data(fig: Figure) -> dict[str, Any]:
    """The numbers a carbonmonitor figure plots (SI units), as attached when it was drawn.

    Raises:
        ValueError: the figure was not made by carbonmonitor.plot.
    """
    data = getattr(fig, DATA_ATTR, None)
    if not isinstance(data, dict):
        raise ValueError("this figure carries no carbonmonitor data: only figures made by "
                         "carbonmonitor.plot (impact_figure, power_figure, device_figure, "
                         "intensity_figure) do")
    return data


def attach(fig: Figure, data: dict[str, Any]) -> None:
    setattr(fig, DATA_ATTR, data)


def pick_unit(value: float, units: Sequence[tuple[str, float]]) -> tuple[str, float]:
    """The first ``(unit, threshold)`` that ``abs(value)`` reaches (the last one otherwise)."""
    for unit, size in units:
        if abs(value) >= size:
            return unit, size
    return units[-1]


def power_unit(watts: float) -> tuple[str, float]:
    unit, size = pick_unit(watts, POWER_UNITS)
    return unit, max(size, 1.0)


def text(value: str) -> str:
    """A user string shown as written: ``$`` would start matplotlib's math mode."""
    return value.replace("$", r"\$")


def gid(*parts: str) -> str:
    """An SVG-safe element id made of ``parts``."""
    return "-".join(re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in parts)


def footnote(results: Sequence[RunResult], extra: Sequence[str] = ()) -> str:
    """Where the numbers come from: measurement methods, intensity (source, year, basis), PUE,
    flags, and the carbonmonitor version; wrapped to lines of the figure's width."""
    first = results[0]
    methods = sorted({f"{f.method} ({f.backend})" for r in results for f in r.energy})
    inten = first.intensity
    parts = [f"Energy: {', '.join(methods) or 'none measured'}",
             f"intensity {inten.g_per_kwh:g} g/kWh {inten.zone_name} {inten.year}"
             f"{' preliminary' if inten.preliminary else ''}, {inten.basis}: {inten.source} "
             f"[{inten.licence}]",
             first.pue.describe()]
    if first.emissions.time_resolved:
        parts.append(f"hourly factors: {first.emissions.time_resolved}")
    parts.extend(extra)
    codes = sorted({f.code for r in results for f in r.flags})
    if codes:
        parts.append(f"flags: {', '.join(codes)}")
    parts.append(f"carbonmonitor {__version__}")
    return "\n".join(textwrap.wrap(text(" · ".join(parts)), width=160))
