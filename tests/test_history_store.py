"""The history store, against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pytest_perfgate.history.migrations import SCHEMA_VERSION
from pytest_perfgate.history.model import RecordedMeasurement, RecordedRun, RunKind
from pytest_perfgate.history.store import (
    AlreadyRecorded,
    History,
    HistoryError,
    open_history,
    redacted,
)

sys.path.insert(0, str(Path(__file__).parent))
import postgres_server as pg

# The fixtures, shared with test_history_store_cli.py: an SQLite file and a PostgreSQL
# server (one per module, skipped where none can run) for every test.
postgres_server, history_url = pg.postgres_server, pg.history_url

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def a_run(day: int, *, commit: str = "c", machine: str = "m1", kind: RunKind = RunKind.GATE):
    return RecordedRun(kind, T0 + timedelta(days=day), commit, "main", machine, 12.5, "pytest")


def a_measurement(value: float, *, test_id: str = "t.py::test_a", name: str = "time", **kw):
    fields = dict(unit="s", lower_is_better=True, statistic="median", value=value)
    return RecordedMeasurement(test_id, name, **(fields | kw))  # type: ignore[arg-type]


def test_a_run_reads_back_as_it_was_recorded(history_url: str) -> None:
    measurement = a_measurement(
        0.0123, ci_low=0.012, ci_high=0.0125, samples=40, verdict="UNCHANGED", ratio=1.01,
        budget=0.02,
    )  # fmt: skip
    rate = a_measurement(2e9, name="rate", unit="B/s", lower_is_better=False, statistic="p99")
    with open_history(history_url) as history:
        run_id = history.record(a_run(0, commit="abc"), [measurement, rate])
    with open_history(history_url) as history:
        (run,) = history.runs()
        assert run.run_id == run_id
        assert run.started_at == T0
        assert (run.commit, run.branch, run.machine_class) == ("abc", "main", "m1")
        assert (run.kind, run.wall_seconds, run.source) == (RunKind.GATE, 12.5, "pytest")
        assert history.measurements(run_id) == [rate, measurement]
        assert history.measurements(run_id + 1) == []


def test_runs_are_oldest_first_and_since_filters(history_url: str) -> None:
    with open_history(history_url) as history:
        for day in (3, 1, 2):  # recorded out of order: an old CI artifact imported late
            history.record(a_run(day, commit=f"c{day}"), [a_measurement(1.0)])
        assert [r.commit for r in history.runs()] == ["c1", "c2", "c3"]
        assert [r.commit for r in history.runs(since=T0 + timedelta(days=2))] == ["c2", "c3"]


def test_series_group_by_machine_class_test_and_name_in_time_order(history_url: str) -> None:
    with open_history(history_url) as history:
        history.record(a_run(2, commit="c2"), [a_measurement(2.0, budget=5.0)])
        history.record(a_run(1, commit="c1"), [a_measurement(1.0, budget=4.0)])
        history.record(a_run(3, commit="c3"), [a_measurement(3.0), a_measurement(9.0, name="x")])
        history.record(a_run(4, machine="m2"), [a_measurement(7.0)])
        series = history.series()
        later = history.series(since=T0 + timedelta(days=2))
    assert [(s.machine_class, s.test_id, s.name) for s in series] == [
        ("m1", "t.py::test_a", "time"),
        ("m1", "t.py::test_a", "x"),
        ("m2", "t.py::test_a", "time"),
    ]
    time_m1 = series[0]
    assert time_m1.values == (1.0, 2.0, 3.0)
    assert [p.commit for p in time_m1.points] == ["c1", "c2", "c3"]
    assert time_m1.budget is None  # the latest run declared none
    assert time_m1.unit == "s"
    assert time_m1.lower_is_better
    assert [s.values for s in later] == [(2.0, 3.0), (9.0,), (7.0,)]


def test_series_keep_the_latest_budget(history_url: str) -> None:
    with open_history(history_url) as history:
        history.record(a_run(2), [a_measurement(2.0, budget=5.0)])
        history.record(a_run(1), [a_measurement(1.0, budget=4.0)])
        (series,) = history.series()
    assert series.budget == 5.0


def test_an_empty_history_has_no_runs_and_no_series(history_url: str) -> None:
    with open_history(history_url) as history:
        assert history.runs() == []
        assert history.series() == []
        assert history.schema_version() == SCHEMA_VERSION


def test_a_file_is_recorded_once(history_url: str) -> None:
    with open_history(history_url) as history:
        first = history.record(a_run(1), [a_measurement(1.0)], content_hash="h1")
        with pytest.raises(AlreadyRecorded, match=f"already recorded as run {first}") as caught:
            history.record(a_run(1), [a_measurement(1.0)], content_hash="h1")
        assert caught.value.run_id == first
        history.record(a_run(2), [a_measurement(1.0)], content_hash="h2")
        assert len(history.runs()) == 2


def test_a_failed_run_leaves_nothing_half_written(history_url: str) -> None:
    duplicate = [a_measurement(1.0), a_measurement(2.0)]  # the same key twice
    with open_history(history_url) as history:
        with pytest.raises(HistoryError):
            history.record(a_run(1), duplicate)
        assert history.runs() == []
        history.record(a_run(1), [a_measurement(1.0)])  # still usable
        assert len(history.runs()) == 1


def _insert_v1_run(history: History) -> None:
    """What a version-1 pytest-perfgate wrote: no budget column yet."""
    with history._transaction(write=True) as cursor:
        cursor.execute(
            history._sql(
                "INSERT INTO runs (kind, started_at, commit_id, branch, machine_class, "
                "wall_seconds, source, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING run_id"
            ),
            ("gate", T0.isoformat(timespec="microseconds"), "old", None, "m1", None, "v1", ""),
        )
        run_id = cursor.fetchone()[0]
        cursor.execute(
            history._sql(
                "INSERT INTO series_keys (machine_class, test_id, name, unit, statistic, "
                "lower_is_better) VALUES (?, ?, ?, ?, ?, ?) RETURNING key_id"
            ),
            ("m1", "t.py::test_a", "time", "s", "median", 1),
        )
        key_id = cursor.fetchone()[0]
        cursor.execute(
            history._sql(
                "INSERT INTO measurements (run_id, key_id, value, samples) VALUES (?, ?, ?, ?)"
            ),
            (run_id, key_id, 1.5, 20),
        )


def test_a_version_1_history_migrates_to_the_current_version(history_url: str) -> None:
    with open_history(history_url, migrate=False) as history:
        assert history.migrate(target=1) == 1
        assert history.schema_version() == 1
        _insert_v1_run(history)
    with open_history(history_url) as history:
        assert history.schema_version() == SCHEMA_VERSION == 2
        history.record(a_run(1), [a_measurement(2.0, budget=3.0)])
        (series,) = history.series()
    assert series.values == (1.5, 2.0)  # the old run kept, nothing rewritten
    assert series.points[0].commit == "old"
    assert series.budget == 3.0


def test_a_history_from_a_newer_version_is_refused_by_name(history_url: str) -> None:
    with open_history(history_url) as history:
        history.record(a_run(1), [a_measurement(1.0)])
        with history._transaction(write=True) as cursor:
            cursor.execute(
                history._sql("INSERT INTO perfgate_schema (version, applied_at) VALUES (?, ?)"),
                (SCHEMA_VERSION + 5, ""),
            )
    with pytest.raises(HistoryError) as caught:
        open_history(history_url)
    message = str(caught.value)
    assert redacted(history_url) in message
    assert f"version {SCHEMA_VERSION + 5}" in message
    assert f"up to {SCHEMA_VERSION}" in message


def test_sqlite_urls_and_paths_open_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "h.sqlite"
    with open_history(f"sqlite:///{path}") as history:
        history.record(a_run(1), [a_measurement(1.0)])
    with open_history(path) as history:
        assert len(history.runs()) == 1


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    path.write_text("not a database, " * 100)
    with pytest.raises(HistoryError, match=str(path)):
        open_history(path)
    assert path.read_text().startswith("not a database")  # never overwritten


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(HistoryError, match="unknown history URL scheme 'mysql'"):
        open_history("mysql://host/db")


def test_passwords_are_hidden_in_messages() -> None:
    assert redacted("postgresql://u:s3cret@db:5432/h") == "postgresql://u:***@db:5432/h"
    assert redacted("postgresql://u@db/h") == "postgresql://u@db/h"


def test_without_psycopg_the_error_names_the_extra() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None  # as if not installed
        from pytest_perfgate.history.store import HistoryError, open_history
        try:
            open_history("postgresql://u:pw@localhost/h")
        except HistoryError as error:
            print(error)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "pytest-perfgate[postgres]" in out.stdout
    assert "pw" not in out.stdout


WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timedelta, timezone
    from pathlib import Path
    from pytest_perfgate.history.model import RecordedMeasurement, RecordedRun, RunKind
    from pytest_perfgate.history.store import open_history

    url, name, runs, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.01)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for i in range(runs):
        # A new connection each run, as separate pytest sessions would open it.
        with open_history(url) as history:
            run = RecordedRun(RunKind.GATE, t0 + timedelta(minutes=i), name, None, "m", None, name)
            history.record(run, [
                RecordedMeasurement(f"t.py::test_{k}", "time", "s", True, "median", float(i))
                for k in range(50)
            ])
    """
)


def test_two_processes_recording_at_once_lose_nothing(history_url: str, tmp_path: Path) -> None:
    go, runs = tmp_path / "go", 15
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, history_url, name, str(runs), str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    go.touch()  # both start together, on a history that does not exist yet
    for writer in writers:
        _, errors = writer.communicate(timeout=300)
        assert writer.returncode == 0, errors
    with open_history(history_url) as history:
        recorded = history.runs()
        assert sorted(r.source for r in recorded) == ["a"] * runs + ["b"] * runs
        assert all(len(history.measurements(r.run_id or 0)) == 50 for r in recorded)
        assert history.schema_version() == SCHEMA_VERSION


def test_series_keys_are_added_once(history_url: str) -> None:
    """Each run of the same tests reuses their keys (PostgreSQL spends an identity value
    on every insert attempt: only new keys are inserted, so ids stay dense)."""
    rows = [a_measurement(1.0, test_id=f"t.py::test_{i}") for i in range(20)]
    with open_history(history_url) as history:
        for day in range(3):
            history.record(a_run(day), rows)
        history.record(a_run(4), [*rows, a_measurement(1.0, test_id="t.py::new")])
        with history._transaction() as cursor:
            cursor.execute("SELECT count(*), max(key_id) FROM series_keys")
            assert tuple(cursor.fetchone()) == (21, 21)
        assert [len(s.points) for s in history.series()] == [1] + [4] * 20


def test_a_server_that_cannot_be_reached_is_named_without_its_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql://perf:s3cret@/history?host={tmp_path}&connect_timeout=5"
    with pytest.raises(HistoryError, match="cannot connect") as caught:
        open_history(url)
    assert "postgresql://perf:***@/history" in str(caught.value)
    assert "s3cret" not in str(caught.value)
