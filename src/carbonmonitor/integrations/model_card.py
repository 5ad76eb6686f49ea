"""Hugging Face model cards: a run's emissions as ``co2_eq_emissions`` metadata.

The shape follows the Hub's spec (https://huggingface.co/docs/hub/model-cards-co2): in the YAML
front matter of the model's README.md,

.. code-block:: yaml

    co2_eq_emissions:
      emissions: 0.164          # grams CO2e
      source: carbonmonitor
      training_type: fine-tuning   # or pre-training
      geographical_location: Germany (DEU)
      hardware_used: 1 x NVIDIA A100-SXM4-40GB, AMD EPYC 7763 (16 logical CPUs)

The Hub filters models by emissions with a text match on digits (``huggingface_hub``'s
``_is_emission_within_threshold``), which would read ``5e-05`` as 5 g; grams are therefore
rounded to 0.1 mg, which Python and YAML always write without an exponent.

Example:
    >>> from carbonmonitor import ManualClock, Tracker
    >>> clock = ManualClock()
    >>> tracker = Tracker(backend="fake", clock=clock, sampling="manual", quiet=True, db="off",
    ...                   country="DE")
    >>> _ = tracker.start()
    >>> clock.advance(600)
    >>> meta = co2_eq_emissions(tracker.stop(), hardware_used="1 x laptop CPU")
    >>> list(meta)
    ['emissions', 'source', 'training_type', 'geographical_location', 'hardware_used']
    >>> meta["geographical_location"], meta["training_type"]
    ('Germany (DEU)', 'fine-tuning')
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonmonitor.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from carbonmonitor.records import RunResult

__all__ = ["co2_eq_emissions", "update_model_card"]

TRAINING_TYPES = ("pre-training", "fine-tuning")
KEY = "co2_eq_emissions"
# The Hub's front-matter pattern (huggingface_hub.repocard.REGEX_YAML_BLOCK, kept in sync with
# the Hub server), used when huggingface_hub is not installed.
_FRONT = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")


def co2_eq_emissions(result: RunResult, *, training_type: str = "fine-tuning",
                     source: str = "carbonmonitor", hardware_used: str | None = None
                     ) -> dict[str, Any]:
    """The ``co2_eq_emissions`` model-card metadata of a run.

    Args:
        result: a finished run (``tracker.stop()``, ``carbonmonitor.load(run_id)``).
        training_type: ``"fine-tuning"`` or ``"pre-training"``.
        source: where the figure comes from.
        hardware_used: what the run ran on (default: the GPUs measured and the CPU, from the
            run's hardware record).

    Returns:
        ``{"emissions": grams, "source", "training_type", "geographical_location",
        "hardware_used"}``: location-based CO2e with the run's PUE, as everywhere in
        carbonmonitor; the location as carbonmonitor describes it (``unknown`` when unknown).

    Raises:
        ConfigError: a ``training_type`` the spec does not name.
    """
    if training_type not in TRAINING_TYPES:
        raise ConfigError(f"training_type must be 'pre-training' or 'fine-tuning' (the model-card "
                          f"spec's values); got {training_type!r}."
                          f"{did_you_mean(str(training_type), TRAINING_TYPES)}")
    return {
        "emissions": round(result.co2e_g, 4),
        "source": source,
        "training_type": training_type,
        "geographical_location": result.location.describe(),
        "hardware_used": hardware_used if hardware_used is not None else _hardware(result),
    }


def _hardware(result: RunResult) -> str:
    """``2 x NVIDIA A100-SXM4-40GB, AMD EPYC 7763 (16 logical CPUs)`` from what was measured:
    GPUs the run measured (not every GPU in the machine), the CPU model and usable CPUs."""
    hw = result.identity.hardware
    parts = []
    gpus = sum(1 for f in result.energy if f.device == "gpu")
    if gpus:
        names = Counter(hw.gpus) if hw is not None else Counter()
        parts.append(f"{gpus} x {next(iter(names))}" if len(names) == 1
                     else f"{gpus} x GPU" + (f" ({', '.join(names)})" if names else ""))
    cpus = (hw.cpu_usable or hw.cpu_count) if hw is not None else None
    if hw is not None and hw.cpu_model:
        parts.append(hw.cpu_model + (f" ({cpus} logical CPUs)" if cpus else ""))
    elif any(f.device == "cpu" for f in result.energy):
        parts.append(f"CPU ({cpus} logical CPUs)" if cpus else "CPU")
    return ", ".join(parts) or "unknown"


def update_model_card(path: str | Path, result: RunResult, *, training_type: str = "fine-tuning",
                      source: str = "carbonmonitor", hardware_used: str | None = None) -> Path:
    """Write the run's ``co2_eq_emissions`` into a model card's YAML front matter, replacing an
    earlier one and keeping the other metadata and the body (a missing card is created).

    With ``huggingface_hub`` installed the card is read and written by its ``ModelCard`` (which
    validates the metadata); without it, the ``co2_eq_emissions`` entry is replaced in the text
    and every other line is kept as it was. The file is replaced atomically.

    Args:
        path: the README.md, or the model's folder (its README.md is used).
        result, training_type, source, hardware_used: see :func:`co2_eq_emissions`.

    Returns:
        The card's path.

    Raises:
        ConfigError: a bad ``training_type``.
        ValueError: the front matter cannot be merged (invalid metadata; flow-style YAML
            without huggingface_hub installed).

    Example:
        >>> update_model_card("my-model/", tracker.stop())    # doctest: +SKIP
        PosixPath('my-model/README.md')
    """
    meta = co2_eq_emissions(result, training_type=training_type, source=source,
                            hardware_used=hardware_used)
    card_path = Path(path)
    if card_path.is_dir() or (not card_path.exists() and not card_path.suffix):
        card_path = card_path / "README.md"
    old = card_path.read_text(encoding="utf-8") if card_path.exists() else ""
    try:
        from huggingface_hub import ModelCard
    except ImportError:
        new = _merge_text(old, meta)
    else:
        card = ModelCard(old if _FRONT.search(old) else "---\n{}\n---\n" + old)
        card.data[KEY] = meta
        new = str(card)
    _write_atomic(card_path, new)
    return card_path


def _merge_text(text: str, meta: dict[str, Any]) -> str:
    """``text`` with its front matter's ``co2_eq_emissions`` entry replaced by ``meta``; all
    other lines kept byte for byte."""
    newline = "\r\n" if "\r\n" in text else "\n"
    block = newline.join([f"{KEY}:", *(f"  {k}: {_yaml_scalar(v)}" for k, v in meta.items())])
    match = _FRONT.search(text)
    if match is None:
        return f"---{newline}{block}{newline}---{newline}{text}"
    yaml_text = match.group(2)
    if yaml_text.strip() in ("", "{}"):
        merged = block
    elif yaml_text.lstrip().startswith(("{", "[")):
        raise ValueError(f"the model card's front matter is flow-style YAML, which carbonmonitor "
                         f"cannot merge on its own: pip install huggingface_hub (it merges "
                         f"{KEY} through ModelCard)")
    else:
        lines = _without_entry(yaml_text.splitlines())
        merged = newline.join([*lines, block])
    return text[:match.start(2)] + merged + text[match.end(2):]


def _without_entry(lines: list[str]) -> list[str]:
    """The lines of a block-style YAML mapping without its top-level ``co2_eq_emissions``
    entry: the key's line and the indented (or blank) lines that continue it."""
    out: list[str] = []
    skipping = False
    for line in lines:
        if skipping and (not line.strip() or line[0] in " \t" or line.startswith("- ")):
            continue
        skipping = re.match(rf"{KEY}\s*:", line) is not None
        if not skipping:
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return out


def _yaml_scalar(value: Any) -> str:
    """A number as it is; anything else as a double-quoted string (a JSON string is a valid
    YAML double-quoted scalar)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder, then ``os.replace`` it. The card
    keeps its permission bits; a new card gets those of any new file (0o666 less the umask),
    not the 0o600 of a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new file next to ``path``, created as ``open()`` creates one (0o666 less the umask:
    the kernel applies it), exclusively."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return os.open(tmp, flags, 0o666), str(tmp)
        except FileExistsError:
            continue
