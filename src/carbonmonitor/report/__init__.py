"""Reports on a stored run: a self-contained HTML page (figures inline, nothing loaded from
elsewhere), the same content in Markdown, and a citable paragraph for papers. See
docs/reports.md; ``carbonmonitor report RUN`` on the command line.

Example:
    >>> import tempfile, carbonmonitor
    >>> from carbonmonitor.report import citation, render_html, render_markdown
    >>> db = tempfile.mkdtemp() + "/runs.db"
    >>> with carbonmonitor.track(backend="fake", db=db, quiet=True, country="DE") as run:
    ...     pass
    >>> page = render_html(run.result)
    >>> citation(run.result) in render_markdown(run.result).replace("\\\\", "")
    True
"""

from __future__ import annotations

from carbonmonitor.report.citation import citation
from carbonmonitor.report.html import render_html
from carbonmonitor.report.markdown import render_markdown

__all__ = ["citation", "render_html", "render_markdown"]
