"""In-process collector of asyncio event-loop lag.

:class:`LoopLagProbe` does nothing until :meth:`~LoopLagProbe.start` runs a small
task on the loop. (GC pauses come from the process's one recorder,
:func:`aimax.memory.gccontrol.shared_recorder`.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Sequence

from aimax._clock import as_seconds
from aimax._metrics import MetricSample, sample_key

__all__ = ["LoopLagProbe"]

logger = logging.getLogger(__name__)


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
                self._expected = loop.time() + period
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
                overdue = self.loop.time() - self._expected
                lag = max(lag, overdue)
            if self.wakeups == 0 and (overdue is None or overdue < 0):
                return None
        return lag

    def __repr__(self) -> str:
        return f"LoopLagProbe(loop={self.name!r}, period={self.period}, wakeups={self.wakeups})"
