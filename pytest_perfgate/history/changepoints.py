"""Change points of one measurement's history: where its level moved, by how much, when.

E-divisive means (Matteson and James, 2014), as Apache Otava and MongoDB run it over their
performance histories: the split that maximises the energy distance between the two sides
is a candidate; a permutation test says whether it is real; the search recurses into both
sides. Each change comes with its commit range (the last commit before, the first after),
its relative size with an interval, and its significance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import final

from .model import Series


@final
@dataclass(frozen=True, slots=True)
class ChangePoint:
    """One step in a series' level, between two runs."""

    index: int  #: the first point after the change, in ``series.points``
    at: datetime  #: that point's time
    commit_before: str | None  #: the last commit measured before the change
    commit_after: str | None  #: the first commit measured after it
    before: float  #: the level (median) of the segment before, in the series' unit
    after: float  #: the level (median) of the segment after
    change: float  #: after / before - 1 (+0.05 is 5% higher)
    change_low: float  #: 95% interval of ``change``
    change_high: float
    p_value: float  #: permutation test: the chance of so large a split in shuffled data
    regression: bool  #: the change went the bad way for this measurement's direction


def change_points(
    series: Series,
    *,
    significance: float = 0.001,
    min_segment: int = 5,
    permutations: int = 199,
    seed: int = 0,
) -> list[ChangePoint]:
    """The change points of ``series``, in time order. ``significance`` is the largest
    p-value kept; a segment shorter than ``min_segment`` points is never split off."""
    raise NotImplementedError


__all__: Sequence[str] = ("ChangePoint", "change_points")
