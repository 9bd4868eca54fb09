"""The results file (``--perf-json``) is the run's results model written as JSON: both
live in the core, in ``pytest_perfgate.results``; its names stay importable from here."""

from __future__ import annotations

from ..results import *  # noqa: F403
from ..results import __all__ as __all__
