"""The perf fixture as a probe sees it: the plan and clock to measure with, and where the
measurements go to be judged.

Probes that build their own measurements (storage, network) get one of these instead of
the fixture itself, so they stay free of the fixture module (which imports them) and
are tested with a host that simply keeps what it is handed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

from ..model import Measurement
from ..sampling import Clock, SamplingPlan

#: Takes fresh samples of a measurement, for the gate's second look.
Resample = Callable[[], Measurement]


@final
@dataclass(frozen=True, slots=True)
class ProbeHost:
    """What a probe needs from the ``perf`` fixture of one test."""

    measuring: bool  #: False under ``--perf-mode=off``: run the user's code, measure nothing
    plan: SamplingPlan  #: the test's sampling plan (time budget, warm-up, fewest samples)
    claim: Callable[[str], None]  #: reserve a measurement name (raises if it is taken)
    judge: Callable[[Measurement, Resample | None], None]  #: judge now
    judge_at_finish: Callable[[Measurement], None]  #: judge (the latest of a name) at the end
    clock: Clock = time.perf_counter_ns


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
