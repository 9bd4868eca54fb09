"""The hostile-input census of docs/reliability.md (issue 14).

Feeds every loader, option parser and report writer a fixed corpus of hostile inputs and
sorts each outcome into one of four:

- refused: an error of the documented kind that names the file, option or test;
- accepted: read, and every value is one the gate can judge (finite positive samples,
  bounded loops, strings where strings belong) or a report shows it neutralised;
- silent-wrong: accepted, but a value the gate cannot judge got through, or a report
  carries a link, mention, control or bidirectional character from a test id;
- traceback: any other exception.

And, for baseline files, data lost: after each hostile file a refresh of that module and a
healthy one runs; the hostile file must be left byte for byte, the healthy one written.
Prints the table in the page's format.

Usage:  python benchmarks/hostile_inputs.py
"""

# B023: every lambda here is called at once by classify(), inside its loop iteration.
# ruff: noqa: B023

from __future__ import annotations

import json
import math
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pytest_perfgate.baseline import (
    BaselineError,
    BaselineStore,
    render_document,
    render_samples,
    samples_path,
)
from pytest_perfgate.importers import SavedRunError, read_saved_run
from pytest_perfgate.model import (
    MAX_LOOPS,
    BaselineEntry,
    Comparison,
    Direction,
    Environment,
    Measurement,
    Verdict,
    explain,
)
from pytest_perfgate.report import github
from pytest_perfgate.report.html import render_html
from pytest_perfgate.report.markdown import render_markdown
from pytest_perfgate.report.terminal import render_table
from pytest_perfgate.results import ResultsError, RunResults, TestResults, read_results
from pytest_perfgate.results import results_json as dump_results
from pytest_perfgate.settings import OPTIONS_BY_NAME, PerfSpec, Settings, SettingsError
from pytest_perfgate.stats import summarize

SAMPLES = (1e-3, 1.01e-3, 0.99e-3)
HOSTILE_JSON = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "0", "-5", "5e-324", "1e308",
    '"999"', '"x"', "[]", "[NaN]", "[0]", "[-1]", "[5e-324]", "[1e400]", '["1"]', "[true]",
    "true", "false", "null", "{}", '{"a": 1}', "1000000000000", "1.5", "[[1]]",
]  # fmt: skip
ENTRY_FIELDS = [
    "unit", "direction", "summary", "history", "environment", "loops", "code_hash",
    "commit", "recorded_at", "statistic", "summary_only",
]  # fmt: skip
SAMPLE_FIELDS = ["samples", "cpu_samples", "reference", "details", "test", "measurement"]
HOSTILE_TEXT = [
    "@alice", "#1", "GH-7", "https://evil.example/x", "[l](https://e.example)",
    "www.e.example", "a\u202eb", "a\u2066b", "\n::error file=x::owned", "\r\n::warning::x",
    "\x1b[31mred", "<script>alert(1)</script>", "a|b", "`x`", "*y*", "\x00", "\u0085",
]  # fmt: skip
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
LINKING = re.compile(r"@\w|#\w|\bGH-\d|https?://|www\.", re.IGNORECASE)


def entry() -> BaselineEntry:
    return BaselineEntry(
        "s", Direction.LOWER_IS_BETTER, SAMPLES, summarize(SAMPLES), (1e-3, 1e-3),
        Environment({"cpu": "x"}), loops=10, code_hash="abc",
    )  # fmt: skip


def judgeable(tests: dict[str, dict[str, BaselineEntry]]) -> bool:
    for measurements in tests.values():
        for e in measurements.values():
            values = (*e.samples, *e.history, *e.reference)
            if not e.samples or not all(math.isfinite(v) and v > 0 for v in values):
                return False
            if e.loops is not None and not 1 <= e.loops <= MAX_LOOPS:
                return False
            if not all(math.isfinite(v) for v in e.summary.to_dict().values()):
                return False
            if not isinstance(e.code_hash, str | None) or not isinstance(e.unit, str):
                return False
    return True


def classify(attempt: Callable[[], bool], error: type[Exception], name: str) -> str:
    try:
        good = attempt()
    except error as raised:
        return "refused" if name in str(raised) else "traceback"
    except Exception:  # counting them is the point
        return "traceback"
    return "accepted" if good else "silent-wrong"


def baseline_texts() -> Iterator[tuple[str, str]]:
    tests = {"test_a": {"time": entry()}}
    document, samples = render_document(tests, "g"), render_samples(tests)
    for name in ENTRY_FIELDS:
        for value in HOSTILE_JSON:
            data = json.loads(document)
            data["tests"]["test_a"]["time"][name] = "@@"
            yield json.dumps(data).replace('"@@"', value), samples
    for name in SAMPLE_FIELDS:
        for value in HOSTILE_JSON:
            record = json.loads(samples)
            record[name] = "@@"
            yield document, json.dumps(record).replace('"@@"', value) + "\n"
    for version in ("true", "1.0", '"3"', "null", "0", "99", "-1"):
        yield document.replace('"format_version": 3', f'"format_version": {version}'), samples
    yield document.replace('"tests": {', '"tests": {"test_a": {}, ', 1), samples
    yield document, samples + samples
    yield "[" * 100_000 + "]" * 100_000, samples
    for cut in range(0, len(document), max(1, len(document) // 40)):
        yield document[:cut], samples
        yield document, samples[:cut]


def baseline_census(root: Path) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    lost = 0
    for index, (document, samples) in enumerate(baseline_texts()):
        store = BaselineStore(root / str(index))
        path = store.update("test_x.py", {"test_a": {"time": entry()}})
        path.write_text(document, encoding="utf-8")
        samples_path(path).write_text(samples, encoding="utf-8")
        counts[
            classify(
                lambda: judgeable(store.load("test_x.py").tests),
                BaselineError,
                str(path.parent / "test_x."),
            )
        ] += 1
        before = path.read_bytes()
        written = store.update_many(
            {m: {"test_b": {"time": entry()}} for m in ("test_x.py", "test_y.py")}
        )
        healthy = store.path_for("test_y.py") in written.written
        if not healthy or (written.errors and path.read_bytes() != before):
            lost += 1
    for index, data in enumerate((b"\xff\xfe{}", b'{"format_version": 3, "tests": {"\xff": {}}}')):
        store = BaselineStore(root / f"bytes{index}")
        path = store.update("test_x.py", {"test_a": {"time": entry()}})
        path.write_bytes(data)
        counts[
            classify(
                lambda: judgeable(store.load("test_x.py").tests),
                BaselineError,
                str(path.parent / "test_x."),
            )
        ] += 1
    return counts, lost


def results_census(root: Path) -> Counter[str]:
    measurement = Measurement("time", "s", Direction.LOWER_IS_BETTER, SAMPLES, loops=5)
    comparison = Comparison(
        "t.py::test_a",
        "time",
        Verdict.UNCHANGED,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(SAMPLES),
    )
    test = TestResults("t.py::test_a", "t.py", "test_a", "passed", ((measurement, comparison),))
    text = dump_results(RunResults(Environment({"cpu": "x"}), (test,)))
    counts: Counter[str] = Counter()
    path = root / "run.json"

    def attempt() -> bool:
        run = read_results(path)
        return all(
            math.isfinite(v) and v > 0 and (m.loops is None or m.loops <= MAX_LOOPS)
            for t in run.tests for m, _ in t.results for v in m.samples
        )  # fmt: skip

    fields = ["samples", "loops", "test_id", "verdict", "ratio", "threshold", "schema_version"]
    for name in fields:
        for value in HOSTILE_JSON:
            hostile = re.sub(
                rf'"{name}": [^,\n]*(\[[^\]]*\])?', f'"{name}": {value}', text, count=1
            )
            path.write_text(hostile, encoding="utf-8")
            counts[classify(attempt, ResultsError, str(path))] += 1
    return counts


def saved_run_census(root: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    path = root / "saved.json"

    def attempt() -> bool:
        return all(
            b.module and b.test and all(math.isfinite(v) and v > 0 for v in b.samples)
            and 1 <= b.iterations <= MAX_LOOPS
            for b in read_saved_run(path)
        )  # fmt: skip

    for name in ("median", "data", "iterations", "fullname"):
        for value in [*HOSTILE_JSON, '"::test_x"', '"a.py::t\\u0000x"', '"a.py"']:
            stats = {"median": 1e-3, "iterations": 10, "data": [1e-3]}
            bench: dict[str, Any] = {"fullname": "t.py::test_x", "stats": stats}
            (stats if name != "fullname" else bench)[name] = "@@"
            document = json.dumps({"benchmarks": [bench]}).replace('"@@"', value)
            path.write_text(document, encoding="utf-8")
            counts[classify(attempt, SavedRunError, str(path))] += 1
    return counts


def option_census() -> Counter[str]:
    counts: Counter[str] = Counter()
    texts = ["nan", "inf", "-inf", "NaN", "1e400", "1e9", "-1", "0", "", "true", "1e-400"]
    numeric = [
        n for n, o in OPTIONS_BY_NAME.items() if o.metavar in ("SECONDS", "HZ", "N", "FRACTION")
    ]
    limits = {"max_time": 86_400, "min_sample_time": 86_400, "warmup_time": 86_400}
    for name in numeric:
        flag = OPTIONS_BY_NAME[name].flag

        def bounded(value: Any, name: str = name) -> bool:
            return math.isfinite(value) and value <= limits.get(name, math.inf)

        for text in texts:
            counts[
                classify(
                    lambda: bounded(getattr(Settings.resolve(cli={name: text}), name)),
                    SettingsError,
                    flag,
                )
            ] += 1
            raw: Any = float(text) if text not in ("", "true") else text
            counts[
                classify(
                    lambda: bounded(getattr(Settings.resolve({name: raw}), name)),
                    SettingsError,
                    name,
                )
            ] += 1
            if name in PerfSpec.__dataclass_fields__:
                counts[
                    classify(
                        lambda: bounded(getattr(PerfSpec.from_marker((), {name: raw}), name) or 0),
                        SettingsError,
                        name,
                    )
                ] += 1
    for args in ((5,), (0.1,), ("x",)):
        counts[
            classify(lambda: PerfSpec.from_marker(args, {}) is None, SettingsError, "keyword")
        ] += 1
    return counts


def report_census() -> Counter[str]:
    counts: Counter[str] = Counter()
    for piece in HOSTILE_TEXT:
        for test_id, name in ((f"t.py::test_x[{piece}]", "time"), ("t.py::test_x", piece)):
            c = Comparison(
                test_id, name, Verdict.REGRESSED, "s", Direction.LOWER_IS_BETTER,
                summarize(tuple(2 * x for x in SAMPLES)), baseline=summarize(SAMPLES),
                ratio=2.0, ci_low=1.9, ci_high=2.1, q_value=0.001, threshold=0.02,
            )  # fmt: skip
            m = Measurement(name, "s", Direction.LOWER_IS_BETTER, SAMPLES)
            run = RunResults(
                Environment({}), (TestResults(test_id, "t.py", "test_x", "passed", ((m, c),)),)
            )
            markdown_rows = [
                ln.replace("\\", "") for ln in render_markdown(run).splitlines() if "test\\_x" in ln
            ]
            markdown, html = render_markdown(run), render_html(run)
            commands = github.workflow_commands(run)
            checks = {
                "markdown": not UNSAFE.search(markdown)
                and not any(LINKING.search(row) for row in markdown_rows),
                "html": "\u202e" not in html and "<script>alert" not in html,
                "terminal": not UNSAFE.search(render_table([c]).replace("\n", " ")),
                "log": "\n" not in f"{c.label}: {explain(c)}"
                and all("\n" not in line and "\r" not in line for line in commands),
            }
            counts.update("accepted" if ok else "silent-wrong" for ok in checks.values())
    return counts


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        baselines, lost = baseline_census(root / "b")
        rows = [
            ("baseline files (loader, then a refresh)", baselines, str(lost)),
            ("results files (`perfgate compare`/`report`)", results_census(root), "-"),
            ("pytest-benchmark runs (`import-benchmark`)", saved_run_census(root), "-"),
            ("options (flags, pyproject, marker)", option_census(), "-"),
            ("test ids and names in 4 report outputs", report_census(), "-"),
        ]
    columns = ("inputs", "clear errors", "accepted, judgeable", "silent-wrong", "tracebacks")
    print(f"| category | {' | '.join(columns)} | data lost |")
    print("|---|---|---|---|---|---|---|")
    for label, counts, lost_text in rows:
        total = sum(counts.values())
        print(
            f"| {label} | {total} | {counts['refused']} | {counts['accepted']} | "
            f"{counts['silent-wrong']} | {counts['traceback']} | {lost_text} |"
        )


if __name__ == "__main__":
    main()
