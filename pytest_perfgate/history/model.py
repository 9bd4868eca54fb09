"""What the history records: runs, the measurements of each run, and per-measurement series.

These are plain values shared by the store (which writes and reads them), the analyses
(change points, trends, forecasts: functions over ``Series``) and the renderers (dashboard,
brief). A run is recorded from a results file (``RunResults``), so anything a results file
holds can reach the history, from the plugin, ``perfgate ab`` or an imported CI artifact.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import final


class RunKind(enum.Enum):
    """What produced a recorded run."""

    GATE = "gate"  #: a run gated against stored baselines
    AB = "ab"  #: ``perfgate ab``: the candidate side, judged against the base
    REFRESH = "refresh"  #: ``--perf-update-baselines``
    CALIBRATE = "calibrate"  #: ``perfgate calibrate``
    MERGED = "merged"  #: ``perfgate merge`` of shards


@final
@dataclass(frozen=True, slots=True)
class RecordedRun:
    """One run of a perf suite (or of one shard of it)."""

    kind: RunKind
    started_at: datetime  #: timezone-aware (UTC); the run's place on every time axis
    commit: str | None  #: VCS commit measured (the candidate's in A/B)
    branch: str | None
    machine_class: str  #: a short stable label of the environment fingerprint (CPU, cores, OS...)
    wall_seconds: float | None = None  #: the perf job's duration, for the cost in the brief
    source: str = ""  #: where it came from: "pytest", "perfgate ab", or an imported file's path
    run_id: int | None = None  #: the store's key; None until stored


@final
@dataclass(frozen=True, slots=True)
class RecordedMeasurement:
    """One measurement of one recorded run: its level, interval and verdict."""

    test_id: str  #: pytest node id
    name: str  #: the measurement's name inside its test ("time" by default)
    unit: str  #: "s" for times, "B/s" for rates...
    lower_is_better: bool
    statistic: str  #: what ``value`` is: "median" or a tail quantile such as "p99"
    value: float  #: the run's level of that statistic, in ``unit``
    ci_low: float | None = None  #: 95% interval of ``value`` from this run's samples, in ``unit``
    ci_high: float | None = None
    samples: int = 0  #: how many samples the level came from
    verdict: str | None = None  #: the gate's verdict (Verdict.value) when the run was gated
    ratio: float | None = None  #: current / baseline when compared
    budget: float | None = None  #: absolute budget in ``unit`` declared for it, if any

    @property
    def key(self) -> tuple[str, str]:
        return self.test_id, self.name


@final
@dataclass(frozen=True, slots=True)
class Point:
    """One run's value of one measurement, placed in time and history."""

    at: datetime  #: the run's start (UTC)
    commit: str | None
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    verdict: str | None = None
    run_id: int | None = None


@final
@dataclass(frozen=True, slots=True)
class Series:
    """One measurement over the history, oldest point first: what analyses take."""

    test_id: str
    name: str
    unit: str
    lower_is_better: bool
    statistic: str
    machine_class: str  #: a series never mixes machine classes
    points: tuple[Point, ...]
    budget: float | None = None  #: the latest declared budget, in ``unit``

    @property
    def key(self) -> tuple[str, str]:
        return self.test_id, self.name

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(point.value for point in self.points)


__all__: Sequence[str] = (
    "Point",
    "RecordedMeasurement",
    "RecordedRun",
    "RunKind",
    "Series",
)
