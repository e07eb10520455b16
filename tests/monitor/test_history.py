"""History: summary maths on known series, buckets, bounded memory."""

from __future__ import annotations

import math
import statistics
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.errors import ConfigurationError
from aimax.monitor.history import History, HistoryConfig, percentile, slope


def test_summary_of_a_linear_series() -> None:
    history = History(HistoryConfig(ring_size=100, bucket=60))
    for i in range(11):
        history.record(float(i), {"x": 10.0 + 2.0 * i})  # 2 units per second
    s = history.summary("x", window=None, now=10.0)
    assert s is not None
    assert (s.count, s.min, s.max, s.last) == (11, 10.0, 30.0, 30.0)
    assert s.mean == pytest.approx(20.0)
    assert s.p95 == pytest.approx(29.0)  # 0.95 * 10 = 9.5 -> between 28 and 30
    assert s.trend_per_hour == pytest.approx(7200.0)
    assert not s.approximate
    # a window keeps only the recent points
    recent = history.summary("x", window=4, now=10.0)
    assert recent is not None
    assert (recent.count, recent.min, recent.max) == (5, 22.0, 30.0)


def test_constant_and_single_point_series() -> None:
    history = History(HistoryConfig(ring_size=10))
    history.record(0.0, {"c": 5.0})
    one = history.summary("c", window=None, now=0.0)
    assert one is not None
    assert (one.count, one.p95, one.trend_per_hour) == (1, 5.0, None)
    history.record(1.0, {"c": 5.0})
    two = history.summary("c", window=None, now=1.0)
    assert two is not None
    assert two.trend_per_hour == 0.0
    assert history.summary("missing", window=None, now=1.0) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=200))
def test_raw_summary_matches_the_statistics_module(values: list[float]) -> None:
    history = History(HistoryConfig(ring_size=256))
    for i, v in enumerate(values):
        history.record(float(i), {"x": v})
    s = history.summary("x", window=None, now=float(len(values)))
    assert s is not None
    assert s.count == len(values)
    assert (s.min, s.max) == (min(values), max(values))
    assert s.mean == pytest.approx(statistics.fmean(values), rel=1e-9, abs=1e-6)
    expected_p95 = statistics.quantiles(values, n=20, method="inclusive")[18]
    assert s.p95 == pytest.approx(expected_p95, rel=1e-9, abs=1e-6)
    expected_slope = statistics.linear_regression(range(len(values)), values).slope
    assert s.trend_per_hour == pytest.approx(expected_slope * 3600, rel=1e-6, abs=1e-3)


def test_missing_values_are_not_zeros() -> None:
    history = History(HistoryConfig(ring_size=10))
    history.record(0.0, {"x": 10.0, "y": 1.0})
    history.record(1.0, {"y": 1.0})  # x failed this time
    history.record(2.0, {"x": 20.0, "y": 1.0})
    assert history.points("x") == [(0.0, 10.0), (2.0, 20.0)]
    s = history.summary("x", window=None, now=2.0)
    assert s is not None
    assert (s.count, s.min, s.mean) == (2, 10.0, 15.0)


def test_buckets_downsample_each_minute() -> None:
    history = History(HistoryConfig(ring_size=200, bucket=60, retention=3600))
    for i in range(180):  # 3 minutes at 1 Hz
        history.record(float(i), {"x": float(i % 60)})
    history.record(180.0, {"x": 0.0})  # opens minute 4 and closes minute 3
    buckets = history.buckets("x")
    assert [(b.start, b.min, b.max, b.count) for b in buckets] == [
        (0.0, 0.0, 59.0, 60),
        (60.0, 0.0, 59.0, 60),
        (120.0, 0.0, 59.0, 60),
    ]
    assert all(b.mean == pytest.approx(29.5) for b in buckets)


def test_long_windows_use_buckets_with_exact_min_max_mean() -> None:
    config = HistoryConfig(ring_size=120, bucket=60, retention=timedelta(hours=2))
    history = History(config)
    values = []
    for i in range(600):  # 10 minutes at 1 Hz; the ring keeps only 2 minutes
        v = float((i * 37) % 101)
        values.append(v)
        history.record(float(i), {"x": v})
    s = history.summary("x", window=600, now=599.0)
    assert s is not None
    assert s.approximate
    assert s.count == 600
    assert (s.min, s.max) == (min(values), max(values))
    assert s.mean == pytest.approx(statistics.fmean(values))
    assert s.min <= s.p95 <= s.max
    # the raw ring alone would have seen 120 points only
    raw = history.summary("x", window=100, now=599.0)
    assert raw is not None
    assert (raw.count, raw.approximate) == (101, False)


def test_trend_from_buckets_on_a_slow_leak() -> None:
    history = History(HistoryConfig(ring_size=130, bucket=60, retention=timedelta(hours=3)))
    for i in range(0, 7200, 1):  # 2 hours, +1 MB per hour
        history.record(float(i), {"rss": 100e6 + i * (1e6 / 3600)})
    s = history.summary("rss", window=timedelta(hours=2), now=7199.0)
    assert s is not None
    assert s.approximate
    assert s.trend_per_hour == pytest.approx(1e6, rel=1e-3)
    assert history.reduce("rss", "slope_per_hour", 3600, 7199.0) == pytest.approx(1e6, rel=1e-3)
    # evidence needed: data spanning half the window (119 closed minutes here)
    assert history.reduce("rss", "slope_per_hour", 238 * 60, 7199.0) is not None
    assert history.reduce("rss", "slope_per_hour", 240 * 60, 7199.0) is None
    assert history.reduce("rss", "slope_per_hour", 5 * 3600, 7199.0) is None


def test_reduce_functions_on_raw_points() -> None:
    history = History(HistoryConfig(ring_size=100))
    for i in range(10):
        history.record(float(i), {"x": float(i)})
    assert history.reduce("x", "max", 3, 9.0) == 9.0
    assert history.reduce("x", "min", 3, 9.0) == 6.0
    assert history.reduce("x", "mean", 3, 9.0) == 7.5
    assert history.reduce("x", "last", 3, 9.0) == 9.0
    assert history.reduce("nope", "max", 3, 9.0) is None
    with pytest.raises(ConfigurationError, match="reduction"):
        history.reduce("x", "median", 3, 9.0)


def test_memory_stays_flat_with_label_churn_over_days() -> None:
    config = HistoryConfig(ring_size=20, bucket=60, retention=600, max_series=50)
    history = History(config)
    sizes = []
    # simulated days at one sample per 30 s, with a series per "order" that comes and goes
    for i in range(6000):
        t = i * 30.0
        values = {"rss": 1.0, f"order_{i // 40}": 1.0}
        history.record(t, values)
        if i % 1000 == 999:
            sizes.append((len(history.keys()), history.memory_bytes()))
    assert len(history) == 6000
    # the churned series are evicted: the same footprint at the end as after one day
    assert sizes[-1] == sizes[1]
    assert sizes[-1][0] <= 50


def test_max_series_refuses_new_keys_and_says_so() -> None:
    history = History(HistoryConfig(ring_size=4, max_series=2))
    assert history.record(0.0, {"a": 1.0, "b": 1.0}) == []
    assert history.record(1.0, {"a": 1.0, "b": 1.0, "c": 1.0}) == ["c"]
    assert history.dropped_series == 1
    assert history.keys() == ["a", "b"]


def test_time_must_not_go_backward_and_config_is_validated() -> None:
    history = History()
    history.record(10.0, {"x": 1.0})
    with pytest.raises(ConfigurationError, match="backward"):
        history.record(9.0, {"x": 1.0})
    with pytest.raises(ConfigurationError, match="ring_size"):
        HistoryConfig(ring_size=1)
    with pytest.raises(ConfigurationError, match="retention"):
        HistoryConfig(bucket=60, retention=30)
    with pytest.raises(ConfigurationError, match="bucket"):
        HistoryConfig(bucket=0)
    with pytest.raises(ConfigurationError, match="max_series"):
        HistoryConfig(max_series=0)


def test_helpers() -> None:
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0], 0.95) == 1.0
    with pytest.raises(ConfigurationError):
        percentile([], 0.5)
    assert slope([(0.0, 0.0, 1.0)]) is None
    assert slope([(1.0, 0.0, 1.0), (1.0, 5.0, 1.0)]) is None
    assert slope([(0.0, 0.0, 1.0), (2.0, 4.0, 1.0), (4.0, 8.0, 1.0)]) == pytest.approx(2.0)
    assert math.isclose(slope([(0.0, 0.0, 3.0), (1.0, 1.0, 1.0)]) or 0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 7), st.one_of(st.none(), st.integers(-50, 50).map(float))),
        min_size=1,
        max_size=150,
    ),
    st.integers(5, 400),
)
def test_bucket_summaries_match_brute_force(
    steps: list[tuple[int, float | None]], window: int
) -> None:
    """Irregular times, missing values: min/max/mean/count stay exact in bucket mode."""
    length = 10.0
    history = History(HistoryConfig(ring_size=25, bucket=length, retention=10_000))
    points: list[tuple[float, float]] = []
    t = 0.0
    for dt, value in steps:
        t += dt
        history.record(t, {} if value is None else {"x": value})
        if value is not None:
            points.append((t, value))
    summary = history.summary("x", window=window, now=t)
    start = t - window
    if summary is None:
        assert not [p for p in points if p[0] >= start]
        return
    if summary.approximate:
        # bucket mode: whole buckets from the one holding ``start`` on
        first = math.floor(start / length) * length
        chosen = [v for ts, v in points if ts >= first]
    else:
        chosen = [v for ts, v in points if ts >= start]
    assert summary.count == len(chosen)
    assert (summary.min, summary.max) == (min(chosen), max(chosen))
    assert summary.mean == pytest.approx(statistics.fmean(chosen))
    assert summary.min <= summary.p95 <= summary.max


def test_a_series_absent_for_a_whole_ring_leaves_no_stale_point() -> None:
    """Samples without any value still clear the ring slots they reuse."""
    history = History(HistoryConfig(ring_size=5, bucket=100.0, retention=10_000))
    history.record(1.0, {"x": 7.0})
    for t in range(2, 12):
        history.record(float(t), {})
    assert history.points("x") == []
    assert history.summary("x", window=5, now=11.0) is None
