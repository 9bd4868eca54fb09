"""CPUs kept out of idle states while I/O is measured, where the kernel lets us."""

from __future__ import annotations

import struct
from pathlib import Path

from pytest_perfgate.probes.cpuidle import DEFAULT, POLLING, cpus_kept_awake


def test_the_latency_request_is_written_and_released(tmp_path: Path) -> None:
    qos = tmp_path / "cpu_dma_latency"
    qos.write_bytes(b"")
    with cpus_kept_awake(qos) as idle:
        assert idle == POLLING
        assert qos.read_bytes() == struct.pack("i", 0)


def test_without_permission_the_kernel_decides(tmp_path: Path) -> None:
    with cpus_kept_awake(tmp_path / "missing" / "cpu_dma_latency") as idle:
        assert idle == DEFAULT


def test_an_error_in_the_block_still_releases_the_request(tmp_path: Path) -> None:
    qos = tmp_path / "cpu_dma_latency"
    qos.write_bytes(b"")
    try:
        with cpus_kept_awake(qos):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with cpus_kept_awake(qos) as idle:  # the file was closed: it opens again
        assert idle == POLLING
