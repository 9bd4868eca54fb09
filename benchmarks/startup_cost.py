"""What pytest-perfgate costs a test run that has no perf test (issue 13).

Generates a suite of trivial tests (no perf test) in a temporary directory and runs
``pytest -q -p no:cacheprovider`` on it ``--runs`` times with the plugin and as many
times without (``-p no:perfgate``), interleaved so machine drift hits both sides. Each
run is a fresh subprocess of the given interpreter. Prints the median wall time of each
side, the ratio of medians and its spread (the ratios of the paired runs, min..max and
interquartile range); and the same for CPU time (user + system of the pytest process),
which other work on a shared machine disturbs far less than wall time.

Usage:  python benchmarks/startup_cost.py [--tests 1000] [--runs 15] [--python PATH]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scale_cost import compile_bytecode  # this folder is first on the path

#: Trivial tests per generated file; the suite is split over files as real suites are.
TESTS_PER_FILE = 50


def write_suite(root: Path, tests: int) -> None:
    """``tests`` trivial tests, none of them a perf test."""
    for start in range(0, tests, TESTS_PER_FILE):
        count = min(TESTS_PER_FILE, tests - start)
        body = "".join(
            f"def test_{start + i}():\n    assert {i} + 1 > {i}\n\n" for i in range(count)
        )
        (root / f"test_trivial_{start // TESTS_PER_FILE}.py").write_text(body)


def timed_run(python: str, root: Path, *extra: str) -> tuple[float, float]:
    """Wall and CPU seconds of one pytest run on the suite; a failed run is an error."""
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(root)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def describe(what: str, with_plugin: list[float], without: list[float]) -> None:
    """Medians of both sides, the added time, and the spread of the paired ratios."""
    ratios = sorted(w / o for w, o in zip(with_plugin, without, strict=True))
    quartiles = statistics.quantiles(ratios, n=4)
    median_with, median_without = statistics.median(with_plugin), statistics.median(without)
    print(
        f"{what}: median {median_with:.3f} s with perfgate, "
        f"{median_without:.3f} s with -p no:perfgate"
    )
    print(
        f"  added: {median_with - median_without:+.3f} s "
        f"({(median_with / median_without - 1) * 100:+.1f}%, ratio of medians)"
    )
    print(
        f"  paired ratios: median {statistics.median(ratios):.3f}, "
        f"IQR {quartiles[0]:.3f}..{quartiles[2]:.3f}, range {ratios[0]:.3f}..{ratios[-1]:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15, help="runs per side")
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure")
    args = parser.parse_args()
    compile_bytecode(args.python)
    with tempfile.TemporaryDirectory(prefix="perfgate-startup-") as scratch:
        root = Path(scratch)
        write_suite(root, args.tests)
        timed_run(args.python, root)  # warm the file cache and the bytecode caches
        timed_run(args.python, root, "-p", "no:perfgate")
        runs: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
        for run in range(args.runs):
            # Alternate which side goes first, so neither always follows the other.
            sides = [("with", ()), ("without", ("-p", "no:perfgate"))]
            for side, extra in sides if run % 2 == 0 else reversed(sides):
                runs[side].append(timed_run(args.python, root, *extra))
    print(f"python: {args.python}")
    print(f"{args.tests} trivial tests, {args.runs} runs per side, interleaved")
    for index, what in enumerate(("wall time", "CPU time")):
        describe(what, [r[index] for r in runs["with"]], [r[index] for r in runs["without"]])


if __name__ == "__main__":
    main()
