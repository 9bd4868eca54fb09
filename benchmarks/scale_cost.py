"""What a perf test costs beyond its work, at 100, 1,000 and 10,000 tests.

Generates a suite of trivial perf tests (``perf(int, i)`` with
``@pytest.mark.perf(rounds=5, loops=1, warmup_time=0, speed_reference=False)``, 100 to a
file), then times, each in a fresh process: a refresh (``--perf-update-baselines``), a
gated run against those baselines, and the same tests written for pytest-benchmark
(``--benchmark-min-rounds=5 --benchmark-max-time=0 --benchmark-warmup=off``) when it is
installed. The measured work is five calls of ``int`` a test, microseconds: the time per
test is the tool's own cost. Peak memory is the child's maximum resident set.

Usage:  python benchmarks/scale_cost.py [--sizes 100 1000 10000] [--python PYTHON]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PER_FILE = 100

PERF_TEST = """
@pytest.mark.perf(rounds=5, loops=1, warmup_time=0, speed_reference=False)
def test_t{i}(perf):
    perf(int, {i})
"""

BENCHMARK_TEST = """
def test_t{i}(benchmark):
    benchmark(int, {i})
"""


def write_suite(directory: Path, tests: int, template: str) -> None:
    directory.mkdir(parents=True)
    (directory / "pytest.ini").write_text("[pytest]\n")
    for start in range(0, tests, PER_FILE):
        body = "".join(template.format(i=i) for i in range(start, min(start + PER_FILE, tests)))
        (directory / f"test_gen{start // PER_FILE:04d}.py").write_text("import pytest\n" + body)


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident set (MiB) of one run in a child; fails loudly."""
    start = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = child.stdout.read() if child.stdout is not None else ""
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not all children's
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-4000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    args = parser.parse_args()
    pytest = [args.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    has_benchmark = (
        subprocess.run(
            [args.python, "-c", "import pytest_benchmark"], capture_output=True
        ).returncode
        == 0
    )
    work = Path(tempfile.mkdtemp(prefix="perfgate-scale-"))
    print(f"{'tests':>6} {'tool':<26} {'wall s':>8} {'ms/test':>8} {'peak MiB':>9}")
    for size in args.sizes:
        ours, theirs = work / f"perf{size}", work / f"bench{size}"
        write_suite(ours, size, PERF_TEST)
        rows = [
            ("perfgate refresh", [*pytest, "-p", "no:benchmark", "--perf-update-baselines"], ours),
            ("perfgate gated run", [*pytest, "-p", "no:benchmark"], ours),
        ]
        if has_benchmark:
            write_suite(theirs, size, BENCHMARK_TEST)
            bench_options = [
                "--benchmark-min-rounds=5",
                "--benchmark-max-time=0",
                "--benchmark-warmup=off",
            ]
            rows.append(
                ("pytest-benchmark", [*pytest, "-p", "no:perfgate", *bench_options], theirs)
            )
        for label, command, cwd in rows:
            wall, peak = timed(command, cwd)
            print(f"{size:>6} {label:<26} {wall:>8.2f} {wall / size * 1000:>8.2f} {peak:>9.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
