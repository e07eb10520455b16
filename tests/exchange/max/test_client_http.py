"""MaxClient over real loopback HTTP against our own scripted MAX-like server."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
import time
from decimal import Decimal
from typing import Any

import pytest

from aimax import errors
from aimax.exchange.max import MaxClient, MaxClientSync, OrderStateUnknown

ORDER = {
    "id": 11,
    "client_oid": "oid-1",
    "market": "btctwd",
    "side": "buy",
    "ord_type": "limit",
    "state": "wait",
    "price": "1500000.0",
    "volume": "0.01",
    "remaining_volume": "0.01",
    "executed_volume": "0",
    "avg_price": "0",
    "trades_count": 0,
    "created_at": 1_700_000_000_000,
    "updated_at": 1_700_000_000_000,
}
MARKET = {
    "id": "btctwd",
    "status": "active",
    "base_unit": "btc",
    "base_unit_precision": 8,
    "min_base_amount": "0.0001",
    "quote_unit": "twd",
    "quote_unit_precision": 1,
    "min_quote_amount": "250",
}


def _client(fake: Any, limiter: Any, **kw: Any) -> MaxClient:
    kw.setdefault("access_key", fake.access_key)
    kw.setdefault("secret_key", fake.secret_key)
    kw.setdefault("timeout", 10.0)
    return MaxClient(base_url=fake.url, limiter=limiter, **kw)


async def test_public_endpoints(fake_max: Any, limiter: Any) -> None:
    f = fake_max
    f.route("GET", "/api/v3/markets", [MARKET])
    f.route("GET", "/api/v3/currencies", [{"currency": "btc", "precision": 8}])
    f.route(
        "GET",
        "/api/v3/tickers",
        [{"market": "btctwd", "last": "1.5", "at": 1}, {"market": "ethtwd", "last": "2"}],
    )
    f.route("GET", "/api/v3/ticker", {"market": "btctwd", "last": "1.5", "at": 1})
    f.route("GET", "/api/v3/depth", {"timestamp": 1, "asks": [["2", "0.5"]], "bids": [["1", "3"]]})
    f.route(
        "GET",
        "/api/v3/trades",
        [{"id": 3, "market": "btctwd", "price": "1.5", "volume": "2", "side": "bid"}],
    )
    f.route("GET", "/api/v3/k", [[1700000000, "1", "2", "0.5", "1.5", "10"]])
    async with MaxClient(base_url=f.url, limiter=limiter) as c:
        assert (await c.timestamp()) > 1_600_000_000
        tickers = await c.tickers(["btctwd", "ethtwd"])
        assert [t.last for t in tickers] == [Decimal("1.5"), Decimal(2)]
        markets = await c.markets()
        assert markets[0].min_quote_amount == Decimal(250)
        assert (await c.currencies())[0].precision == 8
        assert (await c.ticker("btctwd")).last == Decimal("1.5")
        book = await c.depth("btctwd", limit=5, sort_by_price=True)
        assert book.asks[0].volume == Decimal("0.5")
        assert book.bids[0].price == Decimal(1)
        assert (await c.trades("btctwd", limit=1))[0].volume == Decimal(2)
        assert (await c.k("btctwd", period=60, limit=1))[0].close == Decimal("1.5")
        # validation against the loaded market list: nothing is sent
        sent = len(f.requests)
        with pytest.raises(errors.ConfigurationError, match="unknown market 'ethtwd'"):
            await c.ticker("ethtwd")
        assert len(f.requests) == sent
    # arrays as literal markets[]= pairs, params in the query string
    (tick,) = f.calls("GET", "/api/v3/tickers")
    assert tick.raw_query == "markets[]=btctwd&markets[]=ethtwd"
    (depth,) = f.calls("GET", "/api/v3/depth")
    assert depth.raw_query == "market=btctwd&limit=5&sort_by_price=true"
    assert "X-MAX-ACCESSKEY" not in depth.headers
    # every request through the limiter as market data, with its pair; every answer fed back
    assert all(kind == "market_data" for kind, _ in limiter.acquired)
    assert ("market_data", "btctwd") in limiter.acquired
    assert len(limiter.acquired) == len(limiter.responses) == len(f.requests)
    assert all(status == 200 and kind == "market_data" for status, _, kind in limiter.responses)
    assert limiter.closed is False  # not ours to close


async def test_private_endpoints_are_signed_and_kinded(fake_max: Any, limiter: Any) -> None:
    f = fake_max
    f.route("GET", "/api/v3/info", {"level": 2, "current_vip_level": {"level": 0}})
    f.route("GET", "/api/v3/wallet/spot/accounts", [{"currency": "twd", "balance": "5.5"}])
    f.route("POST", "/api/v3/wallet/spot/order", lambda r: f.Reply(body={**ORDER, **_body(r)}))
    f.route("DELETE", "/api/v3/order", {**ORDER, "state": "cancel"})
    f.route("DELETE", "/api/v3/wallet/spot/orders", [{"order": ORDER, "error": None}])
    f.route("GET", "/api/v3/order", ORDER)
    f.route("GET", "/api/v3/wallet/spot/orders/open", [ORDER])
    f.route(
        "GET",
        "/api/v3/wallet/spot/trades",
        [{"id": 1, "order_id": 11, "market": "btctwd", "side": "bid", "price": "1",
          "volume": "0.01", "fee": "0.00001", "fee_currency": "btc", "liquidity": "taker"}],
    )  # fmt: skip
    async with _client(f, limiter) as c:
        assert (await c.info()).level == 2
        assert (await c.accounts())[0].balance == Decimal("5.5")
        order = await c.create_order("btctwd", "buy", "0.01", "1500000", client_oid="mine-1")
        assert order.client_oid == "mine-1"
        assert order.volume == Decimal("0.01")
        cancelled = await c.cancel_order(id=11)
        assert cancelled.accepted
        assert cancelled.order is not None
        assert cancelled.order.state == "cancel"
        await c.cancel_order(client_oid="mine-1")
        bulk = await c.cancel_orders(market="btctwd", side="buy")
        assert bulk[0].accepted
        assert bulk[0].order is not None
        assert (await c.get_order(client_oid="oid-1")).id == 11
        assert len(await c.open_orders("btctwd", limit=5)) == 1
        assert (await c.my_trades("btctwd"))[0].fee == Decimal("0.00001")
        assert c.statistics().nonce_resyncs == 0
    # the server verified every signature (a failure would have raised); bodies = signed
    (post,) = f.calls("POST", "/api/v3/wallet/spot/order")
    signed = json.loads(base64.b64decode(post.headers["X-MAX-PAYLOAD"]))
    assert signed.pop("path") == "/api/v3/wallet/spot/order"
    assert json.loads(post.body) == signed
    assert post.headers["Content-Type"] == "application/json"
    assert signed["client_oid"] == "mine-1"
    assert post.raw_query == ""
    cancels = f.calls("DELETE", "/api/v3/order")
    assert [json.loads(r.body).get("id") for r in cancels] == [11, None]
    (get,) = f.calls("GET", "/api/v3/order")
    assert get.body == b""
    assert "client_oid=oid-1" in get.raw_query
    assert "nonce=" in get.raw_query
    kinds = dict.fromkeys(k for k, _ in limiter.acquired)
    # the time sync the first signed call waits for is an "account" request, so it
    # never queues behind market data (defect 4 of issue 15)
    assert limiter.acquired[0] == ("account", None)
    assert set(kinds) == {"account", "order", "cancel"}
    assert limiter.acquired.count(("order", "btctwd")) == 1
    assert limiter.acquired.count(("cancel", None)) == 2
    assert limiter.acquired.count(("cancel", "btctwd")) == 1
    # the nonce clock was synced once from /api/v3/timestamp before the first signed call
    assert len(f.calls("GET", "/api/v3/timestamp")) == 1
    nonces = [r.nonce for r in f.requests if r.nonce is not None]
    assert len(nonces) == 9
    assert nonces == sorted(nonces)
    assert len(set(nonces)) == len(nonces)


def _body(rec: Any) -> dict[str, Any]:
    body = json.loads(rec.body)
    return {"client_oid": body["client_oid"], "volume": body["volume"]}


async def test_error_answers_raise_with_context(fake_max: Any, limiter: Any) -> None:
    f = fake_max
    f.route("POST", "/api/v3/wallet/spot/order", f.err(2018, "balance not enough", 200))
    f.route("GET", "/api/v3/order", f.err(2004, "order not found", 404))
    f.route("GET", "/api/v3/ticker", f.Reply(status=503, body={"message": "maintenance"}))
    async with _client(f, limiter) as c:
        with pytest.raises(errors.InsufficientFunds) as info:
            await c.create_order("btctwd", "sell", "1", "1")
        assert info.value.code == 2018
        assert info.value.status == 200  # a 200 with an error body raises
        assert info.value.path == "/api/v3/wallet/spot/order"
        assert info.value.message == "balance not enough"
        with pytest.raises(errors.OrderNotFound):
            await c.get_order(id=5)
        with pytest.raises(errors.ServerError):
            await c.ticker("btctwd")
        assert c.statistics().exchange_errors == 3
    bad = MaxClient(
        base_url=f.url, access_key=f.access_key, secret_key="wrong-secret", limiter=limiter
    )
    async with bad:
        with pytest.raises(errors.AuthenticationError) as auth:
            await bad.info()
        assert auth.value.code == 2005


async def test_429_raises_banned_and_is_not_retried(fake_max: Any, limiter: Any) -> None:
    f = fake_max
    until = int(time.time()) + 45
    f.route("GET", "/api/v3/ticker", f.err(429, "too many", 429, **{"Retry-After": str(until)}))
    async with _client(f, limiter) as c:
        with pytest.raises(errors.ExchangeBanned) as info:
            await c.ticker("btctwd")
        assert info.value.until == until
        assert 0 < info.value.retry_after <= 45
        assert c.statistics().bans == 1
    assert len(f.calls("GET", "/api/v3/ticker")) == 1  # never retried
    assert (429, str(until), "market_data") in limiter.responses  # fed to the limiter


async def test_nonce_rejection_resyncs_and_retries_once(fake_max: Any, limiter: Any) -> None:
    f = fake_max
    answers = [f.err(2007, "nonce too old"), f.Reply(body=[])]
    f.route("GET", "/api/v3/wallet/spot/orders/open", lambda _r: answers.pop(0))
    async with _client(f, limiter) as c:
        assert await c.open_orders() == []
        stats = c.statistics()
        assert stats.nonce_resyncs == 1
        assert stats.time_syncs == 2  # the first sync, then the resync
        first, second = f.calls("GET", "/api/v3/wallet/spot/orders/open")
        assert second.nonce is not None
        assert first.nonce is not None
        assert second.nonce > first.nonce
        # twice in a row: one retry only, then the NonceError surfaces
        f.route("GET", "/api/v3/info", f.err(2006, "nonce used"))
        with pytest.raises(errors.NonceError) as info:
            await c.info()
        assert info.value.code == 2006
        assert len(f.calls("GET", "/api/v3/info")) == 2


async def test_missing_credentials_send_nothing(fake_max: Any, limiter: Any) -> None:
    async with MaxClient(base_url=fake_max.url, limiter=limiter) as c:
        with pytest.raises(errors.AuthenticationError, match="access_key and secret_key"):
            await c.accounts()
        with pytest.raises(errors.AuthenticationError):
            await c.create_order("btctwd", "buy", "1", "1")
    assert fake_max.requests == []
    assert limiter.acquired == []
    with pytest.raises(errors.ConfigurationError, match="both"):
        MaxClient(base_url=fake_max.url, access_key="k", limiter=limiter)
    with pytest.raises(errors.ConfigurationError, match="base_url"):
        MaxClient(base_url="ftp://x", limiter=limiter)


async def test_transport_error(limiter: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    async with MaxClient(base_url=f"http://127.0.0.1:{port}", limiter=limiter) as c:
        with pytest.raises(errors.TransportError) as info:
            await c.ticker("btctwd")
        assert info.value.path == "/api/v3/ticker"
        assert info.value.status is None
        assert c.statistics().transport_errors == 1
        assert c.metric_samples()[0].labels["status"] == "transport_error"
    assert limiter.responses == []  # no answer to feed back


async def test_timed_out_create_is_reconciled_not_resent(fake_max: Any, limiter: Any) -> None:
    f = fake_max
    placed: dict[str, dict[str, Any]] = {}

    def create(rec: Any) -> Any:
        body = json.loads(rec.body)
        placed[body["client_oid"]] = {**ORDER, "id": 77, "client_oid": body["client_oid"]}
        return f.Reply(body=placed[body["client_oid"]], delay=5.0)  # answers too late

    def lookup(rec: Any) -> Any:
        oid = dict(rec.query)["client_oid"]
        return f.Reply(body=placed[oid]) if oid in placed else f.err(2004, "not found", 404)

    f.route("POST", "/api/v3/wallet/spot/order", create)
    f.route("GET", "/api/v3/order", lookup)
    async with _client(f, limiter, timeout=1.0, reconcile_delay=0.05) as c:
        order = await c.create_order("btctwd", "buy", "0.01", "1500000")
        assert order.id == 77
        assert order.client_oid is not None
        assert order.client_oid in placed
        stats = c.statistics()
        assert stats.reconciled_orders == 1
        assert stats.transport_errors == 1
    assert len(f.calls("POST", "/api/v3/wallet/spot/order")) == 1  # sent once only


async def test_timed_out_create_not_found_raises_with_client_oid(
    fake_max: Any, limiter: Any
) -> None:
    f = fake_max
    f.route("POST", "/api/v3/wallet/spot/order", f.Reply(body=ORDER, delay=5.0))
    f.route("GET", "/api/v3/order", f.err(2004, "not found", 404))
    async with _client(f, limiter, timeout=1.0, reconcile_attempts=2, reconcile_delay=0) as c:
        with pytest.raises(OrderStateUnknown) as info:
            await c.create_order("btctwd", "buy", "0.01", "1500000", client_oid="lost-1")
        assert isinstance(info.value, errors.TransportError)
        assert info.value.client_oid == "lost-1"
        assert "lost-1" in str(info.value)
        assert c.statistics().unknown_orders == 1
    assert len(f.calls("POST", "/api/v3/wallet/spot/order")) == 1
    assert len(f.calls("GET", "/api/v3/order")) == 2


async def test_secrets_never_in_logs_reprs_or_exceptions(
    fake_max: Any, limiter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    f = fake_max
    f.route("GET", "/api/v3/info", f.err(2001, "auth failed", 401))
    f.route("POST", "/api/v3/wallet/spot/order", f.Reply(body=ORDER, delay=5.0))
    f.route("GET", "/api/v3/order", f.err(2004, "nope", 404))
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with _client(f, limiter, timeout=1.0, reconcile_attempts=1) as c:
        texts += [repr(c), repr(c.statistics()), repr(c.nonces), str(c.metric_samples())]
        for call in (c.info(), c.create_order("btctwd", "buy", "1", "1")):
            with pytest.raises(errors.ExchangeError) as info:
                await call
            exc: BaseException | None = info.value
            while exc is not None:  # the whole chain
                texts += [str(exc), repr(exc), repr(exc.args), repr(vars(exc))]
                exc = exc.__cause__ or exc.__context__
    texts += [r.getMessage() for r in caplog.records]
    texts += [repr(r.args) for r in caplog.records]
    assert caplog.records  # the client did log
    blob = "\n".join(texts)
    assert f.secret_key not in blob
    assert f.access_key not in blob
    sync = MaxClientSync(
        base_url=f.url, access_key=f.access_key, secret_key=f.secret_key, limiter=limiter
    )
    try:
        assert f.secret_key not in repr(sync)
        assert f.access_key not in repr(sync)
    finally:
        sync.close()


async def test_metric_samples_and_statistics(fake_max: Any, limiter: Any) -> None:
    f = fake_max
    f.route("GET", "/api/v3/ticker", {"market": "btctwd", "last": "1"})
    async with _client(f, limiter) as c:
        for _ in range(5):
            await c.ticker("btctwd")
        samples = c.metric_samples()
        stats = c.statistics()
    names = {s.name for s in samples}
    assert names == {"aimax_client_requests_total", "aimax_client_latency_seconds"}
    counts = {
        (s.labels["kind"], s.labels["status"]): s.value
        for s in samples
        if s.name == "aimax_client_requests_total"
    }
    assert counts == {("market_data", "200"): 5.0}
    assert all(s.kind == "counter" for s in samples if s.name.endswith("_total"))
    quantiles = {s.labels["quantile"] for s in samples if s.name == "aimax_client_latency_seconds"}
    assert quantiles == {"0.5", "0.95", "0.99"}
    assert stats.requests == 5
    assert stats.responses == {200: 5}
    assert stats.in_flight == 0
    assert stats.latency_p50 is not None
    assert stats.latency_p95 is not None
    assert stats.latency_p50 <= stats.latency_p95


async def test_many_tasks_and_threads_never_reuse_a_nonce(fake_max: Any, limiter: Any) -> None:
    """50 concurrent tasks and 3 threads (each through its own sync facade, same key)
    sign at once: the server (which rejects any reused nonce) sees every nonce once."""
    f = fake_max
    f.route("GET", "/api/v3/wallet/spot/accounts", [])
    errors_seen: list[BaseException] = []

    def thread_work() -> None:
        try:
            with MaxClientSync(
                base_url=f.url,
                access_key=f.access_key,
                secret_key=f.secret_key,
                limiter=limiter,
            ) as sync:
                for _ in range(20):
                    sync.accounts()
                assert sync.statistics().nonce_resyncs == 0
        except BaseException as exc:  # reported below
            errors_seen.append(exc)

    threads = [threading.Thread(target=thread_work) for _ in range(3)]
    async with _client(f, limiter) as c:
        for t in threads:
            t.start()
        await asyncio.gather(*(c.accounts() for _ in range(50)))
        await asyncio.gather(*(c.accounts() for _ in range(50)))
        await asyncio.to_thread(lambda: [t.join() for t in threads])
        assert c.statistics().nonce_resyncs == 0
    assert errors_seen == []
    nonces = [r.nonce for r in f.calls("GET", "/api/v3/wallet/spot/accounts")]
    assert len(nonces) == 100 + 3 * 20
    assert len(set(nonces)) == len(nonces)
    assert not [t for t in threading.enumerate() if t.name == "aimax-max-client"]


def test_sync_facade_from_threads(fake_max: Any, limiter: Any) -> None:
    f = fake_max
    f.route("GET", "/api/v3/ticker", {"market": "btctwd", "last": "3.25"})
    f.route("POST", "/api/v3/wallet/spot/order", lambda r: f.Reply(body={**ORDER, **_body(r)}))
    results: list[Decimal] = []
    with MaxClientSync(
        base_url=f.url, access_key=f.access_key, secret_key=f.secret_key, limiter=limiter
    ) as sync:

        def work() -> None:
            for _ in range(10):
                t = sync.ticker("btctwd")
                assert t.last is not None
                results.append(t.last)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        order = sync.create_order("btctwd", "buy", "0.5", "10")
        assert order.volume == Decimal("0.5")
        assert len(order.client_oid or "") == 32
        assert sync.statistics().requests == 42  # 40 tickers + timestamp sync + order
    assert results == [Decimal("3.25")] * 40
    assert sync.closed
    sync.close()  # idempotent
    with pytest.raises(errors.ConfigurationError, match="closed"):
        sync.ticker("btctwd")
    assert not [t for t in threading.enumerate() if t.name == "aimax-max-client"]


async def test_after_a_429_nothing_is_sent_before_retry_after(fake_max: Any) -> None:
    """With the real limiter: the 429 freezes the scope, and the next calls (public and
    private alike) are refused locally instead of restarting MAX's penalty."""
    from aimax.ratelimit import APIRateLimiter

    f = fake_max
    until = int(time.time()) + 30
    f.route("GET", "/api/v3/ticker", f.err(429, "too many", 429, **{"Retry-After": str(until)}))
    f.route("GET", "/api/v3/wallet/spot/accounts", [])
    limiter = APIRateLimiter.for_max(warm_start=0.0)
    try:
        async with _client(f, limiter, acquire_timeout=0.5, auto_sync_time=False) as c:
            with pytest.raises(errors.ExchangeBanned):
                await c.ticker("btctwd")
            sent = len(f.requests)
            with pytest.raises(errors.Banned) as again:
                await c.ticker("btctwd")
            assert not isinstance(again.value, errors.ExchangeBanned)  # refused locally
            assert again.value.until == pytest.approx(until, abs=1.0)
            with pytest.raises(errors.Banned):
                await c.accounts()
            assert len(f.requests) == sent  # nothing reached the exchange
            assert c.guard is not None
            assert c.guard.held("rest_public") == 1  # the sent one; refused ones hold nothing
    finally:
        limiter.close()


async def test_default_limiter_is_the_max_profile_and_closed_with_the_client(
    fake_max: Any,
) -> None:
    from aimax.ratelimit import APIRateLimiter, LimiterClosed

    fake_max.route("GET", "/api/v3/ticker", {"market": "btctwd", "last": "1"})
    c = MaxClient(base_url=fake_max.url)
    assert isinstance(c.limiter, APIRateLimiter)
    assert set(c.limiter.kinds) >= {"market_data", "account", "order", "cancel"}
    await c.ticker("btctwd")
    await c.aclose()
    await c.aclose()  # idempotent
    assert c.closed
    with pytest.raises(LimiterClosed):
        c.limiter.try_acquire("market_data")
    with pytest.raises(errors.ConfigurationError, match="closed"):
        await c.ticker("btctwd")


async def test_admission_wait_is_measured_per_kind(fake_max: Any) -> None:
    """The time spent waiting for rate limiting (guard + limiter) before sending is
    reported per kind: with 2 per 0.3 s, the third request waits for the window."""
    from aimax.ratelimit import APIRateLimiter, RateLimit
    from aimax.ratelimit.max_profile import max_kinds

    f = fake_max
    f.route("GET", "/api/v3/ticker", {"market": "btctwd", "last": "1"})
    limiter = APIRateLimiter(
        [
            RateLimit(name="rest_public", limit=2, window=0.3),
            RateLimit(name="rest_private", limit=2, window=0.3),
            RateLimit(name="ws_message_second", limit=20, window=1.0),
            RateLimit(name="ws_message_minute", limit=200, window=60.0),
            RateLimit(name="ws_connect_hour", limit=600, window=3600.0),
            RateLimit(name="ws_connect_day", limit=1440, window=86400.0),
        ],
        max_kinds(),
    )
    try:
        async with _client(f, limiter) as c:
            for _ in range(3):
                await c.ticker("btctwd")
            stats = c.statistics()
    finally:
        limiter.close()
    assert set(stats.admission_wait_p99) == {"market_data"}
    # the third request cannot pass before the first leaves the 0.3 s window
    assert stats.admission_wait_p99["market_data"] >= 0.1


@pytest.mark.parametrize(
    ("base_url", "shown", "hidden"),
    [
        ("http://user:s3cr3t-pw@127.0.0.1:9/", "http://user:***@127.0.0.1:9", "s3cr3t-pw"),
        ("https://tok3n-value@example.invalid", "https://***@example.invalid", "tok3n-value"),
        ("https://max-api.maicoin.com", "https://max-api.maicoin.com", "***"),
    ],
)
async def test_repr_masks_userinfo_credentials(
    limiter: Any, base_url: str, shown: str, hidden: str
) -> None:
    """Issue 15: a password in base_url must not show in the client's reprs."""
    async with MaxClient(base_url=base_url, limiter=limiter) as c:
        assert f"base_url={shown!r}" in repr(c)
        assert hidden not in repr(c)
    sync = MaxClientSync(base_url=base_url, limiter=limiter)
    try:
        assert hidden not in repr(sync)
    finally:
        sync.close()
    with pytest.raises(errors.ConfigurationError) as info:
        MaxClient(base_url=base_url.replace("http", "ftp", 1), limiter=limiter)
    assert hidden not in str(info.value)
