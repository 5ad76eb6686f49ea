"""PyTorch Lightning: a ``Callback`` that measures ``trainer.fit`` / ``validate`` / ``test`` /
``predict`` (``pip install 'carbonmonitor[lightning]'``; the ``lightning`` package, else
``pytorch_lightning``).

Example:
    >>> from carbonmonitor.integrations.lightning import CarbonMonitorCallback
    >>> callback = CarbonMonitorCallback(project="mnist", backend="fake", quiet=True,
    ...                                  db="off")
    >>> # trainer = lightning.Trainer(max_epochs=3, callbacks=[callback]); trainer.fit(model)
    >>> # callback.result.phase("train").work.samples

Phases per epoch: ``train`` and ``validation`` (Lightning validates inside the training epoch,
before ``on_train_epoch_end``: ``train`` ends where validation starts and opens again at the
next training batch); the sanity check is its own phase, ``sanity_check``, with no work counted;
``test`` and ``predict``. See docs/integrations.md for what is counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from carbonmonitor.integrations._common import (
    Monitor,
    Portable,
    guarded,
    missing_framework,
    scalar,
)

try:
    import lightning.pytorch as pl
except ImportError as err:
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError:
        raise missing_framework("Lightning", "lightning", err) from err

if TYPE_CHECKING:
    from carbonmonitor.integrations.sinks import Sink
    from carbonmonitor.records import RunResult
    from carbonmonitor.tracker import Tracker

__all__ = ["CarbonMonitorCallback"]

# At most this many progress marks (forecast, budgets, sinks) in a fit bounded by max_steps.
STEP_MARKS = 100
# Lightning's max_epochs when neither max_epochs nor max_steps is given
# (lightning.pytorch.loops.utilities._parse_loop_limits).
LIGHTNING_DEFAULT_EPOCHS = 1000


class CarbonMonitorCallback(Portable, pl.Callback):  # type: ignore[misc,unused-ignore]
    """Measures each ``fit`` (``validate``, ``test``, ``predict``) of the trainer it is given to.

    Args:
        tracker: a :class:`~carbonmonitor.tracker.Tracker` to record into. A running one is
            never started or stopped here (one run can hold several trainings); without it,
            each ``fit`` (or ``test``, ...) is a run of its own, built from ``options`` when it
            starts.
        sinks: objects with ``log(scalars, step)`` (called at each progress mark) and
            ``finish(result)`` (at the end), e.g. carbonmonitor's MLflow or TensorBoard sinks.
        phase_prefix: puts the phases under a parent phase: ``"fine-tuning"`` gives
            ``"fine-tuning/train"``; it also labels the training's forecast.
        **options: Tracker options (``project``, ``country``, ``backend``,
            ``max_emissions_g``, ``budget_action``, ...); checked here.

    In a distributed fit only the global-zero process measures; a budget stop reaches every
    process through ``trainer.strategy.reduce_boolean_decision``.
    """

    def __init__(self, *, tracker: Tracker | None = None, sinks: Iterable[Sink] | None = None,
                 phase_prefix: str | None = None, **options: Any) -> None:
        super().__init__()
        self._monitor = Monitor(tracker=tracker, sinks=sinks, phase_prefix=phase_prefix,
                                options=options, framework="Lightning")
        self._steps_at = 0  # global_step when `train` last opened
        self._marked = 0  # global_step at the latest step mark (or at the training's start)
        self._epoch0 = self._step0 = 0  # where this fit started (a resumed fit starts later)
        self._epochs: float | None = None  # this fit's epochs, for the forecast (None: unknown)
        self._seen: dict[str, tuple[object, float]] = {}
        self.result: RunResult | None = None

    @property
    def tracker(self) -> Tracker | None:
        """The tracker of the current (or latest) run; None before the first one and in
        processes other than the global zero."""
        return self._monitor.tracker

    # -- run -------------------------------------------------------------------------------

    @guarded
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._seen = {}
        self._monitor.rank = 0 if trainer.is_global_zero else max(1, int(trainer.global_rank))
        self._monitor.world_size = int(trainer.world_size)
        self._monitor.begin_run()

    @guarded
    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        self._end(trainer, "completed")

    @guarded
    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        # Lightning calls this, and not teardown, when fit/test/... raised
        self._end(trainer, "interrupted" if isinstance(exception, KeyboardInterrupt)
                  else "failed")

    def _end(self, trainer: Any, status: Any) -> None:
        self._end_train(trainer)
        result = self._monitor.end_run(status)
        self.result = result or self.result

    # -- training --------------------------------------------------------------------------

    @guarded
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._marked = self._step0 = int(trainer.global_step)
        self._epoch0 = int(trainer.current_epoch)
        self._epochs = None
        total, unit = self._total(trainer)
        if unit == "epoch":
            self._epochs = total
        self._monitor.begin_progress(total, unit)

    def _total(self, trainer: Any) -> tuple[float | None, str]:
        """This fit's length for the forecast: ``max_steps`` when set, else ``max_epochs``
        (None without a meaningful limit; said once)."""
        if _step_marks(trainer):
            return trainer.max_steps - self._step0, "step"
        epochs = trainer.max_epochs
        if self._monitor.rank != 0:
            return None, "epoch"  # only the global zero forecasts
        if epochs is None or epochs < 0:
            self._monitor.warn_once("no-total", "carbonmonitor: this fit has no epoch limit "
                                    "(max_epochs=-1), so there is no forecast")
            return None, "epoch"
        if epochs == LIGHTNING_DEFAULT_EPOCHS and trainer.max_steps == -1:
            self._monitor.warn_once("default-total", "carbonmonitor: max_epochs is Lightning's "
                                    f"default ({LIGHTNING_DEFAULT_EPOCHS}, set when neither "
                                    "max_epochs nor max_steps is given), which says nothing of "
                                    "how long this fit will run: there is no forecast (give "
                                    "max_epochs= or max_steps= for one)")
            return None, "epoch"
        if any(isinstance(cb, pl.callbacks.EarlyStopping) for cb in trainer.callbacks):
            self._monitor.warn_once("early-stopping", f"carbonmonitor: with EarlyStopping the "
                                    f"forecast is for max_epochs={epochs}, an upper bound: the "
                                    "fit may stop sooner, and a predicted budget judges this "
                                    "upper bound")
        return epochs - self._epoch0, "epoch"

    @guarded
    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._steps_at = trainer.global_step
        self._monitor.open("train")

    @guarded
    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any,
                             batch_idx: int) -> None:
        if not self._monitor.is_open("train"):  # again after a validation inside the epoch
            self._steps_at = trainer.global_step
            self._monitor.open("train")

    @guarded
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._count(batch)
        step = int(trainer.global_step)
        if _step_marks(trainer):
            every = max(1, trainer.max_steps // STEP_MARKS)
            if step > self._marked and (step % every == 0 or step >= trainer.max_steps):
                self._marked = step  # the same steps in every process: a collective is safe
                self._decide(trainer, lambda: self._monitor.progress(
                    step - self._step0, trainer.max_steps - self._step0, step=step,
                    unit="step"))
                return
        if trainer.world_size == 1 and self._monitor.should_stop:
            trainer.should_stop = True  # a budget crossed between marks (sampler tick)

    @guarded
    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        def mark() -> bool:
            self._end_train(trainer)
            self._log(trainer, trainer.callback_metrics)
            if _step_marks(trainer):
                return False  # marked at the steps
            return self._monitor.progress(trainer.current_epoch + 1 - self._epoch0,
                                          self._epochs, step=trainer.global_step)

        self._decide(trainer, mark)  # at every epoch end, in every process alike

    def _decide(self, trainer: Any, mark: Callable[[], bool]) -> None:
        """A progress mark in the global zero (its failure contained), then the same stop
        decision in every process (Lightning's own reduction, as EarlyStopping's)."""
        if self._monitor.decide(mark, int(trainer.world_size), reduce=lambda stop: (
                trainer.strategy.reduce_boolean_decision(stop, all=False))):
            trainer.should_stop = True

    def _count(self, batch: Any) -> None:
        try:
            self._monitor.count_batch(batch)
        except Exception:
            self._monitor.warn_once("count", "carbonmonitor: counting a batch failed; training "
                                    "goes on", exc_info=True)

    def _end_train(self, trainer: Any) -> None:
        """Close ``train`` with the optimizer steps taken while it was open."""
        if self._monitor.is_open("train"):
            self._monitor.count(steps=max(0, trainer.global_step - self._steps_at))
            self._monitor.close("train")

    # -- evaluation ------------------------------------------------------------------------

    @guarded
    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._end_train(trainer)
            self._monitor.open("validation")

    @guarded
    def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if not trainer.sanity_checking:
            self._monitor.count_batch(batch)

    @guarded
    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        self._monitor.close("validation")
        if not _fitting(trainer):  # trainer.validate(): while fitting, logged at the epoch end
            self._log(trainer, trainer.callback_metrics)

    @guarded
    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        self._monitor.open("sanity_check")

    @guarded
    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        self._monitor.close("sanity_check")

    @guarded
    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        self._monitor.open("test")

    @guarded
    def on_test_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._monitor.count_batch(batch)

    @guarded
    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._monitor.close("test")
        self._log(trainer, trainer.callback_metrics)

    @guarded
    def on_predict_start(self, trainer: Any, pl_module: Any) -> None:
        self._monitor.open("predict")

    @guarded
    def on_predict_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        self._monitor.count_batch(batch)

    @guarded
    def on_predict_end(self, trainer: Any, pl_module: Any) -> None:
        self._monitor.close("predict")

    # -- metrics ---------------------------------------------------------------------------

    def _log(self, trainer: Any, metrics: Any) -> None:
        """Record the values Lightning holds in ``callback_metrics`` (what EarlyStopping and
        ModelCheckpoint see). A metric not computed again since it was last recorded (a
        validation run every n epochs) keeps the same tensor there: it is not recorded twice."""
        if not self._monitor.running:
            return
        fresh = {}
        for name, value in dict(metrics).items():
            number = scalar(value)
            last = self._seen.get(name)
            if number is None or (last is not None and last[0] is value and last[1] == number):
                continue
            self._seen[name] = (value, number)
            fresh[name] = number
        self._monitor.log_metrics(fresh, step=trainer.global_step,
                                  epoch=trainer.current_epoch + (1 if _fitting(trainer) else 0))


def _step_marks(trainer: Any) -> bool:
    """The fit is bounded by ``max_steps``: progress is marked in optimizer steps."""
    return trainer.max_steps is not None and trainer.max_steps > 0


def _fitting(trainer: Any) -> bool:
    """Inside ``trainer.fit`` (its validation included), not ``validate``/``test``/``predict``."""
    fn = trainer.state.fn
    return str(getattr(fn, "value", fn)) == "fit"
