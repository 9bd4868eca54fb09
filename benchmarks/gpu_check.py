"""The whole GPU check, on a machine with an NVIDIA GPU (run on the lent H100).

    python benchmarks/gpu_check.py kernels      # bandwidth, agreement, telemetry overhead
    python benchmarks/gpu_check.py gate --runs 10   # A/A and an injected 10% slowdown
    python benchmarks/gpu_check.py gate --runs 10 --slowdown 0.03   # a 3% slowdown
    python benchmarks/gpu_check.py telemetry --telemetry-time 300   # NVML sampling's cost

``kernels`` prints, from one process:
  1. a 1 GiB device-to-device copy: achieved bandwidth and percent of the NVML-derived
     HBM peak;
  2. the median of three kernels (1 GiB copy, 8192^3 bf16 matmul, a tiny elementwise
     kernel) by perfgate (cold, batch, graph modes), triton.testing.do_bench (median)
     and torch.utils.benchmark.Timer, measured in alternation;
  3. telemetry overhead: the matmul with NVML sampling at 50 Hz and without, alternated;
  4. a perf.gpu.region around the matmul beside the same matmul through perf.gpu.
``gate`` records the example GPU tests' baselines (``--refreshes``, 3, in a scratch copy of
baselines/), re-runs them ``--runs`` times unchanged (A/A) and ``--runs`` times with
``--slowdown`` (default 0.1: 10%) more work in every kernel, and counts failures per test;
``--keep`` copies the refreshed baseline file to the path given (to commit it). At 0.03
the ten tiny kernels stay ten (their launch count rounds back), so only the copy and the
matmul change.
``telemetry`` measures what NVML sampling costs the power-capped matmul: rounds of three
probe calls (telemetry off, 50 Hz, and as fast as the sampler can read), in rotating
order, until ``--telemetry-time`` seconds or ``--telemetry-rounds`` rounds; per round the
ratio of each sampled call's median to the unsampled one's, summarized by the median
ratio with a sign-test and a bootstrap 95% interval (``paired_ratio_summary``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_perfgate.model import Measurement  # noqa: E402
from pytest_perfgate.probes.gpu import GpuProbe  # noqa: E402
from pytest_perfgate.probes.host import ProbeHost  # noqa: E402
from pytest_perfgate.sampling import SamplingPlan  # noqa: E402
from pytest_perfgate.stats import median_ci  # noqa: E402

#: The example GPU tests, in the order they run.
GPU_TESTS = ("test_copy_one_gib", "test_matmul_bf16_8192", "test_ten_tiny_kernels_graph")


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
    if not any(e.name == "perfgate" for e in entry_points(group="pytest11")):
        command += ["-p", "pytest_perfgate.plugin"]  # a checkout that is not installed
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path, "COLUMNS": "200", **(env or {})},
    )
    return done.returncode, done.stdout + done.stderr


def failed_tests(output: str) -> list[str]:
    """The example GPU tests that a run's output reports as failed or REGRESSED."""
    regressed = {
        row.split()[0].split("::")[1]
        for row in verdict_lines(output)
        if row.split()[2:3] == ["REGRESSED"]
    }
    return [
        name
        for name in GPU_TESTS
        if name in regressed or f"FAILED example_suite/test_gpu.py::{name}" in output
    ]


def gate(args: argparse.Namespace) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix="perfgate-gpu-"))
    injected = f"+{args.slowdown:.0%} work"
    try:
        for i in range(args.refreshes):
            code, out = run_suite(scratch, "--perf-update-baselines")
            print(f"refresh {i + 1}/{args.refreshes}: exit {code}", flush=True)
            if code != 0:
                print(out)
                raise SystemExit("recording the GPU baselines failed")
        if args.keep:
            Path(args.keep).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(scratch / "example_suite" / "test_gpu.json", args.keep)
        outcomes: dict[str, list[list[str]]] = {"A/A": [], injected: []}
        logs: dict[str, list[str]] = {"A/A": [], injected: []}
        for i in range(args.runs):  # alternate, so drift hits both
            for label, extra in (("A/A", "0"), (injected, str(args.slowdown))):
                started = time.perf_counter()
                code, out = run_suite(scratch, env={"PERFGATE_EXAMPLE_GPU_EXTRA_WORK": extra})
                elapsed = time.perf_counter() - started
                failed = failed_tests(out)
                outcomes[label].append(failed)
                logs[label].append(f"[{elapsed:.1f}s] " + out[-1500:])
                print(f"run {i + 1}/{args.runs} {label}: exit {code}, {elapsed:.1f} s, "
                      f"failed {failed or 'none'}", flush=True)  # fmt: skip
                print("    " + "\n    ".join(verdict_lines(out)), flush=True)
        return {
            "slowdown": args.slowdown,
            "outcomes": outcomes,
            "last_logs": {k: v[-1] for k, v in logs.items()},
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def verdict_lines(output: str) -> list[str]:
    """The perfgate table's rows for the example GPU tests, each on one line (a narrow
    terminal puts the verdict on the line below the test's name)."""
    lines = output.splitlines()
    rows = []
    for index, line in enumerate(lines):
        if not (line.startswith("example_suite/test_gpu.py::") and "[gpu]" in line):
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        wrapped = line.rstrip().endswith("]") and following.startswith(" ")
        rows.append(f"{line.strip()} {following.strip()}" if wrapped else line.strip())
    return rows


def print_gate(results: dict[str, Any], runs: int) -> None:
    outcomes = results["outcomes"]
    injected = next(label for label in outcomes if label != "A/A")
    aa = outcomes["A/A"]
    aa_red = sum(1 for failed in aa if failed)
    print(
        f"\nA/A: {aa_red}/{runs} runs with a failure "
        f"({sum(map(len, aa))} failed tests of {len(GPU_TESTS) * runs})"
    )
    caught = {name: sum(name in failed for failed in outcomes[injected]) for name in GPU_TESTS}
    print(f"{injected}: caught in " + ", ".join(f"{n} {c}/{runs}" for n, c in caught.items()))
    print("\nlast A/A run:\n" + results["last_logs"]["A/A"])
    print(f"\nlast {injected} run:\n" + results["last_logs"][injected])


# -- telemetry cost ---------------------------------------------------------------------

#: Telemetry rates compared with none: the default, and one above what the sampler can
#: keep up with (it then reads back to back), an upper bound on the cost per second.
TELEMETRY_RATES = (50.0, 10_000.0)


def paired_ratio_summary(
    ratios: Sequence[float], *, resamples: int = 10_000, seed: int = 0
) -> dict[str, float]:
    """The median of paired ratios (sampled / unsampled) with two 95% intervals: the
    sign test's (order statistics, distribution-free) and a percentile bootstrap of the
    median; and the sign test's two-sided p for "the median ratio is 1"."""
    import numpy as np
    from scipy.stats import binomtest

    values = np.asarray(ratios, dtype=float)
    if values.size < 6:
        raise ValueError("a paired summary needs at least 6 pairs")
    sign_lo, sign_hi = median_ci(values.tolist())
    rng = np.random.default_rng(seed)
    medians = np.median(values[rng.integers(0, values.size, (resamples, values.size))], axis=1)
    boot_lo, boot_hi = np.percentile(medians, [2.5, 97.5])
    above, below = int((values > 1).sum()), int((values < 1).sum())
    return {
        "pairs": float(values.size),
        "median": float(np.median(values)),
        "sign_ci_low": float(sign_lo),
        "sign_ci_high": float(sign_hi),
        "bootstrap_ci_low": float(boot_lo),
        "bootstrap_ci_high": float(boot_hi),
        "above_one": float(above),
        "below_one": float(below),
        "sign_p": float(binomtest(above, above + below, 0.5).pvalue) if above + below else 1.0,
    }


def telemetry_cost(args: argparse.Namespace) -> dict[str, Any]:
    """Rounds of the matmul through perf.gpu with telemetry off and at each rate."""
    import torch

    a = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    plan = {"max_time": args.telemetry_call_time, "target_precision": 0.001}
    variants = (0.0, *TELEMETRY_RATES)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    while len(rows) < args.telemetry_rounds and (
        time.perf_counter() - started < args.telemetry_time
    ):
        shift = len(rows) % len(variants)
        row: dict[str, Any] = {}
        for hz in variants[shift:] + variants[:shift]:
            gpu, taken = probe(telemetry_hz=hz, **plan)
            gpu(torch.matmul, a, b, mode="cold", flops=2 * 8192**3, dtype="bf16")
            details = taken[0].details["gpu"]
            telemetry = details.get("telemetry") or {}
            row[str(hz)] = {
                "median": median(taken[0].samples),
                "samples": len(taken[0].samples),
                "readings": telemetry.get("readings"),
                "sm_clock_mhz": details.get("sm_clock_mhz"),
                "slowed_samples": details.get("slowed_samples"),
                "slowdown_reasons": details.get("slowdown_reasons"),
            }
        rows.append(row)
        base = row["0.0"]["median"]
        cells = ", ".join(
            f"{hz:g} Hz {row[str(hz)]['median'] / base:.4f}" for hz in TELEMETRY_RATES
        )
        default = row[str(TELEMETRY_RATES[0])]
        print(
            f"round {len(rows)}: off {base * 1e6:.1f} us; {cells}; SM clock "
            f"{default['sm_clock_mhz']} MHz, slowed {default['slowed_samples']}/"
            f"{default['samples']} {default['slowdown_reasons']}",
            flush=True,
        )
    summaries = {}
    for hz in TELEMETRY_RATES:
        ratios = [row[str(hz)]["median"] / row["0.0"]["median"] for row in rows]
        readings = [row[str(hz)]["readings"] or 0 for row in rows]
        summaries[str(hz)] = {
            **paired_ratio_summary(ratios),
            "readings_per_call": median(readings),
        }
    return {"rounds": rows, "summaries": summaries, "reading_cost": reading_cost()}


def reading_cost(reads: int = 200) -> dict[str, float]:
    """Host time of one telemetry reading (every NVML query of one sample)."""
    import torch

    from pytest_perfgate.probes.gpu import TorchBackend
    from pytest_perfgate.probes.nvml import Nvml

    nvml = Nvml.open()
    bus_id = TorchBackend(torch).pci_bus_id()
    handle = nvml.handle_by_pci_bus_id(bus_id) if bus_id else nvml.handle_by_index(0)
    times = []
    for _ in range(reads):
        started = time.perf_counter_ns()
        nvml.reading(handle)
        times.append((time.perf_counter_ns() - started) / 1e3)
    ordered = sorted(times)
    return {"median_us": median(times), "p90_us": ordered[math.floor(0.9 * (reads - 1))]}


def print_telemetry(results: dict[str, Any]) -> None:
    cost = results["reading_cost"]
    print(
        f"\none telemetry reading: median {cost['median_us']:.0f} us, "
        f"p90 {cost['p90_us']:.0f} us of host time"
    )
    for hz, s in results["summaries"].items():
        print(
            f"matmul with telemetry at {float(hz):g} Hz / off, {s['pairs']:.0f} rounds: median "
            f"ratio {s['median']:.4f}, 95% CI sign test {s['sign_ci_low']:.4f}.."
            f"{s['sign_ci_high']:.4f}, bootstrap {s['bootstrap_ci_low']:.4f}.."
            f"{s['bootstrap_ci_high']:.4f}; above 1 in {s['above_one']:.0f}, below in "
            f"{s['below_one']:.0f} (sign test p={s['sign_p']:.3g}); "
            f"{s['readings_per_call']:.0f} readings per call"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["kernels", "gate", "telemetry", "all"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--overhead-pairs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--refreshes", type=int, default=3, help="baseline refreshes before")
    parser.add_argument(
        "--slowdown", type=float, default=0.1, help="extra work per kernel in the injected runs"
    )
    parser.add_argument("--telemetry-time", type=float, default=300.0, help="seconds of rounds")
    parser.add_argument("--telemetry-rounds", type=int, default=200, help="at most this many")
    parser.add_argument(
        "--telemetry-call-time", type=float, default=0.5, help="seconds of samples per call"
    )
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
    if args.part in ("telemetry", "all"):
        results["telemetry"] = telemetry_cost(args)
        print_telemetry(results["telemetry"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
