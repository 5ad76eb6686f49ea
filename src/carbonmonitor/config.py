"""Config files: ``carbonmonitor.toml`` and ``[tool.carbonmonitor]`` in ``pyproject.toml``.

Each is searched upward from the working directory (the nearest of each kind counts). Keys are
option names (``cloud_region``; ``cloud-region`` is accepted too). Relative paths (``db``,
``fake_trace``, ``sysfs_root``, ``procfs_root``) are relative to the file that sets them.
Precedence: arguments/flags > environment > carbonmonitor.toml > pyproject.toml > defaults.

Example ``carbonmonitor.toml``::

    project = "bert-code"
    country = "DE"
    tags = ["baseline"]
    [params]
    lr = 3e-4
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonmonitor.errors import ConfigError, did_you_mean

CONFIG_NAME = "carbonmonitor.toml"
PYPROJECT = "pyproject.toml"
PATH_OPTIONS = ("db", "fake_trace", "sysfs_root", "procfs_root")


@dataclass(frozen=True)
class ConfigFile:
    """Options read from one file; ``label`` names it in results and errors."""

    path: Path
    values: dict[str, Any]

    @property
    def label(self) -> str:
        table = " [tool.carbonmonitor]" if self.path.name == PYPROJECT else ""
        return f"{self.path}{table}"


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10
        import tomli as tomllib
    try:
        with path.open("rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML ({err}); fix the file or remove it") from err
    except OSError as err:
        raise ConfigError(f"cannot read {path} ({err.strerror or err}); make it readable or "
                          "remove it") from err


def _options_from(table: dict[str, Any], path: Path) -> dict[str, Any]:
    """Option names checked (closest valid name on a typo) and relative paths anchored."""
    from carbonmonitor.options import SPEC_BY_NAME

    where = f"{path} [tool.carbonmonitor]" if path.name == PYPROJECT else str(path)
    out = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in SPEC_BY_NAME:
            hint = did_you_mean(name, SPEC_BY_NAME) or f" Valid keys: {', '.join(SPEC_BY_NAME)}."
            raise ConfigError(f"unknown key {key!r} in {where}.{hint}")
        if SPEC_BY_NAME[name].secret and path.name == PYPROJECT:
            raise ConfigError(f"{key} in {where}: a credential does not belong in "
                              "pyproject.toml, which is usually committed. Fix: remove it and "
                              f"set {SPEC_BY_NAME[name].env} in the environment (or put it in "
                              "an uncommitted carbonmonitor.toml)")
        if (name in PATH_OPTIONS and isinstance(value, str) and not Path(value).is_absolute()
                and value.strip().lower() not in ("off", "false", "none", "no")):
            value = str(path.parent / Path(value).expanduser())
        out[name] = value
    return out


# ``[tool.carbonmonitor]``, ``[tool."carbonmonitor"]``, ``tool.carbonmonitor.x = ...``; a bare
# ``[tool]`` table could hold ``carbonmonitor = {...}``.
_OUR_TABLE = re.compile(rb"""tool\s*\.\s*["']?carbonmonitor\b|^\s*\[\s*tool\s*\]""", re.M)


def _mentions_us(path: Path) -> bool:
    """Whether a pyproject.toml could hold our table: most do not, and parsing TOML (importing
    the parser first) costs several ms of every tracker's start-up. An unreadable file is
    parsed, so its error is reported."""
    try:
        return _OUR_TABLE.search(path.read_bytes()) is not None
    except OSError:
        return True


def find_config_files(start: Path | None = None) -> list[ConfigFile]:
    """The nearest carbonmonitor.toml, then the nearest pyproject.toml with a
    ``[tool.carbonmonitor]`` table, searching upward from ``start`` (default: cwd)."""
    folder = (start or Path.cwd()).resolve()
    found: dict[str, ConfigFile] = {}
    for directory in (folder, *folder.parents):
        if CONFIG_NAME not in found and (directory / CONFIG_NAME).is_file():
            path = directory / CONFIG_NAME
            found[CONFIG_NAME] = ConfigFile(path, _options_from(_load_toml(path), path))
        if PYPROJECT not in found and (directory / PYPROJECT).is_file() \
                and _mentions_us(directory / PYPROJECT):
            path = directory / PYPROJECT
            table = _load_toml(path).get("tool", {}).get("carbonmonitor")
            if table is not None:
                if not isinstance(table, dict):
                    raise ConfigError(f"{path}: [tool.carbonmonitor] must be a table of options")
                found[PYPROJECT] = ConfigFile(path, _options_from(table, path))
        if len(found) == 2:
            break
    return [found[k] for k in (CONFIG_NAME, PYPROJECT) if k in found]
