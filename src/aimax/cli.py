"""The ``aimax`` command.

Subcommands are imported lazily so ``aimax --help`` stays fast and optional extras
stay optional.
"""

from __future__ import annotations

import json
import os

import click
from rich.console import Console
from rich.table import Table

from aimax._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aimax")
def main() -> None:
    """aimax: rate limiting, thread pools, memory and monitoring for MAX trading bots."""


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
    help="Memory budget in MiB (for cache sizes).",
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
        budget=ExchangeBudget(share=share),
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
        "cache items per pair", str(plan.cache_items_per_pair), plan.reasons["cache_items_per_pair"]
    )
    console.print(table)
    for line in plan.batch_endpoints:
        console.print(f"[green]batch:[/green] {line}")
    for line in plan.warnings:
        console.print(f"[bold red]warning:[/bold red] {line}")
