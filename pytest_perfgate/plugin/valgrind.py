"""Restarting the run under Valgrind when instructions are to be counted.

Users never type ``valgrind python -m pytest``: with ``--perf-measure=instructions`` (or
``[tool.perfgate] measure``) the run restarts itself under callgrind as soon as it is
configured; with only a ``@pytest.mark.perf(measure="instructions")`` marker, once
collection has found one among the selected tests. The restart is a child process with
the same arguments, the same directory and a fixed hash seed; this process waits for it,
removes its dump directory, and exits with its status. Without Valgrind nothing
restarts: the counting tests skip and say how to install it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile

import pytest

from ..probes.callgrind import (
    INSTALL_HINT,
    INSTRUCTIONS,
    callgrind_command,
    callgrind_environment,
    under_valgrind,
    valgrind_executable,
)
from ..settings import Measure, Mode, Settings


def may_restart(config: pytest.Config, settings: Settings) -> bool:
    """Whether this process may restart the run: it measures, it is not the restarted
    run already, nor a pytest-xdist worker, and it runs tests."""
    return (
        settings.mode is not Mode.OFF
        and not under_valgrind()
        and not hasattr(config, "workerinput")
        and not config.option.collectonly
        and not config.option.help
    )


def restart_if_session_counts(config: pytest.Config, settings: Settings) -> None:
    """At configure time: restart when the session's setting counts instructions."""
    if settings.measure is Measure.INSTRUCTIONS and may_restart(config, settings):
        restart_under_valgrind(config)


def marker_counts(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("perf")
    measure = None if marker is None else marker.kwargs.get("measure")
    return isinstance(measure, str) and measure.lower() == INSTRUCTIONS


def restart_under_valgrind(config: pytest.Config) -> None:
    """Run these tests again under callgrind and exit with that run's status; return
    (having said why) when Valgrind is not installed."""
    valgrind = valgrind_executable()
    if valgrind is None:
        sys.stderr.write(
            f"pytest-perfgate: counting instructions needs Valgrind, not found: {INSTALL_HINT}; "
            "the tests that count instructions will be skipped\n"
        )
        return
    with tempfile.TemporaryDirectory(prefix="perfgate-callgrind-") as dump_dir:
        command = callgrind_command(
            valgrind, sys.executable, config.invocation_params.args, dump_dir
        )
        sys.stderr.write(f"pytest-perfgate: counting instructions: {shlex.join(command)}\n")
        sys.stderr.flush()
        sys.stdout.flush()
        status = subprocess.run(
            command,
            env=callgrind_environment(os.environ, dump_dir),
            cwd=config.invocation_params.dir,
            check=False,
        ).returncode
    # The restarted run said everything: this one reports nothing more of its own.
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        config.pluginmanager.unregister(reporter)
    pytest.exit(f"pytest-perfgate: the run under Valgrind exited with {status}", returncode=status)


class MarkerRestart:
    """Registered when the session does not count instructions, but a marker might."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        config = session.config
        if may_restart(config, self.settings) and any(map(marker_counts, session.items)):
            restart_under_valgrind(config)
