"""Warm-up, inner-loop calibration and adaptive stopping, independent of what is timed.

The sampler never calls the user's code itself: it is handed a *batch* function that runs
the code ``loops`` times and returns how long that took, and a *clock* for its own time
budget. Probes build batches from real code and real clocks; tests build them from
scripted durations, so every rule here is tested without depending on real timing.

These are the rules of every probe: the GPU probe and the collective workers time their
own way (CUDA events, rounds, ranks that agree), but warm up with :func:`warm_up`, size
samples with :func:`grow_until` and stop by :class:`StopRule`.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, final

from .stats import relative_ci_width

#: A clock in nanoseconds (``time.perf_counter_ns`` in real use).
Clock = Callable[[], int]


@final
@dataclass(frozen=True, slots=True)
class BatchTime:
    """Elapsed time of one batch of calls."""

    wall_ns: int  #: wall-clock time of the whole batch
    cpu_ns: int = 0  #: process CPU time of the whole batch


#: Runs the measured code ``loops`` times and returns how long that took.
Batch = Callable[[int], BatchTime]

#: Called now and then while sampling: (samples so far, seconds spent, relative CI width).
Progress = Callable[[int, float, float], None]


class Turns(Protocol):
    """Paired A/B (paired.py): when this process may sample. Absent in ordinary runs."""

    @property
    def batch_time(self) -> float:
        """Seconds of samples in one turn."""

    def start(self) -> bool:
        """Wait for the first turn; False: measure alone, as in an ordinary run."""

    def next(self, wall: Sequence[float]) -> bool:
        """Hand in a turn's per-call times; wait for the next turn. False: the
        measurement is over."""


@final
@dataclass(frozen=True, slots=True)
class SamplingPlan:
    """How to sample one measurement. All times in seconds."""

    warmup_time: float = 0.05  #: run the code this long before calibrating
    min_sample_time: float = 0.001  #: a sample (one batch) lasts at least this long
    target_precision: float = 0.02  #: stop when the median's 95% CI is this wide (relative)
    min_samples: int = 20  #: never fewer samples than this
    max_time: float = 2.0  #: stop sampling after this long, once min_samples are taken
    max_samples: int = 10_000  #: hard cap, whatever the other rules say
    loops: int | None = None  #: calls per sample; None: calibrate
    disable_gc: bool = True  #: keep the garbage collector out of the timed spans

    def __post_init__(self) -> None:
        if self.warmup_time < 0:
            raise ValueError("warmup_time must not be negative")
        if self.min_sample_time < 0:
            raise ValueError("min_sample_time must not be negative")
        if not 0 < self.target_precision < 1:
            raise ValueError("target_precision must be between 0 and 1 (0.02 means +-1%)")
        if self.min_samples < 1:
            raise ValueError("min_samples must be at least 1")
        if self.max_time <= 0:
            raise ValueError("max_time must be positive")
        if self.max_samples < self.min_samples:
            raise ValueError("max_samples must be at least min_samples")
        if self.loops is not None and self.loops < 1:
            raise ValueError("loops must be at least 1")


@final
@dataclass(frozen=True, slots=True)
class SampleSet:
    """The result of sampling: per-call times in seconds."""

    wall: tuple[float, ...]  #: wall seconds per call, one value per sample
    cpu: tuple[float, ...]  #: process CPU seconds per call, same samples
    loops: int  #: calls per sample
    warmup_calls: int  #: calls spent warming up and calibrating
    stop_reason: str  #: "precision", "time budget" or "sample cap"
    elapsed: float  #: seconds the whole sampling took
    reference: tuple[float, ...] = ()  #: seconds of the speed reference after each sample


def calibrate_loops(batch: Batch, min_sample_time: float) -> tuple[int, int]:
    """Smallest power-of-ten-ish loop count whose batch lasts ``min_sample_time``.

    Returns (loops, calls spent). See :func:`grow_until`.
    """
    return grow_until(lambda loops: batch(loops).wall_ns, min_sample_time * 1e9, 10**9)


def grow_until(measure: Callable[[int], float], target: float, max_loops: int) -> tuple[int, int]:
    """Loops per sample so that ``measure(loops)`` (a duration) reaches ``target`` (the
    same unit). Returns (loops, calls spent).

    Grows by the measured shortfall, 20% over, at least 2x and at most 10x a step, so a
    50 ns function reaches a 1 ms sample in a few batches; stops growing at ``max_loops``.
    """
    loops, spent = 1, 0
    while True:
        elapsed = measure(loops)
        spent += loops
        if elapsed >= target or loops >= max_loops:
            return loops, spent
        growth = 10.0 if elapsed <= 0 else min(10.0, max(2.0, 1.2 * target / elapsed))
        loops = math.ceil(loops * growth)


@final
@dataclass(frozen=True, slots=True)
class WarmUp:
    """How to warm up: batches of calls until ``seconds`` have passed and ``min_calls`` ran."""

    seconds: float  #: warm up at least this long
    min_calls: int = 1  #: and for at least this many calls
    max_batch: int = 1 << 20  #: calls in one batch at most
    #: Size each batch to last about this long (seconds); None: double the batch each time.
    round_time: float | None = None

    def next_batch(self, calls: int, seconds_per_call: float) -> int:
        """Calls in the batch after one of ``calls`` calls that took ``seconds_per_call`` each."""
        if self.round_time is None:
            return min(calls * 2, self.max_batch)
        return max(1, min(self.max_batch, int(self.round_time / max(seconds_per_call, 1e-9))))


@final
@dataclass(frozen=True, slots=True)
class WarmedUp:
    """What a warm-up spent, and the speed of its last batch."""

    calls: int  #: calls made while warming up
    seconds_per_call: float  #: of the last batch


#: Runs a batch of ``calls`` calls; returns (ns since the warm-up began, seconds per call).
WarmUpBatch = Callable[[int], tuple[int, float]]


def warm_up(run: WarmUpBatch, rule: WarmUp) -> WarmedUp:
    """Run batches until ``rule`` says the code is warm (always at least one batch)."""
    seconds_ns = int(rule.seconds * 1e9)
    calls, batch = 0, 1
    while True:
        elapsed_ns, per_call = run(batch)
        calls += batch
        if calls >= rule.min_calls and elapsed_ns >= seconds_ns:
            return WarmedUp(calls, per_call)
        batch = rule.next_batch(batch, per_call)


class StopRule:
    """When to stop sampling: the one rule every probe samples by.

    In this order: at ``max_samples`` ("sample cap"); never before ``min_samples``; at
    the time budget ("time budget"); once the median's 95% CI is within
    ``target_precision`` ("precision"), not before ``min_time`` seconds. The CI costs a
    sort, so it is checked on a widening schedule (at ``min_samples``, then every n/8
    samples), not after every sample.
    """

    __slots__ = ("_budget_ns", "_earliest_ns", "_next_check", "plan")

    def __init__(self, plan: SamplingPlan, *, min_time: float = 0.0) -> None:
        self.plan = plan
        self._budget_ns = int(plan.max_time * 1e9)
        self._earliest_ns = int(min(min_time, plan.max_time) * 1e9)
        self._next_check = plan.min_samples

    def should_stop(
        self, n: int, elapsed_ns: int, samples: Callable[[], Sequence[float]]
    ) -> str | None:
        """Why to stop after ``n`` samples and ``elapsed_ns`` of sampling (None: go on).
        ``samples`` gives the values whose CI is judged, only when it is checked."""
        plan = self.plan
        if n >= plan.max_samples:
            return "sample cap"
        if n < plan.min_samples:
            return None
        if elapsed_ns >= self._budget_ns:
            return "time budget"
        if elapsed_ns < self._earliest_ns or n < self._next_check:
            return None
        if relative_ci_width(samples()) <= plan.target_precision:
            return "precision"
        self._next_check = n + max(1, n // 8)
        return None


class Sampler:
    """Collects samples of a batch function until the median is known well enough."""

    def __init__(
        self,
        plan: SamplingPlan,
        *,
        clock: Clock = time.perf_counter_ns,
        progress: Progress | None = None,
        progress_interval: float = 0.5,
    ) -> None:
        self.plan = plan
        self._clock = clock
        self._progress = progress
        self._progress_interval_ns = int(progress_interval * 1e9)

    def run(
        self,
        batch: Batch,
        *,
        warmup: bool = True,
        reference: Batch | None = None,
        turns: Turns | None = None,
    ) -> SampleSet:
        """Warm up, calibrate (unless the plan pins ``loops``), then sample adaptively.

        With ``reference``, one call of that fixed workload follows every sample: it
        feels the same machine-speed swings as the sample just before it, so the gate can
        compare speed-adjusted times (see environment.speed_reference). With ``turns``
        (paired A/B), samples are taken in turns and the coordinator says when to stop.
        """
        plan = self.plan
        paired = turns is not None and turns.start()
        start = self._clock()
        warmup_calls = self._warm_up(batch, start) if warmup else 0
        if plan.loops is None:
            loops, spent = calibrate_loops(batch, plan.min_sample_time)
            warmup_calls += spent
        else:
            loops = plan.loops

        gc_was_enabled = gc.isenabled()
        if plan.disable_gc:
            # Off, and no collection first: none can start while it is off, so one
            # before would keep nothing out of the samples, and it costs 20-30 us a
            # measurement even for the young generations (a full one walks the whole
            # heap of a pytest process: 27 ms with scipy loaded).
            gc.disable()
        try:
            if reference is not None:
                reference(1)  # its first call pays for imports and caches, not the sample
            if paired:
                assert turns is not None
                # No speed reference: the pairs cancel the machine's swings themselves.
                wall, cpu, ref, reason = self._sample_in_turns(batch, loops, turns)
            else:
                wall, cpu, ref, reason = self._sample(batch, loops, reference)
        finally:
            if plan.disable_gc and gc_was_enabled:
                gc.enable()
        elapsed = (self._clock() - start) / 1e9
        return SampleSet(tuple(wall), tuple(cpu), loops, warmup_calls, reason, elapsed, tuple(ref))

    def _warm_up(self, batch: Batch, start: int) -> int:
        """Call the code until warmup_time has passed (at least once)."""

        def run(loops: int) -> tuple[int, float]:
            timed = batch(loops)
            return self._clock() - start, timed.wall_ns / loops / 1e9

        return warm_up(run, WarmUp(self.plan.warmup_time)).calls

    def _sample_in_turns(
        self, batch: Batch, loops: int, turns: Turns
    ) -> tuple[list[float], list[float], list[float], str]:
        wall: list[float] = []
        cpu: list[float] = []
        turn_ns = int(turns.batch_time * 1e9)
        while True:
            first, started = len(wall), self._clock()
            while len(wall) - first < 3 or self._clock() - started < turn_ns:
                timed = batch(loops)
                wall.append(timed.wall_ns / loops / 1e9)
                cpu.append(timed.cpu_ns / loops / 1e9)
            if not turns.next(wall[first:]):
                return wall, cpu, [], "paired"

    def _sample(
        self, batch: Batch, loops: int, reference: Batch | None
    ) -> tuple[list[float], list[float], list[float], str]:
        plan = self.plan
        wall: list[float] = []
        cpu: list[float] = []
        ref: list[float] = []
        started = self._clock()
        rule = StopRule(plan)
        next_progress = started + self._progress_interval_ns
        while True:
            timed = batch(loops)
            wall.append(timed.wall_ns / loops / 1e9)
            cpu.append(timed.cpu_ns / loops / 1e9)
            if reference is not None:
                ref.append(reference(1).wall_ns / 1e9)
            n = len(wall)
            if n >= plan.max_samples:
                return wall, cpu, ref, "sample cap"
            now = self._clock()
            if self._progress is not None and now >= next_progress:
                self._progress(n, (now - started) / 1e9, relative_ci_width(wall))
                next_progress = now + self._progress_interval_ns
            reason = rule.should_stop(n, now - started, lambda: wall)
            if reason is not None:
                return wall, cpu, ref, reason
