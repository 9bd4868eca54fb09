"""Judge kept paired A/B trials again under other rules, on the very same pairs.

``ab_quality.py --keep-pairs DIR`` keeps each paired trial's batch levels as
``trial-NNN-<slowdown>.json`` (slowdown 1.0 is A/A). This reads them and prints, per
practical threshold, what paired A/B would have said: red A/A runs, false alarms, the
injected slowdowns caught, and INCONCLUSIVE verdicts on unchanged tests (never a
failure, but noise in the report). Same data, different rule: the comparison has no run-to-run
luck in it (the rounds' early stops depend a little on the threshold they ran with).

Usage:  python benchmarks/paired_rejudge.py DIR [--thresholds 0.01,0.02]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gate_quality import INJECTED  # noqa: E402

from pytest_perfgate.model import Verdict  # noqa: E402
from pytest_perfgate.paired import PairedResult, process_noise, rounds_decision  # noqa: E402


def rounds_of(path: Path) -> dict[tuple[str, str], list[PairedResult]]:
    """Every measurement's rounds, as the coordinator recorded them."""
    by_key: dict[tuple[str, str], list[PairedResult]] = collections.defaultdict(list)
    for entry in json.loads(path.read_text())["measurements"]:
        key = (entry["test_id"], entry["name"])
        by_key[key].append(
            PairedResult(
                key, tuple(entry["base"]), tuple(entry["candidate"]), None, entry["looks"],
                entry["stop_reason"], entry["seconds"], entry["threshold"], entry["alpha"],
            )
        )  # fmt: skip
    return by_key


def verdicts(path: Path, threshold: float, alpha: float) -> dict[str, tuple[Verdict, str]]:
    """Test name -> verdict and note of one kept trial, judged at ``threshold``."""
    rounds = rounds_of(path)
    noise = process_noise(list(rounds.values()))
    level = alpha / max(len(rounds), 1)
    judged = {}
    for (test_id, _), results in rounds.items():
        decided = rounds_decision(results, noise=noise, threshold=threshold, alpha=level)
        judged[test_id.split("::")[-1]] = (
            (Verdict.INCONCLUSIVE, "fewer than 3 pairs")
            if decided is None
            else (decided[0].verdict, decided[1])
        )
    return judged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--thresholds", default="0.01,0.02")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument(
        "--misses", action="store_true", help="print each missed slowdown and false alarm"
    )
    args = parser.parse_args()
    trials = sorted(args.directory.glob("trial-*.json"))
    print(f"{len(trials)} kept trials in {args.directory}")
    print("threshold case  trials red-runs false-alarms inconclusive-unchanged caught")
    for threshold in (float(t) for t in args.thresholds.split(",")):
        tally: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0, 0])
        for path in trials:
            slowdown = float(path.stem.split("-")[-1])
            case = "A/A" if slowdown == 1.0 else f"+{slowdown - 1:.0%}"
            noted = verdicts(path, threshold, args.alpha)
            judged = {t: verdict for t, (verdict, _) in noted.items()}
            false = [t for t, v in judged.items() if v is Verdict.REGRESSED and (
                slowdown == 1.0 or t not in INJECTED)]  # fmt: skip
            caught = [t for t in INJECTED if slowdown != 1.0 and judged.get(t) is Verdict.REGRESSED]
            if args.misses:
                missed = [t for t in INJECTED if slowdown != 1.0 and t not in caught]
                for t in false + missed:
                    verdict, note = noted.get(t, (Verdict.INCONCLUSIVE, "not measured"))
                    print(f"  {path.stem} {t}: {verdict.value} {note}")
            row = tally[case]
            row[0] += 1
            row[1] += bool(false)
            row[2] += len(false)
            row[3] += len(caught)
            row[4] += sum(
                v is Verdict.INCONCLUSIVE and (slowdown == 1.0 or t not in INJECTED)
                for t, v in judged.items()
            )
        for case, (runs, red, false_alarms, caught, unsure) in sorted(tally.items()):
            injected = "-" if case == "A/A" else f"{caught}/{runs * len(INJECTED)}"
            print(
                f"{threshold:<9.1%} {case:5} {runs:6} {red:8} {false_alarms:12} "
                f"{unsure / runs:10.1f}/run       {injected}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
