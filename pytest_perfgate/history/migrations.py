"""The history's schema, as an ordered list of migrations.

A history records in ``perfgate_schema`` every migration applied to it; its version is the
highest. Opening an older history applies the missing migrations in order, in one
transaction; a newer one is refused (store.py). A migration only ever adds (tables,
columns, indexes): nothing recorded is dropped or rewritten.

Schema history (append a migration, never edit one that has shipped):
2 - measurements.budget: the absolute budget declared for a measurement, in its unit
1 - first version: runs, series keys, measurements, the indexes series() and import need
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import final


class Dialect(enum.Enum):
    """The SQL a history speaks: where the two databases differ, the store asks this."""

    SQLITE = "sqlite"
    POSTGRES = "postgresql"


def _id_column(dialect: Dialect, name: str) -> str:
    if dialect is Dialect.SQLITE:
        return f"{name} INTEGER PRIMARY KEY AUTOINCREMENT"  # ids never reused
    return f"{name} BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"


def _real(dialect: Dialect) -> str:
    return "REAL" if dialect is Dialect.SQLITE else "DOUBLE PRECISION"


def _first_version(dialect: Dialect) -> list[str]:
    real = _real(dialect)
    return [
        "CREATE TABLE perfgate_schema (version INTEGER NOT NULL PRIMARY KEY, "
        "applied_at TEXT NOT NULL)",
        # Times are ISO 8601 text in UTC with microseconds: text order is time order, and
        # both databases store and compare them alike.
        f"CREATE TABLE runs ({_id_column(dialect, 'run_id')}, kind TEXT NOT NULL, "
        "started_at TEXT NOT NULL, commit_id TEXT, branch TEXT, machine_class TEXT NOT NULL, "
        f"wall_seconds {real}, source TEXT NOT NULL, content_hash TEXT UNIQUE, "
        "recorded_at TEXT NOT NULL)",
        "CREATE INDEX runs_by_start ON runs (started_at, run_id)",
        # One row per series (what stays the same run after run), so that a measurement's
        # row is numbers and a key: a history of a million measurements loads in seconds.
        f"CREATE TABLE series_keys ({_id_column(dialect, 'key_id')}, "
        "machine_class TEXT NOT NULL, test_id TEXT NOT NULL, name TEXT NOT NULL, "
        "unit TEXT NOT NULL, statistic TEXT NOT NULL, lower_is_better INTEGER NOT NULL, "
        "UNIQUE (machine_class, test_id, name, unit, statistic, lower_is_better))",
        # The key leads with run_id: one run's rows sit together, in the order of its key.
        "CREATE TABLE measurements (run_id BIGINT NOT NULL REFERENCES runs (run_id), "
        "key_id BIGINT NOT NULL REFERENCES series_keys (key_id), "
        f"value {real} NOT NULL, ci_low {real}, ci_high {real}, samples INTEGER NOT NULL, "
        f"verdict TEXT, ratio {real}, PRIMARY KEY (run_id, key_id))"
        # SQLite: the rows stored in key order, so a run's rows are read in one sweep.
        + (" WITHOUT ROWID" if dialect is Dialect.SQLITE else ""),
        "CREATE INDEX measurements_by_key ON measurements (key_id)",
    ]


def _budgets(dialect: Dialect) -> list[str]:
    return [f"ALTER TABLE measurements ADD COLUMN budget {_real(dialect)}"]


@final
@dataclass(frozen=True, slots=True)
class Migration:
    """The statements that take a history from ``version - 1`` to ``version``."""

    version: int
    statements: Callable[[Dialect], list[str]]


MIGRATIONS: Sequence[Migration] = (
    Migration(1, _first_version),
    Migration(2, _budgets),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

__all__: Sequence[str] = ("MIGRATIONS", "SCHEMA_VERSION", "Dialect", "Migration")
