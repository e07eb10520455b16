"""The alert state machine: fires only after ``for``, clears only past ``clear``, cools down."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings

from aimax.errors import ConfigurationError
from aimax.monitor import AlertRule, RuleEngine, default_rules
from aimax.monitor.history import History, HistoryConfig

from ._trace import check_trace, scenarios

M = "aimax_process_cpu_ratio"


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_rule_state_machine_properties(
    scenario: tuple[AlertRule, list[tuple[float, float | None]]],
) -> None:
    rule, timeline = scenario
    engine = RuleEngine([rule])
    events_at = []
    firing_after = []
    for now, value in timeline:
        values = {} if value is None else {M: value}
        events_at.append(engine.evaluate(now, values))
        firing_after.append(bool(engine.active()))
    check_trace(rule, timeline, events_at, firing_after)


def test_fires_exactly_when_the_duration_has_held() -> None:
    rule = AlertRule(name="hot", metric=M, comparison=">", threshold=90, for_=10, clear=70)
    engine = RuleEngine([rule])
    assert engine.evaluate(0.0, {M: 95.0}) == []
    assert engine.pending() == [("hot", M, 0.0)]
    assert engine.evaluate(9.99, {M: 95.0}) == []
    [event] = engine.evaluate(10.0, {M: 95.0})
    assert (event.kind, event.since, event.at, event.value) == ("firing", 0.0, 10.0, 95.0)
    assert [a.rule.name for a in engine.active()] == ["hot"]


def test_a_dip_restarts_the_duration() -> None:
    rule = AlertRule(name="hot", metric=M, comparison=">", threshold=90, for_=10)
    engine = RuleEngine([rule])
    engine.evaluate(0.0, {M: 95.0})
    engine.evaluate(5.0, {M: 50.0})
    assert engine.evaluate(10.0, {M: 95.0}) == []
    assert engine.evaluate(19.0, {M: 95.0}) == []
    assert [e.kind for e in engine.evaluate(20.0, {M: 95.0})] == ["firing"]


def test_hysteresis_holds_between_clear_and_threshold() -> None:
    rule = AlertRule(name="hot", metric=M, comparison=">=", threshold=90, clear=70)
    engine = RuleEngine([rule])
    assert [e.kind for e in engine.evaluate(0.0, {M: 90.0})] == ["firing"]
    for t, v in [(1.0, 89.0), (2.0, 75.0), (3.0, 70.0), (4.0, None)]:
        assert engine.evaluate(t, {} if v is None else {M: v}) == []
        assert engine.active()
    [event] = engine.evaluate(5.0, {M: 69.9})
    assert event.kind == "resolved"
    assert not engine.active()


def test_cooldown_delays_the_next_firing_but_not_the_resolution() -> None:
    rule = AlertRule(name="hot", metric=M, comparison=">", threshold=90, clear=80, cooldown=60)
    engine = RuleEngine([rule])
    assert [e.kind for e in engine.evaluate(0.0, {M: 95.0})] == ["firing"]
    assert [e.kind for e in engine.evaluate(1.0, {M: 10.0})] == ["resolved"]
    assert engine.evaluate(2.0, {M: 95.0}) == []  # still in cooldown
    assert engine.evaluate(59.0, {M: 95.0}) == []
    [event] = engine.evaluate(60.0, {M: 95.0})
    assert (event.kind, event.since) == ("firing", 2.0)


def test_below_rules_mirror_above_rules() -> None:
    rule = AlertRule(name="low", metric=M, comparison="<", threshold=10, clear=20, for_=1)
    engine = RuleEngine([rule])
    engine.evaluate(0.0, {M: 5.0})
    assert [e.kind for e in engine.evaluate(1.0, {M: 5.0})] == ["firing"]
    assert engine.evaluate(2.0, {M: 15.0}) == []
    assert [e.kind for e in engine.evaluate(3.0, {M: 25.0})] == ["resolved"]


def test_each_series_has_its_own_state_and_labels_filter() -> None:
    rule = AlertRule(name="q", metric="aimax_pool_queued", threshold=10, labels={"pool": "io"})
    engine = RuleEngine([rule])
    series = {
        "aimax_pool_queued": [
            ('aimax_pool_queued{pool="io"}', {"pool": "io"}),
            ('aimax_pool_queued{pool="cpu"}', {"pool": "cpu"}),
        ]
    }
    values = {'aimax_pool_queued{pool="io"}': 50.0, 'aimax_pool_queued{pool="cpu"}': 50.0}
    events = engine.evaluate(0.0, values, series)
    assert [(e.series, dict(e.labels)) for e in events] == [
        ('aimax_pool_queued{pool="io"}', {"pool": "io"})
    ]
    unfiltered = RuleEngine([AlertRule(name="q", metric="aimax_pool_queued", threshold=10)])
    assert len(unfiltered.evaluate(0.0, values, series)) == 2
    assert len(unfiltered.active()) == 2


def test_function_rules_read_the_history() -> None:
    history = History(HistoryConfig(ring_size=4000, bucket=60, retention=7200))
    rule = AlertRule(
        name="grow",
        metric="process_resident_memory_bytes",
        function="slope_per_hour",
        window=timedelta(minutes=30),
        comparison=">",
        threshold=3600.0,
        clear=100.0,
    )
    engine = RuleEngine([rule])
    key = "process_resident_memory_bytes"
    series = {key: [(key, {})]}
    fired_at = None
    for i in range(3600):
        t = float(i)
        value = 1e6 + 2.0 * t  # 7200 bytes per hour
        history.record(t, {key: value})
        events = engine.evaluate(t, {key: value}, series, history)
        if events and fired_at is None:
            fired_at = t
            assert events[0].value == pytest.approx(7200.0, rel=1e-6)
    # needs at least half the 30-minute window of closed buckets first
    assert fired_at is not None
    assert fired_at >= 15 * 60


def test_rule_validation_names_the_bad_value() -> None:
    with pytest.raises(ConfigurationError, match="clear"):
        AlertRule(name="x", metric=M, comparison=">", threshold=10, clear=20)
    with pytest.raises(ConfigurationError, match="clear"):
        AlertRule(name="x", metric=M, comparison="<", threshold=10, clear=5)
    with pytest.raises(ConfigurationError, match="comparison"):
        AlertRule(name="x", metric=M, comparison="!=", threshold=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="for_"):
        AlertRule(name="x", metric=M, threshold=1, for_=-1)
    with pytest.raises(ConfigurationError, match="window"):
        AlertRule(name="x", metric=M, threshold=1, function="mean")
    with pytest.raises(ConfigurationError, match="metric"):
        AlertRule(name="x", metric="not a name", threshold=1)
    with pytest.raises(ConfigurationError, match="threshold"):
        AlertRule(name="x", metric=M, threshold=float("nan"))
    with pytest.raises(ConfigurationError, match="severity"):
        AlertRule(name="x", metric=M, threshold=1, severity="fatal")  # type: ignore[arg-type]
    rule = AlertRule(name="x", metric=M, threshold=1, for_=timedelta(seconds=90))
    assert (rule.for_seconds, rule.clear) == (90.0, 1.0)
    with pytest.raises(AttributeError):
        rule.threshold = 2  # type: ignore[misc]
    labelled = AlertRule(name="q", metric="aimax_pool_queued", threshold=1, labels={"pool": "io"})
    same = AlertRule(name="q", metric="aimax_pool_queued", threshold=1, labels={"pool": "io"})
    assert labelled == same
    assert len({labelled, same, rule}) == 2  # hashable, and equal rules hash alike


def test_default_rules_cover_the_bot_risks() -> None:
    rules = {r.name: r for r in default_rules()}
    assert set(rules) == {
        "cpu_saturation",
        "rss_near_budget",
        "rss_growing",
        "event_loop_lag",
        "ratelimit_near_budget",
        "pool_queue_backing_up",
    }
    assert rules["ratelimit_near_budget"].metric == "aimax_ratelimit_utilisation_ratio"
    assert rules["pool_queue_backing_up"].metric == "aimax_pool_queued"
    assert rules["rss_growing"].function == "slope_per_hour"
    assert rules["rss_near_budget"].metric == "aimax_process_memory_ratio"
    budget = {r.name: r for r in default_rules(rss_budget=1000)}["rss_near_budget"]
    assert (budget.metric, budget.threshold, budget.clear) == (
        "process_resident_memory_bytes",
        900.0,
        800.0,
    )
    for rule in rules.values():
        assert rule.for_seconds > 0
        assert rule.cooldown_seconds > 0
    with pytest.raises(ConfigurationError, match="rss_budget"):
        default_rules(rss_budget=0)


def test_replacing_and_removing_rules_resets_state() -> None:
    engine = RuleEngine([AlertRule(name="r", metric=M, threshold=1)])
    engine.evaluate(0.0, {M: 5.0})
    assert engine.active()
    engine.add(AlertRule(name="r", metric=M, threshold=100))
    assert not engine.active()
    assert engine.remove("r")
    assert not engine.remove("r")
    assert engine.rules == ()
