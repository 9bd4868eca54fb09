"""The brief (perfgate brief): the facts of a period, in plain words, as Markdown and HTML."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from history_render_support import (
    NOW,
    START,
    Page,
    browse,
    change_at,
    flat_view,
    needs_chromium,
    record_stepped_history,
    series,
    stepped_view,
)

from pytest_perfgate.cli import main
from pytest_perfgate.history.brief import (
    Brief,
    brief_sections,
    make_brief,
    print_pdf,
    render_brief_html,
    render_brief_markdown,
)
from pytest_perfgate.history.model import RecordedRun, RunKind
from pytest_perfgate.history.views import SeriesView, parse_since


def runs(count: int = 40, *, kind: RunKind = RunKind.GATE) -> list[RecordedRun]:
    """Runs 1..count, four days apart from START, matching ``series()``'s run ids."""
    return [
        RecordedRun(
            kind=kind,
            started_at=START + timedelta(days=4 * i),
            commit=f"c{i:07d}",
            branch="main",
            machine_class="x86_64-4c-linux" if i % 4 else "aarch64-8c-linux",
            wall_seconds=None if i == 3 else 600.0,
            run_id=1 + i,
        )
        for i in range(count)
    ]


def faster_view() -> SeriesView:
    s = series("t::fast", levels=(2e-3,) * 30 + (1.5e-3,) * 10)
    return SeriesView(
        series=s, changes=(change_at(s, 30, -0.25),), forecast=(), outlook=None, change_since=None
    )


def stopped_view(kind_of_run: int) -> SeriesView:
    s = series("t::stopped", levels=(1e-3,) * 39 + (1.3e-3,), verdicts={39: "REGRESSED"})
    return SeriesView(series=s, changes=(), forecast=(), outlook=None, change_since=None)


def a_brief(**kwargs: object) -> Brief:
    views = [stepped_view(), faster_view(), flat_view("t::flat"), stopped_view(39)]
    arguments: dict[str, object] = {
        "since": NOW - timedelta(days=90),
        "until": NOW,
        "price_per_hour": 2.5,
    }
    arguments.update(kwargs)
    return make_brief(views, runs(), **arguments)  # type: ignore[arg-type]


def test_changes_inside_the_period_are_told_each_way_largest_first() -> None:
    brief = a_brief()
    assert [c.label for c in brief.slower] == ["tests/test_parse.py::test_parse"]
    assert [c.label for c in brief.faster] == ["t::fast"]
    text = render_brief_markdown(brief)
    assert "20.0% slower (between 19.0% and 21.0%), 1 ms → 1.2 ms, since 2026-09-09" in text
    assert "commits c0000024..c0000025" in text
    assert "t::fast on x86\\_64-4c-linux: 25.0% faster" in text


def test_changes_before_the_period_are_left_out() -> None:
    brief = a_brief(since=NOW - timedelta(days=30))
    assert brief.slower == ()
    assert brief.faster == ()
    assert "Nothing got measurably slower." in render_brief_markdown(brief)


def test_regressions_the_gate_stopped_come_from_gating_runs_only() -> None:
    brief = a_brief()
    assert [(s.label, s.commit) for s in brief.stopped] == [("t::stopped", "c0000039")]
    assert brief.stopped[0].ratio == pytest.approx(1.3)
    views = [stopped_view(39)]
    refreshed = make_brief(
        views, runs(kind=RunKind.REFRESH), since=NOW - timedelta(days=90), until=NOW
    )
    assert refreshed.stopped == ()


def test_budgets_at_risk_name_their_quarter() -> None:
    text = render_brief_markdown(a_brief())
    assert "at risk: 2027 Q1 (70%); budget 1.3 ms, now 1.2 ms" in text


def test_machine_time_is_summed_per_class_and_priced() -> None:
    brief = a_brief()
    # Runs in the 90 days to NOW: those from day 92 on (i >= 23), 17 of them.
    by_class = {c.machine_class: c for c in brief.costs}
    assert sum(c.runs for c in brief.costs) == brief.runs == 17
    assert by_class["aarch64-8c-linux"].runs == 4  # i = 24, 28, 32, 36
    assert by_class["x86_64-4c-linux"].hours == pytest.approx(13 * 600 / 3600)
    text = render_brief_markdown(brief)
    assert "x86\\_64-4c-linux: 13 runs, 2.17 machine-hours, \\$5.42." in text
    assert "The perf jobs used 2.83 machine-hours (\\$7.08)." in text


def test_untimed_runs_are_said_not_guessed() -> None:
    brief = a_brief(since=START)
    assert sum(c.untimed_runs for c in brief.costs) == 1
    assert "(1 without a recorded duration, not counted)" in render_brief_markdown(brief)


def test_without_a_price_the_cost_says_how_to_get_one() -> None:
    text = render_brief_markdown(a_brief(price_per_hour=None))
    assert "give --price-per-hour for a cost" in text
    assert "$" not in text


def test_an_empty_history_gives_a_brief_that_says_so() -> None:
    brief = make_brief([], [], since=NOW - timedelta(days=90), until=NOW)
    titles = [s.title for s in brief_sections(brief)]
    assert titles[0] == "In short"
    text = render_brief_markdown(brief)
    assert "0 perf runs measured 0 series." in text
    assert "No perf run was recorded in this period." in text


def test_the_html_brief_escapes_test_ids() -> None:
    view = stepped_view()
    hostile = replace(view, series=replace(view.series, test_id="<img src=x onerror=alert(1)>"))
    brief = make_brief([hostile], runs(), since=NOW - timedelta(days=90), until=NOW)
    page = Page()
    page.feed(render_brief_html(brief))
    assert "img" not in page.tags
    assert page.title == "Performance brief, 2026-08-30 to 2026-11-28"


@needs_chromium
def test_the_html_brief_opens_in_a_browser_and_prints_to_pdf(tmp_path: Path) -> None:
    html = tmp_path / "brief.html"
    html.write_text(render_brief_html(a_brief()), encoding="utf-8")
    seen = browse(html.as_uri(), tmp_path)
    assert seen.root.get("data-perfgate-blocked") is None
    assert seen.tags.count("section") == 6
    assert "t::stopped" in seen.dom
    pdf = tmp_path / "brief.pdf"
    print_pdf(render_brief_html(a_brief()), pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")


def test_perfgate_brief_tells_a_real_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The store, the analyses and the brief together, as the command prints it."""
    history = tmp_path / "history.sqlite"
    record_stepped_history(history)
    assert main(["brief", "--history", str(history), "--price-per-hour", "2"]) == 0
    text = capsys.readouterr().out
    assert "40 perf runs measured 1 series." in text
    assert "1 change for the worse and 0 for the better." in text
    assert "commits 24ababab..25ababab." in text
    assert "The gate stopped 1 regression before merge." in text
    # 40 runs of 15 minutes at 2 an hour.
    assert "The perf jobs used 10.00 machine-hours (\\$20.00)." in text


def test_perfgate_brief_writes_html_and_refuses_a_bad_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history.sqlite"
    record_stepped_history(history)
    out = tmp_path / "brief.html"
    assert main(["brief", "--history", str(history), "--format", "html", "--out", str(out)]) == 0
    assert "<h2>What got slower</h2>" in out.read_text(encoding="utf-8")
    assert main(["brief", "--history", str(history), "--since", "last spring"]) == 2
    assert "'last spring' is not an age (90d, 12w, 6m, 1y)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "days"), [("90d", 90), ("12w", 84), ("6m", 180), ("1y", 365), (" 30 d ", 30)]
)
def test_a_period_is_an_age(text: str, days: int) -> None:
    assert parse_since(text, now=NOW) == NOW - timedelta(days=days)


def test_a_period_is_a_date_or_a_time() -> None:
    assert parse_since("2026-09-01", now=NOW) == datetime(2026, 9, 1, tzinfo=timezone.utc)
    assert parse_since("2026-09-01T12:00:00+02:00", now=NOW) == datetime(
        2026, 9, 1, 10, tzinfo=timezone.utc
    )
    with pytest.raises(ValueError, match="not an age"):
        parse_since("90 days", now=NOW)


def test_an_interval_that_includes_no_change_is_shown_with_its_signs() -> None:
    view = stepped_view()
    wide = replace(view.changes[0], change_low=-0.5, change_high=0.9)
    brief = make_brief(
        [replace(view, changes=(wide,))], runs(), since=NOW - timedelta(days=90), until=NOW
    )
    assert "20.0% slower (95% interval -50.0%..+90.0%)" in render_brief_markdown(brief)
