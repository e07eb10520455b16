"""The one place aimax reads time, and the fakes tests use instead.

Components take a ``clock`` (monotonic seconds, for intervals and deadlines) and,
where they need calendar time, a ``wall`` clock (Unix seconds), plus a ``sleep``
(or ``async_sleep``) callable. The defaults below read the real clocks; tests pass a
:class:`FakeClock` and advance it by hand, never sleeping for correctness::

    >>> clock = FakeClock(start=100.0)
    >>> clock()
    100.0
    >>> clock.advance(2.5)
    >>> clock(), clock.sleeps
    (102.5, [])
    >>> clock.sleep(1.0)        # a fake sleeper: advances instead of waiting
    >>> clock(), clock.sleeps
    (103.5, [1.0])
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from aimax.errors import ConfigurationError

__all__ = [
    "AsyncSleeper",
    "Clock",
    "FakeClock",
    "Sleeper",
    "as_seconds",
    "async_sleep",
    "monotonic",
    "sleep",
    "wall",
]

Clock = Callable[[], float]
"""Returns seconds; monotonic for intervals, Unix time for the wall clock."""
Sleeper = Callable[[float], None]
AsyncSleeper = Callable[[float], Awaitable[None]]

monotonic: Clock = time.monotonic
"""Monotonic seconds: the default clock for every interval and deadline."""
wall: Clock = time.time
"""Unix seconds: only for what the outside world states in calendar time (Retry-After)."""
sleep: Sleeper = time.sleep
async_sleep: AsyncSleeper = asyncio.sleep


def as_seconds(
    value: float | timedelta,
    *,
    name: str,
    allow_zero: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return a duration (float seconds or ``timedelta``) as float seconds.

    Raises :class:`~aimax.errors.ConfigurationError` naming ``name`` and the value
    when it is not a finite number, is negative, or is zero (unless ``allow_zero``).

        >>> as_seconds(timedelta(minutes=1), name="window")
        60.0
        >>> as_seconds(0, name="window")
        Traceback (most recent call last):
        ...
        aimax.errors.ConfigurationError: window must be a positive duration in seconds, got 0
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"{name} must be a number of seconds or a timedelta, got {value!r}"
        )
    else:
        seconds = float(value)
    if math.isnan(seconds) or (math.isinf(seconds) and not allow_inf):
        raise ConfigurationError(f"{name} must be a finite duration, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        kind = "non-negative" if allow_zero else "positive"
        raise ConfigurationError(f"{name} must be a {kind} duration in seconds, got {value!r}")
    return seconds


class FakeClock:
    """A hand-driven clock for tests: monotonic and wall time advance together.

    Calling the instance returns the monotonic reading; :meth:`time` the wall reading.
    :meth:`sleep` and :meth:`async_sleep` advance the clock instead of waiting, and
    record what was asked in :attr:`sleeps`. Thread-safe.
    """

    def __init__(self, start: float = 0.0, *, wall_start: float = 1_750_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = float(start)
        self._wall_offset = float(wall_start) - float(start)
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        """The monotonic reading (same as calling the instance)."""
        return self()

    def time(self) -> float:
        """The wall-clock reading (Unix seconds)."""
        with self._lock:
            return self._now + self._wall_offset

    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward by ``seconds`` (never backward)."""
        step = as_seconds(seconds, name="seconds", allow_zero=True)
        with self._lock:
            self._now += step

    def set(self, now: float) -> None:
        """Jump to monotonic time ``now`` (must not be earlier than the current time)."""
        with self._lock:
            if now < self._now:
                raise ConfigurationError(f"a FakeClock cannot go back: {now} < {self._now}")
            self._now = float(now)

    def sleep(self, seconds: float) -> None:
        """A fake sleeper: records the request and advances time by it."""
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)

    async def async_sleep(self, seconds: float) -> None:
        """The asyncio flavour of :meth:`sleep` (yields to the loop once)."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(now={self():.6f}, wall={self.time():.3f})"
