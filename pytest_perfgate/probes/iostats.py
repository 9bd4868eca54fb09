"""What storage and network probes share: the turning of timed operations into samples
(rates per slice, latency percentiles).

Pure functions on recorded completions, so the slicing rules are tested on scripted
timestamps, never on real timing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

import numpy as np

from ..stats import quantile_rank

#: The percentiles every latency summary reports (details, and the probe's result).
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@final
@dataclass(frozen=True, slots=True)
class Completion:
    """One finished operation: when it started and ended (ns), and the bytes it moved.

    A flush (fsync) is a completion that moves no bytes: its time counts in the rate of
    the slice it falls in, not among the operations' latencies.
    """

    start_ns: int
    end_ns: int
    nbytes: int
    is_io: bool = True  #: False for fsync/fdatasync


@final
@dataclass(frozen=True, slots=True)
class Rates:
    """Per-slice rates of one run: each slice is one sample of the gate."""

    mib_per_s: tuple[float, ...]
    ops_per_s: tuple[float, ...]
    total_bytes: int  #: bytes moved in the measured spans
    total_ops: int  #: I/O operations (flushes excluded)
    seconds: float  #: the measured spans' total time (ramps and gaps between passes excluded)

    @property
    def mean_mib_per_s(self) -> float:
        """Bytes over time of the whole measured run (fio's "bw")."""
        return self.total_bytes / 2**20 / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_ops_per_s(self) -> float:
        """Operations over time of the whole measured run (fio's "iops")."""
        return self.total_ops / self.seconds if self.seconds > 0 else 0.0


def slice_rates(passes: Sequence[Sequence[Completion]], slices: int) -> Rates:
    """Cut the completions of each pass into about ``slices`` slices of consecutive
    completions and give each slice's rate.

    A slice lasts from the end of the previous slice (or its pass's first start) to its
    last completion. Slicing by completions, not by clock windows, has no quantization
    error (a window counts an operation or not), and works the same with several
    operations in flight. Gaps between passes (dropping the page cache, re-reading a
    file) belong to no slice. A short tail of a pass joins its last slice.
    """
    if slices < 1:
        raise ValueError("slices must be at least 1")
    ordered = [sorted(p, key=lambda c: c.end_ns) for p in passes if p]
    total = sum(len(p) for p in ordered)
    if total == 0:
        raise ValueError("no completions to slice")
    group = max(1, total // slices)
    mib: list[float] = []
    ops: list[float] = []
    total_bytes = total_ops = total_ns = 0
    for completions in ordered:
        anchor = min(c.start_ns for c in completions)
        for part in _groups(completions, group):
            span = part[-1].end_ns - anchor
            nbytes = sum(c.nbytes for c in part)
            nops = sum(1 for c in part if c.is_io)
            if span > 0:
                mib.append(nbytes / 2**20 / (span / 1e9))
                ops.append(nops / (span / 1e9))
            total_bytes += nbytes
            total_ops += nops
            total_ns += max(span, 0)
            anchor = part[-1].end_ns
    return Rates(tuple(mib), tuple(ops), total_bytes, total_ops, total_ns / 1e9)


def _groups(completions: Sequence[Completion], size: int) -> list[list[Completion]]:
    """Consecutive groups of ``size`` completions; a short tail (half a group or less)
    joins the last group, and so does a group of flushes alone (a rate of zero bytes
    would say nothing). A pass of flushes alone gives no group."""
    groups: list[list[Completion]] = []
    pending: list[Completion] = []
    for begin in range(0, len(completions), size):
        part = pending + list(completions[begin : begin + size])
        short = len(completions) - begin <= size / 2 and begin > 0
        if groups and (short or not any(c.is_io for c in part)):
            groups[-1].extend(part)
            pending = []
        elif any(c.is_io for c in part):
            groups.append(part)
            pending = []
        else:
            pending = part  # flushes before any I/O: their time joins the next group
    return groups


def latencies(passes: Sequence[Sequence[Completion]]) -> tuple[float, ...]:
    """Seconds of every I/O operation (flushes excluded), in completion order."""
    return tuple(
        (c.end_ns - c.start_ns) / 1e9
        for p in passes
        for c in sorted(p, key=lambda c: c.end_ns)
        if c.is_io
    )


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """``{"p50": ..., "p90": ..., "p99": ..., "p99.9": ..., "max": ...}`` of ``values``
    (inverted-CDF order statistics, as the gate computes a tail statistic)."""
    if not values:
        return {}
    ordered = np.sort(np.asarray(values, dtype=float))
    n = len(ordered)
    result = {f"p{p:g}": float(ordered[quantile_rank(n, p / 100)]) for p in PERCENTILES}
    result["max"] = float(ordered[-1])
    return result
