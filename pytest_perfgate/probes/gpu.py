"""GPU work: timed with CUDA events on the current stream, with NVML telemetry beside it.

How a sample is timed depends on the *mode*:

* ``cold`` (default): before each sample an L2-sized buffer is overwritten (outside the
  timed span), then one call is timed between two events. What a kernel costs when its
  inputs are not already in cache, as in a real pipeline.
* ``batch``: N back-to-back calls between two events, N calibrated so a sample lasts at
  least ``min_sample_time``. Warm caches; launch overhead included where the host cannot
  keep ahead of the GPU.
* ``graph``: the N calls captured once as a CUDA graph (torch) and replayed: launch
  overhead removed.

Samples are enqueued a round at a time and the host waits once per round, on the last
end event: waiting after every sample would leave the stream idle while the host
launches the next call, and that gap would be timed too.

The backend is the array library the test already uses (torch or CuPy); neither is
imported just to probe. Without either, a host timer around the call plus the user's
``sync`` is used, and without a ``sync`` the probe refuses: unsynchronized times of
asynchronous work measure the launch, not the work.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, final

from ..model import Direction, Measurement
from ..sampling import Clock, SamplingPlan, StopRule, WarmUp, grow_until, warm_up
from . import ProbeUnavailable
from .host import ProbeHost
from .nvml import (
    DeviceIdentity,
    Nvml,
    NvmlUnavailable,
    Peak,
    Reading,
    TelemetrySampler,
    flops_peak,
    hbm_peak,
    median_field,
    pcie_peak,
    span_reasons,
    summarize_readings,
)

#: How a GPU call is timed (``perf.gpu(mode=...)``); not the gate's Mode (gate, warn, off).
GpuTiming = Literal["cold", "batch", "graph"]
MODES: tuple[GpuTiming, ...] = ("cold", "batch", "graph")
BackendName = Literal["torch", "cupy", "host"]

#: The host waits on the GPU about this often while sampling (seconds).
ROUND_TIME = 0.02
#: A cold-mode flush lasts at least this many times the host's enqueue time of a sample.
FLUSH_LEAD = 2.0
MAX_FLUSH_BYTES = 1 << 30
HOST_NO_TELEMETRY = "host timer: no CUDA device to map to NVML"
#: GPU clocks ramp up from idle and settle under the power cap: warm up at least this long.
GPU_WARMUP_TIME = 1.0
#: Sample at least this long (seconds), so power-cap swings average out.
GPU_MIN_TIME = 0.5


class GpuUsageError(ValueError):
    """The probe was called in a way that cannot give honest numbers."""


# -- backends ---------------------------------------------------------------------------


class Event(Protocol):
    def record(self) -> None: ...
    def synchronize(self) -> None: ...


class Backend(Protocol):
    """What the sampler needs from an array library."""

    name: BackendName
    timer: str  #: "cuda-event" or "host+sync"

    def event(self) -> Event: ...
    def elapsed_s(self, start: Event, end: Event) -> float: ...
    def synchronize(self) -> None: ...
    def l2_flush(self, size: int) -> Callable[[], None]: ...
    def l2_bytes(self) -> int | None: ...
    def capture(self, fn: Callable[[], object], calls: int) -> Callable[[], None]: ...
    def pci_bus_id(self) -> str | None: ...
    def visible_pci_bus_ids(self) -> list[str]: ...
    def device_label(self) -> str: ...


class TorchBackend:
    """CUDA events on torch's current stream."""

    name: BackendName = "torch"
    timer = "cuda-event"

    def __init__(self, torch: Any, device: int | None = None) -> None:
        self._torch = torch
        if not torch.cuda.is_available():
            raise ProbeUnavailable("no CUDA device: torch.cuda.is_available() is False")
        self._device = torch.cuda.current_device() if device is None else device

    def event(self) -> Event:
        event: Event = self._torch.cuda.Event(enable_timing=True)
        return event

    def elapsed_s(self, start: Event, end: Event) -> float:
        return float(start.elapsed_time(end)) / 1e3  # type: ignore[attr-defined]

    def synchronize(self) -> None:
        self._torch.cuda.synchronize(self._device)

    def l2_bytes(self) -> int | None:
        size = getattr(self._torch.cuda.get_device_properties(self._device), "L2_cache_size", 0)
        return int(size) or None

    def l2_flush(self, size: int) -> Callable[[], None]:
        buffer = self._torch.empty(size, dtype=self._torch.uint8, device=f"cuda:{self._device}")
        return lambda: buffer.zero_()

    def capture(self, fn: Callable[[], object], calls: int) -> Callable[[], None]:
        torch = self._torch
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up on a side stream, as torch's docs ask
            fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(calls):
                fn()
        replay: Callable[[], None] = graph.replay
        return replay

    def pci_bus_id(self) -> str | None:
        return self._bus_id(self._device)

    def visible_pci_bus_ids(self) -> list[str]:
        ids = (self._bus_id(i) for i in range(self._torch.cuda.device_count()))
        return [bus_id for bus_id in ids if bus_id]

    def _bus_id(self, device: int) -> str | None:
        props = self._torch.cuda.get_device_properties(device)
        try:
            return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
        except AttributeError:  # older torch
            return None

    def device_label(self) -> str:
        return f"cuda:{self._device}"


class CupyBackend:
    """CUDA events on CuPy's current stream."""

    name: BackendName = "cupy"
    timer = "cuda-event"

    def __init__(self, cupy: Any) -> None:
        self._cupy = cupy
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as error:  # CUDARuntimeError without a driver
            raise ProbeUnavailable(f"no CUDA device: CuPy says {type(error).__name__}") from None
        if count < 1:
            raise ProbeUnavailable("no CUDA device: CuPy sees none")
        self._device = cupy.cuda.Device()

    def event(self) -> Event:
        event: Event = self._cupy.cuda.Event()
        return event

    def elapsed_s(self, start: Event, end: Event) -> float:
        return float(self._cupy.cuda.get_elapsed_time(start, end)) / 1e3

    def synchronize(self) -> None:
        self._device.synchronize()

    def l2_bytes(self) -> int | None:
        props = self._cupy.cuda.runtime.getDeviceProperties(self._device.id)
        return int(props.get("l2CacheSize", 0)) or None

    def l2_flush(self, size: int) -> Callable[[], None]:
        buffer = self._cupy.empty(size, dtype=self._cupy.uint8)
        return lambda: buffer.fill(0)

    def capture(self, fn: Callable[[], object], calls: int) -> Callable[[], None]:
        raise GpuUsageError("mode='graph' needs torch (CUDA graph capture); use 'batch' with CuPy")

    def pci_bus_id(self) -> str | None:
        return str(self._device.pci_bus_id)

    def visible_pci_bus_ids(self) -> list[str]:
        count = self._cupy.cuda.runtime.getDeviceCount()
        return [str(self._cupy.cuda.Device(i).pci_bus_id) for i in range(count)]

    def device_label(self) -> str:
        return f"cuda:{self._device.id}"


class _HostEvent:
    def __init__(self, clock: Clock, sync: Callable[[], object]) -> None:
        self._clock, self._sync = clock, sync
        self.t_ns = 0

    def record(self) -> None:
        self._sync()  # all work enqueued so far is done before the time is read
        self.t_ns = self._clock()

    def synchronize(self) -> None:
        pass


class HostBackend:
    """No array library: the host clock around the call, after the user's ``sync``."""

    name: BackendName = "host"
    timer = "host+sync"

    def __init__(self, sync: Callable[[], object], clock: Clock = time.perf_counter_ns) -> None:
        self._sync, self._clock = sync, clock

    def event(self) -> Event:
        return _HostEvent(self._clock, self._sync)

    def elapsed_s(self, start: Event, end: Event) -> float:
        assert isinstance(start, _HostEvent)
        assert isinstance(end, _HostEvent)
        return (end.t_ns - start.t_ns) / 1e9

    def synchronize(self) -> None:
        self._sync()

    def l2_bytes(self) -> int | None:
        return None

    def l2_flush(self, size: int) -> Callable[[], None]:
        raise GpuUsageError("mode='cold' needs torch or CuPy to flush the L2")

    def capture(self, fn: Callable[[], object], calls: int) -> Callable[[], None]:
        raise GpuUsageError("mode='graph' needs torch (CUDA graph capture)")

    def pci_bus_id(self) -> str | None:
        return None

    def visible_pci_bus_ids(self) -> list[str]:
        return []

    def device_label(self) -> str:
        return "host timer"


def select_backend(
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    backend: BackendName | None = None,
    sync: Callable[[], object] | None = None,
    modules: Mapping[str, Any] | None = None,
) -> Backend:
    """The backend for a call: the one named, else the library of the arguments, else
    the library the test has imported (torch first). Never imports one just to look."""
    loaded = sys.modules if modules is None else modules
    if backend is None:
        backend = _backend_of_arguments([*args, *kwargs.values()], loaded)
    if backend is None and loaded.get("torch") is not None:
        backend = "torch"
    if backend is None and loaded.get("cupy") is not None:
        backend = "cupy"
    if backend == "torch":
        torch = loaded.get("torch") or _import("torch")
        device = _tensor_device(torch, [*args, *kwargs.values()])
        return TorchBackend(torch, device)
    if backend == "cupy":
        return CupyBackend(loaded.get("cupy") or _import("cupy"))
    if sync is None:
        raise GpuUsageError(
            "neither torch nor CuPy is in use, so there is no CUDA event to time with: "
            "pass sync= (a function that waits for the GPU to finish) to time on the "
            "host clock; times without a sync would measure only the launch"
        )
    return HostBackend(sync)


def nvml_problem() -> str:
    """Why NVML sees no GPU here ("" when it sees one)."""
    try:
        count = Nvml.open().device_count()
    except NvmlUnavailable as error:
        return str(error)
    except Exception as error:  # an NVMLError from the count: no usable GPU either
        return f"no GPU: NVML could not count devices ({type(error).__name__})"
    return "" if count > 0 else "no GPU: NVML sees no device"


def _select_or_skip(
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    backend: BackendName | None,
    sync: Callable[[], object] | None,
) -> Backend:
    """select_backend, except that a machine without a GPU skips the test (with NVML's
    reason) instead of failing on the missing library or device."""
    try:
        return select_backend(args, kwargs, backend=backend, sync=sync)
    except (GpuUsageError, ProbeUnavailable) as error:
        problem = nvml_problem()
        if problem:
            raise ProbeUnavailable(f"{problem} ({error})") from None
        raise


def _backend_of_arguments(values: Sequence[Any], loaded: Mapping[str, Any]) -> BackendName | None:
    torch, cupy = loaded.get("torch"), loaded.get("cupy")
    for value in values:
        if torch is not None and isinstance(value, torch.Tensor):
            return "torch"
        if cupy is not None and isinstance(value, cupy.ndarray):
            return "cupy"
    return None


def _tensor_device(torch: Any, values: Sequence[Any]) -> int | None:
    for value in values:
        if isinstance(value, torch.Tensor) and value.is_cuda:
            return int(value.device.index)
    return None


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        raise ProbeUnavailable(f"backend={name!r} asked for, but {name} is not installed") from None


# -- sampling ---------------------------------------------------------------------------


def _median_of(measure: Callable[[], float], times: int = 5) -> float:
    return statistics.median([measure() for _ in range(times)])


@final
@dataclass(frozen=True, slots=True)
class GpuSamples:
    """Per-call seconds of each sample, and the host-time span of each sample's round."""

    times: tuple[float, ...]
    spans: tuple[tuple[int, int], ...]  #: (start_ns, end_ns) of host time, one per sample
    calls: int  #: calls per sample
    stop_reason: str
    elapsed: float  #: seconds the sampling took


def sample_gpu(
    enqueue: Callable[[], tuple[Event, Event]],
    elapsed_s: Callable[[Event, Event], float],
    plan: SamplingPlan,
    *,
    calls: int,
    clock: Clock = time.perf_counter_ns,
    round_time: float = ROUND_TIME,
    min_time: float = 0.0,
    lead: Callable[[], object] | None = None,
) -> GpuSamples:
    """Enqueue samples a round at a time, wait once per round, stop by the sampling
    layer's :class:`StopRule`, judged after each round: precision is trusted only after
    ``min_time`` (a GPU's clock swings under its power cap over tens of milliseconds, and
    a measurement that stops inside one swing lands wherever that swing was)."""
    times: list[float] = []
    spans: list[tuple[int, int]] = []
    started = clock()
    rule = StopRule(plan, min_time=min_time)
    per_round = 1
    while True:
        round_start = clock()
        if lead is not None:
            lead()  # untimed: the GPU is busy while the first sample's start is enqueued
        pairs = [enqueue() for _ in range(per_round)]
        pairs[-1][1].synchronize()
        round_end = clock()
        for start, end in pairs:
            times.append(elapsed_s(start, end) / calls)
            spans.append((round_start, round_end))
        n = len(times)
        reason = rule.should_stop(n, round_end - started, lambda: times)
        if reason is not None:
            break
        # Next round lasts about round_time, judged by this one's host time per sample.
        per_sample_ns = max(1, (round_end - round_start) // per_round)
        per_round = max(1, min(1000, int(round_time * 1e9 / per_sample_ns)))
        per_round = min(per_round, plan.max_samples - n)
    return GpuSamples(tuple(times), tuple(spans), calls, reason, (clock() - started) / 1e9)


def calibrate_calls(
    enqueue_calls: Callable[[int], tuple[Event, Event]],
    elapsed_s: Callable[[Event, Event], float],
    min_sample_time: float,
) -> int:
    """Calls per sample so one sample of back-to-back calls lasts ``min_sample_time``."""

    def measure(calls: int) -> float:
        start, end = enqueue_calls(calls)
        end.synchronize()
        return elapsed_s(start, end)

    return grow_until(measure, min_sample_time, 1 << 20)[0]


# -- throughput -------------------------------------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class Work:
    """What one call does, as the user declares it."""

    bytes: float | None = None  #: bytes moved (read + written)
    flops: float | None = None
    items: float | None = None
    link: Literal["hbm", "pcie"] = "hbm"  #: which peak the bytes are measured against
    dtype: str | None = None  #: for the datasheet FLOP peak ("bf16", "fp16", "fp8", "tf32")
    peak_bytes_per_s: float | None = None  #: user override of the bandwidth peak
    peak_flops: float | None = None  #: user override of the FLOP peak

    def __post_init__(self) -> None:
        for name in ("bytes", "flops", "items", "peak_bytes_per_s", "peak_flops"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise GpuUsageError(f"{name}= must be a positive number, got {value!r}")
        if self.link not in ("hbm", "pcie"):
            raise GpuUsageError(f"link= must be 'hbm' or 'pcie', got {self.link!r}")


def throughput(
    work: Work, seconds: float, identity: DeviceIdentity | None, *, l2_bytes: int | None = None
) -> dict[str, Any]:
    """Rates at ``seconds`` per call, and percent of the physical peak with its source;
    above 100%, which limit applies instead (``l2_bytes``: the device's L2, when known)."""
    result: dict[str, Any] = {}
    if work.bytes is not None:
        rate = work.bytes / seconds
        peak = _bandwidth_peak(work, identity)
        result["bytes_per_s"] = _round(rate)
        result.update(_against(peak, rate, "bandwidth"))
        if peak is not None and rate > peak.value:
            result["bandwidth_above_peak"] = _above_bandwidth_peak(work, l2_bytes)
    if work.flops is not None:
        rate = work.flops / seconds
        peak = (
            Peak(work.peak_flops, "given by the test (peak_flops=)")
            if work.peak_flops
            else (flops_peak(identity, work.dtype) if identity else None)
        )
        result["flops_per_s"] = _round(rate)
        result.update(_against(peak, rate, "compute"))
    if work.items is not None:
        result["items_per_s"] = _round(work.items / seconds)
    return result


def _bandwidth_peak(work: Work, identity: DeviceIdentity | None) -> Peak | None:
    if work.peak_bytes_per_s:
        return Peak(work.peak_bytes_per_s, "given by the test (peak_bytes_per_s=)")
    if identity is None:
        return None
    if work.link == "pcie":
        return pcie_peak(identity.pcie_gen, identity.pcie_width)
    return hbm_peak(identity)


def _against(peak: Peak | None, rate: float, kind: str) -> dict[str, Any]:
    if peak is None:
        return {}
    return {
        f"{kind}_peak": _round(peak.value),
        f"{kind}_peak_source": peak.source,
        f"{kind}_percent_of_peak": round(100 * rate / peak.value, 2),
    }


def _above_bandwidth_peak(work: Work, l2_bytes: int | None) -> str:
    """Why a rate beats the bandwidth peak: the data did not all cross that link."""
    if work.peak_bytes_per_s or work.link != "hbm":
        return "faster than the peak: the data did not all cross the link (check bytes=)"
    if l2_bytes is None:
        return "faster than HBM: the data is served from a cache (the L2 size is not known)"
    l2 = f"{l2_bytes / 2**20:.3g} MiB"
    if work.bytes is not None and work.bytes <= l2_bytes:
        return f"faster than HBM: the data fits in L2 ({l2}), so L2 bandwidth is the limit"
    return f"faster than HBM: part of the data stays in L2 ({l2}) between calls"


def _round(value: float) -> float:
    return float(f"{value:.6g}")


# -- the probe ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Device:
    """The measured GPU as NVML sees it (all None without NVML)."""

    identity: DeviceIdentity | None = None
    handles: list[Any] = field(default_factory=list)  #: measured device first
    labels: list[str] = field(default_factory=list)
    nvml: Nvml | None = None
    missing: str = ""  #: why there is no telemetry


def _device_of(backend: Backend, telemetry: str) -> _Device:
    """The GPU ``backend`` runs on as NVML sees it (with ``telemetry="all"``, every
    visible GPU after it); the host timer maps to no device."""
    if backend.name == "host":
        return _Device(missing=HOST_NO_TELEMETRY)
    return _nvml_device(backend, telemetry == "all")


def _nvml_device(backend: Backend, every_device: bool) -> _Device:
    try:
        nvml = Nvml.open()
    except NvmlUnavailable as error:
        return _Device(missing=str(error))
    import pynvml

    bus_ids = [backend.pci_bus_id()]
    if every_device:
        bus_ids += [b for b in backend.visible_pci_bus_ids() if b != bus_ids[0]]
    device = _Device(nvml=nvml)
    for bus_id in bus_ids:
        try:
            handle = (
                nvml.handle_by_pci_bus_id(bus_id) if bus_id is not None else nvml.handle_by_index(0)
            )
        except pynvml.NVMLError as error:
            if not device.handles:
                return _Device(missing=f"NVML has no device at {bus_id}: {type(error).__name__}")
            continue
        device.handles.append(handle)
        device.labels.append(bus_id or "0")
    device.identity = nvml.identity(device.handles[0])
    return device


@final
@dataclass(frozen=True, slots=True)
class _Enqueuer:
    """How one sample of a mode is enqueued."""

    enqueue: Callable[[], tuple[Event, Event]]  #: enqueues one sample, returns its events
    lead: Callable[[], object] | None  #: untimed work before each round (see sample_gpu)
    calls: int  #: calls per sample
    flush_bytes: int = 0  #: cold mode: bytes overwritten before each sample


class GpuProbe:
    """``perf.gpu``: call it to measure a GPU callable, or time a region with ``region``."""

    def __init__(self, host: ProbeHost, *, telemetry_hz: float = 50.0) -> None:
        self._host = host
        self._telemetry_hz = telemetry_hz  #: NVML readings a second while sampling; 0: none
        self._regions: dict[str, _RegionRecord] = {}

    def require(self, backend: BackendName | None = None) -> None:
        """Skip the test unless a GPU is here (and, with ``backend``, that library can
        use it). The reason names what is missing: the NVML error, the library, the device."""
        __tracebackhide__ = True
        problem = nvml_problem()
        if problem:
            raise ProbeUnavailable(problem)
        if backend in ("torch", "cupy"):
            select_backend((), {}, backend=backend)

    def __call__(
        self,
        fn: Callable[..., Any],
        /,
        *args: Any,
        mode: GpuTiming = "cold",
        name: str = "gpu",
        bytes: float | None = None,
        flops: float | None = None,
        items: float | None = None,
        link: Literal["hbm", "pcie"] = "hbm",
        dtype: str | None = None,
        peak_bytes_per_s: float | None = None,
        peak_flops: float | None = None,
        backend: BackendName | None = None,
        sync: Callable[[], object] | None = None,
        telemetry: Literal["device", "all", "off"] = "device",
        **kwargs: Any,
    ) -> Any:
        """Measure ``fn(*args, **kwargs)`` on the GPU as measurement ``name``; returns the
        result of its last call. Keywords of the probe are listed above; every other
        keyword goes to ``fn``."""
        __tracebackhide__ = True
        if mode not in MODES:
            raise GpuUsageError(f"perf.gpu: mode must be one of {', '.join(MODES)}, got {mode!r}")
        _check_telemetry(telemetry)
        work = Work(bytes, flops, items, link, dtype, peak_bytes_per_s, peak_flops)
        if not self._host.measuring:
            return fn(*args, **kwargs)
        chosen = _select_or_skip(args, kwargs, backend=backend, sync=sync)
        asked = mode
        if chosen.name == "host" and mode == "cold":
            mode = "batch"  # no L2 to flush without a library; said in the details
        if mode == "graph" and chosen.name != "torch":
            raise GpuUsageError(
                f"perf.gpu: mode='graph' needs torch (CUDA graph capture), not {chosen.name}; "
                "use mode='batch'"
            )
        self._host.claim(name)
        result: list[Any] = [None]

        def call() -> None:
            result[0] = fn(*args, **kwargs)

        sample = self._prepare(name, call, chosen, mode, work, telemetry)
        if asked != mode:
            measured = sample

            def sample() -> Measurement:
                m = measured()
                note = "cold asked for, but the host timer cannot flush the L2: batch used"
                return replace(m, details={"gpu": {**m.details["gpu"], "mode_note": note}})

        self._host.judge(sample(), sample)
        return result[0]

    def _prepare(
        self,
        name: str,
        call: Callable[[], None],
        backend: Backend,
        mode: GpuTiming,
        work: Work,
        telemetry: str,
    ) -> Callable[[], Measurement]:
        """Warm up and calibrate; return what takes one round of samples (called again
        for a second look, with the same calls per sample)."""
        device = _device_of(backend, telemetry)
        self._warm_up(call, backend)
        enqueuer = self._enqueuer(call, backend, mode)

        def sample() -> Measurement:
            samples, readings = self._sample(enqueuer, backend, device, telemetry)
            details = self._details(
                backend=backend,
                mode=mode,
                device=device,
                readings=readings,
                spans=samples.spans,
                work=work,
                seconds=statistics.median(samples.times),
                calls_per_sample=enqueuer.calls,
                l2_flush_bytes=enqueuer.flush_bytes,
            )
            return Measurement(
                name=name,
                unit="s",
                direction=Direction.LOWER_IS_BETTER,
                samples=samples.times,
                loops=enqueuer.calls,
                stop_reason=samples.stop_reason,
                machine=self._machine(backend, mode, device),
                details={"gpu": details},
            )

        return sample

    def _warm_up(self, call: Callable[[], None], backend: Backend) -> None:
        """Warm up by time, keeping the GPU busy (one wait per round, not per call): the
        first calls compile and autotune, then clocks ramp up from idle and settle
        under the power cap, which takes a good fraction of a second on an H100."""
        clock = self._host.clock
        started = clock()

        def run(calls: int) -> tuple[int, float]:
            round_start = clock()
            for _ in range(calls):
                call()
            backend.synchronize()
            now = clock()
            return now - started, max(1, (now - round_start) // calls) / 1e9

        seconds = max(self._host.plan.warmup_time, GPU_WARMUP_TIME)
        warm_up(run, WarmUp(seconds, max_batch=10_000, round_time=ROUND_TIME))

    def _enqueuer(self, call: Callable[[], None], backend: Backend, mode: GpuTiming) -> _Enqueuer:
        """How one sample is enqueued in ``mode``.

        Samples are enqueued back to back, so the GPU is still busy with the previous
        one when the host enqueues the next start event and call: no launch gap timed.
        Cold mode: the flush before each sample must last long enough for that.
        """

        def enqueue_calls(n: int) -> tuple[Event, Event]:
            start, end = backend.event(), backend.event()
            start.record()
            for _ in range(n):
                call()
            end.record()
            return start, end

        if mode == "cold":
            flush, flush_bytes = self._sized_flush(backend, enqueue_calls)

            def flushed() -> tuple[Event, Event]:
                flush()
                return enqueue_calls(1)

            return _Enqueuer(flushed, None, 1, flush_bytes)
        plan = self._host.plan
        calls = plan.loops or calibrate_calls(
            enqueue_calls, backend.elapsed_s, plan.min_sample_time
        )
        if mode == "graph":
            replay = backend.capture(call, calls)

            def replayed() -> tuple[Event, Event]:
                start, end = backend.event(), backend.event()
                start.record()
                replay()
                end.record()
                return start, end

            return _Enqueuer(replayed, replay, calls)
        return _Enqueuer(lambda: enqueue_calls(calls), call, calls)

    def _sample(
        self, enqueuer: _Enqueuer, backend: Backend, device: _Device, telemetry: str
    ) -> tuple[GpuSamples, list[list[Reading]]]:
        """One round of samples, with the telemetry read beside it."""
        sampler = self._telemetry(device, telemetry)
        if sampler is not None:
            sampler.start()
        try:
            samples = sample_gpu(
                enqueuer.enqueue,
                backend.elapsed_s,
                self._host.plan,
                calls=enqueuer.calls,
                clock=self._host.clock,
                min_time=GPU_MIN_TIME,
                lead=enqueuer.lead,
            )
        finally:
            if sampler is not None:
                sampler.stop()
        return samples, (sampler.readings if sampler is not None else [])

    def _sized_flush(
        self, backend: Backend, enqueue_calls: Callable[[int], tuple[Event, Event]]
    ) -> tuple[Callable[[], None], int]:
        """A flush of at least twice the L2 that outlasts what the host needs to enqueue
        one sample, so the GPU never idles into the timed span (a busy flush also keeps
        the GPU's power draw, hence its clock, as under real load, unlike an idle wait)."""
        l2 = backend.l2_bytes()
        if l2 is None:
            raise GpuUsageError("mode='cold' needs the L2 size, which this device does not report")
        size = 2 * l2
        flush = backend.l2_flush(size)
        clock = self._host.clock

        def gpu_time() -> float:
            start, end = backend.event(), backend.event()
            start.record()
            flush()
            end.record()
            end.synchronize()
            return backend.elapsed_s(start, end)

        def host_time() -> float:
            started = clock()
            flush()
            _, end = enqueue_calls(1)
            spent = (clock() - started) / 1e9
            end.synchronize()
            return spent

        needed = FLUSH_LEAD * _median_of(host_time)
        took = _median_of(gpu_time)
        if 0 < took < needed:
            size = min(MAX_FLUSH_BYTES, math.ceil(size * needed / took / 2**20) * 2**20)
            flush = backend.l2_flush(size)
        return flush, size

    @contextlib.contextmanager
    def region(
        self,
        name: str,
        *,
        bytes: float | None = None,
        flops: float | None = None,
        items: float | None = None,
        link: Literal["hbm", "pcie"] = "hbm",
        dtype: str | None = None,
        peak_bytes_per_s: float | None = None,
        peak_flops: float | None = None,
        backend: BackendName | None = None,
        sync: Callable[[], object] | None = None,
        telemetry: Literal["device", "all", "off"] = "device",
    ) -> Iterator[None]:
        """Time the block on the GPU's stream as one sample of ``name``, with telemetry;
        enter it repeatedly for more samples. Judged when the test's call ends."""
        _check_telemetry(telemetry)
        if not self._host.measuring:
            yield
            return
        record = self._regions.get(name)
        if record is None:
            chosen = _select_or_skip((), {}, backend=backend, sync=sync)
            self._host.claim(name)
            device = _device_of(chosen, telemetry)
            work = Work(bytes, flops, items, link, dtype, peak_bytes_per_s, peak_flops)
            record = self._regions[name] = _RegionRecord(chosen, device, work, telemetry)
        sampler = self._telemetry(record.device, record.telemetry)
        start, end = record.backend.event(), record.backend.event()
        if sampler is not None:
            sampler.start()
        span_start = self._host.clock()
        start.record()
        try:
            yield
        finally:
            end.record()
            end.synchronize()
            span_end = self._host.clock()
            if sampler is not None:
                sampler.stop()
                for index, readings in enumerate(sampler.readings):
                    record.readings.setdefault(index, []).extend(readings)
        record.times.append(record.backend.elapsed_s(start, end))
        record.spans.append((span_start, span_end))

    def finish(self) -> None:
        """Judge the regions; called once when the test's call ends."""
        for name, record in self._regions.items():
            if not record.times:
                continue
            details = self._details(
                backend=record.backend,
                mode="region",
                device=record.device,
                readings=[record.readings.get(i, []) for i in range(len(record.device.handles))],
                spans=tuple(record.spans),
                work=record.work,
                seconds=statistics.median(record.times),
                calls_per_sample=1,
                l2_flush_bytes=0,
            )
            self._host.judge(
                Measurement(
                    name=name,
                    unit="s",
                    direction=Direction.LOWER_IS_BETTER,
                    samples=tuple(record.times),
                    stop_reason="block entries",
                    machine=self._machine(record.backend, "region", record.device),
                    details={"gpu": details},
                ),
                None,
            )

    # -- shared pieces --
    def _telemetry(self, device: _Device, telemetry: str) -> TelemetrySampler | None:
        hz = self._telemetry_hz
        if device.nvml is None or not device.handles or hz <= 0 or telemetry == "off":
            if not device.missing:
                device.missing = "telemetry turned off"
            return None
        return TelemetrySampler(device.nvml.reading, device.handles, hz=hz)

    @staticmethod
    def _machine(backend: Backend, mode: str, device: _Device) -> dict[str, str]:
        fields = {"gpu.timer": backend.timer, "gpu.mode": mode}
        if device.identity is not None:
            fields |= device.identity.machine_fields()
        return fields

    def _details(
        self,
        *,
        backend: Backend,
        mode: str,
        device: _Device,
        readings: Sequence[Sequence[Reading]],
        spans: Sequence[tuple[int, int]],
        work: Work,
        seconds: float,
        calls_per_sample: int,
        l2_flush_bytes: int,
    ) -> dict[str, Any]:
        details: dict[str, Any] = {
            "backend": backend.name,
            "timer": backend.timer,
            "mode": mode,
            "device": backend.device_label(),
            "calls_per_sample": calls_per_sample,
        }
        if l2_flush_bytes:
            details["l2_flush_bytes"] = l2_flush_bytes
        if device.identity is not None:
            details["identity"] = device.identity.to_dict()
        measured = list(readings[0]) if readings else []
        if measured:
            per_sample = span_reasons(measured, spans)
            slowed = [reasons for reasons in per_sample if reasons]
            counts: dict[str, int] = {}
            for reasons in slowed:
                for reason in reasons:
                    counts[reason] = counts.get(reason, 0) + 1
            details["telemetry"] = summarize_readings(measured)
            details["sm_clock_mhz"] = median_field(measured, "sm_clock_mhz")
            details["slowed_samples"] = len(slowed)
            details["slowdown_reasons"] = counts
            if len(readings) > 1:
                details["other_devices"] = {
                    label: summarize_readings(list(rs))
                    for label, rs in zip(device.labels[1:], readings[1:], strict=True)
                }
        else:
            details["telemetry"] = None
            details["telemetry_missing"] = device.missing or "telemetry turned off"
        details["samples"] = len(spans)
        details["throughput"] = throughput(
            work, seconds, device.identity, l2_bytes=backend.l2_bytes()
        )
        return details


@dataclass(slots=True)
class _RegionRecord:
    backend: Backend
    device: _Device
    work: Work
    telemetry: str
    times: list[float] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    readings: dict[int, list[Reading]] = field(default_factory=dict)


def _check_telemetry(telemetry: str) -> None:
    if telemetry not in ("device", "all", "off"):
        raise GpuUsageError(
            f"perf.gpu: telemetry must be 'device', 'all' or 'off', got {telemetry!r}"
        )
