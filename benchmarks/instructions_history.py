"""Does an instruction count depend on what the process did before? The check behind the
counting allocator (docs/performance.md, "What moved the counts").

Each run starts a Python under callgrind (as the plugin's restart does), gives its heap
another history (a seed picks a mix of strings, lists, dicts and bytes, half kept, and
the length of an environment variable), then counts a set of workloads with the
instruction probe (probes/instructions.py). The spread of each workload's median count
over the seeds is what the history moved it by; "within" is the spread of the samples of
one run.

Usage:  python benchmarks/instructions_history.py [--seeds 1 2 3 4] [--only REGEX]
        [--loops N] [--jobs 2]
Needs Valgrind and a C compiler.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile

RUN = r"""
import json, os, random, re, sys
from pytest_perfgate.probes.callgrind import Callgrind
from pytest_perfgate.probes.cpu import CallProbe
from pytest_perfgate.probes.instructions import CountPlan, count_instructions

rng = random.Random(int(sys.argv[1]))
kept = []
for _ in range(rng.randrange(2000, 20000)):
    kind = rng.randrange(5)
    if kind == 0:
        made = "x" * rng.randrange(0, 3000)
    elif kind == 1:
        made = list(range(rng.randrange(0, 600)))
    elif kind == 2:
        made = {i: i for i in range(rng.randrange(0, 200))}
    elif kind == 3:
        made = rng.random() * 1e9
    else:
        made = bytes(rng.randrange(0, 200000) if rng.random() < 0.02 else rng.randrange(0, 600))
    if rng.random() < 0.5:
        kept.append(made)
    for _ in range(rng.randrange(3)):
        if kept:
            kept.pop(rng.randrange(len(kept)))

WORD = re.compile(r"[a-z]+[0-9]*")
R = random.Random(7)
TEXT = "".join(R.choice("abcdefghij 0123456789") for _ in range(100_000))
RECORDS = [{"id": i, "name": "x" * (i % 17), "score": i * 0.5, "tags": ["a", "b"]}
           for i in range(300)]
FLOATS = [R.random() for _ in range(5000)]
NUMBERS = {n: list(range(n)) for n in (1000, 20000)}
def sum_squares(n): return sum(i * i for i in range(n))
def join(n): return ",".join(str(i) for i in range(n))
def dict_build(n): return {i: str(i) for i in range(n)}
def list_filter(data): return [x for x in data if x % 3 == 0]
WORKLOADS = {
    "sum_squares[300]": (sum_squares, (300,)),
    "sum_squares[30000]": (sum_squares, (30000,)),
    "join[200]": (join, (200,)), "join[2000]": (join, (2000,)), "join[20000]": (join, (20000,)),
    "dict_build[200]": (dict_build, (200,)), "dict_build[2000]": (dict_build, (2000,)),
    "sorted[5000]": (sorted, (FLOATS,)),
    "json_dumps[50]": (json.dumps, (RECORDS[:50],)),
    "json_dumps[200]": (json.dumps, (RECORDS[:200],)),
    "regex[1000]": (WORD.findall, (TEXT[:1000],)),
    "regex[10000]": (WORD.findall, (TEXT[:10000],)),
    "list_filter[1000]": (list_filter, (NUMBERS[1000],)),
    "list_filter[20000]": (list_filter, (NUMBERS[20000],)),
}
only, loops = os.environ.get("HISTORY_ONLY"), int(os.environ.get("HISTORY_LOOPS", "0")) or None
counter = Callgrind.attach()
found = {}
for name, (fn, args) in WORKLOADS.items():
    if only and not re.search(only, name):
        continue
    measured = count_instructions(name, CallProbe(fn, args, None), counter,
                                  CountPlan(samples=5, loops=loops))
    samples = sorted(measured.samples)
    found[name] = [samples[len(samples) // 2], samples[0], samples[-1], measured.loops]
    for _ in range(rng.randrange(100, 2000)):  # more history between workloads
        kept.append("y" * rng.randrange(0, 2000))
        if rng.random() < 0.6:
            kept.pop(rng.randrange(len(kept)))
print("RESULT " + json.dumps(found))
"""


def one_run(seed: int, script: str, env: dict[str, str]) -> dict[str, list[float]]:
    dumps = tempfile.mkdtemp(prefix="perfgate-callgrind-")
    run_env = {
        **env,
        "PERFGATE_CALLGRIND_DIR": dumps,
        "PYTHONHASHSEED": "0",
        "HISTORY_PADDING": "p" * (seed * 41 % 500),  # another environment size
    }
    command = ["valgrind", "--tool=callgrind", "--quiet", "--instr-atstart=no"]
    command += ["--collect-atstart=no", f"--callgrind-out-file={dumps}/callgrind.out.%p"]
    command += [sys.executable, script, str(seed)]
    done = subprocess.run(command, env=run_env, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            found: dict[str, list[float]] = json.loads(line.removeprefix("RESULT "))
            return found
    raise SystemExit(f"seed {seed} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    parser.add_argument("--only", default="", help="workloads whose name matches this regex")
    parser.add_argument("--loops", type=int, default=0, help="calls per count (0: the probe's)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    env = {**os.environ, "HISTORY_ONLY": args.only, "HISTORY_LOOPS": str(args.loops)}
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(RUN)
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda seed: one_run(seed, script.name, env), args.seeds))
    os.unlink(script.name)
    print(f"seeds {args.seeds}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'workload':22s} {'median count':>14s} {'between':>9s} {'within':>9s} loops")
    for name in runs[0]:
        medians = [run[name][0] for run in runs]
        between = (max(medians) - min(medians)) / statistics.median(medians)
        within = max((run[name][2] - run[name][1]) / run[name][0] for run in runs)
        print(
            f"{name:22s} {statistics.median(medians):14.1f} {between * 100:8.4f}% "
            f"{within * 100:8.4f}% {runs[0][name][3]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
