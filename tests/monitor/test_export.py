"""Prometheus exposition (parsed back) and the HTTP endpoint on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aimax._clock import FakeClock
from aimax._metrics import MetricSample
from aimax.errors import ConfigurationError, MonitorError
from aimax.monitor import ResourceMonitor

from .conftest import FakeProbe


class Limiter:
    def metric_samples(self) -> list[MetricSample]:
        return [
            MetricSample("aimax_ratelimit_utilisation_ratio", 0.5, {"pool": "rest_public"}),
            MetricSample("aimax_ratelimit_granted_total", 42, {"pool": "rest_public"}, "counter"),
            MetricSample("aimax_ratelimit_banned", 0),
            MetricSample(
                "aimax_client_requests_total", 3, {"kind": 'odd "quoted"\\name'}, "counter"
            ),
        ]


def _families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_the_exposition_parses_with_standard_names() -> None:
    with ResourceMonitor() as monitor:
        monitor.add_source("limiter", Limiter())
        monitor.collect_metrics()
        text = monitor.render_prometheus()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    # standard process metric names and types (the parser strips _total from counters)
    assert families["process_resident_memory_bytes"].type == "gauge"
    assert families["process_cpu_seconds"].type == "counter"
    assert families["process_open_fds"].type == "gauge"
    assert families["process_max_fds"].type == "gauge"
    assert families["process_start_time_seconds"].type == "gauge"
    rss = families["process_resident_memory_bytes"].samples[0].value
    assert rss > 1_000_000
    # the sources' series with their labels
    ratio = families["aimax_ratelimit_utilisation_ratio"].samples[0]
    assert (ratio.labels, ratio.value) == ({"pool": "rest_public"}, 0.5)
    granted = families["aimax_ratelimit_granted"]
    assert granted.type == "counter"
    assert granted.samples[0].name == "aimax_ratelimit_granted_total"
    odd = families["aimax_client_requests"].samples[0]
    assert odd.labels == {"kind": 'odd "quoted"\\name'}
    # the GC and the monitor itself
    gens = {s.labels["generation"] for s in families["aimax_gc_collections"].samples}
    assert gens == {"0", "1", "2"}
    assert families["aimax_monitor_up"].samples[0].value == 1.0
    cs = families["aimax_process_context_switches"].samples
    assert {s.labels["kind"] for s in cs} == {"voluntary", "involuntary"}


def test_degraded_readings_are_flagged_not_zeroed(fake_clock: FakeClock) -> None:
    probe = FakeProbe({"aimax_process_threads": 4.0})
    probe.failures = {"process_open_fds": "AccessDenied"}
    monitor = ResourceMonitor(probe=probe, clock=fake_clock, gc=False)
    text = monitor.render_prometheus()
    monitor.close()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "process_open_fds" not in families
    [flag] = families["aimax_monitor_degraded"].samples
    assert (flag.labels, flag.value) == ({"metric": "process_open_fds"}, 1.0)
    assert families["aimax_process_threads"].samples[0].value == 4.0


def test_http_scrape_on_loopback() -> None:
    monitor = ResourceMonitor(interval=0.05)
    monitor.add_source("limiter", Limiter())
    server = monitor.serve_prometheus(port=0)
    assert server.host == "127.0.0.1"
    assert server.port > 0
    monitor.start_monitoring()
    response = httpx.get(server.url, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    assert families["aimax_ratelimit_utilisation_ratio"].samples[0].value == 0.5
    assert "127.0.0.1" in repr(server)
    port = server.port
    monitor.close()  # stops the sampler and the server
    assert server.closed
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_server_errors_are_clear() -> None:
    with ResourceMonitor(probe=FakeProbe(), gc=False) as monitor:
        with pytest.raises(ConfigurationError, match="port"):
            monitor.serve_prometheus(port=70000)
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            with pytest.raises(MonitorError, match="cannot serve"):
                monitor.serve_prometheus(port=busy.getsockname()[1])
        with monitor.serve_prometheus(port=0) as server:
            assert httpx.get(server.url, timeout=30).status_code == 200
        assert server.closed


def test_the_collector_plugs_into_another_registry() -> None:
    with ResourceMonitor(probe=FakeProbe({"aimax_process_threads": 2.0}), gc=False) as monitor:
        registry = CollectorRegistry()
        registry.register(monitor.prometheus_collector())
        assert monitor.prometheus_collector() is monitor.prometheus_collector()
        text = generate_latest(registry).decode()
    assert "aimax_process_threads 2.0" in text


# ------------------------------------------------------------------ histograms


class _NsClock:
    """A nanosecond clock the test moves (the pool's latencies are read from it)."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _histogram_samples(family: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for s in family.samples  # type: ignore[attr-defined]
    }


def _buckets(text: str, name: str, labels: dict[str, str]) -> dict[str, float]:
    """``le -> cumulative count`` of one histogram series, and its _sum and _count."""
    family = _families(text)[name]
    out: dict[str, float] = {}
    for s in family.samples:  # type: ignore[attr-defined]
        rest = {k: v for k, v in s.labels.items() if k != "le"}
        if rest != labels:
            continue
        if s.name.endswith("_bucket"):
            out[s.labels["le"]] = s.value
        else:
            out[s.name.rsplit("_", 1)[1]] = s.value
    return out


def test_pool_latencies_are_real_histograms_and_show_a_stall(fake_clock: FakeClock) -> None:
    from aimax.pools import PoolConfig, ResizablePool

    clock = _NsClock()
    pool = ResizablePool("io", PoolConfig(max_size=1, size=1), clock_ns=clock)
    monitor = ResourceMonitor(probe=FakeProbe(), clock=fake_clock, gc=False)
    monitor.add_source("pools", pool)
    try:
        for _ in range(5):  # quick tasks: no queue wait, no run time on this clock
            pool.submit(int).result(timeout=30)
        before = _buckets(
            monitor.render_prometheus(), "aimax_pool_queue_wait_seconds", {"pool": "io"}
        )
        # a stall: the clock jumps 25 s between submit and start for three tasks
        started, gate = threading.Event(), threading.Event()

        def hold() -> None:
            started.set()
            gate.wait(30)

        blocker = pool.submit(hold)
        assert started.wait(30)  # it runs: its own queue wait was 0 s
        stalled = [pool.submit(int) for _ in range(3)]
        clock.now += 25 * 10**9
        gate.set()
        for future in [blocker, *stalled]:
            future.result(timeout=30)
        after = _buckets(
            monitor.render_prometheus(), "aimax_pool_queue_wait_seconds", {"pool": "io"}
        )
    finally:
        monitor.close()
        pool.shutdown()
    for series in (before, after):
        les = sorted((float(le), n) for le, n in series.items() if le not in ("sum", "count"))
        counts = [n for _, n in les]
        assert counts == sorted(counts)  # cumulative: monotone in le
        assert les[-1][0] == float("inf")
        assert les[-1][1] == series["count"]  # +Inf equals _count
    assert before["count"] == 5
    assert after["count"] == 9  # 5 + the blocker + 3 stalled tasks
    delta = {le: after[le] - before[le] for le in after}
    # the blocker waited 0 s: in every bucket; the three stalled ones only above 25 s
    fast = [le for le in delta if le not in ("sum", "count", "+Inf") and float(le) < 25]
    assert fast
    assert all(delta[le] == 1 for le in fast)
    assert delta["+Inf"] == 4
    assert delta["sum"] == pytest.approx(75.0)


def test_one_scrape_over_http_carries_histograms_and_alert_names() -> None:
    from aimax.monitor import AlertRule
    from aimax.pools import ThreadPoolManager

    pools = ThreadPoolManager()
    monitor = ResourceMonitor(
        rules=[AlertRule(name="always", metric="aimax_monitor_up", threshold=0, severity="info")]
    )
    try:
        monitor.add_source("pools", pools)
        pools.submit_task("io", sum, range(100)).result(timeout=30)
        monitor.collect_metrics()
        server = monitor.serve_prometheus(port=0)
        response = httpx.get(server.url, timeout=30)
    finally:
        monitor.close()
        pools.shutdown_all()
    assert response.status_code == 200
    families = _families(response.text)
    run = families["aimax_pool_run_seconds"]
    assert run.type == "histogram"  # type: ignore[attr-defined]
    samples = _histogram_samples(run)
    assert samples[("aimax_pool_run_seconds_count", (("pool", "io"),))] == 1
    assert samples[("aimax_pool_run_seconds_bucket", (("le", "+Inf"), ("pool", "io")))] == 1
    assert families["aimax_gc_pause_seconds"].type == "histogram"  # type: ignore[attr-defined]
    firing = {
        (s.labels["alertname"], s.labels["severity"]): s.value
        for s in families["aimax_monitor_alerts_firing"].samples  # type: ignore[attr-defined]
    }
    assert firing == {("always", "info"): 1.0}
    # no series twice: the histogram's _count/_sum are not also exported as counters
    assert "aimax_pool_run_seconds_count" not in families
    assert "aimax_memory_rss_bytes" not in families


def test_another_process_is_labelled_with_its_pid() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        with ResourceMonitor(pid=child.pid) as monitor:
            text = monitor.render_prometheus()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
    families = _families(text)
    [rss] = families["process_resident_memory_bytes"].samples  # type: ignore[attr-defined]
    assert rss.labels == {"pid": str(child.pid)}
    assert not any(name.startswith("aimax_gc_") for name in families)
    with ResourceMonitor() as own:
        [mine] = _families(own.render_prometheus())["process_resident_memory_bytes"].samples  # type: ignore[attr-defined]
    assert mine.labels == {}
