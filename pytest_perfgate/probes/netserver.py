"""The loopback server of ``perf.net``, run as a process of its own (``python netserver.py``).

A process, not a thread of the test: a server thread would share the test's GIL, and
every request would wait for the client's Python to let it run. Standard library only,
run by path with ``-I``: it starts in tens of milliseconds and imports nothing of ours.

Each connection's first byte picks its service: ``E`` echoes every byte back (request/
response latency), ``S`` swallows the stream and, when the client closes its side,
answers with the byte count (8 bytes, big-endian) so the client knows all of it arrived.

The server prints ``PORT <n>`` once it listens, and exits as soon as its stdin closes:
its parent stopped it, or died without stopping it (killed, interrupted). No orphan.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading

ECHO = b"E"
SINK = b"S"


def serve_echo(conn: socket.socket) -> None:
    buffer = bytearray(1 << 16)
    view = memoryview(buffer)
    while True:
        n = conn.recv_into(buffer)
        if n == 0:
            return
        conn.sendall(view[:n])


def serve_sink(conn: socket.socket) -> None:
    buffer = bytearray(1 << 20)
    total = 0
    while True:
        n = conn.recv_into(buffer)
        if n == 0:
            break
        total += n
    conn.sendall(total.to_bytes(8, "big"))


def handle(conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mode = conn.recv(1)
        if mode == ECHO:
            serve_echo(conn)
        elif mode == SINK:
            serve_sink(conn)


def accept_forever(listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    listener = socket.create_server((args.host, args.port), backlog=128)
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    threading.Thread(target=accept_forever, args=(listener,), daemon=True).start()
    # Block until the parent closes our stdin (or is gone), then leave at once.
    while sys.stdin.buffer.read(1 << 12):
        pass
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
