"""The one mapping from each component's ``statistics()`` to typed metric families.

A component describes itself once, in its frozen statistics dataclass; this module
turns that description into :class:`~aimax._metrics.MetricFamily` objects (name,
kind, help, labelled values), as ``prometheus_client`` collectors do. Latency-like
figures become histograms (``_bucket``/``_sum``/``_count``), never quantile gauges.

    >>> from aimax.pools import ResizablePool
    >>> with ResizablePool("io") as pool:
    ...     _ = pool.submit(abs, -1).result()
    ...     names = [f.name for f in families_of(pool.statistics())]
    >>> "aimax_pool_run_seconds" in names
    True

:func:`reader_for` picks how the monitor reads a source: through this mapping when
its ``statistics()`` type is known, else its ``metric_families()``, else its flat
``metric_samples()``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aimax._metrics import FamiliesSource, HistogramValue, MetricFamily, MetricsSource
from aimax.errors import ConfigurationError

if TYPE_CHECKING:  # mapped by class path at run time: no import cycle with the components
    from aimax.memory.gccontrol import GCStatistics
    from aimax.memory.manager import MemoryStatistics
    from aimax.pools.stats import PoolStatistics

__all__ = ["families_of", "gc_families", "reader_for", "samples_as_families"]

Values = list[tuple[Mapping[str, str], float | HistogramValue]]


def _family(name: str, kind: Any, help_: str, values: Values) -> MetricFamily:
    return MetricFamily(name, kind, help_, tuple(values))


def _pools(stats: Sequence[PoolStatistics]) -> list[MetricFamily]:
    def each(get: Callable[[PoolStatistics], float | HistogramValue]) -> Values:
        return [({"pool": s.name}, get(s)) for s in stats]

    return [
        _family("aimax_pool_size", "gauge", "Live worker threads.", each(lambda s: s.size)),
        _family("aimax_pool_active", "gauge", "Tasks running now.", each(lambda s: s.active)),
        _family(
            "aimax_pool_queued", "gauge", "Tasks waiting in the queue.", each(lambda s: s.queued)
        ),
        _family(
            "aimax_pool_completed_total",
            "counter",
            "Tasks that returned.",
            each(lambda s: s.completed),
        ),
        _family(
            "aimax_pool_failed_total", "counter", "Tasks that raised.", each(lambda s: s.failed)
        ),
        _family(
            "aimax_pool_rejected_total",
            "counter",
            "Tasks refused by the queue's policy or a shutdown.",
            each(lambda s: s.rejected),
        ),
        _family(
            "aimax_pool_queue_wait_seconds",
            "histogram",
            "Time tasks waited in the queue before a worker took them.",
            each(lambda s: s.queue_wait.histogram),
        ),
        _family(
            "aimax_pool_run_seconds",
            "histogram",
            "Time tasks ran.",
            each(lambda s: s.run_time.histogram),
        ),
    ]


def _memory(s: MemoryStatistics) -> list[MetricFamily]:
    out = [
        _family("aimax_memory_budget_bytes", "gauge", "Memory budget.", [({}, s.budget_bytes)]),
        _family(
            "aimax_memory_limit_bytes",
            "gauge",
            "min(cgroup limit, physical memory).",
            [({}, s.limit_bytes)],
        ),
        _family(
            "aimax_memory_pressure_level",
            "gauge",
            "0 normal, 1 elevated, 2 critical.",
            [({}, int(s.level))],
        ),
        _family(
            "aimax_memory_usage_ratio", "gauge", "Resident set size / budget.", [({}, s.ratio)]
        ),
        _family(
            "aimax_memory_cleanups_total", "counter", "Cache cleanups run.", [({}, s.cleanups)]
        ),
        _family(
            "aimax_memory_cache_items_freed_total",
            "counter",
            "Cache items freed by cleanups.",
            [({}, s.items_freed)],
        ),
        _family("aimax_memory_trims_total", "counter", "malloc_trim calls.", [({}, s.trims)]),
    ]
    if s.uss_bytes is not None:
        out.append(
            _family("aimax_memory_uss_bytes", "gauge", "Unique set size.", [({}, s.uss_bytes)])
        )
    if s.malloc_free_bytes is not None:
        out.append(
            _family(
                "aimax_memory_malloc_free_bytes",
                "gauge",
                "Bytes the C allocator holds free.",
                [({}, s.malloc_free_bytes)],
            )
        )
    items: Values = [({"cache": c.name}, c.items) for c in s.caches if c.items is not None]
    sizes: Values = [({"cache": c.name}, c.bytes) for c in s.caches if c.bytes is not None]
    if items:
        out.append(
            _family("aimax_memory_cache_items", "gauge", "Items in a registered cache.", items)
        )
    if sizes:
        out.append(
            _family(
                "aimax_memory_cache_bytes", "gauge", "Estimated bytes of a registered cache.", sizes
            )
        )
    return out


def gc_families(pauses: GCStatistics | None) -> list[MetricFamily]:
    """The collector's counts (``gc.get_stats()``) and, when measured, its pause histogram."""
    stats = gc.get_stats()
    out = [
        _family(
            "aimax_gc_collections_total",
            "counter",
            "GC runs since the process started, by generation.",
            [({"generation": str(g)}, s["collections"]) for g, s in enumerate(stats)],
        ),
        _family(
            "aimax_gc_collected_total",
            "counter",
            "Objects collected by the GC, by generation.",
            [({"generation": str(g)}, s["collected"]) for g, s in enumerate(stats)],
        ),
        _family(
            "aimax_gc_uncollectable_total",
            "counter",
            "Uncollectable objects, by generation.",
            [({"generation": str(g)}, s["uncollectable"]) for g, s in enumerate(stats)],
        ),
    ]
    if pauses is not None:
        out.append(
            _family(
                "aimax_gc_pause_seconds",
                "histogram",
                "GC pauses since the monitor or memory manager started measuring, by generation.",
                [({"generation": str(g.generation)}, g.histogram) for g in pauses.generations],
            )
        )
    return out


_MAPPERS: dict[str, Callable[[Any], list[MetricFamily]]] = {
    "aimax.pools.stats.PoolStatistics": lambda s: _pools([s]),
    "aimax.pools.stats.ManagerStatistics": lambda s: _pools(list(s.pools.values())),
    "aimax.memory.manager.MemoryStatistics": _memory,
    "aimax.memory.gccontrol.GCStatistics": gc_families,
}


def _path(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def families_of(stats: object) -> list[MetricFamily]:
    """The metric families of a statistics object of a known type.

    Raises :class:`~aimax.errors.ConfigurationError` for a type this module does not map.
    """
    mapper = _MAPPERS.get(_path(type(stats)))
    if mapper is None:
        raise ConfigurationError(f"no metric mapping for {type(stats).__name__}")
    return mapper(stats)


def samples_as_families(source: MetricsSource) -> list[MetricFamily]:
    """A flat ``metric_samples()`` source's rows, grouped into families by name."""
    grouped: dict[str, MetricFamily] = {}
    for s in source.metric_samples():
        family = grouped.get(s.name)
        value = s.value  # checked by the monitor: a non-number degrades that series alone
        if family is None:
            grouped[s.name] = MetricFamily(s.name, s.kind, s.help, ((s.labels, value),))
        else:
            grouped[s.name] = MetricFamily(
                family.name, family.kind, family.help, (*family.values, (s.labels, value))
            )
    return list(grouped.values())


def reader_for(name: str, source: object) -> Callable[[], Sequence[MetricFamily]]:
    """How the monitor reads ``source``: mapped statistics, families, or flat samples."""
    statistics = getattr(source, "statistics", None)
    if callable(statistics):
        try:
            path = _path(type(statistics()))
        except Exception:  # a broken source is tried by its other protocols
            path = ""
        mapper = _MAPPERS.get(path)
        if mapper is not None:
            return lambda: mapper(statistics())
    if isinstance(source, FamiliesSource):
        return source.metric_families
    if isinstance(source, MetricsSource):
        return lambda: samples_as_families(source)
    raise ConfigurationError(
        f"source {name!r} needs statistics() of a mapped type, metric_families() or "
        f"metric_samples(), got {source!r}"
    )
