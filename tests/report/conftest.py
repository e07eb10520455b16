"""Reports shared by the report tests: a realistic one, an empty one, a large one."""

from __future__ import annotations

import math

import pytest

from aimax.report import (
    ActionRow,
    AlertRow,
    BanRow,
    CacheRow,
    LimiterPoolRow,
    LimiterSection,
    MemorySection,
    OptimizationReport,
    Percentiles,
    PlanSection,
    PoolRow,
    TimeSeries,
    WaitRow,
)

T0 = 1_750_000_000.0
EVIL = "<script>alert('x')</script>"


def _wave(n: int, scale: float, phase: float, step: float = 1.0) -> list[tuple[float, float]]:
    return [(T0 + k * step, scale * (0.5 + 0.5 * math.sin(k / 50 + phase))) for k in range(n)]


def make_report(*, n_points: int = 120, pool_name: str = "rest_public") -> OptimizationReport:
    """A report with every section filled, the way the optimizer fills it."""
    series = [
        TimeSeries(name="aimax_process_cpu_percent", unit="%", points=_wave(n_points, 100, 0)),
        TimeSeries(
            name="process_resident_memory_bytes", unit="bytes", points=_wave(n_points, 2e8, 1)
        ),
        TimeSeries(
            name="aimax_ratelimit_utilisation_ratio",
            unit="ratio",
            labels={"pool": pool_name},
            points=_wave(n_points, 1.0, 2),
        ),
        TimeSeries(
            name="aimax_ratelimit_utilisation_ratio",
            unit="ratio",
            labels={"pool": "rest_private"},
            points=_wave(n_points, 0.3, 3),
        ),
        TimeSeries(
            name="aimax_pool_size",
            labels={"pool": "io"},
            points=[(t, float(round(v))) for t, v in _wave(n_points, 8, 4)],
        ),
        TimeSeries(
            name="aimax_pool_size",
            labels={"pool": "strategy"},
            points=[(t, float(round(v))) for t, v in _wave(n_points, 4, 5)],
        ),
    ]
    return OptimizationReport(
        title="Demo run: 50 pairs",
        created_at=T0 + n_points,
        duration=float(n_points),
        plan=PlanSection(
            figures={
                "pairs": 50,
                "refresh_period_s": 12.5,
                "requests_per_pair_per_min": 24.0,
                "pool_sizes": {"io": 8, "strategy": 2},
                "use_batch_tickers": True,
                "cache_budget_bytes": 3 * 2**30,
                "public_utilisation": 0.6421,
            },
            warnings=["50 pairs cannot refresh every 5 s; at most 20 can"],
        ),
        series=series,
        limiter=LimiterSection(
            pools=[
                LimiterPoolRow(
                    pool=pool_name,
                    limit=1200,
                    window=60,
                    granted=51234,
                    units=52000,
                    rejected=7,
                    utilisation=0.934,
                    waits=[
                        WaitRow(
                            priority="MARKET_DATA",
                            count=900,
                            seconds=Percentiles(p50=0.1, p95=0.5, p99=1.2),
                        )
                    ],
                ),
                LimiterPoolRow(pool="rest_private", limit=1200, window=60, granted=321, units=321),
            ],
            waits=[
                WaitRow(
                    priority="CANCEL",
                    count=12,
                    seconds=Percentiles(p50=0.0, p95=0.002, p99=0.004),
                ),
                WaitRow(
                    priority="ORDER", count=40, seconds=Percentiles(p50=0.001, p95=0.01, p99=0.03)
                ),
                WaitRow(
                    priority="MARKET_DATA",
                    count=50000,
                    seconds=Percentiles(p50=0.2, p95=1.5, p99=3.25),
                ),
            ],
            bans=1,
            responses_429=3,
            ban_events=[
                BanRow(time=T0 + 30, scope="ip", until=T0 + 90, status=429, reason="burst")
            ],
        ),
        pools=[
            PoolRow(
                pool="io",
                size=8,
                max_size=16,
                active=3,
                queued=2,
                completed=12345,
                failed=1,
                queue_wait=Percentiles(p50=0.001, p95=0.005, p99=0.02),
                run_time=Percentiles(p50=0.01, p95=0.1, p99=0.3),
            ),
            PoolRow(pool="strategy", size=2, completed=999, extra={"policy": "caller-runs"}),
        ],
        memory=MemorySection(
            rss_bytes=150_000_000,
            peak_rss_bytes=180_000_000,
            budget_bytes=512 * 2**20,
            pressure_level=1,
            gc_collections={"0": 1200, "1": 100, "2": 3},
            gc_pause_total_seconds=0.4,
            gc_pause_max_seconds=0.02,
            caches=[CacheRow(name="tickers", items=500, bytes=2_000_000, max_items=1000)],
        ),
        alerts=[
            AlertRow(
                time=T0 + 40,
                rule="limiter_near_budget",
                severity="warning",
                value=0.97,
                message="rest_public at 97 %",
                resolved_at=T0 + 70,
            ),
            AlertRow(time=T0 + 80, rule="pool_backlog", severity="critical", value=12),
        ],
        actions=[
            ActionRow(
                time=T0 + 41,
                action="slow_refresh",
                reason="rest_public near budget",
                details={"from_s": 5, "to_s": 7.5},
            ),
            ActionRow(time=T0 + 81, action="resize_pool", reason="io queue backed up"),
        ],
        notes=["simulator on loopback, 50 pairs"],
    )


@pytest.fixture
def report() -> OptimizationReport:
    return make_report()


@pytest.fixture
def empty_report() -> OptimizationReport:
    return OptimizationReport(title="nothing happened", created_at=T0)


@pytest.fixture
def report_factory() -> type[_Factory]:
    """``report_factory.make(n_points=..., pool_name=...)`` for tests that vary the report."""
    return _Factory


class _Factory:
    make = staticmethod(make_report)
    evil = EVIL
    t0 = T0


@pytest.fixture(scope="module")
def report_page() -> str:
    """The HTML page of :func:`make_report`, drawn once per test module (it takes a second)."""
    from aimax.report import render_html

    return render_html(make_report())
