"""How good is the gate on this machine? A/A false alarms, detection of injected slowdowns,
wall time, beside pytest-benchmark's `--benchmark-compare-fail=median:5%` on the same suite.

It writes one suite of 24 CPU tests (about 5 us to 20 ms per call) twice, once for the
`perf` fixture and once for pytest-benchmark's `benchmark` fixture, records a baseline
with each tool, then runs both alternately (ours, theirs, ours, theirs...) so machine
drift hits both equally:

* A/A: nothing changed, ``--runs`` suite runs: in how many does any test fail?
* +5% and +10%: five tests do that much more work (``--detect-runs`` runs each): what
  fraction of the injected tests fail, and do the 19 unchanged ones stay green?

Then the plugin's own overhead: the per-call time each tool reports for an empty
function, next to a bare ``perf_counter_ns`` loop, and how long each takes to measure it.

With ``--calibrate N`` the baselines come from ``perfgate calibrate --runs N`` instead of
``--refreshes``, and each injected test's detection rate is printed beside the minimum
detectable change the tool reported for it (read from ``--perf-json``): the two must agree.

Usage:  python benchmarks/gate_quality.py [--runs 20] [--detect-runs 10] [--refreshes 1]
        [--calibrate 5]
Needs pytest-benchmark installed (pip install 'pytest-benchmark>=4').
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

#: The five tests that get more work in the detection rounds.
INJECTED = (
    "test_sum_squares[3000]",
    "test_join[20000]",
    "test_dict_build[2000]",
    "test_json_dumps[50]",
    "test_regex[10000]",  # not [100000]: that slice is the whole text and cannot grow
)

SUITE = '''
import hashlib, json, os, random, re

import pytest

SLOW = float(os.environ.get("GATE_BENCH_SLOWDOWN", "1"))
INJECTED = {injected!r}
WORD = re.compile(r"[a-z]+[0-9]*")
RNG = random.Random(7)
TEXT = "".join(RNG.choice("abcdefghij 0123456789") for _ in range(100_000))
RECORDS = [{{"id": i, "name": "x" * (i % 17), "score": i * 0.5, "tags": ["a", "b"]}}
           for i in range(200)]


def size(request, n):
    """n, or n times the slowdown for the injected tests: that much more work."""
    return round(n * SLOW) if request.node.name in INJECTED else n


def sum_squares(n):
    return sum(i * i for i in range(n))


def join(n):
    return ",".join(str(i) for i in range(n))


def dict_build(n):
    return {{i: str(i) for i in range(n)}}


{marker}
@pytest.mark.parametrize("n", [300, 3000, 30000, 300000])
def test_sum_squares({fixture}, request, n):
    {fixture}(sum_squares, size(request, n))


{marker}
@pytest.mark.parametrize("n", [200, 2000, 20000])
def test_join({fixture}, request, n):
    {fixture}(join, size(request, n))


{marker}
@pytest.mark.parametrize("n", [200, 2000, 20000])
def test_dict_build({fixture}, request, n):
    {fixture}(dict_build, size(request, n))


{marker}
@pytest.mark.parametrize("n", [500, 5000, 50000])
def test_sorted({fixture}, request, n):
    data = [RNG.random() for _ in range(size(request, n))]
    {fixture}(sorted, data)


{marker}
@pytest.mark.parametrize("n", [5, 50, 200])
def test_json_dumps({fixture}, request, n):
    {fixture}(json.dumps, RECORDS[: size(request, n)])


{marker}
@pytest.mark.parametrize("n", [1000, 10_000, 100_000])
def test_regex({fixture}, request, n):
    {fixture}(WORD.findall, TEXT[: size(request, n)])


{marker}
@pytest.mark.parametrize("n", [10_000, 1_000_000, 10_000_000])
def test_sha256({fixture}, request, n):
    data = b"x" * size(request, n)
    {fixture}(lambda: hashlib.sha256(data).digest())


{marker}
@pytest.mark.parametrize("n", [1000, 100_000])
def test_list_filter({fixture}, request, n):
    data = list(range(size(request, n)))
    {fixture}(lambda: [x for x in data if x % 3 == 0])
'''

EMPTY_SUITE = """
import json, os, time

import pytest


def empty():
    pass


{marker}
def test_empty({fixture}):
    start = time.perf_counter()
    {fixture}(empty)
    with open(os.environ["GATE_BENCH_ELAPSED"], "w") as f:
        json.dump(time.perf_counter() - start, f)
"""


@dataclass
class Tally:
    """Failures per suite run, split into injected and unchanged tests."""

    wall: list[float] = field(default_factory=list)
    runs_with_false_alarm: int = 0
    false_alarms: int = 0
    caught: int = 0
    injected_total: int = 0
    unchanged_total: int = 0
    inconclusive: int = 0
    changes: list[float] = field(default_factory=list)  #: per-test relative changes (A/A)
    #: per injected test: runs caught, and the minimum detectable change reported each run
    caught_by_test: dict[str, int] = field(default_factory=dict)
    detectable_by_test: dict[str, list[float]] = field(default_factory=dict)
    #: per injected test and run: (its minimum detectable change that run, caught?)
    injected_runs: list[tuple[float, bool]] = field(default_factory=list)


def run(
    cmd: list[str], cwd: Path, env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, proc


def failed_ours(junit: Path) -> set[str]:
    failed = set()
    for case in ET.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(case.get("name", ""))
    return failed


def failed_theirs(output: str) -> set[str]:
    # pytest-benchmark lists "\t<fullname> - Field 'median' has failed ..." lines.
    names = re.findall(r"^\t(\S+) \(\S+\) - Field", output, flags=re.MULTILINE)
    return {name.rpartition("::")[2] for name in names}


def changes_ours(output: str) -> dict[str, float]:
    """Relative change per test from perfgate's summary table (A/A spread, for the docs)."""
    rows = re.findall(
        r"^test_suite\.py::(\S+)\s+[A-Z]+\s+.*?([+-]\d+\.\d)%\s", output, flags=re.MULTILINE
    )
    return {name: float(change) / 100 for name, change in rows}


def detectable_ours(results: Path) -> dict[str, float]:
    """The minimum detectable change perfgate reported per test (its results file)."""
    found: dict[str, float] = {}
    if not results.exists():
        return found  # the run wrote none: its output is logged by the caller
    for test in json.loads(results.read_text())["tests"]:
        for pair in test["measurements"]:
            change = pair["comparison"].get("detectable_change")
            if change is not None:
                found[test["test"]] = change
    return found


def count_tests(
    kind: str, injected_factor: float, failed: set[str], tally: Tally, n_tests: int
) -> None:
    injected = set(INJECTED) if injected_factor != 1.0 else set()
    caught = failed & injected
    false = failed - injected
    tally.caught += len(caught)
    tally.injected_total += len(injected)
    tally.false_alarms += len(false)
    tally.unchanged_total += n_tests - len(injected)
    if false:
        tally.runs_with_false_alarm += 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="A/A suite runs (default 20)")
    parser.add_argument("--detect-runs", type=int, default=10, help="runs per injected slowdown")
    parser.add_argument("--refreshes", type=int, default=1, help="baseline refreshes before gating")
    parser.add_argument(
        "--calibrate",
        type=int,
        default=0,
        help="record perfgate's baselines with `perfgate calibrate --runs N` (not --refreshes)",
    )
    parser.add_argument("--no-benchmark", action="store_true", help="skip pytest-benchmark")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument(
        "--perf-args",
        default="",
        help="extra perfgate options, e.g. '--perf-speed-reference=false'",
    )
    args = parser.parse_args()

    python = sys.executable
    work = Path(tempfile.mkdtemp(prefix="perfgate-gate-quality-"))
    ours, theirs = work / "ours", work / "theirs"
    for directory, fixture, marker in (
        (ours, "perf", "@pytest.mark.perf"),
        (theirs, "benchmark", ""),
    ):
        directory.mkdir()
        (directory / "test_suite.py").write_text(
            SUITE.format(fixture=fixture, marker=marker, injected=INJECTED)
        )
        (directory / "pytest.ini").write_text("[pytest]\n")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    ours_cmd = [
        python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:benchmark",
        "test_suite.py",
        *args.perf_args.split(),
    ]
    theirs_cmd = [
        python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:perfgate",
        "--benchmark-storage=file://" + str(work / "bench"),
        "test_suite.py",
    ]
    n_tests = 23

    if args.calibrate:
        perfgate = [python, "-m", "pytest_perfgate.cli"]
        _, proc = run(
            [*perfgate, "calibrate", "--runs", str(args.calibrate), "--", *ours_cmd], ours, base_env
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        print(proc.stdout, flush=True)
    for _ in range(0 if args.calibrate else args.refreshes):
        _, proc = run([*ours_cmd, "--perf-update-baselines"], ours, base_env)
        assert proc.returncode == 0, proc.stdout[-3000:]
    n_tests = sum(
        len(t)
        for t in json.loads((ours / "baselines/test_suite.json").read_text())["tests"].values()
    )
    if not args.no_benchmark:
        _, proc = run([*theirs_cmd, "--benchmark-save=base"], theirs, base_env)
        assert proc.returncode == 0, proc.stdout[-3000:]

    conditions = [
        ("A/A", 1.0, args.runs),
        ("+5%", 1.05, args.detect_runs),
        ("+10%", 1.10, args.detect_runs),
    ]
    results: dict[str, dict[str, Tally]] = {}
    for label, factor, runs in conditions:
        env = dict(base_env, GATE_BENCH_SLOWDOWN=str(factor))
        ours_tally, theirs_tally = Tally(), Tally()
        for i in range(runs):
            junit, results_file = work / "ours.xml", work / "ours.json"
            results_file.unlink(missing_ok=True)
            wall, proc = run(
                [*ours_cmd, f"--junitxml={junit}", f"--perf-json={results_file}"], ours, env
            )
            ours_tally.wall.append(wall)
            ours_tally.inconclusive += proc.stdout.count(" INCONCLUSIVE ")
            ours_tally.changes.extend(changes_ours(proc.stdout).values())
            failed = failed_ours(junit)
            if not results_file.exists():
                print(
                    f"  no results file; the run's output ends:\n{proc.stdout[-2000:]}",
                    file=sys.stderr,
                )
            count_tests("ours", factor, failed, ours_tally, n_tests)
            for name, change in detectable_ours(results_file).items():
                if factor == 1.0 or name in INJECTED:
                    ours_tally.detectable_by_test.setdefault(name, []).append(change)
                if factor != 1.0 and name in INJECTED:
                    caught = ours_tally.caught_by_test.get(name, 0)
                    ours_tally.caught_by_test[name] = caught + (name in failed)
                    ours_tally.injected_runs.append((change, name in failed))
            if not args.no_benchmark:
                wall, proc = run(
                    [*theirs_cmd, "--benchmark-compare=0001", "--benchmark-compare-fail=median:5%"],
                    theirs,
                    env,
                )
                theirs_tally.wall.append(wall)
                count_tests(
                    "theirs",
                    factor,
                    failed_theirs(proc.stdout + proc.stderr),
                    theirs_tally,
                    n_tests,
                )
            print(
                f"  {label} run {i + 1}/{runs}: ours {ours_tally.runs_with_false_alarm} red runs, "
                f"{ours_tally.caught}/{ours_tally.injected_total} caught; pytest-benchmark "
                f"{theirs_tally.runs_with_false_alarm} red, "
                f"{theirs_tally.caught}/{theirs_tally.injected_total}",
                file=sys.stderr,
                flush=True,
            )
        results[label] = {"perfgate": ours_tally, "pytest-benchmark": theirs_tally}

    overhead = measure_overhead(work, python, base_env, not args.no_benchmark)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "conditions": {
                        k: {tool: t.__dict__ for tool, t in v.items()} for k, v in results.items()
                    },
                    "overhead": overhead,
                    "tests": n_tests,
                    "refreshes": args.refreshes,
                    "calibrate": args.calibrate,
                },
                indent=2,
            )
        )
    print_report(results, overhead, n_tests, args)
    return 0


def measure_overhead(
    work: Path, python: str, env: dict[str, str], with_benchmark: bool
) -> dict[str, float]:
    """Per-call time reported for an empty function, and the wall time to measure it."""
    figures: dict[str, float] = {}
    elapsed_file = work / "elapsed.json"
    env = dict(env, GATE_BENCH_ELAPSED=str(elapsed_file))
    empty_ours, empty_theirs = work / "empty_ours", work / "empty_theirs"
    for directory, fixture, marker in (
        (empty_ours, "perf", "@pytest.mark.perf"),
        (empty_theirs, "benchmark", ""),
    ):
        directory.mkdir()
        (directory / "test_empty.py").write_text(EMPTY_SUITE.format(fixture=fixture, marker=marker))
        (directory / "pytest.ini").write_text("[pytest]\n")
    run(
        [
            python,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:benchmark",
            "--perf-update-baselines",
            "test_empty.py",
        ],
        empty_ours,
        env,
    )
    entry = json.loads((empty_ours / "baselines/test_empty.json").read_text())["tests"][
        "test_empty"
    ]["time"]
    figures["perfgate_per_call_ns"] = entry["summary"]["median"] * 1e9
    figures["perfgate_measure_s"] = json.loads(elapsed_file.read_text())
    if with_benchmark:
        out = work / "empty.json"
        run(
            [
                python,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:perfgate",
                f"--benchmark-json={out}",
                "test_empty.py",
            ],
            empty_theirs,
            env,
        )
        stats = json.loads(out.read_text())["benchmarks"][0]["stats"]
        figures["pytest_benchmark_per_call_ns"] = stats["median"] * 1e9
        figures["pytest_benchmark_measure_s"] = json.loads(elapsed_file.read_text())
    figures["bare_loop_per_call_ns"] = bare_loop_ns()
    return figures


def bare_loop_ns() -> float:
    """A hand-written perf_counter_ns loop around the empty function: the floor."""

    def empty() -> None:
        pass

    loops = 10_000
    samples = []
    for _ in range(200):
        start = time.perf_counter_ns()
        for _ in range(loops):
            empty()
        samples.append((time.perf_counter_ns() - start) / loops)
    return statistics.median(samples)


def print_report(
    results: dict[str, dict[str, Tally]],
    overhead: dict[str, float],
    n_tests: int,
    args: argparse.Namespace,
) -> None:
    print(
        f"\nGate quality: {n_tests} CPU perf tests, 5 injected; "
        f"baseline refreshed {args.refreshes}x; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    header = (
        f"{'condition':<8} {'tool':<17} {'red runs':>10} {'false alarms':>14} "
        f"{'caught':>10} {'wall/run':>9}"
    )
    print(header)
    print("-" * len(header))
    for label, tools in results.items():
        for tool, t in tools.items():
            if not t.wall:
                continue
            runs = len(t.wall)
            caught = f"{t.caught}/{t.injected_total}" if t.injected_total else "-"
            print(
                f"{label:<8} {tool:<17} {t.runs_with_false_alarm:>4}/{runs:<5} "
                f"{t.false_alarms:>6}/{t.unchanged_total:<7} {caught:>10} "
                f"{statistics.median(t.wall):>8.1f}s"
            )
    aa = results["A/A"]["perfgate"].changes
    if aa:
        spread = sorted(abs(c) for c in aa)
        print(
            f"\nA/A run-to-run change of unchanged tests (perfgate medians, n={len(aa)}): "
            f"sd {statistics.pstdev(aa) * 100:.1f}%, "
            f"95th pct |change| {spread[int(0.95 * len(spread))] * 100:.1f}%, "
            f"max {spread[-1] * 100:.1f}%"
        )
    print_detectable(results)
    print("\nEmpty function: per-call time reported, and wall time to measure it")
    print(f"  bare perf_counter_ns loop: {overhead['bare_loop_per_call_ns']:.1f} ns/call")
    print(
        f"  perfgate:                  {overhead['perfgate_per_call_ns']:.1f} ns/call, "
        f"measured in {overhead['perfgate_measure_s']:.2f} s"
    )
    if "pytest_benchmark_per_call_ns" in overhead:
        print(
            f"  pytest-benchmark:          {overhead['pytest_benchmark_per_call_ns']:.1f} ns/call, "
            f"measured in {overhead['pytest_benchmark_measure_s']:.2f} s"
        )


def print_detectable(results: dict[str, dict[str, Tally]]) -> None:
    """Per injected test: how often each slowdown was caught, beside the minimum detectable
    change perfgate reported for it (median over the runs of that condition)."""
    rows = []
    for name in INJECTED:
        cells = [name]
        for label in ("A/A", "+5%", "+10%"):
            tally = results.get(label, {}).get("perfgate")
            reported = [] if tally is None else tally.detectable_by_test.get(name, [])
            mdc = f"{statistics.median(reported) * 100:.1f}%" if reported else "-"
            if label == "A/A":
                cells.append(mdc)
                continue
            runs = 0 if tally is None else len(tally.wall)
            caught = 0 if tally is None else tally.caught_by_test.get(name, 0)
            cells.append(f"{caught}/{runs} (detects {mdc})")
        rows.append(cells)
    everything = [
        c
        for t in results.get("A/A", {}).get("perfgate", Tally()).detectable_by_test.values()
        for c in t
    ]
    print("\nInjected tests: caught, beside the minimum detectable change perfgate reported")
    print(f"{'test':<26} {'detects (A/A)':>14} {'+5% caught':>24} {'+10% caught':>24}")
    for cells in rows:
        print(f"{cells[0]:<26} {cells[1]:>14} {cells[2]:>24} {cells[3]:>24}")
    for label, size in (("+5%", 0.05), ("+10%", 0.10)):
        tally = results.get(label, {}).get("perfgate")
        if tally is None or not tally.injected_runs:
            continue
        # Agreement: a run whose detectable change is at most the injected one should
        # mostly catch it (80% power at exactly the MDC, more below it); above, mostly not.
        sees = [caught for mdc, caught in tally.injected_runs if mdc <= size]
        blind = [caught for mdc, caught in tally.injected_runs if mdc > size]
        print(
            f"{label}: runs whose reported MDC <= {size:.0%}: {sum(sees)}/{len(sees)} caught; "
            f"MDC > {size:.0%}: {sum(blind)}/{len(blind)} caught"
        )
    if everything:
        below = sum(1 for c in everything if c <= 0.05)
        print(
            f"A/A, all tests: detectable change median {statistics.median(everything) * 100:.1f}%, "
            f"range {min(everything) * 100:.1f}%..{max(everything) * 100:.1f}%; "
            f"{below}/{len(everything)} could see 5%"
        )


if __name__ == "__main__":
    sys.exit(main())
