"""TensorBoard: live energy and CO2e as scalars, final figures and a text summary at the end.

Two ways in (``pip install 'carbonmonitor[tensorboard]'``):

- ``writer=``: any SummaryWriter-like object (``add_scalar``, ``add_text``, ``flush``): torch's
  ``SummaryWriter``, tensorboardX's, or Lightning's ``TensorBoardLogger.experiment``, so the
  figures land next to the framework's own curves, in its event file.
- ``log_dir=``: the sink writes its own event file there with TensorBoard's own writer
  (``EventFileWriter`` and the scalar/text plugins' ``*_pb`` summary builders). Chosen over
  torch's ``SummaryWriter`` because it needs neither torch (seconds to import, and absent for
  Keras/JAX users) nor TensorFlow, and it is the same writer: torch's ``SummaryWriter`` is a
  wrapper around ``EventFileWriter``. The scalar format is the plugin's current tensor form.

Example:
    >>> from carbonmonitor.integrations.tensorboard import TensorBoardSink  # doctest: +SKIP
    >>> sink = TensorBoardSink("runs/carbon")                               # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonmonitor.errors import ConfigError
from carbonmonitor.integrations.sinks import PREFIX, Failures, final_scalars, provenance, rekey

if TYPE_CHECKING:
    from carbonmonitor.records import RunResult

__all__ = ["TensorBoardSink", "log_result", "summary_markdown"]

_MISSING = "the TensorBoard sink needs TensorBoard: pip install 'carbonmonitor[tensorboard]'"


class _EventWriter:
    """The part of a SummaryWriter the sink uses, on TensorBoard's own event-file writer."""

    def __init__(self, log_dir: Path) -> None:
        from tensorboard.plugins.scalar.summary_v2 import scalar_pb
        from tensorboard.plugins.text.summary_v2 import text_pb
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._scalar_pb, self._text_pb = scalar_pb, text_pb
        self._writer = EventFileWriter(str(log_dir))

    def _add(self, summary: Any, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._writer.add_event(Event(wall_time=time.time(), step=step, summary=summary))

    def add_scalar(self, tag: str, value: float, global_step: int) -> None:
        self._add(self._scalar_pb(tag, value), global_step)

    def add_text(self, tag: str, text: str, global_step: int) -> None:
        self._add(self._text_pb(tag, text), global_step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def _check_installed() -> None:
    try:
        import tensorboard.summary.writer.event_file_writer  # noqa: F401
    except ImportError as err:
        raise ImportError(_MISSING) from err


class TensorBoardSink:
    """Writes carbonmonitor's figures as TensorBoard scalars and a text summary.

    Args:
        log_dir: a folder for the sink's own event file (created when needed).
        writer: a SummaryWriter-like object to write through instead (the sink flushes it but
            does not close it: its owner does).
        prefix: the namespace of every tag written.

    Raises:
        ConfigError: neither or both of ``log_dir`` and ``writer`` given.
        ImportError: ``log_dir`` given and TensorBoard not installed (the message names the
            extra).

    Example:
        >>> sink = TensorBoardSink("runs/carbon")                    # doctest: +SKIP
        >>> sink.log({"carbonmonitor/energy_kwh": 0.002}, step=1)    # doctest: +SKIP
        >>> sink.finish(tracker.stop())                              # doctest: +SKIP
    """

    def __init__(self, log_dir: str | Path | None = None, *, writer: Any = None,
                 prefix: str = PREFIX) -> None:
        if (log_dir is None) == (writer is None):
            raise ConfigError("TensorBoardSink needs either log_dir= (a folder for its own "
                              "event file) or writer= (a SummaryWriter), not both or neither")
        if writer is None:
            _check_installed()
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.prefix = prefix
        self._writer: Any = writer
        self._owned = writer is None  # the sink made the writer, so it closes it
        self._last_step = 0
        self._failures = Failures("TensorBoard")

    def _open(self) -> Any:
        if self._writer is None:
            assert self.log_dir is not None
            self._writer = _EventWriter(self.log_dir)
        return self._writer

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        """Write live scalars at ``step`` and flush (so nothing waits in a queue if the
        program dies). Never raises."""
        with self._failures.guard("write live scalars"):
            writer = self._open()
            self._last_step = max(self._last_step, int(step))
            for key, value in scalars.items():
                writer.add_scalar(rekey(key, self.prefix), float(value), int(step))
            writer.flush()

    def finish(self, result: RunResult) -> None:
        """Write the final figures at the last step and a text summary with the provenance;
        close the event file if the sink opened it. Never raises."""
        self._finish(result, strict=False)

    def _finish(self, result: RunResult, strict: bool) -> None:
        with self._failures.guard("write the final figures", strict=strict):
            writer = self._open()
            try:
                for key, value in final_scalars(result).items():
                    writer.add_scalar(self.prefix + key, value, self._last_step)
                writer.add_text(self.prefix + "summary", summary_markdown(result),
                                self._last_step)
                writer.flush()
            finally:
                if self._owned:
                    writer.close()


def summary_markdown(result: RunResult) -> str:
    """The run's summary (``format_summary``) and its provenance, as Markdown for the
    TensorBoard text dashboard."""
    from carbonmonitor.summary import format_summary

    block = "\n".join("    " + line for line in format_summary(result).splitlines())
    rows = "\n".join(f"| {key} | {value.replace('|', '/')} |"
                     for key, value in provenance(result).items())
    return f"{block}\n\n| provenance | value |\n| --- | --- |\n{rows}\n"


def log_result(result: RunResult, log_dir: str | Path, *, prefix: str = PREFIX) -> None:
    """Write a finished or stored run (``carbonmonitor.load(run_id)``) to an event file in
    ``log_dir``: final figures at step 0 and the text summary.

    Raises:
        ImportError: TensorBoard is not installed. Write errors are raised too: this is a
        direct request, not monitoring.

    Example:
        >>> log_result(carbonmonitor.load("last"), "runs/carbon")    # doctest: +SKIP
    """
    TensorBoardSink(log_dir, prefix=prefix)._finish(result, strict=True)
