"""A hand-written training loop (PyTorch, or anything that yields batches): the phases, work
counts, progress marks and budget stops of the framework callbacks, in a few wrappers. Nothing
is imported from PyTorch: batches are read by duck typing (``.shape``, ``.sum()``).

Example:
    >>> from carbonmonitor.integrations.torch import TrainingMonitor
    >>> class Batch:  # stands for a tensor of n rows
    ...     def __init__(self, n): self.shape = (n, 8)
    >>> with TrainingMonitor(project="demo", backend="fake", quiet=True, db="off") as monitor:
    ...     for epoch in monitor.epochs(3):
    ...         for batch in monitor.train([Batch(32), Batch(32), Batch(4)]):
    ...             pass  # forward, backward, optimizer step
    ...         for batch in monitor.validate([Batch(20)]):
    ...             pass  # evaluate
    ...         monitor.log_metrics({"val_accuracy": 0.9})
    >>> train = monitor.result.phase("train")
    >>> train.count, train.work.samples, train.work.steps
    (3, 204, 9)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from carbonmonitor.integrations._common import Monitor, guarded
from carbonmonitor.integrations._distributed import process_rank

if TYPE_CHECKING:
    from carbonmonitor.integrations.sinks import Sink
    from carbonmonitor.records import RunResult
    from carbonmonitor.tracker import Tracker

__all__ = ["TrainingMonitor"]
B = TypeVar("B")


class TrainingMonitor:
    """Measures a hand-written loop as the callbacks measure a framework's.

    ``epochs(n)`` yields epoch numbers and, after each epoch, makes a progress mark (forecast,
    budgets, sinks); it ends early once a budget with ``budget_action="stop"`` is crossed.
    ``train(batches)``, ``validate(batches)`` and ``test(batches)`` yield the batches inside the
    phase of that name and count each batch handed out: samples (its leading dimension), tokens
    (its ``attention_mask`` sum) and, for ``train``, optimizer steps: one per batch, or one per
    ``accumulate`` batches with gradient accumulation (or none: call :meth:`step` yourself).

    In several processes (a torch process group, ``torchrun``'s ``RANK``) only process 0
    measures; the budget stop of ``epochs`` reaches every process through the torch process
    group (without one, a budget only warns).

    Args:
        tracker: a :class:`~carbonmonitor.tracker.Tracker` to record into; a running one is
            never started or stopped here. Without it, the monitor's run is built from
            ``options`` and lasts the ``with`` block (or, without one, the ``epochs`` loop).
        sinks: objects with ``log(scalars, step)`` (each epoch) and ``finish(result)`` (end).
        phase_prefix: puts the phases under a parent phase (``"fine-tuning"``).
        **options: Tracker options; checked here.
    """

    def __init__(self, *, tracker: Tracker | None = None, sinks: Iterable[Sink] | None = None,
                 phase_prefix: str | None = None, **options: Any) -> None:
        self._monitor = Monitor(tracker=tracker, sinks=sinks, phase_prefix=phase_prefix,
                                options=options, framework="PyTorch loop")
        self._epoch = 0  # epochs completed
        self._epoch0 = 0  # the first epoch of the running epochs() loop
        self._steps = 0
        self.result: RunResult | None = None

    @property
    def tracker(self) -> Tracker | None:
        """The tracker of the current (or latest) run; None before the first one and in
        processes other than 0."""
        return self._monitor.tracker

    @property
    def should_stop(self) -> bool:
        """A budget with ``budget_action="stop"`` was crossed: stop training."""
        return self._monitor.should_stop

    # -- the run ---------------------------------------------------------------------------

    def __enter__(self) -> TrainingMonitor:
        self._begin()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        status = ("completed" if exc_type is None else "interrupted"
                  if issubclass(exc_type, KeyboardInterrupt) else "failed")
        self._end(status)

    @guarded
    def _begin(self) -> None:
        self._epoch = self._steps = 0
        self._monitor.rank, self._monitor.world_size = process_rank()
        self._monitor.begin_run()

    @guarded
    def _end(self, status: Any) -> None:
        self.result = self._monitor.end_run(status) or self.result

    # -- the loop --------------------------------------------------------------------------

    def epochs(self, total: int) -> Iterator[int]:
        """Yield ``0 .. total-1``; a progress mark after each epoch; stop early on a budget.
        Outside a ``with`` block it begins the run and ends it when the loop ends (left early:
        status ``interrupted``)."""
        own = not self._monitor.active
        if own:
            self._begin()
        self._begin_progress(total)
        finished = False
        try:
            for epoch in range(self._epoch, total):
                yield epoch
                self._epoch = epoch + 1
                if self._mark(total):
                    break
            finished = True
        finally:
            if own:
                self._end("completed" if finished else "interrupted")

    def train(self, batches: Iterable[B], *, accumulate: int = 1) -> Iterator[B]:
        """Yield ``batches`` inside the ``train`` phase, counting each, and an optimizer step
        after every ``accumulate``-th batch: with gradient accumulation over 2 batches, 7
        batches are 3 steps (a last partial group is not a step; call :meth:`step` if your
        loop steps there). ``accumulate=0`` counts no steps: call :meth:`step` yourself.

        Raises:
            ConfigError: ``accumulate`` is not a whole number >= 0.
        """
        if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 0:
            from carbonmonitor.errors import ConfigError

            raise ConfigError(f"accumulate must be a whole number of batches >= 0 (0: call "
                              f"step() yourself); got {accumulate!r}")
        return self._phase("train", batches, accumulate)

    def validate(self, batches: Iterable[B]) -> Iterator[B]:
        """Yield ``batches`` inside the ``validation`` phase, counting each."""
        return self._phase("validation", batches, 0)

    def test(self, batches: Iterable[B]) -> Iterator[B]:
        """Yield ``batches`` inside the ``test`` phase, counting each."""
        return self._phase("test", batches, 0)

    @guarded
    def step(self, steps: int = 1) -> None:
        """Count optimizer steps yourself (with ``train(..., accumulate=0)``)."""
        self._monitor.count(steps=steps)
        self._steps += steps

    def log_metrics(self, values: Mapping[str, Any], *, step: int | None = None,
                    epoch: float | None = None) -> None:
        """Record numeric metrics (tensors converted) at ``step`` (default: the steps so far)
        and ``epoch`` (default: the epoch under way, counted from 1)."""
        self._log(values, self._steps if step is None else step,
                  self._epoch + 1 if epoch is None else epoch)

    def _phase(self, name: str, batches: Iterable[B], accumulate: int) -> Iterator[B]:
        self._open(name)
        try:
            for i, batch in enumerate(batches, 1):
                self._count(batch, accumulate > 0 and i % accumulate == 0)
                yield batch
                if name == "train" and self._monitor.world_size == 1 \
                        and self._monitor.should_stop:
                    break  # a budget crossed inside the epoch (a sampler tick)
        finally:
            self._close(name)

    @guarded
    def _open(self, name: str) -> None:
        self._monitor.open(name)

    @guarded
    def _close(self, name: str) -> None:
        self._monitor.close(name)

    @guarded
    def _count(self, batch: Any, step: bool) -> None:
        self._monitor.count_batch(batch)
        if step:
            self._monitor.count(steps=1)
            self._steps += 1

    @guarded
    def _log(self, values: Mapping[str, Any], step: int, epoch: float) -> None:
        self._monitor.log_metrics(values, step=step, epoch=epoch)

    @guarded
    def _begin_progress(self, total: int) -> None:
        self._epoch0 = self._epoch
        self._monitor.begin_progress(total - self._epoch0)

    def _mark(self, total: int) -> bool:
        """The epoch's progress mark; the stop decision of every process."""
        return self._monitor.decide(
            lambda: self._monitor.progress(self._epoch - self._epoch0, total - self._epoch0,
                                           step=self._steps), self._monitor.world_size)
