"""The dashboard (perfgate dashboard): what its pages hold, and that they work in a browser.

The pure tests render in-memory series and analysis results; the browser tests open the
written site from file:// in Debian's headless chromium (they skip, saying so, without
it) and read the DOM after the index's script ran. Every page's Content-Security-Policy
allows no load and runs only its own scripts; the watchdog script records anything it
blocked on the root element, so a blocked load or injected code shows up there.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from history_render_support import (
    NOW,
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
from pytest_perfgate.history import dashboard
from pytest_perfgate.history.dashboard import (
    page_name,
    render_index,
    render_measurement_page,
    trend_plot,
    write_dashboard,
)
from pytest_perfgate.history.svg import (
    PlottedLine,
    TrendPlot,
    nice_ticks,
    render_trend_svg,
)
from pytest_perfgate.history.views import PARALLEL_FROM, view_of, views_of

HOSTILE = "tests/test_x.py::test_x[<img src=x onerror=document.title='INJECTED'>]"


def parsed(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def test_the_plot_draws_points_changes_budget_and_band() -> None:
    view = stepped_view()
    svg = render_measurement_page([view], generated_at=NOW)
    plot = svg[svg.index("<svg") : svg.index("</svg>")]
    # One path of dots for the machine class, with one dot per run.
    assert plot.count('class="points"') == 1
    assert len(re.findall(r"h0", plot)) == len(view.series.points)
    assert plot.count('class="change"') == 1
    assert "+20.0% c0000024..c0000025" in plot
    assert plot.count('class="budget"') == 1
    assert plot.count('class="band"') == 1


def test_every_machine_class_gets_its_own_points_and_band() -> None:
    views = [flat_view("t::a", "x86_64-4c-linux"), flat_view("t::a", "aarch64-8c-linux")]
    page = render_measurement_page(views, generated_at=NOW)
    assert page.count('class="points"') == 2
    assert page.count('class="band"') == 2
    assert "On x86_64-4c-linux" in page
    assert "On aarch64-8c-linux" in page


def test_a_plot_of_one_run_or_none_still_renders() -> None:
    view = stepped_view()
    one = replace(view.series, points=view.series.points[:1])
    line = PlottedLine("m", (one.points[0].at.timestamp(),), one.values)
    svg = render_trend_svg(TrendPlot("one", "s", (line,)))
    assert svg.count("h0") == 1
    assert "no points" in render_trend_svg(TrendPlot("none", "s", ()))


def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.00093, 0.00131) == [0.001, 0.0011, 0.0012, 0.0013]
    assert nice_ticks(5.0, 5.0) == [5.0]


def test_the_index_has_a_row_per_series_with_its_figures() -> None:
    views = [stepped_view(), flat_view("t::b"), flat_view("t::b", "aarch64-8c-linux")]
    page = render_index(views, generated_at=NOW, source="history.sqlite")
    seen = parsed(page)
    assert len(seen.rows) == 1 + 3  # the header and a row per series
    assert [r.get("class") for r in seen.rows[1:]].count("bad") == 1
    assert "1.2 ms" in page
    assert "+20.0% at 2026-09-09 (c0000024..c0000025)" in page
    assert "at risk: 2027 Q1 (70%)" in page
    # Both classes of t::b link to the same measurement page.
    assert seen.links.count(f"m/{page_name(('t::b', 'time'))}") == 2


def test_text_from_the_history_is_escaped_everywhere() -> None:
    view = flat_view(HOSTILE, machine_class="<b>box</b>")
    for page in (
        render_index([view], generated_at=NOW, source="<i>src</i>"),
        render_measurement_page([view], generated_at=NOW),
    ):
        seen = parsed(page)
        assert "img" not in seen.tags
        assert "b" not in seen.tags
        assert "i" not in seen.tags
        assert "&lt;img src=x" in page


def test_page_names_are_hashes_not_test_ids(tmp_path: Path) -> None:
    views = [flat_view(HOSTILE), flat_view("../../etc/passwd")]
    site = write_dashboard(views, tmp_path / "site", generated_at=NOW, source="h")
    names = sorted(p.name for p in (tmp_path / "site" / "m").iterdir())
    assert len(names) == site.pages == 2
    assert all(re.fullmatch(r"[0-9a-f]{16}\.html", name) for name in names)
    assert site.index.read_text(encoding="utf-8").count('href="m/') == 2


def test_an_empty_history_renders_an_empty_index(tmp_path: Path) -> None:
    site = write_dashboard([], tmp_path, generated_at=NOW, source="h")
    assert "The history holds no measurements." in site.index.read_text(encoding="utf-8")


@needs_chromium
def test_the_site_works_from_file_in_a_browser(tmp_path: Path) -> None:
    views = [stepped_view(), flat_view(HOSTILE), flat_view("t::b", "aarch64-8c-linux")]
    site = write_dashboard(views, tmp_path / "site", generated_at=NOW, source="h")
    index = browse(site.index.as_uri(), tmp_path)
    assert index.root.get("data-perfgate-rows") == "3"
    assert index.root.get("data-perfgate-errors") is None
    assert index.root.get("data-perfgate-blocked") is None
    assert "img" not in index.tags
    assert "INJECTED" not in index.title
    page = browse((site.index.parent / "m" / page_name(views[0].series.key)).as_uri(), tmp_path)
    assert page.root.get("data-perfgate-blocked") is None
    for drawn in ("trend", "points", "change", "budget", "band"):
        assert drawn in page.classes, drawn


@needs_chromium
def test_the_index_filters_and_sorts_from_its_link(tmp_path: Path) -> None:
    views = [flat_view(f"t::case{i}") for i in range(5)]
    views = [
        replace(v, change_since=c) for v, c in zip(views, (0.03, -0.1, 0.2, 0.0, None), strict=True)
    ]
    site = write_dashboard(views, tmp_path / "site", generated_at=NOW, source="h")
    # Descending by the change column (4): +20%, +3%, 0, -10%, and the row without last.
    seen = browse(site.index.as_uri() + "#sort=-4", tmp_path)
    order = re.findall(r"t::case(\d)", seen.dom)
    assert order == ["2", "0", "3", "1", "4"]
    filtered = browse(site.index.as_uri() + "#filter=case3", tmp_path)
    hidden = [row for row in filtered.rows[1:] if "hidden" in row]
    assert len(hidden) == 4
    assert "1 of 5 shown" in filtered.dom


def test_perfgate_dashboard_renders_a_real_history(tmp_path: Path) -> None:
    """The store, the analyses and the dashboard together: the 20% step is found at the
    commit that made it, and drawn."""
    record_stepped_history(tmp_path / "history.sqlite")
    out = tmp_path / "site"
    assert (
        main(["dashboard", "--history", str(tmp_path / "history.sqlite"), "--out", str(out)]) == 0
    )
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "24ababab..25ababab" in index
    (page,) = (out / "m").iterdir()
    text = page.read_text(encoding="utf-8")
    assert text.count('class="change"') == 1
    assert 'class="band"' in text
    assert 'class="budget"' in text


def test_perfgate_dashboard_says_when_there_is_no_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.sqlite"
    assert main(["dashboard", "--history", str(missing), "--out", str(tmp_path / "s")]) == 2
    assert f"no history at {missing}" in capsys.readouterr().err
    assert not missing.exists()


def test_many_measurements_are_analysed_and_written_by_worker_processes(tmp_path: Path) -> None:
    """Past PARALLEL_FROM series the analyses and pages run in forked workers; what
    comes back is what one process makes."""
    many = [
        replace(flat_view(f"t::case{i}").series, points=stepped_view().series.points)
        for i in range(PARALLEL_FROM + 6)
    ]
    alone = views_of(many, now=NOW, workers=1)
    forked = views_of(many, now=NOW, workers=2)
    assert forked == alone
    assert all(len(view.changes) == 1 for view in forked)
    site = write_dashboard(forked, tmp_path, generated_at=NOW, source="h", workers=2)
    assert site.pages == len(list((tmp_path / "m").iterdir())) == PARALLEL_FROM + 6


@needs_chromium
def test_the_browser_check_catches_broken_escaping(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Proof that the browser test has teeth: with the escaping switched off, a test id
    becomes an element, and the page's policy blocks (and reports) its handler."""
    monkeypatch.setattr(dashboard, "escape", lambda text: text)
    site = write_dashboard([flat_view(HOSTILE)], tmp_path / "site", generated_at=NOW, source="h")
    seen = browse(site.index.as_uri(), tmp_path)
    assert "img" in seen.tags
    assert "script-src" in (seen.root.get("data-perfgate-blocked") or "")
    assert "INJECTED" not in seen.title


def test_the_change_over_30_days_is_of_levels_not_of_single_runs() -> None:
    """One run six times slower (a busy machine) does not make the column say +500%."""
    levels = (1e-3,) * 30 + (1.1e-3,) * 9 + (6e-3,)
    view = view_of(series(levels=levels, every=timedelta(days=2)), now=NOW)
    assert view.change_since == pytest.approx(0.1)
    assert view_of(series(levels=(1e-3,) * 5), now=NOW).change_since is None


def test_close_change_points_get_their_labels_on_two_rows() -> None:
    view = stepped_view()
    close = (change_at(view.series, 25, 0.2), change_at(view.series, 27, 0.1))
    svg = render_trend_svg(trend_plot([replace(view, changes=close)]))
    rows = re.findall(r'<g class="change">.*?<text x="[\d.]+" y="([\d.]+)"', svg)
    assert len(rows) == 2
    assert rows[0] != rows[1]
