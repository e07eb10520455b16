"""Nonces reach the exchange in the order they were issued, whatever the concurrency.

A strict-nonce simulator refuses (2006) any nonce not greater than the last one it
accepted for the key, so one request overtaking another on the wire is a rejection.
50 tasks on one client plus 8 threads, each with its own sync facade and event loop,
share one key (and so one nonce generator and one send lane) and mix GET, POST and
DELETE calls: the simulator must refuse none, and no client may need a resync.
"""

from __future__ import annotations

import asyncio
import threading

from aimax.exchange.max import MaxClient, MaxClientSync
from aimax.exchange.simulator import MaxSimulator, SimulatorConfig
from aimax.ratelimit import APIRateLimiter

KEY, SECRET = "wire-order-key", "wire-order-secret"
TASKS, THREADS = 50, 8


def test_tasks_and_threads_on_one_key_get_no_nonce_rejection() -> None:
    config = SimulatorConfig(
        n_markets=3, history_seconds=0, strict_nonces=True, latency=(0.0, 0.003), seed=3
    )
    limiter = APIRateLimiter.for_max(warm_start=0.0)
    failures: list[BaseException] = []
    resyncs: list[int] = []
    start = threading.Barrier(THREADS + 1)

    with MaxSimulator(config) as sim:
        sim.add_account(KEY, SECRET, {"twd": "100000000", "btc": "100"})

        def thread_work() -> None:
            try:
                with MaxClientSync(
                    base_url=sim.url, access_key=KEY, secret_key=SECRET, limiter=limiter
                ) as sync:
                    start.wait(30)
                    for _ in range(8):
                        sync.accounts(currency="twd")
                        order = sync.create_order("btctwd", "sell", "0.01", "99999999")
                        sync.cancel_order(id=order.id)
                    resyncs.append(sync.statistics().nonce_resyncs)
            except BaseException as exc:  # reported below
                failures.append(exc)

        async def pair_task(c: MaxClient, i: int) -> None:
            for _ in range(3):
                await c.open_orders("btctwd", limit=5)
                order = await c.create_order("btctwd", "sell", "0.01", "99999999")
                await c.get_order(client_oid=order.client_oid)
                await c.cancel_order(client_oid=order.client_oid)

        async def main() -> int:
            async with MaxClient(
                base_url=sim.url, access_key=KEY, secret_key=SECRET, limiter=limiter
            ) as c:
                await c.sync_time()
                await asyncio.to_thread(start.wait, 30)
                await asyncio.gather(*(pair_task(c, i) for i in range(TASKS)))
                return c.statistics().nonce_resyncs

        threads = [threading.Thread(target=thread_work) for _ in range(THREADS)]
        for t in threads:
            t.start()
        main_resyncs = asyncio.run(main())
        for t in threads:
            t.join(60)
        stats = sim.stats()
    limiter.close()
    assert failures == []
    assert main_resyncs == 0
    assert resyncs == [0] * THREADS
    assert stats.nonce_rejections == 0
    assert stats.auth_failures == 0
    private = TASKS * 3 * 4 + THREADS * 8 * 3
    assert stats.orders_created == TASKS * 3 + THREADS * 8
    assert stats.orders_cancelled == stats.orders_created
    assert sum(stats.by_account.values()) >= private
