"""In-process collectors: garbage-collector figures and asyncio event-loop lag.

Both are :class:`~aimax._metrics.MetricsSource` objects, so the monitor reads them
exactly like a component's statistics. Neither does anything until asked:
:class:`GcProbe` hooks ``gc.callbacks`` on :meth:`~GcProbe.install`, and
:class:`LoopLagProbe` runs a small task on the loop from :meth:`~LoopLagProbe.start`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from aimax._clock import as_seconds
from aimax._metrics import MetricSample, sample_key

__all__ = ["GcProbe", "LoopLagProbe"]

logger = logging.getLogger(__name__)

_GENERATIONS = ("0", "1", "2")
_GC_KEYS = tuple(
    tuple(
        sample_key(name, {"generation": gen})
        for name in (
            "aimax_gc_collections_total",
            "aimax_gc_collected_total",
            "aimax_gc_uncollectable_total",
        )
    )
    for gen in _GENERATIONS
)


class GcProbe:
    """Counts, collected objects and pause times of CPython's garbage collector.

    Collections come from ``gc.get_stats()`` (since the process started). Pauses are
    timed through ``gc.callbacks`` from :meth:`install` on, so
    ``aimax_gc_pause_seconds_total`` counts since then, and
    ``aimax_gc_pause_max_seconds`` is the longest pause since the previous read.

        >>> probe = GcProbe()
        >>> probe.install()
        >>> _ = gc.collect()
        >>> [s.name for s in probe.metric_samples()][-1]
        'aimax_gc_pause_max_seconds'
        >>> probe.uninstall()
    """

    def __init__(self) -> None:
        self._start = 0.0
        self._pause_total = 0.0
        self._pause_max = 0.0
        self._pauses = 0
        self._installed = False

    def install(self) -> None:
        """Start timing pauses (idempotent)."""
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        """Stop timing pauses (idempotent)."""
        if self._installed:
            with contextlib.suppress(ValueError):
                gc.callbacks.remove(self._callback)
            self._installed = False

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        pause = time.perf_counter() - self._start
        self._pause_total += pause
        self._pauses += 1
        self._pause_max = max(pause, self._pause_max)

    def collect_into(self, values: dict[str, float]) -> None:
        """Write the figures into ``values`` by series key (the monitor's fast path).

        Resets the window of ``aimax_gc_pause_max_seconds``.
        """
        for keys, stats in zip(_GC_KEYS, gc.get_stats(), strict=False):
            values[keys[0]] = float(stats["collections"])
            values[keys[1]] = float(stats["collected"])
            values[keys[2]] = float(stats["uncollectable"])
        pause_max, self._pause_max = self._pause_max, 0.0
        values["aimax_gc_pause_seconds_total"] = self._pause_total
        values["aimax_gc_pause_max_seconds"] = pause_max

    def metric_samples(self) -> Sequence[MetricSample]:
        """The figures now; resets the window of ``aimax_gc_pause_max_seconds``."""
        samples: list[MetricSample] = []
        for gen, stats in zip(_GENERATIONS, gc.get_stats(), strict=False):
            labels = {"generation": gen}
            samples.append(
                MetricSample(
                    "aimax_gc_collections_total", float(stats["collections"]), labels, "counter"
                )
            )
            samples.append(
                MetricSample(
                    "aimax_gc_collected_total", float(stats["collected"]), labels, "counter"
                )
            )
            samples.append(
                MetricSample(
                    "aimax_gc_uncollectable_total", float(stats["uncollectable"]), labels, "counter"
                )
            )
        pause_max, self._pause_max = self._pause_max, 0.0
        samples.append(
            MetricSample("aimax_gc_pause_seconds_total", self._pause_total, {}, "counter")
        )
        samples.append(MetricSample("aimax_gc_pause_max_seconds", pause_max))
        return samples

    def __repr__(self) -> str:
        return (
            f"GcProbe(installed={self._installed}, pauses={self._pauses}, "
            f"pause_total={self._pause_total:.6f}s)"
        )


class LoopLagProbe:
    """Measures an asyncio loop's lag: how late its timers fire.

    A task on the loop sleeps ``period`` seconds again and again and records how much
    later than asked it woke up. :meth:`metric_samples` reports the largest lag since
    the previous read as ``aimax_event_loop_lag_seconds{loop=<name>}``; when the task
    is overdue right now (the loop is blocked), the overdue time counts too, so a
    loop that is stuck shows a growing lag instead of silence.

        >>> async def main():
        ...     probe = LoopLagProbe(asyncio.get_running_loop(), name="main", period=0.01)
        ...     probe.start()
        ...     await asyncio.sleep(0.05)
        ...     probe.stop()
        ...     return probe.wakeups > 0
        >>> asyncio.run(main())
        True
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, name: str, period: float = 0.25) -> None:
        self.loop = loop
        self.name = name
        self.period = as_seconds(period, name="period")
        self._lock = threading.Lock()
        self._max = 0.0
        self._expected: float | None = None
        self.wakeups = 0
        self._task: asyncio.Task[None] | concurrent.futures.Future[None] | None = None
        self._labels = {"loop": name}
        self._key = sample_key("aimax_event_loop_lag_seconds", self._labels)

    @property
    def closed(self) -> bool:
        """True when the loop is closed (nothing more will be measured)."""
        return self.loop.is_closed()

    def start(self) -> None:
        """Start the probe task on the loop (from its own thread or any other)."""
        if self._task is not None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._task = self.loop.create_task(self._run(), name=f"aimax-loop-lag-{self.name}")
        else:
            self._task = asyncio.run_coroutine_threadsafe(self._run(), self.loop)

    def stop(self) -> None:
        """Cancel the probe task (idempotent; safe from any thread)."""
        task, self._task = self._task, None
        if task is None or self.loop.is_closed():
            return
        if isinstance(task, asyncio.Task):
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self.loop:
                task.cancel()
            else:
                self.loop.call_soon_threadsafe(task.cancel)
        else:
            task.cancel()

    async def _run(self) -> None:
        loop = self.loop
        period = self.period
        while True:
            start = loop.time()
            with self._lock:
                self._expected = time.monotonic() + period
            await asyncio.sleep(period)
            lag = max(0.0, loop.time() - start - period)
            with self._lock:
                self._expected = None
                self.wakeups += 1
                self._max = max(self._max, lag)

    def collect_into(self, values: dict[str, float]) -> None:
        """Write the lag into ``values`` by series key (the monitor's fast path)."""
        lag = self._read()
        if lag is not None:
            values[self._key] = lag

    def metric_samples(self) -> Sequence[MetricSample]:
        """The largest lag since the previous read (overdue time included)."""
        lag = self._read()
        if lag is None:
            return []  # nothing measured yet: absent, not a made-up zero
        return [MetricSample("aimax_event_loop_lag_seconds", lag, self._labels)]

    def _read(self) -> float | None:
        with self._lock:
            lag = self._max
            self._max = 0.0
            overdue = None
            if self._expected is not None:
                overdue = time.monotonic() - self._expected
                lag = max(lag, overdue)
            if self.wakeups == 0 and (overdue is None or overdue < 0):
                return None
        return lag

    def __repr__(self) -> str:
        return f"LoopLagProbe(loop={self.name!r}, period={self.period}, wakeups={self.wakeups})"
