"""The simulated exchange's state as a pure core: markets, books, accounts, orders.

No threads, no I/O; every call takes ``now`` (Unix seconds) and the caller (the HTTP
layer) serialises access with one lock. Amounts are :class:`~decimal.Decimal` and
leave as strings in MAX's JSON shapes.

Market model: each market's mid price follows a seeded geometric random walk, one
step every ``price_tick`` seconds, caught up lazily when the market is touched. After
each step a synthetic order book (``book_levels`` per side around the mid) is laid
out afresh and the synthetic crowd may trade at the touch; those public trades feed
the k-lines (1-minute candles aggregated to any MAX period). User orders rest in the
book with price-time priority, take liquidity from the synthetic levels and from other
users' orders, and are filled as makers when the walk moves across them. Stop orders
wait (state ``wait``) until the last price reaches their ``stop_price``.

Create is answered the way MAX does (asynchronously): the response is the accepted
order (state ``wait``, nothing executed); the matching has happened by the time the
client asks ``GET /api/v3/order``.

JSON shapes (v3): timestamps of orders and trades in milliseconds; ``/timestamp``,
ticker ``at``, depth ``timestamp`` and k-line rows in seconds.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal, InvalidOperation

from aimax.errors import ExchangeError
from aimax.exchange.simulator.catalogue import Currency, Market, build_catalogue
from aimax.exchange.simulator.config import SimulatorConfig

__all__ = [
    "KLINE_PERIODS",
    "ORDER_TYPES",
    "Account",
    "Exchange",
    "Fill",
    "Order",
    "Rejection",
]

KLINE_PERIODS = (1, 5, 15, 30, 60, 120, 240, 360, 720, 1440, 4320, 10080)
ORDER_TYPES = ("market", "limit", "stop_market", "stop_limit", "post_only", "ioc_limit")
WALLET_TYPES = ("spot", "m")
MAX_CLIENT_OID = 36
_ZERO = Decimal(0)
_CANDLE_MINUTES = 20_160  # two weeks of 1-minute candles per market
_MAX_CATCH_UP = 120  # walk steps simulated per touch; older ones are skipped
_HISTORY_STEPS = 120
_STOP_MARKET_ALLOWANCE = Decimal("1.05")
# order amounts outside 1e-20 .. 1e18 (adjusted exponents) are refused as out of range
_SMALLEST_EXPONENT = -20
_LARGEST_EXPONENT = 18


class Rejection(ExchangeError):
    """A request MAX would refuse: HTTP ``status`` with MAX's ``code`` and ``message``.

    Raised by the pure core and turned into MAX's error body by the HTTP layer.
    """

    code: int
    status: int

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message, code=code, status=status)

    def body(self) -> dict[str, object]:
        """MAX's error body."""
        return {"success": False, "error": {"code": self.code, "message": self.message}}


def _fmt(value: Decimal) -> str:
    if value == 0:
        return "0.0"
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


# ----------------------------------------------------------------------- entities


@dataclass(slots=True, kw_only=True)
class Order:
    """One order; ``locked`` is what it still holds (quote for buys, base for sells)."""

    id: int
    account: str
    wallet_type: str
    market: str
    side: str
    ord_type: str
    price: Decimal | None
    stop_price: Decimal | None
    volume: Decimal
    remaining: Decimal
    executed: Decimal = _ZERO
    funds: Decimal = _ZERO
    state: str = "wait"
    client_oid: str | None = None
    group_id: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    trades_count: int = 0
    locked: Decimal = _ZERO
    triggered: bool = False

    @property
    def is_open(self) -> bool:
        """Still ``wait`` (resting, or a stop not yet triggered)."""
        return self.state == "wait"

    def to_json(self) -> dict[str, object]:
        """MAX v3's order shape."""
        avg = self.funds / self.executed if self.executed else _ZERO
        return {
            "id": self.id,
            "wallet_type": self.wallet_type,
            "market": self.market,
            "client_oid": self.client_oid,
            "group_id": self.group_id,
            "side": self.side,
            "state": self.state,
            "ord_type": self.ord_type,
            "price": None if self.price is None else _fmt(self.price),
            "stop_price": None if self.stop_price is None else _fmt(self.stop_price),
            "avg_price": _fmt(avg),
            "volume": _fmt(self.volume),
            "remaining_volume": _fmt(self.remaining),
            "executed_volume": _fmt(self.executed),
            "trades_count": self.trades_count,
            "created_at": _ms(self.created_at),
            "updated_at": _ms(self.updated_at),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """One side of one trade, as the account that took part sees it."""

    id: int
    order_id: int
    account: str
    wallet_type: str
    market: str
    market_name: str
    side: str
    price: Decimal
    volume: Decimal
    funds: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: str  # "maker" / "taker"
    created_at: float

    def to_json(self) -> dict[str, object]:
        """MAX v3's private trade shape."""
        return {
            "id": self.id,
            "order_id": self.order_id,
            "wallet_type": self.wallet_type,
            "market": self.market,
            "market_name": self.market_name,
            "side": self.side,
            "price": _fmt(self.price),
            "volume": _fmt(self.volume),
            "funds": _fmt(self.funds),
            "fee": _fmt(self.fee),
            "fee_currency": self.fee_currency,
            "fee_discounted": False,
            "liquidity": self.liquidity,
            "created_at": _ms(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class _PublicTrade:
    id: int
    price: Decimal
    volume: Decimal
    side: str  # the taker's side: "bid" (buyer took) or "ask"
    at: float


@dataclass(slots=True, kw_only=True)
class Account:
    """One API account: its key pair and its wallets (``[available, locked]`` per currency)."""

    name: str
    access_key: str
    secret: bytes = field(repr=False)
    wallets: dict[str, dict[str, list[Decimal]]] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    client_oids: dict[str, tuple[int, float]] = field(default_factory=dict)
    fills: deque[Fill] = field(default_factory=deque)  # oldest first
    open_counts: dict[str, int] = field(default_factory=dict)
    # memory bounds (see Exchange._prune): closed orders by close time, fills older
    # than the horizon that still belong to a kept order, client_oids waiting out their ttl
    closed: deque[tuple[float, int]] = field(default_factory=deque, repr=False)
    old_fills: list[Fill] = field(default_factory=list, repr=False)
    oid_expiry: deque[tuple[float, str, int]] = field(default_factory=deque, repr=False)

    def all_fills(self) -> Iterator[Fill]:
        """Every fill still kept, oldest first."""
        yield from self.old_fills
        yield from self.fills

    def wallet(self, wallet_type: str) -> dict[str, list[Decimal]]:
        """The balances of one wallet (created empty on first use)."""
        return self.wallets.setdefault(wallet_type, {})

    def slot(self, wallet_type: str, currency: str) -> list[Decimal]:
        """``[available, locked]`` of one currency (created at zero)."""
        return self.wallet(wallet_type).setdefault(currency, [_ZERO, _ZERO])

    def __repr__(self) -> str:  # never the secret, nor the key
        return f"Account(name={self.name!r}, orders={len(self.orders)})"


class _Candles:
    """1-minute candles ``minute -> [open, high, low, close, volume, quote volume]`` (bounded)."""

    __slots__ = ("bars", "order")

    def __init__(self) -> None:
        self.bars: dict[int, list[float]] = {}
        self.order: deque[int] = deque()

    def add(self, at: float, price: float, volume: float) -> None:
        minute = int(at // 60)
        bar = self.bars.get(minute)
        if bar is None:
            if self.order and minute < self.order[-1]:
                return  # a late trade before the newest bar: ignored (never happens live)
            self.bars[minute] = [price, price, price, price, volume, price * volume]
            self.order.append(minute)
            if len(self.order) > _CANDLE_MINUTES:
                del self.bars[self.order.popleft()]
            return
        bar[1] = max(bar[1], price)
        bar[2] = min(bar[2], price)
        bar[3] = price
        bar[4] += volume
        bar[5] += price * volume

    def since(self, minute: int) -> Iterator[tuple[int, list[float]]]:
        """Bars from ``minute`` on, oldest first (walks back from the newest only)."""
        keys: list[int] = []
        for key in reversed(self.order):
            if key < minute:
                break
            keys.append(key)
        for key in reversed(keys):
            yield key, self.bars[key]


class _Book:
    """One market's live state: walk, synthetic levels, resting orders, trades, candles."""

    __slots__ = (
        "asks",
        "bids",
        "candles",
        "last",
        "last_step",
        "market",
        "mid",
        "resting_asks",
        "resting_bids",
        "rng",
        "seq",
        "status",
        "stops",
        "ticker_cache",
        "trades",
    )

    def __init__(self, market: Market, rng: random.Random, trades_kept: int) -> None:
        self.market = market
        self.status = "active"
        self.rng = rng
        self.mid = float(market.reference_price)
        self.last = market.reference_price
        self.last_step = math.nan
        self.asks: list[list[Decimal]] = []  # synthetic [price, volume], best first
        self.bids: list[list[Decimal]] = []
        self.resting_bids: list[Order] = []  # best first, then oldest first
        self.resting_asks: list[Order] = []
        self.stops: list[Order] = []
        self.trades: deque[_PublicTrade] = deque(maxlen=trades_kept)
        self.candles = _Candles()
        self.seq = 0
        self.ticker_cache: tuple[int, float, dict[str, object]] | None = None


# ------------------------------------------------------------------------ helpers


def _param(params: Mapping[str, object], name: str) -> object | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return value


def _decimal_param(params: Mapping[str, object], name: str) -> Decimal | None:
    value = _param(params, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Rejection(1001, f"{name} must be a number")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise Rejection(1001, f"{name} must be a number, got {value!r}") from None
    if not result.is_finite():
        raise Rejection(1001, f"{name} must be finite, got {value!r}")
    if result and not _SMALLEST_EXPONENT <= result.adjusted() <= _LARGEST_EXPONENT:
        raise Rejection(1001, f"{name} is out of range, got {value!r}")
    return result


def _on_grid(value: Decimal, precision: int, name: str) -> Decimal:
    """``value`` if it has at most ``precision`` decimals; else MAX's 1001 naming it."""
    step = Decimal(1).scaleb(-precision)
    try:
        snapped = value.quantize(step, rounding=ROUND_DOWN)
    except InvalidOperation:  # more digits than any amount has
        raise Rejection(1001, f"{name} is out of range, got {_fmt_raw(value)}") from None
    if snapped != value:
        raise Rejection(
            1001,
            f"{name} {_fmt_raw(value)} has more than {precision} decimal places",
        )
    return snapped


def _fmt_raw(value: Decimal) -> str:
    return format(value, "f") if -30 <= value.adjusted() <= 30 else str(value)


def _int_param(
    params: Mapping[str, object], name: str, default: int | None, low: int, high: int
) -> int | None:
    value = _param(params, name)
    if value is None:
        return default
    try:
        if isinstance(value, (bool, float)):
            raise ValueError(value)
        result = int(str(value))
    except ValueError:
        raise Rejection(1001, f"{name} must be an integer, got {value!r}") from None
    if not low <= result <= high:
        raise Rejection(1001, f"{name} must be between {low} and {high}, got {result}")
    return result


def _timestamp_param(params: Mapping[str, object], name: str = "timestamp") -> float | None:
    """MAX v3 query timestamps; milliseconds accepted as well as seconds."""
    value = _int_param(params, name, None, 0, 10**15)
    if value is None:
        return None
    return value / 1000.0 if value > 100_000_000_000 else float(value)


def _order_by(params: Mapping[str, object]) -> bool:
    """True for descending (MAX's default)."""
    value = _param(params, "order_by")
    if value is None or value == "desc":
        return True
    if value == "asc":
        return False
    raise Rejection(1001, f"order_by must be asc or desc, got {value!r}")


# ------------------------------------------------------------------------ the core


class Exchange:
    """The whole simulated exchange. Not thread-safe: callers hold one lock.

    ::

        >>> ex = Exchange(SimulatorConfig(n_markets=3, history_seconds=0))
        >>> [m["id"] for m in ex.markets_json()]
        ['btctwd', 'ethtwd', 'usdttwd']
        >>> ex.set_price("btctwd", "3000000", now=1_750_000_000.0)
        >>> ex.ticker("btctwd", now=1_750_000_000.0)["last"]
        '3000000.0'
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        markets, currencies = build_catalogue(config.n_markets, config.seed)
        self.markets: dict[str, Market] = {m.id: m for m in markets}
        self.currencies: list[Currency] = currencies
        self._books: dict[str, _Book] = {}
        for index, market in enumerate(markets):
            self._books[market.id] = _Book(
                market,
                random.Random(config.seed * 1_000_003 + index),
                config.public_trades_kept,
            )
        self._accounts: dict[str, Account] = {}
        self._by_key: dict[str, Account] = {}
        self._orders: dict[int, Order] = {}
        self._next_order = 1
        self._next_trade = 1
        self._tick = float(config.price_tick)  # type: ignore[arg-type]  # normalised
        self._vol = float(config.volatility)
        self._maker_fee = Decimal(config.maker_fee)
        self._taker_fee = Decimal(config.taker_fee)
        self._horizon = float(config.closed_order_horizon)  # type: ignore[arg-type]  # normalised
        self._oid_ttl = float(config.client_oid_ttl)  # type: ignore[arg-type]  # normalised
        self.orders_created = 0
        self.orders_cancelled = 0
        self.fills = 0

    # ------------------------------------------------------------ market model

    def _book(self, market: object, now: float) -> _Book:
        if not isinstance(market, str) or market not in self._books:
            raise Rejection(1001, f"market {market!r} does not exist", 400)
        book = self._books[market]
        self._advance(book, now)
        return book

    def _advance(self, book: _Book, now: float) -> None:
        tick = self._tick
        if math.isnan(book.last_step):
            self._prefill(book, now)
            return
        steps = int((now - book.last_step) // tick)
        if steps <= 0:
            return
        if steps > _MAX_CATCH_UP:
            book.last_step += (steps - _MAX_CATCH_UP) * tick
            steps = _MAX_CATCH_UP
        has_users = bool(book.resting_bids or book.resting_asks or book.stops)
        for index in range(steps):
            book.last_step += tick
            self._walk(book, book.last_step, relayout=has_users or index == steps - 1)

    def _prefill(self, book: _Book, now: float) -> None:
        history = float(self.config.history_seconds)  # type: ignore[arg-type]  # normalised
        steps = min(_HISTORY_STEPS, int(history // self._tick))
        step = history / steps if steps else 0.0
        book.last_step = now - steps * step
        for _index in range(steps):
            book.last_step += step
            self._walk(book, book.last_step, relayout=False)
        book.last_step = now
        self._layout(book)

    def _walk(self, book: _Book, at: float, *, relayout: bool) -> None:
        rng = book.rng
        book.mid *= math.exp(self._vol * rng.gauss(0.0, 1.0))
        floor = float(book.market.tick) * 50
        book.mid = max(book.mid, floor)
        if relayout:
            self._layout(book)
        if rng.random() < 0.6:  # the crowd trades at the touch
            market = book.market
            side = "bid" if rng.random() < 0.5 else "ask"
            spread = 0.0005 if side == "bid" else -0.0005
            price = Decimal(repr(book.mid * (1 + spread))).quantize(market.tick)
            volume = (market.min_base_amount * Decimal(rng.randint(1, 20))).quantize(market.lot)
            self._record_trade(book, price, volume, side, at)
        if relayout:
            self._cross_resting(book, at)
        self._check_stops(book, at)

    def _layout(self, book: _Book) -> None:
        market = book.market
        tick = market.tick
        rng = book.rng
        mid = book.mid
        levels = self.config.book_levels
        asks: list[list[Decimal]] = []
        bids: list[list[Decimal]] = []
        last_ask = _ZERO
        last_bid = Decimal("Infinity")
        for i in range(levels):
            gap = 0.0005 + i * 0.0004
            ask = Decimal(repr(mid * (1 + gap))).quantize(tick, rounding=ROUND_CEILING)
            bid = Decimal(repr(mid * (1 - gap))).quantize(tick, rounding=ROUND_FLOOR)
            ask = max(ask, last_ask + tick)
            bid = min(bid, last_bid - tick)
            last_ask, last_bid = ask, bid
            size_a = market.min_base_amount * Decimal(rng.randint(2, 40))
            size_b = market.min_base_amount * Decimal(rng.randint(2, 40))
            asks.append([ask, size_a.quantize(market.lot)])
            if bid > 0:
                bids.append([bid, size_b.quantize(market.lot)])
        book.asks = asks
        book.bids = bids
        book.seq += 1

    def _record_trade(
        self, book: _Book, price: Decimal, volume: Decimal, side: str, at: float
    ) -> int:
        trade_id = self._next_trade
        self._next_trade += 1
        book.trades.append(_PublicTrade(trade_id, price, volume, side, at))
        book.candles.add(at, float(price), float(volume))
        book.last = price
        return trade_id

    def _cross_resting(self, book: _Book, now: float) -> None:
        """The walk moved: fill resting user orders the synthetic book now crosses."""
        while book.resting_bids and book.asks and book.resting_bids[0].price is not None:
            order = book.resting_bids[0]
            assert order.price is not None
            if book.asks[0][0] > order.price:
                break
            self._fill_resting_from_synthetic(book, order, book.asks, now)
            if order.is_open:
                break
        while book.resting_asks and book.bids and book.resting_asks[0].price is not None:
            order = book.resting_asks[0]
            assert order.price is not None
            if book.bids[0][0] < order.price:
                break
            self._fill_resting_from_synthetic(book, order, book.bids, now)
            if order.is_open:
                break

    def _fill_resting_from_synthetic(
        self, book: _Book, order: Order, levels: list[list[Decimal]], now: float
    ) -> None:
        assert order.price is not None
        buy = order.side == "buy"
        while levels and order.remaining > 0:
            level = levels[0]
            if (level[0] > order.price) if buy else (level[0] < order.price):
                break
            qty = min(level[1], order.remaining)
            level[1] -= qty
            if level[1] <= 0:
                levels.pop(0)
            trade_id = self._record_trade(book, order.price, qty, "ask" if buy else "bid", now)
            self._settle(order, order.price, qty, "maker", trade_id=trade_id, now=now)
        if order.remaining <= 0:
            queue = book.resting_bids if buy else book.resting_asks
            queue.remove(order)
            self._close(order, "done", now)

    def _check_stops(self, book: _Book, now: float) -> None:
        """Trigger the stops the last price reached (each runs as a taker, in turn)."""
        if not book.stops:
            return
        last = book.last
        fired = [
            o
            for o in book.stops
            if o.stop_price is not None
            and ((last >= o.stop_price) if o.side == "buy" else (last <= o.stop_price))
        ]
        if not fired:
            return
        book.stops = [o for o in book.stops if o not in fired]
        for order in fired:
            order.triggered = True
            order.updated_at = now
            self._execute(book, order, now)

    # ----------------------------------------------------------- public data

    def markets_json(self) -> list[dict[str, object]]:
        """``GET /api/v3/markets``."""
        return [m.to_json(self._books[m.id].status) for m in self.markets.values()]

    def currencies_json(self) -> list[dict[str, object]]:
        """``GET /api/v3/currencies``."""
        return [c.to_json() for c in self.currencies]

    def _levels(self, book: _Book, side: str) -> list[tuple[Decimal, Decimal]]:
        """Synthetic and user liquidity of one side aggregated by price, best first."""
        totals: dict[Decimal, Decimal] = {}
        synthetic = book.asks if side == "ask" else book.bids
        for price, volume in synthetic:
            if volume > 0:
                totals[price] = totals.get(price, _ZERO) + volume
        for order in book.resting_asks if side == "ask" else book.resting_bids:
            assert order.price is not None
            totals[order.price] = totals.get(order.price, _ZERO) + order.remaining
        return sorted(totals.items(), reverse=side == "bid")

    def depth(
        self, market: object, now: float, *, limit: int = 300, sort_by_price: bool = True
    ) -> dict[str, object]:
        """``GET /api/v3/depth``: asks high to low when ``sort_by_price`` (MAX's ladder)."""
        book = self._book(market, now)
        asks = self._levels(book, "ask")[:limit]
        bids = self._levels(book, "bid")[:limit]
        if sort_by_price:
            asks.reverse()
        return {
            "timestamp": int(now),
            "last_update_version": book.seq,
            "last_update_id": book.seq,
            "asks": [[_fmt(p), _fmt(v)] for p, v in asks],
            "bids": [[_fmt(p), _fmt(v)] for p, v in bids],
        }

    def ticker(self, market: object, now: float) -> dict[str, object]:
        """``GET /api/v3/ticker``: best bid/ask and 24 h open/high/low/last/volume."""
        book = self._book(market, now)
        cached = book.ticker_cache
        if cached is not None and cached[0] == book.seq and cached[1] == book.last_step:
            result = dict(cached[2])
            result["at"] = int(now)
            return result
        asks = self._levels(book, "ask")
        bids = self._levels(book, "bid")
        first_minute = int(now // 60) - 1440
        open_ = high = low = None
        volume = quote_volume = 0.0
        for _, bar in book.candles.since(first_minute + 1):
            if open_ is None:
                open_, high, low = bar[0], bar[1], bar[2]
            else:
                high = max(high or bar[1], bar[1])
                low = min(low or bar[2], bar[2])
            volume += bar[4]
            quote_volume += bar[5]
        last = book.last
        m = book.market
        result = {
            "market": m.id,
            "at": int(now),
            "buy": _fmt(bids[0][0]) if bids else None,
            "buy_vol": _fmt(bids[0][1]) if bids else None,
            "sell": _fmt(asks[0][0]) if asks else None,
            "sell_vol": _fmt(asks[0][1]) if asks else None,
            "open": _fmt(Decimal(repr(open_)).quantize(m.tick)) if open_ else _fmt(last),
            "low": _fmt(Decimal(repr(low)).quantize(m.tick)) if low else _fmt(last),
            "high": _fmt(Decimal(repr(high)).quantize(m.tick)) if high else _fmt(last),
            "last": _fmt(last),
            "vol": _fmt(Decimal(repr(volume)).quantize(m.lot)),
            "vol_in_btc": _fmt(
                Decimal(repr(volume * self._in_btc(m, float(last)))).quantize(Decimal("0.00000001"))
            ),
            # traded price times volume, summed: the quote currency's 24 h turnover
            "vol_in_quote": _fmt(Decimal(repr(quote_volume)).quantize(m.tick)),
        }
        book.ticker_cache = (book.seq, book.last_step, result)
        return dict(result)

    def _in_btc(self, market: Market, price: float) -> float:
        """BTC per one base unit (roughly, from the catalogue's reference prices)."""
        if market.base_unit == "btc":
            return 1.0
        if market.quote_unit == "btc":
            return price
        btc = self.markets.get(f"btc{market.quote_unit}")
        if btc is None:
            return 0.0
        return price / float(btc.reference_price)

    def tickers(self, markets: Iterable[str] | None, now: float) -> list[dict[str, object]]:
        """``GET /api/v3/tickers`` (all markets when ``markets`` is None)."""
        names = list(self.markets) if markets is None else list(markets)
        return [self.ticker(name, now) for name in names]

    def public_trades(
        self, market: object, now: float, *, timestamp: float | None = None, limit: int = 50
    ) -> list[dict[str, object]]:
        """``GET /api/v3/trades``: newest first, at or before ``timestamp``."""
        book = self._book(market, now)
        out: list[dict[str, object]] = []
        m = book.market
        for trade in reversed(book.trades):
            if timestamp is not None and trade.at > timestamp:
                continue
            out.append(
                {
                    "id": trade.id,
                    "market": m.id,
                    "market_name": f"{m.base_unit.upper()}/{m.quote_unit.upper()}",
                    "price": _fmt(trade.price),
                    "volume": _fmt(trade.volume),
                    "funds": _fmt(trade.price * trade.volume),
                    "side": trade.side,
                    "created_at": _ms(trade.at),
                }
            )
            if len(out) >= limit:
                break
        return out

    def klines(
        self,
        market: object,
        now: float,
        *,
        period: int = 1,
        limit: int = 30,
        timestamp: float | None = None,
    ) -> list[list[float]]:
        """``GET /api/v3/k``: rows ``[timestamp, open, high, low, close, volume]``, oldest first.

        Built from the 1-minute candles of the public trades; buckets with no trade
        are left out. With ``timestamp`` (seconds) the rows start at its bucket,
        otherwise they are the newest ``limit`` rows.
        """
        if period not in KLINE_PERIODS:
            raise Rejection(1001, f"period must be one of {KLINE_PERIODS}, got {period}")
        book = self._book(market, now)
        buckets: dict[int, list[float]] = {}
        if timestamp is not None:
            first = int(timestamp // 60) // period * period
        else:
            first = (int(now // 60) // period - limit + 1) * period
        for minute, bar in book.candles.since(first):
            key = minute // period * period
            agg = buckets.get(key)
            if agg is None:
                buckets[key] = bar[:5]
            else:
                agg[1] = max(agg[1], bar[1])
                agg[2] = min(agg[2], bar[2])
                agg[3] = bar[3]
                agg[4] += bar[4]
        rows = [[float(key * 60), *bar] for key, bar in sorted(buckets.items())]
        rows = rows[:limit] if timestamp is not None else rows[-limit:]
        for row in rows:
            row[0] = int(row[0])
            row[5] = round(row[5], book.market.base_unit_precision)
        return rows

    # --------------------------------------------------------------- control

    def set_price(self, market: str, price: Decimal | str | float, now: float) -> None:
        """Move ``market``'s mid to ``price`` now: a trade prints there, the book is laid
        out around it, and resting or stop orders it crosses execute."""
        book = self._book(market, now)
        value = Decimal(str(price)).quantize(book.market.tick)
        if value <= 0:
            raise Rejection(1001, f"price must be positive, got {price!r}")
        book.mid = float(value)
        self._layout(book)
        self._record_trade(book, value, book.market.min_base_amount, "bid", now)
        self._cross_resting(book, now)
        self._check_stops(book, now)

    def set_market_status(self, market: str, status: str) -> None:
        """``active``, ``cancel-only`` or ``suspended``."""
        if market not in self._books:
            raise Rejection(1001, f"market {market!r} does not exist")
        if status not in ("active", "cancel-only", "suspended"):
            raise Rejection(1001, f"unknown market status {status!r}")
        self._books[market].status = status

    def mid(self, market: str, now: float) -> Decimal:
        """The market's current mid price (quantised to its tick)."""
        book = self._book(market, now)
        return Decimal(repr(book.mid)).quantize(book.market.tick)

    # -------------------------------------------------------------- accounts

    def add_account(
        self,
        name: str,
        access_key: str,
        secret: str | bytes,
        balances: Mapping[str, Decimal | str | float | int] | None = None,
        *,
        wallet_type: str = "spot",
    ) -> Account:
        """Register an API key pair; ``balances`` go to ``wallet_type`` as available funds."""
        if access_key in self._by_key:
            existing = self._by_key[access_key]
            if balances:
                self.fund(existing, balances, wallet_type=wallet_type)
            return existing
        if name in self._accounts:
            raise Rejection(1001, f"account name {name!r} already used")
        account = Account(
            name=name,
            access_key=access_key,
            secret=secret.encode() if isinstance(secret, str) else bytes(secret),
        )
        self._accounts[name] = account
        self._by_key[access_key] = account
        if balances:
            self.fund(account, balances, wallet_type=wallet_type)
        return account

    def fund(
        self,
        account: Account,
        balances: Mapping[str, Decimal | str | float | int],
        *,
        wallet_type: str = "spot",
    ) -> None:
        """Add ``balances`` to the account's available funds."""
        if wallet_type not in WALLET_TYPES:
            raise Rejection(1001, f"wallet_type must be spot or m, got {wallet_type!r}")
        for currency, amount in balances.items():
            value = Decimal(str(amount))
            slot = account.slot(wallet_type, currency.lower())
            slot[0] += value

    def account_by_key(self, access_key: str) -> Account | None:
        """The account of an access key, if any."""
        return self._by_key.get(access_key)

    def account(self, name: str) -> Account:
        """The account called ``name``."""
        return self._accounts[name]

    def account_names(self) -> list[str]:
        """Names of every account."""
        return list(self._accounts)

    def info(self, account: Account) -> dict[str, object]:
        """``GET /api/v3/info``."""
        maker, taker = float(self._maker_fee), float(self._taker_fee)
        return {
            "sn": account.name.upper(),
            "email": f"{account.name}@simulator.invalid",
            "level": 2,
            "m_wallet_enabled": True,
            "current_vip_level": {
                "level": 0,
                "minimum_trading_volume": 0,
                "minimum_staking_volume": 0,
                "maker_fee": maker,
                "taker_fee": taker,
            },
            "next_vip_level": {
                "level": 1,
                "minimum_trading_volume": 3_000_000,
                "minimum_staking_volume": 500,
                "maker_fee": maker,
                "taker_fee": round(taker * 0.9, 6),
            },
        }

    def accounts(
        self, account: Account, wallet_type: str, currency: str | None = None
    ) -> list[dict[str, object]]:
        """``GET /api/v3/wallet/{wallet_type}/accounts``: ``balance`` is what is available."""
        self._wallet_type(wallet_type)
        out: list[dict[str, object]] = []
        wallet = account.wallet(wallet_type)
        codes = [c.currency for c in self.currencies] + [
            c for c in wallet if c not in {x.currency for x in self.currencies}
        ]
        for code in codes:
            if currency is not None and code != currency:
                continue
            available, locked = wallet.get(code, [_ZERO, _ZERO])
            row: dict[str, object] = {
                "currency": code,
                "balance": _fmt(available),
                "locked": _fmt(locked),
                "staked": None,
            }
            if wallet_type == "m":
                row["principal"] = "0.0"
                row["interest"] = "0.0"
            out.append(row)
        if currency is not None and not out:
            raise Rejection(1001, f"currency {currency!r} does not exist")
        return out

    @staticmethod
    def _wallet_type(wallet_type: str) -> None:
        if wallet_type not in WALLET_TYPES:
            raise Rejection(1001, f"wallet_type must be spot or m, got {wallet_type!r}", 400)

    # ---------------------------------------------------------------- orders

    def _order_error(self, code: int, message: str) -> Rejection:
        return Rejection(code, message, self.config.order_error_status)

    def create_order(
        self, account: Account, wallet_type: str, params: Mapping[str, object], now: float
    ) -> dict[str, object]:
        """``POST /api/v3/wallet/{wallet_type}/order``; returns the accepted order."""
        self._prune(account, now)
        self._wallet_type(wallet_type)
        market_id = _param(params, "market")
        if market_id is None:
            raise Rejection(1001, "market is required")
        book = self._book(market_id, now)
        market = book.market
        if book.status != "active":
            raise self._order_error(2002, f"market {market.id} is {book.status}")
        side = _param(params, "side")
        if side not in ("buy", "sell"):
            raise Rejection(1001, f"side must be buy or sell, got {side!r}")
        ord_type = _param(params, "ord_type") or "limit"
        if ord_type not in ORDER_TYPES:
            raise Rejection(1001, f"ord_type must be one of {ORDER_TYPES}, got {ord_type!r}")
        raw_volume = _decimal_param(params, "volume")
        if raw_volume is None or raw_volume <= 0:
            raise Rejection(1001, "volume must be a positive number")
        volume = _on_grid(raw_volume, market.base_unit_precision, "volume")
        price = _decimal_param(params, "price")
        stop_price = _decimal_param(params, "stop_price")
        needs_price = ord_type in ("limit", "stop_limit", "post_only", "ioc_limit")
        if needs_price:
            if price is None or price <= 0:
                raise Rejection(1001, f"price must be a positive number for {ord_type} orders")
            price = _on_grid(price, market.quote_unit_precision, "price")
        elif price is not None and ord_type in ("market", "stop_market"):
            price = None
        if ord_type.startswith("stop_"):
            if stop_price is None or stop_price <= 0:
                raise Rejection(1001, f"stop_price must be a positive number for {ord_type}")
            stop_price = _on_grid(stop_price, market.quote_unit_precision, "stop_price")
        else:
            stop_price = None
        client_oid = _param(params, "client_oid")
        if client_oid is not None:
            if not isinstance(client_oid, str) or len(client_oid) > MAX_CLIENT_OID:
                raise Rejection(1001, f"client_oid must be a string of at most {MAX_CLIENT_OID}")
            seen = account.client_oids.get(client_oid)
            ttl = float(self.config.client_oid_ttl)  # type: ignore[arg-type]  # normalised
            if seen is not None and now - seen[1] < ttl:
                raise self._order_error(2002, f"client_oid {client_oid} is already used")
        group_id = _int_param(params, "group_id", None, 1, 2**32 - 1)
        # amount checks
        reference = price if price is not None else (stop_price or self._touch(book, side))
        if volume < market.min_base_amount or (
            reference is not None and volume * reference < market.min_quote_amount
        ):
            raise self._order_error(
                2016,
                f"amount too small: at least {market.min_base_amount} {market.base_unit} "
                f"and {market.min_quote_amount} {market.quote_unit}",
            )
        if account.open_counts.get(market.id, 0) >= self.config.max_open_orders:
            raise self._order_error(2034, f"too many open orders in {market.id}")
        # what the order locks
        if side == "sell":
            lock_currency, lock_amount = market.base_unit, volume
        elif ord_type == "market":
            cost = self._cost_to_buy(book, volume)
            if cost is None:
                raise self._order_error(2002, f"no liquidity to buy {volume} in {market.id}")
            lock_currency, lock_amount = market.quote_unit, cost
        elif ord_type == "stop_market":
            assert stop_price is not None
            lock_currency = market.quote_unit
            lock_amount = volume * stop_price * _STOP_MARKET_ALLOWANCE
        else:
            assert price is not None
            lock_currency, lock_amount = market.quote_unit, volume * price
        slot = account.slot(wallet_type, lock_currency)
        if slot[0] < lock_amount:
            raise self._order_error(2018, f"insufficient {lock_currency}: need {_fmt(lock_amount)}")
        slot[0] -= lock_amount
        slot[1] += lock_amount
        order = Order(
            id=self._next_order,
            account=account.name,
            wallet_type=wallet_type,
            market=market.id,
            side=side,
            ord_type=ord_type,
            price=price,
            stop_price=stop_price,
            volume=volume,
            remaining=volume,
            client_oid=client_oid if isinstance(client_oid, str) else None,
            group_id=group_id,
            created_at=now,
            updated_at=now,
            locked=lock_amount,
        )
        self._next_order += 1
        self.orders_created += 1
        account.orders[order.id] = order
        account.open_counts[market.id] = account.open_counts.get(market.id, 0) + 1
        self._orders[order.id] = order
        if order.client_oid is not None:
            account.client_oids[order.client_oid] = (order.id, now)
        accepted = order.to_json()
        if ord_type.startswith("stop_"):
            book.stops.append(order)
            self._check_stops(book, now)
        else:
            self._execute(book, order, now)
        return accepted

    @staticmethod
    def _touch(book: _Book, side: str) -> Decimal | None:
        levels = book.asks if side == "buy" else book.bids
        return levels[0][0] if levels else None

    def _cost_to_buy(self, book: _Book, volume: Decimal) -> Decimal | None:
        """Quote needed to buy ``volume`` now (None when the book is too thin)."""
        left = volume
        cost = _ZERO
        for price, available in self._levels(book, "ask"):
            take = min(left, available)
            cost += take * price
            left -= take
            if left <= 0:
                return cost
        return cost if cost > 0 else None

    def _execute(self, book: _Book, order: Order, now: float) -> None:
        """Match an incoming (or just-triggered) order, then rest, cancel or finish it."""
        kind = order.ord_type
        is_market = kind in ("market", "stop_market")
        if kind == "post_only" and self._would_cross(book, order):
            self._close(order, "cancel", now)
            return
        self._take(book, order, now, limit_price=None if is_market else order.price)
        if order.remaining <= 0:
            self._close(order, "done", now)
        elif kind in ("limit", "post_only", "stop_limit"):
            self._rest(book, order)
        else:
            self._close(order, "cancel", now)
        # stops are looked at only here, between matches: never while a match walks the book
        self._check_stops(book, now)

    def _would_cross(self, book: _Book, order: Order) -> bool:
        assert order.price is not None
        levels = self._levels(book, "ask" if order.side == "buy" else "bid")
        if not levels:
            return False
        best = levels[0][0]
        return best <= order.price if order.side == "buy" else best >= order.price

    def _take(self, book: _Book, order: Order, now: float, *, limit_price: Decimal | None) -> None:
        buy = order.side == "buy"
        synthetic = book.asks if buy else book.bids
        resting = book.resting_asks if buy else book.resting_bids
        lot = book.market.lot
        while order.remaining > 0:
            s_price = synthetic[0][0] if synthetic else None
            r_price = resting[0].price if resting else None
            if s_price is None and r_price is None:
                break
            use_resting = r_price is not None and (
                s_price is None or (r_price <= s_price if buy else r_price >= s_price)
            )
            price = r_price if use_resting else s_price
            assert price is not None
            if limit_price is not None and (price > limit_price if buy else price < limit_price):
                break
            available = resting[0].remaining if use_resting else synthetic[0][1]
            qty = min(order.remaining, available)
            if buy:  # never spend more than the order holds (stop_market allowance)
                affordable = (order.locked / price).quantize(lot, rounding=ROUND_DOWN)
                qty = min(qty, affordable)
                if qty <= 0:
                    break
            trade_id = self._record_trade(book, price, qty, "bid" if buy else "ask", now)
            if use_resting:
                maker = resting[0]
                self._settle(maker, price, qty, "maker", trade_id=trade_id, now=now)
                if maker.remaining <= 0:
                    resting.pop(0)
                    self._close(maker, "done", now)
            else:
                synthetic[0][1] -= qty
                if synthetic[0][1] <= 0:
                    synthetic.pop(0)
            self._settle(order, price, qty, "taker", trade_id=trade_id, now=now)

    def _rest(self, book: _Book, order: Order) -> None:
        assert order.price is not None
        queue = book.resting_bids if order.side == "buy" else book.resting_asks
        index = len(queue)
        for i, other in enumerate(queue):
            assert other.price is not None
            better = order.price > other.price if order.side == "buy" else order.price < other.price
            if better:
                index = i
                break
        queue.insert(index, order)

    def _settle(
        self,
        order: Order,
        price: Decimal,
        qty: Decimal,
        liquidity: str,
        *,
        trade_id: int,
        now: float,
    ) -> None:
        account = self._accounts[order.account]
        market = self.markets[order.market]
        funds = price * qty
        rate = self._maker_fee if liquidity == "maker" else self._taker_fee
        if order.side == "buy":
            paid, got_currency, got = funds, market.base_unit, qty
            pay_slot = account.slot(order.wallet_type, market.quote_unit)
        else:
            paid, got_currency, got = qty, market.quote_unit, funds
            pay_slot = account.slot(order.wallet_type, market.base_unit)
        fee = got * rate
        pay_slot[1] -= paid
        order.locked -= paid
        account.slot(order.wallet_type, got_currency)[0] += got - fee
        order.remaining -= qty
        order.executed += qty
        order.funds += funds
        order.trades_count += 1
        order.updated_at = now
        self.fills += 1
        account.fills.append(
            Fill(
                id=trade_id,
                order_id=order.id,
                account=account.name,
                wallet_type=order.wallet_type,
                market=market.id,
                market_name=f"{market.base_unit.upper()}/{market.quote_unit.upper()}",
                side=order.side,
                price=price,
                volume=qty,
                funds=funds,
                fee=fee,
                fee_currency=got_currency,
                liquidity=liquidity,
                created_at=now,
            )
        )

    def _close(self, order: Order, state: str, now: float) -> None:
        """Finish an order: release what it still locks."""
        if order.locked > 0:
            market = self.markets[order.market]
            currency = market.quote_unit if order.side == "buy" else market.base_unit
            slot = self._accounts[order.account].slot(order.wallet_type, currency)
            slot[1] -= order.locked
            slot[0] += order.locked
            order.locked = _ZERO
        if order.state == "wait":
            counts = self._accounts[order.account].open_counts
            counts[order.market] -= 1
            self._accounts[order.account].closed.append((now, order.id))
        order.state = state
        order.updated_at = now

    def _prune(self, account: Account, now: float) -> None:
        """Forget ``account``'s orders closed more than the horizon ago, and their fills.

        Called on the request path; each order, fill and client_oid is looked at a
        bounded number of times, so the cost is amortised O(1) per request. Open
        orders and their fills are never dropped.
        """
        cutoff = now - self._horizon
        closed = account.closed
        dropped = False
        while closed and closed[0][0] < cutoff:
            _, order_id = closed.popleft()
            order = account.orders.pop(order_id, None)
            if order is None:
                continue
            dropped = True
            self._orders.pop(order_id, None)
            oid = order.client_oid
            if oid is not None and account.client_oids.get(oid, (0, 0.0))[0] == order_id:
                account.oid_expiry.append((account.client_oids[oid][1], oid, order_id))
        if dropped and account.old_fills:
            account.old_fills = [f for f in account.old_fills if f.order_id in account.orders]
        fills = account.fills
        while fills and fills[0].created_at < cutoff:
            fill = fills.popleft()
            if fill.order_id in account.orders:  # its order is still kept: so is the fill
                account.old_fills.append(fill)
        expiry = account.oid_expiry
        oid_cutoff = now - self._oid_ttl
        while expiry and expiry[0][0] <= oid_cutoff:
            _, oid, order_id = expiry.popleft()
            if account.client_oids.get(oid, (0, 0.0))[0] == order_id:
                del account.client_oids[oid]

    def _find(self, account: Account, params: Mapping[str, object]) -> Order:
        order_id = _int_param(params, "id", None, 1, 2**63)
        client_oid = _param(params, "client_oid")
        if order_id is None and client_oid is None:
            raise Rejection(1001, "id or client_oid is required")
        if order_id is not None:
            order = account.orders.get(order_id)
        else:
            seen = account.client_oids.get(str(client_oid))
            order = account.orders.get(seen[0]) if seen else None
        if order is None:
            raise Rejection(2004, "order not found", 404)
        return order

    def _unbook(self, order: Order) -> None:
        book = self._books[order.market]
        for queue in (book.resting_bids, book.resting_asks, book.stops):
            if order in queue:
                queue.remove(order)
                return

    def cancel_order(
        self, account: Account, params: Mapping[str, object], now: float
    ) -> dict[str, object]:
        """``DELETE /api/v3/order`` by ``id`` or ``client_oid``; returns the order."""
        self._prune(account, now)
        order = self._find(account, params)
        self._book(order.market, now)  # the market moves first
        if not order.is_open:
            raise Rejection(2003, f"order {order.id} is {order.state}, it cannot be cancelled")
        if self._books[order.market].status == "suspended":
            raise Rejection(2003, f"market {order.market} is suspended")
        self._unbook(order)
        self._close(order, "cancel", now)
        self.orders_cancelled += 1
        return order.to_json()

    def cancel_orders(
        self, account: Account, wallet_type: str, params: Mapping[str, object], now: float
    ) -> list[dict[str, object]]:
        """``DELETE /api/v3/wallet/{wallet_type}/orders``: ``[{"order": ..., "error": null}]``."""
        self._prune(account, now)
        self._wallet_type(wallet_type)
        market = _param(params, "market")
        if market is not None:
            self._book(market, now)
        side = _param(params, "side")
        if side is not None and side not in ("buy", "sell"):
            raise Rejection(1001, f"side must be buy or sell, got {side!r}")
        group_id = _int_param(params, "group_id", None, 1, 2**32 - 1)
        out: list[dict[str, object]] = []
        for order in list(account.orders.values()):
            if not order.is_open or order.wallet_type != wallet_type:
                continue
            if market is not None and order.market != market:
                continue
            if side is not None and order.side != side:
                continue
            if group_id is not None and order.group_id != group_id:
                continue
            self._unbook(order)
            self._close(order, "cancel", now)
            self.orders_cancelled += 1
            out.append({"order": order.to_json(), "error": None})
        return out

    def get_order(
        self, account: Account, params: Mapping[str, object], now: float
    ) -> dict[str, object]:
        """``GET /api/v3/order`` by ``id`` or ``client_oid``."""
        self._prune(account, now)
        order = self._find(account, params)
        self._book(order.market, now)
        return order.to_json()

    def order_trades(
        self, account: Account, params: Mapping[str, object], now: float
    ) -> list[dict[str, object]]:
        """``GET /api/v3/order/trades`` (``order_id`` or ``client_oid``), newest first."""
        self._prune(account, now)
        lookup = dict(params)
        if "order_id" in lookup:
            lookup["id"] = lookup.pop("order_id")
        order = self._find(account, lookup)
        self._book(order.market, now)
        return [f.to_json() for f in reversed(list(account.all_fills())) if f.order_id == order.id]

    def _query_orders(
        self,
        account: Account,
        wallet_type: str,
        params: Mapping[str, object],
        now: float,
        states: tuple[str, ...] | None,
    ) -> list[dict[str, object]]:
        self._prune(account, now)
        self._wallet_type(wallet_type)
        market = _param(params, "market")
        if market is not None:
            self._book(market, now)
        timestamp = _timestamp_param(params)
        descending = _order_by(params)
        limit = _int_param(params, "limit", 50, 1, 1000)
        from_id = _int_param(params, "from_id", None, 1, 2**63)
        assert limit is not None
        chosen = [
            o
            for o in account.orders.values()
            if o.wallet_type == wallet_type
            and (market is None or o.market == market)
            and (states is None or o.state in states)
            and (
                timestamp is None
                or (o.created_at <= timestamp if descending else o.created_at >= timestamp)
            )
            and (from_id is None or o.id >= from_id)
        ]
        chosen.sort(key=lambda o: o.id, reverse=descending and from_id is None)
        return [o.to_json() for o in chosen[:limit]]

    def open_orders(
        self, account: Account, wallet_type: str, params: Mapping[str, object], now: float
    ) -> list[dict[str, object]]:
        """``GET /api/v3/wallet/{wallet_type}/orders/open``."""
        return self._query_orders(account, wallet_type, params, now, ("wait",))

    def closed_orders(
        self, account: Account, wallet_type: str, params: Mapping[str, object], now: float
    ) -> list[dict[str, object]]:
        """``GET /api/v3/wallet/{wallet_type}/orders/closed``."""
        return self._query_orders(account, wallet_type, params, now, ("done", "cancel"))

    def order_history(
        self, account: Account, wallet_type: str, params: Mapping[str, object], now: float
    ) -> list[dict[str, object]]:
        """``GET /api/v3/wallet/{wallet_type}/orders/history`` (ascending from ``from_id``)."""
        lookup = dict(params)
        lookup.setdefault("order_by", "asc")
        return self._query_orders(account, wallet_type, lookup, now, None)

    def my_trades(
        self, account: Account, wallet_type: str, params: Mapping[str, object], now: float
    ) -> list[dict[str, object]]:
        """``GET /api/v3/wallet/{wallet_type}/trades``."""
        self._prune(account, now)
        self._wallet_type(wallet_type)
        market = _param(params, "market")
        if market is not None:
            self._book(market, now)
        timestamp = _timestamp_param(params)
        descending = _order_by(params)
        limit = _int_param(params, "limit", 50, 1, 1000)
        from_id = _int_param(params, "from_id", None, 1, 2**63)
        assert limit is not None
        chosen = [
            f
            for f in account.all_fills()
            if f.wallet_type == wallet_type
            and (market is None or f.market == market)
            and (
                timestamp is None
                or (f.created_at <= timestamp if descending else f.created_at >= timestamp)
            )
            and (from_id is None or f.id >= from_id)
        ]
        if descending and from_id is None:
            chosen.reverse()
        return [f.to_json() for f in chosen[:limit]]

    # ---------------------------------------------------------------- checks

    def totals(self, currency: str) -> Decimal:
        """Available + locked of ``currency`` over every account and wallet."""
        total = _ZERO
        for account in self._accounts.values():
            for wallet in account.wallets.values():
                slot = wallet.get(currency)
                if slot is not None:
                    total += slot[0] + slot[1]
        return total

    def order(self, order_id: int) -> Order:
        """Any account's order by id (for tests and tools)."""
        return self._orders[order_id]
