"""Keep the SERVER's window under the limit, whatever the network latency does.

The limiter counts a request when it is granted; MAX counts it when it arrives.
Between the two lies the latency, and its jitter: a request granted at ``g`` (the
window says "fine") may arrive after a later-granted one, and the server's window of
the same length can then hold more than the limit. A 429 follows, and a ban.

:class:`InFlightWindow` closes that gap. Per pool, a request holds its units from
the moment it is admitted until ``window`` seconds after its answer came back (it
arrived at the server at some moment in between). At most ``cap`` units may be held.
Then for any server window ``(x - W, x]``: take the request of that window sent last;
when it was admitted, every other one was either still in flight or had completed
after ``x - W`` (it arrived there after ``x - W``, and completion follows arrival), so
all were held, and the server saw at most ``cap``. The cost is the latency: a unit is
held for ``W + latency`` instead of ``W``.

The core is pure (``now`` passed in); :class:`CompletionGuard` is its thread-safe,
multi-event-loop driver, one per limiter (shared by every client on that limiter).

    >>> w = InFlightWindow({"rest_public": 10.0})
    >>> w.try_enter({"rest_public": 1}, {"rest_public": 1}, now=0.0)
    0.0
    >>> w.try_enter({"rest_public": 1}, {"rest_public": 1}, now=0.0) is None  # in flight
    True
    >>> w.exit({"rest_public": 1}, now=0.5, sent=True)
    >>> w.try_enter({"rest_public": 1}, {"rest_public": 1}, now=1.0)   # held until 10.5
    9.5
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from aimax.errors import ConfigurationError

__all__ = ["CompletionGuard", "InFlightWindow", "guard_for"]


class InFlightWindow:
    """Pure core: per pool, units in flight plus units completed within the window."""

    def __init__(self, windows: Mapping[str, float]) -> None:
        for pool, seconds in windows.items():
            if not seconds > 0:
                raise ConfigurationError(f"window of pool {pool!r} must be > 0, got {seconds!r}")
        self._windows = dict(windows)
        self._log: dict[str, deque[tuple[float, int]]] = {p: deque() for p in windows}
        self._done: dict[str, int] = dict.fromkeys(windows, 0)
        self._in_flight: dict[str, int] = dict.fromkeys(windows, 0)

    def _expire(self, pool: str, now: float) -> None:
        log = self._log[pool]
        while log and log[0][0] <= now:
            self._done[pool] -= log.popleft()[1]

    def held(self, pool: str, now: float) -> int:
        """Units held in ``pool`` at ``now`` (in flight + completed within the window)."""
        self._expire(pool, now)
        return self._done[pool] + self._in_flight[pool]

    def in_flight(self, pool: str) -> int:
        """Units admitted and not yet answered."""
        return self._in_flight[pool]

    def try_enter(
        self, units: Mapping[str, int], caps: Mapping[str, int], now: float
    ) -> float | None:
        """Admit (returns ``0.0``, units now held), or say how long to wait.

        A positive number: seconds until enough completed units leave the window. ``None``:
        only a completion of something in flight can make room (wait for one). Pools
        not tracked here, and charges larger than their cap, are not held back.
        """
        waits: list[float | None] = []
        for pool, need in units.items():
            if pool not in self._windows or need > caps[pool]:
                continue
            self._expire(pool, now)
            excess = self._done[pool] + self._in_flight[pool] + need - caps[pool]
            if excess <= 0:
                continue
            freed = 0
            wait: float | None = None
            for expires, amount in self._log[pool]:
                freed += amount
                if freed >= excess:
                    wait = expires - now
                    break
            waits.append(wait)
        if not waits:
            for pool, need in units.items():
                if pool in self._windows and need <= caps[pool]:
                    self._in_flight[pool] += need
            return 0.0
        if any(w is None for w in waits):
            return None
        return max(w for w in waits if w is not None)

    def exit(self, units: Mapping[str, int], now: float, *, sent: bool) -> None:
        """The request is over: answered (or failed) at ``now`` if ``sent``; else never sent."""
        for pool, need in units.items():
            if pool not in self._windows or self._in_flight[pool] < need:
                continue
            self._in_flight[pool] -= need
            if sent:
                self._log[pool].append((now + self._windows[pool], need))
                self._done[pool] += need


class CompletionGuard:
    """Thread-safe driver of an :class:`InFlightWindow`, awaitable from any event loop.

    Waiters sleep until the computed moment or until any request completes (whichever
    comes first), never in a polling loop.
    """

    def __init__(
        self,
        windows: Mapping[str, float],
        units_for: Callable[[str, int | None], tuple[dict[str, int], dict[str, int]]],
        clock: Callable[[], float],
    ) -> None:
        self._core = InFlightWindow(windows)
        self._units_for = units_for
        self._clock = clock
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def units(self, kind: str, cost: int | None = None) -> dict[str, int]:
        """Units ``kind`` holds per pool."""
        return self._units_for(kind, cost)[0]

    async def enter(self, kind: str, cost: int | None = None) -> dict[str, int]:
        """Wait until ``kind`` may be sent; returns the units to pass to :meth:`exit`."""
        units, caps = self._units_for(kind, cost)
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                wait = self._core.try_enter(units, caps, self._clock())
                if wait == 0.0:
                    return units
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
            try:
                await asyncio.wait_for(future, timeout=wait)
            except TimeoutError:
                pass
            finally:
                with self._lock:
                    if (loop, future) in self._waiters:
                        self._waiters.remove((loop, future))

    def exit(self, units: Mapping[str, int], *, sent: bool) -> None:
        """Record the end of a request and wake every waiter to re-check."""
        with self._lock:
            self._core.exit(units, self._clock(), sent=sent)
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed: its waiter is gone with it
                continue

    def held(self, pool: str) -> int:
        """Units held in ``pool`` now."""
        with self._lock:
            return self._core.held(pool, self._clock())


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_guards: weakref.WeakKeyDictionary[Any, CompletionGuard] = weakref.WeakKeyDictionary()
_guards_lock = threading.Lock()


def guard_for(limiter: Any, clock: Callable[[], float]) -> CompletionGuard | None:
    """The guard shared by every client of ``limiter``, or ``None`` when the limiter does
    not describe its pools (``pools``, ``kinds`` and ``cap(pool, priority)``)."""
    pools = getattr(limiter, "pools", None)
    kinds = getattr(limiter, "kinds", None)
    cap = getattr(limiter, "cap", None)
    if not isinstance(pools, Mapping) or not isinstance(kinds, Mapping) or not callable(cap):
        return None
    with _guards_lock:
        try:
            existing = _guards.get(limiter)
        except TypeError:  # not weak-referenceable
            return None
        if existing is not None:
            return existing
        windows = {name: float(limit.seconds) for name, limit in pools.items()}

        def units_for(kind: str, cost: int | None) -> tuple[dict[str, int], dict[str, int]]:
            spec = kinds[kind]
            multiplier = 1 if cost is None else cost
            units = {pool: n * multiplier for pool, n in spec.charges.items()}
            caps = {pool: int(cap(pool, spec.priority)) for pool in units}
            return units, caps

        guard = CompletionGuard(windows, units_for, clock)
        _guards[limiter] = guard
        return guard
