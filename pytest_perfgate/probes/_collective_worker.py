"""One rank of perf.collective: ``python -m pytest_perfgate.probes._collective_worker SPEC RANK``.

Started by probes/collective.py, one process per rank. Rank 0 writes ``result.json`` beside
SPEC; a rank that fails writes ``rank<R>.error.json`` (the error, the size it was at and
when) and exits with status 1; ``rank<R>.stage`` always says what the rank is doing, for
the parent's timeout message.

The ranks decide together: every decision (when warm-up is over, operations per sample,
when to stop sampling) is taken from values all ranks exchanged over a gloo group of
their own, so every rank computes the same answer and runs the same number of operations.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..sampling import Clock, SamplingPlan, StopRule, WarmedUp, WarmUp, warm_up
from . import units
from .collective import DTYPES, MAX_ITERATIONS, WARMUP_MIN_ITERATIONS, layout, slowest_rank


class _Rank:
    def __init__(self, spec: dict[str, Any], rank: int, directory: Path) -> None:
        self.spec = spec
        self.rank = rank
        self.directory = directory
        self.size_label: str | None = None
        self.torch: Any = importlib.import_module("torch")
        self.dist: Any = importlib.import_module("torch.distributed")
        self.gpu = spec["backend"] == "nccl"
        self.device: Any = self.torch.device("cuda", rank) if self.gpu else self.torch.device("cpu")
        self.control: Any = None
        self.clock: Clock = time.perf_counter_ns  #: for the rank's own decisions (elapsed time)

    def stage(self, text: str) -> None:
        (self.directory / f"rank{self.rank}.stage").write_text(text, encoding="utf-8")

    # -- set-up ------------------------------------------------------------------------
    def init(self) -> None:
        spec, dist = self.spec, self.dist
        self.stage("rendezvous")
        if self.gpu:
            self.torch.cuda.set_device(self.device)
        options: dict[str, Any] = {
            "backend": spec["backend"],
            "init_method": "env://",
            "rank": self.rank,
            "world_size": spec["world_size"],
            "timeout": datetime.timedelta(seconds=spec["timeout"]),
        }
        if self.gpu:
            options["device_id"] = self.device  # eager NCCL init, torch >= 2.3
        try:
            dist.init_process_group(**options)
        except TypeError:
            options.pop("device_id", None)
            dist.init_process_group(**options)
        # Decisions travel over a CPU group of their own, never on the timed stream.
        self.control = dist.new_group(backend="gloo")

    def agree(self, values: list[float]) -> list[list[float]]:
        """Every rank's ``values``, on every rank (rank order)."""
        torch = self.torch
        mine = torch.tensor(values, dtype=torch.float64)
        everyone = [torch.empty_like(mine) for _ in range(self.spec["world_size"])]
        self.dist.all_gather(everyone, mine, group=self.control)
        return [t.tolist() for t in everyone]

    # -- one size ----------------------------------------------------------------------
    def operation(self, size: int) -> tuple[Callable[[], None], int]:
        """The collective on freshly allocated buffers, and its size S in bytes."""
        spec, torch, dist = self.spec, self.torch, self.dist
        op, n = spec["op"], spec["world_size"]
        dtype_name, itemsize = DTYPES[spec["dtype"]]
        dtype = getattr(torch, dtype_name)
        shape = layout(op, _inflated(size), itemsize, n)
        # Contents do not matter to the links; ones rather than zeros all the same.
        source = torch.ones(shape.input_elements, dtype=dtype, device=self.device)
        if op == "all_reduce":
            return (lambda: dist.all_reduce(source)), shape.bytes
        if op == "broadcast":
            return (lambda: dist.broadcast(source, 0)), shape.bytes
        target = torch.empty(shape.output_elements, dtype=dtype, device=self.device)
        if op == "all_gather":
            gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
            return (lambda: gather(target, source)), shape.bytes
        if op == "reduce_scatter":
            scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
            return (lambda: scatter(target, source)), shape.bytes
        return (lambda: dist.all_to_all_single(target, source)), shape.bytes

    def timer(self, fn: Callable[[], None]) -> Callable[[int], float]:
        """Seconds for ``k`` back-to-back operations, after all ranks met at a barrier."""
        torch, dist, control = self.torch, self.dist, self.control
        if self.gpu:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            token = torch.zeros(1, device=self.device)

            def timed_gpu(k: int) -> float:
                torch.cuda.synchronize()
                dist.barrier(group=control)
                # The CPU barrier releases the ranks tens to hundreds of microseconds
                # apart; an early rank's first operation would wait for the late one inside
                # its timed span. A one-element all_reduce on the timed stream ends at
                # about the same moment on every GPU: the start events follow it.
                dist.all_reduce(token)
                start.record()
                for _ in range(k):
                    fn()
                end.record()
                end.synchronize()  # wait on the end event, not the device
                return float(start.elapsed_time(end)) / 1e3

            return timed_gpu

        def timed_cpu(k: int) -> float:
            dist.barrier(group=control)
            t0 = time.perf_counter_ns()
            for _ in range(k):
                fn()
            return (time.perf_counter_ns() - t0) / 1e9

        return timed_cpu

    def measure(self, index: int, size: int) -> dict[str, Any]:
        """Warm up, size the samples and sample one message size, as all ranks agree."""
        spec = self.spec
        self.size_label = units.size_label(size)
        self.stage(f"size {self.size_label}: allocating")
        fn, nbytes = self.operation(size)
        self.inject_fault(index)
        timed = self.timer(fn)

        self.stage(f"size {self.size_label}: warm-up")
        warm = self.warm_up(timed)
        pinned = spec["iterations"][index] if spec["iterations"] else None
        if pinned is not None:
            iterations = int(pinned)
        else:
            per_op = max(warm.seconds_per_call, 1e-9)
            iterations = min(MAX_ITERATIONS, max(1, math.ceil(spec["min_sample_time"] / per_op)))

        replayed, launch = self.replayed(fn, iterations)
        self.stage(f"size {self.size_label}: sampling, {iterations} operations a sample")
        rank_samples, reason = self.sample(replayed or timed, iterations)
        return {
            "launch": launch,
            "size": size,
            "bytes": nbytes,
            "iterations": iterations,
            "warmup_iterations": warm.calls,
            "stop_reason": reason,
            "rank_samples": rank_samples,
        }

    def replayed(
        self, fn: Callable[[], None], iterations: int
    ) -> tuple[Callable[[int], float] | None, str]:
        """A timer replaying ``iterations`` operations from a CUDA graph, and "graph"; or
        None and why not. Launched one by one from Python, a small operation costs more
        CPU time than GPU time: an eager sample then times the launches, which move
        with the host's load from run to run (on 2 H200s a 1 MiB all_reduce took 43-57
        us a run that way, nccl-tests' graph-free loop 20-27 us). Replayed, the GPUs run
        the operations back to back, as a captured training step does."""
        if not self.gpu:
            return None, "eager"
        torch, dist, control = self.torch, self.dist, self.control
        graph: Any = None
        failure = ""
        try:
            graph = torch.cuda.CUDAGraph()
            torch.cuda.synchronize()
            with torch.cuda.graph(graph):
                for _ in range(iterations):
                    fn()
            torch.cuda.synchronize()
        except Exception as error:  # capture unsupported here: time eager launches instead
            failure = f"{type(error).__name__}: {error}".strip()[:200]
        # Replay only if every rank captured: the ranks must launch the same operations.
        if min(r[0] for r in self.agree([0.0 if failure else 1.0])) < 1.0:
            return None, f"eager (CUDA graph capture failed: {failure or 'on another rank'})"
        for _ in range(2):  # the first replays upload the graph
            graph.replay()
        torch.cuda.synchronize()
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        token = torch.zeros(1, device=self.device)

        def timed_graph(k: int) -> float:
            if k != iterations:
                raise ValueError(f"the graph holds {iterations} operations, asked for {k}")
            torch.cuda.synchronize()
            dist.barrier(group=control)
            dist.all_reduce(token)  # align the ranks on the GPUs (see timer)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            return float(start.elapsed_time(end)) / 1e3

        return timed_graph, "graph"

    def inject_fault(self, index: int) -> None:
        """For tests: fail or hang where the spec's ``fault`` says."""
        fault = self.spec.get("fault") or {}
        if fault.get("rank") == self.rank and fault.get("size") == index:
            if fault.get("kind") == "hang":
                self.stage(f"size {self.size_label}: hanging (injected)")
                time.sleep(3600)
            raise RuntimeError("injected failure (test)")

    def warm_up(self, timed: Callable[[int], float]) -> WarmedUp:
        """The sampling layer's warm-up, on the slowest rank's speed and time."""
        started = self.clock()

        def run(calls: int) -> tuple[int, float]:
            seconds = timed(calls)
            everyone = self.agree([seconds / calls, self.clock() - started])
            return int(max(r[1] for r in everyone)), max(r[0] for r in everyone)

        rule = WarmUp(
            self.spec["warmup_time"], min_calls=WARMUP_MIN_ITERATIONS, max_batch=MAX_ITERATIONS
        )
        return warm_up(run, rule)

    def sample(
        self, timed: Callable[[int], float], iterations: int
    ) -> tuple[list[list[float]], str]:
        """Every rank's seconds per operation, sample by sample, until the sampling
        layer's stop rule says stop: on the slowest rank's times and the longest
        elapsed time, the same numbers on every rank."""
        rule = StopRule(_plan(self.spec))
        rank_samples: list[list[float]] = []
        started = self.clock()
        while True:
            seconds = timed(iterations) / iterations
            everyone = self.agree([seconds, self.clock() - started])
            rank_samples.append([r[0] for r in everyone])
            elapsed_ns = int(max(r[1] for r in everyone))
            reason = rule.should_stop(
                len(rank_samples), elapsed_ns, lambda: slowest_rank(rank_samples)
            )
            if reason is not None:
                return rank_samples, reason

    # -- what ran where ----------------------------------------------------------------
    def describe(self) -> dict[str, str | None]:
        """This rank's GPU model and links (NVML), for the machine-class fields."""
        if not self.gpu:
            return {}
        torch = self.torch
        props = torch.cuda.get_device_properties(self.device)
        return {"gpu": str(props.name), "links": _links(props)}

    def versions(self) -> dict[str, str]:
        torch = self.torch
        versions = {"torch": str(torch.__version__)}
        if self.gpu:
            # An exotic build may not say: the version is information only.
            with contextlib.suppress(Exception):
                versions["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
        return versions


def _inflated(size: int) -> int:
    """``size``, or more bytes under the same name when a check injects a regression
    (benchmarks/collective_check.py sets PERFGATE_CHECK_INFLATE=1.1: 10% more data)."""
    return round(size * float(os.environ.get("PERFGATE_CHECK_INFLATE", "1")))


def _plan(spec: dict[str, Any]) -> SamplingPlan:
    """The stopping half of the test's plan, as the spec carries it."""
    return SamplingPlan(
        target_precision=spec["target_precision"],
        min_samples=spec["min_samples"],
        max_time=spec["max_time"],
        max_samples=spec["max_samples"],
    )


def _links(props: Any) -> str | None:
    """``"nvlink18"`` (active NVLinks) or ``"pcie-gen5x16"`` (the most the device and
    system allow: the current link drops at idle), from NVML; None without NVML."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        handle = _nvml_handle(pynvml, props)
        if handle is None:
            return None
        active = 0
        for link in range(int(getattr(pynvml, "NVML_NVLINK_MAX_LINKS", 18))):
            try:
                if pynvml.nvmlDeviceGetNvLinkState(handle, link) == pynvml.NVML_FEATURE_ENABLED:
                    active += 1
            except pynvml.NVMLError:  # not supported, or no such link
                continue
        if active:
            return f"nvlink{active}"
        try:
            generation = pynvml.nvmlDeviceGetMaxPcieLinkGeneration(handle)
            width = pynvml.nvmlDeviceGetMaxPcieLinkWidth(handle)
        except pynvml.NVMLError:
            return None
        return f"pcie-gen{generation}x{width}"
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def _nvml_handle(pynvml: Any, props: Any) -> Any:
    """NVML's handle of the device torch calls ``props``: by UUID, else by PCI bus id
    (NVML numbers devices its own way, blind to CUDA_VISIBLE_DEVICES)."""
    uuid = getattr(props, "uuid", None)
    if uuid is not None:
        text = str(uuid)
        with contextlib.suppress(pynvml.NVMLError):
            # bytes: older nvidia-ml-py releases pass the argument to ctypes unconverted
            return pynvml.nvmlDeviceGetHandleByUUID(
                (text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}").encode()
            )
    if hasattr(props, "pci_bus_id"):
        bus = f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
        with contextlib.suppress(pynvml.NVMLError):
            return pynvml.nvmlDeviceGetHandleByPciBusId(bus.encode())
    return None


def main(argv: list[str]) -> int:
    spec_path, rank = Path(argv[0]), int(argv[1])
    directory = spec_path.parent
    spec: dict[str, Any] = json.loads(spec_path.read_text(encoding="utf-8"))
    worker: _Rank | None = None
    try:
        worker = _Rank(spec, rank, directory)
        worker.init()
        sizes = [worker.measure(i, size) for i, size in enumerate(spec["sizes"])]
        worker.size_label = None
        worker.stage("reporting")
        devices: list[Any] = [None] * spec["world_size"]
        worker.dist.all_gather_object(devices, worker.describe(), group=worker.control)
        if rank == 0:
            result = {"sizes": sizes, "devices": devices, "versions": worker.versions()}
            partial = directory / "result.json.tmp"
            partial.write_text(json.dumps(result), encoding="utf-8")
            partial.replace(directory / "result.json")
        worker.dist.barrier(group=worker.control)
        worker.dist.destroy_process_group()
        worker.stage("done")
        return 0
    except BaseException as error:
        traceback.print_exc()
        report = {
            "error": f"{type(error).__name__}: {error}".strip(),
            "size": None if worker is None else worker.size_label,
            "time": time.time(),
        }
        (directory / f"rank{rank}.error.json").write_text(json.dumps(report), encoding="utf-8")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
