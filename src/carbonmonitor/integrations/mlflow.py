"""MLflow: live energy and CO2e as run metrics, final figures and provenance at the end.

Written through ``mlflow.tracking.MlflowClient`` (``pip install 'carbonmonitor[mlflow]'``;
mlflow-skinny is enough), so nothing depends on MLflow's thread-local "active run" state
except the choice of run. Which run: ``run_id`` when given; else, when neither
``tracking_uri`` nor ``client`` is given, the active run of the calling thread
(``mlflow.start_run()``, the transformers ``MLflowCallback``); else a new run the sink creates,
in an experiment named after the carbonmonitor project, and ends at ``finish``.

Provenance goes to run *tags*, not params: MLflow params are write-once, so re-logging a
re-accounted run (another region, newer data) into the same run would fail.

Example:
    >>> from carbonmonitor.integrations.mlflow import MLflowSink  # doctest: +SKIP
    >>> sink = MLflowSink(tracking_uri="sqlite:///mlflow.db")     # doctest: +SKIP
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from carbonmonitor.integrations.sinks import (
    PREFIX,
    Failures,
    final_scalars,
    provenance,
    rekey,
    safe_key,
)

if TYPE_CHECKING:
    from carbonmonitor.records import RunResult

__all__ = ["MLflowSink", "log_result"]

# MLflow's limits (mlflow.utils.validation): entries per log_batch call and a tag's length.
_TAGS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000
_TAG_CHARS = 5000


def _check_installed() -> None:
    try:
        import mlflow.tracking  # noqa: F401
    except ImportError as err:
        raise ImportError("the MLflow sink needs MLflow: pip install 'carbonmonitor[mlflow]' "
                          "(mlflow-skinny is enough)") from err


class MLflowSink:
    """Logs carbonmonitor's figures to an MLflow run.

    Args:
        run_id: the MLflow run to write to (default: the active run when neither
            ``tracking_uri`` nor ``client`` is given, else a new one).
        tracking_uri: where MLflow stores runs (default: MLflow's own, ``MLFLOW_TRACKING_URI``).
        client: an ``MlflowClient`` to use instead of building one.
        prefix: the namespace of every key written.
        experiment: the experiment of a run the sink creates (default: the carbonmonitor
            project: the result's, or while training, the callback's: see :meth:`bind`).

    Raises:
        ImportError: MLflow is not installed (the message names the extra).

    Example:
        >>> sink = MLflowSink(tracking_uri="sqlite:///mlflow.db")  # doctest: +SKIP
        >>> sink.log({"carbonmonitor/energy_kwh": 0.002}, step=1)  # doctest: +SKIP
        >>> sink.finish(tracker.stop())                             # doctest: +SKIP
    """

    def __init__(self, run_id: str | None = None, tracking_uri: str | None = None,
                 client: Any = None, prefix: str = PREFIX, *,
                 experiment: str | None = None) -> None:
        _check_installed()
        self._given_client: Any = client
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.prefix = prefix
        self.experiment = experiment
        self._project: str | None = None  # the callback's (bind), while training
        self._run_name: str | None = None
        self._owned = False  # the sink created the run, so it ends it
        self._last_step = 0
        self._last_ms = 0  # final figures get a later timestamp than the last live ones
        self._failures = Failures("MLflow")

    @property
    def client(self) -> Any:
        """The ``MlflowClient`` in use (made on first use: making one opens the store)."""
        if self._given_client is None:
            from mlflow.tracking import MlflowClient

            self._given_client = MlflowClient(self.tracking_uri)
        return self._given_client

    def bind(self, *, project: str | None = None, run_name: str | None = None) -> None:
        """The callback's run (a framework callback calls this when training starts): a run
        the sink creates goes into the experiment named after ``project`` (unless
        ``experiment=`` was given) and has the name ``run_name``."""
        self._project = project or self._project
        self._run_name = run_name or self._run_name

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        """Log live scalars as metrics at ``step``. Never raises."""
        with self._failures.guard("log live metrics"):
            run_id = self._run(None)
            self._last_step = max(self._last_step, int(step))
            self._log_metrics(run_id, {safe_key(rekey(k, self.prefix)): float(v)
                                       for k, v in scalars.items()}, int(step))

    def finish(self, result: RunResult) -> None:
        """Log final figures (at the last step), provenance tags, the summary and the result
        JSON as artifacts; end the run if the sink created it. Never raises."""
        self._finish(result, strict=False)

    def _finish(self, result: RunResult, strict: bool) -> None:
        guard = self._failures.guard
        with guard("log final figures", strict=strict):
            run_id = self._run(result)
            metrics = {self.prefix + k: v for k, v in final_scalars(result).items()}
            self._log_metrics(run_id, metrics, self._last_step)
            self._log_tags(run_id, provenance(result))
            if self._owned:  # a run made while training had no name yet
                self.client.set_tag(run_id, "mlflow.runName", result.identity.name)
            with guard("upload the summary artifacts", strict=strict):
                from carbonmonitor.summary import format_summary

                self.client.log_text(run_id, format_summary(result),
                                      f"{self.prefix}summary.txt")
                self.client.log_text(run_id, result.to_json(indent=1),
                                      f"{self.prefix}result.json")
            if self._owned:
                status = {"completed": "FINISHED", "failed": "FAILED",
                          "interrupted": "KILLED"}.get(result.status, "FINISHED")
                self.client.set_terminated(run_id, status, end_time=_ms(result.ended_at))

    def _run(self, result: RunResult | None) -> str:
        """The run to write to: given, active, or created (once)."""
        if self.run_id is not None:
            return self.run_id
        # the active run lives in MLflow's current store: not the one of a given URI/client
        fluent = (sys.modules.get("mlflow.tracking.fluent")  # not imported: no active run
                  if self.tracking_uri is None and self._given_client is None else None)
        active = fluent.active_run() if fluent is not None else None
        if active is not None:
            self.run_id = str(active.info.run_id)
            return self.run_id
        name = self.experiment or (result.identity.project if result is not None
                                   else self._project or _configured_project())
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            try:
                experiment_id = self.client.create_experiment(name)
            except Exception:  # another process may have created it meanwhile
                again = self.client.get_experiment_by_name(name)
                if again is None:
                    raise
                experiment_id = again.experiment_id
        tags = {f"{self.prefix}created_by": "carbonmonitor"}
        if result is None:
            run = self.client.create_run(experiment_id, tags=tags, run_name=self._run_name)
        else:
            run = self.client.create_run(
                experiment_id, start_time=_ms(result.identity.started_at), tags=tags,
                run_name=result.identity.name)
        self.run_id = str(run.info.run_id)
        self._owned = True
        return self.run_id

    def _log_metrics(self, run_id: str, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now_ms = self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        metrics = [Metric(key, value, now_ms, step) for key, value in values.items()]
        for i in range(0, len(metrics), _METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=metrics[i:i + _METRICS_PER_BATCH])

    def _log_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        tags = [RunTag(self.prefix + key, value[:_TAG_CHARS]) for key, value in values.items()]
        for i in range(0, len(tags), _TAGS_PER_BATCH):
            self.client.log_batch(run_id, tags=tags[i:i + _TAGS_PER_BATCH])


def log_result(result: RunResult, run_id: str | None = None, tracking_uri: str | None = None,
               client: Any = None, prefix: str = PREFIX, *,
               experiment: str | None = None) -> str:
    """Log a finished or stored run (``carbonmonitor.load(run_id)``) to MLflow: the final
    figures at step 0, provenance tags, summary and result artifacts. With no ``run_id`` and no
    active run, a new MLflow run is made with the run's own name and start and end times.

    Returns:
        The MLflow run id written to.

    Raises:
        ImportError: MLflow is not installed. Errors from MLflow are raised too: this is a
        direct request, not monitoring.

    Example:
        >>> run = carbonmonitor.load("last")                         # doctest: +SKIP
        >>> log_result(run, tracking_uri="sqlite:///mlflow.db")      # doctest: +SKIP
        '3f2a...'
    """
    sink = MLflowSink(run_id, tracking_uri, client, prefix, experiment=experiment)
    sink._finish(result, strict=True)
    assert sink.run_id is not None  # _finish found or made one, or raised
    return sink.run_id


def _configured_project() -> str:
    """The carbonmonitor project from the environment or config files (``default`` if none)."""
    from carbonmonitor.config import find_config_files
    from carbonmonitor.options import resolve

    try:
        return str(resolve({}, files=find_config_files()).project)
    except Exception:  # a bad config file is the tracker's to report
        return os.environ.get("CARBONMONITOR_PROJECT", "default")


def _ms(iso: str) -> int | None:
    """Milliseconds since the epoch of an ISO 8601 time (None when unreadable)."""
    try:
        stamp = datetime.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return int(stamp.timestamp() * 1000)
