"""The simulator's ``/ws`` stream: MAX's WebSocket protocol over real aiohttp.

Public channels ``book`` (depth 1, 5, 10, 20, 50), ``trade`` and ``ticker`` in
MAX's short-key shapes, driven by the simulator's own market model: every
``interval`` the hub reads each subscribed market's book from the exchange core,
diffs it against what it last published and sends an ``update`` with ``fi``/``li``/
``v`` (a snapshot on subscribe). Limits as MAX states them: sub/unsub/auth messages
per connection (20/s and 200/min: over it, an error and the connection is closed),
connections per IP per hour and per day (over it, an HTTP 429 with an absolute
``Retry-After`` and a ban that restarts on every attempt during it), and a close
after ``idle_timeout`` without a ping.

Faults on request (:meth:`StreamHub.set_faults` and the one-shot controls): drop,
duplicate or reorder a share of book updates per connection, skip the next update
of a market for everyone (a gap), change a market's version, send an empty
snapshot, cut every connection, stall (send nothing and answer no ping)::

    with MaxSimulator(cfg) as sim:
        hub = sim.stream
        hub.set_faults(drop_rate=0.01)
        ...  # connect to sim.ws_url
        hub.change_version("btctwd")
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from aimax._clock import monotonic, wall
from aimax.errors import ConfigurationError
from aimax.exchange.simulator.auth import NonceBook
from aimax.exchange.simulator.core import Account, Order, Rejection
from aimax.exchange.simulator.limits import PenaltyWindow

if TYPE_CHECKING:
    from aimax.exchange.simulator.server import MaxSimulator

__all__ = ["StreamConfig", "StreamHub", "StreamStats"]

log = logging.getLogger(__name__)

BOOK_DEPTHS = (1, 5, 10, 20, 50)
KLINE_RESOLUTIONS = {
    "1m": 1,
    "5m": 5,
    "15m": 15,
    "30m": 30,
    "1h": 60,
    "2h": 120,
    "4h": 240,
    "6h": 360,
    "12h": 720,
    "1d": 1440,
}
_MAX_OUTBOX = 20_000


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConfig:
    """The stream's pace and limits (MAX's by default; :meth:`scaled` shrinks time).

    ``interval``: seconds between publications; ``messages_per_second`` /
    ``messages_per_minute``: sub/unsub/auth messages per connection;
    ``connections_per_hour`` / ``connections_per_day`` per IP; ``ban_seconds`` after
    a refused connection; ``idle_timeout``: close after this long without a ping;
    ``max_subscriptions``: per connection (None: no cap, as MAX documents none).

        >>> StreamConfig.scaled(0.1).connections_per_hour
        600
    """

    interval: float = 0.1
    messages_per_second: int = 20
    messages_per_minute: int = 200
    connections_per_hour: int = 600
    connections_per_day: int = 1440
    hour: float = 3600.0
    day: float = 86400.0
    minute: float = 60.0
    second: float = 1.0
    ban_seconds: float = 60.0
    idle_timeout: float = 130.0
    max_subscriptions: int | None = None

    def __post_init__(self) -> None:
        for name in ("interval", "hour", "day", "minute", "second", "idle_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
        for name in (
            "messages_per_second",
            "messages_per_minute",
            "connections_per_hour",
            "connections_per_day",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
        if not self.ban_seconds >= 0:
            raise ConfigurationError(f"ban_seconds must be >= 0, got {self.ban_seconds!r}")
        cap = self.max_subscriptions
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap <= 0):
            raise ConfigurationError(f"max_subscriptions must be a positive integer, got {cap!r}")

    @classmethod
    def scaled(cls, scale: float, **overrides: object) -> StreamConfig:
        """MAX's limits with every window, ban and timeout times ``scale``."""
        if not scale > 0:
            raise ConfigurationError(f"scale must be positive, got {scale!r}")
        base = cls()
        values: dict[str, object] = {
            "hour": base.hour * scale,
            "day": base.day * scale,
            "minute": base.minute * scale,
            "second": base.second * scale,
            "ban_seconds": base.ban_seconds * scale,
            "idle_timeout": base.idle_timeout * scale,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]  # checked in __post_init__


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStats:
    """The stream's counters since the hub started."""

    connections_opened: int
    connections_refused: int
    connections_active: int
    connections_closed_for_rate: int
    connections_closed_idle: int
    messages_received: int
    messages_sent: int
    subscriptions: int
    updates_dropped: int
    updates_duplicated: int
    updates_reordered: int
    peak_messages_per_second: int
    peak_messages_per_minute: int


@dataclass(slots=True)
class _Faults:
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    stalled_until: float = 0.0


@dataclass(slots=True)
class _BookChannel:
    """One (market, depth) book as last published."""

    market: str
    depth: int
    version: int
    li: int = 0
    asks: dict[str, str] = field(default_factory=dict)
    bids: dict[str, str] = field(default_factory=dict)
    subscribers: set[_Connection] = field(default_factory=set)
    skip_next: int = 0


class _Connection:
    """One client socket: its subscriptions, budgets and outbox."""

    _ids = itertools.count(1)

    def __init__(self, ws: web.WebSocketResponse, client: str) -> None:
        self.id = f"conn{next(self._ids)}"
        self.ws = ws
        self.client = client
        self.books: dict[tuple[str, int], _BookChannel] = {}
        self.trades: set[str] = set()
        self.tickers: set[str] = set()
        self.klines: dict[str, str] = {}  # market -> resolution
        self.outbox: deque[str] = deque()
        self.wakeup = asyncio.Event()
        self.held: str | None = None  # a book update held back to be sent out of order
        self.last_ping = 0.0
        self.closed = False
        self.account: Account | None = None
        self.filters: frozenset[str] = frozenset()
        self.orders_seen: dict[int, tuple[str, str, int]] = {}
        self.fill_seen = 0
        self.balances_seen: dict[str, tuple[str, str]] = {}

    @property
    def subscriptions(self) -> int:
        return len(self.books) + len(self.trades) + len(self.tickers) + len(self.klines)

    def send(self, text: str) -> None:
        if self.closed:
            return
        self.outbox.append(text)
        if len(self.outbox) > _MAX_OUTBOX:  # a consumer that never reads: cut it
            self.outbox.clear()
            self.closed = True
        self.wakeup.set()


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


class StreamHub:
    """The ``/ws`` endpoint of one :class:`~aimax.exchange.simulator.MaxSimulator`.

    Built by the simulator (``sim.stream``); its methods may be called from any
    thread. ``published(market, depth)`` gives the book as last published, the
    truth a client's local book must equal at the same ``li``.
    """

    def __init__(self, sim: MaxSimulator, config: StreamConfig | None = None) -> None:
        if config is None:
            config = StreamConfig()
        if not isinstance(config, StreamConfig):
            raise ConfigurationError(f"config must be a StreamConfig, got {config!r}")
        self.config = config
        self._sim = sim
        self._lock = sim._lock
        self._clock: Callable[[], float] = sim._clock
        self._hourly = PenaltyWindow(
            limit=config.connections_per_hour, window=config.hour, ban=config.ban_seconds
        )
        self._daily = PenaltyWindow(
            limit=config.connections_per_day, window=config.day, ban=config.ban_seconds
        )
        self._rng = random.Random(sim.config.seed ^ 0x57EA)
        self._faults = _Faults()
        self._connections: set[_Connection] = set()
        self._channels: dict[tuple[str, int], _BookChannel] = {}
        self._trade_seen: dict[str, int] = {}
        self._ticker_seen: dict[str, tuple[object, ...]] = {}
        self._kline_seen: dict[tuple[str, str], str] = {}
        self._version_seed = itertools.count(_ms(wall()))
        self._paused = False
        self._nonces = NonceBook(window=30.0)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._counts = dict.fromkeys(
            (
                "opened",
                "refused",
                "closed_rate",
                "closed_idle",
                "received",
                "sent",
                "dropped",
                "duplicated",
                "reordered",
            ),
            0,
        )
        self._msg_second = PenaltyWindow(
            limit=config.messages_per_second, window=config.second, ban=0.0
        )
        self._msg_minute = PenaltyWindow(
            limit=config.messages_per_minute, window=config.minute, ban=0.0
        )

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start publishing (called by the simulator inside its loop)."""
        self._loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = asyncio.create_task(self._publish_loop(), name="aimax-sim-stream")

    async def close(self) -> None:
        """Stop publishing and close every connection (called by the simulator)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for conn in list(self._connections):
            conn.closed = True
            conn.wakeup.set()
            with contextlib.suppress(Exception):
                await conn.ws.close()
        self._connections.clear()
        self._channels.clear()

    # -------------------------------------------------------------- controls

    def set_faults(
        self,
        *,
        drop_rate: float | None = None,
        duplicate_rate: float | None = None,
        reorder_rate: float | None = None,
    ) -> None:
        """Share of book updates dropped, duplicated or swapped with the next, per
        connection (``None`` leaves one as it is)."""
        values = {
            "drop_rate": drop_rate,
            "duplicate_rate": duplicate_rate,
            "reorder_rate": reorder_rate,
        }
        with self._lock:
            for name, value in values.items():
                if value is None:
                    continue
                if not 0.0 <= value <= 1.0:
                    raise ConfigurationError(f"{name} must be in [0, 1], got {value!r}")
                setattr(self._faults, name, float(value))

    def skip_update(self, market: str, count: int = 1) -> None:
        """The next ``count`` book updates of ``market`` are sent to nobody (a gap)."""
        with self._lock:
            for channel in self._channels.values():
                if channel.market == market:
                    channel.skip_next += count

    def change_version(self, market: str) -> None:
        """``market``'s book gets a new version; ids restart (as after MAX's restart)."""
        with self._lock:
            for channel in self._channels.values():
                if channel.market == market:
                    channel.version = next(self._version_seed)
                    channel.li = self._rng.randint(1, 1000)

    def send_empty_snapshot(self, market: str) -> None:
        """Every subscriber of ``market``'s book gets an empty snapshot now."""
        self._call_soon(lambda: self._empty_snapshot(market))

    def cut_connections(self) -> None:
        """Close every connection now (the clients must reconnect)."""
        self._call_soon(self._cut)

    def stall(self, seconds: float) -> None:
        """Send nothing and answer no ping for ``seconds`` (a silent, half-dead link)."""
        if not seconds >= 0:
            raise ConfigurationError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._faults.stalled_until = monotonic() + seconds

    def pause(self, paused: bool = True) -> None:
        """Stop (or resume) publishing book changes: the published books hold still."""
        with self._lock:
            self._paused = paused

    def published(
        self, market: str, depth: int = 50
    ) -> tuple[int, int, dict[str, str], dict[str, str]]:
        """``(version, li, asks, bids)`` of a book as last published (price -> volume)."""
        with self._lock:
            channel = self._channels.get((market, depth))
            if channel is None:
                raise ConfigurationError(f"no subscriber to book {market!r} depth {depth}")
            return channel.version, channel.li, dict(channel.asks), dict(channel.bids)

    def stats(self) -> StreamStats:
        """A snapshot of the counters."""
        with self._lock:
            c = self._counts
            return StreamStats(
                connections_opened=c["opened"],
                connections_refused=c["refused"],
                connections_active=len(self._connections),
                connections_closed_for_rate=c["closed_rate"],
                connections_closed_idle=c["closed_idle"],
                messages_received=c["received"],
                messages_sent=c["sent"],
                subscriptions=sum(conn.subscriptions for conn in self._connections),
                updates_dropped=c["dropped"],
                updates_duplicated=c["duplicated"],
                updates_reordered=c["reordered"],
                peak_messages_per_second=max(
                    (self._msg_second.peak(k) for k in self._msg_second.scopes()), default=0
                ),
                peak_messages_per_minute=max(
                    (self._msg_minute.peak(k) for k in self._msg_minute.scopes()), default=0
                ),
            )

    statistics = stats

    def reset_limits(self) -> None:
        """Forget every connection budget and ban."""
        with self._lock:
            self._hourly.reset()
            self._daily.reset()

    def __repr__(self) -> str:
        return (
            f"StreamHub(connections={len(self._connections)}, channels={len(self._channels)}, "
            f"opened={self._counts['opened']}, refused={self._counts['refused']})"
        )

    def _call_soon(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            raise ConfigurationError("the simulator's stream is not running")
        loop.call_soon_threadsafe(fn)

    def _stalled(self) -> bool:
        return monotonic() < self._faults.stalled_until

    # -------------------------------------------------------------- serving

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The ``GET /ws`` handler: limits, upgrade, then the receive loop."""
        client = self._sim._client(request)
        with self._lock:
            now = self._clock()
            hour = self._hourly.hit(client, now)
            day = self._daily.hit(client, now) if hour.allowed else hour
            if not (hour.allowed and day.allowed):
                self._counts["refused"] += 1
                until = max(d.banned_until or now for d in (hour, day) if not d.allowed)
                retry_at = math.ceil(until)
                body = json.dumps(
                    {"success": False, "error": {"code": 429, "message": "too many connections"}}
                )
                return web.Response(
                    status=429,
                    text=body,
                    content_type="application/json",
                    headers={"Retry-After": str(retry_at)},
                )
            self._counts["opened"] += 1
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = _Connection(ws, client)
        conn.last_ping = monotonic()
        with self._lock:
            self._connections.add(conn)
        writer = asyncio.create_task(self._writer(conn), name=f"aimax-sim-ws-{conn.id}")
        try:
            await self._reader(conn)
        finally:
            conn.closed = True
            conn.wakeup.set()
            with self._lock:
                self._forget(conn)
            with contextlib.suppress(Exception):  # flush what is queued (an error)
                await asyncio.wait_for(asyncio.shield(writer), 1.0)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    def _forget(self, conn: _Connection) -> None:
        # lock held
        self._connections.discard(conn)
        for key, channel in list(conn.books.items()):
            channel.subscribers.discard(conn)
            if not channel.subscribers:
                del self._channels[key]
        conn.books.clear()

    async def _writer(self, conn: _Connection) -> None:
        ws = conn.ws
        while True:
            await conn.wakeup.wait()
            conn.wakeup.clear()
            while conn.outbox and not ws.closed:
                if self._stalled():
                    await asyncio.sleep(0.01)
                    continue
                text = conn.outbox.popleft()
                await ws.send_str(text)
                self._counts["sent"] += 1
            if conn.closed or ws.closed:
                break
        if not ws.closed:
            await ws.close()

    async def _reader(self, conn: _Connection) -> None:
        ws = conn.ws
        async for msg in ws:
            if msg.type == WSMsgType.PING:
                conn.last_ping = monotonic()
                if not self._stalled():
                    await ws.pong(msg.data)
                continue
            if msg.type != WSMsgType.TEXT:
                continue
            conn.last_ping = monotonic() if '"ping"' in msg.data else conn.last_ping
            self._on_text(conn, msg.data)
            if conn.closed:
                break

    def _error(self, conn: _Connection, text: str, request_id: object) -> None:
        conn.send(json.dumps({"e": "error", "E": [text], "i": request_id, "T": _ms(self._clock())}))

    def _on_text(self, conn: _Connection, text: str) -> None:
        with self._lock:
            self._counts["received"] += 1
            now = self._clock()
            try:
                message = json.loads(text)
            except ValueError:
                self._error(conn, "E-1005: invalid JSON", None)
                return
            if not isinstance(message, dict):
                self._error(conn, "E-1005: invalid JSON", None)
                return
            action = message.get("action")
            request_id = message.get("id")
            if action == "ping":
                if not self._stalled():
                    conn.send(json.dumps({"e": "pong", "T": _ms(now)}))
                return
            if action not in ("sub", "subscribe", "unsub", "unsubscribe", "auth"):
                self._error(conn, "E-1004: invalid action", request_id)
                return
            second = self._msg_second.hit(conn.id, now)
            minute = self._msg_minute.hit(conn.id, now) if second.allowed else second
            if not (second.allowed and minute.allowed):
                self._counts["closed_rate"] += 1
                self._error(conn, "E-429: too many requests on this connection", request_id)
                conn.closed = True  # the writer flushes the error, then closes
                conn.wakeup.set()
                return
            if action == "auth":
                self._auth(conn, message, request_id, now)
                return
            subs = message.get("subscriptions")
            if not isinstance(subs, list) or not all(isinstance(s, dict) for s in subs):
                self._error(conn, "E-1004: subscriptions must be a list", request_id)
                return
            try:
                if action in ("sub", "subscribe"):
                    self._subscribe(conn, subs, now)
                else:
                    self._unsubscribe(conn, subs)
            except Rejection as exc:
                self._error(conn, f"E-{exc.code}: {exc.message}", request_id)
                return
            event = "subscribed" if action in ("sub", "subscribe") else "unsubscribed"
            # the acknowledgement goes before the snapshots queued by _subscribe
            conn.outbox.appendleft(
                json.dumps({"e": event, "s": subs, "i": request_id, "T": _ms(now)})
            )
            conn.wakeup.set()

    def _subscribe(self, conn: _Connection, subs: list[dict[str, object]], now: float) -> None:
        # lock held; validate everything first (all or nothing)
        wanted: list[tuple[str, str, int]] = []
        for sub in subs:
            channel = sub.get("channel")
            market = sub.get("market")
            if not isinstance(market, str) or market not in self._sim._exchange.markets:
                raise Rejection(1004, f"market {market!r} does not exist")
            depth = 0
            if channel == "book":
                raw = sub.get("depth", 50)
                if raw not in BOOK_DEPTHS or isinstance(raw, bool):
                    raise Rejection(1004, f"depth must be one of {BOOK_DEPTHS}, got {raw!r}")
                depth = int(raw)  # checked above
            elif channel == "kline":
                resolution = sub.get("resolution", "1m")
                if resolution not in KLINE_RESOLUTIONS:
                    raise Rejection(
                        1004,
                        f"resolution must be one of {list(KLINE_RESOLUTIONS)}, got {resolution!r}",
                    )
                depth = KLINE_RESOLUTIONS[str(resolution)]
            elif channel not in ("trade", "ticker"):
                raise Rejection(1004, f"unknown channel {channel!r}")
            wanted.append((str(channel), market, depth))
        cap = self.config.max_subscriptions
        if cap is not None and conn.subscriptions + len(wanted) > cap:
            raise Rejection(1004, f"at most {cap} subscriptions per connection")
        for channel, market, depth in wanted:
            if channel == "book":
                key = (market, depth)
                book = self._channels.get(key)
                if book is None:
                    book = _BookChannel(market, depth, next(self._version_seed))
                    book.li = self._rng.randint(1, 10**6)
                    self._channels[key] = book
                    self._refresh(book, now)
                book.subscribers.add(conn)
                conn.books[key] = book
                conn.send(self._book_message(book, "snapshot", book.asks, book.bids, book.li))
            elif channel == "trade":
                conn.trades.add(market)
                self._trade_seen.setdefault(market, self._last_trade_id(market, now))
                conn.send(
                    json.dumps({"c": "trade", "e": "snapshot", "M": market, "t": [], "T": _ms(now)})
                )
            elif channel == "kline":
                resolution = next(r for r, m in KLINE_RESOLUTIONS.items() if m == depth)
                conn.klines[market] = resolution
                conn.send(self._kline_message(market, resolution, now, "snapshot"))
            else:
                conn.tickers.add(market)
                conn.send(self._ticker_message(market, now, "snapshot"))

    def _unsubscribe(self, conn: _Connection, subs: list[dict[str, object]]) -> None:
        for sub in subs:
            channel = sub.get("channel")
            market = sub.get("market")
            if not isinstance(market, str):
                continue
            if channel == "book":
                depth = sub.get("depth", 50)
                for key in [k for k in conn.books if k[0] == market and k[1] == depth]:
                    book = conn.books.pop(key)
                    book.subscribers.discard(conn)
                    if not book.subscribers:
                        self._channels.pop(key, None)
            elif channel == "trade":
                conn.trades.discard(market)
            elif channel == "ticker":
                conn.tickers.discard(market)
            elif channel == "kline":
                conn.klines.pop(market, None)

    # -------------------------------------------------------------- publishing

    def _book_message(
        self,
        book: _BookChannel,
        event: str,
        asks: Mapping[str, str],
        bids: Mapping[str, str],
        fi: int,
    ) -> str:
        return json.dumps(
            {
                "c": "book",
                "e": event,
                "M": book.market,
                "a": [[p, v] for p, v in asks.items()],
                "b": [[p, v] for p, v in bids.items()],
                "T": _ms(self._clock()),
                "fi": fi,
                "li": book.li,
                "v": book.version,
            }
        )

    def _refresh(self, book: _BookChannel, now: float) -> tuple[dict[str, str], dict[str, str]]:
        """Read the exchange's book; return the changed levels (volume "0" deletes)."""
        depth = self._sim._exchange.depth(book.market, now, limit=book.depth, sort_by_price=False)
        asks: dict[str, str] = {str(p): str(v) for p, v in depth["asks"]}  # type: ignore[attr-defined]
        bids: dict[str, str] = {str(p): str(v) for p, v in depth["bids"]}  # type: ignore[attr-defined]
        changed_a = {p: v for p, v in asks.items() if book.asks.get(p) != v}
        changed_a.update({p: "0" for p in book.asks if p not in asks})
        changed_b = {p: v for p, v in bids.items() if book.bids.get(p) != v}
        changed_b.update({p: "0" for p in book.bids if p not in bids})
        book.asks = asks
        book.bids = bids
        return changed_a, changed_b

    def _empty_snapshot(self, market: str) -> None:
        with self._lock:
            for book in self._channels.values():
                if book.market == market:
                    text = self._book_message(book, "snapshot", {}, {}, book.li)
                    for conn in book.subscribers:
                        conn.send(text)

    def _cut(self) -> None:
        for conn in list(self._connections):
            conn.outbox.clear()
            conn.closed = True  # the writer closes the socket at once
            conn.wakeup.set()

    def _last_trade_id(self, market: str, now: float) -> int:
        trades = self._sim._exchange.public_trades(market, now, limit=1)
        return int(trades[0]["id"]) if trades else 0  # type: ignore[call-overload]

    def _ticker_message(self, market: str, now: float, event: str) -> str:
        t = self._sim._exchange.ticker(market, now)
        return json.dumps(
            {
                "c": "ticker",
                "e": event,
                "M": market,
                "tk": {
                    "M": market,
                    "O": t["open"],
                    "H": t["high"],
                    "L": t["low"],
                    "C": t["last"],
                    "v": t["vol"],
                    "V": t["vol_in_btc"],
                },
                "T": _ms(now),
            }
        )

    def _kline_message(self, market: str, resolution: str, now: float, event: str) -> str:
        period = KLINE_RESOLUTIONS[resolution]
        rows = self._sim._exchange.klines(market, now, period=period, limit=1)
        start = int(now // 60) // period * period * 60
        if rows:
            ts, o, h, low, c, v = rows[-1]
            start = int(ts)
        else:
            o = h = low = c = float(self._sim._exchange.mid(market, now))
            v = 0.0
        end = start + period * 60
        return json.dumps(
            {
                "c": "kline",
                "e": event,
                "M": market,
                "k": {
                    "ST": start * 1000,
                    "ET": end * 1000 - 1,
                    "M": market,
                    "R": resolution,
                    "O": str(o),
                    "H": str(h),
                    "L": str(low),
                    "C": str(c),
                    "v": str(v),
                    "ti": 0,
                    "x": now >= end,
                },
                "T": _ms(now),
            }
        )

    def _publish_kline(self, market: str, resolution: str, now: float) -> None:
        text = self._kline_message(market, resolution, now, "update")
        key = (market, resolution)
        body = text[: text.rfind('"T"')]  # the same bar: nothing to send
        if self._kline_seen.get(key) == body:
            return
        self._kline_seen[key] = body
        for conn in self._connections:
            if conn.klines.get(market) == resolution:
                conn.send(text)

    async def _publish_loop(self) -> None:
        interval = self.config.interval
        while True:
            await asyncio.sleep(interval)
            try:
                self._publish_once()
            except Exception:  # a simulator bug: log it, keep streaming
                log.exception("simulator stream: publication failed")

    def _publish_once(self) -> None:
        with self._lock:
            now = self._clock()
            mono = monotonic()
            idle = self.config.idle_timeout
            for conn in list(self._connections):
                if mono - conn.last_ping > idle and not conn.closed:
                    self._counts["closed_idle"] += 1
                    conn.closed = True  # the writer closes the socket
                    conn.wakeup.set()
            if self._stalled():
                return
            if not self._paused:
                for book in list(self._channels.values()):
                    self._publish_book(book, now)
            trade_markets = {m for c in self._connections for m in c.trades}
            for market in trade_markets:
                self._publish_trades(market, now)
            ticker_markets = {m for c in self._connections for m in c.tickers}
            for market in ticker_markets:
                self._publish_ticker(market, now)
            kline_keys = {(m, r) for c in self._connections for m, r in c.klines.items()}
            for market, resolution in kline_keys:
                self._publish_kline(market, resolution, now)
            for conn in self._connections:
                if conn.account is not None:
                    self._publish_private(conn, now, snapshot=False)

    def _publish_book(self, book: _BookChannel, now: float) -> None:
        asks, bids = self._refresh(book, now)
        if not asks and not bids:
            return
        fi = book.li + 1
        book.li = fi
        if book.skip_next > 0:
            book.skip_next -= 1
            return
        text = self._book_message(book, "update", asks, bids, fi)
        faults = self._faults
        rng = self._rng
        for conn in book.subscribers:
            held = conn.held
            if faults.drop_rate and rng.random() < faults.drop_rate:
                self._counts["dropped"] += 1
            elif faults.reorder_rate and held is None and rng.random() < faults.reorder_rate:
                self._counts["reordered"] += 1
                conn.held = text
                continue
            else:
                conn.send(text)
                if faults.duplicate_rate and rng.random() < faults.duplicate_rate:
                    self._counts["duplicated"] += 1
                    conn.send(text)
            if held is not None:
                conn.held = None
                conn.send(held)

    def _publish_trades(self, market: str, now: float) -> None:
        seen = self._trade_seen.get(market, 0)
        fresh = [
            t
            for t in self._sim._exchange.public_trades(market, now, limit=50)
            if int(t["id"]) > seen  # type: ignore[call-overload]
        ]
        if not fresh:
            return
        self._trade_seen[market] = max(int(t["id"]) for t in fresh)  # type: ignore[call-overload]
        text = json.dumps(
            {
                "c": "trade",
                "e": "update",
                "M": market,
                "t": [
                    {
                        "p": t["price"],
                        "v": t["volume"],
                        "T": t["created_at"],
                        "tr": "up" if t["side"] == "bid" else "down",
                    }
                    for t in reversed(fresh)
                ],
                "T": _ms(now),
            }
        )
        for conn in self._connections:
            if market in conn.trades:
                conn.send(text)

    def _publish_ticker(self, market: str, now: float) -> None:
        ticker = self._sim._exchange.ticker(market, now)
        key = (ticker["last"], ticker["vol"], ticker["high"], ticker["low"])
        if self._ticker_seen.get(market) == key:
            return
        self._ticker_seen[market] = key
        text = self._ticker_message(market, now, "update")
        for conn in self._connections:
            if market in conn.tickers:
                conn.send(text)

    # -------------------------------------------------------------- private

    def _auth(
        self, conn: _Connection, message: Mapping[str, object], request_id: object, now: float
    ) -> None:
        # lock held; MAX: signature = hex HMAC-SHA256(secret, str(nonce)), nonce in ms
        key = message.get("apiKey")
        nonce = message.get("nonce")
        signature = message.get("signature")
        filters = message.get("filters") or []
        account = self._sim._exchange.account_by_key(key) if isinstance(key, str) else None
        if (
            account is None
            or not isinstance(nonce, int)
            or not isinstance(signature, str)
            or not isinstance(filters, list)
        ):
            self._error(conn, "E-1007: authentication failed", request_id)
            return
        expected = hmac.new(account.secret, str(nonce).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            self._error(conn, "E-1007: authentication failed", request_id)
            return
        try:
            self._nonces.check(account.access_key, nonce, now)
        except Rejection as exc:
            code = "E-1012: nonce already used" if exc.code == 2006 else "E-1006: bad nonce"
            self._error(conn, code, request_id)
            return
        wanted = {str(f) for f in filters} or {"order", "trade", "account"}
        conn.account = account
        conn.filters = frozenset(wanted)
        conn.send(json.dumps({"e": "authenticated", "i": request_id, "T": _ms(now)}))
        self._publish_private(conn, now, snapshot=True)

    @staticmethod
    def _order_json(order: Order) -> dict[str, object]:
        avg = order.funds / order.executed if order.executed else 0
        return {
            "i": order.id,
            "sd": order.side,
            "ot": order.ord_type,
            "p": None if order.price is None else str(order.price),
            "sp": None if order.stop_price is None else str(order.stop_price),
            "ap": str(avg),
            "v": str(order.volume),
            "rv": str(order.remaining),
            "ev": str(order.executed),
            "S": order.state,
            "M": order.market,
            "tc": order.trades_count,
            "T": _ms(order.created_at),
            "TU": _ms(order.updated_at),
            "gi": order.group_id,
            "ci": order.client_oid,
        }

    def _publish_private(self, conn: _Connection, now: float, *, snapshot: bool) -> None:
        # lock held: diff the account's orders, fills and balances against what was sent
        account = conn.account
        assert account is not None
        filters = conn.filters
        at = _ms(now)
        if "order" in filters:
            changed = []
            for order in account.orders.values():
                mark = (order.state, str(order.executed), order.trades_count)
                if conn.orders_seen.get(order.id) != mark and (not snapshot or order.is_open):
                    changed.append(self._order_json(order))
                conn.orders_seen[order.id] = mark
            for gone in [i for i in conn.orders_seen if i not in account.orders]:
                del conn.orders_seen[gone]  # pruned by the exchange: forget it too
            if changed or snapshot:
                event = "order_snapshot" if snapshot else "order_update"
                conn.send(json.dumps({"c": "user", "e": event, "o": changed, "T": at}))
        if "trade" in filters or "trade_update" in filters:
            fills = [f for f in account.all_fills() if f.id > conn.fill_seen]
            if snapshot:
                fills = fills[-100:]
            if fills:
                conn.fill_seen = max(f.id for f in fills)
            if fills or (snapshot and "trade" in filters):
                event = "trade_snapshot" if snapshot else "trade_update"
                rows = [
                    {
                        "i": f.id,
                        "M": f.market,
                        "sd": f.side,
                        "p": str(f.price),
                        "v": str(f.volume),
                        "f": str(f.fee),
                        "fc": f.fee_currency,
                        "fd": False,
                        "T": _ms(f.created_at),
                        "TU": _ms(f.created_at),
                        "m": f.liquidity == "maker",
                        "oi": f.order_id,
                    }
                    for f in fills
                ]
                conn.send(json.dumps({"c": "user", "e": event, "t": rows, "T": at}))
        if "account" in filters:
            balances = []
            for currency, (available, locked) in account.wallet("spot").items():
                held = (str(available), str(locked))
                if conn.balances_seen.get(currency) != held:
                    conn.balances_seen[currency] = held
                    balances.append(
                        {"cu": currency, "av": held[0], "l": held[1], "stk": None, "TU": at}
                    )
            if balances or snapshot:
                event = "account_snapshot" if snapshot else "account_update"
                conn.send(json.dumps({"c": "user", "e": event, "B": balances, "T": at}))
