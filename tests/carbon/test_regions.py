from __future__ import annotations

import pytest

from carbonmonitor.carbon import PROVIDERS, CloudRegion, resolve_cloud_region, validate_provider
from carbonmonitor.errors import ConfigError


@pytest.mark.parametrize(
    ("provider", "region"),
    [("gcp", "europe-west1"), ("aws", "us-east-1"), ("azure", "westeurope"), ("azure", "westus2")],
)
def test_region_matches_its_row(shipped, provider, region):
    row = shipped.region(provider, region)
    found = resolve_cloud_region(provider, region)
    assert found == CloudRegion(
        provider, region, row["display_name"], row["location"], row["country_iso2"],
        row["country_iso3"], row["em_zone"] or None,
    )


def test_provider_is_inferred_when_unique():
    assert resolve_cloud_region(None, "us-east-1").provider == "aws"
    assert resolve_cloud_region(None, "europe-west1").provider == "gcp"


def test_azure_display_name_is_accepted_case_insensitively():
    assert resolve_cloud_region("azure", "West Europe").region == "westeurope"
    assert resolve_cloud_region("AZURE", "west europe").region == "westeurope"
    assert resolve_cloud_region(None, "WESTEUROPE").region == "westeurope"


def test_unknown_region_suggests_closest_of_that_provider():
    with pytest.raises(ConfigError) as err:
        resolve_cloud_region("azure", "westeurop")
    assert "'westeurop'" in str(err.value)
    assert "Did you mean 'westeurope' (azure)?" in str(err.value)


def test_region_of_another_provider_is_unknown_for_this_one():
    with pytest.raises(ConfigError, match="unknown gcp cloud_region 'us-east-1'"):
        resolve_cloud_region("gcp", "us-east-1")


def test_ambiguous_region_asks_for_cloud_provider():
    table = [
        {"provider": p, "region": "central", "display_name": "Central", "location": "X",
         "country_iso2": "DE", "country_iso3": "DEU", "em_zone": "DE"}
        for p in ("aws", "gcp")
    ]
    with pytest.raises(ConfigError, match=r"'central'.*aws, gcp.*cloud_provider="):
        resolve_cloud_region(None, "central", table=table)
    assert resolve_cloud_region("gcp", "central", table=table).provider == "gcp"


def test_validate_provider():
    assert PROVIDERS == ("aws", "azure", "gcp")
    assert validate_provider(" GCP ") == "gcp"
    with pytest.raises(ConfigError) as err:
        validate_provider("azur")
    assert "'azur'" in str(err.value) and "Did you mean 'azure'?" in str(err.value)


def test_bad_provider_is_rejected_before_region_lookup():
    with pytest.raises(ConfigError, match="cloud_provider 'awz'.*'aws'"):
        resolve_cloud_region("awz", "us-east-1")
