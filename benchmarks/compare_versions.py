"""Two installs of perfgate on gate_quality.py's suite, interleaved run by run.

Each install records its own baselines (three refreshes) in its own copy of the suite,
then the two gate alternately (A, B, B, A, ...), so the machine's load hits both alike:
A/A runs, then runs with five tests doing 5% and 10% more work. It answers "did a change
to the code move the gate's figures?", which two separate gate_quality.py runs on a
shared machine cannot (their noise differs more than the versions do).

Usage:  python benchmarks/compare_versions.py BASE_PYTHON NEW_PYTHON [--runs 8]
(each PYTHON an interpreter with its own pytest-perfgate installed)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gate_quality


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_python")
    parser.add_argument("new_python")
    parser.add_argument("--runs", type=int, default=8, help="runs per condition and version")
    args = parser.parse_args()
    pythons = {"base": args.base_python, "new": args.new_python}
    work = Path(tempfile.mkdtemp(prefix="perfgate-versions-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    suite = gate_quality.SUITE.format(
        fixture="perf", marker="@pytest.mark.perf", injected=gate_quality.INJECTED
    )
    for name in pythons:
        (work / name).mkdir()
        (work / name / "test_suite.py").write_text(suite)
        (work / name / "pytest.ini").write_text("[pytest]\n")

    def run(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        command = [pythons[name], "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["-p", "no:benchmark", "test_suite.py", *extra]
        return subprocess.run(command, cwd=work / name, env=env, capture_output=True, text=True)

    env["GATE_BENCH_SLOWDOWN"] = "1"
    for _ in range(3):
        for name in pythons:
            refreshed = run(name, "--perf-update-baselines")
            if refreshed.returncode != 0:
                raise SystemExit(f"{name}: refresh failed\n{refreshed.stdout[-3000:]}")
    injected = set(gate_quality.INJECTED)
    for label, factor in (("A/A", "1"), ("+5%", "1.05"), ("+10%", "1.10")):
        env["GATE_BENCH_SLOWDOWN"] = factor
        red = dict.fromkeys(pythons, 0)
        caught = dict.fromkeys(pythons, 0)
        for i in range(args.runs):
            for name in list(pythons)[:: 1 if i % 2 == 0 else -1]:
                failed = set(re.findall(r"FAILED test_suite.py::(\S+)", run(name).stdout))
                wrongly = failed if label == "A/A" else failed - injected
                red[name] += bool(wrongly)
                caught[name] += 0 if label == "A/A" else len(failed & injected)
        line = f"{label:>5}: runs with a false alarm {red}"
        if label != "A/A":
            line += f", injected caught {caught} of {len(injected) * args.runs}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
