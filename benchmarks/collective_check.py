"""Check perf.collective on a machine with several GPUs (or on CPU processes with gloo).

1. Bandwidth. all_reduce per message size through the probe, and per size: the slowest
   rank's median time, our algbw and busbw, and busbw computed here with nccl-tests' own
   formula (AllReduceGetBw in its src/all_reduce.cu) from the same timings, once from the
   slowest rank's time (what we gate on; nccl-tests ``-a 3``) and once from the mean of
   the ranks' times (nccl-tests' default, ``-a 1``). With NCCL, if nccl-tests'
   ``all_reduce_perf`` is on PATH (or given with --nccl-tests), its own output for the
   same range of sizes follows, run with NVLink multicast off as well.
2. A/A. Writes a one-test suite calling ``perf.collective("all_reduce", ...)``, records its
   baselines (--refreshes runs), then runs it --repeats times with nothing changed and no
   refresh: how many runs fail, and every verdict.

Usage:
    python benchmarks/collective_check.py --backend nccl          # every GPU, ~2-3 min on 2
    python benchmarks/collective_check.py --backend gloo          # 2 CPU processes
    python benchmarks/collective_check.py --backend nccl --sizes 1MiB,64MiB,1GiB --repeats 5
    python benchmarks/collective_check.py --backend nccl --processes 4   # 4 of the GPUs

NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1 and NVSHMEM_DISABLE_NVLS=1 are set
for every process started here, as the probe does for its workers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Workers and the A/A suite's pytest find this checkout even where it is not installed.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)

from pytest_perfgate.probes import ProbeUnavailable  # noqa: E402
from pytest_perfgate.probes.collective import (  # noqa: E402
    DTYPES,
    MULTICAST_OFF,
    CollectiveSpec,
    resolve_backend,
    run_collective,
    slowest_rank,
)
from pytest_perfgate.probes.units import parse_size, size_label  # noqa: E402
from pytest_perfgate.sampling import SamplingPlan  # noqa: E402

os.environ.update(MULTICAST_OFF)  # for every process started here, nccl-tests included

DEFAULT_SIZES = {
    "nccl": "1MiB,4MiB,16MiB,64MiB,256MiB,1GiB",
    "gloo": "4KiB,64KiB,1MiB",
}
DEFAULT_AA_SIZES = {"nccl": "1MiB,64MiB,1GiB", "gloo": "64KiB,1MiB"}
DEFAULT_DTYPE = {"nccl": "bf16", "gloo": "fp32"}
#: nccl-tests' -d names.
NCCL_TESTS_DTYPE = {
    "bfloat16": "bfloat16",
    "float16": "half",
    "float32": "float",
    "float64": "double",
    "int8": "int8",
    "uint8": "uint8",
    "int32": "int32",
    "int64": "int64",
}

SUITE = """
import os

import pytest


@pytest.mark.perf
def test_all_reduce(perf):
    perf.collective(
        "all_reduce",
        sizes=os.environ["CHECK_SIZES"].split(","),
        dtype=os.environ["CHECK_DTYPE"],
        backend=os.environ["CHECK_BACKEND"],
        processes=int(os.environ["CHECK_PROCESSES"]),
    )
"""

#: nccl-tests' bus factor per operation (src/<op>.cu, <Op>GetBw), for n ranks. Its busBw is
#: baseBw x factor, and its baseBw is the size column (S, the total bytes) over the time.
NCCL_TESTS_BUS_FACTOR = {
    "all_reduce": lambda n: 2.0 * (n - 1) / n,  # AllReduceGetBw
    "all_gather": lambda n: (n - 1) / n,  # AllGatherGetBw (baseBw counts count*nranks)
    "reduce_scatter": lambda n: (n - 1) / n,  # ReduceScatterGetBw
    "broadcast": lambda n: 1.0,  # BroadcastGetBw
    "all_to_all": lambda n: (n - 1) / n,  # AlltoAllGetBw
}
#: nccl-tests' binary per operation.
NCCL_TESTS_BINARY = {
    "all_reduce": "all_reduce_perf",
    "all_gather": "all_gather_perf",
    "reduce_scatter": "reduce_scatter_perf",
    "broadcast": "broadcast_perf",
    "all_to_all": "alltoall_perf",
}


def nccl_tests_busbw(op: str, size_bytes: int, sec: float, nranks: int) -> float:
    """nccl-tests' busBw in GB/s for a message of ``size_bytes`` (its size column)."""
    return size_bytes / 1.0e9 / sec * NCCL_TESTS_BUS_FACTOR[op](nranks)


def bandwidth_table(
    op: str, backend: str, world_size: int, sizes: list[str], dtype: str, max_time: float
) -> None:
    spec = CollectiveSpec.from_plan(
        op,
        sizes,
        dtype=dtype,
        backend=backend,
        world_size=world_size,
        plan=SamplingPlan(max_time=max_time),
    )
    started = time.perf_counter()
    run = run_collective(spec)
    elapsed = time.perf_counter() - started
    print(f"\n== {op}, {backend}, {world_size} ranks, {dtype} ({elapsed:.1f} s) ==")
    print("machine:", json.dumps(run.machine), " versions:", json.dumps(dict(run.versions)))
    header = (
        f"{'size':>8} {'bytes':>11} {'time us':>10} {'algbw':>8} {'busbw':>8} "
        f"{'nccl-t -a3':>10} {'nccl-t -a1':>10} {'ours/-a1':>8} {'samples':>7} {'iters':>6}"
    )
    print(header)
    print("-" * len(header))
    for result, measurement in zip(run.sizes, run.measurements(), strict=True):
        slow = statistics.median(slowest_rank(result.rank_samples))
        mean = statistics.median(statistics.fmean(s) for s in result.rank_samples)
        formula_slow = nccl_tests_busbw(op, result.bytes, slow, world_size)
        formula_mean = nccl_tests_busbw(op, result.bytes, mean, world_size)
        details = measurement.details
        print(
            f"{result.label:>8} {result.bytes:>11} {slow * 1e6:>10.1f} "
            f"{details['algbw_gbps']:>8.2f} {details['busbw_gbps']:>8.2f} "
            f"{formula_slow:>10.2f} {formula_mean:>10.2f} "
            f"{details['busbw_gbps'] / formula_mean:>8.3f} "
            f"{len(result.rank_samples):>7} {result.iterations:>6}"
        )
        # Our busbw and nccl-tests' formula on the same time must agree to rounding.
        assert abs(details["busbw_gbps"] / formula_slow - 1) < 1e-9, "busbw formula differs"
    print(
        "GB/s = 1e9 B/s. busbw = algbw x nccl-tests' bus factor. 'nccl-t -a3': nccl-tests' "
        "formula on the slowest rank's time (what is gated);\n'nccl-t -a1': on the mean of "
        "the ranks' times (nccl-tests' default report)."
    )


def run_nccl_tests(
    directory: str, op: str, sizes: list[str], dtype: str, world_size: int, graph: int = 0
) -> None:
    """nccl-tests' binary for ``op`` on the same sizes; with ``graph`` > 0, its ``-G``: the
    iterations captured in a CUDA graph and replayed ``graph`` times (our graph mode)."""
    binary = Path(directory) / NCCL_TESTS_BINARY[op]
    parsed = [parse_size(s, argument="sizes", where="--sizes") for s in sizes]
    low, high = min(parsed), max(parsed)
    dtype_name = NCCL_TESTS_DTYPE[DTYPES[dtype][0]]
    command = [str(binary), "-b", str(low), "-e", str(high), "-f", "4", "-g", str(world_size)]
    command += ["-d", dtype_name, "-w", "50", "-n", "200"]
    if graph:
        command[-1] = str(max(1, 200 // graph))  # the same 200 operations, in `graph` replays
        command += ["-G", str(graph)]
    print("\n== nccl-tests:", " ".join(command), "==")
    env = dict(os.environ, **MULTICAST_OFF)
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"nccl-tests did not run: {error}")
        return
    rows = [line for line in done.stdout.splitlines() if line and not line.startswith("#")]
    print("\n".join(rows[-12:]) or done.stderr[-3000:])


def aa_runs(args: argparse.Namespace, backend: str, world_size: int, dtype: str) -> None:
    sizes = args.aa_sizes or DEFAULT_AA_SIZES[backend]
    directory = Path(tempfile.mkdtemp(prefix="perfgate-collective-aa-"))
    (directory / "test_collective_aa.py").write_text(SUITE, encoding="utf-8")
    settings = f"[tool.perfgate]\nmax_time = {args.max_time}\n"
    (directory / "pyproject.toml").write_text(settings, encoding="utf-8")
    out = directory / "results.json"
    env = dict(
        os.environ,
        CHECK_SIZES=sizes,
        CHECK_DTYPE=dtype,
        CHECK_BACKEND=backend,
        CHECK_PROCESSES=str(world_size),
        **MULTICAST_OFF,
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"]
    command += [f"--perf-json={out}"]
    if not any(e.name == "perfgate" for e in entry_points(group="pytest11")):
        command += ["-p", "pytest_perfgate.plugin"]  # a checkout that is not installed
    print(
        f"\n== A/A: all_reduce {sizes}, {backend}, {world_size} ranks, {dtype}, in {directory} =="
    )

    def run(*extra: str) -> tuple[int, list[dict[str, object]], float]:
        out.unlink(missing_ok=True)
        started = time.perf_counter()
        done = subprocess.run(
            [*command, *extra], cwd=directory, env=env, capture_output=True, text=True, check=False
        )
        elapsed = time.perf_counter() - started
        document = json.loads(out.read_text()) if out.exists() else {"tests": []}
        results = [r for test in document["tests"] for r in test["measurements"]]
        comparisons = [r["comparison"] for r in results]
        if done.returncode not in (0, 1) or not comparisons:
            print(done.stdout[-3000:], done.stderr[-3000:])
        return done.returncode, results, elapsed

    def levels(results: list[dict[str, object]]) -> str:
        """Per size: this run's median, operations per sample, and the CPU idle mode,
        so that refreshes and gate runs can be set side by side."""
        cells = []
        for r in results:
            m = r["measurement"]
            assert isinstance(m, dict)
            size = str(m["name"]).split(".", 1)[1]
            median = statistics.median(m["samples"]) * 1e6
            idle = m.get("machine", {}).get("cpu.idle", "?")
            cells.append(f"{size} {median:.1f} us x{m.get('loops')} ({idle})")
        return "; ".join(cells)

    for i in range(args.refreshes):
        code, results, elapsed = run("--perf-update-baselines")
        print(f"refresh {i + 1}/{args.refreshes}: exit {code}, {elapsed:.1f} s: {levels(results)}")
        if code != 0:
            print("a refresh failed: stopping")
            return
    failures = 0
    counts: dict[str, int] = {}
    for i in range(args.repeats):
        code, results, elapsed = run()
        failures += code != 0
        cells = []
        for c in (r["comparison"] for r in results):
            assert isinstance(c, dict)
            verdict = str(c["verdict"])
            counts[verdict] = counts.get(verdict, 0) + 1
            ratio = c.get("ratio")
            change = f"{(float(ratio) - 1) * 100:+.1f}%" if isinstance(ratio, float) else "-"
            cells.append(f"{str(c['name']).split('.', 1)[1]} {verdict} {change}")
        print(f"run {i + 1}/{args.repeats}: exit {code}, {elapsed:.1f} s: " + "; ".join(cells))
        print(f"    {levels(results)}")
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    print(f"A/A: {failures} of {args.repeats} runs failed; verdicts: {verdicts}")
    # The injected change: every size moves 10% more bytes under its old name.
    env["PERFGATE_CHECK_INFLATE"] = "1.1"
    caught = total = 0
    for i in range(args.inject_runs):
        code, results, elapsed = run()
        verdicts_now = [
            (str(r["comparison"]["name"]), str(r["comparison"]["verdict"])) for r in results
        ]
        caught += sum(v == "REGRESSED" for _, v in verdicts_now)
        total += len(verdicts_now)
        print(
            f"+10% bytes run {i + 1}/{args.inject_runs}: exit {code}, {elapsed:.1f} s: "
            + "; ".join(f"{n.split('.', 1)[1]} {v}" for n, v in verdicts_now)
        )
        print(f"    {levels(results)}")
    if args.inject_runs:
        print(f"+10% bytes: {caught} of {total} measurements REGRESSED")
    shutil.rmtree(directory, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("nccl", "gloo"), default="nccl")
    parser.add_argument(
        "--processes", type=int, default=None, help="ranks (default: every GPU; 2 on CPU)"
    )
    parser.add_argument("--sizes", default=None, help="comma-separated, e.g. 1MiB,64MiB,1GiB")
    parser.add_argument("--aa-sizes", default=None, help="sizes of the A/A suite")
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPES))
    parser.add_argument("--max-time", type=float, default=1.0, help="seconds per size")
    parser.add_argument("--repeats", type=int, default=5, help="A/A runs")
    parser.add_argument("--refreshes", type=int, default=3, help="baseline refreshes before A/A")
    parser.add_argument("--nccl-tests", default=None, help="folder of nccl-tests' binaries")
    parser.add_argument(
        "--nccl-tests-graph",
        type=int,
        default=0,
        help="also run nccl-tests with -G N (N graph replays of its iterations)",
    )
    parser.add_argument("--ops", default="all_reduce", help="comma-separated, for the table")
    parser.add_argument(
        "--inject-runs", type=int, default=0, help="runs with 10%% more bytes per size after A/A"
    )
    parser.add_argument("--skip-aa", action="store_true")
    parser.add_argument("--skip-table", action="store_true", help="only the A/A (and injected)")
    args = parser.parse_args()

    try:
        backend, world_size = resolve_backend(args.backend, args.processes)
    except ProbeUnavailable as missing:
        print(f"cannot run: {missing}")
        return 2
    dtype = args.dtype or DEFAULT_DTYPE[backend]
    sizes = (args.sizes or DEFAULT_SIZES[backend]).split(",")
    print(
        "sizes:",
        ", ".join(size_label(parse_size(s, argument="sizes", where="--sizes")) for s in sizes),
    )
    found = shutil.which("all_reduce_perf")
    nccl_tests = args.nccl_tests or (str(Path(found).parent) if found else None)
    for op in [] if args.skip_table else args.ops.split(","):
        bandwidth_table(op, backend, world_size, sizes, dtype, args.max_time)
        if backend == "nccl" and nccl_tests:
            run_nccl_tests(nccl_tests, op, sizes, dtype, world_size)
            if args.nccl_tests_graph:
                run_nccl_tests(nccl_tests, op, sizes, dtype, world_size, args.nccl_tests_graph)
    if backend == "nccl" and not nccl_tests and not args.skip_table:
        print("\n(nccl-tests not found: pass --nccl-tests DIR, the folder of all_reduce_perf)")
    if not args.skip_aa:
        aa_runs(args, backend, world_size, dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
