"""The fixed-bucket histogram behind the percentiles: bounded error, ordered quantiles."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.pools import _histogram as h


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


@settings(max_examples=50)
@given(st.lists(st.integers(1, 10**10), min_size=1, max_size=300))
def test_percentiles_match_exact_ones_within_bucket_error(samples: list[int]) -> None:
    hist = h.new_histogram()
    for ns in samples:
        hist[h.bucket(ns)] += 1
    ordered = sorted(samples)
    previous = -math.inf
    for q in (0.5, 0.95, 0.99):
        exact = ordered[max(1, math.ceil(q * len(ordered))) - 1]
        estimate = h.percentile(hist, q)
        assert abs(estimate - exact) <= max(1.0, exact / 32)
        assert estimate >= previous
        previous = estimate


def test_empty_histogram_and_merge() -> None:
    empty = h.new_histogram()
    assert math.isnan(h.percentile(empty, 0.5))
    a = h.new_histogram()
    a[h.bucket(1000)] += 2
    b = h.new_histogram()
    b[h.bucket(5000)] += 2
    h.merge_into(a, b)
    assert sum(a) == 4
    assert abs(h.percentile(a, 1.0) - 5000) <= 5000 / 32


@given(st.lists(st.integers(1, 10**10), min_size=1, max_size=300))
def test_percentiles_at_once_equal_one_at_a_time(samples: list[int]) -> None:
    from aimax.pools import _histogram

    hist = _histogram.new_histogram()
    for ns in samples:
        hist[_histogram.bucket(ns)] += 1
    qs = (0.5, 0.95, 0.99)
    assert _histogram.percentiles(hist, qs) == [_histogram.percentile(hist, q) for q in qs]
