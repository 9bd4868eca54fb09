"""The session plugin: builds each test's ``perf`` object, fails regressed tests in their
call phase, carries results to the controller (pytest-xdist), writes baselines and prints
the summary.

Measurements ride on the call phase's test report (``report.perfgate``), which pytest-xdist
serializes like any report attribute; so the controller sees the same results with or
without xdist, and only the controller writes files.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import io
import os
import sys
import textwrap
import tokenize
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from ..baseline import (
    BaselineError,
    BaselineFile,
    BaselineStore,
    refreshed_entry,
    write_atomically,
)
from ..environment import (
    calibrate_machine,
    current_environment,
    git_commit,
    speed_reference,
    utc_now,
)
from ..fixture import PerfFixture, Result, TestContext
from ..gate import GatePolicy
from ..model import BaselineEntry, Comparison, Environment, Measurement, Verdict, explain
from ..probes import ProbeUnavailable
from ..report import github
from ..report.html import render_html
from ..report.junit import junit_properties
from ..report.markdown import render_markdown
from ..report.terminal import gpu_lines, render_table, verdict_counts
from ..results import RunResults, TestResults, settings_summary, tests_from, write_results
from ..sampling import Progress
from ..settings import Mode, OnMismatch, PerfSpec, Settings, SettingsError
from ..stats import NOISE_RUNS
from .progress import ProgressLine

session_key = pytest.StashKey["PerfSession"]()
fixture_key = pytest.StashKey[PerfFixture]()
#: ``benchmark.extra_info`` of a test using the ``benchmark`` fixture (benchmark_compat).
extra_info_key = pytest.StashKey[dict[str, Any]]()
#: Set when a probe skipped the test: its report then points at the test, not at us.
probe_skip_key = pytest.StashKey[bool]()


@dataclass(slots=True)
class _TestRecord:
    """What the controller knows about one perf test after it ran."""

    module: str
    test: str
    code_hash: str | None
    results: list[Result] = field(default_factory=list)
    passed: bool = True
    extra_info: dict[str, Any] = field(default_factory=dict)
    outcome: str = "passed"  #: the worst of its phases: "failed" > "skipped" > "passed"
    location: tuple[str, int] | None = None  #: (file, 1-based line) of the test


@dataclass(slots=True)
class _RefreshReport:
    added: list[str] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    short_history: int = 0  #: timing entries with fewer than 3 runs of history


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``"suite/test_x.py::test_y[a]"`` -> ``("suite/test_x.py", "test_y[a]")``."""
    module, _, test = nodeid.partition("::")
    return module, test or module


def code_hash(function: object) -> str | None:
    """Hash of a test function's code, blind to comments, whitespace, docstring and
    decorators (marker arguments are not the measured code).

    Works on the source text, not on the AST: ``ast.dump`` and ``ast.unparse`` both
    change between Python versions (3.12 reworked f-strings), and a baseline recorded
    under one Python must not look like changed code under the next.
    """
    try:
        source = textwrap.dedent(inspect.getsource(function))  # type: ignore[arg-type]
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    dropped: set[int] = set()  # 1-based line numbers
    for decorator in node.decorator_list:
        dropped.update(range(decorator.lineno, (decorator.end_lineno or decorator.lineno) + 1))
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        dropped.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines = source.splitlines()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                row, column = token.start
                lines[row - 1] = lines[row - 1][:column]
    except (tokenize.TokenError, SyntaxError):
        return None
    kept = "".join(line for number, line in enumerate(lines, 1) if number not in dropped)
    return hashlib.sha256("".join(kept.split()).encode()).hexdigest()[:16]


def is_perf_item(item: pytest.Item, *, benchmark: bool = False) -> bool:
    """A test gated by perfgate: marked ``perf``, or using the ``perf`` fixture (or the
    ``benchmark`` fixture, where perfgate provides it: ``benchmark=True``)."""
    fixturenames = getattr(item, "fixturenames", ())
    return (
        item.get_closest_marker("perf") is not None
        or "perf" in fixturenames
        or (benchmark and "benchmark" in fixturenames)
    )


def _skip_perf_test(item: pytest.Item, missing: ProbeUnavailable) -> None:
    """Skip a perf test whose probe found no GPU, driver or library, with the reason.
    Returns (and the caller re-raises) for other tests: there the exception is a bug
    to see, not a skip to hide it."""
    if item.stash.get(fixture_key, None) is not None:
        ProgressLine.clear_all()
        item.stash[probe_skip_key] = True
        pytest.skip(str(missing))


class PerfSession:
    """Session state of pytest-perfgate, registered as a plugin by ``pytest_configure``."""

    def __init__(
        self, config: pytest.Config, settings: Settings, *, benchmark: bool = False
    ) -> None:
        self.config = config
        self.settings = settings
        #: perfgate provides the ``benchmark`` fixture (pytest-benchmark is not loaded).
        self.benchmark = benchmark
        self.is_worker = hasattr(config, "workerinput")
        self.store = BaselineStore(config.rootpath / settings.baseline_dir)
        self.environment: Environment = current_environment()
        self.perf_tests = 0
        self.collected: dict[str, set[str]] = {}  # module -> every collected test name
        # module -> scopes ("" for the module, "TestX" for a class) whose tests are all known
        self.expanded: dict[str, set[str]] = {}
        self.records: dict[str, _TestRecord] = {}  # nodeid -> record (controller side)
        self.marked_without_measurement: list[str] = []
        self._files: dict[str, BaselineFile | BaselineError] = {}
        self._refresh: _RefreshReport | None = None
        self._interrupted = False
        self._report_lines: list[str] = []  #: said at the end of the terminal summary
        self._final: RunResults | None = None  #: the run's results, once it has ended

    # -- start -----------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.settings.mode is Mode.OFF:
            return
        if self.settings.update_baselines and not self.is_worker:
            try:
                self.store.check_writable()
            except BaselineError as error:
                raise pytest.UsageError(f"--perf-update-baselines: {error}") from None
        if self.settings.update_baselines or self.settings.on_mismatch is OnMismatch.NORMALIZE:
            # The speed score goes into refreshed baselines and makes normalizing possible.
            self.environment = replace(self.environment, calibration_ns=calibrate_machine())

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        # Before deselection (-k, -m): a deselected test is not stale.
        if self.is_perf_item(item):
            module, test = split_nodeid(item.nodeid)
            self.collected.setdefault(module, set()).add(test)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        # The innermost wrapper sees every test of a module or class before anything
        # narrows it (a node id on the command line, --lf): an existing test is not stale.
        report = yield
        if isinstance(collector, pytest.Module | pytest.Class) and report.passed:
            module, _, scope = collector.nodeid.partition("::")
            self.expanded.setdefault(module, set()).add(scope)
            for node in report.result:
                if isinstance(node, pytest.Item) and self.is_perf_item(node):
                    self.collected.setdefault(module, set()).add(split_nodeid(node.nodeid)[1])
        return report

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.perf_tests = sum(1 for item in session.items if self.is_perf_item(item))
        if self.is_worker:
            # Under pytest-xdist only workers collect: tell the controller what they saw
            # (the summary's count of perf tests, and which baselines are stale).
            self.config.workeroutput["perfgate"] = {  # type: ignore[attr-defined]
                "perf_tests": self.perf_tests,
                "collected": {module: sorted(tests) for module, tests in self.collected.items()},
                "expanded": {module: sorted(scopes) for module, scopes in self.expanded.items()},
            }

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """pytest-xdist, on the controller: a worker finished; merge what it collected."""
        output = getattr(node, "workeroutput", {}).get("perfgate")
        if output is None:
            return
        self.perf_tests = max(self.perf_tests, output["perf_tests"])
        for module, tests in output["collected"].items():
            self.collected.setdefault(module, set()).update(tests)
        for module, scopes in output["expanded"].items():
            self.expanded.setdefault(module, set()).update(scopes)

    def is_perf_item(self, item: pytest.Item) -> bool:
        return is_perf_item(item, benchmark=self.benchmark)

    # -- one test --------------------------------------------------------------------
    def fixture_for(self, item: pytest.Item, *, spec: PerfSpec | None = None) -> PerfFixture:
        """Build the ``perf`` object of one test (called by the fixture); a test that
        asks twice (``perf`` and ``benchmark``) gets the same one. ``spec`` applies where
        the test has no ``@pytest.mark.perf``."""
        existing = item.stash.get(fixture_key, None)
        if existing is not None:
            return existing
        # No __tracebackhide__ here nor in pytest_runtest_call: their failures are
        # pytrace=False messages, and when every frame is hidden pytest adds a notice.
        marker = item.get_closest_marker("perf")
        resolved = PerfSpec() if spec is None else spec
        try:
            if marker is not None:
                resolved = PerfSpec(*marker.args, **marker.kwargs)
        except (TypeError, SettingsError) as error:
            problem = str(error)
        else:
            problem = ""
        if problem:  # failed outside the except block: no "During handling of..." chain
            pytest.fail(
                f"@pytest.mark.perf on {item.nodeid}: {problem} (see `pytest --markers`)",
                pytrace=False,
            )
        module, test = split_nodeid(item.nodeid)
        baselines = self._baseline_file(module)
        if isinstance(baselines, BaselineError):
            pytest.fail(f"{item.nodeid}: {baselines}", pytrace=False)
        loaded: BaselineFile = baselines

        def baseline_of(name: str) -> BaselineEntry | None:
            return loaded.get(test, name)

        context = TestContext(
            test_id=item.nodeid,
            settings=self.settings,
            spec=resolved,
            policy=self._policy(resolved),
            environment=self.environment,
            baselines=baseline_of,
            code_hash=code_hash(getattr(item, "obj", None)),
            progress=self._progress_for(item.nodeid),
            speed_reference=speed_reference(),
        )
        fixture = PerfFixture(context)
        item.stash[fixture_key] = fixture
        item.addfinalizer(fixture.close)  # servers stop even when the test fails
        return fixture

    def _policy(self, spec: PerfSpec) -> GatePolicy:
        s = self.settings
        return GatePolicy(
            threshold=spec.threshold_for(s),
            alpha=s.alpha,
            tests=max(self.perf_tests, 1),
            max_looks=s.max_looks,
            on_mismatch=s.on_mismatch,
            normalize_margin=s.normalize_margin,
            run_noise=s.run_noise,
        )

    def _baseline_file(self, module: str) -> BaselineFile | BaselineError:
        if module not in self._files:
            try:
                self._files[module] = self.store.load(module)
            except BaselineError as error:
                self._files[module] = error
        return self._files[module]

    def _progress_for(self, nodeid: str) -> Any:
        stream = sys.__stderr__
        if self.is_worker or stream is None or not stream.isatty():
            return lambda name: None
        capture = self.config.pluginmanager.getplugin("capturemanager")

        def progress(name: str) -> Progress:
            line = ProgressLine(stream, capture)
            label = nodeid if name == "time" else f"{nodeid} [{name}]"

            def show(samples: int, seconds: float, width: float) -> None:
                line.show(
                    f" measuring {label}: {samples} samples, +-{width * 50:.1f}%, {seconds:.1f}s"
                )

            return show

        return progress

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        # A fixture may ask perf.gpu.require() before the test runs.
        try:
            return (yield)
        except ProbeUnavailable as missing:
            _skip_perf_test(item, missing)
            raise

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        try:
            result = yield  # the test's own failure propagates: nothing is judged then
        except ProbeUnavailable as missing:
            _skip_perf_test(item, missing)
            raise
        fixture = item.stash.get(fixture_key, None)
        ProgressLine.clear_all()
        if fixture is None:
            if item.get_closest_marker("perf") is not None and self.settings.mode is not Mode.OFF:
                self.marked_without_measurement.append(item.nodeid)
            return result
        results = fixture.finish()
        if not results and self.settings.mode is not Mode.OFF:
            self.marked_without_measurement.append(item.nodeid)
        regressed = [r.comparison for r in results if r.comparison.verdict.fails]
        if regressed and self.settings.mode is Mode.GATE and not self.settings.update_baselines:
            lines = [f"performance regression in {c.label}: {explain(c)}" for c in regressed]
            pytest.fail("\n".join(lines), pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if item.stash.get(probe_skip_key, False) and isinstance(report.longrepr, tuple):
            # As pytest does for its own skip marker: the test's location, not ours.
            path, line = item.reportinfo()[:2]
            report.longrepr = (os.fspath(path), (line or 0) + 1, report.longrepr[2])
        fixture = item.stash.get(fixture_key, None)
        if fixture is not None and report.when == "call":
            module, test = split_nodeid(item.nodeid)
            extra_info: dict[str, Any] | None = item.stash.get(extra_info_key, None)
            # Plain JSON data: pytest-xdist carries report attributes to the controller.
            report.perfgate = {  # type: ignore[attr-defined]
                "module": module,
                "test": test,
                "code_hash": fixture.code_hash,
                "extra_info": dict(extra_info or {}),
                "location": [item.location[0], (item.location[1] or 0) + 1],
                "results": [
                    {"measurement": r.measurement.to_dict(), "comparison": r.comparison.to_dict()}
                    for r in fixture.results
                ],
            }
            # Read by --junitxml from the teardown report, which copies the item's list
            # (so they travel with it under pytest-xdist too).
            item.user_properties.extend(junit_properties(r.comparison for r in fixture.results))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        payload = getattr(report, "perfgate", None)
        if payload is not None:
            self.records[report.nodeid] = _TestRecord(
                module=payload["module"],
                test=payload["test"],
                code_hash=payload["code_hash"],
                extra_info=dict(payload.get("extra_info", {})),
                results=[
                    Result(
                        Measurement.from_dict(r["measurement"]),
                        Comparison.from_dict(r["comparison"]),
                    )
                    for r in payload["results"]
                ],
                location=(str(payload["location"][0]), int(payload["location"][1])),
            )
        record = self.records.get(report.nodeid)
        if record is not None and not report.passed:
            record.passed = False
            if record.outcome != "failed":
                record.outcome = report.outcome

    # -- end -------------------------------------------------------------------------
    def pytest_keyboard_interrupt(self) -> None:
        self._interrupted = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or self.settings.mode is Mode.OFF:
            return
        interrupted = self._interrupted or exitstatus == pytest.ExitCode.INTERRUPTED
        if self.settings.update_baselines:
            if interrupted:
                self._refresh = _RefreshReport(errors=["run interrupted: no baseline was written"])
            else:
                self._refresh = self._write_baselines()
                if self._refresh.errors and session.exitstatus == pytest.ExitCode.OK:
                    session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.settings.json:
            self._write_results(interrupted)
        if self.settings.markdown:
            self._write_markdown(interrupted)
        if self.settings.html:
            self._write_html(interrupted)

    def run_results(self) -> RunResults:
        """This run's results, as the results file and the reports hold them."""
        return RunResults(
            environment=self.environment,
            tests=tests_from(
                TestResults(
                    test_id=nodeid,
                    module=record.module,
                    test=record.test,
                    outcome=record.outcome,
                    results=tuple((r.measurement, r.comparison) for r in record.results),
                    location=record.location,
                )
                for nodeid, record in self.records.items()
            ),
            settings=settings_summary(self.settings),
            commit=git_commit(self.config.rootpath),
            created_at=utc_now(),
            generator=self.store.generator,
        )

    def _write_results(self, interrupted: bool) -> None:
        path = self.config.rootpath / self.settings.json
        if interrupted:
            self._report_lines.append(f"perfgate: run interrupted: {path} was not written")
            return
        try:
            write_results(path, self.final_results())
        except OSError as error:
            self._report_lines.append(
                f"perfgate: cannot write the results to {path} ({error.strerror or error})"
            )
        else:
            self._report_lines.append(f"perfgate: results written to {path}")

    def final_results(self) -> RunResults:
        """``run_results()`` taken once at the end, so that every report agrees."""
        if self._final is None:
            self._final = self.run_results()
        return self._final

    def _write_markdown(self, interrupted: bool) -> None:
        path = self.config.rootpath / self.settings.markdown
        if interrupted:
            self._report_lines.append(f"perfgate: run interrupted: {path} was not written")
            return
        text = render_markdown(self.final_results())
        try:
            write_atomically(path, text)
        except OSError as error:
            self._report_lines.append(
                f"perfgate: cannot write the Markdown report to {path} ({error.strerror or error})"
            )
        else:
            self._report_lines.append(f"perfgate: Markdown report written to {path}")
        try:
            summary = github.append_step_summary(text)
        except OSError as error:
            self._report_lines.append(
                f"perfgate: cannot append to the job summary ({error.strerror or error})"
            )
        else:
            if summary is not None:
                self._report_lines.append(f"perfgate: Markdown report appended to {summary}")

    def _write_html(self, interrupted: bool) -> None:
        path = self.config.rootpath / self.settings.html
        if interrupted:
            self._report_lines.append(f"perfgate: run interrupted: {path} was not written")
            return
        try:
            write_atomically(path, render_html(self.final_results()))
        except OSError as error:
            self._report_lines.append(
                f"perfgate: cannot write the HTML report to {path} ({error.strerror or error})"
            )
        else:
            self._report_lines.append(f"perfgate: HTML report written to {path}")

    def _write_baselines(self) -> _RefreshReport:
        report = _RefreshReport()
        commit = git_commit(self.config.rootpath)
        now = utc_now()
        by_module: dict[str, dict[str, dict[str, BaselineEntry]]] = {}
        for nodeid, record in sorted(self.records.items()):
            if not record.passed:
                report.skipped.append(nodeid)
                continue
            file = self._baseline_file(record.module)
            old = None if isinstance(file, BaselineError) else file
            for result in record.results:
                measurement, comparison = result.measurement, result.comparison
                previous = None if old is None else old.get(record.test, measurement.name)
                entry = refreshed_entry(
                    measurement,
                    previous,
                    environment=self.environment,
                    code_hash=record.code_hash,
                    commit=commit,
                    recorded_at=now,
                    history=self.settings.history,
                    max_samples=self.settings.max_stored_samples,
                    changed=comparison.verdict in (Verdict.REGRESSED, Verdict.IMPROVED),
                )
                by_module.setdefault(record.module, {}).setdefault(record.test, {})[
                    measurement.name
                ] = entry
                if entry.unit == "s" and len(entry.history) < NOISE_RUNS:
                    report.short_history += 1
                label = comparison.label
                if previous is None:
                    report.added.append(label)
                else:
                    report.refreshed.append(label)
                    if comparison.verdict in (Verdict.REGRESSED, Verdict.IMPROVED):
                        report.changed.append(f"{label}: {explain(comparison)}")
        for module, entries in sorted(by_module.items()):
            try:
                self.store.update(module, entries)
            except BaselineError as error:
                report.errors.append(f"{error}; its baselines were not refreshed")
            except OSError as error:
                report.errors.append(
                    f"{self.store.path_for(module)}: cannot write ({error.strerror or error})"
                )
        return report

    def stale_entries(self) -> list[str]:
        """Baselines of collected modules whose test no longer exists (renamed or removed),
        and measurements a passing test no longer takes."""
        stale: list[str] = []
        produced: dict[tuple[str, str], set[str]] = {}
        for record in self.records.values():
            if record.passed:
                produced[(record.module, record.test)] = {
                    r.measurement.name for r in record.results
                }
        for module, tests in sorted(self.collected.items()):
            file = self._baseline_file(module)
            if isinstance(file, BaselineError):
                continue
            scopes = self.expanded.get(module)
            for test, measurements in sorted(file.tests.items()):
                if test not in tests:
                    # Only where every test was seen: "TestX::test_y[1]" is in scope "TestX".
                    if scopes is None or test.split("[", 1)[0].rpartition("::")[0] in scopes:
                        stale.append(f"{module}::{test}")
                    continue
                names = produced.get((module, test))
                if names is not None:
                    stale.extend(
                        f"{module}::{test} [{name}]"
                        for name in sorted(measurements)
                        if name not in names
                    )
        return stale

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.settings.mode is Mode.OFF:
            return
        comparisons = [r.comparison for rec in self.records.values() for r in rec.results]
        stale = self.stale_entries()
        refresh_failed = self._refresh is not None and bool(self._refresh.errors)
        if not (
            comparisons
            or stale
            or self.marked_without_measurement
            or refresh_failed
            or self._report_lines
        ):
            return
        tr = terminalreporter
        tr.section("perfgate", sep="=")
        if comparisons:
            tr.write(render_table(comparisons, width=tr._tw.fullwidth, color=tr.hasmarkup))
            tr.write_line(
                f"perfgate: {verdict_counts(comparisons)} "
                f"({self.perf_tests} perf test{'' if self.perf_tests == 1 else 's'}, "
                f"alpha {self.settings.alpha} "
                f"over the suite, mode {self.settings.mode.value})"
            )
        for c in comparisons:
            if c.verdict in (Verdict.REGRESSED, Verdict.INCONCLUSIVE, Verdict.INCOMPARABLE):
                tr.write_line(f"  {c.verdict.value} {c.label}: {explain(c)}")
        if github.running_in_actions() and any(c.verdict.fails for c in comparisons):
            # Workflow commands: GitHub shows each on the test's line in the PR's diff.
            fails = self.settings.mode is Mode.GATE and not self.settings.update_baselines
            for line in github.workflow_commands(
                self.final_results(),
                level="error" if fails else "warning",
                rootdir=self.config.rootpath,
                workspace=os.environ.get("GITHUB_WORKSPACE"),
            ):
                tr.write_line(line)
        gpu = gpu_lines(
            [
                (r.comparison.label, r.measurement)
                for rec in self.records.values()
                for r in rec.results
            ]
        )
        if gpu:
            tr.write_line("perfgate GPU:")
            for line in gpu:
                tr.write_line(f"  {line}")
        new = [c for c in comparisons if c.verdict is Verdict.NEW]
        if new and not self.settings.update_baselines:
            tr.write_line(
                f"perfgate: {len(new)} measurement(s) have no baseline yet; "
                "record them with `pytest --perf-update-baselines`"
            )
        for nodeid in self.marked_without_measurement:
            tr.write_line(
                f"perfgate: warning: {nodeid} is a perf test but measured nothing "
                "(use the perf fixture)",
                yellow=True,
            )
        if stale:
            tr.write_line(
                f"perfgate: {len(stale)} stale baseline(s), for tests or "
                "measurements that no longer exist (delete them from the file):"
            )
            for name in stale:
                tr.write_line(f"  stale {name}")
        if self._refresh is not None:
            self._print_refresh(tr, self._refresh)
        for line in self._report_lines:
            tr.write_line(line)
        workers = self._xdist_workers()
        if comparisons and workers > 1:
            tr.write_line(
                f"perfgate: warning: the perf tests ran on {workers} pytest-xdist workers at "
                "once, sharing the machine with each other and with other tests: their "
                "times carry that contention; measure them with -p no:xdist (or -n 0)",
                yellow=True,
            )

    def _xdist_workers(self) -> int:
        """How many pytest-xdist workers ran the tests (0 without xdist)."""
        workers = getattr(self.config.option, "numprocesses", None)
        try:
            return int(workers or 0)
        except (TypeError, ValueError):  # "auto" before xdist resolved it
            return 0

    def _print_refresh(self, tr: Any, report: _RefreshReport) -> None:
        root = self.store.root
        tr.write_line(
            f"perfgate: baselines in {root}: {len(report.added)} added, "
            f"{len(report.refreshed)} refreshed ({len(report.changed)} changed "
            f"significantly), {len(report.skipped)} not refreshed (test failed)"
        )
        for label in report.added:
            tr.write_line(f"  added {label}")
        for line in report.changed:
            tr.write_line(f"  changed {line}")
        for nodeid in report.skipped:
            tr.write_line(f"  not refreshed {nodeid} (the test did not pass)")
        for error in report.errors:
            tr.write_line(f"perfgate: error: {error}", red=True)
        if report.short_history and not report.errors:
            # Measured in docs/performance.md: three refreshes catch far more slowdowns.
            tr.write_line(
                f"perfgate: {report.short_history} timing baseline(s) have fewer than 3 runs "
                "of history, so the gate assumes their run-to-run noise; refresh again "
                "(3 runs in all) to have it measured and the gate tightened"
            )
