"""The printed summary shows every figure with its method, source and flags."""

from __future__ import annotations

from carbonmonitor import FakeBackend, ManualClock, Tracker, format_summary
from carbonmonitor.summary import energy_text, mass_text


def run_result(**options: object):  # type: ignore[no-untyped-def]
    clock = ManualClock()
    tracker = Tracker(backend=[FakeBackend({"cpu": 90.0, "memory": 10.0})], clock=clock,
                      sampling="manual", quiet=True, **options)
    tracker.start()
    with tracker.phase("train"):
        clock.advance(36)
    return tracker.stop()


def test_summary_lists_devices_phases_factor_and_pue() -> None:
    result = run_result(country="FR", name="demo")
    text = format_summary(result)
    assert "'demo'" in text and "completed in 36.0 s" in text
    assert "Energy  1.000 Wh" in text  # 100 W for 36 s
    assert "  cpu" in text and "  memory" in text and "counter" in text
    assert "France (FRA) 2024, lifecycle" in text
    assert "PUE 1.0 (local machine; set pue= or cloud_provider=)" in text
    assert "train" in text and "100%" in text
    assert "! pue-local-default" in text
    assert "location-unknown" not in text


def test_unknown_location_is_flagged_with_the_fix() -> None:
    text = format_summary(run_result())
    assert "location   unknown" in text
    assert "! location-unknown" in text and "country=" in text


def test_three_significant_digits_keep_their_zeros() -> None:
    from carbonmonitor.summary import sig3

    assert [sig3(v) for v in (0.1003, 0.0868, 12, 1.5, 0.000123, 99.96, 123.4, 4560.0, 0.0,
                              0.09996, 9.999, -0.5)] \
        == ["0.100", "0.0868", "12.0", "1.50", "0.000123", "100", "123", "4560", "0", "0.100",
            "10.0", "-0.500"]


def test_units_scale_and_rows_share_a_unit() -> None:
    assert energy_text(3600.0) == "1.000 Wh"
    assert energy_text(3.6e6 * 2) == "2.000 kWh"
    assert energy_text(5.0) == "5.00 J"
    assert energy_text(5.0, like=3600.0) == "0.00139 Wh"
    # J up to 0.1 Wh: 43 J reads "43.20 J", not "0.012 Wh"; Wh from 360 J
    assert (energy_text(43.2), energy_text(359.0), energy_text(360.0)) == (
        "43.20 J", "359.00 J", "0.100 Wh")
    # in a larger row unit, a small value keeps three significant digits, never "0.000 Wh"
    assert energy_text(1.0, like=3600.0) == "0.000278 Wh"
    assert energy_text(0.001, like=100.0) == "0.00100 J"
    assert energy_text(13.14, like=3600.0) == "0.00365 Wh"
    assert energy_text(0.0, like=3600.0) == "0.000 Wh"
    # an interval of a sub-joule value: its unit, never e-notation
    assert (energy_text(0.46, like=0.839), energy_text(3.24, like=0.839)) == ("460 mJ", "3240 mJ")
    assert energy_text(0.0005) == "500 µJ" and energy_text(0.5) == "500 mJ"
    assert mass_text(1500.0) == "1.500 kg" and mass_text(0.5) == "0.500 g"
    assert (mass_text(0.0757), mass_text(2.5e-6), mass_text(0.0)) == ("75.7 mg", "2.50 µg", "0 g")
    # an interval's bounds in its value's unit: [0.0266 g .. 0.392 g], not [26.6 mg .. 0.392 g]
    assert (mass_text(0.0266, like=0.196), mass_text(0.392, like=0.196)) == ("0.0266 g", "0.392 g")
    assert mass_text(1500.0, like=2000.0) == "1.500 kg"
    assert mass_text(2.5e-6, like=0.5) == "2.50 µg"  # 2.5e-06 g would need e-notation
