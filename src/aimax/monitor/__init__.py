"""ResourceMonitor: cheap sampling, history, alert rules with hysteresis, exporters.

    >>> from aimax.monitor import ResourceMonitor, AlertRule
    >>> with ResourceMonitor(interval=1.0) as monitor:
    ...     monitor.add_rule(AlertRule(name="fds", metric="process_open_fds",
    ...                                comparison=">", threshold=10_000, for_=60))
    ...     snapshot = monitor.collect_metrics()
    ...     monitor.check_resource_limits()
    []

The pure cores (:class:`History`, :class:`RuleEngine`) take ``now`` and do no I/O;
:class:`ResourceMonitor` drives them from one daemon thread started by
:meth:`~ResourceMonitor.start_monitoring`, reading the operating system through one
replaceable :class:`Probe` (default :class:`SystemProbe`).
"""

from typing import TYPE_CHECKING, Any

from aimax.monitor.collectors import LoopLagProbe
from aimax.monitor.families import families_of
from aimax.monitor.history import Bucket, History, HistoryConfig, MetricSummary
from aimax.monitor.monitor import (
    COMPONENT_METRICS,
    MonitorStatistics,
    ResourceMonitor,
    SeriesInfo,
    Snapshot,
)
from aimax.monitor.probe import BUILTIN_METRICS, MetricInfo, Probe, ProbeReading, SystemProbe
from aimax.monitor.rules import (
    ActiveAlert,
    AlertEvent,
    AlertRule,
    RuleEngine,
    default_rules,
)

if TYPE_CHECKING:
    from aimax.monitor.export import MonitorCollector, PrometheusServer, render_prometheus

# prometheus_client is imported on first use only: it keeps ``import aimax`` cheap
_LAZY = {"MonitorCollector", "PrometheusServer", "render_prometheus"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from aimax.monitor import export

        value = getattr(export, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BUILTIN_METRICS",
    "COMPONENT_METRICS",
    "ActiveAlert",
    "AlertEvent",
    "AlertRule",
    "Bucket",
    "History",
    "HistoryConfig",
    "LoopLagProbe",
    "MetricInfo",
    "MetricSummary",
    "MonitorCollector",
    "MonitorStatistics",
    "Probe",
    "ProbeReading",
    "PrometheusServer",
    "ResourceMonitor",
    "RuleEngine",
    "SeriesInfo",
    "Snapshot",
    "SystemProbe",
    "default_rules",
    "families_of",
    "render_prometheus",
]
