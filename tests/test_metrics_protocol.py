"""The metrics-sample protocol shared by every component and the monitor."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

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


def test_a_histogram_value_needs_one_count_more_than_bounds() -> None:
    from aimax._metrics import HistogramValue

    value = HistogramValue(bounds=(0.5,), cumulative=(1, 2), sum=1.2, count=2)
    assert value.buckets() == [("0.5", 1), ("+Inf", 2)]
    with pytest.raises(ValueError, match="cumulative"):
        HistogramValue(bounds=(0.5,), cumulative=(1,), sum=0.0, count=1)


def test_every_component_is_read_through_its_statistics_or_samples() -> None:
    """Pools and memory through the statistics mapping; the limiter through its samples."""
    from aimax import APIRateLimiter, MemoryManager, ThreadPoolManager
    from aimax.memory import BoundedLRUCache
    from aimax.monitor import ResourceMonitor, families_of

    limiter = APIRateLimiter.for_max()
    pools = ThreadPoolManager()
    memory = MemoryManager()
    cache: BoundedLRUCache[str, int] = BoundedLRUCache(max_items=10, name="tickers", manager=memory)
    monitor = ResourceMonitor(gc=False)
    try:
        monitor.add_source("limiter", limiter)
        monitor.add_source("pools", pools)
        monitor.add_source("memory", memory)
        for step in range(3):
            limiter.try_acquire("market_data")
            for name in ("io", "orders"):
                pools.submit_task(name, pow, 2, step).result()
            cache[f"k{step}"] = step
            snapshot = monitor.collect_metrics()
            stats = pools.statistics()
            for name in ("io", "orders"):
                s = stats.pools[name]
                assert snapshot[f'aimax_pool_completed_total{{pool="{name}"}}'] == s.completed
                assert snapshot[f'aimax_pool_run_seconds_count{{pool="{name}"}}'] == step + 1
                hist = snapshot.histograms[f'aimax_pool_run_seconds{{pool="{name}"}}']
                assert hist.count == step + 1
                assert hist == families_of(s)[-1].values[0][1]
            assert snapshot['aimax_memory_cache_items{cache="tickers"}'] == step + 1
            assert 'aimax_ratelimit_granted_total{pool="rest_public"}' in snapshot.values
        assert "aimax_memory_rss_bytes" not in snapshot.values
        assert not snapshot.failures
    finally:
        monitor.close()
        memory.close()
        pools.shutdown_all()
        limiter.close()


def test_a_type_the_mapping_does_not_know_is_refused() -> None:
    from aimax.errors import ConfigurationError
    from aimax.monitor import ResourceMonitor, families_of

    with pytest.raises(ConfigurationError, match="no metric mapping for object"):
        families_of(object())
    with ResourceMonitor(gc=False) as monitor, pytest.raises(ConfigurationError, match="nothing"):
        monitor.add_source("nothing", object())
