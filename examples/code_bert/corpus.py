"""A labelled corpus of real code: functions of the running interpreter's standard library.

Each example is one function or method (its source, dedented and truncated) labelled with the
standard-library package it comes from (``asyncio``, ``email``, ...). Files, not functions, are
split into train/validation/test, so no file lends functions to two splits: a model cannot score
by recognising a neighbour from the same file.

Labels are chosen by what the interpreter ships: the first packages of ``CANDIDATES`` that have
enough files and functions (``tkinter`` is missing from many Linux builds, ``distutils`` from
3.12 on), so the corpus exists on any CPython 3.10+ with its ``.py`` sources.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sysconfig
import textwrap
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Packages with many files and a flavour of their own, in order of preference.
CANDIDATES = (
    "asyncio", "email", "xml", "multiprocessing", "unittest", "tkinter", "importlib",
    "http", "urllib", "logging", "concurrent", "ctypes", "json",
)
# Test suites inside packages (3.10/3.11 ship some) are code about the package, not of it.
_TEST_DIRS = frozenset({"test", "tests", "idle_test"})
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Function:
    """One labelled example: a function or method of the standard library."""

    label: str
    path: str  # relative to the stdlib directory, with "/" separators
    name: str  # qualified: "Class.method" or "function"
    source: str


@dataclass(frozen=True)
class Corpus:
    """The labelled splits; no file appears in two of them."""

    stdlib: str
    labels: tuple[str, ...]
    train: tuple[Function, ...]
    validation: tuple[Function, ...]
    test: tuple[Function, ...]

    def split(self, name: str) -> tuple[Function, ...]:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def counts(self) -> dict[str, dict[str, int]]:
        """Functions per label in each split: ``{"train": {"asyncio": 120, ...}, ...}``."""
        return {name: {label: Counter(f.label for f in self.split(name))[label]
                       for label in self.labels} for name in SPLITS}

    def files(self, name: str) -> set[str]:
        return {f.path for f in self.split(name)}


def stdlib_dir() -> Path:
    """The running interpreter's standard library (where ``os.py`` lives)."""
    return Path(sysconfig.get_paths()["stdlib"])


def package_files(stdlib: Path, package: str) -> list[Path]:
    """The ``.py`` files of ``package`` under ``stdlib``, test suites left out, sorted."""
    root = stdlib / package
    if not root.is_dir():
        return []
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _TEST_DIRS and d != "__pycache__")
        found += [Path(folder) / f for f in files if f.endswith(".py")]
    return sorted(found)


def extract_functions(path: Path, *, label: str, stdlib: Path, max_chars: int,
                      min_lines: int = 3) -> list[Function]:
    """Module-level functions and methods of classes in ``path`` (nested functions stay in their
    parent's source). Functions shorter than ``min_lines`` are skipped: one-line accessors look
    the same in every package. A file that does not parse (a newer syntax) gives nothing."""
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return []
    lines = text.splitlines()
    rel = path.relative_to(stdlib).as_posix()
    found = []
    for node, qualname in _functions(tree.body, prefix=""):
        start = min([node.lineno] + [d.lineno for d in node.decorator_list])
        end = node.end_lineno or node.lineno
        if end - start + 1 < min_lines:
            continue
        source = textwrap.dedent("\n".join(lines[start - 1:end]))[:max_chars]
        found.append(Function(label=label, path=rel, name=qualname, source=source))
    return found


def _functions(body: Iterable[ast.stmt], *, prefix: str
               ) -> Iterable[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str]]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node, prefix + node.name
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node.body, prefix=f"{prefix}{node.name}.")


def _rank(seed: int, key: str) -> str:
    """A stable, seeded order (Python's ``hash()`` changes between runs)."""
    return hashlib.sha256(f"{seed}/{key}".encode()).hexdigest()


def choose_labels(stdlib: Path, *, n_labels: int, min_files: int, min_functions: int,
                  max_chars: int, candidates: Sequence[str] = CANDIDATES
                  ) -> dict[str, list[Function]]:
    """The first ``n_labels`` candidates with at least ``min_files`` files holding functions and
    ``min_functions`` functions, with their functions."""
    chosen: dict[str, list[Function]] = {}
    for package in candidates:
        if len(chosen) == n_labels:
            break
        functions = [f for path in package_files(stdlib, package)
                     for f in extract_functions(path, label=package, stdlib=stdlib,
                                                max_chars=max_chars)]
        if len({f.path for f in functions}) >= min_files and len(functions) >= min_functions:
            chosen[package] = functions
    if len(chosen) < n_labels:
        raise RuntimeError(
            f"the standard library at {stdlib} has only {len(chosen)} packages with enough code "
            f"({', '.join(chosen) or 'none'}); {n_labels} are needed: is it a full CPython "
            "install with its .py sources?")
    return chosen


def split_files(functions: Sequence[Function], *, seed: int,
                fractions: tuple[float, float] = (0.15, 0.15)) -> dict[str, list[Function]]:
    """Split one label's functions by file. Files are taken in seeded hash order of their path;
    each goes to the test split if that brings it nearer its share of the functions, else to
    validation on the same rule, else to training. Each split gets at least one file."""
    by_file: dict[str, list[Function]] = {}
    for f in functions:
        by_file.setdefault(f.path, []).append(f)
    order = sorted(by_file, key=lambda path: _rank(seed, path))
    targets = {"test": fractions[1] * len(functions), "validation": fractions[0] * len(functions)}
    splits: dict[str, list[Function]] = {name: [] for name in SPLITS}
    for i, path in enumerate(order):
        # An empty split takes a file only while enough files are left for the other splits
        # still empty.
        remaining, size = len(order) - i - 1, len(by_file[path])
        for name in ("test", "validation"):
            empty_after = sum(not splits[n] for n in SPLITS if n != name)
            nearer = len(splits[name]) + size / 2 < targets[name]
            if (nearer or not splits[name]) and remaining >= empty_after:
                splits[name] += by_file[path]
                break
        else:
            splits["train"] += by_file[path]
    return splits


def build_corpus(*, n_labels: int = 6, max_per_label: int = 500, max_per_file: int = 30,
                 max_chars: int = 1500, min_files: int = 5, min_functions: int = 150,
                 seed: int = 0, stdlib: Path | None = None,
                 candidates: Sequence[str] = CANDIDATES) -> Corpus:
    """The labelled corpus from ``stdlib`` (default: the running interpreter's).

    ``max_per_file`` keeps one huge file (``tkinter/__init__.py`` has hundreds of methods) from
    dominating its label; ``max_per_label`` keeps the labels balanced so the majority-class
    baseline stays near ``1 / n_labels``. Identical sources are kept once."""
    stdlib = stdlib_dir() if stdlib is None else stdlib
    chosen = choose_labels(stdlib, n_labels=n_labels, min_files=min_files,
                           min_functions=min_functions, max_chars=max_chars,
                           candidates=candidates)
    seen: set[str] = set()
    splits: dict[str, list[Function]] = {name: [] for name in SPLITS}
    for functions in chosen.values():
        unique = []
        for f in functions:
            if f.source not in seen:
                seen.add(f.source)
                unique.append(f)
        kept = _cap(unique, max_per_file=max_per_file, max_total=max_per_label, seed=seed)
        for name, part in split_files(kept, seed=seed).items():
            splits[name] += part
    return Corpus(stdlib=str(stdlib), labels=tuple(chosen),
                  train=tuple(splits["train"]), validation=tuple(splits["validation"]),
                  test=tuple(splits["test"]))


def _cap(functions: Sequence[Function], *, max_per_file: int, max_total: int,
         seed: int) -> list[Function]:
    """At most ``max_per_file`` functions of each file, then at most ``max_total`` in all, both
    picked in seeded hash order and returned in source order."""
    def rank(f: Function) -> str:
        return _rank(seed, f"{f.path}::{f.name}")

    per_file: dict[str, list[Function]] = {}
    for f in sorted(functions, key=rank):
        if len(per_file.setdefault(f.path, [])) < max_per_file:
            per_file[f.path].append(f)
    kept = sorted((f for group in per_file.values() for f in group), key=rank)[:max_total]
    position = {id(f): i for i, f in enumerate(functions)}
    return sorted(kept, key=lambda f: position[id(f)])
