"""The run store: every run, its phases and its energy time series, in one SQLite file.

Where: the ``db`` option (``CARBONMONITOR_DB``, ``--db``, config files); by default
``runs.db`` in the user data directory (``~/.local/share/carbonmonitor`` on Linux, honouring
``XDG_DATA_HOME``; ``~/Library/Application Support/carbonmonitor`` on macOS;
``%LOCALAPPDATA%\\carbonmonitor`` on Windows). ``db="off"`` keeps runs in memory only.

How writes happen: a tracker writes its run row when it starts, then every ``flush_interval``
the samples taken since the last write, its phases and a provisional result (a heartbeat), and
the final result at stop, each in one transaction. A process killed without warning loses at
most one flush interval. The tracker keeps its connection open between writes (reopening would
cost far more than the write); a forked child never uses or closes an inherited connection.

Run status: a row without an end record is ``running`` while its owner process (host, pid and
process start time, so a reused pid is not mistaken for the owner) lives, ``interrupted``
once it is gone; for an owner on another host, whose processes cannot be seen, a heartbeat
older than three flush intervals (at least a minute) means gone. Status is decided when the
store is read; reading never writes.

Schema: ``PRAGMA user_version`` holds the schema version and ``PRAGMA application_id`` marks
the file as ours. Opening a database written by an older carbonmonitor upgrades it in one
transaction (:data:`MIGRATIONS`); one written by a newer carbonmonitor is refused with the fix.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonmonitor.errors import ConfigError, StoreError, did_you_mean
from carbonmonitor.facts import Flag

if TYPE_CHECKING:
    from carbonmonitor.records import RunResult

    _Runs = list[RunResult]
else:  # the result records are imported when runs are read, not when a tracker opens a store
    _Runs = list

APPLICATION_ID = 0x434D4D4C  # "CMML"
BUSY_TIMEOUT_MS = 5000
STATUSES = ("running", "completed", "failed", "interrupted")
OFF = "off"


# -- schema --------------------------------------------------------------------------------

# Version 1: the first released schema. Kept verbatim: migrations start from it, and the test
# fixture tests/store/fixtures/runs-v1.db was written by it.
SCHEMA_V1 = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    started_unix REAL NOT NULL,
    updated_unix REAL NOT NULL,
    duration_s REAL NOT NULL,
    energy_j REAL NOT NULL,
    co2e_g REAL NOT NULL,
    owner_host TEXT NOT NULL,
    owner_pid INTEGER NOT NULL,
    owner_start TEXT,
    flush_interval_s REAL NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX runs_by_project ON runs (project, started_unix);
CREATE TABLE phases (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    energy_j REAL NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE samples (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    t_s REAL NOT NULL,
    domain TEXT NOT NULL,
    energy_j REAL NOT NULL,
    PRIMARY KEY (run_id, seq, domain)
);
"""

# Version 2: tags in their own table (filtering by tag without reading every result) and phase
# spans (when each phase was open: the timeline reports draw).
SCHEMA_V2 = """
CREATE TABLE tags (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE INDEX tags_by_tag ON tags (tag);
CREATE TABLE spans (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    phase TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


def _script(db: sqlite3.Connection, script: str) -> None:
    """Run DDL statements one by one: ``executescript`` would commit the open transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    _script(db, SCHEMA_V1)


def _v2(db: sqlite3.Connection) -> None:
    _script(db, SCHEMA_V2)
    for run_id, result in db.execute("SELECT run_id, result FROM runs").fetchall():
        tags = json.loads(result).get("identity", {}).get("tags", [])
        db.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)",
                       [(run_id, str(tag)) for tag in tags])


# Version 3: utilisation (%) beside the energy of each sample; NULL where none was reported.
SCHEMA_V3 = "ALTER TABLE samples ADD COLUMN utilisation_pct REAL"


def _v3(db: sqlite3.Connection) -> None:
    _script(db, SCHEMA_V3)


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3)
"""``MIGRATIONS[n]`` takes a database from schema version n to n + 1."""
SCHEMA_VERSION = len(MIGRATIONS)


# -- where the store lives -----------------------------------------------------------------


def default_path() -> Path:
    """``runs.db`` in the user data directory of this platform."""
    import platformdirs

    return Path(platformdirs.user_data_dir("carbonmonitor", appauthor=False)) / "runs.db"


def store_path(db: Path | str | None) -> Path | None:
    """The store file for a resolved ``db`` option: None when it is ``"off"``."""
    if db is None:
        return default_path()
    if str(db) == OFF:
        return None
    return Path(db)


# -- the owner of a run --------------------------------------------------------------------


def process_start(pid: int) -> str | None:
    """A token that changes when ``pid`` is reused: boot id and start time in clock ticks on
    Linux, the creation time elsewhere. None when the process does not exist or cannot be read.
    """
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            return None
        return f"{boot}:{fields[19]}"  # field 22 of stat(5): starttime
    try:
        import psutil

        return f"ct:{psutil.Process(pid).create_time():.3f}"
    except Exception:  # no such process, access denied, or no psutil on this platform
        return None


def owner_alive(host: str, pid: int, start: str | None, updated_unix: float,
                flush_interval_s: float, now: float | None = None) -> bool:
    """Whether the process that owns a run still lives (see the module docstring)."""
    import socket

    if host == socket.gethostname() and start is not None:
        return process_start(pid) == start
    stale_after = max(3 * flush_interval_s, 60.0)
    return (time.time() if now is None else now) - updated_unix < stale_after


# -- writing -------------------------------------------------------------------------------


@dataclass
class Batch:
    """One write: the run row (from a provisional or final result) and what is new since the
    last successful write."""

    result: RunResult
    updated_unix: float
    flush_interval_s: float
    owner_start: str | None
    samples: list[tuple[int, float, str, float, float | None]] = field(default_factory=list)
    spans: list[tuple[int, str, float, float]] = field(default_factory=list)
    upto: int = 0  # samples before this index are in the store once the write succeeds
    memo: dict[Any, Any] | None = None  # see RunResult.to_dict


_RUN_COLUMNS = ("run_id", "project", "name", "status", "started_at", "started_unix",
                "updated_unix", "duration_s", "energy_j", "co2e_g", "owner_host", "owner_pid",
                "owner_start", "flush_interval_s", "result")
_UPDATE_RUN = ", ".join(f"{c} = excluded.{c}" for c in _RUN_COLUMNS[1:])


class Store:
    """One SQLite file. Cheap to construct; each operation opens its own connection.

    Example:
        >>> import tempfile, carbonmonitor
        >>> path = tempfile.mkdtemp() + "/runs.db"
        >>> with carbonmonitor.track(backend="fake", db=path, quiet=True) as run:
        ...     pass
        >>> Store(path).load(run.result.identity.run_id).status
        'completed'
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._ready = False
        self._lock = threading.Lock()
        self._kept: sqlite3.Connection | None = None  # the writer's connection, see write()
        self._kept_pid = 0

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _open(self, create: bool) -> sqlite3.Connection:
        if not create and not self.path.exists():
            raise StoreError(f"no run store at {self.path}: no run has been recorded there yet; "
                             "run something with carbonmonitor, or name an existing store "
                             "(the db argument in Python, --db on the command line, or "
                             "CARBONMONITOR_DB)")
        if create:
            if not self.path.exists():
                self._ready = False  # new, or deleted since: create the schema (again)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                 isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open the run store {self.path} ({err}); check that the "
                             "directory exists and is writable, or set db= to another "
                             "file") from err
        try:
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = NORMAL")
            if not self._ready:
                self._prepare(db)
                self._ready = True
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def connect(self, *, create: bool = False, keep: bool = False
                ) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode (transactions are explicit), schema up to date.

        ``keep``: reuse one connection across calls (a tracker's periodic writes: opening and
        closing costs ~30x the write itself). It belongs to the process that opened it; a
        forked child leaves it alone (never uses or closes it) and opens its own.
        """
        try:
            if keep:
                with self._lock:
                    if self._kept is not None and self._kept_pid != os.getpid():
                        _INHERITED.append(self._kept)  # the parent's: never touched here
                        self._kept = None
                    if self._kept is None:
                        self._kept, self._kept_pid = self._open(create), os.getpid()
                        _KEEPING.add(self)
                    yield self._kept
                return
            db = self._open(create)
            try:
                yield db
            finally:
                db.close()
        except sqlite3.DatabaseError as err:
            if keep:
                self.close()  # a broken connection is not kept
            raise StoreError(f"the run store {self.path} cannot be used ({err}); if it is not "
                             "a carbonmonitor database, set db= to another file") from err

    def close(self) -> None:
        """Close the kept connection (in the process that opened it)."""
        with self._lock:
            kept, self._kept = self._kept, None
        if kept is not None and self._kept_pid == os.getpid():
            kept.close()

    def _forget_inherited(self) -> None:
        if self._kept is not None:
            _INHERITED.append(self._kept)
            self._kept = None
        self._lock = threading.Lock()  # may have been held by a thread of the parent

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Check the file is ours and migrate it to :data:`SCHEMA_VERSION`."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the run store {self.path} has schema version {version}, written by a newer "
                f"carbonmonitor (this one reads up to {SCHEMA_VERSION}); upgrade carbonmonitor "
                "(pip install -U carbonmonitor) or set db= to another file")
        if version == 0:
            try:  # readers never block the writing tracker; set before any transaction
                db.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                pass  # another connection is creating the store at this moment and sets it
        db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            app = db.execute("PRAGMA application_id").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app != APPLICATION_ID and (app != 0 or tables):
                raise StoreError(f"{self.path} is a SQLite database of another application, "
                                 "not a carbonmonitor run store; set db= to another file")
            for migrate in MIGRATIONS[version:]:
                migrate(db)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def write(self, batch: Batch) -> None:
        """Upsert the run row, its tags and phases; add new samples and spans. One transaction;
        repeating a write is harmless."""
        r, ident = batch.result, batch.result.identity
        started = datetime.fromisoformat(ident.started_at).timestamp()
        with self.connect(create=True, keep=True) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                # An upsert, not INSERT OR REPLACE: a replaced row would cascade-delete the
                # run's samples, phases and spans.
                db.execute(
                    f"INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                    f"ON CONFLICT (run_id) DO UPDATE SET {_UPDATE_RUN}",
                    (ident.run_id, ident.project, ident.name, r.status, ident.started_at,
                     started, batch.updated_unix, r.duration_s, r.energy_j, r.co2e_g, ident.host,
                     ident.pid, batch.owner_start, batch.flush_interval_s,
                     r.to_json(batch.memo)))
                db.executemany("INSERT OR IGNORE INTO tags VALUES (?, ?)",
                               [(ident.run_id, tag) for tag in ident.tags])
                db.executemany("INSERT OR REPLACE INTO phases VALUES (?,?,?,?,?)",
                               [(ident.run_id, p.name, p.count, p.duration_s, p.energy_j)
                                for p in r.phases])
                db.executemany("INSERT OR REPLACE INTO samples VALUES (?,?,?,?,?,?)",
                               [(ident.run_id, *s) for s in batch.samples])
                db.executemany("INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?)",
                               [(ident.run_id, *s) for s in batch.spans])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # -- reading ---------------------------------------------------------------------------

    def runs(self, *, project: str | None = None, tags: Iterable[str] = (),
             since: datetime | str | None = None, status: str | None = None,
             name: str | None = None, limit: int | None = None) -> RunList:
        """Runs, newest first, that match every filter given (all ``tags``, start at or after
        ``since``; ``status`` as shown, so ``"interrupted"`` includes dead owners)."""
        if status is not None and status not in STATUSES:
            raise ConfigError(f"status must be one of {', '.join(STATUSES)}; got {status!r}."
                              + did_you_mean(status, STATUSES))
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            raise ConfigError(f"limit must be a positive whole number; got {limit!r}")
        where: list[str] = ["1"]
        args: list[str | float] = []
        if project is not None:
            where.append("project = ?")
            args.append(project)
        if name is not None:
            where.append("name = ?")
            args.append(name)
        for tag in _tag_list(tags):
            where.append("run_id IN (SELECT run_id FROM tags WHERE tag = ?)")
            args.append(tag)
        if since is not None:
            where.append("started_unix >= ?")
            args.append(parse_since(since).timestamp())
        if status == "running":  # the stored status, narrowed below by whether its owner lives
            where.append("status = 'running'")
        elif status == "interrupted":
            where.append("status IN ('running', 'interrupted')")
        elif status is not None:
            where.append("status = ?")
            args.append(status)
        query = f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY started_unix DESC"
        out = RunList()
        with self.connect() as db:
            db.row_factory = sqlite3.Row
            for row in db.execute(query, args):
                result = _shown(row)
                if status is None or result.status == status:
                    out.append(result)
                    if limit is not None and len(out) >= limit:
                        break
        return out

    def load(self, run_id: str) -> RunResult:
        """The run ``run_id``, a unique prefix of it, its short id (the last 8 characters, as
        tables and figures show it, or a unique start of them), or ``"last"`` (the newest)."""
        if not run_id.strip():
            raise StoreError("the run id is empty: give a run id, a unique start of one, the "
                             "short id tables show, or 'last'")
        with self.connect() as db:
            db.row_factory = sqlite3.Row
            rows = _find(db, run_id)
        if len(rows) == 1:
            return _shown(rows[0])
        if not rows:
            raise StoreError(f"no run {run_id!r} in {self.path}; `carbonmonitor runs` lists "
                             "the run ids there are")
        ids = ", ".join(r["run_id"] for r in rows[:5])
        raise StoreError(f"run id {run_id!r} is ambiguous in {self.path}: it starts {ids}"
                         f"{' ...' if len(rows) > 5 else ''}; give more characters")

    def project_totals(self) -> list[tuple[str, int, float, float]]:
        """``(project, runs, energy J, CO2e g)`` of every project, by name, summed in SQL (no
        result is parsed). CO2e is summed as stored, whatever each run's basis."""
        with self.connect() as db:
            return [(p, int(n), float(e), float(c)) for p, n, e, c in db.execute(
                "SELECT project, COUNT(*), SUM(energy_j), SUM(co2e_g) FROM runs "
                "GROUP BY project ORDER BY project")]

    def latest_power_w(self, run_id: str) -> float | None:
        """The run's power between its last two stored samples, all domains together (None
        with fewer than two samples, or no such run): reads two samples, not the series."""
        with self.connect() as db:
            rows = db.execute(
                "SELECT seq, t_s, domain, energy_j FROM samples WHERE run_id = ? AND seq >= "
                "(SELECT MAX(seq) FROM samples WHERE run_id = ?) - 1", (run_id, run_id)
            ).fetchall()
        seqs = sorted({r[0] for r in rows})
        if len(seqs) < 2:
            return None
        first, last = seqs
        t = {seq: t_s for seq, t_s, _, _ in rows}
        if t[last] <= t[first]:
            return 0.0
        energy = {(seq, domain): e for seq, _, domain, e in rows}
        domains = {d for seq, d in energy if seq == last and (first, d) in energy}
        drawn = sum(float(energy[last, d]) - float(energy[first, d]) for d in domains)
        return drawn / (float(t[last]) - float(t[first]))

    def series(self, run_id: str) -> Series:
        """The run's time series: sample times and cumulative energy per domain."""
        resolved = self.load(run_id).identity.run_id
        with self.connect() as db:
            rows = db.execute("SELECT seq, t_s, domain, energy_j, utilisation_pct FROM samples "
                              "WHERE run_id = ? ORDER BY seq", (resolved,)).fetchall()
            spans = db.execute("SELECT phase, start_s, end_s FROM spans WHERE run_id = ? "
                               "ORDER BY seq", (resolved,)).fetchall()
        times: dict[int, float] = {}
        energy: dict[str, dict[int, float]] = {}
        busy: dict[str, dict[int, float]] = {}
        for seq, t_s, domain, energy_j, utilisation_pct in rows:
            times[seq] = t_s
            energy.setdefault(domain, {})[seq] = energy_j
            if utilisation_pct is not None:
                busy.setdefault(domain, {})[seq] = utilisation_pct
        seqs = sorted(times)
        nan = float("nan")
        return Series(resolved, [times[s] for s in seqs],
                      {d: [v.get(s, nan) for s in seqs] for d, v in energy.items()},
                      [(p, a, b) for p, a, b in spans],
                      {d: [v.get(s, nan) for s in seqs] for d, v in busy.items()})

    def delete(self, run_ids: Sequence[str]) -> int:
        """Delete runs by exact id; returns how many were deleted."""
        with self.connect() as db:
            db.execute("BEGIN IMMEDIATE")
            count = 0
            for run_id in run_ids:
                count += db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount
            db.execute("COMMIT")
        return count


# Stores with a kept connection, and connections inherited from a parent process: a forked
# child must neither use nor close those (closing could disturb the parent's WAL), so they are
# parked here for the child's lifetime.
_KEEPING: weakref.WeakSet[Store] = weakref.WeakSet()
_INHERITED: list[sqlite3.Connection] = []


def _after_fork_in_child() -> None:
    for store in list(_KEEPING):
        store._forget_inherited()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _find(db: sqlite3.Connection, run_id: str) -> list[sqlite3.Row]:
    if run_id in ("last", "latest"):
        return db.execute("SELECT * FROM runs ORDER BY started_unix DESC LIMIT 1").fetchall()
    exact = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchall()
    if exact:
        return exact
    escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = db.execute("SELECT * FROM runs WHERE run_id LIKE ? ESCAPE '\\' "
                      "ORDER BY started_unix DESC LIMIT 6", (escaped + "%",)).fetchall()
    if rows or "-" in run_id:
        return rows
    # the short id that tables and figures show: the id's random last part ("resnet (3f2a9c1e)")
    return db.execute("SELECT * FROM runs WHERE substr(run_id, -8) LIKE ? ESCAPE '\\' "
                      "ORDER BY started_unix DESC LIMIT 6", (escaped + "%",)).fetchall()


def _shown(row: sqlite3.Row) -> RunResult:
    from carbonmonitor.records import RunResult

    """The stored result with its status as of now: a running run whose owner is gone is
    interrupted, with a flag saying how much of it was kept."""
    result = RunResult.from_dict(json.loads(row["result"]))
    if row["status"] != "running" or owner_alive(
            row["owner_host"], row["owner_pid"], row["owner_start"], row["updated_unix"],
            row["flush_interval_s"]):
        return result
    last = datetime.fromtimestamp(row["updated_unix"], tz=timezone.utc)
    flag = Flag("run-interrupted",
                f"the process that ran it (pid {row['owner_pid']} on {row['owner_host']}) ended "
                f"without a final record; the figures cover the run up to its last write at "
                f"{last.isoformat(timespec='seconds')} ({result.duration_s:.1f} s), so up to one "
                f"flush interval ({row['flush_interval_s']:g} s) is missing",
                "a lower flush_interval loses less when a process is killed")
    return replace(result, status="interrupted", ended_at=last.isoformat(timespec="milliseconds"),
                   flags=(*result.flags, flag))


def _tag_list(tags: Iterable[str] | str) -> list[str]:
    if isinstance(tags, str):
        return [t.strip() for t in tags.split(",") if t.strip()]
    return [str(t) for t in tags]


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(since: datetime | str) -> datetime:
    """A datetime, an ISO date or time (``2026-11-01``, ``2026-11-01T12:00``; UTC unless it
    says otherwise), or an age such as ``90m``, ``12h``, ``7d``, ``2w``."""
    if isinstance(since, datetime):
        return since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    text = str(since).strip()
    if text[:-1].replace(".", "", 1).isdigit() and text[-1:] in _UNITS:
        return datetime.now(timezone.utc) - timedelta(seconds=float(text[:-1]) * _UNITS[text[-1]])
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"since must be a date or time such as 2026-11-01 or "
                          f"2026-11-01T12:00, or an age such as 12h or 7d; got {since!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# -- query results -------------------------------------------------------------------------


class RunList(_Runs):
    """Runs returned by :func:`runs`: a list of :class:`RunResult`, plus ``to_pandas()``."""

    def to_pandas(self) -> Any:
        """One row per run: identity, status, energy per device and total (kWh) with bounds,
        CO2e (g) with bounds, intensity and PUE with their sources. Needs pandas."""
        pandas = _pandas()
        return pandas.DataFrame([run_row(r) for r in self])


@dataclass(frozen=True)
class Series:
    """A run's samples: times (s since start), cumulative energy (J) per domain, phase spans,
    and utilisation (%) per domain where a backend reports it (NaN at points without one)."""

    run_id: str
    t_s: list[float]
    energy_j: dict[str, list[float]]
    spans: list[tuple[str, float, float]]
    utilisation_pct: dict[str, list[float]] = field(default_factory=dict)

    def power_w(self) -> dict[str, list[float]]:
        """Mean power per domain between consecutive samples (one value fewer than samples)."""
        out = {}
        for domain, energy in self.energy_j.items():
            out[domain] = [(energy[i + 1] - energy[i]) / (self.t_s[i + 1] - self.t_s[i])
                           if self.t_s[i + 1] > self.t_s[i] else 0.0
                           for i in range(len(self.t_s) - 1)]
        return out

    def to_pandas(self) -> Any:
        """A frame indexed by ``t_s`` with one cumulative-energy column per domain (J)."""
        pandas = _pandas()
        return pandas.DataFrame(self.energy_j, index=pandas.Index(self.t_s, name="t_s"))


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("to_pandas() needs pandas: pip install 'carbonmonitor[pandas]' "
                          "(or pip install pandas)") from None
    return pandas


def run_row(r: RunResult) -> dict[str, Any]:
    """A flat record of one run for tables and data frames (energy in kWh, CO2e in g)."""
    ident, unc = r.identity, r.energy_uncertainty
    row: dict[str, Any] = {
        "run_id": ident.run_id, "project": ident.project, "name": ident.name,
        "status": r.status, "started_at": ident.started_at, "ended_at": r.ended_at,
        "duration_s": r.duration_s, "energy_kwh": r.energy_kwh,
        "energy_low_kwh": unc.low / 3.6e6, "energy_high_kwh": unc.high / 3.6e6,
        "co2e_g": r.co2e_g, "co2e_low_g": r.emissions.uncertainty.low,
        "co2e_high_g": r.emissions.uncertainty.high, "mean_power_w": r.mean_power_w,
    }
    for device in ("cpu", "gpu", "memory", "machine", "ane"):
        row[f"{device}_energy_kwh"] = sum(f.energy_kwh for f in r.energy if f.device == device)
    idle = [f for f in r.energy if f.idle_j is not None]
    row.update({
        "attributed_kwh": r.attributed_j / 3.6e6, "attributed_co2e_g": r.attributed_co2e_g,
        "attribution": r.attribution.policy if r.attribution else None,
        "idle_kwh": sum(f.idle_j or 0.0 for f in idle) / 3.6e6 if idle else None,
        "methods": ",".join(sorted({f.method for f in r.energy})),
        "tags": ",".join(ident.tags), "location": r.location.describe(),
        "intensity_g_per_kwh": r.intensity.g_per_kwh, "intensity_zone": r.intensity.zone,
        "intensity_year": r.intensity.year, "intensity_basis": r.intensity.basis,
        "intensity_source": r.intensity.source, "pue": r.pue.value, "pue_source": r.pue.source,
        "host": ident.host, "git_commit": ident.git.commit if ident.git else None,
        "flags": ",".join(f.code for f in r.flags),
    })
    return row


# -- module-level query API ----------------------------------------------------------------


def open_store(db: Path | str | None = None, *, config_dir: Path | str | None = None) -> Store:
    """The store named by ``db``, else by ``CARBONMONITOR_DB``, the config files, the default."""
    from carbonmonitor.config import find_config_files
    from carbonmonitor.options import resolve

    files = find_config_files(Path(config_dir) if config_dir is not None else None)
    path = store_path(resolve({"db": db}, files=files).db)
    if path is None:
        raise ConfigError("db is 'off': runs are not stored, so there is nothing to read; "
                          "set db= (or CARBONMONITOR_DB) to a store file")
    return Store(path)


def runs(*, project: str | None = None, tags: Iterable[str] | str = (),
         since: datetime | str | None = None, status: str | None = None,
         name: str | None = None, limit: int | None = None,
         db: Path | str | None = None) -> RunList:
    """Stored runs, newest first, as the :class:`RunResult` records ``stop()`` returned.

    Args:
        project, name: exact matches. tags: runs having every tag (list or "a,b").
        since: a datetime, ISO date/time, or an age such as ``"12h"`` or ``"7d"``.
        status: ``running``, ``completed``, ``failed`` or ``interrupted``.
        db: the store file (default: as the tracker chooses it).

    Example:
        >>> import tempfile, carbonmonitor
        >>> path = tempfile.mkdtemp() + "/runs.db"
        >>> for lr in (0.1, 0.01):
        ...     with carbonmonitor.track(backend="fake", db=path, params={"lr": lr}, quiet=True):
        ...         pass
        >>> [r.identity.params["lr"] for r in carbonmonitor.runs(db=path)]
        [0.01, 0.1]
    """
    return open_store(db).runs(project=project, tags=tags, since=since, status=status,
                               name=name, limit=limit)


def load(run_id: str, *, db: Path | str | None = None) -> RunResult:
    """One stored run by id, unique id prefix, or ``"last"``."""
    return open_store(db).load(run_id)


def series(run_id: str, *, db: Path | str | None = None) -> Series:
    """A stored run's energy time series and phase spans."""
    return open_store(db).series(run_id)


__all__ = ["Batch", "RunList", "Series", "Store", "StoreError", "load", "open_store", "runs",
           "series"]
