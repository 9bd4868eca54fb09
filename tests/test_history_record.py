"""From a results file to history values: ``recorded_from`` and its parts (pure)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import postgres_server as pg
import pytest
import test_ab as ab_tests

from pytest_perfgate.history.model import RunKind
from pytest_perfgate.history.record import (
    budget_of,
    current_branch,
    machine_class,
    recorded_from,
)
from pytest_perfgate.model import Comparison, Direction, Environment, Measurement, Verdict
from pytest_perfgate.results import RunResults, TestResults
from pytest_perfgate.stats import sample_quantile, summarize

postgres_server, history_url = pg.postgres_server, pg.history_url
repo = ab_tests.repo  # a git repository holding a small perf suite

SAMPLES = tuple(0.010 * (1 + 0.01 * ((i * 7) % 11 - 5)) for i in range(60))
MACHINE = {"os": "Linux", "arch": "x86_64", "cpus": "2", "cpu": "AMD EPYC", "python": "3.12"}


def results(*, budget: object = None, statistic: str = "median") -> RunResults:
    details = {} if budget is None else {"budget": budget}
    time = Measurement(
        "time", "s", Direction.LOWER_IS_BETTER, SAMPLES, details=details, statistic=statistic
    )
    value = None if statistic == "median" else sample_quantile(SAMPLES, 0.99)
    compared = Comparison(
        "t.py::test_a",
        "time",
        Verdict.REGRESSED,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(SAMPLES),
        ratio=1.2,
        statistic=statistic,
        value=value,
    )
    rate = Measurement("rate", "B/s", Direction.HIGHER_IS_BETTER, (2e9, 2.1e9, 1.9e9))
    new = Comparison(
        "t.py::test_b",
        "rate",
        Verdict.NEW,
        "B/s",
        Direction.HIGHER_IS_BETTER,
        summarize(rate.samples),
    )
    return RunResults(
        environment=Environment(MACHINE, {"host": "ci-7"}),
        tests=(
            TestResults("t.py::test_a", "t.py", "test_a", "failed", ((time, compared),)),
            TestResults("t.py::test_b", "t.py", "test_b", "passed", ((rate, new),)),
        ),
        commit="abc123",
        created_at="2026-11-24T10:30:00Z",
    )


def test_a_run_records_its_commit_time_machine_and_every_measurement() -> None:
    run, measurements = recorded_from(
        results(budget=0.02), RunKind.GATE, branch="main", wall_seconds=61.0, source="pytest"
    )
    assert run.started_at == datetime(2026, 11, 24, 10, 30, tzinfo=timezone.utc)
    assert (run.commit, run.branch, run.kind) == ("abc123", "main", RunKind.GATE)
    assert (run.wall_seconds, run.source, run.run_id) == (61.0, "pytest", None)
    assert run.machine_class == machine_class(MACHINE)
    time, rate = measurements
    summary = summarize(SAMPLES)
    assert (time.test_id, time.name, time.unit, time.statistic) == (
        "t.py::test_a",
        "time",
        "s",
        "median",
    )
    assert time.value == summary.median
    assert (time.ci_low, time.ci_high) == (summary.median_ci_low, summary.median_ci_high)
    assert (time.samples, time.verdict, time.ratio, time.budget) == (60, "REGRESSED", 1.2, 0.02)
    assert time.lower_is_better
    assert not rate.lower_is_better
    assert (rate.verdict, rate.ratio, rate.budget, rate.samples) == ("NEW", None, None, 3)


def test_a_tail_statistic_records_its_own_level_and_interval() -> None:
    _, (time, _) = recorded_from(results(statistic="p99"), RunKind.GATE)
    p99 = sample_quantile(SAMPLES, 0.99)
    assert time.statistic == "p99"
    assert time.value == p99
    assert time.ci_low is not None
    assert time.ci_high is not None
    assert time.ci_low < p99 < time.ci_high
    assert math.isclose(p99 / time.ci_low, time.ci_high / p99)  # log-symmetric


def test_started_at_given_or_from_created_at() -> None:
    given = datetime(2020, 1, 1, tzinfo=timezone.utc)
    run, _ = recorded_from(results(), RunKind.AB, started_at=given)
    assert run.started_at == given
    naive, _ = recorded_from(replace(results(), created_at="2026-01-02T03:04:05"), RunKind.GATE)
    assert naive.started_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="no created_at"):
        recorded_from(replace(results(), created_at=""), RunKind.GATE)


@pytest.mark.parametrize(
    ("details", "budget"),
    [
        ({"budget": 5}, 5.0),
        ({"budget": 0.5}, 0.5),
        ({"budget": "5 ms"}, None),
        ({"budget": True}, None),
        ({}, None),
    ],
)
def test_budget_is_a_plain_number_in_the_unit(
    details: dict[str, object], budget: float | None
) -> None:
    assert budget_of(details) == budget


def test_machine_class_is_short_stable_and_tells_classes_apart() -> None:
    label = machine_class(MACHINE)
    assert label.startswith("Linux-x86_64-2cpu-")
    assert len(label) < 32
    assert machine_class(dict(reversed(MACHINE.items()))) == label
    assert machine_class({**MACHINE, "cpu": "Intel Xeon"}) != label
    assert machine_class({}) != label


def test_the_branch_comes_from_ci_first_then_git(tmp_path: Path) -> None:
    assert (
        current_branch(tmp_path, {"GITHUB_HEAD_REF": "feature", "GITHUB_REF_NAME": "1/merge"})
        == "feature"
    )
    assert current_branch(tmp_path, {"GITHUB_HEAD_REF": "", "GITHUB_REF_NAME": "main"}) == "main"
    assert current_branch(tmp_path, {}) is None  # not a repository
    import subprocess

    subprocess.run(["git", "init", "-q", "-b", "trunk", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    assert current_branch(tmp_path, {}) == "trunk"


# -- recording from pytest runs ------------------------------------------------------------


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    from plugin_support import WORK_SUITE, write_settings

    write_settings(pytester, history_db=".perfgate/history.sqlite")
    pytester.makepyfile(test_work=WORK_SUITE)
    return pytester


def test_refreshes_and_gated_runs_are_recorded(suite: pytest.Pytester, history_url: str) -> None:
    from pytest_perfgate.history.store import open_history, redacted

    option = f"--perf-history-db={history_url}"
    suite.runpytest("--perf-update-baselines", option).assert_outcomes(passed=2)
    result = suite.runpytest(option)
    result.assert_outcomes(passed=2)
    shown = redacted(history_url)
    result.stdout.fnmatch_lines([f"perfgate: run recorded in the history {shown} as run 2"])
    suite.makepyfile(test_other="def test_plain():\n    pass\n")
    suite.runpytest("test_other.py", option).assert_outcomes(passed=1)  # nothing to record
    with open_history(history_url) as history:
        runs = history.runs()
        assert [r.kind for r in runs] == [RunKind.REFRESH, RunKind.GATE]
        assert all(r.source == "pytest" and (r.wall_seconds or 0) > 0 for r in runs)
        gated = history.measurements(runs[1].run_id or 0)
    assert [(m.test_id, m.verdict in ("UNCHANGED", "IMPROVED", "INCONCLUSIVE")) for m in gated] == [
        ("test_work.py::test_slow", True),
        ("test_work.py::test_steady", True),
    ]


def test_a_history_that_cannot_be_written_warns_and_fails_nothing(suite: pytest.Pytester) -> None:
    (suite.path / "taken").write_text("a file where a directory should be")
    result = suite.runpytest("--perf-history-db=taken/history.sqlite")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["perfgate: warning: run not recorded in the history: *taken*"])


def test_under_xdist_the_controller_records_one_run(suite: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    from pytest_perfgate.history.store import open_history

    result = suite.runpytest_subprocess("-n", "2", "-p", "xdist", timeout=300)
    result.assert_outcomes(passed=2)
    with open_history(suite.path / ".perfgate" / "history.sqlite") as history:
        (run,) = history.runs()
        assert len(history.measurements(run.run_id or 0)) == 2


def test_perfgate_ab_records_the_judged_run(repo: Path) -> None:
    from pytest_perfgate.history.store import open_history

    done = ab_tests.perfgate_ab(repo, "--base", "HEAD", "--rounds", "2", "--history", "h.sqlite")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"perfgate: run recorded in the history {repo / 'h.sqlite'} as run 1" in done.stdout
    with open_history(repo / "h.sqlite") as history:
        (run,) = history.runs()
        assert (run.kind, run.source) == (RunKind.AB, "perfgate ab")
        assert run.commit is not None
        assert (run.wall_seconds or 0) > 0
        assert {m.test_id for m in history.measurements(run.run_id or 0)} == {
            "test_work.py::test_slow",
            "test_work.py::test_steady",
        }
