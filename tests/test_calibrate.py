"""``perfgate calibrate``: real runs of a scratch suite, then the per-measurement report."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from plugin_support import load_baseline, write_settings

from pytest_perfgate.baseline import BaselineStore
from pytest_perfgate.calibrate import (
    Calibration,
    MeasurementNoise,
    keep_calibration_history,
    render_calibration,
)
from pytest_perfgate.model import (
    BaselineEntry,
    Comparison,
    Direction,
    Environment,
    Measurement,
    Verdict,
)
from pytest_perfgate.noise import MeasurementKind
from pytest_perfgate.results import RunResults, TestResults
from pytest_perfgate.stats import summarize

SUITE = """
import pytest


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


@pytest.mark.perf
def test_spin(perf):
    perf(spin, 2000)


@pytest.mark.perf
def test_recorded(perf):
    perf.record("rows", [100.0, 101.0, 99.0], unit="rows", higher_is_better=True)
"""


def calibrate(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.run(
        sys.executable,
        "-m",
        "pytest_perfgate.cli",
        "calibrate",
        *args,
        "--",
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:randomly",
        "-p",
        "no:benchmark",
        "test_suite.py",
    )


def test_calibrate_refreshes_n_times_and_reports_each_measurement(
    pytester: pytest.Pytester,
) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_suite=SUITE)
    result = calibrate(pytester, "--runs", "3", "--json", "calibration.json")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(["*run 1/3*", "*run 3/3*"])
    result.stdout.fnmatch_lines(
        [
            "measurement*kind*runs*noise*used*detects*suggest",
            "test_suite.py::test_recorded [[]rows[]]*untimed*3*",
            "test_suite.py::test_spin*cpu timing*3*%*(6 df)*>=*",
            "*alpha 0.05 over 2 measurements*",
        ]
    )
    # The noise is stored where the gate reads it: three runs of history per entry.
    entries = load_baseline(pytester, "test_suite")["tests"]
    assert len(entries["test_spin"]["time"]["history"]) == 3
    assert len(entries["test_recorded"]["rows"]["history"]) == 3
    found = json.loads((pytester.path / "calibration.json").read_text())
    assert found["runs"] == 3
    assert found["level"] == pytest.approx(0.05 / 2)
    spin = next(m for m in found["measurements"] if m["label"] == "test_suite.py::test_spin")
    assert spin["kind"] == "cpu timing"
    assert spin["runs"] == 3
    assert spin["df"] == 6  # the prior worth 4 runs, and 2 from the history
    assert spin["detectable_change"] > spin["threshold"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--runs", "1"), "*--runs must be at least 2*"),
        (("--runs", "2", "--alpha", "2"), "*alpha*"),
    ],
)
def test_calibrate_refuses_what_cannot_calibrate(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = calibrate(pytester, *args)
    assert result.ret == 2
    result.stderr.fnmatch_lines([message])


def test_a_suite_that_does_not_run_stops_calibration(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite="import nonexistent_module_for_calibrate\n")
    result = calibrate(pytester, "--runs", "2")
    assert result.ret == 2
    result.stderr.fnmatch_lines(["*run 1 ended with exit status 2*"])


def _noise(label: str, detectable: float | None, runs: int, within: float) -> MeasurementNoise:
    return MeasurementNoise(
        label, MeasurementKind.CPU, runs, 0.01, 0.02, 6.0, within, 0.02, detectable, None
    )


def test_the_report_counts_what_cannot_see_five_percent_and_says_what_would_help() -> None:
    calibration = Calibration(
        (
            _noise("a", 0.04, 5, 0.001),  # sees 5%
            _noise("b", 0.12, 5, 0.001),  # run noise is the larger part, few runs
            _noise("c", 0.30, 10, 0.05),  # its own samples are noisy
            _noise("d", 0.09, 10, 0.001),  # enough runs: same-job A/B or counts
        ),
        alpha=0.05,
        runs=5,
        failed_runs=1,
    )
    text = render_calibration(calibration)
    assert "3 of 4 measurements cannot see a 5% slowdown" in text
    assert "1 x more runs (perfgate calibrate --runs 10)" in text
    assert "1 x longer max_time" in text
    assert "1 x perfgate ab, or instruction counts for pure CPU code" in text
    assert "1 of 5 runs had failing tests" in text
    assert calibration.level == pytest.approx(0.0125)
    assert math.isclose(calibration.to_dict()["level"], 0.0125)


def _run_of(level: float) -> RunResults:
    samples = (level * 0.99, level, level * 1.01)
    measurement = Measurement("time", "s", Direction.LOWER_IS_BETTER, samples)
    comparison = Comparison(
        "t.py::test_a",
        "time",
        Verdict.UNCHANGED,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(samples),
    )
    test = TestResults("t.py::test_a", "t.py", "test_a", "passed", ((measurement, comparison),))
    return RunResults(Environment({"cpu": "x"}), (test,))


def test_a_history_restarted_during_calibration_gets_every_run_back(tmp_path: Path) -> None:
    """A refresh restarts a history on a run that stands out; during calibration nothing
    changed, so that run is noise, and every calibration run belongs in the history."""
    store = BaselineStore(tmp_path)
    restarted = BaselineEntry(
        unit="s",
        direction=Direction.LOWER_IS_BETTER,
        samples=(2.0e-3,),
        summary=summarize((2.0e-3,)),
        history=(2.0e-3,),
        environment=Environment({"cpu": "x"}),
    )
    store.update("t.py", {"test_a": {"time": restarted}})
    runs = [_run_of(level) for level in (1.0e-3, 1.02e-3, 2.0e-3)]
    assert keep_calibration_history(runs, store, history=10) == ["t.py::test_a"]
    assert store.load("t.py").get("test_a", "time").history == (1.0e-3, 1.02e-3, 2.0e-3)
    # A history that kept every run is left as it is.
    assert keep_calibration_history(runs, store, history=10) == []
    assert keep_calibration_history(runs, store, history=2) == []
