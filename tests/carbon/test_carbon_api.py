from __future__ import annotations

import carbonmonitor.carbon as carbon


def test_public_names_are_pinned():
    assert sorted(carbon.__all__) == sorted([
        "PROVIDERS", "CloudRegion", "Country", "account", "default_data_year", "intensity_for",
        "place", "pue_flags",
        "resolve_cloud_region", "resolve_country", "resolve_location", "resolve_pue",
        "validate_provider",
    ])
    for name in carbon.__all__:
        assert hasattr(carbon, name)
