"""SystemPerformanceOptimizer: builds, starts, connects and reports on the four
components (rate limiter, thread pools, memory manager, resource monitor).

    >>> from aimax import SystemPerformanceOptimizer
    >>> with SystemPerformanceOptimizer() as optimizer:       # starts; stops on exit
    ...     plan = optimizer.optimize_for_trading_pairs(20, refresh_period=5.0)
    ...     optimizer.limiter.acquire("market_data", pair="btctwd").kind
    'market_data'

What it connects:

- the monitor collects every component's ``metric_samples()`` each tick;
- a limiter ban (429) is reported to the autoscaled pools as a loss signal;
- memory pressure shrinks registered caches (the memory manager does it) and is
  recorded as an action; a critical level also forces a garbage collection;
- an alert that the limiter is near its budget or a pool queue is backing up slows
  the refresh plan (``refresh_period`` grows by ``slowdown``), and its resolution
  brings it back to the plan's period;
- every action is recorded with its reason for :meth:`get_optimization_report`.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import math
import os
import sys
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from aimax import _clock
from aimax._clock import as_seconds
from aimax._metrics import parse_key
from aimax.errors import ConfigurationError
from aimax.memory import MemoryConfig, MemoryManager
from aimax.monitor import AlertEvent, ResourceMonitor
from aimax.planning import (
    DEFAULT_HEADROOM,
    ExchangeBudget,
    PairWorkload,
    TradingPlan,
    plan_for_pairs,
)
from aimax.pools import PoolConfig, ThreadPoolManager
from aimax.ratelimit import APIRateLimiter, BanEvent
from aimax.report import (
    ActionRow,
    BanRow,
    CacheRow,
    JsonValue,
    LimiterPoolRow,
    LimiterSection,
    MemorySection,
    OptimizationReport,
    Percentiles,
    PlanSection,
    PoolRow,
    ReportBuilder,
    TimeSeries,
    WaitRow,
)

if TYPE_CHECKING:
    from aimax.memory import LevelChange

__all__ = [
    "OptimizerConfig",
    "SystemPerformanceOptimizer",
    "start_system_optimization",
]

logger = logging.getLogger(__name__)

#: Monitor series copied into the report's timeline (by metric name).
TIMELINE_METRICS = (
    "aimax_process_cpu_percent",
    "process_resident_memory_bytes",
    "aimax_ratelimit_utilisation_ratio",
    "aimax_ratelimit_wait_seconds",
    "aimax_pool_size",
    "aimax_pool_queued",
    "aimax_memory_pressure_level",
)
#: Alerts that mean "demand exceeds what the budget or the pools serve": slow down.
SLOWDOWN_ALERTS = frozenset({"ratelimit_near_budget", "pool_queue_backing_up"})


@dataclass(frozen=True, kw_only=True)
class OptimizerConfig:
    """Everything the optimizer builds its components from (frozen, keyword-only).

    - ``share``: this process's share of MAX's per-IP / per-account budget (1/K for K
      processes without Redis). With ``redis_url`` every process draws on one shared
      budget and ``share`` stays 1.0; ``expected_processes`` (K) then sizes the local
      fallback used while Redis is unreachable, and each process plans its pairs on
      1/K of the shared budget.
    - ``headroom``: the fraction of each MAX pool the limiter uses.
    - ``pools``: per-name :class:`~aimax.pools.PoolConfig` overrides.
    - ``memory_budget``: bytes (int) or a fraction of min(cgroup limit, physical).
    - ``monitor_interval``, ``memory_interval``: sampling periods (seconds/timedelta).
    - ``refresh_period``, ``workload``, ``latency``: defaults for
      :meth:`SystemPerformanceOptimizer.optimize_for_trading_pairs`.
    - ``slowdown``: factor applied to the refresh period when a slow-down alert fires.
    - ``prometheus_port``: serve ``/metrics`` on 127.0.0.1 at this port when set.
    """

    share: float = 1.0
    headroom: float = DEFAULT_HEADROOM
    redis_url: str | None = None
    redis_prefix: str = "aimax"
    expected_processes: int = 1
    pools: Mapping[str, PoolConfig] = field(default_factory=dict)
    memory_budget: int | float = 0.8
    monitor_interval: float | timedelta = 1.0
    memory_interval: float | timedelta = 1.0
    refresh_period: float | timedelta = 5.0
    workload: PairWorkload = field(default_factory=PairWorkload)
    latency: float | timedelta = 0.15
    slowdown: float = 1.25
    prometheus_port: int | None = None
    report_max_points: int = 1000

    def __post_init__(self) -> None:
        share = self.share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise ConfigurationError(f"share must be in (0, 1], got {share!r}")
        n = self.expected_processes
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigurationError(f"expected_processes must be a positive integer, got {n!r}")
        if self.redis_url is not None and not isinstance(self.redis_url, str):
            raise ConfigurationError(f"redis_url must be a string, got {self.redis_url!r}")
        slow = self.slowdown
        if isinstance(slow, bool) or not isinstance(slow, int | float) or not slow >= 1:
            raise ConfigurationError(f"slowdown must be a number >= 1, got {slow!r}")
        port = self.prometheus_port
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536
        ):
            raise ConfigurationError(f"prometheus_port must be 0..65535, got {port!r}")
        if not isinstance(self.workload, PairWorkload):
            raise ConfigurationError(f"workload must be a PairWorkload, got {self.workload!r}")
        for name in ("monitor_interval", "memory_interval", "refresh_period", "latency"):
            object.__setattr__(self, name, as_seconds(getattr(self, name), name=name))


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _percentiles(p50: float, p95: float, p99: float, count: int) -> Percentiles:
    if count == 0:
        return Percentiles()
    return Percentiles(p50=p50, p95=p95, p99=p99)


class SystemPerformanceOptimizer:
    """Owns and connects a limiter, a pool manager, a memory manager and a monitor.

    Components passed in are used as they are and not closed by :meth:`close`;
    the ones built from ``config`` are owned. Nothing starts before
    :meth:`start_optimization` (or ``with``); :meth:`stop_optimization` stops the
    background samplers, :meth:`close` also shuts the pools down and closes the
    limiter. Both are idempotent and run at interpreter exit.
    """

    def __init__(
        self,
        config: OptimizerConfig | None = None,
        *,
        limiter: APIRateLimiter | None = None,
        pools: ThreadPoolManager | None = None,
        memory: MemoryManager | None = None,
        monitor: ResourceMonitor | None = None,
        wall: _clock.Clock = _clock.wall,
    ) -> None:
        self.config = config or OptimizerConfig()
        self._wall = wall
        self._lock = threading.RLock()
        self._owned: list[str] = []
        self.limiter = limiter if limiter is not None else self._build_limiter()
        if limiter is None:
            self._owned.append("limiter")
        self.pools = pools if pools is not None else ThreadPoolManager(dict(self.config.pools))
        if pools is None:
            self._owned.append("pools")
        self.memory = (
            memory
            if memory is not None
            else MemoryManager(
                self.config.memory_budget,
                config=MemoryConfig(check_interval=_seconds(self.config.memory_interval)),
            )
        )
        if memory is None:
            self._owned.append("memory")
        self.monitor = (
            monitor
            if monitor is not None
            else ResourceMonitor(interval=_seconds(self.config.monitor_interval))
        )
        if monitor is None:
            self._owned.append("monitor")
        self._report = ReportBuilder(
            title="aimax optimization report",
            max_points=self.config.report_max_points,
            wall=wall,
        )
        self._plan: TradingPlan | None = None
        self._refresh_period = _seconds(self.config.refresh_period)
        self._slowed: set[str] = set()
        self._bans: list[BanRow] = []
        self._started = False
        self._closed = False
        self._unsubscribe: list[Any] = []
        self._prometheus: Any = None
        self._wire()
        self._atexit = weakref.WeakMethod(self.close)
        atexit.register(_close_at_exit, self._atexit)

    # ----------------------------------------------------------------- building

    def _build_limiter(self) -> APIRateLimiter:
        cfg = self.config
        backend = None
        if cfg.redis_url is not None:
            from aimax.ratelimit.redis_backend import RedisBackend

            backend = RedisBackend.from_url(
                cfg.redis_url, prefix=cfg.redis_prefix, expected_processes=cfg.expected_processes
            )
        return APIRateLimiter.for_max(share=cfg.share, headroom=cfg.headroom, backend=backend)

    def _wire(self) -> None:
        """Connect the components (sources, listeners); starts nothing."""
        self.monitor.add_source("limiter", self.limiter)
        self.monitor.add_source("pools", self.pools)
        self.monitor.add_source("memory", self.memory)
        self.limiter.add_ban_listener(self._on_ban)
        self._unsubscribe.append(self.memory.add_level_listener(self._on_memory_level))
        self._unsubscribe.append(self.monitor.add_alert_listener(self._on_alert))

    # ----------------------------------------------------------------- lifecycle

    def start_optimization(self) -> SystemPerformanceOptimizer:
        """Start the memory checker and the monitor's sampler (idempotent)."""
        with self._lock:
            if self._closed:
                raise ConfigurationError("this optimizer is closed; build a new one")
            if self._started:
                return self
            self.memory.start(_seconds(self.config.memory_interval))
            self.monitor.start_monitoring()
            if self.config.prometheus_port is not None and self._prometheus is None:
                self._prometheus = self.monitor.serve_prometheus(self.config.prometheus_port)
            self._started = True
            self._report.add_action("start", "optimization started")
            logger.info("aimax optimization started")
            return self

    def stop_optimization(self) -> None:
        """Stop the background samplers, in reverse order of start (idempotent)."""
        with self._lock:
            if not self._started:
                return
            self._started = False
            self.monitor.stop_monitoring()
            self.memory.stop()
            self._report.add_action("stop", "optimization stopped")
            logger.info("aimax optimization stopped")

    @property
    def running(self) -> bool:
        """Whether :meth:`start_optimization` is in force."""
        return self._started

    def close(self) -> None:
        """Stop, then release what this optimizer owns (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self.stop_optimization()
            self._closed = True
            for unsubscribe in self._unsubscribe:
                unsubscribe()
            self._unsubscribe.clear()
            if self._prometheus is not None:
                self._prometheus.close()
                self._prometheus = None
            if "monitor" in self._owned:
                self.monitor.close()
            if "memory" in self._owned:
                self.memory.close()
            if "pools" in self._owned:
                self.pools.shutdown_all(wait=True, timeout=5.0)
            if "limiter" in self._owned:
                self.limiter.close()

    def __enter__(self) -> SystemPerformanceOptimizer:
        return self.start_optimization()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._started else "stopped"
        plan = f", pairs={self._plan.n_pairs}" if self._plan else ""
        return (
            f"SystemPerformanceOptimizer({state}{plan}, refresh_period={self._refresh_period:.3g}s)"
        )

    # ------------------------------------------------------------------ planning

    def exchange_budget(self) -> ExchangeBudget:
        """The budget the limiter enforces, as the planner needs it (the same
        :meth:`ExchangeBudget.from_limiter` that ``aimax plan`` uses)."""
        return ExchangeBudget.from_limiter(self.limiter, processes=self.config.expected_processes)

    def optimize_for_trading_pairs(
        self,
        n: int,
        *,
        refresh_period: float | timedelta | None = None,
        workload: PairWorkload | None = None,
        latency: float | timedelta | None = None,
    ) -> TradingPlan:
        """Plan ``n`` pairs and apply the plan: pools resized, refresh period set.

        Returns the frozen :class:`~aimax.planning.TradingPlan`; its ``warnings`` say
        when ``n`` pairs cannot be served at the wanted period (and the largest n
        that can). ``latency`` is the REST round trip for Little's law (default: the
        config's); the optimizer does not see requests, so pass the client's measured
        latency (``MaxClient.statistics().latency_p50``) when re-planning.
        """
        cfg = self.config
        rtt = latency if latency is not None else cfg.latency
        plan = plan_for_pairs(
            n,
            refresh_period=refresh_period if refresh_period is not None else cfg.refresh_period,
            workload=workload or cfg.workload,
            budget=self.exchange_budget(),
            latency=rtt,
            cpu_count=os.cpu_count() or 1,
            memory_budget_bytes=max(1, self.memory.budget_bytes),
        )
        with self._lock:
            self._plan = plan
            self._refresh_period = plan.refresh_period
            self._slowed.clear()
        for pool, wanted in plan.pool_sizes.items():
            stats = self.pools.get_pool(pool).statistics()
            size = min(max(wanted, stats.min_size, 1), stats.max_size)
            reason = plan.reasons.get(pool, "plan")
            if size != wanted:
                reason += f"; the plan wants {wanted}, the pool's bounds are "
                reason += f"[{stats.min_size}, {stats.max_size}]"
                logger.warning("pool %s: %s", pool, reason)
            if size != stats.target:
                self.pools.resize(pool, size)
                self._report.add_action(
                    "resize_pool",
                    reason,
                    details={"pool": pool, "from": stats.target, "to": size, "wanted": wanted},
                )
        self._report.add_action(
            "plan",
            f"{n} pairs: refresh every {plan.refresh_period:.3g}s "
            f"({'feasible' if plan.feasible else 'slower than wanted'})",
            details={"n_pairs": n, "refresh_period": plan.refresh_period},
        )
        for warning in plan.warnings:
            logger.warning("%s", warning)
            self._report.add_note(warning)
        return plan

    @property
    def plan(self) -> TradingPlan | None:
        """The plan last applied, if any."""
        return self._plan

    @property
    def refresh_period(self) -> float:
        """The refresh period workers should use now (slowed while alerts hold)."""
        return self._refresh_period

    # ------------------------------------------------------------------ reactions

    def _on_ban(self, event: BanEvent) -> None:
        row = BanRow(
            time=self._wall(),
            scope=event.scope,
            until=event.until,
            status=event.status,
            reason=f"HTTP {event.status} on {event.kind or 'a request'}",
        )
        with self._lock:
            self._bans.append(row)
        for pool in ("market_data", "io", "orders"):
            self.pools.report_loss(pool, f"HTTP {event.status}")
        self._report.add_action(
            "ban",
            f"scope {event.scope!r} frozen for {event.retry_after:.1f}s after HTTP {event.status}",
            details={"scope": event.scope, "until": event.until},
        )

    def _on_memory_level(self, change: LevelChange) -> None:
        self._report.add_action(
            "memory_level",
            f"memory {change.previous.name.lower()} -> {change.level.name.lower()} "
            f"({change.ratio:.0%} of budget)",
            details={"used": change.used, "budget": change.budget},
        )
        if change.level.name == "CRITICAL":
            result = self.memory.force_garbage_collection()
            self._report.add_action(
                "force_gc",
                "memory critical",
                details={"collected": getattr(result, "collected", None)},
            )

    def _on_alert(self, event: AlertEvent) -> None:
        rule = event.rule
        if event.kind == "firing":
            self._report.add_alert(
                rule.name, severity=rule.severity, value=event.value, message=event.message()
            )
        else:
            self._report.resolve_alert(rule.name)
        if rule.name not in SLOWDOWN_ALERTS:
            return
        with self._lock:
            base = self._plan.refresh_period if self._plan else _seconds(self.config.refresh_period)
            if event.kind == "firing":
                self._slowed.add(rule.name)
                self._refresh_period *= self.config.slowdown
                action, reason = "slow_refresh", f"{rule.name} fired ({event.series})"
            else:
                self._slowed.discard(rule.name)
                if self._slowed:
                    return
                self._refresh_period = base
                action, reason = "restore_refresh", f"{rule.name} resolved"
            period = self._refresh_period
        self._report.add_action(action, reason, details={"refresh_period": period})

    # -------------------------------------------------------------------- report

    def get_optimization_report(self) -> OptimizationReport:
        """A structured, JSON-serialisable report of the run so far: the plan, the
        monitor's timeline, the limiter's pools, waits and bans, the pools, memory and
        GC, the alerts fired and the actions taken with their reasons."""
        plan = self._plan
        plan_section = (
            PlanSection(
                figures=cast(
                    dict[str, JsonValue],
                    {k: v for k, v in plan.as_dict().items() if k != "warnings"},
                ),
                warnings=plan.warnings,
            )
            if plan
            else None
        )
        report = self._report.build(
            plan=plan_section,
            limiter=self._limiter_section(),
            pools=self._pool_rows(),
            memory=self._memory_section(),
        )
        return dataclasses.replace(report, series=(*self._timeline(), *report.series))

    def _timeline(self) -> list[TimeSeries]:
        history = self.monitor.history
        latest = self.monitor.latest
        offset = (latest.wall - latest.time) if latest is not None else 0.0
        out: list[TimeSeries] = []
        for key in history.keys():  # noqa: SIM118 - History is not a mapping
            name, labels = parse_key(key)
            if name not in TIMELINE_METRICS:
                continue
            raw = history.points(key)
            first_raw = raw[0][0] if raw else math.inf
            # long runs: 1-minute buckets for what the raw ring no longer holds; only
            # buckets that ended before it (they are minute-aligned, so one may start
            # before the run), each at its midpoint
            span = history.config.bucket_seconds
            older = [
                (b.start + span / 2, b.mean)
                for b in history.buckets(key)
                if b.start + span <= first_raw
            ]
            points = [(t + offset, v) for t, v in older + raw if math.isfinite(v)]
            out.append(TimeSeries(name=name, labels=labels, points=points))
        return out

    def _limiter_section(self) -> LimiterSection:
        stats = self.limiter.statistics()
        pools = [
            LimiterPoolRow(
                pool=name,
                limit=p.effective_limit,
                window=p.window,
                granted=p.grants,
                units=p.units,
                rejected=p.rejections + p.timeouts,
                utilisation=p.utilisation,
            )
            for name, p in stats.pools.items()
        ]
        waits = [
            WaitRow(
                priority=name,
                count=c.grants,
                seconds=_percentiles(c.wait_p50, c.wait_p95, c.wait_p99, c.grants),
            )
            for name, c in stats.classes.items()
        ]
        with self._lock:
            bans = list(self._bans)
        return LimiterSection(
            pools=pools,
            waits=waits,
            bans=stats.bans,
            responses_429=sum(1 for b in bans if b.status == 429),
            ban_events=bans,
            extra={"backend": stats.backend, "time_frozen": stats.time_frozen},
        )

    def _pool_rows(self) -> list[PoolRow]:
        rows = []
        for name, s in sorted(self.pools.get_pool_stats().items()):
            rows.append(
                PoolRow(
                    pool=name,
                    size=s.size,
                    max_size=s.max_size,
                    active=s.active,
                    queued=s.queued,
                    completed=s.completed,
                    failed=s.failed,
                    rejected=s.rejected,
                    queue_wait=_percentiles(
                        s.queue_wait.p50, s.queue_wait.p95, s.queue_wait.p99, s.queue_wait.count
                    ),
                    run_time=_percentiles(
                        s.run_time.p50, s.run_time.p95, s.run_time.p99, s.run_time.count
                    ),
                    extra={
                        "submitted": s.submitted,
                        "cancelled": s.cancelled,
                        "peak_size": s.peak_size,
                        "policy": s.policy,
                    },
                )
            )
        return rows

    def _memory_section(self) -> MemorySection:
        if not self._closed:
            self.memory.monitor_memory()  # a fresh reading (cheap: /proc/self/statm)
        s = self.memory.statistics()
        gc = s.gc
        return MemorySection(
            rss_bytes=s.rss_bytes,
            peak_rss_bytes=_peak_rss(s.rss_bytes),
            uss_bytes=s.uss_bytes,
            budget_bytes=s.budget_bytes,
            pressure_level=int(s.level),
            gc_collections={str(g.generation): g.count for g in gc.generations},
            gc_pause_total_seconds=gc.pause_total,
            gc_pause_max_seconds=gc.pause_max,
            caches=[CacheRow(name=c.name, items=c.items, bytes=c.bytes) for c in s.caches],
            extra={
                "cleanups": s.cleanups,
                "items_freed": s.items_freed,
                "forced_collections": s.forced_collections,
                "trims": s.trims,
                "gc_mode": s.gc_mode,
            },
        )

    def note(self, text: str) -> None:
        """Add a free-form note to the report."""
        self._report.add_note(text)

    def actions(self) -> tuple[ActionRow, ...]:
        """The actions taken so far, oldest first."""
        return tuple(self._report.build().actions)


def _peak_rss(current: int | None) -> int | None:
    """This process's peak resident size (``getrusage``), never below ``current``."""
    try:
        import resource
    except ImportError:  # not on this platform
        return current
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_bytes = peak if sys.platform == "darwin" else peak * 1024  # KiB on Linux
    return max(peak_bytes, current or 0) or None


def _close_at_exit(ref: weakref.WeakMethod[Any]) -> None:
    method = ref()
    if method is not None:
        method()


_GLOBAL: SystemPerformanceOptimizer | None = None
_GLOBAL_LOCK = threading.Lock()


def start_system_optimization(config: OptimizerConfig | None = None) -> SystemPerformanceOptimizer:
    """The process-wide optimizer, started (built on first call; later calls return it).

    Passing a ``config`` different from the running instance's raises
    :class:`~aimax.errors.ConfigurationError` rather than silently ignoring it.
    """
    global _GLOBAL  # noqa: PLW0603 - the seed's process-wide instance
    with _GLOBAL_LOCK:
        if _GLOBAL is not None and not _GLOBAL._closed:
            if config is not None and config != _GLOBAL.config:
                raise ConfigurationError(
                    "the process-wide optimizer is already running with another config"
                )
            return _GLOBAL.start_optimization()
        _GLOBAL = SystemPerformanceOptimizer(config)
        return _GLOBAL.start_optimization()
