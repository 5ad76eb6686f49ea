"""Config files: carbonmonitor.toml and [tool.carbonmonitor], searched upward, with precedence
arguments > environment > carbonmonitor.toml > pyproject.toml > defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from carbonmonitor import ConfigError, Tracker
from carbonmonitor.config import find_config_files


def tracker(where: Path, environ: dict[str, str] | None = None, **kwargs: object) -> Tracker:
    return Tracker(backend="fake", sampling="manual", quiet=True, config_dir=where,
                   environ=environ or {}, cloud_detect=False, **kwargs)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """root/pyproject.toml and root/sub/carbonmonitor.toml; work happens in root/sub/deeper."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.carbonmonitor]\nproject = "from-pyproject"\n'
        'country = "FR"\npue = 1.3\ntags = ["p"]\ninterval = 4\n')
    sub = tmp_path / "sub"
    (sub / "deeper").mkdir(parents=True)
    (sub / "carbonmonitor.toml").write_text(
        'country = "DE"\ntags = ["c", "d"]\ndb = "runs/cm.db"\n[params]\nlr = 0.001\n')
    return sub / "deeper"


def test_precedence_across_all_sources(project: Path) -> None:
    t = tracker(project, environ={"CARBONMONITOR_TAGS": "env"}, pue=1.1)
    opts = t.options
    assert opts.pue == 1.1 and opts.sources["pue"] == "argument"
    assert opts.tags == ("env",) and opts.sources["tags"] == "environment"
    assert opts.country == "DE" and "carbonmonitor.toml" in opts.sources["country"]
    assert opts.project == "from-pyproject"
    assert opts.sources["project"].endswith("pyproject.toml [tool.carbonmonitor]")
    assert opts.interval == 4.0
    assert opts.params == {"lr": 0.001}
    assert opts.flush_interval == 10.0 and opts.sources["flush_interval"] == "default"
    assert t.location.country_iso3 == "DEU"


def test_relative_paths_are_relative_to_the_file(project: Path) -> None:
    opts = tracker(project).options
    assert opts.db == project.parent / "runs" / "cm.db"


def test_sources_reach_the_result(project: Path) -> None:
    result = tracker(project).start().stop()
    assert "carbonmonitor.toml" in result.options["country"]["source"]


def test_unknown_key_names_file_key_and_closest(tmp_path: Path) -> None:
    (tmp_path / "carbonmonitor.toml").write_text('contry = "DE"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'contry' in .*carbonmonitor.toml\. "
                                          r"Did you mean 'country'\?"):
        tracker(tmp_path)


def test_bad_value_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.carbonmonitor]\ninterval = -1\n")
    with pytest.raises(ConfigError, match=r"interval in .*pyproject.toml \[tool.carbonmonitor\] "
                                          r"must be a positive"):
        tracker(tmp_path)


def test_malformed_file_is_a_config_error_with_position(tmp_path: Path) -> None:
    (tmp_path / "carbonmonitor.toml").write_text('country = "DE\n')
    with pytest.raises(ConfigError, match=r"carbonmonitor.toml is not valid TOML \(.*line 1"):
        tracker(tmp_path)


def test_dashed_keys_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "carbonmonitor.toml").write_text('cloud-region = "europe-west1"\n')
    assert tracker(tmp_path).location.cloud_region == "europe-west1"


def test_pyproject_without_table_is_ignored_and_search_continues(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.carbonmonitor]\ncountry = "SE"\n')
    inner = tmp_path / "pkg"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "inner"\n')
    files = find_config_files(inner)
    assert [f.path for f in files] == [tmp_path / "pyproject.toml"]
    assert tracker(inner).options.country == "SE"


@pytest.mark.parametrize("text", [
    '[tool]\ncarbonmonitor = { country = "SE" }\n',
    '[tool."carbonmonitor"]\ncountry = "SE"\n',
    'tool.carbonmonitor.country = "SE"\n',
])
def test_every_toml_spelling_of_our_table_is_read(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    assert tracker(tmp_path).options.country == "SE"


def test_a_pyproject_that_cannot_hold_our_table_is_not_parsed(tmp_path: Path) -> None:
    """Someone else's broken pyproject.toml (no carbonmonitor table in it) is not our error."""
    (tmp_path / "pyproject.toml").write_text('[project.scripts]\ncarbonmonitor = "x:main"\n[[[')
    assert find_config_files(tmp_path) == []
    (tmp_path / "pyproject.toml").write_text("[tool.carbonmonitor]\n[[[")
    with pytest.raises(ConfigError, match="not valid TOML"):
        find_config_files(tmp_path)


def bare_env() -> dict[str, str]:
    """No CARBONMONITOR_* variables, but the test's own data directory: the run is stored
    there, never in the user's store."""
    return {"PATH": "/usr/bin:/bin", "XDG_DATA_HOME": os.environ["XDG_DATA_HOME"],
            "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"]}


def test_cli_reads_config_and_reports_its_errors_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "carbonmonitor.toml").write_text('country = "Norway"\nbackend = "fake"\n')
    json_path = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-m", "carbonmonitor", "run", "--quiet", "--json",
                           str(json_path), "--", sys.executable, "-c", "pass"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=bare_env())
    assert done.returncode == 0, done.stderr
    assert '"zone": "NOR"' in json_path.read_text()
    (tmp_path / "carbonmonitor.toml").write_text("pue = 0.8\n")
    done = subprocess.run([sys.executable, "-m", "carbonmonitor", "run", "--", "true"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=bare_env())
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "0.8" in done.stderr


def test_errors_found_after_parsing_say_where_the_value_was_set(tmp_path: Path) -> None:
    (tmp_path / "carbonmonitor.toml").write_text('pue = 0.8\n')
    with pytest.raises(ConfigError, match=r"got 0.8.*\(set by pue in .*carbonmonitor.toml\)"):
        tracker(tmp_path)
    with pytest.raises(ConfigError, match=r"'Atlantis'.*\(set by CARBONMONITOR_COUNTRY\)"):
        tracker(tmp_path, environ={"CARBONMONITOR_COUNTRY": "Atlantis"}, pue=1.2)
