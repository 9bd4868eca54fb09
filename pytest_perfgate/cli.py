"""The ``perfgate`` command. Never imports the pytest layer: it shares settings.py instead."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import ab
from .baseline import BaselineError, BaselineStore, write_atomically
from .compare import compare_runs, recorded_settings
from .gate import GatePolicy, baseline_figure
from .importers import SavedRunError, import_saved_runs
from .model import Comparison, format_quantity
from .report import github
from .report.hints import GENERIC_REFRESH
from .report.markdown import render_markdown
from .report.summary import look_texts
from .report.terminal import render_table, verdict_counts
from .results import ResultsError, RunResults, read_results, write_results
from .settings import OPTIONS_BY_NAME, Settings, SettingsError, read_pyproject


def main(argv: Sequence[str] | None = None) -> int:
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
    args = parser.parse_args(argv)
    if args.command == "compare":
        return _compare(args)
    if args.command == "report":
        return _report(args)
    if args.command == "ab":
        return _ab(args)
    if args.command == "calibrate":
        return _calibrate(args)
    if args.command == "import-benchmark":
        return _import_benchmark(args.paths, args.baseline_dir)
    if args.command == "show":
        try:
            return _show(args.baseline_dir)
        except BrokenPipeError:  # `perfgate show | head`: the reader left, not an error
            sys.stderr.close()
            return 0
    parser.print_help()
    return 2


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
        "--rounds", type=int, default=3, help="runs of each side, alternating (default: 3)"
    )
    for name in ("threshold", "alpha", "run_noise"):
        option = OPTIONS_BY_NAME[name]
        parser.add_argument(f"--{name.replace('_', '-')}", metavar=option.metavar, help=option.help)
    parser.add_argument("--json", type=Path, help="write the judged results file here")
    parser.add_argument("--markdown", type=Path, help="write the Markdown report here")
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
    for path in (args.json, args.markdown):
        problem = None if path is None else output_problem(path)
        if problem:
            print(f"perfgate ab: error: cannot write {path} ({problem})", file=sys.stderr)
            return 2
    if args.rounds < 1:
        print(
            f"perfgate ab: error: --rounds must be at least 1, got {args.rounds}", file=sys.stderr
        )
        return 2
    try:
        settings = Settings.resolve(
            read_pyproject(Path("pyproject.toml")),
            {"threshold": args.threshold, "alpha": args.alpha, "run_noise": args.run_noise},
        )
    except SettingsError as error:
        print(f"perfgate ab: {error}", file=sys.stderr)
        return 2
    candidate_dir = Path.cwd()
    try:
        with (
            ab.base_worktree(candidate_dir, args.base) as base_dir,
            tempfile.TemporaryDirectory(prefix="perfgate-ab-") as scratch,
        ):
            outcome = ab.run_ab(
                _pytest_command(args.pytest_command),
                candidate_dir=candidate_dir,
                base_dir=base_dir / candidate_dir.relative_to(ab.repository_root(candidate_dir)),
                rounds=args.rounds,
                policy=GatePolicy(
                    threshold=settings.threshold,
                    alpha=settings.alpha,
                    run_noise=settings.run_noise,
                    tests=0,  # set by run_ab, once the number of measured tests is known
                ),
                scratch=Path(scratch),
                progress=lambda line: print(line, file=sys.stderr, flush=True),
            )
    except ab.ABError as error:
        print(f"perfgate ab: {error}", file=sys.stderr)
        return 2
    return _ab_report(outcome, args)


def _ab_report(outcome: ab.ABOutcome, args: argparse.Namespace) -> int:
    comparisons = outcome.comparisons
    print(render_table(comparisons, width=shutil.get_terminal_size().columns))
    print(f"perfgate ab: {verdict_counts(comparisons)} (base {args.base}, {args.rounds} rounds)")
    _print_explanations(comparisons)
    for problem in outcome.problems:
        print(f"perfgate ab: {problem}")
    candidate = next((r.results for r in outcome.runs if r.side == "candidate" and r.results), None)
    written = True
    if candidate is not None and (args.json or args.markdown):
        judged = replace(candidate, tests=tuple(outcome.tests))
        if args.json:
            written = _saved(args.json, lambda: write_results(args.json, judged), "ab", "results")
        if args.markdown:
            text = render_markdown(judged)
            written = _write(args.markdown, text, "ab", "Markdown report") and written
    if not written:
        return 2
    return 1 if outcome.regressed else 0


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
