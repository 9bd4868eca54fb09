"""Does a test's speed depend on the process it runs in? (issue 16's regex test)

gate_quality.py's ``test_regex[10000]`` (``WORD.findall`` on a 10,000-character slice of
a fixed text) landed, per paired A/B process, on one of two or three levels 10-20% apart,
which pairing batches inside processes cannot cancel. This script times that one call in
``--processes`` fresh interpreters, one after the other, each taking the median of
``--trials`` fastest-of-15 batches; then, with ``--pad``, the same with a block of random
size (16 B to 64 KiB) held during each trial, which moves where the call's own buffers
land. Levels that cluster apart, stable inside each process, are a memory-layout effect.

Usage:  python benchmarks/layout_levels.py [--processes 10] [--trials 20]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import time

WORD = re.compile(r"[a-z]+[0-9]*")
_RNG = random.Random(7)  # gate_quality.py's text, character for character
TEXT = "".join(_RNG.choice("abcdefghij 0123456789") for _ in range(100_000))


def fastest_call_us(text: str, repeats: int = 15, calls: int = 10) -> float:
    """The fastest of ``repeats`` batches of ``calls`` calls, in microseconds a call."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(calls):
            WORD.findall(text)
        best = min(best, (time.perf_counter_ns() - start) / calls / 1000)
    return best


def one_process(trials: int, pad: bool) -> None:
    """In a child: the trials' levels, as one line of numbers."""
    text = TEXT[:10_000]
    levels = []
    for _ in range(trials):
        block = bytearray(random.randrange(16, 64 * 1024)) if pad else None
        levels.append(fastest_call_us(text))
        del block
    print(" ".join(f"{level:.1f}" for level in levels))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=10)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--child", choices=("plain", "pad"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        one_process(args.trials, args.child == "pad")
        return 0
    for mode in ("plain", "pad"):
        rows = []
        for _ in range(args.processes):
            command = [sys.executable, __file__, "--child", mode, "--trials", str(args.trials)]
            line = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            levels = [float(x) for x in line.split()]
            rows.append((statistics.median(levels), min(levels), max(levels)))
        medians = sorted(row[0] for row in rows)
        print(f"{mode:5}: per-process medians (us) " + " ".join(f"{m:.0f}" for m in medians))
        inside = max(high / low - 1 for _, low, high in rows)
        print(
            f"       between processes {medians[-1] / medians[0] - 1:+.1%}, "
            f"inside a process at most {inside:+.1%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
