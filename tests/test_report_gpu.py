"""The GPU line of the end-of-run report, on details recorded from a real H100 run of
benchmarks/gpu_check.py (tests/data/nvml/h100_gpu_details.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_perfgate.model import Direction, Measurement
from pytest_perfgate.report.terminal import gpu_lines

DETAILS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "nvml" / "h100_gpu_details.json").read_text()
)


def measurement(details: dict[str, Any] | None) -> Measurement:
    return Measurement(
        "gpu",
        "s",
        Direction.LOWER_IS_BETTER,
        (1e-3,),
        details={} if details is None else {"gpu": details},
    )


def test_matmul_line_gives_rate_peak_clock_and_slowdowns() -> None:
    (line,) = gpu_lines([("test_mm [gpu]", measurement(DETAILS["matmul 8192^3 bf16"]["cold"]))])
    assert line.startswith("test_mm [gpu]: cold, cuda-event; ")
    assert "TFLOP/s = " in line
    assert "% of peak (datasheet: H100 80GB HBM3 dense bf16 = 989 TFLOP/s)" in line
    assert " MHz, " in line
    assert "(SW power cap)" in line


def test_copy_line_gives_bandwidth_against_the_nvml_peak() -> None:
    (line,) = gpu_lines([("test_copy", measurement(DETAILS["copy 1 GiB"]["cold"]))])
    assert "GB/s = 89." in line
    assert "(NVML: 2 x 2619 MHz x 5120 bit / 8 = 3352 GB/s)" in line


def test_missing_telemetry_is_said_and_cpu_measurements_are_left_out() -> None:
    host = {"mode": "batch", "timer": "host+sync", "throughput": {}, "telemetry": None,
            "telemetry_missing": "host timer: no CUDA device to map to NVML"}  # fmt: skip
    lines = gpu_lines([("a", measurement(host)), ("b", measurement(None))])
    assert lines == ["a: batch, host+sync; no telemetry: host timer: no CUDA device to map to NVML"]


def test_a_rate_above_the_peak_says_which_limit_applies() -> None:
    details = json.loads(json.dumps(DETAILS["copy 1 GiB"]["graph"]))
    details["throughput"]["bandwidth_percent_of_peak"] = 105.0
    details["throughput"]["bandwidth_above_peak"] = "faster than HBM: the data fits in L2 (50 MiB)"
    (line,) = gpu_lines([("test_add", measurement(details))])
    assert "= 105.0% of peak (NVML: " in line
    assert "3352 GB/s): faster than HBM: the data fits in L2 (50 MiB)" in line
