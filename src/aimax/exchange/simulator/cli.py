"""``aimax simulate``: run the MAX simulator in the foreground until Ctrl-C."""

from __future__ import annotations

import threading

import click

__all__ = ["command"]


def _parse_balance(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    balances: dict[str, str] = {}
    for item in values:
        currency, sep, amount = item.partition("=")
        if not sep or not currency or not amount:
            raise click.BadParameter(f"expected CURRENCY=AMOUNT, got {item!r}")
        balances[currency.lower()] = amount
    return balances


@click.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port (0 picks a free one).",
)
@click.option(
    "--markets",
    "n_markets",
    type=click.IntRange(1, 100_000),
    default=24,
    show_default=True,
    help="Number of markets (real MAX pairs first, then synthetic).",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0.001, max=1000),
    default=1.0,
    show_default=True,
    help="Time scale of MAX's limits: 0.1 means 120 requests per 6 s and 6 s bans.",
)
@click.option(
    "--ban",
    "ban_seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="Ban length in seconds (default: the scaled window).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of requests answered 5xx.",
)
@click.option(
    "--timeout-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of requests that hang past any client timeout.",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Median added latency in seconds (log-normal).",
)
@click.option("--maintenance", is_flag=True, help="Start in maintenance mode.")
@click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="KEY:SECRET",
    help="An API key pair to accept (repeatable).",
)
@click.option(
    "--balance",
    "balances",
    multiple=True,
    metavar="CURRENCY=AMOUNT",
    callback=_parse_balance,
    help="Starting balance of every --account (repeatable).",
)
def command(
    *,
    host: str,
    port: int,
    n_markets: int,
    scale: float,
    ban_seconds: float | None,
    seed: int,
    error_rate: float,
    timeout_rate: float,
    latency: float,
    maintenance: bool,
    accounts: tuple[str, ...],
    balances: dict[str, str],
) -> None:
    """Run a local MAX-compatible exchange (v3 REST) until Ctrl-C."""
    from aimax.exchange.simulator.config import Latency, SimulatorConfig
    from aimax.exchange.simulator.server import MaxSimulator

    overrides: dict[str, object] = {
        "n_markets": n_markets,
        "seed": seed,
        "error_rate": error_rate,
        "timeout_rate": timeout_rate,
        "maintenance": maintenance,
    }
    if ban_seconds is not None:
        overrides["ban_seconds"] = ban_seconds
    if latency > 0:
        overrides["latency"] = Latency.lognormal(latency)
    config = SimulatorConfig.scaled(scale, **overrides)
    pairs = []
    for item in accounts:
        key, sep, secret = item.partition(":")
        if not sep or not key or not secret:
            raise click.BadParameter(
                "expected KEY:SECRET, got an item without ':'", param_hint="--account"
            )
        pairs.append((key, secret))
    sim = MaxSimulator(config, host=host, port=port)
    for key, secret in pairs:
        sim.add_account(key, secret, balances)
    stop = threading.Event()
    with sim:
        click.echo(
            f"MAX simulator on {sim.url}: {n_markets} markets, "
            f"{config.public_limit}/{config.window_s:g}s public per IP, "
            f"{config.private_limit}/{config.window_s:g}s private per account, "
            f"{len(pairs)} account(s). Ctrl-C to stop."
        )
        try:
            while not stop.wait(3600):
                pass
        except KeyboardInterrupt:
            pass
        stats = sim.stats()
    click.echo(
        f"stopped: {stats.requests} requests, {stats.rate_limited} answered 429, "
        f"{stats.bans_started} bans"
    )
