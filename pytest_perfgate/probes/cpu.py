"""Timing Python callables: plain, with per-sample setup, and async.

A probe's job is to build the sampler's *batch* function around the user's code, so that
the timed span holds the calls and nothing else: setup runs before the clock starts, an
async callable is awaited inside one coroutine so the event loop's start-up stays out.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..sampling import BatchTime, Clock

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
