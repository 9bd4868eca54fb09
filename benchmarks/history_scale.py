"""How long the run history takes at scale: 1,000 measurements x 1,000 runs.

For SQLite (a file in a temporary directory) and PostgreSQL (a throwaway local server over
a Unix socket, fsync on, started as the tests start one), records RUNS runs of MEASUREMENTS
measurements each through ``History.record`` (one transaction per run, as the plugin
records), then times, on a freshly opened history each time:
- ``series()``: every measurement's series, the load a dashboard or an analysis starts with;
- ``runs()``: the run list;
- ``series(since=...)``: the last tenth of the runs.

Usage: python benchmarks/history_scale.py [--runs 1000] [--measurements 1000] [--repeat 3]
       [--backend sqlite|postgresql|both]
Prints one line per figure (best and median of --repeat) and the load average.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pytest_perfgate.history.model import RecordedMeasurement, RecordedRun, RunKind
from pytest_perfgate.history.store import open_history

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def measurements_of(run: int, count: int, rng: random.Random) -> list[RecordedMeasurement]:
    return [
        RecordedMeasurement(
            test_id=f"tests/test_mod{i // 20}.py::test_case_{i}",
            name="time",
            unit="s",
            lower_is_better=True,
            statistic="median",
            value=0.001 * (1 + i % 17) * rng.lognormvariate(0, 0.02),
            ci_low=0.00099,
            ci_high=0.00101,
            samples=40,
            verdict="UNCHANGED",
            ratio=1.0,
            budget=None if i % 10 else 0.05,
        )
        for i in range(count)
    ]


def populate(url: str, runs: int, count: int) -> float:
    """Record the history; the seconds per recorded run (median)."""
    rng = random.Random(17)
    took = []
    with open_history(url) as history:
        for run in range(runs):
            recorded = RecordedRun(
                RunKind.GATE, T0 + timedelta(hours=run), f"{run:040x}", "main", "bench", 60.0
            )
            rows = measurements_of(run, count, rng)
            start = time.perf_counter()
            history.record(recorded, rows)
            took.append(time.perf_counter() - start)
    return statistics.median(took)


def timed(url: str, work: Callable[..., object], repeat: int) -> tuple[float, float, float]:
    """(best, median) wall seconds of opening the history and doing ``work`` on it, and
    the median CPU seconds of this process (the client's share; on a loaded machine the
    wall time waits for a core, the CPU time does not)."""
    took, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        with open_history(url) as history:
            work(history)
        took.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(took), statistics.median(took), statistics.median(cpu)


@contextmanager
def backend(name: str) -> Iterator[str]:
    if name == "sqlite":
        with tempfile.TemporaryDirectory(prefix="perfgate-scale-") as scratch:
            yield str(Path(scratch) / "history.sqlite")
        return
    from postgres_server import missing_reason, running_server

    reason = missing_reason()
    if reason:
        raise SystemExit(f"postgresql: {reason}")
    with running_server(fsync=True) as url:
        yield url


def measure(name: str, runs: int, count: int, repeat: int) -> None:
    with backend(name) as url:
        start = time.perf_counter()
        per_run = populate(url, runs, count)
        print(
            f"{name}: recorded {runs} runs x {count} measurements in "
            f"{time.perf_counter() - start:.1f} s ({per_run * 1000:.0f} ms per run, median)"
        )
        since = T0 + timedelta(hours=runs * 9 // 10)
        checks: list[tuple[str, Callable[..., object]]] = [
            ("series() of everything", lambda h: _check(h.series(), count, runs)),
            ("runs()", lambda h: h.runs()),
            ("series(since=last tenth)", lambda h: h.series(since=since)),
        ]
        for label, work in checks:
            best, median, cpu = timed(url, work, repeat)
            print(
                f"{name}: {label}: best {best:.2f} s, median {median:.2f} s "
                f"(client CPU {cpu:.2f} s), load {os.getloadavg()[0]:.1f}"
            )


def _check(series: list[object], count: int, runs: int) -> None:
    assert len(series) == count, len(series)
    assert all(len(s.points) == runs for s in series)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--measurements", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    names = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for name in names:
        measure(name, args.runs, args.measurements, args.repeat)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
