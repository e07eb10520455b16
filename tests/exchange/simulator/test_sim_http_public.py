"""Every public endpoint over real HTTP, in MAX v3's shapes."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx

from aimax.exchange.simulator import MaxSimulator


def test_timestamp_is_server_seconds(http: httpx.Client) -> None:
    before = int(time.time())
    body = http.get("/api/v3/timestamp").json()
    assert set(body) == {"timestamp"}
    assert before - 1 <= body["timestamp"] <= int(time.time()) + 1


def test_markets_and_currencies(http: httpx.Client) -> None:
    markets = http.get("/api/v3/markets").json()
    assert len(markets) == 30
    first = markets[0]
    assert set(first) >= {
        "id",
        "status",
        "base_unit",
        "base_unit_precision",
        "min_base_amount",
        "quote_unit",
        "quote_unit_precision",
        "min_quote_amount",
    }
    assert first["id"] == "btctwd"
    assert first["status"] == "active"
    currencies = http.get("/api/v3/currencies").json()
    codes = {c["currency"] for c in currencies}
    assert {"btc", "twd", "usdt", "eth"} <= codes
    assert all(m["base_unit"] in codes and m["quote_unit"] in codes for m in markets)


def test_ticker_and_batch_tickers(http: httpx.Client) -> None:
    one = http.get("/api/v3/ticker", params={"market": "btctwd"}).json()
    keys = {
        "market",
        "at",
        "buy",
        "buy_vol",
        "sell",
        "sell_vol",
        "open",
        "low",
        "high",
        "last",
        "vol",
    }
    assert keys <= set(one)
    assert Decimal(one["sell"]) > Decimal(one["buy"])
    assert Decimal(one["low"]) <= Decimal(one["last"]) <= Decimal(one["high"])
    batch = http.get(
        "/api/v3/tickers", params=[("markets[]", "btctwd"), ("markets[]", "ethusdt")]
    ).json()
    assert [t["market"] for t in batch] == ["btctwd", "ethusdt"]
    everything = http.get("/api/v3/tickers").json()
    assert len(everything) == 30
    bad = http.get("/api/v3/ticker", params={"market": "nosuchpair"})
    assert bad.status_code == 400
    assert bad.json() == {
        "success": False,
        "error": {"code": 1001, "message": "market 'nosuchpair' does not exist"},
    }


def test_depth(http: httpx.Client) -> None:
    ladder = http.get("/api/v3/depth", params={"market": "ethtwd", "limit": 5}).json()
    assert set(ladder) == {"timestamp", "last_update_version", "last_update_id", "asks", "bids"}
    asks = [Decimal(p) for p, _ in ladder["asks"]]
    bids = [Decimal(p) for p, _ in ladder["bids"]]
    assert len(asks) == len(bids) == 5
    assert asks == sorted(asks, reverse=True)  # sort_by_price: the ladder, best ask last
    assert bids == sorted(bids, reverse=True)
    assert asks[-1] > bids[0]
    plain = http.get(
        "/api/v3/depth", params={"market": "ethtwd", "limit": 3, "sort_by_price": "false"}
    ).json()
    assert [Decimal(p) for p, _ in plain["asks"]] == sorted(asks)[:3]  # best first
    assert http.get("/api/v3/depth", params={"market": "ethtwd", "limit": 301}).status_code == 400


def test_trades_and_k(sim: MaxSimulator, http: httpx.Client) -> None:
    sim.set_price("btctwd", "3000000")
    trades = http.get("/api/v3/trades", params={"market": "btctwd", "limit": 5}).json()
    assert 1 <= len(trades) <= 5
    assert trades[0]["price"] == "3000000.0"
    assert {"id", "price", "volume", "funds", "market", "side", "created_at"} <= set(trades[0])
    ids = [t["id"] for t in trades]
    assert ids == sorted(ids, reverse=True)
    old = trades[-1]["created_at"]
    earlier = http.get(
        "/api/v3/trades", params={"market": "btctwd", "timestamp": old, "limit": 50}
    ).json()
    assert all(t["created_at"] <= old for t in earlier)
    rows = http.get("/api/v3/k", params={"market": "btctwd", "period": 1, "limit": 3}).json()
    assert 1 <= len(rows) <= 3
    for ts, o, h, low, c, v in rows:
        assert ts % 60 == 0
        assert low <= min(o, c) <= max(o, c) <= h
        assert v > 0
    assert rows[-1][4] == 3_000_000.0  # the newest bar closes at the last trade
    for period in (5, 60, 1440, 10080):
        assert (
            http.get("/api/v3/k", params={"market": "btctwd", "period": period}).status_code == 200
        )
    assert http.get("/api/v3/k", params={"market": "btctwd", "period": 2}).status_code == 400


def test_status_and_unknown_paths(http: httpx.Client) -> None:
    status = http.get("/api/status/max-api").json()
    assert status["service"] == "max-api"
    assert status["status"] == "online"
    missing = http.get("/api/v3/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["success"] is False


def test_hundreds_of_markets() -> None:
    from aimax.exchange.simulator import SimulatorConfig

    with (
        MaxSimulator(SimulatorConfig(n_markets=300, history_seconds=0)) as sim,
        httpx.Client(base_url=sim.url, timeout=60) as http,
    ):
        markets = http.get("/api/v3/markets").json()
        assert len(markets) == 300
        names = [m["id"] for m in markets]
        tickers = http.get("/api/v3/tickers").json()
        assert [t["market"] for t in tickers] == names
