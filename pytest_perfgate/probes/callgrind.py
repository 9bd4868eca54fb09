"""Valgrind's callgrind, as the instruction probe and the plugin's restart use it.

Kept free of numpy and of the other probes: the pytest plugin imports it at start-up
to decide whether to restart the run under Valgrind (docs/explanation/measurement.md).
The client requests are C macros: ``_valgrind.c`` wraps them in functions, compiled
with the system C compiler on first use (cached per user, keyed by the source, the
Python and the platform: :func:`helper_library`) and called through ctypes. Each dump
is a file in a directory the restarted run owns; its ``totals:`` line is the count. The
helper also holds the counting allocator the counts are taken on (:class:`CountingAllocator`).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import final

from . import ProbeUnavailable

#: The unit of a count: instructions executed per call.
INSTRUCTIONS = "instructions"
#: Set in the re-run under Valgrind: the directory callgrind writes its dumps to.
DUMP_DIR_VARIABLE = "PERFGATE_CALLGRIND_DIR"
#: The hash seed of the re-run: str and bytes hashes (set and dict order) do not move.
HASH_SEED = "0"
HELPER_SOURCE = Path(__file__).with_name("_valgrind.c")
INSTALL_HINT = (
    "install Valgrind: `sudo apt-get install -y valgrind` (Debian, Ubuntu, GitHub Actions' "
    "ubuntu runners), `sudo dnf install valgrind` (Fedora); Valgrind does not run on "
    "Windows nor on macOS on Apple silicon"
)


class InstructionsUnavailable(ProbeUnavailable):
    """Instructions cannot be counted here (no Valgrind, no compiler, not re-run)."""


# -- running under Valgrind ----------------------------------------------------------------


def valgrind_executable() -> str | None:
    """The ``valgrind`` program on the PATH, or None."""
    return shutil.which("valgrind")


def callgrind_command(
    valgrind: str, python: str, pytest_args: Sequence[str], dump_dir: str
) -> list[str]:
    """The command line that re-runs ``python -m pytest <pytest_args>`` under callgrind,
    instrumenting nothing until the probe asks (``--instr-atstart=no``: Python runs at a
    few times its native speed in between, not fifty)."""
    return [
        valgrind,
        "--tool=callgrind",
        "--quiet",
        "--instr-atstart=no",
        "--collect-atstart=no",
        f"--callgrind-out-file={os.path.join(dump_dir, 'callgrind.out.%p')}",
        python,
        "-m",
        "pytest",
        *pytest_args,
    ]


#: One thread for the numeric libraries: callgrind counts every thread of the process,
#: and an OpenBLAS worker spinning after numpy's last call added its own instructions
#: to a count (0.7% of a 570k-instruction call, depending on what ran before).
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def callgrind_environment(environ: Mapping[str, str], dump_dir: str) -> dict[str, str]:
    """The re-run's environment: the dump directory, a fixed hash seed, and numeric
    libraries without worker threads."""
    return {
        **environ,
        **SINGLE_THREADED,
        DUMP_DIR_VARIABLE: dump_dir,
        "PYTHONHASHSEED": HASH_SEED,
    }


def parse_dump_total(text: str) -> int:
    """The instruction count of one callgrind dump: its ``totals:`` line (or ``summary:``,
    which older versions write alone)."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("totals", "summary") and value.split():
            found[key] = int(value.split()[0])
    total = found.get("totals", found.get("summary"))
    if total is None:
        raise ValueError("callgrind dump has no totals: or summary: line")
    return total


# -- the compiled helper --------------------------------------------------------------------


def helper_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "pytest-perfgate"


def helper_library(cache_dir: Path | None = None, compiler: str | None = None) -> Path:
    """The compiled client-request helper, built now if this source, Python and platform
    have none yet. Raises InstructionsUnavailable, with what to install, when it cannot
    be built."""
    source = HELPER_SOURCE.read_bytes()
    key = hashlib.sha256(
        source + f"|{sys.implementation.cache_tag}|{platform.machine()}|{sys.platform}".encode()
    ).hexdigest()[:16]
    directory = cache_dir or helper_cache_dir()
    library = directory / f"perfgate_valgrind_{key}.so"
    if library.exists():
        return library
    cc = compiler or os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    program = shutil.which(str(cc).split()[0])
    if program is None:
        raise InstructionsUnavailable(
            f"counting instructions needs a C compiler to build its Valgrind helper; "
            f"{cc!r} was not found: install one (`sudo apt-get install -y gcc`)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    # Built under a temporary name and renamed: concurrent runs never load half a file.
    fd, partial = tempfile.mkstemp(suffix=".so", dir=directory)
    os.close(fd)
    built = subprocess.run(
        [program, "-shared", "-fPIC", "-O2", "-o", partial, str(HELPER_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        os.unlink(partial)
        header = "valgrind/callgrind.h" in built.stderr
        raise InstructionsUnavailable(
            "could not build the Valgrind helper"
            + (" (Valgrind's headers are missing: " + INSTALL_HINT + ")" if header else "")
            + f": {built.stderr.strip()[:500]}"
        )
    os.replace(partial, library)
    return library


# -- counting -------------------------------------------------------------------------------

#: Runs the measured code ``loops`` times, calling ``toggle`` just before and just after
#: each span to be counted.
CountedBatch = Callable[[int, Callable[[], None]], None]


#: The helper's void functions (_valgrind.c).
_REQUESTS = (
    "perfgate_start_instrumentation",
    "perfgate_stop_instrumentation",
    "perfgate_toggle_collect",
    "perfgate_zero_stats",
    "perfgate_dump_stats_at",
)


@final
class Callgrind:
    """The client requests of the callgrind this process runs under, and its dumps."""

    def __init__(self, library: ctypes.CDLL, dump_dir: Path) -> None:
        self._library = library
        self._dump_dir = dump_dir
        # Declared void: ctypes would otherwise turn whatever is left in the return
        # register into a Python int, allocating (or not) by chance around every count.
        for request in _REQUESTS:
            function = getattr(library, request)
            function.argtypes = [ctypes.c_char_p] if request == "perfgate_dump_stats_at" else []
            function.restype = None
        library.perfgate_running_on_valgrind.argtypes = []
        library.perfgate_running_on_valgrind.restype = ctypes.c_int
        self.toggle_collect: Callable[[], None] = library.perfgate_toggle_collect
        self._allocator = CountingAllocator(library._name)

    @classmethod
    def attach(cls, environ: Mapping[str, str] = os.environ) -> Callgrind:
        """The callgrind of this run; InstructionsUnavailable, saying why, when the run is
        not under callgrind."""
        dump_dir = environ.get(DUMP_DIR_VARIABLE)
        if valgrind_executable() is None and dump_dir is None:
            raise InstructionsUnavailable(f"counting instructions needs Valgrind: {INSTALL_HINT}")
        library = ctypes.CDLL(str(helper_library()))
        if dump_dir is None or not library.perfgate_running_on_valgrind():
            raise InstructionsUnavailable(
                "counting instructions needs the run to start under Valgrind, which "
                "pytest-perfgate does by itself for `--perf-measure=instructions` or a "
                '`measure="instructions"` marker; this process is not under it (a '
                "pytest-xdist worker, or pytest started from Python?)"
            )
        return cls(library, Path(dump_dir))

    @property
    def batches_on_cpython_allocator(self) -> int:
        """Batches counted so far without the counting allocator (its epochs ran out)."""
        return self._allocator.overflowed

    @property
    def pid_prefix(self) -> str:
        return f"callgrind.out.{os.getpid()}."

    def start(self) -> None:
        """Instrument from now on (slow: keep it to the measurement)."""
        self._library.perfgate_start_instrumentation()

    def stop(self) -> None:
        self._library.perfgate_stop_instrumentation()

    def count(self, runs: Sequence[tuple[CountedBatch, int]]) -> list[int]:
        """Instructions executed between the toggles of each ``(batch, loops)`` run, in
        order. The dumps are read after the last run: reading one allocates, and what
        the allocator holds between runs moves the counts of the next."""
        self._discard_dumps()
        # The runs on memory of their own, fresh when they start: their counts do not
        # depend on what ran before. One epoch for all of them: once the first run has
        # filled the free lists, every call finds its blocks there, and the count per call
        # does not depend on how many calls a run makes (a first call served from fresh
        # memory costs more).
        self._allocator.begin()
        try:
            for batch, loops in runs:
                self._library.perfgate_zero_stats()
                batch(loops, self.toggle_collect)
                self._library.perfgate_dump_stats_at(b"perfgate")
        finally:
            self._allocator.end()
        dumps = self._dumps()
        if len(dumps) != len(runs):
            raise InstructionsUnavailable(
                f"callgrind wrote {len(dumps)} dumps for {len(runs)} counts to "
                f"{self._dump_dir}: is this run under `valgrind --tool=callgrind`, not "
                "another Valgrind tool?"
            )
        totals = [parse_dump_total(dump.read_text(errors="replace")) for dump in dumps]
        self._discard_dumps()
        return totals

    def _dumps(self) -> list[Path]:
        return sorted(
            self._dump_dir.glob(self.pid_prefix + "*"),
            key=lambda path: int(path.name.rsplit(".", 1)[1]),
        )

    def _discard_dumps(self) -> None:
        for dump in self._dumps():
            dump.unlink()


@final
class CountingAllocator:
    """The helper's deterministic allocator (_valgrind.c), in place of CPython's for
    Python objects while counts are taken: the same requests then cost the same
    instructions whatever the process allocated before. Called with the GIL held
    (``ctypes.PyDLL``), as CPython's allocator hooks must be."""

    def __init__(self, library_path: str) -> None:
        library = ctypes.PyDLL(library_path)
        library.perfgate_alloc_install.argtypes = []
        library.perfgate_alloc_install.restype = ctypes.c_int
        library.perfgate_alloc_begin.argtypes = []
        library.perfgate_alloc_begin.restype = ctypes.c_int
        library.perfgate_alloc_end.argtypes = []
        library.perfgate_alloc_end.restype = None
        if library.perfgate_alloc_install() != 0:
            raise InstructionsUnavailable(
                "could not reserve address space for the counting allocator (mmap failed)"
            )
        self._begin = library.perfgate_alloc_begin
        self.end: Callable[[], None] = library.perfgate_alloc_end
        #: Batches counted with CPython's allocator because the epoch stack was full.
        self.overflowed = 0

    def begin(self) -> None:
        """Route Python's allocations to a new epoch until :meth:`end`."""
        if self._begin() != 0:
            self.overflowed += 1


#: Written into a test's skip reason when a timing is asked for under Valgrind.
TIMING_UNDER_VALGRIND = (
    "timings taken under Valgrind are not comparable with native ones: this run was "
    "started under Valgrind to count instructions; run timed tests in a run of their own "
    "(e.g. select them with -m or -k)"
)


def native_threads() -> int:
    """Threads of this process as the OS sees them (numeric libraries' workers too);
    Python's own count where /proc is not there."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def under_valgrind(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process is the re-run under callgrind (set by the plugin)."""
    return DUMP_DIR_VARIABLE in environ
