"""perf.net against a real loopback server in a subprocess: latency, open-loop load,
throughput, the user's own client, bad endpoints, and servers that always stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_perfgate.model import Direction, Measurement
from pytest_perfgate.probes import ProbeInputError
from pytest_perfgate.probes.host import ProbeHost, Resample
from pytest_perfgate.probes.network import EchoServer, NetProbe, run_requests
from pytest_perfgate.sampling import SamplingPlan

QUICK = {"seconds": 0.1, "warmup": 0.02}


class Host:
    def __init__(self, measuring: bool = True) -> None:
        self.claimed: list[str] = []
        self.judged: list[tuple[Measurement, Resample | None]] = []
        self.host = ProbeHost(
            measuring=measuring,
            plan=SamplingPlan(max_time=0.1),
            claim=self.claimed.append,
            judge=lambda m, r: self.judged.append((m, r)),
            judge_at_finish=lambda m: None,
        )


class ScriptedClock:
    """A clock that advances when told (requests 'take' scripted times), and by 100 ns
    each time it is read (so a wait that spins on it ends)."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        self.now += 100
        return self.now


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running either.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def probe() -> Iterator[tuple[NetProbe, Host]]:
    host = Host()
    net = NetProbe(host.host)
    yield net, host
    net.close()


def test_latency_against_the_loopback_server(probe: tuple[NetProbe, Host]) -> None:
    net, host = probe
    server = net.echo_server()
    result = net.latency(server, size=256, **QUICK)
    assert result is not None
    assert result.requests > 10
    assert 0 < result.rtt["p50"] <= result.rtt["p99"] <= result.rtt["max"]
    names = [m.name for m, _ in host.judged]
    assert names == ["rtt.p50", "rtt.p99"]
    p50, p99 = (m for m, _ in host.judged)
    assert (p50.statistic, p99.statistic) == ("median", "p99")
    assert p50.unit == "s"
    assert p50.direction is Direction.LOWER_IS_BETTER
    assert p50.machine["net.target"] == "loopback"
    assert p50.machine["net.placement"] in ("one-cpu", "unpinned")
    assert p50.machine["cpu.idle"] in ("polling", "default")
    assert p50.details["client"] == "ping-pong"
    assert p50.details["size"] == 256
    assert p50.details["loop"] == "closed"


def test_the_users_client_is_measured_the_same_way(probe: tuple[NetProbe, Host]) -> None:
    net, host = probe
    server = net.echo_server()
    with socket.create_connection(server.address) as sock:
        sock.sendall(b"E")

        def call() -> None:
            sock.sendall(b"ping")
            assert sock.recv(4) == b"ping"

        result = net.latency(call, gate="p90", name="client", **QUICK)
    assert result is not None
    assert result.requests > 10
    ((measurement, _),) = host.judged
    assert measurement.name == "client.p90"
    assert measurement.details["client"] == "user"


def test_open_loop_load_reports_its_rate(probe: tuple[NetProbe, Host]) -> None:
    net, host = probe
    result = net.latency(net.echo_server(), rate=500, name="load", **QUICK)
    assert result is not None
    assert host.judged[0][0].details["loop"] == "open"
    assert "send_lag_s" in host.judged[0][0].details
    assert result.achieved_rate == pytest.approx(500, rel=0.5)


def test_open_loop_latency_counts_from_the_intended_send_time() -> None:
    """One request stalls for 50 ms at a rate of 1000/s: the 50 requests due meanwhile
    are sent late, and their latency says so (a closed loop would report one slow
    request and 49 fast ones: coordinated omission)."""
    clock = ScriptedClock()
    calls = {"n": 0}

    def request() -> None:
        calls["n"] += 1
        clock.now += 50_000_000 if calls["n"] == 10 else 100_000  # 50 ms stall, else 0.1 ms

    def sleep(seconds: float) -> None:
        clock.now += int(seconds * 1e9)

    run = run_requests(request, seconds=0.2, warmup=0.0, rate=1000, clock=clock, sleep=sleep)
    slow = [x for x in run.latencies if x > 0.001]
    assert len(slow) >= 45  # the stalled request and the ones queued behind it
    assert max(run.latencies) == pytest.approx(0.0501, abs=1e-4)
    assert max(run.send_lag) < 1e-4  # late only for the stalled reply: not the sender's fault


def test_the_senders_own_lateness_is_not_counted_as_latency() -> None:
    """The sender oversleeps by 20 ms once (a busy machine did not schedule it): the
    replies were fast, so no request reports the sender's delay; the lag says it."""
    clock = ScriptedClock()
    sleeps = {"n": 0}

    def request() -> None:
        clock.now += 100_000  # 0.1 ms, always

    def sleep(seconds: float) -> None:
        sleeps["n"] += 1
        clock.now += int(seconds * 1e9) + (20_000_000 if sleeps["n"] == 5 else 0)

    run = run_requests(request, seconds=0.3, warmup=0.0, rate=200, clock=clock, sleep=sleep)
    assert max(run.latencies) < 0.0002
    assert max(run.send_lag) == pytest.approx(0.018, abs=1.5e-3)  # 20 ms less the spin margin


def test_closed_loop_hides_the_stall_open_loop_shows() -> None:
    clock = ScriptedClock()
    calls = {"n": 0}

    def request() -> None:
        calls["n"] += 1
        clock.now += 50_000_000 if calls["n"] == 10 else 100_000

    run = run_requests(request, seconds=0.2, warmup=0.0, clock=clock)
    assert sum(1 for x in run.latencies if x > 0.001) == 1


def test_warmup_requests_are_discarded() -> None:
    clock = ScriptedClock()

    def request() -> None:
        clock.now += 1_000_000  # 1 ms each

    run = run_requests(request, seconds=0.05, warmup=0.02, clock=clock)
    assert len(run.latencies) == 50  # 20 warm-up requests discarded
    assert run.achieved_rate == pytest.approx(1000, rel=0.05)


def test_throughput_streams_to_the_sink(probe: tuple[NetProbe, Host]) -> None:
    net, host = probe
    result = net.throughput(net.echo_server(), streams=2, block="64KiB", **QUICK)
    assert result is not None
    assert result.mib_per_s > 0
    ((measurement, resample),) = host.judged
    assert measurement.name == "stream.throughput"
    assert measurement.unit == "MiB/s"
    assert measurement.direction is Direction.HIGHER_IS_BETTER
    assert measurement.details["streams"] == 2
    assert len(measurement.samples) >= 10
    assert resample is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refusing_endpoint_is_named(probe: tuple[NetProbe, Host]) -> None:
    net, _ = probe
    port = free_port()
    with pytest.raises(ProbeInputError, match=rf"127.0.0.1:{port} refused the connection"):
        net.latency(("127.0.0.1", port), **QUICK)
    with pytest.raises(ProbeInputError, match="refused"):
        net.throughput(f"127.0.0.1:{port}", **QUICK)


def test_an_endpoint_that_never_answers_times_out(probe: tuple[NetProbe, Host]) -> None:
    net, _ = probe
    with (
        socket.create_server(("127.0.0.1", 0)) as silent,  # accepts, never replies
        pytest.raises(ProbeInputError, match=r"no reply within timeout=0.2 s"),
    ):
        net.latency(silent.getsockname(), timeout=0.2, **QUICK)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda net: net.latency(("127.0.0.1", "x"), **QUICK), r"target=\('127.0.0.1', 'x'\)"),
        (lambda net: net.latency("nowhere", **QUICK), r"target='nowhere' is not"),
        (
            lambda net: net.latency(lambda: None, size="-1KiB"),
            r"size='-1KiB' must be a positive size",
        ),
        (lambda net: net.latency(lambda: None, rate=0), r"rate=0 must be"),
        (lambda net: net.latency(lambda: None, gate="p100"), r"gate='p100': choose among"),
        (lambda net: net.latency(lambda: None, timeout=0), r"timeout=0 must be"),
        (lambda net: net.latency(lambda: None, seconds=-1), r"seconds=-1 must be"),
        (lambda net: net.throughput("h:1", streams=0), r"streams=0 must be"),
        (lambda net: net.throughput("h:1", block="5 parsecs"), r"block='5 parsecs' is not"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(
    probe: tuple[NetProbe, Host], call: Callable[[NetProbe], object], message: str
) -> None:
    net, _ = probe
    with pytest.raises(ProbeInputError, match=message):
        call(net)


def test_mode_off_calls_the_client_once_and_starts_nothing(tmp_path: Path) -> None:
    host = Host(measuring=False)
    net = NetProbe(host.host)
    calls: list[int] = []
    assert net.latency(lambda: calls.append(1)) is None
    assert calls == [1]
    assert host.judged == []


def test_the_server_stops_with_its_context_manager() -> None:
    with EchoServer() as server:
        pid = server.pid
        assert server.running
    assert not server.running
    assert wait_dead(pid)
    server.stop()  # again: harmless


def test_the_probe_stops_its_servers_even_when_the_test_fails() -> None:
    net = NetProbe(Host().host)
    server = net.echo_server()
    try:
        with pytest.raises(ZeroDivisionError):
            net.latency(lambda: 1 / 0, **QUICK)
    finally:
        net.close()  # what the fixture's teardown does
    assert wait_dead(server.pid)
    with pytest.raises(ProbeInputError, match="is not running"):
        net.latency(server, **QUICK)


def test_the_server_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    """No orphan: the server leaves when its stdin closes, which SIGKILL of the parent
    does (no finalizer or atexit runs then)."""
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from pytest_perfgate.probes.network import EchoServer
        server = EchoServer()
        Path({str(pid_file)!r}).write_text(str(server.pid))
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        server_pid = int(pid_file.read_text())
        assert alive(server_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert wait_dead(server_pid)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_the_server_exits_on_keyboard_interrupt_in_a_script(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from pytest_perfgate.probes.network import EchoServer
        server = EchoServer()
        Path({str(pid_file)!r}).write_text(str(server.pid))
        raise KeyboardInterrupt
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=30, check=False
    )
    assert result.returncode != 0
    assert wait_dead(int(pid_file.read_text()))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
@pytest.mark.parametrize("layout", ["one-cpu", "two-cpus"])
def test_client_and_server_are_pinned_while_measuring_and_released_after(layout: str) -> None:
    from pytest_perfgate.probes.network import pinned

    before = os.sched_getaffinity(0)
    with EchoServer() as server:
        tasks = Path(f"/proc/{server.pid}/task")
        with pinned([server.pid], layout) as placement:
            client = os.sched_getaffinity(0)
            server_cpus = {frozenset(os.sched_getaffinity(int(t.name))) for t in tasks.iterdir()}
            assert len(client) == 1
            assert len(server_cpus) == 1
            (cpus,) = server_cpus
            assert len(cpus) == 1
            if layout == "one-cpu" or len(before) == 1:
                assert (placement, cpus) == ("one-cpu", client)
            else:
                assert placement == "two-cpus"
                assert cpus != client
        assert os.sched_getaffinity(0) == before
    with pinned([]) as placement:
        assert placement == "unpinned"


@pytest.mark.parametrize("what", ["latency", "throughput"])
def test_the_second_look_waits_a_moment(
    probe: tuple[NetProbe, Host], monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    from pytest_perfgate.probes import network

    net, host = probe
    wrapped: list[Resample] = []
    monkeypatch.setattr(network, "after_a_pause", lambda r: wrapped.append(r) or r)
    getattr(net, what)(net.echo_server(), **QUICK)
    assert [r for _, r in host.judged] == wrapped != []
