"""The results file (``--perf-json``) is the run's results model written as JSON: both
live in the core, in ``pytest_perfgate.results``; these names stay importable from here."""

from __future__ import annotations

from collections.abc import Sequence

from ..results import (
    SCHEMA_NAME,
    SCHEMA_VERSION,
    ResultsError,
    RunResults,
    TestResults,
    read_results,
    settings_summary,
    tests_from,
    write_results,
)

__all__: Sequence[str] = (
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "ResultsError",
    "RunResults",
    "TestResults",
    "read_results",
    "settings_summary",
    "tests_from",
    "write_results",
)
