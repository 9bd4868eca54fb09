"""How good is the instruction-count gate on this machine? Spread of the counts, A/A false
alarms, detection of +1/+2/+5% more work, the same beside a CPU-burning process, and the
wall time of a suite run against timing mode (and pytest-benchmark, where installed).

It writes one suite of 20 CPU tests (about 10 us to 20 ms per call natively), records
instruction baselines (``--perf-measure=instructions --perf-update-baselines``, three
times: the history of run-level counts measures their spread between runs), then:

* A/A: nothing changed, ``--runs`` suite runs: in how many is any test not UNCHANGED?
  The counts of every run give each test's run-to-run spread (max - min over median).
* +1%, +2%, +5%: five tests do that much more work (``--detect-runs`` runs each): what
  fraction of them is REGRESSED, and do the 15 unchanged ones stay UNCHANGED?
* The same with a process burning CPU on the other core (``--burner-runs`` A/A runs and
  one run per injected level): are the verdicts identical?
* Wall time of a suite run: instruction mode, timing mode, pytest-benchmark.

Usage:  python benchmarks/instructions_quality.py [--runs 20] [--detect-runs 1] [--burner-runs 3]
        [--refreshes 3]
Needs Valgrind (apt-get install valgrind) and a C compiler; pytest-benchmark is optional.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: The five tests that get more work in the detection rounds.
INJECTED = (
    "test_sum_squares[3000]",
    "test_join[2000]",
    "test_dict_build[2000]",
    "test_json_dumps[200]",
    "test_regex[10000]",
)
LEVELS = (1.01, 1.02, 1.05)
#: The 1-minute load average after each suite run (a shared machine: wall times move with it).
LOADS: list[float] = []

SUITE = '''
import json, os, random, re

import pytest

SLOW = float(os.environ.get("GATE_BENCH_SLOWDOWN", "1"))
INJECTED = {injected!r}
WORD = re.compile(r"[a-z]+[0-9]*")
RNG = random.Random(7)
TEXT = "".join(RNG.choice("abcdefghij 0123456789") for _ in range(100_000))
RECORDS = [{{"id": i, "name": "x" * (i % 17), "score": i * 0.5, "tags": ["a", "b"]}}
           for i in range(300)]


def size(request, n):
    """n, or n times the slowdown for the injected tests: that much more work."""
    return round(n * SLOW) if request.node.name in INJECTED else n


def sum_squares(n):
    return sum(i * i for i in range(n))


def join(n):
    return ",".join(str(i) for i in range(n))


def dict_build(n):
    return {{i: str(i) for i in range(n)}}


@pytest.mark.parametrize("n", [300, 3000, 30000, 300000])
def test_sum_squares({fixture}, request, n):
    {fixture}(sum_squares, size(request, n))


@pytest.mark.parametrize("n", [200, 2000, 20000])
def test_join({fixture}, request, n):
    {fixture}(join, size(request, n))


@pytest.mark.parametrize("n", [200, 2000, 20000])
def test_dict_build({fixture}, request, n):
    {fixture}(dict_build, size(request, n))


@pytest.mark.parametrize("n", [500, 5000, 50000])
def test_sorted({fixture}, request, n):
    data = [RNG.random() for _ in range(size(request, n))]
    {fixture}(sorted, data)


@pytest.mark.parametrize("n", [5, 50, 200])
def test_json_dumps({fixture}, request, n):
    {fixture}(json.dumps, RECORDS[: size(request, n)])


@pytest.mark.parametrize("n", [1000, 10_000])
def test_regex({fixture}, request, n):
    {fixture}(WORD.findall, TEXT[: size(request, n)])


@pytest.mark.parametrize("n", [1000, 100_000])
def test_list_filter({fixture}, request, n):
    data = list(range(size(request, n)))
    {fixture}(lambda: [x for x in data if x % 3 == 0])
'''


@dataclass
class Round:
    """The verdicts of one condition over its suite runs."""

    label: str
    runs: int = 0
    red_runs: int = 0  #: runs in which any unchanged test was not UNCHANGED
    false_alarms: int = 0  #: unchanged tests flagged, over all runs
    caught: int = 0  #: injected tests REGRESSED, over all runs
    injected_total: int = 0
    wall: list[float] = field(default_factory=list)
    verdicts: list[dict[str, str]] = field(default_factory=list)
    medians: list[dict[str, float]] = field(default_factory=list)  #: per run, per test


def run_suite(
    work: Path, args: list[str], env: dict[str, str]
) -> tuple[float, dict[str, tuple[str, float, float]]]:
    """One suite run: wall seconds, and test -> (verdict, median count, change)."""
    results = work / "results.json"
    results.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    cmd += ["--perf-json", str(results)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    LOADS.append(os.getloadavg()[0])
    if not results.exists():
        raise SystemExit(
            f"suite run wrote no results:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    found: dict[str, tuple[str, float, float]] = {}
    for test in json.loads(results.read_text())["tests"]:
        for pair in test["measurements"]:
            comparison, samples = pair["comparison"], pair["measurement"]["samples"]
            ratio = comparison.get("ratio") or 1.0
            found[test["test"]] = (comparison["verdict"], statistics.median(samples), ratio - 1)
    return wall, found


def run_suites(
    work: Path, runs: list[tuple[list[str], dict[str, str]]], jobs: int
) -> list[tuple[float, dict[str, tuple[str, float, float]]]]:
    """Gate runs (no baseline is written), ``jobs`` at a time, each in its own copy of
    the suite and its baselines. Counts do not depend on what else runs; wall times do."""

    def one(index: int) -> tuple[float, dict[str, tuple[str, float, float]]]:
        copy = work.parent / f"{work.name}-{index % jobs}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(work, copy)
        args, env = runs[index]
        wall, found = run_suite(copy, args, env)
        medians = {test: median for test, (_, median, _) in found.items()}
        print("run", json.dumps({"args": args, "wall": wall, "medians": medians}), flush=True)
        return wall, found

    done: list[tuple[float, dict[str, tuple[str, float, float]]]] = []
    for wave in range(0, len(runs), jobs):  # a copy is reused only by the next wave
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            done += pool.map(one, range(wave, min(wave + jobs, len(runs))))
    return done


def tally(
    label: str, rounds: list[dict[str, tuple[str, float, float]]], walls: list[float]
) -> Round:
    result = Round(label, runs=len(rounds), wall=walls)
    for found in rounds:
        red = False
        for test, (verdict, _, _) in found.items():
            if test in INJECTED and not label.startswith("A/A"):
                result.injected_total += 1
                result.caught += verdict == "REGRESSED"
            elif verdict != "UNCHANGED":
                result.false_alarms += 1
                red = True
        result.red_runs += red
        result.verdicts.append({test: v for test, (v, _, _) in found.items()})
        result.medians.append({test: median for test, (_, median, _) in found.items()})
    return result


def rejudged(rounds: list[Round], work: Path, threshold: float) -> list[dict[str, object]]:
    """Each round's verdicts again at another threshold, from its medians and the stored
    baselines (the rule is a pure function of them: stats.compare_counts)."""
    from pytest_perfgate.model import Direction
    from pytest_perfgate.stats import compare_counts

    stored = json.loads((work / "baselines" / "test_suite.json").read_text())["tests"]
    table = []
    for r in rounds:
        red_runs = false_alarms = caught = 0
        for medians in r.medians:
            red = False
            for test, median in medians.items():
                entry = stored[test]["instructions"]
                verdict = compare_counts(
                    (entry["summary"]["median"],),
                    (median,),
                    direction=Direction.LOWER_IS_BETTER,
                    threshold=threshold,
                    history=tuple(entry["history"]),
                ).verdict.value
                if test in INJECTED and not r.label.startswith("A/A"):
                    caught += verdict == "REGRESSED"
                elif verdict != "UNCHANGED":
                    false_alarms += 1
                    red = True
            red_runs += red
        table.append(
            {
                "label": r.label,
                "runs": r.runs,
                "red_runs": red_runs,
                "false_alarms": false_alarms,
                "caught": caught,
                "injected": r.injected_total,
            }
        )
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="A/A suite runs")
    parser.add_argument("--detect-runs", type=int, default=1, help="runs per injected level")
    parser.add_argument("--burner-runs", type=int, default=3, help="A/A runs beside a burner")
    parser.add_argument(
        "--refreshes", type=int, default=3, help="baseline refreshes before the A/A runs"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="gate runs at a time (counts do not mind)"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file for the figures")
    parser.add_argument("-k", dest="select", default="", help="run only these tests (smoke)")
    parser.add_argument(
        "--benchmark-python",
        default=sys.executable,
        help="a Python with pytest-benchmark installed, for its wall time",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="perfgate-instructions-quality-"))
    (work / "test_suite.py").write_text(SUITE.format(injected=INJECTED, fixture="perf"))
    (work / "pyproject.toml").write_text("[tool.perfgate]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFGATE_")}
    env["GATE_BENCH_SLOWDOWN"] = "1"
    counting = ["--perf-measure=instructions", *(["-k", args.select] if args.select else [])]

    # Refreshed several times, as for timings: the baselines' history of run-level medians
    # measures how much each count moves between runs, and the verdict rule widens by it.
    refresh_counts: dict[str, list[float]] = {}
    refresh_walls = []
    for _ in range(args.refreshes):
        wall, found = run_suite(work, [*counting, "--perf-update-baselines"], env)
        refresh_walls.append(wall)
        print(f"baselines recorded in {wall:.0f} s: {len(found)} tests", flush=True)
        for test, (_, median, _) in found.items():
            refresh_counts.setdefault(test, []).append(median)

    # Detection and the burner first: the A/A runs are the longest part.
    def level_env(level: float) -> dict[str, str]:
        return {**env, "GATE_BENCH_SLOWDOWN": str(level)}

    def report(result: Round) -> Round:
        print(
            f"{result.label}: {result.caught}/{result.injected_total} caught, "
            f"{result.false_alarms} false alarms, {result.red_runs}/{result.runs} red",
            flush=True,
        )
        return result

    rounds: list[Round] = []
    detection = [(counting, level_env(level)) for level in LEVELS for _ in range(args.detect_runs)]
    detected = run_suites(work, detection, args.jobs)
    for index, level in enumerate(LEVELS):
        mine = detected[index * args.detect_runs : (index + 1) * args.detect_runs]
        label = f"+{(level - 1) * 100:.0f}%"
        rounds.append(report(tally(label, [f for _, f in mine], [w for w, _ in mine])))

    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        beside = [(counting, env)] * args.burner_runs
        beside += [(counting, level_env(level)) for level in LEVELS]
        burned = run_suites(work, beside, args.jobs)
    finally:
        burner.kill()
        burner.wait()
    burner_aa = [found for _, found in burned[: args.burner_runs]]
    rounds.append(
        report(tally("A/A, CPU burner", burner_aa, [w for w, _ in burned[: args.burner_runs]]))
    )
    for index, level in enumerate(LEVELS):
        wall, found = burned[args.burner_runs + index]
        rounds.append(report(tally(f"+{(level - 1) * 100:.0f}%, CPU burner", [found], [wall])))

    # Wall time of one suite run in each mode (baselines recorded first, not timed).
    timing_walls = []
    timing = ["--perf-baseline-dir=time-baselines", *counting[1:]]
    run_suite(work, ["--perf-update-baselines", *timing], env)
    for _ in range(2):
        timing_walls.append(run_suite(work, timing, env)[0])
    benchmark_walls: list[float] = []
    has_benchmark = subprocess.run(
        [args.benchmark_python, "-c", "import pytest_benchmark"], capture_output=True, check=False
    )
    if has_benchmark.returncode == 0:
        theirs = Path(tempfile.mkdtemp(prefix="perfgate-instructions-quality-theirs-"))
        (theirs / "test_suite.py").write_text(SUITE.format(injected=INJECTED, fixture="benchmark"))
        cmd = [args.benchmark_python, "-m", "pytest", "-q", "-p", "no:perfgate"]
        cmd += ["-p", "no:cacheprovider", *counting[1:]]
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run(cmd, cwd=theirs, env=env, capture_output=True, check=False)
            benchmark_walls.append(time.perf_counter() - start)

    print(f"wall: timing mode {timing_walls}, pytest-benchmark {benchmark_walls}", flush=True)

    counts: dict[str, list[float]] = {test: [] for test in found}
    aa = run_suites(work, [(counting, env)] * args.runs, args.jobs)
    aa_rounds = [found for _, found in aa]
    aa_walls = [wall for wall, _ in aa]
    for index, (wall, found) in enumerate(aa):
        for test, (_, median, _) in found.items():
            counts[test].append(median)
        flagged = [t for t, (v, _, _) in found.items() if v != "UNCHANGED"]
        print(f"A/A {index + 1}/{args.runs}: {wall:.0f} s, not UNCHANGED: {flagged}", flush=True)
    rounds.insert(0, tally("A/A", aa_rounds, aa_walls))

    identical = all(found == aa_rounds[0] for found in burner_aa)  # verdicts and counts
    spread = {
        test: (max(values) - min(values)) / statistics.median(values)
        for test, values in counts.items()
        if values
    }
    refresh_spread = {
        test: (max(values) - min(values)) / statistics.median(values)
        for test, values in refresh_counts.items()
    }
    rejudged_tables = {str(t): rejudged(rounds, work, t) for t in (0.002, 0.003, 0.005, 0.01, 0.02)}
    figures = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "spread_per_test": spread,
        "spread_over_refreshes": refresh_spread,
        "median_counts": {test: statistics.median(values) for test, values in counts.items()},
        "rounds": [asdict(r) for r in rounds],
        "rejudged": rejudged_tables,
        "burner_counts_identical_to_first_aa_run": identical,
        "load_average_1min": {
            "min": min(LOADS),
            "median": statistics.median(LOADS),
            "max": max(LOADS),
        },
        "wall_seconds": {
            "instructions (refresh runs, one at a time)": statistics.median(refresh_walls),
            f"instructions (A/A runs, {args.jobs} at a time)": statistics.median(aa_walls),
            "time": statistics.median(timing_walls),
            "pytest-benchmark": statistics.median(benchmark_walls) if benchmark_walls else None,
        },
    }
    print()
    print("run-to-run spread of the median counts (max - min over median), per test:")
    for test, value in sorted(spread.items(), key=lambda kv: -kv[1]):
        print(f"  {test:32s} {value * 100:.4f}%  refreshes {refresh_spread[test] * 100:.4f}%")
    print()
    print(f"{'condition':22s} {'runs':>4s} {'red runs':>8s} {'false alarms':>12s} {'caught':>10s}")
    for r in rounds:
        caught = f"{r.caught}/{r.injected_total}" if r.injected_total else "-"
        print(f"{r.label:22s} {r.runs:4d} {r.red_runs:8d} {r.false_alarms:12d} {caught:>10s}")
    print(f"verdicts and counts beside the burner identical to the first A/A run: {identical}")
    for threshold, table in rejudged_tables.items():
        print(f"re-judged at threshold {float(threshold) * 100:g}%:")
        for row in table:
            print("  ", json.dumps(row))
    print("wall seconds per suite run:", json.dumps(figures["wall_seconds"]))
    out = args.out or Path(__file__).parent / "results" / (
        f"instructions_quality_{datetime.date.today().isoformat()}.json"
    )
    out.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
    print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
