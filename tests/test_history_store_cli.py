"""``perfgate history import`` and ``perfgate history list``, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import postgres_server as pg
import pytest
from test_history_record import results

from pytest_perfgate import cli
from pytest_perfgate.history.store import open_history
from pytest_perfgate.results import write_results

postgres_server, history_url = pg.postgres_server, pg.history_url


def artifacts(tmp_path: Path, count: int) -> list[Path]:
    """Results files of ``count`` runs on successive days, as CI would leave them."""
    paths = []
    for day in range(1, count + 1):
        path = tmp_path / f"run{day}" / "results.json"
        path.parent.mkdir()
        run = replace(results(), commit=f"c{day}", created_at=f"2026-11-{day:02}T12:00:00Z")
        write_results(path, run)
        paths.append(path)
    return paths


def test_import_records_each_file_once_and_names_bad_ones(
    history_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = artifacts(tmp_path, 3)
    bad = tmp_path / "broken.json"
    bad.write_text('{"schema": "pytest-perfgate-results", "schema_version": 1, "tests": 3}')
    missing = tmp_path / "missing.json"
    command = ["history", "import", "--history", history_url, "--branch", "main", "--kind", "ab"]

    assert cli.main([*command, *map(str, [*good[:2], bad, missing])]) == 2
    out, err = capsys.readouterr()
    assert f"imported {good[0]} as run" in out
    assert f"{bad}: malformed results" in err
    assert f"{missing}: cannot read" in err
    assert "2 imported, 0 already there, 2 bad" in out

    assert cli.main([*command, *map(str, good)]) == 0  # the same artifacts again, and one more
    out, _ = capsys.readouterr()
    assert f"skipped {good[0]}: already imported as run" in out
    assert "1 imported, 2 already there, 0 bad" in out

    with open_history(history_url) as history:
        runs = history.runs()
        assert [(r.commit, r.branch, r.kind.value) for r in runs] == [
            ("c1", "main", "ab"),
            ("c2", "main", "ab"),
            ("c3", "main", "ab"),
        ]
        assert [r.source for r in runs] == [str(p) for p in good]
        assert len(history.measurements(runs[0].run_id or 0)) == 2


def test_list_prints_the_runs_oldest_first(
    history_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["history", "list", "--history", history_url]) == 0
    empty = capsys.readouterr().out  # a file not there yet is not created by listing
    assert "no runs recorded" in empty or f"no history at {history_url}" in empty
    files = artifacts(tmp_path, 2)
    cli.main(["history", "import", "--history", history_url, *map(str, reversed(files))])
    capsys.readouterr()
    assert cli.main(["history", "list", "--history", history_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[1:5] == ["2026-11-01", "12:00:00", "gate", "c1"]
    assert lines[2].split()[1:5] == ["2026-11-02", "12:00:00", "gate", "c2"]
    assert lines[1].endswith("2 measurements, 1 REGRESSED")
    assert cli.main(["history", "list", "--history", history_url, "--since", "1d"]) == 0
    assert "no runs recorded" in capsys.readouterr().out  # both are older than a day


def test_the_history_defaults_to_pyproject_then_dot_perfgate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["history", "list"]) == 0
    assert "no history at .perfgate/history.sqlite" in capsys.readouterr().out
    assert not (tmp_path / ".perfgate").exists()  # listing created nothing
    (file,) = artifacts(tmp_path, 1)
    assert cli.main(["history", "import", str(file)]) == 0
    assert (tmp_path / ".perfgate" / "history.sqlite").is_file()
    (tmp_path / "pyproject.toml").write_text('[tool.perfgate]\nhistory_db = "perf/h.sqlite"\n')
    assert cli.main(["history", "import", str(file)]) == 0
    assert (tmp_path / "perf" / "h.sqlite").is_file()
    assert "1 imported" in capsys.readouterr().out  # a new history: imported again


def test_a_history_that_cannot_be_opened_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_db = tmp_path / "h.sqlite"
    not_a_db.write_text("x" * 4096)
    assert cli.main(["history", "list", "--history", str(not_a_db)]) == 2
    assert f"perfgate history: error: {not_a_db}" in capsys.readouterr().err
    assert cli.main(["history"]) == 2
