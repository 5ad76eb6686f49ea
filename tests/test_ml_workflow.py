"""The tracker's ML workflow API: work units, metric histories, forecasts and budgets
(docs/ml.md), driven through a real Tracker with the fake backend and a manual clock.

The fake backend draws a scripted constant power, so an epoch of ``s`` seconds costs
``s x watts`` joules: the expected figures below are computed from the epoch lengths.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

import carbonmonitor
from carbonmonitor import ConfigError, FakeBackend, ManualClock, Tracker

WATTS = 100.0


def tracker(tmp_path: Path | None = None, **options: object) -> tuple[Tracker, ManualClock]:
    clock = ManualClock()
    t = Tracker(backend=[FakeBackend({"cpu": WATTS})], clock=clock, sampling="manual",
                quiet=True, db=str(tmp_path / "runs.db") if tmp_path else "off", country="DE",
                attribution="machine", **options)
    return t.start(), clock


def epoch_lengths(seed: int, epochs: int = 10, base: float = 60.0) -> list[float]:
    """The issue's loop: epoch 1 costs 30 % more, later epochs vary by +-10 %."""
    rng = random.Random(seed)
    return [base * 1.3] + [base * rng.uniform(0.9, 1.1) for _ in range(epochs - 1)]


def run_epochs(t: Tracker, clock: ManualClock, lengths: list[float], *,
               stop_when_asked: bool = True) -> int:
    """Train for ``lengths`` (seconds per epoch); returns the epochs run."""
    for i, seconds in enumerate(lengths, start=1):
        with t.phase("train"):
            clock.advance(seconds)
            t.tick()
            t.add_work(samples=100, steps=4)
        t.progress(i, total=len(lengths))
        if stop_when_asked and t.should_stop:
            return i
    return len(lengths)


# -- work ----------------------------------------------------------------------------------


def test_work_counts_for_the_run_and_every_open_phase_in_this_context() -> None:
    t, clock = tracker()
    with t.phase("fit"):
        with t.phase("train"):
            clock.advance(10)
            t.add_work(samples=64, tokens=5000, steps=2, note="tokens: non-padding tokens")
        with t.phase("validation"):
            t.add_work(samples=16)
    t.add_work(requests=3, generated_tokens=120)
    result = t.stop()
    assert (result.work.samples, result.work.tokens, result.work.steps) == (80, 5000, 2)
    assert (result.work.requests, result.work.generated_tokens) == (3, 120)
    assert result.phase("fit").work.samples == 80
    assert result.phase("fit/train").work.samples == 64
    assert result.phase("fit/validation").work.samples == 16
    assert result.phase("fit/validation").work.tokens == 0
    costs = {c.per: c for c in result.unit_costs}
    assert costs["sample"].energy_j == pytest.approx(result.energy_j / 80)
    assert costs["1k tokens"].co2e_g == pytest.approx(result.co2e_g / 5)
    assert costs["generated token"].count == 120
    text = carbonmonitor.format_summary(result)
    assert "per sample" in text and "note: tokens: non-padding tokens" in text
    assert "80 samples, 5,000 tokens, 2 steps, 3 requests, 120 generated tokens" in text


@pytest.mark.parametrize("bad", [-1, 1.5, "ten", True, float("nan")])
def test_a_bad_count_is_refused_with_the_unit_named(bad: object) -> None:
    t, _ = tracker()
    with pytest.raises(ConfigError, match="samples must be a whole number >= 0"):
        t.add_work(samples=bad)  # type: ignore[arg-type]
    t.stop()


def test_numpy_like_integers_count() -> None:
    class Int:  # a numpy/torch integer scalar: not an int, but int() of it is exact
        def __int__(self) -> int:
            return 7

        def __eq__(self, other: object) -> bool:
            return other == 7

        def __lt__(self, other: int) -> bool:
            return 7 < other

        __hash__ = object.__hash__

    t, _ = tracker()
    t.add_work(samples=Int())  # type: ignore[arg-type]
    assert t.stop().work.samples == 7


def test_work_outside_a_running_tracker_is_not_counted_and_warned_once(
        caplog: pytest.LogCaptureFixture) -> None:
    t, _ = tracker()
    result = t.stop()
    with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
        t.add_work(samples=1)
        t.add_work(samples=1)
    assert result.work is None
    assert sum("add_work() called while the tracker is stopped" in r.message
               for r in caplog.records) == 1


# -- metrics -------------------------------------------------------------------------------


def test_metric_history_with_directions_and_stored_round_trip(tmp_path: Path) -> None:
    t, clock = tracker(tmp_path)
    for epoch, (loss, acc) in enumerate([(0.9, 0.5), (0.6, 0.7), (0.7, 0.65)], start=1):
        clock.advance(5)
        t.log_metrics({"val_loss": loss, "eval_accuracy": acc}, step=epoch * 10, epoch=epoch)
    t.log_metric("throughput", 12.0)
    t.log_metric("custom", 3.0, direction="max")
    result = t.stop()
    loss = result.metric("val_loss")
    assert loss.direction == "lower" and loss.best == 0.6 and loss.last == 0.7
    assert [(p.t_s, p.step, p.epoch) for p in loss.points] == [(5, 10, 1), (10, 20, 2),
                                                               (15, 30, 3)]
    assert result.metric("eval_accuracy").direction == "higher"
    assert result.metric("eval_accuracy").best == 0.7
    assert result.metric("throughput").direction is None
    assert result.metric("custom").direction == "higher"
    text = carbonmonitor.format_summary(result)
    assert "Metric   val_loss: last 0.7, best (min) 0.6 (3 values)" in text
    assert "Metric   custom: last 3, best (max) 3 (1 value)" in text
    assert "  also recorded: throughput" in text
    stored = carbonmonitor.load(result.identity.run_id, db=tmp_path / "runs.db")
    assert stored.metrics == result.metrics
    with pytest.raises(KeyError, match="val_loss"):
        result.metric("nope")


def test_bad_metrics_are_refused_and_non_finite_values_skipped(
        caplog: pytest.LogCaptureFixture) -> None:
    t, _ = tracker()
    with pytest.raises(ConfigError, match="needs a metric name"):
        t.log_metric(" ", 1.0)
    with pytest.raises(ConfigError, match="must be a number"):
        t.log_metric("acc", "high")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'higher' or 'lower'"):
        t.log_metric("acc", 1.0, direction="up")  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
        t.log_metric("loss", float("nan"))
        t.log_metric("loss", 0.5)
    result = t.stop()
    assert [p.value for p in result.metric("loss").points] == [0.5]
    assert any("non-finite" in r.message for r in caplog.records)


# -- forecasts ------------------------------------------------------------------------------


def test_forecast_after_two_epochs_holds_the_outcome_and_is_compared_at_the_end(
        tmp_path: Path) -> None:
    lengths = epoch_lengths(seed=3)
    t, clock = tracker(tmp_path)
    run_epochs(t, clock, lengths)
    result = t.stop()
    f = result.forecast
    assert f is not None and (f.after, f.total, f.unit) == (2, 10, "epoch")
    assert f.made_at_s == pytest.approx(sum(lengths[:2]))
    actual_s = sum(lengths)
    assert f.duration_low_s <= actual_s <= f.duration_high_s
    # epoch 1 is warm-up: the point is what was spent plus 8 more epochs like epoch 2
    assert f.duration_s == pytest.approx(sum(lengths[:2]) + 8 * lengths[1], rel=1e-9)
    assert f.energy_j == pytest.approx(f.duration_s * WATTS, rel=1e-9)
    gpj = result.pue.value * result.intensity.g_per_kwh / 3.6e6
    assert f.co2e_g == pytest.approx(f.energy_j * gpj, rel=1e-9)
    o = f.outcome
    assert o is not None and o.units_done == 10
    assert o.energy_error == pytest.approx(f.energy_j / result.energy_j - 1, rel=1e-9)
    assert o.energy_contained and o.duration_contained and o.co2e_contained
    assert t.forecast is not None and t.forecast.after == 9  # the latest, made before the end
    assert "Forecast after 2 of 10 epochs" in carbonmonitor.format_summary(result)
    assert carbonmonitor.load(result.identity.run_id, db=tmp_path / "runs.db").forecast == f


def test_the_forecast_co2e_interval_carries_the_measurement_and_the_factor() -> None:
    from carbonmonitor.carbon.spread import factor_envelope
    from carbonmonitor.records import sum_uncertainty

    clock = ManualClock()
    t = Tracker(backend=[FakeBackend({"cpu": WATTS}, method="user-constant")], clock=clock,
                sampling="manual", quiet=True, db="off", country="DE", attribution="machine")
    t.start()
    run_epochs(t, clock, [60.0] * 10)
    result = t.stop()
    f = result.forecast
    assert f is not None
    env = factor_envelope("DEU", result.intensity.year)
    unc = sum_uncertainty(result.energy)  # a modelled power: the same ratios all along
    low, high = unc.low / result.energy_j, unc.high / result.energy_j
    assert low < 1 < high
    gpj = result.pue.value * result.intensity.g_per_kwh / 3.6e6
    assert f.co2e_low_g == pytest.approx(f.energy_low_j * gpj * env.low_ratio * low, rel=1e-9)
    assert f.co2e_high_g == pytest.approx(f.energy_high_j * gpj * env.high_ratio * high,
                                          rel=1e-9)
    assert f.rule.endswith("; CO2e interval x measurement x factor-envelope-v1")
    # as wide as the measured CO2e's own interval, at least, for the same energy
    assert f.co2e_low_g / f.co2e_g <= result.emissions.uncertainty.low / result.co2e_g + 1e-9


def test_forecast_interval_contains_the_outcome_for_many_seeds() -> None:
    for seed in range(40):
        lengths = epoch_lengths(seed)
        t, clock = tracker()
        run_epochs(t, clock, lengths)
        o = t.stop().forecast.outcome
        assert o is not None and o.energy_contained and o.duration_contained, seed


def test_no_forecast_before_predict_after_units_or_without_a_total() -> None:
    t, clock = tracker(predict_after=3)
    clock.advance(10)
    assert t.progress(1, total=10) is None
    clock.advance(10)
    assert t.progress(2) is None
    clock.advance(10)
    assert t.progress(3) is not None
    assert t.stop().forecast.after == 3
    t, clock = tracker()
    clock.advance(10)
    t.progress(1)
    clock.advance(10)
    assert t.progress(2) is None  # no total: nothing to forecast
    assert t.stop().forecast is None


def test_an_interrupted_run_keeps_its_forecast_without_an_outcome() -> None:
    t, clock = tracker()
    for i, seconds in enumerate(epoch_lengths(1)[:4], start=1):  # 4 of 10 epochs
        clock.advance(seconds)
        t.progress(i, total=10)
    result = t.stop("interrupted")
    assert result.forecast is not None and result.forecast.outcome is None


@pytest.mark.parametrize("bad", [-1, "two", float("inf")])
def test_bad_progress_is_refused(bad: object) -> None:
    t, _ = tracker()
    with pytest.raises(ConfigError, match="progress: done must be a number"):
        t.progress(bad)  # type: ignore[arg-type]
    t.stop()


# -- budgets --------------------------------------------------------------------------------


def expected_stop_epochs(lengths: list[float], limit_j: float) -> tuple[int, int]:
    """(predicted, actual): the first epoch after which the forecast's point (what was spent
    plus the rest at the mean cost of the epochs after the first) exceeds the limit, and the
    first epoch after which the energy so far reaches it."""
    predicted = actual = 0
    for n in range(1, len(lengths) + 1):
        spent = sum(lengths[:n]) * WATTS
        if not actual and spent >= limit_j:
            actual = n
        if not predicted and n >= 2:
            mean = sum(lengths[1:n]) / (n - 1) * WATTS
            if spent + mean * (len(lengths) - n) > limit_j:
                predicted = n
    return predicted, actual


def test_budgets_stop_at_the_right_epoch_on_the_prediction_and_on_the_actual_figure() -> None:
    lengths = epoch_lengths(seed=7)
    total_j = sum(lengths) * WATTS
    limit_kwh = 0.7 * total_j / 3.6e6
    predicted_at, actual_at = expected_stop_epochs(lengths, limit_kwh * 3.6e6)
    assert (predicted_at, actual_at) == (2, 7)  # this seed's loop, worked out above

    t, clock = tracker(max_energy_kwh=limit_kwh, budget_on="predicted", budget_action="stop")
    assert run_epochs(t, clock, lengths) == predicted_at
    result = t.stop()
    [event] = result.budget_events
    assert (event.on, event.limit, event.action, event.units_done) == (
        "predicted", "max_energy_kwh", "stop", 2)
    assert event.value > limit_kwh and result.status == "completed"
    assert "predicted total" in event.message and "stopping training" in event.message

    t, clock = tracker(max_energy_kwh=limit_kwh, budget_action="stop")
    assert run_epochs(t, clock, lengths) == actual_at
    [event] = t.stop().budget_events
    # crossed during epoch 7 (the sampler's tick at its end): 6 epochs were complete then
    assert (event.on, event.units_done) == ("actual", actual_at - 1)
    assert event.value >= limit_kwh


def test_a_warning_budget_never_stops_and_both_figures_trip_once_each(
        caplog: pytest.LogCaptureFixture) -> None:
    lengths = epoch_lengths(seed=7)
    limit_g = 0.7 * sum(lengths) * WATTS  # J for now; grams below
    t, clock = tracker(budget_on="both")
    gpj = t.pue.value * t.intensity.g_per_kwh / 3.6e6
    t.stop()
    with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
        t, clock = tracker(max_emissions_g=limit_g * gpj, budget_on="both")
        assert run_epochs(t, clock, lengths) == 10
        result = t.stop()
    assert not t.should_stop
    assert [(e.on, e.units_done) for e in result.budget_events] == [("predicted", 2),
                                                                     ("actual", 6)]
    assert sum("budget max_emissions_g" in r.message for r in caplog.records) == 2
    assert "! budget:" in carbonmonitor.format_summary(result)


def test_an_actual_budget_is_also_checked_by_the_sampler_between_epochs() -> None:
    t, clock = tracker(max_energy_kwh=WATTS * 30 / 3.6e6, budget_action="stop")
    clock.advance(20)
    t.tick()
    assert not t.should_stop
    clock.advance(20)
    t.tick()
    assert t.should_stop
    assert t.stop().budget_events[0].units_done is None


@pytest.mark.parametrize(("options", "message"), [
    ({"max_emissions_g": -5}, "max_emissions_g must be a positive number of grams"),
    ({"max_energy_kwh": "lots"}, "max_energy_kwh must be a number of kWh"),
    ({"budget_on": "forecast"}, "budget_on must be one of actual, predicted, both"),
    ({"budget_action": "halt"}, "budget_action must be one of warn, stop"),
    ({"predict_after": 0}, "predict_after must be at least 1"),
])
def test_bad_budget_options_are_refused_with_the_fix(options: dict[str, object],
                                                     message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Tracker(backend="fake", sampling="manual", quiet=True, db="off", **options)


def test_begin_phase_handles_end_once_and_work_inside_counts() -> None:
    t, clock = tracker()
    handle = t.begin_phase("train")
    assert handle.name == "train"
    clock.advance(5)
    t.add_work(samples=3)
    handle.end()
    handle.end()
    with t.begin_phase("validation"):
        clock.advance(1)
    result = t.stop()
    assert result.phase("train").count == 1 and result.phase("train").duration_s == 5
    assert result.phase("train").work.samples == 3
    assert result.phase("validation").duration_s == 1


def test_two_trainings_in_one_run_are_forecast_and_compared_separately() -> None:
    """Pre-training (5 epochs of 100 s, the first 130 s) then fine-tuning (3 epochs of 10 s,
    the first 13 s): each forecast covers its own training from its own start."""
    t, clock = tracker()
    clock.advance(30)  # setup: not part of either training
    t.begin_progress("pre-training", total=5)
    for i in range(1, 6):
        clock.advance(130 if i == 1 else 100)
        t.progress(i)
    t.begin_progress("fine-tuning", total=3)
    for i in range(1, 4):
        clock.advance(13 if i == 1 else 10)
        t.progress(i)
    result = t.stop()
    pre, fine = result.forecasts
    assert (pre.label, pre.total, fine.label, fine.total) == ("pre-training", 5, "fine-tuning", 3)
    # steady epochs after the first: each forecast is exact
    assert pre.duration_s == pytest.approx(130 + 4 * 100)
    assert fine.duration_s == pytest.approx(13 + 2 * 10)
    assert fine.energy_j == pytest.approx(33 * WATTS)
    for f in (pre, fine):
        assert f.outcome is not None and f.outcome.energy_error == pytest.approx(0, abs=1e-9)
        assert f.outcome.energy_contained and f.outcome.duration_contained
    text = carbonmonitor.format_summary(result)
    assert "Forecast pre-training: after 2 of 5 epochs" in text
    assert "Forecast fine-tuning: after 2 of 3 epochs" in text


def test_a_predicted_budget_for_the_second_training_counts_what_the_first_spent() -> None:
    t, clock = tracker(max_energy_kwh=WATTS * 250 / 3.6e6, budget_on="predicted",
                       budget_action="stop")
    t.begin_progress("a", total=2)
    for i in (1, 2):
        clock.advance(100)
        t.progress(i)
    assert not t.should_stop  # 200 s of 250 s
    t.begin_progress("b", total=10)
    for i in (1, 2):
        clock.advance(10)
        t.progress(i)
    # predicted: 200 s spent before + 10 epochs of 10 s = 300 s > 250 s
    assert t.should_stop
    [event] = t.stop().budget_events
    assert event.value == pytest.approx(WATTS * 300 / 3.6e6)


def test_a_predicted_budget_without_a_total_says_it_cannot_be_checked(
        caplog: pytest.LogCaptureFixture) -> None:
    t, clock = tracker(max_energy_kwh=1e-6, budget_on="predicted", budget_action="stop")
    with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
        for i in (1, 2, 3):
            clock.advance(10)
            t.progress(i)
    assert not t.should_stop
    assert sum("predicted budget needs the number of epochs" in r.message
               for r in caplog.records) == 1
    t.stop()


def test_options_copy_and_pickle() -> None:
    import copy
    import pickle

    t, _ = tracker(max_energy_kwh=1.0)
    assert copy.deepcopy(t.options).max_energy_kwh == 1.0
    assert pickle.loads(pickle.dumps(t.options)).budget_on == "actual"
    t.stop()


def test_no_forecast_is_made_at_the_last_unit() -> None:
    """A 2-epoch training with predict_after=2 has nothing left to predict after epoch 2."""
    t, clock = tracker()
    t.begin_progress("short", total=2)
    for i in (1, 2):
        clock.advance(10)
        assert t.progress(i) is None
    assert t.stop().forecasts == ()


def test_run_name_and_id_for_integrations() -> None:
    named, _ = tracker(name="bert-base")
    assert named.run_name == "bert-base"
    assert named.run_id == named.stop().identity.run_id
    clock = ManualClock()
    t = Tracker(backend="fake", clock=clock, sampling="manual", quiet=True, db="off",
                argv=("python", "train.py", "--lr", "3e-4"))
    assert (t.run_name, t.run_id) == ("train", None)  # before start: no id yet
    assert t.start().stop().identity.name == t.run_name


def test_re_accounting_moves_the_forecast_too() -> None:
    t, clock = tracker()
    t.begin_progress("fit", total=10)
    for i in range(1, 4):
        clock.advance(10)
        t.progress(i)
    result = t.stop("interrupted")
    moved = carbonmonitor.reaccount(result, country="SE")
    f, g = result.forecast, moved.forecast
    assert g.energy_j == f.energy_j
    assert g.co2e_g == pytest.approx(f.co2e_g * moved.intensity.g_per_kwh
                                     / result.intensity.g_per_kwh)
    assert g.co2e_g < f.co2e_g
