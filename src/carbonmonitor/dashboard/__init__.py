"""``carbonmonitor dashboard``: a local web page over the run store (docs/dashboard.md).

Runs and projects, a run's report (figures, tables, advice), comparisons, and the power of
running runs, updated every 2 s without reload from ``/api/live``. Standard library only;
bound to 127.0.0.1 by default; pages load nothing from elsewhere and every stored string is
escaped.

Example:
    >>> import tempfile, json, urllib.request, carbonmonitor
    >>> from carbonmonitor.dashboard import serve
    >>> db = tempfile.mkdtemp() + "/runs.db"
    >>> with carbonmonitor.track(backend="fake", db=db, quiet=True):
    ...     pass
    >>> with serve(db) as server:
    ...     data = json.load(urllib.request.urlopen(server.url + "api/runs"))
    >>> len(data["runs"])
    1
"""

from __future__ import annotations

from carbonmonitor.dashboard.server import Dashboard, live_runs, serve

__all__ = ["Dashboard", "live_runs", "serve"]
