"""LocalBook against an independent oracle on random MAX-shaped streams.

The oracle is the exchange side of the test: a plain ``dict`` book per version to
which each generated diff is applied in order, remembered at every update id. The
stream delivered to the book is then damaged at random (drops, duplicates, swaps,
version changes, empty and mid-stream snapshots). Whenever the book says it is
synced it must equal the oracle at its ``last_id``; each resync is one RESYNC answer
(one resubscribe of that market); a clean stream never resyncs.
"""

from __future__ import annotations

import doctest
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.errors import ConfigurationError
from aimax.exchange.max import book as book_module
from aimax.exchange.max import stream as stream_module
from aimax.exchange.max.book import BookEvent, BookState, LocalBook, OrderBooks
from aimax.exchange.simulator import stream as sim_stream_module

Truth = dict[str, dict[Decimal, Decimal]]


def _fmt(value: int, style: int) -> str:
    # the same number written differently must land on the same level
    text = str(value)
    return text + ".0" if style == 1 else text


class Exchange:
    """The oracle: a plain dict book, its ids and version, and every past state."""

    def __init__(self) -> None:
        # a level no diff touches: the true book is never empty, so an empty
        # snapshot is always the injected fault
        self.truth: Truth = {"a": {Decimal(1000): Decimal(1)}, "b": {}}
        self.li = 100
        self.version = 1
        self.states: dict[tuple[int, int], Truth] = {}
        self._remember()

    def _remember(self) -> None:
        self.states[(self.version, self.li)] = {
            "a": dict(self.truth["a"]),
            "b": dict(self.truth["b"]),
        }

    def diff(self, changes: list[tuple[str, int, int, int]], span: int) -> dict[str, object]:
        """Apply ``changes`` (side, price, volume, format); one event of ``span`` ids."""
        levels: dict[str, list[list[str]]] = {"a": [], "b": []}
        for side, price, volume, style in changes:
            book = self.truth[side]
            if volume:
                book[Decimal(price)] = Decimal(volume)
            else:
                book.pop(Decimal(price), None)
            levels[side].append([_fmt(price, style), _fmt(volume, style)])
        fi = self.li + 1
        self.li += span
        self._remember()
        return {
            "c": "book",
            "e": "update",
            "M": "btctwd",
            "a": levels["a"],
            "b": levels["b"],
            "fi": fi,
            "li": self.li,
            "v": self.version,
            "T": 0,
        }

    def snapshot(self) -> dict[str, object]:
        return {
            "c": "book",
            "e": "snapshot",
            "M": "btctwd",
            "a": [[str(p), str(v)] for p, v in sorted(self.truth["a"].items())],
            "b": [[str(p), str(v)] for p, v in sorted(self.truth["b"].items(), reverse=True)],
            "fi": self.li,
            "li": self.li,
            "v": self.version,
            "T": 0,
        }

    def new_version(self, restart_ids: bool) -> None:
        self.version += 1
        if restart_ids:
            self.li = 1
        self._remember()


def _check(book: LocalBook, ex: Exchange) -> None:
    if not book.synced:
        return
    assert book.version is not None
    assert book.last_id is not None
    want = ex.states[(book.version, book.last_id)]
    assert book.asks == sorted(want["a"].items())
    assert book.bids == sorted(want["b"].items(), reverse=True)
    assert book.best_ask == (min(want["a"].items()) if want["a"] else None)
    assert book.best_bid == (max(want["b"].items()) if want["b"] else None)


changes_st = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.integers(1, 30),
        st.sampled_from([0, 0, 1, 2, 3, 7]),
        st.integers(0, 1),
    ),
    max_size=4,
)
FAULTS = ["drop", "dup", "swap", "version", "empty", "midsnap", "overlap"]
op_st = st.one_of(
    st.tuples(st.just("diff"), changes_st),
    st.tuples(st.sampled_from(FAULTS), st.just([])),
)


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(op_st, min_size=1, max_size=80),
    early=st.integers(0, 3),
    resub_delay=st.integers(0, 3),
)
def test_synced_book_equals_truth(
    ops: list[tuple[str, list[tuple[str, int, int, int]]]], early: int, resub_delay: int
) -> None:
    ex = Exchange()
    book = LocalBook("btctwd")
    books = OrderBooks()
    books._books["btctwd"] = book  # the same book, fed through the dispatcher
    # updates that arrive before the subscription's snapshot are buffered
    for _ in range(early):
        assert books.apply(ex.diff([("a", 50, 1, 0)], 1), now=0.0) is BookEvent.BUFFERED
    assert books.apply(ex.snapshot(), now=0.0) is BookEvent.SNAPSHOT
    _check(book, ex)

    resync_answers = 0
    pending_snapshot: int | None = None
    queue: list[dict[str, object]] = []
    faults = 0
    held: dict[str, object] | None = None

    def deliver(message: dict[str, object]) -> None:
        nonlocal resync_answers, pending_snapshot
        was = book.state
        event = books.apply(message, now=1.0)
        if event is BookEvent.RESYNC:
            # one resubscribe per problem, never while already resyncing
            assert was is not BookState.RESYNCING
            resync_answers += 1
            pending_snapshot = resub_delay
        _check(book, ex)

    for name, changes in ops:
        if name == "diff":
            queue.append(ex.diff(changes, 1))
        elif name == "overlap":
            faults += 1
            queue.append(ex.diff(changes, 1))
            queue.append(ex.diff(changes, 2))
            second = queue.pop()
            first = queue.pop()
            merged = dict(second)
            merged["fi"] = first["fi"]  # an event spanning ids already applied
            queue.append(first)
            queue.append(merged)
        elif name == "drop":
            faults += 1
            ex.diff(changes or [("b", 5, 1, 0)], 1)  # generated, never delivered
        elif name == "dup":
            faults += 1
            message = ex.diff(changes, 1)
            queue.extend([message, message])
        elif name == "swap":
            faults += 1
            first = ex.diff(changes, 1)
            second = ex.diff([("a", 9, 2, 0)], 1)
            queue.extend([second, first])
        elif name == "version":
            faults += 1
            ex.new_version(restart_ids=len(queue) % 2 == 0)
        elif name == "empty":
            faults += 1
            empty = ex.snapshot()
            empty["a"], empty["b"] = [], []
            queue.append(empty)
        elif name == "midsnap":
            queue.append(ex.snapshot())
        for message in queue:
            deliver(message)
        queue.clear()
        if held is not None:
            deliver(held)
            held = None
        if pending_snapshot is not None:
            if pending_snapshot == 0:
                pending_snapshot = None
                deliver(ex.snapshot())
            else:
                pending_snapshot -= 1
        if book.state is BookState.WAITING and name == "empty":
            # after an empty snapshot the exchange sends the next one in time
            deliver(ex.snapshot())

    assert resync_answers == book.resyncs
    if faults == 0:
        assert book.resyncs == 0
        assert book.synced
    # liveness: a fresh snapshot and clean updates always end synced and equal
    deliver(ex.snapshot())
    for _ in range(3):
        deliver(ex.diff([("a", 11, 4, 0), ("b", 3, 0, 0)], 1))
    assert book.synced
    _check(book, ex)


def test_buffered_updates_replay_after_snapshot() -> None:
    book = LocalBook("m")
    # ids 5, 6, 7 arrive before the snapshot at li=5: 5 is dropped, 6 and 7 applied
    assert book.on_update([["10", "1"]], [], fi=5, li=5, v=1, now=0) is BookEvent.BUFFERED
    assert book.on_update([["11", "1"]], [], fi=6, li=6, v=1, now=0) is BookEvent.BUFFERED
    assert book.on_update([], [["9", "2"]], fi=7, li=7, v=1, now=0) is BookEvent.BUFFERED
    assert book.buffered == 3
    assert book.on_snapshot([["10", "3"]], [], li=5, v=1, now=0) is BookEvent.SNAPSHOT
    assert book.asks == [(Decimal(10), Decimal(3)), (Decimal(11), Decimal(1))]
    assert book.bids == [(Decimal(9), Decimal(2))]
    assert book.last_id == 7
    assert book.buffered == 0


def test_first_update_rule_and_gap() -> None:
    book = LocalBook("m")
    book.on_snapshot([["10", "3"]], [["9", "1"]], li=5, v=1, now=0)
    assert book.on_update([["10", "0"]], [], fi=5, li=5, v=1, now=0) is BookEvent.DROPPED
    assert book.on_update([["10", "0"]], [], fi=7, li=7, v=1, now=0) is BookEvent.RESYNC
    assert not book.synced
    assert book.resyncs == 1
    # while resyncing, later updates are held, never applied, never resync again
    assert book.on_update([["10", "0"]], [], fi=9, li=9, v=1, now=0) is BookEvent.BUFFERED
    assert book.resyncs == 1
    assert book.on_snapshot([["12", "1"]], [], li=9, v=1, now=2) is BookEvent.SNAPSHOT
    assert book.asks == [(Decimal(12), Decimal(1))]
    assert book.bids == []


def test_version_change_resyncs() -> None:
    book = LocalBook("m")
    book.on_snapshot([["10", "3"]], [], li=5, v=1, now=0)
    assert book.on_update([], [["9", "1"]], fi=6, li=6, v=2, now=0) is BookEvent.RESYNC
    assert book.state is BookState.RESYNCING


def test_empty_snapshot_clears_and_waits() -> None:
    book = LocalBook("m")
    book.on_snapshot([["10", "3"]], [["9", "1"]], li=5, v=1, now=0)
    assert book.on_snapshot([], [], li=6, v=1, now=1) is BookEvent.CLEARED
    assert book.asks == []
    assert book.bids == []
    assert not book.synced
    assert book.best_bid is None
    assert book.best_ask is None
    assert book.spread is None
    assert book.on_update([["10", "1"]], [], fi=7, li=7, v=1, now=1) is BookEvent.BUFFERED


def test_delete_of_unknown_level_is_normal() -> None:
    book = LocalBook("m")
    book.on_snapshot([["10", "3"]], [], li=1, v=1, now=0)
    assert book.on_update([["99", "0"]], [["1", "0"]], fi=2, li=2, v=1, now=0) is (
        BookEvent.APPLIED
    )
    assert book.asks == [(Decimal(10), Decimal(3))]


def test_top_reads_best_first() -> None:
    book = LocalBook("m")
    asks = [[str(p), "1"] for p in range(100, 130)]
    bids = [[str(p), "2"] for p in range(70, 99)]
    book.on_snapshot(asks, bids, li=1, v=1, now=0)
    top_bids, top_asks = book.top(3)
    assert top_asks == [(Decimal(p), Decimal(1)) for p in (100, 101, 102)]
    assert top_bids == [(Decimal(p), Decimal(2)) for p in (98, 97, 96)]
    assert book.top(0) == ([], [])
    assert len(book) == 59


def test_bad_levels_raise_and_never_corrupt() -> None:
    book = LocalBook("m")
    with pytest.raises(ConfigurationError, match="bad book level"):
        book.on_snapshot([["x", "1"]], [], li=1, v=1, now=0)
    book.on_snapshot([["10", "1"]], [], li=1, v=1, now=0)
    with pytest.raises(ConfigurationError, match="bad book level"):
        book.on_update([["11", "1"]], [["oops", "1"]], fi=2, li=2, v=1, now=0)
    assert not book.synced  # the asks may have been applied: resync, never trust it
    with pytest.raises(ConfigurationError, match="market"):
        LocalBook("")
    with pytest.raises(ConfigurationError, match="max_buffer"):
        LocalBook("m", max_buffer=0)


def test_orderbooks_dispatch() -> None:
    books = OrderBooks()
    book = books.add("ethtwd")
    assert books.add("ethtwd") is book
    assert list(books) == ["ethtwd"]
    assert len(books) == 1
    assert books.apply({"e": "snapshot", "M": "other", "li": 1, "v": 1}, now=0) is (
        BookEvent.DROPPED
    )
    with pytest.raises(ConfigurationError, match="malformed"):
        books.apply({"e": "update", "M": "ethtwd", "v": 1}, now=0)
    with pytest.raises(ConfigurationError, match="unknown book event"):
        books.apply({"e": "nope", "M": "ethtwd", "li": 1, "v": 1}, now=0)
    books.remove("ethtwd")
    assert "ethtwd" not in books
    assert books.resyncs == 0


@pytest.mark.parametrize("module", [book_module, stream_module, sim_stream_module])
def test_module_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(0, 40),
    floor=st.floats(0, 5),
    base=st.floats(0.01, 5),
    cap=st.floats(5, 120),
    seed=st.integers(0, 2**32),
)
def test_backoff_has_full_jitter_a_floor_and_a_cap(
    attempt: int, floor: float, base: float, cap: float, seed: int
) -> None:
    import random

    from aimax.exchange.max import MaxStream, StreamSettings

    cfg = StreamSettings(backoff_floor=floor, backoff_base=base, backoff_cap=cap)
    stream = MaxStream(url="ws://127.0.0.1:1/ws", settings=cfg, rng=random.Random(seed))
    ceiling = min(cap, base * 2.0**attempt)
    delays = [stream._backoff(attempt) for _ in range(20)]
    assert all(max(floor, 0.0) <= d <= max(floor, ceiling) for d in delays)
    if ceiling > floor * 4:  # full jitter: spread over the range, not a fixed step
        assert len(set(delays)) > 1
