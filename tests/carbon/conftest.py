"""Expected values for the carbon tests, read from the shipped CSVs with the csv module only.

The package is used only to locate its data folder; every value is parsed here, independently
of carbonmonitor's own readers.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

import pytest

OWID = "grid/owid_electricity_by_country_year.csv"
ISO = "grid/iso3166_countries.csv"
EM = "subnational/electricitymaps_yearly_2021_2025.csv"
GCP = "cloud/gcp_region_carbon_info_2019_2024.csv"
REGIONS = "cloud/cloud_regions.csv"
PUE = "cloud/pue.csv"


class Shipped:
    """Look-ups into the shipped tables, written for the tests."""

    @staticmethod
    @cache
    def rows(relpath: str) -> tuple[dict[str, str], ...]:
        path = resources.files("carbonmonitor.data").joinpath(relpath)
        with path.open(encoding="utf-8", newline="") as f:
            return tuple(csv.DictReader(f))

    def value(self, relpath: str, key_col: str, key: str, col: str, year: int) -> float | None:
        for row in self.rows(relpath):
            if row[key_col] == key and int(row["year"]) == year and row[col]:
                return float(row[col])
        return None

    def owid(self, iso3: str, year: int) -> float | None:
        return self.value(OWID, "iso_code", iso3, "carbon_intensity_elec", year)

    def em(self, zone: str, year: int) -> float | None:
        return self.value(EM, "zone", zone, "carbon_intensity_lifecycle_gco2e_per_kwh", year)

    def gcp(self, region: str, year: int) -> float | None:
        return self.value(GCP, "region", region, "grid_carbon_intensity_gco2e_per_kwh", year)

    def gcp_basis(self, region: str, year: int) -> str:
        return next(
            r["intensity_basis"] for r in self.rows(GCP)
            if r["region"] == region and int(r["year"]) == year
        )

    def iso(self, column: str, text: str) -> dict[str, str]:
        return next(r for r in self.rows(ISO) if r[column] == text)

    def region(self, provider: str, region: str) -> dict[str, str]:
        return next(
            r for r in self.rows(REGIONS) if r["provider"] == provider and r["region"] == region
        )

    def preliminary(self, relpath: str) -> set[int]:
        row = next(r for r in self.rows("MANIFEST.csv") if r["path"] == relpath)
        return {int(y) for y in row["preliminary_years"].split()}

    def final_year(self) -> int:
        """Latest OWID year with intensity values that the manifest does not mark preliminary."""
        years = {int(r["year"]) for r in self.rows(OWID) if r["carbon_intensity_elec"]}
        return max(years - self.preliminary(OWID))

    def pue_rows(self, provider: str, scope: str) -> list[dict[str, str]]:
        found = [r for r in self.rows(PUE) if r["provider"] == provider and r["scope"] == scope]
        return sorted(found, key=lambda r: int(r["year"]))


@pytest.fixture(scope="session")
def shipped() -> Shipped:
    return Shipped()
