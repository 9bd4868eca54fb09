"""Baselines over time: stale entries, other machines, and test code that changed."""

from __future__ import annotations

import hashlib

import pytest
from plugin_support import (
    WORK_SUITE,
    baseline_path,
    load_baseline,
    record_baselines,
    rewrite,
    save_baseline,
    write_settings,
)

TWO_TESTS = """
import pytest


@pytest.mark.perf
def test_a(perf):
    perf(sum, range(100))


@pytest.mark.perf
def test_b(perf):
    perf(sum, range(100))
"""


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> pytest.Pytester:
    """TWO_TESTS as test_s.py with recorded baselines."""
    write_settings(pytester)
    pytester.makepyfile(test_s=TWO_TESTS)
    record_baselines(pytester)
    return pytester


# -- stale entries -----------------------------------------------------------------------


def test_renamed_test_leaves_a_stale_entry(recorded: pytest.Pytester) -> None:
    rewrite(recorded.path / "test_s.py", TWO_TESTS.replace("def test_b", "def test_c"))
    result = recorded.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "test_s.py::test_c*NEW*",
            "perfgate: 1 stale baseline(s), for tests or measurements that no longer exist "
            "(delete them from the file):",
            "  stale test_s.py::test_b",
        ]
    )
    result.stdout.no_fnmatch_line("  stale test_s.py::test_a*")


def test_deselected_test_is_not_stale(recorded: pytest.Pytester) -> None:
    for args in (["-k", "test_a"], ["test_s.py::test_a"], ["-m", "not slow"]):
        result = recorded.runpytest(*args)
        result.stdout.no_fnmatch_line("*stale baseline*")
    result = recorded.runpytest("-k", "test_a")
    result.assert_outcomes(passed=1)


def test_tests_left_out_by_last_failed_are_not_stale(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_s=TWO_TESTS
        + "\n\n@pytest.mark.perf\ndef test_broken(perf):\n"
        + "    perf(sum, range(9))\n    assert False\n"
    )
    result = pytester.runpytest("--perf-update-baselines")
    result.assert_outcomes(passed=2, failed=1)
    result = pytester.runpytest("--lf")
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*stale baseline*")


def test_stale_entries_of_test_classes(pytester: pytest.Pytester) -> None:
    classes = """
    import pytest

    class TestX:
        @pytest.mark.perf
        def test_a(self, perf):
            perf(sum, range(100))

    class TestY:
        @pytest.mark.perf
        @pytest.mark.parametrize("n", [1, 2])
        def test_b(self, perf, n):
            perf(sum, range(n))
    """
    write_settings(pytester)
    path = pytester.makepyfile(test_c=classes)
    record_baselines(pytester)
    assert sorted(load_baseline(pytester, "test_c")["tests"]) == [
        "TestX::test_a",
        "TestY::test_b[1]",
        "TestY::test_b[2]",
    ]
    for args in (["test_c.py::TestX"], ["test_c.py::TestY::test_b[1]"], ["-k", "TestX"]):
        result = pytester.runpytest(*args)
        result.stdout.no_fnmatch_line("*stale baseline*")
    rewrite(path, path.read_text().replace("[1, 2]", "[2, 3]"))
    result = pytester.runpytest()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*1 stale baseline(s)*", "  stale test_c.py::TestY::test_b?1?"])
    result = pytester.runpytest("test_c.py::TestX")
    result.stdout.no_fnmatch_line("*stale baseline*")


def test_module_not_collected_reports_no_stale_entries(recorded: pytest.Pytester) -> None:
    recorded.makepyfile(test_other="def test_plain():\n    pass\n")
    result = recorded.runpytest("test_other.py")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*stale baseline*")


def test_measurement_no_longer_taken_is_stale(recorded: pytest.Pytester) -> None:
    rewrite(
        recorded.path / "test_s.py",
        TWO_TESTS.replace(
            "def test_b(perf):\n    perf(sum, range(100))",
            'def test_b(perf):\n    perf.call(sum, args=(range(100),), name="renamed")',
        ),
    )
    result = recorded.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["  stale test_s.py::test_b ?time?"])


def test_refresh_keeps_stale_entries_for_people_to_delete(recorded: pytest.Pytester) -> None:
    rewrite(recorded.path / "test_s.py", TWO_TESTS.replace("def test_b", "def test_c"))
    result = record_baselines(recorded)
    result.stdout.fnmatch_lines(["  stale test_s.py::test_b", "*1 added, 1 refreshed*"])
    assert sorted(load_baseline(recorded, "test_s")["tests"]) == ["test_a", "test_b", "test_c"]


# -- other machines ----------------------------------------------------------------------


def test_baseline_from_another_machine_is_incomparable(recorded: pytest.Pytester) -> None:
    data = load_baseline(recorded, "test_s")
    data["tests"]["test_a"]["time"]["environment"]["machine"]["cpu"] = "Imaginary CPU 9000"
    save_baseline(recorded, "test_s", data)
    result = recorded.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*performance regression*")
    result.stdout.fnmatch_lines(
        [
            "test_s.py::test_a*INCOMPARABLE*",
            "perfgate: 1 INCOMPARABLE*",
            "  INCOMPARABLE test_s.py::test_a: median * (INCOMPARABLE); "
            "baseline recorded on another machine class (cpu: 'Imaginary CPU 9000' vs *): "
            "record baselines for this machine with `pytest --perf-update-baselines`, "
            "or compare through the machine-speed calibration with `--perf-on-mismatch=normalize`",
        ]
    )
    result.stdout.no_fnmatch_line("*test_s.py::test_b*INCOMPARABLE*")


def test_every_test_from_another_machine_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wall of failures is the failure mode to avoid: even a much slower run on "another
    # machine" is reported, never failed.
    write_settings(pytester)
    pytester.makepyfile(test_w=WORK_SUITE)
    record_baselines(pytester)
    data = load_baseline(pytester, "test_w")
    for entries in data["tests"].values():
        entries["time"]["environment"]["machine"]["python"] = "CPython 2.7"
    save_baseline(pytester, "test_w", data)
    monkeypatch.setenv("WORK", "6")
    result = pytester.runpytest("test_w.py", "-x", "--perf-json", "out.json")
    result.assert_outcomes(passed=2)
    # Issue 13: one line for the shared reason, whose hint repeats the run's own path and
    # leaves out what a refresh has no use for (the results file, stopping early).
    result.stdout.fnmatch_lines(
        [
            "perfgate: 2 INCOMPARABLE*",
            "  2 INCOMPARABLE: baseline recorded on another machine class (python: *): "
            "record baselines for this machine with `pytest test_w.py --perf-update-baselines`*",
        ]
    )
    assert sum("another machine class" in line for line in result.outlines) == 1


def test_refresh_on_another_machine_starts_a_new_history(recorded: pytest.Pytester) -> None:
    data = load_baseline(recorded, "test_s")
    data["tests"]["test_a"]["time"]["environment"]["machine"]["cpu"] = "Imaginary CPU 9000"
    save_baseline(recorded, "test_s", data)
    record_baselines(recorded)
    tests = load_baseline(recorded, "test_s")["tests"]
    assert tests["test_a"]["time"]["environment"]["machine"]["cpu"] != "Imaginary CPU 9000"
    assert len(tests["test_a"]["time"]["history"]) == 1
    assert len(tests["test_b"]["time"]["history"]) == 2
    result = recorded.runpytest()
    result.stdout.no_fnmatch_line("*INCOMPARABLE*")


# -- changed test code -------------------------------------------------------------------


def test_changed_test_code_is_incomparable(recorded: pytest.Pytester) -> None:
    rewrite(
        recorded.path / "test_s.py",
        TWO_TESTS.replace(
            "def test_a(perf):\n    perf(sum, range(100))",
            "def test_a(perf):\n    perf(sum, range(101))",
        ),
    )
    result = recorded.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "test_s.py::test_a*INCOMPARABLE*",
            "  INCOMPARABLE test_s.py::test_a: median * (INCOMPARABLE); the test's code changed "
            "since its baseline was recorded; refresh it with `pytest --perf-update-baselines`",
        ]
    )
    result.stdout.no_fnmatch_line("*test_s.py::test_b*INCOMPARABLE*")


def test_changed_comment_docstring_or_marker_is_still_compared(
    recorded: pytest.Pytester,
) -> None:
    rewrite(
        recorded.path / "test_s.py",
        TWO_TESTS.replace(
            "def test_a(perf):\n    perf(sum, range(100))",
            'def test_a(perf):\n    """Sums a range."""\n'
            "    # A comment about the measured call, which changes nothing.\n"
            "    perf(sum, range(100))  # trailing comment\n",
        ).replace("@pytest.mark.perf\ndef test_b", "@pytest.mark.perf(threshold=0.6)\ndef test_b"),
    )
    result = recorded.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*INCOMPARABLE*")
    result.stdout.no_fnmatch_line("*NEW*")
    result.stdout.fnmatch_lines(["perfgate: * (2 perf tests, *"])


def test_incomparable_baseline_is_replaced_on_refresh(recorded: pytest.Pytester) -> None:
    old_hash = load_baseline(recorded, "test_s")["tests"]["test_a"]["time"]["code_hash"]
    rewrite(recorded.path / "test_s.py", TWO_TESTS.replace("range(100))", "range(99))", 1))
    record_baselines(recorded)
    entry = load_baseline(recorded, "test_s")["tests"]["test_a"]["time"]
    assert entry["code_hash"] != old_hash
    assert len(entry["history"]) == 1  # the old code's timings are not history of the new
    result = recorded.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*INCOMPARABLE*")
    assert baseline_path(recorded, "test_s").is_file()


def test_each_entry_records_the_digest_of_the_file_it_was_hashed_from(
    recorded: pytest.Pytester,
) -> None:
    text = (recorded.path / "test_s.py").read_text(encoding="utf-8")
    text += "" if text.endswith("\n") else "\n"  # as linecache reads it: lines end in one
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    tests = load_baseline(recorded, "test_s")["tests"]
    assert [tests[name]["time"]["source_digest"] for name in ("test_a", "test_b")] == [
        digest,
        digest,
    ]


def test_a_test_edited_before_another_tests_refresh_is_still_incomparable(
    recorded: pytest.Pytester,
) -> None:
    # test_b's refresh records the new file's digest; test_a's entry keeps the digest
    # (and the code hash) of the text it was recorded from, so its edit is still seen.
    rewrite(recorded.path / "test_s.py", TWO_TESTS.replace("range(100))", "range(99))", 1))
    record_baselines(recorded, "-k", "test_b")
    result = recorded.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_s.py::test_a*INCOMPARABLE*"])
    result.stdout.no_fnmatch_line("*test_s.py::test_b*INCOMPARABLE*")


# -- history ---------------------------------------------------------------------------


def test_refresh_asks_for_more_runs_until_the_history_holds_three(
    recorded: pytest.Pytester,
) -> None:
    # `recorded` refreshed once: both timings have one run of history.
    hint = "perfgate: 2 timing baseline(s) have fewer than 3 runs of history*refresh again*"
    record_baselines(recorded).stdout.fnmatch_lines([hint])
    third = record_baselines(recorded)
    third.stdout.no_fnmatch_line("*fewer than 3 runs of history*")
    assert len(load_baseline(recorded, "test_s")["tests"]["test_a"]["time"]["history"]) == 3
