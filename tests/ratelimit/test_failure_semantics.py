"""Failure semantics of server feedback and restarts (issue "the request path as one flow").

Each test here failed on the code before the fix it names:
- a ``Retry-After`` far in the future froze the scope (cancels included) for centuries,
  and on Redis a restarted bot on the same prefix inherited that freeze;
- ``Retry-After: 1e308`` on Redis raised a bare ``OverflowError``;
- ``on_response(status="429")`` froze nothing;
- ``warm_start`` pre-filled MAX's daily connection pool for a whole day;
- a timeout behind another waiter said "pool None, free in 0.000 s".
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from collections.abc import Iterator

import pytest

from aimax._clock import FakeClock
from aimax.errors import Banned, ConfigurationError, LimiterClosed, RateLimited
from aimax.ratelimit import APIRateLimiter, Priority, RateLimit, RequestKind
from aimax.ratelimit.redis_backend import RedisBackend

_prefixes = itertools.count()


def limiter_on(clock: FakeClock, **options: object) -> APIRateLimiter:
    return APIRateLimiter.for_max(
        clock=clock,
        wall=clock.time,
        warm_start=0.0,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("value", ["99999999999", "99999999999999", "1e308", "86400"])
def test_a_retry_after_beyond_max_ban_is_capped(
    fake_clock: FakeClock, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = limiter_on(fake_clock)
    with caplog.at_level(logging.ERROR, logger="aimax.ratelimit.limiter"):
        event = limiter.on_response(429, {"Retry-After": value}, kind="cancel")
    assert event is not None
    assert event.retry_after == pytest.approx(3600.0)
    assert any("max_ban" in record.getMessage() for record in caplog.records)
    with pytest.raises(Banned) as info:
        limiter.try_acquire("cancel")
    assert info.value.retry_after == pytest.approx(3600.0)
    fake_clock.advance(3600.0)
    assert limiter.try_acquire("cancel").kind == "cancel"
    limiter.close()


def test_max_ban_is_configurable_and_checked(fake_clock: FakeClock) -> None:
    limiter = limiter_on(fake_clock, max_ban=120.0)
    event = limiter.on_response(429, {"Retry-After": "600"}, kind="order")
    assert event is not None
    assert event.retry_after == pytest.approx(120.0)
    limiter.close()
    with pytest.raises(ConfigurationError, match="max_ban"):
        limiter_on(fake_clock, default_ban=600.0, max_ban=60.0)
    with pytest.raises(ConfigurationError, match="max_ban"):
        limiter_on(fake_clock, max_ban=-1.0)


def test_a_retry_after_within_max_ban_is_kept_exactly(fake_clock: FakeClock) -> None:
    limiter = limiter_on(fake_clock)
    until = int(fake_clock.time()) + 1800
    event = limiter.on_response(429, {"Retry-After": str(until)}, kind="order")
    assert event is not None
    assert event.until == until
    limiter.close()


@pytest.mark.parametrize("status", ["429", " 418 ", 429])
def test_status_may_be_a_string(fake_clock: FakeClock, status: int | str) -> None:
    limiter = limiter_on(fake_clock)
    event = limiter.on_response(status, {"Retry-After": "30"}, kind="market_data")
    assert event is not None
    assert event.status == int(str(status).strip())
    with pytest.raises(Banned):
        limiter.try_acquire("market_data")
    limiter.close()


@pytest.mark.parametrize("status", ["200", "abc", "", None, True, 4.29e2])
def test_other_statuses_freeze_nothing(fake_clock: FakeClock, status: object) -> None:
    limiter = limiter_on(fake_clock)
    assert limiter.on_response(status, {"Retry-After": "30"}) is None  # type: ignore[arg-type]
    assert limiter.try_acquire("market_data").kind == "market_data"
    limiter.close()


def test_warm_start_fills_only_windows_of_up_to_a_minute(fake_clock: FakeClock) -> None:
    limiter = APIRateLimiter.for_max(clock=fake_clock, wall=fake_clock.time, warm_start=0.5)
    usage = limiter.usage()
    assert usage["rest_public"] == limiter.pools["rest_public"].effective_limit // 2
    assert usage["ws_message_minute"] > 0
    assert usage.get("ws_connect_hour", 0) == 0
    assert usage.get("ws_connect_day", 0) == 0
    # a fresh bot may open every connection its class may hold, at once
    for _ in range(limiter.cap("ws_connect_hour", Priority.MARKET_DATA)):
        limiter.try_acquire("ws_connect")
    limiter.close()


def test_a_timeout_behind_another_waiter_names_what_it_waits_for() -> None:
    clock = FakeClock()
    limiter = APIRateLimiter(
        [RateLimit(name="B", limit=1, window=10.0)],
        [
            RequestKind(name="slow", charges={"B": 1}, priority=Priority.CANCEL),
            RequestKind(name="late", charges={"B": 1}, priority=Priority.CANCEL),
        ],
        clock=clock,
        wall=clock.time,
    )
    limiter.acquire("slow")  # B full until t = 10
    started = threading.Event()

    def first_waiter() -> None:
        started.set()
        with contextlib.suppress(LimiterClosed):  # the limiter is closed at the end
            limiter.acquire("slow", timeout=60.0)

    thread = threading.Thread(target=first_waiter, daemon=True)
    thread.start()
    started.wait(5)
    for _ in range(500):  # until the first waiter has queued
        if limiter.statistics().waiting:
            break
        threading.Event().wait(0.01)
    assert limiter.statistics().waiting == 1
    clock.advance(10.0)  # B has room, but the earlier waiter goes first
    with pytest.raises(RateLimited) as info:
        limiter.acquire("late", timeout=0.0)
    assert info.value.pool == "B"
    assert "None" not in str(info.value)
    limiter.close()
    thread.join(5)


# ------------------------------------------------------------------------ Redis


@pytest.fixture
def backend(redis_url: str) -> Iterator[RedisBackend]:
    made = RedisBackend.from_url(redis_url, prefix=f"fs{next(_prefixes)}")
    try:
        yield made
    finally:
        made.close()


@pytest.mark.redis
@pytest.mark.parametrize("until", [1e308, float("inf"), float("nan"), 1e13])
def test_redis_freeze_rejects_absurd_times_clearly(backend: RedisBackend, until: float) -> None:
    with pytest.raises(ConfigurationError, match="until"):
        backend.freeze("ip", until)


@pytest.mark.redis
def test_a_capped_freeze_is_what_redis_keeps(redis_url: str) -> None:
    prefix = f"fs{next(_prefixes)}"
    first = RedisBackend.from_url(redis_url, prefix=prefix)
    limiter = APIRateLimiter.for_max(backend=first, warm_start=0.0)
    event = limiter.on_response(429, {"Retry-After": "1e308"}, kind="cancel")
    assert event is not None
    assert event.retry_after == pytest.approx(3600.0, abs=5.0)
    limiter.close()
    first.close()
    # a restarted bot on the same prefix sees the capped freeze, not a centuries-long one
    second = RedisBackend.from_url(redis_url, prefix=prefix)
    restarted = APIRateLimiter.for_max(backend=second, warm_start=0.0)
    with pytest.raises(Banned) as info:
        restarted.try_acquire("cancel")
    assert info.value.retry_after <= 3600.0 + 5.0
    restarted.close()
    second.close()
