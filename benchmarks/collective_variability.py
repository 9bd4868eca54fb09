"""Why does a small collective move between runs? Timing variants side by side, fresh processes.

Each *run* starts fresh rank processes (a fresh NCCL communicator, as a fresh pytest run
does), warms every size up, then measures every timing variant in rotating order, so the
variants meet the same machine. Across runs, the spread of each variant's run-level
median says which way of timing gives a level that holds from run to run; within a run,
each rank's median says how much the ranks' start skew weighs.

Variants (all time ``k`` back-to-back operations, about 1 ms of eager launches, with CUDA
events on the current stream):
  eager-barrier  the probe's former way: the ranks meet at a CPU (gloo) barrier, then each
                 records its start event and launches the operations one by one
  eager-devsync  after the CPU barrier, a one-element all_reduce on the timed stream before
                 the start event: the ranks' starts are aligned on the GPUs, not the CPUs
  graph-devsync  devsync, then the ``k`` operations replayed from a CUDA graph (no CPU
                 launch inside the timed span): what the probe does now

Usage (on a machine with 2 or more GPUs):
    python benchmarks/collective_variability.py --runs 6 --sizes 1MiB,64MiB --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_perfgate.probes.collective import MULTICAST_OFF  # noqa: E402
from pytest_perfgate.probes.units import parse_size, size_label  # noqa: E402

os.environ.update(MULTICAST_OFF)

VARIANTS = ("eager-barrier", "eager-devsync", "graph-devsync")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(
    rank: int, world: int, sizes: list[int], samples: int, out: str, variants: tuple[str, ...]
) -> None:
    import torch
    import torch.distributed as dist

    torch.cuda.set_device(rank)
    device = torch.device("cuda", rank)
    dist.init_process_group("nccl", rank=rank, world_size=world, device_id=device)
    control = dist.new_group(backend="gloo")
    if rank == 0:
        print("  communicator ready", flush=True)
    token = torch.ones(1, device=device)
    results: dict[str, Any] = {}
    for size in sizes:
        buffer = torch.ones(size // 2, dtype=torch.bfloat16, device=device)

        def op(buffer: Any = buffer) -> None:
            dist.all_reduce(buffer)

        for _ in range(50):  # warm-up: the same count on every rank, or the ranks hang
            for _ in range(20):
                op()
            torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(20):
            op()
        end.record()
        end.synchronize()
        per_op = start.elapsed_time(end) / 1e3 / 20
        everyone = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
        dist.all_gather(everyone, torch.tensor([per_op], dtype=torch.float64), group=control)
        per_op = max(float(t) for t in everyone)
        graphs: dict[int, Any] = {}

        def timed(
            variant: str,
            k: int,
            graphs: dict[int, Any] = graphs,
            op: Any = op,
            start: Any = start,
            end: Any = end,
        ) -> float:
            torch.cuda.synchronize()
            dist.barrier(group=control)
            if not variant.endswith("barrier"):
                dist.all_reduce(token)
            start.record()
            if variant.startswith("graph"):
                graphs[k].replay()
            else:
                for _ in range(k):
                    op()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end)) / 1e3 / k

        per_variant: dict[str, Any] = {}
        for variant in variants:
            if rank == 0:
                print(f"  {size_label(size)} {variant}: preparing", flush=True)
            k = max(1, math.ceil(0.001 / per_op))  # about 1 ms a sample, launched eagerly
            if variant.startswith("graph"):
                try:
                    graph = torch.cuda.CUDAGraph()
                    stream = torch.cuda.Stream()
                    stream.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(stream):
                        op()  # warm on the side stream before capture
                    torch.cuda.current_stream().wait_stream(stream)
                    torch.cuda.synchronize()
                    with torch.cuda.graph(graph):
                        for _ in range(k):
                            op()
                    graphs[k] = graph
                except Exception as error:  # report and go on
                    per_variant[variant] = {"error": f"{type(error).__name__}: {error}"[:300]}
                    continue
            per_variant[variant] = {"k": k, "times": []}
        order = [v for v in variants if "error" not in per_variant[v]]
        for i in range(samples):  # rotate so no variant always follows another
            shift = i % len(order)
            for variant in order[shift:] + order[:shift]:
                k = per_variant[variant]["k"]
                per_variant[variant]["times"].append(timed(variant, k))
        for variant in order:
            mine = torch.tensor(per_variant[variant]["times"], dtype=torch.float64)
            gathered = [torch.zeros_like(mine) for _ in range(world)]
            dist.all_gather(gathered, mine, group=control)
            ranks = [t.tolist() for t in gathered]
            slowest = [max(column) for column in zip(*ranks, strict=True)]
            n = len(slowest)
            per_variant[variant] = {
                "k": per_variant[variant]["k"],
                "slowest_median_us": statistics.median(slowest) * 1e6,
                "rank_median_us": [statistics.median(r) * 1e6 for r in ranks],
                "first_fifth_us": statistics.median(slowest[: n // 5]) * 1e6,
                "last_fifth_us": statistics.median(slowest[-n // 5 :]) * 1e6,
            }
        results[size_label(size)] = per_variant
        del buffer
    if rank == 0:
        Path(out).write_text(json.dumps(results), encoding="utf-8")
    dist.barrier(group=control)
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--sizes", default="1MiB,64MiB")
    parser.add_argument("--samples", type=int, default=60, help="samples per variant and size")
    parser.add_argument("--json", default=None)
    parser.add_argument("--no-graph", action="store_true", help="leave the graph variant out")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per run")
    args = parser.parse_args()
    import torch
    import torch.multiprocessing as mp

    world = torch.cuda.device_count()
    if world < 2:
        sys.exit(f"needs 2 or more GPUs, found {world}")
    sizes = [
        parse_size(s, argument="--sizes", where="collective_variability")
        for s in args.sizes.split(",")
    ]
    runs: list[dict[str, Any]] = []
    for run in range(args.runs):
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()))
        out = f"/tmp/collective_variability_{os.getpid()}_{run}.json"
        began = time.perf_counter()
        variants = VARIANTS[:2] if args.no_graph else VARIANTS
        context = mp.start_processes(
            _worker, args=(world, sizes, args.samples, out, variants), nprocs=world, join=False
        )
        while not context.join(timeout=1):
            if time.perf_counter() - began > args.timeout:
                for process in context.processes:
                    process.kill()
                sys.exit(f"run {run + 1} did not finish in {args.timeout} s: killed")
        runs.append(json.loads(Path(out).read_text(encoding="utf-8")))
        print(f"run {run + 1}/{args.runs}: {time.perf_counter() - began:.1f} s", flush=True)
        for label, per_variant in runs[-1].items():  # as it comes: a later hang loses nothing
            cells = [f"{v} {c.get('slowest_median_us', 0):.1f}" for v, c in per_variant.items()]
            print(f"  {label}: " + ", ".join(cells) + " us", flush=True)
    print(f"\n{world} GPUs, bf16 all_reduce, {args.runs} fresh runs, {args.samples} samples")
    print("size    variant        k    run medians (us, slowest rank)          spread  skew")
    for label in runs[0]:
        for variant in VARIANTS:
            if variant not in runs[0][label]:
                continue
            cells = [r[label].get(variant, {}) for r in runs]
            if any("slowest_median_us" not in c for c in cells):
                print(f"{label:7} {variant:13} {cells[0].get('error', 'missing')}")
                continue
            medians = [c["slowest_median_us"] for c in cells]
            spread = max(medians) / min(medians) - 1
            skew = statistics.median(
                max(c["rank_median_us"]) / min(c["rank_median_us"]) - 1 for c in cells
            )
            shown = " ".join(f"{m:7.1f}" for m in medians)
            print(f"{label:7} {variant:13} {cells[0]['k']:<4} {shown}  {spread:6.1%} {skew:6.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps({"world": world, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
