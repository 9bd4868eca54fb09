"""Trends, budget outlooks and capacity projections of one measurement's history.

The trend is a straight line over time through the points since the series' last change
point, with a prediction interval from the residuals; the outlooks read that line forward
over calendar quarters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import final

from .model import Series


@final
@dataclass(frozen=True, slots=True)
class Quarter:
    """One calendar quarter."""

    year: int
    number: int  #: 1 to 4

    @property
    def label(self) -> str:
        return f"{self.year} Q{self.number}"

    @property
    def start(self) -> datetime:
        raise NotImplementedError

    @property
    def end(self) -> datetime:
        """The first instant of the next quarter."""
        raise NotImplementedError


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
    """A straight line over time through a series' points since its last change point."""

    since_index: int  #: the first point the line was fitted to, in ``series.points``
    since: datetime  #: that point's time
    origin: datetime  #: where time is 0 in the fit (the last point's time)
    level: float  #: the line's value at ``origin``, in the series' unit
    slope_per_day: float  #: change of the level per day, in the series' unit
    residual_scale: float  #: the residuals' standard deviation, in the series' unit
    points: int  #: how many points the line was fitted to
    mean_days: float  #: the mean of the fitted points' time (days from ``origin``)
    spread_days: float  #: the sum of squared deviations of those times (days squared)

    @property
    def change_per_quarter(self) -> float:
        """The slope as a fraction of the level per 91.3 days (+0.02 is 2% a quarter)."""
        raise NotImplementedError

    def predict(self, at: datetime, coverage: float = 0.8) -> Prediction:
        """The trend's expectation of one run at ``at`` and its prediction interval."""
        raise NotImplementedError


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


def trend(series: Series, *, since_index: int | None = None) -> Trend:
    """The trend of ``series`` from ``since_index`` (by default its last change point)."""
    raise NotImplementedError


def budget_outlook(
    series: Series, quarters: int = 4, *, now: datetime | None = None
) -> BudgetOutlook | None:
    """The outlook of ``series`` against its budget; None without a budget or points."""
    raise NotImplementedError


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
    """
    raise NotImplementedError


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
