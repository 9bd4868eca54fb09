"""Counting the instructions a Python callable executes, under Valgrind's callgrind.

A timing on a shared runner wanders by percents; the number of instructions a piece of
code executes does not. The run is started under ``valgrind --tool=callgrind`` with
instrumentation off (the plugin restarts itself so: plugin/valgrind.py), and this probe
turns counting on around the measured calls only, through callgrind's client requests
(probes/callgrind.py).

What is counted: every instruction this process executes between the collect toggles,
in every thread of it (Valgrind runs one thread at a time); not child processes, which
run outside Valgrind. The same loop around an empty callable is counted too and
subtracted, so a sample is the callable's own instructions per call. Python's memory
comes from the helper's counting allocator meanwhile (fresh for each measurement), so a
count does not depend on what the run allocated before (docs/explanation/measurement.md).
"""

from __future__ import annotations

import gc
import math
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, final

from ..model import Direction, Measurement
from .callgrind import INSTRUCTIONS, Callgrind, CountedBatch, native_threads, valgrind_executable
from .cpu import CallProbe, Setup
from .host import ProbeHost
from .memory import peak_memory

#: Calls before counting: CPython 3.11 quickens a function after 8 calls and specializes
#: an instruction after dozens of executions, and each changes the instruction stream.
FULL_WARMUP_CALLS = 128
#: Fewer for slow calls: about this many instructions of warm-up, and at least
#: MIN_WARMUP_CALLS. Chosen by count, never by time: a warm-up cut by a busy machine
#: left the allocator and the interpreter elsewhere, and moved the counts.
WARMUP_INSTRUCTIONS = 100_000_000
MIN_WARMUP_CALLS = 2
#: Calls per sample are chosen so a sample counts about this many instructions.
TARGET_SAMPLE_INSTRUCTIONS = 1_000_000
MAX_LOOPS = 1000
#: Samples per measurement (fewer with ``rounds=``): a count repeats to the
#: instruction or nearly, so three samples show its spread; each costs a batch of calls
#: at about a hundredth of native speed.
MAX_SAMPLES = 3
#: Counts taken first and dropped: CPython's own free lists (of tuples, frames, dict
#: keys...) and caches reach the state the next calls find over the first batch.
SETTLING = 1


def plain_batch(probe: CallProbe) -> CountedBatch:
    """The calls of ``probe``, counted as one span. Each call's result is freed inside
    the span, the last one's too: a count per call that left the last free out would
    depend on the number of calls in the span."""
    fn, args, kwargs = probe.fn, probe.args, probe.kwargs

    def batch(loops: int, toggle: Callable[[], None]) -> None:
        if args or kwargs:
            toggle()
            for _ in range(loops):
                fn(*args, **kwargs)
            toggle()
        else:
            toggle()
            for _ in range(loops):
                fn()
            toggle()

    return batch


def setup_batch(probe: CallProbe, setup: Setup) -> CountedBatch:
    """The calls of ``probe``, each counted alone after its setup (its result freed
    inside the count, as in :func:`plain_batch`)."""
    fn = probe.fn

    def batch(loops: int, toggle: Callable[[], None]) -> None:
        for _ in range(loops):
            args, kwargs = prepared_arguments(probe, setup)
            toggle()
            fn(*args, **kwargs)
            toggle()

    return batch


def prepared_arguments(probe: CallProbe, setup: Setup) -> tuple[Any, Any]:
    prepared = setup()
    return (probe.args, probe.kwargs) if prepared is None else prepared


def keep_last_result(probe: CallProbe) -> None:
    """One more call, not counted: what ``perf(fn)`` returns (counted calls free theirs)."""
    if probe.setup is None:
        probe.result = probe.fn(*probe.args, **probe.kwargs)
    else:
        args, kwargs = prepared_arguments(probe, probe.setup)
        probe.result = probe.fn(*args, **kwargs)


def _empty(*args: Any, **kwargs: Any) -> None:
    """The callable whose count is subtracted: a call that does nothing."""


def empty_probe(probe: CallProbe) -> CallProbe:
    """``probe``'s call shape (same arguments, same setup) around an empty callable."""
    return CallProbe(_empty, probe.args, probe.kwargs, setup=probe.setup)


def warmup_calls(one_call: int) -> int:
    """Warm-up calls for a call of ``one_call`` instructions (MIN_WARMUP_CALLS to
    FULL_WARMUP_CALLS)."""
    wanted = math.ceil(WARMUP_INSTRUCTIONS / max(one_call, 1))
    return max(MIN_WARMUP_CALLS, min(FULL_WARMUP_CALLS, wanted))


def loops_for(one_call: int) -> int:
    """Calls per sample so a sample counts about TARGET_SAMPLE_INSTRUCTIONS. (The count
    per call does not depend on it: the settling batch fills the counting allocator's
    free lists, and every call frees its result inside the count.)"""
    return max(1, min(MAX_LOOPS, math.ceil(TARGET_SAMPLE_INSTRUCTIONS / max(one_call, 1))))


@final
@dataclass(frozen=True, slots=True)
class CountPlan:
    """How to count one callable."""

    samples: int  #: counts taken
    loops: int | None  #: calls per count; None: chosen from one call's count


def count_instructions(
    name: str, probe: CallProbe, counter: Callgrind, plan: CountPlan
) -> Measurement:
    """Warm up, then count ``plan.samples`` batches of the calls, each less the same
    batch of an empty callable; GC off while counting."""
    if probe.setup is not None:
        batch, empty = setup_batch(probe, probe.setup), setup_batch(empty_probe(probe), probe.setup)
    else:
        batch, empty = plain_batch(probe), plain_batch(empty_probe(probe))
    for _ in range(MIN_WARMUP_CALLS):
        batch(1, _nothing)
    counter.start()  # one call counted says how much more warm-up and how many loops
    try:
        one_call, one_empty = counter.count([(batch, 1), (empty, 1)])
    finally:
        counter.stop()
    warmed = warmup_calls(one_call - one_empty)
    for _ in range(warmed - MIN_WARMUP_CALLS):
        batch(1, _nothing)
    loops = plan.loops or loops_for(one_call - one_empty)
    threads_before = native_threads()
    fallbacks = counter.batches_on_cpython_allocator
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    counter.start()
    try:
        # One pair more than kept: the first counts after the start settle the allocator.
        totals = counter.count([(empty, loops), (batch, loops)] * (plan.samples + SETTLING))
    finally:
        counter.stop()
        if was_enabled:
            gc.enable()
    keep_last_result(probe)
    overheads = totals[0::2][SETTLING:]
    counts = [
        whole - overhead for whole, overhead in zip(totals[1::2][SETTLING:], overheads, strict=True)
    ]
    threads_after = native_threads()
    details: dict[str, Any] = {
        "counter": "callgrind",
        "warmup_calls": warmed,
        "empty_loop_instructions": sorted(overheads)[len(overheads) // 2],
    }
    if counter.batches_on_cpython_allocator > fallbacks:
        details["allocator"] = (
            "counted with CPython's allocator (the counting allocator's epochs ran out): "
            "this count depends on what the run allocated before"
        )
    if threads_before > 1 or threads_after > 1:
        details["note"] = (
            f"{max(threads_before, threads_after)} threads were alive: the instructions "
            "of every thread while counting are in the count"
        )
    return Measurement(
        name=name,
        unit=INSTRUCTIONS,
        direction=Direction.LOWER_IS_BETTER,
        # A callable cheaper than the empty one (rare) is floored at one instruction.
        samples=tuple(max(count / loops, 1.0) for count in counts),
        loops=loops,
        stop_reason="counted",
        machine={"valgrind": _valgrind_version()},
        details=details,
    )


def _nothing() -> None:
    pass


def _valgrind_version() -> str:
    """Counts from other Valgrind versions are not compared (instrumentation changes)."""
    executable = valgrind_executable()
    if executable is None:
        return "unknown"
    found = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, check=False
    ).stdout
    return found.strip().removeprefix("valgrind-") or "unknown"


def measurement_name(name: str) -> str:
    """``perf(fn)``'s "time" is "instructions" here: both can live in one baseline file."""
    return INSTRUCTIONS if name == "time" else f"{name}.{INSTRUCTIONS}"


class InstructionProbe:
    """``perf(fn)`` and ``perf.call(...)`` under ``measure="instructions"``: the callable's
    instructions per call, counted under callgrind and judged as it returns."""

    def __init__(self, host: ProbeHost, *, memory: bool = False) -> None:
        self._host = host
        self._memory = memory  #: measure peak memory when a call does not say
        self._counter: Callgrind | None = None

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
        """Count ``fn(*args, **kwargs)`` as ``name``; return the result of its last call."""
        __tracebackhide__ = True
        host = self._host
        counted_name = measurement_name(name)
        host.claim(counted_name)
        probe = CallProbe(fn, args, kwargs, setup=setup)
        try:
            if not host.measuring:
                return probe.call_once()
            if probe.is_async:
                raise TypeError(
                    f"perf in {host.test_id}: counting instructions of an async callable "
                    "is not supported (the event loop's instructions would be counted): "
                    "count a synchronous function, or measure time"
                )
            if setup is not None and loops not in (None, 1):
                raise ValueError(
                    f"perf.call in {host.test_id}: loops= cannot be combined with setup=, "
                    "which runs before every call (each call is its own sample)"
                )
            plan = CountPlan(
                samples=min(host.plan.min_samples, MAX_SAMPLES),
                loops=1 if setup is not None else (loops or host.plan.loops),
            )
            host.judge(count_instructions(counted_name, probe, self.counter(), plan), None)
            if self._memory if memory is None else memory:
                peaks = peak_memory(probe.prepared_call)
                memory_name = f"{name}.peak_memory"
                host.claim(memory_name)
                host.judge(Measurement(memory_name, "B", Direction.LOWER_IS_BETTER, peaks), None)
            return probe.result
        finally:
            probe.close()

    def counter(self) -> Callgrind:
        if self._counter is None:
            self._counter = Callgrind.attach()
        return self._counter
