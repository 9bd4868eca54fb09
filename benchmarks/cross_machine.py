"""How well does the machine-speed adjustment carry baselines to another machine class?

Step 1, on the machine that records:  python benchmarks/cross_machine.py record DIR
    writes the 24-test suite of gate_quality.py to DIR and records baselines there (3 runs).
Step 2, on another machine:           python benchmarks/cross_machine.py compare DIR
    runs the suite against those baselines with --perf-on-mismatch=normalize and prints,
    per test, the change the raw times show, the change after scaling by the session's
    calibration score, and the change after the per-sample speed reference. Code is
    identical on both sides, so the ideal change is 0 for every test: the spread of the
    adjusted changes is the error of cross-machine comparison, and the widened threshold
    (normalize_margin) must cover it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gate_quality import INJECTED, SUITE

COLLECTOR = """
import json, os

def pytest_runtest_logreport(report):
    payload = getattr(report, "perfgate", None)
    if payload is not None:
        with open(os.environ["CROSS_MACHINE_OUT"], "a") as f:
            f.write(json.dumps(payload) + "\\n")
"""


def pytest_cmd(*extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:benchmark",
        "test_suite.py",
        *extra,
    ]


def record(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "test_suite.py").write_text(
        SUITE.format(fixture="perf", marker="@pytest.mark.perf", injected=INJECTED)
    )
    (directory / "conftest.py").write_text(COLLECTOR)
    (directory / "pytest.ini").write_text("[pytest]\n")
    env = dict(os.environ, CROSS_MACHINE_OUT=os.devnull)
    for _ in range(3):
        subprocess.run(
            pytest_cmd("--perf-update-baselines"),
            cwd=directory,
            env=env,
            check=True,
            capture_output=True,
        )
    print(f"recorded baselines in {directory / 'baselines'}")


def compare(directory: Path) -> None:
    from pytest_perfgate.baseline import BaselineStore
    from pytest_perfgate.environment import calibrate_machine, cpu_model
    from pytest_perfgate.stats import speed_adjusted

    out = directory.resolve() / "results.jsonl"
    out.unlink(missing_ok=True)
    env = dict(os.environ, CROSS_MACHINE_OUT=str(out))
    # The calibration score moves with the machine's load (1.6x seen here while other
    # processes ran): take it right before and after the run, and use the mean.
    before = calibrate_machine()
    proc = subprocess.run(
        pytest_cmd("--perf-on-mismatch=normalize", "--perf-max-looks=1"),
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    calibration_now = (before + calibrate_machine()) / 2
    if not out.exists():
        sys.exit(f"the suite produced no results:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    # Baseline format 3 keeps the samples in a sidecar: read entries through the store.
    stored = {
        test: {name: entry.to_dict() for name, entry in measurements.items()}
        for test, measurements in BaselineStore(directory / "baselines")
        .load("test_suite.py")
        .tests.items()
    }
    rows = []
    for line in out.read_text().splitlines():
        payload = json.loads(line)
        for result in payload["results"]:
            m, c = result["measurement"], result["comparison"]
            base = stored[payload["test"]][m["name"]]
            raw = statistics.median(m["samples"]) / statistics.median(base["samples"])
            cal = raw / (calibration_now / base["environment"]["calibration_ns"])
            adjusted = statistics.median(
                speed_adjusted(m["samples"], m["reference"])
            ) / statistics.median(speed_adjusted(base["samples"], base["reference"]))
            rows.append((payload["test"], raw, cal, adjusted, c["verdict"]))
    print(f"baselines from: {next(iter(stored.values()))['time']['environment']['machine']}")
    print(f"this machine:   cpu {cpu_model()!r}, python {sys.version.split()[0]}")
    print(f"{'test':<26} {'raw':>8} {'calibrated':>11} {'speed-ref':>10}  verdict")
    for test, raw, cal, adj, verdict in sorted(rows):
        print(f"{test:<26} {raw - 1:>+8.1%} {cal - 1:>+11.1%} {adj - 1:>+10.1%}  {verdict}")
    for label, index in (("raw", 1), ("calibrated", 2), ("speed-ref", 3)):
        changes = [abs(r[index] - 1) for r in rows]
        print(
            f"{label:<10} median |change| {statistics.median(changes):6.1%}   "
            f"max |change| {max(changes):6.1%}"
        )
    verdicts = [r[4] for r in rows]
    print("verdicts: " + ", ".join(f"{v} {verdicts.count(v)}" for v in sorted(set(verdicts))))
    print(f"pytest exit status {proc.returncode}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in {"record", "compare"}:
        sys.exit(__doc__)
    (record if sys.argv[1] == "record" else compare)(Path(sys.argv[2]))
