"""Main job: a small CNN trained on scikit-learn's bundled digits, measured by carbonmonitor.

Runs on a 2-core CPU in about a minute (``--quick``: a few seconds of training). Nothing is
downloaded: the 1,797 8x8 digit images ship inside scikit-learn. Every option of carbonmonitor
can be set from the environment, e.g. ``CARBONMONITOR_COUNTRY=DE``.

    python examples/train_digits.py [--quick] [--epochs N] [--json result.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import carbonmonitor


def load_data(seed: int):  # type: ignore[no-untyped-def]
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    idx_train, idx_test = train_test_split(
        range(len(y)), test_size=0.25, random_state=seed, stratify=digits.target)
    return x[idx_train], y[idx_train], x[idx_test], y[idx_test]


def build_model(width: int):  # type: ignore[no-untyped-def]
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 4, 128), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(128, 10),
    )


def significant(value: float, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits and no exponent: 1234.5 -> '1235',
    0.012345 -> '0.0123'."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.{digits - 1}f}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"


def per_1k_samples(result: carbonmonitor.RunResult, samples: int) -> str:
    """Energy (J) and CO2e (mg, with its interval) per 1,000 training samples."""
    scale = 1000 / samples  # per 1,000 samples
    energy_j = result.energy_j * scale
    co2e_mg = result.co2e_g * scale * 1000  # g -> mg
    low_mg = result.emissions.uncertainty.low * scale * 1000
    high_mg = result.emissions.uncertainty.high * scale * 1000
    return (f"per 1k samples: {significant(energy_j)} J, {significant(co2e_mg)} mg CO2e "
            f"[{significant(low_mg)} .. {significant(high_mg)}]")


def main(argv: list[str]) -> int:
    try:
        return train(argv)
    except carbonmonitor.ConfigError as err:  # e.g. CARBONMONITOR_COUNTRY=Germny
        print(f"train_digits: error: {err}", file=sys.stderr)
        return 2


def train(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds of training (CI)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--width", type=int, default=None, help="channels of the first conv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="write the run's result as JSON")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 32)
    width = args.width or (16 if args.quick else 128)

    with carbonmonitor.track(project="carbonmonitor-demo", name="digits-cnn",
                             tags=["demo", "quick" if args.quick else "full"],
                             params={"epochs": epochs, "width": width, "seed": args.seed},
                             quiet=True) as run:
        import torch
        from torch import nn

        torch.manual_seed(args.seed)
        with run.phase("load"):
            x_train, y_train, x_test, y_test = load_data(args.seed)
            model = build_model(width)
        optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
        loss_fn = nn.CrossEntropyLoss()
        for epoch in range(1, epochs + 1):
            started = time.perf_counter()
            with run.phase("train"):
                model.train()
                order = torch.randperm(len(y_train))
                for start in range(0, len(order), 32):
                    batch = order[start:start + 32]
                    optimiser.zero_grad()
                    loss = loss_fn(model(x_train[batch]), y_train[batch])
                    loss.backward()
                    optimiser.step()
            with run.phase("evaluate"), torch.no_grad():
                model.eval()
                accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
            print(f"epoch {epoch:2d}/{epochs}  loss {loss.item():.3f}  test accuracy "
                  f"{accuracy:.3f}  ({time.perf_counter() - started:.1f} s)", flush=True)

    result = run.result
    assert result is not None
    print()
    print(carbonmonitor.format_summary(result))
    samples = epochs * len(y_train)
    print(f"\nfinal test accuracy {accuracy:.3f}; {samples} training samples; "
          f"{per_1k_samples(result, samples)}")
    if run.store is not None:
        print(f"stored in {run.store.path}: `carbonmonitor show {result.identity.run_id}`, "
              "`carbonmonitor runs`")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result.to_dict(), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
