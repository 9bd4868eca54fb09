"""Timing Python callables: plain, with per-sample setup, and async.

A probe's job is to build the sampler's *batch* function around the user's code, so that
the timed span holds the calls and nothing else: setup runs before the clock starts, an
async callable is awaited inside one coroutine so the event loop's start-up stays out.
:class:`CpuProbe` is ``perf(...)`` and ``perf.call(...)``: it samples a :class:`CallProbe`
with the sampling layer and hands the measurement to its :class:`~.host.ProbeHost`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..model import Direction, Measurement
from ..sampling import Batch, BatchTime, Clock, Sampler, SampleSet, SamplingPlan, Turns
from .host import ProbeHost
from .memory import peak_memory

if TYPE_CHECKING:
    import asyncio  # imported where an async callable is measured: most never are

#: Per-sample setup: returns None (the call gets the given arguments) or an
#: ``(args, kwargs)`` pair for the call, as pytest-benchmark's ``pedantic`` does.
Setup = Callable[[], "tuple[tuple[Any, ...], dict[str, Any]] | None"]


class CallProbe:
    """Times ``fn(*args, **kwargs)``; remembers the last result for the caller."""

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        setup: Setup | None = None,
        clock: Clock = time.perf_counter_ns,
        cpu_clock: Clock = time.process_time_ns,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"perf needs a callable to measure, got {type(fn).__name__}")
        self.fn = fn
        self.args = args
        self.kwargs = dict(kwargs or {})
        self.setup = setup
        self.clock = clock
        self.cpu_clock = cpu_clock
        # A callable object with ``async def __call__`` is async too.
        self.is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            type(fn).__call__
        )
        self.result: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pins_single_call(self) -> bool:
        """With per-sample setup every call is its own sample (setup precedes each call)."""
        return self.setup is not None

    def batch(self, loops: int) -> BatchTime:
        if self.setup is not None:
            return self._batch_with_setup(loops)
        if self.is_async:
            return self._event_loop().run_until_complete(self._async_batch(loops))
        fn, args, kwargs = self.fn, self.args, self.kwargs
        clock, cpu_clock = self.clock, self.cpu_clock
        result = None
        # The loop is the measured overhead per call: keep it as bare as the call allows
        # (unpacking empty *args/**kwargs costs ~20 ns a call).
        if args or kwargs:
            wall0, cpu0 = clock(), cpu_clock()
            for _ in range(loops):
                result = fn(*args, **kwargs)
            wall1, cpu1 = clock(), cpu_clock()
        else:
            wall0, cpu0 = clock(), cpu_clock()
            for _ in range(loops):
                result = fn()
            wall1, cpu1 = clock(), cpu_clock()
        self.result = result
        return BatchTime(wall1 - wall0, cpu1 - cpu0)

    def _batch_with_setup(self, loops: int) -> BatchTime:
        wall = cpu = 0
        for _ in range(loops):
            args, kwargs = self._run_setup()
            if self.is_async:
                timed = self._event_loop().run_until_complete(self._async_once(args, kwargs))
            else:
                wall0, cpu0 = self.clock(), self.cpu_clock()
                self.result = self.fn(*args, **kwargs)
                timed = BatchTime(self.clock() - wall0, self.cpu_clock() - cpu0)
            wall += timed.wall_ns
            cpu += timed.cpu_ns
        return BatchTime(wall, cpu)

    def _run_setup(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        assert self.setup is not None
        prepared = self.setup()
        if prepared is None:
            return self.args, self.kwargs
        if (
            isinstance(prepared, tuple)
            and len(prepared) == 2
            and isinstance(prepared[0], tuple | list)
            and isinstance(prepared[1], dict)
        ):
            return tuple(prepared[0]), prepared[1]
        raise TypeError(
            f"perf setup= must return None or an (args, kwargs) pair, got {type(prepared).__name__}"
        )

    async def _async_batch(self, loops: int) -> BatchTime:
        fn, args, kwargs = self.fn, self.args, self.kwargs
        result = None
        wall0, cpu0 = self.clock(), self.cpu_clock()
        for _ in range(loops):
            result = await fn(*args, **kwargs)
        wall1, cpu1 = self.clock(), self.cpu_clock()
        self.result = result
        return BatchTime(wall1 - wall0, cpu1 - cpu0)

    async def _async_once(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BatchTime:
        wall0, cpu0 = self.clock(), self.cpu_clock()
        self.result = await self.fn(*args, **kwargs)
        return BatchTime(self.clock() - wall0, self.cpu_clock() - cpu0)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            import asyncio

            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                raise RuntimeError(
                    "perf measures an async callable in an event loop of its own, "
                    "but one is already running: call perf from a synchronous test"
                )
            self._loop = asyncio.new_event_loop()
        return self._loop

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def call_once(self) -> Any:
        """Run the code once, untimed (for --perf-mode=off)."""
        args, kwargs = self._run_setup() if self.setup is not None else (self.args, self.kwargs)
        return self._invoke(args, kwargs)

    def prepared_call(self) -> Callable[[], Any]:
        """Run setup now and return a call of the code with its result: what the memory
        probe traces, so that setup's own allocations are not counted."""
        args, kwargs = self._run_setup() if self.setup is not None else (self.args, self.kwargs)
        return lambda: self._invoke(args, kwargs)

    def _invoke(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.is_async:
            self.result = self._event_loop().run_until_complete(self.fn(*args, **kwargs))
        else:
            self.result = self.fn(*args, **kwargs)
        return self.result


class CpuProbe:
    """``perf(fn)`` and ``perf.call(...)``: a callable timed with the sampling layer,
    judged as it returns, with a second look on the same calls per sample."""

    def __init__(
        self,
        host: ProbeHost,
        *,
        speed_reference: Batch | None = None,
        memory: bool = False,
        turns_for: Callable[[str], Turns | None] | None = None,
    ) -> None:
        self._host = host
        #: Paired A/B: a measurement name -> its turns (plugin/paired_worker.py).
        self._turns_for = turns_for
        #: One call of a fixed workload after every sample (machine-speed swings); None: none.
        self._speed_reference = speed_reference
        self._memory = memory  #: measure peak memory when a call does not say

    def call(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any] | None,
        *,
        name: str,
        setup: Setup | None,
        loops: int | None,
        memory: bool | None,
    ) -> Any:
        """Measure ``fn(*args, **kwargs)`` as ``name`` (and its peak memory as
        ``<name>.peak_memory`` with ``memory``); return the result of its last call."""
        __tracebackhide__ = True
        host = self._host
        host.claim(name)
        probe = CallProbe(fn, args, kwargs, setup=setup, clock=host.clock, cpu_clock=host.cpu_clock)
        try:
            if not host.measuring:
                return probe.call_once()
            self._time(probe, name, self._plan_for(probe, loops, name))
            if self._memory if memory is None else memory:
                peaks = peak_memory(probe.prepared_call)
                memory_name = f"{name}.peak_memory"
                host.claim(memory_name)
                host.judge(Measurement(memory_name, "B", Direction.LOWER_IS_BETTER, peaks), None)
            return probe.result
        finally:
            probe.close()

    def _time(self, probe: CallProbe, name: str, plan: SamplingPlan) -> None:
        host, reference = self._host, self._speed_reference
        sampler = Sampler(plan, clock=host.clock, progress=host.progress(name))
        turns = None if self._turns_for is None else self._turns_for(name)
        sampled = sampler.run(probe.batch, reference=reference, turns=turns)
        measurement = timed_measurement(name, sampled)

        def resample() -> Measurement:
            pinned = replace(plan, loops=measurement.loops)
            again = Sampler(pinned, clock=host.clock, progress=host.progress(name))
            fresh = again.run(probe.batch, warmup=False, reference=reference)
            return timed_measurement(name, fresh)

        host.judge(measurement, resample)

    def _plan_for(self, probe: CallProbe, loops: int | None, name: str) -> SamplingPlan:
        """The test's plan with its calls per sample: one with setup, else the call's
        ``loops``, the marker's, or (measuring the same way) the baseline's."""
        host = self._host
        plan = host.plan
        if probe.pins_single_call:
            if loops is not None and loops != 1:
                raise ValueError(
                    f"perf.call in {host.test_id}: loops= cannot be combined with setup=, "
                    "which runs before every call (each call is its own sample)"
                )
            pinned: int | None = 1
        elif loops is not None:
            pinned = loops
        elif plan.loops is not None:
            pinned = plan.loops
        else:
            pinned = host.reusable_loops(host.baseline(name))
        return replace(plan, loops=pinned)


def timed_measurement(name: str, sample_set: SampleSet) -> Measurement:
    """Seconds per call, lower is better, from what the sampler took."""
    return Measurement(
        name=name,
        unit="s",
        direction=Direction.LOWER_IS_BETTER,
        samples=sample_set.wall,
        loops=sample_set.loops,
        cpu_samples=sample_set.cpu,
        stop_reason=sample_set.stop_reason,
        reference=sample_set.reference,
    )
