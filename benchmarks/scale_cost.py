"""What a perf test costs beyond its work, at 100, 1,000 and 10,000 tests.

Generates a suite of trivial perf tests (``perf(int, i)`` with
``@pytest.mark.perf(rounds=5, loops=1, warmup_time=0, speed_reference=False)``, 100 to a
file), then times, each in a fresh process and side by side in one run of this script:

- plain pytest: the same tests without a perf fixture (``int(i)`` five times): the floor
  that any plugin adds to;
- a refresh (``--perf-update-baselines``) recording the suite for the first time, a gated
  run against those baselines, and a refresh again over them (a maintainer's refresh);
- the same tests written for pytest-benchmark (``--benchmark-min-rounds=5
  --benchmark-max-time=0 --benchmark-warmup=off``) when it is installed: measuring alone,
  then its nearest equivalents of a refresh (``--benchmark-save``) and of a gated run
  (``--benchmark-compare --benchmark-compare-fail=median:5%``);
- with ``--xdist N``, the gated run and pytest-benchmark again under ``-n N``.

The measured work is five calls of ``int`` a test, microseconds: the time per test is the
tool's own cost. "over plain" is (tool's time - plain pytest's) / tests: what the tool adds
to each test, pytest's own start-up and per-test work taken out. CPU seconds are user +
system of the child and the children it waited for (under xdist: controller and workers);
they move far less than wall time on a shared machine. Peak memory is the largest resident
set among the child and those children.

``--before DIR`` also times the refresh and the gated run with an earlier package (``git
archive <commit> pytest_perfgate | tar -x -C DIR``) first on ``PYTHONPATH``, side by side.

``--isolated N`` also times the core alone on N synthetic measurements (no pytest): load
N baselines from their files, decide N verdicts, write a refresh of them, and a refresh
in which one module's entries changed (which files are rewritten).

``--repeat N`` runs every row N times, in rounds (each round starts without baselines, so
each refresh records the same first run), and prints the medians.

Both packages' bytecode is compiled first (an installed wheel has it; see
``compile_bytecode``).

Usage:  python benchmarks/scale_cost.py [--sizes 100 1000 10000] [--python PYTHON]
            [--xdist 2] [--isolated 10000] [--before DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PER_FILE = 100
PYTEST_OK, TESTS_FAILED = 0, 1  #: pytest's exit codes

PERF_TEST = """
@pytest.mark.perf(rounds=5, loops=1, warmup_time=0, speed_reference=False)
def test_t{i}(perf):
    perf(int, {i})
"""

BENCHMARK_TEST = """
def test_t{i}(benchmark):
    benchmark(int, {i})
"""

PLAIN_TEST = """
def test_t{i}():
    for _ in range(5):
        int({i})
"""


def write_suite(directory: Path, tests: int, template: str) -> None:
    directory.mkdir(parents=True)
    (directory / "pytest.ini").write_text("[pytest]\n")
    for start in range(0, tests, PER_FILE):
        body = "".join(template.format(i=i) for i in range(start, min(start + PER_FILE, tests)))
        (directory / f"test_gen{start // PER_FILE:04d}.py").write_text("import pytest\n" + body)


def timed(
    command: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak resident set (MiB) and pytest's last line of one
    run in a child. Failed tests are allowed (a trivial test's verdict can be noise's on a
    shared machine: the cost is what is measured); any other failure stops the script."""
    start = time.perf_counter()
    child = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    output = child.stdout.read() if child.stdout is not None else ""
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not all children's
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (PYTEST_OK, TESTS_FAILED):
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-4000:]}")
    last = output.strip().splitlines()[-1] if output.strip() else ""
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, last


#: One run: label, command, directory, extra environment.
Row = tuple[str, list[str], Path, dict[str, str]]
#: The label of each refresh that records a suite for the first time: its directory's
#: baselines are removed before it runs. The other refreshes record over existing ones.
FIRST_RECORDINGS = ("perfgate refresh (before)", "perfgate refresh")


def suite_rows(args: argparse.Namespace, size: int, work: Path) -> list[Row]:
    """Every run for one suite size."""
    pytest = [args.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    ours, theirs, plain = work / f"perf{size}", work / f"bench{size}", work / f"plain{size}"
    write_suite(ours, size, PERF_TEST)
    write_suite(plain, size, PLAIN_TEST)
    ours_options = ["-p", "no:benchmark"]
    plain_command = [*pytest, "-p", "no:benchmark", "-p", "no:perfgate"]
    refresh = [*pytest, *ours_options, "--perf-update-baselines"]
    rows: list[Row] = [("plain pytest", plain_command, plain, {})]
    if args.before:  # the same runs with an earlier checkout's package first on the path
        before = {"PYTHONPATH": str(Path(args.before).resolve())}
        rows.append(("perfgate refresh (before)", refresh, ours, before))
        rows.append(("perfgate gated run (before)", [*pytest, *ours_options], ours, before))
    rows.append(("perfgate refresh", refresh, ours, {}))
    rows.append(("perfgate gated run", [*pytest, *ours_options], ours, {}))
    # What a maintainer runs again and again: a refresh over the suite's baselines.
    rows.append(("perfgate refresh again", refresh, ours, {}))
    bench_options = [
        "-p",
        "no:perfgate",
        "--benchmark-min-rounds=5",
        "--benchmark-max-time=0",
        "--benchmark-warmup=off",
    ]
    if args.has_benchmark:
        write_suite(theirs, size, BENCHMARK_TEST)
        bench_options.append(f"--benchmark-storage=file://{theirs / '.benchmarks'}")
        rows.append(("pytest-benchmark", [*pytest, *bench_options], theirs, {}))
        # Its nearest equivalents of a refresh and a gated run: save the results, then
        # compare with the saved ones and fail a test 5% slower.
        save = [*pytest, *bench_options, "--benchmark-save=base"]
        rows.append(("pytest-benchmark save", save, theirs, {}))
        compare = [*pytest, *bench_options, "--benchmark-compare=0001",
                   "--benchmark-compare-fail=median:5%"]  # fmt: skip
        rows.append(("pytest-benchmark compare", compare, theirs, {}))
    if args.xdist:
        xdist = ["-n", str(args.xdist)]
        rows.append((f"plain pytest -n {args.xdist}", [*plain_command, *xdist], plain, {}))
        gated = [*pytest, *ours_options, *xdist]
        rows.append((f"perfgate gated run -n {args.xdist}", gated, ours, {}))
        if args.has_benchmark:
            benchmark = [*pytest, *bench_options, *xdist]
            rows.append((f"pytest-benchmark -n {args.xdist}", benchmark, theirs, {}))
    return rows


def run_suites(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="perfgate-scale-"))
    print(
        f"{'tests':>6} {'run':<30} {'wall s':>7} {'ms/test':>7} {'over plain':>10} "
        f"{'cpu s':>7} {'cpu over plain':>14} {'peak MiB':>8}"
    )
    for size in args.sizes:
        rows = suite_rows(args, size, work)
        runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label, *_ in rows}
        failures: dict[str, str] = {}
        for _ in range(args.repeat):  # rounds of every row, so drift in the load hits all
            shutil.rmtree(work / f"perf{size}" / "baselines", ignore_errors=True)
            shutil.rmtree(work / f"bench{size}" / ".benchmarks", ignore_errors=True)
            for label, command, cwd, env in rows:
                if label in FIRST_RECORDINGS:
                    shutil.rmtree(cwd / "baselines", ignore_errors=True)
                wall, cpu, peak, last = timed(command, cwd, env)
                runs[label].append((wall, cpu, peak))
                if "failed" in last:
                    failures[label] = last.strip("= ")
        floors: dict[bool, tuple[float, float]] = {}  # under xdist or not -> plain's times
        for label, command, *_ in rows:
            wall, cpu, peak = (statistics.median(r[i] for r in runs[label]) for i in range(3))
            under_xdist = "-n" in command
            if label.startswith("plain pytest"):
                floors[under_xdist] = (wall, cpu)
            over = (wall - floors[under_xdist][0]) / size * 1000
            cpu_over = (cpu - floors[under_xdist][1]) / size * 1000
            print(
                f"{size:>6} {label:<30} {wall:>7.2f} {wall / size * 1000:>7.2f} {over:>10.2f} "
                f"{cpu:>7.2f} {cpu_over:>14.2f} {peak:>8.0f}"
                + (f"  (last with failures: {failures[label]})" if label in failures else ""),
                flush=True,
            )
        print(f"load average after {size} tests: {os.getloadavg()}", flush=True)


class Stopwatch:
    """Wall and CPU seconds of a block (CPU time moves less with a loaded machine)."""

    def __enter__(self) -> Stopwatch:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:6.2f} s wall, {self.cpu:6.2f} s CPU"


def run_isolated(tests: int) -> None:
    """Load, decide and write ``tests`` baselines with the core alone."""
    from pytest_perfgate.baseline import BaselineStore
    from pytest_perfgate.environment import current_environment
    from pytest_perfgate.gate import GatePolicy, judge
    from pytest_perfgate.model import Comparison, Direction, Measurement
    from pytest_perfgate.refresh import RefreshContext, refresh_baselines
    from pytest_perfgate.results import TestResults

    root = Path(tempfile.mkdtemp(prefix="perfgate-isolated-")) / "baselines"
    environment = current_environment()
    policy = GatePolicy(tests=tests)
    rng = random.Random(18)
    ids = [(f"test_gen{i // PER_FILE:04d}.py", f"test_t{i}") for i in range(tests)]
    modules = sorted({module for module, _ in ids})

    def measured() -> list[Measurement]:
        return [
            Measurement(
                "time",
                "s",
                Direction.LOWER_IS_BETTER,
                tuple(1e-6 + 1e-8 * rng.random() for _ in range(20)),
                loops=1000,
            )
            for _ in ids
        ]

    def refresh(store: BaselineStore, results: list[TestResults]) -> tuple[Stopwatch, int]:
        context = RefreshContext(
            store=store,
            load=store.load,
            environment=environment,
            code_hashes={},
            commit=None,
            recorded_at="2026-11-28T00:00:00Z",
            history=10,
            max_samples=400,
        )
        before = {p: p.stat().st_ino for p in store.files()}
        with Stopwatch() as watch:
            report = refresh_baselines(results, context)
        assert not report.errors, report.errors
        rewritten = sum(1 for p in store.files() if before.get(p) != p.stat().st_ino)
        return watch, rewritten

    def decided(store: BaselineStore, measurements: list[Measurement]) -> list[Comparison]:
        loaded = {module: store.load(module) for module in modules}
        return [
            judge(
                f"{module}::{test}",
                measurement,
                loaded[module].get(test, "time"),
                policy,
                environment=environment,
            ).comparison
            for (module, test), measurement in zip(ids, measurements, strict=True)
        ]

    def results_of(
        measurements: list[Measurement], comparisons: list[Comparison]
    ) -> list[TestResults]:
        return [
            TestResults(f"{module}::{test}", module, test, "passed", ((measurement, comparison),))
            for (module, test), measurement, comparison in zip(
                ids, measurements, comparisons, strict=True
            )
        ]

    first = measured()
    watch, files = refresh(
        BaselineStore(root), results_of(first, decided(BaselineStore(root), first))
    )
    print(f"isolated: {tests} measurements in {len(modules)} modules, 20 samples each")
    print(f"  first refresh, {files} files written:      {watch}")
    store = BaselineStore(root)  # a new store: nothing parsed yet
    with Stopwatch() as watch:
        for module in modules:
            store.load(module)
    print(f"  load {tests} baselines:                  {watch}")
    second = measured()
    with Stopwatch() as watch:
        comparisons = decided(store, second)  # from the parse just taken
    print(f"  decide {tests} verdicts:                 {watch}")
    results = results_of(second, comparisons)
    watch, files = refresh(store, results)
    print(f"  refresh all, {files} files rewritten:       {watch}")
    watch, files = refresh(store, [r for r in results if r.module == modules[0]])
    print(f"  refresh one module's tests, {files} rewritten: {watch}")


def compile_bytecode(python: str, *packages: str) -> None:
    """Compile the measured package's bytecode (and ``packages``') first. An installed
    wheel has it, as pytest and pytest-benchmark have in site-packages; an editable
    checkout run with PYTHONDONTWRITEBYTECODE (this project's VM sets it) would compile
    every module from source in every run, some 15 ms that no user pays."""
    find = "import os, pytest_perfgate; print(os.path.dirname(pytest_perfgate.__file__))"
    where = subprocess.run(
        [python, "-c", find], capture_output=True, text=True, check=True
    ).stdout.strip()
    for package in (where, *packages):
        subprocess.run([python, "-m", "compileall", "-q", package], check=True)
    print(f"bytecode compiled: {', '.join((where, *packages))}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000, 10000])
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    parser.add_argument("--xdist", type=int, default=0, help="also run under -n N")
    parser.add_argument("--isolated", type=int, default=0, help="core alone on N baselines")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of every run; medians are printed"
    )
    parser.add_argument(
        "--before",
        help="a directory holding an earlier pytest_perfgate package (git archive of a "
        "commit): its refresh and gated run are timed beside the current one's",
    )
    args = parser.parse_args()
    args.has_benchmark = (
        subprocess.run(
            [args.python, "-c", "import pytest_benchmark"], capture_output=True
        ).returncode
        == 0
    )
    earlier = [str(Path(args.before) / "pytest_perfgate")] if args.before else []
    compile_bytecode(args.python, *earlier)
    print(f"load average before: {os.getloadavg()}", flush=True)
    if args.sizes:
        run_suites(args)
    if args.isolated:
        run_isolated(args.isolated)
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
