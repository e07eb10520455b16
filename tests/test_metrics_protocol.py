"""The metrics-sample protocol shared by every component and the monitor."""

from __future__ import annotations

from collections.abc import Sequence

from aimax._metrics import MetricSample, MetricsSource, parse_key, sample_key


class _Source:
    def metric_samples(self) -> Sequence[MetricSample]:
        return [MetricSample("aimax_pool_queued", 3, {"pool": "io"})]


def test_any_object_with_metric_samples_is_a_source() -> None:
    assert isinstance(_Source(), MetricsSource)
    assert not isinstance(object(), MetricsSource)


def test_sample_key_is_stable_and_sorted() -> None:
    assert sample_key("m", {}) == "m"
    assert sample_key("m", {"b": "2", "a": "1"}) == 'm{a="1",b="2"}'


def test_samples_are_frozen_with_gauge_default() -> None:
    sample = MetricSample("aimax_memory_rss_bytes", 1.0)
    assert sample.kind == "gauge"
    assert dict(sample.labels) == {}


def test_parse_key_inverts_sample_key() -> None:
    for name, labels in [("m", {}), ("m", {"pool": "io"}), ("m", {"a": "1", "b": "x y"})]:
        assert parse_key(sample_key(name, labels)) == (name, labels)


def test_values_of_keys_by_series_and_keeps_the_first() -> None:
    from aimax._metrics import values_of

    samples = [
        MetricSample("m", 1, {"b": "2", "a": "1"}),
        MetricSample("m", 2, {"a": "1", "b": "2"}),
        MetricSample("n", 3),
    ]
    assert values_of(samples) == {'m{a="1",b="2"}': 1.0, "n": 3.0}


def test_every_component_values_agree_with_its_samples() -> None:
    """metric_values() (the monitor's fast path) says exactly what metric_samples() says."""
    import gc

    from aimax import APIRateLimiter, MemoryManager, ThreadPoolManager
    from aimax._metrics import MetricValuesSource, values_of
    from aimax.memory import BoundedLRUCache

    limiter = APIRateLimiter.for_max()
    pools = ThreadPoolManager()
    memory = MemoryManager()
    cache: BoundedLRUCache[str, int] = BoundedLRUCache(max_items=10, name="tickers", manager=memory)
    try:
        sources = [limiter, pools, memory]
        for source in sources:
            assert isinstance(source, MetricValuesSource)
        for step in range(3):
            # activity between reads: grants, waits refused, tasks, collections, cache
            for kind in list(limiter.kinds)[:5]:
                limiter.try_acquire(kind)
            for name in ("io", "orders"):
                pools.submit_task(name, pow, 2, step).result()
            cache[f"k{step}"] = step
            gc.collect()
            for source in [*sources, pools.get_pool("io")]:
                samples = values_of(source.metric_samples())
                values = dict(source.metric_values())
                if source is memory:  # RSS is read afresh by each call
                    samples.pop("aimax_memory_rss_bytes")
                    values.pop("aimax_memory_rss_bytes")
                    samples.pop("aimax_memory_usage_ratio", None)
                    values.pop("aimax_memory_usage_ratio", None)
                assert values == samples, type(source).__name__
                assert all(type(v) is float for v in source.metric_values().values())
    finally:
        memory.close()
        pools.close()
        limiter.close()
