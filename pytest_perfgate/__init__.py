"""pytest-perfgate: a performance regression gate for pytest.

The public API, importable without pytest: the ``perf`` fixture's type, the value types
of results, and the pure core (sampling, statistics, baselines) for use from scripts.
Each name is imported from its module when first used (PEP 562), so that loading the
pytest plugin, which imports this package, costs a run without perf tests nothing heavy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from .results import RunResults, TestResults
    from .sampling import Sampler, SamplingPlan
    from .settings import Mode, PerfSpec, Settings, SettingsError
    from .stats import compare, summarize

    __version__: str

#: Where each public name lives. Importing the package imports none of them: pytest loads
#: this package (through the plugin) in every run, and the core pulls in numpy and scipy.
_SOURCES = {
    "FORMAT_VERSION": "baseline",
    "BaselineError": "baseline",
    "BaselineStore": "baseline",
    "PerfFixture": "fixture",
    "Result": "fixture",
    "TestContext": "fixture",
    "GatePolicy": "gate",
    "judge": "gate",
    "BaselineEntry": "model",
    "Comparison": "model",
    "Direction": "model",
    "Environment": "model",
    "Measurement": "model",
    "Summary": "model",
    "Verdict": "model",
    "explain": "model",
    "ProbeUnavailable": "probes",
    "GpuProbe": "probes.gpu",
    "ProbeInputError": "probes",
    "EchoServer": "probes.network",
    "NetProbe": "probes.network",
    "StorageProbe": "probes.storage",
    "StorageWarning": "probes.storage",
    "RunResults": "results",
    "TestResults": "results",
    "Sampler": "sampling",
    "SamplingPlan": "sampling",
    "Mode": "settings",
    "PerfSpec": "settings",
    "Settings": "settings",
    "SettingsError": "settings",
    "compare": "stats",
    "summarize": "stats",
}

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
    "RunResults",
    "Sampler",
    "SamplingPlan",
    "Settings",
    "SettingsError",
    "StorageProbe",
    "StorageWarning",
    "Summary",
    "TestContext",
    "TestResults",
    "Verdict",
    "compare",
    "explain",
    "judge",
    "summarize",
]


def __getattr__(name: str) -> Any:
    """PEP 562: a public name is imported from its module when first asked for."""
    if name == "__version__":
        from importlib.metadata import version

        return version("pytest-perfgate")
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{source}"), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
