"""Local order books that follow MAX's continuity rules exactly.

MAX's ``book`` channel sends a ``snapshot`` then ``update`` events, each carrying
``fi`` (first update id), ``li`` (last update id) and ``v`` (the book's version).
MAX's ``public_orderbook.md`` says, per market:

1. buffer events until the snapshot;
2. a snapshot replaces the local book wholesale; record its ``li`` and ``v``;
3. an update whose ``v`` differs from the recorded one: resubscribe;
4. drop updates with ``fi <= local li`` (already applied);
5. the first update applied after the snapshot must satisfy
   ``fi <= local li + 1 <= li``; any later gap (``fi > local li + 1``): resubscribe;
6. a snapshot arriving mid-stream: rebuild from it;
7. an empty snapshot (no asks, no bids): clear the book and wait for the next one.

Rule 4 and rule 5 together mean an update is applied only when ``fi == local li + 1``.
An update that overlaps (``fi <= local li < li``) is dropped by rule 4; the next one
then shows a gap and the market resyncs, so the book is never silently wrong.

:class:`LocalBook` is the pure core of one market (no I/O, time passed in as
``now``); :class:`OrderBooks` maps markets to their books and dispatches raw
messages. A method answers what happened (:class:`BookEvent`); on
``BookEvent.RESYNC`` the caller resubscribes that one market::

    >>> from decimal import Decimal
    >>> book = LocalBook("btctwd")
    >>> book.on_update([["101", "1"]], [], fi=8, li=8, v=1, now=0.0)
    <BookEvent.BUFFERED: 2>
    >>> book.on_snapshot([["101", "2"], ["102", "1"]], [["99", "3"]], li=7, v=1, now=0.0)
    <BookEvent.SNAPSHOT: 4>
    >>> book.best_ask, book.synced, book.last_id
    ((Decimal('101'), Decimal('1')), True, 8)
    >>> book.on_update([], [["99", "0"]], fi=10, li=10, v=1, now=1.0)
    <BookEvent.RESYNC: 6>
    >>> book.synced, book.resyncs
    (False, 1)
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation

from aimax.errors import ConfigurationError

__all__ = ["BookEvent", "BookState", "LocalBook", "OrderBooks", "RawLevels"]

RawLevels = Sequence[Sequence[str]]
"""Levels as MAX sends them: ``[["5337.3", "0.1"], ...]`` (decimal strings)."""

Level = tuple[Decimal, Decimal]

_D = Decimal


class BookEvent(enum.IntEnum):
    """What one message did to a :class:`LocalBook`."""

    APPLIED = 1
    """An update was applied."""
    BUFFERED = 2
    """Held until the snapshot (the book is waiting for one)."""
    DROPPED = 3
    """Ignored: already applied (``fi <= li``) or from before the current snapshot."""
    SNAPSHOT = 4
    """A snapshot replaced the book (plus any buffered updates that followed it)."""
    CLEARED = 5
    """An empty snapshot cleared the book; it waits for the next snapshot."""
    RESYNC = 6
    """A gap or a version change: the caller must resubscribe this market (once)."""


class BookState(enum.IntEnum):
    """Where a :class:`LocalBook` stands."""

    WAITING = 1
    """No snapshot yet (or an empty one): updates are buffered."""
    SYNCED = 2
    """Following the stream: the book equals the exchange's at ``last_id``."""
    RESYNCING = 3
    """A gap or version change was seen; waiting for the resubscription's snapshot."""


class _Side:
    """One side: prices sorted ascending, and the ``(price, volume)`` pairs beside them.

    Reading is a slice (no lookups); a change is one bisect, plus a list insert or
    delete (a memmove of at most ``depth`` pointers) when a level appears or goes.
    """

    __slots__ = ("levels", "prices")

    def __init__(self) -> None:
        self.prices: list[Decimal] = []
        self.levels: list[Level] = []

    def replace(self, levels: RawLevels, market: str) -> None:
        volumes: dict[Decimal, Decimal] = {}
        try:
            for price, volume in levels:
                amount = _D(volume)
                if amount:
                    volumes[_D(price)] = amount
            pairs = sorted(volumes.items())
        except (InvalidOperation, TypeError, ValueError):
            raise ConfigurationError(f"{market}: bad book level in {levels!r}") from None
        self.levels = pairs
        self.prices = [p for p, _ in pairs]

    def apply(self, changes: list[Level]) -> None:
        # the hot path: no re-sort, one bisect per changed level
        prices = self.prices
        levels = self.levels
        for level in changes:
            price = level[0]
            i = bisect_left(prices, price)
            if i < len(prices) and prices[i] == price:
                if level[1]:
                    levels[i] = level
                else:
                    del prices[i]
                    del levels[i]
            elif level[1]:
                prices.insert(i, price)
                levels.insert(i, level)

    def clear(self) -> None:
        self.prices = []
        self.levels = []


class LocalBook:
    """One market's order book, kept by MAX's continuity rules (see the module doc).

    ``bids`` / ``asks`` are ``(price, volume)`` Decimal pairs, best first; ``synced``
    is False while buffering or resyncing (then the levels are the last known ones
    and must not be trusted); ``last_id`` and ``version`` are MAX's ``li`` and ``v``;
    ``updated_at`` is the ``now`` of the last change; ``resyncs`` counts the gaps
    and version changes seen. ``max_buffer`` bounds the updates held before a
    snapshot (the oldest go first; a replay then finds the gap and resyncs).

        >>> book = LocalBook("ethtwd")
        >>> book.on_snapshot([["60000", "1.5"]], [["59990", "2"]], li=1, v=9, now=5.0)
        <BookEvent.SNAPSHOT: 4>
        >>> book.bids, book.spread
        ([(Decimal('59990'), Decimal('2'))], Decimal('10'))
    """

    __slots__ = (
        "_asks",
        "_bids",
        "_buffer",
        "exchange_time",
        "last_id",
        "market",
        "max_buffer",
        "resyncs",
        "state",
        "updated_at",
        "updates",
        "version",
    )

    def __init__(self, market: str, *, max_buffer: int = 1000) -> None:
        if not isinstance(market, str) or not market:
            raise ConfigurationError(f"market must be a non-empty string, got {market!r}")
        if isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 1:
            raise ConfigurationError(f"max_buffer must be a positive integer, got {max_buffer!r}")
        self.market = market
        self.max_buffer = max_buffer
        self._asks = _Side()
        self._bids = _Side()
        self._buffer: deque[tuple[RawLevels, RawLevels, int, int, int, int | None]] = deque(
            maxlen=max_buffer
        )
        self.state = BookState.WAITING
        self.last_id: int | None = None
        self.version: int | None = None
        self.updated_at: float | None = None
        self.exchange_time: int | None = None
        self.resyncs = 0
        self.updates = 0

    # ------------------------------------------------------------------ reading

    @property
    def synced(self) -> bool:
        """True while the book follows the stream (equals the exchange's at ``last_id``)."""
        return self.state is BookState.SYNCED

    @property
    def bids(self) -> list[Level]:
        """Bids, best (highest) first."""
        return self._bids.levels[::-1]

    @property
    def asks(self) -> list[Level]:
        """Asks, best (lowest) first."""
        return self._asks.levels[:]

    def top(self, n: int = 10) -> tuple[list[Level], list[Level]]:
        """The best ``n`` bids and asks, without building the whole ladder."""
        if n <= 0:
            return [], []
        return self._bids.levels[: -n - 1 : -1], self._asks.levels[:n]

    @property
    def best_bid(self) -> Level | None:
        """The highest bid, or None."""
        levels = self._bids.levels
        return levels[-1] if levels else None

    @property
    def best_ask(self) -> Level | None:
        """The lowest ask, or None."""
        levels = self._asks.levels
        return levels[0] if levels else None

    @property
    def spread(self) -> Decimal | None:
        """Best ask minus best bid, or None when a side is empty."""
        if not self._asks.prices or not self._bids.prices:
            return None
        return self._asks.prices[0] - self._bids.prices[-1]

    @property
    def buffered(self) -> int:
        """Updates held until the next snapshot."""
        return len(self._buffer)

    def __len__(self) -> int:
        return len(self._asks.prices) + len(self._bids.prices)

    def __repr__(self) -> str:
        return (
            f"LocalBook({self.market!r}, state={self.state.name}, last_id={self.last_id}, "
            f"version={self.version}, bids={len(self._bids.prices)}, "
            f"asks={len(self._asks.prices)}, resyncs={self.resyncs})"
        )

    # ---------------------------------------------------------------- applying

    def on_snapshot(
        self,
        asks: RawLevels,
        bids: RawLevels,
        *,
        li: int,
        v: int,
        now: float,
        at: int | None = None,
    ) -> BookEvent:
        """Rules 2, 6, 7: replace the book (or clear it when empty), replay the buffer."""
        if not asks and not bids:
            self._asks.clear()
            self._bids.clear()
            self._buffer.clear()
            self.state = BookState.WAITING
            self.last_id = None
            self.version = None
            self.updated_at = now
            self.exchange_time = at
            return BookEvent.CLEARED
        self._asks.replace(asks, self.market)
        self._bids.replace(bids, self.market)
        self.last_id = li
        self.version = v
        self.state = BookState.SYNCED
        self.updated_at = now
        self.exchange_time = at
        buffered = self._buffer
        if buffered:
            pending = list(buffered)
            buffered.clear()
            for b_asks, b_bids, fi, b_li, b_v, b_at in pending:
                if b_v != v or fi <= self.last_id:
                    continue  # from before this snapshot: rule 4 (or an older version)
                if self.on_update(b_asks, b_bids, fi=fi, li=b_li, v=b_v, now=now, at=b_at) is (
                    BookEvent.RESYNC
                ):
                    return BookEvent.RESYNC
        return BookEvent.SNAPSHOT

    def on_update(
        self,
        asks: RawLevels,
        bids: RawLevels,
        *,
        fi: int,
        li: int,
        v: int,
        now: float,
        at: int | None = None,
    ) -> BookEvent:
        """Rules 1, 3, 4, 5: buffer, resync on a version change or gap, drop, or apply."""
        state = self.state
        if state is not BookState.SYNCED:
            self._buffer.append((asks, bids, fi, li, v, at))
            return BookEvent.BUFFERED
        last = self.last_id
        assert last is not None
        if v != self.version:
            return self._lost()
        if fi <= last:
            return BookEvent.DROPPED
        if fi != last + 1 or li < fi:
            return self._lost()
        try:
            if asks:
                self._asks.apply([(_D(p), _D(q)) for p, q in asks])
            if bids:
                self._bids.apply([(_D(p), _D(q)) for p, q in bids])
        except (TypeError, ValueError):
            if bids and asks:  # asks may have been applied already
                self._lost()
            raise ConfigurationError(
                f"{self.market}: bad book level in {asks!r} {bids!r}"
            ) from None
        except InvalidOperation:  # not a number, or a NaN price: maybe half changed
            self._lost()
            raise ConfigurationError(
                f"{self.market}: bad book level in {asks!r} {bids!r}"
            ) from None
        self.last_id = li
        self.updated_at = now
        self.exchange_time = at
        self.updates += 1
        return BookEvent.APPLIED

    def _lost(self) -> BookEvent:
        self.state = BookState.RESYNCING
        self.resyncs += 1
        self._buffer.clear()
        return BookEvent.RESYNC

    def mark_resync(self) -> None:
        """Force a resync from outside (a stale stream): the next snapshot rebuilds."""
        if self.state is BookState.SYNCED:
            self._lost()

    def reset(self) -> None:
        """Forget the stream position (a new subscription): wait for a snapshot."""
        self._buffer.clear()
        if self.state is BookState.SYNCED:
            self.state = BookState.WAITING

    def load_depth(
        self, asks: RawLevels, bids: RawLevels, *, now: float, at: int | None = None
    ) -> None:
        """Fill the levels from REST ``depth`` (a fallback): the book stays unsynced.

        The stream's position is unknown, so ``synced`` stays False; the next stream
        snapshot replaces these levels wholesale.
        """
        self._asks.replace(asks, self.market)
        self._bids.replace(bids, self.market)
        self.updated_at = now
        self.exchange_time = at


class OrderBooks(Mapping[str, LocalBook]):
    """Every market's :class:`LocalBook`, and the dispatch of raw ``book`` messages.

    >>> books = OrderBooks()
    >>> books.add("btctwd").synced
    False
    >>> books.apply({"c": "book", "e": "snapshot", "M": "btctwd", "a": [["2", "1"]],
    ...              "b": [], "fi": 3, "li": 3, "v": 1, "T": 0}, now=0.0)
    <BookEvent.SNAPSHOT: 4>
    >>> books["btctwd"].best_ask
    (Decimal('2'), Decimal('1'))
    """

    def __init__(self, *, max_buffer: int = 1000) -> None:
        self._books: dict[str, LocalBook] = {}
        self._max_buffer = max_buffer

    def __getitem__(self, market: str) -> LocalBook:
        return self._books[market]

    def __iter__(self) -> Iterator[str]:
        return iter(self._books)

    def __contains__(self, market: object) -> bool:
        return market in self._books

    def get(self, market: str, default: LocalBook | None = None) -> LocalBook | None:  # type: ignore[override]  # the dict's, faster than Mapping's
        """The book of ``market``, or ``default``."""
        return self._books.get(market, default)

    def __len__(self) -> int:
        return len(self._books)

    def add(self, market: str) -> LocalBook:
        """The book of ``market``, created (waiting for its snapshot) if new."""
        book = self._books.get(market)
        if book is None:
            book = self._books[market] = LocalBook(market, max_buffer=self._max_buffer)
        return book

    def remove(self, market: str) -> None:
        """Forget ``market``'s book (on unsubscribe)."""
        self._books.pop(market, None)

    @property
    def resyncs(self) -> int:
        """Resyncs over every market."""
        return sum(b.resyncs for b in self._books.values())

    def apply(self, message: Mapping[str, object], *, now: float) -> BookEvent:
        """Dispatch one decoded ``book`` message to its market's book.

        A message for a market not added is ignored (``DROPPED``): it belongs to an
        unsubscribed market. A malformed message raises ConfigurationError.
        """
        get = message.get
        market = get("M")
        book = self._books.get(market) if type(market) is str else None
        if book is None:
            return BookEvent.DROPPED
        event = get("e")
        li = get("li")
        v = get("v")
        if type(li) is not int or type(v) is not int:
            raise ConfigurationError(f"malformed book message for {market!r}: li={li!r} v={v!r}")
        asks = get("a") or ()
        bids = get("b") or ()
        at = get("T")
        if type(at) is not int:
            at = None
        if event == "update":
            fi = get("fi", li)
            if type(fi) is not int:
                raise ConfigurationError(f"malformed book message for {market!r}: fi={fi!r}")
            return book.on_update(
                asks,  # type: ignore[arg-type]  # decoded JSON, checked by the book
                bids,  # type: ignore[arg-type]
                fi=fi,
                li=li,
                v=v,
                now=now,
                at=at,
            )
        if event == "snapshot":
            return book.on_snapshot(
                asks,  # type: ignore[arg-type]
                bids,  # type: ignore[arg-type]
                li=li,
                v=v,
                now=now,
                at=at,
            )
        raise ConfigurationError(f"unknown book event {event!r} for {market!r}")
