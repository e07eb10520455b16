"""Frozen snapshots: a pool's statistics and what a shutdown did.

The counts obey one identity, checked by the tests::

    submitted == completed + failed + cancelled + rejected + active + queued

Counters are read without stopping the workers, so a snapshot taken while tasks
are moving between states may be off by the handful of tasks in flight at that
instant; a snapshot of a quiescent pool (or one whose tasks are all parked) is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from aimax._metrics import HistogramValue
from aimax.pools._histogram import EDGES_NS, LogLinearHistogram

__all__ = [
    "LatencySummary",
    "ManagerStatistics",
    "PoolShutdown",
    "PoolStatistics",
    "ShutdownReport",
    "TaskRef",
]


_QUANTILES = (0.50, 0.95, 0.99)
_EMPTY_HISTOGRAM = HistogramValue(
    bounds=tuple(edge / 1e9 for edge in EDGES_NS),
    cumulative=(0,) * (len(EDGES_NS) + 1),
    sum=0.0,
    count=0,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class LatencySummary:
    """A duration's distribution, in seconds: percentiles, mean, sum and histogram.

    The percentiles are computed from the log-linear histogram when the summary is
    built (each within ~3 %); ``histogram`` holds the exact cumulative counts at
    power-of-four bounds (1.024 us .. 68.7 s) for a Prometheus histogram. The
    percentiles and mean are NaN when nothing was measured.
    """

    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    sum: float = 0.0
    histogram: HistogramValue = field(default=_EMPTY_HISTOGRAM, repr=False)

    @classmethod
    def empty(cls) -> LatencySummary:
        """The summary of nothing measured."""
        nan = float("nan")
        return cls(count=0, mean=nan, p50=nan, p95=nan, p99=nan)

    @classmethod
    def of(cls, hist: LogLinearHistogram) -> LatencySummary:
        """The summary of a histogram of nanosecond durations (read under its owner's lock)."""
        if hist.count == 0:
            return cls.empty()
        quantiles, cumulative = hist.read(_QUANTILES)
        p50, p95, p99 = (q / 1e9 for q in quantiles)
        total = hist.sum_ns / 1e9
        return cls(
            count=hist.count,
            mean=total / hist.count,
            p50=p50,
            p95=p95,
            p99=p99,
            sum=total,
            histogram=HistogramValue(
                bounds=_EMPTY_HISTOGRAM.bounds,
                cumulative=cumulative,
                sum=total,
                count=hist.count,
            ),
        )

    def __repr__(self) -> str:
        if self.count == 0:
            return "LatencySummary(count=0)"
        return (
            f"LatencySummary(count={self.count}, mean={self.mean * 1e3:.3f}ms, "
            f"p50={self.p50 * 1e3:.3f}ms, p95={self.p95 * 1e3:.3f}ms, "
            f"p99={self.p99 * 1e3:.3f}ms)"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class PoolStatistics:
    """One pool's figures at one instant.

    ``submitted`` counts every task handed to ``submit`` (including rejected and
    caller-run ones); ``completed`` / ``failed`` tasks returned / raised (the
    exception stays on the future); ``cancelled`` futures cancelled before they ran
    (by their owner or by a shutdown, or an awaiting ``run`` cancelled while it waited
    for room); ``rejected`` refused by the policy (PoolFull) or by a shutdown while
    waiting for room;
    ``active`` running now (in a worker or, under caller-runs, in the caller);
    ``queued`` waiting in the queue. ``size`` is the live worker count, ``target``
    the size the pool is steering to, ``peak_size`` the most workers it ever ran.
    ``success_rate`` is completed / (completed + failed) (1.0 before any finished).
    ``queue_wait`` and ``run_time`` summarise the tasks that ran.
    """

    name: str
    submitted: int
    completed: int
    failed: int
    cancelled: int
    rejected: int
    caller_runs: int
    active: int
    queued: int
    size: int
    target: int
    min_size: int
    max_size: int
    peak_size: int
    queue_capacity: int
    policy: str
    closed: bool
    queue_wait: LatencySummary = field(default_factory=LatencySummary.empty)
    run_time: LatencySummary = field(default_factory=LatencySummary.empty)

    @property
    def finished(self) -> int:
        """Tasks that ran to an end (completed or failed)."""
        return self.completed + self.failed

    @property
    def success_rate(self) -> float:
        """completed / (completed + failed); 1.0 when nothing finished yet."""
        done = self.completed + self.failed
        return 1.0 if done == 0 else self.completed / done

    @property
    def accounted(self) -> int:
        """completed + failed + cancelled + rejected + active + queued."""
        return (
            self.completed
            + self.failed
            + self.cancelled
            + self.rejected
            + self.active
            + self.queued
        )

    def __str__(self) -> str:
        wait = self.queue_wait.p95 * 1e3
        run = self.run_time.p95 * 1e3
        return (
            f"{self.name}: size {self.size}/{self.target} (peak {self.peak_size}, "
            f"max {self.max_size}), active {self.active}, queued {self.queued}/"
            f"{self.queue_capacity}, done {self.completed} ok / {self.failed} failed, "
            f"{self.cancelled} cancelled, {self.rejected} rejected, "
            f"wait p95 {wait if not math.isnan(wait) else 0:.2f} ms, "
            f"run p95 {run if not math.isnan(run) else 0:.2f} ms"
        )


@dataclass(frozen=True, slots=True)
class TaskRef:
    """A task named in a shutdown report: its pool, its callable's name, its future."""

    pool: str
    name: str
    future: Future[Any] = field(repr=False, compare=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class PoolShutdown:
    """What shutting one pool down did.

    ``cancelled``: queued tasks cancelled (never run), by name; ``still_running``:
    tasks a worker was still running when the call returned (a thread cannot be
    killed: the worker exits as soon as its task returns); ``still_queued``: tasks
    left to run in the background (``wait=False`` with draining); ``threads_alive``:
    this pool's worker threads still alive when the call returned.
    """

    pool: str
    drained: int = 0
    cancelled: tuple[TaskRef, ...] = ()
    still_running: tuple[TaskRef, ...] = ()
    still_queued: int = 0
    threads_alive: int = 0
    timed_out: bool = False
    already_closed: bool = False

    @property
    def clean(self) -> bool:
        """Nothing cancelled, nothing left running or queued, no thread alive."""
        return not (self.cancelled or self.still_running or self.still_queued or self.threads_alive)


@dataclass(frozen=True, kw_only=True, slots=True)
class ShutdownReport:
    """What :meth:`~aimax.pools.ThreadPoolManager.shutdown_all` did, pool by pool."""

    pools: tuple[PoolShutdown, ...] = ()

    @property
    def cancelled(self) -> tuple[TaskRef, ...]:
        """Every task cancelled by the shutdown, across pools."""
        return tuple(ref for pool in self.pools for ref in pool.cancelled)

    @property
    def still_running(self) -> tuple[TaskRef, ...]:
        """Every task still running when the shutdown returned."""
        return tuple(ref for pool in self.pools for ref in pool.still_running)

    @property
    def threads_alive(self) -> int:
        """Worker threads still alive when the shutdown returned."""
        return sum(pool.threads_alive for pool in self.pools)

    @property
    def clean(self) -> bool:
        """True when every pool shut down with nothing cancelled and no thread left."""
        return all(pool.clean for pool in self.pools)

    def __str__(self) -> str:
        if not self.pools:
            return "shutdown: nothing to do"
        lines = []
        for pool in self.pools:
            names = ", ".join(ref.name for ref in pool.cancelled[:5])
            more = "" if len(pool.cancelled) <= 5 else f" (+{len(pool.cancelled) - 5} more)"
            lines.append(
                f"{pool.pool}: drained {pool.drained}, cancelled {len(pool.cancelled)}"
                + (f" [{names}{more}]" if pool.cancelled else "")
                + f", still running {len(pool.still_running)}, "
                f"threads alive {pool.threads_alive}" + (" (timed out)" if pool.timed_out else "")
            )
        return "\n".join(lines)


@dataclass(frozen=True, kw_only=True, slots=True)
class ManagerStatistics:
    """Every created pool's statistics, by name, and whether the manager is shut down."""

    pools: Mapping[str, PoolStatistics]
    closed: bool

    @property
    def submitted(self) -> int:
        """Tasks submitted across pools."""
        return sum(p.submitted for p in self.pools.values())

    @property
    def active(self) -> int:
        """Tasks running across pools."""
        return sum(p.active for p in self.pools.values())

    @property
    def queued(self) -> int:
        """Tasks queued across pools."""
        return sum(p.queued for p in self.pools.values())
