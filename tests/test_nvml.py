"""NVML parsing, peaks, summaries and the telemetry sampler, on readings recorded from a
real H100 (tests/data/nvml) and on fakes: no GPU and no NVML library needed."""

from __future__ import annotations

import itertools
import json
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from pytest_perfgate.probes import ProbeUnavailable
from pytest_perfgate.probes.nvml import (
    SLOWDOWN_MASK,
    DeviceIdentity,
    Nvml,
    NvmlUnavailable,
    Reading,
    TelemetrySampler,
    flops_peak,
    hbm_peak,
    median_field,
    pcie_peak,
    reason_names,
    span_reasons,
    summarize_readings,
)

DATA = Path(__file__).parent / "data" / "nvml"
IDENTITY = json.loads((DATA / "h100_identity.json").read_text(encoding="utf-8"))
TELEMETRY = json.loads((DATA / "h100_telemetry.json").read_text(encoding="utf-8"))
READINGS = [Reading.from_raw(raw) for raw in TELEMETRY["readings"]]
#: (name, start_ns, end_ns) of the recorded phases: idle, matmul, idle.
PHASES = [
    (name, start, TELEMETRY["phases"][i + 1][1] if i + 1 < len(TELEMETRY["phases"]) else None)
    for i, (name, start) in enumerate(TELEMETRY["phases"])
]
IDLE_START, MATMUL_START, IDLE_AGAIN = (start for _, start, _ in PHASES)
H100 = "NVIDIA H100 80GB HBM3"


def phase(start: int, end: int | None) -> list[Reading]:
    return [r for r in READINGS if r.t_ns >= start and (end is None or r.t_ns < end)]


MATMUL = phase(MATMUL_START, IDLE_AGAIN)
IDLE = phase(IDLE_START, MATMUL_START)


@pytest.fixture
def identity() -> DeviceIdentity:
    return DeviceIdentity.from_raw(IDENTITY["nvml"])


# -- the recorded data itself ----------------------------------------------------------------------


def test_recorded_data_is_what_the_tests_assume() -> None:
    assert [name for name, _, _ in PHASES] == ["idle", "matmul", "idle"]
    assert len(MATMUL) > 100
    assert len(IDLE) > 20
    assert IDENTITY["torch"]["name"] == IDENTITY["nvml"]["name"] == H100
    # Readings are in time order, about 40 Hz.
    times = [r.t_ns for r in READINGS]
    assert times == sorted(times)
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    assert 10e6 < gaps[len(gaps) // 2] < 50e6


# -- identity --------------------------------------------------------------------------------------


def test_identity_parses_the_recorded_h100(identity: DeviceIdentity) -> None:
    assert identity == DeviceIdentity(
        name=H100,
        uuid="GPU-9820f331-70ce-803f-46ca-bfdebefdc992",
        pci_bus_id="00000000:00:06.0",
        driver="580.159.04",
        compute_capability="9.0",
        max_sm_clock_mhz=1980.0,
        max_mem_clock_mhz=2619.0,
        bus_width_bits=5120,
        power_limit_w=700.0,
        pcie_gen=5,
        pcie_width=16,
        memory_total_bytes=85520809984,
    )


def test_an_unsupported_query_is_recorded_as_an_error_and_read_as_missing() -> None:
    raw = IDENTITY["nvml"]
    # The H100 answered NotSupported for its NVLink state: kept as an error object...
    assert raw["nvlink0_state"] == {"nvml_error": "NVMLError_NotSupported"}
    # ...which is missing data, not a failure to parse the identity.
    not_supported = {"nvml_error": "NVMLError_NotSupported"}
    partial = {
        **raw,
        "bus_width": not_supported,
        "max_mem_clock": not_supported,
        "pcie_max_gen": not_supported,
        "enforced_power_limit": {"nvml_error": "NVMLError_NoPermission"},
        "compute_capability": not_supported,
        "pci": not_supported,
        "memory": not_supported,
    }
    parsed = DeviceIdentity.from_raw(partial)
    assert parsed.name == H100
    assert parsed.bus_width_bits is None
    assert parsed.max_mem_clock_mhz is None
    assert parsed.pcie_gen is None
    assert parsed.pcie_width == 16
    assert parsed.power_limit_w is None
    assert parsed.compute_capability is None
    assert parsed.pci_bus_id is None
    assert parsed.memory_total_bytes is None
    assert hbm_peak(parsed) is None
    assert pcie_peak(parsed.pcie_gen, parsed.pcie_width) is None
    fields = parsed.machine_fields()
    for key in (
        "gpu.bus_width_bits",
        "gpu.max_mem_clock_mhz",
        "gpu.pcie",
        "gpu.power_limit_w",
        "gpu.compute_capability",
    ):
        assert key not in fields
    assert fields["gpu.name"] == H100


def test_identity_of_nothing_is_an_unknown_gpu() -> None:
    assert DeviceIdentity.from_raw({}) == DeviceIdentity(name="unknown GPU")
    failed_name = DeviceIdentity.from_raw({"name": {"nvml_error": "NVMLError_Unknown"}})
    assert failed_name.name == "unknown GPU"
    assert DeviceIdentity.from_raw({}).machine_fields() == {"gpu.name": "unknown GPU"}


def test_machine_fields_are_what_sets_the_speed_not_the_card(identity: DeviceIdentity) -> None:
    assert identity.machine_fields() == {
        "gpu.name": H100,
        "gpu.compute_capability": "9.0",
        "gpu.max_sm_clock_mhz": "1980",
        "gpu.max_mem_clock_mhz": "2619",
        "gpu.bus_width_bits": "5120",
        "gpu.power_limit_w": "700",
        "gpu.pcie": "gen5 x16",
    }
    # Another card of the same model, on another driver: same machine class.
    twin = DeviceIdentity.from_raw(
        {**IDENTITY["nvml"], "uuid": "GPU-other", "driver": "570.1", "pci": {"busId": "X"}}
    )
    assert twin.machine_fields() == identity.machine_fields()
    # A lower power cap is a slower GPU: another class.
    capped = DeviceIdentity.from_raw({**IDENTITY["nvml"], "enforced_power_limit": 500_000})
    assert capped.machine_fields()["gpu.power_limit_w"] == "500"


def test_to_dict_is_plain_json_and_round_trips(identity: DeviceIdentity) -> None:
    data = identity.to_dict()
    assert data["name"] == H100
    assert data["driver"] == "580.159.04"
    assert set(data) == set(DeviceIdentity.__dataclass_fields__)
    assert json.loads(json.dumps(data)) == data
    assert DeviceIdentity(**data) == identity


# -- readings --------------------------------------------------------------------------------------


def test_reading_parses_a_recorded_idle_reading() -> None:
    raw = TELEMETRY["readings"][0]
    reading = Reading.from_raw(raw)
    assert reading == Reading(
        t_ns=raw["t_ns"],
        sm_clock_mhz=345.0,
        mem_clock_mhz=2619.0,
        power_w=pytest.approx(74.456),  # type: ignore[arg-type]
        temperature_c=34.0,
        gpu_util_pct=0.0,
        mem_util_pct=0.0,
        memory_used_bytes=506724352.0,
        clock_event_reasons=0x1,
        energy_mj=3391720.0,
    )
    assert not reading.slowed_down  # an idle GPU clocks down: not a throttle


def test_reading_with_unsupported_fields_has_them_missing() -> None:
    error = {"nvml_error": "NVMLError_NotSupported"}
    reading = Reading.from_raw(
        {
            "t_ns": 7,
            "sm_clock": 1410,
            "power_mw": error,
            "utilization": error,
            "memory_used": error,
            "clock_event_reasons": error,
            "energy_mj": error,
        }
    )
    assert reading == Reading(t_ns=7, sm_clock_mhz=1410.0)
    assert not reading.slowed_down


@pytest.mark.parametrize(
    ("mask", "slowed"),
    [
        (None, False),
        (0, False),
        (0x1, False),  # GPU idle
        (0x1 | 0x2 | 0x10 | 0x100, False),  # informational reasons only
        (0x4, True),  # SW power cap
        (0x8, True),
        (0x20, True),
        (0x40, True),
        (0x80, True),
        (0x1 | 0x4, True),
    ],
)
def test_slowed_down_means_a_slowdown_reason(mask: int | None, slowed: bool) -> None:
    assert Reading(t_ns=0, clock_event_reasons=mask).slowed_down is slowed


def test_recorded_phases_idle_is_not_slowed_matmul_is_power_capped() -> None:
    middle_of_idle = IDLE[5:-10]
    assert middle_of_idle
    assert all(r.clock_event_reasons == 0x1 and not r.slowed_down for r in middle_of_idle)
    capped = [r for r in MATMUL if r.clock_event_reasons == 0x4]
    assert len(capped) > 0.8 * len(MATMUL)
    assert all(r.slowed_down for r in capped)
    assert all(1000 < (r.sm_clock_mhz or 0) < 1600 for r in capped)
    assert {r.clock_event_reasons for r in MATMUL} <= {0x0, 0x4}


# -- reason names ----------------------------------------------------------------------------------


def test_reason_names() -> None:
    assert reason_names(0x24) == ["SW power cap", "SW thermal slowdown"]
    assert reason_names(0x1) == ["GPU idle"]
    assert reason_names(0x1, slowdowns_only=True) == []
    assert reason_names(0x5) == ["GPU idle", "SW power cap"]  # ordered by bit
    assert reason_names(0x5, slowdowns_only=True) == ["SW power cap"]
    assert reason_names(0) == []
    assert reason_names(0x200) == []  # an unknown bit is not invented a name
    assert reason_names(SLOWDOWN_MASK, slowdowns_only=True) == [
        "SW power cap",
        "HW slowdown",
        "SW thermal slowdown",
        "HW thermal slowdown",
        "HW power brake",
    ]


# -- peaks -----------------------------------------------------------------------------------------


def test_hbm_peak_from_the_memory_clock_and_bus_width(identity: DeviceIdentity) -> None:
    peak = hbm_peak(identity)
    assert peak is not None
    assert peak.value == pytest.approx(2 * 2619e6 * 5120 / 8)
    assert 3.35e12 < peak.value < 3.36e12
    assert peak.source == "NVML: 2 x 2619 MHz x 5120 bit / 8 = 3352 GB/s"


def test_hbm_peak_needs_both_figures() -> None:
    assert hbm_peak(DeviceIdentity("x", max_mem_clock_mhz=2619.0)) is None
    assert hbm_peak(DeviceIdentity("x", bus_width_bits=5120)) is None
    assert hbm_peak(DeviceIdentity("x", max_mem_clock_mhz=0.0, bus_width_bits=5120)) is None


def test_pcie_peak(identity: DeviceIdentity) -> None:
    peak = pcie_peak(identity.pcie_gen, identity.pcie_width)
    assert peak is not None
    assert peak.value == pytest.approx(32e9 * 128 / 130 / 8 * 16)
    assert 62.9e9 < peak.value < 63.1e9
    assert peak.source == "PCIe gen5 x16, one direction = 63.0 GB/s"
    gen3 = pcie_peak(3, 16)
    assert gen3 is not None
    assert gen3.value == pytest.approx(15.75e9, rel=1e-3)
    gen1 = pcie_peak(1, 1)
    assert gen1 is not None
    assert gen1.value == pytest.approx(2.5e9 * 0.8 / 8)
    assert pcie_peak(None, 16) is None
    assert pcie_peak(5, None) is None
    assert pcie_peak(5, 0) is None
    assert pcie_peak(9, 16) is None  # a generation not in the table


def test_flops_peak_from_the_datasheet(identity: DeviceIdentity) -> None:
    bf16 = flops_peak(identity, "bf16")
    assert bf16 is not None
    assert bf16.value == pytest.approx(989.4e12)
    assert bf16.source == "datasheet: H100 80GB HBM3 dense bf16 = 989 TFLOP/s"
    fp8 = flops_peak(identity, "fp8")
    assert fp8 is not None
    assert fp8.value == pytest.approx(2 * 989.4e12, rel=1e-3)
    assert flops_peak(identity, None) is None
    assert flops_peak(identity, "fp64") is None  # not in the table: the user says
    assert flops_peak(DeviceIdentity("NVIDIA A100-SXM4-80GB"), "bf16") is None
    h200 = flops_peak(DeviceIdentity("NVIDIA H200"), "bf16")
    assert h200 is not None
    assert h200.value == pytest.approx(989.4e12)


# -- summaries -------------------------------------------------------------------------------------


def test_summary_of_the_matmul_phase() -> None:
    summary = summarize_readings(MATMUL)
    assert summary["readings"] == len(MATMUL)
    capped = sum(r.clock_event_reasons == 0x4 for r in MATMUL)
    assert summary["slowdown_reasons"] == {"SW power cap": capped}
    assert summary["slowed_down_readings"] == capped
    energies = [r.energy_mj for r in MATMUL]
    assert summary["energy_j"] > 0
    assert summary["energy_j"] == pytest.approx((energies[-1] - energies[0]) / 1e3)  # type: ignore[operator]
    for field in (
        "sm_clock_mhz",
        "mem_clock_mhz",
        "power_w",
        "temperature_c",
        "gpu_util_pct",
        "mem_util_pct",
        "memory_used_bytes",
    ):
        values = [getattr(r, field) for r in MATMUL]
        stats = summary[field]
        assert stats["min"] == pytest.approx(min(values), abs=1e-3)
        assert stats["max"] == pytest.approx(max(values), abs=1e-3)
        assert stats["min"] <= stats["median"] <= stats["max"]
    # Under the power cap the SM clock sits well below its 1980 MHz maximum.
    assert 1200 <= summary["sm_clock_mhz"]["median"] <= 1500
    assert 600 < summary["power_w"]["median"] <= 700
    assert json.loads(json.dumps(summary)) == summary


def test_summary_of_the_idle_phase_has_no_slowdown() -> None:
    summary = summarize_readings(IDLE[5:-10])
    assert summary["slowdown_reasons"] == {}
    assert summary["slowed_down_readings"] == 0
    assert summary["sm_clock_mhz"]["median"] == 345


def test_summary_of_nothing_and_of_unsupported_fields() -> None:
    empty = summarize_readings([])
    assert empty["readings"] == 0
    assert empty["sm_clock_mhz"] is None
    assert empty["energy_j"] is None
    assert empty["slowdown_reasons"] == {}
    assert empty["slowed_down_readings"] == 0
    sparse = summarize_readings(
        [Reading(t_ns=1, sm_clock_mhz=1000.0), Reading(t_ns=2, sm_clock_mhz=1200.0)]
    )
    assert sparse["sm_clock_mhz"] == {"median": 1100.0, "min": 1000.0, "max": 1200.0}
    assert sparse["power_w"] is None  # not reported by this GPU
    assert sparse["energy_j"] is None


def test_summary_counts_each_slowdown_reason() -> None:
    readings = [
        Reading(t_ns=1, clock_event_reasons=0x4),
        Reading(t_ns=2, clock_event_reasons=0x4 | 0x20),
        Reading(t_ns=3, clock_event_reasons=0x1),
        Reading(t_ns=4, clock_event_reasons=None),
    ]
    summary = summarize_readings(readings)
    assert summary["slowdown_reasons"] == {"SW power cap": 2, "SW thermal slowdown": 1}
    assert summary["slowed_down_readings"] == 2


def test_span_reasons_inside_the_recorded_phases() -> None:
    idle_span = (IDLE[5].t_ns, IDLE[-10].t_ns)
    capped = [r for r in MATMUL if r.clock_event_reasons == 0x4]
    matmul_span = (capped[10].t_ns, capped[40].t_ns)
    whole = (READINGS[0].t_ns, READINGS[-1].t_ns)
    assert span_reasons(READINGS, [idle_span, matmul_span, whole]) == [
        [],
        ["SW power cap"],
        ["SW power cap"],
    ]


def test_a_span_shorter_than_the_interval_takes_the_nearest_reading() -> None:
    # The first power-capped reading of the matmul phase and the unthrottled one before it.
    index = next(i for i, r in enumerate(READINGS) if r.clock_event_reasons == 0x4)
    before, after = READINGS[index - 1], READINGS[index]
    assert before.clock_event_reasons == 0
    assert after.clock_event_reasons == 0x4
    gap = after.t_ns - before.t_ns
    near_before = (before.t_ns + gap // 10, before.t_ns + gap // 10 + 1000)
    near_after = (after.t_ns - gap // 10 - 1000, after.t_ns - gap // 10)
    # 1 us spans inside a ~25 ms interval: no reading inside either.
    assert not any(near_before[0] <= r.t_ns <= near_before[1] for r in READINGS)
    assert span_reasons(READINGS, [near_before, near_after]) == [[], ["SW power cap"]]
    # Beyond either end of the recording: the first or last reading.
    first, last = READINGS[0], READINGS[-1]
    assert span_reasons(READINGS, [(first.t_ns - 10**9, first.t_ns - 10**8)]) == [[]]
    assert span_reasons([Reading(t_ns=100, clock_event_reasons=0x40)], [(500, 600)]) == [
        ["HW thermal slowdown"]
    ]
    assert span_reasons(READINGS, [(last.t_ns + 1, last.t_ns + 2)]) == [[]]


def test_span_reasons_combine_every_reading_inside_and_need_readings() -> None:
    readings = [
        Reading(t_ns=10, clock_event_reasons=0x4),
        Reading(t_ns=20, clock_event_reasons=0x40),
        Reading(t_ns=30, clock_event_reasons=0x1),
    ]
    assert span_reasons(readings, [(10, 20), (25, 35), (5, 30)]) == [
        ["SW power cap", "HW thermal slowdown"],
        [],
        ["SW power cap", "HW thermal slowdown"],
    ]
    assert span_reasons([], [(0, 10), (10, 20)]) == [[], []]
    assert span_reasons(readings, []) == []


def test_median_field() -> None:
    median = median_field(MATMUL, "sm_clock_mhz")
    assert median is not None
    clocks = [r.sm_clock_mhz for r in MATMUL if r.sm_clock_mhz is not None]
    assert len(clocks) == len(MATMUL)
    assert min(clocks) <= median <= max(clocks)
    assert median == summarize_readings(MATMUL)["sm_clock_mhz"]["median"]
    assert median_field([], "sm_clock_mhz") is None
    assert median_field([Reading(t_ns=1)], "power_w") is None
    mixed = [Reading(t_ns=1, power_w=100.0), Reading(t_ns=2), Reading(t_ns=3, power_w=300.0)]
    assert median_field(mixed, "power_w") == 200.0


# -- the sampler -----------------------------------------------------------------------------------


class FakeRead:
    """Readings stamped with a counter, per device; can fail on chosen calls."""

    def __init__(self, fail: Any = None) -> None:
        self.calls = 0
        self.fail = fail or (lambda device, call: False)
        self.lock = threading.Lock()
        self.enough = threading.Event()
        self.enough_after: int | None = None

    def __call__(self, device: str) -> Reading:
        with self.lock:
            self.calls += 1
            call = self.calls
        if self.enough_after is not None and call >= self.enough_after:
            self.enough.set()
        if self.fail(device, call):
            raise RuntimeError(f"read {call} of {device} failed")
        return Reading(t_ns=call, sm_clock_mhz=1000.0)


#: A rate so low that the background thread never reads: only start and stop do.
NEVER = 1e-6


def test_sampler_takes_a_first_and_a_last_reading() -> None:
    read = FakeRead()
    sampler = TelemetrySampler(read, ["gpu0", "gpu1"], hz=NEVER)
    sampler.start()
    assert [len(r) for r in sampler.readings] == [1, 1]  # the first, at once
    sampler.stop()  # wakes the waiting thread: returns without waiting for the interval
    assert [len(r) for r in sampler.readings] == [2, 2]
    assert sampler.errors == []
    first, last = sampler.readings[0]
    assert first.t_ns < last.t_ns
    sampler.stop()  # stopping twice takes no further reading
    assert [len(r) for r in sampler.readings] == [2, 2]
    assert not any(t.name == "perfgate-telemetry" for t in threading.enumerate())


def test_sampler_as_a_context_manager() -> None:
    read = FakeRead()
    with TelemetrySampler(read, ["gpu0"], hz=NEVER) as sampler:
        assert len(sampler.readings[0]) == 1
    assert len(sampler.readings[0]) == 2
    assert read.calls == 2


def test_sampler_reads_in_the_background_until_stopped() -> None:
    read = FakeRead()
    read.enough_after = 6
    sampler = TelemetrySampler(read, ["gpu0"], hz=1000.0)
    sampler.start()
    try:
        assert read.enough.wait(timeout=30), "the background thread never read"
    finally:
        sampler.stop()
    readings = sampler.readings[0]
    assert len(readings) >= 6
    stamps = [r.t_ns for r in readings]
    assert stamps == sorted(stamps)
    calls = read.calls
    # Stopped: no reading after stop returned.
    threading.Event().wait(0.02)
    assert read.calls == calls


def test_sampler_with_a_fake_clock_that_is_always_due() -> None:
    # A clock that jumps far past every deadline at each call (reads that take ages): the
    # thread keeps reading without waiting, records no error, and still stops when asked.
    ticks = itertools.count(0, 10**12)
    read = FakeRead()
    read.enough_after = 4
    sampler = TelemetrySampler(read, ["gpu0"], hz=50.0, clock=lambda: next(ticks))
    sampler.start()
    try:
        assert read.enough.wait(timeout=30)
    finally:
        sampler.stop()
    assert len(sampler.readings[0]) >= 4
    assert sampler.errors == []


def test_a_failing_read_is_recorded_and_sampling_goes_on() -> None:
    read = FakeRead(fail=lambda device, call: call == 1)
    sampler = TelemetrySampler(read, ["gpu0"], hz=NEVER)
    sampler.start()
    sampler.stop()
    assert sampler.errors == ["RuntimeError: read 1 of gpu0 failed"]
    assert [r.t_ns for r in sampler.readings[0]] == [2]


def test_a_device_that_always_fails_does_not_stop_the_others() -> None:
    read = FakeRead(fail=lambda device, call: device == "bad")
    sampler = TelemetrySampler(read, ["good", "bad"], hz=NEVER)
    with sampler:
        pass
    assert len(sampler.readings[0]) == 2
    assert sampler.readings[1] == []
    assert len(sampler.errors) == 2
    assert all(e.startswith("RuntimeError: read ") and "of bad failed" in e for e in sampler.errors)


def test_a_failing_read_in_the_background_thread_is_recorded() -> None:
    read = FakeRead(fail=lambda device, call: call % 2 == 0)
    read.enough_after = 6
    sampler = TelemetrySampler(read, ["gpu0"], hz=1000.0)
    sampler.start()
    try:
        assert read.enough.wait(timeout=30)
    finally:
        sampler.stop()
    assert sampler.errors
    assert all(e.startswith("RuntimeError: read ") for e in sampler.errors)
    assert all(r.t_ns % 2 == 1 for r in sampler.readings[0])


@pytest.mark.parametrize("hz", [0, -5.0])
def test_sampler_rejects_a_rate_that_is_not_positive(hz: float) -> None:
    with pytest.raises(ValueError, match="telemetry rate must be positive"):
        TelemetrySampler(FakeRead(), ["gpu0"], hz=hz)


# -- live access -----------------------------------------------------------------------------------


def test_nvml_open_names_the_nvml_error_here(monkeypatch: pytest.MonkeyPatch) -> None:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("NVML works on this machine: nothing is missing to name")
    monkeypatch.setattr(Nvml, "_opened", None)
    with pytest.raises(NvmlUnavailable, match="NVMLError_") as caught:
        Nvml.open()
    assert isinstance(caught.value, ProbeUnavailable)  # the plugin skips on it
    assert str(caught.value).startswith("NVML unavailable: NVMLError_")
    assert Nvml._opened is None  # a failed open is tried again next time, not cached


def test_nvml_open_without_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Nvml, "_opened", None)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    with pytest.raises(NvmlUnavailable, match="nvidia-ml-py package is not installed"):
        Nvml.open()


class _Struct:
    """A ctypes-like structure, as pynvml returns for memory and utilization."""

    def __init__(self, **values: Any) -> None:
        self._fields_ = [(name, None) for name in values]
        for name, value in values.items():
            setattr(self, name, value)


def fake_pynvml(*, init_error: str | None = None) -> types.ModuleType:
    """A pynvml answering with the recorded H100's answers (bytes and structures, as the
    real one returns them), NotSupported for what the H100 did not support."""
    module = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # pynvml's naming
        pass

    errors: dict[str, type[NVMLError]] = {"NVMLError_NotSupported": NVMLError_NotSupported}
    if init_error:
        errors[init_error] = type(init_error, (NVMLError,), {})
    raw = IDENTITY["nvml"]
    reading = TELEMETRY["readings"][150]
    calls: list[str] = []

    def answer(name: str, value: Any) -> Any:
        def fn(*args: Any) -> Any:
            calls.append(name)
            if isinstance(value, BaseException):
                raise value
            return value

        return fn

    def init() -> None:
        calls.append("nvmlInit")
        if init_error:
            raise errors[init_error]("Driver Not Loaded")

    module.__dict__.update(
        NVMLError=NVMLError,
        NVML_CLOCK_SM=0,
        NVML_CLOCK_MEM=2,
        NVML_TEMPERATURE_GPU=0,
        nvmlInit=init,
        calls=calls,
        nvmlDeviceGetCount=answer("count", 1),
        nvmlDeviceGetHandleByPciBusId=answer("by_bus", "handle0"),
        nvmlDeviceGetHandleByIndex=answer("by_index", "handle0"),
        nvmlDeviceGetName=answer("name", raw["name"].encode()),
        nvmlDeviceGetUUID=answer("uuid", raw["uuid"].encode()),
        nvmlDeviceGetPciInfo_v3=answer("pci", _Struct(busId=raw["pci"]["busId"], bus=0)),
        nvmlSystemGetDriverVersion=answer("driver", raw["driver"]),
        nvmlDeviceGetCudaComputeCapability=answer("cc", (9, 0)),
        nvmlDeviceGetMemoryBusWidth=answer("bus_width", raw["bus_width"]),
        nvmlDeviceGetEnforcedPowerLimit=answer("power_limit", raw["enforced_power_limit"]),
        nvmlDeviceGetMaxPcieLinkGeneration=answer("gen", raw["pcie_max_gen"]),
        nvmlDeviceGetMaxPcieLinkWidth=answer("width", raw["pcie_max_width"]),
        nvmlDeviceGetPowerUsage=answer("power", reading["power_mw"]),
        nvmlDeviceGetTemperature=answer("temperature", reading["temperature_c"]),
        nvmlDeviceGetUtilizationRates=answer("util", _Struct(**reading["utilization"])),
        nvmlDeviceGetCurrentClocksEventReasons=answer("reasons", reading["clock_event_reasons"]),
        nvmlDeviceGetTotalEnergyConsumption=answer("energy", NVMLError_NotSupported()),
    )

    def max_clock(handle: Any, clock: int) -> int:
        return int(raw["max_sm_clock"] if clock == 0 else raw["max_mem_clock"])

    def clock_info(handle: Any, clock: int) -> int:
        return int(reading["sm_clock"] if clock == 0 else reading["mem_clock"])

    def memory(handle: Any) -> _Struct:
        return _Struct(total=raw["memory"]["total"], used=reading["memory_used"]["used"], free=1)

    module.__dict__.update(
        nvmlDeviceGetMaxClockInfo=max_clock,
        nvmlDeviceGetClockInfo=clock_info,
        nvmlDeviceGetMemoryInfo=memory,
    )
    return module


def test_live_queries_parse_like_the_recorded_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(Nvml, "_opened", None)
    nvml = Nvml.open()
    assert Nvml.open() is nvml  # once per process
    assert fake.calls.count("nvmlInit") == 1
    assert nvml.device_count() == 1
    handle = nvml.handle_by_pci_bus_id("00000000:00:06.0")
    raw = nvml.raw_identity(handle)
    assert raw["name"] == H100  # bytes decoded
    assert raw["pci"]["busId"] == "00000000:00:06.0"  # structure turned into a dict
    assert nvml.identity(handle) == DeviceIdentity.from_raw(IDENTITY["nvml"])
    reading = nvml.reading(handle)
    expected = Reading.from_raw(TELEMETRY["readings"][150])
    assert reading.sm_clock_mhz == expected.sm_clock_mhz
    assert reading.clock_event_reasons == expected.clock_event_reasons == 0x4
    assert reading.power_w == expected.power_w
    assert reading.memory_used_bytes == expected.memory_used_bytes
    assert reading.gpu_util_pct == expected.gpu_util_pct
    assert reading.energy_mj is None  # NotSupported: missing, not an error
    assert nvml.raw_reading(handle)["energy_mj"] == {"nvml_error": "NVMLError_NotSupported"}
    assert reading.slowed_down


def test_nvml_open_failure_names_the_error_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error="NVMLError_DriverNotLoaded"))
    monkeypatch.setattr(Nvml, "_opened", None)
    with pytest.raises(NvmlUnavailable) as caught:
        Nvml.open()
    assert str(caught.value) == ("NVML unavailable: NVMLError_DriverNotLoaded (Driver Not Loaded)")
