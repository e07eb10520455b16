"""The asyncio MAX REST v3 client.

Every call goes: validate (:class:`~aimax.exchange.max.endpoints.Endpoints`) ->
hold its units in the limiter's :class:`~aimax.exchange.max.guard.CompletionGuard` ->
``await limiter.acquire_async(kind, pair=market)`` -> sign (a fresh nonce, taken
after the slot is granted so it is as fresh as possible) -> send over httpx ->
``limiter.on_response(status, headers, kind=kind)`` -> map errors -> parse into
frozen dataclasses with :class:`~decimal.Decimal` amounts.

::

    async with MaxClient(base_url=sim.url, access_key=key, secret_key=secret) as max_:
        book = await max_.depth("btctwd", limit=5)
        order = await max_.create_order("btctwd", "buy", "0.001", "1000000")
        await max_.cancel_order(client_oid=order.client_oid)
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, TypeVar

import httpx

from aimax import _clock
from aimax._clock import Clock, as_seconds
from aimax._metrics import MetricSample
from aimax.errors import (
    AimaxError,
    AuthenticationError,
    BadRequest,
    ConfigurationError,
    ExchangeBanned,
    ExchangeError,
    NonceError,
    OrderError,
    OrderNotFound,
    OrderStateUnknown,
    RateLimitError,
    TransportError,
)
from aimax.exchange.max.endpoints import Amount, Call, CancelResult, Endpoints
from aimax.exchange.max.errormap import exception_for
from aimax.exchange.max.guard import CompletionGuard, guard_for
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
from aimax.exchange.max.nonce import NonceGenerator, estimate_offset_ms, nonce_generator_for
from aimax.exchange.max.signing import encode_query, sign_request
from aimax.ratelimit import APIRateLimiter, max_kind_for

__all__ = [
    "DEFAULT_BASE_URL",
    "ClientStatistics",
    "MaxClient",
    "OrderStateUnknown",
    "RateLimiterLike",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://max-api.maicoin.com"
_QUANTILES = (0.5, 0.95, 0.99)
_LATENCY_SAMPLES = 2048
T = TypeVar("T")


class RateLimiterLike(Protocol):
    """What the client needs from :class:`aimax.ratelimit.APIRateLimiter`."""

    async def acquire_async(
        self,
        kind: str,
        *,
        cost: int | None = None,
        pair: str | None = None,
        timeout: float | None = None,
    ) -> object:
        """Wait for a slot of ``kind``."""
        ...

    def on_response(
        self, status: int, headers: Mapping[str, str], *, kind: str | None = None
    ) -> object:
        """Feed one HTTP answer back (429 / Retry-After)."""
        ...


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """A snapshot of a client's traffic (``MaxClient.statistics()``)."""

    requests: int
    """HTTP requests sent (answered or not)."""
    responses: Mapping[int, int]
    """Answers by HTTP status."""
    transport_errors: int
    exchange_errors: int
    """Answers that raised an :class:`~aimax.errors.ExchangeError` (429 included)."""
    bans: int
    """429 / 418 answers."""
    nonce_resyncs: int
    time_syncs: int
    reconciled_orders: int
    """Timed-out creates found again with ``get_order(client_oid=...)``."""
    unknown_orders: int
    """Timed-out creates that reconciliation could not find (OrderStateUnknown)."""
    in_flight: int
    latency_p50: float | None
    latency_p95: float | None
    admission_wait_p99: Mapping[str, float] = field(default_factory=dict)
    """p99 by request kind of the time a request waited for rate limiting (the
    completion guard plus the limiter) before it was sent, over recent requests."""


class _Stats:
    """Lock-protected counters (the sync facade's loop thread and readers share them)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.by_kind_status: dict[tuple[str, str], int] = {}
        self.by_status: dict[int, int] = {}
        self.transport_errors = 0
        self.exchange_errors = 0
        self.bans = 0
        self.nonce_resyncs = 0
        self.time_syncs = 0
        self.reconciled = 0
        self.unknown = 0
        self.in_flight = 0
        self.latency: dict[str, deque[float]] = {}
        self.all_latency: deque[float] = deque(maxlen=_LATENCY_SAMPLES)
        self.admission: dict[str, deque[float]] = {}

    def admitted(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.admission.setdefault(kind, deque(maxlen=_LATENCY_SAMPLES)).append(seconds)

    def answered(self, kind: str, status: int | str, seconds: float) -> None:
        with self.lock:
            key = (kind, str(status))
            self.by_kind_status[key] = self.by_kind_status.get(key, 0) + 1
            if isinstance(status, int):
                self.by_status[status] = self.by_status.get(status, 0) + 1
                if status in (418, 429):
                    self.bans += 1
            else:
                self.transport_errors += 1
            self.latency.setdefault(kind, deque(maxlen=_LATENCY_SAMPLES)).append(seconds)
            self.all_latency.append(seconds)


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class MaxClient:
    """Asyncio client for MAX REST v3, routed through an ``APIRateLimiter``.

    Args:
        base_url: the exchange (default MAX itself) or a simulator's ``.url``.
        access_key, secret_key: credentials for private calls (omit for public use).
            Neither appears in ``repr``, logs or exceptions.
        limiter: the rate limiter to share; ``None`` makes a private
            ``APIRateLimiter.for_max()`` (closed with the client).
        timeout: seconds (or ``timedelta``) for each HTTP request.
        wallet_type: ``"spot"`` or ``"m"``.
        nonces: the nonce generator; default: the process-wide one of ``access_key``.
        markets_ttl: how long the market list (used to validate market ids) is cached.
        reconcile_attempts, reconcile_delay: how a timed-out create is looked for.
        acquire_timeout: longest wait for a limiter slot (``None``: as long as needed).
        auto_sync_time: measure the server clock before the first signed call.
        completion_guard: also hold each request's units from admission until one
            window after its answer (see :mod:`aimax.exchange.max.guard`), so latency
            jitter can never push the exchange's own window over the limit.
        transport: an httpx transport (tests, proxies).

    Example::

        async with MaxClient(base_url=sim.url, access_key=k, secret_key=s) as client:
            tickers = await client.tickers(["btctwd", "ethtwd"])
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        access_key: str | None = None,
        secret_key: str | None = None,
        limiter: RateLimiterLike | None = None,
        timeout: float | timedelta = 10.0,
        wallet_type: str = "spot",
        nonces: NonceGenerator | None = None,
        markets_ttl: float | timedelta = 3600.0,
        reconcile_attempts: int = 3,
        reconcile_delay: float | timedelta = 0.5,
        acquire_timeout: float | timedelta | None = None,
        auto_sync_time: bool = True,
        completion_guard: bool = True,
        sub_account: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = _clock.monotonic,
        wall: Clock = _clock.wall,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            shown = _mask_userinfo(base_url) if isinstance(base_url, str) else base_url
            raise ConfigurationError(f"base_url must be an http(s) URL, got {shown!r}")
        if (access_key is None) != (secret_key is None):
            raise ConfigurationError("give both access_key and secret_key, or neither")
        if access_key is not None and (not isinstance(access_key, str) or not access_key):
            raise ConfigurationError("access_key must be a non-empty string")
        if secret_key is not None and (not isinstance(secret_key, str) or not secret_key):
            raise ConfigurationError("secret_key must be a non-empty string")
        if isinstance(reconcile_attempts, bool) or not isinstance(reconcile_attempts, int):
            raise ConfigurationError(
                f"reconcile_attempts must be an integer, got {reconcile_attempts!r}"
            )
        if reconcile_attempts < 0:
            raise ConfigurationError(f"reconcile_attempts must be >= 0, got {reconcile_attempts}")
        self._endpoints = Endpoints(wallet_type=wallet_type)
        self._timeout = as_seconds(timeout, name="timeout")
        self._markets_ttl = as_seconds(markets_ttl, name="markets_ttl", allow_inf=True)
        self._reconcile_delay = as_seconds(reconcile_delay, name="reconcile_delay", allow_zero=True)
        self._reconcile_attempts = reconcile_attempts
        self._acquire_timeout = (
            None if acquire_timeout is None else as_seconds(acquire_timeout, name="acquire_timeout")
        )
        self._base_url = base_url.rstrip("/")
        self._access_key = access_key
        self._secret = None if secret_key is None else secret_key.encode("utf-8")
        self._sub_account = sub_account
        self._auto_sync_time = auto_sync_time
        self._time_synced = False
        self._first_sync_task: asyncio.Future[None] | None = None
        self._clock = clock
        self._wall = wall
        if nonces is not None:
            self._nonces: NonceGenerator | None = nonces
        elif access_key is not None:
            self._nonces = nonce_generator_for(access_key)
        else:
            self._nonces = None
        self._owns_limiter = limiter is None
        if limiter is None:
            limiter = APIRateLimiter.for_max()
        self._limiter: RateLimiterLike = limiter
        self._guard = guard_for(limiter, clock) if completion_guard else None
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=self._timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "aimax-optimizer"},
        )
        self._stats = _Stats()
        self._markets: dict[str, Market] | None = None
        self._markets_at = 0.0
        self._closed = False

    # --------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> MaxClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (and the limiter if this client made it). Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._http.aclose()
        if self._owns_limiter:
            close = getattr(self._limiter, "close", None)
            if callable(close):
                close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    @property
    def limiter(self) -> RateLimiterLike:
        """The rate limiter every request passes through."""
        return self._limiter

    @property
    def guard(self) -> CompletionGuard | None:
        """The completion guard shared by the clients of this limiter (or ``None``)."""
        return self._guard

    @property
    def nonces(self) -> NonceGenerator | None:
        """The nonce generator (``None`` without credentials)."""
        return self._nonces

    @property
    def base_url(self) -> str:
        """The exchange's base URL."""
        return self._base_url

    @property
    def wallet_type(self) -> str:
        """``spot`` or ``m``."""
        return self._endpoints.wallet_type

    @property
    def endpoints(self) -> Endpoints:
        """The request builder (validation happens there)."""
        return self._endpoints

    # ------------------------------------------------------------------ public

    async def markets(self, *, refresh: bool = False) -> list[Market]:
        """``GET /api/v3/markets``, cached for ``markets_ttl``; enables market validation."""
        now = self._clock()
        if self._markets is not None and not refresh and now - self._markets_at < self._markets_ttl:
            return list(self._markets.values())
        markets = await self._call(self._endpoints.markets())
        self._markets = {m.id: m for m in markets}
        self._markets_at = now
        self._endpoints.known_markets = frozenset(self._markets)
        return markets

    async def market(self, market: str) -> Market:
        """One market's description (from the cached market list)."""
        markets = self._markets
        if markets is None:
            await self.markets()
            markets = self._markets or {}
        name = self._endpoints._m(market)
        return markets[name]

    async def currencies(self) -> list[Currency]:
        """``GET /api/v3/currencies``."""
        return await self._call(self._endpoints.currencies())

    async def timestamp(self) -> int:
        """``GET /api/v3/timestamp``: the server's Unix time in seconds."""
        return await self._call(self._endpoints.timestamp())

    async def sync_time(self) -> int:
        """Measure the server clock and correct the nonce offset; returns the offset (ms)."""
        sent = self._wall()
        # The "account" kind, not "market_data": the first signed call waits for this
        # sync and must not queue behind market data. (It charges the private pool for
        # a request MAX counts against the IP: one per sync, rare.)
        server = await self._call(self._endpoints.timestamp(), kind="account")
        received = self._wall()
        offset = estimate_offset_ms(server, sent, received)
        if self._nonces is not None:
            self._nonces.set_offset(offset)
        self._time_synced = True
        with self._stats.lock:
            self._stats.time_syncs += 1
        logger.debug("MAX clock offset %d ms", offset)
        return offset

    async def tickers(self, markets: Sequence[str]) -> list[Ticker]:
        """``GET /api/v3/tickers?markets[]=...``: many markets in one request."""
        return await self._call(self._endpoints.tickers(markets))

    async def ticker(self, market: str) -> Ticker:
        """``GET /api/v3/ticker?market=``."""
        return await self._call(self._endpoints.ticker(market))

    async def depth(
        self, market: str, *, limit: int | None = None, sort_by_price: bool | None = None
    ) -> OrderBook:
        """``GET /api/v3/depth``: the order book."""
        return await self._call(
            self._endpoints.depth(market, limit=limit, sort_by_price=sort_by_price)
        )

    async def trades(
        self, market: str, *, timestamp: int | None = None, limit: int | None = None
    ) -> list[PublicTrade]:
        """``GET /api/v3/trades``: recent public trades."""
        return await self._call(self._endpoints.trades(market, timestamp=timestamp, limit=limit))

    async def k(
        self,
        market: str,
        *,
        period: int = 1,
        limit: int | None = None,
        timestamp: int | None = None,
    ) -> list[KLine]:
        """``GET /api/v3/k``: k-lines (``period`` in minutes)."""
        return await self._call(
            self._endpoints.k(market, period=period, limit=limit, timestamp=timestamp)
        )

    # ----------------------------------------------------------------- private

    async def info(self) -> UserInfo:
        """``GET /api/v3/info``."""
        return await self._call(self._endpoints.info())

    async def accounts(self, *, currency: str | None = None) -> list[Account]:
        """``GET /api/v3/wallet/{wallet_type}/accounts``: balances."""
        return await self._call(self._endpoints.accounts(currency=currency))

    async def create_order(
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
    ) -> Order:
        """``POST /api/v3/wallet/{wallet_type}/order``: an order is never placed twice.

        A ``client_oid`` is always sent (generated when not given). The outcome is one of:

        - the accepted :class:`Order`;
        - an :class:`~aimax.errors.ExchangeError` carrying MAX's error code when MAX
          refused it (or :class:`~aimax.errors.ExchangeBanned` for a 429, or the
          limiter's :class:`~aimax.errors.RateLimited` when nothing was sent);
        - :class:`~aimax.errors.OrderStateUnknown` carrying the ``client_oid``.

        Any answer that proves neither (no answer, a timeout, a dropped connection, an
        empty, truncated or non-JSON body, a 5xx) leads to a look-up with
        ``get_order(client_oid=...)``: the order is returned when found; when the
        look-up cannot finish (a 429, no budget, timeouts, not found after
        ``reconcile_attempts``) ``OrderStateUnknown`` is raised. The order may exist.

        The safe retry: send the same order again with ``client_oid=exc.client_oid``.
        MAX refuses a second order with a ``client_oid`` used in the last 24 h; on that
        refusal the existing order is looked up and returned, so the retry either
        places the order once or returns the one already there::

            try:
                order = await client.create_order("btctwd", "buy", "0.01", "1500000")
            except OrderStateUnknown as exc:
                order = await client.create_order(
                    "btctwd", "buy", "0.01", "1500000", client_oid=exc.client_oid
                )
        """
        if self._markets is not None:
            self._check_precision(market, volume=volume, price=price, stop_price=stop_price)
        call = self._endpoints.create_order(
            market,
            side,
            volume,
            price,
            ord_type=ord_type,
            client_oid=client_oid,
            stop_price=stop_price,
            group_id=group_id,
        )
        oid = call.client_oid
        assert oid is not None  # create_order always sets one
        self._require_credentials(call)  # before the try: nothing sent, nothing to reconcile
        if self._closed:
            raise ConfigurationError("this MaxClient is closed")
        try:
            return await self._call(call)
        except OrderStateUnknown:
            raise
        except ExchangeError as exc:
            if not _proves_an_answer(exc):
                return await self._reconcile(oid, call.path, exc)
            if client_oid is not None and _may_be_duplicate(exc):
                return await self._existing_order(oid, call, exc)
            raise

    def _check_precision(
        self,
        market: str,
        *,
        volume: Amount,
        price: Amount | None,
        stop_price: Amount | None,
    ) -> None:
        """Refuse amounts finer than the market's precision (known markets only)."""
        known = (self._markets or {}).get(market) if isinstance(market, str) else None
        if known is None:
            return
        checks = (
            ("volume", volume, known.base_unit_precision),
            ("price", price, known.quote_unit_precision),
            ("stop_price", stop_price, known.quote_unit_precision),
        )
        for name, value, digits in checks:
            if value is None or isinstance(value, bool | float):
                continue  # the endpoint's own checks name those
            try:
                number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
            except ArithmeticError:
                continue
            if not number.is_finite() or number.is_zero():
                continue
            _, places, exponent = number.as_tuple()
            assert isinstance(exponent, int)  # finite
            trailing = 0
            for d in reversed(places):
                if d != 0:
                    break
                trailing += 1
            decimals = -(exponent + trailing)
            if decimals > digits:
                raise ConfigurationError(
                    f"{name} {value!r} has {decimals} decimals, more than {market}'s "
                    f"precision ({digits}); MAX refuses it rather than rounding"
                )

    async def _existing_order(
        self, client_oid: str, call: Call[Any], refusal: ExchangeError
    ) -> Order:
        """A create with a reused ``client_oid`` was refused: return the order holding it."""
        try:
            order = await self.get_order(client_oid=client_oid)
        except OrderNotFound:
            raise refusal from None
        except (ExchangeBanned, RateLimitError, ExchangeError) as exc:
            with self._stats.lock:
                self._stats.unknown += 1
            raise OrderStateUnknown(
                f"create_order with client_oid={client_oid!r} was refused ({refusal}) and the "
                f"order holding that client_oid could not be looked up ({type(exc).__name__})",
                client_oid=client_oid,
                path=call.path,
            ) from refusal
        if order.market != call.params.get("market") or order.side != call.params.get("side"):
            raise refusal  # the client_oid belongs to a different order: not ours to return
        with self._stats.lock:
            self._stats.reconciled += 1
        logger.info("create_order %s was already placed: order %d", client_oid, order.id)
        return order

    async def _reconcile(self, client_oid: str, path: str, cause: ExchangeError) -> Order:
        logger.warning(
            "create_order %s got no usable answer (%s); reconciling by client_oid",
            client_oid,
            type(cause).__name__,
        )
        last: AimaxError = cause
        tries = 0
        for attempt in range(self._reconcile_attempts):
            if attempt:
                await asyncio.sleep(self._reconcile_delay)
            tries += 1
            try:
                order = await self.get_order(client_oid=client_oid)
            except (ExchangeBanned, RateLimitError) as exc:
                last = exc  # banned or no budget: more look-ups now would not help
                break
            except AimaxError as exc:  # not found (yet), no answer, 5xx: look again
                last = exc
                continue
            with self._stats.lock:
                self._stats.reconciled += 1
            logger.info("create_order %s reconciled: order %d found", client_oid, order.id)
            return order
        with self._stats.lock:
            self._stats.unknown += 1
        raise OrderStateUnknown(
            f"create_order got no usable answer ({type(cause).__name__}: {cause}) and "
            f"the look-up by client_oid={client_oid!r} did not settle it after {tries} "
            f"look-up(s) (last: {type(last).__name__}); it was NOT sent again. Retry "
            f"with the same client_oid: MAX refuses a duplicate",
            client_oid=client_oid,
            path=path,
        ) from cause

    async def cancel_order(
        self, *, id: int | None = None, client_oid: str | None = None
    ) -> CancelResult:
        """``DELETE /api/v3/order`` by ``id`` or ``client_oid`` (asynchronous on MAX).

        When the answer is lost (no answer, 5xx, unreadable body) the order is looked
        up: closed -> its :class:`CancelResult`; still open -> the cancel is sent again
        (a cancel cannot be applied twice). If that does not settle it within
        ``reconcile_attempts``, :class:`~aimax.errors.OrderStateUnknown` is raised
        (``client_oid`` is the one given or learnt, ``""`` when only ``id`` is known).
        """
        call = self._endpoints.cancel_order(id=id, client_oid=client_oid)
        self._require_credentials(call)
        try:
            return await self._call(call)
        except OrderStateUnknown:
            raise
        except ExchangeError as exc:
            if _proves_an_answer(exc):
                raise
            return await self._confirm_cancel(call, id=id, client_oid=client_oid, cause=exc)

    async def _confirm_cancel(
        self,
        call: Call[CancelResult],
        *,
        id: int | None,
        client_oid: str | None,
        cause: ExchangeError,
    ) -> CancelResult:
        logger.warning(
            "cancel %s got no usable answer (%s); looking the order up",
            dict(call.params),
            type(cause).__name__,
        )
        known_oid = client_oid
        last: AimaxError = cause
        for attempt in range(self._reconcile_attempts):
            if attempt:
                await asyncio.sleep(self._reconcile_delay)
            try:
                order = await self.get_order(id=id, client_oid=client_oid)
            except OrderNotFound:
                raise
            except (ExchangeBanned, RateLimitError) as exc:
                last = exc
                break
            except AimaxError as exc:
                last = exc
                continue
            known_oid = known_oid or order.client_oid
            if order.state in _CLOSED_STATES:
                cancelled = order.state == "cancel"
                return CancelResult(
                    accepted=cancelled,
                    order=order,
                    error=None if cancelled else f"order {order.id} is {order.state}",
                )
            try:  # still open: the cancel was lost or is queued; sending it again is safe
                return await self._call(call)
            except (ExchangeBanned, RateLimitError) as exc:
                last = exc
                break
            except ExchangeError as exc:
                if _proves_an_answer(exc) and exc.code not in (2003,):
                    raise
                last = exc  # 2003: closed meanwhile; or no answer again: look again
        raise OrderStateUnknown(
            f"cancel of {dict(call.params)} got no usable answer ({type(cause).__name__}) "
            f"and look-ups did not settle it (last: {type(last).__name__})",
            client_oid=known_oid or "",
            path=call.path,
        ) from cause

    async def cancel_orders(
        self, *, market: str | None = None, side: str | None = None, group_id: int | None = None
    ) -> list[CancelResult]:
        """``DELETE /api/v3/wallet/{wallet_type}/orders``: bulk cancel."""
        return await self._call(
            self._endpoints.cancel_orders(market=market, side=side, group_id=group_id)
        )

    async def get_order(self, *, id: int | None = None, client_oid: str | None = None) -> Order:
        """``GET /api/v3/order`` by ``id`` or ``client_oid``."""
        return await self._call(self._endpoints.get_order(id=id, client_oid=client_oid))

    async def open_orders(
        self,
        market: str | None = None,
        *,
        timestamp: int | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """``GET /api/v3/wallet/{wallet_type}/orders/open``."""
        return await self._call(
            self._endpoints.open_orders(market, timestamp=timestamp, order_by=order_by, limit=limit)
        )

    async def closed_orders(
        self,
        market: str | None = None,
        *,
        timestamp: int | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """``GET /api/v3/wallet/{wallet_type}/orders/closed``."""
        return await self._call(
            self._endpoints.closed_orders(
                market, timestamp=timestamp, order_by=order_by, limit=limit
            )
        )

    async def order_history(
        self, market: str | None = None, *, from_id: int | None = None, limit: int | None = None
    ) -> list[Order]:
        """``GET /api/v3/wallet/{wallet_type}/orders/history``."""
        return await self._call(self._endpoints.order_history(market, from_id=from_id, limit=limit))

    async def order_trades(
        self, *, order_id: int | None = None, client_oid: str | None = None
    ) -> list[Trade]:
        """``GET /api/v3/order/trades``: the trades of one order."""
        return await self._call(
            self._endpoints.order_trades(order_id=order_id, client_oid=client_oid)
        )

    async def my_trades(
        self,
        market: str | None = None,
        *,
        timestamp: int | None = None,
        from_id: int | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> list[Trade]:
        """``GET /api/v3/wallet/{wallet_type}/trades``: the account's own trades."""
        return await self._call(
            self._endpoints.my_trades(
                market, timestamp=timestamp, from_id=from_id, order_by=order_by, limit=limit
            )
        )

    # --------------------------------------------------------------- transport

    def kind_of(self, call: Call[Any]) -> str:
        """The limiter kind a call acquires."""
        return max_kind_for(call.method, call.path)

    async def _call(self, call: Call[T], *, kind: str | None = None) -> T:
        """Acquire, sign, send, feed back, map errors, parse; one retry on 2006/2007."""
        if self._closed:
            raise ConfigurationError("this MaxClient is closed")
        if call.private:
            self._require_credentials(call)
            if self._auto_sync_time and not self._time_synced:
                # one sync, awaited by every call that arrives while it runs
                if self._first_sync_task is None:
                    self._first_sync_task = asyncio.ensure_future(self._first_sync())
                await asyncio.shield(self._first_sync_task)
        if kind is None:
            kind = self.kind_of(call)
        for attempt in (1, 2):
            try:
                body = await self._send(call, kind)
            except NonceError:
                if attempt == 2 or not call.private:
                    raise
                with self._stats.lock:
                    self._stats.nonce_resyncs += 1
                logger.warning("MAX rejected the nonce on %s; resyncing the clock", call.path)
                await self.sync_time()
                continue
            try:
                return call.parse(body)
            except ExchangeError as exc:
                exc.path = call.path
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _require_credentials(self, call: Call[Any]) -> None:
        if self._secret is None or self._access_key is None or self._nonces is None:
            raise AuthenticationError(
                f"{call.path} is a private endpoint: give access_key and secret_key",
                path=call.path,
            )

    async def _first_sync(self) -> None:
        try:
            await self.sync_time()
        except AimaxError as exc:  # one attempt; a failure leaves the offset at 0
            logger.warning("could not read MAX server time (%s); nonce offset stays 0", exc)
        finally:
            self._time_synced = True

    async def _send(self, call: Call[Any], kind: str) -> Any:
        """Guard, limiter, HTTP; then feedback and error mapping."""
        guard = self._guard
        asked = self._clock()
        units = await guard.enter(kind) if guard is not None else None
        sent = False
        try:
            await self._limiter.acquire_async(kind, pair=call.market, timeout=self._acquire_timeout)
            self._stats.admitted(kind, self._clock() - asked)
            sent = True
            response = await self._http_send(call, kind)
        finally:
            if guard is not None and units is not None:
                guard.exit(units, sent=sent)
        return self._handle(call, kind, response)

    async def _http_send(self, call: Call[Any], kind: str) -> httpx.Response:
        """Sign (a fresh nonce) and send; transport failures become TransportError."""
        if not call.private:
            url = f"{call.path}?{_query_string(call.params)}" if call.params else call.path
            return await self._request(call, kind, url, content=None, headers={}, trace=None)
        assert self._nonces is not None
        lane = self._nonces.lane
        # The lane: nonce, signature and the write happen in one turn per key, so the
        # server sees this key's nonces in the order they were issued.
        await lane.acquire()
        written = False

        def leave_lane() -> None:
            nonlocal written
            if not written:
                written = True
                lane.release()

        fresh_connection = False

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            # Leave once the request is written. On a connection opened for this request,
            # stay until the answer starts: a server accepts a new connection a few steps
            # later than it reads an open one, so a request written next on an open
            # connection could be read first.
            nonlocal fresh_connection
            if event.startswith("connection.connect_tcp"):
                fresh_connection = True
            elif (
                event.endswith("send_request_body.complete") and not fresh_connection
            ) or event.endswith(("receive_response_headers.complete", ".failed")):
                leave_lane()

        try:
            assert self._secret is not None
            assert self._access_key is not None
            signed = sign_request(self._secret, call.path, call.params, nonce=self._nonces.next())
            headers = signed.headers(self._access_key)
            if self._sub_account is not None:
                headers["X-Sub-Account"] = self._sub_account
            content: bytes | None = None
            if call.method == "GET":
                url = f"{call.path}?{_query_string(signed.params)}" if signed.params else call.path
            else:
                url = call.path
                content = signed.body
            return await self._request(
                call, kind, url, content=content, headers=headers, trace=trace
            )
        finally:
            leave_lane()

    async def _request(
        self,
        call: Call[Any],
        kind: str,
        url: str,
        *,
        content: bytes | None,
        headers: dict[str, str],
        trace: Any,
    ) -> httpx.Response:
        with self._stats.lock:
            self._stats.requests += 1
            self._stats.in_flight += 1
        started = self._clock()
        extensions = {"trace": trace} if trace is not None else None
        try:
            response = await self._http.request(
                call.method, url, content=content, headers=headers, extensions=extensions
            )
        except httpx.TimeoutException as exc:
            self._stats.answered(kind, "timeout", self._clock() - started)
            raise TransportError(
                f"{call.method} {call.path} timed out after {self._timeout:g} s "
                f"({type(exc).__name__})",
                path=call.path,
            ) from None
        except httpx.HTTPError as exc:
            self._stats.answered(kind, "transport_error", self._clock() - started)
            raise TransportError(
                f"{call.method} {call.path} failed: {type(exc).__name__}", path=call.path
            ) from None
        finally:
            with self._stats.lock:
                self._stats.in_flight -= 1
        self._stats.answered(kind, response.status_code, self._clock() - started)
        return response

    def _handle(self, call: Call[Any], kind: str, response: httpx.Response) -> Any:
        """Feed the answer back to the limiter, raise its error if any, return its JSON."""
        self._limiter.on_response(response.status_code, response.headers, kind=kind)
        body = _json_or_none(response.content)
        error = exception_for(
            response.status_code,
            body,
            path=call.path,
            headers=response.headers,
            now=self._wall(),
        )
        if error is not None:
            with self._stats.lock:
                self._stats.exchange_errors += 1
            logger.debug(
                "%s %s -> HTTP %d, %s", call.method, call.path, response.status_code, error
            )
            raise error
        if body is None:
            raise ExchangeError(
                f"{call.method} {call.path}: HTTP {response.status_code} without a JSON body",
                status=response.status_code,
                path=call.path,
            )
        logger.debug("%s %s -> HTTP %d", call.method, call.path, response.status_code)
        return body

    # --------------------------------------------------------------- figures

    def statistics(self) -> ClientStatistics:
        """A snapshot of the client's traffic."""
        s = self._stats
        with s.lock:
            latencies = list(s.all_latency)
            return ClientStatistics(
                requests=s.requests,
                responses=dict(s.by_status),
                transport_errors=s.transport_errors,
                exchange_errors=s.exchange_errors,
                bans=s.bans,
                nonce_resyncs=s.nonce_resyncs,
                time_syncs=s.time_syncs,
                reconciled_orders=s.reconciled,
                unknown_orders=s.unknown,
                in_flight=s.in_flight,
                latency_p50=_quantile(latencies, 0.5) if latencies else None,
                latency_p95=_quantile(latencies, 0.95) if latencies else None,
                admission_wait_p99={
                    kind: _quantile(list(waits), 0.99)
                    for kind, waits in s.admission.items()
                    if waits
                },
            )

    def metric_samples(self) -> list[MetricSample]:
        """``aimax_client_requests_total{kind,status}`` and
        ``aimax_client_latency_seconds{kind,quantile}`` for the monitor."""
        s = self._stats
        with s.lock:
            counts = dict(s.by_kind_status)
            latency = {kind: list(values) for kind, values in s.latency.items()}
        samples = [
            MetricSample(
                "aimax_client_requests_total",
                float(n),
                {"kind": kind, "status": status},
                "counter",
                "MAX REST requests by limiter kind and HTTP status (or timeout)",
            )
            for (kind, status), n in sorted(counts.items())
        ]
        for kind, values in sorted(latency.items()):
            if not values:
                continue
            samples.extend(
                MetricSample(
                    "aimax_client_latency_seconds",
                    _quantile(values, q),
                    {"kind": kind, "quantile": str(q)},
                    "gauge",
                    "MAX REST request latency quantiles over recent requests",
                )
                for q in _QUANTILES
            )
        return samples

    def __repr__(self) -> str:
        s = self.statistics()
        shown = _mask_userinfo(self._base_url)
        return (
            f"MaxClient(base_url={shown!r}, wallet_type={self.wallet_type!r}, "
            f"authenticated={self._secret is not None}, requests={s.requests}, "
            f"in_flight={s.in_flight}, bans={s.bans}, closed={self._closed})"
        )


_CLOSED_STATES = frozenset({"done", "cancel", "failed"})


def _proves_an_answer(exc: ExchangeError) -> bool:
    """Whether ``exc`` shows that MAX handled and refused the request.

    A MAX error body with a code other than 5999 on a non-5xx status, or a 429 ban,
    proves a refusal. No answer, an unreadable body or a 5xx proves nothing.

        >>> _proves_an_answer(ExchangeError("x", code=2018, status=200))
        True
        >>> _proves_an_answer(ExchangeError("x", code=5999, status=500))
        False
    """
    if isinstance(exc, ExchangeBanned):
        return True
    if isinstance(exc, TransportError) or exc.code is None or exc.code == 5999:
        return False
    return exc.status is not None and exc.status < 500


def _may_be_duplicate(exc: ExchangeError) -> bool:
    """A refusal that may mean "this client_oid is already used" (MAX's code for it
    is not documented: 2002 is its create-order error)."""
    return isinstance(exc, OrderError | BadRequest) and (
        exc.code == 2002 or "client_oid" in str(exc).lower()
    )


def _mask_userinfo(url: str) -> str:
    """``url`` with userinfo credentials masked: ``user:password@`` -> ``user:***@``.

    ::

        >>> _mask_userinfo("http://user:pw@host:8080/x")
        'http://user:***@host:8080/x'
        >>> _mask_userinfo("https://max-api.maicoin.com")
        'https://max-api.maicoin.com'
    """
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" not in netloc:
        return url
    userinfo, _, host = netloc.rpartition("@")
    user, sep, _password = userinfo.partition(":")
    # a lone user part may be a token (``https://TOKEN@host``): masked as well
    masked = f"{user}:***@{host}" if sep else f"***@{host}"
    return urlunsplit(parts._replace(netloc=masked))


def _query_string(params: Mapping[str, Any]) -> str:
    """``key=value`` pairs with arrays as ``key[]=`` and the brackets left readable."""
    from urllib.parse import urlencode

    return urlencode(encode_query(params), safe="[]")


def _json_or_none(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content, parse_float=Decimal)
    except ValueError:
        return None
