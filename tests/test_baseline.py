"""Baseline files: format round trips, error reporting, atomic and concurrent writes, refreshes."""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_perfgate.baseline import (
    FORMAT_VERSION,
    BaselineError,
    BaselineStore,
    parse_document,
    refreshed_entry,
    render_document,
    render_samples,
    samples_path,
)
from pytest_perfgate.model import BaselineEntry, Direction, Environment, Measurement, Summary
from pytest_perfgate.stats import summarize

MODULE = "tests/test_example.py"
ENV = Environment({"cpu": "Example CPU", "cpus": "2"}, {"host": "ci-1"}, calibration_ns=1.5e5)


def entry(median: float = 1e-3, **overrides: Any) -> BaselineEntry:
    samples = (median * 0.99, median, median * 1.01)
    fields: dict[str, Any] = {
        "unit": "s",
        "direction": Direction.LOWER_IS_BETTER,
        "samples": samples,
        "summary": summarize(samples),
        "history": (median,),
        "environment": ENV,
        "loops": 10,
        "cpu_samples": samples,
        "code_hash": "abc123",
        "commit": "deadbeef",
        "recorded_at": "2024-01-02T03:04:05Z",
    }
    return BaselineEntry(**{**fields, **overrides})


def write_valid_file(store: BaselineStore) -> Path:
    return store.update(MODULE, {"test_a": {"time": entry()}})


def round_trip(tests: dict[str, dict[str, BaselineEntry]]) -> dict[str, dict[str, BaselineEntry]]:
    text = render_document(tests, "pytest-perfgate")
    return parse_document(text, Path("any.json"), render_samples(tests))


# --- the document format -------------------------------------------------------------------


def test_render_then_parse_round_trips(tmp_path: Path) -> None:
    tests = {"test_b": {"time": entry(2e-3)}, "test_a": {"time": entry(), "rss": entry(5.0)}}
    text = render_document(tests, "pytest-perfgate 1.0")
    assert parse_document(text, tmp_path / "x.json", render_samples(tests)) == tests
    document = json.loads(text)
    assert document["format_version"] == FORMAT_VERSION
    assert document["generator"] == "pytest-perfgate 1.0"


def test_raw_samples_go_to_the_sidecar_one_line_per_measurement() -> None:
    tests = {"test_a": {"time": entry(), "rss": entry(5.0)}}
    text = render_document(tests, "g")
    assert '"samples"' not in text
    assert '"cpu_samples"' not in text
    lines = render_samples(tests).splitlines()
    assert [json.loads(line)["measurement"] for line in lines] == ["rss", "time"]
    assert lines[1] == (
        '{"test": "test_a", "measurement": "time", "samples": [0.00099, 0.001, 0.00101], '
        '"cpu_samples": [0.00099, 0.001, 0.00101], "reference": []}'
    )


def test_summary_and_history_come_first_each_on_one_line() -> None:
    text = render_document({"test_a": {"time": entry()}}, "g")
    keys = [line.strip().split(":")[0] for line in text.splitlines()[6:15]]
    assert keys == [
        '"unit"',
        '"direction"',
        '"summary"',
        '"history"',
        '"loops"',
        '"code_hash"',
        '"commit"',
        '"recorded_at"',
        '"environment"',
    ]
    summary_line = next(line for line in text.splitlines() if '"summary"' in line)
    assert json.loads(summary_line.strip().removeprefix('"summary": ').rstrip(","))["n"] == 3


def test_a_version_3_file_without_its_sidecar_is_an_error_naming_it(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    path = write_valid_file(store)
    samples_path(path).unlink()
    with pytest.raises(BaselineError, match=r"test_example\.samples\.jsonl: missing"):
        store.load(MODULE)


def test_a_sidecar_without_a_measurement_is_an_error_naming_it(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    path = store.update(MODULE, {"test_a": {"time": entry(), "rss": entry(5.0)}})
    lines = samples_path(path).read_text().splitlines()
    samples_path(path).write_text(lines[1] + "\n")
    with pytest.raises(BaselineError, match=r"no samples for test_a \[rss\]"):
        store.load(MODULE)


@pytest.mark.parametrize(
    "bad",
    [{"history": (1.0, float("nan"))}, {"environment": Environment({}, {}, float("inf"))}],
)
def test_non_finite_numbers_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="cannot store non-finite number"):
        render_document({"test_a": {"time": entry(**bad)}}, "g")


positive = st.floats(min_value=1e-9, max_value=1e3)
values = st.lists(positive, max_size=8).map(tuple)
names = st.text(min_size=1, max_size=12)
environments = st.builds(
    Environment,
    machine=st.dictionaries(names, st.text(max_size=12), max_size=4),
    info=st.dictionaries(names, st.text(max_size=12), max_size=4),
    calibration_ns=st.none() | positive,
)
summaries = st.builds(
    Summary,
    n=st.integers(min_value=1, max_value=10**6),
    median=positive,
    mean=positive,
    stdev=positive,
    min=positive,
    max=positive,
    q1=positive,
    q3=positive,
    median_ci_low=positive,
    median_ci_high=positive,
)
entries = st.builds(
    BaselineEntry,
    unit=st.sampled_from(["s", "B", "ops/s", ""]),
    direction=st.sampled_from(Direction),
    samples=st.lists(positive, min_size=1, max_size=8).map(tuple),
    summary=summaries,
    history=values,
    environment=environments,
    loops=st.none() | st.integers(min_value=1, max_value=10**9),
    cpu_samples=values,
    code_hash=st.none() | st.text(max_size=16),
    commit=st.none() | st.text(max_size=16),
    recorded_at=st.text(max_size=20),
)
documents = st.dictionaries(
    names, st.dictionaries(names, entries, min_size=1, max_size=3), max_size=3
)


@settings(deadline=None, database=None, max_examples=60, derandomize=True)
@given(tests=documents)
def test_any_document_round_trips_exactly_and_renders_deterministically(
    tests: dict[str, dict[str, BaselineEntry]],
) -> None:
    text = render_document(tests, "pytest-perfgate")
    assert round_trip(tests) == tests
    assert render_document(dict(reversed(list(tests.items()))), "pytest-perfgate") == text
    assert render_samples(dict(reversed(list(tests.items())))) == render_samples(tests)


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (None, "not valid JSON"),  # the valid file cut in half
        ('{"format_version": 99, "tests": {}}', "format version 99 is not supported"),
        ('{"tests": {}}', "no format_version"),
        ('{"format_version": 1, "tests": {"test_a": {"time": {"unit": "s"}}}}', "malformed"),
        ('{"format_version": 1, "tests": []}', "malformed"),
        ('{"format_version": 1}', "malformed"),
    ],
)
def test_unusable_file_raises_naming_the_path_and_is_left_alone(
    tmp_path: Path, content: str | None, message: str
) -> None:
    store = BaselineStore(tmp_path / "baselines")
    path = write_valid_file(store)
    if content is None:
        text = path.read_text()
        content = text[: len(text) // 2]
    path.write_text(content)
    before = path.read_bytes()
    with pytest.raises(BaselineError, match=message) as raised:
        store.load(MODULE)
    assert str(path) in str(raised.value)
    with pytest.raises(BaselineError):
        store.update(MODULE, {"test_b": {"time": entry()}})
    assert path.read_bytes() == before


def test_malformed_entry_message_says_what_is_wrong(tmp_path: Path) -> None:
    data = json.loads(render_document({"test_a": {"time": entry()}}, "g"))
    data["tests"]["test_a"]["time"]["direction"] = "sideways"
    samples = render_samples({"test_a": {"time": entry()}})
    with pytest.raises(BaselineError, match=r"test_a \[time\]: malformed: direction.*sideways"):
        parse_document(json.dumps(data), tmp_path / "x.json", samples)


# --- the store -----------------------------------------------------------------------------


def test_path_for_mirrors_the_module_path(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    assert store.path_for("tests/test_x.py") == tmp_path / "tests" / "test_x.json"
    assert store.path_for("../outside/test_y.py") == tmp_path / "test_y.json"
    assert store.path_for("/abs/test_z.py") == tmp_path / "test_z.json"


def test_loading_a_module_without_a_file_gives_no_entries(tmp_path: Path) -> None:
    loaded = BaselineStore(tmp_path).load(MODULE)
    assert loaded.tests == {}
    assert loaded.get("test_a", "time") is None


def test_update_merges_with_entries_on_disk(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    store.update(MODULE, {"test_a": {"time": entry(1e-3)}, "test_b": {"time": entry(2e-3)}})
    store.update(MODULE, {"test_a": {"rss": entry(5.0)}, "test_c": {"time": entry(3e-3)}})
    loaded = store.load(MODULE)
    assert loaded.get("test_a", "time") == entry(1e-3)
    assert loaded.get("test_a", "rss") == entry(5.0)
    assert loaded.get("test_b", "time") == entry(2e-3)
    assert loaded.get("test_c", "time") == entry(3e-3)
    assert store.files() == [store.path_for(MODULE)]


def test_update_removes_measurements_and_tests(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    store.update(
        MODULE,
        {"test_a": {"time": entry(), "rss": entry(5.0)}, "test_b": {"time": entry()}},
    )
    store.update(MODULE, {}, remove={"test_a": {"rss"}, "test_b": None, "test_gone": None})
    assert store.load(MODULE).tests == {"test_a": {"time": entry()}}
    store.update(MODULE, {}, remove={"test_a": {"time"}})
    assert store.load(MODULE).tests == {}  # a test with no measurements left goes too


def test_update_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    path = write_valid_file(store)
    store.update(MODULE, {"test_b": {"time": entry()}})
    assert sorted(p.name for p in path.parent.iterdir()) == [
        path.name,
        samples_path(path).name,
    ]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BaselineStore(tmp_path)
    path = write_valid_file(store)
    before = path.read_bytes()

    def fail(src: object, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk on fire"):
        store.update(MODULE, {"test_b": {"time": entry()}})
    assert path.read_bytes() == before
    assert store.load(MODULE).tests == {"test_a": {"time": entry()}}
    assert sorted(p.name for p in path.parent.iterdir()) == [
        path.name,
        samples_path(path).name,
    ]


def _write_many(root: str, worker: int, count: int) -> None:
    store = BaselineStore(Path(root))
    for i in range(count):
        store.update(MODULE, {f"test_{worker}_{i}": {"time": entry(1e-3 * (i + 1))}})


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    workers, count = 4, 15
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_write_many, args=(str(tmp_path), worker, count))
        for worker in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    tests = BaselineStore(tmp_path).load(MODULE).tests
    expected = {f"test_{w}_{i}" for w in range(workers) for i in range(count)}
    assert set(tests) == expected


def test_check_writable_accepts_a_new_directory(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "new" / "baselines")
    store.check_writable()
    assert store.root.is_dir()
    assert list(store.root.iterdir()) == []


def test_check_writable_names_a_directory_that_cannot_be_created(tmp_path: Path) -> None:
    # A directory under a regular file fails for everyone, root included.
    (tmp_path / "afile").write_text("")
    root = tmp_path / "afile" / "sub"
    with pytest.raises(BaselineError, match="cannot write baselines there") as raised:
        BaselineStore(root).check_writable()
    assert str(root) in str(raised.value)


# --- refreshes -----------------------------------------------------------------------------


def measurement(samples: tuple[float, ...], unit: str = "s") -> Measurement:
    return Measurement("time", unit, Direction.LOWER_IS_BETTER, samples, loops=10)


def refresh(
    new: Measurement,
    previous: BaselineEntry | None,
    *,
    environment: Environment = ENV,
    code_hash: str | None = "abc123",
    history: int = 5,
    max_samples: int = 400,
) -> BaselineEntry:
    return refreshed_entry(
        new,
        previous,
        environment=environment,
        code_hash=code_hash,
        commit="c0ffee",
        recorded_at="2024-05-06T07:08:09Z",
        history=history,
        max_samples=max_samples,
    )


def test_refresh_appends_the_run_median_to_the_history() -> None:
    refreshed = refresh(measurement((2e-3, 2e-3, 2e-3)), entry(history=(1e-3, 1.1e-3)))
    assert refreshed.history == (1e-3, 1.1e-3, 2e-3)
    assert refreshed.commit == "c0ffee"
    assert refreshed.recorded_at == "2024-05-06T07:08:09Z"
    assert refreshed.loops == 10


def test_refresh_caps_the_history_keeping_the_newest() -> None:
    previous = entry(history=(1.0, 2.0, 3.0, 4.0))
    refreshed = refresh(measurement((5.0,)), previous, history=3)
    assert refreshed.history == (3.0, 4.0, 5.0)


@pytest.mark.parametrize(
    "change",
    [
        {"environment": Environment({"cpu": "Other CPU", "cpus": "2"})},
        {"code_hash": "changed"},
        {"unit": "B"},
    ],
)
def test_refresh_restarts_the_history_when_something_else_was_measured(
    change: dict[str, Any],
) -> None:
    previous = entry(history=(1.0, 2.0, 3.0))
    unit = change.pop("unit", "s")
    refreshed = refresh(measurement((5.0, 5.0), unit=unit), previous, **change)
    assert refreshed.history == (5.0,)


def test_refresh_ignores_info_fields_of_the_environment() -> None:
    previous = entry(history=(1.0,))
    moved = Environment(ENV.machine, {"host": "ci-2"}, calibration_ns=2e5)
    assert refresh(measurement((2.0,)), previous, environment=moved).history == (1.0, 2.0)


def test_refresh_thins_samples_to_the_cap_but_summarizes_them_all() -> None:
    samples = tuple(1.0 + i / 1000 for i in range(1000))
    refreshed = refresh(measurement(samples), None, max_samples=50)
    assert len(refreshed.samples) == 50
    assert refreshed.samples[0] == samples[0]
    assert refreshed.samples[-1] == samples[-1]
    assert refreshed.summary.n == 1000


def test_refresh_rounds_stored_values_to_six_significant_digits() -> None:
    refreshed = refresh(measurement((0.00123456789, 0.00123456789)), None)
    assert refreshed.samples == (0.00123457, 0.00123457)
    assert refreshed.history == (0.00123457,)
    # The summary too, so that a figure that did not move does not show in a diff.
    assert refreshed.summary.median == 0.00123457
    assert refreshed.summary.mean == 0.00123457


def refresh_changed(history: tuple[float, ...]) -> BaselineEntry:
    return refreshed_entry(
        measurement((2e-3, 2e-3, 2e-3)),
        entry(history=history),
        environment=ENV,
        code_hash="abc123",
        commit=None,
        recorded_at="",
        history=5,
        max_samples=400,
        changed=True,
    )


def test_refresh_that_accepts_a_change_starts_the_history_over() -> None:
    # 2 ms against runs at 1.00-1.02 ms: far outside their spread.
    assert refresh_changed((1e-3, 1.02e-3, 1.01e-3)).history == (2e-3,)


def test_a_young_history_keeps_a_changed_run() -> None:
    """With fewer than three runs, "changed" was judged against the assumed noise, which
    a noisy metric beats in most runs: restarting would keep its history at one run."""
    assert refresh_changed((1e-3,)).history == (1e-3, 2e-3)
    assert refresh_changed((1e-3, 1.1e-3)).history == (1e-3, 1.1e-3, 2e-3)


def test_a_changed_run_within_the_historys_own_spread_joins_it() -> None:
    """Runs at 1.2-2.4 ms move by a third between refreshes: 2 ms is one of them, whatever
    the gate's verdict against the last run said."""
    history = (1.2e-3, 2.4e-3, 1.6e-3)
    assert refresh_changed(history).history == (*history, 2e-3)


def test_refresh_stores_the_measurements_own_machine_fields_and_details() -> None:
    gpu = Measurement(
        "time",
        "s",
        Direction.LOWER_IS_BETTER,
        (1e-3, 1e-3),
        machine={"gpu.name": "NVIDIA H100 80GB HBM3"},
        details={"gpu": {"timer": "cuda-event"}},
    )
    refreshed = refresh(gpu, None)
    assert refreshed.environment.machine["gpu.name"] == "NVIDIA H100 80GB HBM3"
    assert refreshed.environment.machine["cpu"] == ENV.machine["cpu"]
    assert refreshed.details == {"gpu": {"timer": "cuda-event"}}
    # Another GPU model is another machine class: the history starts over.
    other = replace(gpu, machine={"gpu.name": "NVIDIA A100"})
    assert refresh(other, refreshed).history == (1e-3,)


def version_2_text(tests: dict[str, dict[str, BaselineEntry]]) -> str:
    """A file as format 2 wrote it: every field inline, keys sorted at every level."""
    document = {
        "format_version": 2,
        "generator": "pytest-perfgate",
        "tests": {t: {n: e.to_dict() for n, e in ms.items()} for t, ms in tests.items()},
    }
    return json.dumps(document, indent=2, sort_keys=True)


@pytest.mark.parametrize("version", [1, 2])
def test_version_1_and_2_files_are_read(tmp_path: Path, version: int) -> None:
    tests = {"test_a": {"time": entry(), "rss": entry(5.0, reference=(1e-4, 2e-4, 3e-4))}}
    old = version_2_text(tests).replace('"format_version": 2', f'"format_version": {version}')
    assert parse_document(old, tmp_path / "old.json") == tests


def test_rewrite_upgrades_version_2_files_keeping_every_value(tmp_path: Path) -> None:
    # Values a format-2 refresh stored unrounded, as the committed example baselines hold.
    odd = replace(entry(), summary=replace(entry().summary, mean=0.00028134549999999996))
    rss = entry(5.0, reference=(1e-4, 2e-4, 3e-4), details={"cache": "direct", "iops": 3166.3})
    tests = {"test_a": {"time": odd, "rss": rss}}
    store = BaselineStore(tmp_path)
    path = store.path_for(MODULE)
    path.parent.mkdir(parents=True)
    path.write_text(version_2_text(tests))
    assert store.rewrite() == [path]
    assert json.loads(path.read_text())["format_version"] == FORMAT_VERSION
    assert samples_path(path).is_file()
    assert store.load(MODULE).tests == tests


def test_written_files_get_the_usual_mode_and_keep_an_existing_one(tmp_path: Path) -> None:
    from pytest_perfgate.baseline import write_atomically

    umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh.json"
        write_atomically(fresh, "{}")
        assert fresh.stat().st_mode & 0o777 == 0o644  # not mkstemp's owner-only 0600
        kept = tmp_path / "kept.json"
        kept.write_text("old")
        kept.chmod(0o640)
        write_atomically(kept, "new")
        assert kept.stat().st_mode & 0o777 == 0o640
        assert kept.read_text() == "new"
    finally:
        os.umask(umask)
