"""The main job: the carbon impact of pre-training and fine-tuning a tiny BERT for code
classification, measured by carbonmonitor.

    python -m examples.code_bert [--quick | --large] [--out DIR] [--json PATH]

Every option of carbonmonitor can come from the environment, e.g. ``CARBONMONITOR_COUNTRY=DE``
(without a place the world average is used, and the result says so).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .train import STAGES, Report, add_arguments, run, settings_from


def format_report(report: Report) -> str:
    """A short, readable summary of the ML side of ``report``."""
    size = report.settings.model
    lines = [
        f"labels ({len(report.labels)}): {', '.join(report.labels)}",
        "functions (files): " + ", ".join(
            f"{split} {sum(per_label.values())} ({report.files[split]})"
            for split, per_label in report.counts.items()),
        f"model: BERT {size.layers} layers x {size.hidden} hidden, {size.heads} heads, "
        f"{size.max_length} tokens, vocabulary {report.vocab_size}, "
        f"{report.parameters / 1e6:.2f} M parameters, on {report.device}",
        f"preparation (corpus, tokenizer): {report.preparation_s:.1f} s",
    ]
    for stage in report.stages:
        lines.append(
            f"{stage.name}: {stage.duration_s:.1f} s, {stage.epochs:g} "
            f"epoch{'' if stage.epochs == 1 else 's'}, {stage.steps} "
            f"steps, {stage.samples} samples, {stage.tokens} tokens (non-padding), "
            f"loss {stage.losses[0]:.2f} -> {stage.losses[-1]:.2f}")
    lines += [
        "validation accuracy by epoch: "
        + ", ".join(f"{a:.1%}" for a in report.validation_accuracy),
        f"test accuracy (held-out files): {report.test_accuracy:.1%}   majority baseline "
        f"({report.majority_label}): {report.baseline_accuracy:.1%}   "
        f"ratio {report.test_accuracy / report.baseline_accuracy:.2f}x",
        f"total: {report.total_s:.1f} s",
    ]
    return "\n".join(lines)


def impact_lines(result: object) -> list[str]:
    """Pre-training vs fine-tuning: energy, CO2e and share, from the run's phases."""
    import carbonmonitor
    from carbonmonitor.summary import energy_text, mass_text

    assert isinstance(result, carbonmonitor.RunResult)
    lines = ["carbon impact by stage:"]
    for name in ("preparation", *STAGES[1:]):
        try:
            phase = result.phase(name)
        except KeyError:
            continue
        share = phase.energy_j / result.energy_j if result.energy_j > 0 else 0.0
        lines.append(f"  {name:<12} {energy_text(phase.energy_j, result.energy_j):>11}  "
                     f"{mass_text(result.phase_co2e_g(name)):>9} CO2e  {share:4.0%}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.code_bert",
        description="Pre-train a tiny BERT on standard-library code, fine-tune it to classify "
                    "functions by package, and report the carbon impact of each stage.")
    add_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("code-bert-output"),
                        help="folder for the carbon-impact figure (default: %(default)s)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the run's result (carbonmonitor JSON) here")
    args = parser.parse_args(argv)
    settings = settings_from(args)

    import carbonmonitor
    from carbonmonitor.integrations.transformers import CarbonMonitorCallback

    quick = "-quick" if getattr(args, "quick", False) else ""
    # not quiet: the forecasts (and the one-line result) are shown on stderr as they come
    tracker = carbonmonitor.Tracker(project="code-bert-demo", name=f"code-bert{quick}")
    tracker.start()
    open_phase: list[object] = []

    def on_stage(name: str) -> None:
        print(f"[{STAGES.index(name) + 1}/{len(STAGES)}] {name}", flush=True)
        while open_phase:  # preparation ends where pre-training begins
            open_phase.pop().end()  # type: ignore[attr-defined]
        if name == "preparation":
            open_phase.append(tracker.begin_phase(name))

    def callbacks(stage: str) -> list[object]:
        return [CarbonMonitorCallback(tracker=tracker, phase_prefix=stage)]

    try:
        report = run(settings, callbacks=callbacks, on_stage=on_stage)
    except BaseException:
        tracker.stop("failed")
        raise
    tracker.log_metric("test_accuracy", report.test_accuracy)
    tracker.log_metric("majority_baseline_accuracy", report.baseline_accuracy)
    result = tracker.stop()

    print(format_report(report))
    print()
    print(carbonmonitor.format_summary(result))
    print()
    print("\n".join(impact_lines(result)))
    if args.json:
        args.json.write_text(result.to_json(indent=2), encoding="utf-8")
    try:
        from carbonmonitor.plot import impact_figure

        args.out.mkdir(parents=True, exist_ok=True)
        figure = args.out / "carbon_impact.png"
        impact_figure(result, db=tracker.store.path if tracker.store else None, path=figure)
        print(f"carbon-impact figure: {figure}")
    except ImportError as err:  # matplotlib missing: the text report stands alone
        print(f"no figure ({err})")
    if tracker.store is not None:
        print(f"stored in {tracker.store.path}: carbonmonitor show {result.identity.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
