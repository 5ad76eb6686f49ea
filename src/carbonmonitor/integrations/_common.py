"""What every framework integration shares: the run it measures (its own or one it is given),
phases, work counts, metrics, progress and sinks. No framework is imported here.

Every hook of a callback is wrapped in :func:`guarded`: a failure inside the monitor logs one
warning (logger ``carbonmonitor``) per hook and training goes on.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from carbonmonitor.facts import JOULES_PER_KWH
from carbonmonitor.integrations.sinks import PREFIX, Sink

if TYPE_CHECKING:
    from carbonmonitor.records import RunResult
    from carbonmonitor.tracker import PhaseHandle, Tracker

log = logging.getLogger("carbonmonitor")
F = TypeVar("F", bound=Callable[..., Any])
Status = Literal["completed", "failed", "interrupted"]

TOKENS_NOTE = "tokens: non-padding tokens (attention mask)"
INPUT_IDS_NOTE = "tokens: all input_ids positions (the batch had no attention mask)"
# Where the batch size is looked for first in a dict batch (Hugging Face model inputs).
_BATCH_KEYS = ("input_ids", "attention_mask", "inputs_embeds", "pixel_values", "input_values",
               "input_features")


def missing_framework(framework: str, extra: str, err: BaseException) -> ImportError:
    """The ImportError raised when an integration's framework cannot be imported."""
    return ImportError(f"carbonmonitor's {framework} integration needs {framework} ({err}): "
                       f"pip install 'carbonmonitor[{extra}]'")


def scalars(tracker: Tracker) -> dict[str, float]:
    """The run's figures so far, for sinks: energy (kWh), CO2e (g, location-based, PUE included)
    and power (W, over the last sampling interval), and the latest forecast's totals once one
    exists. Keys start with ``carbonmonitor/``.

    Example:
        >>> from carbonmonitor import FakeBackend, ManualClock, Tracker
        >>> clock = ManualClock()
        >>> run = Tracker(backend=[FakeBackend({"cpu": 100.0})], clock=clock,
        ...               sampling="manual", quiet=True, db="off", country="FR").start()
        >>> clock.advance(36); run.tick()
        >>> scalars(run)["carbonmonitor/energy_kwh"], scalars(run)["carbonmonitor/power_w"]
        (0.001, 100.0)
        >>> _ = run.stop()
    """
    _elapsed_s, energy_j, power_w = tracker.snapshot()
    grams_per_j = tracker.pue.value * tracker.intensity.g_per_kwh / JOULES_PER_KWH
    out = {f"{PREFIX}energy_kwh": energy_j / JOULES_PER_KWH,
           f"{PREFIX}co2e_g": energy_j * grams_per_j,
           f"{PREFIX}power_w": power_w}
    forecast = tracker.forecast
    if forecast is not None:
        out[f"{PREFIX}forecast_energy_kwh"] = forecast.energy_j / JOULES_PER_KWH
        out[f"{PREFIX}forecast_co2e_g"] = forecast.co2e_g
    return out


def batch_size_of(batch: Any) -> int | None:
    """The leading dimension of the first array in a batch (a tensor, a dict of model inputs,
    a tuple ``(x, y)``, nested); None when the batch holds no array."""
    shape = getattr(batch, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    if isinstance(batch, Mapping):
        first = [batch[k] for k in _BATCH_KEYS if k in batch]
        values: Iterable[Any] = [*first, *batch.values()]
    elif isinstance(batch, (list, tuple)):
        values = batch
    else:
        return None
    for value in values:
        found = batch_size_of(value)
        if found is not None:
            return found
    return None


def scalar(value: Any) -> float | None:
    """A number from a metric value (a float, a one-element tensor or array); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    size = getattr(value, "numel", None)
    count = size() if callable(size) else getattr(value, "size", None)
    if count == 1 and hasattr(value, "item"):
        item = value.item()
        return float(item) if isinstance(item, (int, float)) and not isinstance(item, bool) \
            else None
    return None


def tracker_state(tracker: Tracker) -> str:
    """``"new"``, ``"running"`` or ``"stopped"``."""
    return tracker.state


class _Pending:
    """Work counted since the last flush. Token sums of tensors stay on their device until the
    flush, so counting them never waits for the accelerator."""

    def __init__(self) -> None:
        self.samples = self.steps = self.tokens = 0
        self.lazy: dict[str, Any] = {}
        self.notes: dict[str, None] = {}

    def add_tokens(self, total: Any, note: str) -> None:
        self.notes[note] = None
        device = getattr(total, "device", None)
        if device is None:
            self.tokens += int(total)
            return
        key = f"{type(total).__name__}:{device}"
        previous = self.lazy.get(key)
        self.lazy[key] = total if previous is None else previous + total

    def take(self) -> tuple[int, int, int, tuple[str, ...]]:
        tokens = self.tokens + sum(int(t) for t in self.lazy.values())
        out = (self.samples, tokens, self.steps, tuple(self.notes))
        self.samples = self.steps = self.tokens = 0
        self.lazy, self.notes = {}, {}
        return out


class Monitor:
    """The bookkeeping of one callback: its run, its open phases, pending work, sinks.

    Args:
        tracker: a tracker to use. A running one is never started or stopped here; one not
            started yet is started at the first :meth:`begin_run` and stopped at
            :meth:`end_run`, as is the tracker built from ``options`` when none is given.
        sinks: objects with ``log(scalars, step)`` and ``finish(result)``.
        phase_prefix: ``"pre-training"`` (or ``"pre-training/"``): phases become
            ``"pre-training/train"``, ... so one tracker can hold several trainings.
        options: :class:`~carbonmonitor.tracker.Tracker` options for the tracker built here
            (checked now: a bad one raises ConfigError before training starts).
        framework: the framework's name, for messages.
    """

    def __init__(self, *, tracker: Tracker | None, sinks: Iterable[Sink] | None,
                 phase_prefix: str | None, options: Mapping[str, Any], framework: str) -> None:
        from carbonmonitor.errors import ConfigError
        from carbonmonitor.tracker import Tracker

        if tracker is not None and options:
            raise ConfigError(f"{framework} callback: give tracker= or tracker options "
                              f"({', '.join(sorted(options))}), not both")
        self._options = dict(options)
        self._given = tracker is not None
        self.tracker: Tracker = tracker if tracker is not None else Tracker(**self._options)
        self.sinks = list(sinks or ())
        self.framework = framework
        self.prefix = tuple(part for part in (phase_prefix or "").split("/") if part)
        self.owned = False  # this monitor starts and stops the tracker
        self.active = False  # between begin_run and end_run
        self._stack: list[tuple[str, PhaseHandle]] = []
        self._pending = _Pending()
        self._warned: set[str] = set()

    # -- run -------------------------------------------------------------------------------

    def begin_run(self) -> None:
        """Training starts: start the tracker when it is ours, open the prefix phases."""
        from carbonmonitor.tracker import Tracker

        if self.active:  # the previous training never reached its end hook: it raised
            self.end_run("failed")
        state = tracker_state(self.tracker)
        if state == "stopped" and not self._given:
            self.tracker = Tracker(**self._options)  # a new run for each training
            state = "new"
        if state == "stopped":
            self.warn_once("stopped", f"carbonmonitor: the tracker given to the {self.framework}"
                           " callback was already stopped; this training is not measured (give "
                           "a running tracker, or none)")
            return
        self.owned = state == "new"
        if self.owned:
            self.tracker.start()
        self._pending = _Pending()
        self.active = True
        for part in self.prefix:
            self._push(part)

    def end_run(self, status: Status = "completed") -> RunResult | None:
        """Training ended: close every phase, stop the tracker when it is ours, finish sinks.
        Returns the run's result when it has one (a given tracker still running has none)."""
        if not self.active:
            return None
        self.active = False
        self.close_all()
        result: RunResult | None
        if self.owned:
            self.owned = False
            result = self.tracker.stop(status)
        else:
            result = self.tracker.result
        if result is not None:
            for sink in self.sinks:
                self._call_sink(sink, "finish", result)
        return result

    @property
    def running(self) -> bool:
        """The tracker measures now (a phase can be opened)."""
        return tracker_state(self.tracker) == "running"

    @property
    def should_stop(self) -> bool:
        """A budget with ``budget_action="stop"`` was crossed in this run."""
        return self.running and self.tracker.should_stop

    # -- phases ----------------------------------------------------------------------------

    def is_open(self, name: str) -> bool:
        return any(n == name for n, _ in self._stack[len(self.prefix):])

    def open(self, name: str) -> None:
        """Open phase ``name`` (inside the prefix phases) unless it is open already. Outside
        a training (an evaluation after it), the prefix phases open with it."""
        if self.is_open(name) or not self.running:
            return
        if not self._stack:
            for part in self.prefix:
                self._push(part)
        self._push(name)

    def close(self, name: str) -> bool:
        """Close phase ``name`` and any opened after it; False when it was not open."""
        if not self.is_open(name):
            return False
        self.flush()
        while len(self._stack) > len(self.prefix):
            popped, handle = self._stack.pop()
            handle.end()
            if popped == name:
                break
        if not self.active and len(self._stack) == len(self.prefix):
            self.close_all()  # the prefix phases of an evaluation outside a training
        return True

    def close_all(self) -> None:
        self.flush()
        while self._stack:
            self._stack.pop()[1].end()

    def _push(self, name: str) -> None:
        self.flush()  # work counted so far belongs to the phases open until now
        self._stack.append((name, self.tracker.begin_phase(name)))

    # -- work ------------------------------------------------------------------------------

    def count(self, *, samples: int = 0, steps: int = 0) -> None:
        self._pending.samples += samples
        self._pending.steps += steps

    def count_batch(self, batch: Any) -> None:
        """Count a batch's samples (its leading dimension) and tokens (the attention mask's
        sum; all ``input_ids`` positions when there is no mask)."""
        if not self.running:
            return
        size = batch_size_of(batch)
        if size is None:
            self.warn_once("batch-size", f"carbonmonitor: a {type(batch).__name__} batch holds "
                           "no array, so its samples are not counted")
        else:
            self._pending.samples += size
        mask = _item(batch, "attention_mask")
        if mask is not None:
            self._pending.add_tokens(mask.sum(), TOKENS_NOTE)
            return
        ids = _item(batch, "input_ids")
        if ids is not None and callable(getattr(ids, "numel", None)):
            self._pending.add_tokens(int(ids.numel()), INPUT_IDS_NOTE)

    def flush(self) -> None:
        """Hand the pending work to the tracker (while the phases it was done in are open)."""
        samples, tokens, steps, notes = self._pending.take()
        if not (samples or tokens or steps) or not self.running:
            return
        self.tracker.add_work(samples=samples, tokens=tokens, steps=steps)
        for note in notes:  # a note is kept once per run; add_work takes one at a time
            self.tracker.add_work(note=note)

    # -- metrics, progress, sinks ----------------------------------------------------------

    def log_metrics(self, values: Mapping[str, Any], *, step: int | None,
                    epoch: float | None, prefix: str = "") -> None:
        """Record every numeric scalar of ``values`` (tensors converted); others are skipped."""
        if not self.running:
            return
        for name, value in values.items():
            number = scalar(value)
            if number is not None:
                self.tracker.log_metric(f"{prefix}{name}", number, step=step, epoch=epoch)

    def progress(self, done: float, total: float | None, *, step: int,
                 unit: str = "epoch") -> bool:
        """A progress mark: forecast and budgets (tracker), figures to the sinks. Returns True
        when training should stop (a budget with ``budget_action="stop"`` was crossed)."""
        if not self.running:
            return False
        self.flush()
        self.tracker.progress(done, total, unit=unit)
        if self.owned and self.tracker.sampling == "manual":
            self.tracker.tick()  # a point for the time series: nobody else ticks it
        if self.sinks:
            figures = scalars(self.tracker)
            for sink in self.sinks:
                self._call_sink(sink, "log", figures, int(step))
        return self.tracker.should_stop

    def _call_sink(self, sink: Sink, method: str, *args: Any) -> None:
        try:
            getattr(sink, method)(*args)
        except Exception:
            self.warn_once(f"sink-{id(sink)}-{method}", f"carbonmonitor: sink "
                           f"{type(sink).__name__}.{method} failed; training goes on",
                           exc_info=True)

    def warn_once(self, key: str, message: str, exc_info: bool = False) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, exc_info=exc_info)


def _item(batch: Any, key: str) -> Any:
    """``batch[key]`` of a dict batch that has an array there, else None."""
    if isinstance(batch, Mapping):
        value = batch.get(key)
        return value if hasattr(value, "sum") else None
    return None


def guarded(method: F) -> F:
    """Run a callback hook so that a failure inside the monitor never reaches the training
    loop: it logs one warning per hook and the hook returns None."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception:
            monitor = getattr(self, "_monitor", None)
            message = (f"carbonmonitor: {type(self).__name__}.{method.__name__} failed; "
                       "training goes on (please report this)")
            if isinstance(monitor, Monitor):
                monitor.warn_once(f"hook-{method.__name__}", message, exc_info=True)
            else:
                log.warning(message, exc_info=True)
            return None
    return cast(F, wrapper)
