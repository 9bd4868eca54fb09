"""Which kind of measurement this is, and the run-to-run noise assumed for its kind.

A run of unchanged code lands at a level of its own; how far that level wanders depends on
what is measured: a GPU copy moves by hundredths of a percent, a shared virtual disk by tens
of percent. Each kind gets its own prior (relative standard deviation of a run's level),
chosen from the figures in docs/performance.md (docs/explanation/statistics.md says which);
a baseline's history then measures the noise of each measurement (stats.run_noise_of), and
``--perf-run-noise`` replaces every prior with one figure.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from .model import Measurement


class MeasurementKind(enum.Enum):
    """What a measurement measures, as far as its run-to-run noise goes."""

    CPU = "cpu timing"  #: a timed call on the CPU (perf(fn), a region)
    GPU = "gpu kernel"  #: GPU work timed with CUDA events
    STORAGE = "storage"  #: a storage probe's throughput, IOPS or latency
    NETWORK = "network"  #: a network probe's throughput or round trips
    COLLECTIVE = "collective"  #: a torch.distributed collective
    COUNTED = "instruction counts"  #: deterministic: no run noise, judged on its history
    UNTIMED = "untimed"  #: bytes and the user's own units: their samples carry their noise


#: Relative standard deviation of a run's level, per kind, until a history measures it.
RUN_NOISE_PRIORS: Mapping[MeasurementKind, float] = {
    # Speed-adjusted CPU timings: 0.6-3.7% per workload, 2.2-3.4% over a whole suite's A/A runs.
    MeasurementKind.CPU: 0.025,
    # GPU kernels: the 1 GiB copy moves by 0.03% between runs, the power-capped matmul by
    # up to 8% in time (judged in cycles too): 1% leaves room above the quiet kernels.
    MeasurementKind.GPU: 0.01,
    # Shared virtual disks: write throughput dropped by 35% for minutes with nothing changed.
    MeasurementKind.STORAGE: 0.10,
    # Loopback: round trips 7.9-9.8 us over 20 runs once pinned, throughput a few percent.
    MeasurementKind.NETWORK: 0.05,
    # NCCL all_reduce 1 MiB: 42.0-45.3 us over three refreshes; gloo on CPUs 5-15%.
    # Large NCCL messages are far quieter (LARGE_NCCL_PRIOR).
    MeasurementKind.COLLECTIVE: 0.05,
    MeasurementKind.COUNTED: 0.0,
    MeasurementKind.UNTIMED: 0.0,
}

#: Machine-class field prefixes that name a probe's kind (probes set them on Measurement).
_KIND_PREFIXES = (
    ("collective.", MeasurementKind.COLLECTIVE),  # before gpu.: NCCL ranks sit on GPUs
    ("gpu.", MeasurementKind.GPU),
    ("fs.", MeasurementKind.STORAGE),
    ("net.", MeasurementKind.NETWORK),
)


def kind_of(unit: str, machine: Iterable[str]) -> MeasurementKind:
    """The kind of a measurement in ``unit`` whose machine-class fields are ``machine``
    (a Measurement's own, or a baseline entry's environment, which includes them)."""
    if unit == "instructions":
        return MeasurementKind.COUNTED
    if not (unit == "s" or unit.endswith("/s")):
        return MeasurementKind.UNTIMED
    keys = tuple(machine)
    for prefix, kind in _KIND_PREFIXES:
        if any(key.startswith(prefix) for key in keys):
            return kind
    return MeasurementKind.CPU


def prior_of(kind: MeasurementKind, override: float | None) -> float:
    """The run-noise prior of a ``kind``, or ``override`` (the user's ``--perf-run-noise``)
    for every timed kind. Untimed and counted metrics have none."""
    if kind in (MeasurementKind.COUNTED, MeasurementKind.UNTIMED):
        return 0.0
    return RUN_NOISE_PRIORS[kind] if override is None else override


#: An NCCL collective of at least LARGE_NCCL_BYTES is bandwidth-bound: over A/A runs its
#: level moved by at most 3.6% at 64 MiB and 1.4% at 1 GiB on 2 H200s (under 2% on 4),
#: where 1 MiB moved by -12..+9% (docs/performance.md). The kind's 5% left a 3-refresh
#: gate blind to +10% there; at 2%, 23 A/A runs on 2 and 4 GPUs stayed green.
LARGE_NCCL_BYTES = 16 * 2**20
LARGE_NCCL_PRIOR = 0.02


def run_noise_prior(measurement: Measurement, override: float | None) -> float:
    """The run-noise prior of ``measurement`` (see prior_of); a large NCCL message gets
    LARGE_NCCL_PRIOR instead of its kind's."""
    kind = kind_of(measurement.unit, measurement.machine)
    if override is None and kind is MeasurementKind.COLLECTIVE and _large_nccl(measurement):
        return LARGE_NCCL_PRIOR
    return prior_of(kind, override)


def _large_nccl(measurement: Measurement) -> bool:
    details = measurement.details
    size = details.get("bytes")
    return (
        details.get("backend") == "nccl"
        and isinstance(size, int)
        and not isinstance(size, bool)
        and size >= LARGE_NCCL_BYTES
    )
