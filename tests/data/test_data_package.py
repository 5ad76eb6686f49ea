"""The shipped reference tables: copies of ../shared/data, a manifest, licences, the loader."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from carbonmonitor.data import preliminary_years, read_table, table_versions
from carbonmonitor.errors import DataError

PACKAGE_DATA = Path(str(resources.files("carbonmonitor.data")))
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
COPIED = (
    "embodied/ccf_embodied_aws.csv",
    "embodied/ccf_embodied_azure.csv",
    "embodied/ccf_embodied_gcp.csv",
    "embodied/ccf_embodied_gcp_mean.csv",
    "embodied/boavizta_manufacturer_pcf_datacenter.csv",
    "subnational/electricitymaps_yearly_2024_direct_and_lifecycle.csv",
    "grid/owid_electricity_by_country_year.csv",
    "grid/iso3166_countries.csv",
    "grid/lifecycle_emission_factors.csv",
    "cloud/gcp_region_carbon_info_2019_2024.csv",
    "cloud/pue.csv",
    "subnational/electricitymaps_yearly_2021_2025.csv",
    "hardware/cpu_tdp_codecarbon.csv",
    "hardware/cpu_tdp_greenalgorithms.csv",
    "hardware/ccf_cpu_power_coefficients.csv",
    "hardware/cpu_microarchitecture_ccf.csv",
    "hardware/gpu_tdp.csv",
)
CURATED_HERE = ("hardware/memory_power.csv", "grid/country_aliases.csv",
                "embodied/ccf_instance_vcpus.csv", "embodied/embodied_sources.csv",
                "grid/iso3166_2_zones.csv",
                # the shared table with 6 zones corrected or filled (see its notes column)
                "cloud/cloud_regions.csv")


def parse(relpath: str) -> list[dict[str, str]]:
    with (PACKAGE_DATA / relpath).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def manifest() -> list[dict[str, str]]:
    return parse("MANIFEST.csv")


def shipped_tables() -> set[str]:
    return {p.relative_to(PACKAGE_DATA).as_posix() for p in PACKAGE_DATA.rglob("*.csv")} - {
        "MANIFEST.csv"
    }


@pytest.mark.parametrize("relpath", COPIED)
def test_copied_table_equals_shared_data_byte_for_byte(relpath):
    assert (SHARED_DATA / relpath).is_file(), f"reference copy missing: {SHARED_DATA / relpath}"
    assert (PACKAGE_DATA / relpath).read_bytes() == (SHARED_DATA / relpath).read_bytes()


def test_manifest_lists_exactly_the_shipped_tables():
    paths = [r["path"] for r in manifest()]
    assert len(paths) == len(set(paths))
    assert set(paths) == shipped_tables() == set(COPIED) | set(CURATED_HERE)


def test_manifest_rows_are_complete():
    for row in manifest():
        for column in ("concept", "source", "source_commit_or_version", "licence", "attribution"):
            assert row[column].strip(), (row["path"], column)


def test_curated_versions_are_content_hashes():
    for row in manifest():
        version = row["source_commit_or_version"]
        if version.startswith("sha256:"):
            digest = hashlib.sha256((PACKAGE_DATA / row["path"]).read_bytes()).hexdigest()
            assert digest.startswith(version.removeprefix("sha256:")), row["path"]


def test_table_versions_come_from_manifest():
    versions = table_versions()
    assert versions == {
        r["path"]: f"{r['source']}@{r['source_commit_or_version']}" for r in manifest()
    }


def test_preliminary_years_come_from_manifest():
    for row in manifest():
        expected = {int(y) for y in row["preliminary_years"].split()}
        assert preliminary_years(row["path"]) == expected
    assert preliminary_years("grid/owid_electricity_by_country_year.csv") == {2025}
    assert preliminary_years("subnational/electricitymaps_yearly_2021_2025.csv") == {2025}
    assert preliminary_years("cloud/gcp_region_carbon_info_2019_2024.csv") == frozenset()


def test_preliminary_years_of_unlisted_table():
    with pytest.raises(DataError, match="nope.csv"):
        preliminary_years("nope.csv")


@pytest.mark.parametrize("relpath", [*COPIED, *CURATED_HERE, "MANIFEST.csv"])
def test_read_table_returns_strings_as_in_file(relpath):
    assert list(read_table(relpath)) == parse(relpath)


def test_namibia_code_stays_na():
    namibia = next(r for r in read_table("grid/iso3166_countries.csv") if r["alpha3"] == "NAM")
    assert namibia["alpha2"] == "NA"


def test_read_table_is_cached():
    assert read_table("cloud/pue.csv") is read_table("cloud/pue.csv")


def test_missing_table_names_the_file():
    with pytest.raises(DataError, match="grid/missing.csv"):
        read_table("grid/missing.csv")


def test_memory_power_row():
    (row,) = parse("hardware/memory_power.csv")
    assert (row["technology"], row["watts_per_gb"], row["low_watts_per_gb"],
            row["high_watts_per_gb"]) == ("any", "0.392", "0.196", "0.588")
    assert row["licence"] == "Apache-2.0"
    assert row["source_url"] == "https://www.cloudcarbonfootprint.org/docs/methodology"
    assert "not a published range" in row["note"]


def test_importing_reads_no_file():
    code = (
        "import carbonmonitor.data as d, sys; "
        "sys.exit(d.read_table.cache_info().currsize)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_every_licence_has_a_notice_and_every_table_an_attribution():
    notices = {p.name for p in (PACKAGE_DATA / "LICENSES").iterdir()}
    assert {"CC-BY-4.0.txt", "ODbL-1.0.txt", "Apache-2.0.txt", "MIT-codecarbon.txt",
            "PDDL-1.0.txt"} <= notices
    spdx = {"CC-BY-4.0", "ODbL-1.0", "Apache-2.0", "MIT", "PDDL-1.0"}
    for licence in {r["licence"] for r in manifest()} & spdx:
        assert any(n.startswith(licence) for n in notices), licence
    notice = (Path(__file__).resolve().parents[2] / "NOTICE").read_text(encoding="utf-8")
    for relpath in shipped_tables():
        assert relpath in notice, relpath


def test_odbl_table_keeps_its_notice():
    text = (PACKAGE_DATA / "LICENSES" / "ODbL-1.0.txt").read_text(encoding="utf-8")
    assert "subnational/electricitymaps_yearly_2021_2025.csv" in text
    assert "Electricity Maps" in text
