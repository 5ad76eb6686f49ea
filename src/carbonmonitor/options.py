"""Options: one table, three spellings (keyword argument, CLI flag, environment variable).

``cloud_region`` is ``track(cloud_region=...)``, ``--cloud-region`` and
``CARBONMONITOR_CLOUD_REGION``.
Precedence: arguments/flags > environment > carbonmonitor.toml > pyproject.toml > defaults
(config files: :mod:`carbonmonitor.config`). Every value
is parsed and checked here, so a bad one is a :class:`ConfigError` before any work starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonmonitor.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from carbonmonitor.config import ConfigFile

ENV_PREFIX = "CARBONMONITOR_"

# Why 1 s: CPU-time counters tick at USER_HZ=100, so 1 s windows resolve utilisation to 1% per CPU;
# NVML reports 1 s averaged power on Ampere and newer; RAPL wraps take minutes even at 400 W; and a
# tick costs ~0.1 ms, i.e. ~0.01% of one core. Backends that need faster polls ask for them.
DEFAULT_INTERVAL_S = 1.0
DEFAULT_FLUSH_INTERVAL_S = 10.0


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty string; got {value!r}")
    return value.strip()


def _optional_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


# Below 10 ms a tick would cost more than ~1% of a core and measure the monitor itself.
MIN_INTERVAL_S = 0.01
MAX_INTERVAL_S = 3600.0


def _seconds(value: Any, name: str) -> float:
    seconds = _number(value, f"{name} must be a number of seconds; got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds (e.g. 1.0); got {value!r}")
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise ConfigError(f"{name} must be between {MIN_INTERVAL_S} and {MAX_INTERVAL_S:g} s; "
                          f"got {value!r}")
    return seconds


def _names(value: Any, name: str) -> tuple[str, ...]:
    """A list from a sequence or a comma-separated string; empty items dropped."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ConfigError(f"{name} must be a comma-separated string or a list; got {value!r}")
    out = []
    for item in items:
        if isinstance(item, str):
            if item.strip():
                out.append(item.strip())
        else:
            out.append(item)  # backend instances pass through; checked by the registry
    return tuple(out)


def _tags(value: Any, name: str) -> tuple[str, ...]:
    return tuple(str(tag) for tag in _names(value, name))


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false; got {value!r}")


def _gpus(value: Any, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = tuple(str(v) for v in _names(value if not isinstance(value, int) else str(value),
                                          name))
    if not items:
        raise ConfigError(f"{name} must name GPUs (indices such as 0,1 or UUIDs) or 'all'; "
                          f"got {value!r}")
    return items


def _backends(value: Any, name: str) -> tuple[Any, ...]:
    if hasattr(value, "probe") and hasattr(value, "domains"):  # one backend object
        value = [value]
    items = _names(value, name)
    if not items:
        raise ConfigError(f"{name} must name at least one backend (e.g. 'auto'); got {value!r}")
    return items


def _pue(value: Any, name: str) -> float | str | None:
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value.strip()  # 'datacenter' or an error, decided by carbon.pue with a fix
    raise ConfigError(f"{name} must be a number >= 1.0 or 'datacenter'; got {value!r}")


def _year(value: Any, name: str) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise ConfigError(f"{name} must be a year such as 2024; got {value!r}")
    return int(text)


def _directory(value: Any, name: str) -> Path:
    path = Path(_text(str(value), name)).expanduser()
    if not path.is_dir():
        raise ConfigError(f"{name} {str(path)!r} is not a directory; point it at a mounted tree")
    return path


def _db(value: Any, name: str) -> Path | str | None:
    """A store file path, or ``"off"`` (also ``false``/``none``/``no``): keep runs in memory."""
    if value is None:
        return None
    if value is False or str(value).strip().lower() in ("off", "false", "none", "no"):
        return "off"
    path = Path(_text(str(value), name)).expanduser()
    if path.is_dir():
        raise ConfigError(f"{name} {str(path)!r} is a directory; give a file path such as "
                          "runs.db, or 'off' to keep runs in memory only")
    return path


def _file(value: Any, name: str) -> Path | None:
    if value is None:
        return None
    path = Path(_text(str(value), name)).expanduser()
    if not path.is_file():
        raise ConfigError(f"{name} {str(path)!r} is not a file; give a CSV with columns "
                          "t_s,domain,power_w")
    return path


def _params(value: Any, name: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, str):
        out: dict[str, Any] = {}
        for item in filter(None, (s.strip() for s in value.split(","))):
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"{name} items must be key=value; got {item!r}")
            out[key.strip()] = val.strip()
        return out
    raise ConfigError(f"{name} must be a dict or 'key=value,...'; got {value!r}")


def _watts(value: Any, name: str) -> dict[str, float] | None:
    """``{"cpu": 65, "gpu:0": 250}`` or ``"cpu=65,gpu:0=250"`` (watts per device)."""
    if value is None:
        return None
    pairs = _params(value, name)
    if not pairs:
        raise ConfigError(f"{name} must give watts per device, e.g. 'cpu=65,memory=5'")
    out = {}
    for device, raw in pairs.items():
        try:
            watts = float(raw)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{name}: watts for {device!r} must be a number; got {raw!r}") from None
        if not math.isfinite(watts) or watts < 0:
            raise ConfigError(f"{name}: watts for {device!r} must be >= 0; got {raw!r}")
        out[device] = watts
    return out


def _optional_url(value: Any, name: str) -> str | None:
    if value is None:
        return None
    text = _text(value, name)
    if not text.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http:// or https:// URL; got {value!r}")
    return text.rstrip("/")


def _choice(*choices: str) -> Callable[[Any, str], str | None]:
    def parse(value: Any, name: str) -> str | None:
        if value is None:
            return None
        text = str(value).strip().lower()
        if text not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}."
                              f"{did_you_mean(text, choices)}")
        return text

    return parse


def _number(value: Any, error: str) -> float:
    """``value`` as a float (a bool is not a number here); ConfigError(error) otherwise."""
    if isinstance(value, bool):
        raise ConfigError(error)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(error) from None


def _factor(value: Any, name: str) -> float | None:
    """An emission factor in g/kWh (a contract's, for market-based accounting)."""
    if value is None:
        return None
    grams = _number(value, f"{name} must be an emission factor in g CO2e/kWh (e.g. 0 for a "
                           f"100 % renewable contract, 250); got {value!r}")
    if not math.isfinite(grams) or not 0 <= grams <= 2000:
        raise ConfigError(f"{name} must be between 0 and 2000 g CO2e/kWh; got {value!r}")
    return grams


def _basis(value: Any, name: str) -> str:
    """``lifecycle`` or ``operational``; ``direct`` (Electricity Maps' word) is operational."""
    text = str(value).strip().lower()
    text = "operational" if text == "direct" else text
    return _choice("lifecycle", "operational")(text, name) or "lifecycle"


ATTRIBUTION_POLICIES = ("process", "machine")


def _attribution(value: Any, name: str) -> str:
    text = str(value).strip().lower()
    if text not in ATTRIBUTION_POLICIES:
        raise ConfigError(f"{name} must be 'process' (the job's share of each device) or "
                          f"'machine' (all of it is the job's); got {value!r}."
                          f"{did_you_mean(text, ATTRIBUTION_POLICIES)}")
    return text


def _budget(unit: str, example: str) -> Callable[[Any, str], float | None]:
    """A positive, finite budget in ``unit`` (None: no budget)."""

    def parse(value: Any, name: str) -> float | None:
        if value is None:
            return None
        amount = _number(value, f"{name} must be a number of {unit} (e.g. {example}); "
                                f"got {value!r}")
        if not math.isfinite(amount) or amount <= 0:
            raise ConfigError(f"{name} must be a positive number of {unit} (e.g. {example}); "
                              f"got {value!r}. Fix: give the most the run may use, or leave it "
                              "unset for no budget")
        return amount

    return parse


def _predict_after(value: Any, name: str) -> float:
    units = _number(value, f"{name} must be a number of completed epochs or steps (e.g. 2); "
                           f"got {value!r}")
    if not math.isfinite(units) or units < 1:
        raise ConfigError(f"{name} must be at least 1 (the units completed before the first "
                          f"prediction); got {value!r}")
    return units


MAX_IDLE_MEASURE_S = 600.0


def _idle_seconds(value: Any, name: str) -> float:
    """0 (off) or a number of seconds to measure idle power before the run."""
    seconds = _number(value, f"{name} must be a number of seconds (0: no measured baseline); "
                             f"got {value!r}")
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_IDLE_MEASURE_S:
        raise ConfigError(f"{name} must be between 0 (off) and {MAX_IDLE_MEASURE_S:g} s; got "
                          f"{value!r}")
    return seconds


@dataclass(frozen=True)
class OptionSpec:
    name: str
    parse: Callable[[Any, str], Any]
    default: Any
    help: str
    # a credential: set through the environment or a config file (no command-line flag, which
    # would land in shell history and in the run's argv), never written into a result
    secret: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


SPECS: tuple[OptionSpec, ...] = (
    OptionSpec("project", _text, "default", "project the run belongs to"),
    OptionSpec("name", _optional_text, None, "run name (default: script or command name)"),
    OptionSpec("tags", _tags, (), "comma-separated tags"),
    OptionSpec("params", _params, {}, "user parameters recorded with the run: key=value,..."),
    OptionSpec("country", _optional_text, None, "ISO 3166 code (DE, DEU, 276) or English name"),
    OptionSpec("cloud_provider", _optional_text, None, "aws, azure or gcp (sets the fleet PUE)"),
    OptionSpec("cloud_region", _optional_text, None, "provider region id, e.g. europe-west1"),
    OptionSpec("zone", _optional_text, None, "grid zone: an Electricity Maps zone id (US-CAL-CISO, "
               "SE-SE3) or an ISO 3166-2 code mapped to one"),
    OptionSpec("cloud_detect", _bool, True, "on a cloud VM (named by local DMI data), ask the "
               "provider's metadata endpoint for the region"),
    OptionSpec("metadata_url", _optional_url, None, "base URL of the instance-metadata endpoint "
               "(default: the provider's own)"),
    OptionSpec("ip_geolocation", _bool, False, "guess the country from this machine's public IP "
               "(sends a request; off unless asked)"),
    OptionSpec("geolocation_url", _optional_url, None, "IP geolocation service to ask"),
    OptionSpec("intensity_provider", _choice("electricitymaps", "watttime", "ukci"), None,
               "hourly intensity from a live provider (network): electricitymaps, watttime "
               "(marginal) or ukci (UK Carbon Intensity)"),
    OptionSpec("intensity_basis", _basis, "lifecycle",
               "emission-factor basis: lifecycle or operational (direct)"),
    OptionSpec("intensity_url", _optional_url, None, "base URL of the intensity provider's API"),
    OptionSpec("intensity_region", _optional_text, None, "the provider's own region where it "
               "is not a grid zone: a WattTime region (CAISO_NORTH) or a UK region id (13)"),
    OptionSpec("electricitymaps_token", _optional_text, None, "Electricity Maps API token",
               secret=True),
    OptionSpec("watttime_username", _optional_text, None, "WattTime user name", secret=True),
    OptionSpec("watttime_password", _optional_text, None, "WattTime password", secret=True),
    OptionSpec("market_factor", _factor, None, "your contract's emission factor (g CO2e/kWh) for "
               "a market-based figure beside the location-based one"),
    OptionSpec("instance_type", _optional_text, None, "cloud instance type (for its embodied "
               "emissions; detected on clouds)"),
    OptionSpec("embodied", _optional_text, None, "embodied emissions of your own hardware, "
               "amortised over the run: server=1200kg/4y,gpu=150kg/5y"),
    OptionSpec("pue", _pue, None, "PUE >= 1.0, or 'datacenter' (industry average 1.56)"),
    OptionSpec("data_year", _year, None, "year of the emission factors (default: the run's own "
               "year where final data exists, else the latest final year)"),
    OptionSpec("backend", _backends, ("auto",), "backends by name, comma-separated, or 'auto'"),
    OptionSpec("constant_power", _watts, None, "watts per device for 'constant': cpu=65,gpu=250"),
    OptionSpec("fake_trace", _file, None, "CSV trace (t_s,domain,power_w) for the 'fake' backend"),
    OptionSpec("gpus", _gpus, None, "GPUs to measure: indices or UUIDs (NVML's; AMD SMI's or "
               "ROCr GPU- UUIDs), comma-separated, or 'all' (default: those "
               "CUDA_/ROCR_/HIP_VISIBLE_DEVICES show)"),
    OptionSpec("gpu_sync", _bool, False, "wait for queued GPU work (torch, CuPy, JAX) at phase "
               "edges, so a phase gets the GPU energy of the work launched inside it"),
    OptionSpec("attribution", _attribution, "process", "how device energy is shared out: "
               "'process' (the job's CPU-time, RSS and GPU-utilisation share) or 'machine'"),
    OptionSpec("idle_power", _watts, None, "idle baseline in watts per device or domain "
               "(cpu=12,memory=3,gpu=55): energy above it is dynamic"),
    OptionSpec("idle_measure_s", _idle_seconds, 0.0, "measure the idle baseline for this many "
               "seconds before the run starts (0: off); start() waits that long"),
    OptionSpec("predict_after", _predict_after, 2, "predict the run's total duration, energy "
               "and CO2e after this many epochs (or steps) of progress()"),
    OptionSpec("max_emissions_g", _budget("grams of CO2e", "500"), None,
               "carbon budget in g CO2e (see budget_on and budget_action)"),
    OptionSpec("max_energy_kwh", _budget("kWh", "2.5"), None, "energy budget in kWh"),
    OptionSpec("budget_on", _choice("actual", "predicted", "both"), "actual",
               "apply budgets to the actual figure so far, the predicted total, or both"),
    OptionSpec("budget_action", _choice("warn", "stop"), "warn", "when a budget is crossed: "
               "warn, or stop training gracefully (through the framework callbacks)"),
    OptionSpec("interval", _seconds, DEFAULT_INTERVAL_S, "seconds between samples"),
    OptionSpec("flush_interval", _seconds, DEFAULT_FLUSH_INTERVAL_S,
               "seconds between store writes"),
    OptionSpec("db", _db, None, "run store file (SQLite), or 'off'; default: the user data "
               "directory (docs/store.md)"),
    OptionSpec("sysfs_root", _directory, Path("/sys"), "root of sysfs (containers: /host/sys)"),
    OptionSpec("procfs_root", _directory, Path("/proc"), "root of procfs (containers: /host/proc)"),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
ENV_NAMES = {spec.env: spec for spec in SPECS}


@dataclass(frozen=True)
class Options:
    """Resolved options; ``sources`` says where each value came from."""

    values: dict[str, Any]
    sources: dict[str, str]

    def __getattr__(self, name: str) -> Any:
        # not for dunder names or ``values`` itself: copy and pickle look those up on an
        # instance whose fields are not set yet
        if name.startswith("__") or name in ("values", "sources"):
            raise AttributeError(name)
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        shown = {name: "<set>" if value is not None and SPEC_BY_NAME[name].secret else value
                 for name, value in self.values.items()}
        return f"Options(values={shown!r}, sources={self.sources!r})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (paths as strings, backend instances by name) with their sources;
        credentials appear as ``"<set>"``, never their value."""
        return {
            name: {"value": "<set>" if value is not None and SPEC_BY_NAME[name].secret
                   else _plain(value), "source": self.sources[name]}
            for name, value in self.values.items()
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [v if isinstance(v, (str, int, float)) else getattr(v, "name", repr(v))
                for v in value]
    return value


def check_names(names: Mapping[str, Any], where: str) -> None:
    """ConfigError for an unknown option name, naming the closest valid one."""
    for key in names:
        if key not in SPEC_BY_NAME:
            hint = did_you_mean(key, SPEC_BY_NAME) or f" Valid options: {', '.join(SPEC_BY_NAME)}."
            raise ConfigError(f"unknown option {key!r} {where}.{hint}")


def env_options(environ: Mapping[str, str]) -> dict[str, str]:
    """Options set through ``CARBONMONITOR_*`` variables; a misspelt one is a ConfigError."""
    out = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        spec = ENV_NAMES.get(key)
        if spec is None:
            hint = did_you_mean(key, ENV_NAMES) or f" Valid: {', '.join(ENV_NAMES)}."
            raise ConfigError(f"unknown environment variable {key}.{hint}")
        out[spec.name] = value
    return out


def resolve(
    arguments: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    files: Sequence[ConfigFile] = (),
    where: str = "in arguments",
    flags: bool = False,
) -> Options:
    """Merge arguments > environment > defaults, parse and check every value.

    ``files`` are config files, nearest first (carbonmonitor.toml before pyproject.toml).
    ``None`` in arguments means "not given". Raises ConfigError on the first bad value, naming
    it as the user spelt it (``--cloud-region`` when ``flags``, else ``cloud_region``).
    """
    check_names(arguments, where)
    env = env_options(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SPECS:
        if arguments.get(spec.name) is not None:
            raw, source = arguments[spec.name], "argument"
            label = spec.flag if flags else spec.name
        elif spec.name in env:
            raw, source, label = env[spec.name], "environment", spec.env
        else:
            found = next((f for f in files if spec.name in f.values), None)
            if found is None:
                values[spec.name], sources[spec.name] = spec.default, "default"
                continue
            raw, source = found.values[spec.name], f"config: {found.label}"
            label = f"{spec.name} in {found.label}"
        values[spec.name] = spec.parse(raw, label)
        sources[spec.name] = source
    return Options(values, sources)
