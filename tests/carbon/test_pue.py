from __future__ import annotations

import re

import pytest

from carbonmonitor.carbon import resolve_pue
from carbonmonitor.errors import ConfigError
from carbonmonitor.records import Pue


def latest(rows, year: int) -> dict[str, str]:
    return [r for r in rows if int(r["year"]) <= year][-1]


@pytest.mark.parametrize("value", [1.0, 1.25, 2, "1.3", " 1.4 "])
def test_number_is_user_constant(value):
    assert resolve_pue(value, "aws") == Pue(float(value), "user-constant", "given by user")


@pytest.mark.parametrize("value", [0.9, "0.9", 0, -1.0, float("nan")])
def test_number_below_one_is_rejected(value):
    expected = r"PUE must be >= 1\.0 \(total facility power / IT power\)"
    with pytest.raises(ConfigError, match=expected):
        resolve_pue(value, None)


def test_error_quotes_the_value():
    with pytest.raises(ConfigError, match="got 0.9"):
        resolve_pue(0.9, None)


@pytest.mark.parametrize("value", ["x", "", "cloud"])
def test_other_string_is_rejected(value):
    expected = f"pue must be a number >= 1.0 or 'datacenter'; got {value!r}"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        resolve_pue(value, None)


def test_bool_is_rejected():
    with pytest.raises(ConfigError):
        resolve_pue(True, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["datacenter", "DataCenter"])
def test_datacenter_is_industry_average(shipped, text):
    row = latest(shipped.pue_rows("industry", "global_average"), shipped.final_year())
    got = resolve_pue(text, "aws")
    assert got == Pue(float(row["pue"]), "industry-average", row["source"], int(row["year"]))
    assert (got.value, got.year) == (1.56, 2024)


@pytest.mark.parametrize(("provider", "value", "year"),
                         [("aws", 1.15, 2024), ("gcp", 1.09, 2024), ("azure", 1.18, 2023)])
def test_provider_fleet(shipped, provider, value, year):
    row = latest(shipped.pue_rows(provider, "fleet"), shipped.final_year())
    got = resolve_pue(None, provider.upper())
    assert got == Pue(float(row["pue"]), "provider-fleet", row["source"], int(row["year"]))
    assert (got.value, got.year) == (value, year)


def test_fleet_follows_data_year(shipped):
    rows = shipped.pue_rows("aws", "fleet")
    newest = int(rows[-1]["year"])
    assert resolve_pue(None, "aws", data_year=newest).value == float(rows[-1]["pue"])
    oldest = int(rows[0]["year"])
    assert resolve_pue(None, "aws", data_year=oldest - 5).year == oldest


def test_local_default():
    got = resolve_pue(None, None)
    assert got == Pue(1.0, "local-default", "local machine; set pue= or cloud_provider=")


def test_unknown_provider_is_rejected():
    with pytest.raises(ConfigError, match="'amazon'"):
        resolve_pue(None, "amazon")
