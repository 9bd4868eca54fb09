"""GPU perf tests: a memory-bound copy, a compute-bound matmul, launch-bound tiny kernels.

They skip where there is no GPU, with the reason (the NVML error's name). Their baselines
in baselines/example_suite/test_gpu.json were recorded on an NVIDIA H100 80GB HBM3 and
gate only that machine class.

PERFGATE_EXAMPLE_GPU_EXTRA_WORK (a fraction, default 0) makes every kernel do that much
more work, so benchmarks/gpu_check.py can check that a real slowdown is caught.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from pytest_perfgate import PerfFixture

EXTRA_WORK = float(os.environ.get("PERFGATE_EXAMPLE_GPU_EXTRA_WORK", "0"))


@pytest.fixture
def torch(perf: PerfFixture) -> Any:
    perf.gpu.require(backend="torch")  # skips without a GPU, naming what is missing
    import torch

    return torch


@pytest.mark.perf
def test_copy_one_gib(perf: PerfFixture, torch: Any) -> None:
    n = 1 << 30
    src = torch.empty(round(n * (1 + EXTRA_WORK)), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    # A copy reads and writes every byte: 2 GiB of device-memory traffic per call.
    perf.gpu(dst.copy_, src, bytes=2 * n)


@pytest.mark.perf
def test_matmul_bf16_8192(perf: PerfFixture, torch: Any) -> None:
    m = n = k = 8192
    k_run = 64 * round(k * (1 + EXTRA_WORK) / 64)
    a = torch.randn(m, k_run, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(k_run, n, dtype=torch.bfloat16, device="cuda")
    perf.gpu(torch.matmul, a, b, flops=2 * m * n * k, dtype="bf16")


@pytest.mark.perf
def test_ten_tiny_kernels_graph(perf: PerfFixture, torch: Any) -> None:
    x = torch.zeros(4096, device="cuda")
    launches = round(10 * (1 + EXTRA_WORK))

    def ten_tiny_kernels() -> None:
        for _ in range(launches):
            x.add_(1.0)

    # Launch-bound: each kernel's work is tiny, its fixed cost is not. Replayed as a CUDA
    # graph, the GPU's share of that cost is measured without the host's (Python and
    # driver) share, which varies with the host and is measured by mode="batch".
    perf.gpu(ten_tiny_kernels, mode="graph", items=10)
