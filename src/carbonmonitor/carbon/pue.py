"""Power usage effectiveness: the user's number, a provider's fleet figure, or 1.0 locally.

Figures come from ``cloud/pue.csv`` (data README section 3.6), each row with its source.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from carbonmonitor.carbon.intensity import default_data_year
from carbonmonitor.carbon.regions import validate_provider
from carbonmonitor.data import read_table
from carbonmonitor.errors import ConfigError, DataError
from carbonmonitor.facts import Flag, Pue

__all__ = ["pue_flags", "resolve_pue"]


def pue_flags(pue: Pue) -> tuple[Flag, ...]:
    """What a reader must know about the PUE applied: the 1.0 of a local machine is a default."""
    if pue.kind != "local-default":
        return ()
    return (Flag("pue-local-default", "PUE 1.0 assumed: a local machine with no data-centre "
                 "overhead", "set pue= (e.g. pue=1.4 or pue='datacenter') or cloud_provider="),)

PUE_TABLE = "cloud/pue.csv"
DATACENTER = "datacenter"


def resolve_pue(
    pue: float | str | None, cloud_provider: str | None, *, data_year: int | None = None
) -> Pue:
    """The PUE to apply to measured energy.

    Args:
        pue: a number >= 1.0, ``"datacenter"`` for the industry average, or None.
        cloud_provider: with ``pue=None``, use this provider's reported fleet PUE.
        data_year: pick the latest reported figure not newer than this year (default: the
            latest final data year); when none is that old, the oldest figure is used.

    Example:
        >>> resolve_pue(None, None).kind
        'local-default'
        >>> resolve_pue(None, "aws").kind
        'provider-fleet'

    Raises:
        ConfigError: a number below 1.0, or a string that is neither a number nor "datacenter".
    """
    year = data_year if data_year is not None else default_data_year()
    if isinstance(pue, str):
        if pue.strip().lower() == DATACENTER:
            return _from_row(_latest("industry", "global_average", year), "industry-average")
        return _constant(_parse(pue))
    if pue is not None:
        if isinstance(pue, bool) or not isinstance(pue, (int, float)):
            raise ConfigError(_bad_string(pue))
        return _constant(float(pue))
    if cloud_provider:
        provider = validate_provider(cloud_provider)
        return _from_row(_latest(provider, "fleet", year), "provider-fleet")
    return Pue(1.0, "local-default", "local machine; set pue= or cloud_provider=")


def _parse(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(_bad_string(text)) from None


def _bad_string(value: object) -> str:
    return f"pue must be a number >= 1.0 or {DATACENTER!r}; got {value!r}"


def _constant(value: float) -> Pue:
    if not (math.isfinite(value) and value >= 1.0):
        raise ConfigError(
            f"PUE must be >= 1.0 (total facility power / IT power); got {value:g}. "
            f"Fix: pass e.g. pue=1.2, or pue={DATACENTER!r} for the industry average."
        )
    return Pue(value, "user-constant", "given by user")


def _latest(provider: str, scope: str, year: int) -> Mapping[str, str]:
    """The newest row of that provider and scope not newer than ``year``, else the oldest."""
    rows = sorted(
        (r for r in read_table(PUE_TABLE) if r["provider"] == provider and r["scope"] == scope
         and r["year"]),
        key=lambda r: int(r["year"]),
    )
    if not rows:
        raise DataError(f"no {provider} {scope} PUE row in {PUE_TABLE}")
    usable = [r for r in rows if int(r["year"]) <= year]
    return usable[-1] if usable else rows[0]


def _from_row(row: Mapping[str, str], kind: Literal["provider-fleet", "industry-average"]) -> Pue:
    return Pue(float(row["pue"]), kind, row["source"], int(row["year"]))
