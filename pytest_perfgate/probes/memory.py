"""Peak memory of a call, through tracemalloc.

tracemalloc slows Python allocations several times over, so peak memory is measured in
runs of its own, after the timing: the time samples never include its cost.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any


def peak_memory(prepare: Callable[[], Callable[[], Any]], runs: int = 3) -> tuple[float, ...]:
    """Peak bytes allocated (above the level at the start) during each of ``runs`` calls.

    ``prepare`` runs outside the traced span (per-sample setup) and returns the call.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    peaks: list[float] = []
    try:
        for _ in range(runs):
            call = prepare()
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            call()
            _, peak = tracemalloc.get_traced_memory()
            # Never zero: verdicts compare ratios, and a call can allocate nothing.
            peaks.append(float(max(peak - before, 1)))
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return tuple(peaks)
