"""Bounded caches (by item count and by estimated bytes; LRU or TTL) that register themselves.

Built on ``cachetools``: :class:`BoundedLRUCache` evicts the least recently used
entry, :class:`BoundedTTLCache` also drops entries older than ``ttl`` (its timer is
injectable, so tests use a fake clock). Both are thread-safe (one lock per cache,
since the memory manager may shrink them from its own thread), estimate the bytes
they hold (values only, through ``sizeof``), offer ``shrink(fraction)`` for the
memory manager, and register themselves with it when given one::

    >>> cache = BoundedLRUCache(max_items=2)
    >>> cache["a"] = 1; cache["b"] = 2; cache["a"]; cache["c"] = 3
    1
    >>> sorted(cache)          # "b" was the least recently used
    ['a', 'c']
    >>> cache.shrink(0.5)
    1
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

import cachetools

from aimax._clock import Clock, as_seconds, monotonic
from aimax.errors import ConfigurationError

__all__ = [
    "BoundedCacheStatistics",
    "BoundedLRUCache",
    "BoundedTTLCache",
    "CacheOwner",
    "estimate_size",
]

K = TypeVar("K")
V = TypeVar("V")


class CacheOwner(Protocol):
    """Something caches register with (a :class:`~aimax.memory.MemoryManager`)."""

    def register_cache(
        self,
        name: str,
        cache: object,
        *,
        priority: int = ...,
        shrink: Callable[[Any, float], int | None] | None = ...,
    ) -> None: ...


_ATOMIC = frozenset({int, float, complex, bool, str, bytes, bytearray, type(None)})


def estimate_size(value: object, *, depth: int = 2) -> int:
    """Estimated bytes held by ``value``: ``sys.getsizeof`` plus contents, ``depth`` deep.

    Containers (dict, list, tuple, set, frozenset) count their items; objects count
    their ``__dict__``. An estimate, not an exact figure: shared containers are
    counted once per call (shared numbers and strings once per reference), deeper
    levels are not counted.

        >>> estimate_size(b"x" * 1000) >= 1000
        True
    """
    getsizeof = sys.getsizeof
    atomic = _ATOMIC
    seen: set[int] = set()

    def size(obj: object, level: int) -> int:
        if type(obj) in atomic:
            return getsizeof(obj)
        if id(obj) in seen:
            return 0
        seen.add(id(obj))
        total = getsizeof(obj)
        if level <= 0:
            return total
        below = level - 1
        if isinstance(obj, dict):
            for k, v in obj.items():
                total += getsizeof(k) if type(k) in atomic else size(k, below)
                total += getsizeof(v) if type(v) in atomic else size(v, below)
        elif isinstance(obj, list | tuple | set | frozenset):
            for item in obj:
                total += getsizeof(item) if type(item) in atomic else size(item, below)
        else:
            attrs = getattr(obj, "__dict__", None)
            if isinstance(attrs, dict):
                total += size(attrs, level)
        return total

    return size(value, depth)


@dataclass(frozen=True, slots=True)
class BoundedCacheStatistics:
    """A bounded cache's figures."""

    name: str | None
    items: int
    estimated_bytes: int
    max_items: int | None
    max_bytes: int | None
    hits: int
    misses: int
    evictions: int
    shrinks: int
    items_shrunk: int


def _check_bounds(max_items: int | None, max_bytes: int | None) -> None:
    if max_items is None and max_bytes is None:
        raise ConfigurationError("a bounded cache needs max_items, max_bytes or both")
    for name, value in (("max_items", max_items), ("max_bytes", max_bytes)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ):
            raise ConfigurationError(f"{name} must be a positive int, got {value!r}")


class _Bounded(cachetools.Cache[K, V]):
    """What the LRU and TTL flavours share (mixed in before the cachetools class)."""

    _lock: threading.RLock
    _name: str | None
    _max_items: int | None
    _max_bytes: int | None
    _hits: int
    _misses: int
    _evictions: int
    _shrinks: int
    _items_shrunk: int
    _shrinking: bool

    def _setup(
        self,
        *,
        name: str | None,
        max_items: int | None,
        max_bytes: int | None,
        manager: CacheOwner | None,
        priority: int,
    ) -> None:
        self._lock = threading.RLock()
        self._name = name
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._hits = self._misses = self._evictions = 0
        self._shrinks = self._items_shrunk = 0
        self._shrinking = False
        if manager is not None:
            if not name:
                raise ConfigurationError("a cache registered with a manager needs a name")
            manager.register_cache(name, self, priority=priority)

    @property
    def name(self) -> str | None:
        """The name the cache registered under (``None`` if unregistered)."""
        return self._name

    @property
    def max_items(self) -> int | None:
        """Item bound (``None``: bounded by bytes only)."""
        return self._max_items

    @property
    def max_bytes(self) -> int | None:
        """Estimated-bytes bound (``None``: bounded by items only)."""
        return self._max_bytes

    @property
    def estimated_bytes(self) -> int:
        """The estimated bytes of the values held (what ``max_bytes`` bounds)."""
        with self._lock:
            return int(self.currsize)

    def __getitem__(self, key: K) -> V:
        with self._lock:
            value = super().__getitem__(key)
            self._hits += 1
            return value

    def __missing__(self, key: K) -> V:
        self._misses += 1
        raise KeyError(key)

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            if (
                self._max_items is not None
                and key not in self
                and super().__len__() >= self._max_items
            ):
                self.popitem()
            super().__setitem__(key, value)

    def __delitem__(self, key: K) -> None:
        with self._lock:
            super().__delitem__(key)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return super().__contains__(key)

    def __len__(self) -> int:
        with self._lock:
            return super().__len__()

    def get(self, key: K, default: Any = None) -> Any:
        with self._lock:
            if super().__contains__(key):
                return self[key]
            self._misses += 1
            return default

    def popitem(self) -> tuple[K, V]:
        with self._lock:
            item = super().popitem()
            if not self._shrinking:
                self._evictions += 1
            return item

    def clear(self) -> None:
        with self._lock:
            super().clear()

    def shrink(self, fraction: float) -> int:
        """Drop ``fraction`` of the entries in eviction order; returns how many went."""
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ConfigurationError(f"fraction must be a number in (0, 1], got {fraction!r}")
        if not 0 < fraction <= 1:
            raise ConfigurationError(f"fraction must be in (0, 1], got {fraction!r}")
        with self._lock:
            self._expire()
            n = min(super().__len__(), math.ceil(super().__len__() * fraction))
            self._shrinking = True
            try:
                for _ in range(n):
                    self.popitem()
            finally:
                self._shrinking = False
            self._shrinks += 1
            self._items_shrunk += n
            return n

    def _expire(self) -> None:
        """Drop expired entries first (TTL flavour)."""

    def statistics(self) -> BoundedCacheStatistics:
        """Hits, misses, evictions, shrinks and the current size."""
        with self._lock:
            return BoundedCacheStatistics(
                name=self._name,
                items=super().__len__(),
                estimated_bytes=int(self.currsize),
                max_items=self._max_items,
                max_bytes=self._max_bytes,
                hits=self._hits,
                misses=self._misses,
                evictions=self._evictions,
                shrinks=self._shrinks,
                items_shrunk=self._items_shrunk,
            )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"{type(self).__name__}(name={s.name!r}, items={s.items}, max_items={s.max_items},"
            f" bytes={s.estimated_bytes}, max_bytes={s.max_bytes}, hits={s.hits},"
            f" misses={s.misses}, evictions={s.evictions})"
        )


class BoundedLRUCache(_Bounded[K, V], cachetools.LRUCache[K, V]):
    """An LRU cache bounded by item count, estimated bytes, or both.

    ``sizeof(value)`` estimates each value (default :func:`estimate_size`); with
    ``manager`` (and ``name``) given, the cache registers itself there at
    ``priority`` (lower is shrunk first under memory pressure).

        >>> cache = BoundedLRUCache(max_bytes=10_000)
        >>> cache["k"] = b"x" * 4000
        >>> cache.estimated_bytes >= 4000
        True
    """

    def __init__(
        self,
        *,
        max_items: int | None = None,
        max_bytes: int | None = None,
        sizeof: Callable[[V], float] | None = None,
        name: str | None = None,
        manager: CacheOwner | None = None,
        priority: int = 0,
    ) -> None:
        _check_bounds(max_items, max_bytes)
        cachetools.LRUCache.__init__(
            self,
            math.inf if max_bytes is None else max_bytes,
            getsizeof=sizeof or estimate_size,
        )
        self._setup(
            name=name, max_items=max_items, max_bytes=max_bytes, manager=manager, priority=priority
        )


class BoundedTTLCache(_Bounded[K, V], cachetools.TTLCache[K, V, float]):
    """A TTL cache (entries expire ``ttl`` seconds after insertion), also bounded.

    ``timer`` is the clock (monotonic seconds by default; a ``FakeClock`` in tests).
    When full, the least recently used unexpired entry goes first.

        >>> from aimax._clock import FakeClock
        >>> clock = FakeClock()
        >>> cache = BoundedTTLCache(max_items=10, ttl=5.0, timer=clock)
        >>> cache["q"] = 1
        >>> clock.advance(6)
        >>> "q" in cache
        False
    """

    def __init__(
        self,
        *,
        ttl: float | timedelta,
        max_items: int | None = None,
        max_bytes: int | None = None,
        timer: Clock = monotonic,
        sizeof: Callable[[V], float] | None = None,
        name: str | None = None,
        manager: CacheOwner | None = None,
        priority: int = 0,
    ) -> None:
        _check_bounds(max_items, max_bytes)
        seconds = as_seconds(ttl, name="ttl")
        cachetools.TTLCache.__init__(
            self,
            math.inf if max_bytes is None else max_bytes,
            seconds,
            timer,
            getsizeof=sizeof or estimate_size,
        )
        self._setup(
            name=name, max_items=max_items, max_bytes=max_bytes, manager=manager, priority=priority
        )

    def _expire(self) -> None:
        self.expire()
