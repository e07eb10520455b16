"""The ``aimax`` command.

Subcommands are imported lazily so ``aimax --help`` stays fast and optional extras
stay optional.
"""

from __future__ import annotations

import copy
import errno
import functools
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from aimax._version import __version__

#: Subcommands that live with their component, imported only when used.
LAZY_COMMANDS = {
    "simulate": "aimax.exchange.simulator.cli:command",
    "monitor": "aimax.monitor.cli:command",
    "report": "aimax.report.cli:command",
}


def _os_error_line(exc: OSError, params: dict[str, Any]) -> str:
    """One line for an OSError a command let through (a busy port, a bad path)."""
    reason = exc.strerror or str(exc)
    if "host" in params and "port" in params and exc.errno in _LISTEN_ERRNOS:
        return f"cannot listen on {params['host']}:{params['port']}: {reason}"
    if exc.filename is not None:
        return f"{reason}: {exc.filename}"
    return reason


_LISTEN_ERRNOS = frozenset({errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES})


def _one_line_errors(command: click.Command) -> click.Command:
    """A copy of ``command`` whose deliberate errors (aimax's, and the operating
    system's: a busy port, an address not on this host) end in one line, exit 1."""
    original = command.callback
    if original is None:
        return command

    @functools.wraps(original)
    def callback(*args: Any, **kwargs: Any) -> Any:
        from aimax.errors import AimaxError

        try:
            return original(*args, **kwargs)
        except AimaxError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            raise click.ClickException(_os_error_line(exc, kwargs)) from exc

    wrapped = copy.copy(command)
    wrapped.callback = callback
    return wrapped


class _LazyGroup(click.Group):
    """A group whose component commands are imported on first use; every command's
    deliberate errors end in one line, not a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module, _, attr = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command)
            return _one_line_errors(command)
        command = super().get_command(ctx, cmd_name)
        return None if command is None else _one_line_errors(command)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aimax")
def main() -> None:
    """aimax: rate limiting, thread pools, memory and monitoring for MAX trading bots."""


@main.command("demo")
@click.option(
    "--pairs",
    "-n",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Trading pairs to run.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to run (at the default --scale 0.1, ten of MAX's windows).",
)
@click.option(
    "--period",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Wanted refresh period per pair (s); the plan stretches it to fit the budget.",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.1,
    show_default=True,
    help="Scale MAX's windows and budgets (0.1: 120 requests per 6 s) for short runs.",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Shard the pairs over K processes sharing one budget through Redis.",
)
@click.option(
    "--redis",
    "redis_url",
    default=None,
    help="Redis URL for --processes (default: a private server for the run).",
)
@click.option(
    "--live",
    is_flag=True,
    help="Use the real MAX (public endpoints; private read-only calls with "
    "MAX_ACCESS_KEY/MAX_SECRET_KEY set; never orders).",
)
@click.option("--no-trade", is_flag=True, help="No orders or cancels.")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("aimax-report"),
    show_default=True,
    help="Where reports go.",
)
@click.option("--no-dashboard", is_flag=True, help="Plain progress lines instead of the dashboard.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    type=click.Choice(["429-storm", "latency", "errors"]),
    help="Make the local exchange misbehave so a defence shows (repeatable): "
    "429-storm (429s a third of the way in), latency (50 ms median), errors (5 % 5xx).",
)
@click.option(
    "--compare/--no-compare",
    default=True,
    show_default=True,
    help="Run a naive client (httpx + asyncio.gather, no limiter) side by side on its "
    "own simulator; both judged by the exchange's counters.",
)
def demo_command(
    *,
    pairs: int,
    duration: float,
    period: float,
    scale: float,
    processes: int,
    redis_url: str | None,
    live: bool,
    no_trade: bool,
    output: Path,
    no_dashboard: bool,
    faults: tuple[str, ...],
    compare: bool,
) -> None:
    """Run the multi-pair bot workload against a local MAX simulator, under the
    optimizer, with a live dashboard; write an HTML and a JSON report.

    Ctrl-C or SIGTERM stops the run: the reports cover what ran, every process and
    server of the run stops, and the exit status is 130 / 143."""
    from aimax.demo import DemoConfig, run_demo
    from aimax.demo.stop import StopRequest

    stop = StopRequest()
    with stop.handling_signals():
        config = DemoConfig(
            pairs=pairs,
            duration=duration,
            refresh_period=period,
            scale=scale,
            processes=processes,
            redis_url=redis_url,
            live=live,
            trade=not no_trade,
            output=output,
            dashboard=not no_dashboard,
            compare=compare and processes == 1 and not live,
            faults=faults,
        )
        result = run_demo(config, stop=stop)
    if result.interrupted:
        click.echo(f"interrupted by {result.interrupted}: the reports cover what ran")
    click.echo(
        f"{result.pairs} pairs, {result.requests} requests, {result.responses_429} answered 429, "
        f"{result.bans} bans; refresh planned {result.plan_period:.2f}s, measured "
        + ("-" if result.measured_period is None else f"{result.measured_period:.2f}s")
    )
    if result.naive is not None:
        _print_side_by_side(result)
    if stop.exit_code:
        sys.exit(stop.exit_code)


def _print_side_by_side(result: Any) -> None:
    """Naive client against aimax, each as its own exchange counted it."""
    naive = result.naive
    table = Table(title="judged by the exchange (the simulator's own counters)")
    for column in ("client", "requests", "429s", "bans", "first ban", "busiest window"):
        table.add_column(column, justify="right" if column != "client" else "left")
    window = "-"
    if result.peak_in_window is not None and result.public_limit:
        window = f"{result.peak_in_window}/{result.public_limit}"
    table.add_row(
        "naive (gather, no limiter)",
        str(naive.requests),
        str(naive.responses_429),
        str(naive.bans),
        "-" if naive.first_ban_after is None else f"{naive.first_ban_after:.1f}s",
        "-",
    )
    table.add_row(
        "aimax",
        str(result.requests),
        str(result.responses_429),
        str(result.bans),
        "-",
        window,
    )
    Console().print(table)
    if result.order_admission_p99 is not None:
        click.echo(
            f"aimax orders and cancels: admitted by the limiter in p99 "
            f"{result.order_admission_p99 * 1000:.1f} ms while market data filled the budget"
        )
    if result.order_wait_p99 is not None:
        click.echo(
            f"aimax orders and cancels: p99 {result.order_wait_p99 * 1000:.1f} ms "
            "from call to answer (exchange round trip included)"
        )


@main.command("plan")
@click.option("--pairs", "-n", type=click.IntRange(min=1), required=True, help="Trading pairs.")
@click.option(
    "--period",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Wanted refresh period per pair, in seconds.",
)
@click.option(
    "--share",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=1.0,
    show_default=True,
    help="This process's share of the IP/account budget (1/K for K processes).",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0, min_open=True),
    default=0.15,
    show_default=True,
    help="Expected REST round trip in seconds (for Little's law).",
)
@click.option(
    "--depth",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Depth calls per pair per cycle.",
)
@click.option(
    "--klines",
    type=click.FloatRange(min=0),
    default=0.2,
    show_default=True,
    help="K-line calls per pair per cycle.",
)
@click.option(
    "--memory-mb",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Memory budget in MiB (the plan warns when the caches need more than a quarter).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(
    *,
    pairs: int,
    period: float,
    share: float,
    latency: float,
    depth: float,
    klines: float,
    memory_mb: int,
    as_json: bool,
) -> None:
    """Print the plan for N pairs: budget per pair, refresh period, pools, caches."""
    from aimax.planning import ExchangeBudget, PairWorkload, plan_for_pairs

    plan = plan_for_pairs(
        pairs,
        refresh_period=period,
        workload=PairWorkload(depth=depth, klines=klines),
        budget=ExchangeBudget.for_max(share=share),
        latency=latency,
        cpu_count=os.cpu_count() or 1,
        memory_budget_bytes=memory_mb * 1024 * 1024,
    )
    if as_json:
        click.echo(json.dumps(plan.as_dict(), indent=2))
        return
    console = Console()
    table = Table(title=f"Plan for {plan.n_pairs} pairs", show_lines=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("why", overflow="fold")
    table.add_row("feasible at wanted period", "yes" if plan.feasible else "[red]no[/red]", "")
    table.add_row("wanted period", f"{plan.wanted_period:g} s", "")
    table.add_row(
        "fastest sustainable period",
        f"{plan.sustainable_period:.2f} s",
        plan.reasons["refresh_period"],
    )
    table.add_row("period to run at", f"{plan.refresh_period:.2f} s", "")
    table.add_row("max pairs at wanted period", str(plan.max_pairs_at_period), "")
    table.add_row("market-data budget", f"{plan.public_rate:.2f} req/s", "")
    table.add_row("  per pair", f"{plan.public_per_pair:.4f} req/s", "fixed budget / n")
    table.add_row("private budget", f"{plan.private_rate:.2f} req/s", "")
    table.add_row("market-data use", f"{plan.public_utilisation:.0%}", "")
    for pool, size in plan.pool_sizes.items():
        table.add_row(f"pool {pool}", str(size), plan.reasons[pool])
    table.add_row(
        "cache rows per pair", str(plan.cache_items_per_pair), plan.reasons["cache_items_per_pair"]
    )
    table.add_row("cache memory", f"{plan.cache_budget_bytes / 2**20:.1f} MiB", "")
    table.add_row(
        "period with streaming", f"{plan.streaming_period:.2f} s", "books and tickers on the stream"
    )
    console.print(table)
    for line in plan.batch_endpoints:
        console.print(f"[green]batch:[/green] {line}")
    for line in plan.warnings:
        console.print(f"[bold red]warning:[/bold red] {line}")
    for line in plan.suggestions:
        console.print(f"[cyan]would serve it:[/cyan] {line}")
