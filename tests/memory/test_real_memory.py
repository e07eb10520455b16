"""Real allocations measured through the real probe (generous margins: the machine is shared)."""

from __future__ import annotations

import gc
import random

from aimax.memory import (
    BoundedLRUCache,
    MemoryConfig,
    MemoryManager,
    PressureThresholds,
    SystemProbe,
)

MiB = 2**20
VALUE = 8 * 1024  # glibc heap chunks (below the mmap threshold): the hard case for RSS


def _settle(probe: SystemProbe) -> int:
    gc.collect()
    probe.trim()
    return probe.rss()


def test_bounded_cache_keeps_rss_within_its_budget() -> None:
    probe = SystemProbe()
    rng = random.Random(7)
    cache = BoundedLRUCache[int, bytes](max_bytes=16 * MiB)
    baseline = _settle(probe)
    peak = baseline
    written = 0
    for i in range(16_000):  # 128 MiB written in all: 8x the cache's budget
        cache[i] = rng.randbytes(VALUE)
        written += VALUE
        if i % 250 == 0:
            peak = max(peak, probe.rss())
    peak = max(peak, probe.rss())
    assert written >= 120 * MiB
    assert 15 * MiB <= cache.estimated_bytes <= 16 * MiB  # it did fill up to its bound
    growth = peak - baseline
    # an unbounded cache would have grown RSS by ~128 MiB; allow 3x the bound for
    # allocator slack, interpreter noise and this test's own bookkeeping
    assert growth < 48 * MiB, f"RSS grew {growth / MiB:.1f} MiB for a 16 MiB cache"
    cache.clear()


def test_manager_keeps_registered_caches_under_a_real_budget() -> None:
    probe = SystemProbe()
    rng = random.Random(11)
    baseline = _settle(probe)
    budget = baseline + 64 * MiB
    config = MemoryConfig(
        thresholds=PressureThresholds(elevated=0.85, critical=0.95, hysteresis=0.05, min_hold=0),
        shrink_fraction=0.25,
        trim_threshold=4 * MiB,
        uss_interval=None,
        gc_cooldown=1.0,
    )
    with MemoryManager(budget=budget, config=config, probe=probe) as manager:
        # caches far bigger than the budget: only the manager keeps them in check
        books = BoundedLRUCache[int, bytes](
            max_bytes=512 * MiB, name="books", manager=manager, priority=0
        )
        candles = BoundedLRUCache[int, bytes](
            max_bytes=512 * MiB, name="candles", manager=manager, priority=5
        )
        peak = 0
        for i in range(24_000):  # 192 MiB written
            (books if i % 3 else candles)[i] = rng.randbytes(VALUE)
            if i % 128 == 0:
                manager.monitor_memory()
                peak = max(peak, probe.rss())
        peak = max(peak, probe.rss())
        stats = manager.statistics()
        assert stats.cleanups >= 1
        assert stats.items_freed > 1000
        shrinks = {c.name: c.shrinks for c in stats.caches}
        assert shrinks["books"] >= 1  # the low-priority cache gave way
        # within budget + 5 %, with 8 MiB more for the writes between two checks (1 MiB)
        # and the allocator's slack
        assert peak <= budget * 1.05 + 8 * MiB, (
            f"peak {peak / MiB:.1f} MiB over budget {budget / MiB:.1f} MiB"
        )
        books.clear()
        candles.clear()
