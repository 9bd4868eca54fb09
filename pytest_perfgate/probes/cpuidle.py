"""CPUs kept out of idle states while storage and network are measured.

A request on loopback, or an I/O completion, wakes the process waiting for it; if that
process's CPU went idle, the wake-up costs what the idle state costs to leave. On this
project's VM (cpuidle driver haltpoll) a halted vCPU took about 80 us to wake: the same
ping-pong measured 8 us round trips while other processes kept the CPUs busy and 90 us
when the machine was quiet, so unchanged tests failed whenever the load around them
changed (docs/performance.md).

Linux keeps CPUs out of idle states with an exit latency above a bound for as long as a
PM QoS request holds /dev/cpu_dma_latency open (tuned's latency-performance profile does
the same): 0 us means polling, never halting. That needs root; without it the CPUs idle
as they will. Which of the two a measurement ran under is a machine-class field
(``cpu.idle``), so the two regimes are never compared.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path

LATENCY_QOS = Path("/dev/cpu_dma_latency")
POLLING = "polling"  #: CPUs kept out of idle states for the measurement
DEFAULT = "default"  #: the kernel's choice (no permission, or not Linux)


@contextlib.contextmanager
def cpus_kept_awake(path: Path = LATENCY_QOS) -> Iterator[str]:
    """Hold a 0 us CPU latency request while the block runs; yields ``"polling"`` if it
    is held, ``"default"`` where it cannot be."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        yield DEFAULT
        return
    try:
        try:
            os.write(fd, struct.pack("i", 0))
        except OSError:
            held = DEFAULT
        else:
            held = POLLING
        yield held
    finally:
        os.close(fd)  # closing the file drops the request
