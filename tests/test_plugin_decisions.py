"""The suite's alpha is split over gated measurements, not tests; skipped and deselected
tests do not take a share."""

from __future__ import annotations

import pytest
from plugin_support import record_baselines, write_settings

SUITE = """
import pytest


@pytest.mark.perf
def test_three(perf):
    for name in ("a", "b", "c"):
        perf.record(name, [10.0, 10.2, 9.9, 10.1], unit="items")


@pytest.mark.perf
def test_two(perf):
    perf.record("x", [5.0, 5.1, 4.9], unit="items")
    perf.record("y", [7.0, 7.1, 6.9], unit="items")


@pytest.mark.perf
@pytest.mark.skip(reason="not today")
def test_skipped(perf):
    perf.record("z", [1.0])


@pytest.mark.perf
@pytest.mark.skipif("True", reason="never here")
def test_skipif(perf):
    perf.record("z", [1.0])


@pytest.mark.perf
def test_new(perf):
    perf.record("w", [1.0, 1.1])
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    write_settings(pytester)
    pytester.makepyfile(test_suite=SUITE)
    record_baselines(pytester, "-k", "not test_new")  # test_new has no baseline entry
    return pytester


def test_each_gated_measurement_takes_a_share_and_skipped_tests_none(
    suite: pytest.Pytester,
) -> None:
    result = suite.runpytest()
    result.assert_outcomes(passed=3, skipped=2)
    # 3 + 2 entries, and one for the test without any; the two skipped tests count nothing.
    result.stdout.fnmatch_lines(["*verdicts use alpha 0.05 shared by the 6 measurements of*"])


def test_deselected_tests_take_no_share(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-k", "not test_three")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["*verdicts use alpha 0.05 shared by the 3 measurements of*"])
