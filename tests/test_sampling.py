"""The sampler, driven by a fake clock and scripted batches: no real time is measured."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pytest

from pytest_perfgate.sampling import (
    BatchTime,
    Sampler,
    SamplingPlan,
    StopRule,
    WarmedUp,
    WarmUp,
    calibrate_loops,
    grow_until,
    warm_up,
)

MS = 1_000_000  # ns


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


class ScriptedBatch:
    """``loops`` calls of a scripted duration each: one per-call time per batch, in order."""

    def __init__(self, clock: FakeClock, per_call_ns: int | Iterable[int]) -> None:
        self.clock = clock
        self._per_call: Iterator[int] = (
            itertools.repeat(per_call_ns) if isinstance(per_call_ns, int) else iter(per_call_ns)
        )
        self.loops: list[int] = []  #: loops of every batch, in order
        self.gc_enabled: list[bool] = []  #: whether the GC was on during each batch

    def batch(self, loops: int) -> BatchTime:
        wall = loops * next(self._per_call)
        self.clock.advance(wall)
        self.loops.append(loops)
        self.gc_enabled.append(gc.isenabled())
        return BatchTime(wall, wall // 2)


def noisy(seed: int, median_ns: int = 1000, sigma: float = 0.5) -> Iterator[int]:
    """Per-call times spread so widely that no precision target is ever reached."""
    rng = np.random.default_rng(seed)
    while True:
        yield max(1, int(rng.lognormal(np.log(median_ns), sigma)))


def plan(**overrides: object) -> SamplingPlan:
    defaults: dict[str, object] = {"warmup_time": 0.0, "min_sample_time": 0.0, "max_time": 10.0}
    return SamplingPlan(**{**defaults, **overrides})  # type: ignore[arg-type]


def test_warm_up_runs_for_warmup_time_then_stops() -> None:
    clock = FakeClock()
    scripted = ScriptedBatch(clock, per_call_ns=1000)
    result = Sampler(plan(warmup_time=0.01, loops=1), clock=clock).run(scripted.batch)
    warm_ns = result.warmup_calls * 1000
    # Batches double, so the warm-up overshoots its deadline by less than itself.
    assert 10 * MS <= warm_ns < 2 * 10 * MS + 1000
    assert sum(scripted.loops) == result.warmup_calls + len(result.wall)


def test_warm_up_calls_at_least_once_and_can_be_skipped() -> None:
    clock = FakeClock()
    once = Sampler(plan(loops=1), clock=clock).run(ScriptedBatch(clock, 1000).batch)
    skipped = Sampler(plan(loops=1), clock=clock).run(
        ScriptedBatch(clock, 1000).batch, warmup=False
    )
    assert once.warmup_calls == 1
    assert skipped.warmup_calls == 0


def test_calibration_reaches_min_sample_time() -> None:
    clock = FakeClock()
    scripted = ScriptedBatch(clock, per_call_ns=100)
    result = Sampler(plan(min_sample_time=0.001), clock=clock).run(scripted.batch)
    assert result.loops * 100 >= 1 * MS
    assert all(sample * result.loops >= 0.001 for sample in result.wall)
    assert result.wall[0] == pytest.approx(100e-9)


def test_calibrate_loops_grows_by_the_shortfall() -> None:
    clock = FakeClock()
    fast = ScriptedBatch(clock, per_call_ns=100)
    assert calibrate_loops(fast.batch, 0.001) == (10_000, 11_111)
    # 0.3 ms per call: four calls make 1.2 ms, no need to jump tenfold.
    slow = ScriptedBatch(clock, per_call_ns=300_000)
    assert calibrate_loops(slow.batch, 0.001) == (4, 5)


def test_calibrate_loops_gives_up_growing_at_a_billion_loops() -> None:
    clock = FakeClock()
    instant = ScriptedBatch(clock, per_call_ns=0)
    loops, _ = calibrate_loops(instant.batch, 0.001)
    assert loops == 10**9


def test_pinned_loops_skip_calibration() -> None:
    clock = FakeClock()
    scripted = ScriptedBatch(clock, per_call_ns=100)
    result = Sampler(plan(loops=7, min_sample_time=0.001), clock=clock).run(
        scripted.batch, warmup=False
    )
    assert result.loops == 7
    assert result.warmup_calls == 0
    assert set(scripted.loops) == {7}


def test_steady_samples_stop_on_precision_at_min_samples() -> None:
    clock = FakeClock()
    result = Sampler(plan(loops=1, min_samples=25), clock=clock).run(
        ScriptedBatch(clock, 1000).batch
    )
    assert result.stop_reason == "precision"
    assert len(result.wall) == 25
    assert set(result.wall) == {1e-6}
    assert set(result.cpu) == {0.5e-6}


def test_noisy_samples_stop_on_the_time_budget() -> None:
    clock = FakeClock()
    scripted = ScriptedBatch(clock, noisy(seed=1, median_ns=MS))
    result = Sampler(plan(loops=1, max_time=0.05, target_precision=0.001), clock=clock).run(
        scripted.batch, warmup=False
    )
    assert result.stop_reason == "time budget"
    assert sum(result.wall) >= 0.05
    assert sum(result.wall[:-1]) < 0.05  # stopped at the first sample past the deadline


def test_sample_cap_is_a_hard_limit() -> None:
    clock = FakeClock()
    scripted = ScriptedBatch(clock, noisy(seed=2))
    result = Sampler(
        plan(loops=1, min_samples=20, max_samples=30, target_precision=0.001), clock=clock
    ).run(scripted.batch, warmup=False)
    assert result.stop_reason == "sample cap"
    assert len(result.wall) == 30


def test_min_samples_are_taken_even_past_the_time_budget() -> None:
    clock = FakeClock()
    scripted = ScriptedBatch(clock, per_call_ns=1000 * MS)  # one second per call
    result = Sampler(plan(loops=1, max_time=0.001, min_samples=12), clock=clock).run(
        scripted.batch, warmup=False
    )
    assert len(result.wall) == 12
    assert result.stop_reason == "time budget"


def test_elapsed_is_measured_on_the_given_clock() -> None:
    clock = FakeClock()
    result = Sampler(plan(loops=2, min_samples=10), clock=clock).run(
        ScriptedBatch(clock, 5 * MS).batch, warmup=False
    )
    assert result.elapsed == pytest.approx(10 * 2 * 5 * MS / 1e9)


def test_gc_is_disabled_while_sampling_and_restored_after() -> None:
    assert gc.isenabled()
    clock = FakeClock()
    scripted = ScriptedBatch(clock, per_call_ns=100)
    try:
        result = Sampler(plan(warmup_time=0.001, min_sample_time=0.0001), clock=clock).run(
            scripted.batch
        )
        assert gc.isenabled()
    finally:
        gc.enable()
    sampled = len(result.wall)
    assert scripted.gc_enabled[-sampled:] == [False] * sampled
    assert all(scripted.gc_enabled[:-sampled])  # warm-up and calibration ran with the GC on


def test_sampling_starts_without_a_collection() -> None:
    # With the collector off while sampling, a collection before it keeps none out of
    # the samples; it only cost time: a full one walks the whole heap (27 ms a
    # measurement with scipy loaded), even a young one 20-30 us a test (issue 18).
    events: list[tuple[str, object]] = []
    clock = FakeClock()
    scripted = ScriptedBatch(clock, per_call_ns=100)
    gc.collect()  # nothing pending that a warm-up allocation could set off

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            events.append(("gc", info["generation"]))

    def batch(loops: int) -> BatchTime:
        events.append(("batch", gc.isenabled()))
        return scripted.batch(loops)

    gc.callbacks.append(on_gc)
    try:
        Sampler(plan(loops=1), clock=clock).run(batch, warmup=False)
    finally:
        gc.callbacks.remove(on_gc)
        gc.enable()
    first_sampled = events.index(("batch", False))
    assert [kind for kind, _ in events[first_sampled:]] == ["batch"] * (len(events) - first_sampled)
    assert ("gc", 1) not in events[:first_sampled]


def test_gc_stays_enabled_when_the_plan_says_so() -> None:
    clock = FakeClock()
    scripted = ScriptedBatch(clock, per_call_ns=100)
    Sampler(plan(loops=1, disable_gc=False), clock=clock).run(scripted.batch)
    assert all(scripted.gc_enabled)
    assert gc.isenabled()


def test_gc_that_was_off_stays_off() -> None:
    clock = FakeClock()
    gc.disable()
    try:
        Sampler(plan(loops=1), clock=clock).run(ScriptedBatch(clock, 100).batch)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_gc_is_restored_when_the_batch_raises() -> None:
    clock = FakeClock()

    def failing(loops: int) -> BatchTime:
        raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError, match="boom"):
            Sampler(plan(loops=1), clock=clock).run(failing, warmup=False)
        assert gc.isenabled()
    finally:
        gc.enable()


def test_progress_is_reported_while_sampling() -> None:
    clock = FakeClock()
    calls: list[tuple[int, float, float]] = []
    sampler = Sampler(
        plan(loops=1, min_samples=50),
        clock=clock,
        progress=lambda n, seconds, width: calls.append((n, seconds, width)),
        progress_interval=0.01,
    )
    sampler.run(ScriptedBatch(clock, per_call_ns=MS).batch, warmup=False)
    # 50 samples of 1 ms with a report every 10 ms or so.
    assert 4 <= len(calls) <= 5
    counts = [n for n, _, _ in calls]
    assert counts == sorted(counts)
    assert calls[0][0] == 10
    assert calls[0][1] == pytest.approx(0.01)
    assert calls[-1][2] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warmup_time": -1}, "warmup_time"),
        ({"min_sample_time": -0.1}, "min_sample_time"),
        ({"target_precision": 0}, "target_precision"),
        ({"target_precision": 1}, "target_precision"),
        ({"min_samples": 0}, "min_samples"),
        ({"max_time": 0}, "max_time"),
        ({"min_samples": 10, "max_samples": 9}, "max_samples"),
        ({"loops": 0}, "loops"),
    ],
)
def test_sampling_plan_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SamplingPlan(**kwargs)  # type: ignore[arg-type]


# -- the stop rule and the warm-up every probe shares ---------------------------------------


def test_stop_rule_reasons_in_order() -> None:
    rule = StopRule(plan(min_samples=3, max_samples=5, max_time=1.0))
    steady = lambda: [1.0] * 5  # noqa: E731
    assert (
        rule.should_stop(2, 2 * 10**9, steady) is None
    )  # fewer than min_samples, whatever the time
    assert rule.should_stop(5, 0, steady) == "sample cap"
    assert rule.should_stop(3, 10**9, steady) == "time budget"
    assert rule.should_stop(3, 10**9 - 1, steady) == "precision"


def test_stop_rule_checks_precision_on_a_widening_schedule() -> None:
    rule = StopRule(plan(min_samples=16, max_time=10.0))
    spread = list(range(1, 1000))
    looked: list[int] = []

    def samples(n: int) -> Callable[[], list[int]]:
        def values() -> list[int]:
            looked.append(n)
            return spread[:n]

        return values

    for n in range(1, 60):
        assert rule.should_stop(n, 0, samples(n)) is None
    # At min_samples, then every n/8 samples: 16, 18, 20, 22, 24, 27, ...
    assert looked == [16, 18, 20, 22, 24, 27, 30, 33, 37, 41, 46, 51, 57]


def test_stop_rule_trusts_precision_only_after_min_time() -> None:
    rule = StopRule(plan(min_samples=2, max_time=10.0), min_time=0.5)
    steady = lambda: [1.0] * 4  # noqa: E731
    assert rule.should_stop(2, int(0.4e9), steady) is None
    # The check was not spent before min_time: the next call checks at once.
    assert rule.should_stop(3, int(0.5e9), steady) == "precision"


def test_stop_rule_min_time_is_capped_by_the_budget() -> None:
    rule = StopRule(plan(min_samples=2, max_time=0.1), min_time=5.0)
    assert rule.should_stop(2, int(0.1e9), lambda: [1.0, 2.0]) == "time budget"


def test_warm_up_doubles_until_its_time_and_calls_are_spent() -> None:
    clock = FakeClock()
    batches: list[int] = []

    def run(calls: int) -> tuple[int, float]:
        batches.append(calls)
        clock.advance(calls * MS)
        return clock(), 1e-3

    warmed = warm_up(run, WarmUp(0.004, min_calls=20, max_batch=8))
    assert batches == [1, 2, 4, 8, 8]  # 4 ms passed after 7 calls; 20 calls asked for
    assert warmed == WarmedUp(calls=23, seconds_per_call=1e-3)


def test_warm_up_sizes_batches_to_the_round_time() -> None:
    clock = FakeClock()
    batches: list[int] = []

    def run(calls: int) -> tuple[int, float]:
        batches.append(calls)
        clock.advance(calls * 100_000)  # 0.1 ms a call
        return clock(), 1e-4

    warm_up(run, WarmUp(0.05, max_batch=150, round_time=0.02))
    assert batches[:3] == [1, 150, 150]  # 0.02 s / 0.1 ms = 200 calls, capped at 150
    assert sum(batches[:-1]) * 100_000 < 0.05e9 <= sum(batches) * 100_000


def test_grow_until_works_in_the_callers_unit() -> None:
    asked: list[int] = []

    def seconds(loops: int) -> float:
        asked.append(loops)
        return loops * 3e-3

    assert grow_until(seconds, 1e-2, 1 << 20) == (4, 5)
    assert asked == [1, 4]
