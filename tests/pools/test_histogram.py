"""The log-linear histogram behind the pool's percentiles and Prometheus buckets."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.pools import _histogram as h

durations = st.lists(st.integers(-10, 2**40), min_size=1, max_size=300)


@given(st.integers(0, 2**47))
def test_bucket_value_is_within_a_few_percent(ns: int) -> None:
    index = h.bucket(ns)
    assert 0 <= index < h.SIZE
    value = h.bucket_value(index)
    assert abs(value - ns) <= max(1.0, ns / 32)


@given(st.integers(0, 2**47), st.integers(0, 2**47))
def test_buckets_are_monotonic(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert h.bucket(lo) <= h.bucket(hi)


def test_huge_and_negative_durations_are_clamped() -> None:
    assert h.bucket(2**60) == h.SIZE - 1
    assert h.bucket(-5) == 0


@settings(max_examples=100)
@given(durations, st.lists(st.floats(0.001, 1.0), min_size=1, max_size=5))
def test_quantiles_are_the_bucket_of_the_ranked_duration(
    samples: list[int], qs: list[float]
) -> None:
    # oracle: sort the raw durations, take the ceil(q*n)-th, report its bucket's middle
    hist = h.LogLinearHistogram()
    for ns in samples:
        hist.record(ns)
    ordered = sorted(samples)
    expected = [
        h.bucket_value(h.bucket(ordered[max(1, math.ceil(q * len(ordered))) - 1])) for q in qs
    ]
    assert hist.quantiles(tuple(qs)) == expected
    assert hist.count == len(samples)
    assert hist.sum_ns == sum(max(ns, 0) for ns in samples)


@settings(max_examples=50)
@given(st.lists(st.integers(1, 10**10), min_size=1, max_size=300))
def test_quantiles_are_within_bucket_error_and_ordered(samples: list[int]) -> None:
    hist = h.LogLinearHistogram()
    for ns in samples:
        hist.record(ns)
    ordered = sorted(samples)
    qs = (0.5, 0.95, 0.99)
    estimates = hist.quantiles(qs)
    assert estimates == sorted(estimates)
    for q, estimate in zip(qs, estimates, strict=True):
        exact = ordered[max(1, math.ceil(q * len(ordered))) - 1]
        assert abs(estimate - exact) <= max(1.0, exact / 32)


@given(durations)
def test_cumulative_counts_are_exact_at_every_edge(samples: list[int]) -> None:
    hist = h.LogLinearHistogram()
    for ns in samples:
        hist.record(ns)
    cumulative = hist.cumulative()
    assert len(cumulative) == len(h.EDGES_NS) + 1
    # oracle: count the raw durations below each edge
    assert list(cumulative[:-1]) == [sum(1 for ns in samples if ns < e) for e in h.EDGES_NS]
    assert cumulative[-1] == len(samples)
    assert list(cumulative) == sorted(cumulative)


def test_every_exported_edge_is_a_bucket_boundary() -> None:
    for edge in h.EDGES_NS:
        assert h.bucket(edge - 1) < h.bucket(edge)
        assert h.bucket_value(h.bucket(edge)) >= edge


def test_empty_histogram_answers_nan_and_zero_buckets() -> None:
    hist = h.LogLinearHistogram()
    assert all(map(math.isnan, hist.quantiles((0.5, 1.0))))
    assert set(hist.cumulative()) == {0}


def test_copy_is_independent() -> None:
    hist = h.LogLinearHistogram()
    hist.record(1_000)
    other = hist.copy()
    other.record(2_000)
    assert (hist.count, other.count) == (1, 2)
    assert hist.counts != other.counts
    assert sum(hist.counts) == 1
