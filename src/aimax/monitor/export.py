"""Exporters: a ``prometheus_client`` collector, its HTTP endpoint, and text rendering.

The collector exposes the monitor's latest sample with standard names where they
exist (``process_resident_memory_bytes``, ``process_cpu_seconds_total``,
``process_open_fds``...) and ``aimax_`` names otherwise. It lives in its own
``CollectorRegistry``, so it never clashes with the ``process_*`` metrics that
``prometheus_client`` registers in its default registry; register
:meth:`ResourceMonitor.prometheus_collector` elsewhere if you want it there instead
(then unregister the default ``PROCESS_COLLECTOR`` first).

    >>> from aimax.monitor import ResourceMonitor
    >>> with ResourceMonitor() as monitor:
    ...     "process_resident_memory_bytes" in monitor.render_prometheus()
    True
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from aimax._metrics import HistogramValue
from aimax.errors import ConfigurationError, MonitorError

if TYPE_CHECKING:
    from aimax.monitor.monitor import ResourceMonitor

__all__ = ["MonitorCollector", "PrometheusServer", "render_prometheus"]

logger = logging.getLogger(__name__)


class MonitorCollector:
    """A ``prometheus_client`` custom collector reading a :class:`ResourceMonitor`.

    Each scrape exposes the latest sample while the sampler runs, or takes a fresh
    one when it does not. Failed readings are absent (never zero) and flagged by
    ``aimax_monitor_degraded{metric=...} 1``.
    """

    def __init__(self, monitor: ResourceMonitor) -> None:
        self._monitor = monitor

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the series depend on what the sources publish."""
        return []

    def collect(self) -> Iterator[Metric]:
        """One metric family per metric name in the latest sample.

        Histograms carry ``_bucket`` (cumulative, ``le``), ``_sum`` and ``_count``.
        When the monitor watches another process, its ``process_*`` and
        ``aimax_process_*`` series carry a ``pid`` label.
        """
        monitor = self._monitor
        snapshot = monitor.latest_or_collect()
        pid = monitor.pid if monitor.pid is not None and monitor.pid != os.getpid() else None
        grouped: dict[str, list[tuple[dict[str, str], float | HistogramValue]]] = {}
        kinds: dict[str, tuple[str, str]] = {}
        rows: list[tuple[str, float | HistogramValue]] = [
            *snapshot.values.items(),
            *snapshot.histograms.items(),
        ]
        for key, value in rows:
            try:
                info = monitor.series_info(key)
            except ConfigurationError:
                continue
            if info.histogram is not None:  # a histogram's _count/_sum: written with it
                continue
            labels = dict(info.labels)
            if pid is not None and info.name.startswith(("process_", "aimax_process_")):
                labels["pid"] = str(pid)
            grouped.setdefault(info.name, []).append((labels, value))
            kinds.setdefault(info.name, (info.kind, info.help))
        for name in sorted(grouped):
            members = grouped[name]
            kind, help_ = kinds[name]
            label_names = sorted({k for labels, _ in members for k in labels})
            family: Metric
            if kind == "histogram":
                family = HistogramMetricFamily(name, help_ or name, labels=label_names)
                for labels, value in members:
                    if isinstance(value, HistogramValue):
                        family.add_metric(
                            [labels.get(k, "") for k in label_names],
                            [(le, float(n)) for le, n in value.buckets()],
                            value.sum,
                        )
                yield family
                continue
            if kind == "counter":
                family = CounterMetricFamily(name, help_ or name, labels=label_names)
            else:
                family = GaugeMetricFamily(name, help_ or name, labels=label_names)
            for labels, value in members:
                if not isinstance(value, HistogramValue):
                    family.add_metric([labels.get(k, "") for k in label_names], value)
            yield family


def _registry_for(collector: MonitorCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def render_prometheus(collector: MonitorCollector) -> str:
    """The collector's output in the Prometheus text format (version 0.0.4)."""
    return generate_latest(_registry_for(collector)).decode("utf-8")


class PrometheusServer:
    """An HTTP ``/metrics`` endpoint for a collector, in a daemon thread.

    Binds ``host`` (loopback by default) and ``port`` (``0`` = a free port, see
    :attr:`port`). :meth:`close` stops it (idempotent); so does the monitor's close.
    """

    def __init__(self, collector: MonitorCollector, *, port: int, host: str = "127.0.0.1") -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be an integer in 0..65535, got {port!r}")
        if not isinstance(host, str) or not host:
            raise ConfigurationError(f"host must be a non-empty string, got {host!r}")
        try:
            server, thread = start_http_server(port, addr=host, registry=_registry_for(collector))
        except OSError as exc:
            raise MonitorError(f"cannot serve Prometheus metrics on {host}:{port}: {exc}") from exc
        thread.name = f"aimax-prometheus-{server.server_port}"
        self._server = server
        self._thread = thread
        self._lock = threading.Lock()
        self._closed = False
        self.host = host
        self.port: int = server.server_port
        logger.info("serving Prometheus metrics on http://%s:%d/metrics", host, self.port)

    @property
    def url(self) -> str:
        """The scrape URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._closed

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10.0)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "serving"
        return f"<PrometheusServer {state} {self.url}>"
