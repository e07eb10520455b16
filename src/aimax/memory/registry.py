"""The cache registry: caches held through weak references, shrunk in priority order.

A cache that is garbage-collected leaves the registry by itself. Shrinking goes
lowest priority first; a shrink takes a *fraction* of a cache (never a blanket
wipe), through the cache's own ``shrink(fraction)`` when it has one, a policy that
fits its type (mappings, ``functools.lru_cache``), or the ``shrink`` callable
given at registration, which receives the cache and the fraction::

    >>> from collections import OrderedDict
    >>> registry = CacheRegistry()
    >>> quotes = OrderedDict((i, i) for i in range(10))
    >>> registry.register("quotes", quotes, priority=1)
    >>> registry.shrink("quotes", 0.5).freed_items
    5
    >>> list(quotes)
    [5, 6, 7, 8, 9]
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import threading
import weakref
from collections.abc import Callable, Iterator, MutableMapping, MutableSet, Sized
from dataclasses import dataclass, field
from typing import Any

from aimax.errors import ConfigurationError

__all__ = ["CacheInfo", "CacheRegistry", "CacheShrink", "ShrinkFunc", "default_shrink"]

_log = logging.getLogger(__name__)

ShrinkFunc = Callable[[Any, float], int | None]
"""``shrink(cache, fraction) -> items removed (or None if unknown)``."""


def _count(n_items: int, fraction: float) -> int:
    return min(n_items, math.ceil(n_items * fraction))


def _shrink_mapping(cache: Any, fraction: float) -> int:
    n = _count(len(cache), fraction)
    if n <= 0:
        return 0
    if isinstance(cache, collections.OrderedDict):
        for _ in range(n):
            cache.popitem(last=False)
        return n
    if isinstance(cache, dict):
        # oldest insertions first (a plain dict's popitem would take the newest)
        for key in list(itertools.islice(cache, n)):
            del cache[key]
        return n
    removed = 0
    for _ in range(n):  # cachetools caches evict by their own policy (LRU, TTL, ...)
        try:
            cache.popitem()
        except KeyError:
            break
        removed += 1
    return removed


def _shrink_deque(cache: Any, fraction: float) -> int:
    n = _count(len(cache), fraction)
    for _ in range(n):
        cache.popleft()
    return n


def _shrink_set(cache: Any, fraction: float) -> int:
    n = _count(len(cache), fraction)
    for _ in range(n):
        cache.pop()
    return n


def _shrink_lru_cache(cache: Any, fraction: float) -> int:
    # functools.lru_cache cannot drop part of itself: it is cleared whole.
    del fraction
    size = int(cache.cache_info().currsize)
    cache.cache_clear()
    return size


def _own_shrink(cache: Any, fraction: float) -> int | None:
    result = cache.shrink(fraction)
    return result if isinstance(result, int) else None


def _strategy(cache: object) -> ShrinkFunc | None:
    if callable(getattr(cache, "shrink", None)):
        return _own_shrink
    if callable(getattr(cache, "cache_clear", None)) and callable(
        getattr(cache, "cache_info", None)
    ):
        return _shrink_lru_cache
    if isinstance(cache, MutableMapping | dict):
        return _shrink_mapping
    if isinstance(cache, collections.deque):
        return _shrink_deque
    if isinstance(cache, MutableSet | set):
        return _shrink_set
    return None


def default_shrink(cache: Any, fraction: float) -> int | None:
    """Remove ``fraction`` of ``cache``'s items by the policy that fits its type.

    ``cache.shrink(fraction)`` if it has one; a mapping loses its oldest / least
    recently used entries (``popitem`` order of cachetools caches, insertion order of
    dicts); a deque its left end; ``functools.lru_cache`` is cleared whole.
    """
    strategy = _strategy(cache)
    if strategy is None:
        raise ConfigurationError(
            f"do not know how to shrink a {type(cache).__name__}; pass shrink=callable"
        )
    return strategy(cache, fraction)


def _items(cache: object) -> int | None:
    info = getattr(cache, "cache_info", None)
    if callable(info):
        try:
            return int(info().currsize)
        except (AttributeError, TypeError, ValueError):
            return None
    if isinstance(cache, Sized):
        return len(cache)
    return None


def _bytes(cache: object) -> int | None:
    value = getattr(cache, "estimated_bytes", None)
    if isinstance(value, int):
        return value
    return None


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """A registered cache as the registry sees it (for statistics and metrics)."""

    name: str
    priority: int
    items: int | None
    bytes: int | None
    shrinks: int
    items_freed: int


@dataclass(frozen=True, slots=True)
class CacheShrink:
    """What one shrink of one cache did."""

    name: str
    priority: int
    fraction: float
    items_before: int | None
    items_after: int | None
    bytes_before: int | None
    bytes_after: int | None
    freed_items: int

    @property
    def freed_bytes(self) -> int | None:
        """Estimated bytes freed, when the cache estimates its size."""
        if self.bytes_before is None or self.bytes_after is None:
            return None
        return max(0, self.bytes_before - self.bytes_after)


@dataclass(slots=True)
class _Entry:
    name: str
    priority: int
    seq: int
    shrink: ShrinkFunc
    ref: Callable[[], object | None]
    shrinks: int = 0
    items_freed: int = 0
    dead: bool = field(default=False)


class CacheRegistry:
    """Named caches with priorities, held weakly (or strongly with ``weak=False``).

    Thread-safe. A weak reference's callback only marks the entry dead (it may run
    inside the garbage collector in any thread); dead entries are purged on the
    next access.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._seq = itertools.count()
        self.dropped = 0

    def register(
        self,
        name: str,
        cache: object,
        *,
        priority: int = 0,
        shrink: ShrinkFunc | None = None,
        weak: bool = True,
    ) -> None:
        """Register ``cache`` under ``name`` (a second registration replaces the first).

        ``priority``: lower is shrunk first. ``shrink(cache, fraction)`` overrides the
        default policy (it must not hold the cache itself, or it would never be
        collected). ``weak=False`` keeps a strong reference (for objects that cannot
        be weakly referenced, such as plain ``dict``); unregister those yourself.
        """
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"cache name must be a non-empty string, got {name!r}")
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise ConfigurationError(f"cache priority must be an int, got {priority!r}")
        if shrink is not None and not callable(shrink):
            raise ConfigurationError(f"shrink must be callable, got {shrink!r}")
        if shrink is None:
            shrink = _strategy(cache)
            if shrink is None:
                raise ConfigurationError(
                    f"cache {name!r}: do not know how to shrink a {type(cache).__name__};"
                    " pass shrink=callable(cache, fraction)"
                )
        with self._lock:
            entry = _Entry(name, priority, next(self._seq), shrink, lambda: None)
            if weak:
                try:
                    entry.ref = weakref.ref(cache, self._make_callback(entry))
                except TypeError:
                    raise ConfigurationError(
                        f"cache {name!r}: a {type(cache).__name__} cannot be weakly referenced;"
                        " register it with weak=False (and unregister it yourself)"
                        " or use a subclass / a bounded cache from aimax.memory"
                    ) from None
            else:
                entry.ref = lambda: cache
            if name in self._entries:
                _log.debug("cache %r registered again: the new one replaces the old", name)
            self._entries[name] = entry

    def _make_callback(self, entry: _Entry) -> Callable[[object], None]:
        registry_ref = weakref.ref(self)

        def on_collected(_ref: object) -> None:
            entry.dead = True  # no lock here: this may run inside the GC, in any thread
            registry = registry_ref()
            if registry is not None:
                registry.dropped += 1

        return on_collected

    def unregister(self, name: str) -> bool:
        """Forget ``name``; ``True`` if it was registered."""
        with self._lock:
            return self._entries.pop(name, None) is not None

    def _purge(self) -> None:
        for name in [n for n, e in self._entries.items() if e.dead or e.ref() is None]:
            entry = self._entries.pop(name)
            _log.debug("cache %r was garbage-collected: it left the registry", entry.name)

    def _live(self) -> list[tuple[_Entry, object]]:
        """Live entries with their caches (strong references), lowest priority first."""
        with self._lock:
            self._purge()
            pairs = []
            for entry in sorted(self._entries.values(), key=lambda e: (e.priority, e.seq)):
                cache = entry.ref()
                if cache is not None:
                    pairs.append((entry, cache))
            return pairs

    def sizes(self) -> list[tuple[str, int | None, int | None]]:
        """``(name, items, bytes)`` of every live cache: :meth:`infos` without the objects."""
        return [(entry.name, _items(cache), _bytes(cache)) for entry, cache in self._live()]

    def names(self) -> list[str]:
        """Registered names in shrink order (lowest priority first)."""
        return [entry.name for entry, _ in self._live()]

    def __len__(self) -> int:
        return len(self._live())

    def __contains__(self, name: object) -> bool:
        return name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> object | None:
        """The cache registered as ``name`` (``None`` if absent or collected)."""
        with self._lock:
            self._purge()
            entry = self._entries.get(name)
            return None if entry is None else entry.ref()

    def priorities(self) -> list[int]:
        """The distinct priorities of the live caches, lowest first."""
        return sorted({entry.priority for entry, _ in self._live()})

    def names_at(self, priority: int) -> list[str]:
        """The live caches at ``priority``, in registration order."""
        return [entry.name for entry, _ in self._live() if entry.priority == priority]

    def shrink(self, name: str, fraction: float) -> CacheShrink | None:
        """Shrink one cache by ``fraction`` (``None`` if it is gone)."""
        if not 0 < fraction <= 1:
            raise ConfigurationError(f"fraction must be in (0, 1], got {fraction!r}")
        with self._lock:
            self._purge()
            entry = self._entries.get(name)
            cache = None if entry is None else entry.ref()
            if entry is None or cache is None:
                return None
            items_before, bytes_before = _items(cache), _bytes(cache)
            try:
                reported = entry.shrink(cache, fraction)
            except Exception:
                _log.exception("shrinking cache %r failed", name)
                reported = 0
            items_after, bytes_after = _items(cache), _bytes(cache)
            if isinstance(reported, int) and not isinstance(reported, bool):
                freed = max(0, reported)
            elif items_before is not None and items_after is not None:
                freed = max(0, items_before - items_after)
            else:
                freed = 0
            entry.shrinks += 1
            entry.items_freed += freed
            return CacheShrink(
                name=name,
                priority=entry.priority,
                fraction=fraction,
                items_before=items_before,
                items_after=items_after,
                bytes_before=bytes_before,
                bytes_after=bytes_after,
                freed_items=freed,
            )

    def infos(self) -> tuple[CacheInfo, ...]:
        """Every live cache's figures, in shrink order."""
        return tuple(
            CacheInfo(
                name=entry.name,
                priority=entry.priority,
                items=_items(cache),
                bytes=_bytes(cache),
                shrinks=entry.shrinks,
                items_freed=entry.items_freed,
            )
            for entry, cache in self._live()
        )

    def __repr__(self) -> str:
        return f"CacheRegistry(caches={self.names()!r})"
