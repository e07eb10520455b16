"""The HTML page's structure, read with a real HTML parser: every chart there with
labelled axes, nothing fetched from outside, and the issue's report fixes."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import pytest

from aimax.report import OptimizationReport, render_html
from aimax.report.charts import CHART_TITLES
from aimax.report.model import LimiterSection, Percentiles, TimeSeries, WaitRow

from .conftest import T0, make_report

pytest.importorskip("matplotlib")

#: What each chart's axes must say (the x axis, then the y axes).
AXIS_LABELS = {
    "cpu-rss": ("seconds since start", "CPU (%)", "RSS (MiB)"),
    "budget": ("seconds since start", "budget used (%)"),
    "waits": ("priority class (n = grants)", "wait (log scale)"),
    "pool-sizes": ("seconds since start", "threads"),
}


class _Page(HTMLParser):
    """Figures by chart id with the text inside their SVG; every attribute seen."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, dict[str, object]] = {}
        self.attrs: list[tuple[str, str, str]] = []
        self._figure: str | None = None
        self._in_text = 0
        self.styles: list[str] = []
        self._in_style = False
        self.cards: list[str] = []
        self._card_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        for k, v in values.items():
            self.attrs.append((tag, k, v))
        if tag == "figure" and "data-chart" in values:
            self._figure = values["data-chart"]
            self.figures[self._figure] = {"svg": False, "texts": []}
        if self._figure and tag == "svg":
            self.figures[self._figure]["svg"] = True
        if tag == "text":
            self._in_text += 1
        if tag == "style":
            self._in_style = True
        if tag == "div" and values.get("class") == "card":
            self._card_depth = 1
            self.cards.append("")
        elif tag == "div" and self._card_depth:
            self._card_depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._figure = None
        if tag == "text":
            self._in_text -= 1
        if tag == "style":
            self._in_style = False
        if tag == "div" and self._card_depth:
            self._card_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._figure and self._in_text:
            texts = self.figures[self._figure]["texts"]
            assert isinstance(texts, list)
            texts.append(data.strip())
        if self._in_style:
            self.styles.append(data)
        if self._card_depth:
            self.cards[-1] += data + " "


def _parse(report: OptimizationReport) -> _Page:
    page = _Page()
    page.feed(render_html(report))
    return page


def test_every_chart_is_drawn_with_labelled_axes() -> None:
    page = _parse(make_report())
    assert list(page.figures) == list(CHART_TITLES)
    for chart_id, labels in AXIS_LABELS.items():
        figure = page.figures[chart_id]
        assert figure["svg"], chart_id
        texts = figure["texts"]
        assert isinstance(texts, list)
        for label in labels:
            assert label in texts, (chart_id, label, texts)


def test_the_page_references_nothing_outside_itself() -> None:
    report = make_report()
    html = render_html(report)
    page = _parse(report)
    for tag, name, value in page.attrs:
        if name in {"href", "src", "xlink:href", "action", "srcset", "poster", "data"}:
            assert value.startswith("#"), (tag, name, value)
    assert "<script" not in html
    assert "@import" not in "".join(page.styles)
    assert not re.findall(r"url\((?!#)", html)
    assert not re.findall(r"https?://", html)


def test_zero_waits_are_no_bars() -> None:
    zero = Percentiles(p50=0.0, p95=0.0, p99=0.0)
    report = dataclasses.replace(
        make_report(),
        limiter=LimiterSection(
            waits=[WaitRow(priority="ORDER", count=5, seconds=zero)],
        ),
    )
    page = _parse(report)
    assert not page.figures["waits"]["svg"]  # nothing to draw: a sentence instead
    assert "every grant was immediate" in render_html(report)


def test_the_busiest_pool_card_shows_the_peak_not_the_last_value() -> None:
    burst = [(T0 + k, 0.95 if 10 <= k < 70 else 0.005) for k in range(100)]
    base = make_report()
    series = [s for s in base.series if s.name != "aimax_ratelimit_utilisation_ratio"]
    series.append(
        TimeSeries(
            name="aimax_ratelimit_utilisation_ratio",
            unit="ratio",
            labels={"pool": "rest_public"},
            points=burst,
        )
    )
    assert base.limiter is not None
    pools = [dataclasses.replace(p, utilisation=0.005) for p in base.limiter.pools]
    report = dataclasses.replace(
        base, series=series, limiter=dataclasses.replace(base.limiter, pools=pools)
    )
    cards = " ".join(_parse(report).cards)
    assert "busiest pool (peak): rest_public" in cards
    assert "95" in cards.split("busiest pool (peak): rest_public")[1].split()[0]


def test_flat_unused_stream_pools_are_left_out() -> None:
    base = make_report()
    flat = TimeSeries(
        name="aimax_ratelimit_utilisation_ratio",
        unit="ratio",
        labels={"pool": "ws_message"},
        points=[(T0 + k, 0.0) for k in range(50)],
    )
    html = render_html(dataclasses.replace(base, series=[*base.series, flat]))
    assert "ws_message" not in html
    assert "1 unused stream pool" in html


def test_plan_reasons_are_rows_not_a_json_blob() -> None:
    base = make_report()
    assert base.plan is not None
    figures = {
        **base.plan.figures,
        "reasons": {"market_data": "Little's law: 12.50 req/s x 0.150s x margin 1.5"},
        "suggestions": ["fewer pairs: at most 78 at 5s"],
    }
    plan = dataclasses.replace(base.plan, figures=figures)
    html = render_html(dataclasses.replace(base, plan=plan))
    assert "What would serve it" in html
    assert "<li>fewer pairs: at most 78 at 5s</li>" in html
    assert "Little&#x27;s law: 12.50 req/s" in html
    assert "{&quot;market_data&quot;" not in html
    assert '{"market_data"' not in html


def test_timeline_names_each_series_unit() -> None:
    html = render_html(make_report())
    rows = re.findall(r"<tr><td>(aimax_pool_size[^<]*)</td><td[^>]*>([^<]*)</td>", html)
    assert rows
    assert all(unit != "-" for _, unit in rows), rows
