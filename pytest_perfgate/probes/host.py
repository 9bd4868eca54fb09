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
