"""The fixed-bucket histogram behind the percentiles: bounded error, ordered quantiles."""

from __future__ import annotations

import math
from collections import Counter

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
    hist = Counter(map(h.bucket, samples))
    ordered = sorted(samples)
    previous = -math.inf
    estimates = h.percentiles(hist, h.QUANTILES)
    for q, estimate in zip(h.QUANTILES, estimates, strict=True):
        exact = ordered[max(1, math.ceil(q * len(ordered))) - 1]
        assert abs(estimate - exact) <= max(1.0, exact / 32)
        assert estimate >= previous
        previous = estimate


def test_empty_histograms_answer_nan() -> None:
    assert all(map(math.isnan, h.percentiles({}, (0.5, 1.0))))
    assert all(map(math.isnan, h.Histogram().quantiles()))
    hist = Counter({h.bucket(1000): 2, h.bucket(5000): 2})
    assert abs(h.percentiles(hist, (1.0,))[0] - 5000) <= 5000 / 32


@given(st.lists(st.tuples(st.integers(-5, 2**50), st.integers(-5, 2**50)), max_size=200))
def test_drain_moves_every_packed_pair_into_both_histograms(pairs: list[tuple[int, int]]) -> None:
    pending = [h.pack(wait, run) for wait, run in pairs]
    wait_hist, run_hist = h.Histogram(), h.Histogram()
    assert h.drain(pending, wait_hist, run_hist) == len(pairs)
    assert pending == []
    expected_wait, expected_run = Counter[int](), Counter[int]()
    for wait, run in pairs:
        expected_wait[h.bucket(wait)] += 1
        expected_run[h.bucket(run)] += 1
    assert _as_counter(wait_hist) == expected_wait
    assert _as_counter(run_hist) == expected_run
    for dense, sparse in ((wait_hist, expected_wait), (run_hist, expected_run)):
        assert dense.total == len(pairs)
        got, want = dense.quantiles(), h.percentiles(sparse, h.QUANTILES)
        assert got == want or (not pairs and all(map(math.isnan, got + want)))


@given(
    st.lists(
        st.lists(st.tuples(st.integers(-5, 2**50), st.integers(-5, 2**50)), max_size=40),
        max_size=6,
    )
)
def test_drain_all_counts_several_lists_once(lists: list[list[tuple[int, int]]]) -> None:
    """Small batches (counted one by one) and large ones (counted in C) agree."""
    pendings = [[h.pack(wait, run) for wait, run in pairs] for pairs in lists]
    wait_hist, run_hist = h.Histogram(), h.Histogram()
    expected_wait, expected_run = Counter[int](), Counter[int]()
    for pairs in lists:
        expected_wait.update(h.bucket(wait) for wait, _ in pairs)
        expected_run.update(h.bucket(run) for _, run in pairs)
    assert h.drain_all(pendings, wait_hist, run_hist) == sum(map(len, lists))
    assert all(pending == [] for pending in pendings)
    assert _as_counter(wait_hist) == expected_wait
    assert _as_counter(run_hist) == expected_run
    for dense, sparse in ((wait_hist, expected_wait), (run_hist, expected_run)):
        got, want = dense.quantiles(), h.percentiles(sparse, h.QUANTILES)
        assert got == want or (not sparse and all(map(math.isnan, got + want)))


def _as_counter(hist: h.Histogram) -> dict[int, int]:
    return {i: c for i, c in enumerate(hist.counts) if c}


def test_drain_while_the_owner_appends_loses_and_repeats_nothing() -> None:
    import threading

    pending: list[int] = []
    wait_hist, run_hist = h.Histogram(), h.Histogram()
    total = 200_000
    done = threading.Event()

    def owner() -> None:
        for i in range(total):
            pending.append(h.pack(i % 5000, 7))
        done.set()

    thread = threading.Thread(target=owner)
    thread.start()
    drained = 0
    while not done.is_set():
        drained += h.drain(pending, wait_hist, run_hist)
    thread.join()
    drained += h.drain(pending, wait_hist, run_hist)
    assert drained == total
    assert wait_hist.total == sum(wait_hist.counts) == total
    assert _as_counter(run_hist) == {h.bucket(7): total}
    expected: Counter[int] = Counter()
    for i in range(5000):
        expected[h.bucket(i)] += total // 5000
    assert _as_counter(wait_hist) == expected


@settings(max_examples=200)
@given(
    st.lists(
        st.lists(st.integers(0, 2**50).map(h.bucket), min_size=0, max_size=30),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from(["add", "update", "add_all"]),
)
def test_tracked_quantiles_follow_every_batch_exactly(batches: list[list[int]], how: str) -> None:
    """p50/p95/p99 kept up to date as counts arrive equal the ones computed afresh."""
    dense = h.Histogram()
    sparse: Counter[int] = Counter()
    for batch in batches:
        if how == "add":
            for index in batch:
                dense.add(index)
        elif how == "update":
            dense.update(Counter(batch))
        else:
            dense.add_all(batch)
        sparse.update(batch)
        got, want = dense.quantiles(), h.percentiles(sparse, h.QUANTILES)
        if sparse:
            assert got == want
        else:
            assert all(map(math.isnan, got))
