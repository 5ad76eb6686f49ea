"""Hugging Face transformers: a ``TrainerCallback`` that measures ``Trainer.train``, its
evaluations, and ``evaluate``/``predict`` afterwards (``pip install
'carbonmonitor[transformers]'``).

Example:
    >>> from carbonmonitor.integrations.transformers import CarbonMonitorCallback
    >>> callback = CarbonMonitorCallback(project="bert", backend="fake", quiet=True, db="off")
    >>> # trainer = Trainer(model, args, ..., callbacks=[callback]); trainer.train()
    >>> # callback.result.unit_costs

Phases: ``train`` per epoch, ``validation`` for each evaluation inside ``train()`` (an
evaluation between steps closes ``train``, which opens again at the next step), ``test`` for
``evaluate``/``predict`` after training while a given tracker still runs. Samples and tokens are
counted exactly by a forward pre-hook on the model: the batch size of each forward call and the
sum of its attention mask (non-padding tokens). See docs/integrations.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from carbonmonitor.integrations._common import Monitor, guarded, missing_framework

try:
    from transformers import TrainerCallback
except ImportError as err:
    raise missing_framework("transformers", "transformers", err) from err

if TYPE_CHECKING:
    from carbonmonitor.integrations.sinks import Sink
    from carbonmonitor.records import RunResult
    from carbonmonitor.tracker import Tracker

__all__ = ["CarbonMonitorCallback"]

# At most this many progress marks (forecast, budgets, sinks) in a run bounded by max_steps.
STEP_MARKS = 100


class CarbonMonitorCallback(TrainerCallback):  # type: ignore[misc,unused-ignore]
    """Measures each ``train()`` of the Trainer it is given to.

    Args:
        tracker: a :class:`~carbonmonitor.tracker.Tracker` to record into. A running one is
            never started or stopped here: one run can hold several Trainers (with
            ``phase_prefix``) and the ``evaluate``/``predict`` calls after them. Without it,
            each ``train()`` is a run of its own, built from ``options``.
        sinks: objects with ``log(scalars, step)`` (called at each progress mark: each epoch,
            after its evaluation) and ``finish(result)`` (at the end).
        phase_prefix: puts the phases under a parent phase: ``"pre-training"`` gives
            ``"pre-training/train"``, ``"pre-training/validation"``.
        **options: Tracker options (``project``, ``country``, ``backend``,
            ``max_emissions_g``, ``budget_action``, ...); checked here.
    """

    def __init__(self, *, tracker: Tracker | None = None, sinks: Iterable[Sink] | None = None,
                 phase_prefix: str | None = None, **options: Any) -> None:
        self._monitor = Monitor(tracker=tracker, sinks=sinks, phase_prefix=phase_prefix,
                                options=options, framework="transformers")
        self._training = False
        self._hook: Any = None
        self._model: Any = None
        self._epoch_done: float | None = None  # an epoch-end mark waiting for its evaluation
        self._mark_every = 0  # steps between progress marks when max_steps bounds the run
        self.result: RunResult | None = None

    @property
    def tracker(self) -> Tracker:
        """The tracker of the current (or latest) run."""
        return self._monitor.tracker

    # -- training --------------------------------------------------------------------------

    @guarded
    def on_init_end(self, args: Any, state: Any, control: Any, model: Any = None,
                    **kwargs: Any) -> None:
        self._attach(model)

    @guarded
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kwargs: Any) -> None:
        self._attach(model)
        self._monitor.begin_run()
        self._training = True
        self._epoch_done = None
        self._mark_every = max(1, state.max_steps // STEP_MARKS) if args.max_steps > 0 else 0

    @guarded
    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._mark(args, state, control)  # an evaluation announced at the epoch end never came
        self._monitor.open("train")

    @guarded
    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._training:  # again after an evaluation between steps
            self._monitor.open("train")

    @guarded
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._monitor.count(steps=1)
        every = self._mark_every
        if every and (state.global_step % every == 0 or state.global_step >= state.max_steps):
            self._monitor.progress(state.global_step, state.max_steps, step=state.global_step,
                                   unit="step")
        if self._monitor.should_stop:
            control.should_training_stop = True

    @guarded
    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._monitor.close("train")
        if self._mark_every:
            return
        self._epoch_done = float(state.epoch)
        # The Trainer evaluates after on_epoch_end; the mark includes that evaluation.
        if not control.should_evaluate:
            self._mark(args, state, control)

    @guarded
    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._monitor.close("validation" if self._training else "test")
        self._mark(args, state, control)

    @guarded
    def on_predict(self, args: Any, state: Any, control: Any, metrics: Any = None,
                   **kwargs: Any) -> None:
        self._monitor.close("test")

    @guarded
    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
               **kwargs: Any) -> None:
        values = dict(logs or {})
        epoch = values.pop("epoch", None)
        self._monitor.log_metrics(values, step=state.global_step,
                                  epoch=epoch if isinstance(epoch, (int, float)) else None)

    @guarded
    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._mark(args, state, control)
        self._training = False
        owned = self._monitor.owned
        self.result = self._monitor.end_run("completed") or self.result
        if owned:  # nothing left to measure; a given tracker keeps the hook for evaluate()
            self._detach()

    def _mark(self, args: Any, state: Any, control: Any) -> None:
        """The pending epoch's progress mark; a crossed budget stops training."""
        done, self._epoch_done = self._epoch_done, None
        if done is not None and self._monitor.progress(done, float(args.num_train_epochs),
                                                       step=state.global_step):
            control.should_training_stop = True

    # -- counting work: a forward pre-hook on the model ------------------------------------

    def _attach(self, model: Any) -> None:
        if model is None or model is self._model:
            return
        self._detach()
        self._hook = model.register_forward_pre_hook(self._forward, with_kwargs=True)
        self._model = model

    def _detach(self) -> None:
        if self._hook is not None:
            self._hook.remove()
        self._hook = self._model = None

    def _forward(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Each forward call is one batch: training forwards (``module.training``) are train
        work; others are the evaluation's (inside ``train()``) or a test's (after it)."""
        try:
            monitor = self._monitor
            if not monitor.running:
                return
            if module.training:
                if not self._training:
                    return  # a forward in training mode outside Trainer.train
                monitor.open("train")
            elif self._training:
                if not monitor.is_open("validation"):
                    monitor.close("train")
                    monitor.open("validation")
            else:
                monitor.open("test")
            monitor.count_batch(kwargs if kwargs else args)
        except Exception:
            self._monitor.warn_once("forward", "carbonmonitor: counting a forward call's batch "
                                    "failed; training goes on", exc_info=True)
