"""The pure statistics, on synthetic samples from seeded generators (never real timings)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from pytest_perfgate.model import Direction, Verdict
from pytest_perfgate.stats import (
    Decision,
    bonferroni,
    compare,
    log_median_se,
    median_ci,
    median_ci_ranks,
    relative_ci_width,
    summarize,
    thin,
)

LOWER = Direction.LOWER_IS_BETTER
HIGHER = Direction.HIGHER_IS_BETTER


def lognormal(seed: int, centre: float = 1e-3, sigma: float = 0.02, n: int = 200) -> list[float]:
    rng = np.random.default_rng(seed)
    values: list[float] = rng.lognormal(math.log(centre), sigma, n).tolist()
    return values


def decide(
    baseline: list[float],
    current: list[float],
    *,
    direction: Direction = LOWER,
    threshold: float = 0.05,
    alpha: float = 0.01,
    history: tuple[float, ...] = (),
    run_noise: float = 0.02,
) -> Decision:
    return compare(
        baseline,
        current,
        direction=direction,
        threshold=threshold,
        alpha=alpha,
        history=history,
        run_noise=run_noise,
    )


# --- summaries and intervals ---------------------------------------------------------------


def test_summarize_known_values() -> None:
    summary = summarize([5.0, 1.0, 4.0, 2.0, 3.0])
    assert summary.n == 5
    assert summary.median == 3.0
    assert summary.mean == 3.0
    assert summary.stdev == pytest.approx(math.sqrt(2.5))
    assert (summary.min, summary.max) == (1.0, 5.0)
    assert (summary.q1, summary.q3) == (2.0, 4.0)
    assert summary.median_ci_low <= summary.median <= summary.median_ci_high


def test_summarize_single_sample_has_zero_spread() -> None:
    summary = summarize([2.5])
    assert summary.stdev == 0.0
    assert (summary.median_ci_low, summary.median, summary.median_ci_high) == (2.5, 2.5, 2.5)


def test_summarize_empty_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        summarize([])


def test_median_ci_ranks_are_within_range_and_around_the_middle() -> None:
    for n in range(1, 300):
        lo, hi = median_ci_ranks(n)
        assert 0 <= lo <= (n - 1) // 2 <= n // 2 <= hi <= n - 1


def test_median_ci_ranks_reject_no_samples() -> None:
    with pytest.raises(ValueError, match="no samples"):
        median_ci_ranks(0)


def test_median_ci_ranks_cover_the_median_at_least_95_percent() -> None:
    # Exact coverage of [X(lo), X(hi)]: P(lo < B <= hi) with B ~ Binomial(n, 1/2) counting
    # the samples below the true median. Below n=6 no interval reaches 95%.
    for n in range(6, 500):
        lo, hi = median_ci_ranks(n)
        coverage = binom.cdf(hi, n, 0.5) - binom.cdf(lo, n, 0.5)
        assert coverage >= 0.95, (n, lo, hi, coverage)


def test_median_ci_brackets_the_median_and_narrows_with_more_samples() -> None:
    small, large = lognormal(1, n=30), lognormal(1, n=3000)
    lo_small, hi_small = median_ci(small)
    lo_large, hi_large = median_ci(large)
    assert lo_small <= float(np.median(small)) <= hi_small
    assert lo_large <= float(np.median(large)) <= hi_large
    assert hi_large - lo_large < (hi_small - lo_small) / 3


def test_relative_ci_width() -> None:
    assert relative_ci_width([1.0] * 50) == 0.0
    assert relative_ci_width([1.0]) == math.inf
    assert relative_ci_width([0.0] * 10) == math.inf
    samples = lognormal(2, n=400)
    lo, hi = median_ci(samples)
    assert relative_ci_width(samples) == pytest.approx((hi - lo) / float(np.median(samples)))
    assert summarize(samples).relative_ci_width == pytest.approx(relative_ci_width(samples))


def test_log_median_se_without_enough_samples_for_blocks_uses_the_order_statistics() -> None:
    samples = lognormal(3, n=15)  # fewer than 2 * 8 blocks
    lo, hi = median_ci(samples)
    assert log_median_se(samples) == pytest.approx((math.log(hi) - math.log(lo)) / (2 * 1.96), 1e-3)


def test_log_median_se_batch_means_see_drift_that_order_statistics_miss() -> None:
    # A 20% slow drift over the run: the same values in time order and shuffled have the
    # same order statistics, but only the time-ordered run shows the drift in block medians.
    drifting = (np.asarray(lognormal(4)) * np.linspace(1.0, 1.2, 200)).tolist()
    shuffled = np.random.default_rng(5).permutation(drifting).tolist()
    assert median_ci(drifting) == median_ci(shuffled)
    assert log_median_se(drifting) > 2 * log_median_se(shuffled)


# --- the decision --------------------------------------------------------------------------


def test_large_slowdown_is_regressed() -> None:
    decision = decide(lognormal(10), lognormal(11, centre=1.3e-3))
    assert decision.verdict is Verdict.REGRESSED
    assert decision.ratio == pytest.approx(1.3, rel=0.02)
    assert decision.ci_low < decision.ratio < decision.ci_high
    assert decision.p_worse < 1e-6


def test_identical_distributions_are_unchanged() -> None:
    decision = decide(lognormal(10), lognormal(12), run_noise=0.0)
    assert decision.verdict is Verdict.UNCHANGED
    assert decision.ratio == pytest.approx(1.0, abs=0.01)
    assert decision.ci_low < 1.0 < decision.ci_high


def test_large_speedup_is_improved() -> None:
    decision = decide(lognormal(10), lognormal(13, centre=0.7e-3))
    assert decision.verdict is Verdict.IMPROVED
    assert decision.p_better < 1e-6


def test_change_right_at_the_threshold_is_inconclusive() -> None:
    decision = decide(lognormal(10), lognormal(14, centre=1.05e-3), threshold=0.05)
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert 0.05 < decision.p_worse < 0.95


def test_higher_is_better_flips_the_direction() -> None:
    baseline = lognormal(10)
    assert decide(baseline, lognormal(11, centre=1.3e-3), direction=HIGHER).verdict is (
        Verdict.IMPROVED
    )
    assert decide(baseline, lognormal(13, centre=0.7e-3), direction=HIGHER).verdict is (
        Verdict.REGRESSED
    )


@pytest.mark.parametrize(
    ("current", "verdict"),
    [
        (1100.0, Verdict.REGRESSED),
        (1020.0, Verdict.UNCHANGED),
        (1000.0, Verdict.UNCHANGED),
        (900.0, Verdict.IMPROVED),
    ],
)
def test_deterministic_metrics_without_spread(current: float, verdict: Verdict) -> None:
    decision = decide([1000.0] * 5, [current] * 5, threshold=0.05, run_noise=0.0)
    assert decision.verdict is verdict
    assert decision.ci_low == decision.ci_high == pytest.approx(current / 1000.0)
    assert decision.p_worse in (0.0, 1.0)


def test_history_of_three_or_more_sets_the_centre_and_the_noise() -> None:
    # The baseline's own samples say 1 ms; three refreshes say 1.1 ms.
    baseline, current = lognormal(10), lognormal(15, centre=1.1e-3)
    history = (1.09e-3, 1.10e-3, 1.11e-3)
    without = decide(baseline, current)
    with_history = decide(baseline, current, history=history)
    assert without.ratio == pytest.approx(1.1, rel=0.02)
    assert with_history.ratio == pytest.approx(1.0, abs=0.02)
    assert without.noise == 0.02
    assert with_history.noise != 0.02
    # Two refreshes are not enough to estimate anything: ignored.
    assert decide(baseline, current, history=history[:2]) == without


def test_history_spread_raises_the_noise_estimate() -> None:
    baseline, current = lognormal(10), lognormal(16)
    calm = decide(baseline, current, history=(1e-3,) * 5, run_noise=0.02)
    wild = decide(baseline, current, history=(0.8e-3, 1.2e-3, 0.9e-3, 1.1e-3, 1e-3))
    assert calm.noise < 0.02 < wild.noise
    assert wild.ci_high - wild.ci_low > calm.ci_high - calm.ci_low


def test_run_noise_widens_the_interval_and_turns_a_small_shift_inconclusive() -> None:
    baseline, current = lognormal(10), lognormal(17, centre=1.1e-3)
    quiet = decide(baseline, current, run_noise=0.0)
    noisy = decide(baseline, current, run_noise=0.05)
    assert quiet.verdict is Verdict.REGRESSED
    assert noisy.verdict is Verdict.INCONCLUSIVE
    assert noisy.ci_high - noisy.ci_low > 5 * (quiet.ci_high - quiet.ci_low)


@pytest.mark.parametrize(
    ("baseline", "current", "kwargs", "message"),
    [
        ([], [1.0], {}, "non-empty"),
        ([1.0], [], {}, "non-empty"),
        ([1.0, 0.0], [1.0], {}, "positive"),
        ([1.0], [-1.0], {}, "positive"),
        ([1.0], [1.0], {"history": (1.0, 0.0, 1.0)}, "positive"),
        ([1.0], [1.0], {"threshold": -0.01}, "negative"),
        ([1.0], [1.0], {"run_noise": -0.01}, "negative"),
    ],
)
def test_compare_rejects_bad_input(
    baseline: list[float], current: list[float], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decide(baseline, current, **kwargs)  # type: ignore[arg-type]


# --- bookkeeping ---------------------------------------------------------------------------


def test_bonferroni() -> None:
    assert bonferroni(0.01, 5) == pytest.approx(0.05)
    assert bonferroni(0.3, 5) == 1.0
    assert bonferroni(0.02, 0) == 0.02


def test_thin_keeps_time_order_first_and_last() -> None:
    samples = [float(i) for i in range(1000)]
    thinned = thin(samples, 37)
    assert len(thinned) == 37
    assert thinned[0] == 0.0
    assert thinned[-1] == 999.0
    assert list(thinned) == sorted(set(thinned))  # strictly increasing: order kept, no repeats


def test_thin_below_the_cap_keeps_everything() -> None:
    assert thin([3.0, 1.0, 2.0], 3) == (3.0, 1.0, 2.0)
    assert thin([3.0, 1.0, 2.0], 100) == (3.0, 1.0, 2.0)


def test_thin_rejects_a_non_positive_cap() -> None:
    with pytest.raises(ValueError, match="cap"):
        thin([1.0], 0)
