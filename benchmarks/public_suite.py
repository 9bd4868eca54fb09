"""A public project's real benchmark suite, unchanged, under perfgate and pytest-benchmark.

The suite: yarl 1.25.1's benchmark tests (tests/test_*benchmarks.py, written for the
`benchmark` fixture of pytest-codspeed, which has pytest-benchmark's API). The script
downloads yarl's sdist from PyPI into a temporary directory and runs its benchmark files
from there; nothing of yarl is kept in this repository.

Needs, in the running interpreter's environment: pytest-perfgate, pytest-benchmark,
pytest-codspeed (the test files import its BenchmarkFixture type; its plugin is disabled
with -p no:codspeed) and yarl==1.25.1 from wheels:

    python -m venv /tmp/pubenv
    /tmp/pubenv/bin/pip install -e . 'pytest-benchmark>=5' pytest-codspeed 'yarl==1.25.1'
    /tmp/pubenv/bin/python benchmarks/public_suite.py

For each tool: record (perfgate: 3 refreshes, as its docs recommend; pytest-benchmark:
--benchmark-save), then two runs of unchanged code against that (A/A): how many tests fail,
how far medians move between the two runs, and the wall time of a suite run.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

PROJECT, VERSION = "yarl", "1.25.1"

COLLECTOR = """
import json, os

def pytest_runtest_logreport(report):
    payload = getattr(report, "perfgate", None)
    if payload is not None and os.environ.get("PUBLIC_SUITE_OUT"):
        with open(os.environ["PUBLIC_SUITE_OUT"], "a") as f:
            for r in payload["results"]:
                c = r["comparison"]
                f.write(json.dumps([payload["test"], c["current"]["median"], c["verdict"]]) + "\\n")
"""


def fetch_suite(directory: Path) -> list[str]:
    index = f"https://pypi.org/pypi/{PROJECT}/json"
    with urllib.request.urlopen(index) as reply:
        project = json.load(reply)
    files = project.get("releases", {}).get(VERSION) or (
        project["urls"] if project["info"]["version"] == VERSION else []
    )
    (sdist,) = [u for u in files if u["packagetype"] == "sdist"]
    archive = directory / sdist["filename"]
    # Mirrors of PyPI may answer with a URL relative to the JSON document.
    urllib.request.urlretrieve(urllib.parse.urljoin(index, sdist["url"]), archive)
    names = []
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if re.search(r"/tests/test_\w*benchmarks\.py$", member.name):
                target = directory / Path(member.name).name
                target.write_bytes(tar.extractfile(member).read())  # type: ignore[union-attr]
                names.append(target.name)
    (directory / "pytest.ini").write_text("[pytest]\n")
    (directory / "conftest.py").write_text(COLLECTOR)
    return sorted(names)


def run(directory: Path, args: list[str], env: dict[str, str]) -> tuple[float, str, int]:
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:codspeed",
            *args,
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - start, proc.stdout + proc.stderr, proc.returncode


def outcome(output: str) -> str:
    lines = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed)", line)]
    return lines[-1].strip("= ") if lines else "no summary line"


def perfgate_runs(directory: Path, files: list[str]) -> dict[str, object]:
    env = dict(os.environ)
    base = ["-p", "no:benchmark", *files]
    for _ in range(3):
        _, out, code = run(directory, [*base, "--perf-update-baselines"], env)
        assert code == 0, out[-3000:]
    runs = []
    for i in range(2):
        results = directory / f"perfgate-{i}.jsonl"
        wall, out, _ = run(directory, base, dict(env, PUBLIC_SUITE_OUT=str(results)))
        rows = [json.loads(line) for line in results.read_text().splitlines()]
        runs.append(
            {
                "wall": wall,
                "summary": outcome(out),
                "failed": sum(1 for r in rows if r[2] == "REGRESSED"),
                "medians": {r[0]: r[1] for r in rows},
                "tests": len(rows),
            }
        )
    return {"runs": runs, "moves": moves(runs[0]["medians"], runs[1]["medians"])}  # type: ignore[arg-type]


def benchmark_runs(directory: Path, files: list[str]) -> dict[str, object]:
    env = dict(os.environ)
    storage = f"--benchmark-storage=file://{directory / '.benchmarks'}"
    base = ["-p", "no:perfgate", storage, *files]
    _, out, code = run(directory, [*base, "--benchmark-save=base"], env)
    assert code == 0, out[-3000:]
    runs = []
    for i in range(2):
        json_out = directory / f"benchmark-{i}.json"
        wall, out, _ = run(
            directory,
            [
                *base,
                "--benchmark-compare=0001",
                "--benchmark-compare-fail=median:5%",
                f"--benchmark-json={json_out}",
            ],
            env,
        )
        flagged = re.findall(r"^\t(\S+) \(\S+\) - Field", out, flags=re.MULTILINE)
        document = json.loads(json_out.read_text())
        runs.append(
            {
                "wall": wall,
                "summary": outcome(out),
                "failed": len(set(flagged)),
                "medians": {b["name"]: b["stats"]["median"] for b in document["benchmarks"]},
                "tests": len(document["benchmarks"]),
            }
        )
    return {"runs": runs, "moves": moves(runs[0]["medians"], runs[1]["medians"])}  # type: ignore[arg-type]


def moves(first: dict[str, float], second: dict[str, float]) -> dict[str, float]:
    """Absolute relative change of each test's median between two runs."""
    changes = [abs(second[t] / first[t] - 1) for t in first if t in second]
    return {"median": statistics.median(changes), "worst": max(changes), "n": len(changes)}


def main() -> int:
    directory = Path(tempfile.mkdtemp(prefix="perfgate-public-suite-"))
    files = fetch_suite(directory)
    print(f"{PROJECT} {VERSION}: {', '.join(files)} in {directory}", file=sys.stderr)
    results = {
        "perfgate": perfgate_runs(directory, files),
        "pytest-benchmark": benchmark_runs(directory, files),
    }
    print(
        f"\n{PROJECT} {VERSION} benchmark suite, unchanged; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'tool':<17} {'tests':>5} {'A/A failures (run 1, run 2)':>28} "
        f"{'median move':>12} {'worst move':>11} {'wall/run':>9}"
    )
    for tool, result in results.items():
        runs = result["runs"]
        move = result["moves"]
        print(
            f"{tool:<17} {runs[0]['tests']:>5} {runs[0]['failed']:>17}, {runs[1]['failed']:<10}"  # type: ignore[index]
            f"{move['median']:>12.1%} {move['worst']:>11.1%} "  # type: ignore[index]
            f"{statistics.mean(r['wall'] for r in runs):>8.1f}s"
        )  # type: ignore[attr-defined]
        for r in runs:  # type: ignore[attr-defined]
            print(f"    {r['summary']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
