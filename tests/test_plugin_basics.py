"""The plugin's registration, and the first runs of a suite: NEW, then recorded baselines."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from plugin_support import (
    WORK_SUITE,
    baseline_path,
    load_baseline,
    record_baselines,
    write_settings,
)

from pytest_perfgate.baseline import FORMAT_VERSION
from pytest_perfgate.settings import OPTIONS

SIMPLE_SUITE = """
import pytest


@pytest.mark.perf
def test_sum(perf):
    assert perf(sum, range(100)) == 4950
"""


# -- registration ------------------------------------------------------------------------


def test_perf_marker_is_listed_in_markers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.perf(threshold=None, max_time=None, *rounds=None*loops=None*"
            "memory=None*): a performance test, gated against its baseline (pytest-perfgate)"
        ]
    )
    assert result.ret == pytest.ExitCode.OK


def test_perf_marker_is_not_an_unknown_mark(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(SIMPLE_SUITE)
    result = pytester.runpytest("-W", "error::pytest.PytestUnknownMarkWarning", "--strict-markers")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*PytestUnknownMarkWarning:*")  # the warning, not the hint


def test_every_option_is_a_command_line_flag(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*performance regression gate (pytest-perfgate)*"])
    for option in OPTIONS:
        result.stdout.fnmatch_lines([f"*{option.flag}*"])


def test_plugin_is_loaded_through_the_pytest11_entry_point(pytester: pytest.Pytester) -> None:
    points = {point.name: point.value for point in entry_points(group="pytest11")}
    assert points.get("perfgate") == "pytest_perfgate.plugin"
    config = pytester.parseconfig()
    assert config.pluginmanager.hasplugin("perfgate")
    result = pytester.runpytest("--trace-config", "--co", "-q")
    result.stdout.fnmatch_lines(["*perfgate*pytest_perfgate*plugin*"])


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    assert not pytester.parseconfig("-p", "no:perfgate").pluginmanager.hasplugin("perfgate")
    write_settings(pytester)
    pytester.makepyfile(SIMPLE_SUITE)
    result = pytester.runpytest("-p", "no:perfgate")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'perf' not found*"])
    result.stdout.no_fnmatch_line("*= perfgate =*")


# -- first runs --------------------------------------------------------------------------


@pytest.fixture
def work_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """WORK_SUITE as suite/test_work.py, with fast settings."""
    write_settings(pytester)
    pytester.mkdir("suite")
    (pytester.path / "suite" / "test_work.py").write_text(WORK_SUITE, encoding="utf-8")
    return pytester


def test_first_run_without_baselines_reports_new(work_suite: pytest.Pytester) -> None:
    result = work_suite.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= perfgate =*",
            "*test*verdict*baseline*now*change*95% CI*",
            "suite/test_work.py::test_slow*NEW*",
            "suite/test_work.py::test_steady*NEW*",
            "perfgate: 2 NEW (2 perf tests, alpha 0.05 over the suite, mode gate)",
            "perfgate: 2 measurement(s) have no baseline yet; "
            "record them with `pytest --perf-update-baselines`",
        ]
    )
    assert not (work_suite.path / "baselines").exists()


def test_update_baselines_writes_one_file_per_module(work_suite: pytest.Pytester) -> None:
    result = record_baselines(work_suite)
    result.stdout.fnmatch_lines(
        [
            f"perfgate: baselines in {work_suite.path / 'baselines'}: 2 added, 0 refreshed "
            "(0 changed significantly), 0 not refreshed (test failed)",
            "  added suite/test_work.py::test_slow",
            "  added suite/test_work.py::test_steady",
        ]
    )
    result.stdout.no_fnmatch_line("*have no baseline yet*")
    path = baseline_path(work_suite, "suite/test_work")
    assert path.is_file()
    data = load_baseline(work_suite, "suite/test_work")
    assert data["format_version"] == FORMAT_VERSION
    assert sorted(data["tests"]) == ["test_slow", "test_steady"]
    for test in ("test_slow", "test_steady"):
        entry = data["tests"][test]["time"]
        assert entry["unit"] == "s"
        assert entry["direction"] == "lower"
        assert entry["summary"]["n"] >= 10
        assert len(entry["history"]) == 1
        assert entry["loops"] >= 1
        assert entry["code_hash"]
        assert entry["environment"]["machine"]["cpu"]
    assert sorted(p.name for p in (work_suite.path / "baselines").rglob("*.json")) == [
        "test_work.json"
    ]


def test_second_refresh_refreshes_and_grows_history(work_suite: pytest.Pytester) -> None:
    record_baselines(work_suite)
    result = record_baselines(work_suite)
    result.stdout.fnmatch_lines(
        [
            "perfgate: baselines in *: 0 added, 2 refreshed (* changed significantly), "
            "0 not refreshed (test failed)"
        ]
    )
    result.stdout.no_fnmatch_line("  added *")
    data = load_baseline(work_suite, "suite/test_work")
    for test in ("test_slow", "test_steady"):
        assert len(data["tests"][test]["time"]["history"]) == 2


def test_run_after_recording_compares(work_suite: pytest.Pytester) -> None:
    record_baselines(work_suite)
    result = work_suite.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "perfgate: *(2 perf tests, alpha 0.05 over the suite, mode gate)",
            "perfgate: the table's CIs are 95% for each measurement on its own; "
            "verdicts use alpha 0.05 shared by the 2 measurements of the 2 perf tests",
        ]
    )
    result.stdout.no_fnmatch_line("*NEW*")
    result.stdout.no_fnmatch_line("*have no baseline yet*")


def test_perf_test_that_measures_nothing_is_warned_about(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_idle="""
        import pytest

        @pytest.mark.perf
        def test_forgot_the_fixture():
            assert sum(range(10)) == 45

        @pytest.mark.perf
        def test_requested_but_unused(perf):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "perfgate: warning: test_idle.py::test_forgot_the_fixture is a perf test "
            "but measured nothing (use the perf fixture)",
            "perfgate: warning: test_idle.py::test_requested_but_unused is a perf test "
            "but measured nothing (use the perf fixture)",
        ]
    )


def test_plain_suite_prints_no_perfgate_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    # -p no:benchmark: where pytest-benchmark is installed, perfgate says so in the header.
    result = pytester.runpytest("-p", "no:benchmark")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*= perfgate =*")
    result.stdout.no_fnmatch_line("perfgate:*")
