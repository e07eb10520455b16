"""ReportBuilder: bounded series, events, notes; fake clock; real threads."""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax._clock import FakeClock
from aimax._metrics import MetricSample
from aimax.errors import ConfigurationError
from aimax.report import OptimizationReport, PlanSection, ReportBuilder
from aimax.report._series import downsample_minmax, unit_for_metric

WALL0 = 1_750_000_000.0


def _builder(clock: FakeClock, **kwargs: object) -> ReportBuilder:
    return ReportBuilder(title="run", wall=clock.time, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=600),
    cap=st.integers(min_value=4, max_value=64),
    step=st.floats(min_value=0.01, max_value=10),
    values=st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=50),
)
def test_series_stay_bounded_and_cover_the_whole_run(
    n: int, cap: int, step: float, values: list[float]
) -> None:
    clock = FakeClock(start=0.0, wall_start=WALL0)
    builder = _builder(clock, max_points=cap)
    raw = []
    for i in range(n):
        value = values[i % len(values)]
        raw.append((clock.time(), value))
        builder.add_point("process_cpu_percent", value)
        clock.advance(step)
    (series,) = builder.series()
    points = series.points
    assert 1 <= len(points) <= cap
    ts = [t for t, _ in points]
    assert ts == sorted(ts)
    # stored points are bucket means: inside the raw range, in time and in value
    lo_v, hi_v = min(v for _, v in raw), max(v for _, v in raw)
    for t, v in points:
        assert raw[0][0] - 1e-6 <= t <= raw[-1][0] + 1e-6
        assert lo_v - 1e-6 * (1 + abs(lo_v)) <= v <= hi_v + 1e-6 * (1 + abs(hi_v))
    if n < cap:  # nothing was merged: the raw readings, exactly
        assert list(points) == raw
    else:  # merged evenly: the first point still stands for the run's start
        assert points[0][0] - raw[0][0] <= (raw[-1][0] - raw[0][0]) / 2 + 1e-6
    assert series.unit == "%"


def test_bucket_means_preserve_the_mean_of_a_full_doubling() -> None:
    clock = FakeClock(wall_start=WALL0)
    builder = _builder(clock, max_points=8)
    for i in range(64):  # 64 = 8 stored points of 8 samples each
        builder.add_point("x", float(i), t=WALL0 + i)
    (series,) = builder.series()
    assert len(series.points) <= 8
    assert math.isclose(
        sum(series.values()) / len(series.values()), sum(range(64)) / 64, rel_tol=1e-12
    )


def test_series_are_keyed_by_name_and_labels_and_units_guessed() -> None:
    clock = FakeClock(wall_start=WALL0)
    builder = _builder(clock)
    builder.add_samples(
        [
            MetricSample("aimax_pool_size", 4, {"pool": "io"}),
            MetricSample("aimax_pool_size", 2, {"pool": "strategy"}),
            MetricSample("aimax_memory_rss_bytes", 1e8),
            MetricSample("aimax_ratelimit_utilisation_ratio", 0.5, {"pool": "rest_public"}),
        ]
    )
    clock.advance(1)
    builder.add_point("aimax_pool_size", 5, labels={"pool": "io"})
    builder.add_point("custom", 1, unit="pairs")
    keys = {s.key: s for s in builder.series()}
    assert keys['aimax_pool_size{pool="io"}'].points == ((WALL0, 4.0), (WALL0 + 1, 5.0))
    assert keys["aimax_memory_rss_bytes"].unit == "bytes"
    assert keys['aimax_ratelimit_utilisation_ratio{pool="rest_public"}'].unit == "ratio"
    assert keys["custom"].unit == "pairs"
    assert list(keys) == [  # first-seen order
        'aimax_pool_size{pool="io"}',
        'aimax_pool_size{pool="strategy"}',
        "aimax_memory_rss_bytes",
        'aimax_ratelimit_utilisation_ratio{pool="rest_public"}',
        "custom",
    ]


def test_series_cap_drops_new_series_and_says_so() -> None:
    clock = FakeClock(wall_start=WALL0)
    builder = _builder(clock, max_series=2)
    for i in range(5):
        builder.add_point(f"s{i}", 1.0)
    builder.add_point("s0", 2.0)  # known series still grow
    report = builder.build()
    assert [s.name for s in report.series] == ["s0", "s1"]
    assert len(report.series[0].points) == 2
    assert any("3 samples of series beyond the first 2" in n for n in report.notes)


def test_non_finite_readings_are_skipped_and_counted_bad_types_raise() -> None:
    clock = FakeClock(wall_start=WALL0)
    builder = _builder(clock)
    builder.add_point("x", math.nan)
    builder.add_point("x", math.inf)
    builder.add_point("x", 1.0)
    with pytest.raises(ConfigurationError, match="value of series 'x' must be a number"):
        builder.add_point("x", "1")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="non-empty"):
        builder.add_point("", 1.0)
    report = builder.build()
    assert report.series[0].points == ((WALL0, 1.0),)
    assert "2 non-finite readings were skipped" in report.notes


def test_events_are_bounded_oldest_dropped() -> None:
    clock = FakeClock(wall_start=WALL0)
    builder = _builder(clock, max_events=3)
    for i in range(5):
        builder.add_action(f"a{i}", "because", details={"i": i})
        clock.advance(1)
    report = builder.build()
    assert [a.action for a in report.actions] == ["a2", "a3", "a4"]
    assert [a.details["i"] for a in report.actions] == [2, 3, 4]
    assert "2 oldest actions/alerts were dropped" in report.notes


def test_alerts_resolve_and_merge_with_given_ones_in_time_order() -> None:
    clock = FakeClock(wall_start=WALL0)
    builder = _builder(clock)
    builder.add_alert("cpu_high", severity="critical", value=97.0, message="cpu at 97 %")
    clock.advance(5)
    builder.add_alert("cpu_high", value=99.0)
    clock.advance(5)
    assert builder.resolve_alert("cpu_high")  # the latest open one
    assert not builder.resolve_alert("unknown")
    extra = builder.add_alert("from_monitor", t=WALL0 + 2)
    report = builder.build(alerts=[extra.__class__(time=WALL0 + 1, rule="given")])
    rules = [(a.rule, a.time - WALL0, a.resolved_at) for a in report.alerts]
    assert rules == [
        ("cpu_high", 0.0, None),
        ("given", 1.0, None),
        ("from_monitor", 2.0, None),
        ("cpu_high", 5.0, WALL0 + 10),
    ]


def test_build_uses_the_clock_and_given_sections() -> None:
    clock = FakeClock(wall_start=WALL0)
    builder = ReportBuilder(title="run", wall=clock.time)
    clock.advance(42)
    builder.add_note("5 pairs")
    plan = PlanSection(figures={"pairs": 5})
    report = builder.build(plan=plan, notes=["end"], title="final")
    assert report.created_at == WALL0 + 42
    assert report.duration == 42
    assert report.started_at == WALL0
    assert report.plan is plan
    assert report.notes == ("5 pairs", "end")
    assert report.title == "final"
    assert OptimizationReport.from_json(report.to_json()) == report
    assert "series=0" in repr(builder)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_points": 3}, "max_points must be an integer >= 4"),
        ({"max_series": 0}, "max_series"),
        ({"max_events": True}, "max_events"),
        ({"title": 5}, "title must be a string"),
    ],
)
def test_bad_builder_settings(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment):
        ReportBuilder(**kwargs)  # type: ignore[arg-type]


def test_concurrent_feeding_from_threads_loses_nothing() -> None:
    builder = ReportBuilder(title="threads", max_points=100_000, started_at=0.0)
    n_threads, per_thread = 4, 2000
    barrier = threading.Barrier(n_threads)

    def feed(k: int) -> None:
        barrier.wait(timeout=30)
        for i in range(per_thread):
            builder.add_point("shared", 1.0, t=float(i))
            builder.add_point(f"own{k}", float(i), t=float(i))
            if i % 100 == 0:
                builder.add_action("tick", f"thread {k}", t=float(i))

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    report = builder.build(created_at=float(per_thread))
    by_name = {s.name: s for s in report.series}
    assert len(by_name["shared"].points) == n_threads * per_thread
    for k in range(n_threads):
        assert by_name[f"own{k}"].values() == tuple(float(i) for i in range(per_thread))
    assert len(report.actions) == n_threads * per_thread // 100


# --------------------------------------------------------------------- pure helpers


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.floats(min_value=-1e9, max_value=1e9), min_size=0, max_size=400),
    max_points=st.integers(min_value=2, max_value=50),
)
def test_downsample_minmax_keeps_extremes_in_order(values: list[float], max_points: int) -> None:
    points = [(float(i), v) for i, v in enumerate(values)]
    out = downsample_minmax(points, max_points)
    if len(points) <= max_points:
        assert out == points
    else:
        assert len(out) <= max_points
    assert [t for t, _ in out] == sorted({t for t, _ in out})  # a subsequence, in order
    assert set(out) <= set(points)
    if values:
        assert max(v for _, v in out) == max(values)
        assert min(v for _, v in out) == min(values)


def test_downsample_rejects_tiny_targets_and_units_are_guessed() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        downsample_minmax([(0.0, 1.0)] * 5, 1)
    assert unit_for_metric("aimax_gc_pause_seconds_total") == ""
    assert unit_for_metric("aimax_pool_queue_wait_seconds") == "s"
    assert unit_for_metric("process_cpu_percent") == "%"


def test_add_samples_can_keep_only_named_series() -> None:
    from aimax.report.charts import CHART_SERIES

    builder = ReportBuilder(started_at=0.0)
    builder.add_samples(
        [
            MetricSample("aimax_pool_size", 4, {"pool": "io"}),
            MetricSample("aimax_pool_queued", 9, {"pool": "io"}),
            MetricSample("process_cpu_percent", 12.5),
        ],
        t=1.0,
        names=CHART_SERIES,
    )
    assert sorted(s.name for s in builder.series()) == ["aimax_pool_size", "process_cpu_percent"]
