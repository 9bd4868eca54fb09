"""The gate at work: an injected regression fails its test, in every mode as documented."""

from __future__ import annotations

import pytest
from plugin_support import (
    REGRESSION_MESSAGE,
    SLOWDOWN,
    WORK_SUITE,
    load_baseline,
    record_baselines,
    write_settings,
)


@pytest.fixture
def recorded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """WORK_SUITE with baselines recorded at WORK=1; the tests then run at WORK=SLOWDOWN."""
    write_settings(pytester)
    pytester.makepyfile(test_work=WORK_SUITE)
    monkeypatch.setenv("WORK", "1")
    record_baselines(pytester)
    monkeypatch.setenv("WORK", SLOWDOWN)
    return pytester


def test_regression_fails_its_test_in_the_call_phase(recorded: pytest.Pytester) -> None:
    result = recorded.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # The failure is the test's own, in its call phase (not an error at setup or teardown).
    result.stdout.fnmatch_lines(
        [
            "*_ test_slow _*",
            "performance regression in test_work.py::test_slow: median * vs baseline *",
        ]
    )
    result.stdout.fnmatch_lines([REGRESSION_MESSAGE])
    # The message is the whole report: no traceback of the plugin, no hidden-frames notice.
    result.stdout.no_fnmatch_line("*traceback entries are hidden*")
    result.stdout.no_fnmatch_line("*pytest_perfgate*")
    result.stdout.fnmatch_lines(["FAILED test_work.py::test_slow - *performance regression in*"])
    result.stdout.no_fnmatch_line("*test_steady*FAILED*")
    result.stdout.no_fnmatch_line("FAILED test_work.py::test_steady*")
    result.stdout.no_fnmatch_line("ERROR *")
    result.stdout.fnmatch_lines(
        [
            "*= perfgate =*",
            "test_work.py::test_slow*REGRESSED*",
            "perfgate: 1 REGRESSED*(2 perf tests, alpha 0.05 over the suite, mode gate)",
        ]
    )
    # Its message shows in the failure and pytest's short summary, not a third time.
    said = [line for line in result.outlines if "performance regression in" in line]
    assert len(said) == 2
    result.stdout.no_fnmatch_line("  REGRESSED test_work.py::test_slow*")
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    failed = [(r.nodeid, r.when) for r in reports if r.failed]
    assert failed == [("test_work.py::test_slow", "call")]


def test_warn_mode_reports_the_regression_but_passes(recorded: pytest.Pytester) -> None:
    result = recorded.runpytest("--perf-mode=warn")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "test_work.py::test_slow*REGRESSED*",
            "perfgate: 1 REGRESSED*mode warn)",
            "  REGRESSED test_work.py::test_slow: median * vs baseline *",
        ]
    )
    result.stdout.no_fnmatch_line("*performance regression in*")


def test_warn_mode_from_pyproject(recorded: pytest.Pytester) -> None:
    write_settings(recorded, mode="warn")
    result = recorded.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["perfgate: 1 REGRESSED*mode warn)"])


def test_command_line_overrides_pyproject(recorded: pytest.Pytester) -> None:
    write_settings(recorded, mode="warn")
    result = recorded.runpytest("--perf-mode=gate")
    result.assert_outcomes(passed=1, failed=1)


def test_off_mode_runs_the_tests_unmeasured(recorded: pytest.Pytester) -> None:
    before = load_baseline(recorded, "test_work")
    # -p no:benchmark: where pytest-benchmark is installed, perfgate says so in the header.
    result = recorded.runpytest("--perf-mode=off", "-p", "no:benchmark")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.no_fnmatch_line("*= perfgate =*")
    result.stdout.no_fnmatch_line("perfgate:*")
    result.stdout.no_fnmatch_line("*REGRESSED*")
    # Off means off, even when asked to refresh.
    result = recorded.runpytest("--perf-mode=off", "--perf-update-baselines", "-p", "no:benchmark")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("perfgate:*")
    assert load_baseline(recorded, "test_work") == before


def test_refresh_accepts_the_slower_code_and_reports_the_change(
    recorded: pytest.Pytester,
) -> None:
    before = load_baseline(recorded, "test_work")["tests"]
    result = record_baselines(recorded)
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*performance regression in*")
    result.stdout.fnmatch_lines(
        [
            "perfgate: baselines in *: 0 added, 2 refreshed (1 changed significantly), "
            "0 not refreshed (test failed)",
            "  changed test_work.py::test_slow: median * vs baseline * (+*%*",
        ]
    )
    after = load_baseline(recorded, "test_work")["tests"]
    old, new = before["test_slow"]["time"], after["test_slow"]["time"]
    assert new["summary"]["median"] > 2 * old["summary"]["median"]
    # One run of history: its noise is not measured yet, so the change cannot be told
    # from noise and the history keeps both runs.
    assert len(old["history"]) == 1
    assert len(new["history"]) == 2
    steady_before, steady_after = before["test_steady"]["time"], after["test_steady"]["time"]
    assert steady_after["history"][0] == steady_before["history"][0]
    assert len(steady_after["history"]) == 2
    # The refreshed baseline is the new reference: the slow code passes now.
    result = recorded.runpytest()
    result.assert_outcomes(passed=2)


def test_higher_is_better_metric_that_drops_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_rate="""
        import os

        import pytest

        @pytest.mark.perf
        def test_throughput(perf):
            rate = float(os.environ["RATE"])
            perf.record(
                "rows", [rate * f for f in (1.0, 1.01, 0.99, 1.02, 0.98, 1.0)],
                unit="rows/s", higher_is_better=True,
            )
        """
    )
    monkeypatch.setenv("RATE", "1000")
    record_baselines(pytester)
    monkeypatch.setenv("RATE", "2000")  # better: never fails
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    # On pytester's 80 columns the row does not fit: the id sits above its figures.
    result.stdout.fnmatch_lines(["test_rate.py::test_throughput ?rows?", "  IMPROVED *"])
    monkeypatch.setenv("RATE", "300")
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "performance regression in test_rate.py::test_throughput ?rows?: median 300 rows/s "
            "vs baseline 1000 rows/s (-70.0%, 95% CI *), q*, threshold 50% (higher is better)"
        ]
    )


RECORDED_VALUES = """
import os

import pytest

VALUES = [float(os.environ.get("VALUE", "100"))] * 5


@pytest.mark.perf(threshold=0.1)
def test_tight(perf):
    perf.record("latency", VALUES, unit="ms")


@pytest.mark.perf(threshold=0.4)
def test_loose(perf):
    perf.record("latency", VALUES, unit="ms")


@pytest.mark.perf
def test_suite_default(perf):
    perf.record("latency", VALUES, unit="ms")
"""


def test_marker_threshold_applies_to_its_test_only(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(pytester, threshold=0.2)
    pytester.makepyfile(test_latency=RECORDED_VALUES)
    record_baselines(pytester)
    monkeypatch.setenv("VALUE", "130")  # 30% worse, exactly (recorded values carry no noise)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        ["performance regression in test_latency.py::test_tight ?latency?: *threshold 10%"]
    )
    result.stdout.fnmatch_lines(
        ["performance regression in test_latency.py::test_suite_default ?latency?: *threshold 20%"]
    )
    result.stdout.fnmatch_lines(["test_latency.py::test_loose ?latency?", "  UNCHANGED *"])
    # The command line sets the suite's threshold; a marker still wins over it.
    result = pytester.runpytest("--perf-threshold=0.35")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["performance regression in test_latency.py::test_tight ?latency?: *threshold 10%"]
    )
    result.stdout.no_fnmatch_line("performance regression in*test_suite_default*")
