"""The report model: exact JSON round trips, normalisation, and clear errors on bad input."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimax.errors import ConfigurationError
from aimax.report import (
    SCHEMA,
    ActionRow,
    AlertRow,
    BanRow,
    CacheRow,
    LimiterPoolRow,
    LimiterSection,
    MemorySection,
    OptimizationReport,
    Percentiles,
    PlanSection,
    PoolRow,
    TimeSeries,
    WaitRow,
)

# ----------------------------------------------------------------------- strategies

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
non_negative = st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=1e12)
counts = st.integers(min_value=0, max_value=2**63)
text = st.text(max_size=12)
opt_seconds = st.none() | non_negative
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
json_maps = st.dictionaries(text, json_values, max_size=4)
percentiles = st.builds(Percentiles, p50=opt_seconds, p95=opt_seconds, p99=opt_seconds)
waits = st.builds(WaitRow, priority=text, count=st.none() | counts, seconds=percentiles)
series = st.builds(
    TimeSeries,
    name=st.text(min_size=1, max_size=20),
    unit=st.sampled_from(["", "%", "bytes", "s", "ratio", "pairs"]),
    labels=st.dictionaries(text, text, max_size=3),
    points=st.lists(st.tuples(finite, finite), max_size=30),
)
limiter_pools = st.builds(
    LimiterPoolRow,
    pool=text,
    limit=st.none() | non_negative,
    window=st.none() | non_negative,
    granted=counts,
    units=counts,
    rejected=counts,
    utilisation=non_negative,
    waits=st.lists(waits, max_size=3),
)
bans = st.builds(
    BanRow,
    time=finite,
    scope=text,
    until=finite,
    status=st.none() | st.sampled_from([418, 429]),
    reason=text,
)
limiters = st.builds(
    LimiterSection,
    pools=st.lists(limiter_pools, max_size=3),
    waits=st.lists(waits, max_size=4),
    bans=counts,
    responses_429=counts,
    ban_events=st.lists(bans, max_size=2),
    extra=json_maps,
)
pool_rows = st.builds(
    PoolRow,
    pool=text,
    size=counts,
    max_size=st.none() | counts,
    active=counts,
    queued=counts,
    completed=counts,
    failed=counts,
    rejected=counts,
    queue_wait=percentiles,
    run_time=percentiles,
    extra=json_maps,
)
opt_counts = st.none() | counts
memories = st.builds(
    MemorySection,
    rss_bytes=opt_counts,
    peak_rss_bytes=opt_counts,
    uss_bytes=opt_counts,
    budget_bytes=opt_counts,
    pressure_level=st.none() | st.integers(0, 2),
    gc_collections=st.dictionaries(st.sampled_from(["0", "1", "2"]), counts),
    gc_pause_total_seconds=opt_seconds,
    gc_pause_max_seconds=opt_seconds,
    caches=st.lists(
        st.builds(
            CacheRow,
            name=text,
            items=opt_counts,
            bytes=opt_counts,
            max_items=opt_counts,
            evictions=opt_counts,
        ),
        max_size=3,
    ),
    extra=json_maps,
)


@st.composite
def alerts(draw: st.DrawFn) -> AlertRow:
    time = draw(finite)
    delay = draw(st.none() | st.floats(min_value=0, max_value=1e6))
    return AlertRow(
        time=time,
        rule=draw(text),
        severity=draw(st.sampled_from(["info", "warning", "critical"])),
        value=draw(st.none() | finite),
        message=draw(text),
        resolved_at=None if delay is None else time + delay,
    )


actions = st.builds(ActionRow, time=finite, action=text, reason=text, details=json_maps)
reports = st.builds(
    OptimizationReport,
    title=text,
    created_at=non_negative,
    duration=non_negative,
    plan=st.none() | st.builds(PlanSection, figures=json_maps, warnings=st.lists(text, max_size=3)),
    series=st.lists(series, max_size=4),
    limiter=st.none() | limiters,
    pools=st.lists(pool_rows, max_size=3),
    memory=st.none() | memories,
    alerts=st.lists(alerts(), max_size=3),
    actions=st.lists(actions, max_size=3),
    notes=st.lists(text, max_size=3),
)

PLAIN = (str, int, float, bool, type(None))


def _assert_plain(value: Any, path: str = "$") -> None:
    """Only JSON's own types: dict with str keys, list, str, int, float, bool, None."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str), path
            _assert_plain(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _assert_plain(item, f"{path}[{i}]")
    else:
        assert isinstance(value, PLAIN), f"{path}: {type(value).__name__}"


# ------------------------------------------------------------------------ round trip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports)
def test_json_round_trip_is_exact(report: OptimizationReport) -> None:
    data = report.to_dict()
    _assert_plain(data)
    assert data["schema"] == SCHEMA
    assert OptimizationReport.from_dict(data) == report
    text = report.to_json()
    assert OptimizationReport.from_json(text) == report
    assert json.loads(text) == data
    # a second trip changes nothing, to the byte
    assert OptimizationReport.from_json(text).to_json() == text


@settings(max_examples=20, deadline=None)
@given(reports)
def test_to_dict_is_a_fresh_copy(report: OptimizationReport) -> None:
    data = report.to_dict()
    data["notes"].append("mutated")
    data["title"] = "other"
    assert report.to_dict() != data


def test_full_report_round_trips_through_indented_json(report: OptimizationReport) -> None:
    assert OptimizationReport.from_json(report.to_json(indent=2)) == report
    assert OptimizationReport.from_json(report.to_json().encode()) == report


# --------------------------------------------------------------------- normalisation


def test_sequences_become_tuples_and_mappings_are_copied() -> None:
    labels = {"pool": "io"}
    points = [[2, 5], (1, 4)]
    s = TimeSeries(name="aimax_pool_size", labels=labels, points=points)
    labels["pool"] = "changed"
    points.append([3, 6])
    assert s.labels == {"pool": "io"}
    assert s.points == ((1.0, 4.0), (2.0, 5.0))  # sorted by t, ints made floats
    assert all(type(v) is float for p in s.points for v in p)
    plan = PlanSection(figures={"sizes": [1, 2, {"a": [3]}]}, warnings=["w"])
    assert plan.figures == {"sizes": (1, 2, {"a": (3,)})}
    assert plan.warnings == ("w",)


def test_integral_floats_are_accepted_for_counters_and_ints_for_floats() -> None:
    row = LimiterPoolRow(pool="p", limit=1200, window=60, granted=12.0, utilisation=1)
    assert row.granted == 12
    assert type(row.granted) is int
    assert type(row.limit) is float
    assert type(row.utilisation) is float


def test_models_are_frozen(report: OptimizationReport) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.title = "x"  # type: ignore[misc]
    assert isinstance(report.series, tuple)
    assert isinstance(report.limiter, LimiterSection)
    assert isinstance(report.limiter.pools, tuple)


def test_started_at_and_find_series(report: OptimizationReport) -> None:
    assert report.started_at == report.created_at - report.duration
    found = report.find_series("aimax_ratelimit_utilisation_ratio", pool="rest_private")
    assert [s.labels["pool"] for s in found] == ["rest_private"]
    assert len(report.find_series("aimax_ratelimit_utilisation_ratio")) == 2
    assert report.find_series("nope") == ()
    assert found[0].key == 'aimax_ratelimit_utilisation_ratio{pool="rest_private"}'


# -------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: TimeSeries(name=""), "TimeSeries.name: expected a non-empty name"),
        (lambda: TimeSeries(name="x", points=[(1.0,)]), "expected a (t, value) pair"),
        (lambda: TimeSeries(name="x", points=[(1.0, math.nan)]), "expected a finite number"),
        (lambda: TimeSeries(name="x", points="12"), "expected a list"),
        (lambda: TimeSeries(name="x", labels={"a": 1}), "TimeSeries.labels['a']"),
        (lambda: Percentiles(p50=-1), "Percentiles.p50: expected a number >= 0"),
        (lambda: Percentiles(p99=True), "expected a number, got True"),
        (lambda: WaitRow(priority="x", count=1.5), "WaitRow.count: expected an integer"),
        (lambda: WaitRow(priority="x", count=-1), "expected an integer >= 0"),
        (lambda: Percentiles(p50=10**400), "expected a finite number"),
        (lambda: LimiterPoolRow(pool=3, limit=1, window=1), "LimiterPoolRow.pool"),
        (lambda: LimiterPoolRow(pool="p", limit=1, window=1, waits=[1]), "expected a WaitRow"),
        (lambda: PlanSection(figures={"x": object()}), "expected a JSON value"),
        (lambda: PlanSection(figures={"x": math.inf}), "expected a finite number"),
        (lambda: PlanSection(figures={1: 2}), "PlanSection.figures key"),
        (lambda: MemorySection(gc_collections={"0": -2}), "MemorySection.gc_collections"),
        (lambda: AlertRow(time=10, rule="r", resolved_at=5), "AlertRow.resolved_at"),
        (lambda: ActionRow(time="now", action="a"), "ActionRow.time: expected a number"),
        (lambda: OptimizationReport(title="t", created_at=-1), "created_at"),
        (lambda: OptimizationReport(title="t", created_at=0, notes="abc"), "notes"),
        (lambda: OptimizationReport(title="t", created_at=0, plan={}), "expected a PlanSection"),
    ],
)
def test_bad_values_raise_configuration_error_naming_them(build: Any, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        build()
    assert fragment in str(info.value)


def _minimal() -> dict[str, Any]:
    return OptimizationReport(
        title="t",
        created_at=10,
        limiter=LimiterSection(pools=[LimiterPoolRow(pool="a", limit=1, window=1)] * 2),
    ).to_dict()


def test_from_dict_names_the_path_of_the_bad_value() -> None:
    data = _minimal()
    data["limiter"]["pools"][1]["granted"] = "many"
    with pytest.raises(ConfigurationError, match=r"report\.limiter\.pools\[1\]: .*granted"):
        OptimizationReport.from_dict(data)


def test_from_dict_rejects_unknown_and_missing_fields() -> None:
    data = _minimal()
    data["limiter"]["pools"][0]["colour"] = "red"
    with pytest.raises(ConfigurationError, match=r"pools\[0\]: unknown field\(s\) colour"):
        OptimizationReport.from_dict(data)
    data = _minimal()
    del data["limiter"]["pools"][0]["pool"]
    with pytest.raises(ConfigurationError, match=r"pools\[0\]: missing required field 'pool'"):
        OptimizationReport.from_dict(data)
    with pytest.raises(ConfigurationError, match="missing required field 'title'"):
        OptimizationReport.from_dict({"created_at": 1})


def test_optional_fields_may_be_left_out() -> None:
    report = OptimizationReport.from_dict({"title": "t", "created_at": 5})
    assert report == OptimizationReport(title="t", created_at=5.0)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "report: expected an object"),
        ({"schema": "aimax.report/99", "title": "t", "created_at": 1}, "unsupported schema"),
        ({"title": "t", "created_at": 1, "series": {"a": 1}}, "report.series"),
        ({"title": "t", "created_at": 1, "series": [3]}, r"report.series[0]: expected an object"),
        ({"title": "t", "created_at": 1, "memory": []}, "report"),
        ({"title": "t", "created_at": 1, "alerts": [{"time": 1}]}, "missing required field 'rule'"),
    ],
)
def test_malformed_dicts(data: Any, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        OptimizationReport.from_dict(data)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "not valid JSON"),
        ('{"title": "t", "created_at": NaN}', "NaN is not allowed"),
        ('{"title": "t", "created_at": Infinity}', "Infinity is not allowed"),
        ("[1, 2]", "expected an object"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_json(text: str | bytes, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        OptimizationReport.from_json(text)
    assert fragment in str(info.value)


def test_to_json_never_writes_nan() -> None:
    # NaN cannot get in through the constructor, so nothing can write it either
    with pytest.raises(ConfigurationError):
        OptimizationReport(title="t", created_at=math.nan)
    assert "NaN" not in OptimizationReport(title="t", created_at=0).to_json()


def test_reports_pickle_for_other_processes(report: OptimizationReport) -> None:
    import pickle

    assert pickle.loads(pickle.dumps(report)) == report


def test_repr_of_a_long_series_stays_short() -> None:
    s = TimeSeries(name="x", points=[(float(i), 1.0) for i in range(5000)])
    assert "<5000 points>" in repr(s)
    assert len(repr(s)) < 120
