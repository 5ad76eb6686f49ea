"""Bad input in each of the three spellings of an option fails early and says how to fix it.

``track(**kwargs)`` raises ConfigError; a flag or an environment variable makes the CLI exit with
code 2 and exactly one line on stderr (no traceback), and the command is never started.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import clean_env, run_cli

import carbonmonitor


@dataclass(frozen=True)
class Bad:
    option: str  # the keyword name as the user spelt it
    value: str
    fix: str  # a part of the message that tells the user what to do instead

    @property
    def flag(self) -> str:
        return "--" + self.option.replace("_", "-")

    @property
    def env(self) -> str:
        return "CARBONMONITOR_" + self.option.upper()


CASES = {
    "unknown-country": Bad("country", "Narnia", "ISO 3166"),
    "pue-below-1": Bad("pue", "0.5", ">= 1.0"),
    "negative-interval": Bad("interval", "-1", "positive number of seconds"),
    "unknown-backend": Bad("backend", "nope", "Known backends: amdsmi, apple, auto"),
    "misspelled-option": Bad("contry", "DE", "Did you mean"),
}
IDS = list(CASES)


def _command(tmp_path: Path) -> tuple[list[str], Path]:
    """A command that leaves a marker if it ever runs."""
    marker = tmp_path / "command-ran"
    return [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"], marker


def _assert_one_line_error(stderr: str, *parts: str) -> str:
    assert "Traceback" not in stderr
    assert stderr.endswith("\n") and stderr.count("\n") == 1, repr(stderr)
    line = stderr.rstrip("\n")
    assert line.startswith("carbonmonitor: error: ")
    for part in parts:
        assert part in line, f"{part!r} not in {line!r}"
    return line


@pytest.mark.parametrize("bad", CASES.values(), ids=IDS)
def test_keyword_argument(bad: Bad) -> None:
    with pytest.raises(carbonmonitor.ConfigError) as info:
        carbonmonitor.track(**{bad.option: bad.value})
    message = str(info.value)
    assert "\n" not in message
    if bad.option == "contry":
        assert "'country'" in message
    else:
        assert bad.value in message and bad.fix in message


@pytest.mark.parametrize("bad", CASES.values(), ids=IDS)
def test_flag(bad: Bad, tmp_path: Path) -> None:
    command, marker = _command(tmp_path)
    done = run_cli(["run", bad.flag, bad.value, "--", *command])
    assert done.returncode == 2
    assert done.stdout == ""
    if bad.option == "contry":
        _assert_one_line_error(done.stderr, "--contry", "Did you mean '--country'?")
    else:
        _assert_one_line_error(done.stderr, bad.value, bad.fix)
    assert not marker.exists()


@pytest.mark.parametrize("bad", CASES.values(), ids=IDS)
def test_environment_variable(bad: Bad, tmp_path: Path) -> None:
    command, marker = _command(tmp_path)
    done = run_cli(["run", "--", *command], env=clean_env(**{bad.env: bad.value}))
    assert done.returncode == 2
    assert done.stdout == ""
    if bad.option == "contry":
        _assert_one_line_error(done.stderr, "CARBONMONITOR_CONTRY",
                               "Did you mean 'CARBONMONITOR_COUNTRY'?")
    else:
        _assert_one_line_error(done.stderr, bad.value, bad.fix)
    assert not marker.exists()


def test_flag_errors_name_the_flag() -> None:
    done = run_cli(["run", "--interval", "-1", "--", sys.executable, "-c", "pass"])
    _assert_one_line_error(done.stderr, "--interval", "'-1'")
    done = run_cli(["run", "--", sys.executable, "-c", "pass"],
                   env=clean_env(CARBONMONITOR_INTERVAL="-1"))
    _assert_one_line_error(done.stderr, "CARBONMONITOR_INTERVAL", "'-1'")


def test_misspelled_flag_with_equals_sign() -> None:
    done = run_cli(["run", "--contry=DE", "--", sys.executable, "-c", "pass"])
    assert done.returncode == 2
    _assert_one_line_error(done.stderr, "--contry=DE", "Did you mean '--country'?")


@pytest.mark.parametrize("args", [["run"], ["run", "--"], ["run", "--country", "DE"],
                                  ["run", "--backend", "fake", "--"]],
                         ids=["bare", "double-dash", "options-only", "options-double-dash"])
def test_run_without_a_command(args: list[str]) -> None:
    done = run_cli(args)
    assert done.returncode == 2
    assert done.stdout == ""
    _assert_one_line_error(done.stderr, "no command given",
                           "carbonmonitor run [options] -- COMMAND")


def test_unknown_subcommand() -> None:
    done = run_cli(["rnu", "--", "true"])
    assert done.returncode == 2
    _assert_one_line_error(done.stderr, "'rnu'", "run")


@pytest.mark.parametrize("where", ["empty", "blank", "folder", "folder-slash", "missing-folder",
                                   "missing-folder-slash"])
def test_unusable_json_path_is_rejected_before_the_command_starts(
        where: str, tmp_path: Path) -> None:
    command, marker = _command(tmp_path)
    path, fix = {
        "empty": ("", "file path"),
        "blank": ("  ", "file path"),
        "folder": (str(tmp_path), "folder"),
        "folder-slash": (f"{tmp_path}/", "folder"),
        "missing-folder": (str(tmp_path / "no-such-dir" / "r.json"), "does not exist"),
        "missing-folder-slash": (f"{tmp_path / 'no-such-dir'}/", "folder"),
    }[where]
    done = run_cli(["run", "--backend", "fake", "--json", path, "--", *command])
    assert done.returncode == 2
    assert done.stdout == ""
    _assert_one_line_error(done.stderr, "--json", fix)
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written anywhere


@pytest.mark.parametrize("args, fix", [
    (["--pue", "0.5"], "Fix: pass e.g. --pue 1.2, or --pue 'datacenter'"),
    (["--data-year", "1800"], "omit --data-year for"),
    (["--cloud-region", "eu-west-1", "--country", "DE"],
     "drop --country or correct --cloud-region"),
])
def test_fixes_are_spelt_as_flags_on_the_command_line(args: list[str], fix: str) -> None:
    done = run_cli(["run", *args, "--", sys.executable, "-c", "pass"])
    assert done.returncode == 2
    line = _assert_one_line_error(done.stderr, fix)
    assert "pue=" not in line and "data_year=" not in line and "country=" not in line
