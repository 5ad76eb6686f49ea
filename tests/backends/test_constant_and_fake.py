"""constant and fake through the tracker: implied selection, device kinds, bad traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonmonitor import ConfigError, FakeBackend, ManualClock, Tracker


def run(**options: object):  # type: ignore[no-untyped-def]
    clock = ManualClock()
    tracker = Tracker(clock=clock, sampling="manual", quiet=True, **options)
    tracker.start()
    clock.advance(10)
    return tracker.stop()


def test_constant_power_alone_selects_the_constant_backend_first() -> None:
    result = run(constant_power="cpu=65")
    by_domain = {f.domain: (f.backend, f.method) for f in result.energy}
    assert by_domain["cpu"] == ("constant", "user-constant")
    assert by_domain["memory"][0] == "estimate"  # what the constant does not cover
    assert next(f.energy_j for f in result.energy if f.domain == "cpu") == pytest.approx(650.0)


def test_machine_figure_stands_for_every_device() -> None:
    result = run(constant_power="machine=100", backend="constant,estimate")
    assert [(f.domain, f.backend) for f in result.energy] == [("machine", "constant")]
    assert result.energy_j == pytest.approx(1000.0)


def test_unknown_device_kind_is_named_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="'memroy'.*Did you mean 'memory'"):
        run(constant_power="cpu=65,memroy=5")


def test_fake_trace_replays_a_csv(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("t_s,domain,power_w\n0,gpu:0,100\n5,gpu:0,300\n")
    result = run(fake_trace=trace)  # implied: fake first, then auto for the other devices
    gpu = next(f for f in result.energy if f.domain == "gpu:0")
    assert (gpu.backend, gpu.energy_j) == ("fake", pytest.approx(100 * 5 + 300 * 5))
    assert {f.device for f in result.energy} == {"gpu", "cpu", "memory"}


@pytest.mark.parametrize("body, fragment", [
    ("t_s,domain,power_w\n0,cpu,nan\n", "finite"),
    ("t_s,domain,power_w\n0,cpu,inf\n", "finite"),
    ("t_s,domain,power_w\n", "at least one domain"),
    ("time,what\n0,cpu\n", "t_s,domain,power_w"),
    ("t_s,domain,power_w\n0,cpu,-5\n", ">= 0"),
])
def test_bad_fake_trace_is_a_config_error(tmp_path: Path, body: str, fragment: str) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text(body)
    with pytest.raises(ConfigError, match=fragment):
        run(fake_trace=trace)


def test_fake_trace_must_be_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a file"):
        run(fake_trace=tmp_path)


def test_empty_profile_is_rejected() -> None:
    with pytest.raises(ConfigError):
        FakeBackend({})
