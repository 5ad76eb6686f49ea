"""What a program that configured no logging sees: the run's one-line result (and forecasts)
on stderr, unless quiet=True or the program set up logging itself. Each case runs in a fresh
interpreter, because logging configuration is process-wide."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import logging, sys
{setup}
import carbonmonitor
with carbonmonitor.track(backend="fake", db="off", country="DE", quiet={quiet},
                         interval=0.05) as run:
    run.begin_progress("fit", total=4)
    for i in range(1, 5):
        run.progress(i)
print("end", file=sys.stderr)
"""


def run_script(setup: str = "", quiet: bool = False) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(setup=setup, quiet=quiet)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_without_logging_setup_the_result_and_forecast_are_shown() -> None:
    err = run_script()
    assert "carbonmonitor: fit: after 2 of 4 epochs, predicted total:" in err
    assert "CO2e (336.38 g/kWh DEU" in err
    assert err.rstrip().endswith("end")


@pytest.mark.parametrize("setup, quiet", [
    ("", True),
    ("logging.basicConfig(level=logging.WARNING)", False),
])
def test_quiet_or_the_programs_own_logging_setup_keeps_control(setup: str, quiet: bool) -> None:
    assert "carbonmonitor:" not in run_script(setup, quiet)
