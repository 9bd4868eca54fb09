"""Storage: fio-like workloads on a real file, and the test's own I/O timed as a region.

The files go to pytest's tmp_path: the filesystem type and device, and how the page
cache was kept out, are stored with each baseline and must match for it to gate.
"""

import os

import pytest

CHECKPOINT = os.urandom(4 * 2**20)


# The VM's disk is a file on a shared host: its write throughput shifted by 35-42% for
# minutes at a time in A/A runs (3 of 10 failed at a 25% threshold), with nothing inside
# the VM to show it. Writes here are gated against a halving; on a disk of your own,
# 10-25% is realistic.
WRITE_THRESHOLD = 1.0


@pytest.mark.perf(threshold=WRITE_THRESHOLD)
def test_checkpoint_write(perf, tmp_path):
    # Sequential 1 MiB writes, fsync at the end of each pass over the 32 MiB file.
    perf.storage.write(tmp_path, size="32MiB", block="1MiB", fsync=True, seconds=0.6, ramp=0.1)


# The tail is gated at p90: on the shared VM's virtual disk the p99 of these reads was
# about 80 us in most runs and 290-350 us in about one run in eight (the host's doing,
# invisible from inside), while the p90 stayed within 53-71 us.
@pytest.mark.perf(threshold=0.5)
def test_random_read(perf, tmp_path):
    # 4 KiB random reads, page cache kept out: IOPS and the p90 latency are gated.
    perf.storage.randread(tmp_path, size="32MiB", seconds=0.6, ramp=0.1, gate=("iops", "p90"))


@pytest.mark.perf(threshold=WRITE_THRESHOLD)
def test_save_checkpoint(perf, tmp_path):
    # The test's own I/O: each save is one sample, fsynced before the clock stops.
    target = tmp_path / "ckpt.bin"
    for _ in range(15):
        with perf.storage.region("save", bytes=len(CHECKPOINT), sync=target):
            target.write_bytes(CHECKPOINT)
