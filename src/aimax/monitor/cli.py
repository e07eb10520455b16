"""``aimax monitor``: watch a process (this one or another by pid) with alerts.

    aimax monitor --pid 4242 --interval 1 --prometheus-port 9464 --duration 60

Prints a live table (current value, and min / mean / max over the last minute) and
every alert as it fires or resolves; optionally serves Prometheus metrics on
127.0.0.1. Stops after ``--duration`` seconds, on Ctrl-C, or when the process exits.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping

import click
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from aimax.errors import ConfigurationError, MonitorError, ProcessNotFound
from aimax.monitor.history import MetricSummary
from aimax.monitor.monitor import ResourceMonitor, Snapshot
from aimax.monitor.rules import AlertEvent

__all__ = ["command", "render"]

_ROWS: tuple[tuple[str, str, str], ...] = (
    ("aimax_process_cpu_ratio", "process CPU", "pct"),
    ("process_resident_memory_bytes", "process RSS", "bytes"),
    ("aimax_process_threads", "threads", "int"),
    ("process_open_fds", "open fds", "int"),
    ('aimax_process_context_switches_total{kind="involuntary"}', "involuntary ctx sw", "int"),
    ("aimax_process_io_read_chars_total", "I/O read", "bytes"),
    ("aimax_process_io_write_chars_total", "I/O written", "bytes"),
    ("aimax_system_cpu_ratio", "system CPU", "pct"),
    ("aimax_system_memory_ratio", "system memory", "pct"),
    ("aimax_system_load1", "load (1 min)", "float"),
    ("aimax_monitor_sample_cpu_seconds", "monitor CPU/sample", "seconds"),
)


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "pct":
        return f"{value * 100:.1f} %"  # a 0..1 ratio
    if unit == "bytes":
        for suffix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(value) < 1024 or suffix == "TiB":
                return f"{value:.0f} {suffix}" if suffix == "B" else f"{value:.1f} {suffix}"
            value /= 1024
    if unit == "int":
        return f"{value:.0f}"
    if unit == "seconds":
        return f"{value * 1e6:.0f} us"
    return f"{value:.3g}"


def render(
    snapshot: Snapshot | None,
    summaries: Mapping[str, MetricSummary],
    events: deque[AlertEvent],
    *,
    pid: int | None,
) -> Group:
    """The live view: a metrics table, degraded readings, and recent alerts."""
    table = Table(title=f"aimax monitor - pid {pid}", expand=False)
    for name, justify in (("metric", "left"), ("now", "right"), ("min", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    table.add_column("mean", justify="right")
    table.add_column("max", justify="right")
    values = snapshot.values if snapshot is not None else {}
    rows = list(_ROWS)
    extra = sorted(
        k
        for k in values
        if k.startswith("aimax_")
        and not k.startswith(("aimax_process", "aimax_system", "aimax_monitor", "aimax_gc"))
    )
    rows.extend((k, k, "float") for k in extra)
    for key, label, unit in rows:
        summary = summaries.get(key)
        table.add_row(
            label,
            _format(values.get(key), unit),
            _format(summary.min if summary else None, unit),
            _format(summary.mean if summary else None, unit),
            _format(summary.max if summary else None, unit),
        )
    parts: list[Table | Text] = [table]
    if snapshot is not None and snapshot.failures:
        lines = [f"degraded: {k}: {v}" for k, v in sorted(snapshot.failures.items())]
        parts.append(Text("\n".join(lines), style="yellow"))
    for event in list(events)[-8:]:
        style = "bold red" if event.kind == "firing" else "green"
        parts.append(Text(event.message(), style=style))
    return Group(*parts)


@click.command("monitor")
@click.option("--pid", type=int, default=None, help="Process to watch (default: this one).")
@click.option(
    "--interval", type=float, default=1.0, show_default=True, help="Seconds between samples."
)
@click.option(
    "--prometheus-port",
    type=int,
    default=None,
    help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics.",
)
@click.option(
    "--duration", type=float, default=None, help="Stop after this many seconds (default: never)."
)
def command(
    pid: int | None, interval: float, prometheus_port: int | None, duration: float | None
) -> None:
    """Watch a process's resources with alerts, as a live table."""
    if duration is not None and duration <= 0:
        raise click.BadParameter(f"must be positive, got {duration}", param_hint="--duration")
    try:
        monitor = ResourceMonitor(interval=interval, pid=pid)
    except ProcessNotFound as exc:
        raise click.BadParameter(str(exc), param_hint="--pid") from None
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    console = Console()
    events: deque[AlertEvent] = deque(maxlen=50)
    monitor.add_alert_listener(events.append)
    with monitor:
        if prometheus_port is not None:
            try:
                server = monitor.serve_prometheus(prometheus_port)
            except (ConfigurationError, MonitorError) as exc:
                raise click.UsageError(str(exc)) from None
            console.print(f"Prometheus metrics on {server.url}")
        monitor.start_monitoring()
        start = time.monotonic()
        gone = False
        try:
            with Live(console=console, refresh_per_second=4, transient=False) as live:
                while True:
                    snapshot = monitor.latest
                    summaries = monitor.get_metrics_summary(window=60.0)
                    live.update(render(snapshot, summaries, events, pid=monitor.pid))
                    if snapshot is not None and snapshot.get("aimax_monitor_up") == 0.0:
                        gone = True
                        break
                    if duration is not None and time.monotonic() - start >= duration:
                        break
                    time.sleep(min(interval, 0.25))
        except KeyboardInterrupt:
            pass
        statistics = monitor.statistics()
    console.print()
    if gone:
        console.print(f"process {monitor.pid} exited")
    console.print(
        f"{statistics.samples} samples, monitor CPU {statistics.mean_sample_cpu_seconds * 1e6:.0f}"
        f" us/sample, {len(events)} alert events"
    )
