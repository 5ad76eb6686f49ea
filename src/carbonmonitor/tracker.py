"""The tracker: one run, its phases, its sampler thread, and the result it returns.

Example:
    >>> import carbonmonitor
    >>> with carbonmonitor.track(project="demo", backend="fake", quiet=True) as run:
    ...     with run.phase("train"):
    ...         pass
    >>> run.result.phase("train").count
    1
"""

from __future__ import annotations

import atexit
import contextvars
import dataclasses
import functools
import inspect
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from carbonmonitor.backends import ProbeContext, select_backends
from carbonmonitor.clock import Clock, ManualClock, SystemClock
from carbonmonitor.errors import ConfigError
from carbonmonitor.facts import BackendStatus, Flag
from carbonmonitor.meter import Meter, Window

if TYPE_CHECKING:
    # the result records are imported where results are built (the first store write, on the
    # sampler thread, or stop()), not before the first sample
    from carbonmonitor.records import PhaseResult, RunIdentity, RunResult
    from carbonmonitor.store import Batch, Store

log = logging.getLogger("carbonmonitor")
F = TypeVar("F", bound=Callable[..., Any])
Sampling = Literal["thread", "manual"]
Status = Literal["running", "completed", "failed", "interrupted"]


# The open phase path of each tracker in the current context (thread or asyncio task): an
# immutable mapping tracker id -> path, so concurrent tasks never see each other's phases.
_PATHS: contextvars.ContextVar[Mapping[int, str]] = contextvars.ContextVar(
    "carbonmonitor_phase_paths", default=MappingProxyType({}))


class Tracker:
    """Measures one run. Build it (options are checked here), ``start()``, ``stop()``.

    Args:
        clock: time source; a :class:`~carbonmonitor.clock.ManualClock` makes tests exact.
        sampling: ``"thread"`` (a background sampler) or ``"manual"`` (call :meth:`tick`).
        quiet: do not log the summary at stop.
        config_dir: where the upward search for carbonmonitor.toml / pyproject.toml starts
            (default: the working directory).
        **options: see docs/options.md: ``project``, ``name``, ``tags``, ``params``,
            ``country``, ``cloud_provider``, ``cloud_region``, ``pue``, ``data_year``,
            ``backend``, ``interval``, ... Unknown names raise ConfigError.

    Raises:
        ConfigError: a bad option, location, PUE or an unavailable named backend.

    Example:
        >>> tracker = Tracker(backend="fake", sampling="manual", quiet=True)
        >>> result = tracker.start().stop()
        >>> result.status
        'completed'
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        sampling: Sampling = "thread",
        quiet: bool = False,
        environ: Mapping[str, str] | None = None,
        argv: tuple[str, ...] | None = None,
        config_dir: str | Path | None = None,
        **options: Any,
    ) -> None:
        from carbonmonitor import carbon
        from carbonmonitor.config import find_config_files
        from carbonmonitor.options import Options, resolve

        if sampling not in ("thread", "manual"):
            raise ConfigError(f"sampling must be 'thread' or 'manual'; got {sampling!r}")
        self._init_kwargs = dict(clock=clock, sampling=sampling, quiet=quiet, environ=environ,
                                 argv=argv, config_dir=config_dir, **options)
        files = find_config_files(Path(config_dir) if config_dir is not None else None)
        opts = resolve(options, environ=environ, files=files)
        with _where_set(opts, "country", "cloud_provider", "cloud_region", "zone"):
            self.location, provider = carbon.place(
                country=opts.country, cloud_provider=opts.cloud_provider,
                cloud_region=opts.cloud_region, zone=opts.zone)
        zone_flags: list[Flag] = []
        if opts.zone:  # an ISO 3166-2 code mapped to the zone serving most of it says so
            from carbonmonitor.carbon.zones import resolve_zone

            zone_flags.extend(resolve_zone(opts.zone).flags())
        source = opts.sources["cloud_provider"]
        if provider and not opts.cloud_provider:
            source = "inferred from cloud_region"
        self.options = opts = Options({**opts.values, "cloud_provider": provider},
                                      {**opts.sources, "cloud_provider": source})
        self.clock: Clock = clock or SystemClock()
        # the factors' year: data_year=, else the run's own year if final data exists for it
        # (life-cycle tables; the direct basis has one year, 2024)
        self._data_year: int | None = opts.data_year
        if self._data_year is None and opts.intensity_basis == "lifecycle":
            from carbonmonitor.carbon.intensity import year_for_run

            self._data_year = year_for_run(time.gmtime(self.clock.wall()).tm_year)
        with _where_set(opts, "pue", "data_year", "intensity_basis"):
            self.pue = carbon.resolve_pue(opts.pue, provider, data_year=self._data_year)
            self.intensity = carbon.intensity_for(self.location, data_year=self._data_year,
                                                  basis=opts.intensity_basis)
        self.sampling: Sampling = sampling
        self.quiet = quiet
        if not quiet:
            _show_messages()
        self._argv = argv
        selection = select_backends(opts.backend, ProbeContext(
            opts, self.clock, os.environ if environ is None else environ))
        self._statuses = selection.statuses
        self._meter = Meter(selection.backends, selection.domains)
        self._lock = threading.RLock()
        self._state: Literal["new", "running", "stopped"] = "new"
        self._run = Window()
        self._phases: dict[str, Window] = {}
        self._flags: list[Flag] = zone_flags
        self._warned: set[str] = set()
        self._thread: threading.Thread | None = None
        self._wake = _Wake()
        self._identity: Any = None
        self._identity_cache: RunIdentity | None = None
        self._t_start = 0.0
        self._t_last = 0.0
        self.period_s = min([opts.interval] + [b.poll_period_s for b in selection.backends
                                                if b.poll_period_s])
        self.result: RunResult | None = None
        # The store: see carbonmonitor.store. Writes happen outside self._lock, one at a time.
        self._pid = os.getpid()
        self.store: Store | None = _open_store(opts, self._flags)
        self._write_lock = threading.Lock()
        self._final_written = False
        self._flushed_samples = 0
        self._spans: list[tuple[int, str, float, float]] = []
        self._span_seq = 0
        self._last_flush = 0.0
        self._owner_start: str | None = None
        self._plain_memo: dict[Any, Any] = {}  # see RunResult.to_dict
        self._gpu_sync = bool(opts.gpu_sync)  # read at every phase edge
        # attribution (docs/attribution.md): started with the run; None under 'machine'
        self._attributor: Any = None
        self._policy: str = opts.attribution
        self._shares_at = 0.0
        self._share_every = 0.0
        self._idle_w, self._idle_source = self._given_idle()
        self._located = False  # cloud detection / IP geolocation done (see _locate)
        self._provider: Any = None  # a live intensity provider (checked now, asked at stop)
        if opts.intensity_provider:
            from carbonmonitor.carbon.providers import make_provider

            explicit = opts.sources["intensity_basis"] != "default"
            with _where_set(opts, "intensity_provider", "intensity_basis", "intensity_region"):
                self._provider = make_provider(
                    opts.intensity_provider,
                    basis={"operational": "direct"}.get(opts.intensity_basis,
                                                        opts.intensity_basis)
                    if explicit else None,
                    token=opts.electricitymaps_token, username=opts.watttime_username,
                    password=opts.watttime_password, url=opts.intensity_url,
                    region=opts.intensity_region)
        self._wall_start = 0.0
        self._embodied_sources: list[Any] | None = None  # see _embodied
        if opts.embodied:
            from carbonmonitor.carbon.embodied import parse_embodied

            with _where_set(opts, "embodied"):
                self._embodied_sources = parse_embodied(opts.embodied)
        elif opts.instance_type and provider:
            from carbonmonitor.carbon.embodied import embodied_for_instance

            with _where_set(opts, "instance_type"):
                self._embodied_sources = [embodied_for_instance(provider, opts.instance_type)]
        self._instance_type: str | None = opts.instance_type
        self._detected_provider: str | None = None
        self._flush_interval = float(opts.flush_interval)  # read at every tick
        # the same objects in every result of this run (so their JSON is made once)
        self._backends_seen = tuple(self._statuses)
        self._options_plain = self.options.to_dict()
        # ML workflow (docs/ml.md): work notes, metric histories, progress marks, budgets
        self._work_notes: dict[str, None] = {}
        self._metrics: dict[str, tuple[Any, list[Any]]] = {}
        self._series: list[_Progress] = []  # one per training (begin_progress)
        self._forecast_latest: Any = None
        self._budget_events: list[Any] = []
        self._stop_requested = False
        self._budget_list: list[Any] | None = None
        # a budget on the actual figure is checked at every tick too
        self._actual_budget = opts.budget_on != "predicted" and (
            opts.max_emissions_g is not None or opts.max_energy_kwh is not None)
        self._envelope_for: tuple[Any, Any] | None = None

    @property
    def run_id(self) -> str | None:
        """The run's id once started (None before ``start()``)."""
        return getattr(self._identity, "run_id", None)

    @property
    def run_name(self) -> str:
        """The run's name: the ``name`` option, else the script's name (as stored)."""
        from carbonmonitor.identity import default_name

        if self.options.name:
            return str(self.options.name)
        argv = getattr(self._identity, "argv", None)
        return default_name(tuple(argv) if argv is not None
                            else tuple(self._argv if self._argv is not None else sys.argv))

    @property
    def state(self) -> Literal["new", "running", "stopped"]:
        """``"new"`` (not started), ``"running"`` or ``"stopped"``."""
        return self._state

    @property
    def backends(self) -> tuple[BackendStatus, ...]:
        """Every backend considered for this run: used (and for which devices) or why not."""
        return tuple(self._statuses)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Tracker:
        """Take the first reading and start sampling. Never raises after construction."""
        from carbonmonitor.identity import collect_identity

        if self.sampling == "manual" and self._state == "new":
            _guard(self._locate, None)  # the sampler thread does this when there is one

        with self._lock:
            if self._state != "new":
                self._warn_once("restart", "Tracker.start() called twice; a tracker measures "
                                "one run: create a new Tracker (or use track()) for another")
                return self
            self._state = "running"
            self._pid = os.getpid()
            self._identity = _guard(lambda: collect_identity(self.options, self.clock,
                                                             self._argv), None)
            if self._identity is None:
                from carbonmonitor.identity import bare_pending

                self._identity = bare_pending(self.clock, self._argv)
            if self.options.idle_measure_s > 0:
                _guard(self._measure_idle, None)
            self._t_start = self._t_last = self._last_flush = self.clock.monotonic()
            self._wall_start = self.clock.wall()
            self._run.opened_at = self._t_start
            self._shares_at = self._t_start
            if self.sampling == "manual" and self._policy == "process":
                _guard(self._start_attribution, None)
            self._read_all(self._t_start, record=True)
        # A tracker never stopped (a script that forgot stop(), sys.exit in the middle) is
        # stopped at interpreter exit, and one dropped while running when it is collected, so
        # its measurements still reach the log and the store.
        _LIVE.add(self)
        if self.sampling == "thread":
            # The thread holds the tracker only while it ticks, so an abandoned tracker (a
            # notebook cell run again rebinds its variable) can be collected and finalised.
            self._thread = threading.Thread(
                target=_sample, args=(weakref.ref(self), self._wake, self.period_s),
                name="carbonmonitor-sampler", daemon=True)
            self._thread.start()
        else:
            self._flush()
        return self

    def stop(self, status: Literal["completed", "failed", "interrupted"] = "completed",
             exit_code: int | None = None) -> RunResult:
        """Final reading, close backends, account, write the final record. Returns the result;
        never raises.

        ``exit_code`` records a monitored command's exit status (``carbonmonitor run``).
        In a forked child (a DataLoader worker) the run belongs to the parent: the child's
        ``stop()`` returns a provisional result and changes nothing."""
        if self._in_child():
            self._warn_once("child-stop", f"carbonmonitor: stop() called in a forked child "
                            f"(pid {os.getpid()}) of the run's process (pid {self._pid}); the "
                            "parent owns the run, so nothing was stopped or written")
            with self._lock:
                return self._build_result(self.clock.monotonic(), "running", None,
                                          provisional=True)
        with self._lock:
            if self._state == "stopped" and self.result is not None:
                return self.result
            if self._state == "new":
                self.start()
            self._state = "stopped"
        _LIVE.discard(self)
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        with self._lock:
            now = max(self.clock.monotonic(), self._t_last)
            _guard(lambda: self._read_all(now, record=True), None)
            if self._attributor is not None:
                self._update_shares(now)
            for path, window in self._phases.items():
                if window.open:
                    window.duration_s += now - window.opened_at
                    window.open = 0
                    self._flags.append(Flag("phase-open-at-stop", f"phase {path!r} was still "
                                            "open when the run stopped; closed at stop"))
            self._meter.close()
            self.result = result = self._build_result(now, status, exit_code)
            live = (_guard(self._live_inputs, None)
                    if self._provider is not None and status != "interrupted" else None)
            result = self.result  # with the flag _live_inputs may have added
        if live is not None:  # network: outside the lock, within a deadline
            self.result = result = _guard(lambda: self._account_live(result, live), result)
        with self._lock:
            batch = _guard(lambda: self._batch(result), None) if self.store else None
        written = batch is not None and self.store is not None and self._write(batch, final=True)
        if self.store is not None:
            _guard(self.store.close, None)
        if batch is not None and self.store and not written:
            self.result = dataclasses.replace(result, flags=(*result.flags, Flag(
                "store-failed", f"the run could not be written to the store {self.store.path} "
                "(see the warning logged); this result is the only copy",
                "check the store file is writable (or set db= elsewhere); save this result "
                "with result.to_json()")))
        if not self.quiet:
            log.info("%s", _one_line(self.result))
        return self.result

    def _stop_at_exit(self) -> None:
        if self._state == "running" and not self._in_child():
            result = self.stop("interrupted")
            log.warning("carbonmonitor: run %s was still running at interpreter exit; stopped: %s",
                        result.identity.run_id, _one_line(result))

    def __del__(self) -> None:
        # A running tracker nobody can reach any more (a notebook cell run again rebound its
        # variable) is stopped here, so its run is not left "running" for the kernel's life.
        if getattr(self, "_state", None) == "running" and not self._in_child():
            try:
                self._flags.append(Flag("tracker-abandoned", "the Tracker was dropped while "
                                        "running (no reference left to it, as when a notebook "
                                        "cell is run again) and stopped then",
                                        "stop the tracker, or use `with track(...)`"))
                self.stop("interrupted")
            except Exception:
                pass

    def _in_child(self) -> bool:
        """True in a process forked from the run's owner: such a child never writes or stops."""
        return os.getpid() != self._pid

    def _after_fork_in_child(self) -> None:
        # The parent's sampler thread does not exist here and may have held these locks.
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self._thread = None

    def tick(self) -> None:
        """Take one reading now, and write to the store when a flush interval has passed (the
        sampler thread calls this; with ``sampling="manual"``, tests and custom loops do)."""
        if self._in_child():
            return
        with self._lock:
            if self._state != "running":
                return
            now = self.clock.monotonic()
            self._read_all(now, record=True)
            if self._attributor is not None and now - self._shares_at >= self._share_every:
                self._update_shares(now)
            if self._actual_budget:
                _guard(lambda: self._check_budgets(self._energy_so_far(), None), None)
            due = self.store is not None and now - self._last_flush >= self._flush_interval
        if due:
            self._flush()

    # -- store -----------------------------------------------------------------------------

    def _flush(self) -> None:
        """Write a provisional result and the samples since the last write (never raises)."""
        if self.store is None:
            return
        with self._lock:
            if self._state != "running":
                return
            self._last_flush = self.clock.monotonic()
            # as of the last reading, so that energy and duration cover the same time
            batch = _guard(lambda: self._batch(self._build_result(
                self._t_last, "running", None, provisional=True)), None)
        if batch is not None:
            self._write(batch)

    def _batch(self, result: RunResult) -> Batch:
        """What to write with ``result``: the samples and spans not yet written (lock held)."""
        from carbonmonitor.store import Batch, process_start

        if self._owner_start is None:
            self._owner_start = process_start(os.getpid())
        times, series, busy = self._meter.series_t, self._meter.series, self._meter.utilisation
        # The last point written is written again: a reading with no time passed since it
        # (a stop right after a tick) updates it in place.
        samples = [(i, times[i], key, values[i],
                    busy[key][i] if busy[key][i] == busy[key][i] else None)  # NaN -> NULL
                   for i in range(max(0, self._flushed_samples - 1), len(times))
                   for key, values in series.items()]
        return Batch(result, self.clock.wall(), self._flush_interval, self._owner_start,
                     samples, list(self._spans), upto=len(times), memo=self._plain_memo)

    def _write(self, batch: Batch, final: bool = False) -> bool:
        """One write to the store; failures are logged once and retried at the next flush."""
        assert self.store is not None
        with self._write_lock:
            if self._final_written or self._in_child():
                return True
            try:
                self.store.write(batch)
            except Exception as err:
                self._warn_once("store", f"carbonmonitor: could not write run "
                                f"{batch.result.identity.run_id} to {self.store.path} ({err}); "
                                "measuring goes on and the write is retried at the next flush")
                return False
            self._final_written = final
            with self._lock:
                self._flushed_samples = max(self._flushed_samples, batch.upto)
                del self._spans[:len(batch.spans)]
            return True

    # -- phases ----------------------------------------------------------------------------

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Measure a named part of the run; nestable; repeated names aggregate.

        Counters are read at both edges, so a phase gets exactly the energy drawn while it was
        open. Nested phases are named by path (``"epoch/train"``), per thread and per asyncio
        task. The reads happen in the calling thread: a backend that is slow to read slows
        phase edges (built-in backends take ~0.1 ms).
        """
        entered = self._enter(name)
        try:
            yield
        finally:
            if entered is not None:
                self._exit(*entered)

    def begin_phase(self, name: str) -> PhaseHandle:
        """Open a phase without a ``with`` block (framework callbacks: an epoch starts in one
        hook and ends in another); call ``end()`` on what is returned. Ended in the same thread
        (context) it began in, it nests like :meth:`phase`."""
        return PhaseHandle(self, self._enter(name))

    # -- work, metrics, progress and budgets (docs/ml.md) ----------------------------------

    def add_work(self, samples: int = 0, tokens: int = 0, steps: int = 0, requests: int = 0,
                 generated_tokens: int = 0, *, note: str | None = None) -> None:
        """Count units of work done, for the run and every phase open in this context, so
        results give energy and CO2e per sample, per 1k tokens, per step, per request and per
        generated token. ``note`` says how a count was made (shown in the output), e.g.
        ``"tokens: non-padding tokens (attention mask)"``.

        Raises:
            ConfigError: a count that is not a whole number >= 0.
        """
        counts = {unit: _count(unit, value) for unit, value in (
            ("samples", samples), ("tokens", tokens), ("steps", steps), ("requests", requests),
            ("generated_tokens", generated_tokens)) if value}
        if self._in_child():
            return
        with self._lock:
            if self._state != "running":
                self._warn_once("work-state", f"add_work() called while the tracker is "
                                f"{self._state}; not counted")
                return
            path = _PATHS.get().get(id(self))
            windows = [self._run]
            while path:
                window = self._phases.get(path)
                if window is not None and window.open:
                    windows.append(window)
                path = path.rpartition("/")[0]
            for window in windows:
                for unit, n in counts.items():
                    window.work[unit] = window.work.get(unit, 0) + n
            if note:
                self._work_notes[str(note)] = None

    def log_metric(self, name: str, value: float, *, step: int | None = None,
                   epoch: float | None = None,
                   direction: Literal["higher", "lower", "max", "min"] | None = None) -> None:
        """Record a metric value (accuracy, loss, ...) with the run, at ``step`` / ``epoch``.

        ``direction`` says whether higher or lower is better; without it, common names are
        recognised (loss, error, perplexity: lower; accuracy, f1, bleu, ...: higher).
        A non-finite value is not recorded (warned once per metric).

        Raises:
            ConfigError: an empty name, a value that is not a number, or a bad direction.
        """
        from carbonmonitor.records import MetricPoint

        label = str(name).strip()
        if not label:
            raise ConfigError("log_metric needs a metric name, e.g. log_metric('accuracy', 0.9)")
        number = _metric_value(label, value)
        way = _direction(label, direction)
        if self._in_child():
            return
        with self._lock:
            if self._state != "running":
                self._warn_once("metric-state", f"log_metric({label!r}) called while the "
                                f"tracker is {self._state}; not recorded")
                return
            if number is None:
                self._warn_once(f"metric-nan-{label}", f"carbonmonitor: metric {label!r} had a "
                                f"non-finite value ({value!r}); such values are not recorded")
                return
            known, points = self._metrics.setdefault(label, (way, []))
            if way is not None and known != way:
                self._metrics[label] = (way, points)
            points.append(MetricPoint(self.clock.monotonic() - self._t_start, number,
                                      None if step is None else int(step),
                                      None if epoch is None else float(epoch)))

    def log_metrics(self, values: Mapping[str, float], *, step: int | None = None,
                    epoch: float | None = None) -> None:
        """:meth:`log_metric` for each ``name: value`` (directions recognised by name)."""
        for name, value in values.items():
            self.log_metric(name, value, step=step, epoch=epoch)

    def begin_progress(self, label: str = "", total: float | None = None, *,
                       unit: str = "epoch") -> None:
        """Start counting progress for one training (the callbacks call this at train start).

        Its forecast covers this training only, from now: time and energy spent before (setup,
        an earlier training in the same run) are not extrapolated. ``label`` names it in the
        output (``"pre-training"``). Without a call, progress counts from the run's start.

        Raises:
            ConfigError: ``total`` not a number >= 0.
        """
        total_f = None if total is None else _units("total", total)
        if self._in_child():
            return
        with self._lock:
            if self._state != "running":
                self._warn_once("progress-state", f"begin_progress() called while the tracker "
                                f"is {self._state}; ignored")
                return
            now = self.clock.monotonic()
            self._read_all(now)
            self._series.append(_Progress(str(label), now, self._energy_so_far(),
                                          None if total_f is None else (total_f, str(unit))))

    def progress(self, done: float, total: float | None = None, *, unit: str = "epoch"
                 ) -> Any:
        """Say that ``done`` units (epochs or steps) of ``total`` are complete.

        From ``predict_after`` units on, the training's total duration, energy and CO2e are
        predicted with an interval (logged once when first made, kept on the result, and
        compared with the outcome when ``done`` reaches ``total``), and budgets
        (``max_emissions_g``, ``max_energy_kwh``) are checked. Returns the latest
        :class:`~carbonmonitor.records.Forecast`, or None. ``total`` may be given once (or
        again when it changes). See :meth:`begin_progress` for runs holding several trainings.

        Raises:
            ConfigError: ``done`` or ``total`` not a number >= 0.
        """
        done_f = _units("done", done)
        total_f = None if total is None else _units("total", total)
        if self._in_child():
            return None
        with self._lock:
            if self._state != "running":
                self._warn_once("progress-state", f"progress() called while the tracker is "
                                f"{self._state}; ignored")
                return self._forecast_latest
            try:
                return self._progress(done_f, total_f, str(unit))
            except Exception:
                self._warn_once("progress", "carbonmonitor: prediction failed; the run goes on "
                                "without one", exc_info=True)
                return self._forecast_latest

    @property
    def should_stop(self) -> bool:
        """True once a budget with ``budget_action="stop"`` was crossed: the framework
        callbacks then stop training gracefully; a hand-written loop can check it."""
        return self._stop_requested

    @property
    def forecast(self) -> Any:
        """The latest :class:`~carbonmonitor.records.Forecast` (None before ``predict_after``
        units of :meth:`progress`)."""
        return self._forecast_latest

    def _progress(self, done: float, total: float | None, unit: str) -> Any:
        """Record a progress mark, forecast, compare, check budgets (lock held)."""
        from carbonmonitor import prediction

        now = self.clock.monotonic()
        self._read_all(now)
        energy = self._energy_so_far()
        if not self._series:  # no begin_progress(): count from the run's start
            self._series.append(_Progress("", self._t_start, 0.0, None))
        series = self._series[-1]
        if total is not None:
            series.total = (total, unit)
        marks = series.marks
        while marks and marks[-1].done >= done:  # a repeated or restarted count
            marks.pop()
        marks.append(prediction.Mark(done, now - series.t0, energy - series.e0))
        made = None
        if series.total is None:
            if self.options.budget_on != "actual" and self._budgets():
                self._warn_once("budget-no-total", "carbonmonitor: a predicted budget needs "
                                "the number of epochs or steps: pass total= to progress() (or "
                                "begin_progress()); until then only actual budgets are checked")
        elif done <= series.total[0]:
            after = float(self.options.predict_after)
            if done < series.total[0]:  # at the end there is nothing left to predict
                made = prediction.predict(marks, series.total[0], unit=series.total[1],
                                          warmup=1 if after > 1 else 0, min_units=after,
                                          variation=FORECAST_VARIATION)
            if made is not None:
                self._forecast_latest = self._forecast_record(made, series.label,
                                                              now - self._t_start)
                if series.first is None:
                    series.first, series.first_made = self._forecast_latest, made
                    if not self.quiet:
                        log.info("carbonmonitor: %s", _forecast_line(series.first))
            if series.first is not None and series.first.outcome is None \
                    and done >= series.total[0]:
                series.first = self._compared(series, marks[-1])
        self._check_budgets(energy, made, series.e0)
        return self._forecast_latest

    def _forecast_record(self, made: Any, label: str, at_s: float) -> Any:
        """A prediction.Prediction as the result's Forecast: CO2e at the run's factor, its
        interval widened like the measured figure's: by the measurement's own energy interval
        (the power model's or counter's, so far) and by the factor's envelope. The energy
        interval stays the prediction's: the outcome it is compared with is measured the same
        way, so the measurement's bias is common to both."""
        from carbonmonitor.records import Forecast

        envelope = self._envelope()
        low_ratio, high_ratio = ((envelope.low_ratio, envelope.high_ratio) if envelope
                                 else (1.0, 1.0))
        measured_low, measured_high = self._measurement_ratios(at_s)
        co2e, co2e_low, co2e_high = made.co2e(self._grams_per_joule())
        widened = [name for name, wide in (("measurement", measured_low < 1 or measured_high > 1),
                                           (envelope.rule if envelope else "", bool(envelope)))
                   if wide]
        return Forecast(
            after=made.after_units, total=made.total_units, unit=made.unit,
            rule=made.rule + (f"; CO2e interval x {' x '.join(widened)}" if widened else ""),
            made_at_s=at_s, duration_s=made.duration_s, duration_low_s=made.duration_low_s,
            duration_high_s=made.duration_high_s, energy_j=made.energy_j,
            energy_low_j=made.energy_low_j, energy_high_j=made.energy_high_j, co2e_g=co2e,
            co2e_low_g=co2e_low * low_ratio * measured_low,
            co2e_high_g=co2e_high * high_ratio * measured_high, label=label)

    def _measurement_ratios(self, at_s: float) -> tuple[float, float]:
        """The measured energy's interval so far relative to its value: (low, high) ratios,
        (1, 1) when there is none (lock held)."""
        from carbonmonitor.records import sum_uncertainty

        try:
            shares = (self._attributor.shares if self._attributor is not None
                      else dict.fromkeys(self._meter.domains, 1.0))
            figures = self._meter.figures(self._run, at_s, shares, self._idle_w)
            total = sum(f.energy_j for f in figures)
            unc = sum_uncertainty(figures)
        except Exception:  # a forecast never fails for its interval
            return 1.0, 1.0
        if total <= 0:
            return 1.0, 1.0
        return min(1.0, unc.low / total), max(1.0, unc.high / total)

    def _compared(self, series: _Progress, last: Any) -> Any:
        """The series' first forecast with the outcome at its last unit."""
        from carbonmonitor.records import ForecastOutcome

        f = series.first
        c = series.first_made.compare(last.elapsed_s, last.energy_j)
        grams = last.energy_j * self._grams_per_joule()
        return dataclasses.replace(f, outcome=ForecastOutcome(
            last.done, c.duration_error, c.energy_error,
            (f.co2e_g / grams - 1.0) if grams > 0 else None, c.duration_contained,
            c.energy_contained, f.co2e_low_g <= grams <= f.co2e_high_g))

    def _energy_so_far(self) -> float:
        return sum(acc[0] for acc in self._run.energy.values())

    def _grams_per_joule(self) -> float:
        from carbonmonitor.facts import JOULES_PER_KWH

        return self.pue.value * self.intensity.g_per_kwh / JOULES_PER_KWH

    def _budgets(self) -> list[Any]:
        """One prediction.Budget per limit and figure (actual, predicted) the options ask for."""
        if self._budget_list is None:
            from carbonmonitor.prediction import Budget

            opts, self._budget_list = self.options, []
            ons: tuple[Literal["actual", "predicted"], ...] = (
                ("actual", "predicted") if opts.budget_on == "both" else (opts.budget_on,))
            for on in ons:
                if opts.max_emissions_g is not None:
                    self._budget_list.append(Budget(max_emissions_g=opts.max_emissions_g,
                                                    on=on, action=opts.budget_action))
                if opts.max_energy_kwh is not None:
                    self._budget_list.append(Budget(max_energy_kwh=opts.max_energy_kwh,
                                                    on=on, action=opts.budget_action))
        return self._budget_list

    def _check_budgets(self, energy_j: float, made: Any, before_j: float = 0.0) -> None:
        """Check each budget not yet crossed on the actual figure and, when one was just made,
        the forecast (of a training that began after ``before_j`` had been spent: the run's
        predicted total adds it); each trips once (lock held)."""
        if self.options.max_emissions_g is None and self.options.max_energy_kwh is None:
            return
        from carbonmonitor.prediction import check
        from carbonmonitor.records import BudgetEvent

        gpj = self._grams_per_joule()
        if made is not None and before_j > 0:
            made = dataclasses.replace(made, energy_j=made.energy_j + before_j,
                                       energy_low_j=made.energy_low_j + before_j,
                                       energy_high_j=made.energy_high_j + before_j)
        tripped = {(e.limit, e.on) for e in self._budget_events}
        for budget in self._budgets():
            limit = "max_emissions_g" if budget.max_emissions_g is not None else "max_energy_kwh"
            if (limit, budget.on) in tripped or (budget.on == "predicted" and made is None):
                continue
            verdict = check(budget, energy_j=energy_j, co2e_g=energy_j * gpj, prediction=made,
                            grams_per_joule=gpj)
            if verdict is None:
                continue
            action = ("stopping training (budget_action='stop')" if verdict.stop
                      else "the run goes on (budget_action='warn')")
            done = (self._series[-1].marks[-1].done
                    if self._series and self._series[-1].marks else None)
            message = f"{_budget_text(verdict, done, self._series)}; {action}"
            self._budget_events.append(BudgetEvent(
                verdict.limit_name, verdict.on, verdict.action, verdict.figure, verdict.limit,
                done, self.clock.monotonic() - self._t_start, message))
            log.warning("carbonmonitor: budget %s: %s", limit, message)
            if verdict.stop:
                self._stop_requested = True

    def _enter(self, name: str) -> tuple[str, contextvars.Token[Mapping[int, str]]] | None:
        if self._in_child():  # a forked worker's phases are not the parent's run
            return None
        self._sync_gpus()
        try:
            paths = _PATHS.get()
            parent = paths.get(id(self))
            label = str(name).replace("/", "_") or "_"
            path = f"{parent}/{label}" if parent else label
            with self._lock:
                if self._state != "running":
                    self._warn_once("phase-state", f"phase {name!r} entered while the tracker "
                                    f"is {self._state}; not measured")
                    return None
                now = self.clock.monotonic()
                self._read_all(now)
                window = self._phases.setdefault(path, Window())
                window.count += 1
                if window.open == 0:
                    window.opened_at = now
                window.open += 1
            return path, _PATHS.set(MappingProxyType({**paths, id(self): path}))
        except Exception:
            self._warn_once("phase-enter", "carbonmonitor: phase bookkeeping failed",
                            exc_info=True)
            return None

    def _exit(self, path: str, token: contextvars.Token[Mapping[int, str]]) -> None:
        self._sync_gpus()
        try:
            try:
                _PATHS.reset(token)
            except ValueError:  # exited in another context than entered: drop only our entry
                paths = dict(_PATHS.get())
                paths.pop(id(self), None)
                _PATHS.set(MappingProxyType(paths))
            with self._lock:
                window = self._phases[path]
                if self._state != "running" or window.open == 0:
                    return
                now = self.clock.monotonic()
                self._read_all(now)
                window.open -= 1
                if window.open == 0:
                    window.duration_s += now - window.opened_at
                    self._span(path, window.opened_at, now)
        except Exception:
            self._warn_once("phase-exit", "carbonmonitor: phase bookkeeping failed",
                            exc_info=True)

    # -- reading ---------------------------------------------------------------------------

    def _sync_gpus(self) -> None:
        """With ``gpu_sync``: wait for the GPU work already queued, so the phase edge falls
        where the work is and not where it was launched (CUDA calls return before the GPU has
        run them). Only frameworks the program has imported are asked; none is imported here.
        Outside the tracker's lock: it can take as long as the queued work."""
        if not self._gpu_sync:
            return
        try:
            torch = sys.modules.get("torch")
            cuda = getattr(torch, "cuda", None)
            if cuda is not None and cuda.is_initialized():
                cuda.synchronize()
            cupy = sys.modules.get("cupy")
            if cupy is not None:
                cupy.cuda.get_current_stream().synchronize()
            _sync_jax()
        except Exception:
            self._warn_once("gpu-sync", "carbonmonitor: gpu_sync: synchronising the GPU failed; "
                            "phase edges are where the work was launched", exc_info=True)

    def _span(self, path: str, opened: float, closed: float) -> None:
        """Keep when a phase was open, for the store's timeline. Spans shorter than a sampling
        period are not kept: the time series cannot resolve them (their energy is in the phase
        totals), and per-step phases would otherwise write a row per step."""
        if self.store is not None and closed - opened >= self.period_s:
            self._spans.append((self._span_seq, path, opened - self._t_start,
                                closed - self._t_start))
            self._span_seq += 1

    # -- attribution and idle baseline (docs/attribution.md) -------------------------------

    def _start_attribution(self) -> None:
        """Start measuring the job's shares ('process' policy); when that is impossible here,
        the run goes on under 'machine' and says why (lock held). The sampler thread does this
        first thing, off the path to start()'s return: the energy measured before then is
        given the first period's shares."""
        from carbonmonitor import attribution
        from carbonmonitor.backends.host import ProcHost, PsutilHost

        kinds = {key: domain.device for key, (_, domain) in self._meter.domains.items()}
        reporters = [b for b in self._meter.backends
                     if callable(getattr(b, "process_shares", None))]
        procfs = Path(self.options.procfs_root)
        try:
            if (procfs / "stat").exists():
                tree: Any = attribution.ProcessTree(clock=self.clock)
                host: Any = ProcHost(procfs)
            else:  # macOS, Windows
                tree, host = attribution.PsutilTree(), PsutilHost()
            self._attributor = attribution.Attributor(kinds, reporters, tree, host)
        except Exception as err:
            self._policy = "machine"
            self._flags.append(Flag(
                "attribution-unavailable", f"this job's share of each device could not be "
                f"measured ({err}); all device energy is attributed to it",
                "attribution reads this process and its children (procfs on Linux, psutil "
                "elsewhere): run where they are readable, or set attribution='machine' to "
                "attribute everything on purpose"))
            return
        self._meter.attributing = True  # energy measured so far gets the first period's shares
        self._share_every = attribution.SHARE_EVERY_S

    def _begin_sampling(self) -> None:
        """The sampler thread's first steps, off the path to start()'s return: where the run is
        (when no option said), and the attribution's first sample."""
        _guard(self._locate, None)
        with self._lock:
            if self._state == "running" and self._policy == "process" \
                    and self._attributor is None:
                _guard(self._start_attribution, None)

    def _locate(self) -> None:
        """Cloud detection (local DMI data; the provider's metadata endpoint only when DMI names
        one), then IP geolocation when the user opted in; only when no place was given."""
        from carbonmonitor import carbon

        opts = self.options
        if self._located or self.location.status != "unknown":
            return
        self._located = True
        flags: list[Flag] = []
        location, provider = None, opts.cloud_provider
        if opts.cloud_detect:
            from carbonmonitor.carbon.detect import detect_cloud

            found = detect_cloud(Path(opts.sysfs_root), metadata_url=opts.metadata_url)
            flags.extend(found.flags)
            if found.provider and (provider in (None, found.provider)):
                provider = self._detected_provider = found.provider
                self._instance_type = self._instance_type or found.instance_type
                if found.region:
                    try:
                        location, provider = carbon.place(
                            country=None, cloud_provider=found.provider,
                            cloud_region=found.region)
                        flags.append(Flag(
                            "location-detected", f"{location.describe()}, from the "
                            f"{found.provider} metadata endpoint ({found.evidence})", ""))
                    except ConfigError as err:
                        flags.append(Flag("cloud-region-unknown", f"the metadata endpoint says "
                                          f"{found.provider}:{found.region}, which the shipped "
                                          f"tables do not know ({err})",
                                          "set country= or cloud_region= (a region close by)"))
        if location is None and opts.ip_geolocation:
            from carbonmonitor.carbon.detect import geolocate_ip

            code, flag = geolocate_ip(opts.geolocation_url)
            flags.append(flag)
            if code:
                location, _ = carbon.place(country=code, cloud_provider=provider,
                                           cloud_region=None)
        with self._lock:
            self._flags.extend(flags)
            if location is None and provider == opts.cloud_provider:
                return
            self.location = location or self.location
            self.pue = carbon.resolve_pue(opts.pue, provider, data_year=self._data_year)
            self.intensity = carbon.intensity_for(self.location, data_year=self._data_year,
                                                  basis=opts.intensity_basis)

    def _update_shares(self, now: float) -> None:
        """New shares for the energy drawn since the last update (lock held)."""
        try:
            shares = self._attributor.update()
        except Exception:
            self._warn_once("attribution", "carbonmonitor: reading the process tree's shares "
                            "failed; the previous shares are used", exc_info=True)
            shares = dict(self._attributor.shares)
        self._shares_at = now
        Meter.attribute([self._run, *self._phases.values()], shares)

    def _given_idle(self) -> tuple[dict[str, float] | None, str]:
        """The ``idle_power`` option per domain: a domain key, else its device kind."""
        given = self.options.idle_power
        if not given:
            return None, ""
        out = {}
        for key, (_, domain) in self._meter.domains.items():
            watts = given.get(key, given.get(domain.device))
            if watts is not None:
                out[key] = float(watts)
        unknown = sorted(set(given) - set(out) - {d.device for _, d in
                                                    self._meter.domains.values()})
        if unknown:
            self._flags.append(Flag("idle-power-unused", f"idle_power names {', '.join(unknown)}"
                                    ", which this run does not measure; ignored",
                                    "use domain keys or device kinds the run measures (see "
                                    "`carbonmonitor devices`)"))
        return out, "given (idle_power)"

    def _measure_idle(self) -> None:
        """Mean power per domain while the program waits in start(), before the run (lock
        held); domains with a given idle_power keep it."""
        sleep = getattr(self.clock, "sleep", None) or __import__("time").sleep
        seconds = float(self.options.idle_measure_s)
        t0 = self.clock.monotonic()
        first = self._meter.read_cumulative(t0)
        sleep(seconds)
        t1 = self.clock.monotonic()
        last = self._meter.read_cumulative(t1)
        measured = {key: (last[key] - first[key]) / (t1 - t0) for key in first
                    if key in last and t1 > t0}
        given = self._idle_w or {}
        self._idle_w = {**measured, **given}
        where = f"measured over {seconds:g} s before the run"
        self._idle_source = f"{where}; given (idle_power) for {', '.join(sorted(given))}" \
            if given else where

    def _read_all(self, now: float, record: bool = False) -> None:
        """Read every backend at ``now`` into the run and the open phases (lock held). Only
        sampler ticks, start and stop add a point to the time series, not phase edges."""
        windows = [self._run, *(w for w in self._phases.values() if w.open)]
        self._meter.read(now, now - self._t_start, windows, record)
        self._t_last = max(self._t_last, now)

    def _warn_once(self, key: str, message: str, exc_info: bool = False) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, exc_info=exc_info)

    # -- live view and result --------------------------------------------------------------

    def snapshot(self) -> tuple[float, float, float]:
        """(elapsed_s, energy_j so far, power_w over the last sampling interval)."""
        with self._lock:
            t, series = self._meter.series_t, self._meter.series
            if len(t) < 2:
                return (self._t_last - self._t_start, 0.0, 0.0)
            total_now = sum(s[-1] for s in series.values())
            total_prev = sum(s[-2] for s in series.values())
            dt = t[-1] - t[-2]
            return (t[-1], total_now, (total_now - total_prev) / dt if dt > 0 else 0.0)

    def series(self) -> tuple[list[float], dict[str, list[float]]]:
        """Sample times (s since start) and cumulative energy (J) per domain at each sample."""
        with self._lock:
            return (list(self._meter.series_t),
                    {k: list(v) for k, v in self._meter.series.items()})

    def _build_result(self, now: float, status: Status, exit_code: int | None,
                      provisional: bool = False) -> RunResult:
        """The result as of ``now`` (lock held). Provisional results (written at each flush)
        reuse one identity and do not wait for ``git status``."""
        from carbonmonitor import carbon
        from carbonmonitor.identity import finish_identity, iso_utc
        from carbonmonitor.records import (
            Attribution,
            MetricSeries,
            PhaseResult,
            RunResult,
            sum_uncertainty,
        )

        duration = now - self._t_start
        shares = (self._attributor.shares if self._attributor is not None
                  else dict.fromkeys(self._meter.domains, 1.0))
        energy = self._meter.figures(self._run, duration, shares, self._idle_w)
        phases = []
        for path, w in self._phases.items():
            spent = w.duration_s + (now - w.opened_at if w.open else 0.0)
            phases.append(PhaseResult(path, w.count, spent,
                                      self._meter.figures(w, spent, shares, self._idle_w),
                                      self._work(w)))
        flags = [*self.intensity.flags, *self._meter.flags(), *self._flags,
                 *self._short_windows(duration, phases), *carbon.pue_flags(self.pue)]
        embodied = _guard(lambda: self._embodied(duration, flags), None)
        if provisional:
            if self._identity_cache is None:
                self._identity_cache = finish_identity(self._identity, self.options, self.clock,
                                                       self._argv, wait=False)
            identity = self._identity_cache
        else:
            identity = finish_identity(self._identity, self.options, self.clock, self._argv)
        return RunResult(
            identity=identity, status=status, ended_at=iso_utc(self.clock.wall()),
            duration_s=duration, energy=energy, phases=tuple(phases), location=self.location,
            intensity=self.intensity, pue=self.pue,
            emissions=carbon.account(sum(f.energy_j for f in energy), sum_uncertainty(energy),
                                     self.pue, self.intensity,
                                     market_factor=self.options.market_factor,
                                     envelope=self._envelope()),
            backends=self._backends_seen, flags=tuple(flags),
            options=self._options_plain if provisional else self.options.to_dict(),
            sample_count=len(self._meter.series_t),
            exit_code=exit_code,
            attribution=self._attribution_record(Attribution),
            embodied=embodied,
            work=self._work(self._run),
            metrics=tuple(MetricSeries(name, way, tuple(points))
                          for name, (way, points) in self._metrics.items()),
            forecasts=tuple(s.first for s in self._series if s.first is not None),
            budget_events=tuple(self._budget_events))

    def _work(self, window: Window) -> Any:
        from carbonmonitor.records import Work

        if not window.work:
            return None
        return Work(**window.work, notes=tuple(self._work_notes))

    def _envelope(self) -> Any:
        """The factor's hourly envelope for the run's place (kept while the place is the same:
        results are built at every flush)."""
        from carbonmonitor.carbon.spread import envelope_for

        key = (self.location, self.intensity)
        if self._envelope_for is None or self._envelope_for[0] != key:
            self._envelope_for = (key, _guard(lambda: envelope_for(*key), None))
        return self._envelope_for[1]

    def _embodied(self, duration_s: float, flags: list[Flag]) -> Any:
        """The run's amortised embodied emissions: the user's figures, else the cloud
        instance's (given or detected); None when neither is known."""
        from carbonmonitor.carbon.embodied import amortised, embodied_for_instance
        from carbonmonitor.records import EmbodiedEmissions

        provider = (self.location.cloud_provider or self.options.cloud_provider
                    or self._detected_provider)
        if self._embodied_sources is None and self._instance_type and not provider:
            self._embodied_sources = []
            flag = Flag("embodied-no-provider", f"instance_type {self._instance_type!r} names "
                        "no cloud provider's table, so no embodied emissions were counted",
                        "set cloud_provider= with instance_type=, or give embodied=")
            self._flags.append(flag)
            flags.append(flag)
        if self._embodied_sources is None and self._instance_type and provider:
            try:  # a detected type (a given one was checked in the constructor)
                self._embodied_sources = [embodied_for_instance(provider, self._instance_type)]
            except ConfigError as err:
                self._embodied_sources = []
                flag = Flag("embodied-instance-unknown", str(err),
                            "set instance_type= or embodied=")
                self._flags.append(flag)
                flags.append(flag)
        if not self._embodied_sources:
            return None
        found = amortised(self._embodied_sources, duration_s)
        flags.extend(f for f in found.flags if f not in flags)
        return EmbodiedEmissions(found.grams, tuple(p.describe() for p in found.parts),
                                 found.rule, found.grams_low, found.grams_high)

    def _attribution_record(self, record: Any) -> Any:
        """The result's Attribution: the policy that really applied, and what to know."""
        if self._attributor is not None:
            return record(self._policy, self._idle_source, self._attributor.final_notes())
        if self._policy == "process":  # the run ended before the sampler's first step
            return record("machine", self._idle_source, (
                "the run ended before its process tree was first sampled: all device energy "
                "is attributed to it",))
        return record(self._policy, self._idle_source)

    def _live_inputs(self) -> tuple[str, list[tuple[float, float]]] | None:
        """The zone to ask the live provider about and the run's (wall time, cumulative J)
        points (lock held); None with a flag when the location is unknown."""
        from carbonmonitor.carbon.countries import resolve_country
        from carbonmonitor.carbon.live import points_from_series

        where = self.location
        zone = where.zone or (resolve_country(where.country_iso3).alpha2
                              if where.country_iso3 else None)
        if zone is None:
            assert self.result is not None, "built before the live inputs"
            self.result = dataclasses.replace(self.result, flags=(*self.result.flags, Flag(
                "intensity-live-skipped", f"{self._provider.name}: the run's location is "
                "unknown, so no hourly factors were asked for",
                "set country=, zone= or cloud_region=")))
            return None
        return zone, points_from_series(self._wall_start, list(self._meter.series_t),
                                        {k: list(v) for k, v in self._meter.series.items()})

    def _account_live(self, result: RunResult, live: tuple[str, list[tuple[float, float]]]
                      ) -> RunResult:
        """The final result accounted hour by hour with the live provider's factors; the
        static factor covers hours the provider does not, and all of them when it fails or
        takes longer than LIVE_DEADLINE_S in all (stop() never waits longer)."""
        from carbonmonitor.carbon.live import live_emissions
        from carbonmonitor.records import HourBin, Uncertainty, sum_uncertainty

        zone, points = live
        fallback = f"{self.intensity.source} {self.intensity.year}"
        answer: list[Any] = []
        asking = threading.Thread(target=lambda: answer.append(live_emissions(
            self._provider, zone, points, fallback_g_per_kwh=self.intensity.g_per_kwh,
            fallback_source=fallback, fallback_basis=self.intensity.basis,
            pue=self.pue.value)), name="carbonmonitor-intensity", daemon=True)
        asking.start()
        asking.join(LIVE_DEADLINE_S)
        if not answer:
            return dataclasses.replace(result, flags=(*result.flags, Flag(
                "intensity-live-failed", f"{self._provider.name} gave no answer within "
                f"{LIVE_DEADLINE_S:g} s: the static factor ({fallback}) was used",
                "check the network or the provider's status; the run stays accounted with "
                "the static tables")))
        account = answer[0]
        static = result.emissions
        # the interval: energy bounds x (provider's hourly factors as given + the fallback
        # hours' factors within the static factor's envelope)
        energy_j = result.energy_j
        energy_unc = sum_uncertainty(result.energy)
        low_e = energy_unc.low / energy_j if energy_j > 0 else 1.0
        high_e = energy_unc.high / energy_j if energy_j > 0 else 1.0
        spread = static.factor_spread
        ratio_low = spread.low_g_per_kwh / static.intensity_g_per_kwh \
            if spread and static.intensity_g_per_kwh > 0 else 1.0
        ratio_high = spread.high_g_per_kwh / static.intensity_g_per_kwh \
            if spread and static.intensity_g_per_kwh > 0 else 1.0
        hourly_g = account.co2e_g - account.fallback_co2e_g
        low = low_e * (hourly_g + account.fallback_co2e_g * ratio_low)
        high = high_e * (hourly_g + account.fallback_co2e_g * ratio_high)
        bases: set[Any] = set(account.bases)
        # a basis other than the static one only when every joule was accounted with it
        basis = bases.pop() if len(bases) == 1 and account.fallback_energy_j == 0 \
            else static.basis
        emissions = dataclasses.replace(
            static, co2e_g=account.co2e_g,
            uncertainty=Uncertainty(min(low, account.co2e_g), max(high, account.co2e_g),
                                    f"energy({energy_unc.rule})xPUExhourly factors"
                                    + (f"; fallback hours x{spread.rule}" if spread
                                       and account.fallback_co2e_g > 0 else "")),
            intensity_g_per_kwh=(account.g_per_kwh if account.g_per_kwh is not None
                                 else static.intensity_g_per_kwh),
            basis=basis, time_resolved=self._provider.name,
            hourly=tuple(HourBin(r.start_utc.isoformat(), r.end_utc.isoformat(), r.energy_j,
                                 r.g_per_kwh, r.co2e_g,
                                 f"fallback: {fallback}" if r.source == "fallback"
                                 else r.source) for r in account.rows))
        return dataclasses.replace(result, emissions=emissions,
                                   flags=(*result.flags, *account.flags))

    def _short_windows(self, duration: float, phases: list[PhaseResult]) -> list[Flag]:
        """A flag naming the run or phases too short for a counter's update period: their
        energy can be off by a whole update (their intervals are widened to say so)."""
        out = []
        for key, (backend, _domain) in self._meter.domains.items():
            shortest = getattr(backend, "shortest_window_s", None)
            limit = float(shortest(key)) if shortest is not None else 0.0
            if limit <= 0:
                continue
            short = [p.name for p in phases if 0 < p.duration_s / max(p.count, 1) < limit]
            if duration < limit:
                short.insert(0, "the run")
            if short:
                out.append(Flag("window-too-short", f"{key}: {', '.join(short)} lasted less "
                                f"than {limit:.2g} s, a few updates of its energy counter; the "
                                "figure can be off by one update at each edge and its interval "
                                "is widened to cover that",
                                "measure longer stretches (several steps per phase)"))
        return out

    # -- context manager and decorator -----------------------------------------------------

    def __enter__(self) -> Tracker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            status: Literal["completed", "failed", "interrupted"] = "completed"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "interrupted"
        else:
            status = "failed"
        try:
            self.stop(status)
        except Exception:  # a bug of ours must not replace or mask the user's own outcome
            log.exception("carbonmonitor: internal error while stopping the run; please report")

    def __call__(self, func: F) -> F:
        """Use as a decorator: each call is measured as its own run; the latest result is
        ``func.last_result``. ``async def`` functions are measured until their coroutine
        finishes."""
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise ConfigError(f"@track cannot measure generator {func.__qualname__!r}: its work "
                              "happens while it is consumed; wrap the consuming loop in "
                              "`with track(...)` instead")
        kwargs = dict(self._init_kwargs)
        options = {k: v for k, v in kwargs.items()
                   if k not in ("clock", "sampling", "quiet", "environ", "argv", "config_dir")}
        if options.get("name") is None:
            options["name"] = getattr(func, "__qualname__", None)

        def new_tracker() -> Tracker:
            return Tracker(clock=kwargs["clock"], sampling=kwargs["sampling"],
                           quiet=kwargs["quiet"], environ=kwargs["environ"],
                           argv=kwargs["argv"], config_dir=kwargs["config_dir"], **options)

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kw: Any) -> Any:
                tracker = new_tracker()
                try:
                    with tracker:
                        return await func(*args, **kw)
                finally:
                    async_wrapper.last_result = tracker.result  # type: ignore[attr-defined]

            async_wrapper.last_result = None  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kw: Any) -> Any:
            tracker = new_tracker()
            try:
                with tracker:
                    return func(*args, **kw)
            finally:
                wrapper.last_result = tracker.result  # type: ignore[attr-defined]

        wrapper.last_result = None  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]


def track(**options: Any) -> Tracker:
    """Measure a block or a function.

    Use as a context manager (``with track(...) as run:``) or a decorator (``@track(...)``).
    Options are checked immediately: a bad one raises ConfigError here, before any work.

    Example:
        >>> import carbonmonitor
        >>> with carbonmonitor.track(backend="fake", country="DE", quiet=True) as run:
        ...     pass
        >>> run.result.intensity.zone
        'DEU'
    """
    return Tracker(**options)


class _Wake:
    """What the sampler sleeps on: ``wait(timeout)`` is True once ``set()`` was called.

    A lock taken at creation and released by ``set()``: a timed ``acquire`` is one C call,
    where ``threading.Event.wait`` runs a Condition in Python (a new lock, a deque, two more
    acquires) at every tick, a measurable share of the sampler's CPU at a 1 s interval."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._set = False

    def wait(self, timeout: float) -> bool:
        if self._set:
            return True
        return self._lock.acquire(timeout=timeout)

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()


# Started trackers not yet stopped; weak, so an abandoned tracker can still be collected.
_LIVE: weakref.WeakSet[Tracker] = weakref.WeakSet()


def _sample(ref: weakref.ref[Tracker], wake: _Wake, period_s: float) -> None:
    """The sampler thread: attribution's first sample, the first write to the store, then a
    tick every ``period_s``."""
    tracker = ref()
    if tracker is not None:
        tracker._begin_sampling()
        tracker._flush()
    del tracker
    while not wake.wait(period_s):
        tracker = ref()
        if tracker is None:
            return
        try:
            tracker.tick()
        except Exception:  # the sampler must outlive any bug in a tick
            tracker._warn_once("tick", "carbonmonitor: sampling tick failed; continuing",
                               exc_info=True)
        del tracker


@atexit.register
def _stop_all_at_exit() -> None:
    for tracker in list(_LIVE):
        tracker._stop_at_exit()


def _after_fork_in_child() -> None:
    for tracker in list(_LIVE):
        tracker._after_fork_in_child()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


# The most stop() waits for a live intensity provider, all requests together.
LIVE_DEADLINE_S = 10.0


def _sync_jax() -> None:
    """Wait for the work queued on each JAX accelerator. JAX has no synchronise call, but runs
    one compute stream per device (jax-ml/jax#4335), so a tiny computation dispatched now
    finishes after everything queued before it. Only when the program has imported JAX and
    initialised its backends: initialising them here would claim most of the GPU's memory."""
    jax = sys.modules.get("jax")
    bridge = sys.modules.get("jax._src.xla_bridge")
    initialised = getattr(bridge, "backends_are_initialized", None)
    if jax is None or initialised is None or not initialised():
        return
    for device in jax.local_devices():
        if device.platform != "cpu":
            (jax.device_put(0.0, device) + 0).block_until_ready()


def _open_store(opts: Any, flags: list[Flag]) -> Store | None:
    """The run store named by the ``db`` option, checked now: an explicit path that cannot be
    used is a ConfigError; a default location that cannot be used is flagged, and the run is
    kept in memory only (the program being measured never fails because of the store)."""
    from carbonmonitor.store import Store, StoreError, store_path

    path = store_path(opts.db)
    if path is None:
        return None
    store = Store(path)
    try:
        with store.connect(create=True):
            pass
    except (StoreError, OSError) as err:
        if opts.sources["db"] != "default":
            with _where_set(opts, "db"):
                raise ConfigError(f"db {str(path)!r} cannot be used: {err}") from err
        message = (f"the default run store {path} cannot be used ({err}); this run is kept in "
                   "memory only")
        log.warning("carbonmonitor: %s", message)
        flags.append(Flag("store-unavailable", message,
                          "set db= (or CARBONMONITOR_DB) to a writable file, or db='off'"))
        return None
    return store


@contextmanager
def _where_set(options: Any, *names: str) -> Iterator[None]:
    """Add where a bad value came from (a config file, an environment variable) to its error."""
    try:
        yield
    except ConfigError as err:
        where = []
        for name in names:
            source = options.sources.get(name, "")
            if source.startswith("config: "):
                where.append(f"{name} in {source.removeprefix('config: ')}")
            elif source == "environment":
                where.append(f"CARBONMONITOR_{name.upper()}")
        if not where:
            raise
        raise ConfigError(f"{err} (set by {', '.join(where)})") from err


def _guard(func: Callable[[], Any], default: Any) -> Any:
    try:
        return func()
    except Exception:
        log.warning("carbonmonitor: internal step %s failed; continuing",
                    getattr(func, "__name__", "?"), exc_info=True)
        return default


# The forecast interval's floor: each unit's cost within +-25 % of a common mean. Epochs on
# shared machines vary more than the prediction module's +-10 % default (a trial of the demo
# on this project's 2-vCPU VM saw -24 % and +55 % with a 10 % floor); see docs/prediction.md.
FORECAST_VARIATION = 0.25


def _show_messages() -> None:
    """Make the run's summary and forecasts visible when the program configured no logging:
    a stderr handler on the ``carbonmonitor`` logger at INFO, added once, only while neither
    that logger nor the root logger has a handler (a program that configures logging, or
    passes ``quiet=True``, keeps full control)."""
    if log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


class PhaseHandle:
    """An open phase from :meth:`Tracker.begin_phase`; ``end()`` closes it (once)."""

    def __init__(self, tracker: Tracker, entered: Any) -> None:
        self._tracker = tracker
        self._entered = entered

    @property
    def name(self) -> str | None:
        """The phase's path (``"epoch/train"``), None when it could not be opened."""
        return self._entered[0] if self._entered is not None else None

    def end(self) -> None:
        entered, self._entered = self._entered, None
        if entered is not None:
            self._tracker._exit(*entered)

    def __enter__(self) -> PhaseHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()


def _count(unit: str, value: Any) -> int:
    """A whole number >= 0 (ints, and numpy/torch integer scalars)."""
    try:
        as_int = int(value)
        exact = not isinstance(value, (bool, str)) and as_int == value
    except (TypeError, ValueError, OverflowError):
        exact = False
    if not exact or as_int < 0:
        raise ConfigError(f"add_work: {unit} must be a whole number >= 0; got {value!r}")
    return as_int


def _units(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not number >= 0 or number == float("inf"):
        raise ConfigError(f"progress: {name} must be a number of epochs or steps >= 0; "
                          f"got {value!r}")
    return number


def _metric_value(name: str, value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"log_metric({name!r}): the value must be a number; got "
                          f"{value!r}") from None
    return number if number == number and abs(number) != float("inf") else None


_LOWER_IS_BETTER = frozenset({"loss", "error", "err", "perplexity", "ppl", "mse", "mae", "rmse",
                              "wer", "cer", "nll", "bpd", "latency"})
_HIGHER_IS_BETTER = frozenset({"acc", "accuracy", "f1", "precision", "recall", "auc", "auroc",
                               "bleu", "rouge", "map", "iou", "dice", "r2", "exact", "em",
                               "matthews", "mcc", "top1", "top5", "score", "reward"})


def _direction(name: str, given: str | None) -> Literal["higher", "lower"] | None:
    """``given`` normalised, else recognised from the words of ``name`` (None: unknown)."""
    if given is not None:
        way = {"higher": "higher", "max": "higher", "lower": "lower", "min": "lower"}.get(
            str(given).strip().lower())
        if way is None:
            raise ConfigError(f"log_metric({name!r}): direction must be 'higher' or 'lower' "
                              f"(which is better); got {given!r}")
        return way  # type: ignore[return-value]
    words = set("".join(c if c.isalnum() else " " for c in name.lower()).split())
    words |= {w.rstrip("0123456789") for w in words}
    if words & _LOWER_IS_BETTER:
        return "lower"
    if words & _HIGHER_IS_BETTER:
        return "higher"
    return None


@dataclasses.dataclass
class _Progress:
    """One training's progress: where it started (monotonic s, J so far), its total, its
    marks (relative to the start) and its first forecast (with the Prediction behind it)."""

    label: str
    t0: float
    e0: float
    total: tuple[float, str] | None
    marks: list[Any] = dataclasses.field(default_factory=list)
    first: Any = None
    first_made: Any = None


def _budget_text(verdict: Any, done: float | None, series: list[_Progress]) -> str:
    """``predicted total 15.3 J exceeds the budget of 10.1 J (after 2 of 10 epochs)``, in
    the units the summary uses (J/Wh/kWh, mg/g/kg)."""
    from carbonmonitor.facts import JOULES_PER_KWH
    from carbonmonitor.summary import energy_text, mass_text

    if verdict.limit_name == "max_energy_kwh":
        figure = energy_text(verdict.figure * JOULES_PER_KWH)
        limit = energy_text(verdict.limit * JOULES_PER_KWH)
    else:
        figure, limit = mass_text(verdict.figure), mass_text(verdict.limit)
        figure, limit = f"{figure} CO2e", f"{limit} CO2e"
    what = ("predicted total" if verdict.on == "predicted" else "so far")
    verb = "exceeds" if verdict.on == "predicted" else "has reached"
    where = ""
    if done is not None and series and series[-1].total is not None:
        total, unit = series[-1].total
        where = f" (after {done:g} of {total:g} {unit}s)"
    return f"{what} {figure} {verb} the budget of {limit}{where}"


def _forecast_line(f: Any) -> str:
    from carbonmonitor.summary import duration_text, energy_text, mass_text

    return ((f"{f.label}: " if f.label else "") +
            f"after {f.after:g} of {f.total:g} {f.unit}s, predicted total: "
            f"{duration_text(f.duration_s)} [{duration_text(f.duration_low_s)}.."
            f"{duration_text(f.duration_high_s)}], {energy_text(f.energy_j)} "
            f"[{energy_text(f.energy_low_j, f.energy_j)}.."
            f"{energy_text(f.energy_high_j, f.energy_j)}], {mass_text(f.co2e_g)} CO2e "
            f"[{mass_text(f.co2e_low_g, f.co2e_g)}..{mass_text(f.co2e_high_g, f.co2e_g)}]")


def _one_line(result: RunResult) -> str:
    from carbonmonitor.summary import energy_text, mass_text

    return (f"carbonmonitor: {result.identity.name}: {result.duration_s:.1f} s, "
            f"{energy_text(result.energy_j)}, {mass_text(result.co2e_g)} CO2e "
            f"({result.intensity.g_per_kwh:g} g/kWh {result.intensity.zone} "
            f"{result.intensity.year}, {result.pue.describe()})")


__all__ = ["ManualClock", "Tracker", "track"]
