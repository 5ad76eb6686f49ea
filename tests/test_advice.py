"""carbonmonitor.advice: crafted runs where the right advice is known, and a clean run with none.

Runs are made with the fake backend under a manual clock (step profiles, so energies are exact);
each expected saving is worked out here from the scripted watts, the times and the tables'
factors, not read back from the advice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import carbonmonitor
from carbonmonitor import FakeBackend, ManualClock, Tracker
from carbonmonitor.advice import (
    CLEANER_PLACE_MIN_PCT,
    PLATEAU_POINTS,
    Advice,
    advise,
)
from carbonmonitor.plot.whatif import DEFAULT_PLACES, parse_place
from carbonmonitor.records import HourBin, RunResult
from carbonmonitor.store import Series
from carbonmonitor.summary import energy_text

KWH = 3.6e6
START = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC


@dataclasses.dataclass
class Run:
    result: RunResult
    series: Series


def make_run(tmp_path: Path, profile: Mapping[str, object], *, seconds: int = 100,
             country: str = "SE", step_s: int = 1, start_wall: float = START,
             script: Callable[[Tracker, Callable[[int], None]], None] | None = None,
             **options: Any) -> Run:
    """A run of ``seconds`` ticked every ``step_s``; ``script`` drives it (phases, metrics)."""
    db = str(tmp_path / "runs.db")
    clock = ManualClock(start_wall=start_wall)
    tracker = Tracker(backend=[FakeBackend(profile)], clock=clock,  # type: ignore[arg-type]
                      sampling="manual", quiet=True, db=db, country=country, **options)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        for _ in range(n // step_s):
            clock.advance(step_s)
            tracker.tick()
        done += n

    tracker.start()
    if script is not None:
        script(tracker, tick)
    tick(seconds - done)
    result = tracker.stop()
    return Run(result, carbonmonitor.series(result.identity.run_id, db=db))


def codes(items: Sequence[Advice]) -> list[str]:
    return [a.code for a in items]


def improving(tracker: Tracker, tick: Callable[[int], None]) -> None:
    """Two balanced phases and a loss that improves by 10 % at every evaluation."""
    loss = 1.0
    for name in ("train", "eval"):
        with tracker.phase(name):
            for _ in range(5):
                tick(10)
                tracker.log_metric("loss", loss, direction="lower")
                loss *= 0.9


def cleanest_default(result: RunResult) -> tuple[str, float]:
    """The default place with the lowest factor on the run's basis, and that factor."""
    factors = {}
    for p in DEFAULT_PLACES:
        args: dict[str, Any] = dict(parse_place(p))
        moved = carbonmonitor.reaccount(result, basis=result.intensity.basis, **args)
        factors[p] = moved.intensity.g_per_kwh
    best = min(factors, key=lambda p: factors[p])
    return best, factors[best]


# -- silent on a clean, efficient run ----------------------------------------------------------


def test_a_clean_efficient_run_gets_no_advice(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"cpu": 60.0, "gpu:0": 300.0}, script=improving,
                   idle_power={"gpu": 20.0})
    best, g_best = cleanest_default(run.result)
    # the premise: Sweden is the cleanest of the default places, no idle to speak of
    assert best == "country:SE" and run.result.intensity.g_per_kwh == g_best
    assert advise(run.result, run.series) == []
    assert advise(run.result) == []


# -- 1. cleaner place --------------------------------------------------------------------------


def test_a_dirty_region_is_advised_the_cleanest_place_with_its_saving(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"cpu": 60.0, "gpu:0": 300.0}, country="PL")
    energy_kwh = (60.0 + 300.0) * 100 / KWH
    g_pl = run.result.intensity.g_per_kwh
    best, g_best = cleanest_default(run.result)
    pue = run.result.pue.value  # 1.0, a local machine, here and at the other places
    expected_g = energy_kwh * pue * (g_pl - g_best)
    expected_pct = 100 * (g_pl - g_best) / g_pl
    assert expected_pct >= CLEANER_PLACE_MIN_PCT

    items = advise(run.result, run.series)
    assert codes(items) == ["cleaner-place"]
    item = items[0]
    assert item.saving is not None
    assert item.saving.co2e_g == pytest.approx(expected_g, rel=1e-9)
    assert item.saving.pct == pytest.approx(expected_pct, rel=1e-9)
    assert item.figures["own_g_per_kwh"] == g_pl and item.figures["best_g_per_kwh"] == g_best
    assert f"{g_pl:g} g/kWh" in item.evidence and f"{g_best:g} g/kWh" in item.evidence
    assert "lifecycle" in item.evidence and any("lifecycle" in c for c in item.caveats)
    assert best in item.action


def test_below_the_threshold_no_place_is_advised(tmp_path: Path) -> None:
    # France vs Sweden: a few g/kWh apart, less than the threshold
    run = make_run(tmp_path, {"cpu": 100.0}, country="FR")
    _, g_best = cleanest_default(run.result)
    assert 100 * (run.result.intensity.g_per_kwh - g_best) / run.result.intensity.g_per_kwh \
        < CLEANER_PLACE_MIN_PCT
    assert advise(run.result, run.series) == []


def test_a_cloud_run_is_compared_with_its_providers_other_regions(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"cpu": 100.0}, country=None,  # type: ignore[arg-type]
                   cloud_provider="aws", cloud_region="ap-south-1")
    items = advise(run.result)
    assert codes(items) == ["cleaner-place"]
    assert items[0].action.startswith("run the next job at aws:")
    # the candidates given override the default list
    only = advise(run.result, places=["aws:eu-north-1"])
    g_se = carbonmonitor.reaccount(run.result, cloud_provider="aws",
                                   cloud_region="eu-north-1").co2e_g
    assert only[0].saving is not None
    assert only[0].saving.co2e_g == pytest.approx(run.result.co2e_g - g_se, rel=1e-9)


# -- 2. cleaner hours --------------------------------------------------------------------------


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def test_hourly_bins_with_a_spread_give_the_cleanest_window(tmp_path: Path) -> None:
    hour = START - START % 3600
    run = make_run(tmp_path, {"cpu": 100.0}, seconds=3600, step_s=60, start_wall=hour - 1800)
    # the run straddles two hours, 30 min in each: 400 g/kWh then 100 g/kWh
    half_j = 100.0 * 1800
    bins = (HourBin(iso(hour - 3600), iso(hour), half_j, 400.0, half_j / KWH * 400.0, "test"),
            HourBin(iso(hour), iso(hour + 3600), half_j, 100.0, half_j / KWH * 100.0, "test"))
    em = dataclasses.replace(run.result.emissions, hourly=bins, time_resolved="test",
                             co2e_g=sum(b.co2e_g for b in bins))
    result = dataclasses.replace(run.result, emissions=em)

    items = advise(result, run.series)
    assert codes(items) == ["cleaner-hours"]
    item = items[0]
    own, best = (400.0 + 100.0) / 2, 100.0  # the run's hour vs the cleanest hour seen
    assert item.figures["own_g_per_kwh"] == pytest.approx(own)
    assert item.figures["best_g_per_kwh"] == pytest.approx(best)
    assert item.figures["best_start_unix"] == hour
    assert item.saving is not None
    assert item.saving.co2e_g == pytest.approx(100.0 * 3600 / KWH * (own - best), rel=1e-9)
    assert item.saving.pct == pytest.approx(100 * (own - best) / own, rel=1e-9)
    assert "100-400 g/kWh" in item.evidence and "250 g/kWh" in item.evidence
    assert any("hindsight" in c for c in item.caveats)

    flat = tuple(dataclasses.replace(b, g_per_kwh=250.0) for b in bins)
    same = dataclasses.replace(result, emissions=dataclasses.replace(em, hourly=flat))
    assert advise(same, run.series) == []


# -- 3. accelerator waiting on the CPU ---------------------------------------------------------


def test_an_idle_gpu_while_the_cpu_is_busy_is_an_input_bottleneck(tmp_path: Path) -> None:
    # 20 s of real GPU work, then 80 s where the GPU idles at 60 W and the CPU runs at 120 W
    profile = {"cpu": [(0.0, 40.0), (20.0, 120.0)], "gpu:0": [(0.0, 300.0), (20.0, 60.0)]}
    run = make_run(tmp_path, profile)
    waiting_s, total_s = 80.0, 100.0
    gpu_j = 60.0 * waiting_s
    all_j = (60.0 + 120.0) * waiting_s
    energy_j = (40.0 + 300.0) * 20 + (120.0 + 60.0) * 80
    g_per_j = run.result.co2e_g / energy_j

    items = advise(run.result, run.series)
    assert codes(items) == ["accelerator-waiting"]
    item = items[0]
    assert item.figures["fraction"] == pytest.approx(waiting_s / total_s)
    assert item.figures["energy_meanwhile_j"] == pytest.approx(all_j, rel=1e-9)
    assert item.saving is not None and item.saving.energy_j == pytest.approx(gpu_j, rel=1e-9)
    assert item.saving.co2e_g == pytest.approx(gpu_j * g_per_j, rel=1e-9)
    assert item.saving.pct == pytest.approx(100 * gpu_j / energy_j, rel=1e-9)
    assert "80 %" in item.evidence and energy_text(14400) in item.evidence
    assert energy_text(4800, 14400) in item.evidence
    # without the series there is nothing to judge it from
    assert advise(run.result) == []


def test_a_gpu_busy_all_along_is_not_waiting(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"cpu": 120.0, "gpu:0": 300.0})
    assert advise(run.result, run.series) == []


def test_a_cpu_whose_power_never_moved_is_not_called_busy(tmp_path: Path) -> None:
    # the GPU drops to its floor, but the CPU idles at a flat 8 W: no input bottleneck
    run = make_run(tmp_path, {"cpu": 8.0, "gpu:0": [(0.0, 300.0), (20.0, 60.0)]})
    assert "accelerator-waiting" not in codes(advise(run.result, run.series))


def test_recorded_utilisation_tells_an_idle_gpu_at_flat_power(tmp_path: Path) -> None:
    import dataclasses

    run = make_run(tmp_path, {"cpu": 120.0, "gpu:0": 60.0})  # flat: power alone cannot tell
    assert "accelerator-waiting" not in codes(advise(run.result, run.series))
    n = len(run.series.t_s)
    busy_cpu = dataclasses.replace(run.series, utilisation_pct={
        "cpu": [90.0] * n, "gpu:0": [2.0] * n})
    (item,) = [a for a in advise(run.result, busy_cpu) if a.code == "accelerator-waiting"]
    assert item.figures["fraction"] == pytest.approx(1.0)
    assert item.saving is not None and item.saving.energy_j == pytest.approx(60.0 * 100)
    idle_cpu = dataclasses.replace(run.series, utilisation_pct={
        "cpu": [10.0] * n, "gpu:0": [2.0] * n})
    assert "accelerator-waiting" not in codes(advise(run.result, idle_cpu))


# -- 4. idle baseline --------------------------------------------------------------------------


def test_a_high_idle_baseline_is_named_with_its_share(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"cpu": 60.0}, idle_power={"cpu": 30.0})
    idle_j, energy_j = 30.0 * 100, 60.0 * 100
    items = advise(run.result, run.series)
    assert codes(items) == ["idle-baseline"]
    item = items[0]
    assert item.figures["idle_j"] == pytest.approx(idle_j)
    assert item.figures["idle_share"] == pytest.approx(idle_j / energy_j)
    assert item.saving is None and "depends on" in item.no_saving
    assert "50 %" in item.evidence
    assert f"{energy_text(3000, 6000)} of {energy_text(6000)}" in item.evidence


# -- 5. dominant phase -------------------------------------------------------------------------


def test_a_phase_with_most_of_the_energy_is_named(tmp_path: Path) -> None:
    def phases(tracker: Tracker, tick: Callable[[int], None]) -> None:
        with tracker.phase("train"):
            tick(80)
        with tracker.phase("eval"):
            tick(20)

    run = make_run(tmp_path, {"cpu": [(0.0, 100.0), (80.0, 50.0)]}, script=phases)
    train_j, eval_j = 100.0 * 80, 50.0 * 20
    items = advise(run.result, run.series)
    assert codes(items) == ["dominant-phase"]
    item = items[0]
    assert item.figures["share"] == pytest.approx(train_j / (train_j + eval_j), rel=1e-9)
    assert item.figures["time_share"] == pytest.approx(0.8, rel=1e-9)
    assert "'train'" in item.title and "89 %" in item.evidence
    assert energy_text(8000, 9000) in item.evidence
    assert item.saving is None and item.no_saving
    assert item.figures["power_w"] == pytest.approx(100.0, rel=1e-9)
    assert item.figures["rest_power_w"] == pytest.approx(50.0, rel=1e-9)
    assert "at 100 W against 50 W" in item.evidence and "cheaper" in item.action


def test_a_phase_whose_share_follows_its_time_is_advised_to_be_shorter(tmp_path: Path) -> None:
    def phases(name: str) -> Callable[[Tracker, Callable[[int], None]], None]:
        def script(tracker: Tracker, tick: Callable[[int], None]) -> None:
            with tracker.phase(name):
                tick(80)
            with tracker.phase("train"):
                tick(20)
        return script

    # the same power throughout: a long preprocessing phase is news, a long training is not
    run = make_run(tmp_path / "pre", {"cpu": 100.0}, script=phases("preprocess"))
    (item,) = advise(run.result, run.series)
    assert item.code == "dominant-phase" and item.confidence == "medium"
    assert item.figures["share"] == pytest.approx(item.figures["time_share"], rel=1e-9)
    assert item.figures["power_w"] == pytest.approx(item.figures["rest_power_w"], rel=1e-9)
    assert "follows its time" in item.action and "shortening" in item.action
    assert "cheaper" not in item.action
    for name in ("training", "fine-tuning", "SFT"):  # the job's main work: no news
        run = make_run(tmp_path / name, {"cpu": 100.0}, script=phases(name))
        assert advise(run.result, run.series) == [], name


# -- 6. metric plateau -------------------------------------------------------------------------


LOSSES = (1.0, 0.5, 0.3, 0.25, 0.25, 0.2502, 0.25, 0.2501, 0.25, 0.25)  # flat after t = 40 s


def plateau(tracker: Tracker, tick: Callable[[int], None]) -> None:
    for value in LOSSES:  # an evaluation every 10 s
        tick(10)
        tracker.log_metric("val_loss", value, direction="lower")


def test_a_long_plateau_gives_the_energy_spent_since_the_best_value(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"cpu": 100.0}, script=plateau)
    best_t = 40.0  # 0.25 first reached; later points are never better by > 0.1 %
    since_j = 100.0 * (100 - best_t)
    assert len(LOSSES) - 4 >= PLATEAU_POINTS
    expected_g = run.result.co2e_g * since_j / (100.0 * 100)
    for series in (run.series, None):  # constant power: the mean-power estimate agrees
        items = advise(run.result, series)
        assert codes(items) == ["metric-plateau"]
        item = items[0]
        assert item.figures["best_t_s"] == best_t and item.figures["points_after"] == 6
        assert item.saving is not None
        assert item.saving.energy_j == pytest.approx(since_j, rel=1e-9)
        assert item.saving.co2e_g == pytest.approx(expected_g, rel=1e-9)
        assert item.saving.pct == pytest.approx(60.0, rel=1e-9)
        assert f"{energy_text(6000)} (60 %)" in item.evidence and "at 40.0 s in" in item.evidence
    assert advise(run.result, run.series)[0].confidence == "medium"
    assert advise(run.result)[0].confidence == "low"


def test_metrics_that_stop_together_give_one_plateau(tmp_path: Path) -> None:
    def both(tracker: Tracker, tick: Callable[[int], None]) -> None:
        for i, value in enumerate(LOSSES):
            tick(10)
            tracker.log_metric("val_loss", value, direction="lower", epoch=i + 1)
            tracker.log_metric("accuracy", 1 - value, direction="higher", epoch=i + 1)

    run = make_run(tmp_path, {"cpu": 100.0}, script=both)
    (item,) = advise(run.result, run.series)  # one stop saves once
    assert item.code == "metric-plateau"
    kept = item.title.split(" stopped")[0]
    (other,) = {"'val_loss'", "'accuracy'"} - {kept}
    assert [c for c in item.caveats if "stopped improving too" in c] == [
        f"{other} stopped improving too; their savings overlap this one, so they are not "
        "listed again"]
    assert "at epoch 4 (40.0 s in)" in item.evidence  # where it was logged, not raw seconds


def test_a_plateau_with_varying_power_uses_the_series(tmp_path: Path) -> None:
    # 40 s at 300 W up to the best value, then 60 s at 50 W
    run = make_run(tmp_path, {"cpu": [(0.0, 300.0), (40.0, 50.0)]}, script=plateau)
    item = advise(run.result, run.series)[0]
    assert item.saving is not None and item.saving.energy_j == pytest.approx(50.0 * 60)


# -- ranking -----------------------------------------------------------------------------------


def test_advice_is_ranked_by_saving_and_unquantified_items_come_last(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"cpu": 60.0}, country="PL", script=plateau,
                   idle_power={"cpu": 30.0})
    items = advise(run.result, run.series)
    # cleaner place saves ~94 % of the run, stopping at the plateau 60 %; idle has no figure
    assert codes(items) == ["cleaner-place", "metric-plateau", "idle-baseline"]
    savings = [a.saving.co2e_g for a in items if a.saving is not None]
    assert savings == sorted(savings, reverse=True)
