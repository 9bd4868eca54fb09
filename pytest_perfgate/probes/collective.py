"""Collective communication (all-reduce and friends) across processes, through torch.distributed.

One process per GPU (NCCL), or N CPU processes (gloo), each a ``python -m
pytest_perfgate.probes._collective_worker``. Every rank times the operation per message
size after a warm-up: CUDA events on the current stream with NCCL, a host timer with gloo
(its operations on CPU tensors return when they are done). The ranks agree on every
decision (iterations per sample, when to stop) over a separate gloo group, so they always
run the same number of operations; the time of a sample is the slowest rank's.

Sizes and bandwidths follow nccl-tests (doc/PERFORMANCE.md and src/*.cu there):

- the size ``S`` of an operation is nccl-tests' "size" column: the buffer of all_reduce and
  broadcast; the gathered output (n x each rank's input) of all_gather; the input (n x each
  rank's output) of reduce_scatter; each rank's whole send buffer (n x the part for each
  peer) of all_to_all. Elements are rounded down to a multiple of n where the buffer is
  split between ranks, as nccl-tests does;
- ``algbw = S / t`` and ``busbw = algbw x factor``, with the factor ``2(n-1)/n`` for
  all_reduce, ``(n-1)/n`` for all_gather, reduce_scatter and all_to_all, ``1`` for
  broadcast; GB/s are 10^9 bytes per second.

nccl-tests reports by default the *mean* of the ranks' times (``-a 1``); this probe takes
the slowest rank's (what ``-a 3`` reports): a collective is done when its last rank is.

This module does not import torch: the parent only checks that it is there and, for NCCL,
counts the GPUs; the workers import it.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, final

from ..model import BaselineEntry, Direction, Environment, Measurement
from ..sampling import SamplingPlan
from . import ProbeUnavailable
from .cpuidle import DEFAULT, cpus_kept_awake
from .host import ProbeHost
from .units import parse_size, size_label

#: The operations, by the name users pass (torch.distributed's names).
OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all")

#: dtype names users pass -> (torch attribute, bytes per element).
DTYPES: Mapping[str, tuple[str, int]] = {
    "bf16": ("bfloat16", 2),
    "bfloat16": ("bfloat16", 2),
    "fp16": ("float16", 2),
    "float16": ("float16", 2),
    "half": ("float16", 2),
    "fp32": ("float32", 4),
    "float32": ("float32", 4),
    "float": ("float32", 4),
    "fp64": ("float64", 8),
    "float64": ("float64", 8),
    "double": ("float64", 8),
    "int8": ("int8", 1),
    "uint8": ("uint8", 1),
    "int32": ("int32", 4),
    "int64": ("int64", 8),
}

#: Set in the environment of every process the probe starts, whatever the user's values:
#: NVLink multicast (NVLS, NVLink SHARP) stays off (see docs/how-to/measure-collectives.md).
MULTICAST_OFF: Mapping[str, str] = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}

#: Messages up to this size report their median time as latency (nccl-tests: "time is
#: useful with small sizes, to measure the constant overhead").
LATENCY_MAX_BYTES = 64 * 1024

#: Warm-up: at least this many operations per size (nccl-tests runs 5), and warmup_time.
WARMUP_MIN_ITERATIONS = 5
#: ...and at least this many seconds per size, whatever the test's warmup_time (0.05 s by
#: default, made for code in one process). Ranks are fresh processes whose first
#: operations pay for lazy set-up (NCCL's connections, gloo's pairs, page faults): with
#: 0.05 s, 2 gloo ranks here measured a 4 KiB all_reduce at 1.8-2.4 ms when it was the
#: first size and 0.3 ms when it came last; with 0.5 s, 0.23-0.33 ms either way.
WARMUP_MIN_SECONDS = 0.5
MAX_ITERATIONS = 1_000_000  #: per sample

#: The worker module, run with ``python -m``.
WORKER = "pytest_perfgate.probes._collective_worker"


class CollectiveError(RuntimeError):
    """A worker process failed or the run timed out; the message names the operation,
    the size, the rank and the end of that rank's output."""

    def __init__(self, message: str, pids: Sequence[int] = ()) -> None:
        super().__init__(message)
        #: The worker processes of the failed run (all stopped when this is raised).
        self.pids = tuple(pids)


def bus_factor(op: str, world_size: int) -> float:
    """busbw / algbw for ``op`` on ``world_size`` ranks (nccl-tests' doc/PERFORMANCE.md)."""
    n = world_size
    if op == "all_reduce":
        return 2.0 * (n - 1) / n
    if op in ("all_gather", "reduce_scatter", "all_to_all"):
        return (n - 1) / n
    if op == "broadcast":
        return 1.0
    raise ValueError(f"unknown collective {op!r}: choose one of {', '.join(OPS)}")


@final
@dataclass(frozen=True, slots=True)
class Layout:
    """The buffers of one operation on each rank, in elements, and its size ``S``."""

    input_elements: int
    output_elements: int  #: 0 where the operation works in place (all_reduce, broadcast)
    bytes: int  #: ``S`` in nccl-tests' sense, after rounding to whole elements per rank


def layout(op: str, size: int, itemsize: int, world_size: int) -> Layout:
    """Buffers for a message of ``size`` bytes (``S``), rounded down as nccl-tests does."""
    n = world_size
    elements = size // itemsize
    if op in ("all_reduce", "broadcast"):
        count = elements
        result = Layout(count, 0, count * itemsize)
    elif op in ("all_gather", "reduce_scatter", "all_to_all"):
        part = elements // n  # each rank's share (all_gather, reduce_scatter) or per peer
        if op == "all_gather":
            result = Layout(part, part * n, part * n * itemsize)
        elif op == "reduce_scatter":
            result = Layout(part * n, part, part * n * itemsize)
        else:
            result = Layout(part * n, part * n, part * n * itemsize)
    else:
        raise ValueError(f"unknown collective {op!r}: choose one of {', '.join(OPS)}")
    if result.bytes == 0:
        raise ValueError(
            f"perf.collective({op!r}): a message of {size} bytes holds no whole "
            f"{itemsize}-byte element per rank on {n} ranks"
        )
    return result


def bandwidths(op: str, size: int, seconds: float, world_size: int) -> tuple[float, float]:
    """(algbw, busbw) in GB/s (10^9 bytes/s) for ``size`` bytes (``S``) in ``seconds``."""
    algbw = size / seconds / 1e9
    return algbw, algbw * bus_factor(op, world_size)


def slowest_rank(rank_samples: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """Per sample, the slowest rank's time: ``rank_samples[i][r]`` is rank r in sample i."""
    return tuple(max(ranks) for ranks in rank_samples)


@final
@dataclass(frozen=True, slots=True)
class CollectiveSpec:
    """What the workers run (written to a JSON file for them)."""

    op: str
    sizes: tuple[int, ...]  #: requested bytes per message
    dtype: str  #: a key of DTYPES
    backend: str  #: "nccl" or "gloo"
    world_size: int
    warmup_time: float = 0.05
    min_sample_time: float = 0.001
    target_precision: float = 0.02
    min_samples: int = 20
    max_samples: int = 10_000
    max_time: float = 2.0  #: per size, once min_samples are taken
    #: Pinned operations per sample for each size (None: calibrate).
    iterations: tuple[int | None, ...] = ()
    timeout: float = 300.0  #: the whole run, start-up included
    #: For tests only: make a rank fail ("raise") or hang ("hang") at a size index,
    #: e.g. ``{"rank": 1, "size": 0, "kind": "raise"}``.
    fault: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown collective {self.op!r}: choose one of {', '.join(OPS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}: choose one of {', '.join(DTYPES)}")
        if self.backend not in ("nccl", "gloo"):
            raise ValueError(f"backend must be 'nccl' or 'gloo', got {self.backend!r}")
        if self.world_size < 2:
            raise ValueError(f"a collective needs at least 2 processes, got {self.world_size}")
        if not self.sizes:
            raise ValueError("perf.collective needs at least one message size")
        if self.iterations and len(self.iterations) != len(self.sizes):
            raise ValueError("iterations must give one value (or None) per size")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        for size in self.sizes:
            layout(self.op, size, DTYPES[self.dtype][1], self.world_size)

    @classmethod
    def from_plan(
        cls,
        op: str,
        sizes: Iterable[str | int],
        *,
        dtype: str,
        backend: str,
        world_size: int,
        plan: SamplingPlan,
        iterations: Sequence[int | None] = (),
        timeout: float | None = None,
    ) -> CollectiveSpec:
        """A spec sampling as ``plan`` says (the test's settings); the timeout defaults
        to a generous multiple of the time budget."""
        parsed = tuple(
            parse_size(s, argument="sizes", where=f"perf.collective({op!r})") for s in sizes
        )
        if len(set(parsed)) != len(parsed):
            raise ValueError(f"perf.collective({op!r}): a message size is given twice")
        if plan.loops is not None and not iterations:
            iterations = [plan.loops] * len(parsed)
        warmup = max(plan.warmup_time, WARMUP_MIN_SECONDS)
        budget = len(parsed) * (warmup + plan.max_time)
        return cls(
            op=op,
            sizes=parsed,
            dtype=dtype,
            backend=backend,
            world_size=world_size,
            warmup_time=warmup,
            min_sample_time=plan.min_sample_time,
            target_precision=plan.target_precision,
            min_samples=plan.min_samples,
            max_samples=plan.max_samples,
            max_time=plan.max_time,
            iterations=tuple(iterations),
            timeout=timeout if timeout is not None else 120.0 + 10.0 * budget,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fault"] = dict(self.fault)
        return data


@final
@dataclass(frozen=True, slots=True)
class SizeResult:
    """What the ranks measured for one message size."""

    size: int  #: requested bytes
    bytes: int  #: ``S`` after rounding (nccl-tests' size)
    iterations: int  #: operations per sample
    warmup_iterations: int
    stop_reason: str
    #: Seconds per operation: ``rank_samples[i][r]`` is rank r's time in sample i.
    rank_samples: tuple[tuple[float, ...], ...]
    #: How the operations of a sample were launched: "graph" (replayed from a CUDA graph),
    #: "eager" (one launch each; gloo, or where capture failed) and why, if it failed.
    launch: str = "eager"

    @property
    def label(self) -> str:
        return size_label(self.size)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SizeResult:
        return cls(
            size=int(data["size"]),
            bytes=int(data["bytes"]),
            iterations=int(data["iterations"]),
            warmup_iterations=int(data["warmup_iterations"]),
            stop_reason=str(data["stop_reason"]),
            rank_samples=tuple(tuple(float(t) for t in s) for s in data["rank_samples"]),
            launch=str(data.get("launch", "eager")),
        )


@final
@dataclass(frozen=True, slots=True)
class CollectiveRun:
    """The result of one launch: every size, and what the ranks ran on."""

    spec: CollectiveSpec
    sizes: tuple[SizeResult, ...]
    #: Per rank: {"gpu": name, "links": "nvlink18" | "pcie-gen5x16"} (GPU runs only;
    #: "links" only where NVML answered).
    devices: tuple[Mapping[str, str], ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)  #: torch, nccl
    idle: str = DEFAULT  #: "polling" where CPUs were kept out of idle states (cpuidle.py)

    @property
    def machine(self) -> dict[str, str]:
        """Machine-class fields: backend, world size, GPU model and links (with NVML),
        and whether the CPUs were kept awake."""
        machine = {
            "collective.backend": self.spec.backend,
            "collective.world_size": str(self.spec.world_size),
            "cpu.idle": self.idle,
        }
        names = [d["gpu"] for d in self.devices if d.get("gpu")]
        if names and len(names) == len(self.devices):
            machine["collective.gpu"] = ",".join(dict.fromkeys(names))
        links = [d["links"] for d in self.devices if d.get("links")]
        if links and len(links) == len(self.devices):
            machine["collective.links"] = ",".join(links)
        return machine

    @property
    def timer(self) -> str:
        if self.spec.backend == "nccl":
            return "CUDA events on the current stream"
        return "host perf_counter (gloo operations on CPU tensors are synchronous)"

    def measurements(self, name: str | None = None) -> list[Measurement]:
        """One measurement per size, named ``<name or op>.<size>`` (e.g. all_reduce.64MiB)."""
        return [self.measurement(result, name) for result in self.sizes]

    def measurement(self, result: SizeResult, name: str | None = None) -> Measurement:
        spec = self.spec
        n = spec.world_size
        samples = slowest_rank(result.rank_samples)
        median = statistics.median(samples)
        algbw, busbw = bandwidths(spec.op, result.bytes, median, n)
        rank_medians = [statistics.median(s[r] for s in result.rank_samples) for r in range(n)]
        # nccl-tests' default (-a 1): the mean of the ranks' times, per sample.
        mean_time = statistics.median(statistics.fmean(s) for s in result.rank_samples)
        details: dict[str, Any] = {
            "probe": "collective",
            "op": spec.op,
            "dtype": spec.dtype,
            "backend": spec.backend,
            "world_size": n,
            "bytes": result.bytes,
            "timer": self.timer,
            "launch": result.launch,
            "rank_time": "slowest rank per sample (nccl-tests -a 3)",
            "iterations": result.iterations,
            "warmup_iterations": result.warmup_iterations,
            "algbw_gbps": algbw,
            "busbw_gbps": busbw,
            "bus_factor": bus_factor(spec.op, n),
            "busbw_mean_rank_gbps": bandwidths(spec.op, result.bytes, mean_time, n)[1],
            "rank_median_us": [t * 1e6 for t in rank_medians],
            "environment": dict(MULTICAST_OFF),
            **{key: value for key, value in self.versions.items()},
        }
        if result.bytes <= LATENCY_MAX_BYTES:
            details["latency_us"] = median * 1e6
        return Measurement(
            name=f"{name or spec.op}.{result.label}",
            unit="s",
            direction=Direction.LOWER_IS_BETTER,
            samples=samples,
            loops=result.iterations,
            stop_reason=result.stop_reason,
            machine=self.machine,
            details=details,
        )

    @classmethod
    def from_dict(cls, spec: CollectiveSpec, data: Mapping[str, Any]) -> CollectiveRun:
        return cls(
            spec=spec,
            sizes=tuple(SizeResult.from_dict(s) for s in data["sizes"]),
            devices=tuple(
                {str(k): str(v) for k, v in d.items() if v is not None}
                for d in data.get("devices", ())
            ),
            versions={str(k): str(v) for k, v in data.get("versions", {}).items()},
        )


def measurement_names(
    op: str, sizes: Iterable[str | int], dtype: str, name: str | None = None
) -> list[str]:
    """The names of a request's measurements (``all_reduce.64MiB``...), after checking
    the request: known op and dtype, at least one size, no size twice."""
    if op not in OPS:
        raise ValueError(f"unknown collective {op!r}: choose one of {', '.join(OPS)}")
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    where = f"perf.collective({op!r})"
    labels = [size_label(parse_size(s, argument="sizes", where=where)) for s in sizes]
    if not labels:
        raise ValueError(f"perf.collective({op!r}): give at least one message size")
    if len(set(labels)) != len(labels):
        raise ValueError(f"perf.collective({op!r}): a message size is given twice")
    return [f"{name or op}.{label}" for label in labels]


def reusable_iterations(
    baseline: BaselineEntry | None,
    environment: Environment,
    *,
    code_hash: str | None,
    backend: str,
    world_size: int,
) -> int | None:
    """The operations per sample of ``baseline`` when this run can be compared with it:
    same test code, same session machine class, same backend and world size."""
    if baseline is None or baseline.loops is None:
        return None
    if baseline.code_hash not in (None, code_hash):
        return None
    machine = baseline.environment.machine
    if machine.get("collective.backend") != backend or machine.get("collective.world_size") != str(
        world_size
    ):
        return None
    session = {
        k: v for k, v in machine.items() if not k.startswith("collective.") and k != "cpu.idle"
    }
    if Environment(session).mismatches(environment):
        return None
    return baseline.loops


def resolve_backend(backend: str | None, processes: int | None) -> tuple[str, int]:
    """(backend, world size) for this machine, or ProbeUnavailable saying what is missing.

    ``backend=None`` means NCCL on every visible GPU; it needs at least two. gloo runs
    ``processes`` CPU processes (2 by default).
    """
    if backend not in (None, "nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl', 'gloo' or None, got {backend!r}")
    if processes is not None and processes < 2:
        raise ValueError(f"a collective needs at least 2 processes, got {processes}")
    if importlib.util.find_spec("torch") is None:
        raise ProbeUnavailable(
            "perf.collective needs PyTorch (torch.distributed): torch is not installed"
        )
    if backend == "gloo":
        return "gloo", processes or 2
    try:
        torch: Any = importlib.import_module("torch")
        dist: Any = importlib.import_module("torch.distributed")
    except ImportError as error:  # a broken install
        raise ProbeUnavailable(
            f"perf.collective: import torch failed ({type(error).__name__}: {error})"
        ) from None
    if not dist.is_available() or not dist.is_nccl_available():
        raise ProbeUnavailable(
            "perf.collective: this torch has no NCCL support (torch.distributed."
            "is_nccl_available() is False); pass backend='gloo' to measure CPU processes"
        )
    gpus = int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    wanted = processes or max(gpus, 2)
    if gpus < wanted:
        raise ProbeUnavailable(
            f"perf.collective: NCCL needs {wanted} CUDA GPUs, found {gpus}; "
            "pass backend='gloo' to measure CPU processes"
        )
    return "nccl", wanted


def worker_environment(
    base: Mapping[str, str], *, rank: int, world_size: int, port: int
) -> dict[str, str]:
    """The environment of one worker: the caller's, the rendezvous, and MULTICAST_OFF
    forced over whatever the caller set."""
    env = dict(base)
    env.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        PYTHONUNBUFFERED="1",
    )
    env.update(MULTICAST_OFF)
    return env


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_collective(spec: CollectiveSpec, *, python: str = sys.executable) -> CollectiveRun:
    """Launch ``spec.world_size`` workers, wait for them and return what they measured.

    Every worker is stopped before this returns or raises (failure, timeout, Ctrl-C). A
    rendezvous port taken in the meantime is retried once with another port. The CPUs
    are kept out of idle states meanwhile (cpuidle.py): ranks wake each other for every
    small message (gloo over TCP, NCCL's proxy threads), and a wake-up from a deep idle
    state can cost more than the message.
    """
    with (
        tempfile.TemporaryDirectory(prefix="perfgate-collective-") as tmp,
        cpus_kept_awake() as idle,
    ):
        for attempt in range(2):
            directory = Path(tmp) / f"run{attempt}"
            directory.mkdir()
            try:
                return replace(_launch(spec, directory, free_port(), python), idle=idle)
            except _PortTaken:
                continue
        raise CollectiveError(
            f"perf.collective({spec.op!r}): no free rendezvous port on localhost after 2 tries"
        )


class _PortTaken(Exception):
    pass


def _launch(spec: CollectiveSpec, directory: Path, port: int, python: str) -> CollectiveRun:
    spec_path = directory / "spec.json"
    spec_path.write_text(json.dumps(spec.to_dict()), encoding="utf-8")
    procs: list[subprocess.Popen[bytes]] = []
    logs = [directory / f"rank{rank}.log" for rank in range(spec.world_size)]
    try:
        for rank in range(spec.world_size):
            with logs[rank].open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [python, "-m", WORKER, str(spec_path), str(rank)],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=worker_environment(
                            os.environ, rank=rank, world_size=spec.world_size, port=port
                        ),
                        # Its own process group: Ctrl-C reaches only us, and we stop it.
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + spec.timeout
        while True:
            codes = [p.poll() for p in procs]
            if any(code not in (None, 0) for code in codes):
                time.sleep(0.2)  # let the other ranks report the same failure
                raise _failure(spec, directory, procs, logs)
            if all(code == 0 for code in codes):
                break
            if time.monotonic() > deadline:
                raise _timeout(spec, directory, procs, logs)
            time.sleep(0.02)
        result = directory / "result.json"
        if not result.exists():
            raise CollectiveError(
                f"perf.collective({spec.op!r}): rank 0 exited without a result" + _tail(logs[0]),
                [p.pid for p in procs],
            )
        return CollectiveRun.from_dict(spec, json.loads(result.read_text(encoding="utf-8")))
    finally:
        stop_processes(procs)


def stop_processes(procs: Sequence[subprocess.Popen[bytes]], grace: float = 3.0) -> None:
    """Terminate what still runs (its whole process group), kill it after ``grace``;
    whatever interrupts the polite part (a second Ctrl-C), the kill still happens."""
    running = [p for p in procs if p.poll() is None]
    try:
        for p in running:
            _signal(p, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                _signal(p, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=grace)


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, sig)  # the worker leads its own group (start_new_session)
        else:  # pragma: no cover - not POSIX
            proc.send_signal(sig)


def _read_error(directory: Path, rank: int) -> dict[str, Any] | None:
    path = directory / f"rank{rank}.error.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def _failure(
    spec: CollectiveSpec,
    directory: Path,
    procs: Sequence[subprocess.Popen[bytes]],
    logs: Sequence[Path],
) -> Exception:
    failed = [rank for rank, p in enumerate(procs) if p.poll() not in (None, 0)]
    errors = {rank: _read_error(directory, rank) for rank in failed}
    text = "\n".join(_log_text(logs[rank]) for rank in failed)
    if "EADDRINUSE" in text or "address already in use" in text.lower():
        stop_processes(procs)
        return _PortTaken()
    # Blame the rank that failed first; the others mostly lost their peer.
    first = min(
        failed, key=lambda r: (errors[r] or {}).get("time", math.inf) if errors[r] else math.inf
    )
    error = errors[first] or {}
    size = error.get("size")
    where = f" at size {size}" if size else ""
    what = error.get("error") or f"exit status {procs[first].returncode}"
    others = [r for r in failed if r != first]
    message = (
        f"perf.collective({spec.op!r}, backend={spec.backend!r}) failed on rank {first} "
        f"of {spec.world_size}{where}: {what}"
    )
    if others:
        message += f" (rank(s) {', '.join(map(str, others))} failed too)"
    return CollectiveError(message + _tail(logs[first], first), [p.pid for p in procs])


def _timeout(
    spec: CollectiveSpec,
    directory: Path,
    procs: Sequence[subprocess.Popen[bytes]],
    logs: Sequence[Path],
) -> Exception:
    stages = []
    for rank in range(spec.world_size):
        try:
            stage = (directory / f"rank{rank}.stage").read_text(encoding="utf-8").strip()
        except OSError:
            stage = "starting"
        stages.append(f"rank {rank}: {stage}")
    message = (
        f"perf.collective({spec.op!r}, backend={spec.backend!r}) timed out after "
        f"{spec.timeout:.0f} s ({'; '.join(stages)}); every worker was stopped"
    )
    return CollectiveError(message + _tail(logs[0], 0), [p.pid for p in procs])


def _log_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _tail(path: Path, rank: int = 0, lines: int = 20) -> str:
    text = _log_text(path).rstrip()
    if not text:
        return ""
    kept = "\n".join(text.splitlines()[-lines:])
    return f"\n--- rank {rank} output (last {lines} lines) ---\n{kept}"


class CollectiveProbe:
    """``perf.collective(...)``: one measurement per message size, judged as the run
    returns; a second look runs that size again with the same operations per sample."""

    def __init__(self, host: ProbeHost) -> None:
        self._host = host

    def __call__(
        self,
        op: str,
        sizes: Iterable[str | int],
        *,
        dtype: str,
        backend: str | None,
        processes: int | None,
        name: str | None,
        timeout: float | None,
    ) -> None:
        __tracebackhide__ = True
        host = self._host
        if isinstance(sizes, str | int):
            raise TypeError(f"perf.collective: sizes must be a list, e.g. sizes=[{sizes!r}]")
        requested = tuple(sizes)
        names = measurement_names(op, requested, dtype, name)
        for measurement_name in names:
            host.claim(measurement_name)
        if not host.measuring:
            return
        backend, world_size = resolve_backend(backend, processes)
        spec = CollectiveSpec.from_plan(
            op,
            requested,
            dtype=dtype,
            backend=backend,
            world_size=world_size,
            plan=host.plan,
            iterations=self._pinned(names, backend, world_size),
            timeout=timeout,
        )
        run = run_collective(spec)
        for size, measurement in zip(spec.sizes, run.measurements(name), strict=True):

            def resample(size: int = size, loops: int | None = measurement.loops) -> Measurement:
                again = replace(spec, sizes=(size,), iterations=(loops,))
                return run_collective(again).measurements(name)[0]

            host.judge(measurement, resample)

    def _pinned(self, names: Sequence[str], backend: str, world_size: int) -> list[int | None]:
        """Operations per sample of each size's comparable baseline; none at all when
        the marker pins loops= (it wins, as for perf(...)) or no baseline is comparable."""
        host = self._host
        if host.plan.loops is not None or host.environment is None:
            return []
        pinned = [
            reusable_iterations(
                host.baseline(measurement_name),
                host.environment,
                code_hash=host.code_hash,
                backend=backend,
                world_size=world_size,
            )
            for measurement_name in names
        ]
        return pinned if any(pinned) else []
