"""The one replaceable seam through which the monitor reads the operating system.

A :class:`Probe` answers :meth:`~Probe.read` with a :class:`ProbeReading`: the
figures it could read (flat series keys, see :func:`aimax._metrics.sample_key`) and,
for every figure it could NOT read, the reason. A failed figure is absent from
``values`` and named in ``failures``: never a silent zero.

:class:`SystemProbe` is the default: process CPU, memory, threads, open file
descriptors, context switches and I/O, plus system CPU, memory and load average, for
the current process or another one by pid, through psutil's ``Process.oneshot()``
(one pass over ``/proc`` per sample; at 1 Hz its cost is a few hundred microseconds,
0.03 % of a core). The memory manager reads its RSS through the same class::

    >>> probe = SystemProbe()
    >>> reading = probe.read()
    >>> reading.values["process_resident_memory_bytes"] > 0
    True
    >>> probe.close()

Tests replace the whole seam with a fake object that has the same ``read()``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import psutil

from aimax._metrics import MetricKind
from aimax.errors import ConfigurationError, ProcessNotFound

__all__ = [
    "BUILTIN_METRICS",
    "MetricInfo",
    "Probe",
    "ProbeReading",
    "SystemProbe",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """What a metric name means: its kind and a one-line help text."""

    kind: MetricKind
    help: str


BUILTIN_METRICS: Mapping[str, MetricInfo] = {
    # process (standard Prometheus names where they exist)
    "process_cpu_seconds_total": MetricInfo("counter", "User and system CPU time of the process."),
    "process_resident_memory_bytes": MetricInfo("gauge", "Resident set size of the process."),
    "process_virtual_memory_bytes": MetricInfo("gauge", "Virtual memory size of the process."),
    "process_open_fds": MetricInfo("gauge", "Open file descriptors of the process."),
    "process_max_fds": MetricInfo("gauge", "Soft limit on open file descriptors."),
    "process_start_time_seconds": MetricInfo("gauge", "Process start time (Unix seconds)."),
    "aimax_process_cpu_ratio": MetricInfo(
        "gauge", "Process CPU use since the previous sample, in cores (1.0 = one core busy)."
    ),
    "aimax_process_memory_ratio": MetricInfo("gauge", "Process RSS / total physical memory."),
    "aimax_process_threads": MetricInfo("gauge", "OS threads of the process."),
    "aimax_process_context_switches_total": MetricInfo(
        "counter", "Context switches of the process, by kind (voluntary, involuntary)."
    ),
    "aimax_process_io_read_bytes_total": MetricInfo("counter", "Bytes read from storage."),
    "aimax_process_io_write_bytes_total": MetricInfo("counter", "Bytes written to storage."),
    "aimax_process_io_read_chars_total": MetricInfo(
        "counter", "Bytes passed to read()-like calls (sockets included)."
    ),
    "aimax_process_io_write_chars_total": MetricInfo(
        "counter", "Bytes passed to write()-like calls (sockets included)."
    ),
    # system
    "aimax_system_cpu_ratio": MetricInfo(
        "gauge", "System CPU busy since the previous sample, fraction of all cores (0..1)."
    ),
    "aimax_system_memory_ratio": MetricInfo("gauge", "System memory in use, fraction (0..1)."),
    "aimax_system_memory_available_bytes": MetricInfo("gauge", "System memory available."),
    "aimax_system_memory_total_bytes": MetricInfo("gauge", "Total physical memory."),
    "aimax_system_load1": MetricInfo("gauge", "System load average over 1 minute."),
    "aimax_system_load5": MetricInfo("gauge", "System load average over 5 minutes."),
    "aimax_system_load15": MetricInfo("gauge", "System load average over 15 minutes."),
    # in-process collectors
    "aimax_gc_collections_total": MetricInfo("counter", "GC runs, by generation."),
    "aimax_gc_collected_total": MetricInfo(
        "counter", "Objects collected by the GC, by generation."
    ),
    "aimax_gc_uncollectable_total": MetricInfo("counter", "Uncollectable objects, by generation."),
    "aimax_event_loop_lag_seconds": MetricInfo(
        "gauge", "Largest asyncio timer drift since the previous sample, by loop."
    ),
    # the monitor itself
    "aimax_monitor_up": MetricInfo("gauge", "1 while the watched process can be read, else 0."),
    "aimax_monitor_samples_total": MetricInfo("counter", "Samples taken by the monitor."),
    "aimax_monitor_sample_cpu_seconds": MetricInfo(
        "gauge", "CPU time the monitor spent on its previous sample."
    ),
    "aimax_monitor_cpu_seconds_total": MetricInfo("counter", "CPU time spent by the monitor."),
    "aimax_monitor_degraded_metrics": MetricInfo(
        "gauge", "Readings that failed in the latest sample."
    ),
    "aimax_monitor_degraded": MetricInfo("gauge", "1 for each reading that failed, by metric."),
    "aimax_monitor_alerts_firing": MetricInfo(
        "gauge", "Alerts firing now, by alert name and severity (0 when not firing)."
    ),
}
"""Every metric name the monitor itself produces, with its kind and help."""

PROBE_METRICS = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "aimax_process_cpu_ratio",
    "aimax_process_memory_ratio",
    "aimax_process_threads",
    "aimax_process_context_switches_total",
    "aimax_process_io_read_bytes_total",
    "aimax_process_io_write_bytes_total",
    "aimax_process_io_read_chars_total",
    "aimax_process_io_write_chars_total",
    "aimax_system_cpu_ratio",
    "aimax_system_memory_ratio",
    "aimax_system_memory_available_bytes",
    "aimax_system_memory_total_bytes",
    "aimax_system_load1",
    "aimax_system_load5",
    "aimax_system_load15",
)
"""The metric names a :class:`SystemProbe` reads (the keys of its failures too)."""

CTX_VOLUNTARY = 'aimax_process_context_switches_total{kind="voluntary"}'
CTX_INVOLUNTARY = 'aimax_process_context_switches_total{kind="involuntary"}'

SERIES_LABELS: Mapping[str, tuple[str, Mapping[str, str]]] = {
    CTX_VOLUNTARY: ("aimax_process_context_switches_total", {"kind": "voluntary"}),
    CTX_INVOLUNTARY: ("aimax_process_context_switches_total", {"kind": "involuntary"}),
}
"""Series keys of the probe that carry labels: key -> (name, labels)."""


@dataclass(frozen=True, slots=True)
class ProbeReading:
    """What one :meth:`Probe.read` gave: values by series key, and what failed, why.

    ``values`` holds only figures actually read. ``failures`` maps a metric name to
    the reason it could not be read (``"AccessDenied"``, ``"process 42 is gone"``).
    """

    values: Mapping[str, float]
    failures: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Probe(Protocol):
    """The seam: anything with ``read()`` returning a :class:`ProbeReading`."""

    def read(self) -> ProbeReading:
        """Read every figure once; never raise for a single failed figure."""
        ...


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


_Reader = Callable[[dict[str, float]], None]


class SystemProbe:
    """Process and system figures through psutil (``Process.oneshot()`` per read).

    ``pid=None`` watches the current process. A pid that does not exist raises
    :class:`~aimax.errors.ProcessNotFound`. ``clock`` (monotonic seconds) times the
    CPU ratios between two reads.

    Every figure is read inside its own guard: permission denied, a vanished
    process, or a field the platform lacks degrades only the figures concerned,
    named in :attr:`ProbeReading.failures`.

        >>> with SystemProbe() as probe:
        ...     "aimax_process_threads" in probe.read().values
        True
    """

    def __init__(
        self, pid: int | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if pid is None:
            pid = os.getpid()
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise ConfigurationError(f"pid must be a positive integer, got {pid!r}")
        self._create_time: float | None = None
        try:
            self._process = psutil.Process(pid)
            self._create_time = self._process.create_time()
        except psutil.NoSuchProcess:
            raise ProcessNotFound(f"no process with pid {pid}", pid=pid) from None
        except psutil.AccessDenied:
            pass  # the start time is then read (and degraded) per sample
        self.pid = pid
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        self._prev_cpu: tuple[float, float] | None = None  # (cpu seconds, clock)
        self._prev_sys: tuple[float, float] | None = None  # (busy, total) seconds
        self._cpu_last: float | None = None
        self._sys_last: float | None = None
        self._gone = False
        self._readers = self._psutil_readers()

    # ------------------------------------------------------------------ public

    def read(self) -> ProbeReading:
        """Read every figure once (thread-safe)."""
        values: dict[str, float] = {}
        failures: dict[str, str] = {}
        with self._lock:
            if self._closed:
                return ProbeReading({}, dict.fromkeys(PROBE_METRICS, "probe is closed"))
            with self._process.oneshot():  # psutil caches /proc reads inside this block
                self._read_all(values, failures)
        rss = values.get("process_resident_memory_bytes")
        total = values.get("aimax_system_memory_total_bytes")
        if rss is not None and total:
            values["aimax_process_memory_ratio"] = rss / total
        elif "aimax_process_memory_ratio" not in failures:
            failures["aimax_process_memory_ratio"] = failures.get(
                "process_resident_memory_bytes",
                failures.get("aimax_system_memory_total_bytes", "no reading"),
            )
        return ProbeReading(values, failures)

    def rss(self) -> int:
        """The watched process's resident set size in bytes (one psutil call)."""
        return int(self._process.memory_info().rss)

    @property
    def process_alive(self) -> bool:
        """False once the watched process has been seen gone."""
        return not self._gone

    def close(self) -> None:
        """Stop reading: later reads report every figure as failed (idempotent)."""
        with self._lock:
            self._closed = True

    def __enter__(self) -> SystemProbe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SystemProbe(pid={self.pid}, alive={not self._gone})"

    # ------------------------------------------------------------------ core

    def _read_all(self, values: dict[str, float], failures: dict[str, str]) -> None:
        for names, reader in self._readers:
            if self._gone and not names[0].startswith("aimax_system_"):
                for name in names:
                    failures[name] = f"process {self.pid} is gone"
                continue
            try:
                reader(values)
            except Exception as exc:  # a single figure failing must not stop the others
                if isinstance(exc, psutil.NoSuchProcess | ProcessLookupError):
                    self._gone = True
                    reason = f"process {self.pid} is gone"
                else:
                    reason = _describe(exc)
                for name in names:
                    failures[name] = reason
                    values.pop(name, None)
                if "aimax_process_context_switches_total" in names:
                    values.pop(CTX_VOLUNTARY, None)
                    values.pop(CTX_INVOLUNTARY, None)

    def _cpu_ratio(self, values: dict[str, float], cpu: float) -> None:
        now = self._clock()
        prev = self._prev_cpu
        values["process_cpu_seconds_total"] = cpu
        if prev is not None and now <= prev[1]:
            if self._cpu_last is not None:  # no time passed: keep the baseline and value
                values["aimax_process_cpu_ratio"] = self._cpu_last
            return
        self._prev_cpu = (cpu, now)
        if prev is not None:
            self._cpu_last = max(0.0, (cpu - prev[0]) / (now - prev[1]))
            values["aimax_process_cpu_ratio"] = self._cpu_last

    def _sys_ratio(self, values: dict[str, float], busy: float, total: float) -> None:
        prev = self._prev_sys
        if prev is not None and total <= prev[1]:
            # no clock tick since the previous reading: keep that baseline and value
            if self._sys_last is not None:
                values["aimax_system_cpu_ratio"] = self._sys_last
            return
        self._prev_sys = (busy, total)
        if prev is not None:
            ratio = (busy - prev[0]) / (total - prev[1])
            self._sys_last = min(1.0, max(0.0, ratio))
            values["aimax_system_cpu_ratio"] = self._sys_last

    def _max_fds(self, values: dict[str, float]) -> None:
        soft, _ = self._process.rlimit(psutil.RLIMIT_NOFILE)
        values["process_max_fds"] = float(soft)

    @staticmethod
    def _loadavg(values: dict[str, float]) -> None:
        one, five, fifteen = os.getloadavg()
        values["aimax_system_load1"] = one
        values["aimax_system_load5"] = five
        values["aimax_system_load15"] = fifteen

    # ------------------------------------------------------------------ psutil readers

    def _psutil_readers(self) -> list[tuple[tuple[str, ...], _Reader]]:
        return [
            (("process_cpu_seconds_total", "aimax_process_cpu_ratio"), self._ps_cpu),
            (("process_resident_memory_bytes", "process_virtual_memory_bytes"), self._ps_mem),
            (("aimax_process_threads",), self._ps_threads),
            (("process_start_time_seconds",), self._ps_start),
            (("aimax_process_context_switches_total",), self._ps_ctx),
            (
                (
                    "aimax_process_io_read_bytes_total",
                    "aimax_process_io_write_bytes_total",
                    "aimax_process_io_read_chars_total",
                    "aimax_process_io_write_chars_total",
                ),
                self._ps_io,
            ),
            (("process_open_fds",), self._ps_fds),
            (("process_max_fds",), self._max_fds),
            (("aimax_system_cpu_ratio",), self._ps_sys_cpu),
            (
                (
                    "aimax_system_memory_ratio",
                    "aimax_system_memory_available_bytes",
                    "aimax_system_memory_total_bytes",
                ),
                self._ps_sys_mem,
            ),
            (("aimax_system_load1", "aimax_system_load5", "aimax_system_load15"), self._loadavg),
        ]

    def _ps_cpu(self, values: dict[str, float]) -> None:
        if self._process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            raise ProcessLookupError(f"process {self.pid} has exited")
        times = self._process.cpu_times()
        self._cpu_ratio(values, times.user + times.system)

    def _ps_mem(self, values: dict[str, float]) -> None:
        memory = self._process.memory_info()
        values["process_resident_memory_bytes"] = float(memory.rss)
        values["process_virtual_memory_bytes"] = float(memory.vms)

    def _ps_threads(self, values: dict[str, float]) -> None:
        values["aimax_process_threads"] = float(self._process.num_threads())

    def _ps_start(self, values: dict[str, float]) -> None:
        if self._create_time is None:
            self._create_time = self._process.create_time()
        values["process_start_time_seconds"] = self._create_time

    def _ps_ctx(self, values: dict[str, float]) -> None:
        ctx = self._process.num_ctx_switches()
        values[CTX_VOLUNTARY] = float(ctx.voluntary)
        values[CTX_INVOLUNTARY] = float(ctx.involuntary)

    def _ps_io(self, values: dict[str, float]) -> None:
        io = self._process.io_counters()
        values["aimax_process_io_read_bytes_total"] = float(io.read_bytes)
        values["aimax_process_io_write_bytes_total"] = float(io.write_bytes)
        # read_chars / write_chars exist on Linux only: a missing field degrades those two
        values["aimax_process_io_read_chars_total"] = float(io.read_chars)
        values["aimax_process_io_write_chars_total"] = float(io.write_chars)

    def _ps_fds(self, values: dict[str, float]) -> None:
        values["process_open_fds"] = float(self._process.num_fds())

    def _ps_sys_cpu(self, values: dict[str, float]) -> None:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
        self._sys_ratio(values, total - idle, total)

    @staticmethod
    def _ps_sys_mem(values: dict[str, float]) -> None:
        memory = psutil.virtual_memory()
        values["aimax_system_memory_total_bytes"] = float(memory.total)
        values["aimax_system_memory_available_bytes"] = float(memory.available)
        values["aimax_system_memory_ratio"] = float(memory.percent) / 100.0
