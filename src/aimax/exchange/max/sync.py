"""A blocking facade over :class:`~aimax.exchange.max.client.MaxClient`.

:class:`MaxClientSync` owns a private event loop running in one daemon thread and
forwards every method to an async ``MaxClient`` living in that loop: the endpoint,
signing, limiter and error logic exist once. Many threads may call it at once (their
calls run concurrently in the loop). ``close()`` (or leaving the ``with`` block, or
interpreter exit) stops the thread::

    with MaxClientSync(base_url=sim.url, access_key=key, secret_key=secret) as max_:
        balances = max_.accounts()
        order = max_.create_order("btctwd", "sell", "0.01", "2000000")
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

import httpx

from aimax import _clock
from aimax._clock import Clock
from aimax._metrics import MetricSample
from aimax.errors import ConfigurationError
from aimax.exchange.max.client import (
    DEFAULT_BASE_URL,
    ClientStatistics,
    MaxClient,
    RateLimiterLike,
)
from aimax.exchange.max.endpoints import Amount, CancelResult
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
from aimax.exchange.max.nonce import NonceGenerator

__all__ = ["MaxClientSync"]

T = TypeVar("T")


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Stop the loop thread (finaliser: runs at close() or at interpreter exit)."""
    if loop.is_closed():
        return
    if thread.is_alive():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10.0)
    if not thread.is_alive() and not loop.is_closed():
        loop.close()


class MaxClientSync:
    """Blocking MAX client: the same methods as ``MaxClient``, without ``await``.

    Takes the same arguments as :class:`MaxClient` (``transport`` excepted, which
    must be an async transport as there). ``call_timeout`` bounds how long a method
    waits for its result (``None``: as long as the call takes).
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
        call_timeout: float | None = None,
    ) -> None:
        self._call_timeout = call_timeout
        self._loop = asyncio.new_event_loop()
        # The thread must not reference self, or the finaliser could never run early.
        self._thread = threading.Thread(
            target=_run_loop, args=(self._loop,), name="aimax-max-client", daemon=True
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, _stop_loop, self._loop, self._thread)
        self._closed = False
        self._lock = threading.Lock()

        async def make() -> MaxClient:
            return MaxClient(
                base_url=base_url,
                access_key=access_key,
                secret_key=secret_key,
                limiter=limiter,
                timeout=timeout,
                wallet_type=wallet_type,
                nonces=nonces,
                markets_ttl=markets_ttl,
                reconcile_attempts=reconcile_attempts,
                reconcile_delay=reconcile_delay,
                acquire_timeout=acquire_timeout,
                auto_sync_time=auto_sync_time,
                completion_guard=completion_guard,
                sub_account=sub_account,
                transport=transport,
                clock=clock,
                wall=wall,
            )

        try:
            self._client = self._submit(make()).result()
        except BaseException:
            self._finalizer()
            raise

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise ConfigurationError("this MaxClientSync is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise ConfigurationError("MaxClientSync cannot be called from its own loop thread")
        future = self._submit(coro)
        try:
            return future.result(timeout=self._call_timeout)
        except TimeoutError:
            future.cancel()
            raise

    # --------------------------------------------------------------- lifecycle

    def __enter__(self) -> MaxClientSync:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the async client and stop the loop thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._submit(self._client.aclose()).result(timeout=10.0)
        finally:
            self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def client(self) -> MaxClient:
        """The async client behind the facade (lives in the facade's loop)."""
        return self._client

    # ------------------------------------------------------------------ public

    def markets(self, *, refresh: bool = False) -> list[Market]:
        """See :meth:`MaxClient.markets`."""
        return self._run(self._client.markets(refresh=refresh))

    def market(self, market: str) -> Market:
        """See :meth:`MaxClient.market`."""
        return self._run(self._client.market(market))

    def currencies(self) -> list[Currency]:
        """See :meth:`MaxClient.currencies`."""
        return self._run(self._client.currencies())

    def timestamp(self) -> int:
        """See :meth:`MaxClient.timestamp`."""
        return self._run(self._client.timestamp())

    def sync_time(self) -> int:
        """See :meth:`MaxClient.sync_time`."""
        return self._run(self._client.sync_time())

    def tickers(self, markets: Sequence[str]) -> list[Ticker]:
        """See :meth:`MaxClient.tickers`."""
        return self._run(self._client.tickers(markets))

    def ticker(self, market: str) -> Ticker:
        """See :meth:`MaxClient.ticker`."""
        return self._run(self._client.ticker(market))

    def depth(
        self, market: str, *, limit: int | None = None, sort_by_price: bool | None = None
    ) -> OrderBook:
        """See :meth:`MaxClient.depth`."""
        return self._run(self._client.depth(market, limit=limit, sort_by_price=sort_by_price))

    def trades(
        self, market: str, *, timestamp: int | None = None, limit: int | None = None
    ) -> list[PublicTrade]:
        """See :meth:`MaxClient.trades`."""
        return self._run(self._client.trades(market, timestamp=timestamp, limit=limit))

    def k(
        self,
        market: str,
        *,
        period: int = 1,
        limit: int | None = None,
        timestamp: int | None = None,
    ) -> list[KLine]:
        """See :meth:`MaxClient.k`."""
        return self._run(self._client.k(market, period=period, limit=limit, timestamp=timestamp))

    # ----------------------------------------------------------------- private

    def info(self) -> UserInfo:
        """See :meth:`MaxClient.info`."""
        return self._run(self._client.info())

    def accounts(self, *, currency: str | None = None) -> list[Account]:
        """See :meth:`MaxClient.accounts`."""
        return self._run(self._client.accounts(currency=currency))

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
    ) -> Order:
        """See :meth:`MaxClient.create_order` (same reconciliation on timeouts)."""
        return self._run(
            self._client.create_order(
                market,
                side,
                volume,
                price,
                ord_type=ord_type,
                client_oid=client_oid,
                stop_price=stop_price,
                group_id=group_id,
            )
        )

    def cancel_order(self, *, id: int | None = None, client_oid: str | None = None) -> CancelResult:
        """See :meth:`MaxClient.cancel_order`."""
        return self._run(self._client.cancel_order(id=id, client_oid=client_oid))

    def cancel_orders(
        self, *, market: str | None = None, side: str | None = None, group_id: int | None = None
    ) -> list[CancelResult]:
        """See :meth:`MaxClient.cancel_orders`."""
        return self._run(self._client.cancel_orders(market=market, side=side, group_id=group_id))

    def get_order(self, *, id: int | None = None, client_oid: str | None = None) -> Order:
        """See :meth:`MaxClient.get_order`."""
        return self._run(self._client.get_order(id=id, client_oid=client_oid))

    def open_orders(
        self,
        market: str | None = None,
        *,
        timestamp: int | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """See :meth:`MaxClient.open_orders`."""
        return self._run(
            self._client.open_orders(market, timestamp=timestamp, order_by=order_by, limit=limit)
        )

    def closed_orders(
        self,
        market: str | None = None,
        *,
        timestamp: int | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """See :meth:`MaxClient.closed_orders`."""
        return self._run(
            self._client.closed_orders(market, timestamp=timestamp, order_by=order_by, limit=limit)
        )

    def order_history(
        self, market: str | None = None, *, from_id: int | None = None, limit: int | None = None
    ) -> list[Order]:
        """See :meth:`MaxClient.order_history`."""
        return self._run(self._client.order_history(market, from_id=from_id, limit=limit))

    def order_trades(
        self, *, order_id: int | None = None, client_oid: str | None = None
    ) -> list[Trade]:
        """See :meth:`MaxClient.order_trades`."""
        return self._run(self._client.order_trades(order_id=order_id, client_oid=client_oid))

    def my_trades(
        self,
        market: str | None = None,
        *,
        timestamp: int | None = None,
        from_id: int | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> list[Trade]:
        """See :meth:`MaxClient.my_trades`."""
        return self._run(
            self._client.my_trades(
                market, timestamp=timestamp, from_id=from_id, order_by=order_by, limit=limit
            )
        )

    # ---------------------------------------------------------------- figures

    def statistics(self) -> ClientStatistics:
        """See :meth:`MaxClient.statistics`."""
        return self._client.statistics()

    def metric_samples(self) -> list[MetricSample]:
        """See :meth:`MaxClient.metric_samples`."""
        return self._client.metric_samples()

    def __repr__(self) -> str:
        return f"MaxClientSync({self._client!r}, closed={self._closed})"
