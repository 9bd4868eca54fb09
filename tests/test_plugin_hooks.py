"""The pytest_perfgate_* hooks: a conftest.py implementation changes what users see."""

from __future__ import annotations

import json

import pytest
from plugin_support import (
    REGRESSION_MESSAGE,
    SLOWDOWN,
    WORK_SUITE,
    load_baseline,
    record_baselines,
    write_settings,
)

MACHINE_FIELDS = """
import os


def pytest_perfgate_machine_fields(config):
    return {"runner": os.environ.get("RUNNER", "small")}
"""

GATE_POLICY = """
import dataclasses


def pytest_perfgate_gate_policy(item, spec, policy):
    if item.name == "test_slow":
        return dataclasses.replace(policy, threshold=1e4)  # +1,000,000%: never fails
    return None
"""

RESULTS = """
import json


def pytest_perfgate_results(config, results):
    counts = {name: n for name, n in results.counts().items() if n}
    tests = [test.test_id for test in results.tests]
    (config.rootpath / "seen.json").write_text(json.dumps({"counts": counts, "tests": tests}))
"""

#: Each call says where it ran and how many tests it saw.
RESULTS_CALLS = """
def pytest_perfgate_results(config, results):
    role = "worker" if hasattr(config, "workerinput") else "controller"
    with open(config.rootpath / "calls.txt", "a") as calls:
        calls.write(f"{role} {len(results.tests)}\\n")
"""


@pytest.fixture
def work_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    write_settings(pytester)
    pytester.makepyfile(test_work=WORK_SUITE)
    return pytester


def test_machine_fields_keep_machine_classes_apart(
    work_suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    work_suite.makeconftest(MACHINE_FIELDS)
    monkeypatch.setenv("RUNNER", "small")
    record_baselines(work_suite)
    machine = load_baseline(work_suite, "test_work")["tests"]["test_steady"]["time"]
    assert machine["environment"]["machine"]["runner"] == "small"
    monkeypatch.setenv("RUNNER", "large")
    result = work_suite.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["perfgate: 2 INCOMPARABLE*", "*another machine class (runner: 'small' vs 'large')*"]
    )


def test_gate_policy_changes_a_tests_threshold(
    work_suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_baselines(work_suite)
    monkeypatch.setenv("WORK", SLOWDOWN)
    work_suite.runpytest().assert_outcomes(passed=1, failed=1)  # without the hook
    work_suite.makeconftest(GATE_POLICY)
    result = work_suite.runpytest("--perf-json=results.json")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line(REGRESSION_MESSAGE)
    tests = json.loads((work_suite.path / "results.json").read_text())["tests"]
    thresholds = {t["test"]: t["measurements"][0]["comparison"]["threshold"] for t in tests}
    assert thresholds == {"test_slow": 1e4, "test_steady": 0.5}


def test_results_hook_sees_the_runs_results(work_suite: pytest.Pytester) -> None:
    work_suite.makeconftest(RESULTS)
    work_suite.runpytest().assert_outcomes(passed=2)
    seen = json.loads((work_suite.path / "seen.json").read_text())
    assert seen == {
        "counts": {"NEW": 2},
        "tests": ["test_work.py::test_slow", "test_work.py::test_steady"],
    }


def test_results_hook_is_not_called_without_perf_tests(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(RESULTS)
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)
    assert not (pytester.path / "seen.json").exists()


def test_results_hook_runs_on_the_xdist_controller_only(work_suite: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    work_suite.makeconftest(RESULTS_CALLS)
    work_suite.runpytest("-n", "2").assert_outcomes(passed=2)
    assert (work_suite.path / "calls.txt").read_text() == "controller 2\n"
