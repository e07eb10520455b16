"""How the drivers wait: computed timeouts and one timer per loop, never polling."""

from __future__ import annotations

import asyncio
import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.ratelimit import APIRateLimiter, RateLimit, RequestKind
from aimax.ratelimit._core import Plan, Waiter
from aimax.ratelimit.feedback import parse_retry_after
from aimax.ratelimit.limiter import _LoopTimer
from aimax.ratelimit.stats import wait_quantile

from ._checks import max_in_window


class CountingClock:
    """time.monotonic, counting its readings (a polling driver would read it a lot)."""

    def __init__(self) -> None:
        self.reads = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.reads += 1
        return time.monotonic()


def limiter_with(clock: CountingClock) -> APIRateLimiter:
    return APIRateLimiter(
        [RateLimit(name="api", limit=2, window=0.2)],
        [RequestKind(name="k", charges={"api": 1})],
        clock=clock,
    )


def test_blocked_threads_do_not_poll() -> None:
    clock = CountingClock()
    limiter = limiter_with(clock)
    grants = []
    threads = [
        threading.Thread(target=lambda: grants.append(limiter.acquire("k", timeout=60)))
        for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(grants) == 12  # about 1 s of waiting
    # each grant costs a handful of readings (arrive, wake, retry); a polling loop
    # would read the clock thousands of times in a second
    assert clock.reads < 12 * 8, clock.reads
    assert max_in_window([(g.at, 1) for g in grants], 0.2) <= 2


def test_blocked_coroutines_do_not_poll() -> None:
    clock = CountingClock()
    limiter = limiter_with(clock)

    async def main() -> list[object]:
        return await asyncio.gather(*(limiter.acquire_async("k") for _ in range(12)))

    grants = asyncio.run(main())
    assert len(grants) == 12
    assert clock.reads < 12 * 10, clock.reads


def test_one_timer_per_loop_wakes_waiters_in_due_order() -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        timer = _LoopTimer(loop, time.monotonic)
        plan = Plan(kind="k", priority=0, cost=1, pair=None, charges=(), scopes=())
        order: list[int] = []
        waiters = []
        now = time.monotonic()
        for i, delay in enumerate([0.05, 0.01, 0.03, 0.02, 0.04]):
            waiter = Waiter(plan, now)
            waiter.future = loop.create_future()
            waiter.future.add_done_callback(lambda _f, i=i: order.append(i))
            timer.schedule(waiter, now + delay)
            waiters.append(waiter)
        assert timer.handle is not None
        assert len(timer.due) == 5
        timer.discard(waiters[2])  # a cancelled waiter is simply forgotten
        await asyncio.gather(*(w.future for i, w in enumerate(waiters) if i != 2))
        assert timer.handle is None
        assert not timer.due
        return order

    assert asyncio.run(main()) == [1, 3, 4, 0]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=10), st.integers(min_value=1, max_value=5)),
        max_size=40,
    ),
    st.floats(min_value=0.1, max_value=5),
)
def test_the_exactness_checker_agrees_with_brute_force(grants, window) -> None:
    brute = 0
    for start, _ in grants:  # a fullest window can always start at a grant
        brute = max(brute, sum(c for t, c in grants if start <= t < start + window))
    # the checker uses t_old + window <= t (as the limiter does); brute force uses
    # t < start + window; they agree up to float rounding at the boundary
    assert max_in_window(grants, window) == brute or any(
        abs((t2 - t1) - window) < 1e-9 for t1, _ in grants for t2, _ in grants
    )


@settings(max_examples=100, deadline=None)
@given(
    now=st.floats(min_value=1.7e9, max_value=1.8e9),
    delta=st.integers(min_value=0, max_value=86_400),
)
def test_retry_after_in_all_three_forms(now: float, delta: int) -> None:
    from datetime import UTC, datetime
    from email.utils import format_datetime

    assert parse_retry_after(str(delta), now=now, default=60.0) == now + delta
    absolute = int(now) + delta
    assert parse_retry_after(str(absolute), now=now, default=60.0) == max(now, absolute)
    date = format_datetime(datetime.fromtimestamp(absolute, UTC), usegmt=True)
    assert parse_retry_after(date, now=now, default=60.0) == max(now, float(absolute))
    assert parse_retry_after("soon", now=now, default=60.0) == now + 60.0
    assert parse_retry_after("-5", now=now, default=60.0) == now + 60.0


def test_wait_quantiles_mix_zero_and_measured_waits() -> None:
    assert wait_quantile(0.5, 0, [], 0) == 0.0
    samples = [0.1 * i for i in range(1, 11)]
    assert wait_quantile(0.5, 0, samples, 10) == 0.5
    assert wait_quantile(0.99, 0, samples, 10) == 1.0
    assert wait_quantile(0.5, 90, samples, 10) == 0.0
    assert wait_quantile(0.95, 90, samples, 10) == 0.5


def test_finished_event_loops_are_not_kept_alive() -> None:
    import gc
    import weakref

    limiter = limiter_with(CountingClock())
    loops = []

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await asyncio.gather(*(limiter.acquire_async("k") for _ in range(4)))

    asyncio.run(main())
    gc.collect()
    assert loops[0]() is None
