"""Under pytest-xdist, results travel to the controller: same baselines, same failures."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from plugin_support import (
    REGRESSION_MESSAGE,
    SLOWDOWN,
    WORK_SUITE,
    record_baselines,
    rewrite,
    write_settings,
)

pytest.importorskip("xdist")

TIMEOUT = 180


def shape(root: Path) -> dict[str, Any]:
    """What a refresh wrote, without the timings: files, tests, measurements and units."""
    files: dict[str, Any] = {}
    for path in sorted(root.rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        files[path.relative_to(root).as_posix()] = {
            "format_version": data["format_version"],
            "generator": data["generator"],
            "tests": {
                test: {
                    name: (entry["unit"], entry["direction"], len(entry["history"]))
                    for name, entry in measurements.items()
                }
                for test, measurements in data["tests"].items()
            },
        }
    return files


def junit_failures(path: Path) -> tuple[int, list[str]]:
    """The failure count of a JUnit XML report, and the names of the failed test cases."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None
    failed = sorted(
        case.get("name", "") for case in suite.iter("testcase") if case.find("failure") is not None
    )
    return int(suite.get("failures", "0")), failed


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """Two modules of WORK_SUITE plus a module of recorded metrics, one under a package dir."""
    write_settings(pytester)
    pytester.makepyfile(test_one=WORK_SUITE)
    pytester.mkdir("sub")
    (pytester.path / "sub" / "test_two.py").write_text(WORK_SUITE, encoding="utf-8")
    pytester.makepyfile(
        test_metrics="""
        import pytest

        @pytest.mark.perf(memory=True)
        def test_alloc(perf):
            perf(lambda: [0] * 1000)
            for _ in range(12):
                with perf.measure("block"):
                    sum(range(100))
            perf.record("rows", [10, 11, 12], unit="rows/s", higher_is_better=True)
        """
    )
    return pytester


def test_refresh_under_xdist_writes_the_same_files(suite: pytest.Pytester) -> None:
    record_baselines(suite, "--perf-baseline-dir=plain").assert_outcomes(passed=5)
    spread = suite.runpytest_subprocess(
        "-n", "2", "--perf-update-baselines", "--perf-baseline-dir=spread", timeout=TIMEOUT
    )
    spread.assert_outcomes(passed=5)
    spread.stdout.fnmatch_lines(
        [
            "perfgate: 8 NEW (5 perf tests, *",
            "perfgate: baselines in *spread: 8 added, 0 refreshed (0 changed significantly), *",
        ]
    )
    expected = shape(suite.path / "plain")
    assert sorted(expected) == ["sub/test_two.json", "test_metrics.json", "test_one.json"]
    assert expected["test_metrics.json"]["tests"]["test_alloc"] == {
        "block": ("s", "lower", 1),
        "rows": ("rows/s", "higher", 1),
        "time": ("s", "lower", 1),
        "time.peak_memory": ("B", "lower", 1),
    }
    assert shape(suite.path / "spread") == expected
    # Only the controller writes: no worker left a file or a temporary behind.
    leftovers = [p.name for p in (suite.path / "spread").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_regression_fails_the_test_under_xdist_as_without_it(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORK", "1")
    record_baselines(suite)
    monkeypatch.setenv("WORK", SLOWDOWN)

    spread = suite.runpytest_subprocess("-n", "2", "--junitxml=spread.xml", timeout=TIMEOUT)
    spread.stdout.fnmatch_lines(
        ["perfgate: warning: the perf tests ran on 2 pytest-xdist workers at once*"]
    )
    spread.assert_outcomes(passed=3, failed=2)
    spread.stdout.fnmatch_lines([REGRESSION_MESSAGE])
    spread.stdout.fnmatch_lines(["perfgate: 2 REGRESSED*(5 perf tests, *mode gate)"])
    count, failed = junit_failures(suite.path / "spread.xml")
    assert count >= 1
    assert failed == ["test_slow", "test_slow"]

    plain = suite.runpytest("--junitxml=plain.xml")
    plain.assert_outcomes(passed=3, failed=2)
    assert junit_failures(suite.path / "plain.xml") == (count, failed)


def test_stale_entries_under_xdist(suite: pytest.Pytester) -> None:
    record_baselines(suite)
    path = suite.path / "test_one.py"
    rewrite(path, WORK_SUITE.replace("def test_steady", "def test_renamed"))
    result = suite.runpytest_subprocess("-n", "2", "-k", "not test_slow", timeout=TIMEOUT)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["perfgate: 1 stale baseline(s), *", "  stale test_one.py::test_steady"]
    )
    result.stdout.no_fnmatch_line("  stale *test_slow*")


def test_a_workers_results_travel_as_one_json_string_where_json_keeps_them() -> None:
    # pytest-xdist's serializer walks a dict object by object: a string costs it nothing.
    from pytest_perfgate.plugin.session import _transported

    payload: dict[str, Any] = {"module": "m.py", "results": [{"samples": [1e-6, 2e-6]}]}
    carried = _transported(payload)
    assert isinstance(carried, str)
    assert json.loads(carried) == payload
    # A tuple or a number as a key would come back changed: the dict itself travels then.
    for details in ({"shape": (2, 3)}, {1: "rank one"}, {"x": float("nan")}, {"s": {1, 2}}):
        changed = {**payload, "details": details}
        assert _transported(changed) is changed
