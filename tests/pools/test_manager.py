"""ThreadPoolManager: named isolated pools, seed API, asyncio bridge, autoscaling driver,
shutdown report, metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from aimax.errors import ConfigurationError, PoolClosed, PoolFull
from aimax.pools import (
    DEFAULT_POOL_CONFIGS,
    POOL_NAMES,
    AutoscalerConfig,
    PoolConfig,
    PoolStatistics,
    ResizablePool,
    ThreadPoolManager,
)

Until = Callable[..., bool]
Gate = Any


def test_standard_names_are_created_lazily_and_isolated(gate: Gate, until: Until) -> None:
    assert set(POOL_NAMES) == {"market_data", "strategy", "orders", "io", "default"}
    manager = ThreadPoolManager()
    assert manager.get_pool_stats() == {}
    assert not [t for t in threading.enumerate() if t.name.startswith("aimax-pool")]
    market = manager.get_pool("market_data")
    assert manager.get_pool("market_data") is market
    assert market.config == DEFAULT_POOL_CONFIGS["market_data"]
    # flood market_data; orders still run at once
    size = market.config.initial_size
    for _ in range(size):
        manager.submit_task("market_data", gate.task)
    assert until(lambda: gate.started == size)
    assert manager.submit_task("orders", sum, [1, 2]).result(timeout=30) == 3
    stats = manager.get_pool_stats()
    assert set(stats) == {"market_data", "orders"}
    assert stats["market_data"].active == size
    assert stats["orders"].completed == 1
    gate.release.set()
    report = manager.shutdown_all()
    assert report.clean
    assert {p.pool for p in report.pools} == {"market_data", "orders"}


def test_seed_api_and_custom_configs() -> None:
    configs = {"io": PoolConfig(max_size=2), "crunch": PoolConfig(max_size=1, policy="reject")}
    with ThreadPoolManager(configs) as manager:
        assert isinstance(manager.get_pool("crunch"), ResizablePool)
        assert manager.get_pool("io").config.max_size == 2
        f = manager.submit_task("crunch", pow, 3, 2)
        assert isinstance(f, Future)
        assert f.result(timeout=30) == 9
        one = manager.get_pool_stats("crunch")
        assert isinstance(one, PoolStatistics)
        assert one.completed == 1
        assert manager.statistics().pools["crunch"].completed == 1
        manager.resize("io", 1)
        assert manager.get_pool("io").target == 1
        assert "crunch" in repr(manager)


def test_unknown_pool_and_bad_configs_are_refused() -> None:
    with ThreadPoolManager() as manager:
        with pytest.raises(ConfigurationError, match="unknown pool 'nope'"):
            manager.get_pool("nope")
        with pytest.raises(ConfigurationError):
            manager.submit_task("nope", abs, 1)
    with pytest.raises(ConfigurationError):
        ThreadPoolManager({"x": {"max_size": 1}})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError):
        ThreadPoolManager({"": PoolConfig()})


def test_submit_after_shutdown_raises_pool_closed() -> None:
    manager = ThreadPoolManager()
    pool = manager.get_pool("io")
    manager.shutdown_all()
    with pytest.raises(PoolClosed) as info:
        manager.submit_task("io", abs, 1)
    assert info.value.pool == "io"
    with pytest.raises(PoolClosed):
        manager.get_pool("orders")  # a new pool after shutdown
    with pytest.raises(PoolClosed):
        pool.resize(2)


def test_shutdown_all_reports_cancelled_tasks_by_pool_and_is_idempotent(
    gate: Gate, until: Until
) -> None:
    manager = ThreadPoolManager(
        {"a": PoolConfig(max_size=1), "b": PoolConfig(max_size=1), "c": PoolConfig(max_size=1)}
    )

    def slow_report() -> None:
        gate.task()

    running = [manager.submit_task(name, gate.task) for name in ("a", "b")]
    assert until(lambda: gate.started == 2)
    left = [manager.submit_task("a", slow_report) for _ in range(2)]
    left += [manager.submit_task("b", slow_report)]
    manager.submit_task("c", abs, -1).result(timeout=30)
    report = manager.shutdown_all(wait=True, timeout=0.05)
    assert len(report.cancelled) == 3
    assert {ref.pool for ref in report.cancelled} == {"a", "b"}
    assert {ref.name for ref in report.cancelled} == {slow_report.__qualname__}
    assert all(f.cancelled() for f in left)
    assert sorted(ref.pool for ref in report.still_running) == ["a", "b"]
    assert not report.clean
    assert "cancelled 2" in str(report)
    gate.release.set()
    assert [f.result(timeout=30) for f in running] == [0, 0]
    again = manager.shutdown_all()
    assert again.cancelled == ()
    assert again.threads_alive == 0
    assert all(p.already_closed for p in again.pools)
    for name in ("a", "b", "c"):
        s = manager.get_pool(name).statistics()
        assert s.submitted == s.accounted


def test_shutdown_all_without_waiting_cancels_queues_at_once(gate: Gate, until: Until) -> None:
    manager = ThreadPoolManager({"a": PoolConfig(max_size=1)})
    first = manager.submit_task("a", gate.task)
    assert until(lambda: gate.started == 1)
    queued = [manager.submit_task("a", gate.task) for _ in range(5)]
    report = manager.shutdown_all(wait=False)
    assert len(report.cancelled) == 5
    assert all(f.cancelled() for f in queued)
    gate.release.set()
    assert first.result(timeout=30) == 0
    assert manager.shutdown_all(wait=True).threads_alive == 0


async def test_run_awaits_pool_work_without_blocking_the_loop() -> None:
    manager = ThreadPoolManager({"io": PoolConfig(max_size=2)})
    release = threading.Event()
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while not release.is_set():
            ticks += 1
            await asyncio.sleep(0.001)

    beat = asyncio.create_task(heartbeat())
    work = asyncio.create_task(manager.run("io", lambda: release.wait(30) and 42))
    while ticks < 20:  # the loop keeps turning while the pool task blocks
        await asyncio.sleep(0.001)
    assert not work.done()
    release.set()
    assert await work == 42
    await beat
    assert await manager.run("io", divmod, 9, 4) == (2, 1)
    with pytest.raises(ZeroDivisionError):
        await manager.run("io", divmod, 1, 0)
    assert manager.get_pool_stats("io").failed == 1
    assert manager.shutdown_all().clean


async def test_run_waits_for_room_asynchronously_and_reject_raises(
    gate: Gate, until: Until
) -> None:
    manager = ThreadPoolManager(
        {
            "blk": PoolConfig(max_size=1, queue_size=1, policy="block"),
            "rej": PoolConfig(max_size=1, queue_size=1, policy="reject"),
            "cr": PoolConfig(max_size=1, queue_size=1, policy="caller_runs"),
            "tmo": PoolConfig(max_size=1, queue_size=1, policy="block:0.05"),
        }
    )
    loop_thread = threading.get_ident()
    for name in ("blk", "rej", "cr", "tmo"):
        manager.submit_task(name, gate.task)
    assert until(lambda: gate.started == 4)
    for name in ("blk", "rej", "cr", "tmo"):
        manager.submit_task(name, gate.task)
    with pytest.raises(PoolFull):
        await manager.run("rej", abs, 1)
    with pytest.raises(PoolFull, match="still full"):
        await manager.run("tmo", abs, 1)
    waiting = [
        asyncio.create_task(manager.run("blk", threading.get_ident)),
        asyncio.create_task(manager.run("cr", threading.get_ident)),
    ]
    await asyncio.sleep(0.02)
    assert not any(t.done() for t in waiting)  # parked without blocking this loop
    gate.release.set()
    idents = await asyncio.gather(*waiting)
    assert loop_thread not in idents  # caller-runs never runs on the event loop
    assert manager.shutdown_all().threads_alive == 0
    for name in ("blk", "rej", "cr", "tmo"):
        s = manager.get_pool_stats(name)
        assert s.submitted == s.accounted


async def test_cancelling_the_awaiting_coroutine_cancels_the_queued_task(
    gate: Gate, until: Until
) -> None:
    manager = ThreadPoolManager({"a": PoolConfig(max_size=1)})
    manager.submit_task("a", gate.task)
    assert until(lambda: gate.started == 1)
    ran: list[int] = []
    task = asyncio.create_task(manager.run("a", ran.append, 1))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert until(lambda: manager.get_pool_stats("a").cancelled == 1)
    gate.release.set()
    manager.shutdown_all()
    assert ran == []


async def test_shutdown_wakes_coroutines_waiting_for_room(gate: Gate, until: Until) -> None:
    manager = ThreadPoolManager({"a": PoolConfig(max_size=1, queue_size=1, policy="block")})
    manager.submit_task("a", gate.task)
    assert until(lambda: gate.started == 1)
    manager.submit_task("a", gate.task)
    waiter = asyncio.create_task(manager.run("a", abs, 1))
    await asyncio.sleep(0.01)
    gate.release.set()
    await asyncio.to_thread(manager.shutdown_all, wait=True, drain=False)
    with pytest.raises(PoolClosed):
        await waiter


def test_autoscale_driver_grows_a_backlogged_pool_and_records_reasons(until: Until) -> None:
    auto = AutoscalerConfig(interval=0.02, short_window=0.2, long_window=2.0)
    config = PoolConfig(max_size=16, size=1, queue_size=10_000, autoscale=auto)
    manager = ThreadPoolManager({"auto": config})
    pool = manager.get_pool("auto")
    futures = [manager.submit_task("auto", time.sleep, 0.005) for _ in range(400)]
    assert until(lambda: pool.target > 1)
    for f in futures:
        f.result(timeout=60)
    decisions = manager.decisions("auto")
    assert decisions
    assert decisions[0].old == 1
    assert decisions[0].new > 1
    assert decisions[0].reason in {"backlog", "demand"}
    assert pool.statistics().peak_size > 1
    report = manager.shutdown_all()
    assert report.clean
    assert not [t for t in threading.enumerate() if t.name == "aimax-pools-autoscaler"]


def test_report_loss_cuts_an_autoscaled_pool_and_is_counted() -> None:
    auto = AutoscalerConfig(loss_factor=0.5)
    config = PoolConfig(max_size=16, size=8, autoscale=auto)
    manager = ThreadPoolManager(
        {"auto": config, "plain": PoolConfig(max_size=2)}, autoscale_thread=False
    )
    pool = manager.get_pool("auto")
    controller = manager.controller("auto")
    assert controller is not None
    assert manager.controller("plain") is None
    manager.autoscale_once(now=0.0)
    manager.report_loss("auto", "429")
    manager.report_loss("plain", "timeout")
    fresh = manager.autoscale_once(now=0.5)
    assert [(d.old, d.new, d.reason) for d in fresh] == [(8, 4, "loss")]
    assert pool.target == 4
    assert manager.losses("auto") == 1
    assert manager.losses("plain") == 1
    assert manager.decisions("plain") == ()
    with pytest.raises(ConfigurationError):
        manager.report_loss("nope")
    manager.shutdown_all()
    assert not [t for t in threading.enumerate() if t.name == "aimax-pools-autoscaler"]


async def test_cancelling_a_run_waiting_for_room_keeps_the_counts_honest(
    gate: Gate, until: Until
) -> None:
    manager = ThreadPoolManager({"a": PoolConfig(max_size=1, queue_size=1, policy="block")})
    manager.submit_task("a", gate.task)
    assert until(lambda: gate.started == 1)
    manager.submit_task("a", gate.task)
    waiter = asyncio.create_task(manager.run("a", abs, 1))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    s = manager.get_pool_stats("a")
    assert (s.submitted, s.cancelled, s.active, s.queued) == (3, 1, 1, 1)
    assert s.submitted == s.accounted
    gate.release.set()
    assert manager.shutdown_all().threads_alive == 0
