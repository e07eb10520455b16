"""ResourceMonitor with a fake clock and a fake probe (and a few real threads)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from datetime import timedelta

import pytest
from hypothesis import given, settings

from aimax._clock import FakeClock
from aimax._metrics import MetricSample
from aimax.errors import ConfigurationError, MonitorError, ProcessNotFound
from aimax.monitor import AlertEvent, AlertRule, HistoryConfig, ResourceMonitor

from ._trace import check_trace, scenarios
from .conftest import FakeProbe

CPU = "aimax_process_cpu_ratio"
RSS = "process_resident_memory_bytes"


def _monitor(probe: FakeProbe, clock: FakeClock, **kwargs: object) -> ResourceMonitor:
    return ResourceMonitor(
        interval=1.0,
        probe=probe,
        clock=clock,
        wall=clock.time,
        gc=False,
        **kwargs,  # type: ignore[arg-type]
    )


def _wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


class Source:
    def __init__(self, samples: Sequence[MetricSample]) -> None:
        self.samples = list(samples)
        self.error: Exception | None = None

    def metric_samples(self) -> Sequence[MetricSample]:
        if self.error is not None:
            raise self.error
        return self.samples


# ---------------------------------------------------------------------- bad input


def test_bad_interval_is_a_configuration_error() -> None:
    for bad in (0, -1, float("nan"), "1"):
        with pytest.raises(ConfigurationError, match="interval"):
            ResourceMonitor(interval=bad, probe=FakeProbe())  # type: ignore[arg-type]
    with ResourceMonitor(interval=timedelta(milliseconds=500), probe=FakeProbe()) as monitor:
        assert monitor.interval == 0.5


def test_missing_pid_raises_process_not_found() -> None:
    with pytest.raises(ProcessNotFound) as info:
        ResourceMonitor(pid=4_194_304 + 12345)
    assert info.value.pid == 4_194_304 + 12345
    assert isinstance(info.value, MonitorError)
    for bad in (0, -5, "12", True):
        with pytest.raises(ConfigurationError, match="pid"):
            ResourceMonitor(pid=bad)  # type: ignore[arg-type]


def test_unknown_metric_in_a_rule_is_refused(fake_clock: FakeClock) -> None:
    monitor = _monitor(FakeProbe(), fake_clock, rules=[])
    with pytest.raises(ConfigurationError, match="aimax_pool_qeued"):
        monitor.add_rule(AlertRule(name="typo", metric="aimax_pool_qeued", threshold=1))
    with pytest.raises(ConfigurationError, match="unknown metric"):
        ResourceMonitor(probe=FakeProbe(), rules=[AlertRule(name="x", metric="nope", threshold=1)])
    # a source's metrics become known when it is added
    monitor.add_source("strategy", Source([MetricSample("bot_signals_total", 3, {}, "counter")]))
    monitor.add_rule(AlertRule(name="signals", metric="bot_signals_total", threshold=10))
    # and the component names of the contract are known up front
    monitor.add_rule(AlertRule(name="q", metric="aimax_pool_queued", threshold=10))
    assert [r.name for r in monitor.rules] == ["signals", "q"]
    with pytest.raises(ConfigurationError, match="already"):
        monitor.add_source("strategy", Source([]))
    with pytest.raises(ConfigurationError, match="metric_samples"):
        monitor.add_source("bad", object())  # type: ignore[arg-type]
    monitor.close()


# ---------------------------------------------------------------------- alert rules


@settings(max_examples=40, deadline=None)
@given(scenarios())
def test_monitor_alerts_follow_the_rule_semantics(
    scenario: tuple[AlertRule, list[tuple[float, float | None]]],
) -> None:
    rule, timeline = scenario
    clock = FakeClock(start=timeline[0][0])
    probe = FakeProbe()
    monitor = _monitor(probe, clock, rules=[rule])
    received: list[AlertEvent] = []
    monitor.add_alert_listener(received.append)
    events_at = []
    firing_after = []
    for now, value in timeline:
        clock.set(now)
        probe.values = {} if value is None else {CPU: value}
        before = len(received)
        snapshot = monitor.collect_metrics()
        events_at.append(received[before:])
        assert list(snapshot.events) == received[before:]
        firing_after.append(bool(monitor.check_resource_limits()))
    monitor.close()
    check_trace(rule, timeline, events_at, firing_after)


def test_alerts_reach_listeners_and_logging(
    fake_probe: FakeProbe, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    rule = AlertRule(
        name="hot", metric=CPU, comparison=">", threshold=90, clear=70, for_=5, severity="critical"
    )
    monitor = _monitor(fake_probe, fake_clock, rules=[rule])
    got: list[AlertEvent] = []
    remove = monitor.add_alert_listener(got.append)

    def broken(event: AlertEvent) -> None:
        raise RuntimeError("listener bug")

    monitor.add_alert_listener(broken)
    caplog.set_level(logging.INFO, logger="aimax.monitor")
    fake_probe.set(aimax_process_cpu_ratio=95.0)
    for _ in range(5):
        monitor.collect_metrics()
        fake_clock.advance(1.0)
    assert got == []
    assert monitor.check_resource_limits() == []
    monitor.collect_metrics()  # 5 s after the first violation
    assert [e.kind for e in got] == ["firing"]
    [active] = monitor.check_resource_limits()
    assert (active.rule.name, active.severity, active.since) == ("hot", "critical", 1000.0)
    firing_logs = [r for r in caplog.records if "hot FIRING" in r.getMessage()]
    assert [r.levelno for r in firing_logs] == [logging.ERROR]
    assert any("listener bug" in str(r.exc_info) for r in caplog.records if r.exc_info)
    fake_probe.set(aimax_process_cpu_ratio=75.0)
    fake_clock.advance(1.0)
    monitor.collect_metrics()
    assert len(got) == 1  # between clear and threshold: still firing
    fake_probe.set(aimax_process_cpu_ratio=10.0)
    fake_clock.advance(1.0)
    monitor.collect_metrics()
    assert [e.kind for e in got] == ["firing", "resolved"]
    assert any("hot resolved" in r.getMessage() for r in caplog.records)
    remove()
    assert monitor.statistics().alerts_firing == 0
    monitor.close()


def test_rules_watch_component_sources_per_series(fake_clock: FakeClock) -> None:
    limiter = Source(
        [
            MetricSample("aimax_ratelimit_utilisation_ratio", 0.95, {"pool": "rest_public"}),
            MetricSample("aimax_ratelimit_utilisation_ratio", 0.10, {"pool": "rest_private"}),
        ]
    )
    pools = Source([MetricSample("aimax_pool_queued", 80, {"pool": "io"})])
    monitor = _monitor(FakeProbe(), fake_clock)  # the default rules
    monitor.add_source("limiter", limiter)
    monitor.add_source("pools", pools)
    for _ in range(31):
        monitor.collect_metrics()
        fake_clock.advance(1.0)
    firing = {(a.rule.name, a.series) for a in monitor.check_resource_limits()}
    assert firing == {
        ("ratelimit_near_budget", 'aimax_ratelimit_utilisation_ratio{pool="rest_public"}'),
        ("pool_queue_backing_up", 'aimax_pool_queued{pool="io"}'),
    }
    snapshot = monitor.latest
    assert snapshot is not None
    budget = 'aimax_monitor_alerts_firing{alertname="ratelimit_near_budget",severity="warning"}'
    queue = 'aimax_monitor_alerts_firing{alertname="pool_queue_backing_up",severity="warning"}'
    assert snapshot[budget] == snapshot[queue] == 0.0  # counted before this tick fired them
    monitor.collect_metrics()
    latest = monitor.collect_metrics()
    assert latest[budget] == latest[queue] == 1.0
    assert latest['aimax_monitor_alerts_firing{alertname="cpu_saturation",severity="warning"}'] == 0
    monitor.close()


# ---------------------------------------------------------------------- degradation


def test_a_failing_field_degrades_and_is_reported(
    fake_probe: FakeProbe, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = _monitor(fake_probe, fake_clock)
    caplog.set_level(logging.INFO, logger="aimax.monitor")
    fake_probe.failures = {RSS: "AccessDenied"}
    del fake_probe.values[RSS]
    snapshot = monitor.collect_metrics()
    assert RSS not in snapshot.values  # absent, never a zero
    assert snapshot.failures == {RSS: "AccessDenied"}
    assert snapshot[f'aimax_monitor_degraded{{metric="{RSS}"}}'] == 1.0
    assert snapshot["aimax_monitor_degraded_metrics"] == 1.0
    assert monitor.statistics().degraded == {RSS: "AccessDenied"}
    assert snapshot[CPU] == 5.0  # the other figures are still read
    # logged once when it starts failing, not on every sample
    monitor.collect_metrics()
    degraded_logs = [r for r in caplog.records if "degraded" in r.getMessage()]
    assert len(degraded_logs) == 1
    fake_probe.failures = {}
    fake_probe.values[RSS] = 1.0
    recovered = monitor.collect_metrics()
    assert recovered.failures == {}
    assert any("recovered" in r.getMessage() for r in caplog.records)
    monitor.close()


def test_a_probe_that_raises_degrades_everything_it_reads(
    fake_probe: FakeProbe, fake_clock: FakeClock
) -> None:
    source = Source([MetricSample("aimax_pool_queued", 3, {"pool": "io"})])
    monitor = _monitor(fake_probe, fake_clock)
    monitor.add_source("pools", source)
    fake_probe.fail = PermissionError("denied")
    snapshot = monitor.collect_metrics()
    assert snapshot.failures == {"probe": "PermissionError: denied"}
    assert snapshot['aimax_pool_queued{pool="io"}'] == 3.0
    assert snapshot["aimax_monitor_up"] == 0.0
    source.error = RuntimeError("boom")
    fake_probe.fail = None
    snapshot = monitor.collect_metrics()
    assert snapshot.failures == {"source:pools": "RuntimeError: boom"}
    assert 'aimax_pool_queued{pool="io"}' not in snapshot.values
    assert snapshot["aimax_monitor_up"] == 1.0
    monitor.close()


def test_the_sampler_keeps_running_through_failures(fake_probe: FakeProbe) -> None:
    """A real thread: a probe failing on every other read never stops the sampler."""
    calls = {"n": 0}
    original = fake_probe.read

    def flaky() -> object:
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            raise OSError("transient")
        return original()

    fake_probe.read = flaky  # type: ignore[method-assign]
    source = Source([MetricSample("aimax_pool_queued", 1, {"pool": "io"})])
    source.error = ValueError("always broken")
    monitor = ResourceMonitor(interval=0.005, probe=fake_probe, gc=False)
    monitor.add_source("broken", source)
    monitor.start_monitoring()
    monitor.start_monitoring()  # idempotent: still one thread
    assert sum(t.name.startswith("aimax-monitor") for t in threading.enumerate()) == 1
    _wait_for(lambda: monitor.statistics().samples >= 20)
    assert monitor.running
    monitor.stop_monitoring()
    assert not monitor.running
    stats = monitor.statistics()
    assert stats.sampler_errors == 0
    assert calls["n"] >= 20
    summary = monitor.get_metrics_summary()
    # every other sample had no RSS: the count says so, and no zero crept in
    rss = summary[RSS]
    assert rss.min == rss.max == 100e6
    assert 0 < rss.count < stats.samples
    monitor.close()


def test_bad_values_from_a_source_are_reported(fake_clock: FakeClock) -> None:
    source = Source([MetricSample("aimax_pool_queued", "lots", {"pool": "io"})])  # type: ignore[arg-type]
    monitor = _monitor(FakeProbe(), fake_clock)
    monitor.add_source("pools", source)
    snapshot = monitor.collect_metrics()
    assert "not a number" in snapshot.failures["source:pools:aimax_pool_queued"]
    monitor.close()


# ---------------------------------------------------------------------- history & json


def test_summary_through_the_monitor(fake_probe: FakeProbe, fake_clock: FakeClock) -> None:
    monitor = _monitor(fake_probe, fake_clock, rules=[])
    for i in range(10):
        fake_probe.set(aimax_process_cpu_ratio=float(i))
        monitor.collect_metrics()
        fake_clock.advance(1.0)
    summary = monitor.get_metrics_summary(window=timedelta(seconds=4))
    cpu = summary[CPU]
    assert (cpu.count, cpu.min, cpu.max, cpu.mean) == (4, 6.0, 9.0, 7.5)
    assert cpu.trend_per_hour == pytest.approx(3600.0)
    everything = monitor.get_metrics_summary()
    assert everything[CPU].count == 10
    with pytest.raises(ConfigurationError, match="window"):
        monitor.get_metrics_summary(window=-1)
    monitor.close()


def test_json_snapshot_and_history(fake_probe: FakeProbe, fake_clock: FakeClock) -> None:
    monitor = _monitor(fake_probe, fake_clock, rules=[], history=HistoryConfig(bucket=60))
    for _ in range(130):
        monitor.collect_metrics()
        fake_clock.advance(1.0)
    snap = json.loads(monitor.snapshot_json())
    assert snap["values"][RSS] == 100e6
    assert snap["sequence"] == 131  # not running: a fresh sample
    hist = json.loads(monitor.history_json(window=90))
    series = hist["series"][RSS]
    assert len(series["points"]) == 91
    assert [b["count"] for b in series["buckets"]] == [60]
    assert series["summary"]["max"] == 100e6
    # times are Unix seconds
    assert series["points"][-1][0] == pytest.approx(fake_clock.time(), abs=2.0)
    monitor.close()


def test_history_ring_is_sized_for_two_buckets() -> None:
    monitor = ResourceMonitor(
        interval=0.1, probe=FakeProbe(), gc=False, history=HistoryConfig(ring_size=10)
    )
    assert monitor.history.config.ring_size == 1201
    monitor.close()


# ---------------------------------------------------------------------- lifecycle


def test_lifecycle_and_repr(fake_probe: FakeProbe, fake_clock: FakeClock) -> None:
    monitor = _monitor(fake_probe, fake_clock)
    assert "idle" in repr(monitor)
    assert monitor.check_resource_limits() == []  # takes a first sample
    assert monitor.statistics().samples == 1
    monitor.close()
    monitor.close()  # idempotent
    assert "closed" in repr(monitor)
    with pytest.raises(MonitorError, match="closed"):
        monitor.collect_metrics()
    with pytest.raises(MonitorError, match="closed"):
        monitor.start_monitoring()


def test_dropping_the_monitor_stops_its_thread(fake_probe: FakeProbe) -> None:
    monitor = ResourceMonitor(interval=0.01, probe=fake_probe, gc=False)
    monitor.start_monitoring()
    _wait_for(lambda: fake_probe.reads >= 2)
    thread = next(t for t in threading.enumerate() if t.name.startswith("aimax-monitor"))
    del monitor
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_interpreter_exit_stops_the_sampler() -> None:
    import subprocess
    import sys

    code = (
        "from aimax.monitor import ResourceMonitor\n"
        "m = ResourceMonitor(interval=0.01)\n"
        "m.start_monitoring()\n"
        "import time; time.sleep(0.1)\n"
        "print(m.statistics().samples > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_own_cpu_time_is_measured(fake_probe: FakeProbe, fake_clock: FakeClock) -> None:
    monitor = _monitor(fake_probe, fake_clock)
    first = monitor.collect_metrics()
    assert "aimax_monitor_sample_cpu_seconds" not in first.values  # nothing measured yet
    second = monitor.collect_metrics()
    assert second["aimax_monitor_sample_cpu_seconds"] == first.cpu_seconds
    assert second["aimax_monitor_cpu_seconds_total"] == first.cpu_seconds
    stats = monitor.statistics()
    assert stats.cpu_seconds_total == pytest.approx(first.cpu_seconds + second.cpu_seconds)
    assert stats.mean_sample_cpu_seconds == pytest.approx(stats.cpu_seconds_total / 2)
    assert stats.cpu_seconds_total >= 0
    monitor.close()


def test_duplicate_series_keep_the_first(fake_clock: FakeClock) -> None:
    probe = FakeProbe({RSS: 5.0})
    monitor = _monitor(probe, fake_clock)
    monitor.add_source("memory", Source([MetricSample(RSS, 7.0)]))
    assert monitor.collect_metrics()[RSS] == 5.0
    monitor.close()


def test_the_monitor_is_itself_a_metrics_source(fake_clock: FakeClock) -> None:
    from aimax._metrics import MetricsSource

    monitor = _monitor(
        FakeProbe({CPU: 99.0}),
        fake_clock,
        rules=[AlertRule(name="hot", metric=CPU, threshold=90, severity="critical")],
    )
    assert isinstance(monitor, MetricsSource)
    monitor.collect_metrics()
    got = {(s.name, tuple(s.labels.items())): s.value for s in monitor.metric_samples()}
    assert got[("aimax_monitor_samples_total", ())] == 1.0
    assert (
        got[("aimax_monitor_alerts_firing", (("alertname", "hot"), ("severity", "critical")))] == 1
    )
    assert [k for k in got if k[0] == "aimax_monitor_alerts_firing"] == [
        ("aimax_monitor_alerts_firing", (("alertname", "hot"), ("severity", "critical")))
    ]
    monitor.close()


def test_gc_collections_and_pauses_are_measured(fake_clock: FakeClock) -> None:
    import gc

    monitor = ResourceMonitor(probe=FakeProbe(), clock=fake_clock, rules=[])
    before = monitor.collect_metrics()
    assert len(gc.callbacks) >= 1
    garbage = [[i] for i in range(1000)]
    for item in garbage:
        item.append(item)  # reference cycles for the collector
    del garbage
    gc.collect()
    after = monitor.collect_metrics()
    gen2 = 'aimax_gc_collections_total{generation="2"}'
    assert after[gen2] >= before[gen2] + 1
    assert after['aimax_gc_collected_total{generation="2"}'] >= 1000
    gen2_pauses = 'aimax_gc_pause_seconds_count{generation="2"}'
    assert after[gen2_pauses] >= before[gen2_pauses] + 1
    histogram = after.histograms['aimax_gc_pause_seconds{generation="2"}']
    assert histogram.count == after[gen2_pauses]
    assert histogram.sum == after['aimax_gc_pause_seconds_sum{generation="2"}'] > 0
    monitor.close()


def test_concurrent_collectors_share_one_consistent_history(fake_probe: FakeProbe) -> None:
    """Real threads: the sampler, four callers and summaries, all at once."""
    monitor = ResourceMonitor(
        interval=0.001,
        probe=fake_probe,
        gc=False,
        history=HistoryConfig(ring_size=300, bucket=0.05, retention=5.0, max_series=40),
    )
    source = Source([MetricSample("aimax_pool_queued", 1, {"pool": "io"})])
    monitor.add_source("pools", source)
    sequences: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def caller() -> None:
        try:
            for _ in range(50):
                seq = monitor.collect_metrics().sequence
                with lock:
                    sequences.append(seq)
                monitor.get_metrics_summary(window=1.0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    class Churn:
        """A new series every call, so the history's tables change under the readers."""

        def __init__(self) -> None:
            self.n = 0

        def metric_samples(self) -> list[MetricSample]:
            self.n += 1
            return [MetricSample("aimax_pool_queued", 1, {"pool": f"p{self.n % 30}"})]

    monitor.add_source("churn", Churn())

    def reader() -> None:
        try:
            history = monitor.history
            for _ in range(30):
                for key in history:
                    history.points(key)
                    history.buckets(key)
                monitor.history_dict(window=0.5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    monitor.start_monitoring()
    threads = [threading.Thread(target=caller, name=f"caller-{i}") for i in range(4)]
    threads.append(threading.Thread(target=reader, name="reader"))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    monitor.stop_monitoring()
    assert not errors
    assert len(sequences) == 200
    assert len(set(sequences)) == 200  # every sample numbered once
    stats = monitor.statistics()
    assert stats.samples >= 200
    assert stats.sampler_errors == 0
    assert len(monitor.history) == stats.samples
    monitor.close()


# ---------------------------------------------------------------------- sources


def test_a_source_that_raises_degrades_only_itself(fake_clock: FakeClock) -> None:
    broken = Source([MetricSample("aimax_pool_queued", 1, {"pool": "io"})])
    fine = Source([MetricSample("aimax_memory_rss_bytes", 5)])
    monitor = _monitor(FakeProbe(), fake_clock)
    monitor.add_source("pools", broken)
    monitor.add_source("memory", fine)
    broken.error = RuntimeError("statistics broke")
    snapshot = monitor.collect_metrics()
    assert snapshot.failures["source:pools"] == "RuntimeError: statistics broke"
    assert snapshot["aimax_memory_rss_bytes"] == 5.0
    monitor.close()


def test_series_duplicating_another_source_keep_the_first(fake_clock: FakeClock) -> None:
    probe = FakeProbe({RSS: 5.0})
    monitor = _monitor(probe, fake_clock)
    source = Source([MetricSample(RSS, 7.0), MetricSample("aimax_memory_trims_total", 1)])
    monitor.add_source("memory", source)
    snapshot = monitor.collect_metrics()
    assert snapshot[RSS] == 5.0
    assert snapshot["aimax_memory_trims_total"] == 1.0
    monitor.close()
