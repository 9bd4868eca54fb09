"""Same-job A/B (`perfgate ab`) beside the stored-baseline gate, on one suite, one machine.

The suite is gate_quality.py's 24 CPU tests, in a scratch git repository; five tests do
more work when the file ``slowdown.txt`` says so. For each mode and each case (A/A,
+5%, +10%) it runs the gate and counts failed tests:

* stored baselines: recorded ``--refreshes`` times at 1.0 (committed state), then
  ``--runs`` plain suite runs per case with slowdown.txt changed in the working tree;
* A/B: ``perfgate ab --base HEAD --rounds R`` per case, the base being the committed 1.0
  and the candidate the working tree.

Cases alternate (A/A, +5%, +10%, A/A, ...) so machine drift spreads over all of them.
Prints, per mode: runs with a false alarm, injected slowdowns caught, wall time per verdict.

Usage:  python benchmarks/ab_quality.py [--runs 6] [--rounds 3] [--refreshes 3]
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
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_quality import INJECTED, SUITE

CASES = (("A/A", 1.0), ("+5%", 1.05), ("+10%", 1.10))
SLOW_LINE = 'SLOW = float(os.environ.get("GATE_BENCH_SLOWDOWN", "1"))'
FROM_FILE = 'SLOW = float(open(os.path.join(os.path.dirname(__file__), "slowdown.txt")).read())'


@dataclass
class Tally:
    runs: int = 0
    runs_with_false_alarm: int = 0
    false_alarms: int = 0
    caught: int = 0
    injected_total: int = 0
    wall: list[float] = field(default_factory=list)


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b", *args],
        check=True,
        capture_output=True,
    )


def failed_tests(output: str) -> set[str]:
    return set(re.findall(r"REGRESSED \S*::(\S+?)(?: \[\S+\])?:", output))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="verdicts per case and mode")
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds per side")
    parser.add_argument("--refreshes", type=int, default=3, help="stored-baseline refreshes")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    args = parser.parse_args()

    suite = SUITE.format(fixture="perf", marker="@pytest.mark.perf", injected=INJECTED)
    assert SLOW_LINE in suite
    suite = suite.replace(SLOW_LINE, FROM_FILE)
    repo = Path(tempfile.mkdtemp(prefix="perfgate-ab-quality-"))
    (repo / "test_suite.py").write_text(suite)
    (repo / "slowdown.txt").write_text("1.0")
    (repo / "pytest.ini").write_text("[pytest]\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["GATE_BENCH_ELAPSED"] = str(repo / ".elapsed")
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_suite.py"]

    for _ in range(args.refreshes):
        subprocess.run([*pytest, "--perf-update-baselines"], cwd=repo, env=env, capture_output=True)

    tallies = {(mode, case): Tally() for mode in ("stored", "ab") for case, _ in CASES}
    for index in range(args.runs):
        for case, factor in CASES:
            (repo / "slowdown.txt").write_text(str(factor))
            for mode in ("stored", "ab") if index % 2 == 0 else ("ab", "stored"):
                if mode == "stored":
                    command = pytest
                else:
                    command = [
                        sys.executable, "-m", "pytest_perfgate.cli", "ab", "--base", "HEAD",
                        "--rounds", str(args.rounds), "--", *pytest,
                    ]  # fmt: skip
                started = time.perf_counter()
                done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
                wall = time.perf_counter() - started
                failed = failed_tests(done.stdout)
                injected = set(INJECTED) if factor != 1.0 else set()
                tally = tallies[(mode, case)]
                tally.runs += 1
                tally.wall.append(wall)
                tally.caught += len(failed & injected)
                tally.injected_total += len(injected)
                false = failed - injected
                tally.false_alarms += len(false)
                tally.runs_with_false_alarm += bool(false)
                print(
                    f"[{index + 1}/{args.runs}] {mode:6} {case:5} {wall:5.1f}s "
                    f"caught {len(failed & injected)}/{len(injected)} false {sorted(false)}",
                    flush=True,
                )
    (repo / "slowdown.txt").write_text("1.0")

    print(f"\n24 tests, {len(INJECTED)} injected; {args.runs} verdicts per case and mode")
    print("mode    case   runs with a false alarm   injected caught   wall per verdict")
    for (mode, case), t in tallies.items():
        caught = f"{t.caught}/{t.injected_total}" if t.injected_total else "-"
        wall = sum(t.wall) / len(t.wall)
        print(f"{mode:7} {case:6} {t.runs_with_false_alarm}/{t.runs:<22} {caught:17} {wall:.1f}s")
    if args.json:
        args.json.write_text(
            json.dumps({f"{m} {c}": vars(t) for (m, c), t in tallies.items()}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
