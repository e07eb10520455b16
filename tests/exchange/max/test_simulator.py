"""MaxClient against the MaxSimulator over real HTTP: every endpoint, errors, nonces,
reconciliation, and the issue's headline test (naive client banned, ours never)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from aimax import errors
from aimax.exchange.max import MaxClient, MaxClientSync
from aimax.exchange.simulator import MaxSimulator, SimulatorConfig
from aimax.ratelimit import APIRateLimiter, RateLimit
from aimax.ratelimit.max_profile import max_kinds

KEY = "sim-access-key"
SECRET = "sim-secret-key-never-logged"
REST_KINDS = ("market_data", "account", "order", "cancel")


def _rest_limiter(limit: int, window: float, headroom: float = 1.0) -> APIRateLimiter:
    """A limiter with the simulator's (scaled) REST pools and MAX's REST kinds."""
    return APIRateLimiter(
        [
            RateLimit(name="rest_public", limit=limit, window=window, headroom=headroom),
            RateLimit(name="rest_private", limit=limit, window=window, headroom=headroom),
        ],
        [k for k in max_kinds() if k.name in REST_KINDS],
    )


@pytest.fixture
def sim() -> Iterator[MaxSimulator]:
    with MaxSimulator(SimulatorConfig(seed=7, hang_seconds=5.0)) as simulator:
        simulator.add_account(KEY, SECRET, {"twd": "100000000", "btc": "5", "eth": "20"})
        yield simulator


@pytest.fixture
def limiter() -> Iterator[APIRateLimiter]:
    lim = _rest_limiter(1200, 60.0)
    yield lim
    lim.close()


def _client(sim: MaxSimulator, limiter: APIRateLimiter, **kw: object) -> MaxClient:
    return MaxClient(
        base_url=sim.url,
        access_key=KEY,
        secret_key=SECRET,
        limiter=limiter,
        **kw,  # type: ignore[arg-type]
    )


async def test_every_endpoint(sim: MaxSimulator, limiter: APIRateLimiter) -> None:
    async with _client(sim, limiter) as c:
        server_time = await c.timestamp()
        assert abs(server_time - time.time()) < 60
        markets = await c.markets()
        ids = {m.id for m in markets}
        assert len(markets) >= 20
        assert {"btctwd", "ethtwd", "usdttwd"} <= ids
        btc = await c.market("btctwd")
        assert btc.base_unit == "btc"
        assert isinstance(btc.min_base_amount, Decimal)
        assert any(cur.currency == "btc" for cur in await c.currencies())
        tickers = await c.tickers(["btctwd", "ethtwd"])
        assert [t.market for t in tickers] == ["btctwd", "ethtwd"]
        ticker = await c.ticker("btctwd")
        assert ticker.last is not None
        assert ticker.last > 0
        book = await c.depth("btctwd", limit=5)
        assert 0 < len(book.asks) <= 5
        assert 0 < len(book.bids) <= 5
        assert all(isinstance(level.price, Decimal) for level in book.asks + book.bids)
        assert max(b.price for b in book.bids) < min(a.price for a in book.asks)
        trades = await c.trades("btctwd", limit=10)
        assert 0 < len(trades) <= 10
        assert all(t.market == "btctwd" and t.price > 0 and t.volume > 0 for t in trades)
        rows = await c.k("btctwd", period=1, limit=5)
        assert 0 < len(rows) <= 5
        assert all(r.low <= min(r.open, r.close) <= max(r.open, r.close) <= r.high for r in rows)
        assert [r.timestamp for r in rows] == sorted(r.timestamp for r in rows)
        # private
        info = await c.info()
        assert info.level is not None
        twd = next(a for a in await c.accounts() if a.currency == "twd")
        assert twd.balance == Decimal(100000000)
        bid = book.bids[-1].price
        low = (bid * Decimal("0.5")).quantize(Decimal(1))
        resting = await c.create_order("btctwd", "buy", "0.01", low, client_oid="rest-1")
        assert resting.client_oid == "rest-1"
        assert resting.state == "wait"
        assert (await c.get_order(id=resting.id)).client_oid == "rest-1"
        assert (await c.get_order(client_oid="rest-1")).id == resting.id
        assert [o.id for o in await c.open_orders("btctwd")] == [resting.id]
        cancelled = await c.cancel_order(client_oid="rest-1")
        assert cancelled.accepted
        second = await c.create_order("btctwd", "buy", "0.01", low)
        assert len(second.client_oid or "") == 32  # generated
        await c.cancel_order(id=second.id)
        for _ in range(2):
            await c.create_order("ethtwd", "sell", "0.1", "99999999")
        bulk = await c.cancel_orders(market="ethtwd")
        assert len(bulk) == 2
        assert all(r.accepted and r.order is not None for r in bulk)
        assert await c.open_orders() == []
        filled = await c.create_order("btctwd", "buy", "0.001", ord_type="market")
        assert filled.side == "buy"
        mine = await c.my_trades("btctwd")
        assert mine
        assert mine[0].volume > 0
        assert mine[0].fee is not None
        of_order = await c.order_trades(order_id=filled.id)
        assert of_order
        assert {t.order_id for t in of_order} == {filled.id}
        assert of_order == await c.order_trades(client_oid=filled.client_oid)
        closed = await c.closed_orders("btctwd")
        assert {resting.id, second.id} <= {o.id for o in closed}
        history = await c.order_history(limit=100)
        assert [o.id for o in history] == sorted(o.id for o in history)
        assert len(history) == 5
        stats = c.statistics()
        assert stats.bans == 0
        assert stats.nonce_resyncs == 0
    assert sim.stats().auth_failures == 0


async def test_errors(sim: MaxSimulator, limiter: APIRateLimiter) -> None:
    async with _client(sim, limiter) as c:
        with pytest.raises(errors.InsufficientFunds) as funds:
            await c.create_order("btctwd", "sell", "500", "1")
        assert funds.value.code == 2018
        with pytest.raises(errors.OrderNotFound):
            await c.get_order(id=987654)
        with pytest.raises(errors.OrderNotFound):
            await c.cancel_order(client_oid="never-was")
        first = await c.create_order("btctwd", "sell", "0.01", "99999999", client_oid="dup-1")
        created = sim.stats().orders_created
        # the same client_oid again: MAX refuses the duplicate, the client returns the
        # order that holds it (the safe retry), and nothing new is placed
        again = await c.create_order("btctwd", "sell", "0.01", "99999999", client_oid="dup-1")
        assert again.id == first.id
        assert sim.stats().orders_created == created
        with pytest.raises(errors.OrderError):  # a client_oid of another order: refused
            await c.create_order("btctwd", "buy", "0.01", "1000", client_oid="dup-1")
        sim.fail_next(1, status=502)
        with pytest.raises(errors.ServerError) as server:
            await c.ticker("btctwd")
        assert server.value.status == 502
        sim.set_maintenance(True)
        with pytest.raises(errors.ServerError):
            await c.accounts()
        sim.set_maintenance(False)
        await c.markets()
        with pytest.raises(errors.ConfigurationError, match="unknown market"):
            await c.create_order("nosuchtwd", "buy", "1", "1")
    wrong = MaxClient(base_url=sim.url, access_key=KEY, secret_key="not-it", limiter=limiter)
    async with wrong:
        with pytest.raises(errors.AuthenticationError) as auth:
            await wrong.info()
        assert auth.value.code == 2005
        assert "not-it" not in str(auth.value)
    stranger = MaxClient(base_url=sim.url, access_key="who", secret_key="x", limiter=limiter)
    async with stranger:
        with pytest.raises(errors.AuthenticationError) as unknown:
            await stranger.accounts()
        assert unknown.value.code == 2008


async def test_timed_out_create_is_reconciled(sim: MaxSimulator, limiter: APIRateLimiter) -> None:
    async with _client(sim, limiter, timeout=1.5, reconcile_delay=0.05) as c:
        sim.hang_after_accept(1)
        order = await c.create_order("btctwd", "sell", "0.01", "99999999", client_oid="slow-1")
        assert order.client_oid == "slow-1"
        assert order.state == "wait"
        stats = c.statistics()
        assert stats.reconciled_orders == 1
        assert stats.transport_errors == 1
    s = sim.stats()
    assert s.accepted_then_timed_out == 1
    assert s.orders_created == 1  # never sent twice
    assert s.by_endpoint.get("POST /api/v3/wallet/{wallet_type}/order") == 1


async def test_gateway_timeout_after_accept_is_reconciled(limiter: APIRateLimiter) -> None:
    """The exchange accepts the order but a gateway answers 504: found, not resent."""
    config = SimulatorConfig(seed=5, hang_seconds=0.3)
    with MaxSimulator(config) as simulator:
        simulator.add_account(KEY, SECRET, {"twd": "100000000", "btc": "5"})
        async with _client(simulator, limiter, timeout=10.0, reconcile_delay=0.05) as c:
            simulator.hang_after_accept(1)
            order = await c.create_order("btctwd", "sell", "0.01", "99999999")
            assert order.state == "wait"
            assert c.statistics().reconciled_orders == 1
            assert c.statistics().responses.get(504) == 1
            simulator.fail_next(1, status=500)  # a 500 proves nothing: looked up, not found
            with pytest.raises(errors.OrderStateUnknown) as unknown:
                await c.create_order("btctwd", "sell", "0.01", "99999999")
            assert c.statistics().unknown_orders == 1
            retried = await c.create_order(
                "btctwd", "sell", "0.01", "99999999", client_oid=unknown.value.client_oid
            )
            assert retried.client_oid == unknown.value.client_oid
        s = simulator.stats()
    assert s.orders_created == 2  # the first order, and the retried one exactly once
    assert s.by_endpoint.get("POST /api/v3/wallet/{wallet_type}/order") == 3


async def test_nonces_across_tasks_and_threads(sim: MaxSimulator, limiter: APIRateLimiter) -> None:
    """40 concurrent tasks plus 3 threads (sync facades), one key: the simulator (which
    rejects any reused nonce with 2006) never rejects one, and nothing needs a resync."""
    failures: list[BaseException] = []

    def thread_work() -> None:
        try:
            with MaxClientSync(
                base_url=sim.url, access_key=KEY, secret_key=SECRET, limiter=limiter
            ) as sync:
                for _ in range(20):
                    sync.accounts(currency="twd")
                if sync.statistics().nonce_resyncs:
                    raise AssertionError("a nonce was rejected")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=thread_work) for _ in range(3)]
    async with _client(sim, limiter) as c:
        for t in threads:
            t.start()
        results = await asyncio.gather(*(c.open_orders() for _ in range(40)))
        await asyncio.to_thread(lambda: [t.join() for t in threads])
        assert c.statistics().nonce_resyncs == 0
    assert failures == []
    assert len(results) == 40
    s = sim.stats()
    assert s.auth_failures == 0
    assert s.by_status.get(200, 0) == s.requests


# ----------------------------------------------------------------- headline

LIMIT = 60
WINDOW = 3.0  # the example: 60 per 3 s (MAX's 1200/min, 20x faster)
WINDOWS = 2


def _scaled() -> SimulatorConfig:
    return SimulatorConfig(
        public_limit=LIMIT, private_limit=LIMIT, window=WINDOW, ban_seconds=WINDOW, seed=3
    )


@pytest.mark.slow
async def test_naive_client_is_banned_and_the_ban_extends() -> None:
    """Plain httpx + asyncio.gather, no limiter: 429s, and the ban keeps moving out."""
    with MaxSimulator(_scaled()) as simulator:
        retry_afters: list[int] = []
        statuses: list[int] = []
        async with httpx.AsyncClient(base_url=simulator.url, timeout=30.0) as http:
            stop = time.monotonic() + 2.5  # keeps hammering for 2.5 s, like a naive bot

            async def hammer() -> None:
                while time.monotonic() < stop:
                    r = await http.get("/api/v3/ticker", params={"market": "btctwd"})
                    statuses.append(r.status_code)
                    if r.status_code == 429:
                        retry_afters.append(int(r.headers["Retry-After"]))

            await asyncio.gather(*(hammer() for _ in range(12)))
        s = simulator.stats()
    assert statuses.count(200) <= LIMIT  # the first window's budget, then nothing
    assert statuses.count(429) > 0
    assert s.rate_limited == statuses.count(429)
    assert s.bans_started >= 1
    assert s.ban_extensions >= 1
    # Retry-After is an absolute Unix time, and it moved later while the client kept sending
    assert min(retry_afters) > time.time() - 60
    assert max(retry_afters) > min(retry_afters)


@pytest.mark.slow
async def test_our_client_at_full_speed_is_never_banned_and_uses_the_budget() -> None:
    """The same hammering through MaxClient: no 429 at all, >= 90 % of the budget used."""
    with MaxSimulator(_scaled()) as simulator:
        limiter = _rest_limiter(LIMIT, WINDOW, headroom=0.95)  # 57 per 2 s per pool
        done: list[float] = []
        async with MaxClient(base_url=simulator.url, limiter=limiter, timeout=30.0) as c:

            async def worker() -> None:
                while True:
                    await c.ticker("btctwd")
                    done.append(time.monotonic())

            await c.ticker("btctwd")  # warm up: connection, the market's book
            start = time.monotonic()
            tasks = [asyncio.create_task(worker()) for _ in range(12)]
            await asyncio.sleep(WINDOW * WINDOWS)
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            stats = c.statistics()
        limiter.close()
        s = simulator.stats()
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results
    assert s.rate_limited == 0
    assert s.bans_started == 0
    assert stats.bans == 0
    assert s.peak_public
    assert max(s.peak_public.values()) <= LIMIT
    in_time = [t for t in done if t - start <= WINDOW * WINDOWS]
    budget = LIMIT * WINDOWS - 1  # the warm-up request is still in the first window
    utilisation = len(in_time) / budget
    assert utilisation >= 0.9, (len(in_time), budget, stats)
