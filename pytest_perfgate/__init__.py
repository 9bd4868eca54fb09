"""pytest-perfgate: a performance regression gate for pytest.

The public API, importable without pytest: the ``perf`` fixture's type, the value types
of results, and the pure core (sampling, statistics, baselines) for use from scripts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .baseline import FORMAT_VERSION, BaselineError, BaselineStore
from .fixture import PerfFixture, Result, TestContext
from .gate import GatePolicy, judge
from .model import (
    BaselineEntry,
    Comparison,
    Direction,
    Environment,
    Measurement,
    Summary,
    Verdict,
    explain,
)
from .probes import ProbeInputError, ProbeUnavailable
from .probes.gpu import GpuProbe
from .probes.network import EchoServer, NetProbe
from .probes.storage import StorageProbe, StorageWarning
from .sampling import Sampler, SamplingPlan
from .settings import Mode, PerfSpec, Settings, SettingsError
from .stats import compare, summarize

if TYPE_CHECKING:
    __version__: str

__all__ = [
    "FORMAT_VERSION",
    "BaselineEntry",
    "BaselineError",
    "BaselineStore",
    "Comparison",
    "Direction",
    "EchoServer",
    "Environment",
    "GatePolicy",
    "GpuProbe",
    "Measurement",
    "Mode",
    "NetProbe",
    "PerfFixture",
    "PerfSpec",
    "ProbeInputError",
    "ProbeUnavailable",
    "Result",
    "Sampler",
    "SamplingPlan",
    "Settings",
    "SettingsError",
    "StorageProbe",
    "StorageWarning",
    "Summary",
    "TestContext",
    "Verdict",
    "compare",
    "explain",
    "judge",
    "summarize",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version

        return version("pytest-perfgate")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
