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
    (its ``attention_mask`` sum) and, for ``train``, one step.

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
        self._steps = 0
        self.result: RunResult | None = None

    @property
    def tracker(self) -> Tracker:
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

    def train(self, batches: Iterable[B]) -> Iterator[B]:
        """Yield ``batches`` inside the ``train`` phase, counting each (one step per batch)."""
        return self._phase("train", batches, steps=True)

    def validate(self, batches: Iterable[B]) -> Iterator[B]:
        """Yield ``batches`` inside the ``validation`` phase, counting each."""
        return self._phase("validation", batches, steps=False)

    def test(self, batches: Iterable[B]) -> Iterator[B]:
        """Yield ``batches`` inside the ``test`` phase, counting each."""
        return self._phase("test", batches, steps=False)

    def log_metrics(self, values: Mapping[str, Any], *, step: int | None = None,
                    epoch: float | None = None) -> None:
        """Record numeric metrics (tensors converted) at ``step`` (default: the steps so far)
        and ``epoch`` (default: the epoch under way, counted from 1)."""
        self._log(values, self._steps if step is None else step,
                  self._epoch + 1 if epoch is None else epoch)

    def _phase(self, name: str, batches: Iterable[B], steps: bool) -> Iterator[B]:
        self._open(name)
        try:
            for batch in batches:
                self._count(batch, steps)
                yield batch
                if steps and self._monitor.should_stop:
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
    def _count(self, batch: Any, steps: bool) -> None:
        self._monitor.count_batch(batch)
        if steps:
            self._monitor.count(steps=1)
            self._steps += 1

    @guarded
    def _log(self, values: Mapping[str, Any], step: int, epoch: float) -> None:
        self._monitor.log_metrics(values, step=step, epoch=epoch)

    @guarded
    def _mark(self, total: int) -> bool:
        return self._monitor.progress(self._epoch, total, step=self._steps)
