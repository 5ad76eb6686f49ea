"""Weights & Biases: live energy and CO2e in the run's history, final figures in its summary.

``pip install 'carbonmonitor[wandb]'``. Which run: ``run=`` when given, else the active
``wandb.run`` (the transformers ``WandbCallback``, Lightning's ``WandbLogger``, your own
``wandb.init``), else one the sink starts with ``wandb.init(**init_kwargs)`` and finishes.

The step goes into the history as ``carbonmonitor/step``, declared as the x-axis of every
``carbonmonitor/*`` metric (``define_metric``), instead of ``run.log(step=)``: W&B's own step must
only grow, and a framework logging to the same run moves it on every batch, so an epoch number
passed as ``step=`` would be dropped.

Example:
    >>> from carbonmonitor.integrations.wandb import WandbSink  # doctest: +SKIP
    >>> sink = WandbSink(project="bert")                        # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from carbonmonitor.integrations.sinks import PREFIX, Failures, final_scalars, provenance, rekey

if TYPE_CHECKING:
    from carbonmonitor.records import RunResult

__all__ = ["WandbSink", "log_result"]


def _wandb() -> Any:
    try:
        import wandb
    except ImportError as err:
        raise ImportError("the Weights & Biases sink needs wandb: "
                          "pip install 'carbonmonitor[wandb]'") from err
    return wandb


class WandbSink:
    """Logs carbonmonitor's figures to a Weights & Biases run.

    Args:
        run: the run to write to (default: the active ``wandb.run``, else a new one).
        prefix: the namespace of every key written.
        **init_kwargs: passed to ``wandb.init`` when the sink starts its own run (project,
            name, mode, dir, ...).

    Raises:
        ImportError: wandb is not installed (the message names the extra).

    Example:
        >>> sink = WandbSink(project="bert")                         # doctest: +SKIP
        >>> sink.log({"carbonmonitor/energy_kwh": 0.002}, step=1)    # doctest: +SKIP
        >>> sink.finish(tracker.stop())                              # doctest: +SKIP
    """

    def __init__(self, run: Any = None, *, prefix: str = PREFIX, **init_kwargs: Any) -> None:
        _wandb()  # installed, or the ImportError naming the extra now
        self.run: Any = run
        self.prefix = prefix
        self.init_kwargs = init_kwargs
        self._owned = False  # the sink started the run, so it finishes it
        self._defined = False
        self._failures = Failures("Weights & Biases")

    @property
    def _wandb(self) -> Any:
        return _wandb()  # not kept: a module cannot be pickled or copied with the sink

    def bind(self, *, project: str | None = None, run_name: str | None = None) -> None:
        """The callback's run: a W&B run the sink starts while training is in its project
        (unless ``WANDB_PROJECT`` or ``project=`` at construction says otherwise) and has
        its name."""
        if project and "WANDB_PROJECT" not in os.environ:
            self.init_kwargs.setdefault("project", project)
        if run_name:
            self.init_kwargs.setdefault("name", run_name)

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        """Append live scalars to the run's history with ``carbonmonitor/step``. Never
        raises."""
        with self._failures.guard("log live metrics"):
            run = self._run(None)
            row = {rekey(k, self.prefix): float(v) for k, v in scalars.items()}
            row[self.prefix + "step"] = int(step)
            run.log(row)

    def finish(self, result: RunResult) -> None:
        """Put the final figures in the run's summary and the provenance in its config;
        finish the run if the sink started it. Never raises."""
        self._finish(result, strict=False)

    def _finish(self, result: RunResult, strict: bool) -> None:
        with self._failures.guard("log the final figures", strict=strict):
            run = self._run(result)
            try:
                run.summary.update({self.prefix + k: v
                                    for k, v in final_scalars(result).items()})
                run.config.update({self.prefix + k: v for k, v in provenance(result).items()},
                                  allow_val_change=True)
            finally:
                if self._owned:
                    run.finish(exit_code=0 if result.status == "completed" else 1)

    def _run(self, result: RunResult | None) -> Any:
        """The run to write to: given, active, or started (once)."""
        if self.run is None:
            self.run = self._wandb.run
        if self.run is None:
            kwargs = dict(self.init_kwargs)
            if result is not None:  # a stored run: name the W&B run after it
                if "WANDB_PROJECT" not in os.environ:
                    kwargs.setdefault("project", result.identity.project)
                kwargs.setdefault("name", result.identity.name)
            self.run = self._wandb.init(**kwargs)
            self._owned = True
        if not self._defined:
            self.run.define_metric(self.prefix + "step", hidden=True)
            self.run.define_metric(self.prefix + "*", step_metric=self.prefix + "step")
            self._defined = True
        return self.run


def log_result(result: RunResult, run: Any = None, *, prefix: str = PREFIX,
               **init_kwargs: Any) -> Any:
    """Log a finished or stored run (``carbonmonitor.load(run_id)``) to W&B: final figures in
    the summary, provenance in the config. With no ``run`` and no active run, a new W&B run is
    started (named after the carbonmonitor run; project: the run's, unless ``WANDB_PROJECT``
    or ``project=`` says otherwise) and finished.

    Returns:
        The W&B run written to.

    Raises:
        ImportError: wandb is not installed. Errors from wandb are raised too: this is a
        direct request, not monitoring.

    Example:
        >>> log_result(carbonmonitor.load("last"), mode="offline")    # doctest: +SKIP
    """
    sink = WandbSink(run, prefix=prefix, **init_kwargs)
    sink._finish(result, strict=True)
    return sink.run

