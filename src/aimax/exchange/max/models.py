"""Typed, immutable results of the MAX v3 endpoints.

Every price, volume, amount and fee is a :class:`~decimal.Decimal` (responses are
parsed with ``parse_float=Decimal`` and strings are converted directly: no float ever
touches money). Timestamps are kept as MAX sends them (integers: milliseconds for
orders and trades, seconds for k-lines). Each model keeps the JSON object it was built
from in ``raw`` (not compared, not shown) for fields this module does not type.

    >>> order = Order.from_json({"id": 1, "client_oid": "a1", "market": "btctwd",
    ...     "side": "buy", "ord_type": "limit", "state": "wait", "price": "100.5",
    ...     "volume": "0.25", "remaining_volume": "0.25", "executed_volume": "0"})
    >>> order.price, order.volume
    (Decimal('100.5'), Decimal('0.25'))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from aimax.errors import ExchangeError

__all__ = [
    "Account",
    "Currency",
    "KLine",
    "Market",
    "Order",
    "OrderBook",
    "PriceLevel",
    "PublicTrade",
    "Ticker",
    "Trade",
    "UserInfo",
]

JSON = Mapping[str, Any]


def _obj(data: object, what: str) -> JSON:
    if not isinstance(data, Mapping):
        raise ExchangeError(f"unexpected {what} in MAX response: {type(data).__name__}")
    return data


def _dec(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ExchangeError(f"MAX response field {name!r} is not a number: {value!r}")
    if isinstance(value, Decimal):
        return value
    try:
        # str() first: a float (never expected here) keeps its shortest repr.
        return Decimal(str(value))
    except InvalidOperation:
        raise ExchangeError(f"MAX response field {name!r} is not a number: {value!r}") from None


def _dec_opt(value: object, name: str) -> Decimal | None:
    return None if value is None or value == "" else _dec(value, name)


def _int_opt(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _str(data: JSON, *names: str, default: str = "") -> str:
    for name in names:
        value = data.get(name)
        if value is not None:
            return str(value)
    return default


@dataclass(frozen=True, slots=True, kw_only=True)
class Market:
    """One market from ``GET /api/v3/markets``."""

    id: str
    status: str
    base_unit: str
    quote_unit: str
    base_unit_precision: int
    quote_unit_precision: int
    min_base_amount: Decimal
    min_quote_amount: Decimal
    m_wallet_supported: bool = False
    raw: JSON = field(default_factory=dict, compare=False, repr=False, hash=False)

    @classmethod
    def from_json(cls, data: object) -> Market:
        """Build from MAX's JSON object (``status`` or ``market_status``)."""
        d = _obj(data, "market")
        return cls(
            id=_str(d, "id"),
            status=_str(d, "status", "market_status", default="active"),
            base_unit=_str(d, "base_unit"),
            quote_unit=_str(d, "quote_unit"),
            base_unit_precision=_int_opt(d.get("base_unit_precision")) or 0,
            quote_unit_precision=_int_opt(d.get("quote_unit_precision")) or 0,
            min_base_amount=_dec_opt(d.get("min_base_amount"), "min_base_amount") or Decimal(0),
            min_quote_amount=_dec_opt(d.get("min_quote_amount"), "min_quote_amount") or Decimal(0),
            m_wallet_supported=bool(d.get("m_wallet_supported", False)),
            raw=d,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Currency:
    """One currency from ``GET /api/v3/currencies``."""

    currency: str
    precision: int | None = None
    m_wallet_supported: bool = False
    raw: JSON = field(default_factory=dict, compare=False, repr=False, hash=False)

    @classmethod
    def from_json(cls, data: object) -> Currency:
        """Build from MAX's JSON object."""
        d = _obj(data, "currency")
        return cls(
            currency=_str(d, "currency", "id"),
            precision=_int_opt(d.get("precision")),
            m_wallet_supported=bool(d.get("m_wallet_supported", False)),
            raw=d,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Ticker:
    """A market's ticker (``/api/v3/ticker``, ``/api/v3/tickers``); ``at`` as MAX sends it."""

    market: str
    at: int | None
    buy: Decimal | None
    sell: Decimal | None
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    last: Decimal | None
    vol: Decimal | None
    buy_vol: Decimal | None = None
    sell_vol: Decimal | None = None
    vol_in_btc: Decimal | None = None
    vol_in_quote: Decimal | None = None
    raw: JSON = field(default_factory=dict, compare=False, repr=False, hash=False)

    @classmethod
    def from_json(cls, data: object, market: str | None = None) -> Ticker:
        """Build from MAX's JSON object (``market`` fills in when the body lacks it)."""
        d = _obj(data, "ticker")
        return cls(
            market=_str(d, "market", default=market or ""),
            at=_int_opt(d.get("at")),
            buy=_dec_opt(d.get("buy"), "buy"),
            sell=_dec_opt(d.get("sell"), "sell"),
            open=_dec_opt(d.get("open"), "open"),
            high=_dec_opt(d.get("high"), "high"),
            low=_dec_opt(d.get("low"), "low"),
            last=_dec_opt(d.get("last"), "last"),
            vol=_dec_opt(d.get("vol"), "vol"),
            buy_vol=_dec_opt(d.get("buy_vol"), "buy_vol"),
            sell_vol=_dec_opt(d.get("sell_vol"), "sell_vol"),
            vol_in_btc=_dec_opt(d.get("vol_in_btc"), "vol_in_btc"),
            vol_in_quote=_dec_opt(d.get("vol_in_quote"), "vol_in_quote"),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class PriceLevel:
    """One order-book level."""

    price: Decimal
    volume: Decimal

    @classmethod
    def from_json(cls, data: object) -> PriceLevel:
        """Build from ``[price, volume]`` (or ``{"price":..., "volume":...}``)."""
        if isinstance(data, Mapping):
            return cls(_dec(data.get("price"), "price"), _dec(data.get("volume"), "volume"))
        if isinstance(data, list | tuple) and len(data) >= 2:
            return cls(_dec(data[0], "price"), _dec(data[1], "volume"))
        raise ExchangeError(f"unexpected order-book level in MAX response: {data!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderBook:
    """``GET /api/v3/depth``: asks and bids as MAX orders them."""

    market: str
    timestamp: int | None
    last_update_id: int | None
    asks: tuple[PriceLevel, ...]
    bids: tuple[PriceLevel, ...]
    raw: JSON = field(default_factory=dict, compare=False, repr=False, hash=False)

    @classmethod
    def from_json(cls, data: object, market: str = "") -> OrderBook:
        """Build from MAX's JSON object."""
        d = _obj(data, "order book")
        return cls(
            market=market,
            timestamp=_int_opt(d.get("timestamp")),
            last_update_id=_int_opt(d.get("last_update_id", d.get("last_update_version"))),
            asks=tuple(PriceLevel.from_json(level) for level in d.get("asks") or ()),
            bids=tuple(PriceLevel.from_json(level) for level in d.get("bids") or ()),
            raw=d,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicTrade:
    """A public trade from ``GET /api/v3/trades``."""

    id: int
    market: str
    price: Decimal
    volume: Decimal
    funds: Decimal | None
    side: str
    created_at: int | None
    raw: JSON = field(default_factory=dict, compare=False, repr=False, hash=False)

    @classmethod
    def from_json(cls, data: object) -> PublicTrade:
        """Build from MAX's JSON object."""
        d = _obj(data, "trade")
        return cls(
            id=_int_opt(d.get("id")) or 0,
            market=_str(d, "market"),
            price=_dec(d.get("price"), "price"),
            volume=_dec(d.get("volume"), "volume"),
            funds=_dec_opt(d.get("funds"), "funds"),
            side=_str(d, "side"),
            created_at=_int_opt(d.get("created_at")),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class KLine:
    """One k-line row ``[timestamp, open, high, low, close, volume]`` (timestamp in s)."""

    timestamp: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @classmethod
    def from_json(cls, data: object) -> KLine:
        """Build from MAX's six-element row."""
        if not isinstance(data, list | tuple) or len(data) < 6:
            raise ExchangeError(f"unexpected k-line row in MAX response: {data!r}")
        return cls(
            _int_opt(data[0]) or 0,
            _dec(data[1], "open"),
            _dec(data[2], "high"),
            _dec(data[3], "low"),
            _dec(data[4], "close"),
            _dec(data[5], "volume"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A balance from ``GET /api/v3/wallet/{wallet_type}/accounts``."""

    currency: str
    balance: Decimal
    locked: Decimal
    staked: Decimal | None = None
    raw: JSON = field(default_factory=dict, compare=False, repr=False, hash=False)

    @classmethod
    def from_json(cls, data: object) -> Account:
        """Build from MAX's JSON object."""
        d = _obj(data, "account")
        return cls(
            currency=_str(d, "currency"),
            balance=_dec(d.get("balance", "0"), "balance"),
            locked=_dec(d.get("locked", "0"), "locked"),
            staked=_dec_opt(d.get("staked"), "staked"),
            raw=d,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """An order (create, get, open orders, cancel results).

    ``price`` is ``None`` for market orders; ``state`` is MAX's (``wait``, ``done``,
    ``cancel``, ``convert``, ...). Create and cancel are asynchronous on MAX: a returned
    order is an acceptance, confirm its fate with ``get_order``.
    """

    id: int
    client_oid: str | None
    market: str
    side: str
    ord_type: str
    state: str
    price: Decimal | None
    stop_price: Decimal | None
    avg_price: Decimal | None
    volume: Decimal
    remaining_volume: Decimal
    executed_volume: Decimal
    trades_count: int = 0
    group_id: int | None = None
    created_at: int | None = None
    updated_at: int | None = None
    wallet_type: str | None = None
    raw: JSON = field(default_factory=dict, compare=False, repr=False, hash=False)

    @classmethod
    def from_json(cls, data: object) -> Order:
        """Build from MAX's JSON object."""
        d = _obj(data, "order")
        volume = _dec(d.get("volume"), "volume")
        executed = _dec_opt(d.get("executed_volume"), "executed_volume") or Decimal(0)
        remaining = _dec_opt(d.get("remaining_volume"), "remaining_volume")
        client_oid = d.get("client_oid")
        return cls(
            id=_int_opt(d.get("id")) or 0,
            client_oid=None if client_oid is None else str(client_oid),
            market=_str(d, "market"),
            side=_str(d, "side"),
            ord_type=_str(d, "ord_type"),
            state=_str(d, "state"),
            price=_dec_opt(d.get("price"), "price"),
            stop_price=_dec_opt(d.get("stop_price"), "stop_price"),
            avg_price=_dec_opt(d.get("avg_price"), "avg_price"),
            volume=volume,
            remaining_volume=volume - executed if remaining is None else remaining,
            executed_volume=executed,
            trades_count=_int_opt(d.get("trades_count", d.get("trade_count"))) or 0,
            group_id=_int_opt(d.get("group_id")),
            created_at=_int_opt(d.get("created_at")),
            updated_at=_int_opt(d.get("updated_at")),
            wallet_type=None if d.get("wallet_type") is None else str(d.get("wallet_type")),
            raw=d,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Trade:
    """One of the account's own trades (``GET /api/v3/wallet/{wallet_type}/trades``)."""

    id: int
    order_id: int | None
    market: str
    side: str
    price: Decimal
    volume: Decimal
    funds: Decimal | None
    fee: Decimal | None
    fee_currency: str | None
    liquidity: str | None
    created_at: int | None
    raw: JSON = field(default_factory=dict, compare=False, repr=False, hash=False)

    @classmethod
    def from_json(cls, data: object) -> Trade:
        """Build from MAX's JSON object."""
        d = _obj(data, "trade")
        fee_currency = d.get("fee_currency")
        liquidity = d.get("liquidity")
        if liquidity is None and isinstance(d.get("maker"), bool):
            liquidity = "maker" if d["maker"] else "taker"
        return cls(
            id=_int_opt(d.get("id")) or 0,
            order_id=_int_opt(d.get("order_id")),
            market=_str(d, "market"),
            side=_str(d, "side"),
            price=_dec(d.get("price"), "price"),
            volume=_dec(d.get("volume"), "volume"),
            funds=_dec_opt(d.get("funds"), "funds"),
            fee=_dec_opt(d.get("fee"), "fee"),
            fee_currency=None if fee_currency is None else str(fee_currency),
            liquidity=None if liquidity is None else str(liquidity),
            created_at=_int_opt(d.get("created_at")),
            raw=d,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    """``GET /api/v3/info``: the account profile (``raw`` holds the rest)."""

    level: int | None
    vip_level: int | None
    m_wallet_enabled: bool
    raw: JSON = field(default_factory=dict, compare=False, repr=False, hash=False)

    @classmethod
    def from_json(cls, data: object) -> UserInfo:
        """Build from MAX's JSON object."""
        d = _obj(data, "info")
        vip = d.get("current_vip_level")
        vip_level = _int_opt(vip.get("level")) if isinstance(vip, Mapping) else _int_opt(vip)
        return cls(
            level=_int_opt(d.get("level")),
            vip_level=vip_level,
            m_wallet_enabled=bool(d.get("m_wallet_enabled", False)),
            raw=d,
        )
