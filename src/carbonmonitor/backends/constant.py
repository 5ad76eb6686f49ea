"""``constant``: watts per device given by the user (read off a wall meter, a spec sheet ...).

Energy is watts x elapsed time; method ``user-constant``, rule ``user-constant-v1``. Options:
``constant_power="cpu=65,memory=5"`` (``--constant-power``, ``CARBONMONITOR_CONSTANT_POWER``).
"""

from __future__ import annotations

from carbonmonitor.backends.base import Cumulative, Domain, ProbeContext
from carbonmonitor.errors import BackendUnavailable, ConfigError, did_you_mean
from carbonmonitor.uncertainty import RULE_BY_METHOD, relative

RULE = RULE_BY_METHOD["user-constant"]
# "machine": one figure for the whole machine (a wall meter); it stands for every device kind.
DEVICE_KINDS = ("cpu", "memory", "gpu", "machine")


class ConstantBackend:
    """Constant power per domain key (``"cpu"``, ``"gpu:0"``, ``"machine"`` ...)."""

    name = "constant"
    poll_period_s: float | None = None

    def __init__(self, watts: dict[str, float]) -> None:
        for key in watts:
            kind = key.split(":")[0]
            if kind not in DEVICE_KINDS:
                raise ConfigError(
                    f"constant_power: unknown device {key!r}.{did_you_mean(kind, DEVICE_KINDS)} "
                    f"Use {', '.join(DEVICE_KINDS)} (optionally with an index: gpu:0)")
        self._watts = dict(watts)
        self._t0: float | None = None

    def domains(self) -> tuple[Domain, ...]:
        return tuple(
            Domain(key, key.split(":")[0], "user-constant", RULE, f"{watts:g} W given by user")
            for key, watts in self._watts.items())

    def read(self, now_s: float) -> dict[str, Cumulative]:
        if self._t0 is None:
            self._t0 = now_s
        elapsed = now_s - self._t0
        return {key: relative(watts * elapsed, RULE) for key, watts in self._watts.items()}

    def close(self) -> None:
        pass


class ConstantFactory:
    name = "constant"
    devices: tuple[str, ...] = DEVICE_KINDS

    def probe(self, context: ProbeContext) -> ConstantBackend:
        watts = context.options.constant_power
        if not watts:
            raise BackendUnavailable(
                "the constant backend needs the watts to assume",
                'set constant_power="cpu=65,memory=5" (--constant-power, '
                "CARBONMONITOR_CONSTANT_POWER)")
        return ConstantBackend(watts)
