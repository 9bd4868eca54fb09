"""Record raw NVML readings and device facts from a real GPU, as test data.

CI has no GPU, so the logic around NVML (identity, telemetry summaries, peak maths,
throttle handling) is tested on readings recorded here from a real one. Run on a GPU
machine: ``python benchmarks/gpu_record_readings.py OUT_DIR``; it writes
``identity.json`` (what each identity query returned, or the NVML error's name) and
``telemetry.json`` (raw readings at ~50 Hz: idle, then during bf16 matmuls, then idle).
Values are NVML's own units (MHz, mW, degrees C, percent, bytes, mJ, bitmasks).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pynvml


def query(fn: Any, *args: Any) -> Any:
    try:
        value = fn(*args)
    except pynvml.NVMLError as error:
        return {"nvml_error": type(error).__name__}
    if isinstance(value, bytes):
        return value.decode()
    if hasattr(value, "_fields_"):
        return {name: getattr(value, name) for name, _ in value._fields_}
    return value


def identity(handle: Any) -> dict[str, Any]:
    n = pynvml
    return {
        "name": query(n.nvmlDeviceGetName, handle),
        "uuid": query(n.nvmlDeviceGetUUID, handle),
        "pci": query(n.nvmlDeviceGetPciInfo_v3, handle),
        "driver": query(n.nvmlSystemGetDriverVersion),
        "cuda_driver": query(n.nvmlSystemGetCudaDriverVersion_v2),
        "compute_capability": query(n.nvmlDeviceGetCudaComputeCapability, handle),
        "max_sm_clock": query(n.nvmlDeviceGetMaxClockInfo, handle, n.NVML_CLOCK_SM),
        "max_mem_clock": query(n.nvmlDeviceGetMaxClockInfo, handle, n.NVML_CLOCK_MEM),
        "bus_width": query(n.nvmlDeviceGetMemoryBusWidth, handle),
        "enforced_power_limit": query(n.nvmlDeviceGetEnforcedPowerLimit, handle),
        "power_limit_default": query(n.nvmlDeviceGetPowerManagementDefaultLimit, handle),
        "pcie_max_gen": query(n.nvmlDeviceGetMaxPcieLinkGeneration, handle),
        "pcie_max_width": query(n.nvmlDeviceGetMaxPcieLinkWidth, handle),
        "pcie_gpu_max_gen": query(n.nvmlDeviceGetGpuMaxPcieLinkGeneration, handle),
        "pcie_cur_gen": query(n.nvmlDeviceGetCurrPcieLinkGeneration, handle),
        "pcie_cur_width": query(n.nvmlDeviceGetCurrPcieLinkWidth, handle),
        "memory": query(n.nvmlDeviceGetMemoryInfo, handle),
        "num_cores": query(n.nvmlDeviceGetNumGpuCores, handle),
        "persistence_mode": query(n.nvmlDeviceGetPersistenceMode, handle),
        "energy_mj": query(n.nvmlDeviceGetTotalEnergyConsumption, handle),
        "nvlink0_state": query(n.nvmlDeviceGetNvLinkState, handle, 0),
        "applications_sm_clock": query(n.nvmlDeviceGetApplicationsClock, handle, n.NVML_CLOCK_SM),
    }


def reading(handle: Any) -> dict[str, Any]:
    n = pynvml
    return {
        "t_ns": time.perf_counter_ns(),
        "sm_clock": query(n.nvmlDeviceGetClockInfo, handle, n.NVML_CLOCK_SM),
        "mem_clock": query(n.nvmlDeviceGetClockInfo, handle, n.NVML_CLOCK_MEM),
        "power_mw": query(n.nvmlDeviceGetPowerUsage, handle),
        "temperature_c": query(n.nvmlDeviceGetTemperature, handle, n.NVML_TEMPERATURE_GPU),
        "utilization": query(n.nvmlDeviceGetUtilizationRates, handle),
        "memory_used": query(n.nvmlDeviceGetMemoryInfo, handle),
        "clock_event_reasons": query(n.nvmlDeviceGetCurrentClocksEventReasons, handle),
        "energy_mj": query(n.nvmlDeviceGetTotalEnergyConsumption, handle),
    }


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    import torch

    props = torch.cuda.get_device_properties(0)
    facts = {
        "nvml": identity(handle),
        "torch": {
            "version": torch.__version__,
            "name": props.name,
            "l2_cache_size": getattr(props, "L2_cache_size", None),
            "pci": [
                getattr(props, k, None) for k in ("pci_domain_id", "pci_bus_id", "pci_device_id")
            ],
            "uuid": str(getattr(props, "uuid", "")),
            "multi_processor_count": props.multi_processor_count,
        },
    }
    readings: list[dict[str, Any]] = []
    phases: list[tuple[str, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            readings.append(reading(handle))
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    phases.append(("idle", time.perf_counter_ns()))
    time.sleep(1.0)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    phases.append(("matmul", time.perf_counter_ns()))
    deadline = time.perf_counter() + 4.0
    while time.perf_counter() < deadline:
        for _ in range(20):
            a @ b
        torch.cuda.synchronize()
    phases.append(("idle", time.perf_counter_ns()))
    time.sleep(1.0)
    stop.set()
    thread.join()
    (out / "identity.json").write_text(json.dumps(facts, indent=1, sort_keys=True))
    (out / "telemetry.json").write_text(
        json.dumps({"phases": phases, "readings": readings}, indent=0, sort_keys=True)
    )
    print(json.dumps(facts, indent=1, sort_keys=True))
    print(len(readings), "readings")


if __name__ == "__main__":
    main()
