"""Keras 3: a ``Callback`` that measures ``model.fit`` and ``model.evaluate``
(``pip install 'carbonmonitor[keras]'``; tested on the torch backend).

Example:
    >>> from carbonmonitor.integrations.keras import CarbonMonitorCallback
    >>> callback = CarbonMonitorCallback(project="digits", backend="fake", quiet=True,
    ...                                  db="off")
    >>> # model.fit(x, y, epochs=3, validation_split=0.2, callbacks=[callback])
    >>> # callback.result.phase("train").work.samples

Phases per epoch: ``train`` and ``validation`` (Keras validates inside ``fit`` after the epoch's
training: ``on_test_begin``/``on_test_end`` while fitting); ``model.evaluate`` outside ``fit`` is
``test``. Samples are exact: the count Keras's own loss tracker adds up, one per row of each
batch's first input (see docs/integrations.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from carbonmonitor.integrations._common import Monitor, Portable, guarded, missing_framework
from carbonmonitor.integrations._distributed import process_rank

try:
    import keras
except ImportError as err:
    missing = getattr(err, "name", None) or ""
    if missing and missing.split(".")[0] != "keras":  # Keras is there, its backend is not
        raise ImportError(
            f"carbonmonitor's Keras integration: Keras is installed but its backend "
            f"{missing!r} is not ({err}); install it, or choose an installed backend with the "
            "KERAS_BACKEND environment variable before Keras is imported (e.g. "
            "KERAS_BACKEND=torch)") from err
    raise missing_framework("Keras", "keras", err) from err

if TYPE_CHECKING:
    from carbonmonitor.integrations.sinks import Sink
    from carbonmonitor.records import RunResult
    from carbonmonitor.tracker import Tracker

__all__ = ["CarbonMonitorCallback"]


class CarbonMonitorCallback(Portable, keras.callbacks.Callback):  # type: ignore[misc]
    """Measures each ``fit`` of the model it is given to (and ``evaluate`` outside ``fit``).

    Args:
        tracker: a :class:`~carbonmonitor.tracker.Tracker` to record into. A running one is
            never started or stopped here; without it, each ``fit`` (or ``evaluate``) is a run
            of its own, built from ``options`` when it starts.
        sinks: objects with ``log(scalars, step)`` (called at each epoch end) and
            ``finish(result)`` (at the end).
        phase_prefix: puts the phases under a parent phase (``"fine-tuning"``); it also
            labels the training's forecast.
        **options: Tracker options (``project``, ``country``, ``backend``,
            ``max_emissions_g``, ``budget_action``, ...); checked here.

    In several processes (a torch process group, ``torchrun``'s ``RANK``,
    ``keras.distribution`` on JAX) only process 0 measures; a budget stop reaches every
    process through the torch process group (without one, a budget only warns).
    """

    _transient = {"result": None, "_model": None}

    def __init__(self, *, tracker: Tracker | None = None, sinks: Iterable[Sink] | None = None,
                 phase_prefix: str | None = None, **options: Any) -> None:
        super().__init__()
        self._monitor = Monitor(tracker=tracker, sinks=sinks, phase_prefix=phase_prefix,
                                options=options, framework="Keras")
        self._fitting = False
        self._own_evaluation = False  # evaluate() outside fit is a run of its own
        self._iterations_at = 0
        self._epoch0: int | None = None  # the first epoch of this fit (fit(initial_epoch=))
        self.result: RunResult | None = None

    @property
    def tracker(self) -> Tracker | None:
        """The tracker of the current (or latest) run; None before the first one and in
        processes other than 0."""
        return self._monitor.tracker

    # -- fit -------------------------------------------------------------------------------

    @guarded
    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        self._fitting = True
        self._epoch0 = None
        self._monitor.rank, self._monitor.world_size = _process()
        self._monitor.begin_run()
        self._monitor.begin_progress(self.params.get("epochs"))

    @guarded
    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self._epoch0 is None:
            self._epoch0 = epoch
        self._iterations_at = self._iterations()
        self._monitor.open("train")

    @guarded
    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self._monitor.world_size == 1 and self._monitor.should_stop:
            self.model.stop_training = True  # a budget crossed between epoch ends (sampler tick)

    @guarded
    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        first = epoch if self._epoch0 is None else self._epoch0
        epochs = self.params.get("epochs")

        def mark() -> bool:
            self._end_train()
            step = self._iterations()
            self._monitor.log_metrics(logs or {}, step=step, epoch=epoch + 1)
            return self._monitor.progress(epoch + 1 - first,
                                          None if epochs is None else epochs - first, step=step)

        if self._monitor.decide(mark, self._monitor.world_size):
            self.model.stop_training = True

    @guarded
    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._fitting = False
        self._end_train()
        self.result = self._monitor.end_run("completed") or self.result

    def _end_train(self) -> None:
        """Close ``train`` with its samples (Keras's loss tracker, not yet reset for the
        validation) and optimizer steps."""
        if not self._monitor.is_open("train"):
            return
        steps = self._iterations() - self._iterations_at
        samples = self._samples_seen()
        if samples == 0 and steps > 0:
            self._monitor.warn_once("samples", "carbonmonitor: Keras's loss tracker counted no "
                                    "samples (a custom train_step?); samples are not counted")
        self._monitor.count(samples=samples, steps=steps)
        self._monitor.close("train")

    # -- evaluation ------------------------------------------------------------------------

    @guarded
    def on_test_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        if self._fitting:
            self._end_train()
            self._monitor.open("validation")
            return
        self._own_evaluation = not self._monitor.active and not self._monitor.running
        if self._own_evaluation:
            self._monitor.rank, self._monitor.world_size = _process()
            self._monitor.begin_run()
        self._monitor.open("test")

    @guarded
    def on_test_end(self, logs: Mapping[str, Any] | None = None) -> None:
        name = "validation" if self._fitting else "test"
        if self._monitor.is_open(name):
            self._monitor.count(samples=self._samples_seen())
            self._monitor.close(name)
        if not self._fitting:  # while fitting, the epoch's logs carry the val_ metrics
            self._monitor.log_metrics(logs or {}, step=self._iterations(), epoch=None,
                                      prefix="test_")
        if self._own_evaluation:
            self._own_evaluation = False
            self.result = self._monitor.end_run("completed") or self.result

    # -- reading Keras's counters ----------------------------------------------------------

    def _iterations(self) -> int:
        """Optimizer steps taken so far (0 before the optimizer exists)."""
        optimizer = getattr(self.model, "optimizer", None)
        iterations = getattr(optimizer, "iterations", None)
        return 0 if iterations is None else int(iterations)

    def _samples_seen(self) -> int:
        """Rows seen since Keras last reset its metrics (each epoch, each evaluation): its loss
        tracker is a Mean weighted by each batch's size."""
        count = getattr(getattr(self.model, "_loss_tracker", None), "count", None)
        return 0 if count is None else int(round(float(count)))


def _process() -> tuple[int, int]:
    """``(rank, world_size)``: JAX's process under a multi-process ``keras.distribution``,
    else the torch process group or the launcher's variables (``RANK``, ...)."""
    distribution = keras.distribution.distribution()
    processes = int(getattr(distribution, "num_processes", 1) or 1)
    if processes > 1 and keras.backend.backend() == "jax":
        import jax  # type: ignore[import-not-found,unused-ignore]

        return int(jax.process_index()), processes
    return process_rank()
