"""perf.collective: sizes, nccl-tests' bandwidth conventions, aggregation over ranks, the
fixture's wiring (with a fake launcher), process clean-up, and real gloo runs on two CPU
processes where torch is installed (CI does not install it: those tests skip)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from plugin_support import record_baselines, write_settings

from pytest_perfgate.fixture import PerfFixture
from pytest_perfgate.fixture import TestContext as Context  # not collected as a test class
from pytest_perfgate.gate import GatePolicy
from pytest_perfgate.model import BaselineEntry, Direction, Environment, Verdict
from pytest_perfgate.probes import ProbeUnavailable, collective
from pytest_perfgate.probes.collective import (
    MULTICAST_OFF,
    CollectiveError,
    CollectiveRun,
    CollectiveSpec,
    SizeResult,
    bandwidths,
    bus_factor,
    layout,
    measurement_names,
    reusable_iterations,
    run_collective,
    slowest_rank,
    worker_environment,
)
from pytest_perfgate.probes.units import parse_size, size_label
from pytest_perfgate.sampling import SamplingPlan
from pytest_perfgate.settings import Mode, PerfSpec, Settings
from pytest_perfgate.stats import summarize

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(
    not HAS_TORCH, reason="torch is not installed: the gloo runs need torch.distributed"
)

KIB = 2**10
MIB = 2**20
GIB = 2**30
ENV = Environment({"cpu": "Fake CPU"})
#: Tiny budgets for real gloo runs: these tests check plumbing, never timings.
QUICK = SamplingPlan(warmup_time=0.01, min_sample_time=0.0005, min_samples=3, max_time=0.05)


# -- sizes ----------------------------------------------------------------------------
WHERE = "perf.collective('all_reduce')"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1MiB", MIB),
        ("1GiB", GIB),
        ("64M", 64 * MIB),  # a bare letter is binary, as nccl-tests' -b 64M
        ("64MB", 64_000_000),  # SI: 10^6 (was 2^20 before sizes had one rule)
        ("4KiB", 4096),
        ("4kb", 4000),
        ("1.5KiB", 1536),
        ("512", 512),
        (" 2 GiB ", 2 * GIB),
        (8, 8),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text, argument="sizes", where=WHERE) == expected


@pytest.mark.parametrize("bad", ["", "MiB", "1XiB", "-1MiB", "0", 0, True, "1.3B", 1.5])
def test_parse_size_refuses(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"perf.collective\('all_reduce'\): sizes=") as error:
        parse_size(bad, argument="sizes", where=WHERE)
    assert repr(bad) in str(error.value)


@pytest.mark.parametrize(
    ("size", "label"),
    [
        (MIB, "1MiB"),
        (3 * GIB, "3GiB"),
        (4096, "4KiB"),
        (1536, "1536B"),
        (7, "7B"),
        (2**40, "1TiB"),
        (64_000_000, "64MB"),
        (4000, "4kB"),
        (1000 * KIB, "1000KiB"),  # not "1024kB": the smaller count of two exact labels
    ],
)
def test_size_label(size: int, label: str) -> None:
    assert size_label(size) == label
    assert parse_size(label, argument="sizes", where=WHERE) == size


def test_measurement_names_check_the_request() -> None:
    assert measurement_names("all_reduce", ["1MiB", 64 * MIB], "bf16") == [
        "all_reduce.1MiB",
        "all_reduce.64MiB",
    ]
    assert measurement_names("broadcast", ["1GiB"], "fp32", name="bc") == ["bc.1GiB"]
    with pytest.raises(ValueError, match="unknown collective 'allreduce'"):
        measurement_names("allreduce", ["1MiB"], "fp32")
    with pytest.raises(ValueError, match="unknown dtype 'bf8'"):
        measurement_names("all_reduce", ["1MiB"], "bf8")
    with pytest.raises(ValueError, match="given twice"):
        measurement_names("all_reduce", ["1MiB", "1024KiB"], "fp32")
    with pytest.raises(ValueError, match="at least one"):
        measurement_names("all_reduce", [], "fp32")


# -- nccl-tests' conventions ------------------------------------------------------------
@pytest.mark.parametrize(
    ("op", "n", "factor"),
    [
        ("all_reduce", 2, 1.0),
        ("all_reduce", 4, 1.5),
        ("all_reduce", 8, 1.75),
        ("all_gather", 2, 0.5),
        ("all_gather", 8, 0.875),
        ("reduce_scatter", 4, 0.75),
        ("all_to_all", 8, 0.875),
        ("broadcast", 2, 1.0),
        ("broadcast", 8, 1.0),
    ],
)
def test_bus_factor(op: str, n: int, factor: float) -> None:
    assert bus_factor(op, n) == pytest.approx(factor)


def test_bus_factor_refuses_an_unknown_op() -> None:
    with pytest.raises(ValueError, match="unknown collective"):
        bus_factor("reduce", 2)


def nccl_tests_bw(op: str, count: int, typesize: int, sec: float, nranks: int) -> float:
    """busbw as nccl-tests' src/*.cu GetBw compute it, from the count they pass
    (all_reduce, broadcast: the buffer's elements; the others: each rank's part)."""
    if op in ("all_reduce", "broadcast"):
        base = count * typesize / 1.0e9 / sec
    else:
        base = count * nranks * typesize / 1.0e9 / sec
    factor = {
        "all_reduce": 2.0 * (nranks - 1) / nranks,
        "broadcast": 1.0,
    }.get(op, (nranks - 1) / nranks)
    return base * factor


@pytest.mark.parametrize("op", collective.OPS)
@pytest.mark.parametrize("n", [2, 3, 8])
def test_bandwidths_match_nccl_tests_formulas(op: str, n: int) -> None:
    size, itemsize, seconds = 64 * MIB, 2, 0.004
    shape = layout(op, size, itemsize, n)
    algbw, busbw = bandwidths(op, shape.bytes, seconds, n)
    assert algbw == pytest.approx(shape.bytes / seconds / 1e9)
    count = {  # what nccl-tests passes to GetBw
        "all_reduce": shape.input_elements,
        "broadcast": shape.input_elements,
        "all_gather": shape.input_elements,  # each rank's part
        "reduce_scatter": shape.output_elements,  # each rank's part
        "all_to_all": shape.input_elements // n,  # the part for each peer
    }[op]
    assert busbw == pytest.approx(nccl_tests_bw(op, count, itemsize, seconds, n))


def test_layout_rounds_down_to_whole_parts_like_nccl_tests() -> None:
    # 1 MiB of fp32 on 3 ranks: 262144 elements, 87381 per rank.
    gather = layout("all_gather", MIB, 4, 3)
    assert (gather.input_elements, gather.output_elements) == (87381, 3 * 87381)
    assert gather.bytes == 3 * 87381 * 4
    scatter = layout("reduce_scatter", MIB, 4, 3)
    assert (scatter.input_elements, scatter.output_elements) == (3 * 87381, 87381)
    alltoall = layout("all_to_all", MIB, 4, 3)
    assert alltoall.input_elements == alltoall.output_elements == 3 * 87381
    reduce = layout("all_reduce", MIB, 4, 3)
    assert (reduce.input_elements, reduce.output_elements, reduce.bytes) == (MIB // 4, 0, MIB)
    assert layout("broadcast", 10, 4, 2).bytes == 8


def test_layout_refuses_a_message_too_small_to_split() -> None:
    with pytest.raises(ValueError, match="no whole 4-byte element per rank on 8 ranks"):
        layout("all_gather", 16, 4, 8)


def test_slowest_rank_takes_the_max_per_sample() -> None:
    assert slowest_rank([(1.0, 3.0), (2.5, 2.0), (4.0, 4.0)]) == (3.0, 2.5, 4.0)


# -- from the workers' result to measurements -------------------------------------------
def gloo_spec(**overrides: Any) -> CollectiveSpec:
    values: dict[str, Any] = {
        "op": "all_reduce",
        "sizes": (4096, 64 * MIB),
        "dtype": "fp32",
        "backend": "gloo",
        "world_size": 2,
    }
    return CollectiveSpec(**{**values, **overrides})


def fake_run(spec: CollectiveSpec, devices: tuple[dict[str, str], ...] = ()) -> CollectiveRun:
    sizes = tuple(
        SizeResult(
            size=size,
            bytes=size,
            iterations=4,
            warmup_iterations=5,
            stop_reason="precision",
            # rank 1 is the slow one: 10% slower than rank 0
            rank_samples=tuple((t, t * 1.1) for t in (size * 1e-9, size * 1.2e-9, size * 1e-9)),
        )
        for size in spec.sizes
    )
    return CollectiveRun(spec, sizes, devices, {"torch": "2.13.0"})


def test_measurements_are_named_per_size_and_take_the_slowest_rank() -> None:
    run = fake_run(gloo_spec())
    small, big = run.measurements()
    assert (small.name, big.name) == ("all_reduce.4KiB", "all_reduce.64MiB")
    assert big.unit == "s"
    assert big.direction is Direction.LOWER_IS_BETTER
    assert big.loops == 4
    assert big.stop_reason == "precision"
    t = 64 * MIB * 1e-9
    assert big.samples == pytest.approx((t * 1.1, t * 1.2 * 1.1, t * 1.1))
    assert big.machine == {
        "collective.backend": "gloo",
        "collective.world_size": "2",
        "cpu.idle": "default",
    }
    assert run.measurements(name="ar")[0].name == "ar.4KiB"


def test_details_hold_bandwidths_latency_and_how_it_was_measured() -> None:
    run = fake_run(gloo_spec())
    small, big = run.measurements()
    details = big.details
    t = 64 * MIB * 1e-9 * 1.1  # the slowest rank's median
    assert details["algbw_gbps"] == pytest.approx(64 * MIB / t / 1e9)
    assert details["busbw_gbps"] == pytest.approx(details["algbw_gbps"] * 1.0)  # 2(n-1)/n, n=2
    assert details["bus_factor"] == 1.0
    # nccl-tests' default takes the mean of the ranks' times: a higher busbw here.
    assert details["busbw_mean_rank_gbps"] == pytest.approx(64 * MIB / (t / 1.1 * 1.05) / 1e9)
    assert details["rank_median_us"] == pytest.approx([t / 1.1 * 1e6, t * 1e6])
    assert details["bytes"] == 64 * MIB
    assert details["world_size"] == 2
    assert details["environment"] == dict(MULTICAST_OFF)
    assert details["torch"] == "2.13.0"
    assert "latency_us" not in details
    assert small.details["latency_us"] == pytest.approx(4096e-9 * 1.1 * 1e6)
    assert "host perf_counter" in details["timer"]
    assert details["launch"] == "eager"
    json.dumps(details)  # plain JSON: stored with baselines


def test_how_operations_were_launched_travels_from_the_workers_result() -> None:
    data = {
        "size": 4096,
        "bytes": 4096,
        "iterations": 20,
        "warmup_iterations": 5,
        "stop_reason": "precision",
        "rank_samples": [[1e-5, 1.1e-5]],
    }
    # A result without the key (a worker of an older version) was launched eagerly.
    assert SizeResult.from_dict(data).launch == "eager"
    replayed = SizeResult.from_dict({**data, "launch": "graph"})
    run = CollectiveRun(gloo_spec(backend="nccl", sizes=(4096,)), (replayed,))
    assert run.measurements()[0].details["launch"] == "graph"


def test_machine_fields_name_gpus_and_links_only_when_every_rank_knows() -> None:
    spec = gloo_spec(backend="nccl")
    both = ({"gpu": "NVIDIA H200", "links": "nvlink18"},) * 2
    run = fake_run(spec, both)
    assert run.machine == {
        "collective.backend": "nccl",
        "collective.world_size": "2",
        "cpu.idle": "default",
        "collective.gpu": "NVIDIA H200",
        "collective.links": "nvlink18,nvlink18",
    }
    assert "CUDA events" in run.timer
    # Without NVML a rank reports no links: the field is left out, not guessed.
    data = {"sizes": [], "devices": [{"gpu": "A", "links": None}, {"gpu": "B", "links": None}]}
    partial = CollectiveRun.from_dict(spec, data)
    assert partial.machine == {
        "collective.backend": "nccl",
        "collective.world_size": "2",
        "cpu.idle": "default",
        "collective.gpu": "A,B",
    }


def test_run_round_trips_through_the_workers_json() -> None:
    spec = gloo_spec()
    run = fake_run(spec)
    data = {
        "sizes": [
            {
                "size": s.size,
                "bytes": s.bytes,
                "iterations": s.iterations,
                "warmup_iterations": s.warmup_iterations,
                "stop_reason": s.stop_reason,
                "rank_samples": [list(x) for x in s.rank_samples],
            }
            for s in run.sizes
        ],
        "devices": [],
        "versions": {"torch": "2.13.0"},
    }
    assert CollectiveRun.from_dict(spec, json.loads(json.dumps(data))) == run


# -- the spec ---------------------------------------------------------------------------
def test_spec_checks_its_values() -> None:
    with pytest.raises(ValueError, match="unknown collective"):
        gloo_spec(op="gather")
    with pytest.raises(ValueError, match="unknown dtype"):
        gloo_spec(dtype="fp8")
    with pytest.raises(ValueError, match="backend"):
        gloo_spec(backend="mpi")
    with pytest.raises(ValueError, match="at least 2 processes"):
        gloo_spec(world_size=1)
    with pytest.raises(ValueError, match="one value"):
        gloo_spec(iterations=(1,))
    with pytest.raises(ValueError, match="no whole"):
        gloo_spec(op="all_gather", sizes=(2,), world_size=4)


def test_spec_from_plan_takes_the_tests_sampling_settings() -> None:
    plan = SamplingPlan(warmup_time=0.2, min_samples=7, max_time=1.5, loops=3)
    spec = CollectiveSpec.from_plan(
        "broadcast", ["1MiB", 4096], dtype="bf16", backend="gloo", world_size=3, plan=plan
    )
    assert spec.sizes == (MIB, 4096)
    assert spec.iterations == (3, 3)  # the marker's loops=
    assert (spec.min_samples, spec.max_time) == (7, 1.5)
    # Fresh rank processes warm up for at least WARMUP_MIN_SECONDS, a longer plan's time
    # is kept.
    assert spec.warmup_time == collective.WARMUP_MIN_SECONDS
    longer = CollectiveSpec.from_plan(
        "broadcast",
        [4096],
        dtype="bf16",
        backend="gloo",
        world_size=3,
        plan=SamplingPlan(warmup_time=2.0),
    )
    assert longer.warmup_time == 2.0
    assert spec.timeout > 2 * (collective.WARMUP_MIN_SECONDS + 1.5)
    json.dumps(spec.to_dict())


def test_worker_environment_forces_multicast_off() -> None:
    user = {"NCCL_NVLS_ENABLE": "1", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "0", "HOME": "/h"}
    env = worker_environment(user, rank=1, world_size=4, port=29555)
    assert env["NCCL_NVLS_ENABLE"] == "0"
    assert env["TORCH_SYMM_MEM_DISABLE_MULTICAST"] == "1"
    assert env["NVSHMEM_DISABLE_NVLS"] == "1"
    assert (env["RANK"], env["WORLD_SIZE"], env["MASTER_PORT"]) == ("1", "4", "29555")
    assert env["MASTER_ADDR"] == "127.0.0.1"
    assert env["HOME"] == "/h"
    assert user["NCCL_NVLS_ENABLE"] == "1"  # the caller's mapping is left alone


def baseline(loops: int | None = 8, **machine: str) -> BaselineEntry:
    values = (1e-3, 1.1e-3, 0.9e-3)
    fields = {
        "collective.backend": "gloo",
        "collective.world_size": "2",
        "cpu.idle": "default",  # the probe's own field: not a reason to recalibrate
        **ENV.machine,
    }
    return BaselineEntry(
        unit="s",
        direction=Direction.LOWER_IS_BETTER,
        samples=values,
        summary=summarize(values),
        history=(),
        environment=Environment({**fields, **machine}),
        loops=loops,
        code_hash="abc",
    )


def test_iterations_are_reused_only_from_a_comparable_baseline() -> None:
    def reuse(entry: BaselineEntry | None, **kwargs: Any) -> int | None:
        options: dict[str, Any] = {"code_hash": "abc", "backend": "gloo", "world_size": 2}
        return reusable_iterations(entry, ENV, **{**options, **kwargs})

    assert reuse(baseline()) == 8
    assert reuse(baseline(**{"collective.links": "nvlink18,nvlink18"})) == 8
    assert reuse(None) is None
    assert reuse(baseline(loops=None)) is None
    assert reuse(baseline(), code_hash="changed") is None
    assert reuse(baseline(), world_size=4) is None
    assert reuse(baseline(), backend="nccl") is None
    assert reuse(baseline(cpu="Other CPU")) is None


def test_without_torch_the_probe_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # find_spec answers None
    for backend in (None, "nccl", "gloo"):
        with pytest.raises(ProbeUnavailable, match="torch is not installed"):
            collective.resolve_backend(backend, None)


def test_backend_and_processes_are_checked_first() -> None:
    with pytest.raises(ValueError, match="backend"):
        collective.resolve_backend("mpi", None)
    with pytest.raises(ValueError, match="at least 2 processes"):
        collective.resolve_backend("gloo", 1)


class FakeCuda:
    def __init__(self, gpus: int) -> None:
        self.gpus = gpus

    def is_available(self) -> bool:
        return self.gpus > 0

    def device_count(self) -> int:
        return self.gpus


class FakeModule:
    def __init__(self, **attributes: Any) -> None:
        self.__dict__.update(attributes)


def fake_torch(monkeypatch: pytest.MonkeyPatch, gpus: int, nccl: bool = True) -> None:
    torch = FakeModule(cuda=FakeCuda(gpus))
    dist = FakeModule(is_available=lambda: True, is_nccl_available=lambda: nccl)
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch.distributed", dist)
    monkeypatch.setattr(collective.importlib.util, "find_spec", lambda name: object())


@pytest.mark.parametrize(
    ("gpus", "backend", "processes", "expected"),
    [
        (8, None, None, ("nccl", 8)),
        (8, "nccl", 2, ("nccl", 2)),
        (0, "gloo", None, ("gloo", 2)),
        (8, "gloo", 3, ("gloo", 3)),
    ],
)
def test_resolve_backend(
    monkeypatch: pytest.MonkeyPatch,
    gpus: int,
    backend: str | None,
    processes: int | None,
    expected: tuple[str, int],
) -> None:
    fake_torch(monkeypatch, gpus)
    assert collective.resolve_backend(backend, processes) == expected


@pytest.mark.parametrize(("gpus", "processes"), [(0, None), (1, None), (2, 4)])
def test_nccl_without_enough_gpus_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, gpus: int, processes: int | None
) -> None:
    fake_torch(monkeypatch, gpus)
    with pytest.raises(ProbeUnavailable, match=f"NCCL needs . CUDA GPUs, found {gpus}"):
        collective.resolve_backend(None, processes)


def test_torch_without_nccl_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_torch(monkeypatch, 2, nccl=False)
    with pytest.raises(ProbeUnavailable, match="no NCCL support"):
        collective.resolve_backend("nccl", None)


# -- the fixture, with a fake launcher ---------------------------------------------------
class FakeLauncher:
    """Stands in for run_collective: records the specs it got; rank 1 is 10% slower."""

    def __init__(self, scale: float = 1.0) -> None:
        self.specs: list[CollectiveSpec] = []
        self.scale = scale

    def __call__(self, spec: CollectiveSpec) -> CollectiveRun:
        self.specs.append(spec)
        sizes = tuple(
            SizeResult(
                size=size,
                bytes=size,
                iterations=(spec.iterations[i] or 2) if spec.iterations else 2,
                warmup_iterations=5,
                stop_reason="precision",
                rank_samples=tuple(
                    (t * self.scale, t * self.scale * 1.1)
                    for t in (1e-3 * (1 + 0.01 * (k % 5)) for k in range(20))
                ),
            )
            for i, size in enumerate(spec.sizes)
        )
        return CollectiveRun(spec, sizes)


def make_perf(
    monkeypatch: pytest.MonkeyPatch,
    launcher: FakeLauncher,
    baselines: dict[str, BaselineEntry] | None = None,
    **settings: Any,
) -> PerfFixture:
    monkeypatch.setattr(collective, "run_collective", launcher)
    monkeypatch.setattr(collective, "resolve_backend", lambda backend, processes: ("gloo", 2))
    context = Context(
        test_id="tests/test_x.py::test_a",
        settings=Settings(**settings),
        spec=PerfSpec(),
        policy=GatePolicy(threshold=0.05),
        environment=ENV,
        baselines=(baselines or {}).get,
        code_hash="abc",
    )
    return PerfFixture(context)


def test_fixture_judges_one_measurement_per_size(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = FakeLauncher()
    perf = make_perf(monkeypatch, launcher)
    results = perf.collective("all_reduce", sizes=["4KiB", "1MiB"], dtype="bf16")
    assert [r.measurement.name for r in results] == ["all_reduce.4KiB", "all_reduce.1MiB"]
    assert [r.comparison.verdict for r in results] == [Verdict.NEW, Verdict.NEW]
    assert perf.results == results
    (spec,) = launcher.specs
    assert (spec.op, spec.dtype, spec.sizes, spec.iterations) == (
        "all_reduce",
        "bf16",
        (4096, MIB),
        (),
    )
    assert results[0].measurement.samples[0] == pytest.approx(1.1e-3)


def test_fixture_gates_against_the_baseline_and_resamples_one_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    launcher = FakeLauncher(scale=2.0)  # twice as slow as the baseline
    entry = replace(
        baseline(loops=7),
        samples=tuple(1.1e-3 * (1 + 0.01 * (k % 5)) for k in range(20)),
    )
    perf = make_perf(monkeypatch, launcher, {"all_reduce.1MiB": entry})
    (result,) = perf.collective("all_reduce", sizes=["1MiB"])
    assert result.comparison.verdict is Verdict.REGRESSED
    first, second = launcher.specs  # the second look ran that size again, same iterations
    assert first.iterations == (7,)  # reused from the comparable baseline
    assert (second.sizes, second.iterations) == ((MIB,), (7,))
    assert len(result.measurement.samples) == 40  # both looks pooled


def test_fixture_checks_names_before_launching(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = FakeLauncher()
    perf = make_perf(monkeypatch, launcher)
    perf.collective("broadcast", sizes=["4KiB"])
    with pytest.raises(ValueError, match="already taken"):
        perf.collective("broadcast", sizes=["4KiB"])
    with pytest.raises(TypeError, match="must be a list"):
        perf.collective("broadcast", sizes="1MiB")
    assert len(launcher.specs) == 1


def test_fixture_launches_nothing_in_mode_off(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = FakeLauncher()
    perf = make_perf(monkeypatch, launcher, mode=Mode.OFF)
    assert perf.collective("all_reduce", sizes=["1MiB"]) == ()
    assert launcher.specs == []


# -- processes are always cleaned up ------------------------------------------------------
def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every worker process the probe starts in this test."""
    procs: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real(*args, **kwargs)
        procs.append(proc)
        return proc

    monkeypatch.setattr(collective.subprocess, "Popen", recording)
    yield procs
    for proc in procs:  # never leave one behind, whatever the test did
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_stops_every_worker(
    monkeypatch: pytest.MonkeyPatch, started: list[subprocess.Popen[bytes]]
) -> None:
    real_sleep = collective.time.sleep
    presses: list[float] = []

    def interrupted(seconds: float) -> None:
        if not presses:  # Ctrl-C while waiting for the workers
            presses.append(seconds)
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(collective.time, "sleep", interrupted)
    spec = gloo_spec(timeout=60)
    with pytest.raises(KeyboardInterrupt):
        run_collective(spec, python=sys.executable)
    assert len(started) == 2
    assert all(p.returncode is not None and gone(p.pid) for p in started)


@needs_torch
def test_a_failed_rank_is_named_and_every_worker_stopped(
    started: list[subprocess.Popen[bytes]],
) -> None:
    spec = replace(
        gloo_spec(sizes=(4096, 8192), timeout=60),
        fault={"rank": 1, "size": 1, "kind": "raise"},
        warmup_time=0.0,
        min_samples=2,
        max_time=0.01,
    )
    with pytest.raises(CollectiveError) as failure:
        run_collective(spec)
    message = str(failure.value)
    assert "perf.collective('all_reduce', backend='gloo') failed on rank 1 of 2" in message
    assert "at size 8KiB: RuntimeError: injected failure (test)" in message
    assert "--- rank 1 output (last 20 lines) ---" in message
    assert failure.value.pids == tuple(p.pid for p in started)
    assert all(gone(pid) for pid in failure.value.pids)


@needs_torch
def test_a_hung_rank_times_out_and_every_worker_is_stopped(
    started: list[subprocess.Popen[bytes]],
) -> None:
    spec = replace(
        gloo_spec(sizes=(4096,), timeout=3), fault={"rank": 1, "size": 0, "kind": "hang"}
    )
    with pytest.raises(CollectiveError, match=r"timed out after 3 s \(rank 0: .*; rank 1: "):
        run_collective(spec)
    assert len(started) == 2
    assert all(gone(p.pid) for p in started)


# -- real runs with gloo ------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("op", collective.OPS)
def test_gloo_run(op: str) -> None:
    spec = CollectiveSpec.from_plan(
        op, ["4KiB", "64KiB"], dtype="fp32", backend="gloo", world_size=2, plan=QUICK
    )
    run = run_collective(spec)
    assert [s.size for s in run.sizes] == [4096, 65536]
    for result, measurement in zip(run.sizes, run.measurements(), strict=True):
        assert result.bytes == result.size  # divisible: nothing rounded away
        assert result.iterations >= 1
        assert result.warmup_iterations >= collective.WARMUP_MIN_ITERATIONS
        assert len(result.rank_samples) >= QUICK.min_samples
        assert all(len(ranks) == 2 for ranks in result.rank_samples)
        assert all(t > 0 and math.isfinite(t) for ranks in result.rank_samples for t in ranks)
        assert measurement.details["busbw_gbps"] > 0
    assert run.versions["torch"]
    assert run.machine["collective.backend"] == "gloo"
    assert run.machine["collective.world_size"] == "2"
    assert run.machine["cpu.idle"] in ("polling", "default")


SUITE = """
import sys

import pytest


@pytest.mark.perf
def test_allreduce(perf):
    results = perf.collective("all_reduce", sizes=["4KiB", "64KiB"], backend="gloo")
    assert [r.measurement.name for r in results] == ["all_reduce.4KiB", "all_reduce.64KiB"]
    assert all(r.measurement.details["busbw_gbps"] > 0 for r in results)


@pytest.mark.perf
def test_without_torch(perf, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    perf.collective("broadcast", sizes=["1MiB"])
"""


@needs_torch
def test_plugin_records_and_gates_collectives(pytester: pytest.Pytester) -> None:
    # One look: a second one would start the workers again (seconds, here).
    write_settings(pytester, max_time=0.05, min_samples=3, warmup_time=0.01, max_looks=1)
    pytester.makepyfile(test_comm=SUITE)
    recorded = record_baselines(pytester, "-rs")
    recorded.assert_outcomes(passed=1, skipped=1)
    recorded.stdout.fnmatch_lines(
        ["*SKIPPED*perf.collective needs PyTorch (torch.distributed): torch is not installed*"]
    )
    data = json.loads((pytester.path / "baselines" / "test_comm.json").read_text())
    text = json.dumps(data)
    assert '"all_reduce.4KiB"' in text
    assert '"all_reduce.64KiB"' in text
    assert '"collective.backend": "gloo"' in text
    # Warn mode: gloo on a shared machine may wander; what matters is that the baseline
    # is found and compared (same machine-class fields), not which way it went.
    result = pytester.runpytest("--perf-mode=warn", "-k", "allreduce")
    result.assert_outcomes(passed=1, deselected=1)
    output = result.stdout.str()
    assert "all_reduce.64KiB" in output
    assert "NEW" not in output
    assert "INCOMPARABLE" not in output


def test_plugin_skips_without_torch(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_comm=SUITE)
    result = pytester.runpytest("-rs", "-k", "without_torch")
    result.assert_outcomes(skipped=1, deselected=1)
    result.stdout.fnmatch_lines(["*SKIPPED*torch is not installed*"])


def test_probe_modules_import_without_pytest_or_torch() -> None:
    code = """
import importlib.abc
import sys


class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("pytest", "_pytest", "torch"):
            raise ImportError(f"{name} is blocked for this test")
        return None


sys.meta_path.insert(0, Blocked())
import pytest_perfgate.probes.collective
import pytest_perfgate.probes._collective_worker

loaded = sorted(m for m in sys.modules if m.partition(".")[0] in ("pytest", "_pytest", "torch"))
assert not loaded, loaded
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- topology from NVML (a fake pynvml: no GPU here) ------------------------------------
class FakeNVMLError(Exception):
    pass


class FakeNvml:
    """pynvml's surface that the worker uses, for one GPU with ``nvlinks`` active links."""

    NVMLError = FakeNVMLError
    NVML_FEATURE_ENABLED = 1
    NVML_NVLINK_MAX_LINKS = 36

    def __init__(self, nvlinks: int, *, init_fails: bool = False) -> None:
        self.nvlinks = nvlinks
        self.init_fails = init_fails
        self.uuids: list[bytes] = []
        self.shutdown = False

    def nvmlInit(self) -> None:
        if self.init_fails:
            raise FakeNVMLError("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.shutdown = True

    def nvmlDeviceGetHandleByUUID(self, uuid: bytes) -> str:
        self.uuids.append(uuid)
        return "handle"

    def nvmlDeviceGetNvLinkState(self, handle: str, link: int) -> int:
        if self.nvlinks == 0 or link >= 18:
            raise FakeNVMLError("Not Supported")
        return 1 if link < self.nvlinks else 0

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: str) -> int:
        return 5

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: str) -> int:
        return 16


class FakeProps:
    uuid = "5e1e0d8a-0000-1111-2222-333344445555"


@pytest.mark.parametrize(("nvlinks", "expected"), [(18, "nvlink18"), (0, "pcie-gen5x16")])
def test_links_from_nvml(monkeypatch: pytest.MonkeyPatch, nvlinks: int, expected: str) -> None:
    from pytest_perfgate.probes._collective_worker import _links

    nvml = FakeNvml(nvlinks)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert _links(FakeProps()) == expected
    assert nvml.uuids == [b"GPU-5e1e0d8a-0000-1111-2222-333344445555"]
    assert nvml.shutdown


def test_links_are_unknown_without_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_perfgate.probes._collective_worker import _links

    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(18, init_fails=True))
    assert _links(FakeProps()) is None
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert _links(FakeProps()) is None


# -- the ranks' decisions, without torch (fake ranks and a fake clock) -------------------
class FakeRanks:
    """Rank 0 of two; rank 1 is 10% slower. Every timed operation takes 10 us of a fake
    clock, so the worker's decisions run on scripted numbers alone."""

    def __init__(self, **spec: Any) -> None:
        from pytest_perfgate.probes._collective_worker import _Rank

        self.now = 0
        self.worker = _Rank.__new__(_Rank)  # no torch: only the decisions are exercised
        self.worker.spec = {
            "warmup_time": 0.01,
            "min_samples": 5,
            "max_samples": 1000,
            "max_time": 1.0,
            "target_precision": 0.02,
            **spec,
        }
        self.worker.clock = lambda: self.now
        self.worker.agree = lambda values: [values, [values[0] * 1.1, values[1]]]
        self.batches: list[int] = []

    def timed(self, operations: int) -> float:
        self.batches.append(operations)
        self.now += operations * 10_000
        return operations * 1e-5


def test_ranks_warm_up_by_the_shared_rule_on_the_slowest_rank() -> None:
    ranks = FakeRanks(warmup_time=0.001)
    warm = ranks.worker.warm_up(ranks.timed)
    # Doubling batches until 1 ms (100 operations) and 5 operations have passed.
    assert ranks.batches == [1, 2, 4, 8, 16, 32, 64]
    assert warm.calls == 127
    assert warm.seconds_per_call == pytest.approx(1.1e-5)  # the slower rank's


def test_ranks_stop_by_the_shared_rule_on_the_slowest_rank() -> None:
    ranks = FakeRanks(min_samples=5)
    rank_samples, reason = ranks.worker.sample(ranks.timed, 100)
    assert reason == "precision"  # steady times: precise at min_samples
    assert rank_samples == [[pytest.approx(1e-5), pytest.approx(1.1e-5)]] * 5
    ranks = FakeRanks(min_samples=5, max_time=0.004)  # 1 ms a sample
    noisy = iter(1e-5 * (1 + 0.5 * (k % 7)) for k in range(1000))
    ranks.worker.agree = lambda values: [[next(noisy), values[1]]] * 2
    rank_samples, reason = ranks.worker.sample(ranks.timed, 100)
    assert (len(rank_samples), reason) == (5, "time budget")
