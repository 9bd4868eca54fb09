"""Network: request/response latency (closed loop, or open loop at a fixed rate) and
stream throughput, against a loopback server in a subprocess or a user's endpoint; and
the user's own client code, measured with the same statistics.

Servers are stopped however the test ends: ``EchoServer`` is a context manager, the
fixture stops the servers it started at teardown, an atexit hook stops what is left,
and the server process exits by itself when its stdin closes (its parent is gone).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from ..contention import cpu_stall_us, pressure_between
from ..model import Direction, Measurement
from ..sampling import Clock
from . import ProbeInputError, netserver
from .cpuidle import DEFAULT, cpus_kept_awake
from .host import ProbeHost, after_a_pause
from .iostats import Completion, percentiles, slice_rates
from .units import parse_size

#: Gated metrics of latency: percentiles of the round-trip time (p50 is the median).
LATENCY_METRICS = ("p50", "p90", "p99", "p99.9")
#: Samples (slices) a stream is cut into for the gate.
SLICES = 20
#: A wait longer than this sleeps (then spins the rest); shorter waits spin. Sleeps
#: overshoot by up to a millisecond on a busy machine, and an open-loop latency counts
#: the sender's own lateness too: spin the last 2 ms.
SPIN_NS = 2_000_000

#: Servers started and not yet stopped, for the atexit hook.
_running: set[EchoServer] = set()


class EchoServer:
    """A loopback echo and sink server in a process of its own (see netserver.py).

    Use it as a context manager, or let ``perf.net`` stop it at the end of the test.
    """

    def __init__(self, host: str = "127.0.0.1", *, start_timeout: float = 10.0) -> None:
        script = Path(netserver.__file__)
        self._process = subprocess.Popen(
            [sys.executable, "-I", str(script), "--host", host],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _running.add(self)
        try:
            port = self._read_port(start_timeout)
        except BaseException:
            self.stop()
            raise
        self.address: tuple[str, int] = (host, port)

    def _read_port(self, timeout: float) -> int:
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], timeout)
        line = self._process.stdout.readline().decode(errors="replace") if ready else ""
        if not line.startswith("PORT "):
            self._process.kill()
            _, err = self._process.communicate(timeout=5)
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ProbeInputError(
                f"perf.net.echo_server: the server did not start within {timeout} s ({detail[0]})"
            )
        return int(line.split()[1])

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    def stop(self) -> None:
        """Stop the server and wait for it; safe to call again."""
        process = self._process
        _running.discard(self)
        if process.stdin is not None and not process.stdin.closed:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the server exits when its stdin closes
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EchoServer({self.address[0]}:{self.address[1]}, pid {self.pid}, {state})"


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()


#: What ``perf.net.latency`` and ``throughput`` accept as a target: our server, an
#: endpoint ``(host, port)`` or ``"host:port"``, or (latency only) a callable request.
Target = EchoServer | tuple[str, int] | str | Callable[[], Any]


@final
@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    ours: bool  #: our server: speaks the mode byte first

    @property
    def label(self) -> str:
        return "loopback" if self.ours else f"{self.host}:{self.port}"


def endpoint_of(target: Target, where: str) -> Endpoint:
    if isinstance(target, EchoServer):
        if not target.running:
            raise ProbeInputError(f"{where}: {target!r} is not running")
        return Endpoint(*target.address, ours=True)
    if isinstance(target, str):
        host, sep, port = target.rpartition(":")
        if sep and port.isdigit():
            return Endpoint(host.strip("[]"), int(port), ours=False)
    elif (
        isinstance(target, tuple)
        and len(target) == 2
        and isinstance(target[0], str)
        and isinstance(target[1], int)
    ):
        return Endpoint(target[0], target[1], ours=False)
    raise ProbeInputError(
        f"{where}: target={target!r} is not an echo_server(), (host, port) or 'host:port'"
    )


def connect(endpoint: Endpoint, mode: bytes, timeout: float, where: str) -> socket.socket:
    """A TCP connection with TCP_NODELAY; errors name the endpoint and the option."""
    try:
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except ConnectionRefusedError:
        raise ProbeInputError(
            f"{where}: {endpoint.host}:{endpoint.port} refused the connection"
        ) from None
    except TimeoutError:
        raise ProbeInputError(
            f"{where}: no connection to {endpoint.host}:{endpoint.port} within timeout={timeout} s"
        ) from None
    except OSError as error:
        raise ProbeInputError(
            f"{where}: cannot connect to {endpoint.host}:{endpoint.port} "
            f"({error.strerror or error})"
        ) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if endpoint.ours:
        sock.sendall(mode)
    return sock


class PingPong:
    """One request/response over a connection: send ``size`` bytes, read them back."""

    def __init__(self, sock: socket.socket, size: int, where: str, timeout: float) -> None:
        self._sock = sock
        self._payload = os.urandom(size)
        self._buffer = bytearray(size)
        self._size = size
        self._where = where
        self._timeout = timeout

    def __call__(self) -> None:
        sock, view, size = self._sock, memoryview(self._buffer), self._size
        sock.sendall(self._payload)
        got = 0
        try:
            while got < size:
                n = sock.recv_into(view[got:])
                if n == 0:
                    raise ProbeInputError(f"{self._where}: the endpoint closed the connection")
                got += n
        except TimeoutError:
            raise ProbeInputError(
                f"{self._where}: no reply within timeout={self._timeout} s"
            ) from None


@final
@dataclass(frozen=True, slots=True)
class RequestRun:
    """Latencies of one run of requests, in seconds, in the order they were sent."""

    latencies: tuple[float, ...]
    rate: float | None  #: intended requests per second (open loop), None for closed loop
    achieved_rate: float  #: requests per second actually completed in the measured time
    seconds: float
    #: Open loop: seconds each request was sent late for no reply it waited for (the
    #: sender's own lateness, which the latencies leave out).
    send_lag: tuple[float, ...] = ()
    #: Share of the run during which some task waited for a CPU (contention.py).
    cpu_pressure: float | None = None
    idle: str = DEFAULT  #: "polling" where CPUs were kept out of idle states (cpuidle.py)

    def details(self) -> dict[str, Any]:
        return (
            {
                "loop": "closed" if self.rate is None else "open",
                "rate": self.rate,
                "achieved_rate": round(self.achieved_rate, 3),
                "requests": len(self.latencies),
                "measured_seconds": round(self.seconds, 6),
                "rtt_s": _rounded(percentiles(self.latencies)),
            }
            | ({"send_lag_s": _rounded(percentiles(self.send_lag))} if self.send_lag else {})
            | ({} if self.cpu_pressure is None else {"cpu_pressure": round(self.cpu_pressure, 4)})
        )


def run_requests(
    request: Callable[[], Any],
    *,
    seconds: float,
    warmup: float,
    rate: float | None = None,
    clock: Clock = time.perf_counter_ns,
    sleep: Callable[[float], None] = time.sleep,
) -> RequestRun:
    """Call ``request`` for ``warmup`` (discarded) then ``seconds``; time each call, with
    the CPUs kept out of idle states (cpuidle.py).

    Closed loop (``rate`` None): back to back, each latency from its own send. Open loop:
    see :func:`_open_loop`.
    """
    lag: list[int] = []
    with cpus_kept_awake() as idle:
        stalled, began = cpu_stall_us(), time.monotonic_ns()
        start = clock()
        measure_from = start + int(warmup * 1e9)
        deadline = measure_from + int(seconds * 1e9)
        if rate is None:
            measured = _closed_loop(request, clock, measure_from, deadline)
        else:
            measured, lag = _open_loop(request, rate, clock, sleep, start, measure_from, deadline)
        elapsed = max(clock() - measure_from, 1)
        pressure = pressure_between(stalled, cpu_stall_us(), time.monotonic_ns() - began)
    return RequestRun(
        tuple(ns / 1e9 for ns in measured),
        rate,
        len(measured) / (elapsed / 1e9),
        elapsed / 1e9,
        tuple(ns / 1e9 for ns in lag),
        pressure,
        idle,
    )


def _closed_loop(
    request: Callable[[], Any], clock: Clock, measure_from: int, deadline: int
) -> list[int]:
    """Requests back to back until ``deadline``; ns latencies of those sent after
    ``measure_from``."""
    measured: list[int] = []
    while True:
        sent = clock()
        if sent >= deadline:
            return measured
        request()
        if sent >= measure_from:
            measured.append(clock() - sent)


def _open_loop(
    request: Callable[[], Any],
    rate: float,
    clock: Clock,
    sleep: Callable[[float], None],
    start: int,
    measure_from: int,
    deadline: int,
) -> tuple[list[int], list[int]]:
    """Request i is due at start + i/rate and its latency runs from that intended time,
    not from when it could actually be sent; so a stall delays the requests behind it and
    they report the wait, as their users would have felt it (no coordinated omission).
    Returns the ns latencies and send lags of the requests due after ``measure_from``.

    The sender's own lateness is not the server's, though: a sender that was not
    scheduled in time (a busy machine) would otherwise report its own delay, and the
    backlog it leaves, as latency. So the queue is replayed with a punctual sender: with
    each request's observed service time s_i (reply minus actual send), it completes at
    c_i = max(due_i, c_{i-1}) + s_i, and its latency is c_i - due_i. A slow reply still
    delays every request queued behind it; a late sender delays none.
    """
    measured: list[int] = []
    lag: list[int] = []
    interval = 1e9 / rate
    i = 0
    completed = replied = start
    while True:
        due = start + round(i * interval)
        i += 1
        if due >= deadline:
            return measured, lag
        wait = due - clock()
        if wait > SPIN_NS:
            sleep((wait - SPIN_NS) / 1e9)
        sent = clock()
        while sent < due:
            sent = clock()
        request()
        service = clock() - sent
        completed = max(due, completed) + service  # a punctual sender's queue
        if due >= measure_from:
            measured.append(completed - due)
            lag.append(max(0, sent - max(due, replied)))  # late, and not for a reply
        replied = sent + service


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {k: float(f"{v:.6g}") for k, v in figures.items()}


@final
@dataclass(frozen=True, slots=True)
class StreamRun:
    """The sends of one stream run's measured time."""

    sends: tuple[Completion, ...]
    cpu_pressure: float | None  #: share of the run some task waited for a CPU
    idle: str  #: "polling" where CPUs were kept out of idle states (cpuidle.py)
    streams: int = 1  #: connections sending at once
    block: int = 0  #: bytes per send


def run_stream(
    endpoint: Endpoint,
    *,
    seconds: float,
    warmup: float,
    streams: int,
    block: int,
    timeout: float,
    clock: Clock = time.perf_counter_ns,
) -> StreamRun:
    """Send blocks as fast as the connection takes them, on ``streams`` connections at
    once, for ``warmup`` (discarded) then ``seconds``."""
    where = "perf.net.throughput"
    sockets = [connect(endpoint, netserver.SINK, timeout, where) for _ in range(streams)]
    sent: list[list[Completion]] = [[] for _ in sockets]
    errors: list[BaseException] = []
    try:
        stalled, began = cpu_stall_us(), time.monotonic_ns()
        with cpus_kept_awake() as idle:
            start = clock()
            measure_from = start + int(warmup * 1e9)
            deadline = measure_from + int(seconds * 1e9)

            def send(index: int) -> None:
                try:
                    sent[index].extend(
                        _send_blocks(sockets[index], block, endpoint, clock, measure_from, deadline)
                    )
                except TimeoutError:
                    errors.append(
                        ProbeInputError(f"{where}: the endpoint stalled past timeout={timeout} s")
                    )
                except BaseException as error:
                    errors.append(error)

            threads = [
                threading.Thread(target=send, args=(i,), daemon=True) for i in range(streams)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        pressure = pressure_between(stalled, cpu_stall_us(), time.monotonic_ns() - began)
    finally:
        for sock in sockets:
            sock.close()
    if errors:
        raise errors[0]
    return StreamRun(tuple(c for done in sent for c in done), pressure, idle, streams, block)


def _send_blocks(
    sock: socket.socket,
    block: int,
    endpoint: Endpoint,
    clock: Clock,
    measure_from: int,
    deadline: int,
) -> list[Completion]:
    """Send random ``block``-sized writes until ``deadline``; the sends after
    ``measure_from``. Our sink server says how much it got, and it must be all."""
    payload = memoryview(os.urandom(block))
    done: list[Completion] = []
    total = 0
    while True:
        sent_at = clock()
        if sent_at >= deadline:
            break
        sock.sendall(payload)
        total += block
        if sent_at >= measure_from:
            done.append(Completion(sent_at, clock(), block))
    sock.shutdown(socket.SHUT_WR)
    if endpoint.ours:
        received = int.from_bytes(_read_exactly(sock, 8), "big")
        if received != total:
            raise ProbeInputError(
                f"perf.net.throughput: sent {total} bytes, the server got {received}"
            )
    return done


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection early")
        data += chunk
    return data


@final
@dataclass(frozen=True, slots=True)
class LatencyResult:
    """What ``perf.net.latency`` measured: round-trip times in seconds."""

    rtt: dict[str, float]  #: p50, p90, p99, p99.9, max
    requests: int
    achieved_rate: float  #: requests per second
    details: dict[str, Any] = field(default_factory=dict)


@final
@dataclass(frozen=True, slots=True)
class ThroughputResult:
    """What ``perf.net.throughput`` measured."""

    mib_per_s: float  #: bytes sent over time of the measured run
    gbit_per_s: float
    details: dict[str, Any] = field(default_factory=dict)


@final
@dataclass(frozen=True, slots=True)
class _Client:
    """One request at a time to a latency target, and what is recorded about it."""

    request: Callable[[], Any]  #: sends one request and waits for its reply
    machine: dict[str, str]  #: machine-class fields (the target; the placement, once known)
    details: dict[str, Any]  #: what kind of client, and its message size


def _rtt_measurement(
    name: str, run: RequestRun, client: _Client, *, warmup: float, seconds: float
) -> Measurement:
    """The round-trip times of ``run`` as measurement ``name`` (``<base>.<percentile>``)."""
    if not run.latencies:
        raise ProbeInputError(
            f"perf.net.latency: no request completed in the measured time (seconds={seconds})"
        )
    metric = name.rsplit(".", 1)[1]
    return Measurement(
        name,
        "s",
        Direction.LOWER_IS_BETTER,
        run.latencies,
        stop_reason="time budget",
        machine={**client.machine, "cpu.idle": run.idle},
        details={**client.details, **run.details(), "warmup": warmup},
        statistic="median" if metric == "p50" else metric,
    )


def _stream_measurement(
    name: str, run: StreamRun, endpoint: Endpoint, placement: str, warmup: float
) -> Measurement:
    """MiB/s per slice of the measured run of ``run``, as measurement ``name``."""
    if not run.sends:
        raise ProbeInputError("perf.net.throughput: nothing was sent in the measured time")
    rates = slice_rates([run.sends], SLICES)
    return Measurement(
        name,
        "MiB/s",
        Direction.HIGHER_IS_BETTER,
        rates.mib_per_s,
        stop_reason="time budget",
        machine={"net.target": endpoint.label, "net.placement": placement, "cpu.idle": run.idle},
        details={
            "streams": run.streams,
            "block": run.block,
            "warmup": warmup,
            "measured_seconds": round(rates.seconds, 6),
            "mib_per_s": round(rates.mean_mib_per_s, 3),
            "gbit_per_s": round(rates.mean_mib_per_s * 2**20 * 8 / 1e9, 4),
        }
        | ({} if run.cpu_pressure is None else {"cpu_pressure": round(run.cpu_pressure, 4)}),
    )


class NetProbe:
    """``perf.net``: loopback servers, request/response latency, stream throughput."""

    def __init__(self, host: ProbeHost) -> None:
        self._host = host
        self._servers: list[EchoServer] = []
        self._connections: list[socket.socket] = []

    def echo_server(self, host: str = "127.0.0.1") -> EchoServer:
        """Start an echo/sink server in a subprocess; stopped when the test ends."""
        server = EchoServer(host)
        self._servers.append(server)
        return server

    def latency(
        self,
        target: Target,
        *,
        size: int | str = 64,
        seconds: float | None = None,
        warmup: float | None = None,
        rate: float | None = None,
        timeout: float = 5.0,
        gate: str | Iterable[str] = ("p50", "p99"),
        name: str = "rtt",
        pin: bool = True,
    ) -> LatencyResult | None:
        """Round-trip times of requests to ``target`` and their percentiles, gated.

        ``target``: an ``echo_server()`` or echo endpoint (built-in ping-pong of ``size``
        bytes, TCP_NODELAY), or a callable (one call is one request: the user's client).
        ``seconds`` measured after ``warmup`` discarded (defaults: the test's max_time and
        a tenth of it); ``rate``: requests per second of an open-loop load, latencies
        from each request's intended send time; ``gate``: percentiles to gate (p50, p90,
        p99, p99.9), each the measurement ``<name>.<percentile>``; ``pin``: run the test's
        thread and the servers ``perf.net`` started on one CPU while measuring (see
        pinned()); ``pin=False`` leaves them to the scheduler.
        """
        __tracebackhide__ = True
        where = "perf.net.latency"
        metrics = _metrics(gate, LATENCY_METRICS, where)
        nbytes = parse_size(size, argument="size", where=where)
        run_seconds, warmup_seconds = self._times(seconds, warmup, where)
        if rate is not None and not (isinstance(rate, int | float) and rate > 0):
            raise ProbeInputError(f"{where}: rate={rate!r} must be requests per second > 0")
        _check_timeout(timeout, where)
        for metric in metrics:
            self._host.claim(f"{name}.{metric}")
        client = self._client(target, nbytes, timeout, where)
        if client is None:
            return None

        def measure() -> RequestRun:
            servers = [s.pid for s in self._servers if s.running] if pin else []
            with pinned(servers, ONE_CPU) as placement:
                client.machine["net.placement"] = placement
                return run_requests(
                    client.request,
                    seconds=run_seconds,
                    warmup=warmup_seconds,
                    rate=rate,
                    clock=self._host.clock,
                )

        first = measure()
        spans = {"warmup": warmup_seconds, "seconds": run_seconds}
        for metric in metrics:

            def resample(metric: str = metric) -> Measurement:
                run = measure()
                return _rtt_measurement(f"{name}.{metric}", run, client, **spans)

            self._host.judge(
                _rtt_measurement(f"{name}.{metric}", first, client, **spans),
                after_a_pause(resample),
            )
        return LatencyResult(
            percentiles(first.latencies), len(first.latencies), first.achieved_rate, first.details()
        )

    def _client(self, target: Target, nbytes: int, timeout: float, where: str) -> _Client | None:
        """What sends one request to ``target``: the user's callable, or a ping-pong on a
        fresh connection. None when not measuring (a callable is still called once)."""
        if callable(target) and not isinstance(target, EchoServer):
            if not self._host.measuring:
                target()
                return None
            return _Client(target, {}, {"client": "user"})
        endpoint = endpoint_of(target, where)
        if not self._host.measuring:
            return None
        sock = connect(endpoint, netserver.ECHO, timeout, where)
        self._connections.append(sock)
        return _Client(
            PingPong(sock, nbytes, where, timeout),
            {"net.target": endpoint.label},
            {"client": "ping-pong", "size": nbytes},
        )

    def throughput(
        self,
        target: EchoServer | tuple[str, int] | str,
        *,
        seconds: float | None = None,
        warmup: float | None = None,
        streams: int = 1,
        block: int | str = "128KiB",
        timeout: float = 5.0,
        name: str = "stream",
        pin: bool = False,
    ) -> ThroughputResult | None:
        """Stream throughput to ``target`` (MiB/s, gated as ``<name>.throughput``):
        ``streams`` connections at once sending ``block``-sized writes for ``seconds``
        after ``warmup`` (defaults: the test's max_time and a tenth of it)."""
        __tracebackhide__ = True
        where = "perf.net.throughput"
        endpoint = endpoint_of(target, where)
        nbytes = parse_size(block, argument="block", where=where)
        run_seconds, warmup_seconds = self._times(seconds, warmup, where)
        if isinstance(streams, bool) or not isinstance(streams, int) or not 1 <= streams <= 64:
            raise ProbeInputError(f"{where}: streams={streams!r} must be a whole number in 1..64")
        _check_timeout(timeout, where)
        measurement_name = f"{name}.throughput"
        self._host.claim(measurement_name)
        if not self._host.measuring:
            return None

        def measure() -> Measurement:
            servers = [s.pid for s in self._servers if s.running] if pin and endpoint.ours else []
            with pinned(servers, TWO_CPUS) as placement:
                run = run_stream(
                    endpoint,
                    seconds=run_seconds,
                    warmup=warmup_seconds,
                    streams=streams,
                    block=nbytes,
                    timeout=timeout,
                    clock=self._host.clock,
                )
            return _stream_measurement(measurement_name, run, endpoint, placement, warmup_seconds)

        first = measure()
        self._host.judge(first, after_a_pause(measure))
        mib = float(first.details["mib_per_s"])
        return ThroughputResult(mib, mib * 2**20 * 8 / 1e9, dict(first.details))

    def _times(
        self, seconds: float | None, warmup: float | None, where: str
    ) -> tuple[float, float]:
        run_seconds = self._host.plan.max_time if seconds is None else seconds
        warmup_seconds = run_seconds / 10 if warmup is None else warmup
        for label, value in (("seconds", run_seconds), ("warmup", warmup_seconds)):
            if not (isinstance(value, int | float) and 0 <= value < 3600):
                raise ProbeInputError(f"{where}: {label}={value!r} must be seconds in [0, 3600)")
        if run_seconds <= 0:
            raise ProbeInputError(f"{where}: seconds={run_seconds!r} must be positive")
        return float(run_seconds), float(warmup_seconds)

    def close(self) -> None:
        """Close the probe's connections and stop the servers it started."""
        for sock in self._connections:
            sock.close()
        self._connections.clear()
        for server in self._servers:
            server.stop()
        self._servers.clear()


#: Where ``pinned`` puts a loopback client and its server.
ONE_CPU = "one-cpu"  #: both on the same CPU (latency's default)
TWO_CPUS = "two-cpus"  #: each on a CPU of its own (throughput's ``pin=True``)
UNPINNED = "unpinned"  #: where the scheduler puts them


@contextlib.contextmanager
def pinned(server_pids: list[int], layout: str = ONE_CPU) -> Iterator[str]:
    """Run the calling thread and every thread of the servers on fixed CPUs while the
    block runs; yields the placement (a machine-class field).

    Left to the scheduler, a loopback client and its server share a CPU at times and
    not at others, and a round trip costs a different amount each way: on this
    project's VM 8 us on one CPU, 11-12 us across two while the machine was quiet, and
    30-48 us across two while busy loops ran beside them. On one CPU it stayed 8-10 us
    in all of these (the two sleep between requests, so the scheduler lets them preempt
    a busy neighbour), hence ``ONE_CPU`` for latency. A stream needs both CPUs
    (one-CPU streams were 15% slower and no steadier): ``TWO_CPUS``, opt-in.
    The CPU is the last one the test may use: CPU 0 tends to take the most interrupts.
    """
    if not server_pids or not hasattr(os, "sched_setaffinity"):
        yield UNPINNED
        return
    allowed = sorted(os.sched_getaffinity(0))
    client_cpu = allowed[-1]
    server_cpu = client_cpu if layout == ONE_CPU else allowed[-2 % len(allowed)]
    saved: dict[int, set[int]] = {}
    try:
        for pid in server_pids:
            for task in Path(f"/proc/{pid}/task").iterdir():
                tid = int(task.name)
                saved[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, {server_cpu})
        saved[0] = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {client_cpu})
    except OSError:  # a thread ended meanwhile, or not permitted: leave it to the scheduler
        _restore(saved)
        yield UNPINNED
        return
    try:
        yield ONE_CPU if client_cpu == server_cpu else TWO_CPUS
    finally:
        _restore(saved)


def _restore(saved: dict[int, set[int]]) -> None:
    for tid, cpus in saved.items():
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)


def _metrics(gate: str | Iterable[str], allowed: tuple[str, ...], where: str) -> tuple[str, ...]:
    chosen = (gate,) if isinstance(gate, str) else tuple(gate)
    if not chosen or any(m not in allowed for m in chosen):
        raise ProbeInputError(f"{where}: gate={gate!r}: choose among {', '.join(allowed)}")
    return tuple(dict.fromkeys(chosen))


def _check_timeout(timeout: float, where: str) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ProbeInputError(f"{where}: timeout={timeout!r} must be seconds > 0")
