"""Change points of one measurement's history: where its level moved, by how much, when.

E-divisive means (Matteson and James, 2014) in the form Apache Otava runs it (Fleming et al.,
"Hunter", ICPE 2023): within sliding windows, the split that maximises the energy distance
between its two sides is a candidate, kept when a t-test between the sides is significant
(a split pass with a looser threshold); then each candidate is tested against its neighbours
over the whole series and the weakest are dropped until all pass (a merge pass). Windows
find a change that a later one undoes; the merge pass keeps a long series' changes honest.

Each change comes with its commit range (the last commit before, the first after), its
relative size with a 95% interval, and its p-value. The method and its measured quality are
in docs/explanation/history-analysis.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, final

from .model import Series

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]


@final
@dataclass(frozen=True, slots=True)
class ChangePoint:
    """One step in a series' level, between two runs."""

    index: int  #: the first point after the change, in ``series.points``
    at: datetime  #: that point's time
    commit_before: str | None  #: the last commit measured before the change
    commit_after: str | None  #: the first commit measured after it
    before: float  #: the level of the segment before, up to the previous change (its
    #: geometric mean; the mean where a value is not positive)
    after: float  #: the level of the segment after, up to the next change
    change: float  #: after / before - 1 (+0.05 is 5% higher)
    change_low: float  #: 95% interval of ``change``
    change_high: float
    p_value: float  #: Welch's t-test between the two segments (the smaller, the surer)
    regression: bool  #: the change went the bad way for this measurement's direction


#: Points per window of the split pass: long enough to see a 3% step in 2% noise, short
#: enough that a change undone soon after is not averaged away (Otava uses 30 to 50).
WINDOW = 50

#: The split pass keeps candidates this many times looser than the final threshold, as
#: Otava does: a change tested inside a window has fewer points on each side.
SPLIT_LOOSENESS = 10.0

#: A run further than this many robust standard deviations (on the log scale) from the
#: median of the runs around it is a spike (a CI hiccup): it is pulled back to that
#: distance before any analysis, so one run cannot make or hide a change or bend a trend.
SPIKE_LIMIT = 5.0
#: How many runs the median a spike is judged against spans (the run in the middle).
SPIKE_WINDOW = 11


def change_points(
    series: Series,
    *,
    significance: float = 0.0005,
    min_segment: int = 5,
    window: int = WINDOW,
) -> list[ChangePoint]:
    """The change points of ``series``, in time order. ``significance`` is the largest
    p-value kept; a segment shorter than ``min_segment`` points is never split off."""
    import numpy as np

    values, logarithmic = _analysed(np.asarray(series.values, dtype=np.float64))
    kept = _detect(values, significance, min_segment, window)
    moments = _Moments(values)
    bounds = [0, *kept, len(values)]
    return [
        _change_point(series, moments, logarithmic, bounds[i : i + 3]) for i in range(len(kept))
    ]


def change_indices(
    values: Sequence[float] | FloatArray,
    *,
    significance: float = 0.0005,
    min_segment: int = 5,
    window: int = WINDOW,
) -> list[int]:
    """Where ``values`` change level (the first index after each change): the detector
    alone, for benchmarks and callers without a :class:`Series`."""
    import numpy as np

    analysed, _ = _analysed(np.asarray(values, dtype=np.float64))
    return _detect(analysed, significance, min_segment, window)


def _analysed(values: FloatArray) -> tuple[FloatArray, bool]:
    """What the detector reads: the logarithms of the despiked runs, so that relative
    noise is the same at every level (a step from 1 to 20 ms leaves the noise its share);
    the runs as they are when not all are positive. And whether they are logarithms."""
    import numpy as np

    if len(values) and np.all(np.isfinite(values)) and np.all(values > 0):
        logs: FloatArray = np.log(despiked(values))
        return logs, True
    return values, False


def despiked(values: FloatArray) -> FloatArray:
    """``values`` with each spike pulled back: a run further than SPIKE_LIMIT robust
    standard deviations (on the log scale: noise is relative) above the medians of both
    the runs before it and the runs after it (SPIKE_WINDOW // 2 each), or below both, is
    brought to that distance from the nearer median. A step is no spike: the runs after it
    agree with it. Series too short, or not all positive, come back as they are."""
    import numpy as np

    if len(values) < SPIKE_WINDOW or not np.all(np.isfinite(values)) or np.any(values <= 0):
        return values
    logs = np.log(values)
    half = SPIKE_WINDOW // 2
    # Mirrored at the ends: the first run's "before" are the runs after it.
    padded = np.pad(logs, half, mode="reflect")
    sides = np.lib.stride_tricks.sliding_window_view(padded, half)
    before = np.median(sides[: len(logs)], axis=1)
    after = np.median(sides[half + 1 : half + 1 + len(logs)], axis=1)
    centre = (before + after) / 2.0
    limit = SPIKE_LIMIT * 1.4826 * float(np.median(np.abs(logs - centre)))
    if limit == 0.0:
        return values
    high = np.fmax(before, after) + limit
    low = np.fmin(before, after) - limit
    cleaned: FloatArray = np.exp(np.clip(logs, low, high))
    return cleaned


def _detect(values: FloatArray, significance: float, min_segment: int, window: int) -> list[int]:
    import numpy as np

    if len(values) < 2 * min_segment or not np.all(np.isfinite(values)):
        return []
    moments = _Moments(values)
    candidates = _split_pass(values, moments, significance * SPLIT_LOOSENESS, min_segment, window)
    return _merge_pass(moments, candidates, significance, min_segment)


class _Moments:
    """Prefix sums of a series, so any segment's mean and variance cost O(1)."""

    __slots__ = ("_squares", "_sums", "centre", "scale", "size")

    def __init__(self, values: FloatArray) -> None:
        import numpy as np

        # Centred and scaled first, so the sums of squares lose no precision.
        scale = float(np.abs(values).max()) or 1.0
        centred = (values - float(values.mean())) / scale
        self._sums: list[float] = [0.0, *np.cumsum(centred).tolist()]
        self._squares: list[float] = [0.0, *np.cumsum(centred * centred).tolist()]
        self.scale = scale
        self.centre = float(values.mean())
        self.size = len(values)

    def mean(self, start: int, stop: int) -> float:
        """The mean of ``values[start:stop]``."""
        return self.centre + self.scale * (self._sums[stop] - self._sums[start]) / (stop - start)

    def share(self, start: int, stop: int) -> float:
        """The variance of the mean of ``values[start:stop]``: s^2 / n."""
        count = stop - start
        total = self._sums[stop] - self._sums[start]
        squares = self._squares[stop] - self._squares[start]
        variance = max(squares - total * total / count, 0.0) / (count - 1)
        return variance * self.scale**2 / count


def _split_pass(
    values: FloatArray, moments: _Moments, threshold: float, min_segment: int, window: int
) -> list[int]:
    """Candidates from E-divisive inside windows of one width that overlap by half (the
    last one ends at the series' end); the windows' first splits are found together."""
    import numpy as np

    size = len(values)
    width = min(max(window, 2 * min_segment), size)
    starts = sorted({*range(0, size - width + 1, max(width // 2, 1)), size - width})
    windows = values[np.asarray(starts)[:, None] + np.arange(width)]
    found: set[int] = set()
    splits: list[int] = [int(split) for split in _best_splits(windows, min_segment)]
    for start, split in zip(starts, splits, strict=True):
        if _significant(moments, start, start + split, start + width, threshold):
            found.add(start + split)
            found.update(_divide(values, moments, start, start + split, threshold, min_segment))
            found.update(
                _divide(values, moments, start + split, start + width, threshold, min_segment)
            )
    return sorted(found)


def _divide(
    values: FloatArray,
    moments: _Moments,
    start: int,
    stop: int,
    threshold: float,
    min_segment: int,
) -> list[int]:
    """E-divisive's recursion inside ``values[start:stop]``: split where the energy
    distance is largest, while the split is significant."""
    found: list[int] = []
    pending = [(start, stop)]
    while pending:
        low, high = pending.pop()
        if high - low < 2 * min_segment:
            continue
        split = low + int(_best_splits(values[None, low:high], min_segment)[0])
        if _significant(moments, low, split, high, threshold):
            found.append(split)
            pending += [(low, split), (split, high)]
    return found


def _best_splits(segments: FloatArray, min_segment: int) -> npt.NDArray[np.intp]:
    """Per row of ``segments``, the split with the largest energy statistic (alpha = 1),
    in O(n^2) from one distance matrix: within-sums of every prefix and suffix, the
    cross-sum as the rest of the total."""
    import numpy as np

    size = segments.shape[1]
    upper = np.triu(np.abs(segments[:, :, None] - segments[:, None, :]), 1)
    # left[t]: the sum over pairs i < k < t; right[t]: over pairs t <= i < k.
    zeros = np.zeros((len(segments), 1))
    left = np.concatenate((zeros, np.cumsum(upper.sum(axis=1), axis=1)), axis=1)
    right = np.concatenate((np.cumsum(upper.sum(axis=2)[:, ::-1], axis=1)[:, ::-1], zeros), axis=1)
    splits = np.arange(min_segment, size - min_segment + 1)
    inside_left, inside_right = left[:, splits], right[:, splits]
    cross = left[:, -1:] - inside_left - inside_right
    n_left = splits.astype(np.float64)
    n_right = size - n_left
    statistic = (n_left * n_right / size) * (
        2.0 * cross / (n_left * n_right)
        - 2.0 * inside_left / np.maximum(n_left * (n_left - 1.0), 1.0)
        - 2.0 * inside_right / np.maximum(n_right * (n_right - 1.0), 1.0)
    )
    best: npt.NDArray[np.intp] = splits[np.argmax(statistic, axis=1)]
    return best


def _merge_pass(
    moments: _Moments, candidates: list[int], significance: float, min_segment: int
) -> list[int]:
    """Drop the weakest candidate, tested between its neighbours, until all pass."""
    size = moments.size
    kept = [index for index in candidates if min_segment <= index <= size - min_segment]
    while kept:
        bounds = [0, *kept, size]
        p_values = [
            _p_value(moments, bounds[i], bounds[i + 1], bounds[i + 2])
            if min(bounds[i + 1] - bounds[i], bounds[i + 2] - bounds[i + 1]) >= min_segment
            else 1.0
            for i in range(len(kept))
        ]
        weakest = max(range(len(kept)), key=p_values.__getitem__)
        if p_values[weakest] <= significance:
            return kept
        del kept[weakest]
    return kept


@final
@dataclass(frozen=True, slots=True)
class _Welch:
    """Welch's comparison of the segments ``[start, split)`` and ``[split, stop)``."""

    before: float  #: the first segment's mean
    after: float  #: the second segment's mean
    share_before: float  #: the variance of the first mean (s^2 / n)
    share_after: float
    freedom: float  #: Welch-Satterthwaite degrees of freedom; 0 when undefined

    @classmethod
    def of(cls, moments: _Moments, start: int, split: int, stop: int) -> _Welch:
        before, after = moments.mean(start, split), moments.mean(split, stop)
        if split - start < 2 or stop - split < 2:
            return cls(before, after, 0.0, 0.0, 0.0)
        share_before, share_after = moments.share(start, split), moments.share(split, stop)
        total = share_before + share_after
        if total == 0.0:
            return cls(before, after, 0.0, 0.0, 1.0 if after != before else 0.0)
        freedom = total**2 / (
            share_before**2 / (split - start - 1) + share_after**2 / (stop - split - 1)
        )
        return cls(before, after, share_before, share_after, freedom)


def _significant(moments: _Moments, start: int, split: int, stop: int, threshold: float) -> bool:
    """Is Welch's t-test's p-value at most ``threshold``? The same answer as
    ``_p_value(...) <= threshold``, from a cached critical t (at the whole degrees of
    freedom below Welch's: a hair stricter), since the split pass asks it thousands of
    times."""
    welch = _Welch.of(moments, start, split, stop)
    if welch.freedom <= 0.0:
        return False
    error = math.sqrt(welch.share_before + welch.share_after)
    if error == 0.0:
        return True
    statistic = abs(welch.after - welch.before) / error
    return statistic >= _critical_t(max(int(welch.freedom), 1), threshold)


@functools.lru_cache(maxsize=4096)
def _critical_t(freedom: int, threshold: float) -> float:
    """The two-sided critical value of Student's t at ``threshold``."""
    from scipy.special import stdtrit

    return float(stdtrit(freedom, 1.0 - threshold / 2.0))


def _p_value(moments: _Moments, start: int, split: int, stop: int) -> float:
    """Welch's two-sided t-test between ``[start, split)`` and ``[split, stop)``."""
    from scipy.special import stdtr

    welch = _Welch.of(moments, start, split, stop)
    if welch.freedom <= 0.0:
        return 1.0
    error = math.sqrt(welch.share_before + welch.share_after)
    if error == 0.0:
        return 0.0
    statistic = abs(welch.after - welch.before) / error
    return float(2.0 * stdtr(welch.freedom, -statistic))


def _change_point(
    series: Series, moments: _Moments, logarithmic: bool, bounds: list[int]
) -> ChangePoint:
    """The change at ``bounds[1]``, sized between its neighbouring changes ``bounds[0]``
    and ``bounds[2]``."""
    start, index, stop = bounds
    welch = _Welch.of(moments, start, index, stop)
    change, low, high = (_ratio_change if logarithmic else _relative_change)(welch)
    before, after = welch.before, welch.after
    if logarithmic:  # geometric means: the level a run's median sits at
        before, after = math.exp(before), math.exp(after)
    worse = after > before if series.lower_is_better else after < before
    return ChangePoint(
        index=index,
        at=series.points[index].at,
        commit_before=series.points[index - 1].commit,
        commit_after=series.points[index].commit,
        before=before,
        after=after,
        change=change,
        change_low=low,
        change_high=high,
        p_value=_p_value(moments, start, index, stop),
        regression=worse,
    )


def _ratio_change(welch: _Welch) -> tuple[float, float, float]:
    """after / before - 1 with a 95% interval, from segments of logarithms: Welch's t
    interval of the difference of their means, as a ratio."""
    from scipy.special import stdtrit

    difference = welch.after - welch.before
    error = math.sqrt(welch.share_before + welch.share_after)
    if error == 0.0 or welch.freedom <= 0.0:
        return (math.expm1(difference),) * 3
    half = float(stdtrit(welch.freedom, 0.975)) * error
    return math.expm1(difference), math.expm1(difference - half), math.expm1(difference + half)


def _relative_change(welch: _Welch) -> tuple[float, float, float]:
    """after / before - 1 with a 95% interval: Welch's t interval of the means' ratio, its
    standard error by the delta method."""
    from scipy.special import stdtrit

    before, after = welch.before, welch.after
    if before == 0.0:
        return math.nan, math.nan, math.nan
    change = after / before - 1.0
    error = math.sqrt(welch.share_after / before**2 + welch.share_before * after**2 / before**4)
    if error == 0.0 or welch.freedom <= 0.0:
        return change, change, change
    quantile = float(stdtrit(welch.freedom, 0.975))
    return change, change - quantile * error, change + quantile * error


__all__: Sequence[str] = ("ChangePoint", "change_indices", "change_points", "despiked")
