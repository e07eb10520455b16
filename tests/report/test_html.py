"""The HTML renderer: well-formed, self-contained, one inline SVG per chart, all escaped."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import types
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aimax.report
from aimax.report import (
    LimiterSection,
    OptimizationReport,
    Percentiles,
    PlanSection,
    TimeSeries,
    WaitRow,
    read_json,
    render_html,
    write_html,
    write_json,
)
from aimax.report.charts import CHART_TITLES, render_charts

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


class Page(HTMLParser):
    """A strict reading of the page: nesting checked, charts and texts collected."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.chart: str | None = None
        self.charts: dict[str, dict[str, Any]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)

    def _open(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs.extend(attrs)
        values = dict(attrs)
        if tag == "figure" and values.get("data-chart"):
            self.chart = values["data-chart"]
            self.charts[self.chart] = {"svgs": 0, "text": []}
        elif tag == "svg" and self.chart is not None:
            self.charts[self.chart]["svgs"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag for void element {tag}")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()
        if tag == "figure":
            self.chart = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self.chart is not None:
            self.charts[self.chart]["text"].append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert not parser.errors, parser.errors[:5]
    assert parser.stack == [], parser.stack
    return parser


def assert_self_contained(page: str, parsed: Page) -> None:
    lowered = page.lower()
    assert "http://" not in lowered
    assert "https://" not in lowered
    assert "<script" not in lowered
    assert parsed.tags["script"] == 0
    assert parsed.tags["link"] == 0
    assert parsed.tags["img"] == 0
    assert parsed.tags["iframe"] == 0
    for name, value in parsed.attrs:
        assert not name.startswith("on"), name  # no event handler attributes
        assert name not in {"src", "srcset"}, name
        if name in {"href", "xlink:href"}:
            assert value is not None
            assert value.startswith("#"), value  # in-page anchors only


def test_full_report_has_every_chart_as_one_inline_svg(report_page: str) -> None:
    page = report_page
    parsed = parse(page)
    assert_self_contained(page, parsed)
    assert page.startswith("<!DOCTYPE html>")
    assert list(parsed.charts) == list(CHART_TITLES)
    for chart_id, title in CHART_TITLES.items():
        chart = parsed.charts[chart_id]
        assert chart["svgs"] == 1, chart_id
        text = "".join(chart["text"])
        assert text.count(title) >= 2, chart_id  # the caption and the chart's own title
    assert parsed.tags["svg"] == len(CHART_TITLES)
    legend = {cid: "".join(c["text"]) for cid, c in parsed.charts.items()}
    assert "rest_public" in legend["budget"]
    assert "rest_private" in legend["budget"]
    assert "strategy" in legend["pool-sizes"]
    assert "CANCEL" in legend["waits"]
    assert "4.0 ms" in legend["waits"]  # bar labels
    assert "RSS (MiB)" in legend["cpu-rss"]


def test_tables_hold_the_key_figures(report_page: str) -> None:
    text = parse(report_page).all_text
    for figure in (
        "Demo run: 50 pairs",
        "50 pairs cannot refresh every 5 s; at most 20 can",
        "3.0 GiB",
        "64.2 %",
        "51,234",
        "93.4 %",
        "3.25 s",
        "12,345",
        "171.7 MiB",
        "limiter_near_budget",
        "rest_public near budget",
        "from_s=5, to_s=7.5",
        "simulator on loopback, 50 pairs",
        'aimax_pool_size{pool="io"}',
    ):
        assert figure in text, figure


def test_empty_report_shows_no_data_notes_instead_of_charts(
    empty_report: OptimizationReport,
) -> None:
    page = render_html(empty_report)
    parsed = parse(page)
    assert_self_contained(page, parsed)
    assert parsed.tags["svg"] == 0
    assert list(parsed.charts) == list(CHART_TITLES)
    for chart_id, chart in parsed.charts.items():
        assert chart["svgs"] == 0
        assert "No data:" in "".join(chart["text"]), chart_id
    for phrase in ("No plan recorded.", "No limiter figures recorded.", "No alert fired."):
        assert phrase in parsed.all_text


def test_charts_with_data_draw_and_the_others_say_no_data() -> None:
    report = OptimizationReport(
        title="cpu only",
        created_at=100,
        duration=10,
        series=[
            TimeSeries(name="process_cpu_percent", points=[(90, 5), (95, 50), (100, 20)]),
            TimeSeries(name="aimax_pool_size", labels={"pool": "io"}),  # present, empty
        ],
        limiter=LimiterSection(),  # present, no waits
    )
    parsed = parse(render_html(report))
    assert [c["svgs"] for c in parsed.charts.values()] == [1, 0, 0, 0]
    assert "No data: no aimax_pool_size samples." in "".join(parsed.charts["pool-sizes"]["text"])
    assert "No data: no wait percentiles recorded." in "".join(parsed.charts["waits"]["text"])


def test_all_text_is_escaped(report_factory: Any) -> None:
    evil = report_factory.evil
    base = report_factory.make(pool_name=evil)
    report = OptimizationReport.from_dict(
        {
            **base.to_dict(),
            "title": evil,
            "plan": PlanSection(figures={evil: evil}, warnings=[evil]).to_dict(),
            "notes": [evil, "a & b < c"],
        }
    )
    page = render_html(report)
    parsed = parse(page)
    assert_self_contained(page, parsed)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    # shown to the reader as text: in the title, tables, and the budget chart's legend
    assert parsed.all_text.count(evil) >= 6
    assert evil in "".join(parsed.charts["budget"]["text"])
    assert "a & b < c" in parsed.all_text


def test_labels_matplotlib_would_interpret_are_drawn_literally() -> None:
    names = ["$x^2$", "_hidden", "a\\b", "{pool}", "日本", "100%"]
    report = OptimizationReport(
        title="odd names",
        created_at=10,
        series=[
            TimeSeries(
                name="aimax_ratelimit_utilisation_ratio",
                labels={"pool": name},
                points=[(0, 0.1), (5, 0.9)],
            )
            for name in names
        ],
    )
    parsed = parse(render_html(report))
    legend = "".join(parsed.charts["budget"]["text"])
    for name in names:
        assert name in legend, name


def test_large_report_is_downsampled_for_plotting(report_factory: Any) -> None:
    """10 series x 3600 points: drawn from at most max_points per line."""
    t0 = report_factory.t0
    series = [
        TimeSeries(
            name=("process_cpu_percent", "aimax_ratelimit_utilisation_ratio", "aimax_pool_size")[
                i % 3
            ],
            labels={} if i == 0 else {"pool": f"p{i}"},
            points=[(t0 + k, 50 + 40 * math.sin(k / 60 + i)) for k in range(3600)],
        )
        for i in range(10)
    ]
    report = OptimizationReport(title="an hour", created_at=t0 + 3600, duration=3600, series=series)
    page = render_html(report, max_points=400)
    parsed = parse(page)
    assert [c["svgs"] for c in parsed.charts.values()] == [1, 1, 0, 1]
    # each drawn line has at most 400 vertices (a path segment per vertex after the first)
    budget_svg = page[page.index('id="chart-budget"') : page.index('id="chart-waits"')]
    assert budget_svg.count(" L ") + budget_svg.count("\nL ") <= 3 * 400 + 200
    assert len(page) < 1_000_000


def test_missing_matplotlib_raises_an_actionable_runtime_error(
    monkeypatch: pytest.MonkeyPatch, report: OptimizationReport, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(RuntimeError, match=r"pip install 'aimax-optimizer\[report\]'"):
        render_html(report)
    target = tmp_path / "r.html"
    with pytest.raises(RuntimeError, match="matplotlib"):
        write_html(report, target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_files_are_written_whole_and_read_back(
    report: OptimizationReport, empty_report: OptimizationReport, tmp_path: Path
) -> None:
    json_path = write_json(report, tmp_path / "deep" / "dir" / "report.json")
    html_path = write_html(empty_report, tmp_path / "deep" / "dir" / "report.html")
    assert read_json(json_path) == report
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["report.html", "report.json"]
    with pytest.raises(Exception, match="expected an OptimizationReport"):
        write_json({"title": "x"}, tmp_path / "x.json")  # type: ignore[arg-type]


def test_import_is_cheap_and_drawing_leaves_no_pyplot_and_no_thread() -> None:
    code = textwrap.dedent(
        """
        import sys, threading
        import aimax.report as r
        heavy = [m for m in sys.modules if m.split(".")[0] == "matplotlib"
                 or m.startswith(("aimax.ratelimit", "aimax.pools", "aimax.memory",
                                  "aimax.monitor", "aimax.optimizer"))]
        assert not heavy, heavy
        page = r.render_html(r.OptimizationReport(title="t", created_at=0, series=[
            r.TimeSeries(name="process_cpu_percent", points=[(0, 1), (1, 2)])]))
        assert "<svg" in page
        assert "matplotlib.pyplot" not in sys.modules
        extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        assert not extra, extra
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(aimax.report).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(aimax.report.__all__) == public
    assert len(aimax.report.__all__) == len(set(aimax.report.__all__))


_values = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
_times = st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=2e9)
_chart_series = st.builds(
    TimeSeries,
    name=st.sampled_from(
        [
            "aimax_process_cpu_percent",
            "process_cpu_percent",
            "process_resident_memory_bytes",
            "aimax_memory_rss_bytes",
            "aimax_ratelimit_utilisation_ratio",
            "aimax_pool_size",
        ]
    ),
    labels=st.dictionaries(st.just("pool"), st.text(max_size=8), max_size=1),
    points=st.lists(st.tuples(_times, _values), max_size=6),
)
_seconds = st.none() | st.floats(min_value=0, max_value=1e6)
_waits = st.lists(
    st.builds(
        WaitRow,
        priority=st.text(max_size=6),
        count=st.none() | st.integers(0, 10**6),
        seconds=st.builds(Percentiles, p50=_seconds, p95=_seconds, p99=_seconds),
    ),
    max_size=4,
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.builds(
        OptimizationReport,
        title=st.text(max_size=5),
        created_at=_times,
        duration=st.floats(min_value=0, max_value=1e6),
        series=st.lists(_chart_series, max_size=5),
        limiter=st.none() | st.builds(LimiterSection, waits=_waits),
    )
)
def test_any_report_draws_without_error_or_warning(report: OptimizationReport) -> None:
    """Odd values (single points, equal times, empty names, 1e300) draw; warnings are errors."""
    charts = render_charts(report, max_points=10)
    assert [c.id for c in charts] == list(CHART_TITLES)
    for chart in charts:
        assert (chart.svg is None) == (chart.note is not None and chart.note.startswith("No data"))
