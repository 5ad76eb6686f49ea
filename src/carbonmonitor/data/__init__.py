"""The reference tables shipped with carbonmonitor, read offline from the installed package.

Each CSV keeps its upstream source, commit, licence and attribution in ``MANIFEST.csv`` (see also
``LICENSES/`` and the top-level ``NOTICE``). Importing this module reads nothing; each table is
read once, on first use, and cached.

Example:
    >>> from carbonmonitor.data import read_table
    >>> read_table("cloud/pue.csv")[0]["provider"]
    'gcp'
"""

from __future__ import annotations

import csv
import io
import os
from functools import cache, lru_cache

from carbonmonitor.errors import DataError

__all__ = ["MANIFEST", "preliminary_years", "read_columns", "read_matching", "read_table",
           "table_versions"]

MANIFEST = "MANIFEST.csv"


@cache
def read_table(relpath: str) -> tuple[dict[str, str], ...]:
    """All rows of a shipped CSV table, values as strings exactly as in the file.

    Empty cells are ``""``; ``"NA"`` stays ``"NA"`` (Namibia's code, not a missing value).

    Args:
        relpath: path under ``carbonmonitor/data``, e.g. ``"grid/iso3166_countries.csv"``.

    Returns:
        One dict per data row, keyed by the header.

    Raises:
        DataError: the file is not in the installed package.
    """
    return tuple(csv.DictReader(io.StringIO(_text(relpath), newline="")))


@lru_cache(maxsize=16)
def read_columns(relpath: str, columns: tuple[str, ...]) -> tuple[dict[str, str], ...]:
    """Rows of a shipped CSV restricted to ``columns``: for large tables (the 1.1 MB OWID
    table) where holding every column of every row would cost tens of MB.

    Raises:
        DataError: the file is missing or lacks one of the columns.
    """
    reader = csv.reader(io.StringIO(_text(relpath), newline=""))
    header = next(reader)
    try:
        picks = [header.index(c) for c in columns]
    except ValueError as err:
        raise DataError(f"data table {relpath!r} lacks a column ({err}); reinstall "
                        "carbonmonitor and report this as a packaging bug") from err
    return tuple({c: row[i] for c, i in zip(columns, picks, strict=True)} for row in reader)


@lru_cache(maxsize=64)
def read_matching(relpath: str, columns: tuple[str, ...], column: str,
                  values: tuple[str, ...]) -> tuple[dict[str, str], ...]:
    """The rows of a shipped CSV whose ``column`` equals one of ``values``, restricted to
    ``columns`` (which must include ``column``). Lines that cannot hold a value are skipped
    before parsing: for one country of the 1.1 MB OWID table this takes ~3 ms, not ~30 ms.
    Only for tables without quoted fields (a quoted line break would break the line filter).

    Raises:
        DataError: the file is missing or lacks one of the columns.
    """
    header, _, body = _text(relpath).partition("\n")
    found: dict[int, str] = {}  # line start -> line, for lines where a value occurs
    for value in values:
        pos = body.find(value) if value else -1
        while pos != -1:
            start = body.rfind("\n", 0, pos) + 1
            end = body.find("\n", pos)
            end = len(body) if end == -1 else end
            found[start] = body[start:end].rstrip("\r")
            pos = body.find(value, end)
    reader = csv.reader([header, *(found[k] for k in sorted(found))])
    names = next(reader)
    try:
        picks = [names.index(c) for c in columns]
        key = names.index(column)
    except ValueError as err:
        raise DataError(f"data table {relpath!r} lacks a column ({err}); reinstall "
                        "carbonmonitor and report this as a packaging bug") from err
    return tuple({c: row[i] for c, i in zip(columns, picks, strict=True)} for row in reader
                 if len(row) > key and row[key] in values)


_HERE = os.path.dirname(os.path.abspath(__file__))


def _text(relpath: str) -> str:
    """A table's text: a plain file beside this module (a normal install), else through
    importlib.resources (a zipped package), whose import costs ~5 ms of start-up."""
    try:
        try:
            with open(os.path.join(_HERE, *relpath.split("/")), encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            if os.path.isdir(_HERE):
                raise
            from importlib import resources

            return resources.files(__name__).joinpath(*relpath.split("/")).read_text(
                encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
        raise DataError(
            f"data table {relpath!r} is missing from the installed carbonmonitor package; "
            "reinstall carbonmonitor (pip install --force-reinstall carbonmonitor) and report "
            "this as a packaging bug"
        ) from err


def table_versions() -> dict[str, str]:
    """Each shipped table's path and ``"source@commit_or_version"``, for run provenance.

    Example:
        >>> table_versions()["cloud/gcp_region_carbon_info_2019_2024.csv"][:38]
        'GoogleCloudPlatform/region-carbon-info'
    """
    rows = read_table(MANIFEST)
    return {r["path"]: f"{r['source']}@{r['source_commit_or_version']}" for r in rows}


def preliminary_years(relpath: str) -> frozenset[int]:
    """Years of a table that are first estimates and may be revised (from ``MANIFEST.csv``).

    Raises:
        DataError: ``relpath`` is not listed in the manifest.
    """
    for row in read_table(MANIFEST):
        if row["path"] == relpath:
            return frozenset(int(y) for y in row["preliminary_years"].replace(";", " ").split())
    raise DataError(f"data table {relpath!r} is not listed in carbonmonitor/data/{MANIFEST}")
