"""The ``perfgate`` command. Never imports the pytest layer: it shares settings.py instead."""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ab
from .baseline import BaselineError, BaselineStore, write_atomically
from .compare import compare_runs, recorded_settings
from .gate import GatePolicy, baseline_figure
from .importers import SavedRunError, import_saved_runs
from .model import Comparison, format_quantity
from .paired import PAIRED_THRESHOLD, PairRules
from .report import github
from .report.hints import GENERIC_REFRESH
from .report.markdown import render_markdown
from .report.summary import look_texts
from .report.terminal import render_table, verdict_counts
from .results import ResultsError, RunResults, read_results, write_results
from .settings import OPTIONS_BY_NAME, Settings, SettingsError, read_pyproject

if TYPE_CHECKING:  # the history's values, for the history commands' annotations
    from .history.model import Series
    from .history.views import HistoryView


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    run = _COMMANDS.get(args.command)
    if run is None:
        parser.print_help()
        return 2
    return run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfgate", description="pytest-perfgate: inspect performance baselines."
    )
    try:
        version = importlib.metadata.version("pytest-perfgate")
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        version = "(not installed)"
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    show = commands.add_parser("show", help="list the baselines in a directory")
    show.add_argument("baseline_dir", nargs="?", default="baselines", type=Path)
    importer = commands.add_parser(
        "import-benchmark",
        help="turn pytest-benchmark saved runs (.benchmarks/**/*.json) into baselines",
    )
    importer.add_argument("paths", nargs="+", type=Path, help="saved-run files or directories")
    importer.add_argument(
        "--baseline-dir",
        default="baselines",
        type=Path,
        help="where to write baselines (default: baselines)",
    )
    ab_parser = commands.add_parser(
        "ab",
        help="same-job A/B: run the perf tests on a base ref and on this checkout, "
        "alternately, and judge the difference",
        description="Example: perfgate ab --base origin/main -- pytest example_suite",
    )
    _ab_arguments(ab_parser)
    _calibrate_arguments(
        commands.add_parser(
            "calibrate",
            help="run the suite N times on this runner (refreshing its baselines) and say "
            "per measurement its run-to-run noise and the smallest change the gate can see",
            description="Example: perfgate calibrate --runs 5 -- pytest tests/perf",
        )
    )
    _compare_arguments(
        commands.add_parser(
            "compare",
            help="judge a candidate results file (--perf-json) against a base one",
            description="Judge each measurement of CANDIDATE against the same test's "
            "measurement in BASE, with the gate's statistics. Exit status: 1 if one "
            "REGRESSED, 0 otherwise, 2 on bad input. The decision options default to what "
            "CANDIDATE was run with (each test's own threshold included).",
        )
    )
    _report_arguments(
        commands.add_parser(
            "report",
            help="write the Markdown or HTML report of a results file",
            description="Write the reports of a results file (--perf-json); without "
            "--markdown or --html, print the Markdown report.",
        )
    )
    _history_arguments(
        commands.add_parser(
            "history",
            help="the run history: import results files, list runs",
            description="The run history (an SQLite file or a PostgreSQL URL): --history, "
            "else [tool.perfgate] history_db, else .perfgate/history.sqlite.",
        )
    )
    _dashboard_and_brief_commands(commands)
    _merge_arguments(
        commands.add_parser(
            "merge",
            help="one results file from the shards of a split suite",
            description="Join the results files of the shards of one suite run (pytest-split, "
            "a CI matrix) and re-judge their regressions at the level of the whole suite. "
            "Exit status: 1 if one REGRESSED, 0 otherwise, 2 on bad input.",
        )
    )
    return parser


def _show_command(args: argparse.Namespace) -> int:
    try:
        return _show(args.baseline_dir)
    except BrokenPipeError:  # `perfgate show | head`: the reader left, not an error
        sys.stderr.close()
        return 0


def _show(root: Path) -> int:
    store = BaselineStore(root)
    files = store.files()
    if not files:
        print(f"perfgate: no baseline files under {root}", file=sys.stderr)
        return 2
    status = 0
    for path in files:
        module = str(path.relative_to(root).with_suffix(".py"))
        try:
            loaded = store.load(module)
        except BaselineError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 2
            continue
        for test, measurements in sorted(loaded.tests.items()):
            for name, entry in sorted(measurements.items()):
                label = f"{module}::{test}" + ("" if name == "time" else f" [{name}]")
                figure = format_quantity(baseline_figure(entry), entry.unit)
                print(
                    f"{label}  {entry.statistic} {figure}  "
                    f"n={entry.summary.n}  runs={len(entry.history)}  "
                    f"recorded {entry.recorded_at or '?'}"
                )
    return status


def _import_benchmark(paths: list[Path], root: Path) -> int:
    if root.exists() and not root.is_dir():
        print(f"perfgate import-benchmark: error: {root}: not a directory", file=sys.stderr)
        return 2
    try:
        report = import_saved_runs(paths, BaselineStore(root))
    except SavedRunError as error:
        print(f"perfgate import-benchmark: error: {error}", file=sys.stderr)
        return 2
    if not report.imported:
        print(
            "perfgate import-benchmark: no benchmarks found in " + ", ".join(map(str, paths)),
            file=sys.stderr,
        )
        return 2
    print(
        f"imported {len(report.imported)} benchmark(s) from {len(report.files)} saved "
        f"run(s) into {root}"
    )
    for label in report.imported:
        print(f"  {label}")
    if report.summary_only:
        print(
            f"{len(report.summary_only)} of them are summary-only: their runs were saved "
            "without --benchmark-save-data, so only the median is known and the gate "
            "cannot see the spread of those runs. Save with --benchmark-save-data, or "
            "refresh with `pytest --perf-update-baselines`, for full baselines."
        )
    return 0


# -- compare and report ----------------------------------------------------------------------

#: The decision options of `perfgate compare`, parsed as settings.py parses them.
COMPARE_OPTIONS = ("threshold", "alpha", "run_noise", "on_mismatch", "normalize_margin")


def _option_type(name: str) -> Any:
    parse = OPTIONS_BY_NAME[name].parse

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:  # argparse names the flag and exits with status 2
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def _compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("base", type=Path, metavar="BASE.json", help="results file of the base")
    parser.add_argument(
        "candidate", type=Path, metavar="CANDIDATE.json", help="results file to judge"
    )
    for name in COMPARE_OPTIONS:
        option = OPTIONS_BY_NAME[name]
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=_option_type(name),
            metavar=option.metavar,
            # Here the default is the candidate run's setting, not the plugin's default.
            help=re.sub(r" ?\(default: [^)]*\)", "", option.help),
        )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the judged results here")
    parser.add_argument(
        "--markdown", type=Path, metavar="PATH", help="write the Markdown report here"
    )


def _report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, metavar="RESULTS.json")
    parser.add_argument(
        "--markdown", type=Path, metavar="PATH", help="write the Markdown report here"
    )
    parser.add_argument(
        "--html", type=Path, metavar="PATH", help="write the self-contained HTML report here"
    )


def _read(path: Path, command: str) -> RunResults | None:
    try:
        return read_results(path)
    except ResultsError as error:
        print(f"perfgate {command}: error: {error}", file=sys.stderr)
        return None


def _write(path: Path, text: str, command: str, what: str) -> bool:
    return _saved(path, lambda: write_atomically(path, text), command, what)


def _saved(path: Path, write: Callable[[], None], command: str, what: str) -> bool:
    """Run ``write`` (which writes ``path``) and say so; False, with the reason, on error."""
    try:
        write()
    except OSError as error:
        print(
            f"perfgate {command}: error: cannot write {path} ({error.strerror or error})",
            file=sys.stderr,
        )
        return False
    print(f"perfgate {command}: {what} written to {path}")
    return True


def _compare(args: argparse.Namespace) -> int:
    base, candidate = _read(args.base, "compare"), _read(args.candidate, "compare")
    if base is None or candidate is None:
        return 2
    overrides = {name: getattr(args, name) for name in COMPARE_OPTIONS}
    try:
        settings = recorded_settings(candidate, overrides)
    except SettingsError as error:
        print(f"perfgate compare: error: {args.candidate}: {error}", file=sys.stderr)
        return 2
    compared = compare_runs(
        base,
        candidate,
        settings,
        threshold_given=args.threshold is not None,
        base_name=str(args.base),
    )
    comparisons = compared.comparisons
    if comparisons:
        print(render_table(comparisons, width=shutil.get_terminal_size().columns), end="")
        print(f"perfgate compare: {verdict_counts(comparisons)}")
    else:
        print(f"perfgate compare: {args.candidate} holds no measurements")
    _print_explanations(comparisons)
    for label in compared.only_in_base:
        print(f"  only in {args.base}: {label}")
    if github.running_in_actions():
        for line in github.workflow_commands(compared.results):
            print(line)
    results = compared.results
    written = not args.json or _saved(
        args.json, lambda: write_results(args.json, results), "compare", "results"
    )
    if args.markdown:
        text = render_markdown(results)
        written = _write(args.markdown, text, "compare", "Markdown report") and written
        try:
            github.append_step_summary(text)
        except OSError as error:
            print(f"perfgate compare: cannot append to the job summary ({error})", file=sys.stderr)
    if not written:
        return 2
    return 1 if compared.regressed else 0


def _report(args: argparse.Namespace) -> int:
    run = _read(args.results, "report")
    if run is None:
        return 2
    if not args.markdown and not args.html:
        print(render_markdown(run), end="")
        return 0
    ok = True
    if args.markdown:
        ok = _write(args.markdown, render_markdown(run), "report", "Markdown report") and ok
    if args.html:
        # Imported here: the HTML report's plotting library is needed for --html only.
        from .report.html import render_html

        ok = _write(args.html, render_html(run), "report", "HTML report") and ok
    return 0 if ok else 2


def _print_explanations(comparisons: Sequence[Comparison]) -> None:
    """One line on each verdict that a person should read: why it is not a pass (a reason
    that several share, once with a count)."""
    for text in look_texts(comparisons, GENERIC_REFRESH):
        print(text)


# -- calibrate ---------------------------------------------------------------------------------


def _calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs", type=int, default=5, help="suite runs, each a refresh (default: 5)"
    )
    parser.add_argument(
        "--baseline-dir",
        type=Path,
        help="where the suite keeps its baselines (default: baseline_dir of pyproject.toml)",
    )
    for name in ("alpha", "run_noise"):
        option = OPTIONS_BY_NAME[name]
        parser.add_argument(f"--{name.replace('_', '-')}", metavar=option.metavar, help=option.help)
    parser.add_argument("--json", type=Path, help="write the calibration here, as JSON")
    parser.add_argument(
        "pytest_command",
        nargs=argparse.REMAINDER,
        help="after --: the pytest command that runs the suite (default: python -m pytest)",
    )


def _calibrate(args: argparse.Namespace) -> int:
    """Run ``perfgate calibrate``: 0 when calibrated, 2 when it could not be."""
    from . import calibrate

    problem = None if args.json is None else output_problem(args.json)
    if problem:
        print(f"perfgate calibrate: error: cannot write {args.json} ({problem})", file=sys.stderr)
        return 2
    if args.runs < 2:
        print("perfgate calibrate: error: --runs must be at least 2", file=sys.stderr)
        return 2
    try:
        settings = Settings.resolve(
            read_pyproject(Path("pyproject.toml")),
            {"alpha": args.alpha, "run_noise": args.run_noise},
        )
    except SettingsError as error:
        print(f"perfgate calibrate: {error}", file=sys.stderr)
        return 2
    if args.runs > settings.history:
        print(
            f"perfgate calibrate: note: baselines keep {settings.history} runs of history; "
            f"set history = {args.runs} in [tool.perfgate] to keep all {args.runs}",
            file=sys.stderr,
        )
    store = BaselineStore(args.baseline_dir or Path(settings.baseline_dir))
    try:
        calibration = calibrate.calibrate(
            _pytest_command(args.pytest_command),
            args.runs,
            store,
            alpha=settings.alpha,
            run_noise=settings.run_noise,
            history=settings.history,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except calibrate.CalibrationError as error:
        print(f"perfgate calibrate: {error}", file=sys.stderr)
        return 2
    print(calibrate.render_calibration(calibration))
    if args.json:
        text = json.dumps(calibration.to_dict(), indent=1, allow_nan=False) + "\n"
        if not _write(args.json, text, "calibrate", "calibration"):
            return 2
    return 0


# -- ab ----------------------------------------------------------------------------------------


def _ab_arguments(parser: argparse.ArgumentParser) -> None:
    """``perfgate ab``'s arguments (the decision options share settings.py's parsing)."""
    parser.add_argument(
        "--base", required=True, help="the git ref to compare with, e.g. origin/main"
    )
    parser.add_argument(
        "--whole-runs",
        action="store_true",
        help="alternate whole pytest runs of each side instead of pairing batches of samples",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="paired: pairs of processes, started together and taking turns (default: "
        f"{PairRules().rounds}); with --whole-runs, runs of each side (default: 3)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="paired: measuring time of the whole suite at most (default: no cap)",
    )
    parser.add_argument(
        "--pair-time",
        type=float,
        default=PairRules().measurement_time,
        metavar="SECONDS",
        help="paired: measuring time of one measurement at most, all rounds together "
        f"(default: {PairRules().measurement_time:g})",
    )
    parser.add_argument(
        "--threshold",
        metavar=OPTIONS_BY_NAME["threshold"].metavar,
        help="practical threshold: relative changes below it do not count; 0.02 means 2%% "
        f"(default: [tool.perfgate] threshold, else {PAIRED_THRESHOLD:g} paired and "
        f"{Settings().threshold:g} with --whole-runs; a test's marker wins)",
    )
    for name in ("alpha", "run_noise"):
        option = OPTIONS_BY_NAME[name]
        parser.add_argument(f"--{name.replace('_', '-')}", metavar=option.metavar, help=option.help)
    parser.add_argument("--json", type=Path, help="write the judged results file here")
    parser.add_argument(
        "--history",
        metavar="PATH|URL",
        help="record the judged run in this run history (default: [tool.perfgate] history_db)",
    )
    parser.add_argument("--markdown", type=Path, help="write the Markdown report here")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="paired: let both sides run on any CPU (default: both on one shared CPU)",
    )
    parser.add_argument(
        "--pairs-json", type=Path, help="paired: write every measurement's batch levels here"
    )
    parser.add_argument(
        "pytest_command",
        nargs=argparse.REMAINDER,
        help="after --: the pytest command to run on both sides (default: python -m pytest)",
    )


def _pytest_command(given: Sequence[str]) -> list[str]:
    """The pytest command line ``perfgate ab`` runs on both sides, with this Python."""
    command = [a for a in given if a != "--"] or [sys.executable, "-m", "pytest"]
    if command[0] == "pytest":
        command = [sys.executable, "-m", "pytest", *command[1:]]
    return command


def _ab(args: argparse.Namespace) -> int:
    """Run ``perfgate ab``: exit 1 on a regression, 0 otherwise, 2 when it cannot run."""
    # Checked before the long run: a report that cannot be written fails in seconds, not
    # after every round, and never with 1, the status that means "regressed".
    for path in (args.json, args.markdown, args.pairs_json):
        problem = None if path is None else output_problem(path)
        if problem:
            print(f"perfgate ab: error: cannot write {path} ({problem})", file=sys.stderr)
            return 2
    if args.rounds is None:
        args.rounds = 3 if args.whole_runs else PairRules().rounds
    if args.rounds < 1:
        print(
            f"perfgate ab: error: --rounds must be at least 1, got {args.rounds}", file=sys.stderr
        )
        return 2
    configured = read_pyproject(Path("pyproject.toml"))
    try:
        settings = Settings.resolve(
            configured,
            {"threshold": args.threshold, "alpha": args.alpha, "run_noise": args.run_noise},
        )
    except SettingsError as error:
        print(f"perfgate ab: {error}", file=sys.stderr)
        return 2
    try:
        rules = PairRules(
            alpha=settings.alpha,
            rounds=args.rounds,
            measurement_time=args.pair_time,
            total_time=args.budget,
        )
    except ValueError as error:
        print(f"perfgate ab: error: {error}", file=sys.stderr)
        return 2
    candidate_dir = Path.cwd()
    policy = GatePolicy(
        threshold=settings.threshold,
        alpha=settings.alpha,
        run_noise=settings.run_noise,
        tests=0,  # set once the number of measured tests is known
    )
    try:
        with (
            ab.base_worktree(candidate_dir, args.base) as base_dir,
            tempfile.TemporaryDirectory(prefix="perfgate-ab-") as scratch,
        ):
            base = base_dir / candidate_dir.relative_to(ab.repository_root(candidate_dir))
            command = _pytest_command(args.pytest_command)
            progress = functools.partial(print, file=sys.stderr, flush=True)
            if args.whole_runs:
                outcome = ab.run_ab(
                    command, candidate_dir=candidate_dir, base_dir=base, rounds=args.rounds,
                    policy=policy, scratch=Path(scratch), progress=progress,
                )  # fmt: skip
            else:
                command += ab.paired_worker_options(configured, args.threshold)
                outcome = ab.run_paired(
                    command, candidate_dir=candidate_dir, base_dir=base, rules=rules,
                    policy=policy, scratch=Path(scratch), progress=progress,
                    cpu=None if args.no_pin else ab.shared_cpu(),
                )  # fmt: skip
    except ab.ABError as error:
        print(f"perfgate ab: {error}", file=sys.stderr)
        return 2
    return _ab_report(outcome, args)


def _ab_report(outcome: ab.ABOutcome, args: argparse.Namespace) -> int:
    comparisons = outcome.comparisons
    print(render_table(comparisons, width=shutil.get_terminal_size().columns))
    how = f"{args.rounds} rounds" + ("" if args.whole_runs else ", paired")
    print(f"perfgate ab: {verdict_counts(comparisons)} (base {args.base}, {how})")
    _print_explanations(comparisons)
    for problem in outcome.problems:
        print(f"perfgate ab: {problem}")
    candidate = next((r.results for r in outcome.runs if r.side == "candidate" and r.results), None)
    written = True
    if candidate is not None:  # the run history, when one is named
        _ab_history(replace(candidate, tests=tuple(outcome.tests)), outcome, args.history)
    if candidate is not None and (args.json or args.markdown):
        judged = replace(candidate, tests=tuple(outcome.tests))
        if args.json:
            written = _saved(args.json, lambda: write_results(args.json, judged), "ab", "results")
        if args.markdown:
            text = render_markdown(judged)
            written = _write(args.markdown, text, "ab", "Markdown report") and written
    if args.pairs_json and outcome.paired:
        text = json.dumps(ab.pairs_document(outcome.paired), indent=1)
        written = _write(args.pairs_json, text + "\n", "ab", "pairs") and written
    if not written:
        return 2
    return 1 if outcome.regressed else 0


def _ab_history(judged: RunResults, outcome: ab.ABOutcome, given: str | None) -> None:
    """Record the judged A/B run in ``--history``, else ``[tool.perfgate] history_db``;
    a history that cannot be written is said, not fatal. Its wall time is the time the
    pytest runs of both sides took."""
    where = given or read_pyproject(Path("pyproject.toml")).get("history_db")
    if not where:
        return
    from .history.model import RunKind
    from .history.record import current_branch, history_target, record_results

    recording = record_results(
        history_target(str(where), Path.cwd()),
        judged,
        RunKind.AB,
        branch=current_branch(Path.cwd()),
        wall_seconds=sum(run.seconds for run in outcome.runs),
        source="perfgate ab",
    )
    print(recording.message, file=sys.stdout if recording.ok else sys.stderr)


# -- perfgate dashboard, perfgate brief (history/dashboard.py, history/brief.py) -----------


def _dashboard_and_brief_commands(commands: Any) -> None:
    """Add ``perfgate dashboard`` and ``perfgate brief`` to the subcommands."""
    _dashboard_arguments(
        commands.add_parser(
            "dashboard",
            help="write the history's static dashboard (trend plots, change points, budgets)",
            description="Write a static site of the run history into --out: an index of every "
            "measurement and a page each with its trend plot. It opens from file://.",
        )
    )
    _brief_arguments(
        commands.add_parser(
            "brief",
            help="write a one-page brief of a period of the history, for managers",
            description="What got slower and faster, the regressions the gate stopped, budgets "
            "at risk and what the perf jobs cost, in plain words.",
        )
    )


def _history_location_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--history",
        metavar="PATH|URL",
        help="the run history: a path, sqlite:///PATH or postgresql://... (default: "
        "[tool.perfgate] history_db, else .perfgate/history.sqlite)",
    )


def _dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    _history_location_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("perfgate-dashboard"),
        metavar="DIR",
        help="where to write the site (default: perfgate-dashboard)",
    )
    parser.add_argument(
        "--since",
        metavar="AGE|DATE",
        help="only runs since then: 90d, 12w, 6m, 1y or a date (default: the whole history)",
    )


def _brief_arguments(parser: argparse.ArgumentParser) -> None:
    _history_location_argument(parser)
    parser.add_argument(
        "--since",
        default="90d",
        metavar="AGE|DATE",
        help="the period's start: 90d, 12w, 6m, 1y or a date (default: 90d)",
    )
    parser.add_argument(
        "--price-per-hour",
        type=float,
        metavar="PRICE",
        help="what one machine-hour of the perf jobs costs, for the cost section",
    )
    parser.add_argument("--currency", default="$", help="written before prices (default: $)")
    parser.add_argument("--format", choices=("md", "html", "pdf"), default="md")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="where to write it (default: Markdown to the terminal, brief.html, brief.pdf)",
    )


def _read_history_for(
    args: argparse.Namespace, command: str, since: str | None
) -> HistoryView | None:
    """The analysed history, or None after saying why."""
    from .history.store import HistoryError
    from .history.views import parse_since, read_history

    now = datetime.now(timezone.utc)
    try:
        start = None if since is None else parse_since(since, now=now)
        where = history_location(args.history)
        return read_history(where, since=None if command == "brief" else start, now=now)
    except (ValueError, OSError, HistoryError, SettingsError) as error:
        print(f"perfgate {command}: error: {error}", file=sys.stderr)
        return None


def _dashboard(args: argparse.Namespace) -> int:
    from .history.dashboard import write_dashboard
    from .history.store import redacted

    history = _read_history_for(args, "dashboard", args.since)
    if history is None:
        return 2
    try:
        site = write_dashboard(
            history.views,
            args.out,
            generated_at=datetime.now(timezone.utc),
            source=redacted(history_location(args.history)),  # no password on the page
        )
    except OSError as error:
        print(f"perfgate dashboard: error: cannot write {args.out} ({error})", file=sys.stderr)
        return 2
    print(f"perfgate dashboard: {site.series} series, {site.pages} pages; open {site.index}")
    return 0


def _brief(args: argparse.Namespace) -> int:
    from .history import brief
    from .history.views import parse_since

    history = _read_history_for(args, "brief", args.since)
    if history is None:
        return 2
    now = datetime.now(timezone.utc)
    facts = brief.make_brief(
        history.views,
        history.runs,
        since=parse_since(args.since, now=now),
        until=now,
        price_per_hour=args.price_per_hour,
        currency=args.currency,
    )
    if args.format == "md":
        text = brief.render_brief_markdown(facts)
        if args.out is None:
            print(text, end="")
            return 0
        return 0 if _write(args.out, text, "brief", "brief") else 2
    if args.format == "html":
        path = args.out or Path("brief.html")
        return 0 if _write(path, brief.render_brief_html(facts), "brief", "brief") else 2
    path = args.out or Path("brief.pdf")
    try:
        brief.print_pdf(brief.render_brief_html(facts), path)
    except (brief.PdfError, OSError, subprocess.TimeoutExpired) as error:
        print(f"perfgate brief: error: {error}", file=sys.stderr)
        return 2
    print(f"perfgate brief: brief written to {path}")
    return 0


def output_problem(path: Path) -> str | None:
    """Why a report could not be written at ``path`` (None when it likely can): checked
    before a long run, so that the run is not lost at the end."""
    if path.is_dir():
        return "it is a directory"
    parent = path.parent if str(path.parent) else Path(".")
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is not writable"
    return None


# -- merge -----------------------------------------------------------------------------------


def _merge_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", type=Path, metavar="SHARD.json")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="PATH", help="the merged results file"
    )
    parser.add_argument(
        "--markdown", type=Path, metavar="PATH", help="write the Markdown report here"
    )
    parser.add_argument(
        "--history", metavar="PATH|URL", help="also record the merged run in this run history"
    )


def _merge(args: argparse.Namespace) -> int:
    from .merge import MergeError, Shard, merge_shards

    shards = []
    for path in args.shards:
        results = _read(path, "merge")
        if results is None:
            return 2
        shards.append(Shard(str(path), results))
    try:
        merged = merge_shards(shards)
    except MergeError as error:
        print(f"perfgate merge: error: {error}", file=sys.stderr)
        return 2
    comparisons = merged.results.comparisons
    if comparisons:
        print(render_table(comparisons, width=shutil.get_terminal_size().columns), end="")
    print(
        f"perfgate merge: {len(shards)} shards, {len(merged.results.tests)} tests, "
        f"{merged.decisions} decisions: {verdict_counts(comparisons)}"
    )
    for label in merged.downgraded:
        print(f"  {label}: REGRESSED in its shard, INCONCLUSIVE at the whole suite's level")
    _print_explanations(comparisons)
    results = merged.results
    written = _saved(args.output, lambda: write_results(args.output, results), "merge", "results")
    if args.markdown:
        written = _write(args.markdown, render_markdown(results), "merge", "Markdown report") and (
            written
        )
    if args.history:
        from .history.model import RunKind
        from .history.record import current_branch, record_results

        recording = record_results(
            args.history,
            results,
            RunKind.MERGED,
            branch=current_branch(Path.cwd()),
            wall_seconds=None,
            source=f"perfgate merge of {len(shards)} shards",
        )
        print(recording.message, file=sys.stdout if recording.ok else sys.stderr)
    if not written:
        return 2
    return 1 if merged.regressed else 0


# -- history import | list -------------------------------------------------------------------

#: ``perfgate history`` sub-commands of this block; the analysis block adds its own.
HistoryRunner = Callable[[argparse.Namespace], int]


def _history_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="history_command", metavar="COMMAND")
    runners: dict[str, HistoryRunner] = {"import": _history_import, "list": _history_list}
    importer = commands.add_parser(
        "import",
        help="record results files (--perf-json, CI artifacts) as runs",
        description="Record each results file as a run. A file imported before (same "
        "content) is skipped; a bad file is named and the others still imported (exit 2).",
    )
    importer.add_argument("paths", nargs="+", type=Path, metavar="RESULTS.json")
    importer.add_argument(
        "--kind",
        choices=[kind.value for kind in _run_kinds()],
        default="gate",
        help="what produced the files (default: gate)",
    )
    importer.add_argument("--branch", help="the branch the files measured (default: none)")
    lister = commands.add_parser("list", help="print the recorded runs, oldest first")
    lister.add_argument("--since", metavar="DAYS", type=_days, help="only the last DAYS days")
    runners.update(_history_analysis_commands(commands))
    for command in commands.choices.values():
        command.add_argument("--history", metavar="PATH|URL", help="the history to use")
    parser.set_defaults(history_runners=runners)


def _history_analysis_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> dict[str, HistoryRunner]:
    """The analysis block's ``perfgate history changes|forecast``: it adds their parsers
    to ``commands`` and returns the runner of each by name."""
    changes = commands.add_parser(
        "changes",
        help="print the change points of every measurement: when, how much, which commits",
        description="Change points (E-divisive means) of every measurement over the whole "
        "history; --since shows only the changes of the last DAYS days.",
    )
    changes.add_argument("--since", metavar="DAYS", type=_days, help="only the last DAYS days")
    forecast = commands.add_parser(
        "forecast",
        help="print each budgeted measurement's trend and its chance of a breach by quarter",
        description="For every measurement with a budget: its trend since the last change "
        "point and, for this quarter and the next, the chance that a run is past the budget. "
        "With --growth, --load and --capacity: when the growing load outgrows the capacity.",
    )
    forecast.add_argument("--quarters", type=int, default=4, help="quarters ahead (default: 4)")
    forecast.add_argument(
        "--growth", type=float, metavar="FRACTION", help="load growth per quarter, 0.15 for 15%%"
    )
    forecast.add_argument("--load", type=float, help="today's load, e.g. requests per second")
    forecast.add_argument(
        "--capacity",
        type=float,
        help="for a cost per unit of load: the capacity in load x unit (e.g. busy cores); "
        "for a throughput: the number of instances",
    )
    forecast.add_argument(
        "--test", metavar="TEXT", default="", help="only measurements whose id contains TEXT"
    )
    return {"changes": _history_changes, "forecast": _history_forecast}


def _history_changes(args: argparse.Namespace) -> int:
    from datetime import datetime, timedelta, timezone

    from .history.changepoints import change_points
    from .history.store import open_history
    from .model import format_quantity

    with open_history(history_location(args.history)) as history:
        everything = history.series()
    since = None if args.since is None else datetime.now(timezone.utc) - timedelta(args.since)
    found = [
        (change, series)
        for series in everything
        for change in change_points(series)
        if since is None or change.at >= since
    ]
    found.sort(key=lambda pair: pair[0].at, reverse=True)
    for change, series in found:
        commits = f"{change.commit_before or '?'}..{change.commit_after or '?'}"
        print(
            f"{change.at:%Y-%m-%d}  {_series_label(series)}  {change.change:+.1%} "
            f"(95% CI {change.change_low:+.1%}..{change.change_high:+.1%})  "
            f"{format_quantity(change.before, series.unit)} -> "
            f"{format_quantity(change.after, series.unit)}  {commits}  p={change.p_value:.1g}  "
            f"{'slower' if change.regression else 'faster'}"
        )
    window = "" if args.since is None else f" in the last {args.since:g} days"
    print(f"perfgate history changes: {len(found)} change(s){window} in {len(everything)} series")
    return 0


def _series_label(series: Series) -> str:
    name = "" if series.name == "time" else f" [{series.name}]"
    return f"{series.test_id}{name} ({series.machine_class})"


def _history_forecast(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from .history.store import open_history

    capacity = (args.growth, args.load, args.capacity)
    if any(v is not None for v in capacity) and any(v is None for v in capacity):
        print("perfgate history forecast: error: --growth, --load and --capacity go together")
        return 2
    if not 1 <= args.quarters <= 40:
        print("perfgate history forecast: error: --quarters must be from 1 to 40")
        return 2
    with open_history(history_location(args.history)) as history:
        chosen = [s for s in history.series() if args.test in f"{s.test_id}::{s.name}"]
    now = datetime.now(timezone.utc)
    budgeted = 0
    for series in chosen:
        lines = _budget_lines(series, args.quarters, now)
        if args.growth is not None:
            lines += _capacity_lines(series, args, now)
        if lines:
            budgeted += series.budget is not None
            print(f"{_series_label(series)}")
            print("\n".join(f"  {line}" for line in lines))
    print(
        f"perfgate history forecast: {budgeted} of {len(chosen)} series have a budget "
        "(declare them with @pytest.mark.perf(budget=...) or [tool.perfgate.budgets])"
    )
    return 0


def _budget_lines(series: Series, quarters: int, now: datetime) -> list[str]:
    from .history.forecast import budget_outlook
    from .model import format_quantity

    outlook = budget_outlook(series, quarters, now=now)
    if outlook is None:
        return []
    unit = series.unit
    state = "OVER BUDGET in the latest run; " if outlook.over_budget else ""
    breach = (
        outlook.first_breach.label if outlook.first_breach else f"not within {quarters} quarters"
    )
    return [
        f"budget {format_quantity(outlook.budget, unit)}: {state}level "
        f"{format_quantity(outlook.current, unit)} ({outlook.headroom:+.1%} headroom), trend "
        f"{outlook.trend.change_per_quarter:+.1%} a quarter over {outlook.trend.points} runs",
        "chance of a breach: "
        + ", ".join(f"{q.quarter.label} {q.breach_probability:.0%}" for q in outlook.quarters)
        + f"; expected breach: {breach}",
    ]


def _capacity_lines(series: Series, args: argparse.Namespace, now: datetime) -> list[str]:
    from .history.forecast import capacity_outlook

    try:
        outlook = capacity_outlook(
            series, args.growth, args.capacity, load=args.load, quarters=args.quarters, now=now
        )
    except ValueError as error:
        return [f"capacity: {error}"]
    if outlook is None:
        return []
    runs_out = (
        outlook.runs_out.label if outlook.runs_out else f"not within {args.quarters} quarters"
    )
    return [
        f"capacity at {args.growth:.0%} more load a quarter: "
        f"{outlook.utilisation_now:.0%} used now; "
        + ", ".join(f"{q.quarter.label} {q.utilisation:.0%}" for q in outlook.quarters)
        + f"; runs out: {runs_out}"
    ]


def _run_kinds() -> list[Any]:
    from .history.model import RunKind

    return list(RunKind)


def _days(text: str) -> float:
    try:
        days = float(text.removesuffix("d"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of days, got {text!r}") from None
    if not 0 < days < 1e6:
        raise argparse.ArgumentTypeError(f"must be a positive number of days, got {text!r}")
    return days


def history_location(given: str | None) -> str:
    """The history a command uses: given, else [tool.perfgate] history_db (relative to
    pyproject.toml's directory), else .perfgate/history.sqlite."""
    from .history.store import DEFAULT_HISTORY

    if given:
        return given
    configured = read_pyproject(Path("pyproject.toml")).get("history_db")
    return str(configured) if configured else str(DEFAULT_HISTORY)


def _history(args: argparse.Namespace) -> int:
    runner = args.history_runners.get(args.history_command)
    if runner is None:
        which = ", ".join(args.history_runners)
        print(f"perfgate history: error: say which command: {which}", file=sys.stderr)
        return 2
    from .history.store import HistoryError

    try:
        return int(runner(args))
    except (HistoryError, SettingsError) as error:
        print(f"perfgate history: error: {error}", file=sys.stderr)
        return 2


def _history_import(args: argparse.Namespace) -> int:
    from .history.model import RunKind
    from .history.record import import_results_files
    from .history.store import open_history

    with open_history(history_location(args.history)) as history:
        report = import_results_files(history, args.paths, RunKind(args.kind), branch=args.branch)
        where = history.location
    for path, run_id in report.imported:
        print(f"imported {path} as run {run_id}")
    for path, run_id in report.skipped:
        print(f"skipped {path}: already imported as run {run_id}")
    for error in report.errors:
        print(f"perfgate history import: error: {error}", file=sys.stderr)
    print(
        f"perfgate history import: {len(report.imported)} imported, {len(report.skipped)} "
        f"already there, {len(report.errors)} bad, into {where}"
    )
    return 2 if report.errors else 0


def _history_list(args: argparse.Namespace) -> int:
    from datetime import datetime, timedelta, timezone

    from .history.store import open_history
    from .model import printable

    since = None if args.since is None else datetime.now(timezone.utc) - timedelta(args.since)
    location = history_location(args.history)
    plain = location.removeprefix("sqlite:///")
    if "://" not in plain and not Path(plain).exists():  # listing creates no history
        print(f"perfgate history: no history at {plain}")
        return 0
    with open_history(location) as history:
        runs, tallies = history.runs(since), history.tallies()
        where = history.location
    if not runs:
        print(f"perfgate history: no runs recorded in {where}")
        return 0
    print("run  started (UTC)        kind      commit      branch           machine class")
    for run in runs:
        measured, regressed = tallies.get(run.run_id or 0, (0, 0))
        print(
            f"{run.run_id:<4} {run.started_at:%Y-%m-%d %H:%M:%S}  {run.kind.value:<9} "
            f"{(run.commit or '-')[:10]:<11} {printable(run.branch or '-')[:16]:<16} "
            f"{run.machine_class}  {measured} measurements"
            + (f", {regressed} REGRESSED" if regressed else "")
        )
    return 0


#: What each subcommand runs (its arguments are in _parser).
_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "show": _show_command,
    "import-benchmark": lambda args: _import_benchmark(args.paths, args.baseline_dir),
    "ab": _ab,
    "calibrate": _calibrate,
    "compare": _compare,
    "report": _report,
    "history": _history,
    "dashboard": _dashboard,
    "brief": _brief,
    "merge": _merge,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
