"""ResourceMonitor: the sampler thread around the pure history and rule engine.

One sample = the probe's process and system figures + the GC + every watched asyncio
loop + every registered source (a component whose ``statistics()`` the
:mod:`~aimax.monitor.families` mapping knows, or any object with
``metric_families()`` or ``metric_samples()``), recorded in the history and fed to
the alert rules. Sources are read outside the monitor's lock (a copy of the source
list is taken under it), so a slow source never blocks the monitor's readers; time
is read only through the injected clock. :meth:`ResourceMonitor.collect_metrics` takes one
sample on demand; :meth:`ResourceMonitor.start_monitoring` starts the one daemon
thread that takes one every ``interval`` seconds until
:meth:`~ResourceMonitor.stop_monitoring`, :meth:`~ResourceMonitor.close` or
interpreter exit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from aimax import _clock
from aimax._clock import as_seconds
from aimax._metrics import FamilyKind, HistogramValue, MetricFamily, MetricSample, sample_key
from aimax.errors import ConfigurationError, MonitorError
from aimax.memory.gccontrol import GCPauseRecorder, shared_recorder
from aimax.monitor.collectors import LoopLagProbe
from aimax.monitor.families import gc_families, reader_for
from aimax.monitor.history import History, HistoryConfig, MetricSummary
from aimax.monitor.probe import (
    BUILTIN_METRICS,
    SERIES_LABELS,
    Probe,
    ProbeReading,
    SystemProbe,
)
from aimax.monitor.rules import ActiveAlert, AlertEvent, AlertRule, RuleEngine, default_rules

if TYPE_CHECKING:
    from aimax.monitor.export import MonitorCollector, PrometheusServer

__all__ = [
    "COMPONENT_METRICS",
    "MonitorStatistics",
    "ResourceMonitor",
    "SeriesInfo",
    "Snapshot",
]

logger = logging.getLogger(__name__)

_HISTOGRAMS = (
    "aimax_pool_queue_wait_seconds",
    "aimax_pool_run_seconds",
    "aimax_gc_pause_seconds",
)
COMPONENT_METRICS: frozenset[str] = frozenset(
    {
        "aimax_ratelimit_utilisation_ratio",
        "aimax_ratelimit_granted_total",
        "aimax_ratelimit_units_total",
        "aimax_ratelimit_rejected_total",
        "aimax_ratelimit_wait_seconds",
        "aimax_ratelimit_banned",
        "aimax_ratelimit_bans_total",
        "aimax_pool_size",
        "aimax_pool_active",
        "aimax_pool_queued",
        "aimax_pool_completed_total",
        "aimax_pool_failed_total",
        "aimax_pool_rejected_total",
        "aimax_memory_budget_bytes",
        "aimax_memory_pressure_level",
        "aimax_memory_usage_ratio",
        "aimax_memory_cache_items",
        "aimax_memory_cache_bytes",
        "aimax_gc_collections_total",
        "aimax_client_requests_total",
        "aimax_client_latency_seconds",
        *_HISTOGRAMS,
        *(f"{name}_count" for name in _HISTOGRAMS),
        *(f"{name}_sum" for name in _HISTOGRAMS),
    }
)
"""Metric names the other aimax components publish (rules may name them up front)."""

_LOG_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}
_EMPTY: Mapping[str, str] = MappingProxyType({})
_MAX_AUTO_RING = 20_000
_FIRING = "aimax_monitor_alerts_firing"


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """What a series key stands for: metric name, labels, kind and help.

    ``histogram`` names the histogram a ``_count`` / ``_sum`` series belongs to (the
    exporter then writes the histogram, not this series).
    """

    name: str
    labels: Mapping[str, str]
    kind: FamilyKind
    help: str
    histogram: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One sample: values by series key, failed readings and their reasons.

    ``time`` is the monitor's clock (monotonic seconds), ``wall`` Unix seconds.
    A reading that failed is absent from ``values`` and named in ``failures``.
    ``cpu_seconds`` is the CPU time the monitor spent taking this sample.
    ``histograms`` holds each histogram series (by key) as read; its ``_count`` and
    ``_sum`` are also in ``values``, so the history and rules see them.
    """

    sequence: int
    time: float
    wall: float
    values: Mapping[str, float]
    failures: Mapping[str, str]
    cpu_seconds: float
    events: tuple[AlertEvent, ...] = ()
    histograms: Mapping[str, HistogramValue] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    def get(self, key: str, default: float | None = None) -> float | None:
        """The value of series ``key`` (``default`` when absent)."""
        return self.values.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (non-finite values become ``None``)."""
        return {
            "sequence": self.sequence,
            "time": self.time,
            "wall": self.wall,
            "cpu_seconds": self.cpu_seconds,
            "values": {k: _finite(v) for k, v in sorted(self.values.items())},
            "failures": dict(sorted(self.failures.items())),
            "events": [
                {"kind": e.kind, "rule": e.rule.name, "series": e.series, "value": _finite(e.value)}
                for e in self.events
            ],
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class MonitorStatistics:
    """The monitor's own state and cost.

    ``core_share`` is the monitor's CPU time divided by the wall time since its first
    sample (0.0005 = 0.05 % of one core).
    """

    running: bool
    interval: float
    pid: int | None
    samples: int
    series: int
    sources: tuple[str, ...]
    loops: tuple[str, ...]
    rules: int
    alerts_firing: int
    degraded: Mapping[str, str]
    cpu_seconds_total: float
    last_sample_cpu_seconds: float
    mean_sample_cpu_seconds: float
    core_share: float
    sampler_errors: int
    history_bytes: int
    closed: bool = False


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _run_sampler(
    ref: weakref.ref[ResourceMonitor],
    stop: threading.Event,
    interval: float,
    clock: _clock.Clock,
) -> None:
    """The sampler thread: holds only a weak reference, so a dropped monitor stops it."""
    deadline = clock()
    while not stop.is_set():
        monitor = ref()
        if monitor is None:
            return
        try:
            monitor._tick()
        except Exception:  # the sampler never dies on one bad sample
            logger.exception("monitor sample failed")
            monitor._sampler_errors += 1
        del monitor
        deadline += interval
        now = clock()
        if deadline <= now:  # fell behind (a long pause): skip the missed ticks
            deadline = now + interval
        stop.wait(deadline - now)


def _stop_sampler(stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    if thread is not threading.current_thread() and thread.is_alive():
        thread.join(timeout=10.0)


class ResourceMonitor:
    """Samples process, system and component figures; keeps history; raises alerts.

    ``interval`` (seconds or ``timedelta``) is the sampling period of the background
    thread; ``pid`` watches another process (default: this one; a pid that does not
    exist raises :class:`~aimax.errors.ProcessNotFound`); ``probe`` replaces the
    operating-system seam (tests pass a fake); ``rules`` defaults to
    :func:`~aimax.monitor.rules.default_rules`; ``clock`` and ``wall`` are the time
    sources (tests pass a :class:`~aimax._clock.FakeClock` and call
    :meth:`collect_metrics` by hand).

        >>> with ResourceMonitor(interval=1.0) as monitor:
        ...     snapshot = monitor.collect_metrics()
        ...     snapshot["process_resident_memory_bytes"] > 0
        True

    Nothing starts until :meth:`start_monitoring`; :meth:`close` stops everything.
    """

    def __init__(
        self,
        interval: float | timedelta = 1.0,
        *,
        pid: int | None = None,
        probe: Probe | None = None,
        rules: Iterable[AlertRule] | None = None,
        history: HistoryConfig | None = None,
        gc: bool = True,
        clock: _clock.Clock = _clock.monotonic,
        wall: _clock.Clock = _clock.wall,
    ) -> None:
        self.interval = as_seconds(interval, name="interval")
        if probe is None:
            self._probe: Probe = SystemProbe(pid)
            self._owns_probe = True
        else:
            if not callable(getattr(probe, "read", None)):
                raise ConfigurationError(f"probe must have a read() method, got {probe!r}")
            self._probe = probe
            self._owns_probe = False
        self.pid = pid if pid is not None else getattr(self._probe, "pid", None)
        own = self.pid is None or self.pid == os.getpid()
        self._gc: GCPauseRecorder | None = shared_recorder() if gc and own else None
        self._gc_acquired = False
        config = history or HistoryConfig()
        # the ring holds two buckets of samples, so each bucket is built from all its
        # samples (up to 20 000 samples: beyond, very fast sampling fills buckets partly)
        needed = min(math.ceil(2 * config.bucket_seconds / self.interval) + 1, _MAX_AUTO_RING)
        if config.ring_size < needed:
            config = replace(config, ring_size=needed)
        self._history = History(config)
        self._clock = clock
        self._wall = wall
        self._lock = threading.RLock()
        self._read_lock = threading.Lock()  # one reading at a time (probes keep deltas)
        self._known_names: set[str] = set(BUILTIN_METRICS) | COMPONENT_METRICS
        self._engine = RuleEngine()
        for rule in default_rules() if rules is None else rules:
            self.add_rule(rule)
        self._sources: dict[str, Callable[[], Sequence[MetricFamily]]] = {}
        self._loops: dict[int, LoopLagProbe] = {}
        self._listeners: list[Callable[[AlertEvent], None]] = []
        self._registry: dict[str, SeriesInfo] = {}
        self._keys: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._by_name: dict[str, list[tuple[str, Mapping[str, str]]]] = {}
        self._failing: dict[str, str] = {}
        self._last: Snapshot | None = None
        self._seq = 0
        self._cpu_total = 0.0
        self._cpu_last = 0.0
        self._first_time: float | None = None
        self._first_cpu_clock: float | None = None
        self._duplicates_logged: set[str] = set()
        self._refused_logged = False
        self._sampler_errors = 0
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._servers: list[PrometheusServer] = []
        self._collector: MonitorCollector | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def start_monitoring(self) -> None:
        """Start the background sampler (idempotent): one daemon thread.

        It stops on :meth:`stop_monitoring`, :meth:`close`, when the monitor is
        garbage-collected, and at interpreter exit.
        """
        with self._lock:
            if self._closed:
                raise MonitorError("the monitor is closed")
            if self._thread is not None and self._thread.is_alive():
                return
            self._acquire_gc_locked()
            stop = threading.Event()
            thread = threading.Thread(
                target=_run_sampler,
                args=(weakref.ref(self), stop, self.interval, self._clock),
                name=f"aimax-monitor-{self.pid or os.getpid()}",
                daemon=True,
            )
            self._stop = stop
            self._thread = thread
            self._finalizer = weakref.finalize(self, _stop_sampler, stop, thread)
            thread.start()
        logger.debug("monitor started (interval %.3fs)", self.interval)

    def stop_monitoring(self) -> None:
        """Stop the background sampler and wait for it (idempotent)."""
        with self._lock:
            finalizer, self._finalizer = self._finalizer, None
            self._thread = None
            self._stop = None
        if finalizer is not None:
            finalizer()

    @property
    def running(self) -> bool:
        """True while the background sampler runs."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def close(self) -> None:
        """Stop the sampler, loop probes and HTTP servers; release the probe (idempotent)."""
        self.stop_monitoring()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            servers, self._servers = self._servers, []
            loops, self._loops = self._loops, {}
        for server in servers:
            server.close()
        for probe in loops.values():
            probe.stop()
        with self._lock:
            if self._gc is not None and self._gc_acquired:
                self._gc_acquired = False
                self._gc.release()
        if self._owns_probe:
            close = getattr(self._probe, "close", None)
            if callable(close):
                close()

    def _acquire_gc_locked(self) -> None:
        """Start timing GC pauses through the process's one recorder (once)."""
        if self._gc is not None and not self._gc_acquired:
            self._gc.acquire()
            self._gc_acquired = True

    def __enter__(self) -> ResourceMonitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ configuration

    def add_source(self, name: str, source: object) -> None:
        """Collect ``source``'s figures at every sample, under ``name``.

        A component whose ``statistics()`` type is mapped in
        :mod:`aimax.monitor.families` (pools, pool manager, memory manager) is read
        through it; otherwise ``metric_families()``, otherwise ``metric_samples()``.
        The source is read once now, so rules may name its metrics right away.

            >>> from aimax._metrics import MetricSample
            >>> class Queue:
            ...     def metric_samples(self):
            ...         return [MetricSample("aimax_pool_queued", 3, {"pool": "io"})]
            >>> with ResourceMonitor() as m:
            ...     m.add_source("pools", Queue())
            ...     m.collect_metrics()['aimax_pool_queued{pool="io"}']
            3.0
        """
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"source name must be a non-empty string, got {name!r}")
        reader = reader_for(name, source)
        with self._lock:
            if name in self._sources:
                raise ConfigurationError(f"a source named {name!r} is already registered")
            self._sources[name] = reader
        try:
            names = {f.name for f in reader()}
        except Exception as exc:
            logger.warning("source %r failed on its first read: %s", name, _describe(exc))
        else:
            with self._lock:
                self._known_names |= names
                self._known_names |= {f"{n}_count" for n in names} | {f"{n}_sum" for n in names}

    def remove_source(self, name: str) -> bool:
        """Stop collecting from the source ``name``; returns whether it was there."""
        with self._lock:
            return self._sources.pop(name, None) is not None

    @property
    def sources(self) -> tuple[str, ...]:
        """Names of the registered sources."""
        return tuple(self._sources)

    def add_rule(self, rule: AlertRule) -> None:
        """Add (or replace, by name) an alert rule.

        Raises :class:`~aimax.errors.ConfigurationError` when the rule names a metric
        the monitor does not know (built-in, a component's, or a registered source's).
        """
        if not isinstance(rule, AlertRule):
            raise ConfigurationError(f"expected an AlertRule, got {rule!r}")
        with self._lock:
            if rule.metric not in self._known_names:
                close = sorted(
                    n for n in self._known_names if rule.metric.split("_")[1:2] == n.split("_")[1:2]
                )
                hint = f"; similar: {', '.join(close[:8])}" if close else ""
                raise ConfigurationError(
                    f"rule {rule.name!r} names an unknown metric {rule.metric!r}{hint}"
                )
            self._engine.add(rule)

    def remove_rule(self, name: str) -> bool:
        """Remove a rule by name; returns whether it existed."""
        with self._lock:
            return self._engine.remove(name)

    @property
    def rules(self) -> Sequence[AlertRule]:
        """The alert rules."""
        return self._engine.rules

    def add_alert_listener(self, callback: Callable[[AlertEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` on every firing / resolved event; returns a remover.

        Callbacks run on the sampling thread; exceptions they raise are logged.
        """
        if not callable(callback):
            raise ConfigurationError(f"alert listener must be callable, got {callback!r}")
        with self._lock:
            self._listeners.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return remove

    def watch_loop(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        name: str | None = None,
        period: float | timedelta | None = None,
    ) -> LoopLagProbe:
        """Measure the lag of an asyncio loop (default: the running one).

        A small task on the loop measures its timer drift every ``period`` seconds
        (default: ``min(interval, 0.25)``), reported as
        ``aimax_event_loop_lag_seconds{loop=name}``.
        """
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise ConfigurationError(
                    "watch_loop() without a loop must be called inside a running loop"
                ) from None
        if loop.is_closed():
            raise ConfigurationError("cannot watch a closed event loop")
        lag_period = (
            min(self.interval, 0.25) if period is None else as_seconds(period, name="period")
        )
        with self._lock:
            if self._closed:
                raise MonitorError("the monitor is closed")
            existing = self._loops.get(id(loop))
            if existing is not None:
                return existing
            label = name or f"loop{len(self._loops)}"
            probe = LoopLagProbe(loop, name=label, period=lag_period)
            self._loops[id(loop)] = probe
        probe.start()
        return probe

    def unwatch_loop(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Stop measuring ``loop``; returns whether it was watched."""
        with self._lock:
            probe = self._loops.pop(id(loop), None)
        if probe is None:
            return False
        probe.stop()
        return True

    # ------------------------------------------------------------------ sampling

    def collect_metrics(self) -> Snapshot:
        """Take one sample now: read, record in history, evaluate the rules.

        Failed readings are in :attr:`Snapshot.failures` (and logged when they start
        and stop failing); they never raise here.
        """
        snapshot = self._sample()
        if snapshot is None:
            raise MonitorError("the monitor is closed")
        return snapshot

    def _tick(self) -> None:
        self._sample()

    def _sample(self) -> Snapshot | None:
        """Read everything outside the monitor's lock, then record under it."""
        with self._read_lock:
            with self._lock:
                if self._closed:
                    return None
                self._acquire_gc_locked()
                sources = list(self._sources.items())
                loops = list(self._loops.values())
            cpu_start = time.thread_time()
            values, histograms, failures = self._read(sources, loops)
            with self._lock:
                if self._closed:  # closed while reading
                    return None  # type: ignore[unreachable]
                snapshot = self._record_locked(values, histograms, failures, cpu_start)
                listeners = list(self._listeners)
        self._dispatch(snapshot.events, listeners)
        return snapshot

    def _read(
        self,
        sources: Sequence[tuple[str, Callable[[], Sequence[MetricFamily]]]],
        loops: Sequence[LoopLagProbe],
    ) -> tuple[dict[str, float], dict[str, HistogramValue], dict[str, str]]:
        """Every reading of one sample (no monitor lock held: sources may be slow)."""
        try:
            reading = self._probe.read()
            if not isinstance(reading, ProbeReading):
                raise MonitorError(f"probe returned {type(reading).__name__}, not ProbeReading")
            values = dict(reading.values)
            failures = dict(reading.failures)
        except Exception as exc:  # the whole probe failed: every figure of it degrades
            values = {}
            failures = {"probe": _describe(exc)}
        histograms: dict[str, HistogramValue] = {}
        families: list[tuple[str, MetricFamily]] = []
        if self._gc is not None:
            try:
                families += [("gc", f) for f in gc_families(self._gc.statistics())]
            except Exception as exc:
                failures["source:gc"] = _describe(exc)
        for loop_probe in loops:
            if loop_probe.closed:
                logger.info("event loop %r is closed; no longer watched", loop_probe.name)
                with self._lock:
                    self._loops.pop(id(loop_probe.loop), None)
                continue
            try:
                loop_probe.collect_into(values)
            except Exception as exc:
                failures[f"source:loop:{loop_probe.name}"] = _describe(exc)
        for name, reader in sources:
            try:
                families += [(name, f) for f in reader()]
            except Exception as exc:  # one broken source degrades only itself
                failures[f"source:{name}"] = _describe(exc)
        self._flatten(families, values, histograms, failures)
        return values, histograms, failures

    def _flatten(
        self,
        families: Sequence[tuple[str, MetricFamily]],
        values: dict[str, float],
        histograms: dict[str, HistogramValue],
        failures: dict[str, str],
    ) -> None:
        """Families -> values by series key (histograms also as ``_count``/``_sum``)."""
        with self._lock:
            known = set(self._registry)
        fresh: list[tuple[str, SeriesInfo]] = []
        for source, family in families:
            for labels, value in family.values:
                key = self._key(family.name, labels)
                if key in values or key in histograms:
                    self._note_duplicate(key, source)
                    continue
                if isinstance(value, HistogramValue):
                    histograms[key] = value
                    parts = (("_count", float(value.count)), ("_sum", float(value.sum)))
                    for suffix, number in parts:
                        part = self._key(family.name + suffix, labels)
                        values[part] = number
                        if part not in known:
                            fresh.append(
                                (
                                    part,
                                    SeriesInfo(
                                        family.name + suffix,
                                        labels,
                                        "counter",
                                        family.help,
                                        histogram=key,
                                    ),
                                )
                            )
                    info = SeriesInfo(family.name, labels, "histogram", family.help)
                else:
                    try:
                        values[key] = float(value)
                    except (TypeError, ValueError):
                        failures[f"source:{source}:{family.name}"] = f"not a number: {value!r}"
                        continue
                    help_ = family.help or _builtin_help(family.name)
                    info = SeriesInfo(family.name, labels, family.kind, help_)
                if key not in known:
                    fresh.append((key, info))
        if fresh:
            with self._lock:
                for key, info in fresh:
                    if key not in self._registry:
                        self._register(key, info)

    def _record_locked(
        self,
        values: dict[str, float],
        histograms: dict[str, HistogramValue],
        failures: dict[str, str],
        cpu_start: float,
    ) -> Snapshot:
        now = self._clock()
        wall = self._wall()
        registry = self._registry
        for key in values.keys() - registry.keys():
            self._register_probe_key(key)
        self._seq += 1
        up = getattr(self._probe, "process_alive", None)
        own: dict[str, float] = {
            "aimax_monitor_up": float(bool(up) if up is not None else bool(_reading_ok(values))),
            "aimax_monitor_samples_total": float(self._seq),
            "aimax_monitor_degraded_metrics": float(len(failures)),
        }
        if self._seq > 1:
            own["aimax_monitor_sample_cpu_seconds"] = self._cpu_last
            own["aimax_monitor_cpu_seconds_total"] = self._cpu_total
        labelled: list[tuple[str, Mapping[str, str], float]] = [
            ("aimax_monitor_degraded", {"metric": metric}, 1.0) for metric in failures
        ]
        labelled += self._firing_locked()
        for name, labels, value in labelled:
            key = sample_key(name, labels)
            own[key] = value
            if key not in registry:
                self._register(key, SeriesInfo(name, labels, "gauge", _builtin_help(name)))
        for key in own.keys() - registry.keys():
            self._register_probe_key(key)
        values.update(own)
        refused = self._history.record(now, values)
        if refused and not self._refused_logged:
            self._refused_logged = True
            logger.warning(
                "history holds at most %d series; not recording %s",
                self._history.config.max_series,
                ", ".join(refused[:5]),
            )
        events = self._engine.evaluate(now, values, self._by_name, self._history)
        self._note_failures(failures)
        cpu = time.thread_time() - cpu_start
        self._cpu_last = cpu
        self._cpu_total += cpu
        if self._first_time is None:
            self._first_time = now
        if len(registry) > 2 * self._history.config.max_series:
            self._prune_registry()
        snapshot = Snapshot(
            sequence=self._seq,
            time=now,
            wall=wall,
            values=MappingProxyType(values),
            failures=MappingProxyType(failures),
            cpu_seconds=cpu,
            events=tuple(events),
            histograms=MappingProxyType(histograms),
        )
        self._last = snapshot
        return snapshot

    def _firing_locked(self) -> list[tuple[str, Mapping[str, str], float]]:
        """``aimax_monitor_alerts_firing{alertname, severity}``: alerts firing per rule."""
        counts = {(rule.name, rule.severity): 0 for rule in self._engine.rules}
        for alert in self._engine.active():
            counts[(alert.rule.name, alert.rule.severity)] += 1
        return [
            (_FIRING, {"alertname": name, "severity": severity}, float(n))
            for (name, severity), n in counts.items()
        ]

    def _key(self, name: str, labels: Mapping[str, str]) -> str:
        """``sample_key(name, labels)``, remembered (the same series come every tick)."""
        ident = (name, tuple(labels.items()))
        key = self._keys.get(ident)
        if key is None:
            if len(self._keys) > 4 * self._history.config.max_series:
                self._keys.clear()  # bounded: series that come and go
            key = self._keys[ident] = sample_key(name, labels)
        return key

    def _note_duplicate(self, key: str, source: str) -> None:
        if key not in self._duplicates_logged:
            self._duplicates_logged.add(key)
            logger.warning(
                "series %s from source %r duplicates another; kept the first", key, source
            )

    def _register_probe_key(self, key: str) -> None:
        labelled = SERIES_LABELS.get(key)
        name, labels = labelled if labelled is not None else (key, _EMPTY)
        info = BUILTIN_METRICS.get(name)
        kind: FamilyKind = info.kind if info is not None else "gauge"
        self._register(key, SeriesInfo(name, labels, kind, info.help if info is not None else ""))

    def _register(self, key: str, info: SeriesInfo) -> None:
        frozen = MappingProxyType(dict(info.labels)) if info.labels else _EMPTY
        info = replace(info, labels=frozen)
        self._registry[key] = info
        self._by_name.setdefault(info.name, []).append((key, frozen))
        self._known_names.add(info.name)

    def _prune_registry(self) -> None:
        keep = set(self._history.keys()) | set(self._last.histograms if self._last else ())
        for key in [k for k in self._registry if k not in keep]:
            info = self._registry.pop(key)
            series = self._by_name.get(info.name, [])
            series[:] = [(k, labels) for k, labels in series if k != key]

    def _note_failures(self, failures: Mapping[str, str]) -> None:
        failing = self._failing
        for metric, reason in failures.items():
            if failing.get(metric) != reason:
                logger.warning("monitor reading %s degraded: %s", metric, reason)
        for metric in [m for m in failing if m not in failures]:
            logger.info("monitor reading %s recovered", metric)
        self._failing = dict(failures)

    def _dispatch(
        self, events: Sequence[AlertEvent], listeners: Sequence[Callable[[AlertEvent], None]]
    ) -> None:
        for event in events:
            level = _LOG_LEVEL[event.rule.severity] if event.kind == "firing" else logging.INFO
            logger.log(level, "alert %s", event.message())
            for listener in listeners:
                try:
                    listener(event)
                except Exception:  # a listener's bug must not stop the monitor
                    logger.exception("alert listener %r failed", listener)

    # ------------------------------------------------------------------ reading

    @property
    def latest(self) -> Snapshot | None:
        """The latest sample (``None`` before the first)."""
        return self._last

    def latest_or_collect(self) -> Snapshot:
        """The latest sample while the sampler runs, else a fresh one."""
        last = self._last
        if last is not None and self.running:
            return last
        return self.collect_metrics()

    def series_info(self, key: str) -> SeriesInfo:
        """Name, labels, kind and help of a series key seen by the monitor."""
        info = self._registry.get(key)
        if info is None:
            raise ConfigurationError(f"unknown series {key!r}")
        return info

    def check_resource_limits(self) -> list[ActiveAlert]:
        """The alerts firing now (most severe first).

        Before the first sample this takes one, so it answers something real.
        """
        if self._last is None:
            self.collect_metrics()
        with self._lock:
            return self._engine.active()

    def get_metrics_summary(
        self, window: float | timedelta | None = None
    ) -> dict[str, MetricSummary]:
        """min / mean / max / p95 / trend per series over the last ``window``.

        ``window=None`` covers the raw ring; a window longer than it uses the
        1-minute buckets (summaries then say ``approximate=True``).
        """
        if window is not None:
            as_seconds(window, name="window")
        with self._lock:
            return self._history.summaries(window=window, now=self._clock())

    @property
    def history(self) -> History:
        """The history: raw points, 1-minute buckets, summaries (thread-safe reads)."""
        return self._history

    def history_dict(self, window: float | timedelta | None = None) -> dict[str, Any]:
        """The history as a JSON-ready mapping: raw points, buckets and summaries.

        Times are Unix seconds (converted with the latest sample's wall clock).
        """
        with self._lock:
            now = self._clock()
            offset = (self._last.wall - self._last.time) if self._last is not None else 0.0
            since = -math.inf if window is None else now - as_seconds(window, name="window")
            series: dict[str, Any] = {}
            for key in self._history:
                summary = self._history.summary(key, window=window, now=now)
                series[key] = {
                    "points": [
                        [t + offset, _finite(v)] for t, v in self._history.points(key, since=since)
                    ],
                    "buckets": [
                        {
                            "start": b.start + offset,
                            "min": _finite(b.min),
                            "mean": _finite(b.mean),
                            "max": _finite(b.max),
                            "count": b.count,
                        }
                        for b in self._history.buckets(key, since=since)
                    ],
                    "summary": None if summary is None else _finite_dict(summary.as_dict(), offset),
                }
            return {
                "pid": self.pid,
                "interval": self.interval,
                "bucket_seconds": self._history.config.bucket_seconds,
                "series": series,
            }

    def snapshot_json(self, *, indent: int | None = None) -> str:
        """The latest sample (a fresh one while not running) as JSON text."""
        return json.dumps(self.latest_or_collect().as_dict(), indent=indent, allow_nan=False)

    def history_json(
        self, window: float | timedelta | None = None, *, indent: int | None = None
    ) -> str:
        """:meth:`history_dict` as JSON text."""
        return json.dumps(self.history_dict(window), indent=indent, allow_nan=False)

    # ------------------------------------------------------------------ exporters

    def prometheus_collector(self) -> MonitorCollector:
        """A ``prometheus_client`` collector exposing the latest sample."""
        from aimax.monitor.export import MonitorCollector

        with self._lock:
            if self._collector is None:
                self._collector = MonitorCollector(self)
            return self._collector

    def render_prometheus(self) -> str:
        """The latest sample in the Prometheus text exposition format."""
        from aimax.monitor.export import render_prometheus

        return render_prometheus(self.prometheus_collector())

    def serve_prometheus(self, port: int = 9464, *, host: str = "127.0.0.1") -> PrometheusServer:
        """Serve ``/metrics`` over HTTP on ``host:port`` (loopback by default).

        ``port=0`` picks a free port (see ``.port`` on the result). The server stops
        on its ``close()`` or the monitor's.
        """
        from aimax.monitor.export import PrometheusServer

        with self._lock:
            if self._closed:
                raise MonitorError("the monitor is closed")
        server = PrometheusServer(self.prometheus_collector(), port=port, host=host)
        with self._lock:
            self._servers.append(server)
        return server

    # ------------------------------------------------------------------ statistics

    def statistics(self) -> MonitorStatistics:
        """The monitor's state and its own cost."""
        with self._lock:
            samples = self._seq
            elapsed = self._clock() - self._first_time if self._first_time is not None else 0.0
            return MonitorStatistics(
                running=self.running,
                interval=self.interval,
                pid=self.pid,
                samples=samples,
                series=len(self._history.keys()),
                sources=tuple(self._sources),
                loops=tuple(p.name for p in self._loops.values()),
                rules=len(self._engine.rules),
                alerts_firing=len(self._engine.active()),
                degraded=MappingProxyType(dict(self._failing)),
                cpu_seconds_total=self._cpu_total,
                last_sample_cpu_seconds=self._cpu_last,
                mean_sample_cpu_seconds=self._cpu_total / samples if samples else 0.0,
                core_share=self._cpu_total / elapsed if elapsed > 0 else 0.0,
                sampler_errors=self._sampler_errors,
                history_bytes=self._history.memory_bytes(),
                closed=self._closed,
            )

    def metric_samples(self) -> list[MetricSample]:
        """The monitor's own figures, as a :class:`~aimax._metrics.MetricsSource`.

        For a report or another collector; the monitor's own samples already carry
        these under ``aimax_monitor_*``.
        """
        s = self.statistics()
        samples = [
            MetricSample("aimax_monitor_samples_total", float(s.samples), {}, "counter"),
            MetricSample("aimax_monitor_cpu_seconds_total", s.cpu_seconds_total, {}, "counter"),
            MetricSample("aimax_monitor_sample_cpu_seconds", s.last_sample_cpu_seconds),
            MetricSample("aimax_monitor_degraded_metrics", float(len(s.degraded))),
        ]
        with self._lock:
            firing = self._firing_locked()
        samples += [MetricSample(name, value, labels) for name, labels, value in firing]
        return samples

    def __repr__(self) -> str:
        s = self.statistics()
        state = "closed" if s.closed else ("running" if s.running else "idle")
        return (
            f"<ResourceMonitor {state} pid={s.pid} interval={s.interval:g}s "
            f"samples={s.samples} series={s.series} firing={s.alerts_firing} "
            f"degraded={len(s.degraded)} cpu/sample={s.mean_sample_cpu_seconds * 1e6:.0f}us>"
        )


def _builtin_help(name: str) -> str:
    info = BUILTIN_METRICS.get(name)
    return info.help if info is not None else ""


def _reading_ok(values: Mapping[str, float]) -> bool:
    """Whether a reading holds any process figure (how a foreign probe counts as up)."""
    return any(key.startswith("process_") for key in values)


def _finite_dict(data: Mapping[str, Any], offset: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, float):
            out[key] = _finite(value + offset if key in ("start", "end") else value)
        else:
            out[key] = value
    return out
