"""Same-job A/B (`perfgate ab`), paired and in whole runs, beside pytest-benchmark, on one
suite, one machine, in one interleaved session.

The suite is gate_quality.py's 24 CPU tests, in a scratch git repository; five tests do
more work when the file ``slowdown.txt`` says so. For each trial of each case (A/A, +5%,
+10%) it runs, in an order that rotates from trial to trial:

* paired: ``perfgate ab --base HEAD`` (the default: two processes taking turns, in rounds);
* whole runs: ``perfgate ab --base HEAD --whole-runs --rounds R``;
* pytest-benchmark: the same suite written for its ``benchmark`` fixture, compared with
  ``--benchmark-compare-fail=median:5%`` against a run saved once at the committed 1.0.

The base of both A/B modes is the committed 1.0 and the candidate the working tree. Cases
alternate (A/A, +5%, +10%, A/A, ...) so machine drift spreads over all of them; A/A gets
``--aa-runs`` trials, the others ``--detect-runs`` (cases run out in turn). Prints, per
mode and case: red runs (any unchanged test failed), false alarms, injected slowdowns
caught, wall time per verdict and its ratio to the pytest-benchmark run of the same trial;
``--json`` keeps every trial (with the load average) for the docs.

Usage:  python benchmarks/ab_quality.py [--aa-runs 20] [--detect-runs 10] [--rounds 3]
                                         [--modes paired,whole,benchmark] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_quality import INJECTED, SUITE, failed_theirs

CASES = {"A/A": 1.0, "+5%": 1.05, "+10%": 1.10}
SLOW_LINE = 'SLOW = float(os.environ.get("GATE_BENCH_SLOWDOWN", "1"))'
FROM_FILE = 'SLOW = float(open(os.path.join(os.path.dirname(__file__), "slowdown.txt")).read())'
MODES = ("paired", "whole", "benchmark")


@dataclass
class Trial:
    mode: str
    case: str
    wall: float
    caught: list[str]
    false_alarms: list[str]
    inconclusive: int
    exit_code: int
    load: float  #: one-minute load average when the trial started


@dataclass
class Tally:
    trials: list[Trial] = field(default_factory=list)

    def line(self, injected: int, benchmark_walls: dict[int, float]) -> str:
        runs = len(self.trials)
        red = sum(bool(t.false_alarms) for t in self.trials)
        false = sum(len(t.false_alarms) for t in self.trials)
        caught = sum(len(t.caught) for t in self.trials)
        total = injected * runs
        wall = sum(t.wall for t in self.trials) / max(runs, 1)
        ratios = [t.wall / benchmark_walls[id(t)] for t in self.trials if id(t) in benchmark_walls]
        ratio = f"{sum(ratios) / len(ratios):.2f}x" if ratios else "-"
        catch = f"{caught}/{total} ({caught / total:.0%})" if total else "-"
        return f"{red}/{runs:<5} {false:<6} {catch:15} {wall:6.1f}s  {ratio}"


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b", *args],
        check=True,
        capture_output=True,
    )


def failed_ours(output: str) -> set[str]:
    return set(re.findall(r"REGRESSED \S*::(\S+?)(?: \[\S+\])?:", output))


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def scratch_suites() -> tuple[Path, Path]:
    """A git repository with the perf suite (committed at 1.0), and a directory with the
    same suite for pytest-benchmark; both read their slowdown from slowdown.txt."""
    root = Path(tempfile.mkdtemp(prefix="perfgate-ab-quality-"))
    repo, theirs = root / "ours", root / "theirs"
    repo.mkdir()
    theirs.mkdir()
    for directory, fixture, marker in (
        (repo, "perf", "@pytest.mark.perf"),
        (theirs, "benchmark", ""),
    ):
        suite = SUITE.format(fixture=fixture, marker=marker, injected=INJECTED)
        assert SLOW_LINE in suite
        (directory / "test_suite.py").write_text(suite.replace(SLOW_LINE, FROM_FILE))
        (directory / "slowdown.txt").write_text("1.0")
        (directory / "pytest.ini").write_text("[pytest]\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    return repo, theirs


def commands(args: argparse.Namespace, theirs: Path) -> dict[str, list[str]]:
    python = sys.executable
    pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    ab = [python, "-m", "pytest_perfgate.cli", "ab", "--base", "HEAD"]
    return {
        "paired": [*ab, *args.paired_args.split(), "--", *pytest, "test_suite.py"],
        "whole": [*ab, "--whole-runs", "--rounds", str(args.rounds), "--", *pytest,
                  "test_suite.py"],
        "benchmark": [*pytest, "-p", "no:perfgate", f"--benchmark-storage=file://{theirs}/.bench",
                      "test_suite.py"],
    }  # fmt: skip


def run_trial(mode: str, case: str, command: list[str], cwd: Path, env: dict[str, str]) -> Trial:
    load = load_average()
    if mode == "benchmark":
        command = [*command, "--benchmark-compare=0001", "--benchmark-compare-fail=median:5%"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    output = done.stdout + done.stderr
    failed = failed_theirs(output) if mode == "benchmark" else failed_ours(done.stdout)
    injected = set(INJECTED) if CASES[case] != 1.0 else set()
    return Trial(
        mode, case, wall, sorted(failed & injected), sorted(failed - injected),
        sum(line.startswith("  INCONCLUSIVE ") for line in done.stdout.splitlines()),
        done.returncode, load,
    )  # fmt: skip


def with_option(command: list[str], *option: str) -> list[str]:
    """``command`` (perfgate ab ... -- pytest ...) with ``option`` before its ``--``."""
    cut = command.index("--")
    return [*command[:cut], *option, *command[cut:]]


def schedule(args: argparse.Namespace) -> list[str]:
    """Cases in turn (A/A, +5%, +10%, ...) until each has its number of trials."""
    left = {"A/A": args.aa_runs, "+5%": args.detect_runs, "+10%": args.detect_runs}
    order: list[str] = []
    while any(left.values()):
        for case in CASES:
            if left[case]:
                order.append(case)
                left[case] -= 1
    return order


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aa-runs", type=int, default=20, help="A/A trials per mode")
    parser.add_argument("--detect-runs", type=int, default=10, help="+5%%, +10%% trials")
    parser.add_argument("--rounds", type=int, default=3, help="whole-run A/B rounds per side")
    parser.add_argument("--modes", default=",".join(MODES), help="which modes, comma-separated")
    parser.add_argument(
        "--whole-every",
        type=int,
        default=1,
        help="run whole-run A/B only every Nth trial (it is the slowest)",
    )
    parser.add_argument("--paired-args", default="", help="extra arguments of paired A/B")
    parser.add_argument("--json", type=Path, help="write every trial here")
    parser.add_argument(
        "--keep-pairs",
        type=Path,
        help="keep each paired trial's --pairs-json here (benchmarks/paired_rejudge.py reads them)",
    )
    args = parser.parse_args()  # fmt: skip
    modes = [m for m in args.modes.split(",") if m]
    repo, theirs = scratch_suites()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    run = commands(args, theirs)
    if "benchmark" in modes:
        saved = subprocess.run([*run["benchmark"], "--benchmark-save=base"], cwd=theirs,
                               env=env, capture_output=True, text=True)  # fmt: skip
        assert saved.returncode == 0, saved.stdout[-3000:]

    tallies = {(mode, case): Tally() for mode in modes for case in CASES}
    benchmark_walls: dict[int, float] = {}  # id(trial) -> pytest-benchmark's wall, same trial
    started = time.perf_counter()
    for index, case in enumerate(schedule(args)):
        for directory in (repo, theirs):
            (directory / "slowdown.txt").write_text(str(CASES[case]))
        rotated = modes[index % len(modes) :] + modes[: index % len(modes)]
        trials = []
        for mode in rotated:
            if mode == "whole" and index % args.whole_every:
                continue
            command = run[mode]
            if mode == "paired" and args.keep_pairs:
                args.keep_pairs.mkdir(parents=True, exist_ok=True)
                kept = args.keep_pairs / f"trial-{index + 1:03}-{CASES[case]}.json"
                command = with_option(command, "--pairs-json", str(kept))
            trial = run_trial(mode, case, command, theirs if mode == "benchmark" else repo, env)
            tallies[(mode, case)].trials.append(trial)
            trials.append(trial)
            print(
                f"[{index + 1}] {case:5} {mode:9} {trial.wall:6.1f}s load {trial.load:5.1f} "
                f"caught {len(trial.caught)} false {trial.false_alarms} "
                f"inconclusive {trial.inconclusive}",
                flush=True,
            )
        theirs_wall = next((t.wall for t in trials if t.mode == "benchmark"), None)
        if theirs_wall:
            benchmark_walls.update({id(t): theirs_wall for t in trials})
        save(args.json, tallies, benchmark_walls)
    (repo / "slowdown.txt").write_text("1.0")

    print(f"\n24 tests, {len(INJECTED)} injected; {time.perf_counter() - started:.0f}s in all")
    print("mode       case   red runs false  caught          wall    vs pytest-benchmark")
    for (mode, case), tally in tallies.items():
        if tally.trials:
            injected = len(INJECTED) if CASES[case] != 1.0 else 0
            print(f"{mode:10} {case:6} {tally.line(injected, benchmark_walls)}")
    return 0


def save(path: Path | None, tallies: dict[tuple[str, str], Tally], walls: dict[int, float]) -> None:
    """Every trial so far, rewritten after each one: a session cut short keeps its data."""
    if path is None:
        return
    document = {
        "command": " ".join(sys.argv),
        "trials": [asdict(t) for tally in tallies.values() for t in tally.trials],
        "ratios_to_benchmark": {
            f"{m} {c}": [t.wall / walls[id(t)] for t in tally.trials if id(t) in walls]
            for (m, c), tally in tallies.items()
        },
    }
    path.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())
