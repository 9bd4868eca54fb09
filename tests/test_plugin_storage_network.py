"""perf.storage and perf.net through pytest: baselines recorded and gated, an injected
slowdown that fails, cache modes never compared, bad input, and servers that stop
however the test ends."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from plugin_support import load_baseline, record_baselines, write_settings

#: Real files and a real loopback server; WORK slows the test's own I/O and client down.
SUITE = """
import os
import time

import pytest

WORK = float(os.environ.get("WORK", "1"))


@pytest.mark.perf
def test_files(perf, tmp_path):
    perf.storage.write(tmp_path, size="2MiB", block="256KiB", seconds=0.1, ramp=0.02)
    for _ in range(12):
        with perf.storage.region("save", bytes="1MiB", sync=tmp_path):
            (tmp_path / "ckpt").write_bytes(b"x" * 1024)
            time.sleep(0.004 * WORK)  # the slowdown dominates the fsync, however loaded


@pytest.mark.perf
def test_rpc(perf):
    server = perf.net.echo_server()
    perf.net.latency(server, seconds=0.1, warmup=0.02)
    perf.net.latency(lambda: time.sleep(0.001 * WORK), seconds=0.15, warmup=0.0,
                     name="client", gate="p90")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    write_settings(pytester)
    pytester.makepyfile(test_io=SUITE)
    monkeypatch.setenv("WORK", "1")
    return pytester


def test_baselines_are_recorded_with_their_probe_fields(suite: pytest.Pytester) -> None:
    result = record_baselines(suite)
    result.stdout.fnmatch_lines(["*5 added*"])
    tests = load_baseline(suite, "test_io")["tests"]
    files, rpc = tests["test_files"], tests["test_rpc"]
    assert set(files) == {"write.throughput", "save.throughput"}
    assert set(rpc) == {"rtt.p50", "rtt.p99", "client.p90"}
    write = files["write.throughput"]
    assert write["unit"] == "MiB/s"
    assert write["direction"] == "higher"
    assert write["environment"]["machine"]["storage.cache"] in ("direct", "dropped")
    assert "fs.type" in write["environment"]["machine"]
    assert write["details"]["block"] == 256 * 1024
    assert rpc["rtt.p99"]["statistic"] == "p99"
    assert "statistic" not in rpc["rtt.p50"]
    assert rpc["rtt.p50"]["environment"]["machine"]["net.target"] == "loopback"
    # Compared with the baselines (verdicts on real timing are not asserted: warn mode).
    again = suite.runpytest("--perf-mode=warn")
    again.assert_outcomes(passed=2)
    again.stdout.fnmatch_lines(["perfgate: *(2 perf tests, alpha 0.05 over the suite, mode warn)"])
    again.stdout.no_fnmatch_line("*NEW*")


def test_an_injected_slowdown_fails_both_tests(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_baselines(suite)
    monkeypatch.setenv("WORK", "10")
    result = suite.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*performance regression in test_io.py::test_files ?save.throughput?: median * "
            "MiB/s vs baseline * MiB/s (-*%*(higher is better)*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*performance regression in test_io.py::test_rpc ?client.p90?: p90 * ms vs baseline *"]
    )


def test_another_cache_mode_is_incomparable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_cache="""
        import os
        import pytest

        @pytest.mark.perf
        def test_read(perf, tmp_path):
            perf.storage.read(tmp_path, size="1MiB", block="256KiB", seconds=0.05, ramp=0,
                              cache=os.environ["CACHE"])
        """
    )
    monkeypatch.setenv("CACHE", "dropped")
    record_baselines(pytester)
    monkeypatch.setenv("CACHE", "cached")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*INCOMPARABLE test_cache.py::test_read ?read.throughput?*storage.cache: 'dropped' vs "
            "'cached'*"
        ]
    )


def test_bad_input_fails_the_test_with_the_argument_named(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.perf
        def test_absurd(perf, tmp_path):
            perf.storage.write(tmp_path, size="-1GiB")

        @pytest.mark.perf
        def test_huge(perf, tmp_path):
            perf.storage.write(tmp_path, size="5TiB")

        @pytest.mark.perf
        def test_refused(perf):
            perf.net.latency(("127.0.0.1", 1))
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "*ProbeInputError: perf.storage.write: size='-1GiB' must be a positive size",
            "*ProbeInputError: perf.storage.write: size=5 TiB is more than the free space in *",
            "*ProbeInputError: perf.net.latency: 127.0.0.1:1 refused the connection",
        ],
        consecutive=False,
    )
    tmp_root = pytester.path
    assert not list(tmp_root.rglob(".perfgate-storage-*"))


def wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "\nState:\tZ" in status.read_text():
            return True
        time.sleep(0.02)
    return False


FAILING = """
import os
from pathlib import Path

import pytest


@pytest.mark.perf
def test_fails_after_starting_a_server(perf):
    server = perf.net.echo_server()
    Path(os.environ["PID_FILE"]).write_text(str(server.pid))
    raise {error}
"""


@pytest.mark.parametrize("error", ["AssertionError('boom')", "KeyboardInterrupt"])
def test_the_server_stops_when_the_test_fails_or_is_interrupted(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    pid_file = pytester.path / "server.pid"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    write_settings(pytester)
    pytester.makepyfile(test_server=FAILING.format(error=error))
    # A process of its own: an interrupt ends that pytest, not this one.
    result = pytester.runpytest_subprocess()
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED)
    assert wait_dead(int(pid_file.read_text()))


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs /dev/shm")
def test_tmpfs_warns_in_the_summary(pytester: pytest.Pytester) -> None:
    from pytest_perfgate.probes.storage import filesystem_of

    if filesystem_of(Path("/dev/shm")).type != "tmpfs":
        pytest.skip("/dev/shm is not tmpfs here")
    write_settings(pytester)
    pytester.makepyfile(
        test_shm="""
        import pytest

        @pytest.mark.perf
        def test_shm(perf):
            perf.storage.write("/dev/shm", size="1MiB", seconds=0.05, ramp=0)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*StorageWarning*tmpfs: this measures memory speed*"])
