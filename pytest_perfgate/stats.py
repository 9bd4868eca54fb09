"""Pure statistics: summaries, confidence intervals, and the two-sample decision.

No clocks, no files, no pytest: numbers in, numbers out, so every rule here is tested on
synthetic samples. The decision procedure and why it looks like this is explained in
docs/explanation/statistics.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, final

from . import student_t
from .model import Direction, Summary, Verdict

if TYPE_CHECKING:
    import numpy as np

#: z for a two-sided 95% interval.
Z95 = 1.959963984540054


def median_ci_ranks(n: int, z: float = Z95) -> tuple[int, int]:
    """0-based ranks (lo, hi) of the sorted samples that bound the median's CI.

    Distribution-free: the number of samples below the true median is Binomial(n, 1/2);
    this is its normal approximation (with continuity correction, so the interval covers
    at least 95% for every n >= 6), clipped to the sample range.
    """
    if n <= 0:
        raise ValueError("no samples")
    half_width = z * math.sqrt(n) / 2.0 + 0.5
    lo = math.floor(n / 2.0 - half_width)
    hi = math.ceil(n / 2.0 + half_width) - 1
    return max(lo, 0), min(hi, n - 1)


def median_ci(samples: Sequence[float], z: float = Z95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median (95% by default)."""
    ordered = sorted(samples)
    lo, hi = median_ci_ranks(len(ordered), z)
    return ordered[lo], ordered[hi]


def relative_ci_width(samples: Sequence[float]) -> float:
    """Width of the median's 95% CI relative to the median; the sampler stops on this."""
    ordered = sorted(samples)
    n = len(ordered)
    median = _sorted_median(ordered)
    if n < 2 or median == 0:
        return math.inf
    lo, hi = median_ci_ranks(n)
    return (ordered[hi] - ordered[lo]) / abs(median)


def _sorted_median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def summarize(samples: Sequence[float]) -> Summary:
    """Descriptive statistics of a non-empty sample set."""
    if not samples:
        raise ValueError("cannot summarize an empty sample set")
    values = [float(v) for v in samples]
    ordered = sorted(values)
    lo, hi = (ordered[rank] for rank in median_ci_ranks(len(ordered)))
    q1, median, q3 = (percentile_of_sorted(ordered, q) for q in (0.25, 0.5, 0.75))
    mean = mean_of(values)
    low, high = ordered[0], ordered[-1]
    if math.isnan(mean) and any(math.isnan(v) for v in values):
        low = high = math.nan  # as numpy's: sorting puts a NaN anywhere
    return Summary(
        n=len(values),
        median=float(median),
        mean=mean,
        stdev=math.sqrt(variance_of(values)) if len(values) > 1 else 0.0,
        min=low,
        max=high,
        q1=float(q1),
        q3=float(q3),
        median_ci_low=float(lo),
        median_ci_high=float(hi),
    )


def percentile_of_sorted(ordered: Sequence[float], q: float) -> float:
    """``np.percentile(ordered, 100 * q)`` to the last bit (its default, linear
    method), without numpy's fixed cost per call: a summary is taken per test."""
    position = len(ordered) * q - q  # numpy's virtual index, computed as numpy does
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    low, high = ordered[below], ordered[above]
    step = high - low
    return high - step * (1 - fraction) if fraction >= 0.5 else low + step * fraction


def sum_of(values: Sequence[float]) -> float:
    """``np.sum(values)`` to the last bit (numpy's pairwise summation), in plain Python:
    the gate of a median needs no numpy, whose import costs a tenth of a second and
    whose every call costs microseconds on a handful of samples."""
    return 0.0 + _pairwise_sum(values, 0, len(values))


#: numpy's pairwise summation: below this, one accumulator...
_PAIRWISE_UNROLL = 8
#: ... up to this, eight accumulators; above it, each half summed on its own.
_PAIRWISE_BLOCK = 128


def _pairwise_sum(values: Sequence[float], start: int, n: int) -> float:
    if n < _PAIRWISE_UNROLL:
        total = 0.0
        for value in values[start : start + n]:
            total += value
        return total
    if n <= _PAIRWISE_BLOCK:
        lanes = list(values[start : start + _PAIRWISE_UNROLL])
        whole = n - n % _PAIRWISE_UNROLL
        for block in range(start + _PAIRWISE_UNROLL, start + whole, _PAIRWISE_UNROLL):
            for lane in range(_PAIRWISE_UNROLL):
                lanes[lane] += values[block + lane]
        total = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + (
            (lanes[4] + lanes[5]) + (lanes[6] + lanes[7])
        )
        for value in values[start + whole : start + n]:
            total += value
        return total
    half = n // 2
    half -= half % _PAIRWISE_UNROLL
    return _pairwise_sum(values, start, half) + _pairwise_sum(values, start + half, n - half)


def mean_of(values: Sequence[float]) -> float:
    """``np.mean(values)`` to the last bit."""
    return sum_of(values) / len(values)


def variance_of(values: Sequence[float], ddof: int = 1) -> float:
    """``np.var(values, ddof=ddof)`` to the last bit (numpy's two-pass formula); NaN
    where ``ddof`` leaves no degree of freedom."""
    if len(values) <= ddof:
        return math.nan
    mean = mean_of(values)
    return sum_of([(v - mean) * (v - mean) for v in values]) / (len(values) - ddof)


def _log_median_se(samples: Sequence[float]) -> float:
    lo, hi = median_ci(samples)
    if lo <= 0:
        return math.inf
    return (math.log(hi) - math.log(lo)) / (2 * Z95)


def log_median_se(samples: Sequence[float], blocks: int = 8) -> float:
    """Standard error of the log of the median of one run's samples.

    The larger of two estimates: the distribution-free CI of the median (right for
    independent samples) and batch means over contiguous blocks in time order, which sees
    slow drift inside the run (a neighbour waking up) that independent-sample formulas miss.
    """
    order_stat = _log_median_se(samples)
    n = len(samples)
    if n < 2 * blocks:
        return order_stat
    size = n // blocks
    block_logs = [
        math.log(_sorted_median(sorted(samples[i * size : (i + 1) * size]))) for i in range(blocks)
    ]
    batch = math.sqrt(variance_of(block_logs)) / math.sqrt(blocks)
    return max(order_stat, batch)


@final
@dataclass(frozen=True, slots=True)
class Decision:
    """What two sample sets say, before any multiple-testing bookkeeping."""

    verdict: Verdict  #: REGRESSED, UNCHANGED, IMPROVED or INCONCLUSIVE
    ratio: float  #: current median / baseline centre
    ci_low: float  #: 95% CI of the ratio, run-to-run noise included
    ci_high: float
    p_worse: float  #: one-sided p of "worse than the baseline by more than the threshold"
    p_better: float  #: one-sided p of "better by more than the threshold"
    noise: float  #: run-to-run noise (relative sd) the decision assumed
    note: str = ""
    #: The smallest change in the worse direction (relative: a slowdown for times, a drop
    #: for rates) that this decision's level and standard error flag with POWER; NaN
    #: where there is no test of significance.
    detectable_change: float = math.nan
    #: Degrees of freedom of the Student-t the decision used; inf for a normal.
    df: float = math.inf


#: Runs of history from which the run-to-run noise is measured rather than assumed.
NOISE_RUNS = 3
#: Weight of the run-noise prior, in runs of history, when the history is NOISE_RUNS long;
#: it falls as the history grows (see prior_weight).
PRIOR_RUNS = 4
#: The power at which the minimum detectable change is stated.
POWER = 0.8


def prior_weight(runs: int) -> float:
    """Weight of the run-noise prior, in runs, against a history of ``runs`` run levels.

    PRIOR_RUNS at NOISE_RUNS runs, then half a run less with each run added, down to half
    a run: its share of the pooled variance is 2/3 at 3 runs, 3/7 at 5, 1/19 at 10. The
    degrees of freedom (this weight plus ``runs - 1``) never fall as runs are added.
    """
    return max(PRIOR_RUNS - (runs - NOISE_RUNS) / 2, 0.5)


@final
@dataclass(frozen=True, slots=True)
class RunNoise:
    """The run-to-run noise of one measurement, as the gate estimates it."""

    sigma: float  #: relative standard deviation of a run's level (log scale)
    df: float  #: degrees of freedom of the estimate; inf when the prior stands alone
    runs: int  #: run levels in the history it was measured on (0: the prior alone)


def run_noise_of(history: Sequence[float], prior: float) -> RunNoise:
    """The run noise from a history of run levels pooled with ``prior``.

    Fewer than NOISE_RUNS levels measure nothing: the prior stands, as a known figure
    (it is chosen per kind of measurement at the high end of what was measured). From
    NOISE_RUNS on, the history's variance is pooled with the prior's, the prior weighing
    ``prior_weight(k)`` runs, and the estimate has that many degrees of freedom plus
    ``k - 1``: the decision then uses a Student-t, whose heavier tails pay for an estimate
    made from a few runs.
    """
    k = len(history)
    if k < NOISE_RUNS:
        return RunNoise(prior, math.inf, 0)
    # math.log, not numpy's: they differ by one unit in the last place on about one value
    # in 100,000 (numpy's is vectorised), far below anything a decision can see.
    logs = [math.log(h) for h in history]
    weight = prior_weight(k) if prior > 0 else 0.0
    pooled = (weight * prior**2 + (k - 1) * variance_of(logs)) / (weight + k - 1)
    return RunNoise(math.sqrt(pooled), weight + k - 1, k)


def compare(
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    direction: Direction,
    threshold: float,
    alpha: float,
    history: Sequence[float] = (),
    run_noise: float = 0.0,
    current_runs: int = 1,
) -> Decision:
    """Decide whether ``current`` is worse, better, or the same as ``baseline``.

    Works on log medians. Two runs of unchanged code differ by more than their samples
    say: each run lands at its own level (machine phase, memory layout), with relative
    spread ``run_noise``. So the difference is tested against the within-run standard
    errors *and* that run-to-run noise, with the practical ``threshold`` folded in:
    H0 "worse by at most the threshold" against H1 "worse by more". ``alpha`` is the
    level of this one decision (the caller corrects it for the number of tests).

    With three or more run-level medians in ``history``, the baseline's centre is their
    mean and the run noise is estimated from their spread, pooled with the ``run_noise``
    prior whose weight fades as the history grows (:func:`run_noise_of`), and the test is
    on a Student-t with the estimate's degrees of freedom.
    ``current_runs`` > 1 says ``current`` pools that many runs (A/B mode), whose level
    wanders by the run noise over that many runs, not one.
    """
    _check_inputs(baseline, current, history, threshold, run_noise)
    return _decide_on_levels(
        _log_median_and_se(current),
        lambda: _log_median_and_se(baseline),
        history=history,
        run_noise=run_noise,
        current_runs=current_runs,
        direction=direction,
        threshold=threshold,
        alpha=alpha,
    )


def _log_median_and_se(samples: Sequence[float]) -> tuple[float, float]:
    return math.log(_sorted_median(sorted(samples))), log_median_se(samples)


def _check_inputs(
    baseline: Sequence[float],
    current: Sequence[float],
    history: Sequence[float],
    threshold: float,
    run_noise: float,
) -> None:
    if len(baseline) == 0 or len(current) == 0:
        raise ValueError("both sample sets must be non-empty")
    if min(baseline) <= 0 or min(current) <= 0 or (len(history) and min(history) <= 0):
        raise ValueError("samples must be positive: changes are compared as ratios")
    if threshold < 0 or run_noise < 0:
        raise ValueError("threshold and run_noise must not be negative")


def _decide_on_levels(
    current: tuple[float, float],
    baseline: Callable[[], tuple[float, float]],
    *,
    history: Sequence[float],
    run_noise: float,
    current_runs: int,
    direction: Direction,
    threshold: float,
    alpha: float,
) -> Decision:
    """The part of the decision that the median and the tail quantile share: where the
    baseline stands and how far a run may wander from it, then the verdict.

    ``current`` is the current log level and its within-run standard error; ``baseline``
    gives the same for the baseline's samples, asked for only when the history is too
    short to stand for the baseline (a tail's standard error is not cheap).
    """
    current_log, current_se = current
    runs = max(current_runs, 1)
    noise = run_noise_of(history, run_noise)
    if noise.runs:
        centre = mean_of([math.log(h) for h in history])
        # The baseline's within-run error is part of the history's spread already.
        variance = current_se**2 + noise.sigma**2 * (1.0 / runs + 1.0 / noise.runs)
    else:
        centre, base_se = baseline()
        variance = current_se**2 + base_se**2 + (1.0 + 1.0 / runs) * noise.sigma**2
    return decide_log_difference(
        current_log - centre,
        math.sqrt(variance),
        direction,
        threshold,
        alpha,
        noise.sigma,
        df=noise.df,
    )


def decide_log_difference(
    diff: float,
    se: float,
    direction: Direction,
    threshold: float,
    alpha: float,
    noise: float,
    *,
    df: float = math.inf,
) -> Decision:
    """The verdict on a log difference ``diff`` (current - baseline) with standard error
    ``se``: a one-sided test with the practical threshold folded in, in both directions,
    on a Student-t with ``df`` degrees of freedom (a normal when infinite)."""
    ratio = math.exp(diff)
    z = _quantile(0.975, df)
    ci_low, ci_high = math.exp(diff - z * se), math.exp(diff + z * se)
    # Orient so that a positive difference is worse.
    worse = diff if direction is Direction.LOWER_IS_BETTER else -diff
    delta = math.log1p(threshold)
    if se == 0:  # deterministic metrics (bytes allocated, counts)
        p_worse = 0.0 if worse > delta else 1.0
        p_better = 0.0 if worse < -delta else 1.0
    else:
        p_worse = _upper_tail((worse - delta) / se, df)
        p_better = _upper_tail(-(worse + delta) / se, df)

    if p_worse < alpha and worse > delta:
        verdict = Verdict.REGRESSED
    elif p_better < alpha and worse < -delta:
        verdict = Verdict.IMPROVED
    elif worse <= delta:
        # Not shown worse, and the best estimate is inside the threshold. (Requiring the
        # whole CI inside it, as an equivalence test would, calls every test on a noisy
        # machine INCONCLUSIVE, and a verdict that is always "maybe" gets ignored.)
        verdict = Verdict.UNCHANGED
    else:
        verdict = Verdict.INCONCLUSIVE
    detectable = detectable_change(se, threshold, alpha, direction, df=df)
    return Decision(verdict, ratio, ci_low, ci_high, p_worse, p_better, noise, "", detectable, df)


def detectable_change(
    se: float,
    threshold: float,
    alpha: float,
    direction: Direction,
    *,
    df: float = math.inf,
    power: float = POWER,
) -> float:
    """The minimum detectable change: the smallest worsening that a one-sided test at level
    ``alpha`` with the threshold folded in flags with probability ``power``, given the
    standard error ``se`` of the log difference.

    On the log scale it is ``log(1 + threshold) + (t_{1-alpha} + t_{power}) * se``; returned
    as a relative change in the worse direction: ``exp(m) - 1`` for a time (lower is
    better), ``1 - exp(-m)`` for a rate (a drop). Deterministic sides (``se`` 0) detect
    anything beyond the threshold.
    """
    margin = math.log1p(threshold)
    if se > 0:
        margin += (_quantile(1 - alpha, df) + _quantile(power, df)) * se
    if direction is Direction.HIGHER_IS_BETTER:
        return -math.expm1(-margin)
    return math.expm1(margin)


def _upper_tail(z: float, df: float) -> float:
    """P(T > z) for a standard normal (``df`` infinite) or a Student-t with ``df`` degrees
    of freedom; neither needs scipy (slow to import: student_t.py says how close they are)."""
    if math.isinf(df):
        return 0.5 * math.erfc(z / math.sqrt(2.0))
    return student_t.upper_tail(z, df)


def _quantile(p: float, df: float) -> float:
    """The ``p`` quantile of the same distribution as :func:`_upper_tail`."""
    if math.isinf(df):
        return NormalDist().inv_cdf(p)
    return student_t.quantile(p, df)


def quantile_of(statistic: str) -> float:
    """The quantile a statistic names: ``"p99"`` -> 0.99, ``"p99.9"`` -> 0.999.

    Only tail quantiles above the median: lower ones are what the median test is for.
    """
    text = statistic[1:] if statistic[:1] == "p" else ""
    try:
        percent = float(text)
    except ValueError:
        percent = math.nan
    if not 50.0 < percent < 100.0 or text != text.strip():
        raise ValueError(
            f"statistic must be 'median' or a tail percentile such as 'p99' (above p50, "
            f"below p100), got {statistic!r}"
        )
    return percent / 100.0


def quantile_rank(n: int, quantile: float) -> int:
    """0-based rank of the sorted samples that is their ``quantile`` (the inverted-CDF
    definition: the smallest value with at least that fraction of samples at or below)."""
    if n <= 0:
        raise ValueError("no samples")
    # The tolerance keeps 0.999 * 1000 (998.99...9 or 999.00...1 in floats) at rank 998.
    return min(max(math.ceil(quantile * n - 1e-9) - 1, 0), n - 1)


def sample_quantile(samples: Sequence[float], quantile: float) -> float:
    """The sample ``quantile`` of ``samples``, an order statistic (see quantile_rank)."""
    ordered = sorted(samples)
    return ordered[quantile_rank(len(ordered), quantile)]


def quantile_bootstrap(samples: Sequence[float], quantile: float) -> tuple[np.ndarray, np.ndarray]:
    """The bootstrap distribution of the sample quantile, computed exactly.

    A resample's quantile is always one of the sorted samples x_(j); it is at most x_(j)
    when at least k+1 of the n resampled values are, a Binomial(n, (j+1)/n) event. So
    the probabilities that resampling would estimate by drawing thousands of resamples
    (and with Monte Carlo error, even with a fixed seed) follow from the binomial
    distribution at once. Returns the sorted values and their probabilities.
    """
    import numpy as np  # slow to import, as scipy: only tail statistics need them
    from scipy import stats as _scipy_stats

    ordered = np.sort(np.asarray(samples, dtype=float))
    n = len(ordered)
    k = quantile_rank(n, quantile)
    at_most = _scipy_stats.binom.sf(k, n, np.arange(1, n + 1) / n)  # P(Q* <= x_(j))
    weights = np.diff(at_most, prepend=0.0)
    return ordered, np.clip(weights, 0.0, None)


def tail_design_effect(samples: Sequence[float], quantile: float, blocks: int = 10) -> float:
    """How much less the samples (in time order) say about their ``quantile`` than as
    many independent ones would: at least 1.

    Tail values come in bursts: one stall of the machine delays a run of consecutive
    requests, and they all land beyond the p99 together. The fraction of samples beyond
    the quantile, taken over contiguous blocks (batch means), varies that much more
    between blocks than a binomial would; the ratio of the two variances is the factor
    by which the quantile's variance grows.
    """
    n = len(samples)
    if n < 2 * blocks:
        return 1.0
    import numpy as np

    values = np.asarray(samples, dtype=float)
    beyond = values > sample_quantile(samples, quantile)
    p = float(beyond.mean())
    if p <= 0.0 or p >= 1.0:
        return 1.0
    size = n // blocks
    fractions = beyond[: size * blocks].reshape(blocks, size).mean(axis=1)
    return max(1.0, float(fractions.var(ddof=1)) * size / (p * (1.0 - p)))


def log_quantile_se(samples: Sequence[float], quantile: float) -> float:
    """Standard error of the log of the sample ``quantile``: the spread of its exact
    bootstrap distribution (the Maritz-Jarrett estimate, on the log scale), widened by
    the tail's design effect when tail values come in bursts (tail_design_effect)."""
    import numpy as np

    values, weights = quantile_bootstrap(samples, quantile)
    if values[0] <= 0:
        raise ValueError("samples must be positive: changes are compared as ratios")
    logs = np.log(values)
    mean = float(np.dot(weights, logs) / weights.sum())
    variance = float(np.dot(weights, (logs - mean) ** 2) / weights.sum())
    return math.sqrt(variance * tail_design_effect(samples, quantile))


def compare_quantile(
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    quantile: float,
    direction: Direction,
    threshold: float,
    alpha: float,
    history: Sequence[float] = (),
    run_noise: float = 0.0,
    current_runs: int = 1,
) -> Decision:
    """Decide like :func:`compare`, on a tail quantile (the p99 of latencies) instead of
    the median.

    The median's order-statistic interval says nothing about the tail, and a tail is
    sparse: the p99 of 1000 samples rests on the ten largest. So the within-run standard
    error of each side's log quantile comes from its exact bootstrap distribution
    (:func:`quantile_bootstrap`); deterministic, no seed, no Monte Carlo error. The rest
    is :func:`compare`'s: run-to-run noise, the history of run-level quantiles when it has
    three or more, the runs pooled in ``current``, the threshold folded into a one-sided
    test.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    _check_inputs(baseline, current, history, threshold, run_noise)

    def log_quantile_and_se(samples: Sequence[float]) -> tuple[float, float]:
        return math.log(sample_quantile(samples, quantile)), log_quantile_se(samples, quantile)

    return _decide_on_levels(
        log_quantile_and_se(current),
        lambda: log_quantile_and_se(baseline),
        history=history,
        run_noise=run_noise,
        current_runs=current_runs,
        direction=direction,
        threshold=threshold,
        alpha=alpha,
    )


#: Nominal seconds of one speed-reference call. Speed-adjusted times read "seconds on a
#: machine that runs the reference in this long": a unit, not a measurement.
REFERENCE_NOMINAL_S = 400e-6


def speed_adjusted(samples: Sequence[float], reference: Sequence[float]) -> tuple[float, ...]:
    """Each sample divided by the speed-reference time measured right after it.

    A machine that is 5% slower for a moment runs both 5% slower, so the quotient keeps
    the code's own speed and sheds the machine's. Measured here: between-run spread of
    pure-Python tests fell from about 2.2% to 0.9% (docs/explanation/statistics.md).
    """
    if len(samples) != len(reference):
        raise ValueError("each sample needs its own reference time")
    return tuple(s * REFERENCE_NOMINAL_S / r for s, r in zip(samples, reference, strict=True))


def bonferroni(p_value: float, tests: int) -> float:
    """p adjusted for ``tests`` simultaneous decisions (reported as q)."""
    return min(1.0, p_value * max(tests, 1))


def thin(samples: Sequence[float], cap: int) -> tuple[float, ...]:
    """At most ``cap`` samples, evenly spaced in time order (drift stays visible)."""
    if cap <= 0:
        raise ValueError("cap must be positive")
    if len(samples) <= cap:
        return tuple(samples)
    # np.linspace(0, len(samples) - 1, cap)'s positions, computed as numpy does.
    step = (len(samples) - 1) / (cap - 1) if cap > 1 else 0.0
    positions = [i * step + 0.0 for i in range(cap)]
    positions[-1] = len(samples) - 1 if cap > 1 else 0.0
    return tuple(samples[round(p)] for p in positions)


def relative_spread(values: Sequence[float]) -> float:
    """(max - min) / median of ``values``; 0 for fewer than two."""
    if len(values) < 2:
        return 0.0
    ordered = sorted(values)
    return (ordered[-1] - ordered[0]) / _sorted_median(ordered)


def compare_counts(
    baseline: Sequence[float],
    current: Sequence[float],
    *,
    direction: Direction,
    threshold: float,
    history: Sequence[float] = (),
) -> Decision:
    """Decide on a deterministic metric (instruction counts): no run-noise prior and no
    test of significance, but the spread measured between runs.

    The samples of one run may differ by a few hundredths of a percent (CPython's free
    lists alternate between states), but in the same pattern in every run, so their
    medians agree between runs to the instruction or nearly: the within-run spread says
    nothing about the median's and is only reported. The spread that counts is the
    relative range of the baseline's run-level history (what the median did between
    refreshes of unchanged code). The change, widened by it on both sides, must lie
    beyond the threshold to be a regression (or an improvement), and within it to be
    unchanged; a history that moved as much as the threshold leaves the verdict
    inconclusive.
    """
    if not baseline or not current:
        raise ValueError("compare_counts needs samples on both sides")
    ratio = _sorted_median(sorted(current)) / _sorted_median(sorted(baseline))
    spread = relative_spread(history)
    worse = ratio if direction is Direction.LOWER_IS_BETTER else 1.0 / ratio
    low, high = worse * (1.0 - spread), worse * (1.0 + spread)
    if low > 1.0 + threshold:
        verdict = Verdict.REGRESSED
    elif high < 1.0 - threshold:
        verdict = Verdict.IMPROVED
    elif high <= 1.0 + threshold and low >= 1.0 - threshold:
        verdict = Verdict.UNCHANGED
    else:
        verdict = Verdict.INCONCLUSIVE
    within = max(relative_spread(baseline), relative_spread(current))
    note = f"counts spread {within * 100:.2g}% within a run, {spread * 100:.2g}% between runs"
    if verdict is Verdict.INCONCLUSIVE:
        note += ": too close to the threshold to tell"
    return Decision(
        verdict=verdict,
        ratio=ratio,
        ci_low=ratio * (1.0 - spread),
        ci_high=ratio * (1.0 + spread),
        p_worse=math.nan,  # no test of significance: a count has no sampling noise to test
        p_better=math.nan,
        noise=spread,
        note=note,
    )
