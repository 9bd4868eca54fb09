"""Probes: what exactly a CallProbe times (on a fake clock), and peak memory."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from pytest_perfgate.probes.cpu import CallProbe
from pytest_perfgate.probes.memory import peak_memory

MIB = 2**20


class FakeClock:
    """Moves only when the code under test says so."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


def test_sync_batch_calls_fn_loops_times_and_keeps_the_last_result() -> None:
    clock = FakeClock()
    calls: list[tuple[Any, ...]] = []

    def fn(x: int, *, y: int) -> int:
        calls.append((x, y))
        clock.advance(10)
        return len(calls)

    probe = CallProbe(fn, (1,), {"y": 2}, clock=clock, cpu_clock=clock)
    timed = probe.batch(4)
    assert calls == [(1, 2)] * 4
    assert probe.result == 4
    assert timed.wall_ns == 40
    assert timed.cpu_ns == 40
    assert not probe.pins_single_call


def test_sync_batch_without_arguments() -> None:
    clock = FakeClock()
    calls: list[None] = []

    def fn() -> str:
        calls.append(None)
        clock.advance(7)
        return "last"

    probe = CallProbe(fn, clock=clock, cpu_clock=clock)
    assert probe.batch(3).wall_ns == 21
    assert len(calls) == 3
    assert probe.result == "last"


def test_setup_runs_outside_the_timed_span_and_feeds_the_call() -> None:
    clock = FakeClock()
    received: list[tuple[int, int]] = []

    def setup() -> tuple[tuple[int], dict[str, int]]:
        clock.advance(1_000_000)  # expensive preparation, must not be timed
        return (len(received),), {"y": 7}

    def fn(x: int, y: int) -> int:
        received.append((x, y))
        clock.advance(10)
        return x + y

    probe = CallProbe(fn, setup=setup, clock=clock, cpu_clock=clock)
    timed = probe.batch(3)
    assert timed.wall_ns == 30
    assert received == [(0, 7), (1, 7), (2, 7)]
    assert probe.result == 9
    assert probe.pins_single_call


def test_setup_returning_none_keeps_the_given_arguments() -> None:
    clock = FakeClock()
    probe = CallProbe(lambda x: x * 2, (21,), setup=lambda: None, clock=clock, cpu_clock=clock)
    probe.batch(2)
    assert probe.result == 42


@pytest.mark.parametrize("prepared", [5, ((1,),), ((1,), [2]), ({"x": 1}, (1,))])
def test_setup_with_a_bad_return_value_raises_type_error(prepared: object) -> None:
    probe = CallProbe(lambda *a, **k: None, setup=lambda: prepared)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"setup= must return None or an \(args, kwargs\) pair"):
        probe.batch(1)


def test_async_callables_are_awaited() -> None:
    clock = FakeClock()
    awaited: list[int] = []

    async def fn(x: int) -> str:
        await asyncio.sleep(0)
        awaited.append(x)
        clock.advance(10)
        return f"done {x}"

    probe = CallProbe(fn, (3,), clock=clock, cpu_clock=clock)
    try:
        timed = probe.batch(5)
        assert probe.result == "done 3"
        assert awaited == [3] * 5
        assert timed.wall_ns == 50
        assert probe.call_once() == "done 3"
    finally:
        probe.close()


def test_async_callables_with_setup_time_only_the_call() -> None:
    clock = FakeClock()

    async def fn(x: int) -> int:
        clock.advance(10)
        return x

    def setup() -> tuple[tuple[int], dict[str, Any]]:
        clock.advance(1_000_000)
        return (8,), {}

    probe = CallProbe(fn, setup=setup, clock=clock, cpu_clock=clock)
    try:
        assert probe.batch(2).wall_ns == 20
        assert probe.result == 8
    finally:
        probe.close()


def test_async_callable_inside_a_running_event_loop_gives_a_clear_error() -> None:
    async def fn() -> None:
        pass

    async def test_body() -> None:
        probe = CallProbe(fn)
        probe.batch(1)

    with pytest.raises(RuntimeError, match="already running: call perf from a synchronous test"):
        asyncio.run(test_body())


def test_non_callable_raises_type_error() -> None:
    with pytest.raises(TypeError, match="perf needs a callable to measure, got int"):
        CallProbe(42)  # type: ignore[arg-type]


def test_call_once_runs_setup_and_the_call_untimed() -> None:
    calls: list[int] = []

    def fn(x: int) -> int:
        calls.append(x)
        return x

    probe = CallProbe(fn, setup=lambda: ((9,), {}))
    assert probe.call_once() == 9
    assert calls == [9]


def test_peak_memory_sees_a_large_allocation() -> None:
    peaks = peak_memory(lambda: lambda: bytearray(10 * MIB))
    assert len(peaks) == 3
    assert all(10 * MIB <= peak < 11 * MIB for peak in peaks)


def test_peak_memory_leaves_setup_allocations_out() -> None:
    def prepare() -> Callable[[], int]:
        data = bytearray(8 * MIB)  # built by per-sample setup, before tracing
        return lambda: len(data)

    assert all(peak < 64 * 1024 for peak in peak_memory(prepare))


def test_memory_probe_through_call_probe_excludes_setup() -> None:
    probe = CallProbe(len, setup=lambda: ((bytearray(8 * MIB),), {}))
    assert all(peak < 64 * 1024 for peak in peak_memory(probe.prepared_call))


def test_callable_object_with_async_call_is_awaited() -> None:
    class Client:
        async def __call__(self) -> str:
            return "pong"

    probe = CallProbe(Client())
    assert probe.is_async
    probe.batch(2)
    probe.close()
    assert probe.result == "pong"


def test_peak_memory_of_a_no_op_is_at_least_one_byte() -> None:
    peaks = peak_memory(lambda: lambda: None, runs=2)
    assert len(peaks) == 2
    assert all(1 <= peak < 64 * 1024 for peak in peaks)


def test_peak_memory_leaves_tracemalloc_as_it_found_it() -> None:
    assert not tracemalloc.is_tracing()
    peak_memory(lambda: lambda: None, runs=1)
    assert not tracemalloc.is_tracing()
    tracemalloc.start()
    try:
        peak_memory(lambda: lambda: None, runs=1)
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


def test_peak_memory_needs_a_run() -> None:
    with pytest.raises(ValueError, match="runs"):
        peak_memory(lambda: lambda: None, runs=0)
