"""Hooks pytest-perfgate offers to other plugins and to conftest.py files.

Added through ``pytest_addhooks``; documented in docs/reference/hooks.md. Every call site
passes keyword arguments only, so an implementation may take any subset of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..gate import GatePolicy
    from ..results import RunResults
    from ..settings import PerfSpec


@pytest.hookspec()
def pytest_perfgate_machine_fields(config: pytest.Config) -> dict[str, str]:
    """Machine-class fields to add to this run's environment.

    A baseline is compared directly only with a measurement whose machine-class fields
    are all equal: return, for example, ``{"runner": "ci-large"}`` to keep the baselines
    of two runner types apart, or override a built-in field (``"cpu"``) to merge machine
    classes. Every implementation's fields are merged; called once per process, before
    the first perf test is measured.

    .. versionadded:: 0.1.0
    """
    raise NotImplementedError


@pytest.hookspec(firstresult=True)
def pytest_perfgate_gate_policy(
    item: pytest.Item, spec: PerfSpec, policy: GatePolicy
) -> GatePolicy | None:
    """Change how one perf test's measurements are judged.

    ``policy`` is what the settings and the test's ``@pytest.mark.perf`` arguments give
    (threshold, alpha, run noise...); return a changed copy
    (``dataclasses.replace(policy, threshold=0.2)``) to judge ``item`` by it, or None to
    keep it. The first non-None result wins.

    .. versionadded:: 0.1.0
    """
    raise NotImplementedError


@pytest.hookspec()
def pytest_perfgate_results(config: pytest.Config, results: RunResults) -> None:
    """Called once at the end of a run that measured something, on the controller (never
    on a pytest-xdist worker), with the run's results as the results file holds them:
    to write another report, or send the results elsewhere.

    Called after baselines are refreshed and the report files are written.

    .. versionadded:: 0.1.0
    """
    raise NotImplementedError
