"""Hostile baseline, results and pytest-benchmark files (issue 14): every damaged input is
an error that names the file, never a traceback and never a value that turns the gate off.

The property tests replace one field of a valid file with any JSON value (or the text with
any bytes) and check the loader either refuses it naming the file, or reads values the gate
can judge: finite positive samples and history, bounded loops.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_perfgate.baseline import (
    BaselineError,
    BaselineStore,
    parse_document,
    render_document,
    render_samples,
)
from pytest_perfgate.importers import SavedRunError, read_saved_run
from pytest_perfgate.model import MAX_LOOPS, BaselineEntry, Direction, Environment
from pytest_perfgate.results import ResultsError, RunResults, TestResults, read_results
from pytest_perfgate.stats import summarize

ENV = Environment({"cpu": "Example CPU"}, {"host": "ci-1"})
PATH = Path("baselines/test_example.json")
FUZZ = settings(deadline=None, database=None, max_examples=80, derandomize=True)


def entry(median: float = 1e-3) -> BaselineEntry:
    samples = (median * 0.99, median, median * 1.01)
    return BaselineEntry(
        unit="s",
        direction=Direction.LOWER_IS_BETTER,
        samples=samples,
        summary=summarize(samples),
        history=(median, median),
        environment=ENV,
        loops=10,
        code_hash="abc123",
    )


TESTS = {"test_a": {"time": entry()}}
DOCUMENT = render_document(TESTS, "g")
SAMPLES = render_samples(TESTS)


def parse(document: str = DOCUMENT, samples: str = SAMPLES) -> dict[str, Any]:
    return parse_document(document, PATH, samples)


def with_field(name: str, value: Any) -> str:
    """The document with one field of the entry replaced by ``value`` (raw JSON text)."""
    data = json.loads(DOCUMENT)
    data["tests"]["test_a"]["time"][name] = "@@"
    return json.dumps(data).replace('"@@"', value)


def with_sample_field(name: str, value: str) -> str:
    record = json.loads(SAMPLES)
    record[name] = "@@"
    return json.dumps(record).replace('"@@"', value) + "\n"


def assert_judgeable(tests: dict[str, dict[str, BaselineEntry]]) -> None:
    """What the gate needs of every entry it reads."""
    for measurements in tests.values():
        for stored in measurements.values():
            assert stored.samples
            for value in (*stored.samples, *stored.history, *stored.reference):
                assert math.isfinite(value)
                assert value > 0
            assert stored.loops is None or 1 <= stored.loops <= MAX_LOOPS
            assert all(math.isfinite(v) for v in stored.summary.to_dict().values())
            assert stored.code_hash is None or isinstance(stored.code_hash, str)


# --- item 1: non-finite numbers are refused, not read as "no regression could be shown" ----


@pytest.mark.parametrize(
    "samples",
    ["[1e-12, 1e-12, 1e-12, NaN]", "[Infinity]", "[1e400]", "[-Infinity, 1]"],
)
def test_non_finite_samples_are_refused_naming_the_file(samples: str) -> None:
    with pytest.raises(BaselineError, match=r"samples\.jsonl:1: malformed samples line.*"):
        parse(samples=with_sample_field("samples", samples))


@pytest.mark.parametrize("history", ["[NaN]", "[Infinity]", "[1e400]", "[1, -Infinity]"])
def test_non_finite_history_is_refused_naming_the_file(history: str) -> None:
    with pytest.raises(BaselineError, match=r"test_example\.json: .*(JSON|history)") as raised:
        parse(with_field("history", history))
    assert str(PATH) in str(raised.value)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ("[0.001, 0, 0.002]", r"samples\[1\]: must be a positive number"),
        ("[-5]", r"samples\[0\]: must be a positive number"),
        ("[5e-324]", r"samples\[0\]: must lie between 1e-30 and 1e\+30"),  # subnormal
        ("[1e31]", r"samples\[0\]: must lie between 1e-30 and 1e\+30"),
        ("[]", "samples: must not be empty"),
        ('"999"', "samples: must be a list of numbers, got str '999'"),
        ('["1"]', r"samples\[0\]: must be a number"),
        ("[true]", r"samples\[0\]: must be a number"),
    ],
)
def test_samples_that_are_not_positive_numbers_are_refused(samples: str, message: str) -> None:
    with pytest.raises(BaselineError, match=rf"test_a \[time\]: malformed: {message}"):
        parse(samples=with_sample_field("samples", samples))


def test_a_history_too_extreme_to_judge_is_refused() -> None:
    # Finite, but the gate's prediction interval overflowed on it (OverflowError mid-run).
    with pytest.raises(BaselineError, match=r"history\[0\]: must lie between"):
        parse(with_field("history", "[1e-300, 0.001, 1e-300]"))


def test_an_entry_the_reader_would_refuse_is_never_written(tmp_path: Path) -> None:
    from dataclasses import replace

    store = BaselineStore(tmp_path)
    store.update_many({"test_x.py": TESTS})
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    extreme = replace(entry(), history=(1e-300,))
    outcome = store.update_many({"test_x.py": {"test_a": {"time": extreme}}})
    assert outcome.written == ()
    (error,) = outcome.errors
    assert "test_x.json: test_a [time]: history[0]: must lie between" in error
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


# --- item 4: loops are bounded -----------------------------------------------------------


@pytest.mark.parametrize("loops", ["0", "-5", "1000000000000", "1.5", "true", '"10"'])
def test_loops_out_of_bounds_are_refused_naming_the_field(loops: str) -> None:
    with pytest.raises(BaselineError, match=r"test_example\.json: test_a \[time\]: .*loops"):
        parse(with_field("loops", loops))


# --- item 6: no silent coercion ----------------------------------------------------------


def test_a_duplicate_entry_is_refused_not_last_wins() -> None:
    # A later duplicate of a measurement once hid a 100x regression as IMPROVED.
    text = DOCUMENT.replace('"tests": {', '"tests": {"test_a": {}, ', 1)
    with pytest.raises(BaselineError, match="duplicate key 'test_a'"):
        parse(text)


def test_a_duplicate_samples_line_is_refused() -> None:
    with pytest.raises(BaselineError, match=r"samples\.jsonl:2: .*a second line for test_a"):
        parse(samples=SAMPLES + SAMPLES)


@pytest.mark.parametrize("version", ["true", "1.0", '"3"', "null"])
def test_a_format_version_that_is_not_a_whole_number_is_refused(version: str) -> None:
    text = DOCUMENT.replace('"format_version": 3', f'"format_version": {version}')
    with pytest.raises(BaselineError, match=r"format version .* is not supported"):
        parse(text)


@pytest.mark.parametrize(("name", "value"), [("code_hash", "12345"), ("commit", "[]")])
def test_provenance_of_the_wrong_type_is_refused(name: str, value: str) -> None:
    # A numeric code hash was read as "the test's code changed": the gate went quiet.
    with pytest.raises(BaselineError, match=rf"{name}: must be a string"):
        parse(with_field(name, value))


# --- item 5: errors naming the file instead of tracebacks ----------------------------------


def test_invalid_utf8_is_an_error_naming_the_file(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    path = store.update("test_x.py", TESTS)
    path.write_bytes(b'{"format_version": 3, "tests": {"\xff": {}}}')
    with pytest.raises(BaselineError, match=rf"{path}: not UTF-8 text"):
        store.load("test_x.py")


def test_deeply_nested_json_is_an_error_naming_the_file() -> None:
    with pytest.raises(BaselineError, match=r"test_example\.json: not valid JSON.*nested"):
        parse("[" * 100_000 + "]" * 100_000)


# --- properties --------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
hostile_numbers = st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-0.0", "5e-324"])
entry_fields = st.sampled_from(
    ["unit", "direction", "summary", "history", "environment", "loops", "code_hash", "commit"]
)
sample_fields = st.sampled_from(["samples", "cpu_samples", "reference", "details"])


def parses_or_names_the_file(document: str, samples: str) -> None:
    try:
        tests = parse(document, samples)
    except BaselineError as error:
        message = str(error)
    else:
        assert_judgeable(tests)
        return
    assert "test_example" in message


@FUZZ
@given(name=entry_fields, value=json_values | hostile_numbers.map(lambda v: f"@{v}"))
def test_any_value_in_any_entry_field_is_read_judgeable_or_refused(name: str, value: Any) -> None:
    raw = value[1:] if isinstance(value, str) and value.startswith("@") else json.dumps(value)
    parses_or_names_the_file(with_field(name, raw), SAMPLES)


@FUZZ
@given(name=sample_fields, value=json_values | hostile_numbers.map(lambda v: f"@{v}"))
def test_any_value_in_any_samples_field_is_read_judgeable_or_refused(name: str, value: Any) -> None:
    raw = value[1:] if isinstance(value, str) and value.startswith("@") else json.dumps(value)
    parses_or_names_the_file(DOCUMENT, with_sample_field(name, raw))


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(DOCUMENT)), junk=st.text(max_size=6))
def test_any_splice_of_the_text_is_read_judgeable_or_refused(cut: int, junk: str) -> None:
    parses_or_names_the_file(DOCUMENT[:cut] + junk + DOCUMENT[cut + len(junk) :], SAMPLES)


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_bytes_on_disk_are_an_error_naming_the_file(tmp_path_factory: Any, data: bytes) -> None:
    store = BaselineStore(tmp_path_factory.mktemp("b"))
    path = store.update("test_x.py", TESTS)
    path.write_bytes(data)
    try:
        loaded = store.load("test_x.py")
    except BaselineError as error:
        message = str(error)
    else:
        assert_judgeable(loaded.tests)
        return
    assert str(path) in message


# --- results files (perfgate compare / report / ab read them) ------------------------------


def results_text() -> str:
    from pytest_perfgate.model import Comparison, Measurement, Verdict
    from pytest_perfgate.results import results_json

    samples = (1e-3, 1.1e-3, 0.9e-3)
    measurement = Measurement("time", "s", Direction.LOWER_IS_BETTER, samples, loops=5)
    comparison = Comparison(
        "t.py::test_a",
        "time",
        Verdict.UNCHANGED,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(samples),
    )
    test = TestResults("t.py::test_a", "t.py", "test_a", "passed", ((measurement, comparison),))
    return results_json(RunResults(ENV, (test,)))


RESULTS = results_text()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"loops": 5', '"loops": 1000000000000', "loops"),
        ('"samples": [', '"samples": [NaN, ', "non-finite number NaN"),
        ('"samples": [', '"samples": [1e400, ', "out of range"),
        ('"samples": [', '"samples": [0, ', r"samples\[0\]: must be a positive number"),
        ('"schema_version": 1', '"schema_version": true', "schema version True"),
        ('"test_id": "t.py::test_a"', '"test_id": 7', "test_id: must be a string"),
    ],
)
def test_hostile_results_files_are_errors_naming_the_file(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = tmp_path / "run.json"
    assert old in RESULTS
    path.write_text(RESULTS.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ResultsError, match=message) as raised:
        read_results(path)
    assert str(path) in str(raised.value)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=len(RESULTS)), junk=st.text(max_size=6))
def test_any_splice_of_a_results_file_is_read_or_refused(
    tmp_path_factory: Any, cut: int, junk: str
) -> None:
    path = tmp_path_factory.mktemp("r") / "run.json"
    path.write_text(RESULTS[:cut] + junk + RESULTS[cut + len(junk) :], encoding="utf-8")
    try:
        run = read_results(path)
    except ResultsError as error:
        message = str(error)
    else:
        for test in run.tests:
            for measurement, _ in test.results:
                assert all(math.isfinite(v) and v > 0 for v in measurement.samples)
        return
    assert str(path) in message


# --- pytest-benchmark saved runs (perfgate import-benchmark) ------------------------------


def saved_run(**bench: Any) -> dict[str, Any]:
    stats = {"median": 1e-3, "iterations": 10, "data": [1e-3, 1.1e-3]}
    stats |= bench.pop("stats", {})
    return {
        "machine_info": {"cpu": {"brand_raw": "x"}},
        "datetime": "2024-01-01T00:00:00",
        "benchmarks": [{"fullname": "tests/test_x.py::test_x", "stats": stats} | bench],
    }


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (saved_run(stats={"median": math.nan, "data": None}), "median must be finite"),
        (saved_run(stats={"data": [math.inf]}), "data must be finite"),
        (saved_run(stats={"iterations": 10**12}), "iterations must be from 1 to"),
        (saved_run(stats={"iterations": 0}), "iterations must be from 1 to"),
        (saved_run(fullname="tests/test_x.py::te\x00st"), "control character"),
        (saved_run(fullname="::test_x"), "is not 'module::test'"),
        (saved_run(fullname=5), "fullname must be a string"),
        (saved_run(stats={"median": "1"}), "median must be a number"),
    ],
)
def test_hostile_saved_runs_are_errors_naming_the_file(
    tmp_path: Path, document: dict[str, Any], message: str
) -> None:
    path = tmp_path / "0001_run.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(SavedRunError, match=message) as raised:
        read_saved_run(path)
    assert str(path) in str(raised.value)


@FUZZ
@given(
    stats=st.dictionaries(st.sampled_from(["median", "iterations", "data"]), json_values),
    fullname=json_values | st.text(max_size=20),
)
def test_any_saved_benchmark_is_imported_judgeable_or_refused(
    tmp_path_factory: Any, stats: dict[str, Any], fullname: Any
) -> None:
    path = tmp_path_factory.mktemp("s") / "run.json"
    document = saved_run(stats=stats, fullname=fullname)
    path.write_text(json.dumps(document), encoding="utf-8")
    try:
        benches = read_saved_run(path)
    except SavedRunError as error:
        message = str(error)
    else:
        for bench in benches:
            assert bench.module
            assert bench.test
            assert all(math.isfinite(v) and v > 0 for v in bench.samples)
            assert 1 <= bench.iterations <= MAX_LOOPS
        return
    assert str(path) in message


# --- outputs that cannot be written: exit 2 (bad usage), before any long run ---------------


@pytest.mark.parametrize("flag", ["--json", "--markdown"])
def test_ab_refuses_an_unwritable_report_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    from pytest_perfgate.cli import main

    blocker = tmp_path / "a_file"
    blocker.write_text("", encoding="utf-8")
    target = blocker / "report.out"
    # An unknown ref would fail as well (exit 2): the message shows the report was checked
    # first, before any git or pytest work.
    assert main(["ab", "--base", "no-such-ref-anywhere", flag, str(target)]) == 2
    assert f"cannot write {target} ({blocker} is not a directory)" in capsys.readouterr().err


def test_ab_refuses_a_directory_as_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_perfgate.cli import main

    assert main(["ab", "--base", "no-such-ref-anywhere", "--json", str(tmp_path)]) == 2
    assert "it is a directory" in capsys.readouterr().err


def test_import_benchmark_into_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_perfgate.cli import main

    run = tmp_path / "run.json"
    run.write_text(json.dumps(saved_run()), encoding="utf-8")
    blocker = tmp_path / "baselines"
    blocker.write_text("", encoding="utf-8")
    assert main(["import-benchmark", str(run), "--baseline-dir", str(blocker)]) == 2
    assert f"{blocker}: not a directory" in capsys.readouterr().err
    assert main(["import-benchmark", str(run), "--baseline-dir", str(blocker / "sub")]) == 2
    assert f"{blocker / 'sub'}" in capsys.readouterr().err


def test_a_baseline_dir_that_is_a_file_is_named_before_a_refresh(tmp_path: Path) -> None:
    blocker = tmp_path / "baselines"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(BaselineError, match=r"baselines: cannot write baselines there \(not a"):
        BaselineStore(blocker).check_writable()
    with pytest.raises(BaselineError, match=r"baselines/test_x\.json: cannot read"):
        BaselineStore(blocker).load("test_x.py")
