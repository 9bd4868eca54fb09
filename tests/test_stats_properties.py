"""Hypothesis properties of the statistics: invariances every verdict must respect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_perfgate.model import Direction, Verdict
from pytest_perfgate.stats import (
    compare,
    mean_of,
    median_ci,
    percentile_of_sorted,
    sum_of,
    summarize,
    thin,
    variance_of,
)

positive = st.floats(min_value=1e-7, max_value=1e3, allow_nan=False, allow_infinity=False)
samples = st.lists(positive, min_size=3, max_size=60)
thresholds = st.floats(min_value=0.0, max_value=0.5)
noise = st.floats(min_value=0.0, max_value=0.1)

COMMON = settings(max_examples=150, deadline=None)


@COMMON
@given(samples)
def test_summary_is_ordered(values: list[float]) -> None:
    s = summarize(values)
    assert s.min <= s.q1 <= s.median <= s.q3 <= s.max
    assert s.median_ci_low <= s.median <= s.median_ci_high
    assert (s.median_ci_low, s.median_ci_high) == median_ci(values)


@COMMON
@given(st.lists(positive, min_size=1, max_size=60))
def test_quartiles_are_numpys_to_the_last_bit(values: list[float]) -> None:
    # Stored summaries must not move when the quartiles are taken without numpy.
    ordered = sorted(values)
    for q in (0.25, 0.5, 0.75):
        assert percentile_of_sorted(ordered, q) == float(np.percentile(ordered, 100 * q))


# Past numpy's block of 128 and its halving, where its pairwise summation changes shape.
long_samples = st.lists(positive, min_size=1, max_size=300)


@COMMON
@given(long_samples)
def test_sums_means_and_variances_are_numpys_to_the_last_bit(values: list[float]) -> None:
    # A median's gate runs without numpy (issue 18): its figures must not move for it.
    array = np.asarray(values)
    assert sum_of(values) == float(np.sum(array))
    assert mean_of(values) == float(np.mean(array))
    if len(values) > 1:
        assert variance_of(values) == float(np.var(array, ddof=1))
        assert summarize(values).stdev == float(np.std(array, ddof=1))
    assert summarize(values).mean == float(np.mean(array))


@COMMON
@given(long_samples, st.integers(min_value=1, max_value=300))
def test_thinning_keeps_the_samples_numpys_linspace_picks(values: list[float], cap: int) -> None:
    if len(values) > cap:
        picked = np.linspace(0, len(values) - 1, cap)
        assert thin(values, cap) == tuple(values[round(p)] for p in picked)
    else:
        assert thin(values, cap) == tuple(values)


@COMMON
@given(samples, samples, thresholds, noise)
def test_ratio_lies_inside_its_interval(
    base: list[float], cur: list[float], tau: float, run_noise: float
) -> None:
    d = compare(
        base,
        cur,
        direction=Direction.LOWER_IS_BETTER,
        threshold=tau,
        alpha=0.01,
        run_noise=run_noise,
    )
    assert d.ci_low <= d.ratio * (1 + 1e-12)
    assert d.ratio <= d.ci_high * (1 + 1e-12)
    assert d.ratio == pytest.approx(summarize(cur).median / summarize(base).median)


@COMMON
@given(samples, samples, thresholds, noise, st.floats(min_value=1e-3, max_value=1e3))
def test_verdict_does_not_depend_on_the_unit(
    base: list[float], cur: list[float], tau: float, run_noise: float, scale: float
) -> None:
    def decide(factor: float) -> tuple[Verdict, float]:
        d = compare(
            [x * factor for x in base],
            [x * factor for x in cur],
            direction=Direction.LOWER_IS_BETTER,
            threshold=tau,
            alpha=0.01,
            run_noise=run_noise,
        )
        return d.verdict, d.ratio

    (v1, r1), (v2, r2) = decide(1.0), decide(scale)
    assert r1 == pytest.approx(r2, rel=1e-9)
    if not math.isclose(r1, 1 + tau, rel_tol=1e-6):  # exactly on the threshold: rounding
        assert v1 is v2


# Odd sizes below 16: a median of an even count averages two values, and averages do
# not commute with 1/x (batch means, from 16 samples on, use medians of even blocks too).
odd_samples = st.lists(positive, min_size=3, max_size=15).filter(lambda xs: len(xs) % 2 == 1)


@COMMON
@given(odd_samples, odd_samples, thresholds, noise)
def test_higher_is_better_mirrors_lower_is_better(
    base: list[float], cur: list[float], tau: float, run_noise: float
) -> None:
    times = compare(
        base,
        cur,
        direction=Direction.LOWER_IS_BETTER,
        threshold=tau,
        alpha=0.01,
        run_noise=run_noise,
    )
    rates = compare(
        [1 / x for x in base],
        [1 / x for x in cur],
        direction=Direction.HIGHER_IS_BETTER,
        threshold=tau,
        alpha=0.01,
        run_noise=run_noise,
    )
    assert rates.p_worse == pytest.approx(times.p_worse, abs=1e-9)
    if not math.isclose(times.ratio, 1 + tau, rel_tol=1e-6):
        assert rates.verdict is times.verdict


@COMMON
@given(samples, thresholds, noise)
def test_the_same_samples_are_never_a_change(
    values: list[float], tau: float, run_noise: float
) -> None:
    d = compare(
        values,
        values,
        direction=Direction.LOWER_IS_BETTER,
        threshold=tau,
        alpha=0.05,
        run_noise=run_noise,
    )
    assert d.verdict is Verdict.UNCHANGED
    assert d.ratio == pytest.approx(1.0)


@COMMON
@given(samples, samples, noise)
def test_a_larger_threshold_never_makes_a_regression_more_likely(
    base: list[float], cur: list[float], run_noise: float
) -> None:
    kwargs = {"direction": Direction.LOWER_IS_BETTER, "alpha": 0.01, "run_noise": run_noise}
    strict = compare(base, cur, threshold=0.01, **kwargs)  # type: ignore[arg-type]
    lenient = compare(base, cur, threshold=0.2, **kwargs)  # type: ignore[arg-type]
    assert lenient.p_worse >= strict.p_worse - 1e-12
    if lenient.verdict is Verdict.REGRESSED:
        assert strict.verdict is Verdict.REGRESSED


@COMMON
@given(st.lists(positive, min_size=1, max_size=300), st.integers(min_value=1, max_value=100))
def test_thinning_keeps_time_order_and_the_cap(values: list[float], cap: int) -> None:
    kept = thin(values, cap)
    assert len(kept) == min(cap, len(values))
    positions = iter(range(len(values)))
    for value in kept:  # a subsequence: every kept value appears later than the last one
        assert any(values[i] == value for i in positions)
