"""The HTML renderer: one self-contained page, inline CSS and inline SVG charts, no script.

Every piece of text that came from the report is HTML-escaped; the page references no
URL at all (no fonts, no stylesheets, no scripts), so it opens offline, as a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape

from aimax._version import __version__
from aimax.report._format import (
    fmt_bytes,
    fmt_count,
    fmt_datetime,
    fmt_duration,
    fmt_figure,
    fmt_json,
    fmt_number,
    fmt_percent,
    fmt_seconds,
    fmt_time,
    fmt_unit_value,
    series_summary,
    sparkline,
)
from aimax.report._series import unit_for_metric
from aimax.report.charts import (
    RSS_SERIES,
    UTILISATION_SERIES,
    Chart,
    is_unused_stream_series,
    render_charts,
    undrawn_charts,
)
from aimax.report.model import OptimizationReport, Percentiles, WaitRow

__all__ = ["render_html"]

_CSS = """
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f7f8fa; --card:#ffffff;
        --bad:#c0392b; --warn:#b7791f; --ok:#2f855a; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
       font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width:1100px; margin:0 auto; padding:24px; }
h1 { font-size:24px; margin:0 0 4px; }
h2 { font-size:18px; margin:28px 0 10px; border-bottom:1px solid var(--line); padding-bottom:4px; }
h3 { font-size:15px; margin:16px 0 6px; }
.meta { color:var(--muted); margin:0; }
nav { margin:14px 0 0; font-size:13px; }
nav a { color:var(--muted); margin-right:12px; text-decoration:none; }
.cards { display:flex; flex-wrap:wrap; gap:10px; margin:18px 0 0; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px;
        padding:10px 14px; min-width:150px; }
.card .label { color:var(--muted); font-size:12px; }
.card .value { font-size:20px; font-weight:600; }
.bad { color:var(--bad); } .warn { color:var(--warn); } .ok { color:var(--ok); }
table { border-collapse:collapse; background:var(--card); border:1px solid var(--line);
        margin:6px 0 12px; font-size:13px; }
th, td { padding:5px 10px; border-bottom:1px solid var(--line); text-align:left;
         vertical-align:top; }
th { background:#f0f2f5; font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td.spark { font-family:ui-monospace, monospace; color:#2b6cb0; white-space:nowrap; }
.scroll { max-width:100%; overflow-x:auto; }
@media (max-width: 900px) { main { padding:12px; } .card { min-width:130px; } }
figure.chart { background:var(--card); border:1px solid var(--line); border-radius:8px;
               margin:0 0 14px; padding:10px; }
figure.chart figcaption { font-weight:600; margin:0 0 6px; }
figure.chart svg { width:100%; height:auto; display:block; }
.nodata { color:var(--muted); font-style:italic; margin:8px 0; padding:18px;
          border:1px dashed var(--line); border-radius:6px; text-align:center; }
.note { color:var(--muted); font-size:12px; }
ul.warnings li { color:var(--warn); }
footer { color:var(--muted); font-size:12px; margin:30px 0 10px; }
"""

_PRESSURE = {0: "normal", 1: "high", 2: "critical"}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric_from: int = 1,
    caption: str | None = None,
    raw_last: bool = False,
) -> str:
    """A table of already-formatted (not yet escaped) cells."""
    out = ['<div class="scroll"><table>']
    if caption:
        out.append(f"<caption class='note'>{_e(caption)}</caption>")
    out.append("<thead><tr>")
    for i, header in enumerate(headers):
        cls = ' class="num"' if i >= numeric_from else ""
        out.append(f"<th{cls}>{_e(header)}</th>")
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, cell in enumerate(row):
            if raw_last and i == len(row) - 1:
                out.append(cell)
                continue
            cls = ' class="num"' if i >= numeric_from else ""
            out.append(f"<td{cls}>{_e(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _none(text: str) -> str:
    return f'<p class="nodata">{_e(text)}</p>'


def _card(label: str, value: str, cls: str = "") -> str:
    klass = f"value {cls}".strip()
    return (
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="{klass}">{_e(value)}</div></div>'
    )


def _cards(report: OptimizationReport) -> str:
    cards = [_card("run", fmt_duration(report.duration))]
    lim = report.limiter
    if lim is not None:
        cards.append(
            _card(
                "429 responses", fmt_count(lim.responses_429), "bad" if lim.responses_429 else "ok"
            )
        )
        cards.append(_card("bans", fmt_count(lim.bans), "bad" if lim.bans else "ok"))
        peaks = peak_utilisation(report)
        if peaks:
            pool, peak = max(peaks.items(), key=lambda item: item[1])
            cards.append(_card(f"busiest pool (peak): {pool}", fmt_percent(peak)))
    peak_rss = peak_rss_bytes(report)
    if peak_rss is not None:
        cards.append(_card("peak RSS", fmt_bytes(peak_rss)))
    unresolved = sum(1 for a in report.alerts if a.resolved_at is None)
    cards.append(
        _card(
            "alerts", f"{len(report.alerts)} ({unresolved} open)", "warn" if report.alerts else "ok"
        )
    )
    cards.append(_card("optimizer actions", str(len(report.actions))))
    return f'<div class="cards">{"".join(cards)}</div>'


def peak_utilisation(report: OptimizationReport) -> dict[str, float]:
    """Each limiter pool's peak budget use over the run: the highest sample of its
    utilisation series, else (no samples) its final figure."""
    peaks: dict[str, float] = {}
    for s in report.find_series(UTILISATION_SERIES):
        pool = s.labels.get("pool")
        if pool is not None and s.points:
            peaks[pool] = max(peaks.get(pool, 0.0), *s.values())
    if report.limiter is not None:
        for p in report.limiter.pools:
            peaks[p.pool] = max(peaks.get(p.pool, 0.0), p.utilisation)
    return peaks


def peak_rss_bytes(report: OptimizationReport) -> int | None:
    """The memory section's peak RSS, else the highest RSS sample, else None."""
    mem = report.memory
    if mem is not None and mem.peak_rss_bytes is not None:
        return mem.peak_rss_bytes
    samples = [v for name in RSS_SERIES for s in report.find_series(name) for v in s.values()]
    if samples:
        return int(max(samples))
    return None if mem is None else mem.rss_bytes


def _chart(chart: Chart) -> str:
    body = chart.svg if chart.svg is not None else _none(chart.note or "No data.")
    note = f'<p class="note">{_e(chart.note)}</p>' if chart.svg is not None and chart.note else ""
    return (
        f'<figure class="chart" id="chart-{_e(chart.id)}" data-chart="{_e(chart.id)}">'
        f"<figcaption>{_e(chart.title)}</figcaption>{body}{note}</figure>"
    )


def _plan(report: OptimizationReport) -> str:
    plan = report.plan
    if plan is None:
        return _none("No plan recorded.")
    parts = []
    if plan.warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in plan.warnings)
        parts.append(f'<ul class="warnings">{items}</ul>')
    figures = dict(plan.figures)
    suggestions = figures.pop("suggestions", None)
    if isinstance(suggestions, Sequence) and not isinstance(suggestions, str) and suggestions:
        items = "".join(f"<li>{_e(x)}</li>" for x in suggestions)
        parts.append(f"<h3>What would serve it</h3><ul>{items}</ul>")
    figures.pop("warnings", None)  # listed above
    reasons = figures.pop("reasons", None)
    rows: list[tuple[str, str]] = []
    for key, value in figures.items():
        if isinstance(value, Mapping):  # pool_sizes: one row a pool
            rows += [(f"{key}: {k}", fmt_figure(k, v)) for k, v in value.items()]
        elif isinstance(value, Sequence) and not isinstance(value, str):  # one row an entry
            rows += [(key, str(v)) for v in value] or [(key, "none")]
        else:
            rows.append((key, fmt_figure(key, value)))
    if rows:
        parts.append(_table(["figure", "value"], rows))
    else:
        parts.append(_none("The plan has no figures."))
    if isinstance(reasons, Mapping) and reasons:
        parts.append("<h3>Why</h3>")
        parts.append(_table(["figure", "reason"], [(k, str(v)) for k, v in reasons.items()]))
    return "".join(parts)


def _wait_row(label: str, w: WaitRow) -> tuple[str, ...]:
    s = w.seconds
    return (label, fmt_count(w.count), fmt_seconds(s.p50), fmt_seconds(s.p95), fmt_seconds(s.p99))


def _limiter(report: OptimizationReport) -> str:
    lim = report.limiter
    if lim is None:
        return _none("No limiter figures recorded.")
    parts = [
        f'<p>Bans: <b class="{"bad" if lim.bans else "ok"}">{fmt_count(lim.bans)}</b>'
        f' &nbsp; 429 responses: <b class="{"bad" if lim.responses_429 else "ok"}">'
        f"{fmt_count(lim.responses_429)}</b></p>"
    ]
    if lim.pools:
        parts.append("<h3>Pools</h3>")
        parts.append(
            _table(
                ["pool", "limit", "window", "granted", "units", "rejected", "utilisation"],
                [
                    (
                        p.pool,
                        fmt_number(p.limit),
                        fmt_seconds(p.window),
                        fmt_count(p.granted),
                        fmt_count(p.units),
                        fmt_count(p.rejected),
                        fmt_percent(p.utilisation),
                    )
                    for p in lim.pools
                ],
            )
        )
    else:
        parts.append(_none("No limiter pools."))
    rows = [_wait_row(w.priority, w) for w in lim.waits]
    rows += [_wait_row(f"{p.pool} / {w.priority}", w) for p in lim.pools for w in p.waits]
    if rows:
        parts.append("<h3>Waits per priority</h3>")
        parts.append(_table(["priority", "count", "p50", "p95", "p99"], rows))
    if lim.ban_events:
        parts.append("<h3>Bans</h3>")
        parts.append(
            _table(
                ["time", "scope", "status", "until", "reason"],
                [
                    (
                        fmt_time(b.time, report.started_at),
                        b.scope,
                        "" if b.status is None else str(b.status),
                        fmt_time(b.until, report.started_at),
                        b.reason,
                    )
                    for b in lim.ban_events
                ],
                numeric_from=9,
            )
        )
    if lim.extra:
        parts.append(
            _table(["figure", "value"], [(k, fmt_figure(k, v)) for k, v in lim.extra.items()])
        )
    return "".join(parts)


def _p(p: Percentiles) -> tuple[str, str, str]:
    return fmt_seconds(p.p50), fmt_seconds(p.p95), fmt_seconds(p.p99)


def _pools(report: OptimizationReport) -> str:
    if not report.pools:
        return _none("No thread pools recorded.")
    rows = []
    for p in report.pools:
        size = str(p.size) if p.max_size is None else f"{p.size}/{p.max_size}"
        rows.append(
            (
                p.pool,
                size,
                str(p.active),
                str(p.queued),
                fmt_count(p.completed),
                fmt_count(p.failed),
                fmt_count(p.rejected),
                *_p(p.queue_wait),
                *_p(p.run_time),
            )
        )
    headers = [
        "pool",
        "size now/max",
        "active",
        "queued",
        "completed",
        "failed",
        "rejected",
        "queue wait p50",
        "p95",
        "p99",
        "run p50",
        "p95",
        "p99",
    ]
    parts = [_table(headers, rows)]
    extra = [(f"{p.pool}.{k}", fmt_json(v)) for p in report.pools for k, v in p.extra.items()]
    if extra:
        parts.append(_table(["figure", "value"], extra))
    return "".join(parts)


def _memory(report: OptimizationReport) -> str:
    mem = report.memory
    if mem is None:
        return _none("No memory figures recorded.")
    level = (
        "-"
        if mem.pressure_level is None
        else _PRESSURE.get(mem.pressure_level, str(mem.pressure_level))
    )
    rows: list[tuple[str, str]] = [
        ("RSS", fmt_bytes(mem.rss_bytes)),
        ("peak RSS", fmt_bytes(mem.peak_rss_bytes)),
        ("USS", fmt_bytes(mem.uss_bytes)),
        ("budget", fmt_bytes(mem.budget_bytes)),
        ("pressure level", level),
        ("GC pause total", fmt_seconds(mem.gc_pause_total_seconds)),
        ("GC pause max", fmt_seconds(mem.gc_pause_max_seconds)),
    ]
    rows += [
        (f"GC collections, generation {g}", fmt_count(n))
        for g, n in sorted(mem.gc_collections.items())
    ]
    rows += [(k, fmt_figure(k, v)) for k, v in mem.extra.items()]
    parts = [_table(["figure", "value"], rows)]
    if mem.caches:
        parts.append("<h3>Caches</h3>")
        parts.append(
            _table(
                ["cache", "items", "max items", "bytes", "evictions"],
                [
                    (
                        c.name,
                        fmt_count(c.items),
                        fmt_count(c.max_items),
                        fmt_bytes(c.bytes),
                        fmt_count(c.evictions),
                    )
                    for c in mem.caches
                ],
            )
        )
    return "".join(parts)


def _timeline(report: OptimizationReport) -> str:
    if not report.series:
        return _none("No time series recorded.")
    rows = []
    shown = [s for s in report.series if not is_unused_stream_series(s)]
    for s in shown:
        stats = series_summary(s)
        unit = s.unit or unit_for_metric(s.name)
        cells = ["-"] * 4 if stats is None else [fmt_unit_value(v, unit) for v in stats]
        spark = _e(sparkline(s.values(), width=16))
        rows.append(
            (
                s.key,
                unit or "-",
                fmt_count(len(s.points)),
                *cells,
                f'<td class="spark">{spark}</td>',
            )
        )
    hidden = len(report.series) - len(shown)
    table = _table(
        ["series", "unit", "points", "min", "mean", "max", "last", "trend"],
        rows,
        numeric_from=2,
        raw_last=True,
    )
    if hidden:
        table += f'<p class="note">{hidden} unused stream pool series (always 0) left out.</p>'
    return table


def _alerts(report: OptimizationReport) -> str:
    if not report.alerts:
        return _none("No alert fired.")
    rows = []
    for a in report.alerts:
        resolved = (
            "unresolved"
            if a.resolved_at is None
            else f"after {fmt_seconds(a.resolved_at - a.time)}"
        )
        rows.append(
            (
                fmt_time(a.time, report.started_at),
                a.rule,
                a.severity,
                fmt_number(a.value),
                a.message,
                resolved,
            )
        )
    return _table(
        ["time", "rule", "severity", "value", "message", "resolved"], rows, numeric_from=9
    )


def _actions(report: OptimizationReport) -> str:
    if not report.actions:
        return _none("No optimizer action taken.")
    rows = [
        (
            fmt_time(a.time, report.started_at),
            a.action,
            a.reason,
            ", ".join(f"{k}={fmt_json(v)}" for k, v in a.details.items()),
        )
        for a in report.actions
    ]
    return _table(["time", "action", "reason", "details"], rows, numeric_from=9)


_SECTIONS = (
    ("charts", "Charts"),
    ("plan", "Plan"),
    ("limiter", "Rate limiter"),
    ("pools", "Thread pools"),
    ("memory", "Memory and GC"),
    ("timeline", "Timeline"),
    ("alerts", "Alerts"),
    ("actions", "Optimizer actions"),
    ("notes", "Notes"),
)


def render_html(
    report: OptimizationReport, *, max_points: int = 1000, charts_note: str | None = None
) -> str:
    """The report as one self-contained HTML document (a string).

    Charts (see :data:`aimax.report.charts.CHART_TITLES`) are inline ``<svg>`` drawn
    with matplotlib, each line thinned to at most ``max_points`` points; a chart with
    nothing to draw shows a "No data" note. Raises ``RuntimeError`` naming
    ``pip install 'aimax-optimizer[report]'`` when matplotlib is missing, unless
    ``charts_note`` is given: then no chart is drawn and each shows that note instead.

    Example::

        >>> from aimax.report import OptimizationReport
        >>> page = render_html(OptimizationReport(title="<run>", created_at=0))
        >>> "&lt;run&gt;" in page and "http" not in page
        True
    """
    charts = (
        render_charts(report, max_points=max_points)
        if charts_note is None
        else undrawn_charts(charts_note)
    )
    notes = (
        "<ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>"
        if report.notes
        else _none("No notes.")
    )
    bodies = {
        "charts": "".join(_chart(c) for c in charts),
        "plan": _plan(report),
        "limiter": _limiter(report),
        "pools": _pools(report),
        "memory": _memory(report),
        "timeline": _timeline(report),
        "alerts": _alerts(report),
        "actions": _actions(report),
        "notes": notes,
    }
    nav = "".join(f'<a href="#{sid}">{_e(name)}</a>' for sid, name in _SECTIONS)
    sections = "".join(
        f'<section id="{sid}"><h2>{_e(name)}</h2>{bodies[sid]}</section>' for sid, name in _SECTIONS
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="aimax-optimizer {_e(__version__)}">'
        f"<title>{_e(report.title)}</title><style>{_CSS}</style></head>\n"
        "<body><main>"
        f"<header><h1>{_e(report.title)}</h1>"
        f'<p class="meta">created {_e(fmt_datetime(report.created_at))} &middot; '
        f"run {_e(fmt_duration(report.duration))} &middot; "
        f"{len(report.series)} series</p>"
        f"<nav>{nav}</nav>{_cards(report)}</header>\n"
        f"{sections}\n"
        f"<footer>aimax-optimizer {_e(__version__)} report &middot; "
        "self-contained: no network, no script</footer>"
        "</main></body></html>\n"
    )
