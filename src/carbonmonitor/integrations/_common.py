"""What every framework integration shares: the run it measures (its own or one it is given),
phases, work counts, metrics, progress and sinks. No framework is imported here.

Every hook of a callback is wrapped in :func:`guarded`: a failure inside the monitor logs one
warning (logger ``carbonmonitor``) per hook and training goes on.
"""

from __future__ import annotations

import atexit
import copy
import functools
import logging
import pickle
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, cast

from carbonmonitor.facts import JOULES_PER_KWH
from carbonmonitor.integrations.sinks import PREFIX, Sink

if TYPE_CHECKING:
    from carbonmonitor.options import Options
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


class _Pending:
    """Work counted since the last flush. Token sums of tensors stay on their device until the
    flush (a phase edge or a progress mark), which reads them: the only point where counting
    waits for the accelerator's queued work."""

    def __init__(self) -> None:
        self.samples = self.steps = self.tokens = self.generated_tokens = 0
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

    def take(self) -> tuple[tuple[int, int, int, int], tuple[str, ...]]:
        """(samples, tokens, steps, generated tokens) and notes; the counts start again."""
        tokens = self.tokens + sum(int(t) for t in self.lazy.values())
        out = (self.samples, tokens, self.steps, self.generated_tokens)
        notes = tuple(self.notes)
        self.samples = self.steps = self.tokens = self.generated_tokens = 0
        self.lazy, self.notes = {}, {}
        return out, notes


# Tracker arguments that are not options (docs/options.md): check_options leaves them out.
_TRACKER_ARGUMENTS = ("clock", "sampling", "quiet", "environ", "argv", "config_dir")


def check_options(options: Mapping[str, Any]) -> Options:
    """The checks a :class:`~carbonmonitor.tracker.Tracker` makes of its options, without
    building one (no backend probe, no store): every name and value, config files and
    environment included, and the location. Returns the options as resolved.

    Raises:
        ConfigError: a bad option, as ``Tracker(**options)`` would raise it.
    """
    from pathlib import Path

    from carbonmonitor import carbon
    from carbonmonitor.config import find_config_files
    from carbonmonitor.errors import ConfigError
    from carbonmonitor.options import resolve

    sampling = options.get("sampling", "thread")
    if sampling not in ("thread", "manual"):
        raise ConfigError(f"sampling must be 'thread' or 'manual'; got {sampling!r}")
    config_dir = options.get("config_dir")
    opts = resolve({k: v for k, v in options.items() if k not in _TRACKER_ARGUMENTS},
                   environ=options.get("environ"),
                   files=find_config_files(Path(config_dir) if config_dir is not None else None))
    carbon.place(country=opts.country, cloud_provider=opts.cloud_provider,
                 cloud_region=opts.cloud_region, zone=opts.zone)
    return opts


class Monitor:
    """The bookkeeping of one callback: its run, its open phases, pending work, sinks.

    Args:
        tracker: a tracker to use. A running one is never started or stopped here; one not
            started yet is started at the first :meth:`begin_run` and stopped at
            :meth:`end_run`. Without one, a tracker is built from ``options`` at each
            :meth:`begin_run` (so a callback can be pickled or deep-copied before training).
        sinks: objects with ``log(scalars, step)`` and ``finish(result)``; one with
            ``bind(project=, run_name=)`` is told the run's project and name at its start.
        phase_prefix: ``"pre-training"`` (or ``"pre-training/"``): phases become
            ``"pre-training/train"``, ... so one tracker can hold several trainings.
        options: :class:`~carbonmonitor.tracker.Tracker` options for the tracker built here
            (checked now: a bad one raises ConfigError before training starts).
        framework: the framework's name, for messages.

    In a distributed run the callback sets :attr:`rank` and :attr:`world_size` before
    :meth:`begin_run`; a process other than 0 builds no tracker and records nothing.
    """

    def __init__(self, *, tracker: Tracker | None, sinks: Iterable[Sink] | None,
                 phase_prefix: str | None, options: Mapping[str, Any], framework: str) -> None:
        from carbonmonitor.errors import ConfigError

        if tracker is not None and options:
            raise ConfigError(f"{framework} callback: give tracker= or tracker options "
                              f"({', '.join(sorted(options))}), not both")
        # A budget stop in a distributed run is a collective that every process must join:
        # it happens only when the callback's own options (the same in every process) ask
        # for one, never for a tracker given in one process.
        self.stops_training = False
        if tracker is None:
            opts = check_options(options)
            self.stops_training = opts.budget_action == "stop" and (
                opts.max_emissions_g is not None or opts.max_energy_kwh is not None)
        self._options = dict(options)
        self._given = tracker is not None
        self._left_behind = ""  # why this copy cannot measure (it was pickled), if it cannot
        self.tracker: Tracker | None = tracker
        self.sinks = list(sinks or ())
        self.framework = framework
        self.prefix = tuple(part for part in (phase_prefix or "").split("/") if part)
        self.rank, self.world_size = 0, 1
        self.owned = False  # this monitor starts and stops the tracker
        self.active = False  # between begin_run and end_run
        self._stack: list[tuple[str, PhaseHandle]] = []
        self._pending = _Pending()
        self._warned: set[str] = set()
        self._at_exit_registered = False

    # -- run -------------------------------------------------------------------------------

    def begin_run(self) -> None:
        """Training starts: in process 0, start the tracker when it is ours, open the prefix
        phases, tell the sinks the run's name."""
        if self.active:  # the previous training never reached its end hook: it raised
            self.end_run("failed")
        if self.rank != 0:
            return  # process 0 measures the whole node (see _distributed)
        tracker = self._tracker_for_run()
        if tracker is None:
            return
        self.tracker = tracker
        self.owned = tracker.state == "new"
        if self.owned:
            tracker.start()
        self._pending = _Pending()
        self.active = True
        if not self._at_exit_registered:
            atexit.register(self._at_exit)
            self._at_exit_registered = True
        for part in self.prefix:
            self._push(part)
        if self.world_size > 1:
            from carbonmonitor.integrations._distributed import share_note

            tracker.add_work(note=share_note(self.world_size))
        for sink in self.sinks:
            if callable(getattr(sink, "bind", None)):
                self._call_sink(sink, "bind", project=str(tracker.options.project),
                                run_name=tracker.run_name)

    def _tracker_for_run(self) -> Tracker | None:
        """The tracker this training records into: the given one, or a new one of ours."""
        from carbonmonitor.tracker import Tracker

        if self._left_behind:
            self.warn_once("left-behind", f"carbonmonitor: this {self.framework} callback is a "
                           f"copy made by pickling (e.g. for another process) and "
                           f"{self._left_behind}, so its training is not measured here")
            return None
        if self._given:
            assert self.tracker is not None
            if self.tracker.state == "stopped":
                self.warn_once("stopped", f"carbonmonitor: the tracker given to the "
                               f"{self.framework} callback was already stopped; this training "
                               "is not measured (give a running tracker, or none)")
                return None
            return self.tracker
        if self.tracker is not None and self.tracker.state != "stopped":
            return self.tracker
        try:
            return Tracker(**self._options)  # a new run for each training
        except Exception as err:  # options checked at construction; the rest shows here
            self.warn_once("build", f"carbonmonitor: the {self.framework} callback could not "
                           f"set up its run ({err}); this training is not measured")
            return None

    def end_run(self, status: Status = "completed") -> RunResult | None:
        """Training ended: close every phase, stop the tracker when it is ours, finish sinks.
        Returns the run's result when it has one (a given tracker still running has none)."""
        if self._at_exit_registered:
            atexit.unregister(self._at_exit)
            self._at_exit_registered = False
        if not self.active or self.tracker is None:
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

    def _at_exit(self) -> None:
        """A training that never reached its end hook (Keras and transformers have none for a
        failure): its run ends ``interrupted`` at interpreter exit and the sinks finish."""
        try:
            if self.active:
                log.warning("carbonmonitor: a %s training was still running at exit (it "
                            "raised?); its run is stopped as interrupted", self.framework)
                self.end_run("interrupted")
        except Exception:  # nothing may escape at exit
            log.debug("carbonmonitor: ending a run at exit failed", exc_info=True)

    @property
    def running(self) -> bool:
        """The tracker measures now in this process (a phase can be opened)."""
        return self.rank == 0 and self.tracker is not None and self.tracker.state == "running"

    @property
    def should_stop(self) -> bool:
        """A budget with ``budget_action="stop"`` was crossed in this run."""
        return self.running and self.tracker is not None and self.tracker.should_stop

    # -- pickle and deepcopy ---------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """A copy for another process: no tracker (one of ours is built there at train start;
        a given one cannot cross: the copy measures nothing), no open phases, and only the
        options and sinks that can be pickled."""
        state = {**self.__dict__, "tracker": None, "owned": False, "active": False,
                 "_stack": [], "_pending": _Pending(), "_warned": set(),
                 "_at_exit_registered": False}
        if self._given:
            state["_left_behind"] = ("the tracker given to it stays in the process that made "
                                     "it (it measures the devices there)")
        elif not _picklable(self._options):
            state["_options"] = {}
            state["_left_behind"] = "its tracker options could not be pickled"
        kept = [sink for sink in self.sinks if _picklable(sink)]
        if len(kept) < len(self.sinks):
            log.warning("carbonmonitor: %d sink(s) of the %s callback could not be pickled; "
                        "the copy sends nothing to them", len(self.sinks) - len(kept),
                        self.framework)
        state["sinks"] = kept
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __deepcopy__(self, memo: dict[int, Any]) -> Monitor:
        """A copy in this process (keras-tuner copies callbacks for each trial): a given
        tracker is shared, so the copy records into it; our own is built again at its train
        start from the same options (shared values: backends, clock); sinks are copied, or
        shared when they cannot be."""
        new = Monitor.__new__(Monitor)
        memo[id(self)] = new
        new.__dict__.update(self.__dict__)
        new.tracker = self.tracker if self._given else None
        new._options = dict(self._options)
        new.sinks = [_deepcopied(sink, memo) for sink in self.sinks]
        new.owned = new.active = new._at_exit_registered = False
        new._stack, new._pending, new._warned = [], _Pending(), set()
        return new

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
        assert self.tracker is not None
        self.flush()  # work counted so far belongs to the phases open until now
        self._stack.append((name, self.tracker.begin_phase(name)))

    # -- work ------------------------------------------------------------------------------

    def count(self, *, samples: int = 0, steps: int = 0, generated_tokens: int = 0) -> None:
        self._pending.samples += samples
        self._pending.steps += steps
        self._pending.generated_tokens += generated_tokens

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
        (samples, tokens, steps, generated), notes = self._pending.take()
        if not (samples or tokens or steps or generated) or not self.running:
            return
        assert self.tracker is not None
        self.tracker.add_work(samples=samples, tokens=tokens, steps=steps,
                              generated_tokens=generated)
        for note in notes:  # a note is kept once per run; add_work takes one at a time
            self.tracker.add_work(note=note)

    # -- metrics, progress, sinks ----------------------------------------------------------

    def log_metrics(self, values: Mapping[str, Any], *, step: int | None,
                    epoch: float | None, prefix: str = "") -> None:
        """Record every numeric scalar of ``values`` (tensors converted); others are skipped.
        Under a phase prefix the names get it too (``fine-tuning/eval_loss``), so two
        trainings in one run keep two histories."""
        if not self.running:
            return
        assert self.tracker is not None
        if self.prefix:
            prefix = "/".join((*self.prefix, prefix))
        for name, value in values.items():
            number = scalar(value)
            if number is not None:
                self.tracker.log_metric(f"{prefix}{name}", number, step=step, epoch=epoch)

    def begin_progress(self, total: float | None, unit: str = "epoch") -> None:
        """A training starts counting progress: its forecast covers it alone, labelled with the
        phase prefix (``"pre-training"``), so one run can forecast several trainings."""
        if self.running:
            assert self.tracker is not None
            self.tracker.begin_progress("/".join(self.prefix), total, unit=unit)

    def progress(self, done: float, total: float | None, *, step: int,
                 unit: str = "epoch") -> bool:
        """A progress mark: forecast and budgets (tracker), figures to the sinks. Returns True
        when training should stop (a budget with ``budget_action="stop"`` was crossed)."""
        if not self.running:
            return False
        assert self.tracker is not None
        self.flush()
        self.tracker.progress(done, total, unit=unit)
        if self.owned and self.tracker.sampling == "manual":
            self.tracker.tick()  # a point for the time series: nobody else ticks it
        if self.sinks:
            figures = scalars(self.tracker)
            for sink in self.sinks:
                self._call_sink(sink, "log", figures, int(step))
        return self.tracker.should_stop

    def decide(self, mark: Callable[[], bool], world_size: int, device: Any = None,
               reduce: Callable[[bool], bool | None] | None = None) -> bool:
        """The stop decision at a progress mark, the same in every process: ``mark()`` (the
        progress mark, in process 0) is contained, then, with several processes and a stop
        budget among the callback's options, every process agrees through ``reduce`` (the
        framework's own) or :func:`agree`. Without a way to agree, nobody stops."""
        from carbonmonitor.integrations._distributed import agree

        stop = False
        try:
            stop = bool(mark())
        except Exception:
            self.warn_once("mark", "carbonmonitor: a progress mark failed; training goes on",
                           exc_info=True)
        if world_size <= 1:
            return stop
        if not self.stops_training:
            if stop:
                self.warn_once("agree", f"carbonmonitor: a budget asks to stop, but this "
                               f"{self.framework} training runs in {world_size} processes and "
                               "only the tracker given in this one knows the budget: it goes "
                               "on (only a warning). To stop a distributed training, give the "
                               "budget options to the callback, in every process")
            return False
        try:
            if reduce is not None:
                return bool(reduce(stop))
            verdict = agree(stop, world_size, device=device)
        except Exception:  # a broken process group: the framework will say so itself
            self.warn_once("agree-failed", "carbonmonitor: telling the other processes about "
                           "a budget failed; training goes on", exc_info=True)
            return False
        if verdict is None:
            if stop:
                self.warn_once("agree", f"carbonmonitor: a budget asks to stop, but this "
                               f"{self.framework} training runs in {world_size} processes "
                               "without a torch process group to tell the others: it goes on "
                               "(only a warning)")
            return False
        return verdict

    def contain(self, action: Callable[[], object], what: str) -> None:
        """Run ``action``; a failure logs one warning (per ``what``) and the hook goes on: a
        hook that must reach a collective (:meth:`decide`) calls its bookkeeping this way."""
        try:
            action()
        except Exception:
            self.warn_once(f"contain-{what}", f"carbonmonitor: {what} failed; training goes on",
                           exc_info=True)

    def _call_sink(self, sink: Sink, method: str, *args: Any, **kwargs: Any) -> None:
        try:
            getattr(sink, method)(*args, **kwargs)
        except Exception:
            self.warn_once(f"sink-{id(sink)}-{method}", f"carbonmonitor: sink "
                           f"{type(sink).__name__}.{method} failed; training goes on",
                           exc_info=True)

    def warn_once(self, key: str, message: str, exc_info: bool = False) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, exc_info=exc_info)


class Portable:
    """pickle and ``copy.deepcopy`` for the callbacks: Lightning's ``ddp_spawn`` pickles the
    trainer with its callbacks, keras-tuner deep-copies callbacks for each trial. The
    attributes named in ``_transient`` take the given value in a copy (a framework object, a
    hook on a model, the latest result); the monitor copies itself (see :class:`Monitor`)."""

    _transient: ClassVar[Mapping[str, Any]] = {"result": None}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, **self._transient}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        for name, value in self.__dict__.items():
            fresh = self._transient[name] if name in self._transient else value
            new.__dict__[name] = copy.deepcopy(fresh, memo)
        return new


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def _deepcopied(value: Any, memo: dict[int, Any]) -> Any:
    try:
        return copy.deepcopy(value, memo)
    except Exception:
        return value


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
