"""The terminal renderer: rich panels and tables, readable at 100 columns."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

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
from aimax.report.model import OptimizationReport, Percentiles, WaitRow

__all__ = ["render_terminal", "terminal_view"]

PRESSURE_NAMES = {0: "normal", 1: "high", 2: "critical"}
SEVERITY_STYLES = {"critical": "bold red", "error": "red", "warning": "yellow", "info": "cyan"}


def _t(value: str, style: str = "") -> Text:
    """User text as a rich Text: never parsed as markup (a pool may be called "[red]")."""
    return Text(value, style=style)


def _table(title: str, *columns: str, right_from: int = 1, wide_first: int = 0) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        expand=False,
        pad_edge=False,
    )
    for i, name in enumerate(columns):
        numeric = i >= right_from
        table.add_column(
            name,
            justify="right" if numeric else "left",
            overflow="fold",
            no_wrap=numeric or name in ("time", "until"),
            min_width=wide_first if i == 0 else None,
        )
    return table


def _none(text: str) -> Text:
    return Text(text, style="dim italic")


def _header(report: OptimizationReport) -> RenderableType:
    line = Text()
    line.append("created ", style="dim")
    line.append(fmt_datetime(report.created_at))
    line.append("   run ", style="dim")
    line.append(fmt_duration(report.duration))
    line.append("   series ", style="dim")
    line.append(str(len(report.series)))
    line.append("   alerts ", style="dim")
    line.append(str(len(report.alerts)))
    line.append("   actions ", style="dim")
    line.append(str(len(report.actions)))
    return Panel(line, title=_t(report.title, "bold"), title_align="left", box=box.ROUNDED)


def _plan(report: OptimizationReport) -> RenderableType:
    plan = report.plan
    if plan is None:
        return Panel(_none("no plan recorded"), title="Plan", title_align="left")
    parts: list[RenderableType] = []
    if plan.figures:
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("figure", style="dim", overflow="fold")
        table.add_column("value", overflow="fold")
        for name, value in plan.figures.items():
            table.add_row(_t(name), _t(fmt_figure(name, value)))
        parts.append(table)
    else:
        parts.append(_none("no figures"))
    for warning in plan.warnings:
        parts.append(Text.assemble(("warning: ", "bold yellow"), (warning, "yellow")))
    return Panel(Group(*parts), title="Plan", title_align="left")


def _wait_rows(table: Table, label: str, row: WaitRow) -> None:
    s = row.seconds
    table.add_row(
        _t(label),
        fmt_count(row.count),
        fmt_seconds(s.p50),
        fmt_seconds(s.p95),
        fmt_seconds(s.p99),
    )


def _limiter(report: OptimizationReport) -> RenderableType:
    lim = report.limiter
    if lim is None:
        return Panel(_none("no limiter figures recorded"), title="Rate limiter", title_align="left")
    parts: list[RenderableType] = []
    summary = Text()
    summary.append("bans ", style="dim")
    summary.append(fmt_count(lim.bans), style="bold red" if lim.bans else "green")
    summary.append("   429 responses ", style="dim")
    summary.append(fmt_count(lim.responses_429), style="bold red" if lim.responses_429 else "green")
    parts.append(summary)
    if lim.pools:
        table = _table("Pools", "pool", "budget", "granted", "units", "rejected", "utilisation")
        for row in lim.pools:
            util_style = "red" if row.utilisation >= 0.95 else ""
            table.add_row(
                _t(row.pool),
                "-"
                if row.limit is None
                else f"{fmt_number(row.limit)} / {fmt_number(row.window)} s",
                fmt_count(row.granted),
                fmt_count(row.units),
                Text(fmt_count(row.rejected), style="yellow" if row.rejected else ""),
                Text(fmt_percent(row.utilisation), style=util_style),
            )
        parts.append(table)
    else:
        parts.append(_none("no limiter pools"))
    per_pool = [(f"{p.pool} / {w.priority}", w) for p in lim.pools for w in p.waits]
    if lim.waits or per_pool:
        table = _table("Waits per priority", "priority", "count", "p50", "p95", "p99")
        for wait in lim.waits:
            _wait_rows(table, wait.priority, wait)
        for label, wait in per_pool:
            _wait_rows(table, label, wait)
        parts.append(table)
    if lim.ban_events:
        table = _table("Bans", "time", "scope", "status", "until", "reason", right_from=9)
        for ban in lim.ban_events:
            table.add_row(
                fmt_time(ban.time, report.started_at),
                _t(ban.scope),
                "" if ban.status is None else str(ban.status),
                fmt_time(ban.until, report.started_at),
                _t(ban.reason),
            )
        parts.append(table)
    for key, value in lim.extra.items():
        parts.append(Text.assemble((f"{key}: ", "dim"), fmt_figure(key, value)))
    return Panel(Group(*parts), title="Rate limiter", title_align="left")


def _p(p: Percentiles) -> tuple[str, str, str]:
    return fmt_seconds(p.p50), fmt_seconds(p.p95), fmt_seconds(p.p99)


def _pools(report: OptimizationReport) -> RenderableType:
    if not report.pools:
        return Panel(_none("no thread pools recorded"), title="Thread pools", title_align="left")
    table = _table(
        "Activity", "pool", "size", "active", "queued", "completed", "failed", "rejected"
    )
    for row in report.pools:
        size = str(row.size) if row.max_size is None else f"{row.size}/{row.max_size}"
        table.add_row(
            _t(row.pool),
            size,
            str(row.active),
            str(row.queued),
            fmt_count(row.completed),
            Text(fmt_count(row.failed), style="red" if row.failed else ""),
            Text(fmt_count(row.rejected), style="yellow" if row.rejected else ""),
        )
    parts: list[RenderableType] = [table]
    timed = [r for r in report.pools if not (r.queue_wait.empty and r.run_time.empty)]
    if timed:
        latency = _table(
            "Latency",
            "pool",
            "queue p50",
            "queue p95",
            "queue p99",
            "run p50",
            "run p95",
            "run p99",
        )
        for row in timed:
            latency.add_row(_t(row.pool), *_p(row.queue_wait), *_p(row.run_time))
        parts.append(latency)
    for row in report.pools:
        for key, value in row.extra.items():
            parts.append(Text.assemble((f"{row.pool}.{key}: ", "dim"), fmt_json(value)))
    return Panel(Group(*parts), title="Thread pools", title_align="left")


def _memory(report: OptimizationReport) -> RenderableType:
    mem = report.memory
    if mem is None:
        return Panel(_none("no memory figures recorded"), title="Memory", title_align="left")
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("figure", style="dim")
    table.add_column("value", overflow="fold")
    table.add_row("RSS", fmt_bytes(mem.rss_bytes))
    table.add_row("peak RSS", fmt_bytes(mem.peak_rss_bytes))
    if mem.uss_bytes is not None:
        table.add_row("USS", fmt_bytes(mem.uss_bytes))
    table.add_row("budget", fmt_bytes(mem.budget_bytes))
    level = mem.pressure_level
    level_text = "-" if level is None else PRESSURE_NAMES.get(level, str(level))
    table.add_row("pressure", Text(level_text, style="red" if level else ""))
    gens = "   ".join(f"gen{g} {fmt_count(n)}" for g, n in sorted(mem.gc_collections.items()))
    table.add_row("GC collections", gens or "-")
    table.add_row(
        "GC pause total / max",
        f"{fmt_seconds(mem.gc_pause_total_seconds)} / {fmt_seconds(mem.gc_pause_max_seconds)}",
    )
    for key, value in mem.extra.items():
        table.add_row(_t(key), _t(fmt_figure(key, value)))
    parts: list[RenderableType] = [table]
    if mem.caches:
        caches = _table("Caches", "cache", "items", "max items", "bytes", "evictions")
        for cache in mem.caches:
            caches.add_row(
                _t(cache.name),
                fmt_count(cache.items),
                fmt_count(cache.max_items),
                fmt_bytes(cache.bytes),
                fmt_count(cache.evictions),
            )
        parts.append(caches)
    return Panel(Group(*parts), title="Memory and GC", title_align="left")


def _timeline(report: OptimizationReport) -> RenderableType:
    if not report.series:
        return Panel(_none("no time series recorded"), title="Timeline", title_align="left")
    table = _table("", "series", "points", "min", "mean", "max", "last", "trend", wide_first=30)
    table.columns[-1].justify = "left"
    for series in report.series:
        stats = series_summary(series)
        if stats is None:
            table.add_row(_t(series.key), "0", "-", "-", "-", "-", "")
            continue
        unit = series.unit or unit_for_metric(series.name)
        low, mean, high, last = (fmt_unit_value(v, unit) for v in stats)
        table.add_row(
            _t(series.key),
            fmt_count(len(series.points)),
            low,
            mean,
            high,
            last,
            Text(sparkline(series.values(), width=10), style="cyan"),
        )
    return Panel(table, title="Timeline", title_align="left")


def _alerts(report: OptimizationReport) -> RenderableType:
    if not report.alerts:
        return Panel(_none("no alert fired"), title="Alerts", title_align="left")
    table = _table("", "time", "rule", "severity", "value", "message", "resolved", right_from=9)
    for alert in report.alerts:
        resolved = (
            "unresolved"
            if alert.resolved_at is None
            else f"after {fmt_seconds(alert.resolved_at - alert.time)}"
        )
        table.add_row(
            fmt_time(alert.time, report.started_at),
            _t(alert.rule),
            _t(alert.severity, SEVERITY_STYLES.get(alert.severity.lower(), "")),
            fmt_number(alert.value),
            _t(alert.message),
            resolved,
        )
    return Panel(table, title="Alerts", title_align="left")


def _actions(report: OptimizationReport) -> RenderableType:
    if not report.actions:
        return Panel(_none("no action taken"), title="Optimizer actions", title_align="left")
    table = _table("", "time", "action", "reason", "details", right_from=9)
    for action in report.actions:
        details = ", ".join(f"{k}={fmt_json(v)}" for k, v in action.details.items())
        table.add_row(
            fmt_time(action.time, report.started_at),
            _t(action.action, "bold"),
            _t(action.reason),
            _t(details),
        )
    return Panel(table, title="Optimizer actions", title_align="left")


def _notes(notes: Sequence[str]) -> RenderableType:
    return Panel(Group(*(_t(f"- {n}") for n in notes)), title="Notes", title_align="left")


def terminal_view(report: OptimizationReport) -> Group:
    """The report as one rich renderable (for a live dashboard or your own console).

    Example::

        >>> import io
        >>> from rich.console import Console
        >>> from aimax.report import OptimizationReport
        >>> console = Console(width=100, record=True, file=io.StringIO())
        >>> console.print(terminal_view(OptimizationReport(title="t", created_at=0)))
        >>> "no plan recorded" in console.export_text()
        True
    """
    parts: list[RenderableType] = [
        _header(report),
        _plan(report),
        _limiter(report),
        _pools(report),
        _memory(report),
        _timeline(report),
        _alerts(report),
        _actions(report),
    ]
    if report.notes:
        parts.append(_notes(report.notes))
    return Group(*parts)


def render_terminal(report: OptimizationReport, console: Console | None = None) -> None:
    """Print the report as rich panels and tables (to ``console``, default stdout).

    Example::

        >>> from aimax.report import OptimizationReport, render_terminal
        >>> render_terminal(OptimizationReport(title="run", created_at=1_750_000_000))
        ... # doctest: +SKIP
    """
    (console or Console()).print(terminal_view(report))
