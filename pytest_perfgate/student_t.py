"""The Student-t's upper tail and quantile in plain Python.

The gate decides on a Student-t once a baseline has three runs of history
(``stats.run_noise_of``). scipy's ``stdtr`` and ``stdtrit`` give the same figures to about
1e-13 relative (``tests/test_student_t.py`` checks), but importing scipy and numpy costs a
quarter of a second and 28 MiB at the first decision of every run.

The tail is the regularized incomplete beta function, by its continued fraction (modified
Lentz); the quantile solves for it with Newton steps kept inside a bracket.
"""

from __future__ import annotations

import math
from functools import lru_cache

#: Relative change at which the continued fraction and the quantile's steps stop.
_PRECISION = 1e-16
#: Stands in for a zero denominator in the continued fraction (Lentz's method).
_TINY = 1e-300
_MAX_TERMS = 1000
_MAX_STEPS = 200


def upper_tail(t: float, df: float) -> float:
    """P(T > t) for a Student-t with ``df`` > 0 degrees of freedom."""
    if math.isnan(t):
        return math.nan
    t2 = t * t
    if t2 == 0.0:  # 0, or so small that the tail is 0.5 to the last bit
        return 0.5
    # x = df / (df + t2) and y = t2 / (df + t2), each without cancellation: x + y = 1.
    both = _regularized_beta(df / 2, 0.5, -math.log1p(t2 / df), -math.log1p(df / t2))
    return 0.5 * both if t > 0 else 1.0 - 0.5 * both


def _regularized_beta(a: float, b: float, log_x: float, log_y: float) -> float:
    """I_x(a, b), with x and y = 1 - x given by their logs (x = 0 at log_x = -inf)."""
    x, y = math.exp(log_x), math.exp(log_y)
    if x == 0.0:
        return 0.0
    if y == 0.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * log_x + b * log_y)
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, y) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), for x below (a + 1) / (a + b + 2)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    fraction = d
    for m in range(1, _MAX_TERMS):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            fraction *= d * c
        if abs(d * c - 1.0) < _PRECISION:
            break
    return fraction


def _density(t: float, df: float) -> float:
    log_scale = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_scale - (df + 1) / 2 * math.log1p(t * t / df))


@lru_cache(maxsize=256)
def quantile(p: float, df: float) -> float:
    """The ``p`` quantile of a Student-t with ``df`` > 0 degrees of freedom (a gate asks
    for the same few levels in every decision: each is solved once)."""
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        return math.nan
    if p in (0.0, 1.0):
        return math.copysign(math.inf, p - 0.5)
    if p == 0.5:
        return 0.0
    # Solve on the smaller tail, where the probability keeps its relative precision.
    tail, sign = (p, -1.0) if p < 0.5 else (1.0 - p, 1.0)
    return sign * _upper_point(tail, df)


def _upper_point(tail: float, df: float) -> float:
    """The t > 0 whose upper tail is ``tail`` (below 0.5)."""
    low, high = 0.0, 1.0
    while upper_tail(high, df) > tail:
        low, high = high, high * 2
        if math.isinf(high):
            return math.inf
    t = (low + high) / 2
    for _ in range(_MAX_STEPS):
        excess = upper_tail(t, df) - tail  # falls as t grows
        if excess > 0:
            low = t
        else:
            high = t
        density = _density(t, df)
        step = excess / density if density > 0 else math.inf
        guess = t + step
        if not low < guess < high:  # Newton left the bracket: halve it instead
            guess = (low + high) / 2
        if abs(guess - t) <= _PRECISION * abs(guess) or high - low <= _PRECISION * high:
            return guess
        t = guess
    return t
