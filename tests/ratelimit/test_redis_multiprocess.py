"""Several real processes on one Redis budget, and a Redis outage in the middle of a run.

Each process runs its own :class:`RedisBackend` and threads that hammer it the way
the limiter does (attempt; if refused, sleep the answered wait; retry). Every grant
is recorded with the time the decision was made (the Redis server's clock, or the
local wall clock for fallback grants: one host, one clock), and the union of all
processes' grants is checked against every pool's sliding window.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from aimax._redisserver import RedisServer
from aimax.ratelimit._window import Charge
from aimax.ratelimit.redis_backend import RedisBackend, RedisBackendStatistics

from ._checks import max_in_window, worst_window

pytestmark = [pytest.mark.redis, pytest.mark.slow]

CTX = mp.get_context("fork")  # the workers live in this test module


@dataclass(frozen=True)
class Grant:
    at: float
    pools: tuple[tuple[str, int], ...]
    local: bool


def hammer(
    *,
    backend: RedisBackend,
    plans: list[list[Charge]],
    scopes: list[str],
    until: float,
    seed: int,
    out: list[Grant],
    lock: threading.Lock,
) -> None:
    """Ask for random plans until the wall clock passes ``until``; record grants."""
    rng = random.Random(seed)
    plan = rng.choice(plans)
    while time.time() < until:
        answer = backend.attempt(plan, scopes)
        if answer.granted:
            at, local = backend.last_grant_time, backend.last_grant_local
            assert at is not None
            assert local is not None
            with lock:
                out.append(Grant(at, tuple((c.pool, c.cost) for c in plan), local))
            plan = rng.choice(plans)
        else:
            time.sleep(min(answer.wait, max(0.0, until - time.time())))


def worker(
    *,
    url: str,
    prefix: str,
    expected: int,
    thread_plans: list[list[list[Charge]]],
    start: float,
    until: float,
    seed: int,
    queue: Any,
) -> None:
    backend = RedisBackend.from_url(
        url,
        prefix=prefix,
        expected_processes=expected,
        probe_interval=0.05,
        probe_max_interval=0.2,
        socket_timeout=2.0,
        connect_timeout=1.0,
    )
    grants: list[Grant] = []
    lock = threading.Lock()
    seen_degraded = threading.Event()

    def watch() -> None:
        while time.time() < until:
            if backend.degraded:
                seen_degraded.set()
            time.sleep(0.01)

    time.sleep(max(0.0, start - time.time()))
    threads = [
        threading.Thread(
            target=hammer,
            kwargs={
                "backend": backend,
                "plans": plans,
                "scopes": ["ip"],
                "until": until,
                "seed": seed * 100 + i,
                "out": grants,
                "lock": lock,
            },
        )
        for i, plans in enumerate(thread_plans)
    ]
    threads.append(threading.Thread(target=watch))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = backend.statistics()
    backend.close()
    queue.put((grants, stats, seen_degraded.is_set()))


Result = tuple[list[Grant], RedisBackendStatistics, bool]


def run_processes(
    url: str, prefix: str, n: int, thread_plans: list[list[list[Charge]]], duration: float
) -> tuple[list[Result], list[Any], float]:
    """Start ``n`` worker processes; returns their results, the processes, the start."""
    queue = CTX.Queue()
    start = time.time() + 1.0  # let every process start before the clock runs
    procs = [
        CTX.Process(
            target=worker,
            kwargs={
                "url": url,
                "prefix": prefix,
                "expected": n,
                "thread_plans": thread_plans,
                "start": start,
                "until": start + duration,
                "seed": i,
                "queue": queue,
            },
        )
        for i in range(n)
    ]
    for proc in procs:
        proc.start()
    return [queue.get(timeout=60) for _ in procs], procs, start


def union(results: list[Result], pool: str) -> list[tuple[float, int]]:
    return [
        (g.at, cost) for grants, _, _ in results for g in grants for p, cost in g.pools if p == pool
    ]


def utilisation(grants: list[tuple[float, int]], window: float, limit: int) -> float:
    """Units granted in the whole windows after the first grant / what they could hold."""
    times = sorted(grants)
    first, last = times[0][0], times[-1][0]
    k = int((last - first) // window)
    assert k >= 2, "the run is too short to measure"
    units = sum(cost for at, cost in times if at < first + k * window)
    return units / (k * limit)


W = 0.5
IP, ACCT = 20, 12


def test_four_processes_share_one_exact_budget(redis_url: str) -> None:
    # per process one thread per class, each always asking (saturation): market data
    # (may fill 85 % of ip, costs 1 or 2), account queries (all of ip), orders (all of
    # ip, linked with 2 units of acct) and cancels (all of acct). Across processes no
    # queue orders the classes, so each pool's top class must be able to fill it.
    market = [[Charge("ip", cost, 17, W)] for cost in (1, 1, 2)]
    account = [[Charge("ip", 1, IP, W)]]
    orders = [[Charge("ip", 1, IP, W), Charge("acct", 2, ACCT, W)]]
    cancels = [[Charge("acct", 1, ACCT, W)]]
    results, procs, _ = run_processes(
        redis_url, "mp", 4, [market, account, orders, cancels], duration=3.0
    )
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    ip, acct = union(results, "ip"), union(results, "acct")
    assert max_in_window(ip, W) <= IP
    assert max_in_window(acct, W) <= ACCT
    assert max(at for at, _ in ip) - min(at for at, _ in ip) > 2.0
    assert all(not stats.degraded and stats.local_grants == 0 for _, stats, _ in results)
    assert all(len(grants) > 10 for grants, _, _ in results)  # every process was served
    util = (utilisation(ip, W, IP), utilisation(acct, W, ACCT))
    print(f"utilisation ip={util[0]:.4f} acct={util[1]:.4f}")
    assert min(util) >= 0.97


def test_redis_outage_and_restart_never_overdraws(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    window, limit = 0.6, 30
    plans = [[Charge("p", cost, limit, window)] for cost in (1, 1, 2)]
    results_box: list[Any] = []

    def run() -> None:
        results_box.append(run_processes(server.url, "fault", 3, [plans, plans], duration=4.0))

    runner = threading.Thread(target=run)
    runner.start()
    time.sleep(1.0 + 1.2)  # start delay, then 1.2 s on Redis
    server.stop()
    time.sleep(1.2)  # the outage: longer than a window, so the fallback serves
    server.start()
    runner.join(timeout=90)
    results, procs, start = results_box[0]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    grants = union(results, "p")
    units, at = worst_window(grants, window)
    detail = sorted(
        (round(g.at - start, 4), i, g.pools[0][1], "local" if g.local else "redis")
        for i, (gs, _, _) in enumerate(results)
        for g in gs
        if at - 0.05 <= g.at < at + window + 0.05
    )
    assert units <= limit, f"{units} units from {at - start:.4f}: {detail}"
    every = [g for grants_, _, _ in results for g in grants_]
    local = [g for g in every if g.local]
    assert local, "the local fallback granted nothing during the outage"
    assert all(start + 1.2 <= g.at <= start + 2.4 + 0.5 for g in local)
    after = [g for g in every if not g.local and g.at > start + 2.4 + 0.3]
    assert after, "nothing was granted through Redis after the restart"
    for _, stats, seen_degraded in results:
        assert seen_degraded
        assert stats.outages >= 1
        assert not stats.degraded  # back on Redis at the end
        assert stats.restarts_detected >= 1
