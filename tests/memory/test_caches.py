"""Bounded caches: item and byte bounds, LRU and TTL order, shrink, registration, threads."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax._clock import FakeClock
from aimax.errors import ConfigurationError
from aimax.memory import BoundedLRUCache, BoundedTTLCache, FakeProbe, MemoryManager, estimate_size


def test_item_bound_evicts_least_recently_used() -> None:
    cache = BoundedLRUCache[str, int](max_items=3)
    for k in "abc":
        cache[k] = ord(k)
    assert cache["a"] == 97  # a becomes most recent
    cache["d"] = 100
    assert sorted(cache) == ["a", "c", "d"]
    stats = cache.statistics()
    assert (stats.items, stats.hits, stats.evictions) == (3, 1, 1)
    assert cache.get("zzz") is None
    assert cache.statistics().misses == 1
    with pytest.raises(KeyError):
        cache["zzz"]
    assert cache.statistics().misses == 2


def test_byte_bound_uses_the_estimate() -> None:
    cache = BoundedLRUCache[int, bytes](max_bytes=10_000)
    for i in range(20):
        cache[i] = b"x" * 1000
    assert cache.estimated_bytes <= 10_000
    assert 8 <= len(cache) <= 9  # ~1033 bytes each
    assert list(cache)[-1] == 19
    with pytest.raises(ValueError, match="too large"):
        cache[99] = b"x" * 20_000


def test_both_bounds_hold_together() -> None:
    cache = BoundedLRUCache[int, bytes](max_items=5, max_bytes=100_000)
    for i in range(50):
        cache[i] = b"y" * 100
    assert len(cache) == 5
    for i in range(50):
        cache[100 + i] = b"y" * 30_000
    assert cache.estimated_bytes <= 100_000
    assert len(cache) == 3


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 20),
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 3000)), max_size=200),
)
def test_bounds_are_never_exceeded(max_items: int, writes: list[tuple[int, int]]) -> None:
    cache = BoundedLRUCache[int, bytes](max_items=max_items, max_bytes=50_000)
    for key, size in writes:
        cache[key] = b"z" * size
        assert len(cache) <= max_items
        assert cache.estimated_bytes <= 50_000
        assert cache.estimated_bytes == sum(estimate_size(v) for v in cache.values())
        assert key in cache  # the latest write always stays


def test_ttl_expires_with_a_fake_clock() -> None:
    clock = FakeClock()
    cache = BoundedTTLCache[str, int](ttl=timedelta(seconds=10), max_items=100, timer=clock)
    cache["a"] = 1
    clock.advance(5)
    cache["b"] = 2
    clock.advance(5)
    assert "a" not in cache
    assert cache["b"] == 2
    clock.advance(5)
    assert len(cache) == 0


def test_ttl_shrink_drops_expired_first_then_lru() -> None:
    clock = FakeClock()
    cache = BoundedTTLCache[int, int](ttl=10, max_items=100, timer=clock)
    for i in range(4):
        cache[i] = i
    clock.advance(11)
    for i in range(10, 20):
        cache[i] = i
    assert cache.shrink(0.5) == 5  # 4 expired first (not counted), then half of 10
    assert sorted(cache) == list(range(15, 20))


def test_shrink_takes_a_fraction_rounded_up() -> None:
    cache = BoundedLRUCache[int, int](max_items=100)
    for i in range(10):
        cache[i] = i
    assert cache.shrink(0.25) == 3
    assert sorted(cache) == list(range(3, 10))
    assert cache.statistics().evictions == 0  # shrinks are counted apart
    assert cache.statistics().items_shrunk == 3
    for bad in (0, 1.5, -0.1, "x"):
        with pytest.raises(ConfigurationError):
            cache.shrink(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"max_items": 0}, {"max_bytes": -1}, {"max_items": 1.5}, {"max_items": True}],
)
def test_bad_bounds(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        BoundedLRUCache(**kwargs)  # type: ignore[arg-type]


def test_bad_ttl() -> None:
    with pytest.raises(ConfigurationError, match="ttl"):
        BoundedTTLCache(ttl=0, max_items=1)


def test_registers_itself_and_reports_its_size() -> None:
    with MemoryManager(budget=2**30, probe=FakeProbe()) as manager:
        cache = BoundedTTLCache[int, bytes](
            ttl=60, max_items=10, name="trades", manager=manager, priority=3
        )
        cache[1] = b"q" * 5000
        (info,) = manager.statistics().caches
        assert (info.name, info.priority, info.items) == ("trades", 3, 1)
        assert info.bytes is not None
        assert info.bytes >= 5000
        assert "name='trades'" in repr(cache)
        assert "items=1" in repr(cache)
        with pytest.raises(ConfigurationError, match="name"):
            BoundedLRUCache(max_items=1, manager=manager)


def test_estimate_size_counts_contents() -> None:
    class Order:
        def __init__(self) -> None:
            self.note = "n" * 1000

    assert estimate_size({"a": b"x" * 1000}) > 1000
    assert estimate_size([b"x" * 500, b"y" * 500]) > 1000
    assert estimate_size(Order()) > 1000
    shared = [b"s" * 1000]
    assert estimate_size([shared, shared]) < 2000  # a shared container is counted once
    assert estimate_size([[b"deep" * 1000]], depth=1) < 1000  # deeper levels not counted


def test_thread_safety_under_concurrent_writes_and_shrinks() -> None:
    cache = BoundedLRUCache[int, int](max_items=500)
    errors: list[BaseException] = []

    def writer(base: int) -> None:
        try:
            for i in range(3000):
                cache[base + i] = i
                cache.get(base + i - 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def shrinker() -> None:
        try:
            for _ in range(200):
                cache.shrink(0.3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k * 100_000,)) for k in range(3)]
    threads.append(threading.Thread(target=shrinker))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(cache) <= 500
    assert len(list(cache.keys())) == len(cache)
