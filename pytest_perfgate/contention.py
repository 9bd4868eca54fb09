"""Contention from other processes (for the CPUs, for the disk), and what it does to a
verdict.

Loopback network and much storage work is CPU work: on a shared 2-core machine, a
neighbour's test run cut loopback throughput by 65% and starved an open-loop sender
(docs/performance.md). Linux says how much of the time runnable tasks waited for a CPU
(pressure stall information, /proc/pressure/cpu). Probes record that share over their
run in ``details["cpu_pressure"]``; a regression measured while the CPUs were much more
contended than when the baseline was recorded cannot be told from the neighbours' doing,
and is INCONCLUSIVE instead, with a note that says so, unless it is larger than waiting
for the CPUs could cause (a share p of waiting stretches a run by at most 1 / (1 - p)).

The disk is shared the same way: storage probes record the share of the device's traffic
during their run that was not theirs (/proc/diskstats), ``details["io_others"]``, and
the same rule applies to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .model import BaselineEntry, Direction, Measurement, Verdict
from .stats import Decision

PRESSURE_FILE = Path("/proc/pressure/cpu")
DISKSTATS = Path("/proc/diskstats")
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


def device_bytes(device: str, path: Path = DISKSTATS) -> int | None:
    """Bytes read and written by a block device (``"/dev/vda"``) since boot; None when
    it is not a block device here (overlay, tmpfs, not Linux)."""
    name = Path(device).name
    try:
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 10 and fields[2] == name:
                return (int(fields[5]) + int(fields[9])) * 512  # sectors read, written
    except (OSError, ValueError):
        return None
    return None


def others_share(before: int | None, after: int | None, ours: int) -> float | None:
    """The share of a device's traffic between two readings that was not ``ours``."""
    if before is None or after is None or after - before <= 0:
        return None
    moved = after - before
    return min(1.0, max(0.0, (moved - ours) / moved))


#: Details that measure contention, and what each says in a note.
SIGNALS = {
    "cpu_pressure": "other processes competed for the CPUs during the run (CPU pressure",
    "io_others": "other processes used the same device during the run (their share of its traffic",
}


def pooled(details: Mapping[str, Any], fresh: Mapping[str, Any]) -> dict[str, Any]:
    """Details of two looks pooled: the calmer look's contention, so that a regression
    that a calm look confirms is never put down to contention."""
    result = dict(details)
    for key in SIGNALS:
        a, b = details.get(key), fresh.get(key)
        if a is None or b is None:
            result.pop(key, None)
        else:
            result[key] = min(float(a), float(b))
    return result


def explainable_slowdown(now: float, before: float) -> float:
    """The largest slowdown (a factor on time) that contention of share ``now``, against
    ``before`` for the baseline, can cause.

    Work that needs the CPUs (or the device) for W seconds and waits for them a share
    ``p`` of the elapsed time takes at most W / (1 - p): waiting cannot stretch a run
    further than that, whoever the waiting was for.
    """
    if now >= 1.0:
        return math.inf
    return (1.0 - min(before, now)) / (1.0 - now)


def _least_slowdown(decision: Decision, direction: Direction) -> float:
    """The smallest slowdown factor (on time) the decision's interval allows."""
    if direction is Direction.HIGHER_IS_BETTER:
        return math.inf if decision.ci_high <= 0 else 1.0 / decision.ci_high
    return decision.ci_low


def review(
    decision: Decision, measurement: Measurement, baseline: BaselineEntry
) -> tuple[Decision, list[str]]:
    """A REGRESSED decision measured under much more contention (for the CPUs, or for
    the device) than its baseline becomes INCONCLUSIVE, with the reason, unless the
    slowdown is larger than that contention could cause."""
    if decision.verdict is not Verdict.REGRESSED:
        return decision, []
    for key, text in SIGNALS.items():
        now = measurement.details.get(key)
        if now is None:
            continue
        now, before = float(now), float(baseline.details.get(key, 0.0))
        if now < CONTENDED or now < before + MARGIN:
            continue
        bound = explainable_slowdown(now, before)
        if _least_slowdown(decision, measurement.direction) > bound:
            note = (
                f"{text} {now:.0%}, {before:.0%} when the baseline was recorded), which "
                f"explains at most {bound:.2f}x: the slowdown is larger than that"
            )
            return decision, [note]
        note = (
            f"{text} {now:.0%}, {before:.0%} when the baseline was recorded): "
            "the slowdown cannot be told from theirs"
        )
        return replace(decision, verdict=Verdict.INCONCLUSIVE), [note]
    return decision, []
