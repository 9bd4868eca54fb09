"""Trends, budget outlooks and capacity projections of one measurement's history.

The trend is fitted by least squares over time to the runs since the series' last step
(spikes pulled back), twice: a compounding line through their logarithms and a straight one
through the values; the noise is relative and the prediction of one new run mixes both
lines' classical t intervals half and half. The outlooks read it forward over calendar
quarters. A step restarts the trend, so it is never read as a slope. The model and its
measured coverage are in docs/explanation/history-analysis.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, final

from .changepoints import despiked
from .model import Series

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from .changepoints import ChangePoint

    FloatArray = npt.NDArray[np.float64]

#: Days in an average calendar quarter: what "per quarter" means for a slope or a growth.
QUARTER_DAYS = 365.25 / 4

#: Fewest points a trend is fitted to: a line and a residual spread need three.
MIN_TREND_POINTS = 3


@final
@dataclass(frozen=True, slots=True)
class Quarter:
    """One calendar quarter."""

    year: int
    number: int  #: 1 to 4

    @property
    def label(self) -> str:
        return f"{self.year} Q{self.number}"

    @classmethod
    def of(cls, at: datetime) -> Quarter:
        """The quarter ``at`` falls in (read in UTC)."""
        at = at.astimezone(timezone.utc) if at.tzinfo else at.replace(tzinfo=timezone.utc)
        return cls(at.year, (at.month - 1) // 3 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, 3 * self.number - 2, 1, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        """The first instant of the next quarter."""
        return self.following().start

    def following(self) -> Quarter:
        return (
            Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)
        )


@final
@dataclass(frozen=True, slots=True)
class Prediction:
    """What the trend expects of one run at a time, with a prediction interval."""

    at: datetime
    expected: float  #: the trend's level at ``at``, in the series' unit
    low: float  #: the interval a single run there falls in with probability ``coverage``
    high: float
    coverage: float  #: 0.8 for an 80% interval


@final
@dataclass(frozen=True, slots=True)
class Trend:
    """A straight line over time through a series' points since its last step, read two
    ways: through their logarithms (a steady relative growth, compounding) and through the
    values themselves (a steady absolute growth); the noise around it is relative.

    Which of the two a measurement follows, a history of a few quarters cannot tell; a
    forecast as far ahead as the history is long can tell them apart by more than the
    noise. So the prediction interval spans both lines' intervals, and a breach's chance
    is the average of both: where the lines agree (a flat or slow trend, a near horizon)
    that is the classical interval, and where they part it widens by what is not known.
    """

    since_index: int  #: the first point the line was fitted to, in ``series.points``
    since: datetime  #: that point's time
    origin: datetime  #: where time is 0 in the fit (the last point's time)
    level: float  #: the log line's value at ``origin``, in the series' unit
    log_slope_per_day: float  #: the level's logarithm's change per day (+0.001 is ~0.1%)
    log_residual_scale: float  #: the residuals' standard deviation, in log units (~relative)
    linear_level: float  #: the straight line's value at ``origin``, in the series' unit
    linear_slope_per_day: float  #: the straight line's change per day, in the series' unit
    points: int  #: how many points the line was fitted to
    mean_days: float  #: the mean of the fitted points' time (days from ``origin``)
    spread_days: float  #: the sum of squared deviations of those times (days squared)

    @property
    def change_per_quarter(self) -> float:
        """The growth of the level per 91.3 days (+0.02 is 2% a quarter)."""
        return math.expm1(self.log_slope_per_day * QUARTER_DAYS)

    @property
    def freedom(self) -> int:
        """Degrees of freedom of the residuals: a line costs two, a flat level one."""
        return self.points - (2 if self.spread_days > 0.0 else 1)

    def centres(self, at: datetime) -> tuple[float, ...]:
        """Each line's value at ``at``: the compounding one, and the straight one while it
        stays positive."""
        days = _days(at, self.origin)
        compounding = self.level * math.exp(self.log_slope_per_day * days)
        straight = self.linear_level + self.linear_slope_per_day * days
        return (compounding, straight) if straight > 0.0 else (compounding,)

    def expected(self, at: datetime) -> float:
        """The trend's value at ``at``: the geometric mean of the lines' values."""
        centres = self.centres(at)
        return math.exp(sum(math.log(c) for c in centres) / len(centres))

    def scale_at(self, at: datetime) -> float:
        """The standard error of one new run's logarithm at ``at``: the residuals' spread,
        widened by the uncertainty of the fitted level and slope there."""
        days = _days(at, self.origin)
        leverage = 1.0 / self.points
        if self.spread_days > 0.0:
            leverage += (days - self.mean_days) ** 2 / self.spread_days
        return self.log_residual_scale * math.sqrt(1.0 + leverage)

    def predict(self, at: datetime, coverage: float = 0.8) -> Prediction:
        """The trend's expectation of one run at ``at`` and its prediction interval: the
        quantiles of the two lines' predictions mixed half and half."""
        from scipy.special import stdtrit

        half = math.exp(float(stdtrit(self.freedom, 0.5 + coverage / 2.0)) * self.scale_at(at))
        centres = self.centres(at)
        low, high = min(centres) / half, max(centres) * half
        if len(centres) > 1 and low < high and self.scale_at(at) > 0.0:
            tail = (1.0 - coverage) / 2.0
            low, high = self._quantiles(at, (1.0 - tail, tail), low, high)
        return Prediction(at, self.expected(at), low, high, coverage)

    def _quantiles(
        self, at: datetime, aboves: tuple[float, float], low: float, high: float
    ) -> tuple[float, float]:
        """The values with chances ``aboves`` of a run above them, between ``low`` and
        ``high`` (where each line's own quantile lies): the mixed chance on a grid of the
        log scale, read between its 33 nodes (the chance is smooth there: a tenth of a
        standard error apart, a straight line between nodes is off by far less)."""
        import numpy as np
        from scipy.special import stdtr

        grid = np.geomspace(low, high, 33)
        scale = self.scale_at(at)
        chances = np.mean(
            [
                1.0 - stdtr(self.freedom, np.log(grid / centre) / scale)
                for centre in self.centres(at)
            ],
            axis=0,
        )
        # The chance falls along the grid; np.interp wants its x rising.
        found = np.exp(np.interp(-np.asarray(aboves), -chances, np.log(grid)))
        return float(found[0]), float(found[1])

    def probability_above(self, at: datetime, threshold: float) -> float:
        """The chance that one run at ``at`` measures more than ``threshold``: the mean
        of the chances under each line."""
        from scipy.special import stdtr

        if threshold <= 0.0:
            return 1.0
        scale = self.scale_at(at)
        chances = []
        for centre in self.centres(at):
            distance = math.log(threshold / centre)
            if scale == 0.0:
                chances.append(1.0 if distance < 0.0 else 0.0)
            else:
                chances.append(float(1.0 - stdtr(self.freedom, distance / scale)))
        return sum(chances) / len(chances)


@final
@dataclass(frozen=True, slots=True)
class QuarterOutlook:
    """One quarter of a budget outlook."""

    quarter: Quarter
    expected: float  #: the trend's level at the quarter's end
    breach_probability: float  #: the chance a run at the quarter's end is over the budget


@final
@dataclass(frozen=True, slots=True)
class BudgetOutlook:
    """Where a measurement stands against its budget, now and for the coming quarters."""

    budget: float  #: in the series' unit
    current: float  #: the trend's level at the last point
    headroom: float  #: how far the level is from the budget, as a fraction of the budget
    over_budget: bool  #: the latest run is already on the wrong side of the budget
    quarters: tuple[QuarterOutlook, ...]  #: the current quarter first
    first_breach: Quarter | None  #: the first quarter with a breach probability of 50% or more
    trend: Trend


@final
@dataclass(frozen=True, slots=True)
class CapacityQuarter:
    """One quarter of a capacity projection."""

    quarter: Quarter
    load: float  #: the load at the quarter's end, as a multiple of today's
    utilisation: float  #: the share of capacity used at the quarter's end (1.0 is full)


@final
@dataclass(frozen=True, slots=True)
class CapacityOutlook:
    """When a growing load meets a fixed capacity, given this measurement's trend."""

    growth_per_quarter: float  #: 0.15 for 15% more load each quarter
    utilisation_now: float  #: the share of capacity used today
    quarters: tuple[CapacityQuarter, ...]  #: the current quarter first
    runs_out: Quarter | None  #: the first quarter whose end needs more than the capacity
    trend: Trend


def trend(
    series: Series,
    *,
    since_index: int | None = None,
    changes: Sequence[ChangePoint] | None = None,
) -> Trend:
    """The trend of ``series`` from ``since_index`` (by default its last change point, or
    the first point when too few points follow it). A ValueError under three points."""
    import numpy as np

    points = series.points
    stamps = np.array([point.at.timestamp() for point in points])
    all_days = (stamps - stamps[-1]) / 86400.0 if len(stamps) else stamps
    cleaned = despiked(np.array(series.values, dtype=np.float64))
    if since_index is None:
        since_index = _trend_start(series, changes, all_days, cleaned)
    fitted = points[since_index:]
    if len(fitted) < MIN_TREND_POINTS:
        raise ValueError(
            f"{series.test_id} {series.name}: a trend needs {MIN_TREND_POINTS} points, "
            f"has {len(fitted)}"
        )
    values = cleaned[since_index:]
    if not np.all(values > 0.0):
        raise ValueError(f"{series.test_id} {series.name}: a trend needs positive values")
    origin = points[-1].at
    days = all_days[since_index:]
    logs = np.log(values)
    mean_days = float(days.mean())
    spread = float(((days - mean_days) ** 2).sum())
    if spread <= 1e-9:  # runs seconds apart make a spread of rounding noise: one instant
        spread = 0.0
    centred = days - mean_days
    slope = float((centred * (logs - logs.mean())).sum() / spread) if spread else 0.0
    linear_slope = float((centred * (values - values.mean())).sum() / spread) if spread else 0.0
    intercept = float(logs.mean()) - slope * mean_days
    residuals = logs - (intercept + slope * days)
    freedom = len(fitted) - (2 if spread else 1)
    return Trend(
        since_index=since_index,
        since=fitted[0].at,
        origin=origin,
        level=math.exp(intercept),
        log_slope_per_day=slope,
        log_residual_scale=math.sqrt(float((residuals**2).sum()) / freedom),
        linear_level=float(values.mean()) - linear_slope * mean_days,
        linear_slope_per_day=linear_slope,
        points=len(fitted),
        mean_days=mean_days,
        spread_days=spread,
    )


def _trend_start(
    series: Series, changes: Sequence[ChangePoint] | None, days: FloatArray, values: FloatArray
) -> int:
    """Where the current regime starts: after the last change point that is a step.

    A slow drift reaches a change-point detector as steps; reading each as a restart would
    hide the very slope a forecast needs. So a change point restarts the trend only when a
    step, added to one line through the points on both of its sides, is significant."""
    from .changepoints import change_points

    if changes is None:  # a caller that has them already (the dashboard) passes them
        changes = change_points(series)
    bounds = [0, *(change.index for change in changes)]
    current = len(bounds) - 1
    while current > 0:
        if len(series.points) - bounds[current] >= MIN_TREND_POINTS and _is_step(
            bounds[current - 1], bounds[current], days, values
        ):
            return bounds[current]
        current -= 1
    return 0


#: A change point is a step, not part of a drift, when the step's p-value is below this.
STEP_SIGNIFICANCE = 0.001


def _is_step(start: int, change: int, all_days: FloatArray, all_values: FloatArray) -> bool:
    """Is a step at ``change`` significant over one line through the runs from ``start``?"""
    import numpy as np
    from scipy.special import stdtr

    days = all_days[start:]
    fitted = all_values[start:]
    after = (np.arange(len(fitted)) >= change - start).astype(np.float64)
    design = np.column_stack((np.ones(len(fitted)), days, after))
    values = np.log(np.maximum(fitted, 1e-300))
    freedom = len(fitted) - 3
    if freedom < 1 or np.linalg.matrix_rank(design) < 3:
        return True
    coefficients, _, _, _ = np.linalg.lstsq(design, values, rcond=None)
    residuals = values - design @ coefficients
    variance = float(residuals @ residuals) / freedom
    error = math.sqrt(variance * float(np.linalg.inv(design.T @ design)[2, 2]))
    if error == 0.0:
        return bool(coefficients[2] != 0.0)
    p_value = 2.0 * float(stdtr(freedom, -abs(float(coefficients[2])) / error))
    return p_value <= STEP_SIGNIFICANCE


def _days(at: datetime, origin: datetime) -> float:
    return (at - origin) / timedelta(days=1)


def _quarters(now: datetime, count: int) -> list[Quarter]:
    """``count`` calendar quarters, the one ``now`` falls in first."""
    quarters = [Quarter.of(now)]
    while len(quarters) < count:
        quarters.append(quarters[-1].following())
    return quarters


def budget_outlook(
    series: Series, quarters: int = 4, *, now: datetime | None = None, line: Trend | None = None
) -> BudgetOutlook | None:
    """The outlook of ``series`` against its budget; None without a budget or without
    enough points for a trend. ``now`` (by default the last point's time) picks the
    first quarter; ``line`` is the series' trend, when the caller has it already. A
    breach is a run above the budget for a cost (lower is better), below it for a rate."""
    if series.budget is None or len(series.points) < MIN_TREND_POINTS:
        return None
    budget = series.budget
    try:
        line = line or trend(series)
    except ValueError:  # a point that is not positive: no trend on a log scale
        return None
    outlooks = []
    for quarter in _quarters(now or series.points[-1].at, quarters):
        above = line.probability_above(quarter.end, budget)
        outlooks.append(
            QuarterOutlook(
                quarter=quarter,
                expected=line.expected(quarter.end),
                breach_probability=above if series.lower_is_better else 1.0 - above,
            )
        )
    latest = series.points[-1].value
    room = budget - line.level if series.lower_is_better else line.level - budget
    return BudgetOutlook(
        budget=budget,
        current=line.level,
        headroom=room / budget if budget else math.inf,
        over_budget=latest > budget if series.lower_is_better else latest < budget,
        quarters=tuple(outlooks),
        first_breach=next(
            (item.quarter for item in outlooks if item.breach_probability >= 0.5), None
        ),
        trend=line,
    )


def capacity_outlook(
    series: Series,
    growth_per_quarter: float,
    capacity: float,
    *,
    load: float,
    quarters: int = 8,
    now: datetime | None = None,
) -> CapacityOutlook | None:
    """When ``load`` growing by ``growth_per_quarter`` outgrows ``capacity``.

    For a cost (lower is better, e.g. seconds per request) the capacity is in the units of
    ``load`` times the measurement (e.g. requests/s x s = busy cores); for a throughput
    (higher is better, e.g. requests/s one instance serves) it is the number of instances.
    The load compounds continuously at the quarterly rate; the measurement follows its
    trend. None without enough points for a trend.
    """
    if len(series.points) < MIN_TREND_POINTS:
        return None
    if capacity <= 0.0 or load <= 0.0 or growth_per_quarter <= -1.0:
        raise ValueError(
            "capacity and load must be positive and growth above -100%, got "
            f"capacity={capacity}, load={load}, growth_per_quarter={growth_per_quarter}"
        )
    try:
        line = trend(series)
    except ValueError:  # a point that is not positive: no trend on a log scale
        return None
    start = now or series.points[-1].at

    def utilisation(at: datetime, factor: float) -> float:
        value = line.expected(at)
        if series.lower_is_better:
            return load * factor * value / capacity
        return math.inf if value <= 0.0 else load * factor / (value * capacity)

    projected = []
    for quarter in _quarters(start, quarters):
        factor = (1.0 + growth_per_quarter) ** (_days(quarter.end, start) / QUARTER_DAYS)
        projected.append(CapacityQuarter(quarter, factor, utilisation(quarter.end, factor)))
    return CapacityOutlook(
        growth_per_quarter=growth_per_quarter,
        utilisation_now=utilisation(start, 1.0),
        quarters=tuple(projected),
        runs_out=next((item.quarter for item in projected if item.utilisation >= 1.0), None),
        trend=line,
    )


__all__: Sequence[str] = (
    "BudgetOutlook",
    "CapacityOutlook",
    "CapacityQuarter",
    "Prediction",
    "Quarter",
    "QuarterOutlook",
    "Trend",
    "budget_outlook",
    "capacity_outlook",
    "trend",
)
