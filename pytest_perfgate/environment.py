"""The machine fingerprint and the machine-speed calibration.

A baseline gates only measurements from the same *machine class*: same CPU model, number
of logical CPUs, OS, architecture and Python (implementation and minor version). Host
names, kernel and package versions are kept for people but never compared: CI runners of
one class differ in all of them.

The calibration is a fixed pure-Python workload (integer arithmetic, function calls,
dict and string work: the mix most perf tests here exercise), timed the same way as a
perf test. Its ratio between two machines is the factor used to compare across machine
classes when the user asks for ``--perf-on-mismatch=normalize``; how well that predicts
real tests was measured and is published in docs/performance.md (cross-machine section).
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from .model import Environment
from .sampling import Batch, BatchTime, Sampler, SamplingPlan
from .stats import summarize


def cpu_model() -> str:
    """The CPU's marketing name, as the OS reports it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith(("model name", "Hardware", "cpu model")):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or "unknown"


def machine_fingerprint() -> dict[str, str]:
    """Fields that must be equal for two measurements to be compared directly."""
    return {
        "arch": platform.machine(),
        "cpu": cpu_model(),
        "cpus": str(os.cpu_count() or 0),
        "os": platform.system(),
        "python": f"{platform.python_implementation()} {sys.version_info[0]}.{sys.version_info[1]}",
    }


def machine_info() -> dict[str, str]:
    """Facts shown beside a baseline, never compared."""
    from importlib import metadata

    try:
        version = metadata.version("pytest-perfgate")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        version = "unknown"
    return {
        "host": socket.gethostname(),
        "kernel": platform.release(),
        "python_full": platform.python_version(),
        "perfgate": version,
    }


def current_environment(calibration_ns: float | None = None) -> Environment:
    return Environment(machine_fingerprint(), machine_info(), calibration_ns)


def _calibration_workload() -> int:
    """Fixed pure-Python work: arithmetic, calls, a dict, strings. Never change it lightly:
    stored calibration scores are only comparable for the same workload."""
    table: dict[int, str] = {}
    total = 0
    for i in range(2000):
        total += (i * i) % 7
        table[i % 257] = str(i)
        total += len(table.get((i * 31) % 257, ""))
    return total + len(",".join(sorted(table.values())))


def speed_reference(clock: Callable[[], int] | None = None) -> Batch:
    """A batch of the fixed workload, run after every CPU sample as a speed reference."""
    import time

    read = clock or time.perf_counter_ns

    def batch(loops: int) -> BatchTime:
        start = read()
        for _ in range(loops):
            _calibration_workload()
        return BatchTime(read() - start)

    return batch


def calibrate_machine(clock: Callable[[], int] | None = None, max_time: float = 0.25) -> float:
    """Median nanoseconds of one calibration workload on this machine, now.

    Short samples (2 ms, about 7 workloads) and a 10 ms warm-up: against 5 ms and 50 ms,
    ten calibrations each, alternated on the 2-core VM, gave the same median (+0.5%) and
    spread (5% over the ten, the machine's own) in 84 ms instead of 205 (median), the
    largest fixed cost of a refresh (docs/performance.md). A 3% CI from 9 samples on,
    not 1% from 15: twelve alternated calibrations each gave medians 0.1% apart and a
    spread of 3.1% against 2.5% (the machine moves more than either) in 44 ms instead of
    82 (median; 69 against 153 at most). The score is compared across machine classes
    only, with the threshold widened by half (--perf-normalize-margin)."""
    import time

    read = clock or time.perf_counter_ns
    batch = speed_reference(read)
    plan = SamplingPlan(
        warmup_time=0.01,
        min_sample_time=0.002,
        target_precision=0.03,
        min_samples=9,
        max_time=max_time,
    )
    samples = Sampler(plan, clock=read).run(batch)
    return summarize(samples.wall).median * 1e9


def git_commit(directory: Path) -> str | None:
    """The checked-out commit of the repository holding ``directory``, if any."""
    return git_output(directory, "rev-parse", "HEAD")


def git_output(directory: Path, *args: str) -> str | None:
    """What ``git ARGS`` prints in ``directory``, stripped; None where git, the repository
    or an answer is missing."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = result.stdout.strip()
    return text if result.returncode == 0 and text else None


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
