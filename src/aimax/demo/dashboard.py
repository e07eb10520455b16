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


def _table(first: str, *columns: str) -> Table:
    """A borderless table: a header line and one line a row."""
    table = Table(box=None, expand=True, padding=(0, 1), header_style="bold")
    table.add_column(first, no_wrap=True)
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    return table


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
        self._last: tuple[float, dict[str, int], dict[str, int]] | None = None

    def _rates(self, grants: dict[str, int], done: dict[str, int]) -> tuple[dict[str, float], ...]:
        """Per-second rates since the previous render (empty on the first)."""
        now = time.monotonic()
        last, self._last = self._last, (now, grants, done)
        if last is None or now <= last[0]:
            return {}, {}
        span = now - last[0]
        return (
            {k: (v - last[1].get(k, 0)) / span for k, v in grants.items()},
            {k: (v - last[2].get(k, 0)) / span for k, v in done.items()},
        )

    def render(self) -> Group:
        """The dashboard as a rich renderable, within 80 x 24 by priority: budget,
        waits per class, bans, the pools in use, memory (also used by tests)."""
        opt = self.optimizer
        elapsed = min(self.duration, time.monotonic() - self._start)
        stats = opt.limiter.statistics()
        pool_stats = sorted(opt.pools.get_pool_stats().items())
        req_rate, done_rate = self._rates(
            {n: p.grants for n, p in stats.pools.items()},
            {n: s.completed for n, s in pool_stats},
        )
        head = Table.grid(expand=True)
        head.add_column()
        head.add_column(justify="right")
        head.add_row(
            f"[bold]aimax demo[/bold] {self.pairs} pairs, refresh {opt.refresh_period:.2f}s",
            f"{elapsed:5.1f}s / {self.duration:g}s",
        )
        head.add_row(ProgressBar(total=self.duration, completed=elapsed), "")

        budget = _table("budget", "in window", "use", "req/s", "rejected")
        for name, p in stats.pools.items():
            if p.grants == 0 and name.startswith("ws_"):
                continue  # nothing streamed: an unused pool is noise
            budget.add_row(
                name,
                f"{p.in_window}/{p.effective_limit}",
                f"{p.utilisation:.0%}",
                f"{req_rate.get(name, 0.0):.1f}",
                str(p.rejections + p.timeouts),
            )
        waits = _table("wait (ms)", "grants", "p50", "p95", "p99")
        for name, c in stats.classes.items():
            waits.add_row(name, str(c.grants), _ms(c.wait_p50), _ms(c.wait_p95), _ms(c.wait_p99))

        exchange = ""
        if self.sim is not None:
            sim = self.sim.stats()
            exchange = f"; exchange {sim.requests} served, {sim.rate_limited} answered 429"
        bans = f"[{'red' if stats.bans else 'green'}]bans {stats.bans}[/]{exchange}"

        pools = _table("pool", "size now/max", "active", "queued", "done/s")
        for name, ps in pool_stats:
            if ps.completed == 0 and ps.active == 0 and ps.queued == 0:
                continue  # unused pools are not shown
            pools.add_row(
                name,
                f"{ps.size}/{ps.max_size}",
                str(ps.active),
                str(ps.queued),
                f"{done_rate.get(name, 0.0):.1f}",
            )

        mem = opt.memory.statistics()
        alerts = opt.monitor.check_resource_limits()
        memory = (
            f"memory {_mib(mem.rss_bytes)} of {_mib(mem.budget_bytes)} "
            f"({mem.level.name.lower()}), GC max {_ms(mem.gc.pause_max)} ms; alerts "
            + (", ".join(a.rule.name for a in alerts) if alerts else "[green]none[/green]")
        )
        return Group(head, budget, waits, bans, pools, memory)

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
