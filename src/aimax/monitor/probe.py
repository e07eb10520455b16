"""The one replaceable seam through which the monitor reads the operating system.

A :class:`Probe` answers :meth:`~Probe.read` with a :class:`ProbeReading`: the
figures it could read (flat series keys, see :func:`aimax._metrics.sample_key`) and,
for every figure it could NOT read, the reason. A failed figure is absent from
``values`` and named in ``failures``: never a silent zero.

:class:`SystemProbe` is the default: process CPU, memory, threads, open file
descriptors, context switches and I/O, plus system CPU, memory and load average, for
the current process or another one by pid. It uses psutil, and on Linux reads a few
``/proc`` files directly through file descriptors it keeps open (``pread`` at offset
0), which is several times cheaper than psutil's ``oneshot()``::

    >>> probe = SystemProbe()
    >>> reading = probe.read()
    >>> reading.values["process_resident_memory_bytes"] > 0
    True
    >>> probe.close()

Tests replace the whole seam with a fake object that has the same ``read()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import sys
import threading
import time
import weakref
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
    "aimax_process_cpu_percent": MetricInfo(
        "gauge", "Process CPU use since the previous sample, percent of one core."
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
    "aimax_system_cpu_percent": MetricInfo(
        "gauge", "System CPU busy since the previous sample, percent of all cores."
    ),
    "aimax_system_memory_percent": MetricInfo("gauge", "System memory in use, percent."),
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
    "aimax_gc_pause_seconds_total": MetricInfo(
        "counter", "Time spent in GC pauses since the monitor started watching."
    ),
    "aimax_gc_pause_max_seconds": MetricInfo(
        "gauge", "Longest GC pause since the previous sample."
    ),
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
    "aimax_monitor_alerts_firing": MetricInfo("gauge", "Alerts firing, by severity."),
}
"""Every metric name the monitor itself produces, with its kind and help."""

PROBE_METRICS = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "aimax_process_cpu_percent",
    "aimax_process_memory_ratio",
    "aimax_process_threads",
    "aimax_process_context_switches_total",
    "aimax_process_io_read_bytes_total",
    "aimax_process_io_write_bytes_total",
    "aimax_process_io_read_chars_total",
    "aimax_process_io_write_chars_total",
    "aimax_system_cpu_percent",
    "aimax_system_memory_percent",
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
    """Process and system figures via psutil, with a cheaper ``/proc`` path on Linux.

    ``pid=None`` watches the current process. A pid that does not exist raises
    :class:`~aimax.errors.ProcessNotFound`. ``procfs=False`` forces the pure psutil
    path (``Process.oneshot()``), which is also the path on other platforms.

    Every figure is read inside its own guard: permission denied, a vanished
    process, or a field the platform lacks degrades only the figures concerned,
    named in :attr:`ProbeReading.failures`.

        >>> with SystemProbe() as probe:
        ...     "aimax_process_threads" in probe.read().values
        True
    """

    def __init__(
        self,
        pid: int | None = None,
        *,
        procfs: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
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
        self._self = pid == os.getpid()
        linux = sys.platform.startswith("linux") and os.path.isdir(f"/proc/{pid}")
        self.procfs = linux if procfs is None else (procfs and linux)
        self._clock = clock
        self._lock = threading.Lock()
        self._fds: dict[str, int] = {}
        self._closed = False
        self._finalizer = weakref.finalize(self, _close_fds, self._fds)
        self._prev_cpu: tuple[float, float] | None = None  # (cpu seconds, monotonic)
        self._prev_sys: tuple[float, float] | None = None  # (busy, total) jiffies/seconds
        self._cpu_last: float | None = None
        self._sys_last: float | None = None
        self._page = os.sysconf("SC_PAGE_SIZE") if linux else 4096
        self._ticks = float(os.sysconf("SC_CLK_TCK")) if linux else 100.0
        self._boot = psutil.boot_time()
        self._cpus = os.sysconf("SC_NPROCESSORS_ONLN") if linux else (os.cpu_count() or 1)
        self._fd_count_by_size = False
        self._gone = False
        self._start_time: float | None = None  # constant for a process: read once
        if self.procfs:
            self._dir = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY)
            self._fds["dir"] = self._dir
            try:
                # Linux >= 6.2 reports the number of open fds as st_size of /proc/<pid>/fd;
                # fstat on a kept descriptor of that directory skips the path lookup
                fd_dir = os.open("fd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=self._dir)
                self._fds["fd/"] = fd_dir
                self._fd_count_by_size = os.fstat(fd_dir).st_size > 0
            except OSError:
                self._fd_count_by_size = False
            self._readers: list[tuple[tuple[str, ...], _Reader]] = (
                self._self_readers() if self._self else self._procfs_readers()
            )
        else:
            self._readers = self._psutil_readers()

    # ------------------------------------------------------------------ public

    def read(self) -> ProbeReading:
        """Read every figure once (thread-safe)."""
        values: dict[str, float] = {}
        failures: dict[str, str] = {}
        with self._lock:
            if self._closed:
                return ProbeReading({}, dict.fromkeys(PROBE_METRICS, "probe is closed"))
            if self.procfs:
                self._read_all(values, failures)
            else:
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

    @property
    def process_alive(self) -> bool:
        """False once the watched process has been seen gone."""
        return not self._gone

    def close(self) -> None:
        """Close the ``/proc`` file descriptors (idempotent)."""
        with self._lock:
            self._closed = True
            self._finalizer()

    def __enter__(self) -> SystemProbe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        path = "procfs" if self.procfs else "psutil"
        return f"SystemProbe(pid={self.pid}, path={path}, alive={not self._gone})"

    # ------------------------------------------------------------------ core

    def _read_all(self, values: dict[str, float], failures: dict[str, str]) -> None:
        readers = self._readers
        done = 0
        if not self._gone:
            try:  # the usual case: every reading works, one handler around all of them
                for _, reader in readers:
                    reader(values)
                    done += 1
            except Exception as exc:
                self._failed(readers[done][0], exc, values, failures)
                done += 1
            else:
                return
        for names, reader in readers[done:]:  # reader by reader, each in its own guard
            if self._gone and not self._is_system(names):
                for name in names:
                    failures[name] = f"process {self.pid} is gone"
                continue
            try:
                reader(values)
            except Exception as exc:  # a single figure failing must not stop the others
                self._failed(names, exc, values, failures)

    def _failed(
        self,
        names: tuple[str, ...],
        exc: Exception,
        values: dict[str, float],
        failures: dict[str, str],
    ) -> None:
        if isinstance(exc, psutil.NoSuchProcess | ProcessLookupError | FileNotFoundError) and (
            isinstance(exc, psutil.ZombieProcess) or not self._is_system(names)
        ):
            if not self._gone:
                logger.warning("watched process %d is gone", self.pid)
            self._gone = True
            reason = f"process {self.pid} is gone"
        else:
            reason = _describe(exc)
        for name in names:
            failures[name] = reason
            values.pop(name, None)

    @staticmethod
    def _is_system(names: tuple[str, ...]) -> bool:
        return names[0].startswith("aimax_system")

    def _pread(self, name: str, size: int = 4096) -> bytes:
        fd = self._fds.get(name)
        if fd is None:
            fd = os.open(name, os.O_RDONLY, dir_fd=self._dir)
            self._fds[name] = fd
        return os.pread(fd, size, 0)

    def _pread_abs(self, path: str, size: int) -> bytes:
        fd = self._fds.get(path)
        if fd is None:
            fd = os.open(path, os.O_RDONLY)
            self._fds[path] = fd
        return os.pread(fd, size, 0)

    def _cpu_percent(self, values: dict[str, float], cpu: float) -> None:
        now = self._clock()
        prev = self._prev_cpu
        values["process_cpu_seconds_total"] = cpu
        if prev is not None and now <= prev[1]:
            if self._cpu_last is not None:  # no time passed: keep the baseline and value
                values["aimax_process_cpu_percent"] = self._cpu_last
            return
        self._prev_cpu = (cpu, now)
        if prev is not None:
            self._cpu_last = max(0.0, (cpu - prev[0]) / (now - prev[1]) * 100)
            values["aimax_process_cpu_percent"] = self._cpu_last

    def _sys_percent(self, values: dict[str, float], busy: float, total: float) -> None:
        prev = self._prev_sys
        if prev is not None and total <= prev[1]:
            # no clock tick since the previous reading: keep that baseline and value
            if self._sys_last is not None:
                values["aimax_system_cpu_percent"] = self._sys_last
            return
        self._prev_sys = (busy, total)
        if prev is not None:
            ratio = (busy - prev[0]) / (total - prev[1])
            self._sys_last = min(100.0, max(0.0, ratio * 100))
            values["aimax_system_cpu_percent"] = self._sys_last

    # ------------------------------------------------------------------ /proc readers

    def _procfs_readers(self) -> list[tuple[tuple[str, ...], _Reader]]:
        readers: list[tuple[tuple[str, ...], _Reader]] = [
            (
                (
                    "process_cpu_seconds_total",
                    "aimax_process_cpu_percent",
                    "process_resident_memory_bytes",
                    "process_virtual_memory_bytes",
                    "aimax_process_threads",
                    "process_start_time_seconds",
                ),
                self._proc_stat,
            ),
            (("aimax_process_context_switches_total",), self._proc_ctx),
            (
                (
                    "aimax_process_io_read_bytes_total",
                    "aimax_process_io_write_bytes_total",
                    "aimax_process_io_read_chars_total",
                    "aimax_process_io_write_chars_total",
                ),
                self._proc_io,
            ),
            (("process_open_fds",), self._proc_fds),
            (("process_max_fds",), self._max_fds),
            (("aimax_system_cpu_percent",), self._sys_stat),
            (
                (
                    "aimax_system_memory_percent",
                    "aimax_system_memory_available_bytes",
                    "aimax_system_memory_total_bytes",
                ),
                self._sys_meminfo,
            ),
            (("aimax_system_load1", "aimax_system_load5", "aimax_system_load15"), self._loadavg),
        ]
        return readers

    def _self_readers(self) -> list[tuple[tuple[str, ...], _Reader]]:
        """The current process: fewer, cheaper system calls than for another pid.

        getrusage gives CPU time and context switches in one call, ``statm`` the
        memory, the link count of ``/proc/self/task`` the threads (2 + one link per
        thread, kept open: no path lookup), and the start time is read once.
        """
        self._start_time = self._boot + int(self._stat()[19]) / self._ticks
        task = os.open("task", os.O_RDONLY | os.O_DIRECTORY, dir_fd=self._dir)
        self._fds["task/"] = task
        # not the layout this relies on (or a thread started meanwhile): check again
        if not any(os.fstat(task).st_nlink - 2 == int(self._stat()[17]) for _ in range(2)):
            return self._procfs_readers()
        readers = self._procfs_readers()
        readers[:2] = [
            (
                (
                    "process_cpu_seconds_total",
                    "aimax_process_cpu_percent",
                    "aimax_process_context_switches_total",
                ),
                self._self_usage,
            ),
            (
                (
                    "process_resident_memory_bytes",
                    "process_virtual_memory_bytes",
                    "aimax_process_threads",
                    "process_start_time_seconds",
                ),
                self._self_memory,
            ),
        ]
        return readers

    def _self_usage(self, values: dict[str, float]) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self._cpu_percent(values, usage.ru_utime + usage.ru_stime)
        values[CTX_VOLUNTARY] = float(usage.ru_nvcsw)
        values[CTX_INVOLUNTARY] = float(usage.ru_nivcsw)

    def _self_memory(self, values: dict[str, float]) -> None:
        size, resident = self._pread("statm", 128).split(None, 2)[:2]
        page = self._page
        values["process_virtual_memory_bytes"] = float(int(size) * page)
        values["process_resident_memory_bytes"] = float(int(resident) * page)
        values["aimax_process_threads"] = float(os.fstat(self._fds["task/"]).st_nlink - 2)
        if self._start_time is not None:
            values["process_start_time_seconds"] = self._start_time

    def _stat(self) -> list[bytes]:
        """The fields of ``/proc/<pid>/stat`` after the command (``[0]`` is the state)."""
        raw = self._pread("stat", 1024)
        if not raw:
            raise ProcessLookupError(f"process {self.pid} is gone")
        return raw[raw.rfind(b")") + 2 :].split()

    def _proc_stat(self, values: dict[str, float]) -> None:
        parts = self._stat()
        if parts[0] in (b"Z", b"X"):  # exited, not yet reaped by its parent
            raise ProcessLookupError(f"process {self.pid} has exited")
        # fields after the command: state=3, utime=14, stime=15, num_threads=20,
        # starttime=22, vsize=23, rss=24 (1-based, see proc(5)); parts[0] is field 3
        ticks = self._ticks
        self._cpu_percent(values, (int(parts[11]) + int(parts[12])) / ticks)
        values["aimax_process_threads"] = float(parts[17])
        start = self._start_time
        if start is None:  # constant for a process: computed once
            start = self._start_time = self._boot + int(parts[19]) / ticks
        values["process_start_time_seconds"] = start
        values["process_virtual_memory_bytes"] = float(parts[20])
        values["process_resident_memory_bytes"] = float(int(parts[21]) * self._page)

    def _proc_ctx(self, values: dict[str, float]) -> None:
        if self._self:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            values[CTX_VOLUNTARY] = float(usage.ru_nvcsw)
            values[CTX_INVOLUNTARY] = float(usage.ru_nivcsw)
            return
        raw = self._pread("status", 8192)
        vol = raw.find(b"\nvoluntary_ctxt_switches:")
        invol = raw.find(b"\nnonvoluntary_ctxt_switches:")
        if vol < 0 or invol < 0:
            raise ProcessLookupError(f"process {self.pid} is gone")
        values[CTX_VOLUNTARY] = float(raw[vol + 25 : raw.find(b"\n", vol + 1)])
        values[CTX_INVOLUNTARY] = float(raw[invol + 28 : raw.find(b"\n", invol + 1)])

    def _proc_io(self, values: dict[str, float]) -> None:
        fields = self._pread("io", 512).split()
        if len(fields) < 12:
            raise ProcessLookupError(f"process {self.pid} is gone")
        # rchar, wchar, syscr, syscw, read_bytes, write_bytes: "name: value" pairs
        values["aimax_process_io_read_chars_total"] = float(fields[1])
        values["aimax_process_io_write_chars_total"] = float(fields[3])
        values["aimax_process_io_read_bytes_total"] = float(fields[9])
        values["aimax_process_io_write_bytes_total"] = float(fields[11])

    def _proc_fds(self, values: dict[str, float]) -> None:
        if self._fd_count_by_size:
            values["process_open_fds"] = float(os.fstat(self._fds["fd/"]).st_size)
        else:
            values["process_open_fds"] = float(len(os.listdir(f"/proc/{self.pid}/fd")))

    def _max_fds(self, values: dict[str, float]) -> None:
        if self._self:
            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        else:
            soft = self._process.rlimit(psutil.RLIMIT_NOFILE)[0]
        values["process_max_fds"] = float(soft)

    def _sys_stat(self, values: dict[str, float]) -> None:
        # /proc/uptime holds "uptime idle" where idle is summed over every CPU: five
        # times cheaper than /proc/stat, whose kernel side formats every CPU and IRQ.
        # (iowait counts as busy here; psutil's path counts it as idle.)
        uptime, idle = self._pread_abs("/proc/uptime", 64).split()[:2]
        total = float(uptime) * self._cpus
        self._sys_percent(values, total - float(idle), total)

    def _sys_meminfo(self, values: dict[str, float]) -> None:
        # "MemTotal: N kB\nMemFree: N kB\nMemAvailable: N kB\n..." (this order since 3.14)
        fields = self._pread_abs("/proc/meminfo", 256).split(None, 8)
        total = available = -1
        if fields[0] == b"MemTotal:" and fields[6] == b"MemAvailable:":
            total = int(fields[1]) * 1024
            available = int(fields[7]) * 1024
        if total <= 0 or available < 0:
            memory = psutil.virtual_memory()
            total, available = memory.total, memory.available
        values["aimax_system_memory_total_bytes"] = float(total)
        values["aimax_system_memory_available_bytes"] = float(available)
        values["aimax_system_memory_percent"] = (total - available) / total * 100

    def _loadavg(self, values: dict[str, float]) -> None:
        if self.procfs:  # one pread on a kept descriptor instead of open, read, close
            one, five, fifteen = map(
                float, self._pread_abs("/proc/loadavg", 128).split(None, 3)[:3]
            )
        else:
            one, five, fifteen = os.getloadavg()
        values["aimax_system_load1"] = one
        values["aimax_system_load5"] = five
        values["aimax_system_load15"] = fifteen

    # ------------------------------------------------------------------ psutil readers

    def _psutil_readers(self) -> list[tuple[tuple[str, ...], _Reader]]:
        return [
            (("process_cpu_seconds_total", "aimax_process_cpu_percent"), self._ps_cpu),
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
            (("aimax_system_cpu_percent",), self._ps_sys_cpu),
            (
                (
                    "aimax_system_memory_percent",
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
        self._cpu_percent(values, times.user + times.system)

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
        self._sys_percent(values, total - idle, total)

    @staticmethod
    def _ps_sys_mem(values: dict[str, float]) -> None:
        memory = psutil.virtual_memory()
        values["aimax_system_memory_total_bytes"] = float(memory.total)
        values["aimax_system_memory_available_bytes"] = float(memory.available)
        values["aimax_system_memory_percent"] = float(memory.percent)


def _close_fds(fds: dict[str, int]) -> None:
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()
