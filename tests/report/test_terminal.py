"""The rich terminal renderer: key figures shown, 100 columns, user text never markup."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from aimax.report import OptimizationReport, render_terminal, terminal_view


def _render(report: OptimizationReport, width: int = 100) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    render_terminal(report, console)
    return console.export_text()


def test_key_figures_are_shown(report: OptimizationReport) -> None:
    text = _render(report)
    expected = [
        "Demo run: 50 pairs",
        "2025-06-15 15:08:40 UTC",  # created_at
        "2m 0s",  # duration 120 s
        # plan
        "refresh_period_s",
        "12.5",
        "warning: 50 pairs cannot refresh every 5 s; at most 20 can",
        '{"io": 8, "strategy": 2}',
        "3.0 GiB",  # cache_budget_bytes, shown as a size
        "64.2 %",  # public_utilisation, shown as a percentage
        # limiter
        "rest_public",
        "1,200 / 60 s",
        "51,234",
        "93.4 %",
        "bans 1",
        "429 responses 3",
        "CANCEL",
        "4.0 ms",  # cancel p99
        "3.25 s",  # market data p99
        "rest_public / MARKET_DATA",
        # pools
        "8/16",
        "12,345",
        "20.0 ms",
        "strategy.policy: caller-runs",
        # memory
        "143.1 MiB",
        "171.7 MiB",
        "512.0 MiB",
        "high",  # pressure level 1
        "gen0 1,200",
        "tickers",
        # timeline
        "process_cpu_percent",
        'aimax_pool_size{pool="io"}',
        # alerts and actions
        "limiter_near_budget",
        "after 30.00 s",
        "pool_backlog",
        "unresolved",
        "slow_refresh",
        "rest_public near budget",
        "from_s=5, to_s=7.5",
        # notes
        "simulator on loopback, 50 pairs",
    ]
    missing = [item for item in expected if item not in text]
    assert not missing, missing


def test_fits_in_100_columns(report: OptimizationReport) -> None:
    text = _render(report)
    widest = max(len(line) for line in text.splitlines())
    assert widest <= 100


def test_empty_report_says_what_is_missing(empty_report: OptimizationReport) -> None:
    text = _render(empty_report)
    for phrase in (
        "nothing happened",
        "no plan recorded",
        "no limiter figures recorded",
        "no thread pools recorded",
        "no memory figures recorded",
        "no time series recorded",
        "no alert fired",
        "no action taken",
    ):
        assert phrase in text, phrase


def test_user_text_is_not_parsed_as_markup(report_factory: Any) -> None:
    report = report_factory.make(pool_name="[bold red]pool[/bold red] [link=x]")
    text = _render(report)
    assert "[bold red]pool[/bold red] [link=x]" in text


def test_terminal_view_is_a_renderable_for_a_live_dashboard(report: OptimizationReport) -> None:
    console = Console(width=120, record=True, file=io.StringIO(), color_system=None)
    console.print(terminal_view(report))
    assert "rest_public" in console.export_text()


def test_defaults_to_stdout(capsys: Any, empty_report: OptimizationReport) -> None:
    render_terminal(empty_report)
    assert "nothing happened" in capsys.readouterr().out
