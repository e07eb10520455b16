"""MaxStream end to end: against the simulator, and against a hand-scripted MAX-like
server written with the independent ``websockets`` package."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from aimax.errors import ConfigurationError
from aimax.exchange.max import LocalBook, MaxStream, StreamSettings
from aimax.exchange.simulator import MaxSimulator, SimulatorConfig
from aimax.exchange.simulator.stream import StreamConfig
from aimax.ratelimit import APIRateLimiter

pytestmark = pytest.mark.timeout(90)

FAST = StreamSettings(
    ping_interval=0.1,
    read_timeout=0.6,
    backoff_floor=0.05,
    backoff_base=0.05,
    backoff_cap=0.2,
    check_interval=0.05,
    stale_floor=0.5,
    max_subscriptions_per_connection=40,
    max_subscriptions_per_message=15,
)


async def _eventually(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def _equal(book: LocalBook, asks: dict[str, str], bids: dict[str, str]) -> bool:
    return book.asks == sorted((Decimal(p), Decimal(v)) for p, v in asks.items()) and (
        book.bids == sorted(((Decimal(p), Decimal(v)) for p, v in bids.items()), reverse=True)
    )


async def _check_all_equal(sim: MaxSimulator, stream: MaxStream, depth: int) -> None:
    """Freeze the simulator's books, wait for the stream to catch up, compare all.

    An update dropped last before the freeze shows no gap (nothing follows it): the
    stale check resyncs that market, so the truth is read again on every poll.
    """
    sim.stream.pause()
    try:
        markets = list(stream.books)

        def caught_up() -> bool:
            for market in markets:
                try:
                    version, li, asks, bids = sim.stream.published(market, depth)
                except ConfigurationError:  # between the resync's unsub and sub
                    return False
                book = stream.books[market]
                if not book.synced or (book.version, book.last_id) != (version, li):
                    return False
                assert _equal(book, asks, bids), market
            return True

        await _eventually(caught_up)
    finally:
        sim.stream.pause(False)


# ------------------------------------------------------------------ simulator


async def test_many_markets_with_faults_stay_equal_to_the_simulator() -> None:
    cfg = SimulatorConfig(n_markets=60, price_tick=0.05, history_seconds=0, book_levels=10)
    limiter = APIRateLimiter.for_max()
    async with MaxSimulator(cfg, stream=StreamConfig(interval=0.05)) as sim:
        sim.stream.set_faults(drop_rate=0.01, reorder_rate=0.01, duplicate_rate=0.01)
        async with MaxStream(url=sim.ws_url, limiter=limiter, settings=FAST) as stream:
            markets = list(sim._exchange.markets)[:60]
            await stream.subscribe_books(markets, depth=10)
            await stream.subscribe("trade", markets[:5])
            await stream.subscribe("ticker", markets[:5])
            stats = stream.statistics()
            assert stats.connections == 2  # 70 subscriptions, 40 per connection
            await asyncio.wait_for(stream.wait_synced(), 20)
            for _ in range(3):
                await asyncio.sleep(0.5)
                await _check_all_equal(sim, stream, 10)
            s = stream.statistics()
            hub = sim.stream.stats()
            # every damaged update was caught: each cost a resync, none went unseen
            assert hub.updates_dropped + hub.updates_reordered > 0
            assert s.resyncs > 0
            assert s.resubscribes == s.resyncs
            assert hub.connections_refused == 0
            # every connection and every sub/unsub message went through the limiter
            # (read together, no await between; a message granted but still being
            # written is counted by the limiter first: at most one per connection)
            now_stats = stream.statistics()
            pools = limiter.statistics().pools
            assert pools["ws_connect_hour"].grants == now_stats.connects
            assert pools["ws_connect_day"].grants == now_stats.connects
            for pool in ("ws_message_second", "ws_message_minute"):
                in_flight = pools[pool].grants - now_stats.messages_sent
                assert 0 <= in_flight <= now_stats.connections
            assert hub.peak_messages_per_second <= 20
            await stream.subscribe("kline", markets[:2], resolution="1m")
            await _eventually(lambda: stream.kline(markets[0]) is not None)
            assert stream.ticker(markets[0]) is not None
            assert isinstance(stream.trades(markets[0]), list)
        assert stream.closed
        assert stream.books == {}
    limiter.close()


async def test_cut_connections_reconnect_and_resync() -> None:
    cfg = SimulatorConfig(n_markets=6, price_tick=0.05, history_seconds=0, book_levels=5)
    async with (
        MaxSimulator(cfg, stream=StreamConfig(interval=0.05)) as sim,
        MaxStream(url=sim.ws_url, settings=FAST) as stream,
    ):
        markets = list(sim._exchange.markets)
        await stream.subscribe_books(markets, depth=5)
        await asyncio.wait_for(stream.wait_synced(), 10)
        sim.stream.cut_connections()
        await _eventually(lambda: stream.statistics().reconnects >= 1)
        await asyncio.wait_for(stream.wait_synced(), 10)
        await _check_all_equal(sim, stream, 5)
        sim.stream.stall(2.0)  # silent: no data, no pong -> declared dead
        await _eventually(lambda: stream.statistics().dead_connections >= 1)
        await asyncio.wait_for(stream.wait_synced(), 10)
        sim.stream.change_version(markets[0])
        await _eventually(lambda: stream.books[markets[0]].resyncs >= 1)
        await asyncio.wait_for(stream.wait_synced(), 10)
        await _check_all_equal(sim, stream, 5)
        # unsubscribing frees the market and its connection stays for the rest
        await stream.unsubscribe("book", markets[:3])
        assert set(stream.books) == set(markets[3:])
        await stream.unsubscribe("book", markets[3:])
        assert stream.statistics().connections == 0
        await _eventually(lambda: sim.stream.stats().connections_active == 0)


async def test_slow_watcher_sees_latest_and_delays_nobody() -> None:
    cfg = SimulatorConfig(n_markets=3, price_tick=0.02, history_seconds=0, book_levels=5)
    with MaxSimulator(cfg, stream=StreamConfig(interval=0.02)) as sim:
        async with MaxStream(url=sim.ws_url, settings=FAST) as stream:
            a, b, _ = list(sim._exchange.markets)
            await stream.subscribe_books([a, b], depth=5)
            await asyncio.wait_for(stream.wait_synced(), 10)
            fast: list[int] = []
            slow: list[int] = []

            async def consume(market: str, out: list[int], pause: float) -> None:
                async for book in stream.watch(market):
                    assert book.last_id is not None
                    out.append(book.last_id)
                    if pause:
                        await asyncio.sleep(pause)  # a slow handler
                    if len(out) >= 8:
                        return

            await asyncio.wait_for(asyncio.gather(consume(a, fast, 0.0), consume(b, slow, 0.1)), 20)
            # the slow consumer skipped to the latest book instead of queueing
            assert max(b2 - b1 for b1, b2 in itertools.pairwise(slow)) > 1
            assert stream.books[a].synced


# ------------------------------------------------------------- scripted server


class Scripted:
    """A MAX-like server whose behaviour each test writes by hand."""

    def __init__(self) -> None:
        self.connections = 0
        self.subs: list[dict[str, Any]] = []
        self.refuse_until: float | None = None
        self.refusals = 0
        self.script: Callable[[ServerConnection, dict[str, Any]], Awaitable[None]] | None = None
        self.server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/ws"

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        if self.refuse_until is not None and time.time() < self.refuse_until:
            self.refusals += 1
            headers = Headers({"Retry-After": str(int(self.refuse_until) + 1)})
            return Response(429, "Too Many Requests", headers, b"{}")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        with contextlib.suppress(websockets.ConnectionClosed):  # the client went away
            async for raw in ws:
                message = json.loads(raw)
                self.subs.append(message)
                await ws.send(json.dumps({"e": "subscribed", "s": message.get("subscriptions")}))
                if self.script is not None:
                    await self.script(ws, message)


@pytest.fixture
async def scripted() -> AsyncIterator[Scripted]:
    peer = Scripted()
    async with serve(
        peer.handler, "127.0.0.1", 0, process_request=peer.process_request, ping_interval=None
    ) as server:
        peer.server = server
        yield peer


def _book(e: str, a: list[list[str]], fi: int, li: int, v: int = 1) -> str:
    return json.dumps({"c": "book", "e": e, "M": "btctwd", "a": a, "b": [["9", "1"]],
                       "fi": fi, "li": li, "v": v, "T": 0})  # fmt: skip


async def test_gap_resubscribes_that_market_only(scripted: Scripted) -> None:
    state = {"sent": 0}

    async def script(ws: ServerConnection, message: dict[str, Any]) -> None:
        if message["action"] != "sub":
            return
        markets = [s["market"] for s in message["subscriptions"]]
        for market in markets:
            if market != "btctwd":
                await ws.send(json.dumps({"c": "book", "e": "snapshot", "M": market,
                                          "a": [["5", "1"]], "b": [], "fi": 1, "li": 1, "v": 1,
                                          "T": 0}))  # fmt: skip
        if "btctwd" in markets:
            state["sent"] += 1
            await ws.send(_book("snapshot", [["10", "1"]], 100, 100))
            await ws.send(_book("update", [["11", "2"]], 101, 101))
            if state["sent"] == 1:
                await ws.send(_book("update", [["12", "2"]], 105, 105))  # a gap

    scripted.script = script
    async with MaxStream(url=scripted.url, settings=FAST) as stream:
        await stream.subscribe_books(["btctwd", "ethtwd", "usdttwd"], depth=5)
        await _eventually(lambda: state["sent"] == 2)
        await asyncio.wait_for(stream.wait_synced(), 5)
        book = stream.books["btctwd"]
        assert book.resyncs == 1
        assert book.asks == [(Decimal(10), Decimal(1)), (Decimal(11), Decimal(2))]
        # one sub for all three, then one unsub + one sub of btctwd alone
        actions = [(m["action"], [s["market"] for s in m["subscriptions"]]) for m in scripted.subs]
        assert actions == [
            ("sub", ["btctwd", "ethtwd", "usdttwd"]),
            ("unsub", ["btctwd"]),
            ("sub", ["btctwd"]),
        ]
        assert stream.statistics().resubscribes == 1


async def test_silence_is_a_dead_connection(scripted: Scripted) -> None:
    async def script(ws: ServerConnection, message: dict[str, Any]) -> None:
        if message["action"] == "sub":
            await ws.send(_book("snapshot", [["10", "1"]], 1, 1))
            ws.transport.pause_reading()  # a half-dead link: no data, pings unanswered

    scripted.script = script
    async with MaxStream(url=scripted.url, settings=FAST) as stream:
        await stream.subscribe_books(["btctwd"])
        await _eventually(lambda: scripted.connections >= 2)
        assert stream.statistics().dead_connections >= 1


async def test_429_on_connect_waits_for_retry_after(scripted: Scripted) -> None:
    scripted.refuse_until = time.time() + 1.0
    limiter = APIRateLimiter.for_max()
    try:
        async with MaxStream(url=scripted.url, limiter=limiter, settings=FAST) as stream:
            started = time.time()
            await stream.subscribe_books(["btctwd"])
            await _eventually(lambda: scripted.connections == 1)
            # refused once, then nothing was sent before the absolute Retry-After
            assert scripted.refusals == 1
            assert time.time() >= scripted.refuse_until
            assert stream.statistics().refused == 1
            assert time.time() - started >= 1.0
    finally:
        limiter.close()


async def test_close_stops_every_task(scripted: Scripted) -> None:
    before = {t for t in asyncio.all_tasks() if not t.done()}
    stream = MaxStream(url=scripted.url, settings=FAST)
    async with stream:
        await stream.subscribe_books(["btctwd", "ethtwd"])
        await stream.subscribe("kline", ["btctwd"], resolution="1m")
        await _eventually(lambda: scripted.connections == 1)
    await asyncio.sleep(0)
    after = {t for t in asyncio.all_tasks() if not t.done()} - before
    assert {t.get_name() for t in after if t.get_name().startswith("aimax")} == set()
    assert stream.statistics().connections == 0
    await stream.close()  # idempotent


def test_bad_arguments_raise() -> None:
    with pytest.raises(ConfigurationError, match="url"):
        MaxStream(url="http://x")
    with pytest.raises(ConfigurationError, match="max_subscriptions_per_message"):
        StreamSettings(max_subscriptions_per_message=0)
    with pytest.raises(ConfigurationError, match="backoff_floor"):
        StreamSettings(backoff_floor=10, backoff_cap=1)


async def test_bad_subscriptions_raise() -> None:
    async with MaxStream(url="ws://127.0.0.1:9/ws", settings=FAST) as stream:
        with pytest.raises(ConfigurationError, match="depth"):
            await stream.subscribe_books(["btctwd"], depth=3)
        with pytest.raises(ConfigurationError, match="channel"):
            await stream.subscribe("nope", ["btctwd"])
        with pytest.raises(ConfigurationError, match="market"):
            await stream.subscribe("trade", [""])
        with pytest.raises(ConfigurationError, match="not subscribed"):
            await anext(aiter(stream.watch("btctwd")))


async def test_unsynced_market_is_served_from_rest_depth(scripted: Scripted) -> None:
    """The stream never sends btctwd's snapshot: its book is filled from REST depth,
    charged to the REST client's limiter, and stays marked unsynced."""
    from aimax.exchange.max import MaxClient

    cfg = SimulatorConfig(n_markets=2, history_seconds=0, book_levels=5)
    limiter = APIRateLimiter.for_max()
    settings = StreamSettings(check_interval=0.05, fallback_after=0.2, read_timeout=5.0)
    try:
        async with (
            MaxSimulator(cfg) as sim,
            MaxClient(base_url=sim.url, limiter=limiter) as rest,
            MaxStream(url=scripted.url, settings=settings, rest=rest) as stream,
        ):
            await stream.subscribe_books(["btctwd"], depth=5)
            await _eventually(lambda: stream.statistics().fallbacks >= 1)
            book = stream.books["btctwd"]
            assert not book.synced
            depth = await rest.depth("btctwd", limit=5, sort_by_price=False)
            assert book.asks == sorted((lvl.price, lvl.volume) for lvl in depth.asks)
            assert book.bids == sorted(
                ((lvl.price, lvl.volume) for lvl in depth.bids), reverse=True
            )
            # the REST budget paid for the fallback (and for this test's own call)
            assert limiter.statistics().pools["rest_public"].grants >= 2
    finally:
        limiter.close()


async def test_subscribe_unsubscribe_cycles_leave_nothing_behind(scripted: Scripted) -> None:
    markets = [f"m{i}twd" for i in range(50)]
    async with MaxStream(url=scripted.url, settings=FAST) as stream:
        await stream.subscribe_books(["keep"])
        await _eventually(lambda: scripted.connections == 1)

        def ours() -> list[str]:
            return sorted(
                t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("aimax")
            )

        baseline = ours()
        for _ in range(10):
            await stream.subscribe_books(markets)
            await stream.subscribe("trade", markets)
            await stream.unsubscribe("book", markets)
            await stream.unsubscribe("trade", markets)
        stats = stream.statistics()
        assert stats.subscriptions == 1
        assert stats.markets == 1
        assert stats.connections == 1
        assert list(stream.books) == ["keep"]
        assert stream._slots.keys() == {"keep"}
        assert stream._trades == {}
        assert ours() == baseline  # one connection's tasks, as before the cycles


async def test_private_stream_follows_orders_and_balances() -> None:
    from aimax.exchange.max import MaxClient

    cfg = SimulatorConfig(n_markets=2, history_seconds=0)
    async with MaxSimulator(cfg, stream=StreamConfig(interval=0.02)) as sim:
        sim.add_account("k1", "s1", {"twd": "1000000"})
        async with (
            MaxClient(base_url=sim.url, access_key="k1", secret_key="s1") as rest,
            MaxStream(url=sim.ws_url, settings=FAST, access_key="k1", secret_key="s1") as stream,
        ):
            await stream.subscribe_private()
            await _eventually(lambda: stream.authenticated)
            await _eventually(lambda: "twd" in stream.balances)
            assert stream.balances["twd"]["av"] == "1000000"
            order = await rest.create_order("btctwd", "buy", "0.001", "300000")
            await _eventually(lambda: order.id in stream.orders)
            assert stream.orders[order.id]["S"] == "wait"
            assert stream.orders[order.id]["sd"] == "buy"
            await _eventually(lambda: Decimal(str(stream.balances["twd"]["l"])) == Decimal("300"))
            await rest.cancel_order(id=order.id)
            await _eventually(lambda: stream.orders[order.id]["S"] == "cancel")
            assert "s1" not in repr(stream)


async def test_private_auth_failure_is_reported() -> None:
    cfg = SimulatorConfig(n_markets=2, history_seconds=0)
    async with MaxSimulator(cfg) as sim:
        sim.add_account("k1", "s1", {"twd": "1"})
        async with MaxStream(
            url=sim.ws_url, settings=FAST, access_key="k1", secret_key="wrong"
        ) as stream:
            await stream.subscribe_private(["order"])
            await _eventually(lambda: stream.statistics().errors >= 1)
            assert not stream.authenticated
    with pytest.raises(ConfigurationError, match="go together"):
        MaxStream(access_key="k1")
    with pytest.raises(ConfigurationError, match="filter"):
        await MaxStream(access_key="k", secret_key="s").subscribe_private(["nope"])


async def test_a_silent_market_on_a_live_connection_is_stale_and_resynced(
    scripted: Scripted,
) -> None:
    """btctwd's updates stop while ethtwd's keep flowing: btctwd alone is resynced."""
    feeders: list[asyncio.Task[None]] = []

    async def feed(ws: ServerConnection, market: str, count: int | None) -> None:
        li = 1
        await ws.send(json.dumps({"c": "book", "e": "snapshot", "M": market, "a": [["5", "1"]],
                                  "b": [], "fi": li, "li": li, "v": 1, "T": 0}))  # fmt: skip
        sent = 0
        with contextlib.suppress(websockets.ConnectionClosed):
            while count is None or sent < count:
                await asyncio.sleep(0.02)
                li += 1
                sent += 1
                await ws.send(json.dumps({"c": "book", "e": "update", "M": market,
                                          "a": [["5", str(li)]], "b": [], "fi": li, "li": li,
                                          "v": 1, "T": 0}))  # fmt: skip

    async def script(ws: ServerConnection, message: dict[str, Any]) -> None:
        if message["action"] != "sub":
            return
        for sub in message["subscriptions"]:
            silent_after = 10 if sub["market"] == "btctwd" and len(scripted.subs) == 1 else None
            feeders.append(asyncio.create_task(feed(ws, sub["market"], silent_after)))

    scripted.script = script
    try:
        async with MaxStream(url=scripted.url, settings=FAST) as stream:
            await stream.subscribe_books(["btctwd", "ethtwd"])
            await _eventually(lambda: stream.statistics().stale >= 1)
            assert stream.books["btctwd"].resyncs == 1
            assert stream.books["ethtwd"].resyncs == 0
            await _eventually(lambda: stream.books["btctwd"].synced)
            actions = [
                (m["action"], [s["market"] for s in m["subscriptions"]]) for m in scripted.subs
            ]
            assert actions[1:3] == [("unsub", ["btctwd"]), ("sub", ["btctwd"])]
            assert scripted.connections == 1  # the connection itself was never dropped
    finally:
        for task in feeders:
            task.cancel()
        await asyncio.gather(*feeders, return_exceptions=True)
