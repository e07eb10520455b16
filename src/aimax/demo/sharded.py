"""``aimax demo --processes K``: the pairs sharded over K processes that share one
MAX budget through Redis (the given URL, or a private server started for the run).

The parent starts the simulator (one exchange, one IP budget for everyone) and, if
needed, Redis; each child runs the ordinary single-process demo on its share of the
pairs with a Redis-backed limiter and writes its own report under ``shard-<i>/``.
The parent checks the exchange's own count: no 429 means the shared budget held.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, cast

import httpx
from rich.console import Console
from rich.table import Table

from aimax._redisserver import RedisServer
from aimax.demo.runner import (
    DEMO_ACCESS_KEY,
    DEMO_BALANCES,
    DEMO_SECRET_KEY,
    DemoConfig,
    DemoResult,
    shard_config,
)
from aimax.errors import AimaxError
from aimax.exchange.simulator import MaxSimulator, SimulatorConfig

__all__ = ["run_sharded"]


def _child(config: DemoConfig, results: multiprocessing.Queue[object]) -> None:
    from aimax.demo.runner import run_demo

    try:
        result = run_demo(config, console=Console(quiet=True))
        results.put(("ok", config.shard, result))
    except BaseException as exc:  # report every failure to the parent, then re-raise
        results.put(("error", config.shard, f"{type(exc).__name__}: {exc}"))
        raise


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with RedisServer() as server:
        yield server.url


def run_sharded(config: DemoConfig, *, console: Console | None = None) -> DemoResult:
    """Run ``config.processes`` shards; returns the combined result."""
    console = console or Console()
    config.output.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    sim_config = SimulatorConfig.scaled(
        config.scale, n_markets=max(24, config.pairs), seed=config.seed
    )
    with MaxSimulator(sim_config) as sim, _redis(config.redis_url) as redis_url:
        sim.add_account(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_BALANCES)
        listed = httpx.get(f"{sim.url}/api/v3/markets", timeout=10).json()
        markets = [m["id"] for m in listed if m.get("status") == "active"][: config.pairs]
        shards = [markets[i :: config.processes] for i in range(config.processes)]
        results: multiprocessing.Queue[object] = ctx.Queue()
        base = replace(config, redis_url=redis_url)
        procs = [
            ctx.Process(
                target=_child,
                args=(shard_config(base, i, shard, sim.url), results),
                name=f"aimax-demo-shard-{i}",
            )
            for i, shard in enumerate(shards)
        ]
        console.print(
            f"[bold]aimax demo[/bold]: {config.pairs} pairs over {config.processes} processes, "
            f"one budget through Redis at {redis_url}"
        )
        for proc in procs:
            proc.start()
        start = time.monotonic()
        outcomes: dict[int, DemoResult] = {}
        errors: list[str] = []
        deadline = start + config.duration + 120
        while len(outcomes) + len(errors) < len(procs) and time.monotonic() < deadline:
            try:
                status, shard, payload = cast(tuple[str, int, Any], results.get(timeout=5.0))
            except Exception:  # queue.Empty: print progress and keep waiting
                stats = sim.stats()
                console.print(
                    f"[{time.monotonic() - start:5.1f}s] exchange served {stats.requests} "
                    f"requests, {stats.rate_limited} answered 429",
                    highlight=False,
                )
                continue
            if status == "ok":
                outcomes[shard] = payload
            else:
                errors.append(f"shard {shard}: {payload}")
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                errors.append(f"{proc.name} did not stop and was killed")
        stats = sim.stats()
    if errors or len(outcomes) != len(procs):
        missing = sorted(set(range(len(procs))) - set(outcomes))
        raise AimaxError(f"sharded demo failed: {errors or f'no result from shards {missing}'}")
    table = Table(title=f"{config.processes} processes, one budget")
    for column in ("shard", "pairs", "requests", "429s", "bans", "plan period", "measured"):
        table.add_column(column, justify="right")
    ordered = tuple(outcomes[i] for i in sorted(outcomes))
    for i, r in enumerate(ordered):
        table.add_row(
            str(i),
            str(r.pairs),
            str(r.requests),
            str(r.responses_429),
            str(r.bans),
            f"{r.plan_period:.2f}s",
            "-" if r.measured_period is None else f"{r.measured_period:.2f}s",
        )
    console.print(table)
    peak = max(stats.peak_public.values(), default=0)
    console.print(
        f"exchange: {stats.requests} requests, {stats.rate_limited} answered 429, "
        f"peak {peak} public requests in one window (limit {sim_config.public_limit})"
    )
    summary = {
        "processes": config.processes,
        "pairs": config.pairs,
        "exchange_requests": stats.requests,
        "exchange_429": stats.rate_limited,
        "peak_public_in_window": peak,
        "public_limit": sim_config.public_limit,
        "shards": [str(r.json_path) for r in ordered],
    }
    summary_path = config.output / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    for r in ordered:
        console.print(f"[bold]report:[/bold] {r.html_path}")
    return DemoResult(
        json_path=summary_path,
        html_path=ordered[0].html_path,
        pairs=config.pairs,
        requests=sum(r.requests for r in ordered),
        responses_429=stats.rate_limited,
        bans=stats.bans_started,
        counters={"shards": len(ordered)},
        plan_period=max(r.plan_period for r in ordered),
        measured_period=max((r.measured_period or 0.0) for r in ordered) or None,
        shards=ordered,
    )
