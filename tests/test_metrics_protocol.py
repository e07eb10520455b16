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
