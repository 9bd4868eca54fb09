"""CPU contention from other processes, and what it does to a verdict.

Loopback network and much storage work is CPU work: on a shared 2-core machine, a
neighbour's test run cut loopback throughput by 65% and starved an open-loop sender
(docs/performance.md). Linux says how much of the time runnable tasks waited for a CPU
(pressure stall information, /proc/pressure/cpu). Probes record that share over their
run in ``details["cpu_pressure"]``; a regression measured while the CPUs were much more
contended than when the baseline was recorded cannot be told from the neighbours' doing,
and is INCONCLUSIVE instead, with a note that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .model import BaselineEntry, Measurement, Verdict
from .stats import Decision

PRESSURE_FILE = Path("/proc/pressure/cpu")
#: A run is contended when runnable tasks waited for a CPU this share of its time...
CONTENDED = 0.10
#: ...and that share exceeds the baseline's by this much (absolute).
MARGIN = 0.05


def cpu_stall_us(path: Path = PRESSURE_FILE) -> int | None:
    """Microseconds, since boot, during which some runnable task waited for a CPU; None
    where the kernel does not report it (not Linux, or PSI disabled)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("some "):
                fields = dict(part.split("=", 1) for part in line.split()[1:])
                return int(fields["total"])
    except (OSError, KeyError, ValueError):
        return None
    return None


def pressure_between(before: int | None, after: int | None, wall_ns: int) -> float | None:
    """The share of ``wall_ns`` during which some task waited for a CPU (0 to 1)."""
    if before is None or after is None or wall_ns <= 0:
        return None
    return min(1.0, max(0.0, (after - before) * 1000 / wall_ns))


def pooled(details: Mapping[str, Any], fresh: Mapping[str, Any]) -> dict[str, Any]:
    """Details of two looks pooled: the calmer look's pressure, so that a regression
    that a calm look confirms is never put down to contention."""
    a, b = details.get("cpu_pressure"), fresh.get("cpu_pressure")
    if a is None or b is None:
        return {k: v for k, v in details.items() if k != "cpu_pressure"}
    return {**details, "cpu_pressure": min(float(a), float(b))}


def review(
    decision: Decision, measurement: Measurement, baseline: BaselineEntry
) -> tuple[Decision, list[str]]:
    """A REGRESSED decision measured under much more CPU contention than its baseline
    becomes INCONCLUSIVE, with the reason."""
    now = measurement.details.get("cpu_pressure")
    before = float(baseline.details.get("cpu_pressure", 0.0))
    if decision.verdict is not Verdict.REGRESSED or now is None:
        return decision, []
    now = float(now)
    if now < CONTENDED or now < before + MARGIN:
        return decision, []
    note = (
        f"other processes competed for the CPUs during the run (CPU pressure {now:.0%}, "
        f"{before:.0%} when the baseline was recorded): the slowdown cannot be told from theirs"
    )
    return replace(decision, verdict=Verdict.INCONCLUSIVE), [note]
