"""Network: a loopback echo server in a subprocess; request/response latency (built-in
ping-pong, and a client of our own), latency under a fixed-rate load, stream throughput."""

import json
import socket

import pytest


class JsonClient:
    """A tiny line-delimited JSON client: the kind of code a test would measure."""

    def __init__(self, address):
        self.sock = socket.create_connection(address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(b"E")  # perf.net's server: echo mode
        self.reader = self.sock.makefile("rb")

    def call(self, method, **params):
        self.sock.sendall(json.dumps({"method": method, "params": params}).encode() + b"\n")
        return json.loads(self.reader.readline())

    def close(self):
        self.reader.close()
        self.sock.close()


# Round trips are measured with client and server on one CPU (perf.net.latency's
# default), which kept them at 8-10 us on the shared 2-vCPU VM whether it was quiet or
# busy; its p99 still moved by up to +46% between runs. The latency examples gate at
# +50%: a slowdown of the path by half fails, the machine's mood does not.
LATENCY_THRESHOLD = 0.5


@pytest.mark.perf(threshold=LATENCY_THRESHOLD)
def test_rpc_latency(perf):
    server = perf.net.echo_server()
    perf.net.latency(server, size=64, seconds=0.6)  # RTT p50 and p99


@pytest.mark.perf(threshold=LATENCY_THRESHOLD)
def test_json_client_latency(perf):
    server = perf.net.echo_server()
    client = JsonClient(server.address)
    try:
        perf.net.latency(
            lambda: client.call("get", key="user:42"), seconds=0.6, gate="p50", name="get"
        )
    finally:
        client.close()


@pytest.mark.perf(threshold=LATENCY_THRESHOLD)
def test_latency_under_load(perf):
    server = perf.net.echo_server()
    # 2000 requests/s, latency from each request's intended send time.
    perf.net.latency(server, rate=2000, seconds=0.6, gate="p50", name="load")


@pytest.mark.perf(threshold=0.25)
def test_stream_throughput(perf):
    server = perf.net.echo_server()
    perf.net.throughput(server, seconds=0.6)
