"""The MAX v3 endpoints as pure request descriptions, validated before anything is sent.

:class:`Endpoints` turns a method call into a :class:`Call`: HTTP method, path,
params (decimal strings for prices and volumes), whether it is signed, the market it
concerns (the limiter's ``pair``) and the parser of its answer. It raises
:class:`~aimax.errors.ConfigurationError` naming the bad value for anything MAX would
reject on sight: unknown market (once the market list is known), non-positive volume
or price, float amounts, bad side or order type, missing price, over-long client_oid.
The async client executes calls; the sync facade runs the async client: the endpoint
logic lives here once.

    >>> call = Endpoints().create_order("btctwd", "buy", "0.01", "1500000",
    ...                                 client_oid="my-1")
    >>> call.method, call.path, dict(call.params)["volume"], call.private
    ('POST', '/api/v3/wallet/spot/order', '0.01', True)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from aimax.errors import ConfigurationError, ExchangeError
from aimax.exchange.max.models import (
    Account,
    Currency,
    KLine,
    Market,
    Order,
    OrderBook,
    PublicTrade,
    Ticker,
    Trade,
    UserInfo,
)
from aimax.exchange.max.signing import ParamValue

__all__ = [
    "K_PERIODS",
    "ORDER_TYPES",
    "SIDES",
    "WALLET_TYPES",
    "Amount",
    "Call",
    "CancelResult",
    "Endpoints",
    "new_client_oid",
]

T = TypeVar("T")

Amount = Decimal | int | str
"""A price or volume: a Decimal, an int or a decimal string; never a float."""

SIDES = frozenset({"buy", "sell"})
ORDER_TYPES = frozenset({"market", "limit", "stop_market", "stop_limit", "post_only", "ioc_limit"})
WALLET_TYPES = frozenset({"spot", "m"})
K_PERIODS = frozenset({1, 5, 15, 30, 60, 120, 240, 360, 720, 1440, 4320, 10080})
_NEEDS_PRICE = frozenset({"limit", "stop_limit", "post_only", "ioc_limit"})
_NEEDS_STOP = frozenset({"stop_market", "stop_limit"})
_MARKET_RE = re.compile(r"^[a-z0-9]{2,32}$")
_CLIENT_OID_RE = re.compile(r"^[\x21-\x7e]{1,36}$")  # printable ASCII, no spaces
_MAX_CLIENT_OID = 36


def new_client_oid() -> str:
    """A fresh client order id: 32 hex characters (MAX allows at most 36)."""
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class CancelResult:
    """One cancellation: ``accepted`` unless MAX reported an ``error`` for it."""

    accepted: bool
    order: Order | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request to make: everything the transport needs, and how to read the answer."""

    method: str
    path: str
    params: Mapping[str, ParamValue]
    private: bool
    parse: Callable[[Any], T]
    market: str | None = None

    @property
    def client_oid(self) -> str | None:
        """The ``client_oid`` param, if the call carries one."""
        value = self.params.get("client_oid")
        return value if isinstance(value, str) else None


# ----------------------------------------------------------------------- parsers


def _list_of(parse: Callable[[Any], T], what: str) -> Callable[[Any], list[T]]:
    def parse_list(data: Any) -> list[T]:
        if not isinstance(data, list):
            raise ExchangeError(f"expected a list of {what} from MAX, got {type(data).__name__}")
        return [parse(item) for item in data]

    return parse_list


def _parse_timestamp(data: Any) -> int:
    value = data.get("timestamp") if isinstance(data, Mapping) else data
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float | str):
        raise ExchangeError(f"unexpected /api/v3/timestamp answer: {data!r}")
    try:
        return int(Decimal(str(value)))
    except InvalidOperation:
        raise ExchangeError(f"unexpected /api/v3/timestamp answer: {data!r}") from None


def _parse_tickers(data: Any) -> list[Ticker]:
    if isinstance(data, Mapping):  # some servers answer {"btctwd": {...}, ...}
        return [Ticker.from_json(v, market=str(k)) for k, v in data.items()]
    return _list_of(Ticker.from_json, "tickers")(data)


def _parse_cancel(data: Any) -> CancelResult:
    if isinstance(data, Mapping) and "id" in data and "state" in data:
        return CancelResult(accepted=True, order=Order.from_json(data))
    if isinstance(data, Mapping):
        order = data.get("order")
        error = data.get("error")
        return CancelResult(
            accepted=error is None and data.get("success", True) is not False,
            order=Order.from_json(order) if isinstance(order, Mapping) else None,
            error=None if error is None else str(error),
        )
    raise ExchangeError(f"unexpected cancel answer from MAX: {type(data).__name__}")


def _parse_bulk_cancel(data: Any) -> list[CancelResult]:
    if isinstance(data, Mapping) and isinstance(data.get("orders"), list):
        data = data["orders"]
    return _list_of(_parse_cancel, "cancel results")(data)


# ------------------------------------------------------------------- validation


def _market(value: object, known: Collection[str] | None) -> str:
    if not isinstance(value, str) or not _MARKET_RE.match(value):
        raise ConfigurationError(
            f"market must be a MAX market id (lowercase letters and digits, e.g. 'btctwd'), "
            f"got {value!r}"
        )
    if known is not None and value not in known:
        raise ConfigurationError(f"unknown market {value!r}: MAX lists {len(known)} markets")
    return value


def _amount(value: object, name: str) -> str:
    if isinstance(value, bool | float):
        raise ConfigurationError(
            f"{name} must be a Decimal, int or decimal string (never a float), got {value!r}"
        )
    if not isinstance(value, Decimal | int | str):
        raise ConfigurationError(f"{name} must be a Decimal, int or string, got {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigurationError(f"{name} is not a number: {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise ConfigurationError(f"{name} must be a positive finite number, got {value!r}")
    return format(number, "f")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return value


def _choice(value: object, name: str, allowed: Collection[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ConfigurationError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value


def _client_oid(value: object) -> str:
    if not isinstance(value, str) or not _CLIENT_OID_RE.match(value):
        raise ConfigurationError(
            f"client_oid must be 1 to {_MAX_CLIENT_OID} printable ASCII characters "
            f"without spaces, got {value!r}"
        )
    return value


def _one_of_id(order_id: object, client_oid: object) -> dict[str, ParamValue]:
    if (order_id is None) == (client_oid is None):
        raise ConfigurationError("give exactly one of id or client_oid")
    if order_id is not None:
        return {"id": _positive_int(order_id, "id")}
    return {"client_oid": _client_oid(client_oid)}


def _order_by(value: object) -> str:
    return _choice(value, "order_by", frozenset({"asc", "desc"}))


# ---------------------------------------------------------------------- endpoints


class Endpoints:
    """Builds validated :class:`Call` objects for every supported v3 endpoint.

    ``known_markets`` (set by the client once it has loaded ``/api/v3/markets``)
    enables the unknown-market check; until then only the id's shape is checked.
    """

    def __init__(self, *, wallet_type: str = "spot") -> None:
        self.wallet_type = _choice(wallet_type, "wallet_type", WALLET_TYPES)
        self.known_markets: frozenset[str] | None = None

    def _m(self, market: object) -> str:
        return _market(market, self.known_markets)

    def _wallet(self, suffix: str) -> str:
        return f"/api/v3/wallet/{self.wallet_type}/{suffix}"

    # ------------------------------------------------------------------ public

    def markets(self) -> Call[list[Market]]:
        """``GET /api/v3/markets``."""
        return Call("GET", "/api/v3/markets", {}, False, _list_of(Market.from_json, "markets"))

    def currencies(self) -> Call[list[Currency]]:
        """``GET /api/v3/currencies``."""
        return Call(
            "GET", "/api/v3/currencies", {}, False, _list_of(Currency.from_json, "currencies")
        )

    def timestamp(self) -> Call[int]:
        """``GET /api/v3/timestamp``: server time in Unix seconds."""
        return Call("GET", "/api/v3/timestamp", {}, False, _parse_timestamp)

    def tickers(self, markets: Sequence[str]) -> Call[list[Ticker]]:
        """``GET /api/v3/tickers?markets[]=...`` (one call for many markets)."""
        if isinstance(markets, str) or not markets:
            raise ConfigurationError(
                f"markets must be a non-empty list of market ids, got {markets!r}"
            )
        ids = [self._m(m) for m in markets]
        return Call("GET", "/api/v3/tickers", {"markets": ids}, False, _parse_tickers)

    def ticker(self, market: str) -> Call[Ticker]:
        """``GET /api/v3/ticker?market=``."""
        m = self._m(market)
        return Call(
            "GET",
            "/api/v3/ticker",
            {"market": m},
            False,
            lambda data: Ticker.from_json(data, market=m),
            market=m,
        )

    def depth(
        self, market: str, *, limit: int | None = None, sort_by_price: bool | None = None
    ) -> Call[OrderBook]:
        """``GET /api/v3/depth?market=&limit=&sort_by_price=``."""
        m = self._m(market)
        params: dict[str, ParamValue] = {"market": m}
        if limit is not None:
            params["limit"] = _positive_int(limit, "limit")
        if sort_by_price is not None:
            if not isinstance(sort_by_price, bool):
                raise ConfigurationError(f"sort_by_price must be a bool, got {sort_by_price!r}")
            params["sort_by_price"] = sort_by_price
        return Call(
            "GET",
            "/api/v3/depth",
            params,
            False,
            lambda data: OrderBook.from_json(data, market=m),
            market=m,
        )

    def trades(
        self, market: str, *, timestamp: int | None = None, limit: int | None = None
    ) -> Call[list[PublicTrade]]:
        """``GET /api/v3/trades?market=&timestamp=&limit=``."""
        m = self._m(market)
        params: dict[str, ParamValue] = {"market": m}
        if timestamp is not None:
            params["timestamp"] = _positive_int(timestamp, "timestamp")
        if limit is not None:
            params["limit"] = _positive_int(limit, "limit")
        return Call(
            "GET",
            "/api/v3/trades",
            params,
            False,
            _list_of(PublicTrade.from_json, "trades"),
            market=m,
        )

    def k(
        self,
        market: str,
        *,
        period: int = 1,
        limit: int | None = None,
        timestamp: int | None = None,
    ) -> Call[list[KLine]]:
        """``GET /api/v3/k?market=&period=&limit=&timestamp=`` (period in minutes)."""
        m = self._m(market)
        if isinstance(period, bool) or period not in K_PERIODS:
            raise ConfigurationError(
                f"period must be one of {sorted(K_PERIODS)} minutes, got {period!r}"
            )
        params: dict[str, ParamValue] = {"market": m, "period": period}
        if limit is not None:
            params["limit"] = _positive_int(limit, "limit")
        if timestamp is not None:
            params["timestamp"] = _positive_int(timestamp, "timestamp")
        return Call("GET", "/api/v3/k", params, False, _list_of(KLine.from_json, "k"), market=m)

    # ----------------------------------------------------------------- private

    def info(self) -> Call[UserInfo]:
        """``GET /api/v3/info``."""
        return Call("GET", "/api/v3/info", {}, True, UserInfo.from_json)

    def accounts(self, *, currency: str | None = None) -> Call[list[Account]]:
        """``GET /api/v3/wallet/{wallet_type}/accounts``."""
        params: dict[str, ParamValue] = {}
        if currency is not None:
            if not isinstance(currency, str) or not re.match(r"^[a-z0-9]{1,16}$", currency):
                raise ConfigurationError(f"currency must be a MAX currency id, got {currency!r}")
            params["currency"] = currency
        return Call(
            "GET", self._wallet("accounts"), params, True, _list_of(Account.from_json, "accounts")
        )

    def create_order(
        self,
        market: str,
        side: str,
        volume: Amount,
        price: Amount | None = None,
        *,
        ord_type: str = "limit",
        client_oid: str | None = None,
        stop_price: Amount | None = None,
        group_id: int | None = None,
    ) -> Call[Order]:
        """``POST /api/v3/wallet/{wallet_type}/order``; a ``client_oid`` is always set."""
        m = self._m(market)
        params: dict[str, ParamValue] = {
            "market": m,
            "side": _choice(side, "side", SIDES),
            "volume": _amount(volume, "volume"),
        }
        kind = _choice(ord_type, "ord_type", ORDER_TYPES)
        if kind in _NEEDS_PRICE:
            if price is None:
                raise ConfigurationError(f"a {kind} order needs a price")
            params["price"] = _amount(price, "price")
        elif price is not None:
            raise ConfigurationError(f"a {kind} order takes no price, got {price!r}")
        if kind in _NEEDS_STOP:
            if stop_price is None:
                raise ConfigurationError(f"a {kind} order needs a stop_price")
            params["stop_price"] = _amount(stop_price, "stop_price")
        elif stop_price is not None:
            raise ConfigurationError(f"a {kind} order takes no stop_price, got {stop_price!r}")
        params["ord_type"] = kind
        params["client_oid"] = new_client_oid() if client_oid is None else _client_oid(client_oid)
        if group_id is not None:
            params["group_id"] = _positive_int(group_id, "group_id")
        return Call("POST", self._wallet("order"), params, True, Order.from_json, market=m)

    def cancel_order(
        self, *, id: int | None = None, client_oid: str | None = None
    ) -> Call[CancelResult]:
        """``DELETE /api/v3/order`` by ``id`` or ``client_oid``."""
        return Call("DELETE", "/api/v3/order", _one_of_id(id, client_oid), True, _parse_cancel)

    def cancel_orders(
        self, *, market: str | None = None, side: str | None = None, group_id: int | None = None
    ) -> Call[list[CancelResult]]:
        """``DELETE /api/v3/wallet/{wallet_type}/orders`` (bulk, filtered)."""
        params: dict[str, ParamValue] = {}
        m = None
        if market is not None:
            m = params["market"] = self._m(market)
        if side is not None:
            params["side"] = _choice(side, "side", SIDES)
        if group_id is not None:
            params["group_id"] = _positive_int(group_id, "group_id")
        return Call("DELETE", self._wallet("orders"), params, True, _parse_bulk_cancel, market=m)

    def get_order(self, *, id: int | None = None, client_oid: str | None = None) -> Call[Order]:
        """``GET /api/v3/order`` by ``id`` or ``client_oid``."""
        return Call("GET", "/api/v3/order", _one_of_id(id, client_oid), True, Order.from_json)

    def order_trades(
        self, *, order_id: int | None = None, client_oid: str | None = None
    ) -> Call[list[Trade]]:
        """``GET /api/v3/order/trades`` by ``order_id`` or ``client_oid``."""
        params = _one_of_id(order_id, client_oid)
        if "id" in params:
            params = {"order_id": params["id"]}
        return Call(
            "GET", "/api/v3/order/trades", params, True, _list_of(Trade.from_json, "trades")
        )

    def _orders(
        self,
        suffix: str,
        market: str | None,
        *,
        timestamp: int | None,
        order_by: str | None,
        limit: int | None,
        from_id: int | None = None,
    ) -> Call[list[Order]]:
        params: dict[str, ParamValue] = {}
        m = None
        if market is not None:
            m = params["market"] = self._m(market)
        if timestamp is not None:
            params["timestamp"] = _positive_int(timestamp, "timestamp")
        if from_id is not None:
            params["from_id"] = _positive_int(from_id, "from_id")
        if order_by is not None:
            params["order_by"] = _order_by(order_by)
        if limit is not None:
            params["limit"] = _positive_int(limit, "limit")
        return Call(
            "GET",
            self._wallet(suffix),
            params,
            True,
            _list_of(Order.from_json, "orders"),
            market=m,
        )

    def open_orders(
        self,
        market: str | None = None,
        *,
        timestamp: int | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> Call[list[Order]]:
        """``GET /api/v3/wallet/{wallet_type}/orders/open``."""
        return self._orders(
            "orders/open", market, timestamp=timestamp, order_by=order_by, limit=limit
        )

    def closed_orders(
        self,
        market: str | None = None,
        *,
        timestamp: int | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> Call[list[Order]]:
        """``GET /api/v3/wallet/{wallet_type}/orders/closed`` (done and cancelled)."""
        return self._orders(
            "orders/closed", market, timestamp=timestamp, order_by=order_by, limit=limit
        )

    def order_history(
        self,
        market: str | None = None,
        *,
        from_id: int | None = None,
        limit: int | None = None,
    ) -> Call[list[Order]]:
        """``GET /api/v3/wallet/{wallet_type}/orders/history`` (ascending from ``from_id``)."""
        return self._orders(
            "orders/history", market, timestamp=None, order_by=None, limit=limit, from_id=from_id
        )

    def my_trades(
        self,
        market: str | None = None,
        *,
        timestamp: int | None = None,
        from_id: int | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> Call[list[Trade]]:
        """``GET /api/v3/wallet/{wallet_type}/trades``."""
        params: dict[str, ParamValue] = {}
        m = None
        if market is not None:
            m = params["market"] = self._m(market)
        if timestamp is not None:
            params["timestamp"] = _positive_int(timestamp, "timestamp")
        if from_id is not None:
            params["from_id"] = _positive_int(from_id, "from_id")
        if order_by is not None:
            params["order_by"] = _order_by(order_by)
        if limit is not None:
            params["limit"] = _positive_int(limit, "limit")
        return Call(
            "GET",
            self._wallet("trades"),
            params,
            True,
            _list_of(Trade.from_json, "trades"),
            market=m,
        )
