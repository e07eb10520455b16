"""The cache registry: weak references, shrink strategies, priority order."""

from __future__ import annotations

import collections
import functools
import gc
import threading

import cachetools
import pytest

from aimax.errors import ConfigurationError
from aimax.memory import BoundedLRUCache, CacheRegistry, default_shrink


class Quotes(dict[int, int]):
    """A weakly referenceable dict."""


def test_dropped_cache_leaves_the_registry_by_itself() -> None:
    registry = CacheRegistry()
    cache = Quotes(a=1)
    keep = Quotes(b=2)
    registry.register("gone", cache)
    registry.register("kept", keep)
    assert registry.names() == ["gone", "kept"]
    del cache
    gc.collect()
    assert registry.names() == ["kept"]
    assert "gone" not in registry
    assert registry.dropped == 1
    assert registry.shrink("gone", 0.5) is None
    assert registry.get("gone") is None


def test_cache_in_a_reference_cycle_leaves_after_collection() -> None:
    registry = CacheRegistry()
    cache = Quotes()
    cache[0] = cache  # type: ignore[assignment]  # a cycle: only the collector frees it
    registry.register("cyclic", cache)
    del cache
    assert "cyclic" in registry
    gc.collect()
    assert "cyclic" not in registry


def test_registration_does_not_keep_the_cache_alive() -> None:
    registry = CacheRegistry()
    registry.register("tmp", BoundedLRUCache[int, int](max_items=3))
    assert len(registry) == 0  # the only reference was the registry's weak one


def test_strong_registration_for_plain_dicts() -> None:
    registry = CacheRegistry()
    with pytest.raises(ConfigurationError, match="weak=False"):
        registry.register("plain", {1: 1})
    registry.register("plain", {1: 1, 2: 2}, weak=False)
    assert registry.names() == ["plain"]
    assert registry.unregister("plain") is True
    assert registry.unregister("plain") is False


def test_shrink_order_is_priority_then_registration() -> None:
    registry = CacheRegistry()
    caches = {name: Quotes() for name in "abcde"}
    for name, priority in zip("abcde", [5, 1, 5, 0, 1], strict=True):
        registry.register(name, caches[name], priority=priority)
    assert registry.names() == ["d", "b", "e", "a", "c"]
    assert registry.priorities() == [0, 1, 5]
    assert registry.names_at(5) == ["a", "c"]


def test_re_registering_a_name_replaces_it() -> None:
    registry = CacheRegistry()
    first, second = Quotes(), Quotes()
    registry.register("q", first, priority=1)
    registry.register("q", second, priority=2)
    assert registry.get("q") is second
    assert [i.priority for i in registry.infos()] == [2]


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"name": ""}, "name"),
        ({"priority": "high"}, "priority"),
        ({"priority": True}, "priority"),
        ({"shrink": 42}, "shrink must be callable"),
    ],
)
def test_bad_registrations(bad: dict[str, object], match: str) -> None:
    kwargs: dict[str, object] = {"name": "q", "priority": 0, "shrink": None, **bad}
    name = kwargs.pop("name")
    with pytest.raises(ConfigurationError, match=match):
        CacheRegistry().register(name, Quotes(), **kwargs)  # type: ignore[arg-type]


def test_unknown_type_needs_a_shrink_function() -> None:
    class Blob:
        pass

    with pytest.raises(ConfigurationError, match="shrink="):
        CacheRegistry().register("blob", Blob())
    with pytest.raises(ConfigurationError):
        default_shrink(Blob(), 0.5)


def test_custom_shrink_receives_the_cache_and_the_fraction() -> None:
    calls: list[tuple[object, float]] = []

    class Blob:
        items = 10

    def shrink(cache: Blob, fraction: float) -> int:
        calls.append((cache, fraction))
        cache.items -= 3
        return 3

    blob = Blob()
    registry = CacheRegistry()
    registry.register("blob", blob, shrink=shrink)
    step = registry.shrink("blob", 0.3)
    assert calls == [(blob, 0.3)]
    assert step is not None
    assert step.freed_items == 3
    assert registry.infos()[0].items_freed == 3


def test_a_failing_shrink_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Blob:
        pass

    def shrink(cache: Blob, fraction: float) -> int:
        raise RuntimeError("boom")

    blob = Blob()
    registry = CacheRegistry()
    registry.register("blob", blob, shrink=shrink)
    step = registry.shrink("blob", 0.5)
    assert step is not None
    assert step.freed_items == 0
    assert "shrinking cache 'blob' failed" in caplog.text


def test_default_strategies_take_the_right_fraction_from_the_right_end() -> None:
    od = collections.OrderedDict((i, i) for i in range(10))
    assert default_shrink(od, 0.3) == 3
    assert next(iter(od)) == 3
    d = Quotes((i, i) for i in range(10))
    assert default_shrink(d, 0.25) == 3
    assert next(iter(d)) == 3
    lru = cachetools.LRUCache[int, int](maxsize=100)
    for i in range(10):
        lru[i] = i
    lru[0]
    assert default_shrink(lru, 0.2) == 2
    assert 0 in lru
    assert 1 not in lru
    assert 2 not in lru
    dq = collections.deque(range(10))
    assert default_shrink(dq, 0.5) == 5
    assert dq[0] == 5
    s = set(range(8))
    assert default_shrink(s, 0.5) == 4
    assert len(s) == 4
    assert default_shrink(Quotes(), 0.5) == 0
    assert default_shrink(Quotes(a=1), 0.01) == 1  # rounds up: a shrink always frees something


def test_lru_cache_functions_are_cleared_whole() -> None:
    @functools.cache
    def square(x: int) -> int:
        return x * x

    for i in range(5):
        square(i)
    registry = CacheRegistry()
    registry.register("square", square)
    assert registry.infos()[0].items == 5
    step = registry.shrink("square", 0.2)
    assert step is not None
    assert step.freed_items == 5
    assert square.cache_info().currsize == 0


def test_bad_fraction() -> None:
    registry = CacheRegistry()
    q = Quotes(a=1)
    registry.register("q", q)
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ConfigurationError, match="fraction"):
            registry.shrink("q", bad)


def test_concurrent_registration_shrinking_and_dropping() -> None:
    registry = CacheRegistry()
    errors: list[BaseException] = []
    keep = [Quotes((i, i) for i in range(100)) for _ in range(4)]
    for i, cache in enumerate(keep):
        registry.register(f"keep{i}", cache, priority=i)

    def churn(worker: int) -> None:
        try:
            for j in range(200):
                tmp = Quotes((k, k) for k in range(5))
                registry.register(f"tmp{worker}-{j}", tmp)
                for name in registry.names():
                    registry.shrink(name, 0.1)
                del tmp
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    gc.collect()
    assert not errors
    assert sorted(registry.names()) == ["keep0", "keep1", "keep2", "keep3"]
    assert all(len(c) < 100 for c in keep)
