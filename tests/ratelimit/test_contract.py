"""The backend contract (``aimax.ratelimit.backend``), run against every backend.

The same tests run on the in-memory backend and on the Redis backend (real private
server). Both read their own clock (Redis: the server's ``TIME``), so the tests use
long windows where nothing may expire during a test, bound every ``wait`` from
timestamps taken around the calls, and use short windows only where expiry itself is
the rule under test (there they wait the ``wait`` the backend answered).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from aimax.ratelimit.backend import Attempt, Charge, LimiterBackend, MemoryBackend
from aimax.ratelimit.redis_backend import RedisBackend

_ids = itertools.count()

W = 60.0  # long window: nothing expires during a test


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[LimiterBackend]:
    if request.param == "memory":
        made: LimiterBackend = MemoryBackend()
    else:
        url = request.getfixturevalue("redis_url")
        made = RedisBackend.from_url(url, prefix=f"contract{next(_ids)}")
    try:
        yield made
    finally:
        made.close()


def charge(pool: str, cost: int = 1, cap: int = 5, window: float = W) -> Charge:
    return Charge(pool=pool, cost=cost, cap=cap, window=window)


def test_is_a_limiter_backend(backend: LimiterBackend) -> None:
    assert isinstance(backend, LimiterBackend)


def test_grants_up_to_the_cap_then_waits_for_the_oldest(backend: LimiterBackend) -> None:
    start = time.monotonic()
    grants = [backend.attempt([charge("p", cap=3)], ["ip"]).granted for _ in range(5)]
    elapsed = time.monotonic() - start
    assert grants == [True, True, True, False, False]
    answer = backend.attempt([charge("p", cap=3)], ["ip"])
    assert answer.granted is False
    assert answer.pool == "p"
    assert answer.frozen_until is None
    # the first grant leaves one window after it was made
    assert W - elapsed - 5.0 <= answer.wait <= W
    assert backend.usage()["p"] == 3


def test_weighted_costs_fill_the_cap_exactly(backend: LimiterBackend) -> None:
    assert backend.attempt([charge("p", cost=3, cap=4)], []).granted
    assert not backend.attempt([charge("p", cost=2, cap=4)], []).granted
    assert backend.attempt([charge("p", cost=1, cap=4)], []).granted
    assert not backend.attempt([charge("p", cost=1, cap=4)], []).granted
    assert backend.usage()["p"] == 4


def test_priority_caps_keep_headroom_for_higher_classes(backend: LimiterBackend) -> None:
    low, high = charge("p", cap=6), charge("p", cap=10)
    assert [backend.attempt([low], []).granted for _ in range(8)] == [True] * 6 + [False] * 2
    assert [backend.attempt([high], []).granted for _ in range(5)] == [True] * 4 + [False]
    assert backend.usage()["p"] == 10


def test_linked_pools_are_charged_all_or_nothing(backend: LimiterBackend) -> None:
    assert backend.attempt([charge("acct", cost=2, cap=2)], []).granted
    answer = backend.attempt([charge("ip", cap=5), charge("acct", cap=2)], [])
    assert (answer.granted, answer.pool) == (False, "acct")
    assert backend.usage().get("ip", 0) == 0  # nothing taken from the pool with room
    assert backend.attempt([charge("ip", cap=5)], []).granted
    assert backend.usage()["ip"] == 1


def test_the_worst_pool_sets_the_wait(backend: LimiterBackend) -> None:
    assert backend.attempt([charge("short", window=30.0, cap=1)], []).granted
    assert backend.attempt([charge("long", window=W, cap=1)], []).granted
    answer = backend.attempt(
        [charge("short", window=30.0, cap=1), charge("long", window=W, cap=1)], []
    )
    assert answer.pool == "long"
    assert 30.0 < answer.wait <= W


def test_a_frozen_scope_grants_nothing_until_the_freeze_ends(
    backend: LimiterBackend,
) -> None:
    until = time.time() + 30.0
    backend.freeze("ip", until)
    answer = backend.attempt([charge("p")], ["acct", "ip"])
    assert answer.granted is False
    assert answer.pool is None
    assert answer.frozen_until == pytest.approx(until, abs=0.5)
    assert 25.0 < answer.wait <= 30.0
    assert backend.usage().get("p", 0) == 0
    # other scopes are not frozen
    assert backend.attempt([charge("p")], ["acct"]).granted


def test_a_freeze_never_shortens(backend: LimiterBackend) -> None:
    until = time.time() + 30.0
    backend.freeze("ip", until)
    backend.freeze("ip", until - 20.0)
    answer = backend.attempt([charge("p")], ["ip"])
    assert answer.frozen_until == pytest.approx(until, abs=0.5)


def test_a_freeze_in_the_past_changes_nothing(backend: LimiterBackend) -> None:
    backend.freeze("ip", time.time() - 1.0)
    assert backend.attempt([charge("p")], ["ip"]).granted


def test_entries_leave_after_one_window(backend: LimiterBackend) -> None:
    short = charge("p", cap=2, window=0.2)
    assert backend.attempt([short], []).granted
    assert backend.attempt([short], []).granted
    answer = backend.attempt([short], [])
    assert not answer.granted
    assert 0.0 < answer.wait <= 0.2
    time.sleep(answer.wait + 0.01)  # the backend said when: wait exactly that
    assert backend.attempt([short], []).granted


async def test_async_flavour_follows_the_same_rules(backend: LimiterBackend) -> None:
    answers = [await backend.attempt_async([charge("p", cap=2)], ["ip"]) for _ in range(3)]
    assert [a.granted for a in answers] == [True, True, False]
    await backend.freeze_async("ip", time.time() + 30.0)
    frozen = await backend.attempt_async([charge("q")], ["ip"])
    assert frozen.frozen_until is not None
    assert frozen.granted is False
    # the sync and async flavours draw on one budget
    assert backend.usage()["p"] == 2
    if isinstance(backend, RedisBackend):
        await backend.aclose()


def test_threads_never_overdraw_the_cap(backend: LimiterBackend) -> None:
    grants: list[Attempt] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            answer = backend.attempt([charge("p", cost=2, cap=31), charge("q", cap=40)], [])
            with lock:
                grants.append(answer)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(a.granted for a in grants) == 15  # floor(31 / 2)
    assert backend.usage()["p"] == 30
    assert backend.usage()["q"] == 15


def test_close_is_idempotent(backend: LimiterBackend) -> None:
    backend.close()
    backend.close()


def test_async_on_several_loops(backend: LimiterBackend) -> None:
    async def one() -> bool:
        return (await backend.attempt_async([charge("p", cap=2)], [])).granted

    assert asyncio.run(one())
    assert asyncio.run(one())
    assert not asyncio.run(one())
