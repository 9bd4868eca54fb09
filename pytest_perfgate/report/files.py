"""Report files on request (``--perf-json``, ``--perf-markdown``, ``--perf-html``): each
rendered from the run's results and written atomically, with one message per file."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from ..baseline import write_atomically
from ..results import RunResults, results_json
from ..settings import Settings
from . import github
from .hints import GENERIC_REFRESH

#: Renders a run's results as a file's text.
Renderer = Callable[[RunResults], str]


def write_reports(
    results: Callable[[], RunResults],
    settings: Settings,
    root: Path,
    *,
    interrupted: bool,
    refresh_command: str = GENERIC_REFRESH,
) -> list[str]:
    """Write every report the settings ask for under ``root``; returns what was done, a
    line per file. An interrupted run writes none: half a run would read as a whole one.
    ``refresh_command`` is the run's own command turned into a refresh, for the hints."""
    from .html import render_html
    from .markdown import render_markdown

    markdown = partial(render_markdown, refresh_command=refresh_command)
    reports: list[tuple[str, str, Renderer]] = [
        ("results", settings.json, results_json),
        ("Markdown report", settings.markdown, markdown),
        ("HTML report", settings.html, partial(render_html, refresh_command=refresh_command)),
    ]
    lines: list[str] = []
    for what, name, render in reports:
        if not name:
            continue
        path = root / name
        if interrupted:
            lines.append(f"perfgate: run interrupted: {path} was not written")
            continue
        text = render(results())
        lines.append(write_report(path, text, what))
        if render is markdown:
            lines.extend(append_step_summary(text))
    return lines


def write_report(path: Path, text: str, what: str) -> str:
    """Write one report atomically; returns the line that says so, or why it was not."""
    try:
        write_atomically(path, text)
    except OSError as error:
        return f"perfgate: cannot write the {what} to {path} ({error.strerror or error})"
    return f"perfgate: {what} written to {path}"


def append_step_summary(markdown: str) -> list[str]:
    """Under GitHub Actions, the Markdown report goes on the job's summary page too."""
    try:
        summary = github.append_step_summary(markdown)
    except OSError as error:
        return [f"perfgate: cannot append to the job summary ({error.strerror or error})"]
    return [] if summary is None else [f"perfgate: Markdown report appended to {summary}"]
