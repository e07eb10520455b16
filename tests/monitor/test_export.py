"""Prometheus exposition (parsed back) and the HTTP endpoint on loopback."""

from __future__ import annotations

import socket

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
