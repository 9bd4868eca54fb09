"""How long the dashboard takes on a large history: read, analyse, render.

Issue 17 asks that a history of 1,000 measurements x 1,000 runs loads, analyses and renders
its dashboard in under 10 s, from SQLite and from PostgreSQL. This script records such a
history (a level per measurement with 2% noise, a 10% step in one measurement out of ten,
a budget on one in five), then times, each ``--repeats`` times:

- read: ``open_history(...).series()`` (every point of every series);
- analyse: ``view_of`` per series (change points, trend, forecast, budget outlook);
- render: ``write_dashboard`` (the index and a page per measurement, to a fresh directory).

Recording the history is not timed (it is the store's cost, paid run by run). The
PostgreSQL server is a throwaway one from Debian's binaries (tests/postgres_server.py);
without them the PostgreSQL half is skipped, saying so.

    .venv/bin/python benchmarks/history_dashboard_scale.py --measurements 1000 --runs 1000
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pytest_perfgate.history.dashboard import write_dashboard
from pytest_perfgate.history.model import RecordedMeasurement, RecordedRun, RunKind
from pytest_perfgate.history.store import open_history
from pytest_perfgate.history.views import views_of

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def record_history(where: str, measurements: int, runs: int, seed: int) -> None:
    """A history of ``runs`` nightly runs of ``measurements`` measurements."""
    rng = random.Random(seed)
    levels = [rng.uniform(1e-4, 1e-2) for _ in range(measurements)]
    steps = {i: rng.randrange(runs // 4, 3 * runs // 4) for i in range(0, measurements, 10)}
    with open_history(where) as history:
        for r in range(runs):
            run = RecordedRun(
                kind=RunKind.GATE,
                started_at=START + timedelta(hours=12 * r),
                commit=f"{rng.getrandbits(160):040x}",
                branch="main",
                machine_class="x86_64-2c-linux",
                wall_seconds=600.0,
                source="benchmarks/history_dashboard_scale.py",
            )
            history.record(
                run,
                [
                    RecordedMeasurement(
                        test_id=f"tests/test_m{i // 10}.py::test_case[{i}]",
                        name="time",
                        unit="s",
                        lower_is_better=True,
                        statistic="median",
                        value=levels[i]
                        * (1.1 if i in steps and r >= steps[i] else 1.0)
                        * (1 + 0.02 * rng.gauss(0, 1)),
                        samples=20,
                        verdict="UNCHANGED",
                        budget=levels[i] * 1.25 if i % 5 == 0 else None,
                    )
                    for i in range(measurements)
                ],
            )


def cpu_seconds() -> float:
    """CPU time of this process and of its finished worker processes (user + system)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed_pass(where: str, out: Path, workers: int | None) -> dict[str, float]:
    """One read, analyse, render: wall seconds per phase, and CPU seconds (all
    processes: on a machine others load, CPU time says more than wall time)."""
    now = datetime.now(timezone.utc)
    wall, cpu = [time.perf_counter()], [cpu_seconds()]

    def lap() -> None:
        wall.append(time.perf_counter())
        cpu.append(cpu_seconds())

    with open_history(where) as history:
        series = history.series()
    lap()
    views = views_of(series, now=now, workers=workers)
    lap()
    shutil.rmtree(out, ignore_errors=True)
    site = write_dashboard(views, out, generated_at=now, source=where, workers=workers)
    lap()
    points = sum(len(s.points) for s in series)
    size = sum(p.stat().st_size for p in out.rglob("*.html"))
    phases = ("read", "analyse", "render")
    figures = {phase: wall[i + 1] - wall[i] for i, phase in enumerate(phases)}
    figures |= {f"{phase} CPU": cpu[i + 1] - cpu[i] for i, phase in enumerate(phases)}
    figures |= {"total": wall[-1] - wall[0], "total CPU": cpu[-1] - cpu[0]}
    print(
        f"  {len(series)} series, {points} points, {site.pages} pages, {size / 1e6:.1f} MB, "
        f"load {os.getloadavg()[0]:.1f}: "
        + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in figures.items()),
        flush=True,
    )
    return figures


@contextmanager
def postgres_url() -> Iterator[str | None]:
    from postgres_server import missing_reason, running_server

    reason = missing_reason()
    if reason is not None:
        print(f"PostgreSQL: skipped ({reason})")
        yield None
        return
    with running_server() as url:
        yield url


def measure(label: str, where: str, args: argparse.Namespace, scratch: Path) -> None:
    started = time.perf_counter()
    record_history(where, args.measurements, args.runs, args.seed)
    print(f"{label}: recorded in {time.perf_counter() - started:.1f} s (not counted)", flush=True)
    passes = [timed_pass(where, scratch / "site", args.workers) for _ in range(args.repeats)]
    medians = {phase: statistics.median(p[phase] for p in passes) for phase in passes[0]}
    print(
        f"{label}: median of {args.repeats}: "
        + ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in medians.items()),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measurements", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--workers", type=int, help="processes for the analyses (default: the usable CPUs)"
    )
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="perfgate-scale-") as scratch_dir:
        scratch = Path(scratch_dir)
        if args.backend in ("sqlite", "both"):
            measure("SQLite", f"sqlite:///{scratch / 'history.sqlite'}", args, scratch)
        if args.backend in ("postgresql", "both"):
            with postgres_url() as url:
                if url is not None:
                    measure("PostgreSQL", url, args, scratch)
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
