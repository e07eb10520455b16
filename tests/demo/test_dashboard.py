"""The live dashboard fits an 80 x 24 terminal with its priorities in order."""

from __future__ import annotations

import asyncio
import io

from rich.console import Console

from aimax.demo import scaled_max_limiter
from aimax.demo.dashboard import Dashboard
from aimax.demo.runner import DEMO_ACCESS_KEY, DEMO_BALANCES, DEMO_SECRET_KEY
from aimax.demo.workload import run_workload
from aimax.exchange.max import MaxClient
from aimax.exchange.simulator import MaxSimulator, SimulatorConfig
from aimax.optimizer import OptimizerConfig, SystemPerformanceOptimizer


def _render_after_a_short_run(pairs: int) -> str:
    with MaxSimulator(SimulatorConfig.scaled(0.1, n_markets=max(24, pairs))) as sim:
        sim.add_account(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_BALANCES)
        limiter = scaled_max_limiter(0.1)
        optimizer = SystemPerformanceOptimizer(
            OptimizerConfig(monitor_interval=0.2, refresh_period=0.5), limiter=limiter
        )
        try:
            optimizer.start_optimization()

            async def main() -> str:
                async with MaxClient(
                    base_url=sim.url,
                    access_key=DEMO_ACCESS_KEY,
                    secret_key=DEMO_SECRET_KEY,
                    limiter=limiter,
                ) as client:
                    markets = [m.id for m in await client.markets()][:pairs]
                    optimizer.optimize_for_trading_pairs(len(markets), refresh_period=0.5)
                    out = io.StringIO()
                    console = Console(file=out, width=80, height=24, color_system=None)
                    board = Dashboard(
                        optimizer, client, sim, console=console, duration=2.0, pairs=pairs
                    )
                    board.render()  # the first sample of the rates
                    await run_workload(client, optimizer, markets, duration=1.5)
                    console.print(board.render())
                    return out.getvalue()

            return asyncio.run(main())
        finally:
            optimizer.close()
            limiter.close()


def test_the_dashboard_fits_80_by_24_in_priority_order() -> None:
    text = _render_after_a_short_run(pairs=20)
    lines = text.rstrip("\n").splitlines()
    assert len(lines) <= 24, text
    assert all(len(line) <= 80 for line in lines), text
    assert "…" not in text
    assert "..." not in text
    order = ["budget", "wait (ms)", "bans", "pool", "memory"]
    positions = [next(i for i, line in enumerate(lines) if word in line) for word in order]
    assert positions == sorted(positions), text
    assert "req/s" in text
    assert "done/s" in text
    assert "ws_" not in text  # nothing streamed: the stream pools are not shown
    assert "rest_public" in text
