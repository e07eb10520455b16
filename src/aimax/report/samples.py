"""Report sections made from metric samples alone (the names every component publishes).

Every component offers ``metric_samples()`` with the standard names (see
``aimax._metrics`` and the project's metric contract), so a report's limiter, pool and
memory sections can be filled from one batch of samples without knowing any
component's own statistics class: that is what :func:`sections_from_samples` does.
Names it does not know are ignored; a section with no sample at all is ``None`` (or
empty, for the pools).

Example::

    >>> from aimax._metrics import MetricSample
    >>> sections = sections_from_samples([
    ...     MetricSample("aimax_ratelimit_utilisation_ratio", 0.9, {"pool": "rest_public"}),
    ...     MetricSample("aimax_pool_size", 8, {"pool": "io"}),
    ...     MetricSample("aimax_memory_rss_bytes", 1.5e8),
    ... ], budgets={"rest_public": (1200, 60.0)})
    >>> row = sections.limiter.pools[0]
    >>> (row.pool, row.limit, row.utilisation), sections.pools[0].size
    (('rest_public', 1200.0, 0.9), 8)
    >>> sections.memory.rss_bytes
    150000000
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aimax._metrics import MetricSample
from aimax.report.model import (
    CacheRow,
    LimiterPoolRow,
    LimiterSection,
    MemorySection,
    Percentiles,
    PoolRow,
    WaitRow,
)

__all__ = ["SampledSections", "sections_from_samples"]

_QUANTILES = {
    "0.5": "p50",
    "0.50": "p50",
    "p50": "p50",
    "50": "p50",
    "0.95": "p95",
    "p95": "p95",
    "95": "p95",
    "0.99": "p99",
    "p99": "p99",
    "99": "p99",
}
_LIMITER_POOL = {
    "aimax_ratelimit_utilisation_ratio": "utilisation",
    "aimax_ratelimit_granted_total": "granted",
    "aimax_ratelimit_units_total": "units",
    "aimax_ratelimit_rejected_total": "rejected",
}
_POOL = {
    "aimax_pool_size": "size",
    "aimax_pool_active": "active",
    "aimax_pool_queued": "queued",
    "aimax_pool_completed_total": "completed",
    "aimax_pool_failed_total": "failed",
    "aimax_pool_rejected_total": "rejected",
}
_POOL_TIMES = {
    "aimax_pool_queue_wait_seconds": "queue_wait",
    "aimax_pool_run_seconds": "run_time",
}
_MEMORY = {
    "aimax_memory_rss_bytes": "rss_bytes",
    "aimax_memory_budget_bytes": "budget_bytes",
    "aimax_memory_pressure_level": "pressure_level",
}
_GC = {
    "aimax_gc_pause_seconds_total": "gc_pause_total_seconds",
    "aimax_gc_pause_max_seconds": "gc_pause_max_seconds",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SampledSections:
    """The sections :func:`sections_from_samples` could fill."""

    limiter: LimiterSection | None
    pools: tuple[PoolRow, ...]
    memory: MemorySection | None


def _count(value: float) -> int:
    return max(0, round(value))


def _percentiles(found: Mapping[str, float]) -> Percentiles:
    return Percentiles(**{k: max(0.0, v) for k, v in found.items()})


def sections_from_samples(
    samples: Iterable[MetricSample],
    *,
    budgets: Mapping[str, tuple[float, float]] | None = None,
) -> SampledSections:
    """Fill the limiter, pool and memory sections from standard metric samples.

    ``budgets`` gives each limiter pool's ``(limit, window)``, which the metrics do not
    carry; pools without one get ``None`` for both. 429 responses are the sum of
    ``aimax_client_requests_total{status="429"}``. Non-finite values are ignored.
    """
    limiter_pools: dict[str, dict[str, float]] = defaultdict(dict)
    waits: dict[str, dict[str, float]] = defaultdict(dict)
    bans: float | None = None
    responses_429: float | None = None
    pools: dict[str, dict[str, float]] = defaultdict(dict)
    pool_times: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    memory: dict[str, float] = {}
    gc_collections: dict[str, int] = {}
    caches: dict[str, dict[str, float]] = defaultdict(dict)
    seen_limiter = seen_memory = False

    for sample in samples:
        name, value, labels = sample.name, float(sample.value), sample.labels
        if not math.isfinite(value):
            continue
        if name in _LIMITER_POOL and "pool" in labels:
            limiter_pools[labels["pool"]][_LIMITER_POOL[name]] = value
        elif name == "aimax_ratelimit_wait_seconds":
            quantile = _QUANTILES.get(labels.get("quantile", ""))
            if quantile is not None and "priority" in labels:
                waits[labels["priority"]][quantile] = value
                seen_limiter = True
        elif name == "aimax_ratelimit_bans_total":
            bans = value
        elif name == "aimax_ratelimit_banned":
            seen_limiter = True
        elif name == "aimax_client_requests_total" and labels.get("status") == "429":
            responses_429 = (responses_429 or 0.0) + value
        elif name in _POOL and "pool" in labels:
            pools[labels["pool"]][_POOL[name]] = value
        elif name in _POOL_TIMES and "pool" in labels:
            quantile = _QUANTILES.get(labels.get("quantile", ""))
            if quantile is not None:
                pool_times[labels["pool"]][_POOL_TIMES[name]][quantile] = value
                pools.setdefault(labels["pool"], {})  # the pool exists even with no count
        elif name in _MEMORY or name in _GC:
            memory[_MEMORY.get(name) or _GC[name]] = value
            seen_memory = True
        elif name == "aimax_gc_collections_total":
            gc_collections[labels.get("generation", "?")] = _count(value)
            seen_memory = True
        elif name in ("aimax_memory_cache_items", "aimax_memory_cache_bytes") and "cache" in labels:
            caches[labels["cache"]][name.rsplit("_", 1)[1]] = value
            seen_memory = True

    budgets = budgets or {}
    limiter: LimiterSection | None = None
    if limiter_pools or waits or bans is not None or responses_429 is not None or seen_limiter:
        rows = []
        for pool, figures in limiter_pools.items():
            limit, window = budgets.get(pool, (None, None))
            rows.append(
                LimiterPoolRow(
                    pool=pool,
                    limit=limit,
                    window=window,
                    granted=_count(figures.get("granted", 0)),
                    units=_count(figures.get("units", 0)),
                    rejected=_count(figures.get("rejected", 0)),
                    utilisation=max(0.0, figures.get("utilisation", 0.0)),
                )
            )
        limiter = LimiterSection(
            pools=rows,
            waits=[
                WaitRow(priority=priority, seconds=_percentiles(found))
                for priority, found in waits.items()
            ],
            bans=_count(bans or 0),
            responses_429=_count(responses_429 or 0),
        )

    pool_rows = tuple(
        PoolRow(
            pool=pool,
            size=_count(figures.get("size", 0)),
            active=_count(figures.get("active", 0)),
            queued=_count(figures.get("queued", 0)),
            completed=_count(figures.get("completed", 0)),
            failed=_count(figures.get("failed", 0)),
            rejected=_count(figures.get("rejected", 0)),
            queue_wait=_percentiles(pool_times[pool]["queue_wait"]),
            run_time=_percentiles(pool_times[pool]["run_time"]),
        )
        for pool, figures in pools.items()
    )

    memory_section: MemorySection | None = None
    if seen_memory:
        memory_section = MemorySection(
            rss_bytes=_opt_count(memory.get("rss_bytes")),
            budget_bytes=_opt_count(memory.get("budget_bytes")),
            pressure_level=_opt_count(memory.get("pressure_level")),
            gc_collections=gc_collections,
            gc_pause_total_seconds=_opt_positive(memory.get("gc_pause_total_seconds")),
            gc_pause_max_seconds=_opt_positive(memory.get("gc_pause_max_seconds")),
            caches=[
                CacheRow(
                    name=cache,
                    items=_opt_count(figures.get("items")),
                    bytes=_opt_count(figures.get("bytes")),
                )
                for cache, figures in caches.items()
            ],
        )
    return SampledSections(limiter=limiter, pools=pool_rows, memory=memory_section)


def _opt_count(value: float | None) -> int | None:
    return None if value is None else _count(value)


def _opt_positive(value: float | None) -> float | None:
    return None if value is None else max(0.0, value)
