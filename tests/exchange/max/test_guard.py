"""The completion guard: whatever the latencies, the SERVER's window never exceeds the cap."""

from __future__ import annotations

import asyncio
import heapq
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimax.errors import ConfigurationError
from aimax.exchange.max.guard import CompletionGuard, InFlightWindow, guard_for
from aimax.ratelimit import APIRateLimiter, Priority

POOL = "rest_public"


def _simulate(
    cap: int, window: float, requests: list[tuple[float, float, float]]
) -> tuple[list[float], int]:
    """Event-driven run of the pure core with time passed in.

    Each request wants to go at ``t``; once admitted at ``a`` it reaches the server at
    ``a + latency * split`` and its answer comes back at ``a + latency``. Returns the
    server arrival times and how many requests were admitted.
    """
    core = InFlightWindow({POOL: window})
    units, caps = {POOL: 1}, {POOL: cap}
    events: list[tuple[float, int, str, int]] = []  # (time, order, what, request)
    seq = 0
    for i, (t, _, _) in enumerate(requests):
        heapq.heappush(events, (t, seq, "try", i))
        seq += 1
    waiting_for_completion: list[int] = []
    arrivals: list[float] = []
    admitted = 0
    while events:
        now, _, what, i = heapq.heappop(events)
        if what == "done":
            core.exit(units, now, sent=True)
            for j in waiting_for_completion:
                heapq.heappush(events, (now, seq, "try", j))
                seq += 1
            waiting_for_completion.clear()
            continue
        wait = core.try_enter(units, caps, now)
        if wait == 0.0:
            admitted += 1
            _, latency, split = requests[i]
            arrivals.append(now + latency * split)
            heapq.heappush(events, (now + latency, seq, "done", i))
            seq += 1
        elif wait is None:
            waiting_for_completion.append(i)
        else:
            assert wait > 0
            heapq.heappush(events, (now + wait, seq, "try", i))
            seq += 1
    return sorted(arrivals), admitted


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cap=st.integers(min_value=1, max_value=8),
    window=st.sampled_from([0.5, 1.0, 2.0]),
    requests=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=5, allow_nan=False),  # wants to go at
            st.floats(min_value=0, max_value=3, allow_nan=False),  # round trip
            st.floats(min_value=0, max_value=1, allow_nan=False),  # where it lands
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_server_window_never_exceeds_the_cap(
    cap: int, window: float, requests: list[tuple[float, float, float]]
) -> None:
    arrivals, admitted = _simulate(cap, window, requests)
    assert admitted == len(requests)  # everything goes, eventually (no deadlock)
    # the server's sliding window (x - window, x] at every arrival x holds <= cap
    for k, x in enumerate(arrivals):
        inside = sum(1 for y in arrivals[: k + 1] if y > x - window + 1e-9)  # float slack
        assert inside <= cap, (x, arrivals)


def test_waits_and_not_sent() -> None:
    core = InFlightWindow({POOL: 10.0})
    one, caps = {POOL: 1}, {POOL: 2}
    assert core.try_enter(one, caps, 0.0) == 0.0
    assert core.try_enter(one, caps, 0.0) == 0.0
    assert core.try_enter(one, caps, 0.0) is None  # both in flight
    core.exit(one, 1.0, sent=False)  # never sent: frees at once
    assert core.held(POOL, 1.0) == 1
    assert core.try_enter(one, caps, 1.0) == 0.0
    core.exit(one, 2.0, sent=True)
    core.exit(one, 3.0, sent=True)
    assert core.in_flight(POOL) == 0
    assert core.try_enter(one, caps, 4.0) == pytest.approx(8.0)  # first leaves at 12
    assert core.try_enter(one, caps, 12.0) == 0.0
    assert core.try_enter({"other": 5}, caps | {"other": 1}, 12.0) == 0.0  # untracked pool
    assert core.try_enter({POOL: 3}, caps, 12.0) == 0.0  # larger than the cap: not held
    with pytest.raises(ConfigurationError):
        InFlightWindow({POOL: 0.0})


def test_guard_for_uses_the_limiter_pools_and_class_caps() -> None:
    limiter = APIRateLimiter.for_max(warm_start=0.0)
    try:
        guard = guard_for(limiter, clock=lambda: 0.0)
        assert guard is not None
        assert guard_for(limiter, clock=lambda: 0.0) is guard  # one per limiter
        assert guard.units("order") == {"rest_private": 1}
        assert guard.units("market_data", 3) == {"rest_public": 3}
        assert limiter.cap("rest_private", Priority.ACCOUNT) < limiter.cap(
            "rest_private", Priority.CANCEL
        )
    finally:
        limiter.close()
    assert guard_for(object(), clock=lambda: 0.0) is None  # no pools described


def test_driver_wakes_waiters_in_other_loops() -> None:
    """A waiter in another thread's event loop is woken by a completion here."""
    now = [0.0]
    guard = CompletionGuard(
        {POOL: 100.0}, lambda _k, _c: ({POOL: 1}, {POOL: 1}), clock=lambda: now[0]
    )
    order: list[str] = []

    async def first() -> dict[str, int]:
        return await guard.enter("x")

    units = asyncio.run(first())
    entered = threading.Event()

    def other_thread() -> None:
        async def second() -> None:
            await guard.enter("x")  # must wait: the first is in flight
            order.append("second admitted")
            entered.set()

        asyncio.run(second())

    t = threading.Thread(target=other_thread)
    t.start()
    assert not entered.wait(0.3)  # still held (a bound, not a timing claim)
    order.append("first done")
    guard.exit(units, sent=False)  # never sent: its units free at once
    t.join(timeout=30)
    assert entered.is_set()
    assert order == ["first done", "second admitted"]
    assert guard.held(POOL) == 1
