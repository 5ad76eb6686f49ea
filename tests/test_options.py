"""Options: one table, three spellings, precedence arguments > environment > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonmonitor.errors import ConfigError
from carbonmonitor.options import DEFAULT_INTERVAL_S, SPECS, resolve

REQUIRED = {"project", "name", "tags", "country", "cloud_provider", "cloud_region", "pue",
            "backend", "interval", "flush_interval", "db", "sysfs_root", "procfs_root"}


def test_every_required_option_has_three_spellings() -> None:
    names = {s.name for s in SPECS}
    assert REQUIRED <= names
    for spec in SPECS:
        assert spec.flag == "--" + spec.name.replace("_", "-")
        assert spec.env == "CARBONMONITOR_" + spec.name.upper()


def test_precedence_argument_over_environment_over_default() -> None:
    env = {"CARBONMONITOR_COUNTRY": "FR", "CARBONMONITOR_INTERVAL": "2.5"}
    opts = resolve({"country": "DE"}, environ=env)
    assert (opts.country, opts.sources["country"]) == ("DE", "argument")
    assert (opts.interval, opts.sources["interval"]) == (2.5, "environment")
    assert (opts.flush_interval, opts.sources["flush_interval"]) == (10.0, "default")
    assert resolve({}, environ={}).interval == DEFAULT_INTERVAL_S


def test_none_argument_means_not_given() -> None:
    opts = resolve({"country": None}, environ={"CARBONMONITOR_COUNTRY": "FR"})
    assert opts.country == "FR"


@pytest.mark.parametrize("raw, expected", [
    ("a,b, c", ("a", "b", "c")), (["x", "y"], ("x", "y")), ("", ()), ([1, 2], ("1", "2")),
])
def test_tags_from_string_or_list(raw: object, expected: tuple[str, ...]) -> None:
    assert resolve({"tags": raw}, environ={}).tags == expected


def test_params_and_constant_power_parse_key_values() -> None:
    opts = resolve({"params": "lr=0.1,bs=32", "constant_power": "cpu=65,gpu:0=250"}, environ={})
    assert opts.params == {"lr": "0.1", "bs": "32"}
    assert opts.constant_power == {"cpu": 65.0, "gpu:0": 250.0}


@pytest.mark.parametrize("kwargs, fragment", [
    ({"interval": -1}, "interval must be a positive number"),
    ({"interval": "soon"}, "interval must be a number"),
    ({"flush_interval": 0}, "flush_interval must be a positive"),
    ({"procfs_root": "/definitely/not/here"}, "is not a directory"),
    ({"params": "novalue"}, "key=value"),
    ({"constant_power": "cpu=-3"}, "must be >= 0"),
    ({"data_year": "last"}, "year such as 2024"),
    ({"backend": ""}, "at least one backend"),
    ({"interval": 1e-300}, "between 0.01 and 3600"),
    ({"interval": 7200}, "between 0.01 and 3600"),
    ({"interval": True}, "number of seconds"),
    ({"data_year": 2024.9}, "year such as 2024"),
])
def test_bad_values_name_the_option_and_the_fix(kwargs: dict[str, object],
                                                fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        resolve(kwargs, environ={})


def test_unknown_argument_names_closest_option() -> None:
    with pytest.raises(ConfigError, match="'cloud_regoin'.*Did you mean 'cloud_region'"):
        resolve({"cloud_regoin": "x"}, environ={})


def test_unknown_environment_variable_names_closest() -> None:
    with pytest.raises(ConfigError, match="CARBONMONITOR_PEU.*CARBONMONITOR_PUE"):
        resolve({}, environ={"CARBONMONITOR_PEU": "1.2"})


def test_flag_style_labels_errors_as_flags() -> None:
    with pytest.raises(ConfigError, match="--interval"):
        resolve({"interval": "-2"}, environ={}, flags=True)


def test_db_must_not_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        resolve({"db": tmp_path}, environ={})
    assert resolve({"db": tmp_path / "runs.db"}, environ={}).db == tmp_path / "runs.db"


def test_docs_list_every_option() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "options.md").read_text()
    for spec in SPECS:
        flag = "(none: secret)" if spec.secret else f"`{spec.flag}`"
        assert f"`{spec.name}`" in doc and flag in doc and f"`{spec.env}`" in doc


def test_credentials_never_reach_a_result_or_a_flag() -> None:
    from carbonmonitor.cli import UsageError, build_parser

    opts = resolve({"electricitymaps_token": "tok-123"}, environ={})
    assert opts.electricitymaps_token == "tok-123"
    assert opts.to_dict()["electricitymaps_token"] == {"value": "<set>", "source": "argument"}
    assert "tok-123" not in repr(opts.to_dict())
    with pytest.raises(UsageError, match="unknown option --electricitymaps-token"):
        build_parser().parse_args(["run", "--electricitymaps-token", "x", "--", "true"])


def test_credentials_are_masked_in_repr_and_refused_in_pyproject(tmp_path: Path) -> None:
    from carbonmonitor.config import find_config_files

    opts = resolve({"watttime_password": "hunter2"}, environ={})
    assert "hunter2" not in repr(opts) and "<set>" in repr(opts)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.carbonmonitor]\nelectricitymaps_token = "tok"\n')
    with pytest.raises(ConfigError, match="CARBONMONITOR_ELECTRICITYMAPS_TOKEN"):
        find_config_files(tmp_path)


def test_direct_is_the_operational_basis() -> None:
    assert resolve({"intensity_basis": "direct"}, environ={}).intensity_basis == "operational"
    with pytest.raises(ConfigError, match="lifecycle, operational"):
        resolve({"intensity_basis": "marginal"}, environ={})


def test_one_backend_object_is_taken_as_a_list_of_one() -> None:
    from carbonmonitor import FakeBackend, ManualClock, Tracker

    fake = FakeBackend({"cpu": 10.0})
    clock = ManualClock()
    tracker = Tracker(backend=fake, clock=clock, sampling="manual", quiet=True, db="off")
    tracker.start()
    clock.advance(2)
    assert tracker.stop().energy_j == 20.0
