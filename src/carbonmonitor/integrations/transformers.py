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
``evaluate``/``predict`` outside training while a given tracker runs. Samples and tokens are
counted exactly by a forward pre-hook on the model: the batch size of each forward call and the
sum of its attention mask (non-padding tokens), inside this Trainer's ``train()``,
``evaluate()`` and ``predict()`` only. A ``generate()`` call counts its prompt once and its new
tokens as ``generated_tokens``. See docs/integrations.md.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from carbonmonitor.integrations._common import Monitor, Portable, guarded, missing_framework

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
# The Trainer's loop behind evaluate() and predict() (transformers.Trainer.evaluation_loop).
_EVALUATION_LOOP = "evaluation_loop"


class CarbonMonitorCallback(Portable, TrainerCallback):  # type: ignore[misc,unused-ignore]
    """Measures each ``train()`` of the Trainer it is given to.

    Args:
        tracker: a :class:`~carbonmonitor.tracker.Tracker` to record into. A running one is
            never started or stopped here: one run can hold several Trainers (with
            ``phase_prefix``) and the ``evaluate``/``predict`` calls after them. Without it,
            each ``train()`` is a run of its own, built from ``options`` when it starts.
        sinks: objects with ``log(scalars, step)`` (called at each progress mark: each epoch,
            after its evaluation) and ``finish(result)`` (at the end).
        phase_prefix: puts the phases under a parent phase: ``"pre-training"`` gives
            ``"pre-training/train"``, ``"pre-training/validation"``; it also labels the
            training's forecast.
        **options: Tracker options (``project``, ``country``, ``backend``,
            ``max_emissions_g``, ``budget_action``, ...); checked here.

    In a distributed run only the world process zero measures; a budget stop reaches every
    process through the torch process group at the progress marks.
    """

    _transient = {"result": None, "_hook": None, "_model": None, "_generation": None,
                  "_evaluating": False, "_training": False}

    def __init__(self, *, tracker: Tracker | None = None, sinks: Iterable[Sink] | None = None,
                 phase_prefix: str | None = None, **options: Any) -> None:
        self._monitor = Monitor(tracker=tracker, sinks=sinks, phase_prefix=phase_prefix,
                                options=options, framework="transformers")
        self._training = False
        self._evaluating = False  # inside this Trainer's evaluation_loop (found on the stack)
        self._hook: Any = None
        self._model: Any = None
        self._generation: _Generation | None = None  # the generate() call under way
        self._epoch_done: float | None = None  # an epoch-end mark waiting for its evaluation
        self._mark_every = 0  # steps between progress marks when max_steps bounds the run
        self._epoch0 = 0.0  # where this train() started (resumed from a checkpoint: later)
        self._step0 = 0
        self.result: RunResult | None = None

    @property
    def tracker(self) -> Tracker | None:
        """The tracker of the current (or latest) run; None before the first one and in
        processes other than the world process zero."""
        return self._monitor.tracker

    # -- training --------------------------------------------------------------------------

    @guarded
    def on_init_end(self, args: Any, state: Any, control: Any, model: Any = None,
                    **kwargs: Any) -> None:
        self._set_rank(args, state)
        if self._monitor.running:  # a given tracker: evaluate()/predict() before train()
            self._attach(model)

    @guarded
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       **kwargs: Any) -> None:
        # the marks' schedule first: every process must reach the same marks (see _decide)
        self._mark_every = max(1, state.max_steps // STEP_MARKS) if args.max_steps > 0 else 0
        self._epoch_done = None
        self._training, self._evaluating = True, False
        self._set_rank(args, state)
        self._monitor.begin_run()
        self._epoch0, self._step0 = float(state.epoch or 0), int(state.global_step)
        if self._mark_every:
            self._monitor.begin_progress(state.max_steps - self._step0, "step")
        else:
            self._monitor.begin_progress(float(args.num_train_epochs) - self._epoch0)
        if self._monitor.running:
            self._attach(model)

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
        every, step = self._mark_every, int(state.global_step)
        if every and (step % every == 0 or step >= state.max_steps):
            self._decide(args, control, lambda: self._monitor.progress(
                step - self._step0, state.max_steps - self._step0, step=step, unit="step"))
        elif args.world_size == 1 and self._monitor.should_stop:
            control.should_training_stop = True  # a budget crossed between marks

    @guarded
    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not self._mark_every:
            self._epoch_done = float(state.epoch)
        self._monitor.contain(lambda: self._monitor.close("train"), "closing a phase")
        # The Trainer evaluates after on_epoch_end; the mark includes that evaluation.
        if not control.should_evaluate:
            self._mark(args, state, control)

    @guarded
    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._evaluating = False
        self._monitor.contain(lambda: self._monitor.close(
            "validation" if self._training else "test"), "closing a phase")
        self._mark(args, state, control)

    @guarded
    def on_predict(self, args: Any, state: Any, control: Any, metrics: Any = None,
                   **kwargs: Any) -> None:
        self._evaluating = False
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
        self._training = self._evaluating = False
        owned = self._monitor.owned
        self.result = self._monitor.end_run("completed") or self.result
        if owned or not self._monitor.running:  # a given tracker keeps it for evaluate()
            self._detach()

    def _mark(self, args: Any, state: Any, control: Any) -> None:
        """The pending epoch's progress mark; a crossed budget stops training. Every process
        keeps the same ``_epoch_done`` schedule (set before any bookkeeping that could fail),
        so every process reaches the decision's collective together."""
        done, self._epoch_done = self._epoch_done, None
        if done is not None:
            total = float(args.num_train_epochs) - self._epoch0
            self._decide(args, control, lambda: self._monitor.progress(
                done - self._epoch0, total, step=state.global_step))

    def _decide(self, args: Any, control: Any, mark: Any) -> None:
        """A progress mark in process zero, then the same stop decision in every process."""
        if self._monitor.decide(mark, int(args.world_size), device=args.device):
            control.should_training_stop = True

    def _set_rank(self, args: Any, state: Any) -> None:
        """Only the world process zero measures (``state.is_world_process_zero``)."""
        zero = bool(getattr(state, "is_world_process_zero", True))
        self._monitor.rank = 0 if zero else max(1, int(getattr(args, "process_index", 1)))
        self._monitor.world_size = int(getattr(args, "world_size", 1))

    # -- counting work: a forward pre-hook on the model, and generate() --------------------

    def _attach(self, model: Any) -> None:
        """One hook on the model (and its ``generate``), moved when the model changes."""
        if model is None or model is self._model:
            return
        self._detach()
        self._hook = model.register_forward_pre_hook(self._forward, with_kwargs=True)
        if callable(getattr(model, "generate", None)):
            model.generate = _Generate(self, model, model.__dict__.get("generate"))
        self._model = model

    def _detach(self) -> None:
        if self._hook is not None:
            self._hook.remove()
        model = self._model
        wrapper = getattr(model, "__dict__", {}).get("generate")
        if isinstance(wrapper, _Generate) and wrapper.callback is self:
            if wrapper.previous is None:
                del model.__dict__["generate"]
            else:
                model.__dict__["generate"] = wrapper.previous
        self._hook = self._model = None

    def _forward(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Each forward call is one batch: training forwards (``module.training``) in
        ``train()`` are train work; others count only inside this Trainer's evaluation
        (``validation`` in ``train()``, else ``test``). Inside ``generate()`` only the first
        forward (the prompt) is a batch: the others are its decoding steps."""
        try:
            generation = self._generation
            if generation is not None:
                if generation.started:
                    return
                generation.started = True
            monitor = self._monitor
            if not monitor.running:
                return
            if module.training:
                if not self._training:
                    return  # a forward in training mode outside Trainer.train
                monitor.open("train")
            else:
                if not (self._evaluating or self._in_evaluation()):
                    return  # the model used outside this Trainer's evaluate()/predict()
                self._evaluating = True
                if not self._training:
                    monitor.open("test")
                elif not monitor.is_open("validation"):
                    monitor.close("train")
                    monitor.open("validation")
            monitor.count_batch(kwargs if kwargs else args)
            if generation is not None:
                generation.counted = True
        except Exception:
            self._monitor.warn_once("forward", "carbonmonitor: counting a forward call's batch "
                                    "failed; training goes on", exc_info=True)

    def _in_evaluation(self) -> bool:
        """Whether the calling stack holds ``evaluation_loop`` of a Trainer this callback was
        given to: the Trainer has no hook where an evaluation begins, only where it ends."""
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == _EVALUATION_LOOP:
                handler = getattr(frame.f_locals.get("self"), "callback_handler", None)
                if any(cb is self for cb in getattr(handler, "callbacks", ())):
                    return True
            frame = frame.f_back  # type: ignore[assignment]
        return False

    def _generate(self, original: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run ``model.generate``; its prompt is counted by the forward hook, its new tokens
        (each row's, up to its first end-of-sequence token) as ``generated_tokens``."""
        if self._generation is not None:  # generate() inside generate(): counted outside
            return original(*args, **kwargs)
        generation = self._generation = _Generation()
        try:
            result = original(*args, **kwargs)
        finally:
            self._generation = None
        if generation.counted:
            try:
                made = generated_tokens(self._model, result, args, kwargs)
                if made is not None:
                    self._monitor.count(generated_tokens=made)
            except Exception:
                self._monitor.warn_once("generate", "carbonmonitor: counting generated tokens "
                                        "failed; generation goes on", exc_info=True)
        return result


class _Generation:
    """One ``generate()`` call: its first forward was seen, and counted."""

    def __init__(self) -> None:
        self.started = self.counted = False


class _Generate:
    """Stands for ``model.generate`` while a callback counts the model's work: calls the
    model's own (or the one it replaced) through the callback."""

    def __init__(self, callback: CarbonMonitorCallback, model: Any, previous: Any) -> None:
        self.callback, self.model, self.previous = callback, model, previous

    def _original(self) -> Any:
        if self.previous is not None:
            return self.previous
        return type(self.model).generate.__get__(self.model)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.callback._generate(self._original(), args, kwargs)


def generated_tokens(model: Any, result: Any, args: tuple[Any, ...],
                     kwargs: Mapping[str, Any]) -> int | None:
    """The tokens ``model.generate`` made: each returned sequence's new tokens up to and
    including its first end-of-sequence token (later positions are padding). None when the
    result holds no sequences."""
    import torch

    sequences = getattr(result, "sequences", result)
    if not isinstance(sequences, torch.Tensor) or sequences.dim() != 2:
        return None
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False):
        prompt = kwargs.get("decoder_input_ids")
        start = int(prompt.shape[1]) if prompt is not None else 1  # the decoder's start token
    else:
        prompt = kwargs.get("input_ids", kwargs.get("inputs", args[0] if args else None))
        start = int(prompt.shape[1]) if isinstance(prompt, torch.Tensor) else 0
    new = sequences[:, start:]
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    eos = kwargs.get("eos_token_id", eos)
    if eos is None or new.shape[1] == 0:
        return int(new.numel())
    ends = torch.isin(new, torch.tensor(eos if isinstance(eos, list) else [eos],
                                        device=new.device))
    lengths = torch.where(ends.any(dim=1), ends.int().argmax(dim=1) + 1, new.shape[1])
    return int(lengths.sum())
