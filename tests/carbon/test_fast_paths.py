"""The start-up shortcuts give exactly what the full reads give."""

from __future__ import annotations

from carbonmonitor.carbon import countries
from carbonmonitor.data import read_columns, read_matching

OWID = countries.OWID_TABLE


def test_every_code_resolves_as_the_full_index_does() -> None:
    full = countries._index()
    codes = countries._codes()
    assert len(codes) > 700
    for key in codes:
        assert countries.resolve_country(key) == full[key], key


def test_read_matching_equals_filtering_the_full_table() -> None:
    columns = countries.OWID_COLUMNS
    rows = read_columns(OWID, columns)
    for keys in [("DEU",), ("OWID_WRL",), ("USA", "FRA"), ("NAM",), ("nothing",)]:
        expected = tuple(r for r in rows if r["iso_code"] in keys)
        assert read_matching(OWID, columns, "iso_code", keys) == expected, keys
