"""The whole GPU check, on a machine with an NVIDIA GPU (run on the lent H100).

    python benchmarks/gpu_check.py kernels      # bandwidth, agreement, telemetry overhead
    python benchmarks/gpu_check.py gate --runs 10   # A/A and an injected 10% slowdown

``kernels`` prints, from one process:
  1. a 1 GiB device-to-device copy: achieved bandwidth and percent of the NVML-derived
     HBM peak;
  2. the median of three kernels (1 GiB copy, 8192^3 bf16 matmul, a tiny elementwise
     kernel) by perfgate (cold, batch, graph modes), triton.testing.do_bench (median)
     and torch.utils.benchmark.Timer, measured in alternation;
  3. telemetry overhead: the matmul with NVML sampling at 50 Hz and without, alternated;
  4. a perf.gpu.region around the matmul beside the same matmul through perf.gpu.
``gate`` records the example GPU tests' baselines (3 refreshes, in a scratch copy of
baselines/), re-runs them ``--runs`` times unchanged (A/A) and ``--runs`` times with 10%
more work in every kernel, and counts failures; ``--keep`` copies the refreshed baseline
file to the path given (to commit it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_perfgate.model import Measurement  # noqa: E402
from pytest_perfgate.probes.gpu import GpuProbe  # noqa: E402
from pytest_perfgate.probes.host import ProbeHost  # noqa: E402
from pytest_perfgate.sampling import SamplingPlan  # noqa: E402


def probe(telemetry_hz: float = 50.0, **plan: Any) -> tuple[GpuProbe, list[Measurement]]:
    """A perf.gpu outside pytest: measurements are collected instead of judged."""
    taken: list[Measurement] = []
    gpu = GpuProbe(ProbeHost.keeping(SamplingPlan(**plan), taken), telemetry_hz=telemetry_hz)
    return gpu, taken


def median(values: list[float] | tuple[float, ...]) -> float:
    return statistics.median(values)


def kernels(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import triton.testing
    from torch.utils.benchmark import Timer

    results: dict[str, Any] = {}
    n = 1 << 30
    src = torch.empty(n, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    a = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    tiny = torch.zeros(4096, device="cuda")
    cases = {
        "copy 1 GiB": (lambda: dst.copy_(src), {"bytes": 2 * n}),
        "matmul 8192^3 bf16": (lambda: torch.matmul(a, b), {"flops": 2 * 8192**3, "dtype": "bf16"}),
        "tiny add (4096)": (lambda: tiny.add_(1.0), {"items": 4096}),
    }

    # 1 + 2: ours in three modes, do_bench and torch Timer, `rounds` times; the order of
    # the five methods rotates between rounds, so the GPU's drift (power cap, heat) does
    # not always favour the same one.
    rows: dict[str, dict[str, list[float]]] = {name: {} for name in cases}
    details: dict[str, Any] = {}

    def ours(name: str, fn: Any, work: dict[str, Any], mode: str) -> float:
        gpu, taken = probe()
        gpu(fn, mode=mode, name=mode, **work)
        details.setdefault(name, {})[mode] = taken[0].details["gpu"]
        return median(taken[0].samples)

    def do_bench(fn: Any) -> float:
        return float(triton.testing.do_bench(fn, return_mode="median")) / 1e3

    def torch_timer(fn: Any) -> float:
        return float(
            Timer(stmt="fn()", globals={"fn": fn}).blocked_autorange(min_run_time=0.5).median
        )

    methods = ("perfgate cold", "perfgate batch", "perfgate graph", "do_bench median",
               "torch Timer median")  # fmt: skip

    def measure(label: str, name: str, fn: Any, work: dict[str, Any]) -> float:
        if label.startswith("perfgate"):
            return ours(name, fn, work, label.split()[1])
        return do_bench(fn) if label.startswith("do_bench") else torch_timer(fn)

    for round_index in range(args.rounds):
        for name, (fn, work) in cases.items():
            shift = round_index % len(methods)
            for label in methods[shift:] + methods[:shift]:
                rows[name].setdefault(label, []).append(measure(label, name, fn, work))
    results["medians"] = {
        name: {k: median(v) for k, v in row.items()} for name, row in rows.items()
    }
    results["details"] = details

    copy = details["copy 1 GiB"]["cold"]
    results["copy"] = {
        "bytes_per_s": copy["throughput"]["bytes_per_s"],
        "peak": copy["throughput"].get("bandwidth_peak"),
        "peak_source": copy["throughput"].get("bandwidth_peak_source"),
        "percent_of_peak": copy["throughput"].get("bandwidth_percent_of_peak"),
    }

    # 3: telemetry overhead on the matmul: pairs in ABBA order, median of the pair ratios.
    matmul = cases["matmul 8192^3 bf16"][0]
    ratios: list[float] = []
    for pair in range(args.overhead_pairs):
        times: dict[float, float] = {}
        for hz in (50.0, 0.0) if pair % 2 == 0 else (0.0, 50.0):
            gpu, taken = probe(telemetry_hz=hz)
            gpu(matmul, mode="cold")
            times[hz] = median(taken[0].samples)
        ratios.append(times[50.0] / times[0.0])
    ordered = sorted(ratios)
    results["telemetry_overhead"] = {
        "ratio_median": median(ratios),
        "ratio_min": ordered[0],
        "ratio_max": ordered[-1],
        "pairs": args.overhead_pairs,
    }

    # 4: a region around the same matmul (one sample per entry).
    gpu, taken = probe()
    for _ in range(30):
        with gpu.region("matmul region", flops=2 * 8192**3, dtype="bf16"):
            matmul()
    gpu.finish()
    region = taken[0]
    results["region"] = {
        "median": median(region.samples),
        "samples": len(region.samples),
        "telemetry": region.details["gpu"]["telemetry"] is not None,
    }
    return results


def print_kernels(results: dict[str, Any]) -> None:
    print("\n1. 1 GiB device-to-device copy (2 GiB moved per call)")
    c = results["copy"]
    print(f"   achieved {c['bytes_per_s'] / 1e9:.0f} GB/s = {c['percent_of_peak']}% of peak")
    print(f"   peak: {c['peak_source']}")
    print("\n2. medians (us); ratio to do_bench in brackets")
    for name, row in results["medians"].items():
        ref = row["do_bench median"]
        cells = ", ".join(f"{k} {v * 1e6:.2f} [{v / ref:.3f}]" for k, v in row.items())
        print(f"   {name}: {cells}")
    t = results["telemetry_overhead"]
    print(
        f"\n3. matmul, 50 Hz telemetry / none: median ratio {t['ratio_median']:.4f} "
        f"(range {t['ratio_min']:.4f}..{t['ratio_max']:.4f}, {t['pairs']} ABBA pairs)"
    )
    r = results["region"]
    print(
        f"\n4. region around the matmul: median {r['median'] * 1e6:.1f} us, {r['samples']} entries"
    )
    mm = results["details"]["matmul 8192^3 bf16"]["cold"]
    rate = mm["throughput"]
    print(
        f"\n   matmul telemetry: SM clock {mm.get('sm_clock_mhz')} MHz, slowed samples "
        f"{mm.get('slowed_samples')}/{mm.get('samples')} {mm.get('slowdown_reasons')}, "
        f"{rate.get('compute_percent_of_peak')}% of {rate.get('compute_peak_source')}"
    )


def run_suite(
    baseline_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    command = [
        sys.executable, "-m", "pytest", "example_suite/test_gpu.py", "-q", "-p", "no:cacheprovider",
        f"--perf-baseline-dir={baseline_dir}", *extra,
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    return done.returncode, done.stdout + done.stderr


def gate(args: argparse.Namespace) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="perfgate-gpu-"))
    try:
        for _ in range(3):
            code, out = run_suite(scratch, "--perf-update-baselines")
            if code != 0:
                print(out)
                raise SystemExit("recording the GPU baselines failed")
        if args.keep:
            Path(args.keep).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(scratch / "example_suite" / "test_gpu.json", args.keep)
        outcomes: dict[str, list[int]] = {"A/A": [], "+10% work": []}
        logs: dict[str, list[str]] = {"A/A": [], "+10% work": []}
        for _ in range(args.runs):  # alternate, so drift hits both
            for label, extra in (("A/A", "0"), ("+10% work", "0.1")):
                started = time.perf_counter()
                code, out = run_suite(scratch, env={"PERFGATE_EXAMPLE_GPU_EXTRA_WORK": extra})
                failed = out.count("performance regression in")
                outcomes[label].append(failed)
                logs[label].append(f"[{time.perf_counter() - started:.1f}s] " + out[-1500:])
        return {"outcomes": outcomes, "last_logs": {k: v[-1] for k, v in logs.items()}}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def print_gate(results: dict[str, Any], runs: int) -> None:
    o = results["outcomes"]
    aa_red = sum(1 for f in o["A/A"] if f)
    caught = o["+10% work"]
    print(
        f"\nA/A: {aa_red}/{runs} runs with a failure ({sum(o['A/A'])} failed tests of {3 * runs})"
    )
    print(
        f"+10% work: failed tests per run {caught} (3 tests each; {sum(caught)}/{3 * runs} caught)"
    )
    print("\nlast A/A run:\n" + results["last_logs"]["A/A"])
    print("\nlast +10% run:\n" + results["last_logs"]["+10% work"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["kernels", "gate", "all"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--overhead-pairs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", help="copy the recorded baseline file here")
    parser.add_argument("--json", help="write all results here")
    args = parser.parse_args()

    import pynvml
    import torch

    pynvml.nvmlInit()
    print(
        f"{time.strftime('%Y-%m-%d')} {torch.cuda.get_device_name()} driver "
        f"{pynvml.nvmlSystemGetDriverVersion()} torch {torch.__version__} "
        f"python {platform.python_version()}"
    )
    results: dict[str, Any] = {}
    if args.part in ("kernels", "all"):
        results["kernels"] = kernels(args)
        print_kernels(results["kernels"])
    if args.part in ("gate", "all"):
        results["gate"] = gate(args)
        print_gate(results["gate"], args.runs)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
