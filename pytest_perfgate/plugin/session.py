"""The session plugin: builds each test's ``perf`` object, fails regressed tests in their
call phase, carries results to the controller (pytest-xdist), writes baselines and prints
the summary.

On a pytest-xdist worker, measurements ride on the call phase's test report
(``report.perfgate``, plain JSON data), which pytest-xdist serializes like any report
attribute; without xdist the session keeps them as they are. Either way the controller
holds the same results, and only the controller writes files.
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pytest

from ..probes import ProbeUnavailable
from ..settings import Measure, Mode, OnMismatch, PerfSpec, Settings, SettingsError
from .progress import ProgressLine

if TYPE_CHECKING:
    # The core imports numpy and scipy: pytest loads this module in every run, so they
    # are imported where the first perf test needs them (issue 13).
    from ..baseline import BaselineError, BaselineFile, BaselineStore
    from ..code_hash import CodeIdentity
    from ..fixture import PerfFixture, Result
    from ..gate import GatePolicy
    from ..model import BaselineEntry, Comparison, Environment, Measurement
    from ..refresh import RefreshReport
    from ..results import RunResults, TestResults
    from ..sampling import Progress

session_key = pytest.StashKey["PerfSession"]()
fixture_key = pytest.StashKey["PerfFixture"]()
#: ``benchmark.extra_info`` of a test using the ``benchmark`` fixture (benchmark_compat).
extra_info_key = pytest.StashKey[dict[str, Any]]()
#: Set when a probe skipped the test: its report then points at the test, not at us.
probe_skip_key = pytest.StashKey[bool]()
#: After this many perf tests, the heap their results added is frozen (_freeze_heap).
FREEZE_EVERY = 500


@dataclass(slots=True)
class _TestRecord:
    """What the controller knows about one perf test after it ran."""

    module: str
    test: str
    code_hash: str | None
    source_digest: str | None  #: of the file the code hash was taken from
    results: list[tuple[Measurement, Comparison]] = field(default_factory=list)
    extra_info: dict[str, Any] = field(default_factory=dict)
    #: The worst of its phases: "failed" > "skipped" > "passed"; only a passed test's
    #: measurements refresh its baselines or say which stored ones are stale.
    outcome: str = "passed"
    location: tuple[str, int] | None = None  #: (file, 1-based line) of the test

    def to_payload(self) -> dict[str, Any]:
        """The record as plain JSON data, for a pytest-xdist worker's report."""
        return {
            "module": self.module,
            "test": self.test,
            "code_hash": self.code_hash,
            "source_digest": self.source_digest,
            "extra_info": self.extra_info,
            "location": None if self.location is None else list(self.location),
            "results": [
                {"measurement": m.to_dict(), "comparison": c.to_dict()} for m, c in self.results
            ],
        }

    def to_results(self, test_id: str) -> TestResults:
        from ..results import TestResults

        return TestResults(
            test_id=test_id,
            module=self.module,
            test=self.test,
            outcome=self.outcome,
            results=tuple(self.results),
            location=self.location,
            extra_info=self.extra_info,
        )


def split_nodeid(nodeid: str) -> tuple[str, str]:
    """``"suite/test_x.py::test_y[a]"`` -> ``("suite/test_x.py", "test_y[a]")``."""
    module, _, test = nodeid.partition("::")
    return module, test or module


def is_perf_item(item: pytest.Item, *, benchmark: bool = False) -> bool:
    """A test gated by perfgate: marked ``perf``, or using the ``perf`` fixture (or the
    ``benchmark`` fixture, where perfgate provides it: ``benchmark=True``)."""
    fixturenames = getattr(item, "fixturenames", ())
    return (
        item.get_closest_marker("perf") is not None
        or "perf" in fixturenames
        or (benchmark and "benchmark" in fixturenames)
    )


def _skipped_by_mark(item: pytest.Item) -> bool:
    """Whether a skip or skipif mark skips ``item`` (pytest's own evaluation of them)."""
    from _pytest.skipping import evaluate_skip_marks  # pytest's rule, not a copy of it

    try:
        return evaluate_skip_marks(item) is not None
    except (Exception, pytest.fail.Exception):  # a bad skipif condition: pytest reports it
        return False


def _skip_perf_test(item: pytest.Item, missing: ProbeUnavailable) -> None:
    """Skip a perf test whose probe found no GPU, driver or library, with the reason.
    Returns (and the caller re-raises) for other tests: there the exception is a bug
    to see, not a skip to hide it."""
    if item.stash.get(fixture_key, None) is not None:
        ProgressLine.clear_all()
        item.stash[probe_skip_key] = True
        pytest.skip(str(missing))


class PerfSession:
    """Session state of pytest-perfgate, registered as a plugin by ``pytest_configure``.

    Glue only: pytest hooks, stash keys, item bookkeeping and the pytest-xdist transport.
    The work (judging, refreshing, reports) is the core's, imported when first needed.
    """

    def __init__(
        self, config: pytest.Config, settings: Settings, *, benchmark: bool = False
    ) -> None:
        self.config = config
        self.settings = settings
        self._started = time.monotonic()  #: for the run's wall time in the history
        #: perfgate provides the ``benchmark`` fixture (pytest-benchmark is not loaded).
        self.benchmark = benchmark
        self.is_worker = hasattr(config, "workerinput")
        self.perf_tests = 0
        #: Decisions the suite's alpha is split over (count_decisions); 0 until collected.
        self.decisions = 0
        self.collected: dict[str, set[str]] = {}  # module -> every collected test name
        # module -> scopes ("" for the module, "TestX" for a class) whose tests are all known
        self.expanded: dict[str, set[str]] = {}
        self.records: dict[str, _TestRecord] = {}  # nodeid -> record (controller side)
        self.marked_without_measurement: list[str] = []
        self._store: BaselineStore | None = None
        self._environment: Environment | None = None
        self._files: dict[str, BaselineFile | BaselineError] = {}
        #: Under pytest-xdist, on the controller: module -> test -> measurement names of
        #: the baseline files the workers read (the stale check needs no more than that).
        self._stored_names: dict[str, dict[str, list[str]]] = {}
        self._refresh: RefreshReport | None = None
        self._interrupted = False
        self._report_lines: list[str] = []  #: said at the end of the terminal summary
        self._final: RunResults | None = None  #: the run's results, once it has ended
        self._froze_heap = False
        self._done = 0  #: perf tests finished in this process
        self._policy_hooked = True  #: pytest_perfgate_gate_policy has implementations
        #: @pytest.mark.perf's keywords -> its spec: most tests share a handful of markers.
        self._specs: dict[tuple[tuple[str, type, Any], ...], PerfSpec] = {}
        # Registered now, so it runs after the cleanups of plugins configured later
        # (last in, first out): pytest's own full collections at exit still skip the
        # frozen heap, and it is unfrozen once nothing else will walk it.
        config.add_cleanup(self._unfreeze_heap)

    @property
    def store(self) -> BaselineStore:
        """The baseline files, opened when first needed."""
        if self._store is None:
            from ..baseline import BaselineStore

            self._store = BaselineStore(self.config.rootpath / self.settings.baseline_dir)
        return self._store

    @property
    def environment(self) -> Environment:
        """This machine, with the fields of ``pytest_perfgate_machine_fields``; taken when
        first needed (it reads the CPU model and package metadata)."""
        if self._environment is None:
            from ..environment import current_environment

            extra: dict[str, str] = {}
            for fields in self.config.hook.pytest_perfgate_machine_fields(config=self.config):
                extra.update({str(k): str(v) for k, v in fields.items()})
            self._environment = current_environment().extended(extra)
        return self._environment

    def add_environment_info(self, info: Mapping[str, str]) -> None:
        """Add fields for people to this run's environment: shown, never compared."""
        environment = self.environment
        self._environment = replace(environment, info={**environment.info, **info})

    # -- start -----------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.settings.mode is Mode.OFF:
            return
        if self.settings.update_baselines and not self.is_worker:
            from ..baseline import BaselineError

            try:
                self.store.check_writable()
            except BaselineError as error:
                raise pytest.UsageError(f"--perf-update-baselines: {error}") from None
        calibrates = (
            self.settings.update_baselines or self.settings.on_mismatch is OnMismatch.NORMALIZE
        )
        # Counting instructions: the workload would change the allocator's state that a
        # count depends on, between a refresh and a gate run (probes/instructions.py).
        if calibrates and self.settings.measure is not Measure.INSTRUCTIONS:
            # The speed score goes into refreshed baselines and makes normalizing possible.
            from .. import environment

            self._environment = replace(
                self.environment, calibration_ns=environment.calibrate_machine()
            )

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
        perf_items = [item for item in session.items if self.is_perf_item(item)]
        self.perf_tests = len(perf_items)
        # Counting reads every baseline file; its thousands of new objects would set off
        # young-generation passes over the collection's heap, doubling the reading time
        # at 1,000 tests. They hold no cycles; the freeze below collects once.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.decisions = self._count_decisions(perf_items)
        finally:
            if was_enabled:
                gc.enable()
        if self.perf_tests and self.settings.mode is not Mode.OFF:
            self._freeze_heap(young_only=True)
        # Most suites have no implementation of this hook: then it is not called per test.
        self._policy_hooked = bool(self.config.hook.pytest_perfgate_gate_policy.get_hookimpls())
        if self.is_worker:
            # Under pytest-xdist only workers collect: tell the controller what they saw
            # (the summary's count of perf tests, and which baselines are stale).
            self.config.workeroutput["perfgate"] = {  # type: ignore[attr-defined]
                "perf_tests": self.perf_tests,
                "decisions": self.decisions,
                "collected": {module: sorted(tests) for module, tests in self.collected.items()},
                "expanded": {module: sorted(scopes) for module, scopes in self.expanded.items()},
                # One JSON string: the serializer's cost is per object (_transported).
                "stored": json.dumps(
                    {
                        module: {test: sorted(names) for test, names in file.tests.items()}
                        for module, file in self._files.items()
                        if not isinstance(file, Exception)
                    }
                ),
            }

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """pytest-xdist, on the controller: a worker finished; merge what it collected."""
        output = getattr(node, "workeroutput", {}).get("perfgate")
        if output is None:
            return
        self.perf_tests = max(self.perf_tests, output["perf_tests"])
        self.decisions = max(self.decisions, output.get("decisions", 0))
        for module, tests in output["collected"].items():
            self.collected.setdefault(module, set()).update(tests)
        for module, scopes in output["expanded"].items():
            self.expanded.setdefault(module, set()).update(scopes)
        self._stored_names.update(json.loads(output.get("stored", "{}")))

    def is_perf_item(self, item: pytest.Item) -> bool:
        return is_perf_item(item, benchmark=self.benchmark)

    def _freeze_heap(self, *, young_only: bool = False) -> None:
        """Keep what is alive now (after collection: modules, items; later: the results
        so far) out of the collector's full passes until the session ends. Each full
        pass walks the whole heap, and with thousands of tests they cost more than the
        tests themselves (docs/performance.md).

        A collection first, so that what is garbage now is not kept for the whole run:
        after collection (``young_only``) of the young generations alone, as a full one
        walks numpy, scipy and pytest for nothing (9-13 ms, and it found no garbage
        there on 1,000 tests); after tests, a full one (3 ms, a few hundred objects)."""
        gc.collect(1 if young_only else 2)
        gc.freeze()
        self._froze_heap = True

    def _perf_test_done(self) -> None:
        """Every FREEZE_EVERY perf tests, freeze what their results added to the heap."""
        self._done += 1
        if self._done % FREEZE_EVERY == 0 and self.settings.mode is not Mode.OFF:
            self._freeze_heap()

    def _unfreeze_heap(self) -> None:
        if self._froze_heap:
            gc.unfreeze()  # back to the oldest generation: collectable again
            self._froze_heap = False

    def _count_decisions(self, perf_items: list[pytest.Item]) -> int:
        """How many gated measurements share the suite's alpha: each perf test that will
        run (a skip or true skipif mark, known now, leaves it out; deselected tests are
        not among the items) counts its baseline entries, or one without any. Known at
        collection, so a test can fail in its own call phase; a measurement added since
        the last refresh is not counted until it has a baseline (it is NEW, not judged)."""
        if self.settings.update_baselines:
            return len(perf_items)  # nothing is judged against the baselines being replaced
        count = 0
        for item in perf_items:
            if _skipped_by_mark(item):
                continue
            module, test = split_nodeid(item.nodeid)
            baselines = self._baseline_file(module)
            entries = 0 if isinstance(baselines, Exception) else len(baselines.tests.get(test, {}))
            count += max(entries, 1)
        return count

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
                resolved = self._spec_of(marker)
        except (TypeError, SettingsError) as error:
            problem = str(error)
        else:
            problem = ""
        if problem:  # failed outside the except block: no "During handling of..." chain
            pytest.fail(
                f"@pytest.mark.perf on {item.nodeid}: {problem} (see `pytest --markers`)",
                pytrace=False,
            )
        from ..baseline import BaselineError
        from ..environment import speed_reference
        from ..fixture import PerfFixture, TestContext
        from .paired_worker import pairing_of

        module, test = split_nodeid(item.nodeid)
        baselines = self._baseline_file(module)
        if isinstance(baselines, BaselineError):
            pytest.fail(f"{item.nodeid}: {baselines}", pytrace=False)
        loaded: BaselineFile = baselines
        code = _code_identity(item, loaded.tests.get(test, {}).values())
        context = TestContext(
            test_id=item.nodeid,
            settings=self.settings,
            spec=resolved,
            policy=self._policy(item, resolved),
            environment=self.environment,
            baselines=lambda name: loaded.get(test, name),
            code_hash=code.hash,
            source_digest=code.source_digest,
            progress=self._progress_for(item.nodeid),
            speed_reference=speed_reference(),
            pairing=pairing_of(self.config),
        )
        fixture = PerfFixture(context)
        item.stash[fixture_key] = fixture
        item.addfinalizer(fixture.close)  # servers stop even when the test fails
        return fixture

    def _spec_of(self, marker: pytest.Mark) -> PerfSpec:
        """The spec of a ``@pytest.mark.perf``, parsed once for each set of keywords."""
        if marker.args:
            return PerfSpec.from_marker(marker.args, marker.kwargs)  # refused, with why
        # The type too: True and 1 are equal keys, and only one may be a valid value.
        key = tuple(sorted((name, type(value), value) for name, value in marker.kwargs.items()))
        try:
            return self._specs[key]
        except KeyError:
            spec = self._specs[key] = PerfSpec.from_marker((), marker.kwargs)
            return spec
        except TypeError:  # an unhashable value (a dict of budgets): parsed every time
            return PerfSpec.from_marker((), marker.kwargs)

    def _policy(self, item: pytest.Item, spec: PerfSpec) -> GatePolicy:
        from ..gate import GatePolicy

        s = self.settings
        policy = GatePolicy(
            threshold=spec.threshold_for(s),
            alpha=s.alpha,
            tests=max(self.decisions, 1),
            max_looks=s.max_looks,
            on_mismatch=s.on_mismatch,
            normalize_margin=s.normalize_margin,
            run_noise=s.run_noise,
        )
        if not self._policy_hooked:
            return policy
        changed = self.config.hook.pytest_perfgate_gate_policy(item=item, spec=spec, policy=policy)
        return policy if changed is None else changed

    def _baseline_file(self, module: str) -> BaselineFile | BaselineError:
        from ..baseline import BaselineError

        if module not in self._files:
            try:
                self._files[module] = self.store.load(module)
            except BaselineError as error:
                self._files[module] = error
        return self._files[module]

    def _progress_for(self, nodeid: str) -> Callable[[str], Progress | None]:
        # The terminal reporter knows whether its output is a terminal; capture hides
        # that from sys.stderr (issue 13), and a CI log has no use for erased text.
        reporter = self.config.pluginmanager.getplugin("terminalreporter")
        if self.is_worker or reporter is None or not reporter.isatty():
            return lambda name: None
        capture = self.config.pluginmanager.getplugin("capturemanager")

        def progress(name: str) -> Progress:
            line = ProgressLine(capture=capture)
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
        if self.settings.mode is Mode.GATE and not self.settings.update_baselines:
            from ..model import explain

            lines = [f"performance regression in {c.label}: {explain(c)}" for c in regressed]
            lines += self._over_budget(results)
            if lines:
                pytest.fail("\n".join(lines), pytrace=False)
        return result

    def _over_budget(self, results: Sequence[Result]) -> list[str]:
        """With --perf-fail-over-budget: why the measurements past their budgets fail."""
        if not self.settings.fail_over_budget:
            return []
        from ..history.budgets import budget_notes

        pairs = [(r.measurement, r.comparison) for r in results]
        return [f"over budget: {note}" for note in budget_notes(pairs)]

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
            record = _record_of(item, fixture)
            if self.is_worker:
                # pytest-xdist carries report attributes to the controller.
                report.perfgate = _transported(record.to_payload())  # type: ignore[attr-defined]
            else:  # the controller itself: no round trip through JSON data
                self.records[item.nodeid] = record
            if getattr(self.config.option, "xmlpath", None):
                # Read by --junitxml from the teardown report, which copies the item's
                # list (so they travel with it under pytest-xdist too, whose workers have
                # the option). Only then: formatting them cost about 10 us a test.
                from ..report.junit import junit_properties

                properties = junit_properties(r.comparison for r in fixture.results)
                item.user_properties.extend(properties)
        if fixture is not None and report.when == "teardown":
            # Items live as long as the session: the fixture, its probes and their
            # closures would be kept (and walked by every full collection) per test.
            del item.stash[fixture_key]
            self._perf_test_done()
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        payload = getattr(report, "perfgate", None)
        if payload is not None:  # from a pytest-xdist worker
            data = json.loads(payload) if isinstance(payload, str) else payload
            self.records[report.nodeid] = _record_from(data)
            del report.perfgate  # the report is kept to the end; the record has it all
            self._perf_test_done()
        record = self.records.get(report.nodeid)
        if record is not None and not report.passed and record.outcome != "failed":
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
            self._refresh = self._refresh_baselines(interrupted)
            if self._refresh.errors and session.exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.settings.json or self.settings.markdown or self.settings.html:
            from ..report.files import write_reports
            from ..report.hints import refresh_command

            self._report_lines += write_reports(
                self.final_results,
                self.settings,
                self.config.rootpath,
                interrupted=interrupted,
                refresh_command=refresh_command(self.config.invocation_params.args),
            )
        if self.settings.history_db and self.records and not interrupted:
            from ..history.record import history_target, record_session

            recording = record_session(
                self.final_results(),
                history_target(self.settings.history_db, self.config.rootpath),
                refresh=self.settings.update_baselines,
                rootdir=self.config.rootpath,
                wall_seconds=time.monotonic() - self._started,
            )
            self._report_lines.append(recording.message)
        if self.records:
            self.config.hook.pytest_perfgate_results(
                config=self.config, results=self.final_results()
            )

    def _refresh_baselines(self, interrupted: bool) -> RefreshReport:
        from ..environment import git_commit, utc_now
        from ..refresh import INTERRUPTED, RefreshContext, refresh_baselines

        if interrupted:
            return INTERRUPTED
        context = RefreshContext(
            store=self.store,
            load=self._baseline_file,
            environment=self.environment,
            code_hashes={nodeid: record.code_hash for nodeid, record in self.records.items()},
            source_digests={
                nodeid: record.source_digest for nodeid, record in self.records.items()
            },
            commit=git_commit(self.config.rootpath),
            recorded_at=utc_now(),
            history=self.settings.history,
            max_samples=self.settings.max_stored_samples,
        )
        return refresh_baselines(self._tests(), context)

    def _tests(self) -> list[TestResults]:
        """Every perf test that ran, in the order they ran."""
        return [record.to_results(nodeid) for nodeid, record in self.records.items()]

    def run_results(self) -> RunResults:
        """This run's results, as the results file and the reports hold them."""
        from ..environment import git_commit, utc_now
        from ..results import RunResults, settings_summary, tests_from

        return RunResults(
            environment=self.environment,
            tests=tests_from(self._tests()),
            settings=settings_summary(self.settings),
            commit=git_commit(self.config.rootpath),
            created_at=utc_now(),
            generator=self.store.generator,
        )

    def final_results(self) -> RunResults:
        """``run_results()`` taken once at the end, so that every report agrees."""
        if self._final is None:
            self._final = self.run_results()
        return self._final

    def stale_entries(self) -> list[str]:
        """Baselines of collected modules whose test no longer exists (renamed or removed),
        and measurements a passing test no longer takes."""
        if not self.collected:
            return []
        from ..refresh import stale_entries

        return stale_entries(self.collected, self.expanded, self._tests(), self._stored)

    def _stored(self, module: str) -> Mapping[str, Iterable[str]] | BaselineError:
        """A module's stored test and measurement names: from the file this process read,
        else from what the pytest-xdist workers read, else read now."""
        if module not in self._files and module in self._stored_names:
            return self._stored_names[module]
        file = self._baseline_file(module)
        return file if isinstance(file, Exception) else file.tests

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.settings.mode is Mode.OFF:
            return
        stale = self.stale_entries()
        refresh_failed = self._refresh is not None and bool(self._refresh.errors)
        said = self.records or stale or self.marked_without_measurement or self._report_lines
        if not (said or refresh_failed):
            return  # nothing to say: no need to import the summary's modules
        from ..report.hints import refresh_command
        from ..report.summary import RunSummary, summary_lines

        summary = RunSummary(
            results=self.final_results(),
            measured=[pair for record in self.records.values() for pair in record.results],
            settings=self.settings,
            perf_tests=self.perf_tests,
            decisions=self.decisions,
            baseline_root=self.store.root,
            rootdir=self.config.rootpath,
            stale=stale,
            unmeasured=self.marked_without_measurement,
            refresh=self._refresh,
            files=self._report_lines,
            xdist_workers=self._xdist_workers(),
            workspace=os.environ.get("GITHUB_WORKSPACE"),
            refresh_command=refresh_command(self.config.invocation_params.args),
        )
        tr = terminalreporter
        lines = summary_lines(summary, width=tr._tw.fullwidth, color=tr.hasmarkup)
        if lines:
            tr.section("perfgate", sep="=")
        for line in lines:
            if line.block:
                tr.write(line.text)
            else:
                tr.write_line(line.text, **({line.color: True} if line.color else {}))

    def _xdist_workers(self) -> int:
        """How many pytest-xdist workers ran the tests (0 without xdist)."""
        workers = getattr(self.config.option, "numprocesses", None)
        try:
            return int(workers or 0)
        except (TypeError, ValueError):  # "auto" before xdist resolved it
            return 0


def _record_of(item: pytest.Item, fixture: PerfFixture) -> _TestRecord:
    """A test's record, from its fixture at the end of its call."""
    module, test = split_nodeid(item.nodeid)
    extra_info: dict[str, Any] | None = item.stash.get(extra_info_key, None)
    return _TestRecord(
        module=module,
        test=test,
        code_hash=fixture.code_hash,
        source_digest=fixture.source_digest,
        results=[(r.measurement, r.comparison) for r in fixture.results],
        extra_info=dict(extra_info or {}),
        location=(item.location[0], (item.location[1] or 0) + 1),
    )


def _transported(payload: dict[str, Any]) -> str | dict[str, Any]:
    """What a worker's report carries: the payload as one JSON string, which pytest-xdist's
    serializer passes at once where it walks a dict object by object (several times
    json's cost per test); the dict itself where JSON would not give it back as it is (a
    tuple or a number as a key in a probe's details)."""
    try:
        text = json.dumps(payload)
    except (TypeError, ValueError):  # not JSON data: as before, for execnet to judge
        return payload
    return text if json.loads(text) == payload else payload


def _record_from(payload: dict[str, Any]) -> _TestRecord:
    """A test's record from what its call report carried (``report.perfgate``)."""
    from ..model import Comparison, Measurement

    location = payload.get("location")
    return _TestRecord(
        module=payload["module"],
        test=payload["test"],
        code_hash=payload["code_hash"],
        source_digest=payload.get("source_digest"),
        extra_info=dict(payload.get("extra_info", {})),
        results=[
            (Measurement.from_dict(r["measurement"]), Comparison.from_dict(r["comparison"]))
            for r in payload["results"]
        ],
        location=None if location is None else (str(location[0]), int(location[1])),
    )


def _code_identity(item: pytest.Item, stored: Iterable[BaselineEntry]) -> CodeIdentity:
    """The test function's code hash: the one stored with its baselines where they were
    recorded from the same file text (no parse), else taken from its source."""
    from ..code_hash import identify

    return identify(getattr(item, "obj", None), [(e.code_hash, e.source_digest) for e in stored])
