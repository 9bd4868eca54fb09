"""The pytest layer: options, the ``perf`` marker and fixture, and the session plugin.

This package is the only place that imports pytest. Disable it with ``-p no:perfgate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from ..settings import OPTIONS, Measure, Settings, SettingsError, read_pyproject
from . import benchmark_compat, paired_worker, valgrind
from .session import PerfSession, session_key

if TYPE_CHECKING:  # the fixture's module imports numpy: a perf test imports it
    from ..fixture import PerfFixture

__all__ = ["PerfSession", "perf"]

#: The name of the plugin that provides the `benchmark` fixture where perfgate owns it.
BENCHMARK_PLUGIN = "perfgate-benchmark"
#: The plugin that restarts the run under Valgrind when a marker counts instructions.
VALGRIND_PLUGIN = "perfgate-valgrind"


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("perfgate", "performance regression gate (pytest-perfgate)")
    for option in OPTIONS:
        if option.is_flag:
            group.addoption(
                option.flag,
                action="store_true",
                default=None,
                dest=f"perfgate_{option.name}",
                help=option.help,
            )
        elif option.is_boolean:
            # A bare flag means true; ``--perf-memory=false`` still turns it off.
            group.addoption(
                option.flag,
                action="store",
                nargs="?",
                const="true",
                default=None,
                metavar="true|false",
                dest=f"perfgate_{option.name}",
                help=option.help,
            )
        else:
            group.addoption(
                option.flag,
                action="store",
                default=None,
                metavar=option.metavar,
                dest=f"perfgate_{option.name}",
                help=option.help,
            )
    if not benchmark_compat.benchmark_plugin_expected(pluginmanager):
        # pytest-benchmark's own options exist otherwise: adding them again is an error.
        benchmark_compat.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "perf(threshold=None, max_time=None, min_samples=None, rounds=None, "
        "target_precision=None, min_sample_time=None, warmup_time=None, loops=None, "
        "disable_gc=None, memory=None, speed_reference=None, measure=None, budget=None): "
        "a performance test, gated against its baseline (pytest-perfgate)",
    )
    settings = _settings_from(config)
    # Counting instructions restarts the run under Valgrind (and exits) before any work.
    valgrind.restart_if_session_counts(config, settings)
    if settings.measure is not Measure.INSTRUCTIONS:
        config.pluginmanager.register(valgrind.MarkerRestart(settings), VALGRIND_PLUGIN)
    # pytest-benchmark or pytest-codspeed, where loaded, owns the `benchmark` fixture.
    owns_benchmark = benchmark_compat.benchmark_owner(config.pluginmanager) is None
    config.stash[session_key] = session = PerfSession(config, settings, benchmark=owns_benchmark)
    config.pluginmanager.register(session, "perfgate-session")
    paired_worker.register_if_paired(config)  # only under `perfgate ab` (paired)
    if owns_benchmark:
        config.addinivalue_line("markers", benchmark_compat.MARKER_HELP)
        config.pluginmanager.register(benchmark_compat, BENCHMARK_PLUGIN)


def pytest_report_header(config: pytest.Config) -> str | None:
    owner = benchmark_compat.benchmark_owner(config.pluginmanager)
    return None if owner is None else benchmark_compat.coexistence_message(owner)


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.pluginmanager.get_plugin(VALGRIND_PLUGIN) is not None:
        config.pluginmanager.unregister(name=VALGRIND_PLUGIN)
    if config.pluginmanager.get_plugin(BENCHMARK_PLUGIN) is not None:
        config.pluginmanager.unregister(name=BENCHMARK_PLUGIN)
    session = config.stash.get(session_key, None)
    if session is not None:
        config.pluginmanager.unregister(session)
        del config.stash[session_key]


def _settings_from(config: pytest.Config) -> Settings:
    pyproject_path = config.rootpath / "pyproject.toml"
    if config.inipath is not None and config.inipath.name == "pyproject.toml":
        pyproject_path = config.inipath
    cli = {option.name: config.getoption(f"perfgate_{option.name}") for option in OPTIONS}
    try:
        return Settings.resolve(
            read_pyproject(pyproject_path),
            cli,
            pyproject_source=f"[tool.perfgate] in {pyproject_path}",
        )
    except SettingsError as error:
        raise pytest.UsageError(f"pytest-perfgate: {error}") from None


@pytest.fixture
def perf(request: pytest.FixtureRequest) -> PerfFixture:
    """Measures code in a perf test: ``perf(fn, *args)``, ``perf.measure(name)``,
    ``perf.record(name, values)``; gated against baselines/ (pytest-perfgate)."""
    session = request.config.stash[session_key]
    # The session finishes and judges it at the end of the test's call phase.
    return session.fixture_for(request.node)
