"""Embodied emissions: figures equal the shipped CSVs (read here with the csv module), the
instance's share of its host follows CCF's vCPU rule, amortisation is written out by hand, and
bad input fails with the fix and the syntax."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import Protocol

import pytest

from carbonmonitor.carbon.embodied import (
    SECONDS_PER_YEAR,
    SYNTAX,
    EmbodiedSource,
    amortised,
    embodied_for_instance,
    embodied_for_server,
    parse_embodied,
)
from carbonmonitor.errors import ConfigError


class Shipped(Protocol):
    """The ``shipped`` fixture of tests/carbon/conftest.py."""

    def rows(self, relpath: str) -> tuple[dict[str, str], ...]: ...

AWS = "embodied/ccf_embodied_aws.csv"
AZURE = "embodied/ccf_embodied_azure.csv"
GCP = "embodied/ccf_embodied_gcp.csv"
GCP_MEAN = "embodied/ccf_embodied_gcp_mean.csv"
VCPUS = "embodied/ccf_instance_vcpus.csv"
SOURCES = "embodied/embodied_sources.csv"
BOAVIZTA = "embodied/boavizta_manufacturer_pcf_datacenter.csv"
SHARED_HARDWARE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "hardware"
HOUR_S = 3600.0


# --- helpers: expected values straight from the shipped files ------------------------------


def totals(shipped: Shipped, relpath: str, instance_type: str) -> list[float]:
    return [float(r["total"]) for r in shipped.rows(relpath) if r["type"] == instance_type]


def vcpus(shipped: Shipped, provider: str, instance_type: str) -> dict[str, str]:
    return next(r for r in shipped.rows(VCPUS)
                if r["provider"] == provider and r["instance_type"] == instance_type)


def largest(shipped: Shipped, provider: str, prefix: str, sep: str) -> float:
    return max(float(r["vcpus"]) for r in shipped.rows(VCPUS)
               if r["provider"] == provider and r["instance_type"].split(sep)[0] == prefix)


def source_row(shipped: Shipped, key: str) -> dict[str, str]:
    return next(r for r in shipped.rows(SOURCES) if r["key"] == key)


# --- cloud instances ---------------------------------------------------------------------


@pytest.mark.parametrize("instance_type", ["p4d.24xlarge", "m5.large", "g4dn.xlarge",
                                           "t3.medium", "c6g.4xlarge"])
def test_aws_figure_and_vcpu_share_come_from_the_tables(shipped: Shipped,
                                                        instance_type: str) -> None:
    (kg,) = totals(shipped, AWS, instance_type)
    family = instance_type.split(".")[0]
    share = float(vcpus(shipped, "aws", instance_type)["vcpus"]) / largest(
        shipped, "aws", family, ".")
    meta = source_row(shipped, "ccf-aws")
    got = embodied_for_instance("aws", instance_type)
    assert got.kg_co2e == kg
    assert got.host_share == pytest.approx(share)
    assert (got.lifetime_years, got.year, got.licence, got.table) == (
        float(meta["lifetime_years"]), int(meta["year"]), "Apache-2.0", AWS)
    assert (got.kg_low, got.kg_high, got.flags) == (None, None, ())


def test_p4d_is_a_whole_eight_gpu_host(shipped: Shipped) -> None:
    got = embodied_for_instance("AWS", " p4d.24xlarge ")
    assert (got.kg_co2e, got.host_share, got.lifetime_years) == (4676.79, 1.0, 4.0)
    row = next(r for r in shipped.rows(AWS) if r["type"] == "p4d.24xlarge")
    assert row["additional_gpus"] == "1200.0"  # CCF's GPU addition is part of the total
    assert got.share_basis == "96 of 96 vCPUs (largest p4d size in the CCF instance list)"


def test_m5_large_share_is_2_of_96_vcpus() -> None:
    got = embodied_for_instance("aws", "m5.large")
    assert got.host_share == 2 / 96
    assert got.share_basis == "2 of 96 vCPUs (largest m5 size in the CCF instance list)"


def test_aws_service_variants_share_their_ec2_type() -> None:
    cache = embodied_for_instance("aws", "cache.m5.large")
    search = embodied_for_instance("aws", "m5.large.elasticsearch")
    assert cache.host_share == search.host_share == 2 / 96


@pytest.mark.parametrize(("instance_type", "share"),
                         [("p3.2xlarge", 2 / 16), ("p3.8xlarge", 8 / 16), ("p3.16xlarge", 1.0),
                          ("dc2.large", 0.5 / 8)])
def test_older_aws_types_use_size_names(shipped: Shipped, instance_type: str, share: float) -> None:
    assert not any(r["instance_type"] == instance_type for r in shipped.rows(VCPUS))
    got = embodied_for_instance("aws", instance_type)
    assert got.kg_co2e == totals(shipped, AWS, instance_type)[0]
    assert got.host_share == share
    assert "by AWS size names" in got.share_basis


@pytest.mark.parametrize(("instance_type", "share"), [("p5.48xlarge", 1.0),
                                                     ("g5.xlarge", 4 / 192)])
def test_aws_types_missing_from_ccf_use_the_teads_figure(shipped: Shipped, instance_type: str,
                                                        share: float) -> None:
    assert totals(shipped, AWS, instance_type) == []
    tonnes = float(vcpus(shipped, "aws", instance_type)["platform_embodied_tco2e"])
    got = embodied_for_instance("aws", instance_type)
    assert got.kg_co2e == pytest.approx(tonnes * 1000)
    assert got.host_share == share
    assert got.source == source_row(shipped, "teads-aws")["source"]
    assert [f.code for f in got.flags] == ["embodied-secondary-source"]


def test_known_aws_type_without_any_figure() -> None:
    with pytest.raises(ConfigError, match=r"knows aws p5en\.48xlarge \(192 vCPUs\) but has no "
                                          r"embodied figure.*embodied='host=1200kg/4y@0\.25'"):
        embodied_for_instance("aws", "p5en.48xlarge")


@pytest.mark.parametrize("spelled", ["Standard_D2s_v3", "D2s v3", "standard_d2s_v3"])
def test_azure_names_as_the_metadata_service_gives_them(shipped: Shipped, spelled: str) -> None:
    kinds = set(totals(shipped, AZURE, "D2s v3"))
    row = vcpus(shipped, "azure", "D2s v3")
    got = embodied_for_instance("azure", spelled)
    assert {got.kg_co2e} == kinds
    assert got.name == "azure D2s v3"
    assert got.host_share == float(row["vcpus"]) / float(row["platform_vcpus"]) == 2 / 64
    assert got.kg_low is None  # one figure for every microarchitecture row


def test_azure_gpu_host(shipped: Shipped) -> None:
    got = embodied_for_instance("azure", "Standard_ND40rs_v2")
    assert got.kg_co2e == totals(shipped, AZURE, "ND40rs v2")[0]
    assert got.host_share == 1.0


def test_azure_share_above_one_in_the_table_is_capped(shipped: Shipped) -> None:
    row = vcpus(shipped, "azure", "M416ms v2")
    assert float(row["vcpus"]) > float(row["platform_vcpus"])  # the upstream slip
    got = embodied_for_instance("azure", "Standard_M416ms_v2")
    assert got.host_share == 1.0
    assert "capped at the whole host" in got.share_basis


@pytest.mark.parametrize("instance_type", ["n1-standard-8", "e2-standard-2", "a2-highgpu-1g"])
def test_gcp_mean_range_and_series_share(shipped: Shipped, instance_type: str) -> None:
    rows = totals(shipped, GCP, instance_type)
    mean = next(float(r["total_mean"]) for r in shipped.rows(GCP_MEAN)
                if r["type"] == instance_type)
    share = float(vcpus(shipped, "gcp", instance_type)["vcpus"]) / largest(
        shipped, "gcp", instance_type.split("-")[0], "-")
    got = embodied_for_instance("gcp", f"projects/123/machineTypes/{instance_type}")
    assert got.kg_co2e == mean
    if min(rows) == max(rows):
        assert (got.kg_low, got.kg_high) == (None, None)
    else:
        assert (got.kg_low, got.kg_high) == (min(rows), max(rows))
    assert got.host_share == pytest.approx(share)


def test_gcp_e2_spread_written_out() -> None:
    got = embodied_for_instance("gcp", "e2-standard-2")
    # Skylake, Broadwell, Haswell 1255.46 each, EPYC 2nd Gen 1155.46: mean 1230.46
    assert (got.kg_co2e, got.kg_low, got.kg_high) == (1230.46, 1155.46, 1255.46)
    assert got.host_share == 2 / 32


def test_unknown_share_counts_the_whole_host_and_says_so(shipped: Shipped) -> None:
    got = embodied_for_instance("gcp", "a2-megagpu-16g")
    assert got.host_share is None
    assert [f.code for f in got.flags] == ["embodied-share-unknown"]
    result = amortised([got], HOUR_S)
    assert result.grams == pytest.approx(got.kg_co2e * 1000 / (4 * 8760))
    assert result.parts[0].share == 1.0
    assert [f.code for f in result.flags] == ["embodied-share-unknown"]


@pytest.mark.parametrize(("provider", "typo", "suggestion"), [
    ("aws", "p4d.24xlarg", "p4d.24xlarge"),
    ("aws", "p5.48xlarg", "p5.48xlarge"),
    ("gcp", "n1-standrd-8", "n1-standard-8"),
    ("azure", "Standard_ND40rs_v3", "ND40rs v2"),
])
def test_unknown_instance_types_get_suggestions(provider: str, typo: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as err:
        embodied_for_instance(provider, typo)
    text = str(err.value)
    assert f"unknown {provider} instance type {typo!r}" in text
    assert f"Did you mean {suggestion!r}?" in text
    assert "embodied=" in text


def test_unknown_provider_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown cloud_provider 'amazon'"):
        embodied_for_instance("amazon", "m5.large")


# --- named servers -------------------------------------------------------------------------


@pytest.mark.parametrize(("spelled", "maker", "model"), [
    ("Dell PowerEdge R740", "Dell", "PowerEdge R740"),
    ("poweredge  r740", "Dell", "PowerEdge R740"),
    ("HPE ProLiant DL380 Gen10", "HP", "ProLiant DL380 Gen10 server4"),
    ("HP ProLiant DL380 Gen10 server", "HP", "ProLiant DL380 Gen10 server4"),
])
def test_server_manufacturing_share_from_boavizta(shipped: Shipped, spelled: str, maker: str,
                                                  model: str) -> None:
    row = next(r for r in shipped.rows(BOAVIZTA)
               if r["manufacturer"] == maker and r["name"] == model)
    got = embodied_for_server(spelled)
    assert got.kg_co2e == float(row["gwp_manufacturing_kgco2e"])
    assert got.kg_co2e == pytest.approx(
        float(row["gwp_total"]) * float(row["gwp_manufacturing_ratio"]), abs=0.05)
    assert got.lifetime_years == float(row["lifetime"])
    assert got.year == int(row["report_date"][-4:])
    assert got.host_share == 1.0
    assert got.licence == "ODbL-1.0"
    assert row["sources"] in got.source
    assert [f.code for f in got.flags] == ["embodied-screening"]


def test_server_without_manufacturing_share() -> None:
    with pytest.raises(ConfigError, match="Lenovo ThinkSystem SR645 gives no manufacturing "
                                          "share.*embodied="):
        embodied_for_server("Lenovo ThinkSystem SR645")


def test_unknown_server_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown server model 'PowerEdge R7400'.*"
                                          r"Did you mean 'Dell PowerEdge R740"):
        embodied_for_server("PowerEdge R7400")


# --- the user's own figures ----------------------------------------------------------------


def test_text_syntax() -> None:
    server, gpu, nic = parse_embodied("server=1200kg/4y, gpu=8x150kg/5y; nic=1.5tCO2e/2.5yr@25%")
    assert (server.name, server.kg_co2e, server.count, server.lifetime_years,
            server.host_share) == ("server", 1200.0, 1, 4.0, 1.0)
    assert (gpu.kg_co2e, gpu.count, gpu.lifetime_years) == (150.0, 8, 5.0)
    assert (nic.kg_co2e, nic.lifetime_years, nic.host_share) == (1500.0, 2.5, 0.25)
    assert server.source == "given by user" and server.year is None


def test_mapping_syntax_equals_text() -> None:
    text = parse_embodied("server=1200kg/4y@0.5,gpu=8x150kg/5y")
    mapping = parse_embodied({"server": {"kg": 1200, "years": 4, "share": 0.5},
                              "gpu": {"kg": 150.0, "years": 5, "count": 8}})
    mixed = parse_embodied({"server": "1200kg/4y@50%", "gpu": "8x150kg/5y"})
    assert text == mapping == mixed


@pytest.mark.parametrize("empty", ["", " , "])
def test_empty_text_gives_no_sources(empty: str) -> None:
    assert parse_embodied(empty) == []


@pytest.mark.parametrize(("spec", "what"), [
    ("server", "lacks '='"),
    ("server=1200kg", "lacks a lifetime: add '/YEARSy', e.g. '1200kg/4y'"),
    ("server=1200/4y", "'1200' is not an amount"),
    ("server=1200g/4y", "'1200g' is not an amount"),
    ("server=1200kg/4", "lifetime '4' is not years"),
    ("server=1200kg/4y@", "share '' is not a fraction"),
    ("server=1200kg/4y@1.5", "share must be a fraction in (0, 1]"),
    ("server=1200kg/4y@0", "share must be a fraction in (0, 1]"),
    ("server=1200kg/0y", "the lifetime must be > 0 years"),
    ("gpu=0x150kg/5y", "count must be a whole number >= 1; got 0"),
    ("9gpu=150kg/5y", "name '9gpu' must start with a letter"),
    ("=150kg/5y", "name '' must start with a letter"),
    ("gpu=150kg/5y,gpu=1kg/1y", "names 'gpu' twice or more"),
    ({"server": {"kgs": 1200, "years": 4}}, "unknown key 'kgs'. Did you mean 'kg'?"),
    ({"server": {"kg": 1200}}, "lacks 'years'"),
    ({"server": {"kg": -5, "years": 4}}, "the footprint must be >= 0 kgCO2e; got -5"),
    ({"server": {"kg": "1200", "years": 4}}, "kg must be a number"),
    ({"server": {"kg": 1200, "years": 4, "count": 2.5}}, "count must be a whole number"),
    ({"server": 1200}, "must be text such as '1200kg/4y' or a mapping"),
    (1200, "embodied must be text or a mapping; got int"),
])
def test_syntax_errors_say_what_is_wrong(spec: object, what: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_embodied(spec)  # type: ignore[arg-type]  # the wrong types are the point
    text = str(err.value)
    assert what in text
    assert text.endswith(f"Syntax: {SYNTAX}")


def test_syntax_examples_parse() -> None:
    assert [s.name for s in parse_embodied("server=1200kg/4y,gpu=8x150kg/5y")] == [
        "server", "gpu"]
    assert parse_embodied("server=1.2t/4y@0.25")[0].kg_co2e == 1200.0


# --- amortisation --------------------------------------------------------------------------


def test_year_is_8760_hours() -> None:
    assert SECONDS_PER_YEAR == 8760 * 3600


def test_p4d_for_one_hour_written_out(shipped: Shipped) -> None:
    (kg,) = totals(shipped, AWS, "p4d.24xlarge")  # 4676.79 kg for the whole 8-GPU host
    result = amortised([embodied_for_instance("aws", "p4d.24xlarge")], HOUR_S)
    # 4676.79 kg x 1000 g/kg x 1 h / (4 y x 8760 h/y) x 1.0 of the host = 133.470 g
    assert result.grams == pytest.approx(kg * 1000 * 1 / (4 * 8760))
    assert result.grams == pytest.approx(133.4700, abs=1e-4)
    assert (result.grams_low, result.grams_high) == (None, None)
    assert result.rule.startswith("kgCO2e x 1000 x duration_s / (lifetime_years")
    (part,) = result.parts
    assert (part.name, part.kg_co2e, part.lifetime_years, part.share) == (
        "aws p4d.24xlarge", 4676.79, 4.0, 1.0)
    assert "apart from operational" in result.describe()


def test_m5_large_for_a_day_with_run_share() -> None:
    result = amortised([embodied_for_instance("aws", "m5.large")], 86400, share=0.5)
    # 1610.79 kg x 1000 x 24 h / 35040 h x 2/96 of the host x 0.5 of the instance = 11.49 g
    assert result.grams == pytest.approx(1610.79 * 1000 * 24 / 35040 * (2 / 96) * 0.5)
    assert result.parts[0].share == pytest.approx(2 / 96 * 0.5)


def test_user_server_and_gpus_written_out() -> None:
    sources = parse_embodied("server=1200kg/4y,gpu=8x150kg/5y@0.25")
    result = amortised(sources, 2 * HOUR_S)
    server_g = 1200 * 1000 * 2 / (4 * 8760)  # 68.493 g
    gpus_g = 8 * 150 * 1000 * 2 / (5 * 8760) * 0.25  # 13.699 g
    assert [p.grams for p in result.parts] == pytest.approx([server_g, gpus_g])
    assert result.grams == pytest.approx(server_g + gpus_g)
    assert result.parts[1].count == 8
    assert result.grams_low is None
    assert result.parts[1].describe() == (
        f"gpu: 8 x 150 kg / 5 y x 0.25 (given by user (@0.25)) = {gpus_g:.4g} g (given by user)")


def test_gcp_range_carries_into_the_interval() -> None:
    sources = [embodied_for_instance("gcp", "e2-standard-2"), *parse_embodied("disk=10kg/4y")]
    result = amortised(sources, HOUR_S)
    per_kg = 1000 / (4 * 8760) * (2 / 32)
    assert result.grams == pytest.approx(1230.46 * per_kg + 10 * 1000 / (4 * 8760))
    # the user's disk has no spread: it counts at its value in both bounds
    assert result.grams_low == pytest.approx(1155.46 * per_kg + 10 * 1000 / (4 * 8760))
    assert result.grams_high == pytest.approx(1255.46 * per_kg + 10 * 1000 / (4 * 8760))


def test_no_sources_and_zero_duration() -> None:
    assert amortised([], HOUR_S).grams == 0.0
    assert amortised(parse_embodied("server=1200kg/4y"), 0).grams == 0.0


def test_amortised_accepts_a_generator() -> None:
    sources = (s for s in parse_embodied("server=1200kg/4y"))
    assert amortised(sources, HOUR_S).grams == pytest.approx(1200 * 1000 / 35040)


@pytest.mark.parametrize(("duration_s", "share", "what"), [
    (-1.0, 1.0, "duration_s must be a finite number >= 0"),
    (math.inf, 1.0, "duration_s must be a finite number >= 0"),
    (HOUR_S, 0.0, "share must be a fraction in (0, 1]"),
    (HOUR_S, 1.5, "share must be a fraction in (0, 1]"),
    (HOUR_S, math.nan, "share must be a fraction in (0, 1]"),
])
def test_amortised_rejects_bad_arguments(duration_s: float, share: float, what: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(what)):
        amortised(parse_embodied("server=1200kg/4y"), duration_s, share=share)


def test_records_are_frozen() -> None:
    (src,) = parse_embodied("server=1200kg/4y")
    assert isinstance(src, EmbodiedSource)
    with pytest.raises(AttributeError):
        src.kg_co2e = 1.0  # type: ignore[misc]


# --- the shipped tables --------------------------------------------------------------------


def test_sources_table_names_shipped_tables(shipped: Shipped) -> None:
    for row in shipped.rows(SOURCES):
        assert shipped.rows(row["table"]), row["key"]
        assert row["licence"] in {"Apache-2.0", "ODbL-1.0"}


@pytest.mark.parametrize(("provider", "upstream", "type_col", "vcpu_col", "platform_col",
                          "tonnes_col"), [
    ("aws", "ccf_instances_aws_2026.csv", "Instance Type", "vCPUs", None,
     "Platform Embedded Emissions (mtCo2eq)"),
    ("azure", "ccf_instances_azure.csv", "Virtual Machine", "Instance vCPUs",
     "Platform vCPUs (highest vCPU possible)", None),
    ("gcp", "ccf_instances_gcp_2026.csv", "Instance Type", "Instance vCPU", None, None),
])
def test_vcpu_table_is_a_trim_of_the_ccf_instance_lists(
        shipped: Shipped, provider: str, upstream: str, type_col: str, vcpu_col: str,
        platform_col: str | None, tonnes_col: str | None) -> None:
    with (SHARED_HARDWARE / upstream).open(encoding="utf-8", newline="") as f:
        expected: dict[str, tuple[str, str, str]] = {}
        for r in csv.DictReader(f):
            expected.setdefault(r[type_col], (
                r[vcpu_col], r[platform_col] if platform_col else "",
                r[tonnes_col] if tonnes_col else ""))
    got = {r["instance_type"]: (r["vcpus"], r["platform_vcpus"], r["platform_embodied_tco2e"])
           for r in shipped.rows(VCPUS) if r["provider"] == provider}
    assert got == expected


# -- through a run ---------------------------------------------------------------------------


def test_a_run_reports_its_own_hardwares_embodied_share_apart() -> None:
    import carbonmonitor
    from carbonmonitor import FakeBackend, ManualClock, Tracker

    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"cpu": 100.0})], clock=clock, sampling="manual",
                      quiet=True, db="off", country="DE", embodied="server=1200kg/4y")
    tracker.start()
    clock.advance(86400)
    result = tracker.stop()
    assert result.embodied is not None
    assert result.embodied.co2e_g == pytest.approx(1200e3 / (4 * 365))  # one day of four years
    assert result.co2e_g == pytest.approx(2.4 * result.intensity.g_per_kwh)  # operational apart
    assert "Embodied 822 g CO2e, apart from the operational figure" in \
        carbonmonitor.format_summary(result)


def test_a_cloud_instance_type_uses_the_shipped_table() -> None:
    from carbonmonitor import FakeBackend, ManualClock, Tracker

    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"gpu:0": 400.0})], clock=clock, sampling="manual",
                      quiet=True, db="off", cloud_provider="aws", cloud_region="us-east-1",
                      instance_type="p4d.24xlarge")
    tracker.start()
    clock.advance(3600)
    result = tracker.stop()
    expected = amortised([embodied_for_instance("aws", "p4d.24xlarge")], 3600)
    assert result.embodied is not None and result.embodied.co2e_g == pytest.approx(expected.grams)
    assert "p4d.24xlarge" in result.embodied.parts[0]


def test_a_misspelt_instance_type_fails_before_the_run() -> None:
    from carbonmonitor import Tracker

    with pytest.raises(ConfigError, match="p4d.24xlarge"):
        Tracker(backend="fake", quiet=True, db="off", cloud_provider="aws",
                instance_type="p4d.24xlarg")


def test_an_instance_type_without_a_provider_is_flagged_not_ignored() -> None:
    from carbonmonitor import Tracker

    result = Tracker(backend="fake", sampling="manual", quiet=True, db="off", country="DE",
                     instance_type="m5.large").start().stop()
    assert result.embodied is None
    flag = {f.code: f for f in result.flags}["embodied-no-provider"]
    assert "m5.large" in flag.message and "cloud_provider=" in flag.fix
