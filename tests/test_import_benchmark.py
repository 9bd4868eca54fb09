"""`perfgate import-benchmark`: pytest-benchmark saved runs (real files, recorded with
pytest-benchmark 5.3.1, see tests/data/pytest_benchmark/README.md) into baselines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_perfgate.baseline import BaselineStore
from pytest_perfgate.cli import main
from pytest_perfgate.gate import GatePolicy, judge
from pytest_perfgate.importers import SavedRunError, import_saved_runs, read_saved_run
from pytest_perfgate.model import Direction, Measurement, Verdict

DATA = Path(__file__).parent / "data" / "pytest_benchmark"
WITH_DATA = DATA / "0001_withdata.json"
SUMMARY = DATA / "0002_summary.json"


def test_a_run_saved_with_data_keeps_its_samples() -> None:
    benches = {b.test: b for b in read_saved_run(WITH_DATA)}
    assert set(benches) == {"test_work[100]", "test_work[1000]", "test_pedantic"}
    work = benches["test_work[100]"]
    assert work.module == "test_small.py"
    assert not work.summary_only
    assert len(work.samples) == 100
    pedantic = benches["test_pedantic"]
    assert len(pedantic.samples) == 7  # one per round, per-call times
    assert pedantic.iterations == 3


def test_a_run_saved_without_data_is_summary_only() -> None:
    document = json.loads(SUMMARY.read_text())
    medians = {b["name"]: b["stats"]["median"] for b in document["benchmarks"]}
    for bench in read_saved_run(SUMMARY):
        assert bench.summary_only
        assert bench.samples == (medians[bench.test],)


def test_machine_info_maps_onto_the_machine_class() -> None:
    (bench, *_) = read_saved_run(WITH_DATA)
    assert dict(bench.environment.machine) == {
        "arch": "x86_64",
        "cpu": "Intel(R) Xeon(R) Processor",
        "cpus": "2",
        "os": "Linux",
        "python": "CPython 3.11",
    }
    assert bench.environment.info["imported_from"] == "pytest-benchmark"


def test_several_runs_become_history_and_the_newest_gives_the_samples(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "baselines")
    report = import_saved_runs([DATA], store)
    assert report.files == [WITH_DATA, SUMMARY]
    assert sorted(report.imported) == sorted(report.summary_only)  # newest run: no data
    entry = store.load("test_small.py").get("test_work[100]", "time")
    assert entry is not None
    assert len(entry.history) == 2
    assert entry.summary_only
    assert entry.loops == 1


def test_a_single_run_with_data_is_a_full_baseline(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "baselines")
    report = import_saved_runs([WITH_DATA], store)
    assert report.summary_only == []
    entry = store.load("test_small.py").get("test_work[1000]", "time")
    assert entry is not None
    assert not entry.summary_only
    assert entry.summary.n == 100
    assert "summary_only" not in (tmp_path / "baselines/test_small.json").read_text()


def test_the_verdict_says_what_a_summary_only_baseline_costs(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "baselines")
    import_saved_runs([SUMMARY], store)
    entry = store.load("test_small.py").get("test_work[100]", "time")
    assert entry is not None
    current = Measurement("time", "s", Direction.LOWER_IS_BETTER, entry.samples * 30)
    comparison = judge(
        "test_small.py::test_work[100]",
        current,
        entry,
        GatePolicy(),
        environment=entry.environment,
    ).comparison
    assert comparison.verdict is Verdict.UNCHANGED
    assert any("without --benchmark-save-data" in note for note in comparison.notes)


def test_cli_imports_and_explains_summary_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["import-benchmark", str(SUMMARY), "--baseline-dir", str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert code == 0
    assert "imported 3 benchmark(s) from 1 saved run(s)" in out
    assert "3 of them are summary-only" in out
    assert (tmp_path / "b/test_small.json").is_file()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read it as JSON"),
        ('{"benchmarks": {}}', "not a pytest-benchmark saved run"),
        (
            '{"benchmarks": [{"fullname": "t.py::test_a", "stats": {}}]}',
            "benchmark #0 is malformed",
        ),
    ],
)
def test_bad_saved_runs_are_reported_with_their_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "0003_bad.json"
    bad.write_text(content)
    code = main(["import-benchmark", str(bad), "--baseline-dir", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(bad) in err
    assert message in err
    assert not (tmp_path / "b").exists()  # nothing written


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SavedRunError, match="no such file or directory"):
        import_saved_runs([tmp_path / "nowhere"], BaselineStore(tmp_path / "b"))


def test_an_existing_baseline_file_keeps_its_other_tests(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "baselines")
    import_saved_runs([WITH_DATA], store)
    copy = tmp_path / "only_one.json"
    document = json.loads(SUMMARY.read_text())
    document["benchmarks"] = document["benchmarks"][:1]
    copy.write_text(json.dumps(document))
    shutil.copy(copy, tmp_path / "0002.json")
    import_saved_runs([tmp_path / "0002.json"], store)
    assert set(store.load("test_small.py").tests) == {
        "test_work[100]",
        "test_work[1000]",
        "test_pedantic",
    }
