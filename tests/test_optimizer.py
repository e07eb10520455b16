"""SystemPerformanceOptimizer: lifecycle, the plan applied to live components, the
reactions (bans, alerts) and the report."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

import aimax.optimizer as optimizer_module
from aimax._metrics import MetricSample
from aimax.errors import ConfigurationError
from aimax.monitor import AlertRule, ResourceMonitor
from aimax.optimizer import OptimizerConfig, SystemPerformanceOptimizer, start_system_optimization
from aimax.ratelimit import Priority
from aimax.report import OptimizationReport


class _Dial:
    """A metrics source whose value the test sets."""

    def __init__(self) -> None:
        self.value = 0.0

    def metric_samples(self) -> Sequence[MetricSample]:
        return [MetricSample("aimax_ratelimit_utilisation_ratio", self.value, {"pool": "dial"})]


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t is not threading.main_thread()}


def _wait_for_threads(
    expected: set[threading.Thread], timeout: float = 10.0
) -> set[threading.Thread]:
    deadline = time.monotonic() + timeout
    extra = _threads() - expected
    while extra and time.monotonic() < deadline:
        time.sleep(0.02)
        extra = {t for t in _threads() - expected if t.is_alive()}
    return extra


@pytest.fixture
def optimizer() -> Iterator[SystemPerformanceOptimizer]:
    opt = SystemPerformanceOptimizer(OptimizerConfig(monitor_interval=0.05, memory_interval=0.05))
    try:
        yield opt
    finally:
        opt.close()


def test_nothing_starts_before_start_and_nothing_survives_close() -> None:
    before = _threads()
    opt = SystemPerformanceOptimizer(OptimizerConfig(monitor_interval=0.05))
    assert _threads() == before
    assert not opt.running
    opt.start_optimization()
    opt.start_optimization()  # idempotent
    assert opt.running
    assert opt.pools.submit_task("io", sum, [1, 2]).result(timeout=10) == 3
    opt.stop_optimization()
    opt.stop_optimization()  # idempotent
    opt.start_optimization()  # restartable until closed
    opt.close()
    opt.close()  # idempotent
    assert not _wait_for_threads(before)
    with pytest.raises(ConfigurationError, match="closed"):
        opt.start_optimization()


def test_context_manager_starts_and_closes() -> None:
    before = _threads()
    with SystemPerformanceOptimizer(OptimizerConfig(monitor_interval=0.05)) as opt:
        assert opt.running
        assert "running" in repr(opt)
    assert "closed" in repr(opt)
    assert not _wait_for_threads(before)


def test_plan_is_computed_from_the_limiters_budget_and_resizes_pools(
    optimizer: SystemPerformanceOptimizer,
) -> None:
    plan = optimizer.optimize_for_trading_pairs(50, refresh_period=5.0, latency=0.2)
    pools = optimizer.limiter.pools
    public = pools["rest_public"]
    # the limiter's effective public budget per second is what the plan divides
    assert plan.public_rate == pytest.approx(
        optimizer.limiter.cap("rest_public", Priority.MARKET_DATA) / public.window,
        rel=0.02,
    )
    assert plan.public_per_pair * 50 == pytest.approx(plan.public_rate)
    for name, size in plan.pool_sizes.items():
        stats = optimizer.pools.get_pool(name).statistics()
        assert stats.target == min(max(size, stats.min_size, 1), stats.max_size)
    assert optimizer.refresh_period == plan.refresh_period
    actions = [a.action for a in optimizer.actions()]
    assert "plan" in actions


def test_too_many_pairs_warn_and_slow_the_period(optimizer: SystemPerformanceOptimizer) -> None:
    plan = optimizer.optimize_for_trading_pairs(400, refresh_period=2.0)
    assert not plan.feasible
    assert plan.warnings
    assert "at most" in plan.warnings[0]
    assert optimizer.refresh_period == plan.sustainable_period > 2.0
    smaller = optimizer.optimize_for_trading_pairs(plan.max_pairs_at_period, refresh_period=2.0)
    assert smaller.feasible


def test_pools_shrink_when_the_plan_needs_fewer(optimizer: SystemPerformanceOptimizer) -> None:
    big = optimizer.optimize_for_trading_pairs(60, refresh_period=5.0, latency=1.0)
    small = optimizer.optimize_for_trading_pairs(2, refresh_period=5.0, latency=0.05)
    assert small.pool_sizes["market_data"] < big.pool_sizes["market_data"]
    stats = optimizer.pools.get_pool("market_data").statistics()
    assert stats.target == max(small.pool_sizes["market_data"], stats.min_size, 1)
    resizes = [a for a in optimizer.actions() if a.action == "resize_pool"]
    clamped = [a for a in resizes if a.details["to"] != a.details["wanted"]]
    assert all("bounds" in a.reason for a in clamped)


def test_a_429_is_recorded_as_a_ban_and_reported_to_the_pools(
    optimizer: SystemPerformanceOptimizer,
) -> None:
    until = time.time() + 30
    optimizer.limiter.on_response(429, {"Retry-After": str(int(until))}, kind="market_data")
    report = optimizer.get_optimization_report()
    assert report.limiter is not None
    assert report.limiter.bans >= 1
    assert report.limiter.responses_429 == 1
    assert any(a.action == "ban" for a in report.actions)
    assert optimizer.pools.losses("market_data") >= 1


def test_limiter_near_budget_alert_slows_then_restores_the_refresh_plan() -> None:
    monitor = ResourceMonitor(
        interval=1.0,
        rules=[
            AlertRule(
                name="ratelimit_near_budget",
                metric="aimax_ratelimit_utilisation_ratio",
                comparison=">=",
                threshold=0.9,
                clear=0.5,
            )
        ],
    )
    dial = _Dial()
    monitor.add_source("dial", dial)
    opt = SystemPerformanceOptimizer(OptimizerConfig(slowdown=2.0), monitor=monitor)
    try:
        opt.start_optimization()
        monitor.stop_monitoring()  # the test drives the samples by hand
        plan = opt.optimize_for_trading_pairs(10, refresh_period=4.0)
        assert opt.refresh_period == 4.0 == plan.refresh_period
        dial.value = 0.95
        monitor.collect_metrics()
        assert opt.refresh_period == 8.0
        dial.value = 0.7  # between clear and threshold: hysteresis keeps it slowed
        monitor.collect_metrics()
        assert opt.refresh_period == 8.0
        dial.value = 0.1
        monitor.collect_metrics()
        assert opt.refresh_period == 4.0
        report = opt.get_optimization_report()
        actions = [a.action for a in report.actions]
        assert actions.index("slow_refresh") < actions.index("restore_refresh")
        assert [a.rule for a in report.alerts] == ["ratelimit_near_budget"]
        assert report.alerts[0].resolved_at is not None
    finally:
        opt.close()
        monitor.close()


def test_report_round_trips_and_has_the_timeline(optimizer: SystemPerformanceOptimizer) -> None:
    optimizer.start_optimization()
    optimizer.optimize_for_trading_pairs(5)
    for _ in range(20):
        optimizer.limiter.acquire("market_data", pair="btctwd")
    optimizer.pools.submit_task("strategy", sum, range(100)).result(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        names = {s.name for s in optimizer.get_optimization_report().series}
        if {"process_resident_memory_bytes", "aimax_ratelimit_utilisation_ratio"} <= names:
            break
        time.sleep(0.05)
    report = optimizer.get_optimization_report()
    assert OptimizationReport.from_json(report.to_json()) == report
    names = {s.name for s in report.series}
    assert {"process_resident_memory_bytes", "aimax_ratelimit_utilisation_ratio"} <= names
    assert report.plan is not None
    assert report.plan.figures["n_pairs"] == 5
    assert report.limiter is not None
    public = next(p for p in report.limiter.pools if p.pool == "rest_public")
    assert public.granted == 20
    assert {p.pool for p in report.pools} >= {"strategy", "market_data"}
    assert report.memory is not None
    assert report.memory.rss_bytes
    json.loads(report.to_json())


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigurationError, match="share"):
        OptimizerConfig(share=0)
    with pytest.raises(ConfigurationError, match="slowdown"):
        OptimizerConfig(slowdown=0.5)
    with pytest.raises(ConfigurationError, match="monitor_interval"):
        OptimizerConfig(monitor_interval=0)
    with pytest.raises(ConfigurationError, match="expected_processes"):
        OptimizerConfig(expected_processes=0)
    with pytest.raises(ConfigurationError, match="prometheus_port"):
        OptimizerConfig(prometheus_port=70000)


def test_process_wide_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(optimizer_module, "_GLOBAL", None)
    config = OptimizerConfig(monitor_interval=0.05)
    first = start_system_optimization(config)
    try:
        assert start_system_optimization() is first
        assert start_system_optimization(config) is first
        with pytest.raises(ConfigurationError, match="another config"):
            start_system_optimization(OptimizerConfig(share=0.5))
    finally:
        first.close()
    second = start_system_optimization()
    try:
        assert second is not first
    finally:
        second.close()


def test_plan_latency_is_not_guessed_from_pool_run_times() -> None:
    # CPU work in the market_data pool (microseconds) says nothing about REST latency;
    # re-planning after it must still size pools from the configured latency
    with SystemPerformanceOptimizer(OptimizerConfig(latency=0.5)) as opt:
        first = opt.optimize_for_trading_pairs(50, refresh_period=5.0)
        for _ in range(50):
            opt.pools.submit_task("market_data", sum, [1, 2]).result(timeout=10)
        again = opt.optimize_for_trading_pairs(50, refresh_period=5.0)
    assert again.pool_sizes == first.pool_sizes
    assert "0.500s" in again.reasons["market_data"]
