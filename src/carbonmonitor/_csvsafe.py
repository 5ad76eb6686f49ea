"""Text cells a spreadsheet would run as a formula, made inert (CSV, or formula, injection).

A run name, tag or project such as ``=HYPERLINK(...)`` or ``@SUM(...)`` is user text; opened in
Excel, LibreOffice or Google Sheets, a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is evaluated. As OWASP advises, such a cell gets a leading ``'``, which the
spreadsheet shows as text and does not display. Numbers (``-0.5``, ``+3e-2``) are left as they
are: a spreadsheet reads them as numbers, not formulas.
"""

from __future__ import annotations

from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text a spreadsheet would evaluate; anything
    else unchanged."""
    if not isinstance(value, str) or not value.startswith(TRIGGERS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def safe_row(values: list[Any]) -> list[Any]:
    """:func:`spreadsheet_safe` applied to every cell."""
    return [spreadsheet_safe(v) for v in values]
