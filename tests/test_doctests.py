"""The runnable examples in the public docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import carbonmonitor

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(carbonmonitor.__path__, "carbonmonitor.")
    if not name.endswith("__main__"))


@pytest.mark.parametrize("name", ["carbonmonitor", *MODULES])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_entry_points_have_examples() -> None:
    finder = doctest.DocTestFinder()
    for obj in (carbonmonitor.track, carbonmonitor.Tracker, carbonmonitor.FakeBackend,
                carbonmonitor.format_summary, carbonmonitor.ManualClock):
        assert any(t.examples for t in finder.find(obj)), obj
