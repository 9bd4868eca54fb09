"""The tail statistic: sample quantiles, their exact bootstrap, bursts, and the p99 test
on known distributions (false alarms on A/A data, detection of a heavier tail)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pytest_perfgate.model import Direction, Verdict
from pytest_perfgate.stats import (
    compare,
    compare_quantile,
    log_quantile_se,
    prior_weight,
    quantile_bootstrap,
    quantile_of,
    sample_quantile,
    tail_design_effect,
)

LOWER = Direction.LOWER_IS_BETTER
positive = st.floats(min_value=1e-7, max_value=1e3, allow_nan=False, allow_infinity=False)
samples = st.lists(positive, min_size=3, max_size=300)
COMMON = settings(max_examples=100, deadline=None)


def latencies(seed: int, n: int = 2000, scale: float = 1e-4, tail: float = 1.0) -> np.ndarray:
    """Latency-like samples: lognormal body with a Pareto tail (5% of requests), whose
    size ``tail`` multiplies."""
    rng = np.random.default_rng(seed)
    body = rng.lognormal(math.log(scale), 0.1, n)
    slow = rng.random(n) < 0.05
    body[slow] *= 1.0 + tail * (rng.pareto(3.0, slow.sum()) + 1.0)
    return body


@pytest.mark.parametrize(
    ("statistic", "quantile"), [("p99", 0.99), ("p90", 0.9), ("p99.9", 0.999), ("p75", 0.75)]
)
def test_quantile_of_reads_percentiles(statistic: str, quantile: float) -> None:
    assert quantile_of(statistic) == pytest.approx(quantile)


@pytest.mark.parametrize("statistic", ["median", "p50", "p100", "p", "99", "p-1", "p 99", "pxx"])
def test_quantile_of_rejects_what_is_not_a_tail(statistic: str) -> None:
    with pytest.raises(ValueError, match="tail percentile"):
        quantile_of(statistic)


@COMMON
@given(samples, st.floats(min_value=0.5, max_value=0.999))
def test_sample_quantile_is_numpys_inverted_cdf(values: list[float], q: float) -> None:
    # Where q * n is within float error of a whole number, quantile_rank deliberately
    # takes the whole number (0.999 * 1000 is rank 998); numpy takes the float as it is.
    assume(abs(q * len(values) - round(q * len(values))) > 1e-9)
    expected = float(np.quantile(values, q, method="inverted_cdf"))
    assert sample_quantile(values, q) == expected


@COMMON
@given(samples, st.floats(min_value=0.5, max_value=0.999))
def test_exact_bootstrap_is_a_distribution_over_the_samples(values: list[float], q: float) -> None:
    support, weights = quantile_bootstrap(values, q)
    assert weights.sum() == pytest.approx(1.0)
    assert (weights >= 0).all()
    assert list(support) == sorted(values)


def test_exact_bootstrap_matches_resampling() -> None:
    """The binomial formula gives what thousands of resamples estimate, without their
    Monte Carlo error."""
    values = latencies(1, n=1500)
    rng = np.random.default_rng(2)
    drawn = [
        math.log(np.quantile(rng.choice(values, len(values)), 0.99, method="inverted_cdf"))
        for _ in range(4000)
    ]
    support, weights = quantile_bootstrap(values, 0.99)
    logs = np.log(support)
    mean = float(np.dot(weights, logs))
    exact_sd = math.sqrt(float(np.dot(weights, (logs - mean) ** 2)))
    assert exact_sd == pytest.approx(float(np.std(drawn)), rel=0.08)
    assert mean == pytest.approx(float(np.mean(drawn)), abs=0.01)


def test_design_effect_is_one_for_independent_samples_and_grows_with_bursts() -> None:
    independent = latencies(3)
    assert tail_design_effect(independent, 0.99) < 3.0
    bursty = independent.copy()
    bursty[300:320] *= 20  # two stalls, each delaying 20 consecutive requests
    bursty[1500:1520] *= 20
    assert tail_design_effect(bursty, 0.99) > 5.0
    assert log_quantile_se(bursty, 0.99) > 2 * log_quantile_se(independent, 0.99)


def test_design_effect_needs_enough_samples() -> None:
    assert tail_design_effect([1.0, 2.0, 3.0], 0.99) == 1.0


def test_p99_test_has_few_false_alarms_on_a_a_data() -> None:
    """Unchanged code, fresh samples each time: REGRESSED at most about alpha of the time
    (within-run noise only: between-run noise is the history's job)."""
    alpha, trials = 0.05, 300
    false_alarms = 0
    for seed in range(trials):
        d = compare_quantile(
            latencies(2 * seed),
            latencies(2 * seed + 1),
            quantile=0.99,
            direction=LOWER,
            threshold=0.0,
            alpha=alpha,
        )
        false_alarms += d.verdict is Verdict.REGRESSED
    # Binomial(300, 0.05) is above 25 with probability < 0.5%.
    assert false_alarms <= 25


def test_p99_test_catches_a_heavier_tail_the_median_test_misses() -> None:
    base, heavier = latencies(10), latencies(11, tail=3.0)
    tail = compare_quantile(
        base, heavier, quantile=0.99, direction=LOWER, threshold=0.1, alpha=0.01
    )
    assert tail.verdict is Verdict.REGRESSED
    assert tail.ratio > 2.0
    middle = compare(tuple(base), tuple(heavier), direction=LOWER, threshold=0.1, alpha=0.01)
    assert middle.verdict is Verdict.UNCHANGED  # the body did not move


def test_p99_test_respects_the_direction() -> None:
    base, heavier = latencies(12), latencies(13, tail=3.0)
    d = compare_quantile(
        base,
        heavier,
        quantile=0.99,
        direction=Direction.HIGHER_IS_BETTER,
        threshold=0.1,
        alpha=0.01,
    )
    assert d.verdict is Verdict.IMPROVED


def test_p99_history_sets_the_centre_and_the_noise() -> None:
    base, current = latencies(14), latencies(15)
    level = sample_quantile(base, 0.99)
    # A history that says the p99 wanders by 30% between runs: a 40% rise is not shown.
    history = [level * f for f in (0.7, 1.0, 1.3, 0.8, 1.25)]
    d = compare_quantile(
        base,
        [x * 1.4 for x in current],
        quantile=0.99,
        direction=LOWER,
        threshold=0.05,
        alpha=0.01,
        history=history,
    )
    assert d.verdict is not Verdict.REGRESSED
    assert d.noise > 0.15


@COMMON
@given(samples, samples, st.floats(min_value=1e-3, max_value=1e3))
def test_p99_verdict_does_not_depend_on_the_unit(
    base: list[float], cur: list[float], scale: float
) -> None:
    def decide(factor: float) -> tuple[Verdict, float]:
        d = compare_quantile(
            [x * factor for x in base],
            [x * factor for x in cur],
            quantile=0.99,
            direction=LOWER,
            threshold=0.05,
            alpha=0.01,
            run_noise=0.02,
        )
        return d.verdict, d.ratio

    verdict, ratio = decide(1.0)
    scaled_verdict, scaled_ratio = decide(scale)
    assert scaled_ratio == pytest.approx(ratio, rel=1e-9)
    assert scaled_verdict is verdict or math.isclose(ratio, 1.05, rel_tol=1e-6)


@COMMON
@given(samples, samples)
def test_p99_ratio_lies_inside_its_interval(base: list[float], cur: list[float]) -> None:
    d = compare_quantile(base, cur, quantile=0.99, direction=LOWER, threshold=0.0, alpha=0.05)
    assert d.ci_low <= d.ratio * (1 + 1e-12)
    assert d.ratio <= d.ci_high * (1 + 1e-12)
    assert d.ratio == pytest.approx(sample_quantile(cur, 0.99) / sample_quantile(base, 0.99))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantile": 1.0}, "quantile"),
        ({"threshold": -0.1}, "threshold"),
    ],
)
def test_compare_quantile_rejects_bad_arguments(kwargs: dict[str, float], message: str) -> None:
    arguments = {"quantile": 0.99, "threshold": 0.0} | kwargs
    with pytest.raises(ValueError, match=message):
        compare_quantile([1.0, 2.0], [1.0, 2.0], direction=LOWER, alpha=0.05, **arguments)


def test_compare_quantile_rejects_non_positive_samples() -> None:
    with pytest.raises(ValueError, match="positive"):
        compare_quantile([0.0, 1.0], [1.0], quantile=0.99, direction=LOWER, threshold=0, alpha=0.1)


@pytest.mark.parametrize("history_runs", [0, 5])
def test_p99_test_counts_the_runs_pooled_in_the_current_samples(history_runs: int) -> None:
    """A/B mode pools several runs of the candidate: their level wanders by the run noise
    over that many runs, so the interval is that much narrower than for one run."""
    base, current = latencies(16), latencies(17)
    noise = 0.05
    level = sample_quantile(base, 0.99)
    history = [level * f for f in (0.95, 1.05, 1.0, 0.97, 1.03)][:history_runs]

    def log_half_width(runs: int) -> float:
        d = compare_quantile(
            base,
            current,
            quantile=0.99,
            direction=LOWER,
            threshold=0.05,
            alpha=0.05,
            history=history,
            run_noise=noise,
            current_runs=runs,
        )
        return math.log(d.ci_high / d.ci_low) / 2

    one, four = log_half_width(1), log_half_width(4)
    assert four < one
    # The run-noise part of the variance is all that changes: 1/1 -> 1/4 of it.
    if history_runs:
        logs = np.log(history)
        weight = prior_weight(history_runs)
        pooled = (weight * noise**2 + 4 * float(logs.var(ddof=1))) / (weight + 4)
        z = float(scipy.stats.t.ppf(0.975, weight + 4))  # the noise is estimated: Student-t
    else:
        pooled = noise**2
        z = 1.959963984540054
    assert (one / z) ** 2 - (four / z) ** 2 == pytest.approx(pooled * (1 - 1 / 4), rel=1e-9)
