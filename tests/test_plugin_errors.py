"""Error paths: every mistake gets a message naming its source, and nothing is lost."""

from __future__ import annotations

import json

import pytest
from plugin_support import (
    WORK_SUITE,
    baseline_path,
    load_baseline,
    record_baselines,
    save_baseline,
    write_settings,
)

# -- the marker --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("bogus=1", "*unknown keyword 'bogus'*"),
        ('threshold="abc"', "*threshold must be a number, got 'abc'*"),
        ("threshold=12", "*threshold must be a relative change in ?0, 10)*, got 12*"),
        ("rounds=0", "*rounds must be at least 1, got 0*"),
        ("loops=2.5", "*loops must be a whole number, got 2.5*"),
        ('memory="maybe"', "*memory must be true or false, got 'maybe'*"),
    ],
)
def test_bad_marker_argument_errors_the_test(
    pytester: pytest.Pytester, arguments: str, message: str
) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_marks=f"""
        import pytest

        @pytest.mark.perf({arguments})
        def test_bad(perf):
            perf(sum, range(10))

        @pytest.mark.perf
        def test_good(perf):
            perf(sum, range(10))
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_bad*", "@pytest.mark.perf on test_marks.py::test_bad: *"]
    )
    result.stdout.fnmatch_lines([message])
    result.stdout.fnmatch_lines(["*(see `pytest --markers`)*"])
    # One clear message: no chained exception, no traceback of the plugin's internals.
    result.stdout.no_fnmatch_line("*During handling of the above exception*")
    result.stdout.no_fnmatch_line("*traceback entries are hidden*")
    result.stdout.no_fnmatch_line("*pytest_perfgate*")


def test_a_marker_equal_to_a_valid_one_but_of_another_type_is_still_refused(
    pytester: pytest.Pytester,
) -> None:
    # Markers are parsed once per set of keywords; True == 1, but only 1 is a count.
    write_settings(pytester)
    pytester.makepyfile(
        test_marks="""
        import pytest

        @pytest.mark.perf(rounds=1)
        def test_a_good(perf):
            perf(sum, range(10))

        @pytest.mark.perf(rounds=True)
        def test_b_bad(perf):
            perf(sum, range(10))

        @pytest.mark.perf(rounds=1)
        def test_c_good(perf):
            perf(sum, range(10))
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*rounds must be a whole number, got True*"])


# -- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--perf-threshold=abc", "*--perf-threshold must be a number, got 'abc'*"),
        ("--perf-mode=fast", "*--perf-mode must be one of gate, warn, off, got 'fast'*"),
        ("--perf-min-samples=0", "*--perf-min-samples must be at least 1, got '0'*"),
        (
            "--perf-max-time=-1",
            "*--perf-max-time must be a positive number of seconds up to 86400, got '-1'*",
        ),
        ("--perf-disable-gc=sometimes", "*--perf-disable-gc must be true or false*"),
    ],
)
def test_bad_option_value_is_a_usage_error(
    pytester: pytest.Pytester, flag: str, message: str
) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_w=WORK_SUITE)
    result = pytester.runpytest(flag)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-perfgate: {message.lstrip('*')}"])
    result.stdout.no_fnmatch_line("*passed*")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('threshold = "abc"', "threshold must be a number, got 'abc'"),
        ('mode = "fast"', "mode must be one of gate, warn, off, got 'fast'"),
        ("min_samples = 0", "min_samples must be at least 1, got 0"),
        ("bogus = 1", "unknown key 'bogus' (known: mode, baseline_dir, *, threshold, *)"),
        ("update_baselines = true", "unknown key 'update_baselines' *"),
    ],
)
def test_bad_pyproject_setting_is_a_usage_error(
    pytester: pytest.Pytester, setting: str, message: str
) -> None:
    pyproject = pytester.makepyprojecttoml(f"[tool.perfgate]\n{setting}\n")
    pytester.makepyfile(test_w=WORK_SUITE)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: pytest-perfgate: [[]tool.perfgate] in {pyproject}: {message}"]
    )
    result.stdout.no_fnmatch_line("*passed*")


def test_pyproject_that_is_not_toml_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pyproject = pytester.makepyprojecttoml("[tool.perfgate\nthreshold = 0.1\n")
    pytester.makepyfile(test_w=WORK_SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR)
    assert str(pyproject) in result.stderr.str() + result.stdout.str()


# -- baseline files ----------------------------------------------------------------------


@pytest.fixture
def two_modules(pytester: pytest.Pytester) -> pytest.Pytester:
    """Two perf modules with recorded baselines."""
    write_settings(pytester)
    pytester.makepyfile(test_one=WORK_SUITE, test_two=WORK_SUITE)
    record_baselines(pytester)
    return pytester


def test_corrupt_baseline_file_fails_its_module_only_and_is_never_overwritten(
    two_modules: pytest.Pytester,
) -> None:
    corrupt = baseline_path(two_modules, "test_one")
    corrupt.write_bytes(b'{"format_version": 1, "tests": {"test_slow": ')
    garbage = corrupt.read_bytes()
    healthy_before = load_baseline(two_modules, "test_two")

    result = two_modules.runpytest()
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [f"test_one.py::test_slow: {corrupt}: not valid JSON (*); the file was left as it is"]
    )
    result.stdout.fnmatch_lines(
        [f"test_one.py::test_steady: {corrupt}: not valid JSON (*); the file was left as it is"]
    )
    result.stdout.no_fnmatch_line("*traceback entries are hidden*")

    result = two_modules.runpytest("--perf-update-baselines")
    assert result.ret != pytest.ExitCode.OK
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines([f"*{corrupt}: not valid JSON*the file was left as it is*"])
    assert corrupt.read_bytes() == garbage
    # The healthy module's baselines were refreshed all the same.
    healthy_after = load_baseline(two_modules, "test_two")
    for test in ("test_slow", "test_steady"):
        assert len(healthy_after["tests"][test]["time"]["history"]) == 2
        assert healthy_after["tests"][test] != healthy_before["tests"][test]


def test_baseline_file_of_another_shape_is_named(two_modules: pytest.Pytester) -> None:
    path = baseline_path(two_modules, "test_one")
    path.write_text('["not", "a", "baseline"]', encoding="utf-8")
    result = two_modules.runpytest("test_one.py")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([f"*{path}: not a perfgate baseline file (no format_version)*"])


def test_malformed_baseline_entry_is_named(two_modules: pytest.Pytester) -> None:
    data = load_baseline(two_modules, "test_one")
    del data["tests"]["test_slow"]["time"]["summary"]
    save_baseline(two_modules, "test_one", data)
    result = two_modules.runpytest("test_one.py")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            f"*{baseline_path(two_modules, 'test_one')}: test_slow [[]time[]]: "
            "malformed: missing field 'summary'*"
        ]
    )


def test_unknown_format_version_is_explained(two_modules: pytest.Pytester) -> None:
    data = load_baseline(two_modules, "test_one")
    data["format_version"] = 99
    save_baseline(two_modules, "test_one", data)
    before = baseline_path(two_modules, "test_one").read_bytes()
    result = two_modules.runpytest()
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            f"test_one.py::test_slow: {baseline_path(two_modules, 'test_one')}: "
            "baseline format version 99 is not supported by this pytest-perfgate "
            "(it reads versions 1, 2, 3); upgrade pytest-perfgate or delete the file and re-record "
            "with --perf-update-baselines*"
        ]
    )
    two_modules.runpytest("--perf-update-baselines").assert_outcomes(passed=2, errors=2)
    assert baseline_path(two_modules, "test_one").read_bytes() == before


def test_unwritable_baseline_dir_is_a_usage_error_before_any_test_runs(
    pytester: pytest.Pytester,
) -> None:
    write_settings(pytester)
    (pytester.path / "afile").write_text("a file, not a directory\n", encoding="utf-8")
    pytester.makepyfile(
        test_w="""
        import pathlib

        import pytest

        @pytest.mark.perf
        def test_runs(perf):
            pathlib.Path("ran").touch()
            perf(sum, range(10))
        """
    )
    result = pytester.runpytest("--perf-update-baselines", "--perf-baseline-dir=afile/sub")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --perf-update-baselines: {pytester.path / 'afile' / 'sub'}: "
            "cannot write baselines there (*)"
        ]
    )
    assert not (pytester.path / "ran").exists()
    assert (pytester.path / "afile").read_text(encoding="utf-8") == "a file, not a directory\n"


def test_baseline_dir_from_pyproject(pytester: pytest.Pytester) -> None:
    write_settings(pytester, baseline_dir="perf/data")
    pytester.makepyfile(test_w=WORK_SUITE)
    record_baselines(pytester)
    assert baseline_path(pytester, "test_w", "perf/data").is_file()
    assert not (pytester.path / "baselines").exists()


def test_failing_test_is_never_written_to_the_baselines(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_f="""
        import os

        import pytest

        @pytest.mark.perf
        def test_good(perf):
            perf(sum, range(10))

        @pytest.mark.perf
        def test_breaks(perf):
            perf(sum, range(10))
            assert os.environ.get("BREAK") != "1", "broken after measuring"
        """
    )
    monkeypatch.setenv("BREAK", "1")
    result = pytester.runpytest("--perf-update-baselines")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "perfgate: baselines in *: 1 added, 0 refreshed (0 changed significantly), "
            "1 not refreshed (test failed)",
            "  added test_f.py::test_good",
            "  not refreshed test_f.py::test_breaks (the test did not pass)",
        ]
    )
    assert sorted(load_baseline(pytester, "test_f")["tests"]) == ["test_good"]

    # Recorded while it passed, the entry is left as it was while the test fails.
    monkeypatch.delenv("BREAK")
    record_baselines(pytester)
    before = load_baseline(pytester, "test_f")["tests"]["test_breaks"]
    monkeypatch.setenv("BREAK", "1")
    result = pytester.runpytest("--perf-update-baselines")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["  not refreshed test_f.py::test_breaks (the test did not pass)"])
    after = load_baseline(pytester, "test_f")["tests"]
    assert after["test_breaks"] == before
    assert len(after["test_good"]["time"]["history"]) == 3


INTERRUPTED_SUITE = """
import os

import pytest


@pytest.mark.perf
def test_first(perf):
    if os.environ.get("INTERRUPT") == "early":
        raise KeyboardInterrupt
    perf(sum, range(100))


@pytest.mark.perf
def test_second(perf):
    perf(sum, range(100))
    if os.environ.get("INTERRUPT") == "1":
        raise KeyboardInterrupt


@pytest.mark.perf
def test_third(perf):
    perf(sum, range(100))
"""


def test_interrupted_refresh_writes_no_baseline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_i=INTERRUPTED_SUITE)
    monkeypatch.setenv("INTERRUPT", "1")
    result = pytester.runpytest_subprocess("--perf-update-baselines", timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "test_i.py::test_first*NEW*",
            "perfgate: baselines in *: 0 added, 0 refreshed *",
            "perfgate: error: run interrupted: no baseline was written",
            "*! KeyboardInterrupt !*",
        ]
    )
    result.stdout.no_fnmatch_line("  added *")
    assert list((pytester.path / "baselines").rglob("*.json")) == []

    # Interrupted before anything was measured: still said.
    monkeypatch.setenv("INTERRUPT", "early")
    result = pytester.runpytest_subprocess("--perf-update-baselines", timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["perfgate: error: run interrupted: no baseline was written"])
    assert list((pytester.path / "baselines").rglob("*.json")) == []

    # With baselines on disk, an interrupted refresh leaves them byte for byte.
    monkeypatch.setenv("INTERRUPT", "0")
    record_baselines(pytester)
    path = baseline_path(pytester, "test_i")
    before = path.read_bytes()
    assert sorted(json.loads(before)["tests"]) == ["test_first", "test_second", "test_third"]
    monkeypatch.setenv("INTERRUPT", "1")
    result = pytester.runpytest_subprocess("--perf-update-baselines", timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["perfgate: error: run interrupted: no baseline was written"])
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith(".")) == [
        "test_i.json",
        "test_i.samples.jsonl",
    ]
