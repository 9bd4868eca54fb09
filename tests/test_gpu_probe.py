"""perf.gpu's logic without a GPU: backend choice, round-based sampling, calibration,
throughput, and the probe end to end on the host timer and on a scripted fake GPU.

Every clock here is a fake that moves by a fixed step when read, so stop rules, sample
values and flush sizes are exact; nothing depends on how fast this machine is.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_perfgate.model import Direction, Measurement
from pytest_perfgate.probes import ProbeUnavailable
from pytest_perfgate.probes import gpu as gpu_module
from pytest_perfgate.probes.gpu import (
    HOST_NO_TELEMETRY,
    MAX_FLUSH_BYTES,
    CupyBackend,
    GpuProbe,
    GpuUsageError,
    HostBackend,
    TorchBackend,
    Work,
    _Device,
    _select_or_skip,
    calibrate_calls,
    sample_gpu,
    select_backend,
    throughput,
)
from pytest_perfgate.probes.host import ProbeHost
from pytest_perfgate.probes.nvml import DeviceIdentity, Nvml, Reading
from pytest_perfgate.sampling import SamplingPlan

DATA = Path(__file__).parent / "data" / "nvml"
IDENTITY = DeviceIdentity.from_raw(
    json.loads((DATA / "h100_identity.json").read_text(encoding="utf-8"))["nvml"]
)
TELEMETRY = json.loads((DATA / "h100_telemetry.json").read_text(encoding="utf-8"))
MS = 1_000_000


class StepClock:
    """A nanosecond clock that moves on by ``step`` each time it is read."""

    def __init__(self, step: int = MS, start: int = 10**12) -> None:
        self.now = start
        self.step = step
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        value = self.now
        self.now += self.step
        return value


def nvml_is_absent() -> str:
    """NVML's error here; skips the test where NVML works (a machine with a GPU)."""
    problem = gpu_module.nvml_problem()
    if not problem:
        pytest.skip("NVML works on this machine")
    return problem


@pytest.fixture
def no_array_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither torch nor CuPy imported by the test, whatever else ran before."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.delitem(sys.modules, "cupy", raising=False)


@pytest.fixture
def not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch and CuPy cannot be imported (a None entry makes ``import`` fail)."""
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "cupy", None)


# -- backend choice --------------------------------------------------------------------------------


class FakeTensor:
    def __init__(self, index: int | None = None) -> None:
        self.is_cuda = index is not None
        self.device = types.SimpleNamespace(index=index)


def fake_torch(available: bool = False) -> Any:
    cuda = types.SimpleNamespace(is_available=lambda: available, current_device=lambda: 0)
    return types.SimpleNamespace(Tensor=FakeTensor, cuda=cuda)


class FakeArray:
    pass


def fake_cupy(count: int | Exception = 0) -> Any:
    def get_device_count() -> int:
        if isinstance(count, Exception):
            raise count
        return count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    device = types.SimpleNamespace(id=0, pci_bus_id="0000:00:06.0")
    return types.SimpleNamespace(
        ndarray=FakeArray, cuda=types.SimpleNamespace(runtime=runtime, Device=lambda: device)
    )


def test_no_library_and_no_sync_is_a_usage_error_asking_for_sync() -> None:
    with pytest.raises(GpuUsageError, match="pass sync=") as caught:
        select_backend((1, 2), {"x": 3}, modules={})
    assert "neither torch nor CuPy" in str(caught.value)


def test_a_sync_without_a_library_times_on_the_host() -> None:
    backend = select_backend((), {}, sync=lambda: None, modules={})
    assert isinstance(backend, HostBackend)
    assert (backend.name, backend.timer) == ("host", "host+sync")
    assert backend.device_label() == "host timer"
    assert backend.pci_bus_id() is None
    assert backend.visible_pci_bus_ids() == []
    assert backend.l2_bytes() is None


def test_backend_host_wins_over_a_loaded_torch() -> None:
    modules = {"torch": fake_torch()}
    backend = select_backend(
        (FakeTensor(0),), {}, backend="host", sync=lambda: None, modules=modules
    )
    assert isinstance(backend, HostBackend)


def test_a_torch_tensor_argument_chooses_torch() -> None:
    modules = {"torch": fake_torch(available=False), "cupy": fake_cupy(1)}
    for args, kwargs in [((FakeTensor(),), {}), ((), {"x": FakeTensor()})]:
        with pytest.raises(ProbeUnavailable, match="no CUDA device") as caught:
            select_backend(args, kwargs, sync=lambda: None, modules=modules)
        assert "torch.cuda.is_available() is False" in str(caught.value)


def test_a_loaded_torch_is_used_even_without_a_tensor_argument() -> None:
    with pytest.raises(ProbeUnavailable, match=r"torch\.cuda\.is_available"):
        select_backend((1,), {}, modules={"torch": fake_torch()})


def test_torch_on_the_tensors_device() -> None:
    modules = {"torch": fake_torch(available=True)}
    on_three = select_backend((1, FakeTensor(3)), {}, modules=modules)
    assert isinstance(on_three, TorchBackend)
    assert (on_three.name, on_three.timer) == ("torch", "cuda-event")
    assert on_three.device_label() == "cuda:3"
    assert select_backend((FakeTensor(None),), {}, modules=modules).device_label() == "cuda:0"


def test_a_cupy_array_argument_chooses_cupy_even_with_torch_loaded() -> None:
    modules = {"torch": fake_torch(available=True), "cupy": fake_cupy(0)}
    with pytest.raises(ProbeUnavailable, match="CuPy sees none"):
        select_backend((FakeArray(),), {}, modules=modules)
    modules["cupy"] = fake_cupy(RuntimeError("cudaErrorNoDevice"))
    with pytest.raises(ProbeUnavailable, match="no CUDA device: CuPy says RuntimeError"):
        select_backend((FakeArray(),), {}, modules=modules)
    backend = select_backend((FakeArray(),), {}, modules={"cupy": fake_cupy(2)})
    assert isinstance(backend, CupyBackend)
    assert backend.device_label() == "cuda:0"


def test_a_backend_asked_for_but_not_installed(not_installed: None) -> None:
    with pytest.raises(ProbeUnavailable, match="backend='torch' asked for, but torch is not"):
        select_backend((), {}, backend="torch")
    with pytest.raises(ProbeUnavailable, match="backend='cupy' asked for, but cupy is not"):
        select_backend((), {}, backend="cupy")


def test_select_or_skip_names_nvmls_error_where_there_is_no_gpu(no_array_library: None) -> None:
    problem = nvml_is_absent()
    assert "NVMLError_" in problem
    with pytest.raises(ProbeUnavailable) as caught:
        _select_or_skip((), {}, backend=None, sync=None)
    message = str(caught.value)
    assert message.startswith(problem)
    assert "NVMLError_" in message
    assert "pass sync=" in message  # and what the call lacked
    assert not isinstance(caught.value, GpuUsageError)


def test_select_or_skip_raises_the_usage_error_where_a_gpu_is(
    no_array_library: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu_module, "nvml_problem", lambda: "")
    with pytest.raises(GpuUsageError, match="pass sync="):
        _select_or_skip((), {}, backend=None, sync=None)
    host = _select_or_skip((), {}, backend=None, sync=lambda: None)
    assert isinstance(host, HostBackend)
    monkeypatch.setattr(gpu_module, "nvml_problem", lambda: "NVML unavailable: NVMLError_X")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ProbeUnavailable, match=r"^NVML unavailable: NVMLError_X \(backend="):
        _select_or_skip((), {}, backend="torch", sync=None)


def test_nvml_problem_when_nvml_sees_no_device(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = types.SimpleNamespace(device_count=lambda: 0)
    monkeypatch.setattr(Nvml, "open", classmethod(lambda cls: nvml))
    assert gpu_module.nvml_problem() == "no GPU: NVML sees no device"
    nvml.device_count = lambda: 2
    assert gpu_module.nvml_problem() == ""


# -- sampling --------------------------------------------------------------------------------------


class FakeEvent:
    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.synchronized = 0

    def record(self) -> None:
        pass

    def synchronize(self) -> None:
        self.synchronized += 1


class Script:
    """An enqueue whose samples last the scripted seconds in turn; logs what happens."""

    def __init__(self, *seconds: float, clock: StepClock | None = None, enqueue_ns: int = 0):
        self.seconds = seconds
        self.index = 0
        self.log: list[str] = []
        self.ends: list[FakeEvent] = []
        self.clock = clock
        self.enqueue_ns = enqueue_ns

    def __call__(self) -> tuple[FakeEvent, FakeEvent]:
        self.log.append("enqueue")
        if self.clock is not None:
            self.clock.now += self.enqueue_ns
        value = self.seconds[self.index % len(self.seconds)]
        self.index += 1
        end = FakeEvent(value)
        self.ends.append(end)
        return FakeEvent(), end

    def lead(self) -> None:
        self.log.append("lead")


def elapsed(start: Any, end: Any) -> float:
    return float(end.seconds)


def rounds(spans: tuple[tuple[int, int], ...]) -> list[tuple[tuple[int, int], int]]:
    """(span, samples) of each round, in order."""
    result: list[tuple[tuple[int, int], int]] = []
    for span in spans:
        if result and result[-1][0] == span:
            result[-1] = (span, result[-1][1] + 1)
        else:
            result.append((span, 1))
    return result


#: Spread evenly over [1, 2): the median's CI needs thousands of these to be 2% wide.
NOISY = tuple(1.0 + (i * 0.6180339887) % 1.0 for i in range(1000))


def test_stops_at_precision_only_after_min_time() -> None:
    clock = StepClock(0, start=0)  # a sample takes 10 ms of host time to enqueue
    plan = SamplingPlan(min_samples=3, max_time=60.0)
    script = Script(1e-3, clock=clock, enqueue_ns=10 * MS)
    samples = sample_gpu(script, elapsed, plan, calls=1, clock=clock, min_time=0.5)
    assert samples.stop_reason == "precision"
    ends = [span[1] for span, _ in rounds(samples.spans)]
    # Constant times are precise from the 3rd sample on; sampling went on to 0.5 s.
    assert ends[-1] >= 0.5e9
    assert ends[-2] < 0.5e9
    assert len(samples.times) > 3
    assert samples.times == (1e-3,) * len(samples.times)
    assert samples.elapsed == pytest.approx(ends[-1] / 1e9)


def test_stops_at_precision_only_after_min_samples() -> None:
    clock = StepClock(10 * MS, start=0)
    plan = SamplingPlan(min_samples=7, max_time=60.0)
    samples = sample_gpu(Script(1e-3), elapsed, plan, calls=1, clock=clock, min_time=0.0)
    assert samples.stop_reason == "precision"
    counts = [n for _, n in rounds(samples.spans)]
    assert sum(counts) >= 7
    assert sum(counts[:-1]) < 7


def test_min_time_is_capped_by_the_time_budget() -> None:
    clock = StepClock(10 * MS, start=0)
    plan = SamplingPlan(min_samples=2, max_time=0.1)
    samples = sample_gpu(Script(1e-3), elapsed, plan, calls=1, clock=clock, min_time=5.0)
    # min_time beyond max_time: the budget decides, and constant times are precise.
    assert samples.stop_reason in ("precision", "time budget")
    assert rounds(samples.spans)[-1][0][1] < 0.2e9


def test_stops_at_the_time_budget() -> None:
    clock = StepClock(0, start=0)
    plan = SamplingPlan(min_samples=3, max_time=0.2)
    script = Script(*NOISY, clock=clock, enqueue_ns=10 * MS)
    samples = sample_gpu(script, elapsed, plan, calls=1, clock=clock)
    assert samples.stop_reason == "time budget"
    ends = [span[1] for span, _ in rounds(samples.spans)]
    assert ends[-1] >= 0.2e9 > ends[-2]


def test_the_time_budget_waits_for_min_samples() -> None:
    clock = StepClock(10 * MS, start=0)
    plan = SamplingPlan(min_samples=40, max_time=0.01)
    samples = sample_gpu(Script(*NOISY), elapsed, plan, calls=1, clock=clock)
    assert samples.stop_reason == "time budget"
    counts = [n for _, n in rounds(samples.spans)]
    assert sum(counts) >= 40 > sum(counts[:-1])


def test_stops_at_the_sample_cap_exactly() -> None:
    clock = StepClock(10 * MS, start=0)
    plan = SamplingPlan(min_samples=5, max_samples=5, max_time=60.0)
    script = Script(*NOISY, clock=clock, enqueue_ns=1000)
    samples = sample_gpu(script, elapsed, plan, calls=1, clock=clock)
    assert samples.stop_reason == "sample cap"
    assert len(samples.times) == 5


def test_times_are_per_call() -> None:
    plan = SamplingPlan(min_samples=4, max_samples=4)
    samples = sample_gpu(Script(0.06), elapsed, plan, calls=3, clock=StepClock())
    assert samples.times == pytest.approx((0.02,) * 4)
    assert samples.calls == 3


def test_lead_once_per_round_and_one_wait_per_round() -> None:
    clock = StepClock(MS, start=0)
    script = Script(*NOISY, clock=clock, enqueue_ns=100_000)
    plan = SamplingPlan(min_samples=50, max_samples=50)
    samples = sample_gpu(script, elapsed, plan, calls=1, clock=clock, lead=script.lead)
    per_round = rounds(samples.spans)
    assert len(per_round) > 1
    assert script.log.count("lead") == len(per_round)
    # The lead comes first in each round, before that round's samples are enqueued.
    expected: list[str] = []
    for _, n in per_round:
        expected += ["lead"] + ["enqueue"] * n
    assert script.log == expected
    # The host waits once per round, on the round's last end event.
    waited = [i for i, end in enumerate(script.ends) if end.synchronized]
    assert all(script.ends[i].synchronized == 1 for i in waited)
    assert waited == [sum(n for _, n in per_round[: k + 1]) - 1 for k in range(len(per_round))]


def test_spans_are_the_host_span_of_each_round_and_rounds_fill_round_time() -> None:
    clock = StepClock(0, start=0)  # only the enqueues take host time: 1 ms a sample
    script = Script(*NOISY, clock=clock, enqueue_ns=MS)
    plan = SamplingPlan(min_samples=41, max_samples=41)
    samples = sample_gpu(script, elapsed, plan, calls=1, clock=clock, round_time=0.02)
    assert len(samples.spans) == len(samples.times) == 41
    per_round = rounds(samples.spans)
    # One sample to judge the host time, then rounds of 20 ms worth: 20 samples each.
    assert [n for _, n in per_round] == [1, 20, 20]
    for (start, end), n in per_round:
        assert end - start == n * MS
    starts = [span[0] for span, _ in per_round]
    ends = [span[1] for span, _ in per_round]
    assert all(e <= s for e, s in zip(ends, starts[1:], strict=False))  # rounds in order


def test_calibrate_calls_grows_until_a_sample_lasts_min_sample_time() -> None:
    asked: list[int] = []
    ends: list[FakeEvent] = []

    def enqueue_calls(per_call: float) -> Callable[[int], tuple[FakeEvent, FakeEvent]]:
        def enqueue(n: int) -> tuple[FakeEvent, FakeEvent]:
            asked.append(n)
            ends.append(FakeEvent(n * per_call))
            return FakeEvent(), ends[-1]

        return enqueue

    assert calibrate_calls(enqueue_calls(1e-4), elapsed, 1e-2) == 100
    assert asked == [1, 10, 100]  # at most 10x a step
    assert all(end.synchronized == 1 for end in ends)  # waited on before reading
    asked.clear()
    assert calibrate_calls(enqueue_calls(3e-3), elapsed, 1e-2) == 4
    assert asked == [1, 4]  # by the shortfall, 20% over
    asked.clear()
    assert calibrate_calls(enqueue_calls(0.5), elapsed, 1e-2) == 1
    asked.clear()
    assert calibrate_calls(enqueue_calls(4e-3), elapsed, 1e-2) == 3  # at least 2x a step
    assert asked == [1, 3]


def test_calibrate_calls_stops_at_its_cap_when_nothing_is_measured() -> None:
    def enqueue(n: int) -> tuple[FakeEvent, FakeEvent]:
        return FakeEvent(), FakeEvent(0.0)

    calls = calibrate_calls(enqueue, elapsed, 1e-3)
    assert 1 << 20 <= calls <= 10 << 20


# -- work and throughput ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("bytes", 0),
        ("bytes", -1.0),
        ("flops", math.nan),
        ("items", math.inf),
        ("peak_bytes_per_s", 0.0),
        ("peak_flops", -5.0),
    ],
)
def test_work_must_be_positive_and_finite(keyword: str, value: float) -> None:
    with pytest.raises(GpuUsageError, match=f"^{keyword}= must be a positive number"):
        Work(**{keyword: value})  # type: ignore[arg-type]


def test_work_link_must_be_known() -> None:
    with pytest.raises(GpuUsageError, match="link= must be 'hbm' or 'pcie', got 'nvlink'"):
        Work(bytes=1.0, link="nvlink")  # type: ignore[arg-type]


def test_throughput_against_the_hbm_peak() -> None:
    result = throughput(Work(bytes=2e9), 1e-3, IDENTITY)
    assert result["bytes_per_s"] == 2e12
    assert result["bandwidth_peak"] == pytest.approx(2 * 2619e6 * 5120 / 8, rel=1e-6)
    assert result["bandwidth_peak_source"] == "NVML: 2 x 2619 MHz x 5120 bit / 8 = 3352 GB/s"
    assert result["bandwidth_percent_of_peak"] == round(100 * 2e12 / (2 * 2619e6 * 5120 / 8), 2)
    assert set(result) == {
        "bytes_per_s",
        "bandwidth_peak",
        "bandwidth_peak_source",
        "bandwidth_percent_of_peak",
    }


def test_throughput_against_the_pcie_peak() -> None:
    result = throughput(Work(bytes=1e9, link="pcie"), 0.02, IDENTITY)
    assert result["bytes_per_s"] == 5e10
    assert result["bandwidth_peak_source"] == "PCIe gen5 x16, one direction = 63.0 GB/s"
    assert result["bandwidth_percent_of_peak"] == pytest.approx(79.35, abs=0.01)


def test_throughput_of_flops_and_items() -> None:
    result = throughput(Work(flops=1e12, items=4096, dtype="bf16"), 2e-3, IDENTITY)
    assert result["flops_per_s"] == 5e14
    assert result["compute_peak"] == pytest.approx(989.4e12)
    assert result["compute_peak_source"] == "datasheet: H100 80GB HBM3 dense bf16 = 989 TFLOP/s"
    assert result["compute_percent_of_peak"] == round(100 * 5e14 / 989.4e12, 2)
    assert result["items_per_s"] == 2.048e6
    assert "bytes_per_s" not in result
    # No dtype (or an unknown one): rate only, no peak invented.
    assert set(throughput(Work(flops=1e12), 2e-3, IDENTITY)) == {"flops_per_s"}
    assert set(throughput(Work(flops=1e12, dtype="fp64"), 2e-3, IDENTITY)) == {"flops_per_s"}


def test_user_peaks_override_nvml_and_the_datasheet() -> None:
    work = Work(bytes=2e9, flops=1e12, dtype="bf16", peak_bytes_per_s=4e12, peak_flops=1e15)
    result = throughput(work, 1e-3, IDENTITY)
    assert result["bandwidth_peak"] == 4e12
    assert result["bandwidth_peak_source"] == "given by the test (peak_bytes_per_s=)"
    assert result["bandwidth_percent_of_peak"] == 50.0
    assert result["compute_peak"] == 1e15
    assert result["compute_peak_source"] == "given by the test (peak_flops=)"
    assert result["compute_percent_of_peak"] == 100.0
    # Without NVML's identity, only the user's peaks are known.
    bare = throughput(work, 1e-3, None)
    assert bare["bandwidth_percent_of_peak"] == 50.0
    assert bare["compute_percent_of_peak"] == 100.0
    assert set(throughput(Work(bytes=2e9, flops=1.0), 1e-3, None)) == {
        "bytes_per_s",
        "flops_per_s",
    }


def test_throughput_of_no_work_is_empty() -> None:
    assert throughput(Work(), 1e-3, IDENTITY) == {}


def test_throughput_rounds_to_six_digits() -> None:
    assert throughput(Work(items=1.0), 3e-3, None)["items_per_s"] == 333.333


# -- the probe on the host timer -------------------------------------------------------------------


class Probe:
    """A GpuProbe whose measurements are collected instead of judged (as in
    benchmarks/gpu_check.py), on a fake clock of 100 ms a read."""

    def __init__(self, *, measure: bool = True, telemetry_hz: float = 50.0, **plan: Any) -> None:
        self.clock = StepClock(100 * MS)
        self.taken: list[Measurement] = []
        self.resamples: list[Callable[[], Measurement] | None] = []
        self.claimed: list[str] = []
        self.host = ProbeHost(
            measuring=measure,
            plan=SamplingPlan(**plan),
            claim=self.claimed.append,
            judge=self.judge,
            judge_at_finish=self.taken.append,
            clock=self.clock,
            test_id="tests/test_x.py::test_gpu",
        )
        self.gpu = GpuProbe(self.host, telemetry_hz=telemetry_hz)

    def judge(self, measurement: Measurement, resample: Callable[[], Measurement] | None) -> None:
        self.taken.append(measurement)
        self.resamples.append(resample)


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.args: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> int:
        self.calls += 1
        self.args.append((args, tuple(sorted(kwargs.items()))))
        return self.calls


@pytest.fixture
def host_on_fake_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[StepClock], None]:
    """Make the host backend read the probe's fake clock: exact sample values."""

    def use(clock: StepClock) -> None:
        monkeypatch.setattr(gpu_module, "HostBackend", lambda sync: HostBackend(sync, clock))

    return use


def test_host_timer_end_to_end(host_on_fake_clock: Callable[[StepClock], None]) -> None:
    probe = Probe(min_samples=5, max_time=60.0, loops=4)
    host_on_fake_clock(probe.clock)
    fn, sync = Counter(), Counter()
    result = probe.gpu(fn, 7, backend="host", sync=sync, items=1000, scale=2, name="kernel")
    assert result == fn.calls  # the result of the last call
    assert fn.args[-1] == ((7,), (("scale", 2),))  # other keywords go to fn
    assert sync.calls > 0
    assert probe.claimed == ["kernel"]
    [measurement] = probe.taken
    assert measurement.name == "kernel"
    assert measurement.unit == "s"
    assert measurement.direction is Direction.LOWER_IS_BETTER
    assert measurement.loops == 4
    # One clock step (100 ms) between the events of a sample of 4 calls.
    assert measurement.samples == pytest.approx((0.025,) * 5)
    assert measurement.stop_reason == "precision"
    # cold needs an L2 to flush: on the host timer it falls back to batch, and says so.
    assert measurement.machine == {"gpu.timer": "host+sync", "gpu.mode": "batch"}
    details = measurement.details["gpu"]
    assert details["backend"] == "host"
    assert details["timer"] == "host+sync"
    assert details["mode"] == "batch"
    assert details["device"] == "host timer"
    assert details["calls_per_sample"] == 4
    assert details["samples"] == 5
    assert details["telemetry"] is None
    assert details["telemetry_missing"] == HOST_NO_TELEMETRY
    assert "identity" not in details
    assert details["throughput"] == {"items_per_s": 40000.0}
    json.dumps(measurement.to_dict())  # stored with the baseline: plain JSON


def test_host_timer_on_the_real_clock() -> None:
    probe = Probe(min_samples=5, max_samples=5)
    fn = Counter()
    probe.gpu(fn, backend="host", sync=lambda: None, mode="batch")
    [measurement] = probe.taken
    assert measurement.stop_reason == "sample cap"
    assert len(measurement.samples) == 5
    assert all(s >= 0 for s in measurement.samples)
    assert measurement.machine == {"gpu.timer": "host+sync", "gpu.mode": "batch"}
    assert fn.calls >= 5 * (measurement.loops or 1)


def test_the_resample_takes_more_samples_of_the_same_calls(
    host_on_fake_clock: Callable[[StepClock], None],
) -> None:
    probe = Probe(min_samples=5, max_time=60.0, loops=3)
    host_on_fake_clock(probe.clock)
    fn = Counter()
    probe.gpu(fn, backend="host", sync=lambda: None)
    [resample] = probe.resamples
    assert resample is not None
    calls = fn.calls
    again = resample()
    assert fn.calls > calls
    assert again.loops == probe.taken[0].loops == 3
    assert again.name == probe.taken[0].name == "gpu"
    assert again.machine == probe.taken[0].machine
    assert len(probe.taken) == 1  # a resample is returned, not judged


def test_host_timer_refuses_graph_mode() -> None:
    probe = Probe(min_samples=3, max_samples=3)
    with pytest.raises(GpuUsageError, match="mode='graph' needs torch"):
        probe.gpu(lambda: None, backend="host", sync=lambda: None, mode="graph")


def test_invalid_mode_and_work_are_usage_errors_before_any_call() -> None:
    probe = Probe()
    fn = Counter()
    with pytest.raises(GpuUsageError, match="mode must be one of cold, batch, graph, got 'warm'"):
        probe.gpu(fn, mode="warm", backend="host", sync=lambda: None)  # type: ignore[arg-type]
    with pytest.raises(GpuUsageError, match=r"^bytes= must be a positive number"):
        probe.gpu(fn, bytes=-1, backend="host", sync=lambda: None)
    with pytest.raises(GpuUsageError, match=r"^link="):
        probe.gpu(fn, bytes=1, link="nvlink", backend="host", sync=lambda: None)  # type: ignore[arg-type]
    with pytest.raises(GpuUsageError, match="telemetry must be 'device', 'all' or 'off'"):
        probe.gpu(fn, telemetry="of", backend="host", sync=lambda: None)  # type: ignore[arg-type]
    assert fn.calls == 0
    assert probe.taken == []
    assert probe.claimed == []


def test_no_sync_and_no_gpu_skips_with_nvmls_error(no_array_library: None) -> None:
    nvml_is_absent()
    probe = Probe()
    fn = Counter()
    with pytest.raises(ProbeUnavailable, match="NVMLError_") as caught:
        probe.gpu(fn)
    assert "pass sync=" in str(caught.value)
    assert fn.calls == 0
    assert probe.claimed == []
    with pytest.raises(ProbeUnavailable, match="NVMLError_"):
        probe.gpu.require()
    with pytest.raises(ProbeUnavailable, match="NVMLError_"), probe.gpu.region("step"):
        pass


def test_require_with_a_library_that_is_not_installed(
    not_installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gpu_module, "nvml_problem", lambda: "")
    probe = Probe()
    probe.gpu.require()  # NVML sees a GPU: nothing else asked for
    probe.gpu.require("host")
    with pytest.raises(ProbeUnavailable, match="torch is not installed"):
        probe.gpu.require("torch")


def test_measure_false_just_calls_the_function() -> None:
    probe = Probe(measure=False)
    fn = Counter()
    assert probe.gpu(fn, 1, 2, k=3) == 1  # no backend, no sync needed
    assert fn.args == [((1, 2), (("k", 3),))]
    with probe.gpu.region("step"):
        pass
    probe.gpu.finish()
    assert probe.taken == []
    assert probe.claimed == []


def test_a_region_gives_one_measurement_with_a_sample_per_entry(
    host_on_fake_clock: Callable[[StepClock], None],
) -> None:
    probe = Probe()
    host_on_fake_clock(probe.clock)
    sync = Counter()
    for _ in range(4):
        with probe.gpu.region("step", backend="host", sync=sync, items=10):
            pass
    assert probe.taken == []  # judged when the test's call ends
    probe.gpu.finish()
    [measurement] = probe.taken
    assert probe.claimed == ["step"]  # claimed once, on first entry
    assert probe.resamples == [None]  # a region cannot be sampled again
    assert measurement.name == "step"
    assert measurement.unit == "s"
    assert measurement.samples == pytest.approx((0.1,) * 4)
    assert measurement.stop_reason == "block entries"
    assert measurement.machine == {"gpu.timer": "host+sync", "gpu.mode": "region"}
    details = measurement.details["gpu"]
    assert details["mode"] == "region"
    assert details["samples"] == 4
    assert details["calls_per_sample"] == 1
    assert details["telemetry"] is None
    assert details["telemetry_missing"] == HOST_NO_TELEMETRY
    assert details["throughput"] == {"items_per_s": 100.0}
    assert sync.calls == 8  # each entry: before its start and before its end


def test_regions_are_kept_apart_and_an_error_inside_propagates() -> None:
    probe = Probe()
    for name in ("a", "b", "a"):
        with probe.gpu.region(name, backend="host", sync=lambda: None):
            pass
    with (
        pytest.raises(KeyError, match="inside"),
        probe.gpu.region("b", backend="host", sync=lambda: None),
    ):
        raise KeyError("inside")
    probe.gpu.finish()
    assert [(m.name, len(m.samples)) for m in probe.taken] == [("a", 2), ("b", 1)]


def test_finish_without_regions_judges_nothing() -> None:
    probe = Probe()
    probe.gpu.finish()
    assert probe.taken == []


# -- the probe on a scripted GPU -------------------------------------------------------------------

L2 = 50 * 2**20
MATMUL_READINGS = [
    Reading.from_raw(raw) for raw in TELEMETRY["readings"] if raw["clock_event_reasons"] == 4
]


class ClockEvent:
    def __init__(self, clock: StepClock) -> None:
        self.clock = clock
        self.t_ns = 0

    def record(self) -> None:
        self.t_ns = self.clock()

    def synchronize(self) -> None:
        pass


class FakeGpu:
    """A backend whose events read the probe's fake clock."""

    name = "torch"
    timer = "cuda-event"

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock
        self.flushes: list[int] = []
        self.flushed = 0
        self.captured: int | None = None

    def event(self) -> ClockEvent:
        return ClockEvent(self.clock)

    def elapsed_s(self, start: ClockEvent, end: ClockEvent) -> float:
        return (end.t_ns - start.t_ns) / 1e9

    def synchronize(self) -> None:
        pass

    def l2_bytes(self) -> int | None:
        return L2

    def l2_flush(self, size: int) -> Callable[[], None]:
        self.flushes.append(size)

        def flush() -> None:
            self.flushed += 1

        return flush

    def capture(self, fn: Callable[[], object], calls: int) -> Callable[[], None]:
        self.captured = calls

        def replay() -> None:
            for _ in range(calls):
                fn()

        return replay

    def pci_bus_id(self) -> str | None:
        return "00000000:00:06.0"

    def visible_pci_bus_ids(self) -> list[str]:
        return ["00000000:00:06.0", "00000000:00:07.0"]

    def device_label(self) -> str:
        return "cuda:0"


class FakeNvml:
    """Answers every reading with the recorded matmul phase's readings in turn."""

    def __init__(self) -> None:
        self.index = 0

    def reading(self, handle: Any) -> Reading:
        reading = MATMUL_READINGS[self.index % len(MATMUL_READINGS)]
        self.index += 1
        return reading


@pytest.fixture
def scripted_gpu(monkeypatch: pytest.MonkeyPatch) -> Callable[[Probe, int], FakeGpu]:
    """perf.gpu on FakeGpu, with NVML telemetry from the recorded H100 on ``devices``."""

    def use(probe: Probe, devices: int = 1) -> FakeGpu:
        backend = FakeGpu(probe.clock)
        labels = ["00000000:00:06.0", "00000000:00:07.0"][:devices]
        device = _Device(
            identity=IDENTITY,
            handles=[f"handle{i}" for i in range(devices)],
            labels=labels,
            nvml=FakeNvml(),  # type: ignore[arg-type]
        )
        monkeypatch.setattr(gpu_module, "_select_or_skip", lambda *a, **k: backend)
        monkeypatch.setattr(gpu_module, "_nvml_device", lambda backend, every: device)
        return backend

    return use


def test_cold_mode_sizes_the_flush_to_outlast_the_hosts_enqueue(
    scripted_gpu: Callable[[Probe, int], FakeGpu],
) -> None:
    probe = Probe(min_samples=5, max_time=60.0)
    backend = scripted_gpu(probe, 1)
    fn = Counter()
    probe.gpu(fn, bytes=2e9)
    [measurement] = probe.taken
    # The flush takes one clock step on the GPU; the host needs 3 steps to enqueue a
    # flush and a sample, twice that must be covered: 2 x L2 grown 6 times.
    assert backend.flushes == [2 * L2, 12 * L2]
    details = measurement.details["gpu"]
    assert details["l2_flush_bytes"] == 12 * L2
    assert details["mode"] == "cold"
    assert details["calls_per_sample"] == 1
    assert measurement.loops == 1
    assert measurement.machine == {
        "gpu.timer": "cuda-event",
        "gpu.mode": "cold",
        **IDENTITY.machine_fields(),
    }
    assert backend.flushed >= 5  # one flush before each sample


def test_the_flush_is_capped(scripted_gpu: Callable[[Probe, int], FakeGpu]) -> None:
    probe = Probe(min_samples=3, max_time=60.0)
    backend = scripted_gpu(probe, 1)
    backend.l2_bytes = lambda: 256 * 2**20  # type: ignore[method-assign]
    probe.gpu(lambda: None)
    assert backend.flushes[-1] == MAX_FLUSH_BYTES


def test_telemetry_and_throughput_in_the_details(
    scripted_gpu: Callable[[Probe, int], FakeGpu],
) -> None:
    probe = Probe(min_samples=5, max_time=60.0, telemetry_hz=1e-6)
    scripted_gpu(probe, 1)
    probe.gpu(lambda: None, mode="batch", bytes=1e9, flops=1e12, dtype="bf16")
    [measurement] = probe.taken
    details = measurement.details["gpu"]
    # The sampler's first and last readings, both power-capped like every sample.
    assert details["telemetry"]["readings"] == 2
    assert details["telemetry"]["slowdown_reasons"] == {"SW power cap": 2}
    assert details["samples"] == len(measurement.samples)
    assert details["slowed_samples"] == details["samples"]
    assert details["slowdown_reasons"] == {"SW power cap": details["samples"]}
    clocks = [r.sm_clock_mhz for r in MATMUL_READINGS[:2]]
    assert details["sm_clock_mhz"] == pytest.approx(sum(clocks) / 2)  # type: ignore[arg-type]
    assert details["identity"] == IDENTITY.to_dict()
    assert "telemetry_missing" not in details
    assert "other_devices" not in details
    seconds = statistics.median(measurement.samples)
    rates = details["throughput"]
    assert rates["bytes_per_s"] == pytest.approx(1e9 / seconds, rel=1e-5)
    assert rates["bandwidth_peak_source"].startswith("NVML: 2 x 2619 MHz x 5120 bit")
    assert rates["compute_peak_source"].startswith("datasheet: H100 80GB HBM3 dense bf16")
    json.dumps(measurement.to_dict())


def test_telemetry_off_says_so(scripted_gpu: Callable[[Probe, int], FakeGpu]) -> None:
    probe = Probe(min_samples=3, max_time=60.0)
    scripted_gpu(probe, 1)
    probe.gpu(lambda: None, mode="batch", telemetry="off")
    details = probe.taken[0].details["gpu"]
    assert details["telemetry"] is None
    assert details["telemetry_missing"] == "telemetry turned off"
    assert "identity" in details  # who the GPU is does not need telemetry
    assert probe.taken[0].machine["gpu.name"] == IDENTITY.name


def test_telemetry_of_every_device(scripted_gpu: Callable[[Probe, int], FakeGpu]) -> None:
    probe = Probe(min_samples=3, max_time=60.0, telemetry_hz=1e-6)
    scripted_gpu(probe, 2)
    probe.gpu(lambda: None, mode="batch", telemetry="all")
    details = probe.taken[0].details["gpu"]
    assert details["telemetry"]["readings"] == 2
    assert set(details["other_devices"]) == {"00000000:00:07.0"}
    assert details["other_devices"]["00000000:00:07.0"]["readings"] == 2


def test_graph_mode_replays_the_calibrated_calls(
    scripted_gpu: Callable[[Probe, int], FakeGpu],
) -> None:
    probe = Probe(min_samples=4, max_time=60.0, loops=5)
    backend = scripted_gpu(probe, 1)
    fn = Counter()
    probe.gpu(fn, mode="graph")
    [measurement] = probe.taken
    assert backend.captured == measurement.loops == 5
    # One clock step between a sample's events, for 5 calls.
    assert measurement.samples == pytest.approx((0.02,) * len(measurement.samples))
    assert measurement.machine["gpu.mode"] == "graph"


def test_a_region_on_the_scripted_gpu_pools_its_telemetry(
    scripted_gpu: Callable[[Probe, int], FakeGpu],
) -> None:
    probe = Probe(telemetry_hz=1e-6)
    scripted_gpu(probe, 1)
    for _ in range(3):
        with probe.gpu.region("step", bytes=1e6):
            pass
    probe.gpu.finish()
    [measurement] = probe.taken
    details = measurement.details["gpu"]
    assert details["telemetry"]["readings"] == 6  # first and last of each entry
    assert details["slowed_samples"] == 3
    assert measurement.machine["gpu.mode"] == "region"
    assert measurement.machine["gpu.name"] == IDENTITY.name


H100_L2 = 50 * 2**20  # the H100's L2, as torch reports it (L2_cache_size)


def test_above_the_hbm_peak_the_l2_is_named_as_the_limit() -> None:
    """Issue 13: a 4 MB add in graph mode ran at 105% of HBM peak, from L2."""
    peak = 2 * 2619e6 * 5120 / 8  # NVML's HBM peak of the recorded H100
    work = Work(bytes=4 * 2**20)
    result = throughput(work, work.bytes / (1.05 * peak), IDENTITY, l2_bytes=H100_L2)  # type: ignore[operator]
    assert result["bandwidth_percent_of_peak"] == pytest.approx(105.0)
    assert result["bandwidth_above_peak"] == (
        "faster than HBM: the data fits in L2 (50 MiB), so L2 bandwidth is the limit"
    )
    unknown = throughput(work, work.bytes / (1.05 * peak), IDENTITY)  # type: ignore[operator]
    assert "the L2 size is not known" in unknown["bandwidth_above_peak"]
    within = throughput(work, work.bytes / (0.9 * peak), IDENTITY, l2_bytes=H100_L2)  # type: ignore[operator]
    assert "bandwidth_above_peak" not in within
