"""sections_from_samples: the contract's metric names turned into report sections."""

from __future__ import annotations

import math

from aimax._metrics import MetricSample as S
from aimax.report import OptimizationReport, Percentiles, sections_from_samples

SAMPLES = [
    S("aimax_ratelimit_utilisation_ratio", 0.93, {"pool": "rest_public"}),
    S("aimax_ratelimit_granted_total", 5100.0, {"pool": "rest_public"}, "counter"),
    S("aimax_ratelimit_units_total", 5200.0, {"pool": "rest_public"}, "counter"),
    S("aimax_ratelimit_rejected_total", 7.0, {"pool": "rest_public"}, "counter"),
    S("aimax_ratelimit_utilisation_ratio", 0.1, {"pool": "rest_private"}),
    S("aimax_ratelimit_wait_seconds", 0.001, {"priority": "CANCEL", "quantile": "0.5"}),
    S("aimax_ratelimit_wait_seconds", 0.004, {"priority": "CANCEL", "quantile": "0.99"}),
    S("aimax_ratelimit_wait_seconds", 1.5, {"priority": "MARKET_DATA", "quantile": "p95"}),
    S("aimax_ratelimit_wait_seconds", 9.0, {"priority": "MARKET_DATA", "quantile": "0.75"}),
    S("aimax_ratelimit_banned", 0.0),
    S("aimax_ratelimit_bans_total", 2.0, kind="counter"),
    S("aimax_client_requests_total", 3.0, {"kind": "market_data", "status": "429"}),
    S("aimax_client_requests_total", 1.0, {"kind": "order", "status": "429"}),
    S("aimax_client_requests_total", 900.0, {"kind": "order", "status": "200"}),
    S("aimax_pool_size", 8.0, {"pool": "io"}),
    S("aimax_pool_active", 3.0, {"pool": "io"}),
    S("aimax_pool_queued", 2.0, {"pool": "io"}),
    S("aimax_pool_completed_total", 12345.0, {"pool": "io"}),
    S("aimax_pool_failed_total", 1.0, {"pool": "io"}),
    S("aimax_pool_rejected_total", 0.0, {"pool": "io"}),
    S("aimax_pool_queue_wait_seconds", 0.02, {"pool": "io", "quantile": "0.99"}),
    S("aimax_pool_run_seconds", 0.3, {"pool": "strategy", "quantile": "0.5"}),
    S("aimax_memory_rss_bytes", 1.5e8),
    S("aimax_memory_budget_bytes", 5.12e8),
    S("aimax_memory_pressure_level", 1.0),
    S("aimax_memory_cache_items", 500.0, {"cache": "tickers"}),
    S("aimax_memory_cache_bytes", 2e6, {"cache": "tickers"}),
    S("aimax_gc_collections_total", 1200.0, {"generation": "0"}),
    S("aimax_gc_collections_total", 3.0, {"generation": "2"}),
    S("aimax_gc_pause_seconds_total", 0.4),
    S("aimax_gc_pause_max_seconds", 0.02),
    S("something_else_entirely", 42.0),
    S("aimax_pool_size", math.nan, {"pool": "ghost"}),
]


def test_every_contract_name_lands_in_its_section() -> None:
    sections = sections_from_samples(SAMPLES, budgets={"rest_public": (1200, 60)})
    lim = sections.limiter
    assert lim is not None
    public, private = lim.pools
    assert (public.pool, public.limit, public.window) == ("rest_public", 1200.0, 60.0)
    assert (public.granted, public.units, public.rejected) == (5100, 5200, 7)
    assert public.utilisation == 0.93
    assert (private.pool, private.limit, private.window) == ("rest_private", None, None)
    waits = {w.priority: w.seconds for w in lim.waits}
    assert waits["CANCEL"] == Percentiles(p50=0.001, p99=0.004)
    assert waits["MARKET_DATA"] == Percentiles(p95=1.5)  # the 0.75 quantile is not kept
    assert (lim.bans, lim.responses_429) == (2, 4)

    io, strategy = sections.pools
    assert (io.pool, io.size, io.active, io.queued, io.completed, io.failed) == (
        "io",
        8,
        3,
        2,
        12345,
        1,
    )
    assert io.queue_wait == Percentiles(p99=0.02)
    assert (strategy.pool, strategy.size, strategy.run_time) == (
        "strategy",
        0,
        Percentiles(p50=0.3),
    )

    mem = sections.memory
    assert mem is not None
    assert (mem.rss_bytes, mem.budget_bytes, mem.pressure_level) == (150_000_000, 512_000_000, 1)
    assert mem.gc_collections == {"0": 1200, "2": 3}
    assert (mem.gc_pause_total_seconds, mem.gc_pause_max_seconds) == (0.4, 0.02)
    assert [(c.name, c.items, c.bytes) for c in mem.caches] == [("tickers", 500, 2_000_000)]

    report = OptimizationReport(
        title="from samples",
        created_at=1,
        limiter=lim,
        pools=sections.pools,
        memory=mem,
    )
    assert OptimizationReport.from_json(report.to_json()) == report


def test_nothing_sampled_gives_no_sections() -> None:
    sections = sections_from_samples([S("process_cpu_percent", 12.0)])
    assert sections.limiter is None
    assert sections.pools == ()
    assert sections.memory is None


def test_a_limiter_with_only_a_ban_gauge_still_has_a_section() -> None:
    sections = sections_from_samples([S("aimax_ratelimit_banned", 1.0)])
    assert sections.limiter is not None
    assert sections.limiter.pools == ()
