"""Where one test's processes landed in kept paired A/B trials: per trial, each round's
base and candidate level (the median of that process's turns, in microseconds).

A test whose processes run at two levels (memory layout; docs/how-to/ab-mode.md) shows
them plainly here, and whether the share on each level differs between the sides; each
line ends with the paired verdict on it and its note (threshold as recorded, alpha 0.05
over the file's measurements).

Usage:  python benchmarks/paired_levels.py PATH... [--test 'regex[10000]']
        (PATH: a file written by ``perfgate ab --pairs-json``, or a directory of them,
        such as the ``--keep-pairs`` directory of benchmarks/ab_quality.py)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from paired_rejudge import rounds_of

from pytest_perfgate.paired import process_noise, rounds_decision


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", type=Path, nargs="+")
    parser.add_argument("--test", default="regex[10000]", help="part of the test id")
    args = parser.parse_args()
    files = [
        p for path in args.paths for p in (sorted(path.glob("*.json")) if path.is_dir() else [path])
    ]
    for path in files:
        rounds = [
            entry
            for entry in json.loads(path.read_text())["measurements"]
            if args.test in entry["test_id"]
            and min(len(entry["base"]), len(entry["candidate"])) >= 3
        ]
        base = [round(statistics.median(r["base"]) * 1e6) for r in rounds]
        candidate = [round(statistics.median(r["candidate"]) * 1e6) for r in rounds]
        print(f"{path.stem:<16} base {base}  candidate {candidate}")
        every = rounds_of(path)
        noise = process_noise(list(every.values()))
        for key, results in every.items():
            if args.test not in key[0]:
                continue
            decided = rounds_decision(
                results, noise=noise, threshold=results[0].threshold, alpha=0.05 / len(every)
            )
            if decided is not None:
                decision, note = decided
                print(f"{'':<16} {decision.verdict.value} {decision.ratio - 1:+.1%}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
