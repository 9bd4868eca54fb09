"""The perf fixture as a probe sees it: the one interface between the fixture and every
probe kind (CPU calls, GPU work, collectives, storage, network).

A probe is a class built from a :class:`ProbeHost` (and its own settings, as keywords).
From the host it gets what to measure with: whether to measure at all, the test's
sampling plan, the clocks, and the stored baseline of a measurement name with what it
takes to know whether this run may reuse it (environment, code hash). It hands back
through the host: ``claim(name)`` before measuring, then each measurement to ``judge``
now (with what takes fresh samples for the gate's second look) or ``judge_at_finish``
when the test's call ends. A new probe is a module here plus one property on the
fixture that builds it from ``PerfFixture._probe_host()``.

Probes never see the fixture itself, so they stay free of the fixture module (which
imports them) and are tested with :meth:`ProbeHost.keeping`, a host that keeps what it
is handed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

from ..model import BaselineEntry, Environment, Measurement
from ..sampling import Clock, Progress, SamplingPlan

#: Takes fresh samples of a measurement, for the gate's second look.
Resample = Callable[[], Measurement]


def _no_baseline(name: str) -> BaselineEntry | None:
    return None


def _no_progress(name: str) -> Progress | None:
    return None


@final
@dataclass(frozen=True, slots=True)
class ProbeHost:
    """What a probe needs from the ``perf`` fixture of one test."""

    measuring: bool  #: False under ``--perf-mode=off``: run the user's code, measure nothing
    plan: SamplingPlan  #: the test's sampling plan (time budget, warm-up, fewest samples)
    claim: Callable[[str], None]  #: reserve a measurement name (raises if it is taken)
    judge: Callable[[Measurement, Resample | None], None]  #: judge now
    judge_at_finish: Callable[[Measurement], None]  #: judge (the latest of a name) at the end
    clock: Clock = time.perf_counter_ns  #: wall clock, ns
    cpu_clock: Clock = time.process_time_ns  #: process CPU clock, ns
    test_id: str = ""  #: pytest node id, for messages
    baseline: Callable[[str], BaselineEntry | None] = _no_baseline  #: name -> stored entry
    environment: Environment | None = None  #: this run's machine, to match baselines with
    code_hash: str | None = None  #: the test's code hash, to match baselines with
    progress: Callable[[str], Progress | None] = _no_progress  #: name -> progress callback

    @classmethod
    def keeping(
        cls,
        plan: SamplingPlan,
        taken: list[Measurement],
        *,
        measuring: bool = True,
        clock: Clock = time.perf_counter_ns,
    ) -> ProbeHost:
        """A host that keeps every measurement in ``taken`` instead of judging it (for
        scripts and tests); names are not checked."""
        return cls(
            measuring=measuring,
            plan=plan,
            claim=lambda name: None,
            judge=lambda measurement, resample: taken.append(measurement),
            judge_at_finish=taken.append,
            clock=clock,
        )

    def reusable_loops(self, entry: BaselineEntry | None) -> int | None:
        """The calls per sample ``entry`` was measured with, when this run measures the
        same code on the same kind of machine (so it may sample the same way)."""
        if entry is None or entry.loops is None or entry.code_hash not in (None, self.code_hash):
            return None
        if self.environment is None or entry.environment.mismatches(self.environment):
            return None
        return entry.loops


#: Seconds a storage or network probe waits before the gate's second look.
SETTLE_SECONDS = 1.0


def after_a_pause(
    resample: Resample,
    seconds: float = SETTLE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Resample:
    """``resample`` that waits ``seconds`` first.

    Disks and loopback are shared with what runs beside the test, on this machine and,
    for a virtual disk, on its host, and a neighbour's burst can slow a whole look. The
    gate's second look exists to see whether a slow first look reproduces; taken
    straight after, it can land in the same burst. On the project's VM (40 triples of
    0.6 s checkpoint-write looks) a look 20% below the median was followed at once by
    another such look 1 time in 8, and after a 1 s pause 0 times in 4; an A/A run had
    failed on two back-to-back looks 40% down. A second's wait, paid only after a
    suspicious first look, is cheap insurance; a real regression is still there.
    """

    def paused() -> Measurement:
        sleep(seconds)
        return resample()

    return paused
