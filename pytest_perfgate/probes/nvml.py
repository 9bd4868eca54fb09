"""NVML: which GPU a measurement ran on, and what the GPU did meanwhile.

Three parts, each usable alone:

* parsing: NVML's raw answers (or the error each query raised) become a
  :class:`DeviceIdentity` and :class:`Reading` values. Live queries and the readings
  recorded from a real H100 for the tests (tests/data/nvml) go through the same code.
* maths: physical peaks (HBM from the memory clock and bus width, PCIe from the link)
  and the meaning of clock-event (throttle) reasons.
* live access: :class:`Nvml` opens the library, maps a CUDA device to its NVML handle by
  PCI bus id, and :class:`TelemetrySampler` reads the devices in a background thread.

A field a GPU does not support is recorded as missing (None), never an error.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, final

from . import ProbeUnavailable

# Clock-event reasons (nvmlClocksEventReason*): the ones that mean the GPU slowed itself
# down, and the ones that are informational (an idle GPU clocks down; that is not a
# throttle of the work being measured).
SLOWDOWN_REASONS: Mapping[int, str] = {
    0x4: "SW power cap",
    0x8: "HW slowdown",
    0x20: "SW thermal slowdown",
    0x40: "HW thermal slowdown",
    0x80: "HW power brake",
}
OTHER_REASONS: Mapping[int, str] = {
    0x1: "GPU idle",
    0x2: "applications clocks setting",
    0x10: "sync boost",
    0x100: "display clock setting",
}
SLOWDOWN_MASK = sum(SLOWDOWN_REASONS)


def reason_names(mask: int, *, slowdowns_only: bool = False) -> list[str]:
    """``0x24`` -> ``["SW power cap", "SW thermal slowdown"]``."""
    table = SLOWDOWN_REASONS if slowdowns_only else {**OTHER_REASONS, **SLOWDOWN_REASONS}
    return [name for bit, name in sorted(table.items()) if mask & bit]


class NvmlUnavailable(ProbeUnavailable):
    """NVML cannot be used here; the message names the NVML error."""


# -- parsing ----------------------------------------------------------------------------


def _value(raw: Any) -> Any:
    """A recorded or live answer, or None where the query failed (not supported...)."""
    if isinstance(raw, Mapping) and "nvml_error" in raw:
        return None
    return raw


def _number(raw: Any, scale: float = 1.0) -> float | None:
    value = _value(raw)
    return None if value is None else float(value) * scale


@final
@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """What a GPU is. ``machine_fields`` decide which baselines may gate it."""

    name: str
    uuid: str | None = None
    pci_bus_id: str | None = None
    driver: str | None = None
    compute_capability: str | None = None  #: "9.0"
    max_sm_clock_mhz: float | None = None
    max_mem_clock_mhz: float | None = None
    bus_width_bits: int | None = None
    power_limit_w: float | None = None  #: the enforced limit: a lower cap is a slower GPU
    pcie_gen: int | None = None  #: the link's maximum generation (the current one idles down)
    pcie_width: int | None = None
    memory_total_bytes: int | None = None

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> DeviceIdentity:
        """From the answers of the identity queries (see benchmarks/gpu_record_readings.py)."""
        capability = _value(raw.get("compute_capability"))
        pci = _value(raw.get("pci"))
        memory = _value(raw.get("memory"))
        width = _value(raw.get("bus_width"))
        gen, lanes = _value(raw.get("pcie_max_gen")), _value(raw.get("pcie_max_width"))
        return cls(
            name=str(_value(raw.get("name")) or "unknown GPU"),
            uuid=_value(raw.get("uuid")),
            pci_bus_id=None if not pci else str(pci.get("busId")),
            driver=_value(raw.get("driver")),
            compute_capability=None if not capability else f"{capability[0]}.{capability[1]}",
            max_sm_clock_mhz=_number(raw.get("max_sm_clock")),
            max_mem_clock_mhz=_number(raw.get("max_mem_clock")),
            bus_width_bits=None if width is None else int(width),
            power_limit_w=_number(raw.get("enforced_power_limit"), 1e-3),
            pcie_gen=None if gen is None else int(gen),
            pcie_width=None if lanes is None else int(lanes),
            memory_total_bytes=None if not memory else int(memory["total"]),
        )

    def machine_fields(self) -> dict[str, str]:
        """Fields a baseline must share to gate this GPU: the model and what sets its
        speed. Not the UUID (a baseline would then gate one physical card only) nor the
        driver (kept in the details and noted when it changed)."""
        fields = {
            "gpu.name": self.name,
            "gpu.compute_capability": self.compute_capability,
            "gpu.max_sm_clock_mhz": _int_text(self.max_sm_clock_mhz),
            "gpu.max_mem_clock_mhz": _int_text(self.max_mem_clock_mhz),
            "gpu.bus_width_bits": _int_text(self.bus_width_bits),
            "gpu.power_limit_w": _int_text(self.power_limit_w),
            "gpu.pcie": (
                None
                if self.pcie_gen is None or self.pcie_width is None
                else f"gen{self.pcie_gen} x{self.pcie_width}"
            ),
        }
        return {key: value for key, value in fields.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _int_text(value: float | None) -> str | None:
    return None if value is None else str(round(value))


@final
@dataclass(frozen=True, slots=True)
class Reading:
    """One telemetry reading of one GPU. None: the GPU does not report that field."""

    t_ns: int  #: host perf_counter_ns when read
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    power_w: float | None = None
    temperature_c: float | None = None
    gpu_util_pct: float | None = None
    mem_util_pct: float | None = None
    memory_used_bytes: float | None = None
    clock_event_reasons: int | None = None  #: bitmask of nvmlClocksEventReason*
    energy_mj: float | None = None  #: total energy since the driver loaded

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Reading:
        utilization = _value(raw.get("utilization")) or {}
        memory = _value(raw.get("memory_used")) or {}
        reasons = _value(raw.get("clock_event_reasons"))
        return cls(
            t_ns=int(raw["t_ns"]),
            sm_clock_mhz=_number(raw.get("sm_clock")),
            mem_clock_mhz=_number(raw.get("mem_clock")),
            power_w=_number(raw.get("power_mw"), 1e-3),
            temperature_c=_number(raw.get("temperature_c")),
            gpu_util_pct=_number(utilization.get("gpu")),
            mem_util_pct=_number(utilization.get("memory")),
            memory_used_bytes=_number(memory.get("used")),
            clock_event_reasons=None if reasons is None else int(reasons),
            energy_mj=_number(raw.get("energy_mj")),
        )

    @property
    def slowed_down(self) -> bool:
        return bool(self.clock_event_reasons and self.clock_event_reasons & SLOWDOWN_MASK)


# -- maths ------------------------------------------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class Peak:
    """A physical peak rate and where the figure comes from."""

    value: float  #: bytes/s or FLOP/s
    source: str


def hbm_peak(identity: DeviceIdentity) -> Peak | None:
    """Device-memory peak: 2 transfers a clock x max memory clock x bus width / 8."""
    clock, width = identity.max_mem_clock_mhz, identity.bus_width_bits
    if not clock or not width:
        return None
    value = 2 * clock * 1e6 * width / 8
    return Peak(value, f"NVML: 2 x {clock:.0f} MHz x {width} bit / 8 = {value / 1e9:.0f} GB/s")


# Per lane and direction: transfer rate (GT/s) and line-code efficiency, by generation.
_PCIE_LANE = {1: (2.5, 0.8), 2: (5.0, 0.8), 3: (8.0, 128 / 130), 4: (16.0, 128 / 130),
              5: (32.0, 128 / 130), 6: (64.0, 242 / 256)}  # fmt: skip


def pcie_peak(generation: int | None, width: int | None) -> Peak | None:
    """One direction of the PCIe link, after line coding (gen5 x16: 63 GB/s)."""
    if generation not in _PCIE_LANE or not width:
        return None
    rate, efficiency = _PCIE_LANE[generation]
    value = rate * 1e9 * efficiency / 8 * width
    return Peak(value, f"PCIe gen{generation} x{width}, one direction = {value / 1e9:.1f} GB/s")


# Dense tensor-core peaks at boost clock from NVIDIA's datasheets, by GPU name and dtype:
# NVML has no FLOP figure. Anything else needs peak_flops= from the user.
_DATASHEET_FLOPS: Mapping[str, Mapping[str, float]] = {
    "H100 80GB HBM3": {"bf16": 989.4e12, "fp16": 989.4e12, "fp8": 1978.9e12, "tf32": 494.7e12},
    "H200": {"bf16": 989.4e12, "fp16": 989.4e12, "fp8": 1978.9e12, "tf32": 494.7e12},
}


def flops_peak(identity: DeviceIdentity, dtype: str | None) -> Peak | None:
    if dtype is None:
        return None
    for model, table in _DATASHEET_FLOPS.items():
        if model in identity.name and dtype in table:
            value = table[dtype]
            return Peak(value, f"datasheet: {model} dense {dtype} = {value / 1e12:.0f} TFLOP/s")
    return None


# -- summaries --------------------------------------------------------------------------

_SUMMARIZED = (
    ("sm_clock_mhz", "SM clock (MHz)"),
    ("mem_clock_mhz", "memory clock (MHz)"),
    ("power_w", "power (W)"),
    ("temperature_c", "temperature (C)"),
    ("gpu_util_pct", "GPU utilization (%)"),
    ("mem_util_pct", "memory utilization (%)"),
    ("memory_used_bytes", "memory used (B)"),
)


def summarize_readings(readings: Sequence[Reading]) -> dict[str, Any]:
    """Median, min and max of each field over ``readings``; how many readings showed
    each slowdown reason; the energy between the first and the last reading."""
    summary: dict[str, Any] = {"readings": len(readings)}
    for field, _label in _SUMMARIZED:
        values = [v for r in readings if (v := getattr(r, field)) is not None]
        if values:
            summary[field] = {
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
            }
        else:
            summary[field] = None  # not reported by this GPU
    reasons: dict[str, int] = {}
    for reading in readings:
        for name in reason_names(reading.clock_event_reasons or 0, slowdowns_only=True):
            reasons[name] = reasons.get(name, 0) + 1
    summary["slowdown_reasons"] = reasons
    summary["slowed_down_readings"] = sum(r.slowed_down for r in readings)
    energies = [r.energy_mj for r in readings if r.energy_mj is not None]
    summary["energy_j"] = round((energies[-1] - energies[0]) / 1e3, 3) if energies else None
    return summary


def span_reasons(readings: Sequence[Reading], spans: Iterable[tuple[int, int]]) -> list[list[str]]:
    """Slowdown reasons reported during each (start_ns, end_ns) span of host time.

    A span shorter than the sampling interval may hold no reading: it takes the reading
    nearest to its middle, so every span is judged on the GPU's state around it.
    """
    result: list[list[str]] = []
    for start, end in spans:
        inside = [r for r in readings if start <= r.t_ns <= end]
        if not inside and readings:
            middle = (start + end) // 2
            inside = [min(readings, key=lambda r: abs(r.t_ns - middle))]
        mask = 0
        for reading in inside:
            mask |= reading.clock_event_reasons or 0
        result.append(reason_names(mask, slowdowns_only=True))
    return result


def median_field(readings: Sequence[Reading], field: str) -> float | None:
    values = [v for r in readings if (v := getattr(r, field)) is not None]
    return statistics.median(values) if values else None


# -- live access ------------------------------------------------------------------------


def _query(fn: Callable[..., Any], *args: Any) -> Any:
    """Call an NVML function; its error becomes ``{"nvml_error": name}`` (not supported
    on this GPU, no permission...), the shape the parsers above read as missing."""
    import pynvml

    try:
        value = fn(*args)
    except pynvml.NVMLError as error:
        return {"nvml_error": type(error).__name__}
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "_fields_"):
        return {name: getattr(value, name) for name, *_ in value._fields_}
    return value


class Nvml:
    """The NVML library, initialized once per process and shut down with it."""

    _lock = threading.Lock()
    _opened: Nvml | None = None

    def __init__(self) -> None:
        import pynvml

        self._nvml = pynvml

    @classmethod
    def open(cls) -> Nvml:
        """The process's NVML; NvmlUnavailable (naming the error) when it cannot start."""
        with cls._lock:
            if cls._opened is None:
                try:
                    import pynvml
                except ImportError:  # declared dependency; absent only in odd installs
                    raise NvmlUnavailable(
                        "NVML unavailable: the nvidia-ml-py package is not installed"
                    ) from None
                try:
                    pynvml.nvmlInit()
                except pynvml.NVMLError as error:
                    raise NvmlUnavailable(
                        f"NVML unavailable: {type(error).__name__} ({error})"
                    ) from None
                cls._opened = cls()
            return cls._opened

    def device_count(self) -> int:
        return int(self._nvml.nvmlDeviceGetCount())

    def handle_by_pci_bus_id(self, bus_id: str) -> Any:
        """The NVML handle of the device at ``bus_id`` (CUDA and NVML number devices
        differently, e.g. under CUDA_VISIBLE_DEVICES; the bus id is the same for both)."""
        return self._nvml.nvmlDeviceGetHandleByPciBusId(bus_id.encode())

    def handle_by_index(self, index: int) -> Any:
        return self._nvml.nvmlDeviceGetHandleByIndex(index)

    def raw_identity(self, handle: Any) -> dict[str, Any]:
        n = self._nvml
        return {
            "name": _query(n.nvmlDeviceGetName, handle),
            "uuid": _query(n.nvmlDeviceGetUUID, handle),
            "pci": _query(n.nvmlDeviceGetPciInfo_v3, handle),
            "driver": _query(n.nvmlSystemGetDriverVersion),
            "compute_capability": _query(n.nvmlDeviceGetCudaComputeCapability, handle),
            "max_sm_clock": _query(n.nvmlDeviceGetMaxClockInfo, handle, n.NVML_CLOCK_SM),
            "max_mem_clock": _query(n.nvmlDeviceGetMaxClockInfo, handle, n.NVML_CLOCK_MEM),
            "bus_width": _query(n.nvmlDeviceGetMemoryBusWidth, handle),
            "enforced_power_limit": _query(n.nvmlDeviceGetEnforcedPowerLimit, handle),
            "pcie_max_gen": _query(n.nvmlDeviceGetMaxPcieLinkGeneration, handle),
            "pcie_max_width": _query(n.nvmlDeviceGetMaxPcieLinkWidth, handle),
            "memory": _query(n.nvmlDeviceGetMemoryInfo, handle),
        }

    def identity(self, handle: Any) -> DeviceIdentity:
        return DeviceIdentity.from_raw(self.raw_identity(handle))

    def raw_reading(self, handle: Any) -> dict[str, Any]:
        n = self._nvml
        return {
            "t_ns": time.perf_counter_ns(),
            "sm_clock": _query(n.nvmlDeviceGetClockInfo, handle, n.NVML_CLOCK_SM),
            "mem_clock": _query(n.nvmlDeviceGetClockInfo, handle, n.NVML_CLOCK_MEM),
            "power_mw": _query(n.nvmlDeviceGetPowerUsage, handle),
            "temperature_c": _query(n.nvmlDeviceGetTemperature, handle, n.NVML_TEMPERATURE_GPU),
            "utilization": _query(n.nvmlDeviceGetUtilizationRates, handle),
            "memory_used": _query(n.nvmlDeviceGetMemoryInfo, handle),
            "clock_event_reasons": _query(n.nvmlDeviceGetCurrentClocksEventReasons, handle),
            "energy_mj": _query(n.nvmlDeviceGetTotalEnergyConsumption, handle),
        }

    def reading(self, handle: Any) -> Reading:
        return Reading.from_raw(self.raw_reading(handle))


class TelemetrySampler:
    """Reads devices at a fixed rate in a background thread, while a measurement runs.

    ``read`` takes a device key and returns a Reading (live: ``Nvml.reading`` of its
    handle). Reads are scheduled by deadline, not by sleeping a fixed interval, so the
    rate holds even though each read takes time.
    """

    def __init__(
        self,
        read: Callable[[Any], Reading],
        devices: Sequence[Any],
        *,
        hz: float = 50.0,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        if hz <= 0:
            raise ValueError("telemetry rate must be positive (Hz)")
        self._read = read
        self._devices = list(devices)
        self._interval_ns = int(1e9 / hz)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.readings: list[list[Reading]] = [[] for _ in self._devices]
        self.errors: list[str] = []

    def __enter__(self) -> TelemetrySampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.sample_once()  # a reading at the start, whatever the rate
        self._thread = threading.Thread(target=self._run, name="perfgate-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.sample_once()  # and one at the end

    def sample_once(self) -> None:
        for index, device in enumerate(self._devices):
            try:
                self.readings[index].append(self._read(device))
            except Exception as error:  # a failing read must not kill the measurement
                self.errors.append(f"{type(error).__name__}: {error}")

    def _run(self) -> None:
        next_at = self._clock() + self._interval_ns
        while not self._stop.wait(max(0.0, (next_at - self._clock()) / 1e9)):
            self.sample_once()
            next_at += self._interval_ns
            now = self._clock()
            if next_at < now:  # fell behind (a slow read): skip, don't burst
                next_at = now + self._interval_ns
