from __future__ import annotations

import pytest

from carbonmonitor.carbon import Country, resolve_country
from carbonmonitor.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "column", "cell"),
    [
        ("DE", "alpha2", "DE"),
        ("de", "alpha2", "DE"),
        ("France", "name", "France"),
        ("USA", "alpha3", "USA"),
        ("356", "numeric", "356"),
        ("Namibia", "name", "Namibia"),
        ("NA", "alpha2", "NA"),
        ("United States of America", "official_name", "United States of America"),
    ],
)
def test_codes_and_names_resolve_to_the_iso_row(shipped, text, column, cell):
    row = shipped.iso(column, cell)
    country = resolve_country(text)
    assert (country.alpha2, country.alpha3) == (row["alpha2"], row["alpha3"])
    assert country.numeric == row["numeric"].zfill(3)


def test_unpadded_and_padded_numeric_codes_agree(shipped):
    row = shipped.iso("alpha3", "AFG")
    assert resolve_country(row["numeric"]) == resolve_country(row["numeric"].zfill(3))
    assert resolve_country("004").alpha3 == "AFG"


@pytest.mark.parametrize("text", ["XK", "xkx", "Kosovo", "KOSOVO"])
def test_kosovo_maps_to_owid_entity(shipped, text):
    owid = shipped.rows("grid/owid_electricity_by_country_year.csv")
    owid_code = next(r["iso_code"] for r in owid if r["country"] == "Kosovo")
    assert resolve_country(text).alpha3 == owid_code == "OWID_KOS"


def test_owid_name_is_accepted_and_used_as_display_name():
    assert resolve_country("United States") == resolve_country("US")
    assert resolve_country("USA").name == "United States"


def test_country_is_a_frozen_record():
    country = resolve_country("DE")
    assert isinstance(country, Country)
    with pytest.raises(AttributeError):
        country.name = "x"  # type: ignore[misc]


def test_unknown_country_names_value_suggestion_and_fix():
    with pytest.raises(ConfigError) as err:
        resolve_country("Germny")
    message = str(err.value)
    assert "'Germny'" in message
    assert "Did you mean 'Germany' (DE)?" in message
    assert "ISO 3166 code" in message
    assert "\n" not in message


def test_unknown_code_without_close_match_still_says_how_to_fix():
    with pytest.raises(ConfigError, match="'QQQQQQQQ'.*ISO 3166"):
        resolve_country("QQQQQQQQ")


def test_common_names_resolve_through_the_curated_alias_table() -> None:
    import csv
    from pathlib import Path

    table = (Path(__file__).resolve().parents[2] / "src" / "carbonmonitor" / "data" / "grid"
             / "country_aliases.csv")
    with open(table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    for row in rows:
        assert resolve_country(row["alias"]).alpha3 == row["alpha3"]
        assert resolve_country(row["alias"].upper()).alpha3 == row["alpha3"]


@pytest.mark.parametrize(("name", "alpha3"), [("Deutschland", "DEU"), ("Österreich", "AUT"),
                                              ("Osterreich", "AUT"), ("Sverige", "SWE")])
def test_a_countrys_own_name_is_understood(name: str, alpha3: str) -> None:
    """'Deutschland' once got "Did you mean 'Netherlands'?": a wrong suggestion is worse than
    none."""
    assert resolve_country(name).alpha3 == alpha3
