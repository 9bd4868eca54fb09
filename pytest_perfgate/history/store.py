"""The history store: recorded runs and their measurements, in SQLite or PostgreSQL.

SQLite through the standard library's ``sqlite3`` is the default and needs nothing
installed; PostgreSQL through psycopg 3 (the ``pytest-perfgate[postgres]`` extra) serves a
team's shared history. Both speak the same small SQL, written once here: the two drivers
differ only in how a connection is made, how parameters are marked and how a writer takes
its turn (docs/explanation/history.md says why not an ORM).

Rules the store keeps:
- nothing is ever updated or deleted: a run is inserted once, with all its measurements,
  in one transaction, so a reader or a second writer sees all of it or none of it;
- the schema carries its version; older histories are migrated forward in order, and a
  history written by a newer pytest-perfgate is refused with both versions named;
- an imported results file is recorded once: its content hash is unique.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, final
from urllib.parse import urlsplit, urlunsplit

from .migrations import MIGRATIONS, SCHEMA_VERSION, Dialect
from .model import Point, RecordedMeasurement, RecordedRun, RunKind, Series

#: Where a project's history lives when nothing else is said: beside pyproject.toml.
DEFAULT_HISTORY = Path(".perfgate") / "history.sqlite"
#: How long an SQLite writer waits for another one before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 60_000
#: PostgreSQL advisory lock key taken while the schema is created or migrated (any constant
#: shared by every pytest-perfgate process; "perfgate" in ASCII).
_MIGRATION_LOCK = 0x7065726667617465


class HistoryError(Exception):
    """The history cannot be opened, read or written; the message names it."""


class AlreadyRecorded(HistoryError):
    """The results file was imported before (same content hash)."""

    def __init__(self, location: str, run_id: int) -> None:
        super().__init__(f"{location}: already recorded as run {run_id}")
        self.run_id = run_id


class _Cursor(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...
    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


@final
class History:
    """An open history. Use through ``open_history(...)`` as a context manager."""

    def __init__(
        self, location: str, dialect: Dialect, connection: Any, errors: type[Exception]
    ) -> None:
        self.location = location  #: the file or URL, password hidden: what messages name
        self._dialect = dialect
        self._connection = connection
        self._errors = errors  #: the driver's error class, reported as HistoryError

    # -- lifetime --------------------------------------------------------------------------
    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    @contextlib.contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[_Cursor]:
        """One transaction; a driver error becomes a HistoryError naming the history."""
        try:
            with self._driver_transaction(write) as cursor:
                yield cursor
        except self._errors as error:
            raise HistoryError(f"{self.location}: {type(error).__name__}: {error}") from error

    @contextlib.contextmanager
    def _driver_transaction(self, write: bool) -> Iterator[_Cursor]:
        """A writer waits its turn (SQLite: BEGIN IMMEDIATE takes the write lock at once,
        so two writers never deadlock upgrading read locks); a reader sees one snapshot."""
        if self._dialect is Dialect.SQLITE:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SQLiteCursor(cursor)
            except BaseException:
                self._connection.rollback()
                raise
            self._connection.commit()
        else:
            with self._connection.transaction(), self._connection.cursor() as cursor:
                if not write:  # every statement of a read sees the same runs
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield _PostgresCursor(cursor)

    def _sql(self, text: str) -> str:
        return text if self._dialect is Dialect.SQLITE else text.replace("?", "%s")

    # -- schema ----------------------------------------------------------------------------
    def migrate(self, *, target: int = SCHEMA_VERSION) -> int:
        """Create the schema, or bring an older one up to ``target``; the version reached.

        A history already at ``target`` is only read. Otherwise the migrations run in one
        transaction holding the write lock (and on PostgreSQL an advisory lock), so two
        processes opening a new history at once create it once."""
        with self._transaction() as cursor:
            version = self._checked_version(cursor)
        if version >= target:
            return version
        with self._transaction(write=True) as cursor:
            if self._dialect is Dialect.POSTGRES:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            version = self._checked_version(cursor)  # another process may have done it
            for migration in MIGRATIONS[version:target]:
                for statement in migration.statements(self._dialect):
                    cursor.execute(statement)
                cursor.execute(
                    self._sql("INSERT INTO perfgate_schema (version, applied_at) VALUES (?, ?)"),
                    (migration.version, _text_of(datetime.now(timezone.utc))),
                )
            return max(version, target)

    def _checked_version(self, cursor: _Cursor) -> int:
        version = self._version(cursor)
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.location}: history schema version {version} was written by a newer "
                f"pytest-perfgate; this one reads versions up to {SCHEMA_VERSION}: upgrade "
                "pytest-perfgate to use it"
            )
        return version

    def _version(self, cursor: _Cursor) -> int:
        if self._dialect is Dialect.SQLITE:
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                "AND name = 'perfgate_schema'"
            )
        else:
            cursor.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_name = 'perfgate_schema'"
            )
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute("SELECT max(version) FROM perfgate_schema")
        return int(cursor.fetchone()[0] or 0)

    def schema_version(self) -> int:
        with self._transaction() as cursor:
            return self._version(cursor)

    # -- writing ---------------------------------------------------------------------------
    def record(
        self,
        run: RecordedRun,
        measurements: Sequence[RecordedMeasurement],
        *,
        content_hash: str | None = None,
    ) -> int:
        """Insert one run and its measurements in one transaction; the run's id.

        ``content_hash`` (of an imported file) may be recorded once: a second time raises
        AlreadyRecorded naming the first run."""
        with self._transaction(write=True) as cursor:
            if content_hash is not None:
                cursor.execute(
                    self._sql("SELECT run_id FROM runs WHERE content_hash = ?"), (content_hash,)
                )
                row = cursor.fetchone()
                if row is not None:
                    raise AlreadyRecorded(self.location, int(row[0]))
            cursor.execute(
                self._sql(
                    "INSERT INTO runs (kind, started_at, commit_id, branch, machine_class, "
                    "wall_seconds, source, content_hash, recorded_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING run_id"
                ),
                (
                    run.kind.value,
                    _text_of(run.started_at),
                    run.commit,
                    run.branch,
                    run.machine_class,
                    run.wall_seconds,
                    run.source,
                    content_hash,
                    _text_of(datetime.now(timezone.utc)),
                ),
            )
            run_id = int(cursor.fetchone()[0])
            keys = self._key_ids(cursor, run.machine_class, measurements)
            cursor.executemany(
                self._sql(
                    "INSERT INTO measurements (run_id, key_id, value, ci_low, ci_high, samples, "
                    "verdict, ratio, budget) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                [_row_of(run_id, keys[_key_of(run.machine_class, m)], m) for m in measurements],
            )
        return run_id

    def _key_ids(
        self, cursor: _Cursor, machine_class: str, measurements: Sequence[RecordedMeasurement]
    ) -> dict[tuple[Any, ...], int]:
        """The series key id of each measurement, new keys added (a concurrent writer adding
        the same key is no conflict: the key is added once)."""
        known = self._keys_of(cursor, machine_class)
        missing = {_key_of(machine_class, m) for m in measurements} - known.keys()
        if not missing:
            return known
        # Only new keys are inserted: PostgreSQL spends an identity value on every insert
        # attempt, and key ids stay dense (series() indexes a list by them).
        cursor.executemany(
            self._sql(
                "INSERT INTO series_keys (machine_class, test_id, name, unit, statistic, "
                "lower_is_better) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            sorted(missing),  # one order for every writer: no deadlock between two
        )
        return self._keys_of(cursor, machine_class)

    def _keys_of(self, cursor: _Cursor, machine_class: str) -> dict[tuple[Any, ...], int]:
        cursor.execute(
            self._sql(f"SELECT key_id, {_KEY_COLUMNS} FROM series_keys WHERE machine_class = ?"),
            (machine_class,),
        )
        return {tuple(row[1:]): int(row[0]) for row in cursor.fetchall()}

    # -- reading ---------------------------------------------------------------------------
    def runs(self, since: datetime | None = None) -> list[RecordedRun]:
        """Recorded runs, oldest first."""
        with self._transaction() as cursor:
            return self._runs(cursor, since)

    def _runs(self, cursor: _Cursor, since: datetime | None) -> list[RecordedRun]:
        cursor.execute(
            self._sql(
                "SELECT run_id, kind, started_at, commit_id, branch, machine_class, "
                "wall_seconds, source FROM runs WHERE started_at >= ? "
                "ORDER BY started_at, run_id"
            ),
            (_since_text(since),),
        )
        return [_run_of(row) for row in cursor.fetchall()]

    def tallies(self) -> dict[int, tuple[int, int]]:
        """Per run id: how many measurements it recorded, and how many REGRESSED."""
        with self._transaction() as cursor:
            cursor.execute(
                "SELECT run_id, count(*), "
                "sum(CASE WHEN verdict = 'REGRESSED' THEN 1 ELSE 0 END) "
                "FROM measurements GROUP BY run_id"
            )
            return {int(run): (int(n), int(bad)) for run, n, bad in cursor.fetchall()}

    def measurements(self, run_id: int) -> list[RecordedMeasurement]:
        """The measurements of one run, by test id and name."""
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(
                    "SELECT k.test_id, k.name, k.unit, k.lower_is_better, k.statistic, m.value, "
                    "m.ci_low, m.ci_high, m.samples, m.verdict, m.ratio, m.budget "
                    "FROM measurements m JOIN series_keys k ON k.key_id = m.key_id "
                    "WHERE m.run_id = ? ORDER BY k.test_id, k.name"
                ),
                (run_id,),
            )
            return [_measurement_of(row) for row in cursor.fetchall()]

    def series(self, since: datetime | None = None) -> list[Series]:
        """One series per machine class, test id and measurement name (and unit and
        statistic: a series never mixes them), each oldest point first."""
        with self._transaction() as cursor:  # one snapshot: runs and rows agree
            runs = self._runs(cursor, since)
            if not runs:
                return []
            cursor.execute(f"SELECT key_id, {_KEY_COLUMNS} FROM series_keys")
            keys = {int(row[0]): row[1:] for row in cursor.fetchall()}
            # Runs in time order (the runs_by_start index), each run's rows by its key:
            # points arrive in the order the series hold them, with no sort.
            cursor.execute(
                self._sql(
                    "SELECT m.run_id, m.key_id, m.value, m.ci_low, m.ci_high, m.verdict, m.budget "
                    "FROM runs r JOIN measurements m ON m.run_id = r.run_id "
                    "WHERE r.started_at >= ? ORDER BY r.started_at, r.run_id"
                ),
                (_since_text(since),),
            )
            rows = cursor.fetchall()
        return _series_of(rows, runs, keys)


def _series_of(
    rows: Sequence[Any], runs: Sequence[RecordedRun], keys: dict[int, Sequence[Any]]
) -> list[Series]:
    """Rows, in run order, grouped into series."""
    placed = {run.run_id: (run.started_at, run.commit) for run in runs}
    # Lists indexed by key id, not a dict: this loop runs once per stored measurement.
    points: list[list[Point]] = [[] for _ in range(max(keys, default=0) + 1)]
    budgets: dict[int, float | None] = {}
    new_point = Point
    for run_id, key_id, value, low, high, verdict, budget in rows:
        at, commit = placed[run_id]
        points[key_id].append(new_point(at, commit, value, low, high, verdict, run_id))
        budgets[key_id] = budget  # the latest run's: a budget removed is no budget
    result = []
    for key_id in budgets:  # the keys with points, each once
        series_points = points[key_id]
        machine_class, test_id, name, unit, statistic, lower_is_better = keys[key_id]
        result.append(
            Series(
                test_id=test_id,
                name=name,
                unit=unit,
                lower_is_better=bool(lower_is_better),
                statistic=statistic,
                machine_class=machine_class,
                points=tuple(series_points),
                budget=budgets[key_id],
            )
        )
    result.sort(key=lambda s: (s.machine_class, s.test_id, s.name, s.unit, s.statistic))
    return result


#: What names a series, in series_keys' column order.
_KEY_COLUMNS = "machine_class, test_id, name, unit, statistic, lower_is_better"


def _key_of(machine_class: str, m: RecordedMeasurement) -> tuple[Any, ...]:
    return (machine_class, m.test_id, m.name, m.unit, m.statistic, int(m.lower_is_better))


def _row_of(run_id: int, key_id: int, m: RecordedMeasurement) -> tuple[Any, ...]:
    return (run_id, key_id, m.value, m.ci_low, m.ci_high, m.samples, m.verdict, m.ratio, m.budget)


def _measurement_of(row: Sequence[Any]) -> RecordedMeasurement:
    test_id, name, unit, lower, statistic, value, low, high, samples, verdict, ratio, budget = row
    return RecordedMeasurement(
        test_id, name, unit, bool(lower), statistic, value, low, high, samples, verdict, ratio,
        budget,
    )  # fmt: skip


def _run_of(row: Sequence[Any]) -> RecordedRun:
    run_id, kind, started_at, commit, branch, machine_class, wall_seconds, source = row
    return RecordedRun(
        kind=RunKind(kind),
        started_at=datetime.fromisoformat(started_at),
        commit=commit,
        branch=branch,
        machine_class=machine_class,
        wall_seconds=wall_seconds,
        source=source,
        run_id=int(run_id),
    )


def _since_text(since: datetime | None) -> str:
    return "" if since is None else _text_of(since)


def _text_of(moment: datetime) -> str:
    """A time as stored: UTC, ISO 8601 with microseconds, so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError(f"a recorded time must carry its time zone, got {moment.isoformat()}")
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


@final
@dataclass(frozen=True, slots=True)
class _SQLiteCursor:
    """sqlite3's cursor under the protocol the store writes against."""

    cursor: sqlite3.Cursor

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        return self.cursor.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> Any:
        return self.cursor.executemany(sql, parameters)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self.cursor.fetchall()


@final
@dataclass(frozen=True, slots=True)
class _PostgresCursor:
    """psycopg's cursor under the same protocol."""

    cursor: Any

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        return self.cursor.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> Any:
        if parameters:
            self.cursor.executemany(sql, parameters)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self.cursor.fetchall())


# -- opening -------------------------------------------------------------------------------


def open_history(where: str | Path, *, migrate: bool = True) -> History:
    """Open (and create or migrate, unless ``migrate`` is false) the history at ``where``:
    a path or ``sqlite:///path`` for SQLite, a ``postgresql://`` URL for PostgreSQL."""
    text = str(where)
    if isinstance(where, str) and text.startswith(("postgresql://", "postgres://")):
        history = _open_postgres(text)
    else:
        if isinstance(where, str) and text.startswith("sqlite:///"):
            text = text.removeprefix("sqlite:///")
        elif isinstance(where, str) and "://" in text:
            scheme = text.split("://", 1)[0]
            raise HistoryError(
                f"{text}: unknown history URL scheme {scheme!r} "
                "(use a path, sqlite:///PATH or postgresql://...)"
            )
        history = _open_sqlite(Path(text))
    if migrate:
        try:
            history.migrate()
        except BaseException:
            history.close()
            raise
    return history


def _open_sqlite(path: Path) -> History:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit at the driver: the store says BEGIN and COMMIT itself.
        connection = sqlite3.connect(
            path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _write_ahead_logging(connection)
        connection.execute("PRAGMA foreign_keys = ON")
    except (OSError, sqlite3.Error) as error:
        raise HistoryError(f"{path}: cannot open the history ({error})") from None
    return History(str(path), Dialect.SQLITE, connection, sqlite3.Error)


def _write_ahead_logging(connection: sqlite3.Connection) -> None:
    """WAL: readers never block the writer, and a crash mid-write leaves the last run whole.

    Switching a new file to WAL takes a lock that SQLite refuses at once, without its busy
    timeout, while another process is switching it too (two jobs opening a history that
    does not exist yet): retry for as long as the busy timeout would have waited."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.2)


def _open_postgres(url: str) -> History:
    location = redacted(url)
    try:
        import psycopg
    except ImportError:
        raise HistoryError(
            f"{location}: a PostgreSQL history needs psycopg 3: "
            "pip install 'pytest-perfgate[postgres]'"
        ) from None
    try:
        # Autocommit: each transaction() block is then a real BEGIN ... COMMIT.
        connection = psycopg.connect(
            url.replace("postgres://", "postgresql://", 1), autocommit=True
        )
    except psycopg.Error as error:
        raise HistoryError(f"{location}: cannot connect ({error})") from None
    return History(location, Dialect.POSTGRES, connection, psycopg.Error)


def redacted(url: str) -> str:
    """A database URL with its password replaced by ``***``: what messages show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


__all__: Sequence[str] = (
    "DEFAULT_HISTORY",
    "AlreadyRecorded",
    "History",
    "HistoryError",
    "open_history",
    "redacted",
)
