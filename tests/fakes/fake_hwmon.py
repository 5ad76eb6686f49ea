"""A fake hwmon sysfs tree: what the ina3221 and ina2xx drivers write (bus voltage in 8 mV steps,
current in mA from 40 uV shunt steps over the shunt resistor; the INA228's energy1_input in uJ and
power1_input in uW), with a piecewise-linear true power per rail, plus Jetson Orin layouts.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path


class Profile:
    """Piecewise-linear true power: (seconds, watts) points, flat after the last."""

    def __init__(self, *points: tuple[float, float]) -> None:
        self.points = list(points)

    def at(self, t: float) -> float:
        pts = self.points
        if t <= pts[0][0]:
            return pts[0][1]
        for (t0, w0), (t1, w1) in zip(pts, pts[1:], strict=False):
            if t <= t1:
                return w0 + (w1 - w0) * (t - t0) / (t1 - t0)
        return pts[-1][1]

    def integral(self, a: float, b: float) -> float:
        """Exact: the trapezoid over the breakpoints inside [a, b] is exact for linear parts."""
        ts = [a, *(t for t, _ in self.points if a < t < b), b]
        return sum((self.at(x) + self.at(y)) / 2 * (y - x) for x, y in zip(ts, ts[1:],
                                                                            strict=False))


def flat(watts: float) -> Profile:
    return Profile((0.0, watts))


class FakeHwmon:
    """class/hwmon chips whose readings the test moves along with the clock."""

    def __init__(self, root: Path) -> None:
        self.base = root / "class" / "hwmon"
        self.base.mkdir(parents=True)
        self.t = 0.0
        self.profiles: dict[str, Profile] = {}
        self._chips: dict[Path, Callable[[float, float], None]] = {}
        self._energy_uj: dict[Path, float] = {}

    def _chip(self, name: str, files: dict[str, str]) -> Path:
        path = self.base / f"hwmon{len(list(self.base.iterdir()))}"
        path.mkdir()
        for file, text in {"name": name, **files}.items():
            (path / file).write_text(text + "\n")
        return path

    def plain(self, name: str, **files: str) -> Path:
        """A chip with no moving readings (temperatures, a GPU's power ...)."""
        return self._chip(name, files)

    def ina3221(self, rails: list[tuple[str, float, Profile | None]], shunt_uohm: int = 5000,
                update_ms: int = 7, enabled: tuple[int, ...] = (1, 2, 3)) -> Path:
        files = {"samples": "1", "update_interval": str(update_ms),
                 "in7_label": "sum of shunt voltages", "in7_input": "0", "curr4_input": "0"}
        for n, (label, _, _) in enumerate(rails, 1):
            files.update({f"in{n}_label": label, f"in{n}_enable": str(int(n in enabled)),
                          f"shunt{n}_resistor": str(shunt_uohm), f"curr{n}_crit": "32760",
                          f"curr{n}_max": "32760"})
        path = self._chip("ina3221", files)
        for label, _, profile in rails:
            if profile is not None:
                self.profiles[label] = profile

        def write(_t0: float, t: float) -> None:
            total_uv = 0
            for n, (_, volts, profile) in enumerate(rails, 1):
                watts = profile.at(t) if profile else 0.0
                bus_code = round(volts * 1000 / 8)
                shunt_code = round(watts / volts * shunt_uohm * 1e-6 / 40e-6)
                total_uv += shunt_code * 40
                for file, value in ((f"in{n}_input", bus_code * 8),
                                    (f"in{n + 3}_input", shunt_code * 40),
                                    (f"curr{n}_input", round(shunt_code * 40000 / shunt_uohm))):
                    (path / file).write_text(f"{value}\n")
            (path / "in7_input").write_text(f"{total_uv}\n")

        self._chips[path] = write
        write(0.0, self.t)
        return path

    def ina228(self, label: str, profile: Profile, start_uj: int = 0) -> Path:
        """An INA228 on the ina238 driver: energy1_input (uJ) and power1_input (uW)."""
        path = self._chip("ina228", {"label": label, "update_interval": "1"})
        self.profiles[label] = profile
        self._energy_uj[path] = float(start_uj)

        def write(t0: float, t: float) -> None:
            self._energy_uj[path] += profile.integral(t0, t) * 1e6
            (path / "energy1_input").write_text(f"{int(self._energy_uj[path])}\n")
            (path / "power1_input").write_text(f"{round(profile.at(t) * 1e6)}\n")

        self._chips[path] = write
        write(self.t, self.t)
        return path

    def set_energy(self, path: Path, uj: int) -> None:
        """The counter restarts (driver reload): it holds ``uj`` and counts on from there."""
        self._energy_uj[path] = float(uj)
        (path / "energy1_input").write_text(f"{uj}\n")

    def remove(self, path: Path) -> None:
        """The device goes away (driver unbound): its directory disappears."""
        del self._chips[path]
        shutil.rmtree(path)

    def run(self, seconds: float) -> None:
        t0, self.t = self.t, self.t + seconds
        for write in self._chips.values():
            write(t0, self.t)

    def true_j(self, label: str, a: float = 0.0, b: float | None = None) -> float:
        return self.profiles[label].integral(a, self.t if b is None else b)


def orin_nx(tree: FakeHwmon) -> Path:
    """Jetson Orin NX/Nano: one INA3221 at 0x40 (upstream tegra234-p3767.dtsi labels, 5 mOhm
    shunts) next to a temperature sensor."""
    tree.plain("tmp451", temp1_input="41000")
    return tree.ina3221([("VDD_IN", 5.0, Profile((0, 9.0), (30, 17.0), (60, 12.0))),
                         ("VDD_CPU_GPU_CV", 5.0, Profile((0, 3.0), (30, 9.0), (60, 6.0))),
                         ("VDD_SOC", 5.0, flat(2.5))])


def agx_orin(tree: FakeHwmon) -> tuple[Path, Path]:
    """Jetson AGX Orin: no module input rail; a second INA3221 with unconnected inputs."""
    first = tree.ina3221([("VDD_GPU_SOC", 5.0, Profile((0, 10.0), (20, 30.0), (60, 15.0))),
                          ("VDD_CPU_CV", 5.0, flat(8.0)),
                          ("VIN_SYS_5V0", 5.0, flat(6.0))])
    second = tree.ina3221([("NC", 5.0, None), ("VDDQ_VDD2_1V8AO", 5.0, flat(2.0)),
                           ("NC", 5.0, None)])
    return first, second
