"""The simulator's /ws, checked by an independent client (the ``websockets`` package).

The client here keeps its own plain-dict book from the raw messages (no aimax code)
and checks MAX's shapes, ids and versions, the faults on request and the limits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect

from aimax.errors import ConfigurationError
from aimax.exchange.simulator import MaxSimulator, SimulatorConfig
from aimax.exchange.simulator.stream import StreamConfig

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sim() -> Iterator[MaxSimulator]:
    cfg = SimulatorConfig(n_markets=4, price_tick=0.05, history_seconds=0, book_levels=10)
    with MaxSimulator(cfg, stream=StreamConfig(interval=0.02)) as server:
        yield server


async def _recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    message = json.loads(raw)
    assert isinstance(message, dict)
    return message


async def _until(ws: ClientConnection, pred: Any, limit: int = 500) -> dict[str, Any]:
    for _ in range(limit):
        message = await _recv(ws)
        if pred(message):
            return message
    raise AssertionError("no matching message")


async def _drain(ws: ClientConnection) -> None:
    for _ in range(10_000):
        await _recv(ws)


class DictBook:
    """The independent oracle: levels by Decimal price, MAX's rules at their plainest."""

    def __init__(self) -> None:
        self.asks: dict[Decimal, Decimal] = {}
        self.bids: dict[Decimal, Decimal] = {}
        self.li = -1
        self.v = -1

    def snapshot(self, m: dict[str, Any]) -> None:
        self.asks = {Decimal(p): Decimal(v) for p, v in m["a"]}
        self.bids = {Decimal(p): Decimal(v) for p, v in m["b"]}
        self.li, self.v = m["li"], m["v"]

    def update(self, m: dict[str, Any]) -> bool:
        if m["v"] != self.v or m["fi"] != self.li + 1:
            return False
        for side, levels in ((self.asks, m["a"]), (self.bids, m["b"])):
            for p, v in levels:
                if Decimal(v):
                    side[Decimal(p)] = Decimal(v)
                else:
                    side.pop(Decimal(p), None)
        self.li = m["li"]
        return True


async def test_book_snapshot_then_contiguous_updates_equal_published(sim: MaxSimulator) -> None:
    async with connect(sim.ws_url) as ws:
        sub = [{"channel": "book", "market": "btctwd", "depth": 5}]
        await ws.send(json.dumps({"action": "sub", "subscriptions": sub, "id": "c1"}))
        ack = await _recv(ws)
        assert ack["e"] == "subscribed"
        assert ack["i"] == "c1"
        assert ack["s"] == sub
        snap = await _recv(ws)
        assert snap["c"] == "book"
        assert snap["e"] == "snapshot"
        assert snap["M"] == "btctwd"
        assert len(snap["a"]) == 5
        assert len(snap["b"]) == 5
        book = DictBook()
        book.snapshot(snap)
        for _ in range(20):
            update = await _until(ws, lambda m: m.get("e") == "update")
            assert book.update(update), "the simulator's own stream must be contiguous"
            assert set(update) >= {"c", "M", "a", "b", "T", "fi", "li", "v"}
        sim.stream.pause()
        try:
            await asyncio.sleep(0.1)  # whatever was in flight arrives
            version, li, asks, bids = sim.stream.published("btctwd", 5)
            while book.li < li:
                assert book.update(await _until(ws, lambda m: m.get("e") == "update"))
            assert (book.v, book.li) == (version, li)
            assert book.asks == {Decimal(p): Decimal(v) for p, v in asks.items()}
            assert book.bids == {Decimal(p): Decimal(v) for p, v in bids.items()}
            assert len(book.asks) == 5
        finally:
            sim.stream.pause(False)


async def test_trade_ticker_and_errors(sim: MaxSimulator) -> None:
    async with connect(sim.ws_url) as ws:
        subs = [{"channel": "trade", "market": "ethtwd"}, {"channel": "ticker", "market": "ethtwd"}]
        await ws.send(json.dumps({"action": "subscribe", "subscriptions": subs, "id": "x"}))
        assert (await _recv(ws))["e"] == "subscribed"
        trade = await _until(ws, lambda m: m.get("c") == "trade" and m.get("e") == "update")
        assert trade["M"] == "ethtwd"
        assert {"p", "v", "T", "tr"} <= set(trade["t"][0])
        ticker = await _until(ws, lambda m: m.get("c") == "ticker")
        assert set(ticker["tk"]) == {"M", "O", "H", "L", "C", "v", "V"}
        kline = [{"channel": "kline", "market": "ethtwd", "resolution": "5m"}]
        await ws.send(json.dumps({"action": "sub", "subscriptions": kline, "id": "k"}))
        bar = await _until(ws, lambda m: m.get("c") == "kline")
        assert set(bar["k"]) == {"ST", "ET", "M", "R", "O", "H", "L", "C", "v", "ti", "x"}
        assert bar["k"]["R"] == "5m"
        assert bar["k"]["ET"] - bar["k"]["ST"] == 5 * 60_000 - 1
        assert Decimal(bar["k"]["L"]) <= Decimal(bar["k"]["H"])
        await ws.send(json.dumps({"action": "dance", "id": "y"}))
        err = await _until(ws, lambda m: m.get("e") == "error")
        assert err["E"] == ["E-1004: invalid action"]
        assert err["i"] == "y"
        await ws.send("not json")
        err = await _until(ws, lambda m: m.get("e") == "error")
        assert err["E"] == ["E-1005: invalid JSON"]
        bad = [{"channel": "book", "market": "btctwd", "depth": 7}]
        await ws.send(json.dumps({"action": "sub", "subscriptions": bad, "id": "z"}))
        err = await _until(ws, lambda m: m.get("e") == "error")
        assert "depth" in err["E"][0]
        await ws.send(json.dumps({"action": "ping"}))
        assert (await _until(ws, lambda m: m.get("e") in ("pong",)))["e"] == "pong"


async def test_faults_gap_version_empty_snapshot(sim: MaxSimulator) -> None:
    async with connect(sim.ws_url) as ws:
        sub = [{"channel": "book", "market": "btctwd", "depth": 10}]
        await ws.send(json.dumps({"action": "sub", "subscriptions": sub, "id": "f"}))
        await _recv(ws)
        book = DictBook()
        book.snapshot(await _recv(ws))
        assert book.update(await _until(ws, lambda m: m.get("e") == "update"))
        sim.stream.skip_update("btctwd")
        update = await _until(ws, lambda m: m.get("e") == "update")
        assert update["fi"] > book.li + 1  # the skipped update shows as a gap
        sim.stream.change_version("btctwd")
        update = await _until(ws, lambda m: m.get("e") == "update" and m["v"] != book.v)
        assert update["v"] != book.v
        sim.stream.send_empty_snapshot("btctwd")
        empty = await _until(ws, lambda m: m.get("e") == "snapshot")
        assert empty["a"] == []
        assert empty["b"] == []


async def test_cut_and_stall(sim: MaxSimulator) -> None:
    async with connect(sim.ws_url, ping_interval=None) as ws:
        sim.stream.stall(0.5)
        waiter = await ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(waiter, 0.2)  # no pong while stalled
        await asyncio.sleep(0.4)
        await asyncio.wait_for(await ws.ping(), 3.0)  # answered once the stall is over
        sim.stream.cut_connections()
        with pytest.raises(websockets.ConnectionClosed):
            await _drain(ws)
    assert sim.stream.stats().connections_opened == 1


async def test_message_limit_closes_the_connection() -> None:
    cfg = SimulatorConfig(n_markets=2, history_seconds=0)
    with MaxSimulator(cfg, stream=StreamConfig(messages_per_second=3)) as sim:
        async with connect(sim.ws_url) as ws:
            sub = [{"channel": "ticker", "market": "btctwd"}]
            for i in range(4):
                await ws.send(json.dumps({"action": "sub", "subscriptions": sub, "id": str(i)}))
            err = await _until(ws, lambda m: m.get("e") == "error")
            assert "E-429" in err["E"][0]
            with pytest.raises(websockets.ConnectionClosed):
                await _drain(ws)
        assert sim.stream.stats().connections_closed_for_rate == 1


async def test_connection_limit_429_with_absolute_retry_after() -> None:
    cfg = SimulatorConfig(n_markets=2, history_seconds=0)
    stream = StreamConfig(connections_per_hour=2, ban_seconds=30.0)
    with MaxSimulator(cfg, stream=stream) as sim:
        headers = {"X-Forwarded-For": "10.0.0.7"}
        for _ in range(2):
            async with connect(sim.ws_url, additional_headers=headers):
                pass
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(sim.ws_url, additional_headers=headers):
                pass
        response = info.value.response
        assert response.status_code == 429
        import time

        retry_at = int(response.headers["Retry-After"])
        assert time.time() + 25 < retry_at <= time.time() + 31  # absolute Unix seconds
        # another IP is not affected
        async with connect(sim.ws_url, additional_headers={"X-Forwarded-For": "10.0.0.8"}):
            pass
        stats = sim.stream.stats()
        assert stats.connections_refused == 1
        assert stats.connections_opened == 3


def test_stream_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigurationError, match="interval"):
        StreamConfig(interval=0)
    with pytest.raises(ConfigurationError, match="messages_per_second"):
        StreamConfig(messages_per_second=0)
    with pytest.raises(ConfigurationError, match="max_subscriptions"):
        StreamConfig(max_subscriptions=0)
    assert StreamConfig.scaled(0.5).minute == 30.0
