"""A real history: the example suite's CPU tests run at 30+ commits of a scratch clone.

Issue 17 asks for a dashboard and a brief made from a real history, not a generated one.
This script clones this repository into a scratch directory and writes a commit a day
apart (``--every`` days, ending today), each changing the example suite the way a project
changes; at each commit it runs the CPU examples with pytest-perfgate (a short
``--perf-max-time``), times the job, and records the results file into an SQLite history
at the commit's date, as a nightly job would have. The changes (``CHANGES``):

- commit 0 moves three examples onto a small module, ``example_suite/app.py``, the code
  under test from then on (the tests' own code never changes again: a test whose code
  changed is INCOMPARABLE to its baseline, by design);
- commit 8: ``sort_readings`` (``test_sort_floats``) does 20% more work, a slowdown the
  gate should stop;
- commit 16: ``pack`` (``test_compress``) compresses at level 9 instead of 6;
- commit 24: ``sort_readings`` loses the extra work again, an improvement;
- every commit: ``export`` (``test_json_dump``) writes 3 more records (about 1% a commit:
  the data growing), against a budget declared at commit 1 that the trend will cross.

Commit 0 is recorded as a refresh (its baselines are what the first gated runs compare
with); a gated run that stops a regression is followed by a refresh at the same commit
(the team reviewed the change and accepted it), as in a real project. At the end it writes
the dashboard, the brief (Markdown, HTML, PDF when Chromium is there) and, with Chromium,
screenshots of the index, one measurement page and the brief.

    .venv/bin/python benchmarks/real_history.py --out benchmarks/results/real-history \\
        --images docs/images
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pytest_perfgate.history.brief import (
    PdfError,
    make_brief,
    print_pdf,
    render_brief_html,
    render_brief_markdown,
)
from pytest_perfgate.history.dashboard import page_name, write_dashboard
from pytest_perfgate.history.model import RunKind
from pytest_perfgate.history.record import recorded_from
from pytest_perfgate.history.store import open_history
from pytest_perfgate.history.views import views_of
from pytest_perfgate.results import read_results

REPOSITORY = Path(__file__).resolve().parent.parent
#: The CPU examples: no GPU, storage or network, so the runs stay short and comparable.
SUITE = ("example_suite/test_data.py", "example_suite/test_text.py")
DUMP_TEST = "example_suite/test_text.py::test_json_dump"


#: The code under test, added at commit 0: the examples call it, so later commits change
#: it and not the tests (a test whose own code changed is INCOMPARABLE to its baseline, by
#: design; a slowdown in the code it calls is what the gate is for).
APP = '''"""The code the example suite measures (written by benchmarks/real_history.py)."""

import json
import zlib

#: Records an export holds: the data grows a little with every commit.
EXPORT_RECORDS = 300


def sort_readings(values):
    return sorted(values)


def pack(payload):
    return zlib.compress(payload, 6)


def export(records):
    return json.dumps(records[:EXPORT_RECORDS], sort_keys=True)
'''

#: The examples, moved onto the code under test at commit 0: (path, old, new).
USES_APP = (
    (
        "example_suite/test_data.py",
        "import pytest\n",
        "import pytest\nfrom app import pack, sort_readings\n",
    ),
    ("example_suite/test_data.py", "perf.call(sorted, setup", "perf.call(sort_readings, setup"),
    ("example_suite/test_data.py", "perf(zlib.compress, payload, 6)", "perf(pack, payload)"),
    ("example_suite/test_text.py", "import pytest\n", "import pytest\nfrom app import export\n"),
    (
        "example_suite/test_text.py",
        "perf(json.dumps, records, sort_keys=True)",
        "perf(export, records)",
    ),
)

#: What changes in the code under test, by commit: (commit, old, new, message).
CHANGES = (
    (
        8,
        "    return sorted(values)",
        "    checked = values + values[: len(values) // 5]  # and a 20% validation sample\n"
        "    return sorted(checked)[: len(values)]",
        "sort_readings: sort a validation sample too (20% more work)",
    ),
    (
        16,
        "zlib.compress(payload, 6)",
        "zlib.compress(payload, 9)",
        "pack: level 9 for smaller artifacts",
    ),
    (
        24,
        "    checked = values + values[: len(values) // 5]  # and a 20% validation sample\n"
        "    return sorted(checked)[: len(values)]",
        "    return sorted(values)",
        "sort_readings: drop the validation sample again",
    ),
)

#: Records an export holds at commit k: EXPORT_RECORDS + RECORDS_PER_COMMIT * k.
RECORDS_PER_COMMIT = 3


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    ).stdout.strip()


def edit(repo: Path, path: str, old: str, new: str) -> None:
    file = repo / path
    text = file.read_text(encoding="utf-8")
    if old not in text:
        raise SystemExit(f"{path}: cannot apply the change, {old!r} is not there")
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


def commit(repo: Path, k: int, at: datetime, budget_of: Callable[[], str | None]) -> str:
    """Write commit ``k`` (dated ``at``); the message says what changed."""
    app = repo / "example_suite" / "app.py"
    messages = []
    if k == 0:
        app.write_text(APP, encoding="utf-8")
        for path, old, new in USES_APP:
            edit(repo, path, old, new)
        git(repo, "add", str(app))
        messages.append("examples: measure the code in app.py")
    else:
        records = 300 + RECORDS_PER_COMMIT * k
        edit(repo, "example_suite/app.py", f"= {records - RECORDS_PER_COMMIT}\n", f"= {records}\n")
        messages.append(f"export {records} records")
    for at_commit, old, new, message in CHANGES:
        if at_commit == k:
            edit(repo, "example_suite/app.py", old, new)
            messages.append(message)
    budget = budget_of() if k == 1 else None
    if budget is not None:
        with (repo / "pyproject.toml").open("a", encoding="utf-8") as file:
            file.write(f'\n[tool.perfgate.budgets]\n"{DUMP_TEST}" = "{budget}"\n')
        messages.append(f"declare a budget of {budget} for json_dump")
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    git(
        repo,
        "commit",
        "-q",
        "-a",
        "-m",
        "; ".join(messages),
        env={"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp},
    )
    return git(repo, "rev-parse", "HEAD")


def run_suite(
    repo: Path, baselines: Path, results: Path, refresh: bool, args: argparse.Namespace
) -> float:
    """Run the CPU examples; the job's wall time in seconds."""
    # The venv's pytest script, not ``python -m pytest``: the clone's directory must not
    # come first on sys.path, so the perfgate under test is this checkout's.
    command = [
        str(Path(sys.executable).parent / "pytest"),
        *SUITE,
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        f"--perf-baseline-dir={baselines}",
        f"--perf-json={results}",
        f"--perf-max-time={args.max_time}",
        f"--perf-measure={args.measure}",
    ]
    if args.tests:
        command += ["-k", args.tests]
    if refresh:
        command.append("--perf-update-baselines")
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if completed.returncode not in (0, 1) or not results.is_file():
        raise SystemExit(f"pytest failed ({completed.returncode}):\n{completed.stdout[-3000:]}")
    return wall


def record(where: str, results: Path, kind: RunKind, at: datetime, wall: float, k: int) -> str:
    """Record one results file at ``at``; its verdict counts, for the log."""
    run_results = read_results(results)
    run, measurements = recorded_from(
        run_results,
        kind,
        branch="main",
        wall_seconds=wall,
        source=f"benchmarks/real_history.py commit {k}",
        started_at=at,
    )
    with open_history(where) as history:
        history.record(run, measurements)
    counts = {v: n for v, n in run_results.counts().items() if n}
    return json.dumps(counts)


def regressed(results: Path) -> bool:
    return read_results(results).counts().get("REGRESSED", 0) > 0


def measured_level(results: Path, test_id: str) -> float:
    for test in read_results(results).tests:
        if test.test_id == test_id:
            return test.results[0][1].now
    raise SystemExit(f"{test_id} not in {results}")


def build_history(args: argparse.Namespace, scratch: Path, where: str) -> None:
    repo = scratch / "repo"
    subprocess.run(["git", "clone", "-q", str(REPOSITORY), str(repo)], check=True)
    git(repo, "config", "user.email", "history@example.invalid")
    git(repo, "config", "user.name", "real_history.py")
    baselines = scratch / "baselines"
    today = datetime.now(timezone.utc).replace(hour=2, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=args.every * (args.commits - 1))
    levels: dict[str, float] = {}

    def budget() -> str | None:
        # 45% above commit 0's level: a drift of ~1% a commit crosses it within a year.
        if "dump" not in levels:
            return None
        if args.measure == "instructions":  # a bare number is in the measurement's unit
            return f"{levels['dump'] * 1.45:.0f}"
        return f"{levels['dump'] * 1.45 * 1e3:.3f} ms"

    for k in range(args.commits):
        at = first + timedelta(days=args.every * k)
        sha = commit(repo, k, at, budget)
        results = scratch / f"results-{k:02d}.json"
        kind = RunKind.REFRESH if k == 0 else RunKind.GATE
        wall = run_suite(repo, baselines, results, kind is RunKind.REFRESH, args)
        counts = record(where, results, kind, at, wall, k)
        print(f"commit {k:2d} {sha[:8]} {kind.value:7s} {wall:5.1f} s {counts}", flush=True)
        if k == 0:
            levels["dump"] = measured_level(results, DUMP_TEST)
        if kind is RunKind.GATE and regressed(results):
            # Reviewed and accepted: the baselines move to the new level, an hour later.
            later = at + timedelta(hours=1)
            wall = run_suite(repo, baselines, results, True, args)
            counts = record(where, results, RunKind.REFRESH, later, wall, k)
            print(f"commit {k:2d} {sha[:8]} refresh {wall:5.1f} s {counts}", flush=True)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(url: str, png: Path, scratch: Path, height: int) -> None:
    browser = chromium()
    assert browser is not None
    subprocess.run(
        [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={scratch / 'profile'}",
            "--hide-scrollbars",
            f"--window-size=1100,{height}",
            f"--screenshot={png}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def render(args: argparse.Namespace, scratch: Path, where: str) -> None:
    out: Path = args.out.resolve()
    now = datetime.now(timezone.utc)
    with open_history(where) as history:
        series = history.series()
        runs = history.runs()
    views = views_of(series, now=now)
    site = write_dashboard(views, out / "dashboard", generated_at=now, source="real_history.py")
    # The brief covers the whole history (about four months), not the default 90 days.
    since = min((run.started_at for run in runs), default=now) - timedelta(hours=1)
    facts = make_brief(views, runs, since=since, until=now, price_per_hour=args.price_per_hour)
    (out / "brief.md").write_text(render_brief_markdown(facts), encoding="utf-8")
    page = render_brief_html(facts)
    (out / "brief.html").write_text(page, encoding="utf-8")
    print(f"dashboard: {site.index}; brief: {out / 'brief.md'}", flush=True)
    if chromium() is None:
        print("no chromium: no PDF and no screenshots", flush=True)
        return
    try:
        print_pdf(page, out / "brief.pdf")
    except PdfError as error:
        print(f"brief.pdf not written: {error}", flush=True)
    images: Path = args.images or out
    images.mkdir(parents=True, exist_ok=True)
    # The page to show: the measurement with the largest regression found, if any.
    regressions = [(abs(c.change), v) for v in views for c in v.changes if c.regression]
    shown = max(regressions, key=lambda pair: pair[0])[1] if regressions else views[0]
    shots = (
        (site.index.as_uri(), "history-dashboard-index.png", 700),
        (
            (site.index.parent / "m" / page_name(shown.series.key)).as_uri(),
            "history-dashboard-measurement.png",
            900,
        ),
        ((out / "brief.html").as_uri(), "history-brief.png", 1000),
    )
    for url, name, height in shots:
        screenshot(url, images / name, scratch, height)
        print(f"screenshot: {images / name}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=32)
    parser.add_argument("--every", type=float, default=4.0, help="days between commits")
    parser.add_argument("--max-time", type=float, default=0.3, help="--perf-max-time per test")
    parser.add_argument(
        "--measure",
        choices=("time", "instructions"),
        default="time",
        help="--perf-measure: instruction counts (under Valgrind) do not see the neighbours",
    )
    parser.add_argument("-k", dest="tests", help="pytest -k: the examples to run")
    parser.add_argument("--price-per-hour", type=float, default=0.40)
    parser.add_argument("--out", type=Path, default=Path("real-history"))
    parser.add_argument("--images", type=Path, help="where the screenshots go (default: --out)")
    parser.add_argument("--history", help="an existing history to render instead of building")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="perfgate-real-history-") as scratch_dir:
        scratch = Path(scratch_dir)
        where = args.history or f"sqlite:///{(args.out / 'history.sqlite').resolve()}"
        if args.history is None:
            started = time.perf_counter()
            build_history(args, scratch, where)
            print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
        render(args, scratch, where)
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
