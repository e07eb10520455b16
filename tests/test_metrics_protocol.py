"""The metrics-sample protocol shared by every component and the monitor."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

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


@given(
    st.text(alphabet=st.characters(whitelist_categories=("Ll",)), min_size=1, max_size=8),
    st.dictionaries(
        st.text(alphabet="abcdefgh_", min_size=1, max_size=6), st.text(max_size=12), max_size=4
    ),
)
def test_any_label_value_round_trips_through_a_key(name: str, labels: dict[str, str]) -> None:
    """Quotes, backslashes, commas, braces or newlines in a pool or cache name included."""
    assert parse_key(sample_key(name, labels)) == (name, labels)


def test_samples_of_inverts_values_of_with_kinds_and_help() -> None:
    from aimax._metrics import samples_of, values_of

    samples = [
        MetricSample("aimax_pool_queued", 3.0, {"pool": 'odd "name", \\ here'}, "gauge", "q"),
        MetricSample("aimax_pool_completed_total", 9.0, {"pool": "io"}, "counter", "done"),
        MetricSample("aimax_other", 1.0),
    ]
    info = {"aimax_pool_queued": ("gauge", "q"), "aimax_pool_completed_total": ("counter", "done")}
    assert samples_of(values_of(samples), info) == samples  # type: ignore[arg-type]


def test_component_samples_carry_their_kinds() -> None:
    from aimax import APIRateLimiter, MemoryManager, ThreadPoolManager

    limiter, pools, memory = APIRateLimiter.for_max(), ThreadPoolManager(), MemoryManager()
    try:
        pools.submit_task("io", int).result()
        kinds = {
            s.name: s.kind for source in (limiter, pools, memory) for s in source.metric_samples()
        }
        for name, kind in kinds.items():
            assert kind == ("counter" if name.endswith("_total") else "gauge"), name
        assert {"aimax_pool_completed_total", "aimax_ratelimit_granted_total"} <= kinds.keys()
        assert "aimax_memory_cleanups_total" in kinds
    finally:
        memory.close()
        pools.close()
        limiter.close()
