"""Storage: fio's workloads (read, write, randread, randwrite) on a real file, and timed
regions around the user's own I/O.

What makes the numbers honest (docs/explanation/storage-and-network.md):

- The page cache is defeated. O_DIRECT with page-aligned buffers where the filesystem
  allows it ("direct"); else buffered I/O with fsync and posix_fadvise(DONTNEED) before
  each read pass and after each write pass ("dropped"). The mode is recorded as a
  machine-class field, so a baseline is never compared across modes.
- The data is random, not zeros (compression and deduplication would flatter zeros).
- Runs are time-based: a ramp that is discarded, then the measured time; the completions
  are cut into slices, one sample of the gate each (iostats.slice_rates).
- The filesystem type and device are machine-class fields; tmpfs warns (memory speed).
- The test file is created under a hidden name and always removed, error or not.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

import numpy as np

from ..contention import cpu_stall_us, device_bytes, others_share, pressure_between
from ..model import Direction, Measurement
from ..sampling import Clock
from . import ProbeInputError
from .cpuidle import DEFAULT, cpus_kept_awake
from .host import ProbeHost, after_a_pause
from .iostats import (
    Completion,
    latencies,
    percentiles,
    slice_rates,
)
from .units import format_size, parse_size

WORKLOADS = ("read", "write", "randread", "randwrite")
CACHE_MODES = ("auto", "direct", "dropped", "cached")
#: Offsets and lengths of O_DIRECT I/O are multiples of this (covers 512 B and 4 KiB
#: logical blocks); buffers are page-aligned anonymous mmaps.
DIRECT_ALIGNMENT = 4096
#: Filesystems that live in memory: what they measure is memory speed.
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")
#: Gated metrics a workload may name: rates, and latency percentiles (p50 is the median).
METRICS = ("throughput", "iops", "p50", "p90", "p99", "p99.9")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
#: Samples (slices) a run's completions are cut into for the gate.
SLICES = 20
#: fsync policy value for "once at the end of each pass" (fio's end_fsync).
SYNC_AT_END = -1
#: Storage below a VM may deduplicate 512-byte sectors: every sector of every write
#: differs from all others written (fio's scramble_buffers). Measured here: blocks that
#: differ in one word write 1.5x faster than fio's default, identical to its
#: scramble_buffers=0 (docs/performance.md).
SECTOR = 512
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _sector_words(buffer: bytearray | mmap.mmap) -> np.ndarray:
    """The first 8-byte word of each 512-byte sector of ``buffer``, as a writable view."""
    return np.frombuffer(buffer, dtype=np.uint64)[:: SECTOR // 8]


def _scramble(words: np.ndarray) -> None:
    """Change every sector's first word: no sector is ever written twice alike."""
    words += _GOLDEN


class StorageWarning(UserWarning):
    """A storage measurement that may not mean what it seems (e.g. tmpfs)."""


@final
@dataclass(frozen=True, slots=True)
class FileSystem:
    """The filesystem a path lives on, from /proc/self/mountinfo."""

    type: str  #: "ext4", "xfs", "tmpfs", "overlay"... ("unknown" off Linux)
    device: str  #: the mount's source: "/dev/nvme0n1p2", "overlay", "tmpfs"
    mount_point: str

    @property
    def in_memory(self) -> bool:
        return self.type in MEMORY_FILESYSTEMS

    def machine(self) -> dict[str, str]:
        return {"fs.type": self.type, "fs.device": self.device}


def filesystem_of(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> FileSystem:
    """The filesystem holding ``path``: the mount with the longest matching mount point."""
    target = os.path.realpath(path)
    best = FileSystem("unknown", "unknown", "")
    try:
        lines = mountinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return best
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 2:
            continue
        # Spaces and other odd characters in mount points are octal escapes.
        mount_point = fields[4].encode().decode("unicode_escape")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best.mount_point):
            best = FileSystem(tail[0], tail[1], mount_point)
    return best


@final
@dataclass(frozen=True, slots=True)
class Workload:
    """One fio-like job, validated (sizes in bytes, times in seconds)."""

    rw: str  #: read, write, randread or randwrite
    directory: Path
    size: int  #: file size (a multiple of ``block``)
    block: int
    depth: int = 1  #: operations in flight (threads)
    fsync: int = SYNC_AT_END  #: 0 never, N after every N writes, SYNC_AT_END once per pass
    datasync: bool = False  #: fdatasync instead of fsync
    cache: str = "auto"
    seconds: float = 1.0
    ramp: float = 0.25
    seed: int = 0  #: for random offsets and data

    @property
    def writes(self) -> bool:
        return self.rw in ("write", "randwrite")

    @property
    def random(self) -> bool:
        return self.rw.startswith("rand")

    def describe(self) -> dict[str, Any]:
        return {
            "workload": self.rw,
            "size": self.size,
            "block": self.block,
            "depth": self.depth,
            "fsync": "end" if self.fsync == SYNC_AT_END else self.fsync,
            "sync_call": "fdatasync" if self.datasync else "fsync",
            "seconds": self.seconds,
            "ramp": self.ramp,
        }


@final
@dataclass(frozen=True, slots=True)
class StorageRun:
    """What one run of a workload measured."""

    workload: Workload
    cache: str  #: "direct", "dropped" or "cached"
    filesystem: FileSystem
    passes: tuple[tuple[Completion, ...], ...]  #: measured completions, per pass
    note: str = ""  #: why the cache mode is not "direct", where it is not
    #: Share of the run during which some task waited for a CPU (contention.py).
    cpu_pressure: float | None = None
    idle: str = DEFAULT  #: "polling" where CPUs were kept out of idle states (cpuidle.py)
    #: Share of the device's traffic during the run that was not the workload's own.
    io_others: float | None = None

    def machine(self) -> dict[str, str]:
        return {**self.filesystem.machine(), "storage.cache": self.cache, "cpu.idle": self.idle}


@final
@dataclass(frozen=True, slots=True)
class StorageResult:
    """The figures of one workload run, as ``perf.storage.<workload>(...)`` returns them."""

    workload: str
    mib_per_s: float  #: bytes over time of the measured run
    iops: float
    latency: Mapping[str, float]  #: seconds per operation: p50, p90, p99, p99.9, max
    cache: str  #: how the page cache was kept out: "direct", "dropped" or "cached"
    filesystem: FileSystem
    operations: int
    seconds: float  #: measured time (ramp and gaps between passes excluded)
    details: Mapping[str, Any] = field(default_factory=dict)


#: Scratch files are named ``.perfgate-storage-<pid>-<random>``: the pid says whose they are.
SCRATCH_PREFIX = ".perfgate-storage-"


def remove_orphans(directory: Path) -> list[Path]:
    """Remove scratch files left in ``directory`` by processes that no longer run (a test
    killed with SIGKILL cannot remove its own); returns what was removed."""
    removed = []
    for path in directory.glob(f"{SCRATCH_PREFIX}*-*"):
        pid = path.name[len(SCRATCH_PREFIX) :].partition("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but another user's (EPERM)
        return True
    return True


def run_workload(workload: Workload, *, clock: Clock | None = None) -> StorageRun:
    """Create a file in the workload's directory, run the workload on it, remove it."""
    clock = clock or time.perf_counter_ns
    where = f"perf.storage.{workload.rw}"
    directory = workload.directory
    if not directory.is_dir():
        problem = "does not exist" if not directory.exists() else "is not a directory"
        raise ProbeInputError(f"{where}: directory {str(directory)!r} {problem}")
    filesystem = filesystem_of(directory)
    remove_orphans(directory)
    try:
        fd, name = tempfile.mkstemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=directory)
    except OSError as error:
        raise ProbeInputError(
            f"{where}: cannot create a file in {directory} ({error.strerror or error})"
        ) from None
    path = Path(name)
    try:
        free = shutil.disk_usage(directory).free
        if workload.size > free:
            os.close(fd)
            raise ProbeInputError(
                f"{where}: size={format_size(workload.size)} is more than the free space in "
                f"{directory} ({format_size(free)})"
            )
        try:
            _lay_out(fd, workload)
        finally:
            os.close(fd)
        fd, cache, note = _open(path, workload, filesystem)
        stalled, began = cpu_stall_us(), time.monotonic_ns()
        traffic = device_bytes(filesystem.device)
        try:
            with cpus_kept_awake() as idle:
                passes, moved = _run_passes(fd, workload, cache, clock)
        finally:
            os.close(fd)
        pressure = pressure_between(stalled, cpu_stall_us(), time.monotonic_ns() - began)
        # Cached I/O need not reach the device: then its traffic says nothing about ours.
        io_others = (
            None
            if cache == "cached"
            else others_share(traffic, device_bytes(filesystem.device), moved)
        )
    except OSError as error:
        if error.errno in _NO_SPACE:
            raise ProbeInputError(
                f"{where}: no space left for size={format_size(workload.size)} in "
                f"{directory} ({error.strerror})"
            ) from None
        raise ProbeInputError(f"{where}: I/O error in {directory}: {error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return StorageRun(workload, cache, filesystem, passes, note, pressure, idle, io_others)


def _lay_out(fd: int, workload: Workload) -> None:
    """Reads need a file of random data; writes get their space reserved up front (as
    fio's fallocate=native does), which also fails early, and cleanly, when it is full."""
    if workload.writes:
        try:
            os.posix_fallocate(fd, 0, workload.size)
        except OSError as error:
            if error.errno in _NO_SPACE:
                raise
        except AttributeError:  # pragma: no cover - no posix_fallocate off Linux
            pass
        return
    chunk = bytearray(os.urandom(min(workload.size, 1 << 20)))
    words = _sector_words(chunk)
    written = 0
    while written < workload.size:
        _scramble(words)
        written += os.write(fd, memoryview(chunk)[: workload.size - written])
    os.fsync(fd)


def _open(path: Path, workload: Workload, filesystem: FileSystem) -> tuple[int, str, str]:
    """Open the file for the cache mode asked for; returns (fd, mode, why not direct)."""
    flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
    reason = ""
    if workload.cache in ("auto", "direct"):
        direct = getattr(os, "O_DIRECT", 0)
        if not direct:
            reason = "this platform has no O_DIRECT"
        elif workload.block % DIRECT_ALIGNMENT:
            reason = f"block={workload.block} is not a multiple of {DIRECT_ALIGNMENT}"
        else:
            try:
                fd = os.open(path, flags | direct)
            except OSError as error:
                reason = f"{filesystem.type} refuses O_DIRECT ({error.strerror})"
            else:
                # Some filesystems take the flag and refuse the I/O: try one.
                probe = mmap.mmap(-1, DIRECT_ALIGNMENT)
                try:
                    os.preadv(fd, [probe], 0)
                    return fd, "direct", ""
                except OSError as error:
                    os.close(fd)
                    reason = f"{filesystem.type} refuses O_DIRECT reads ({error.strerror})"
                finally:
                    probe.close()
        if workload.cache == "direct":
            raise ProbeInputError(
                f"perf.storage.{workload.rw}: cache='direct' is not possible in "
                f"{workload.directory}: {reason}"
            )
    can_drop = hasattr(os, "posix_fadvise")
    if workload.cache == "dropped" and not can_drop:
        raise ProbeInputError(
            f"perf.storage.{workload.rw}: cache='dropped' needs posix_fadvise, "
            "which this platform lacks"
        )
    if workload.cache == "cached" or not can_drop:
        mode = "cached"
    elif workload.writes:
        # Buffered writes that are never synced stay in memory: that is the cache's speed.
        mode = "dropped" if workload.fsync else "cached"
    else:
        mode = "dropped"
    return os.open(path, flags), mode, reason


def _drop_cache(fd: int) -> None:
    """Flush, then ask the kernel to forget the file's pages (clean pages only go)."""
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _run_passes(
    fd: int, workload: Workload, cache: str, clock: Clock
) -> tuple[tuple[tuple[Completion, ...], ...], int]:
    """The measured completions of each pass (ramp discarded), and every byte moved."""
    blocks = workload.size // workload.block
    rng = np.random.default_rng(workload.seed)
    buffers = [mmap.mmap(-1, workload.block) for _ in range(workload.depth)]
    for buffer in buffers:
        buffer[:] = os.urandom(workload.block)
    # Views into the buffers; dropped before the buffers are closed (mmap refuses to
    # close while a view exports its memory).
    sector_words = [_sector_words(buffer) for buffer in buffers] if workload.writes else []
    sync = os.fdatasync if workload.datasync else os.fsync
    start = clock()
    measure_from = start + int(workload.ramp * 1e9)
    deadline = measure_from + int(workload.seconds * 1e9)
    passes: list[tuple[Completion, ...]] = []
    moved = 0
    try:
        while True:
            if cache == "dropped" and not workload.writes:
                _drop_cache(fd)  # between passes: no slice contains it
            order: Iterable[int] = (
                rng.permutation(blocks).tolist() if workload.random else range(blocks)
            )
            done = _one_pass(fd, workload, order, buffers, sector_words, clock, deadline, sync)
            if workload.writes and workload.fsync == SYNC_AT_END:
                flush_start = clock()
                sync(fd)
                done.append((flush_start, clock(), 0, False))
            moved += sum(c[2] for c in done)
            passes.append(
                tuple(Completion(*c) for c in done if c[0] >= measure_from)  # ramp discarded
            )
            if cache == "dropped" and workload.writes:
                _drop_cache(fd)
            if clock() >= deadline:
                break
    finally:
        sector_words.clear()
        for buffer in buffers:
            # A traceback on its way out still holds views into the buffers: let it
            # free them, so the error the user sees is the one that happened.
            with contextlib.suppress(BufferError):
                buffer.close()
    return tuple(p for p in passes if p), moved


#: A completion while running: (start_ns, end_ns, bytes, is_io); tuples are cheap to make.
_Done = tuple[int, int, int, bool]


def _one_pass(
    fd: int,
    workload: Workload,
    order: Iterable[int],
    buffers: list[mmap.mmap],
    sector_words: list[np.ndarray],
    clock: Clock,
    deadline: int,
    sync: Any,
) -> list[_Done]:
    """One traversal of the file (or until the deadline), ``depth`` operations in flight."""
    blocks = iter(order)
    if workload.depth == 1:
        done: list[_Done] = []
        words = sector_words[0] if sector_words else None
        _worker(fd, workload, blocks, None, buffers[0], words, clock, deadline, sync, done)
        return done
    lock = threading.Lock()
    results: list[list[_Done]] = [[] for _ in buffers]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            words = sector_words[index] if sector_words else None
            _worker(
                fd,
                workload,
                blocks,
                lock,
                buffers[index],
                words,
                clock,
                deadline,
                sync,
                results[index],
            )
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(buffers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [c for r in results for c in r]


def _worker(
    fd: int,
    workload: Workload,
    blocks: Iterator[int],
    lock: threading.Lock | None,
    buffer: mmap.mmap,
    words: np.ndarray | None,
    clock: Clock,
    deadline: int,
    sync: Any,
    done: list[_Done],
) -> None:
    size, writes = workload.block, workload.writes
    every = workload.fsync if workload.fsync > 0 else 0
    count = 0
    while True:
        if lock is None:
            index = next(blocks, None)
        else:
            with lock:
                index = next(blocks, None)
        if index is None:
            return
        start = clock()
        if start >= deadline:
            return
        if words is not None:
            _scramble(words)  # before the clock starts, as fio fills its buffers
            start = clock()
            moved = os.pwrite(fd, buffer, index * size)
        else:
            moved = os.preadv(fd, [buffer], index * size)
        end = clock()
        if moved != size:
            raise OSError(errno.EIO, f"short {'write' if writes else 'read'}: {moved} of {size} B")
        done.append((start, end, moved, True))
        count += 1
        if every and count % every == 0:
            flush_start = clock()
            sync(fd)
            done.append((flush_start, clock(), 0, False))


def _sync_tree(path: Path) -> None:
    """fsync a file, or every file under a directory and the directories themselves."""
    targets = [path] if path.is_file() else [*sorted(path.rglob("*")), path]
    for target in targets:
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _drop_tree(path: Path) -> None:
    """Evict a file, or every file under a directory, from the page cache."""
    for target in [path] if path.is_file() else sorted(path.rglob("*")):
        if target.is_file():
            fd = os.open(target, os.O_RDONLY)
            try:
                _drop_cache(fd)
            finally:
                os.close(fd)


class StorageProbe:
    """``perf.storage``: storage workloads and timed regions of the user's own I/O."""

    def __init__(self, host: ProbeHost) -> None:
        self._host = host
        self._regions: dict[str, list[float]] = {}
        #: Per region: the contention of each entry (contention.py), averaged in details.
        self._contention: dict[str, list[dict[str, float]]] = {}

    def read(self, directory: str | os.PathLike[str], **options: Any) -> StorageResult | None:
        """Sequential reads of a file of random data (page cache defeated). See
        :meth:`run` for the options."""
        __tracebackhide__ = True
        return self.run("read", directory, **options)

    def write(self, directory: str | os.PathLike[str], **options: Any) -> StorageResult | None:
        """Sequential writes, fsync once per pass by default. See :meth:`run`."""
        __tracebackhide__ = True
        return self.run("write", directory, **options)

    def randread(self, directory: str | os.PathLike[str], **options: Any) -> StorageResult | None:
        """Random reads (each block once per pass, in a random order). See :meth:`run`."""
        __tracebackhide__ = True
        return self.run("randread", directory, **options)

    def randwrite(self, directory: str | os.PathLike[str], **options: Any) -> StorageResult | None:
        """Random writes. See :meth:`run`."""
        __tracebackhide__ = True
        return self.run("randwrite", directory, **options)

    def run(
        self,
        workload: str,
        directory: str | os.PathLike[str],
        *,
        size: int | str = "64MiB",
        block: int | str | None = None,
        depth: int = 1,
        fsync: bool | int = True,
        datasync: bool = False,
        cache: str = "auto",
        seconds: float | None = None,
        ramp: float | None = None,
        gate: str | Iterable[str] | None = None,
        name: str | None = None,
    ) -> StorageResult | None:
        """Run an fio-like workload on a file in ``directory`` and gate its figures.

        ``size``: the file; ``block``: bytes per operation (default 1 MiB sequential,
        4 KiB random); ``depth``: operations in flight (threads); ``fsync``: True, once
        per pass (fio's end_fsync), N after every N writes, False never; ``datasync``:
        fdatasync instead; ``cache``: auto (direct, else dropped), direct, dropped or
        cached; ``seconds`` measured after ``ramp`` discarded seconds (defaults: the
        test's max_time, and a quarter of it up to 0.5 s); ``gate``: the metrics to gate
        (throughput, iops, p50, p90, p99, p99.9; default throughput for sequential, iops
        for random workloads), each the measurement ``<name>.<metric>``; ``name``:
        default the workload. Returns the figures (None under --perf-mode=off).
        """
        __tracebackhide__ = True
        spec = self._workload(
            workload, directory, size, block, depth, fsync, datasync, cache, seconds, ramp
        )
        metrics = _metrics(gate, default="iops" if spec.random else "throughput", where=workload)
        base = name or workload
        for metric in metrics:
            self._host.claim(f"{base}.{metric}")
        if not self._host.measuring:
            return None
        first = run_workload(spec, clock=self._host.clock)
        if first.filesystem.in_memory:
            warnings.warn(
                f"perf.storage.{workload}: {spec.directory} is on {first.filesystem.type}: "
                "this measures memory speed, not storage",
                StorageWarning,
                stacklevel=3,
            )
        for metric in metrics:

            def resample(metric: str = metric) -> Measurement:
                return _measurement(base, metric, run_workload(spec, clock=self._host.clock))

            self._host.judge(_measurement(base, metric, first), after_a_pause(resample))
        return _result(first)

    def _workload(
        self,
        rw: str,
        directory: str | os.PathLike[str],
        size: int | str,
        block: int | str | None,
        depth: int,
        fsync: bool | int,
        datasync: bool,
        cache: str,
        seconds: float | None,
        ramp: float | None,
    ) -> Workload:
        where = f"perf.storage.{rw}"
        if rw not in WORKLOADS:
            raise ProbeInputError(f"perf.storage: workload {rw!r} is not one of {WORKLOADS}")
        if cache not in CACHE_MODES:
            raise ProbeInputError(f"{where}: cache={cache!r} is not one of {CACHE_MODES}")
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 256:
            raise ProbeInputError(f"{where}: depth={depth!r} must be a whole number in 1..256")
        if isinstance(fsync, bool):
            sync_policy = SYNC_AT_END if fsync else 0
        elif isinstance(fsync, int) and fsync >= 1:
            sync_policy = fsync
        else:
            raise ProbeInputError(f"{where}: fsync={fsync!r} must be True, False or N >= 1")
        size_bytes = parse_size(size, argument="size", where=where)
        default_block = "4KiB" if rw.startswith("rand") else "1MiB"
        block_bytes = parse_size(
            default_block if block is None else block, argument="block", where=where
        )
        if block_bytes > size_bytes:
            raise ProbeInputError(
                f"{where}: block={format_size(block_bytes)} is larger than "
                f"size={format_size(size_bytes)}"
            )
        plan = self._host.plan
        run_seconds = plan.max_time if seconds is None else seconds
        ramp_seconds = min(0.5, run_seconds / 4) if ramp is None else ramp
        for label, value in (("seconds", run_seconds), ("ramp", ramp_seconds)):
            if not (isinstance(value, int | float) and 0 <= value < 3600):
                raise ProbeInputError(f"{where}: {label}={value!r} must be seconds in [0, 3600)")
        if run_seconds <= 0:
            raise ProbeInputError(f"{where}: seconds={run_seconds!r} must be positive")
        return Workload(
            rw=rw,
            directory=Path(directory),
            size=size_bytes - size_bytes % block_bytes,
            block=block_bytes,
            depth=depth,
            fsync=sync_policy,
            datasync=bool(datasync),
            cache=cache,
            seconds=float(run_seconds),
            ramp=float(ramp_seconds),
        )

    @contextlib.contextmanager
    def region(
        self,
        name: str,
        *,
        bytes: int | str,
        sync: str | os.PathLike[str] | None = None,
        drop: str | os.PathLike[str] | None = None,
    ) -> Iterator[None]:
        """Time the user's own I/O of ``bytes`` bytes: each entry is one MiB/s sample of
        ``<name>.throughput``, judged when the test's call ends.

        ``drop``: a file or directory evicted from the page cache before the clock
        starts (for reads); ``sync``: one fsynced, with its directories, before the clock
        stops (for writes: the data is on the device, not in memory).
        """
        where = f"perf.storage.region({name!r})"
        nbytes = parse_size(bytes, argument="bytes", where=where)
        measurement_name = f"{name}.throughput"
        if not self._host.measuring:
            yield
            return
        samples = self._regions.get(name)
        if samples is None:
            self._host.claim(measurement_name)
            samples = self._regions[name] = []
        if drop is not None:
            _drop_tree(Path(drop))
        anchor = sync if sync is not None else drop
        filesystem = None if anchor is None else filesystem_of(Path(anchor))
        device = "" if filesystem is None else filesystem.device
        stalled, traffic, began = cpu_stall_us(), device_bytes(device), time.monotonic_ns()
        clock = self._host.clock
        start = clock()
        yield
        if sync is not None:
            _sync_tree(Path(sync))
        elapsed = max(clock() - start, 1)
        samples.append(nbytes / 2**20 / (elapsed / 1e9))
        entry = {
            "cpu_pressure": pressure_between(stalled, cpu_stall_us(), time.monotonic_ns() - began),
            "io_others": others_share(traffic, device_bytes(device), nbytes),
        }
        contention = self._contention.setdefault(name, [])
        contention.append({k: v for k, v in entry.items() if v is not None})
        machine = {} if filesystem is None else filesystem.machine()
        machine["storage.cache"] = "dropped" if drop is not None else "as-is"
        details = {"bytes": nbytes, "synced": sync is not None, **_averaged(contention)}
        self._host.judge_at_finish(
            Measurement(
                measurement_name,
                "MiB/s",
                Direction.HIGHER_IS_BETTER,
                tuple(samples),
                stop_reason="region entries",
                machine=machine,
                details=details,
            )
        )


def _averaged(contention: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each contention figure that every region entry has."""
    return {
        key: round(sum(c[key] for c in contention) / len(contention), 4)
        for key in ("cpu_pressure", "io_others")
        if all(key in c for c in contention)
    }


def _metrics(gate: str | Iterable[str] | None, *, default: str, where: str) -> tuple[str, ...]:
    chosen = (default,) if gate is None else (gate,) if isinstance(gate, str) else tuple(gate)
    unknown = [m for m in chosen if m not in METRICS]
    if unknown or not chosen:
        raise ProbeInputError(
            f"perf.storage.{where}: gate={gate!r}: choose among {', '.join(METRICS)}"
        )
    return tuple(dict.fromkeys(chosen))


def _details(run: StorageRun) -> dict[str, Any]:
    rates = slice_rates(run.passes, SLICES)
    details: dict[str, Any] = {
        **run.workload.describe(),
        "cache": run.cache,
        "fs": run.filesystem.type,
        "passes": len(run.passes),
        "measured_seconds": round(rates.seconds, 6),
        "mib_per_s": round(rates.mean_mib_per_s, 3),
        "iops": round(rates.mean_ops_per_s, 3),
        "latency_s": {k: float(f"{v:.6g}") for k, v in percentiles(latencies(run.passes)).items()},
    }
    if run.note:
        details["not_direct"] = run.note
    if run.cpu_pressure is not None:
        details["cpu_pressure"] = round(run.cpu_pressure, 4)
    if run.io_others is not None:
        details["io_others"] = round(run.io_others, 4)
    if run.filesystem.in_memory:
        details["warning"] = f"{run.filesystem.type}: memory speed, not storage"
    return details


def _measurement(base: str, metric: str, run: StorageRun) -> Measurement:
    """The measurement ``<base>.<metric>`` of one run."""
    if not run.passes:
        raise ProbeInputError(
            f"perf.storage.{run.workload.rw}: no operation completed in the measured time "
            f"(seconds={run.workload.seconds}); give it more time"
        )
    name = f"{base}.{metric}"
    common: dict[str, Any] = {
        "stop_reason": "time budget",
        "machine": run.machine(),
        "details": _details(run),
    }
    if metric in ("throughput", "iops"):
        rates = slice_rates(run.passes, SLICES)
        values, unit = (
            (rates.mib_per_s, "MiB/s") if metric == "throughput" else (rates.ops_per_s, "IO/s")
        )
        return Measurement(name, unit, Direction.HIGHER_IS_BETTER, values, **common)
    statistic = "median" if metric == "p50" else metric
    return Measurement(
        name, "s", Direction.LOWER_IS_BETTER, latencies(run.passes), statistic=statistic, **common
    )


def _result(run: StorageRun) -> StorageResult:
    if not run.passes:
        return StorageResult(run.workload.rw, 0.0, 0.0, {}, run.cache, run.filesystem, 0, 0.0)
    rates = slice_rates(run.passes, SLICES)
    return StorageResult(
        workload=run.workload.rw,
        mib_per_s=rates.mean_mib_per_s,
        iops=rates.mean_ops_per_s,
        latency=percentiles(latencies(run.passes)),
        cache=run.cache,
        filesystem=run.filesystem,
        operations=rates.total_ops,
        seconds=rates.seconds,
        details=_details(run),
    )
