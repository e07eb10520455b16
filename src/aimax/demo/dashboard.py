"""The demo's live dashboard: budget use, pools, memory, alerts and progress.

On a terminal it redraws in place (rich ``Live``) twice a second; elsewhere (a pipe,
CI) it prints one progress line every few seconds instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from aimax.exchange.max import MaxClient
from aimax.exchange.simulator import MaxSimulator
from aimax.optimizer import SystemPerformanceOptimizer

__all__ = ["Dashboard"]


def _mib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.1f} MiB"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


class Dashboard:
    """``async with Dashboard(...)``: shows the run while the body runs."""

    def __init__(
        self,
        optimizer: SystemPerformanceOptimizer,
        client: MaxClient,
        sim: MaxSimulator | None,
        *,
        console: Console,
        duration: float,
        pairs: int,
        enabled: bool = True,
        refresh: float = 0.5,
        line_every: float = 5.0,
    ) -> None:
        self.optimizer = optimizer
        self.client = client
        self.sim = sim
        self.console = console
        self.duration = duration
        self.pairs = pairs
        self.enabled = enabled
        self.refresh = refresh
        self.line_every = line_every
        self._start = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._live: Live | None = None

    def render(self) -> Group:
        """The dashboard as a rich renderable (also used by tests)."""
        opt = self.optimizer
        elapsed = min(self.duration, time.monotonic() - self._start)
        head = Table.grid(expand=True)
        head.add_column()
        head.add_column(justify="right")
        head.add_row(
            f"[bold]aimax demo[/bold]: {self.pairs} pairs, refresh every {opt.refresh_period:.2f}s",
            f"{elapsed:5.1f}s / {self.duration:g}s",
        )
        head.add_row(ProgressBar(total=self.duration, completed=elapsed, width=60), "")

        stats = opt.limiter.statistics()
        budget = Table(title="rate-limit budget", expand=True)
        for column in ("pool", "in window", "use", "grants", "rejected"):
            budget.add_column(column, justify="right" if column != "pool" else "left")
        for name, p in stats.pools.items():
            if p.grants == 0 and name.startswith("ws_"):
                continue
            budget.add_row(
                name,
                f"{p.in_window}/{p.effective_limit}",
                f"{p.utilisation:.0%}",
                str(p.grants),
                str(p.rejections + p.timeouts),
            )
        waits = Table(title="limiter waits (ms)", expand=True)
        for column in ("class", "grants", "p50", "p95", "p99"):
            waits.add_column(column, justify="right" if column != "class" else "left")
        for name, c in stats.classes.items():
            waits.add_row(name, str(c.grants), _ms(c.wait_p50), _ms(c.wait_p95), _ms(c.wait_p99))

        pools = Table(title="thread pools", expand=True)
        for column in ("pool", "size now/max", "active", "queued", "done", "failed"):
            pools.add_column(column, justify="right" if column != "pool" else "left")
        for name, s in sorted(opt.pools.get_pool_stats().items()):
            pools.add_row(
                name,
                f"{s.size}/{s.max_size}",
                str(s.active),
                str(s.queued),
                str(s.completed),
                str(s.failed),
            )

        mem = opt.memory.statistics()
        client = self.client.statistics()
        facts = Table.grid(padding=(0, 2))
        facts.add_column()
        facts.add_column()
        facts.add_row(
            "memory",
            f"{_mib(mem.rss_bytes)} of {_mib(mem.budget_bytes)} ({mem.level.name.lower()})",
        )
        facts.add_row(
            "GC", f"{mem.gc.collections} collections, max pause {_ms(mem.gc.pause_max)} ms"
        )
        facts.add_row("requests", f"{client.requests} sent, {stats.bans} bans")
        if self.sim is not None:
            sim = self.sim.stats()
            facts.add_row("exchange", f"{sim.requests} served, {sim.rate_limited} answered 429")
        alerts = opt.monitor.check_resource_limits()
        facts.add_row(
            "alerts",
            ", ".join(a.rule.name for a in alerts) if alerts else "[green]none[/green]",
        )
        return Group(
            Panel(head),
            budget,
            waits,
            pools,
            Panel(facts, title="process"),
        )

    def _line(self) -> str:
        opt = self.optimizer
        elapsed = time.monotonic() - self._start
        stats = opt.limiter.statistics()
        use = ", ".join(
            f"{n} {p.utilisation:.0%}" for n, p in stats.pools.items() if not n.startswith("ws_")
        )
        return (
            f"[{elapsed:5.1f}s/{self.duration:g}s] {self.client.statistics().requests} requests; "
            f"budget {use}; bans {stats.bans}; refresh {opt.refresh_period:.2f}s"
        )

    async def _loop(self) -> None:
        last_line = time.monotonic()
        while True:
            await asyncio.sleep(self.refresh)
            if self._live is not None:
                self._live.update(self.render())
            elif time.monotonic() - last_line >= self.line_every:
                last_line = time.monotonic()
                self.console.print(self._line(), highlight=False)

    async def __aenter__(self) -> Dashboard:
        self._start = time.monotonic()
        if not self.enabled:
            return self
        if self.console.is_terminal:
            self._live = Live(self.render(), console=self.console, refresh_per_second=4)
            self._live.start()
        else:  # a pipe: one line now, so a reader sees the run has started
            self.console.print(self._line(), highlight=False)
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._live is not None:
            self._live.update(self.render())
            self._live.stop()
            self._live = None
