"""Instruction counting end to end: the run restarts itself under Valgrind, counts, and
gates. Each restart under Valgrind costs seconds, so these are few and small."""

from __future__ import annotations

import shutil

import pytest
from plugin_support import load_baseline

SUITE = """
import os

import pytest

N = int(os.environ.get("PERF_WORK", "2000"))


def work():
    return sum(i * i for i in range(N))


def test_work(perf):
    assert perf(work) == sum(i * i for i in range(N))
"""

MIXED_SUITE = """
import pytest


def work():
    return sum(i * i for i in range(500))


@pytest.mark.perf(measure="instructions")
def test_counted(perf):
    perf(work)


@pytest.mark.perf
def test_timed(perf):
    perf(work)


@pytest.mark.perf(measure="instructions")
def test_benchmark_counted(benchmark):
    benchmark.pedantic(sorted, setup=lambda: (([3, 1, 2] * 50,), {}))
"""

needs_valgrind = pytest.mark.skipif(
    shutil.which("valgrind") is None or shutil.which("cc") is None,
    reason="needs Valgrind and a C compiler (.ci/run installs them)",
)


@needs_valgrind
def test_a_count_is_recorded_and_a_quarter_more_work_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess("--perf-measure=instructions", "--perf-update-baselines")
    result.assert_outcomes(passed=1)
    result.stderr.fnmatch_lines(["*counting instructions: *valgrind --tool=callgrind*"])
    entry = load_baseline(pytester, "test_suite")["tests"]["test_work"]["instructions"]
    assert entry["unit"] == "instructions"

    same = pytester.runpytest_subprocess("--perf-measure=instructions", "-rA")
    same.assert_outcomes(passed=1)
    # The table puts a long id above its figures. A count taken after a run that had no
    # baseline yet can sit ~1% lower (docs/how-to/count-instructions.md): not a regression.
    same.stdout.fnmatch_lines(["test_suite.py::test_work [[]instructions[]]"])
    same.stdout.re_match_lines([r"  (UNCHANGED|IMPROVED) +[0-9.]+M instr"])

    # A quarter more work: far beyond the counts' run-to-run spread (at most ~1% here).
    monkeypatch.setenv("PERF_WORK", "2500")
    more = pytester.runpytest_subprocess("--perf-measure=instructions")
    more.assert_outcomes(failed=1)
    more.stdout.fnmatch_lines(
        ["*performance regression in*median * instr vs baseline * instr (+*%)*threshold 0.5%*"]
    )


@needs_valgrind
def test_a_marker_restarts_the_run_and_timings_under_valgrind_skip(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_mixed=MIXED_SUITE)
    # -p no:benchmark: where pytest-benchmark is installed, it owns the fixture.
    result = pytester.runpytest_subprocess("-rs", "-p", "no:benchmark")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*timings taken under Valgrind are not comparable*"])
    # benchmark.pedantic counts too, its setup outside the count.
    result.stdout.fnmatch_lines(["*test_benchmark_counted [[]instructions[]]", "  NEW *"])


def test_without_valgrind_the_counting_test_skips_and_says_how_to_install_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    empty = pytester.mkdir("empty-path")
    monkeypatch.setenv("PATH", str(empty))
    result = pytester.runpytest_subprocess("--perf-measure=instructions", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*needs Valgrind*apt-get install -y valgrind*"])
    result.stderr.fnmatch_lines(["*counting instructions needs Valgrind, not found*"])


def test_collecting_only_or_mode_off_does_not_restart(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mixed=MIXED_SUITE)
    collected = pytester.runpytest_subprocess("--collect-only", "-q")
    collected.stdout.fnmatch_lines(["*3 tests collected*"])
    assert "counting instructions" not in collected.stderr.str()

    off = pytester.runpytest_subprocess("--perf-measure=instructions", "--perf-mode=off")
    off.assert_outcomes(passed=3)  # the code runs once, unmeasured, natively
    assert "counting instructions" not in off.stderr.str()
