"""perf.storage and perf.net against the reference tools, on this machine, in one run.

    python benchmarks/io_reference.py [--dir DIR] [--rounds 3] [--seconds 3]

Needs fio, iperf3 and sockperf; installs them from Debian's packages when they are
missing and it runs as root (`apt-get install -y fio iperf3 sockperf`), else says so.

The whole run holds a 0 us CPU latency request (/dev/cpu_dma_latency, where permitted),
as our probes do while they measure (pytest_perfgate/probes/cpuidle.py): both sides run
with the CPUs kept out of idle states. Each comparison runs our probe and the tool with
the same parameters, interleaved
(ours, tool; then tool, ours; ...) for --rounds rounds, so machine noise hits both; the
figures are the medians over rounds, and the table gives ours / tool:

- sequential write, 1 MiB blocks, fsync once per pass over the file (fio --fsync=N with
  N the blocks per pass), O_DIRECT;
- sequential read, page cache dropped: O_DIRECT (fio --direct=1), and buffered with
  posix_fadvise(DONTNEED) before each pass (fio --direct=0 --invalidate=1, one pass);
- random 4 KiB reads, O_DIRECT, one in flight (fio psync, iodepth 1);
- loopback stream throughput, one stream of 128 KiB writes (iperf3 -l 128K, warm-up
  omitted with -O);
- request/response RTT of 64-byte messages over TCP with TCP_NODELAY (sockperf
  ping-pong --tcp --full-rtt): p50 and p99, and the time our probe adds per call; both
  with client and server on one CPU (taskset for sockperf), as perf.net.latency runs.

Then the A/A count: the example suite's storage and network tests refreshed 3 times into
a temporary baseline directory and run 10 times against it: how many runs fail.
``--aa-only`` runs just that (no reference tools needed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pytest_perfgate.probes.cpuidle import cpus_kept_awake
from pytest_perfgate.probes.iostats import percentiles, slice_rates
from pytest_perfgate.probes.network import (
    ONE_CPU,
    EchoServer,
    Endpoint,
    PingPong,
    connect,
    pinned,
    run_requests,
    run_stream,
)
from pytest_perfgate.probes.storage import Workload, filesystem_of, run_workload

ROOT = Path(__file__).resolve().parents[1]
TOOLS = {"fio": "fio", "iperf3": "iperf3", "sockperf": "sockperf"}  # command -> Debian package
MIB = 2**20


def ensure_tools() -> None:
    missing = [cmd for cmd in TOOLS if shutil.which(cmd) is None]
    if not missing:
        return
    packages = " ".join(TOOLS[cmd] for cmd in missing)
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {packages} from Debian's packages...", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", *packages.split()],
            check=True,
            env=env,
            capture_output=True,
        )
        return
    sys.exit(f"missing {', '.join(missing)}: run `sudo apt-get install -y {packages}`")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fio(directory: Path, *args: str) -> dict[str, float]:
    """Run one fio job in ``directory``; bandwidth (MiB/s), IOPS and clat p50/p99 (s).

    A read job's file is laid out first and fsynced (fio's own layout is not synced, and
    reading while it is still written back measures the writeback), as ours is.
    """
    target = directory / "fio.dat"
    base = ["fio", "--name=ref", f"--filename={target}", "--ioengine=psync"]
    try:
        if any(a in args for a in ("--rw=read", "--rw=randread")):
            size = next(a for a in args if a.startswith("--size="))
            subprocess.run([*base, size, "--create_only=1"], check=True, capture_output=True)
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        out = subprocess.run(
            [*base, "--output-format=json", *args], check=True, capture_output=True, text=True
        ).stdout
    finally:
        target.unlink(missing_ok=True)
    job = json.loads(out[out.index("{") :])["jobs"][0]
    side = job["write"] if job["write"]["io_bytes"] else job["read"]
    clat = side["clat_ns"].get("percentile", {})
    return {
        "mib_per_s": side["bw_bytes"] / MIB,
        "iops": side["iops"],
        "p50": clat.get("50.000000", 0) / 1e9,
        "p99": clat.get("99.000000", 0) / 1e9,
    }


def ours_storage(workload: Workload) -> dict[str, float]:
    run = run_workload(workload)
    rates = slice_rates(run.passes, 20)
    lat = percentiles([(c.end_ns - c.start_ns) / 1e9 for p in run.passes for c in p if c.is_io])
    return {
        "mib_per_s": rates.mean_mib_per_s,
        "iops": rates.mean_ops_per_s,
        "p50": lat["p50"],
        "p99": lat["p99"],
        "cache": run.cache,  # type: ignore[dict-item]
    }


def iperf3(seconds: float, warmup: float) -> float:
    """Loopback stream throughput of iperf3, MiB/s (the sender's figure)."""
    port = free_port()
    server = subprocess.Popen(
        ["iperf3", "-s", "-1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        out = subprocess.run(
            [
                "iperf3",
                "-c",
                "127.0.0.1",
                "-p",
                str(port),
                "-t",
                str(seconds),
                "-O",
                str(warmup),
                "-l",
                "128K",
                "-J",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        server.wait(timeout=10)
    return float(json.loads(out)["end"]["sum_sent"]["bits_per_second"]) / 8 / MIB


def ours_stream(server: EchoServer, seconds: float, warmup: float) -> float:
    run = run_stream(
        Endpoint(*server.address, ours=True),
        seconds=seconds,
        warmup=warmup,
        streams=1,
        block=128 * 1024,
        timeout=10,
    )
    return slice_rates([run.sends], 20).mean_mib_per_s


def one_cpu() -> list[str]:
    """``taskset`` onto the CPU perf.net.latency pins client and server to (the last one
    this process may use), so sockperf runs in the same placement as our probe."""
    return ["taskset", "-c", str(max(os.sched_getaffinity(0)))]


def sockperf(seconds: float) -> dict[str, float]:
    """RTT p50 and p99 (seconds) of sockperf ping-pong, 64-byte TCP messages, server and
    client on one CPU."""
    port = free_port()
    server = subprocess.Popen(
        [*one_cpu(), "sockperf", "sr", "--tcp", "-i", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        out = subprocess.run(
            [
                *one_cpu(),
                "sockperf",
                "ping-pong",
                "--tcp",
                "--full-rtt",
                "-i",
                "127.0.0.1",
                "-p",
                str(port),
                "-m",
                "64",
                "-t",
                str(seconds),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        server.terminate()
        server.wait(timeout=10)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out)

    def percentile(p: str) -> float:
        match = re.search(rf"percentile {p} =\s*([\d.]+)", text)
        assert match, text
        return float(match.group(1)) / 1e6

    return {"p50": percentile("50.000"), "p99": percentile("99.000")}


def ours_rtt(server: EchoServer, seconds: float) -> dict[str, float]:
    endpoint = Endpoint(*server.address, ours=True)
    with (
        contextlib.closing(connect(endpoint, b"E", 10, "io_reference")) as sock,
        pinned([server.pid], ONE_CPU),  # as perf.net.latency measures
    ):
        run = run_requests(PingPong(sock, 64, "io_reference", 10), seconds=seconds, warmup=0.4)
    figures = percentiles(run.latencies)
    return {"p50": figures["p50"], "p99": figures["p99"]}


def interleaved(
    rounds: int, ours: Callable[[], object], tool: Callable[[], object]
) -> Iterator[tuple[object, object]]:
    """Rounds of (ours, tool), alternating which goes first."""
    for r in range(rounds):
        if r % 2 == 0:
            a = ours()
            b = tool()
        else:
            b = tool()
            a = ours()
        yield a, b


def median_of(results: list[dict[str, float]], key: str) -> float:
    return statistics.median(float(r[key]) for r in results)


def paired_ratio(ours: list[float], tool: list[float]) -> str:
    """The median of the per-round ratios (each round ran both back to back, so a slow
    phase of the machine hits both), with their range."""
    ratios = sorted(o / t for o, t in zip(ours, tool, strict=True))
    return f"{statistics.median(ratios):.3f} ({ratios[0]:.2f}..{ratios[-1]:.2f})"


def aa_count(runs: int) -> tuple[int, int, list[str]]:
    """Refresh the example storage and network tests 3 times into a temporary baseline
    directory, then run them ``runs`` times: (failed runs, runs, failing lines)."""
    files = ["example_suite/test_storage.py", "example_suite/test_network.py"]
    failures: list[str] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="perfgate-aa-") as baselines:
        base = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            f"--perf-baseline-dir={baselines}",
            *files,
        ]
        for _ in range(3):
            subprocess.run(
                [*base, "--perf-update-baselines"], cwd=ROOT, capture_output=True, check=True
            )
        for _ in range(runs):
            result = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                failed += 1
                failures += [line for line in result.stdout.splitlines() if "REGRESSED" in line]
    return failed, runs, failures


def main() -> None:
    # Our probes keep the CPUs out of idle states while they measure (cpuidle.py): the
    # tools get the same, for the whole run, or the comparison would be of idle states.
    with cpus_kept_awake() as idle:
        print(f"CPU idle states: {idle}", flush=True)
        compare_with_tools()


def compare_with_tools() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--aa-runs", type=int, default=10)
    parser.add_argument("--aa-only", action="store_true", help="only the A/A count")
    args = parser.parse_args()
    if args.aa_only:
        report_aa(*aa_count(args.aa_runs))
        return
    ensure_tools()
    fs = filesystem_of(args.dir)
    seconds, ramp = args.seconds, 0.5
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
        f"target {args.dir}: {fs.type} on {fs.device}; {args.rounds} interleaved rounds of "
        f"{seconds:g} s (+{ramp:g} s ramp)",
        flush=True,
    )
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="perfgate-io-") as work:
        directory = Path(work)
        size, passes_blocks = 256 * MIB, 256
        fio_time = [f"--runtime={seconds:g}", f"--ramp_time={ramp:g}", "--time_based"]

        def storage(label: str, workload: Workload, fio_args: list[str], metric: str) -> None:
            pairs = list(
                interleaved(
                    args.rounds, lambda: ours_storage(workload), lambda: fio(directory, *fio_args)
                )
            )
            o = median_of([p[0] for p in pairs], metric)  # type: ignore[misc]
            t = median_of([p[1] for p in pairs], metric)  # type: ignore[misc]
            unit = "MiB/s" if metric == "mib_per_s" else "IO/s"
            cache = pairs[0][0]["cache"]  # type: ignore[index]
            ratio = paired_ratio(
                [float(p[0][metric]) for p in pairs],  # type: ignore[index]
                [float(p[1][metric]) for p in pairs],  # type: ignore[index]
            )
            rows.append((f"{label} [{cache}]", f"{o:.0f} {unit}", f"{t:.0f} {unit}", ratio))
            print(f"  {rows[-1]}", flush=True)

        storage(
            "seq write 1 MiB, fsync per pass",
            Workload("write", directory, size, MIB, seconds=seconds, ramp=ramp),
            [
                "--rw=write",
                "--bs=1M",
                f"--size={size}",
                "--direct=1",
                f"--fsync={passes_blocks}",
                *fio_time,
            ],
            "mib_per_s",
        )
        storage(
            "seq read 1 MiB",
            Workload("read", directory, size, MIB, seconds=seconds, ramp=ramp),
            ["--rw=read", "--bs=1M", f"--size={size}", "--direct=1", *fio_time],
            "mib_per_s",
        )
        big = 1024 * MIB
        storage(
            "seq read 1 MiB, buffered",
            Workload("read", directory, big, MIB, cache="dropped", seconds=seconds, ramp=0.0),
            # Three passes, each invalidated, as ours makes in about 3 s: a single pass
            # right after the layout reads while the host still writes it back.
            ["--rw=read", "--bs=1M", f"--size={big}", "--direct=0", "--invalidate=1", "--loops=3"],
            "mib_per_s",
        )
        storage(
            "rand read 4 KiB",
            Workload("randread", directory, size, 4096, seconds=seconds, ramp=ramp),
            ["--rw=randread", "--bs=4k", f"--size={size}", "--direct=1", *fio_time],
            "iops",
        )

    with EchoServer() as server:
        pairs = list(
            interleaved(
                args.rounds,
                lambda: ours_stream(server, seconds, ramp),
                lambda: iperf3(seconds, ramp),
            )
        )
        o = statistics.median(float(p[0]) for p in pairs)  # type: ignore[arg-type]
        t = statistics.median(float(p[1]) for p in pairs)  # type: ignore[arg-type]
        ratio = paired_ratio([float(p[0]) for p in pairs], [float(p[1]) for p in pairs])  # type: ignore[arg-type]
        rows.append(("loopback stream, 1 x 128 KiB", f"{o:.0f} MiB/s", f"{t:.0f} MiB/s", ratio))
        print(f"  {rows[-1]}", flush=True)

        rtt = list(
            interleaved(args.rounds, lambda: ours_rtt(server, seconds), lambda: sockperf(seconds))
        )
        for key in ("p50", "p99"):
            o = median_of([p[0] for p in rtt], key)  # type: ignore[misc]
            t = median_of([p[1] for p in rtt], key)  # type: ignore[misc]
            rows.append(
                (
                    f"TCP RTT 64 B {key} (+{(o - t) * 1e6:.1f} us/call)",
                    f"{o * 1e6:.2f} us",
                    f"{t * 1e6:.2f} us",
                    paired_ratio(
                        [float(p[0][key]) for p in rtt],  # type: ignore[index]
                        [float(p[1][key]) for p in rtt],  # type: ignore[index]
                    ),
                )
            )
            print(f"  {rows[-1]}", flush=True)

    aa = aa_count(args.aa_runs)
    print()
    print("| measurement | ours | reference | ours / reference: median of rounds (range) |")
    print("|---|---:|---:|---:|")
    for label, ours_value, tool_value, ratio in rows:
        print(f"| {label} | {ours_value} | {tool_value} | {ratio} |")
    print()
    report_aa(*aa)


def report_aa(failed: int, runs: int, lines: list[str]) -> None:
    print(f"A/A: {failed} of {runs} runs of the example storage and network tests failed")
    for line in lines:
        print(f"  {line}")


if __name__ == "__main__":
    main()
