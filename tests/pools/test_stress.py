"""Real-thread stress: many producers, a pool resized up and down all the while."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_all

import pytest

from aimax.errors import PoolFull
from aimax.pools import PoolConfig, ResizablePool


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["block", "reject", "caller_runs"])
def test_resizing_under_load_loses_nothing_and_counts_add_up(
    policy: str, until: Callable[..., bool]
) -> None:
    pool = ResizablePool("stress", PoolConfig(max_size=12, size=3, queue_size=64, policy=policy))
    in_flight = 0
    lock = threading.Lock()
    futures: list[Future[int]] = []
    rejected = 0
    stop = threading.Event()

    def task(i: int) -> int:
        nonlocal in_flight
        with lock:
            in_flight += 1
        time.sleep(random.random() * 0.002)
        with lock:
            in_flight -= 1
        if i % 13 == 0:
            raise ValueError(i)
        return i

    def producer(base: int) -> None:
        nonlocal rejected
        mine: list[Future[int]] = []
        for i in range(base, base + 600):
            try:
                mine.append(pool.submit(task, i))
            except PoolFull:
                with lock:
                    rejected += 1
        with lock:
            futures.extend(mine)

    def resizer() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            n = rng.randint(1, 12)
            pool.resize(n)
            time.sleep(0.003)

    threads = [threading.Thread(target=producer, args=(k * 10_000,)) for k in range(4)]
    pool.resize(12)  # room to grow from the first burst on, whenever the resizer runs
    knob = threading.Thread(target=resizer)
    knob.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop.set()
    knob.join(30)
    _, not_done = wait_all(futures, timeout=120)
    assert not not_done
    pool.resize(2)
    assert until(lambda: pool.size == 2)  # the idle surplus retires
    report = pool.shutdown(wait=True)
    assert report.clean
    s = pool.statistics()
    assert s.submitted == 2400
    assert s.rejected == rejected
    assert s.completed + s.failed == len(futures)
    assert s.failed == sum(1 for f in futures if f.exception() is not None)
    assert s.active == s.queued == 0
    assert s.submitted == s.accounted
    assert 3 < s.peak_size <= 12  # it really grew past its initial size, never past max
    assert in_flight == 0
