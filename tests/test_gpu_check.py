"""The pure parts of benchmarks/gpu_check.py: counting caught tests from a run's output
(recorded on the H100, benchmarks/results/gpu_check_gate_h100_2026-11-24.json) and the
paired summary of the telemetry cost."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "benchmarks" / "results" / "gpu_check_gate_h100_2026-11-24.json"


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recorded_logs() -> dict[str, str]:
    logs: dict[str, str] = json.loads(RECORDED.read_text())["gate"]["last_logs"]
    return logs


def test_an_unchanged_run_fails_no_test(
    gpu_check: ModuleType, recorded_logs: dict[str, str]
) -> None:
    assert gpu_check.failed_tests(recorded_logs["A/A"]) == []
    assert len(gpu_check.verdict_lines(recorded_logs["A/A"])) == 3


def test_every_regressed_test_is_counted(
    gpu_check: ModuleType, recorded_logs: dict[str, str]
) -> None:
    assert gpu_check.failed_tests(recorded_logs["+10% work"]) == list(gpu_check.GPU_TESTS)


def test_one_regressed_row_is_one_caught_test(
    gpu_check: ModuleType, recorded_logs: dict[str, str]
) -> None:
    row = next(
        line
        for line in recorded_logs["A/A"].splitlines()
        if line.startswith("example_suite/test_gpu.py::test_copy_one_gib")
    )
    output = recorded_logs["A/A"].replace(row, row.replace("UNCHANGED", "REGRESSED"))
    assert gpu_check.failed_tests(output) == ["test_copy_one_gib"]


def test_paired_summary_of_ratios_around_one(gpu_check: ModuleType) -> None:
    ratios = [0.99, 1.0, 1.01, 0.995, 1.005, 1.002, 0.998, 1.003, 0.997, 1.0]
    summary = gpu_check.paired_ratio_summary(ratios)
    assert summary["median"] == pytest.approx(1.0)
    assert summary["sign_ci_low"] < 1.0 < summary["sign_ci_high"]
    assert summary["bootstrap_ci_low"] <= summary["median"] <= summary["bootstrap_ci_high"]
    assert summary["sign_ci_low"] in ratios
    assert summary["sign_ci_high"] in ratios
    assert summary["above_one"] == 4
    assert summary["below_one"] == 4
    assert summary["sign_p"] == pytest.approx(1.0)


def test_paired_summary_sees_a_cost_every_pair_shows(gpu_check: ModuleType) -> None:
    ratios = [1.02 + 0.001 * i for i in range(12)]
    summary = gpu_check.paired_ratio_summary(ratios)
    assert summary["sign_ci_low"] > 1.0
    assert summary["bootstrap_ci_low"] > 1.0
    assert summary["sign_p"] < 0.001


def test_paired_summary_is_reproducible(gpu_check: ModuleType) -> None:
    ratios = [1.0 + ((i * 7) % 11 - 5) / 1000 for i in range(30)]
    assert gpu_check.paired_ratio_summary(ratios) == gpu_check.paired_ratio_summary(ratios)


def test_paired_summary_needs_six_pairs(gpu_check: ModuleType) -> None:
    with pytest.raises(ValueError, match="at least 6 pairs"):
        gpu_check.paired_ratio_summary([1.0] * 5)


def test_a_row_wrapped_by_a_narrow_terminal_is_read(
    gpu_check: ModuleType, recorded_logs: dict[str, str]
) -> None:
    name = "example_suite/test_gpu.py::test_matmul_bf16_8192 [gpu]"
    output = recorded_logs["+10% work"].replace(f"{name}        REGRESSED", f"{name}\n  REGRESSED")
    assert f"{name}\n  REGRESSED" in output
    assert gpu_check.failed_tests(output.replace("FAILED ", "")) == list(gpu_check.GPU_TESTS)
