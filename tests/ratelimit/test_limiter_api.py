"""APIRateLimiter's public behaviour under a fake clock (no sleeping, no threads)."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax import ratelimit
from aimax._clock import FakeClock
from aimax.errors import (
    Banned,
    ConfigurationError,
    RateLimited,
    RequestTooLarge,
    WouldBlock,
)
from aimax.ratelimit import (
    APIRateLimiter,
    LimiterClosed,
    Priority,
    RateLimit,
    RequestKind,
    parse_rate,
)

from ._checks import assert_exact


def small(clock: FakeClock, **kwargs: object) -> APIRateLimiter:
    return APIRateLimiter(
        limits=[
            RateLimit(name="api", limit=10, window=10.0),
            RateLimit(name="orders", limit=4, window=5.0),
        ],
        kinds=[
            RequestKind(name="read", charges={"api": 1}, priority=Priority.MARKET_DATA),
            RequestKind(name="trade", charges={"api": 1, "orders": 1}, priority=Priority.ORDER),
            RequestKind(name="kill", charges={"api": 1}, priority=Priority.CANCEL),
        ],
        clock=clock,
        wall=clock.time,
        **kwargs,  # type: ignore[arg-type]
    )


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1200/min", (1200, 60.0)),
        ("20/s", (20, 1.0)),
        ("600/h", (600, 3600.0)),
        ("1440/day", (1440, 86400.0)),
        ("5 per 10 seconds", (5, 10.0)),
        ("100/500ms", (100, 0.5)),
    ],
)
def test_parse_rate(text: str, expected: tuple[int, float]) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "1200", "x/min", "0/min", "-1/s", "10/fortnight", "10/0s"])
def test_parse_rate_rejects_bad_text_naming_it(text: str) -> None:
    with pytest.raises(ConfigurationError, match="rate"):
        parse_rate(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0, "window": 1.0},
        {"limit": -5, "window": 1.0},
        {"limit": 1.5, "window": 1.0},
        {"limit": 10, "window": 0},
        {"limit": 10, "window": -1.0},
        {"limit": 10, "window": 1.0, "headroom": 0.0},
        {"limit": 10, "window": 1.0, "headroom": 1.5},
    ],
)
def test_rate_limit_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RateLimit(name="p", **kwargs)  # type: ignore[arg-type]


def test_rate_limit_accepts_timedelta_and_headroom() -> None:
    pool = RateLimit(name="p", limit=1200, window=timedelta(minutes=1), headroom=0.9)
    assert pool.seconds == 60.0
    assert pool.effective_limit == 1080
    assert RateLimit.parse("p", "20/s").limit == 20


def test_unknown_pools_kinds_and_bad_costs_are_rejected(fake_clock: FakeClock) -> None:
    with pytest.raises(ConfigurationError, match="unknown pool 'nope'"):
        APIRateLimiter(
            limits=[RateLimit(name="api", limit=1, window=1.0)],
            kinds=[RequestKind(name="k", charges={"nope": 1})],
        )
    with pytest.raises(ConfigurationError, match="twice"):
        APIRateLimiter(
            limits=[
                RateLimit(name="a", limit=1, window=1.0),
                RateLimit(name="a", limit=1, window=1.0),
            ]
        )
    with pytest.raises(ConfigurationError, match="charges"):
        RequestKind(name="k", charges={})
    with pytest.raises(ConfigurationError, match="units"):
        RequestKind(name="k", charges={"a": 0})
    limiter = small(fake_clock)
    with pytest.raises(ConfigurationError, match="unknown request kind 'nope'"):
        limiter.acquire("nope")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigurationError, match="cost"):
            limiter.acquire("read", cost=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="timeout"):
        limiter.acquire("read", timeout=-1.0)
    for bad_share in (0.0, 1.5, math.nan):
        with pytest.raises(ConfigurationError, match="share"):
            APIRateLimiter.for_max(share=bad_share)
    with pytest.raises(ConfigurationError, match="warm_start"):
        small(fake_clock, warm_start=2.0)


def test_a_cost_above_the_pool_fails_at_once(fake_clock: FakeClock) -> None:
    limiter = small(fake_clock)
    with pytest.raises(RequestTooLarge) as info:
        limiter.acquire("trade", cost=5, timeout=None)  # "orders" holds 4: never
    assert info.value.pool == "orders"
    assert info.value.cost == 5
    assert info.value.limit == 4
    # a lower class's cap counts: market data may fill only 85 % of "api" (8 units)
    assert limiter.cap("api", Priority.MARKET_DATA) == 8
    with pytest.raises(RequestTooLarge):
        limiter.try_acquire("read", cost=9)
    limiter.acquire("read", cost=8)


# ----------------------------------------------------------------------- budget


def test_try_acquire_until_the_window_is_full_then_wouldblock(fake_clock: FakeClock) -> None:
    limiter = small(fake_clock)
    for _ in range(8):
        limiter.try_acquire("read")
    with pytest.raises(WouldBlock) as info:
        limiter.try_acquire("read")
    assert info.value.pool == "api"
    assert info.value.retry_after == pytest.approx(10.0)
    # the reserved headroom: more urgent classes still find room
    limiter.try_acquire("trade")
    with pytest.raises(WouldBlock):
        limiter.try_acquire("trade")  # order may fill 95 % = 9 units
    limiter.try_acquire("kill")  # cancel may fill all 10
    with pytest.raises(WouldBlock):
        limiter.try_acquire("kill")
    fake_clock.advance(10.0)
    limiter.try_acquire("read")
    stats = limiter.statistics()
    assert stats.pools["api"].grants == 11
    assert stats.pools["api"].rejections == 3
    assert stats.classes["market_data"].rejections == 1


def test_acquire_with_a_known_longer_wait_fails_at_once(fake_clock: FakeClock) -> None:
    limiter = small(fake_clock)
    for _ in range(8):
        limiter.acquire("read")
    with pytest.raises(RateLimited) as info:
        limiter.acquire("read", timeout=1.0)
    assert not isinstance(info.value, WouldBlock)
    assert info.value.retry_after == pytest.approx(10.0)
    assert limiter.statistics().classes["market_data"].timeouts == 1
    assert limiter.statistics().waiting == 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=3.0),
            st.sampled_from(["read", "trade", "kill"]),
            st.integers(min_value=1, max_value=3),
            st.sampled_from([None, "btctwd", "ethtwd"]),
        ),
        max_size=80,
    )
)
def test_try_acquire_never_exceeds_pools_or_pair_shares(ops) -> None:
    clock = FakeClock()
    limiter = small(clock, pair_share=0.5)
    grants: dict[str, list[tuple[float, int]]] = {}
    for gap, kind, cost, pair in ops:
        clock.advance(gap)
        try:
            grant = limiter.try_acquire(kind, cost=cost, pair=pair)
        except (WouldBlock, RequestTooLarge):
            continue
        for pool, units in limiter.kinds[kind].charges.items():
            grants.setdefault(pool, []).append((grant.at, units * cost))
            if pair is not None:
                grants.setdefault(f"{pool}[{pair}]", []).append((grant.at, units * cost))
    for pool, rows in grants.items():
        base = pool.split("[")[0]
        limit = limiter.pools[base]
        cap = limit.limit // 2 if "[" in pool else limit.limit
        assert_exact(rows, limit.seconds, cap)


def test_linked_pools_are_all_or_nothing(fake_clock: FakeClock) -> None:
    limiter = small(fake_clock)
    for _ in range(4):
        limiter.try_acquire("trade")  # fills "orders"
    before = dict(limiter.usage())
    with pytest.raises(WouldBlock) as info:
        limiter.try_acquire("trade")
    assert info.value.pool == "orders"
    assert dict(limiter.usage()) == before  # "api" was not charged either


def test_warm_start_treats_the_first_window_as_partly_used(fake_clock: FakeClock) -> None:
    limiter = small(fake_clock, warm_start=0.5)
    assert limiter.usage()["api"] == 5
    granted = 0
    while True:
        try:
            limiter.try_acquire("kill")
            granted += 1
        except WouldBlock:
            break
    assert granted == 5
    fake_clock.advance(10.0)
    assert limiter.usage()["api"] == 0


def test_for_max_profile_defaults() -> None:
    clock = FakeClock()
    limiter = APIRateLimiter.for_max(clock=clock, wall=clock.time)
    pools = limiter.pools
    assert {name: (p.limit, p.seconds) for name, p in pools.items()} == {
        "rest_public": (1200, 60.0),
        "rest_private": (1200, 60.0),
        "ws_message_second": (20, 1.0),
        "ws_message_minute": (200, 60.0),
        "ws_connect_hour": (600, 3600.0),
        "ws_connect_day": (1440, 86400.0),
    }
    assert set(limiter.kinds) == {
        "market_data",
        "account",
        "order",
        "cancel",
        "ws_message",
        "ws_connect",
    }
    # conservative start (half the window counted as used) and 95 % headroom
    assert limiter.usage()["rest_public"] == 570
    assert limiter.cap("rest_private", Priority.CANCEL) == 1140
    assert limiter.cap("rest_private", Priority.ACCOUNT) == 1026
    assert limiter.cap("rest_public", Priority.MARKET_DATA) == 1140  # alone in its pool
    half = APIRateLimiter.for_max(share=0.5, clock=clock, wall=clock.time, warm_start=0.0)
    assert half.pools["rest_public"].limit == 600
    assert half.usage()["rest_public"] == 0
    both = APIRateLimiter.for_max(private_counts_against_ip=True, clock=clock)
    assert dict(both.kinds["order"].charges) == {"rest_private": 1, "rest_public": 1}


# ---------------------------------------------------------------- server feedback


@pytest.mark.parametrize("form", ["absolute", "delta", "http-date", "absolute-ms"])
def test_429_freezes_the_scope_until_retry_after(fake_clock: FakeClock, form: str) -> None:
    limiter = small(fake_clock)
    wall = fake_clock.time()
    until = math.floor(wall) + 30.0
    value = {
        "absolute": str(int(until)),
        "delta": str(int(until - wall)),
        "http-date": format_datetime(datetime.fromtimestamp(until, UTC), usegmt=True),
        "absolute-ms": str(int(until * 1000)),
    }[form]
    events = []
    limiter.add_ban_listener(events.append)
    event = limiter.on_response(429, {"retry-after": value}, kind="trade")
    assert event is not None
    assert events == [event]
    assert event.until == pytest.approx(until, abs=1.0)
    with pytest.raises(Banned) as info:
        limiter.try_acquire("kill")
    assert info.value.until == pytest.approx(event.until)
    assert info.value.scope == "ip"
    with pytest.raises(Banned):
        limiter.acquire("read", timeout=5.0)  # the freeze outlasts the timeout: at once
    assert not limiter.can_make_request("read")
    assert not limiter.make_request("read")
    fake_clock.set(fake_clock() + (event.until - wall) - 0.001)
    with pytest.raises(Banned):
        limiter.try_acquire("kill")
    fake_clock.advance(0.002)
    limiter.try_acquire("kill")
    stats = limiter.statistics()
    assert stats.bans == 1
    assert stats.time_frozen == pytest.approx(event.until - wall)
    samples = {s.name: s for s in limiter.metric_samples() if not s.labels}
    assert samples["aimax_ratelimit_bans_total"].value == 1


def test_other_statuses_do_not_freeze(fake_clock: FakeClock) -> None:
    limiter = small(fake_clock)
    assert limiter.on_response(200, {"Retry-After": "100"}) is None
    assert limiter.on_response(500, {}) is None
    limiter.try_acquire("read")
    # no Retry-After: a default ban, every scope when no kind is named
    event = limiter.on_response(418, None)
    assert event is not None
    assert event.retry_after == pytest.approx(60.0)
    assert limiter.statistics().frozen == {"ip": event.until}


def test_a_429_with_a_past_retry_after_still_freezes_for_the_default_ban(
    fake_clock: FakeClock,
) -> None:
    # our clock ahead of the exchange's: the ban is not over, the clocks disagree;
    # sending now would restart MAX's penalty, so the limiter must not fail open
    limiter = small(fake_clock)
    event = limiter.on_response(429, {"Retry-After": str(int(fake_clock.time()) - 10)})
    assert event is not None
    assert event.retry_after == pytest.approx(60.0)
    with pytest.raises(Banned):
        limiter.try_acquire("read")


def test_scopes_are_separate(fake_clock: FakeClock) -> None:
    limiter = APIRateLimiter.for_max(clock=fake_clock, wall=fake_clock.time)
    limiter.on_response(429, {"Retry-After": "10"}, kind="ws_message")
    limiter.try_acquire("market_data")  # scope "ip" is not frozen
    with pytest.raises(Banned):
        limiter.try_acquire("ws_message")


# ------------------------------------------------------------------ seed API etc.


def test_seed_api_wait_for_slot_reserves_for_make_request(fake_clock: FakeClock) -> None:
    limiter = small(fake_clock)
    assert limiter.can_make_request("read")
    assert limiter.wait_for_slot("read", timeout=0)
    assert limiter.make_request("read")  # uses the reserved slot: charged once
    assert limiter.usage()["api"] == 1
    for _ in range(7):
        assert limiter.make_request("read")
    assert not limiter.can_make_request("read")
    assert not limiter.make_request("read")
    assert not limiter.wait_for_slot("read", timeout=0.5)
    stats = limiter.get_stats()
    assert stats["pools"]["api"]["grants"] == 8
    assert stats["classes"]["market_data"]["timeouts"] == 1
    assert not limiter.can_make_request()  # the default kind is the first one, "read"
    assert limiter.can_make_request("kill")  # the reserve is still there for cancels


def test_statistics_metrics_and_repr(fake_clock: FakeClock) -> None:
    limiter = small(fake_clock)
    limiter.acquire("trade", cost=2)
    limiter.acquire("read")
    stats = limiter.statistics()
    assert stats.pools["api"].units == 3
    assert stats.pools["orders"].units == 2
    assert stats.pools["api"].utilisation == pytest.approx(0.3)
    assert stats.classes["order"].units == 2
    assert stats.classes["order"].wait_p99 == 0.0
    names = {s.name for s in limiter.metric_samples()}
    assert names == {
        "aimax_ratelimit_utilisation_ratio",
        "aimax_ratelimit_granted_total",
        "aimax_ratelimit_units_total",
        "aimax_ratelimit_rejected_total",
        "aimax_ratelimit_wait_seconds",
        "aimax_ratelimit_banned",
        "aimax_ratelimit_bans_total",
    }
    util = [s for s in limiter.metric_samples() if s.name == "aimax_ratelimit_utilisation_ratio"]
    assert {s.labels["pool"]: s.value for s in util} == {"api": 0.3, "orders": 0.5}
    text = repr(limiter)
    assert "api=3/10" in text
    assert "orders=2/4" in text
    assert "waiting=0" in text


def test_context_managers_decorators_and_close(fake_clock: FakeClock) -> None:
    limiter = small(fake_clock)
    with limiter.limit("read") as grant:
        assert grant.kind == "read"

    @limiter.limited("trade")
    def place() -> str:
        return "placed"

    @limiter.limited("kill", cost=2)
    async def cancel() -> str:
        return "cancelled"

    assert place() == "placed"

    async def main() -> None:
        assert await cancel() == "cancelled"
        async with limiter.limit("read", cost=2) as grant:
            assert grant.cost == 2

    asyncio.run(main())
    assert limiter.usage()["api"] == 6
    with pytest.raises(ConfigurationError):
        limiter.limited("nope")
    limiter.close()
    limiter.close()  # idempotent
    with pytest.raises(LimiterClosed):
        limiter.acquire("read")
    assert "closed" in repr(limiter)


def test_max_kind_for_every_documented_endpoint() -> None:
    from aimax.ratelimit.max_profile import MAX_ENDPOINTS, max_kind_for

    cases = {
        ("GET", "/api/v3/markets"): "market_data",
        ("GET", "/api/v3/currencies"): "market_data",
        ("GET", "/api/v3/timestamp"): "market_data",
        ("GET", "/api/v3/tickers?markets[]=btctwd&markets[]=ethtwd"): "market_data",
        ("GET", "/api/v3/ticker?market=btctwd"): "market_data",
        ("GET", "/api/v3/depth?market=btctwd&limit=5"): "market_data",
        ("GET", "/api/v3/trades?market=btctwd"): "market_data",
        ("GET", "/api/v3/k?market=btctwd&period=1"): "market_data",
        ("GET", "/api/v3/info"): "account",
        ("GET", "/api/v3/wallet/spot/accounts"): "account",
        ("GET", "/api/v3/wallet/m/accounts"): "account",
        ("GET", "/api/v3/order?id=1"): "account",
        ("GET", "/api/v3/order/trades"): "account",
        ("GET", "/api/v3/wallet/spot/orders/open"): "account",
        ("GET", "/api/v3/wallet/spot/orders/closed"): "account",
        ("GET", "/api/v3/wallet/m/orders/history"): "account",
        ("GET", "/api/v3/wallet/spot/trades"): "account",
        ("POST", "/api/v3/wallet/spot/order"): "order",
        ("post", "https://max-api.maicoin.com/api/v3/wallet/m/order"): "order",
        ("DELETE", "/api/v3/order"): "cancel",
        ("DELETE", "/api/v3/wallet/spot/orders"): "cancel",
    }
    for (method, path), kind in cases.items():
        assert max_kind_for(method, path) == kind, (method, path)
    assert len(MAX_ENDPOINTS) == 19  # every v3 endpoint listed in MAX_API.md
    with pytest.raises(ConfigurationError):
        max_kind_for("GET", "/api/v2/markets")
    limiter = APIRateLimiter.for_max()
    for method, _, kind in MAX_ENDPOINTS:
        assert kind in limiter.kinds, (method, kind)


def test_public_names_match_all() -> None:
    import types

    public = {
        name
        for name, value in vars(ratelimit).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(ratelimit.__all__) == public
    assert len(ratelimit.__all__) == len(set(ratelimit.__all__))
    for name in ratelimit.__all__:
        assert getattr(ratelimit, name) is not None


def test_seed_api_over_a_backend_peeks_without_charging(fake_clock: FakeClock) -> None:
    from aimax.ratelimit import MemoryBackend

    backend = MemoryBackend(clock=fake_clock, wall=fake_clock.time)
    limiter = small(fake_clock, backend=backend)
    for _ in range(3):
        assert limiter.make_request("trade")
    assert limiter.can_make_request("trade")
    assert backend.usage()["orders"] == 3  # peeking took nothing
    assert limiter.make_request("trade")
    assert not limiter.can_make_request("trade")
    assert limiter.statistics().pools["orders"].in_window == 4
    limiter.on_response(429, {"Retry-After": "5"})
    assert not limiter.can_make_request("read")
    assert backend.peek([], ["ip"]).frozen_until == pytest.approx(fake_clock.time() + 5)


@given(st.lists(st.floats(0.001, 100.0, allow_nan=False), max_size=60))
def test_class_waits_stay_sorted_over_the_bounded_sample(waits: list[float]) -> None:
    """The waits behind the wait quantiles: the last N, kept sorted as they come and go."""
    from aimax.ratelimit import limiter as limiter_module

    original = limiter_module._WAIT_SAMPLES
    limiter_module._WAIT_SAMPLES = 7
    try:
        log = limiter_module._ClassWaits()
        for waited in waits:
            log.add(waited)
    finally:
        limiter_module._WAIT_SAMPLES = original
    assert log.ordered == sorted(waits[-7:])
    assert list(log.samples) == waits[-7:]
    assert log.total == len(waits)


def test_plans_for_many_pairs_are_evicted_and_still_counted(
    fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """500 pairs with a cache of 16 plans: every grant and refusal is counted, and
    what the limiter keeps per pair stays bounded (no list of evicted plans)."""
    from aimax._metrics import values_of
    from aimax.ratelimit import limiter as limiter_module

    monkeypatch.setattr(limiter_module, "_MAX_PLANS", 16)
    limiter = APIRateLimiter(
        limits=[RateLimit(name="api", limit=1000, window=10.0)],
        kinds=[
            RequestKind(name="read", charges={"api": 1}, priority=Priority.MARKET_DATA),
            RequestKind(name="trade", charges={"api": 2}, priority=Priority.ORDER),
        ],
        clock=fake_clock,
    )
    granted = refused = 0
    for round_ in range(3):
        for pair in range(500):
            kind = "trade" if pair % 5 == 0 else "read"
            try:
                limiter.try_acquire(kind, pair=f"p{pair}", cost=1 + round_ % 2)
                granted += 1
            except WouldBlock:
                refused += 1
        fake_clock.advance(0.001)
    assert granted > 0
    assert refused > 0
    stats = limiter.statistics()
    assert stats.pools["api"].grants == granted
    assert stats.pools["api"].rejections == refused
    assert sum(c.grants for c in stats.classes.values()) == granted
    assert len(limiter._plans) <= 16
    assert len(limiter._tallies) == 4  # (kind, cost): read/trade x cost 1/2
    assert values_of(limiter.metric_samples()) == limiter.metric_values()
    limiter.close()
