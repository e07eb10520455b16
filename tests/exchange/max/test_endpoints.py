"""Request building and validation (nothing is sent), and the typed models."""

from __future__ import annotations

import json
import types
from decimal import Decimal

import pytest

import aimax.exchange.max as pkg
from aimax.errors import ConfigurationError, ExchangeError
from aimax.exchange.max import (
    Account,
    KLine,
    Market,
    Order,
    OrderBook,
    Ticker,
    Trade,
    UserInfo,
)
from aimax.exchange.max.endpoints import Endpoints, new_client_oid


def test_all_lists_the_public_names() -> None:
    public = {n for n in vars(pkg) if not n.startswith("_")}
    modules = {n for n in public if isinstance(getattr(pkg, n), types.ModuleType)}
    assert set(pkg.__all__) == public - modules
    assert len(pkg.__all__) == len(set(pkg.__all__))


def test_create_order_params_and_generated_client_oid() -> None:
    e = Endpoints()
    call = e.create_order("btctwd", "buy", Decimal("0.0100"), 1500000)
    assert call.method == "POST"
    assert call.path == "/api/v3/wallet/spot/order"
    assert call.private
    assert call.market == "btctwd"
    assert dict(call.params) == {
        "market": "btctwd",
        "side": "buy",
        "volume": "0.0100",
        "price": "1500000",
        "ord_type": "limit",
        "client_oid": call.client_oid,
    }
    assert call.client_oid is not None
    assert 1 <= len(call.client_oid) <= 36
    oids = {new_client_oid() for _ in range(1000)}
    assert len(oids) == 1000
    assert all(len(o) <= 36 for o in oids)
    m = Endpoints(wallet_type="m").create_order(
        "ethtwd", "sell", "1", ord_type="stop_market", stop_price="9E+4", group_id=7
    )
    assert m.path == "/api/v3/wallet/m/order"
    assert m.params["stop_price"] == "90000"
    assert m.params["group_id"] == 7
    assert "price" not in m.params


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"volume": "-1"}, "volume must be a positive"),
        ({"volume": "0"}, "volume must be a positive"),
        ({"volume": 0.1}, "never a float"),
        ({"volume": "abc"}, "not a number"),
        ({"volume": "NaN"}, "positive finite"),
        ({"volume": True}, "never a float"),
        ({"price": "-5"}, "price must be a positive"),
        ({"price": None}, "needs a price"),
        ({"side": "long"}, "side must be one of"),
        ({"ord_type": "fok"}, "ord_type must be one of"),
        ({"ord_type": "market"}, "takes no price"),
        ({"ord_type": "stop_limit"}, "needs a stop_price"),
        ({"stop_price": "5"}, "takes no stop_price"),
        ({"client_oid": "x" * 37}, "client_oid must be 1 to 36"),
        ({"client_oid": "has space"}, "client_oid"),
        ({"client_oid": ""}, "client_oid"),
        ({"market": "BTC/TWD"}, "market must be a MAX market id"),
        ({"group_id": 0}, "group_id must be a positive integer"),
    ],
)
def test_create_order_validation(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {
        "market": "btctwd",
        "side": "buy",
        "volume": "1",
        "price": "100",
    }
    args.update(kwargs)
    with pytest.raises(ConfigurationError, match=match):
        Endpoints().create_order(**args)  # type: ignore[arg-type]


def test_unknown_market_once_markets_are_known() -> None:
    e = Endpoints()
    e.ticker("zzztwd")  # shape is fine and the list is not known yet: accepted
    e.known_markets = frozenset({"btctwd", "ethtwd"})
    with pytest.raises(ConfigurationError, match="unknown market 'zzztwd'"):
        e.ticker("zzztwd")
    with pytest.raises(ConfigurationError, match="unknown market"):
        e.tickers(["btctwd", "zzztwd"])
    with pytest.raises(ConfigurationError, match="unknown market"):
        e.create_order("zzztwd", "buy", "1", "1")
    assert e.ticker("btctwd").market == "btctwd"


def test_other_validation() -> None:
    e = Endpoints()
    with pytest.raises(ConfigurationError, match="wallet_type"):
        Endpoints(wallet_type="margin")
    with pytest.raises(ConfigurationError, match="exactly one"):
        e.get_order()
    with pytest.raises(ConfigurationError, match="exactly one"):
        e.cancel_order(id=1, client_oid="a")
    with pytest.raises(ConfigurationError, match="id must be a positive"):
        e.get_order(id=-3)
    with pytest.raises(ConfigurationError, match="period"):
        e.k("btctwd", period=7)
    with pytest.raises(ConfigurationError, match="markets must be a non-empty list"):
        e.tickers([])
    with pytest.raises(ConfigurationError, match="markets must be a non-empty list"):
        e.tickers("btctwd")
    with pytest.raises(ConfigurationError, match="limit"):
        e.depth("btctwd", limit=0)
    with pytest.raises(ConfigurationError, match="order_by"):
        e.open_orders(order_by="up")
    with pytest.raises(ConfigurationError, match="currency"):
        e.accounts(currency="BTC!")
    with pytest.raises(ConfigurationError, match="sort_by_price"):
        e.depth("btctwd", sort_by_price="yes")  # type: ignore[arg-type]


def test_paths_and_kinds_of_every_endpoint() -> None:
    e = Endpoints()
    calls = {
        "markets": e.markets(),
        "currencies": e.currencies(),
        "timestamp": e.timestamp(),
        "tickers": e.tickers(["btctwd", "ethtwd"]),
        "ticker": e.ticker("btctwd"),
        "depth": e.depth("btctwd", limit=5, sort_by_price=True),
        "trades": e.trades("btctwd", timestamp=1, limit=2),
        "k": e.k("btctwd", period=5, limit=3, timestamp=10),
        "info": e.info(),
        "accounts": e.accounts(currency="btc"),
        "cancel": e.cancel_order(client_oid="abc"),
        "bulk": e.cancel_orders(market="btctwd", side="sell", group_id=3),
        "get": e.get_order(id=5),
        "open": e.open_orders("btctwd", timestamp=1, order_by="asc", limit=10),
        "mine": e.my_trades("btctwd", timestamp=1, from_id=2, order_by="desc", limit=3),
        "closed": e.closed_orders("btctwd", limit=2),
        "history": e.order_history(from_id=3),
        "otrades": e.order_trades(order_id=9),
    }
    shape = {name: (c.method, c.path, c.private) for name, c in calls.items()}
    assert shape == {
        "markets": ("GET", "/api/v3/markets", False),
        "currencies": ("GET", "/api/v3/currencies", False),
        "timestamp": ("GET", "/api/v3/timestamp", False),
        "tickers": ("GET", "/api/v3/tickers", False),
        "ticker": ("GET", "/api/v3/ticker", False),
        "depth": ("GET", "/api/v3/depth", False),
        "trades": ("GET", "/api/v3/trades", False),
        "k": ("GET", "/api/v3/k", False),
        "info": ("GET", "/api/v3/info", True),
        "accounts": ("GET", "/api/v3/wallet/spot/accounts", True),
        "cancel": ("DELETE", "/api/v3/order", True),
        "bulk": ("DELETE", "/api/v3/wallet/spot/orders", True),
        "get": ("GET", "/api/v3/order", True),
        "open": ("GET", "/api/v3/wallet/spot/orders/open", True),
        "mine": ("GET", "/api/v3/wallet/spot/trades", True),
        "closed": ("GET", "/api/v3/wallet/spot/orders/closed", True),
        "history": ("GET", "/api/v3/wallet/spot/orders/history", True),
        "otrades": ("GET", "/api/v3/order/trades", True),
    }
    assert calls["otrades"].params == {"order_id": 9}
    assert calls["history"].params == {"from_id": 3}
    # the limiter's own mapping agrees: public -> market_data, create -> order, ...
    from aimax.ratelimit import max_kind_for

    kinds = {name: max_kind_for(c.method, c.path) for name, c in calls.items()}
    public = {"markets", "currencies", "timestamp", "tickers", "ticker", "depth", "trades", "k"}
    assert {n for n, k in kinds.items() if k == "market_data"} == public
    assert {n for n, k in kinds.items() if k == "cancel"} == {"cancel", "bulk"}
    assert max_kind_for("POST", e.create_order("btctwd", "buy", "1", "1").path) == "order"
    assert calls["tickers"].params == {"markets": ["btctwd", "ethtwd"]}
    assert calls["depth"].params == {"market": "btctwd", "limit": 5, "sort_by_price": True}


# ----------------------------------------------------------------------- models


def _load(text: str) -> object:
    return json.loads(text, parse_float=Decimal)


def test_models_keep_exact_decimals() -> None:
    order = Order.from_json(
        _load(
            '{"id": 7, "client_oid": "c", "market": "btctwd", "side": "sell",'
            ' "ord_type": "limit", "state": "wait", "price": "0.1", "volume": 0.3,'
            ' "executed_volume": "0.1", "remaining_volume": null, "avg_price": "0",'
            ' "trades_count": 1, "created_at": 1700000000000}'
        )
    )
    assert order.price == Decimal("0.1")
    assert order.volume == Decimal("0.3")  # a JSON number, parsed as Decimal: exact
    assert order.remaining_volume == Decimal("0.2")
    assert isinstance(order.volume, Decimal)
    tickers = Ticker.from_json(_load('{"market": "btctwd", "last": "1.10", "buy": null}'))
    assert tickers.last == Decimal("1.10")
    assert tickers.buy is None
    book = OrderBook.from_json(
        _load('{"timestamp": 1, "last_update_id": 9, "asks": [["2.5", "1"]], "bids": []}'),
        market="btctwd",
    )
    assert book.asks[0].price == Decimal("2.5")
    assert book.last_update_id == 9
    k = KLine.from_json(_load("[1700000000, 1.5, 2, 1, 1.75, 0.001]"))
    assert k.close == Decimal("1.75")
    assert k.volume == Decimal("0.001")
    acc = Account.from_json({"currency": "twd", "balance": "100.5", "locked": "0"})
    assert acc.balance == Decimal("100.5")
    trade = Trade.from_json(
        {"id": 1, "order_id": 2, "market": "btctwd", "side": "bid", "price": "3",
         "volume": "1", "fee": "0.0015", "fee_currency": "twd", "liquidity": "maker"}
    )  # fmt: skip
    assert trade.fee == Decimal("0.0015")
    info = UserInfo.from_json({"level": 2, "current_vip_level": {"level": 1}})
    assert info.vip_level == 1
    market = Market.from_json(
        {"id": "btctwd", "market_status": "active", "base_unit": "btc", "quote_unit": "twd",
         "base_unit_precision": 8, "quote_unit_precision": 1, "min_base_amount": "0.0001",
         "min_quote_amount": "250"}
    )  # fmt: skip
    assert market.min_quote_amount == Decimal(250)
    assert market.status == "active"
    assert "raw" not in repr(market)


def test_models_reject_garbage() -> None:
    with pytest.raises(ExchangeError):
        Order.from_json([1, 2])
    with pytest.raises(ExchangeError, match="price"):
        Trade.from_json({"price": "abc", "volume": "1"})
    with pytest.raises(ExchangeError):
        KLine.from_json([1, 2])
    with pytest.raises(ExchangeError, match="not a number"):
        Account.from_json({"currency": "x", "balance": True, "locked": "0"})


def test_ticker_parses_vol_in_quote_and_tolerates_its_absence() -> None:
    """Issue 15: MAX v3 tickers carry ``vol_in_quote``; older bodies lack it."""
    full = Ticker.from_json(
        {"market": "btctwd", "at": 1700000000, "buy": "3000000.0", "buy_vol": "0.5",
         "sell": "3000100.0", "sell_vol": "0.25", "open": "2990000.0", "low": "2980000.0",
         "high": "3010000.0", "last": "3000000.0", "vol": "12.5", "vol_in_btc": "12.5",
         "vol_in_quote": "37500000.0"}
    )  # fmt: skip
    assert full.vol_in_quote == Decimal("37500000.0")
    assert isinstance(full.vol_in_quote, Decimal)
    old = Ticker.from_json({"market": "btctwd", "last": "1.1", "vol": "2"})
    assert old.vol_in_quote is None
