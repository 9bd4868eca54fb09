"""perf.storage on real files with real fsync: workloads, cache modes, regions, the
filesystem fingerprint, and bad input (errors that name the value, no leftover file)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_perfgate.model import Direction, Measurement
from pytest_perfgate.probes import ProbeInputError
from pytest_perfgate.probes.host import ProbeHost, Resample
from pytest_perfgate.probes.storage import (
    StorageProbe,
    StorageWarning,
    Workload,
    filesystem_of,
    run_workload,
)
from pytest_perfgate.sampling import SamplingPlan

QUICK = {"size": "4MiB", "seconds": 0.15, "ramp": 0.02}


class Host:
    """Keeps what a probe hands to the fixture."""

    def __init__(self, measuring: bool = True, clock: Callable[[], int] | None = None) -> None:
        self.claimed: list[str] = []
        self.judged: list[tuple[Measurement, Resample | None]] = []
        self.at_finish: dict[str, Measurement] = {}
        extra = {} if clock is None else {"clock": clock}
        self.host = ProbeHost(
            measuring=measuring,
            plan=SamplingPlan(max_time=0.2),
            claim=self.claim,
            judge=lambda m, r: self.judged.append((m, r)),
            judge_at_finish=lambda m: self.at_finish.__setitem__(m.name, m),
            **extra,
        )

    def claim(self, name: str) -> None:
        if name in self.claimed:
            raise ValueError(f"measurement {name!r} is already taken")
        self.claimed.append(name)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".perfgate-"))


@pytest.mark.parametrize("workload", ["read", "write", "randread", "randwrite"])
def test_each_workload_measures_real_io_and_leaves_no_file(workload: str, tmp_path: Path) -> None:
    host = Host()
    result = getattr(StorageProbe(host.host), workload)(tmp_path, **QUICK)
    assert result is not None
    assert result.operations > 0
    assert result.mib_per_s > 0
    assert set(result.latency) == {"p50", "p90", "p99", "p99.9", "max"}
    assert result.cache in ("direct", "dropped")
    ((measurement, resample),) = host.judged
    metric = "iops" if workload.startswith("rand") else "throughput"
    assert measurement.name == f"{workload}.{metric}"
    assert measurement.unit == ("IO/s" if metric == "iops" else "MiB/s")
    assert measurement.direction is Direction.HIGHER_IS_BETTER
    assert measurement.machine["storage.cache"] == result.cache
    assert measurement.machine["fs.type"] == filesystem_of(tmp_path).type
    assert measurement.details["block"] == (4096 if workload.startswith("rand") else 2**20)
    assert resample is not None
    assert leftovers(tmp_path) == []


def test_latency_percentiles_can_be_gated_too(tmp_path: Path) -> None:
    host = Host()
    StorageProbe(host.host).randread(tmp_path, gate=("iops", "p50", "p99"), **QUICK)
    by_name = {m.name: m for m, _ in host.judged}
    assert set(by_name) == {"randread.iops", "randread.p50", "randread.p99"}
    assert by_name["randread.p50"].statistic == "median"
    assert by_name["randread.p99"].statistic == "p99"
    assert by_name["randread.p99"].unit == "s"
    assert by_name["randread.p99"].direction is Direction.LOWER_IS_BETTER
    assert len(by_name["randread.p99"].samples) > 100  # every operation's latency


def test_the_ramp_is_discarded(tmp_path: Path) -> None:
    """A clock that ticks 1 us a call: the run starts at 0, the ramp ends at 100 us, and
    no operation that started before is counted."""
    ticks = iter(range(0, 10**15, 1000))

    def clock() -> int:
        return next(ticks)

    workload = Workload("write", tmp_path, 2**20, 2**16, seconds=1e-4, ramp=1e-4)
    run = run_workload(workload, clock=clock)
    start_of_measurement = 100_000  # ramp of 1e-4 s from the first tick (0)
    assert all(c.start_ns >= start_of_measurement for p in run.passes for c in p)


def test_an_error_mid_run_is_the_error_raised(tmp_path: Path) -> None:
    """A failure inside a pass (here the clock) reaches the caller as itself: the
    buffers' clean-up must not replace it with its own complaint."""
    calls = [0]

    class ClockBroke(Exception):
        pass

    def clock() -> int:
        calls[0] += 1
        if calls[0] > 50:
            raise ClockBroke
        return calls[0] * 1000

    workload = Workload("write", tmp_path, 2**20, 2**16, seconds=1.0, ramp=0.0)
    with pytest.raises(ClockBroke):
        run_workload(workload, clock=clock)
    assert list(tmp_path.iterdir()) == []  # its file is gone too


def test_written_data_is_random_not_zeros(tmp_path: Path) -> None:
    """A read workload lays out a file of random data; check one the same way."""
    from pytest_perfgate.probes.storage import _lay_out

    target = tmp_path / "layout"
    fd = os.open(target, os.O_RDWR | os.O_CREAT)
    try:
        _lay_out(fd, Workload("read", tmp_path, 3 * 2**20, 2**20))
    finally:
        os.close(fd)
    data = target.read_bytes()
    assert len(data) == 3 * 2**20
    assert data.count(0) < len(data) // 100
    # No two 512-byte sectors alike: storage that deduplicates would flatter them.
    sectors = {data[i : i + 512] for i in range(0, len(data), 512)}
    assert len(sectors) == len(data) // 512


def test_no_two_written_sectors_are_alike() -> None:
    from pytest_perfgate.probes.storage import _scramble, _sector_words

    buffer = bytearray(os.urandom(4096))
    words = _sector_words(buffer)
    seen = set()
    for _ in range(50):
        _scramble(words)
        seen.update(bytes(buffer[i : i + 512]) for i in range(0, 4096, 512))
    assert len(seen) == 50 * 8


def test_cached_mode_is_recorded_and_never_the_same_class_as_direct(tmp_path: Path) -> None:
    host = Host()
    probe = StorageProbe(host.host)
    probe.read(tmp_path, cache="cached", name="warm", **QUICK)
    probe.read(tmp_path, name="cold", **QUICK)
    warm, cold = (m for m, _ in host.judged)
    assert warm.machine["storage.cache"] == "cached"
    assert cold.machine["storage.cache"] in ("direct", "dropped")


def test_unaligned_blocks_fall_back_to_dropping_the_cache(tmp_path: Path) -> None:
    host = Host()
    result = StorageProbe(host.host).read(tmp_path, block=1000, **QUICK)
    assert result is not None
    assert result.cache == "dropped"
    assert "not a multiple of 4096" in host.judged[0][0].details["not_direct"]


def test_fsync_every_n_writes_flushes_inside_the_measurement(tmp_path: Path) -> None:
    workload = Workload("write", tmp_path, 2**20, 2**16, fsync=4, seconds=0.05, ramp=0.0)
    run = run_workload(workload)
    flushes = [c for p in run.passes for c in p if not c.is_io]
    writes = [c for p in run.passes for c in p if c.is_io]
    assert flushes
    assert len(writes) // 4 <= len(flushes) <= len(writes) // 4 + len(run.passes)


def test_several_operations_in_flight(tmp_path: Path) -> None:
    host = Host()
    result = StorageProbe(host.host).randread(tmp_path, depth=4, **QUICK)
    assert result is not None
    assert host.judged[0][0].details["depth"] == 4
    assert leftovers(tmp_path) == []


def test_region_times_the_users_io_one_sample_per_entry(tmp_path: Path) -> None:
    now = [0]
    host = Host(clock=lambda: now[0])
    probe = StorageProbe(host.host)
    for _ in range(3):
        with probe.region("save", bytes="8MiB", sync=tmp_path):
            (tmp_path / "ckpt").write_bytes(os.urandom(1024))
            now[0] += 100_000_000  # 0.1 s a save
    measurement = host.at_finish["save.throughput"]
    assert measurement.samples == pytest.approx((80.0, 80.0, 80.0))
    assert measurement.unit == "MiB/s"
    assert measurement.machine["storage.cache"] == "as-is"
    assert measurement.machine["fs.type"] == filesystem_of(tmp_path).type
    assert host.claimed == ["save.throughput"]
    if Path("/proc/pressure/cpu").exists():
        assert 0.0 <= measurement.details["cpu_pressure"] <= 1.0  # contention.py


def test_region_drop_evicts_before_the_clock_starts(tmp_path: Path) -> None:
    (tmp_path / "data").write_bytes(os.urandom(2**20))
    host = Host()
    with StorageProbe(host.host).region("load", bytes=2**20, drop=tmp_path):
        (tmp_path / "data").read_bytes()
    assert host.at_finish["load.throughput"].machine["storage.cache"] == "dropped"


def test_a_region_that_raises_records_nothing(tmp_path: Path) -> None:
    host = Host()
    probe = StorageProbe(host.host)
    with pytest.raises(RuntimeError), probe.region("save", bytes=100):
        raise RuntimeError("boom")
    assert host.at_finish == {}


def test_mode_off_measures_nothing(tmp_path: Path) -> None:
    host = Host(measuring=False)
    probe = StorageProbe(host.host)
    assert probe.write(tmp_path, **QUICK) is None
    ran = []
    with probe.region("save", bytes=100):
        ran.append(1)
    assert ran == [1]
    assert host.judged == []
    assert host.at_finish == {}
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": "-1GiB"}, r"size='-1GiB' must be a positive size"),
        ({"size": "5TiB"}, r"size=5 TiB is more than the free space in"),
        ({"size": "lots"}, r"size='lots' is not a size"),
        ({"block": "8MiB", "size": "1MiB"}, r"block=8 MiB is larger than size=1 MiB"),
        ({"depth": 0}, r"depth=0 must be a whole number"),
        ({"fsync": -3}, r"fsync=-3 must be True, False or N >= 1"),
        ({"cache": "warm"}, r"cache='warm' is not one of"),
        ({"seconds": -1}, r"seconds=-1 must be seconds"),
        ({"gate": "speed"}, r"gate='speed': choose among throughput"),
        ({"cache": "direct", "block": 1000}, r"cache='direct' is not possible in .*4096"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(
    options: dict[str, object], message: str, tmp_path: Path
) -> None:
    arguments = {**QUICK, **options}
    with pytest.raises(ProbeInputError, match=message):
        StorageProbe(Host().host).write(tmp_path, **arguments)
    assert leftovers(tmp_path) == []


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProbeInputError, match=r"directory '.*missing' does not exist"):
        StorageProbe(Host().host).write(tmp_path / "missing", **QUICK)


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProbeInputError, match="is not a directory"):
        StorageProbe(Host().host).read(tmp_path / "file", **QUICK)


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc (Linux)")
def test_an_unwritable_directory_is_a_clear_error() -> None:
    # /proc takes no new files, even for root.
    with pytest.raises(ProbeInputError, match=r"cannot create a file in /proc"):
        StorageProbe(Host().host).write("/proc", **QUICK)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and SIGXFSZ are POSIX/Linux")
def test_a_full_target_is_a_clear_error_with_no_leftover_file(tmp_path: Path) -> None:
    """A file-size limit makes writes beyond 1 MiB fail as a full disk would (EFBIG), for
    real: the probe is run in a child process with that limit."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))
        from pytest_perfgate.probes import ProbeInputError
        from pytest_perfgate.probes.storage import Workload, run_workload
        try:
            run_workload(Workload("read", Path({str(tmp_path)!r}), 8 * 2**20, 2**20))
        except ProbeInputError as error:
            print(error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert "perf.storage.read: no space left for size=8 MiB in" in result.stdout, result.stderr
    assert leftovers(tmp_path) == []


def test_filesystem_of_reads_mountinfo(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "30 22 0:25 / /tmp rw,nosuid - tmpfs tmpfs rw\n"
        "31 22 0:26 / /data\\040disk rw - xfs /dev/nvme0n1 rw\n"
    )
    assert filesystem_of(Path("/tmp/x"), mountinfo).type == "tmpfs"
    assert filesystem_of(Path("/tmpx"), mountinfo).type == "ext4"
    data = filesystem_of(Path("/data disk/y"), mountinfo)
    assert (data.type, data.device) == ("xfs", "/dev/nvme0n1")
    assert filesystem_of(Path("/"), tmp_path / "missing").type == "unknown"


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs /dev/shm (tmpfs)")
def test_tmpfs_warns_and_records_it() -> None:
    if filesystem_of(Path("/dev/shm")).type != "tmpfs":
        pytest.skip("/dev/shm is not tmpfs here")
    host = Host()
    with pytest.warns(StorageWarning, match="measures memory speed, not storage"):
        StorageProbe(host.host).write("/dev/shm", size="1MiB", seconds=0.05, ramp=0.0)
    measurement = host.judged[0][0]
    assert measurement.machine["fs.type"] == "tmpfs"
    assert "memory speed" in measurement.details["warning"]
    assert not [p for p in Path("/dev/shm").iterdir() if p.name.startswith(".perfgate-")]


def test_duplicate_names_fail_before_measuring(tmp_path: Path) -> None:
    host = Host()
    probe = StorageProbe(host.host)
    probe.write(tmp_path, **QUICK)
    with pytest.raises(ValueError, match="already taken"), warnings.catch_warnings():
        probe.write(tmp_path, **QUICK)
    assert len(host.judged) == 1


def test_the_second_look_waits_a_moment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_perfgate.probes import storage

    wrapped: list[Resample] = []
    monkeypatch.setattr(storage, "after_a_pause", lambda r: wrapped.append(r) or r)
    host = Host()
    StorageProbe(host.host).write(tmp_path, **QUICK)
    assert [r for _, r in host.judged] == wrapped != []


def test_a_killed_workloads_scratch_file_is_removed_by_the_next(tmp_path: Path) -> None:
    # SIGKILL leaves the scratch file behind (nothing runs in the killed process); the
    # next workload in that directory removes the files of processes that are gone.
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from pytest_perfgate.probes.storage import Workload, run_workload
        run_workload(Workload("write", Path({str(tmp_path)!r}), 2**20, 2**16, seconds=60))
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        for _ in range(600):  # until the child has made its file (at most 30 s)
            if leftovers(tmp_path):
                break
            time.sleep(0.05)
        assert leftovers(tmp_path), "the child never created its scratch file"
    finally:
        child.kill()
        child.wait()
    (orphan,) = leftovers(tmp_path)
    assert orphan.startswith(f".perfgate-storage-{child.pid}-")
    (tmp_path / ".perfgate-storage-notapid").write_bytes(b"")  # not ours to judge: kept
    host = Host()
    StorageProbe(host.host).write(tmp_path, **QUICK)
    assert leftovers(tmp_path) == [".perfgate-storage-notapid"]
