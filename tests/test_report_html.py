"""The HTML report (--perf-html): self-contained, escaped, and drawn in a real browser.

The browser tests open the page in Debian's chromium (headless) and read the DOM after the
page's scripts ran. Without chromium (CI installs none) they skip and say so. The page's
Content-Security-Policy allows no load from anywhere and runs only its own scripts; it
records anything it blocked on the root element, so the browser test also shows that the
page needs no network and that no test name got in as code.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from plugin_support import record_baselines, write_settings

from pytest_perfgate.model import Comparison, Direction, Environment, Measurement, Verdict
from pytest_perfgate.report import html as report_html
from pytest_perfgate.report.html import VENDORED_SCRIPTS, render_html
from pytest_perfgate.results import RunResults, TestResults, read_results
from pytest_perfgate.stats import summarize

#: Test names that would run code if the page let them in as markup. Each one, if it
#: ran, would change the page's title.
IMG = "<img src=x onerror=document.title='INJECTED'>"
SCRIPT = "</script><script>document.title='INJECTED'</script>"

#: A suite whose parametrization ids are IMG and SCRIPT.
HOSTILE_SUITE = f"""
import pytest


def spin(n):
    return sum(range(n))


@pytest.mark.perf
@pytest.mark.parametrize("n", [2000, 3000], ids={[IMG, SCRIPT]!r})
def test_hostile(perf, n):
    perf(spin, n)
"""

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs a real headless browser: Debian's chromium (apt-get install chromium)",
)


def comparison(test_id: str, verdict: Verdict, ratio: float | None) -> Comparison:
    samples = (1e-3, 1.1e-3, 0.9e-3, 1.05e-3)
    baseline = None if ratio is None else summarize(tuple(x / ratio for x in samples))
    return Comparison(
        test_id,
        "time",
        verdict,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(samples),
        baseline,
        ratio=ratio,
        ci_low=None if ratio is None else ratio * 0.95,
        ci_high=None if ratio is None else ratio * 1.05,
        p_value=None if ratio is None else 1e-4,
        q_value=None if ratio is None else 2e-4,
        threshold=0.05,
        notes=(f"note {IMG}",),
    )


def hostile_run() -> RunResults:
    """Two measurements named with markup, one of them without a baseline."""
    tests = []
    for name, verdict, ratio in ((IMG, Verdict.REGRESSED, 1.3), (SCRIPT, Verdict.NEW, None)):
        test_id = f"tests/test_x.py::test_x[{name}]"
        c = comparison(test_id, verdict, ratio)
        m = Measurement("time", "s", Direction.LOWER_IS_BETTER, (1e-3, 1.1e-3, 0.9e-3, 1.05e-3))
        tests.append(
            TestResults(test_id, "tests/test_x.py", f"test_x[{name}]", "passed", ((m, c),))
        )
    return RunResults(
        environment=Environment({"cpu": SCRIPT}, {"host": IMG}),
        tests=tuple(tests),
        settings={"mode": "gate", "threshold": 0.05},
        commit="c0ffee",
        created_at="2026-11-24T00:00:00Z",
    )


def data_block(page: str) -> object:
    match = re.search(
        r'<script type="application/json" id="perfgate-data">(.*?)</script>', page, re.S
    )
    assert match is not None
    return json.loads(match.group(1))


def test_the_page_is_self_contained() -> None:
    page = render_html(hostile_run())
    own = page
    for name in VENDORED_SCRIPTS:
        assert report_html._vendored(name) in page  # inline, whole
        own = own.replace(report_html._vendored(name), "")
    # The libraries' licence banners name their home pages; nothing else has an address.
    for needle in ("http://", "https://", "url(", "@import"):
        assert needle not in own, needle
    assert "sourceMappingURL" not in page
    tags = re.findall(r"<[a-zA-Z][^>]*>", own)  # escaped text has no "<": real tags only
    assert not [tag for tag in tags if re.search(r"\s(src|srcset|action|data)=", tag)]
    links = [href for tag in tags for href in re.findall(r'\shref="([^"]*)"', tag)]
    assert links
    assert all(href.startswith("#m-") for href in links)  # within the page only
    # The policy loads nothing and runs only the page's own scripts, named by hash.
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert policy is not None
    assert "default-src 'none'" in policy.group(1)
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 2 + len(VENDORED_SCRIPTS)
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy.group(1)


def test_test_names_and_values_are_escaped() -> None:
    page = render_html(hostile_run())
    for raw in (IMG, SCRIPT, "<img"):
        assert raw not in page
    assert "&lt;img src=x onerror=document.title=&#x27;INJECTED&#x27;&gt;" in page
    # Exactly the page's own script blocks: no value closed one or opened another.
    assert page.count("</script>") == 3 + len(VENDORED_SCRIPTS)
    data = data_block(page)
    assert isinstance(data, dict)
    labels = [m["label"] for m in data["measurements"]]
    assert labels == [f"tests/test_x.py::test_x[{IMG}]", f"tests/test_x.py::test_x[{SCRIPT}]"]


def test_the_page_shows_every_measurement_with_its_figures() -> None:
    page = render_html(hostile_run())
    assert page.count('<tr class="v-') == 2
    assert "+30.0%" in page
    assert "+23.5%..+36.5%" in page
    assert "No change to plot" in page  # the NEW one, said by the script
    assert 'data-chart="overview"' in page
    assert page.count('data-chart="distribution"') == 2
    assert page.count('data-chart="order"') == 2
    data = data_block(page)
    assert isinstance(data, dict)
    regressed = data["measurements"][0]
    assert regressed["unit"] == "ms"  # plotted in a readable unit
    assert regressed["current"]["items"] == pytest.approx([1.0, 1.1, 0.9, 1.05])
    assert regressed["baseline"]["median"] == pytest.approx(1.025 / 1.3)


def test_an_empty_run_renders() -> None:
    page = render_html(RunResults(environment=Environment({}), tests=()))
    assert "No perf measurements in this run." in page
    assert "<canvas" not in page
    assert "<title>pytest-perfgate report: no measurements</title>" in page


def test_figures_json_cannot_hold_are_plotted_as_missing() -> None:
    run = hostile_run()
    m, c = run.tests[0].results[0]
    c = dataclasses.replace(c, test_id="t.py::t", ratio=float("inf"), ci_high=float("inf"))
    test = TestResults("t.py::t", "t.py", "t", "passed", ((m, c),))
    page = render_html(RunResults(environment=run.environment, tests=(test,)))
    data = data_block(page)
    assert isinstance(data, dict)
    assert data["measurements"][0]["change"] is None
    assert "Without a change to show: t.py::t (REGRESSED)" in page


def test_the_plugin_writes_the_report(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_hostile=HOSTILE_SUITE)
    result = pytester.runpytest("--perf-html=out/report.html")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["perfgate: HTML report written to *out/report.html"])
    page = (pytester.path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.count('<tr class="v-NEW">') == 2
    assert IMG not in page


def test_an_unwritable_report_path_is_reported_not_a_crash(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_hostile=HOSTILE_SUITE)
    (pytester.path / "blocked").write_text("a file, not a directory")
    result = pytester.runpytest("--perf-html=blocked/report.html")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["perfgate: cannot write the HTML report to *blocked/report.html*"])


# -- in a real browser -------------------------------------------------------------------


class _Page(HTMLParser):
    """What a person sees in the dumped DOM: the title, the test cells' text, the canvases."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.root: dict[str, str | None] = {}
        self.cells: list[str] = []
        self.canvases: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "html":
            self.root = attributes
        elif tag == "title":
            self._in = "title"
        elif tag == "td" and attributes.get("class") == "test":
            self._in = "cell"
            self.cells.append("")
        elif tag == "canvas":
            self.canvases.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "td"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "cell":
            self.cells[-1] += data


def browse(page: Path, tmp_path: Path) -> _Page:
    """Open ``page`` in headless chromium and parse the DOM after its scripts ran."""
    assert CHROMIUM is not None
    completed = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",  # tests run as root in containers
            "--no-first-run",
            "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
            f"--user-data-dir={tmp_path / 'profile'}",  # parallel runs do not share one
            "--virtual-time-budget=5000",  # let the scripts finish before the dump
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    parsed = _Page()
    parsed.feed(completed.stdout)
    return parsed


def problems(seen: _Page, labels: list[str], charts: int) -> list[str]:
    """Everything wrong with a rendered report; empty when it is right."""
    found = []
    if "INJECTED" in seen.title:
        found.append(f"a test name ran a script: title {seen.title!r}")
    if seen.root.get("data-perfgate-blocked"):
        # Injected code, or a load from anywhere: the page must need no network.
        blocked = seen.root["data-perfgate-blocked"]
        found.append(f"the policy blocked injected code or a load: {blocked}")
    if "img" in seen.tags or seen.tags.count("script") != 3 + len(VENDORED_SCRIPTS):
        found.append("markup from a test name became elements")
    if seen.root.get("data-perfgate-charts") != str(charts):
        found.append(f"plots drawn: {seen.root.get('data-perfgate-charts')!r}, not {charts}")
    if seen.root.get("data-perfgate-errors"):
        found.append(f"plot errors: {seen.root['data-perfgate-errors']}")
    # Chart.js sizes every canvas it draws on; an untouched canvas has no style.
    drawn = [c for c in seen.canvases if "display: block" in (c.get("style") or "")]
    if len(drawn) != charts:
        found.append(f"{len(drawn)} canvases drawn by Chart.js, not {charts}")
    if sorted(seen.cells) != sorted(labels):
        found.append(f"test names not shown as text: {seen.cells!r}")
    return found


@needs_chromium
def test_a_real_run_renders_in_a_browser_with_its_names_as_text(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_hostile=HOSTILE_SUITE)
    record_baselines(pytester)
    result = pytester.runpytest("--perf-html=report.html", "--perf-json=results.json")
    result.assert_outcomes(passed=2)
    labels = [c.label for c in read_results(pytester.path / "results.json").comparisons]
    assert sorted(labels) == [f"test_hostile.py::test_hostile[{n}]" for n in (SCRIPT, IMG)]
    seen = browse(pytester.path / "report.html", tmp_path)
    # The overview, and per measurement its distributions, its change, its samples in order.
    assert problems(seen, labels, charts=1 + 2 * 3) == []
    assert seen.title.startswith("pytest-perfgate report: ")


@needs_chromium
def test_the_browser_check_catches_broken_escaping(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Proof that the test above has teeth: with the escaping switched off, it fails."""
    monkeypatch.setattr(report_html, "escape", lambda text, quote=True: text)
    monkeypatch.setattr(report_html, "script_json", json.dumps)
    run = hostile_run()
    page = tmp_path / "broken.html"
    page.write_text(render_html(run), encoding="utf-8")
    found = problems(browse(page, tmp_path), [c.label for c in run.comparisons], charts=6)
    assert any("became elements" in p for p in found), found
    assert any("policy blocked" in p for p in found), found
    assert any("plots drawn" in p for p in found), found


def test_a_reason_many_measurements_share_is_said_once_with_a_count() -> None:
    """Issue 13: the same 330-character INCOMPARABLE reason was repeated per measurement."""
    reason = (
        "baseline recorded on another machine class: record with `pytest --perf-update-baselines`"
    )
    tests = []
    for i in range(5):
        c = dataclasses.replace(
            comparison(f"t.py::test_{i}", Verdict.INCOMPARABLE, None), notes=(reason,)
        )
        m = Measurement("time", "s", Direction.LOWER_IS_BETTER, (1e-3, 1.1e-3))
        tests.append(TestResults(c.test_id, "t.py", f"test_{i}", "passed", ((m, c),)))
    run = RunResults(environment=Environment({"cpu": "x"}), tests=tuple(tests))
    page = render_html(run, refresh_command="pytest t.py --perf-update-baselines")
    assert page.count("another machine class") == 1
    assert "5 measurements: baseline recorded on another machine class" in page
    assert "`pytest t.py --perf-update-baselines`" in page
    assert page.count("shared reason (see above)") == 10  # in the table and each detail
