"""The backend contract: probe, declare domains and poll period, read cumulative energy, close.

A backend converts its raw units (uJ, mJ, W) to joules at this boundary; nothing past it
converts again. ``read`` returns, per domain, the energy since the backend was probed and the
bounds of that energy (see docs/uncertainty.md): the sampler only takes differences.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from carbonmonitor.facts import Method

if TYPE_CHECKING:
    from carbonmonitor.clock import Clock
    from carbonmonitor.options import Options


@dataclass(frozen=True)
class Domain:
    """One energy domain a backend measures.

    Attributes:
        key: unique within a run, ``"cpu"``, ``"memory"``, ``"gpu:0"``, ``"cpu:package-0"``.
        device: the device kind it covers: ``"cpu"``, ``"memory"``, ``"gpu"``, ...; when two
            backends cover the same device kind, the first in priority order wins.
        method: how its energy is obtained.
        rule: the uncertainty rule its bounds follow (docs/uncertainty.md).
        detail: one line a reader needs, e.g. the model and its inputs.
    """

    key: str
    device: str
    method: Method
    rule: str
    detail: str = ""


@dataclass(frozen=True)
class Cumulative:
    """Energy of one domain since the backend was probed, with its bounds, in joules."""

    energy_j: float
    low_j: float
    high_j: float


@runtime_checkable
class Backend(Protocol):
    """A probed, ready backend."""

    name: str
    poll_period_s: float | None
    """Longest safe gap between reads (counter wrap, sampled power); None when any gap is fine."""

    def domains(self) -> tuple[Domain, ...]: ...

    def read(self, now_s: float) -> Mapping[str, Cumulative]:
        """Cumulative energy per domain key at monotonic time ``now_s``. May raise OSError."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ProbeContext:
    """What a backend may look at when probing: resolved options, the run's clock, and the
    environment (``CUDA_VISIBLE_DEVICES``; injectable for tests, ``os.environ`` by default)."""

    options: Options
    clock: Clock
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)


class BackendFactory(Protocol):
    """What a built-in module or a ``carbonmonitor.backends`` entry point provides."""

    name: str
    devices: tuple[str, ...]

    def probe(self, context: ProbeContext) -> Backend:
        """A ready backend, or raise ``BackendUnavailable(reason, fix)``."""
        ...
