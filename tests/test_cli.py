"""The ``perfgate`` command, called in-process."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from pytest_perfgate import cli
from pytest_perfgate.baseline import BaselineStore
from pytest_perfgate.model import BaselineEntry, Direction, Environment
from pytest_perfgate.stats import summarize


def entry(median: float, history: tuple[float, ...]) -> BaselineEntry:
    samples = (median, median)
    return BaselineEntry(
        unit="s",
        direction=Direction.LOWER_IS_BETTER,
        samples=samples,
        summary=summarize(samples),
        history=history,
        environment=Environment({"cpu": "x"}),
        recorded_at="2024-03-04T05:06:07Z",
    )


def test_show_lists_each_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = BaselineStore(tmp_path)
    store.update("suite/test_text.py", {"test_split": {"time": entry(0.0123, (0.012, 0.0123))}})
    store.update("test_io.py", {"test_read": {"rows": entry(2e-6, (2e-6,))}})
    assert cli.main(["show", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "suite/test_text.py::test_split  median 12.3 ms  n=2  runs=2  "
        "recorded 2024-03-04T05:06:07Z",
        "test_io.py::test_read [rows]  median 2 us  n=2  runs=1  recorded 2024-03-04T05:06:07Z",
    ]


def test_show_lists_a_p99_baseline_by_its_p99(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    samples = tuple(float(i) * 1e-6 for i in range(1, 101))
    tail = BaselineEntry(
        unit="s",
        direction=Direction.LOWER_IS_BETTER,
        samples=samples,
        summary=summarize(samples),
        history=(99e-6,),
        environment=Environment({"cpu": "x"}),
        statistic="p99",
    )
    BaselineStore(tmp_path).update("test_net.py", {"test_rpc": {"rtt.p99": tail}})
    assert cli.main(["show", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "test_net.py::test_rpc [rtt.p99]  p99 99 us  n=100" in out


def test_show_reports_a_corrupt_file_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = BaselineStore(tmp_path)
    store.update("test_good.py", {"test_a": {"time": entry(1e-3, (1e-3,))}})
    broken = tmp_path / "test_broken.json"
    broken.write_text("{ oops")
    assert cli.main(["show", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert str(broken) in captured.err
    assert "not valid JSON" in captured.err
    assert "test_good.py::test_a  median" in captured.out  # the good file is still listed


def test_show_without_baseline_files_fails_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["show", str(tmp_path / "nothing-here")]) == 2
    assert "no baseline files under" in capsys.readouterr().err


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: perfgate")
    assert "show" in out


def test_version_prints_the_installed_distribution_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"perfgate {importlib.metadata.version('pytest-perfgate')}\n"
