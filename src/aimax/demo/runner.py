"""``aimax demo``: the multi-pair workload against the local MAX simulator (or the
real MAX with ``live``), under the optimizer, with a live dashboard and reports.

    >>> from aimax.demo import DemoConfig, run_demo        # doctest: +SKIP
    >>> result = run_demo(DemoConfig(pairs=5, duration=20))  # doctest: +SKIP
    >>> result.html_path                                   # doctest: +SKIP
    PosixPath('aimax-report/report.html')
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from aimax.demo.dashboard import Dashboard
from aimax.demo.naive import NaiveOutcome, run_naive
from aimax.demo.stop import StopRequest
from aimax.demo.workload import WorkloadCounters, run_workload
from aimax.errors import ConfigurationError
from aimax.exchange.max import DEFAULT_BASE_URL, MaxClient
from aimax.exchange.simulator import Latency, MaxSimulator, SimulatorConfig
from aimax.optimizer import OptimizerConfig, SystemPerformanceOptimizer
from aimax.ratelimit import APIRateLimiter, LimiterBackend, RateLimit
from aimax.ratelimit.max_profile import MAX_POOLS, max_kinds
from aimax.report import OptimizationReport, render_terminal, write_html, write_json
from aimax.report.charts import charts_unavailable

__all__ = ["DemoConfig", "DemoResult", "masked_url", "run_demo", "scaled_max_limiter"]

logger = logging.getLogger(__name__)

FAULTS = {
    "429-storm": "a third of the way in, the exchange answers 429 to 10 requests",
    "latency": "every answer is slowed (log-normal, median 50 ms)",
    "errors": "5 % of the answers are 5xx errors",
}
"""The demo's ``--fault`` choices and what each does."""

DEMO_ACCESS_KEY = "aimax-demo-access-key"
DEMO_SECRET_KEY = "aimax-demo-secret-key"  # the local simulator only
DEMO_BALANCES = {"twd": "1000000000", "usdt": "10000000", "btc": "100", "eth": "1000"}


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """What ``aimax demo`` runs.

    ``scale`` < 1 shortens MAX's windows and budgets together (0.1: 120 requests per
    6 s) for both the simulator and the limiter, so short runs exercise full windows.
    ``processes`` > 1 shards the pairs over that many processes sharing one budget
    through Redis (``redis_url``, or a private server started for the run).
    ``live`` points the workload at the real MAX (public endpoints only; private
    read-only calls when ``MAX_ACCESS_KEY``/``MAX_SECRET_KEY`` are set; never orders).
    """

    pairs: int = 5
    duration: float = 30.0
    refresh_period: float = 2.0
    scale: float = 1.0
    processes: int = 1
    redis_url: str | None = None
    live: bool = False
    trade: bool = True
    output: Path = Path("aimax-report")
    dashboard: bool = True
    compare: bool = False
    faults: tuple[str, ...] = ()
    """Faults the local exchange injects (:data:`FAULTS`) so each defence shows."""
    """Also run a naive client (httpx + ``asyncio.gather``, no limiter) on its own
    simulator, and judge both by the exchanges' own counters (local runs only)."""
    seed: int = 0
    # set by the sharded runner for its children
    base_url: str | None = None
    markets: tuple[str, ...] = ()
    shard: int | None = None
    expected_processes: int = 1
    warm_start: float = 0.0
    extra_notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if isinstance(self.pairs, bool) or not isinstance(self.pairs, int) or self.pairs < 1:
            raise ConfigurationError(f"pairs must be a positive integer, got {self.pairs!r}")
        for name in ("duration", "refresh_period", "scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(self.processes, int) or self.processes < 1:
            raise ConfigurationError(f"processes must be >= 1, got {self.processes!r}")
        if self.processes > self.pairs:
            raise ConfigurationError(
                f"processes ({self.processes}) cannot exceed pairs ({self.pairs})"
            )
        if self.live and self.processes > 1:
            raise ConfigurationError("--live runs in one process")
        if self.redis_url is not None and (
            not isinstance(self.redis_url, str)
            or not self.redis_url.startswith(("redis://", "rediss://", "unix://"))
        ):
            raise ConfigurationError(
                "redis_url must start with redis://, rediss:// or unix://, got "
                f"{masked_url(str(self.redis_url))!r}"
            )
        object.__setattr__(self, "output", Path(self.output))
        object.__setattr__(self, "faults", tuple(self.faults))
        for fault in self.faults:
            if fault not in FAULTS:
                raise ConfigurationError(f"fault must be one of {', '.join(FAULTS)}, got {fault!r}")
        if self.live and self.faults:
            raise ConfigurationError("--fault needs the local simulator, not --live")


@dataclass(frozen=True)
class DemoResult:
    """Where the reports are and the run's headline figures."""

    json_path: Path
    html_path: Path
    pairs: int
    requests: int
    responses_429: int
    bans: int
    counters: dict[str, Any]
    plan_period: float
    measured_period: float | None
    shards: tuple[DemoResult, ...] = ()
    naive: NaiveOutcome | None = None
    """The naive client's outcome when ``compare`` ran it."""
    peak_in_window: int | None = None
    """The most public requests our exchange saw from us in one window."""
    public_limit: int | None = None
    order_wait_p99: float | None = None
    """p99 of order and cancel round trips (limiter wait included)."""
    order_admission_p99: float | None = None
    """p99 of the limiter's admission wait for orders and cancels alone."""
    interrupted: str | None = None
    """The signal that stopped the run early (``"SIGTERM"``), if one did."""


def masked_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and logs).

    >>> masked_url("redis://:hunter2@db:6379/0")
    'redis://:***@db:6379/0'
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"


def scaled_max_limiter(
    scale: float,
    *,
    share: float = 1.0,
    headroom: float = 0.95,
    warm_start: float = 0.0,
    private_counts_against_ip: bool = False,
    backend: LimiterBackend | None = None,
) -> APIRateLimiter:
    """The MAX profile with every window and budget multiplied by ``scale``."""
    limits = [
        RateLimit(
            name=name,
            limit=max(1, round(limit * scale * share)),
            window=window * scale,
            headroom=headroom,
        )
        for name, limit, window in MAX_POOLS
    ]
    return APIRateLimiter(
        limits,
        max_kinds(private_counts_against_ip=private_counts_against_ip),
        warm_start=warm_start,
        default_ban=60.0 * scale,
        backend=backend,
    )


@contextlib.contextmanager
def _exchange(config: DemoConfig) -> Iterator[tuple[str, MaxSimulator | None]]:
    if config.live:
        yield DEFAULT_BASE_URL, None
        return
    if config.base_url is not None:
        yield config.base_url, None
        return
    with MaxSimulator(simulator_config(config)) as sim:
        sim.add_account(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_BALANCES)
        yield sim.url, sim


def simulator_config(config: DemoConfig) -> SimulatorConfig:
    """The local exchange of a run: MAX's limits scaled, and the asked-for faults."""
    overrides: dict[str, object] = {"n_markets": max(24, config.pairs), "seed": config.seed}
    if "latency" in config.faults:
        overrides["latency"] = Latency.lognormal(0.05)
    if "errors" in config.faults:
        overrides["error_rate"] = 0.05
    return SimulatorConfig.scaled(config.scale, **overrides)


async def _storm(sim: MaxSimulator, at: float, optimizer: SystemPerformanceOptimizer) -> None:
    """The ``429-storm`` fault: 429 answers to the next 10 requests, ``at`` seconds in."""
    await asyncio.sleep(at)
    sim.inject("status", status=429, count=10)
    optimizer.note(f"fault: the exchange answered 429 to 10 requests {at:.1f}s in")


@contextlib.contextmanager
def _naive_exchange(config: DemoConfig) -> Iterator[MaxSimulator | None]:
    """The naive client's own simulator (same markets, same budget) when comparing."""
    if not config.compare or config.live or config.base_url is not None:
        yield None
        return
    with MaxSimulator(simulator_config(config)) as sim:
        yield sim


def _naive_line(naive: NaiveOutcome) -> str:
    ban = (
        "never banned"
        if naive.first_ban_after is None
        else f"banned after {naive.first_ban_after:.1f}s"
    )
    return (
        f"naive client (httpx + asyncio.gather, no limiter) on its own simulator: "
        f"{naive.requests} requests, {naive.responses_429} answered 429, {naive.bans} bans, "
        f"{ban} (it stops one window after its first ban)"
    )


def _make_output(output: Path) -> None:
    """Create the report directory now, not after the run (a one-line error)."""
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".aimax-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write reports to {str(output)!r}: {exc.strerror or exc}"
        ) from exc


def _credentials(config: DemoConfig) -> tuple[str | None, str | None]:
    if config.live:
        key, secret = os.environ.get("MAX_ACCESS_KEY"), os.environ.get("MAX_SECRET_KEY")
        return (key, secret) if key and secret else (None, None)
    return DEMO_ACCESS_KEY, DEMO_SECRET_KEY


def run_demo(
    config: DemoConfig, *, console: Console | None = None, stop: StopRequest | None = None
) -> DemoResult:
    """Run the demo and write ``report.json`` and ``report.html`` under ``output``.

    When ``stop`` is requested (``aimax demo`` routes SIGINT/SIGTERM to it) the
    workload ends where it is and the reports cover what ran; ``interrupted`` on the
    result names the signal.
    """
    stop = stop or StopRequest()
    _make_output(config.output)
    if config.processes > 1:
        from aimax.demo.sharded import run_sharded

        return run_sharded(config, console=console, stop=stop)
    console = console or Console()
    with _exchange(config) as (base_url, sim), _naive_exchange(config) as naive_sim:
        backend = None
        if config.redis_url is not None:
            from aimax.ratelimit.redis_backend import RedisBackend

            backend = RedisBackend.from_url(
                config.redis_url,
                prefix="aimax-demo",
                expected_processes=config.expected_processes,
            )
        limiter = scaled_max_limiter(config.scale, warm_start=config.warm_start, backend=backend)
        optimizer = SystemPerformanceOptimizer(
            OptimizerConfig(
                monitor_interval=min(1.0, max(0.1, config.duration / 60)),
                refresh_period=config.refresh_period,
                expected_processes=config.expected_processes,
            ),
            limiter=limiter,
        )
        try:
            optimizer.start_optimization()
            started = time.monotonic()
            counters, plan_period, requests, naive = asyncio.run(
                _run(
                    config,
                    base_url=base_url,
                    optimizer=optimizer,
                    console=console,
                    sim=sim,
                    naive_sim=naive_sim,
                    stop=stop,
                )
            )
            if stop.requested:
                optimizer.note(
                    f"interrupted by {stop.signal_name or 'a stop request'} after "
                    f"{time.monotonic() - started:.1f}s of {config.duration:g}s: "
                    "the report covers what ran"
                )
            if naive is not None:
                optimizer.note(_naive_line(naive))
            report = _write_reports(config, optimizer, counters, sim, console)
            stats = sim.stats() if sim is not None else None
        finally:
            optimizer.close()
            limiter.close()
    limiter_section = report.limiter
    return DemoResult(
        json_path=config.output / "report.json",
        html_path=config.output / "report.html",
        pairs=config.pairs,
        requests=requests,
        responses_429=limiter_section.responses_429 if limiter_section else 0,
        bans=limiter_section.bans if limiter_section else 0,
        counters=_counters_dict(counters),
        plan_period=plan_period,
        measured_period=counters.measured_period,
        naive=naive,
        peak_in_window=max(stats.peak_public.values(), default=0) if stats else None,
        public_limit=sim.config.public_limit if sim is not None else None,
        order_wait_p99=counters.order_wait_p99,
        order_admission_p99=counters.order_admission_p99,
        interrupted=stop.signal_name if stop.requested else None,
    )


def _counters_dict(counters: WorkloadCounters) -> dict[str, Any]:
    data = asdict(counters)
    data.pop("cycle_periods")
    data.pop("order_waits")
    data["measured_period"] = counters.measured_period
    data["order_wait_p99"] = counters.order_wait_p99
    return data


async def _run(
    config: DemoConfig,
    *,
    base_url: str,
    optimizer: SystemPerformanceOptimizer,
    console: Console,
    sim: MaxSimulator | None,
    naive_sim: MaxSimulator | None,
    stop: StopRequest,
) -> tuple[WorkloadCounters, float, int, NaiveOutcome | None]:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def wake() -> None:  # may run in a signal handler or another thread
        loop.call_soon_threadsafe(stopping.set)

    remove = stop.on_request(wake)
    try:
        return await _run_client(
            config,
            base_url=base_url,
            optimizer=optimizer,
            console=console,
            sim=sim,
            naive_sim=naive_sim,
            stopping=stopping,
        )
    finally:
        remove()


async def _run_client(
    config: DemoConfig,
    *,
    base_url: str,
    optimizer: SystemPerformanceOptimizer,
    console: Console,
    sim: MaxSimulator | None,
    naive_sim: MaxSimulator | None,
    stopping: asyncio.Event,
) -> tuple[WorkloadCounters, float, int, NaiveOutcome | None]:
    key, secret = _credentials(config)
    trade = config.trade and not config.live and key is not None
    async with MaxClient(
        base_url=base_url, access_key=key, secret_key=secret, limiter=optimizer.limiter
    ) as client:
        optimizer.monitor.add_source("client", client)
        try:
            if config.markets:
                markets = list(config.markets)
            else:
                listed = [m.id for m in await client.markets() if m.status == "active"]
                if len(listed) < config.pairs:
                    raise ConfigurationError(
                        f"the exchange lists {len(listed)} active markets, fewer than "
                        f"--pairs {config.pairs}"
                    )
                markets = listed[: config.pairs]
            plan = optimizer.optimize_for_trading_pairs(
                len(markets), refresh_period=config.refresh_period
            )
            dashboard = Dashboard(
                optimizer,
                client,
                sim,
                console=console,
                duration=config.duration,
                pairs=len(markets),
                enabled=config.dashboard,
            )
            naive_task = (
                asyncio.create_task(
                    run_naive(
                        naive_sim,
                        markets,
                        duration=config.duration,
                        period=config.refresh_period,
                        after_ban=60.0 * config.scale,
                        stop=stopping,
                    )
                )
                if naive_sim is not None
                else None
            )
            storm = (
                asyncio.create_task(_storm(sim, config.duration / 3, optimizer))
                if sim is not None and "429-storm" in config.faults
                else None
            )
            async with dashboard:
                counters = await run_workload(
                    client,
                    optimizer,
                    markets,
                    duration=config.duration,
                    trade=trade,
                    seed=config.seed,
                    stop=stopping,
                )
            if storm is not None:
                storm.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await storm
            admission = client.statistics().admission_wait_p99
            waits = [admission[k] for k in ("order", "cancel") if k in admission]
            counters.order_admission_p99 = max(waits) if waits else None
            naive = await naive_task if naive_task is not None else None
            return counters, plan.refresh_period, client.statistics().requests, naive
        finally:
            optimizer.monitor.remove_source("client")


def _write_reports(
    config: DemoConfig,
    optimizer: SystemPerformanceOptimizer,
    counters: WorkloadCounters,
    sim: MaxSimulator | None,
    console: Console,
) -> OptimizationReport:
    optimizer.note(
        f"workload: {counters.cycles} pair cycles, {counters.ticker_calls} batched ticker "
        f"calls, {counters.depth_calls} depth, {counters.kline_calls} k-line, "
        f"{counters.indicators} indicator runs, {counters.orders} orders, "
        f"{counters.cancels} cancels, {counters.errors} errors {counters.errors_by_type}"
    )
    period = counters.measured_period
    if period is not None:
        optimizer.note(f"measured refresh period (median per pair): {period:.3f}s")
    if sim is not None:
        stats = sim.stats()
        optimizer.note(
            f"simulator: {stats.requests} requests, {stats.rate_limited} answered 429, "
            f"{stats.bans_started} bans, peak public per window "
            f"{max(stats.peak_public.values(), default=0)}"
        )
    for note in config.extra_notes:
        optimizer.note(note)
    report = optimizer.get_optimization_report()
    write_json(report, config.output / "report.json")
    missing = charts_unavailable()
    if missing is not None:  # a report without pictures, and one line saying why
        console.print(f"[yellow]note:[/yellow] report.html has no charts: {escape(missing)}")
    write_html(report, config.output / "report.html", charts_note=missing)
    (config.output / "workload.json").write_text(
        json.dumps(_counters_dict(counters), indent=2), encoding="utf-8"
    )
    if config.dashboard:
        render_terminal(report, console=console)
    console.print(f"[bold]report:[/bold] {config.output / 'report.html'}")
    console.print(f"[bold]data:[/bold]   {config.output / 'report.json'}")
    return report


def shard_config(config: DemoConfig, index: int, markets: list[str], base_url: str) -> DemoConfig:
    """The config of shard ``index`` of a sharded run (used by :mod:`.sharded`)."""
    return replace(
        config,
        processes=1,
        pairs=len(markets),
        markets=tuple(markets),
        base_url=base_url,
        shard=index,
        output=config.output / f"shard-{index}",
        dashboard=False,
        seed=config.seed + index,
        expected_processes=config.processes,
    )
