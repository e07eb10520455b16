"""MAX's WebSocket market-data stream with local order books (aiohttp client).

:class:`MaxStream` keeps public subscriptions (``book``, ``trade``, ``ticker``,
``kline``) on as few connections as the per-connection cap allows, batches them into
few ``sub`` messages, and routes every connection through the shared limiter
(``ws_connect`` per connection attempt, ``ws_message`` per sub/unsub/auth message).
It pings every ``ping_interval``, treats ``read_timeout`` of silence as a dead
connection, and reconnects with exponential backoff, full jitter and a floor; a
429 on connect is fed to the limiter (MAX's absolute ``Retry-After``) and waited out.

Books follow MAX's continuity rules (:mod:`aimax.exchange.max.book`); a gap or a
version change resubscribes that one market; a market silent for longer than
``stale_multiple`` times its usual update interval while its connection is up is
flagged stale and resynced; a market that stays unsynced longer than
``fallback_after`` is filled from REST ``depth`` when a ``rest`` client is given.

The receive loop runs no user code: each market delivers to a conflating slot (a
slow consumer sees the latest book, never a backlog)::

    from aimax.exchange.max import MaxStream

    async with MaxStream(limiter=limiter) as stream:
        await stream.subscribe_books(["btctwd", "ethtwd"], depth=20)
        async for book in stream.watch("btctwd"):
            if book.synced:
                print(book.best_bid, book.best_ask)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

import aiohttp

from aimax import _clock
from aimax.errors import ConfigurationError, LimiterClosed
from aimax.exchange.max.book import BookEvent, LocalBook, OrderBooks
from aimax.exchange.max.errormap import parse_retry_after

__all__ = ["DEFAULT_STREAM_URL", "MaxStream", "StreamSettings", "StreamStatistics"]

log = logging.getLogger(__name__)

DEFAULT_STREAM_URL = "wss://max-stream.maicoin.com/ws"
BOOK_DEPTHS = (1, 5, 10, 20, 50)
CHANNELS = ("book", "trade", "ticker", "kline")
PRIVATE_FILTERS = (
    "order",
    "trade",
    "account",
    "trade_update",
    "fast_trade_update",
    "mwallet_order",
    "mwallet_trade",
    "mwallet_account",
    "mwallet_trade_update",
    "mwallet_fast_trade_update",
)
_PRIVATE = ("user", "*")


class StreamLimiter(Protocol):
    """What the stream needs from :class:`aimax.ratelimit.APIRateLimiter`."""

    async def acquire_async(self, kind: str, *, cost: int | None = None) -> object:
        """Wait for a slot of ``kind``."""
        ...

    def on_response(
        self, status: int, headers: Mapping[str, str], *, kind: str | None = None
    ) -> object:
        """Feed an answer back (429 / Retry-After)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSettings:
    """How the stream paces itself (MAX's and bbgo's figures by default).

    ``max_subscriptions_per_connection`` and ``max_subscriptions_per_message`` are
    not documented by MAX: configurable. Durations are seconds.

        >>> StreamSettings(ping_interval=10).read_timeout
        120.0
    """

    ping_interval: float = 30.0
    read_timeout: float = 120.0
    backoff_floor: float = 1.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    stable_after: float = 60.0
    max_subscriptions_per_connection: int = 200
    max_subscriptions_per_message: int = 50
    stale_multiple: float = 20.0
    stale_floor: float = 5.0
    check_interval: float = 1.0
    fallback_after: float = 10.0
    trade_queue: int = 1000
    connect_timeout: float = 10.0

    def __post_init__(self) -> None:
        for name in (
            "ping_interval",
            "read_timeout",
            "backoff_base",
            "backoff_cap",
            "stale_multiple",
            "stale_floor",
            "check_interval",
            "fallback_after",
            "connect_timeout",
        ):
            object.__setattr__(self, name, _clock.as_seconds(getattr(self, name), name=name))
        for name in ("backoff_floor", "stable_after"):
            object.__setattr__(
                self, name, _clock.as_seconds(getattr(self, name), name=name, allow_zero=True)
            )
        for name in ("max_subscriptions_per_connection", "max_subscriptions_per_message"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.trade_queue, bool) or not isinstance(self.trade_queue, int):
            raise ConfigurationError(f"trade_queue must be an integer, got {self.trade_queue!r}")
        if self.trade_queue <= 0:
            raise ConfigurationError(f"trade_queue must be positive, got {self.trade_queue!r}")
        if self.backoff_floor > self.backoff_cap:
            raise ConfigurationError(
                f"backoff_floor ({self.backoff_floor}) must not exceed backoff_cap "
                f"({self.backoff_cap})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStatistics:
    """A snapshot of a :class:`MaxStream`."""

    connections: int
    connected: int
    subscriptions: int
    markets: int
    synced: int
    connects: int
    reconnects: int
    refused: int
    messages_sent: int
    messages_received: int
    resyncs: int
    resubscribes: int
    stale: int
    fallbacks: int
    errors: int
    dead_connections: int


class _Slot:
    """A conflating mailbox: holds a change counter, wakes every waiter once."""

    __slots__ = ("_event", "changes")

    def __init__(self) -> None:
        self.changes = 0
        self._event = asyncio.Event()

    def touch(self) -> None:
        self.changes += 1
        self._event.set()

    async def wait_beyond(self, seen: int) -> int:
        while self.changes <= seen:
            self._event.clear()
            await self._event.wait()
        return self.changes


@dataclass(slots=True)
class _Sub:
    channel: str
    market: str
    depth: int | None = None
    resolution: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.market)

    def wire(self) -> dict[str, object]:
        out: dict[str, object] = {"channel": self.channel, "market": self.market}
        if self.depth is not None:
            out["depth"] = self.depth
        if self.resolution is not None:
            out["resolution"] = self.resolution
        return out


class _Connection:
    """One socket and the subscriptions it carries."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.subs: dict[tuple[str, str], _Sub] = {}
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.task: asyncio.Task[None] | None = None
        self.resync: set[str] = set()
        self.resync_event = asyncio.Event()
        self.up = False
        self.attempt = 0
        self.filters: list[str] | None = None  # set: the authenticated connection


class MaxStream:
    """Public MAX streams as an async context manager (see the module doc).

    ``limiter`` is the shared :class:`~aimax.ratelimit.APIRateLimiter` (one for MAX
    is made, and closed with the stream, when None); ``rest`` an optional
    :class:`~aimax.exchange.max.MaxClient` for the depth fallback. ``clock`` is
    monotonic seconds, ``wall`` Unix seconds (for Retry-After), ``rng`` the
    jitter's source.

        >>> stream = MaxStream(url="ws://127.0.0.1:1/ws")
        >>> len(stream.books), stream.closed
        (0, False)
    """

    def __init__(
        self,
        *,
        url: str = DEFAULT_STREAM_URL,
        limiter: StreamLimiter | None = None,
        settings: StreamSettings | None = None,
        rest: Any = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        clock: _clock.Clock = _clock.monotonic,
        wall: _clock.Clock = _clock.wall,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ConfigurationError(f"url must be a ws:// or wss:// URL, got {url!r}")
        if settings is None:
            settings = StreamSettings()
        if not isinstance(settings, StreamSettings):
            raise ConfigurationError(f"settings must be a StreamSettings, got {settings!r}")
        if (access_key is None) != (secret_key is None):
            raise ConfigurationError("access_key and secret_key go together")
        if access_key is not None and (not access_key or not secret_key):
            raise ConfigurationError("access_key and secret_key must be non-empty")
        self.url = url
        self.settings = settings
        self._access_key = access_key
        self._secret = secret_key.encode() if secret_key is not None else None
        self._last_nonce = 0
        self._orders: dict[int, Mapping[str, object]] = {}
        self._balances: dict[str, Mapping[str, object]] = {}
        self._my_trades: deque[Mapping[str, object]] = deque(maxlen=settings.trade_queue)
        self._private_slot = _Slot()
        self.authenticated = False
        self._own_limiter = limiter is None
        self._given_limiter = limiter
        self._rest = rest
        self._clock = clock
        self._wall = wall
        self._rng = rng if rng is not None else random.Random()
        self._books = OrderBooks()
        self._subs: dict[tuple[str, str], _Connection] = {}
        self._connections: list[_Connection] = []
        self._slots: dict[str, _Slot] = {}
        self._trades: dict[str, deque[dict[str, object]]] = {}
        self._tickers: dict[str, dict[str, object]] = {}
        self._klines: dict[str, dict[str, object]] = {}
        self._last_seen: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._unsynced_since: dict[str, float] = {}
        self._session: aiohttp.ClientSession | None = None
        self._checker: asyncio.Task[None] | None = None
        self._fallbacks_running: set[asyncio.Task[None]] = set()
        self._closed = False
        self._started = False
        self._ids = itertools.count(1)
        self._n = dict.fromkeys(
            (
                "connects",
                "reconnects",
                "refused",
                "sent",
                "received",
                "resubscribes",
                "stale",
                "fallbacks",
                "errors",
                "dead",
            ),
            0,
        )

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the HTTP session and the stale checker (``async with`` does it)."""
        if self._closed:
            raise ConfigurationError("the stream is closed")
        if self._started:
            return
        self._started = True
        if self._given_limiter is None:
            from aimax.ratelimit import APIRateLimiter

            self._given_limiter = APIRateLimiter.for_max()
        self._session = aiohttp.ClientSession()
        self._checker = asyncio.create_task(self._check_loop(), name="aimax-stream-check")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    async def close(self) -> None:
        """Stop every task, close every socket, free every per-market structure."""
        if self._closed:
            return
        self._closed = True
        tasks: list[asyncio.Task[None]] = [c.task for c in self._connections if c.task]
        if self._checker is not None:
            tasks.append(self._checker)
        tasks.extend(self._fallbacks_running)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for conn in self._connections:
            if conn.ws is not None:
                with contextlib.suppress(Exception):
                    await conn.ws.close()
                conn.ws = None
        self._connections.clear()
        self._subs.clear()
        for market in list(self._books):
            self._books.remove(market)
        for slot in self._slots.values():
            slot.touch()  # wake watchers: they see the stream closed
        self._slots.clear()
        self._trades.clear()
        self._tickers.clear()
        self._klines.clear()
        self._last_seen.clear()
        self._interval.clear()
        self._unsynced_since.clear()
        self._fallbacks_running.clear()
        self._orders.clear()
        self._balances.clear()
        self._my_trades.clear()
        self._private_slot.touch()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._own_limiter and self._given_limiter is not None:
            close = getattr(self._given_limiter, "close", None)
            if callable(close):
                close()

    @property
    def _limiter(self) -> StreamLimiter:
        limiter = self._given_limiter
        if limiter is None:
            raise ConfigurationError("the stream is not started")
        return limiter

    # ---------------------------------------------------------------- reading

    @property
    def books(self) -> OrderBooks:
        """Every subscribed market's :class:`LocalBook`."""
        return self._books

    def trades(self, market: str) -> list[dict[str, object]]:
        """The public trades received for ``market`` and not yet taken (oldest first);
        taking them empties the bounded queue."""
        queue = self._trades.get(market)
        if queue is None:
            return []
        out = list(queue)
        queue.clear()
        return out

    def ticker(self, market: str) -> Mapping[str, object] | None:
        """The latest ``tk`` object of ``market`` (MAX's short keys), or None."""
        return self._tickers.get(market)

    def kline(self, market: str) -> Mapping[str, object] | None:
        """The latest ``k`` object of ``market``, or None."""
        return self._klines.get(market)

    @property
    def orders(self) -> Mapping[int, Mapping[str, object]]:
        """The private stream's latest state of each order by id (MAX's short keys:
        ``S`` state, ``rv`` remaining, ``ev`` executed, ``ci`` client oid, ...)."""
        return self._orders

    @property
    def balances(self) -> Mapping[str, Mapping[str, object]]:
        """The latest ``B`` entry per currency (``av`` available, ``l`` locked)."""
        return self._balances

    def my_trades(self) -> list[Mapping[str, object]]:
        """The account's trades received and not yet taken (oldest first)."""
        out = list(self._my_trades)
        self._my_trades.clear()
        return out

    async def watch_private(self) -> AsyncIterator[None]:
        """Yield after each private event batch (orders, trades, balances changed)."""
        seen = self._private_slot.changes
        while not self._stopped():
            seen = await self._private_slot.wait_beyond(seen)
            if self._stopped():  # close() wakes the watchers
                break
            yield None

    def _stopped(self) -> bool:
        return self._closed

    async def subscribe_private(self, filters: Iterable[str] = ()) -> None:
        """Authenticate a connection of its own and follow the account (MAX's filters;
        empty means order + trade + account)."""
        if self._access_key is None:
            raise ConfigurationError("subscribe_private needs access_key and secret_key")
        wanted = list(filters)
        for name in wanted:
            if name not in PRIVATE_FILTERS:
                raise ConfigurationError(f"filter must be one of {PRIVATE_FILTERS}, got {name!r}")
        if _PRIVATE in self._subs:
            return
        if self._closed:
            raise ConfigurationError("the stream is closed")
        await self.start()
        conn = _Connection(next(self._ids))
        conn.filters = wanted
        conn.subs[_PRIVATE] = _Sub(*_PRIVATE)
        self._subs[_PRIVATE] = conn
        self._connections.append(conn)
        conn.task = asyncio.create_task(self._run(conn), name=f"aimax-stream-conn{conn.index}")

    def _auth_message(self) -> dict[str, object]:
        assert self._access_key is not None
        assert self._secret is not None
        nonce = max(self._last_nonce + 1, int(self._wall() * 1000))
        self._last_nonce = nonce
        signature = hmac.new(self._secret, str(nonce).encode(), hashlib.sha256).hexdigest()
        return {
            "action": "auth",
            "apiKey": self._access_key,
            "nonce": nonce,
            "signature": signature,
            "id": "aimax-auth",
            "filters": list(self._subs[_PRIVATE].filters or []),  # the connection's
        }

    async def watch(self, market: str) -> AsyncIterator[LocalBook]:
        """Yield ``market``'s book after each change; a slow consumer skips to the latest.

        Ends when the market is unsubscribed or the stream closes.
        """
        slot = self._slots.get(market)
        if slot is None:
            raise ConfigurationError(f"not subscribed to the book of {market!r}")
        seen = slot.changes
        while True:
            seen = await slot.wait_beyond(seen)
            book = self._books.get(market)
            if book is None or self._closed:
                return
            yield book

    async def wait_synced(self, markets: Iterable[str] | None = None) -> None:
        """Wait until every book (or those of ``markets``) is synced."""
        names = list(self._books) if markets is None else list(markets)
        for market in names:
            slot = self._slots.get(market)
            if slot is None:
                raise ConfigurationError(f"not subscribed to the book of {market!r}")
            seen = -1
            while not self._books[market].synced:
                seen = await slot.wait_beyond(max(seen, slot.changes))

    def statistics(self) -> StreamStatistics:
        """Counters and live state."""
        n = self._n
        return StreamStatistics(
            connections=len(self._connections),
            connected=sum(1 for c in self._connections if c.up),
            subscriptions=len(self._subs),
            markets=len(self._books),
            synced=sum(1 for b in self._books.values() if b.synced),
            connects=n["connects"],
            reconnects=n["reconnects"],
            refused=n["refused"],
            messages_sent=n["sent"],
            messages_received=n["received"],
            resyncs=self._books.resyncs,
            resubscribes=n["resubscribes"],
            stale=n["stale"],
            fallbacks=n["fallbacks"],
            errors=n["errors"],
            dead_connections=n["dead"],
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"MaxStream(connections={s.connections}, connected={s.connected}, "
            f"subscriptions={s.subscriptions}, synced={s.synced}/{s.markets}, "
            f"resyncs={s.resyncs}, closed={self._closed})"
        )

    # ---------------------------------------------------------------- subscribing

    async def subscribe_books(self, markets: Iterable[str], *, depth: int = 50) -> None:
        """Subscribe to the ``book`` channel of ``markets`` at ``depth`` (1, 5, 10, 20, 50)."""
        if depth not in BOOK_DEPTHS or isinstance(depth, bool):
            raise ConfigurationError(f"depth must be one of {BOOK_DEPTHS}, got {depth!r}")
        await self._subscribe([_Sub("book", m, depth=depth) for m in _markets(markets)])

    async def subscribe(
        self, channel: str, markets: Iterable[str], *, resolution: str | None = None
    ) -> None:
        """Subscribe to ``trade``, ``ticker`` or ``kline`` (``resolution``, e.g. "1m")."""
        if channel not in CHANNELS:
            raise ConfigurationError(f"channel must be one of {CHANNELS}, got {channel!r}")
        if channel == "book":
            await self.subscribe_books(markets)
            return
        if channel != "kline" and resolution is not None:
            raise ConfigurationError(f"resolution is for kline only, got {resolution!r}")
        await self._subscribe(
            [
                _Sub(channel, m, resolution=resolution if channel == "kline" else None)
                for m in _markets(markets)
            ]
        )

    async def unsubscribe(self, channel: str, markets: Iterable[str]) -> None:
        """Drop subscriptions; a book's structures are freed, an empty connection closed."""
        if channel not in CHANNELS:
            raise ConfigurationError(f"channel must be one of {CHANNELS}, got {channel!r}")
        by_conn: dict[int, list[_Sub]] = {}
        for market in _markets(markets):
            conn = self._subs.pop((channel, market), None)
            if conn is None:
                continue
            sub = conn.subs.pop((channel, market))
            by_conn.setdefault(conn.index, []).append(sub)
            self._forget(channel, market)
        for conn in list(self._connections):
            subs = by_conn.get(conn.index)
            if not subs:
                continue
            if not conn.subs:
                await self._drop_connection(conn)
            elif conn.up and conn.ws is not None:
                with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                    await self._send_batched(conn, "unsub", subs)

    def _forget(self, channel: str, market: str) -> None:
        if channel == "book":
            self._books.remove(market)
            slot = self._slots.pop(market, None)
            if slot is not None:
                slot.touch()
            self._last_seen.pop(market, None)
            self._interval.pop(market, None)
            self._unsynced_since.pop(market, None)
            for conn in self._connections:
                conn.resync.discard(market)
        elif channel == "trade":
            self._trades.pop(market, None)
        elif channel == "ticker":
            self._tickers.pop(market, None)
        else:
            self._klines.pop(market, None)

    async def _drop_connection(self, conn: _Connection) -> None:
        self._connections.remove(conn)
        if conn.task is not None:
            conn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn.task
        if conn.ws is not None:
            with contextlib.suppress(Exception):
                await conn.ws.close()
            conn.ws = None

    async def _subscribe(self, subs: list[_Sub]) -> None:
        if self._closed:
            raise ConfigurationError("the stream is closed")
        await self.start()
        cap = self.settings.max_subscriptions_per_connection
        now = self._clock()
        fresh: dict[int, list[_Sub]] = {}
        for sub in subs:
            if sub.key in self._subs:
                continue
            conn = next(
                (c for c in self._connections if c.filters is None and len(c.subs) < cap), None
            )
            if conn is None:
                conn = _Connection(next(self._ids))
                self._connections.append(conn)
            conn.subs[sub.key] = sub
            self._subs[sub.key] = conn
            fresh.setdefault(conn.index, []).append(sub)
            if sub.channel == "book":
                self._books.add(sub.market)
                self._slots[sub.market] = _Slot()
                self._unsynced_since[sub.market] = now
            elif sub.channel == "trade":
                self._trades[sub.market] = deque(maxlen=self.settings.trade_queue)
        for conn in self._connections:
            if conn.task is None:
                conn.task = asyncio.create_task(
                    self._run(conn), name=f"aimax-stream-conn{conn.index}"
                )
            elif conn.up and conn.index in fresh:
                # if the connection is going down, _run resubscribes everything
                with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                    await self._send_batched(conn, "sub", fresh[conn.index])

    # ---------------------------------------------------------------- connections

    async def _send(self, conn: _Connection, message: dict[str, object]) -> None:
        await self._limiter.acquire_async("ws_message")
        ws = conn.ws
        if ws is None or ws.closed:
            raise ConnectionError("the connection closed")
        await ws.send_str(json.dumps(message))
        self._n["sent"] += 1

    async def _send_batched(self, conn: _Connection, action: str, subs: list[_Sub]) -> None:
        size = self.settings.max_subscriptions_per_message
        for start in range(0, len(subs), size):
            chunk = subs[start : start + size]
            await self._send(
                conn,
                {
                    "action": action,
                    "subscriptions": [s.wire() for s in chunk],
                    "id": f"aimax-{conn.index}",
                },
            )

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        ceiling = min(s.backoff_cap, s.backoff_base * (2.0**attempt))
        return max(s.backoff_floor, self._rng.uniform(0.0, ceiling))

    async def _run(self, conn: _Connection) -> None:
        """Connect, subscribe, receive; on any loss back off and start again."""
        first = True
        while not self._closed and conn.subs:
            if not first:
                self._n["reconnects"] += 1
            first = False
            try:
                await self._limiter.acquire_async("ws_connect")
            except LimiterClosed:
                return
            started = self._clock()
            try:
                await self._session_run(conn)
            except asyncio.CancelledError:
                raise
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 429:
                    self._n["refused"] += 1
                    headers = dict(exc.headers or {})
                    self._limiter.on_response(429, headers, kind="ws_connect")
                    until = parse_retry_after(headers.get("Retry-After"), now=self._wall())
                    wait = max(0.0, (until or 0.0) - self._wall())
                    log.warning("stream connect refused (429): waiting %.1f s", wait)
                    await asyncio.sleep(max(wait, self._backoff(conn.attempt)))
                    conn.attempt += 1
                    continue
                self._n["errors"] += 1
                log.warning("stream handshake failed: %s", exc.status)
            except (aiohttp.ClientError, ConnectionError, OSError, TimeoutError) as exc:
                log.info("stream connection %d lost: %r", conn.index, exc)
            finally:
                conn.up = False
                if conn.ws is not None:
                    with contextlib.suppress(Exception):
                        await conn.ws.close()
                    conn.ws = None
                self._connection_lost(conn)
            if self._clock() - started >= self.settings.stable_after:
                conn.attempt = 0
            if self._closed or not conn.subs:
                return
            await asyncio.sleep(self._backoff(conn.attempt))
            conn.attempt += 1

    def _connection_lost(self, conn: _Connection) -> None:
        now = self._clock()
        for channel, market in conn.subs:
            if channel == "book":
                book = self._books.get(market)
                if book is not None:
                    if book.synced:
                        self._unsynced_since[market] = now
                    book.reset()
                    self._slots[market].touch()
        conn.resync.clear()

    async def _session_run(self, conn: _Connection) -> None:
        session = self._session
        assert session is not None
        s = self.settings
        ws = await session.ws_connect(
            self.url,
            autoping=False,
            heartbeat=None,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
            max_msg_size=8 << 20,
        )
        conn.ws = ws
        self._n["connects"] += 1
        conn.up = True
        if conn.filters is not None:
            self.authenticated = False
            await self._limiter.acquire_async("ws_message")
            await ws.send_str(json.dumps(self._auth_message()))
            self._n["sent"] += 1
        public = [s for s in conn.subs.values() if s.channel != "user"]
        if public:
            await self._send_batched(conn, "sub", public)
        pinger = asyncio.create_task(self._ping_loop(ws), name=f"aimax-stream-ping{conn.index}")
        resyncer = asyncio.create_task(self._resync_loop(conn), name="aimax-stream-resync")
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=s.read_timeout)
                except TimeoutError:
                    self._n["dead"] += 1
                    raise ConnectionError("silent for read_timeout: dead") from None
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._on_text(conn, msg.data)
                elif msg.type == aiohttp.WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == aiohttp.WSMsgType.PONG:
                    continue
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    raise ConnectionError(f"closed by the server ({msg.type.name})")
        finally:
            for task in (pinger, resyncer):
                task.cancel()
            for task in (pinger, resyncer):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _ping_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        interval = self.settings.ping_interval
        while not ws.closed:
            await asyncio.sleep(interval)
            with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                await ws.ping()

    async def _resync_loop(self, conn: _Connection) -> None:
        """Resubscribe the books that lost continuity: one unsub + one sub per batch."""
        while True:
            await conn.resync_event.wait()
            conn.resync_event.clear()
            await asyncio.sleep(0)  # gather the markets that failed together
            markets = sorted(conn.resync)
            conn.resync.clear()
            subs = [conn.subs[("book", m)] for m in markets if ("book", m) in conn.subs]
            if not subs:
                continue
            self._n["resubscribes"] += len(subs)
            await self._send_batched(conn, "unsub", subs)
            await self._send_batched(conn, "sub", subs)

    # ---------------------------------------------------------------- receiving

    def _on_text(self, conn: _Connection, text: str) -> None:
        self._n["received"] += 1
        try:
            message = json.loads(text)
        except ValueError:
            self._n["errors"] += 1
            return
        if not isinstance(message, dict):
            return
        channel = message.get("c")
        if channel == "book":
            self._on_book(conn, message)
        elif channel == "trade":
            queue = self._trades.get(message.get("M"))  # type: ignore[arg-type]
            trades = message.get("t")
            if queue is not None and isinstance(trades, list):
                queue.extend(t for t in trades if isinstance(t, dict))
        elif channel == "ticker":
            market = message.get("M")
            tk = message.get("tk")
            if (
                isinstance(market, str)
                and ("ticker", market) in self._subs
                and isinstance(tk, dict)
            ):
                self._tickers[market] = tk
        elif channel == "kline":
            k = message.get("k")
            market = message.get("M") or (k.get("M") if isinstance(k, dict) else None)
            if isinstance(market, str) and ("kline", market) in self._subs and isinstance(k, dict):
                self._klines[market] = k
        elif channel == "user":
            self._on_user(message)
        elif message.get("e") == "authenticated":
            self.authenticated = True
            self._private_slot.touch()
        elif message.get("e") == "error":
            self._n["errors"] += 1
            log.warning("stream error: %s", message.get("E"))

    def _on_book(self, conn: _Connection, message: dict[str, object]) -> None:
        market = message.get("M")
        if not isinstance(market, str) or ("book", market) not in conn.subs:
            return
        now = self._clock()
        try:
            event = self._books.apply(message, now=now)
        except ConfigurationError:
            self._n["errors"] += 1
            log.warning("stream: malformed book message for %s", market)
            book = self._books.get(market)
            if book is not None and not book.synced:
                conn.resync.add(market)
                conn.resync_event.set()
            return
        last = self._last_seen.get(market)
        if last is not None:
            gap = now - last
            previous = self._interval.get(market)
            self._interval[market] = gap if previous is None else previous * 0.9 + gap * 0.1
        self._last_seen[market] = now
        if event is BookEvent.RESYNC:
            self._unsynced_since[market] = now
            conn.resync.add(market)
            conn.resync_event.set()
        elif event in (BookEvent.APPLIED, BookEvent.SNAPSHOT):
            self._unsynced_since.pop(market, None)
        elif event is BookEvent.CLEARED:
            self._unsynced_since.setdefault(market, now)
        if event is not BookEvent.BUFFERED and event is not BookEvent.DROPPED:
            self._slots[market].touch()

    def _on_user(self, message: Mapping[str, object]) -> None:
        event = message.get("e")
        if event in ("order_snapshot", "order_update"):
            rows = message.get("o")
            if isinstance(rows, list):
                for row in rows:
                    if isinstance(row, dict) and isinstance(row.get("i"), int):
                        self._orders[row["i"]] = row
        elif event in ("trade_snapshot", "trade_update", "fast_trade_update"):
            rows = message.get("t")
            if isinstance(rows, list):
                self._my_trades.extend(r for r in rows if isinstance(r, dict))
        elif event in ("account_snapshot", "account_update"):
            rows = message.get("B")
            if isinstance(rows, list):
                for row in rows:
                    if isinstance(row, dict) and isinstance(row.get("cu"), str):
                        self._balances[row["cu"]] = row
        else:
            return
        self._private_slot.touch()

    # ---------------------------------------------------------------- health

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.check_interval)
            self._check_once(self._clock())

    def _check_once(self, now: float) -> None:
        """Flag stale markets (and resync them); start REST fallbacks for unsynced ones."""
        s = self.settings
        for conn in self._connections:
            if not conn.up:
                continue
            for channel, market in conn.subs:
                if channel != "book":
                    continue
                book = self._books.get(market)
                if book is None:
                    continue
                if book.synced:
                    last = self._last_seen.get(market, now)
                    usual = self._interval.get(market)
                    limit = max(s.stale_floor, s.stale_multiple * usual) if usual else None
                    if limit is not None and now - last > limit:
                        self._n["stale"] += 1
                        log.info("stream: %s stale for %.1f s: resync", market, now - last)
                        book.mark_resync()
                        self._unsynced_since[market] = now
                        self._last_seen[market] = now
                        conn.resync.add(market)
                        conn.resync_event.set()
                        self._slots[market].touch()
        if self._rest is None:
            return
        for market, since in list(self._unsynced_since.items()):
            if now - since < s.fallback_after:
                continue
            self._unsynced_since[market] = now  # at most one fallback per period
            task = asyncio.create_task(self._fallback(market), name=f"aimax-depth-{market}")
            self._fallbacks_running.add(task)
            task.add_done_callback(self._fallbacks_running.discard)

    async def _fallback(self, market: str) -> None:
        book = self._books.get(market)
        sub = self._subs.get(("book", market))
        if book is None or sub is None or self._rest is None:
            return
        depth = sub.subs[("book", market)].depth
        try:
            result = await self._rest.depth(market, limit=depth, sort_by_price=False)
        except Exception as exc:  # a failed fallback is retried next period
            log.info("stream: depth fallback for %s failed: %r", market, exc)
            return
        book = self._books.get(market)
        if book is None or book.synced:
            return
        book.load_depth(
            [(str(level.price), str(level.volume)) for level in result.asks],
            [(str(level.price), str(level.volume)) for level in result.bids],
            now=self._clock(),
        )
        self._n["fallbacks"] += 1
        slot = self._slots.get(market)
        if slot is not None:
            slot.touch()


def _markets(markets: Iterable[str]) -> list[str]:
    if isinstance(markets, str):
        markets = [markets]
    out: list[str] = []
    for market in markets:
        if not isinstance(market, str) or not market:
            raise ConfigurationError(f"market must be a non-empty string, got {market!r}")
        out.append(market)
    return out
