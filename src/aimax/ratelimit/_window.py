"""The pure sliding-log budget: exact weighted sliding windows over linked pools.

No threads, no I/O, no clock: every call takes ``now`` (seconds, any base, as long as
the caller is consistent). :class:`WindowCore` is what the in-memory backend and the
limiter's local mode both run; the Redis backend's Lua script implements the same
rules (see :mod:`aimax.ratelimit.backend`).

Semantics: a grant of ``cost`` units at time ``t`` counts in the pool's window while
``now < t + window`` (half-open), so the units granted in ANY interval ``[s, s+window)``
never exceed the cap the requests were checked against.

    >>> core = WindowCore()
    >>> plan = [Charge(pool="p", cost=2, cap=3, window=10.0)]
    >>> core.attempt(plan, (), now=0.0).granted
    True
    >>> a = core.attempt(plan, (), now=1.0)
    >>> a.granted, a.wait, a.pool
    (False, 9.0, 'p')
    >>> core.attempt(plan, (), now=10.0).granted
    True
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["GRANTED", "Attempt", "Charge", "PoolLog", "WindowCore"]


@dataclass(frozen=True, slots=True)
class Charge:
    """What one request takes from one pool.

    ``cost`` units are taken from ``pool``, whose sliding window is ``window`` seconds
    long; the request passes only if the pool then holds at most ``cap`` units in its
    window. ``cap`` is what the request's priority class may fill (at most the pool's
    limit): the limiter computes it, the backend only compares against it.
    """

    pool: str
    cost: int
    cap: int
    window: float


@dataclass(frozen=True, slots=True)
class Attempt:
    """A backend's answer: granted, or how long to wait and why.

    ``wait`` is seconds from now until the request could pass as far as the backend
    knows (0.0 when granted); ``pool`` names the short pool (None when granted or
    frozen); ``frozen_until`` is set when a scope is frozen (a ban), in the backend's
    freeze time base (Unix seconds for backends, see ``LimiterBackend.freeze``).
    """

    granted: bool
    wait: float
    pool: str | None = None
    frozen_until: float | None = None


GRANTED = Attempt(granted=True, wait=0.0)
"""The one shared 'granted' answer (immutable, so no allocation per grant)."""


class PoolLog:
    """One pool's sliding log: ``(expires_at, cost)`` entries plus their running sum."""

    __slots__ = ("entries", "name", "used", "window")

    def __init__(self, name: str, window: float) -> None:
        self.name = name
        self.window = window
        self.entries: deque[tuple[float, int]] = deque()
        self.used = 0

    def expire(self, now: float) -> None:
        """Drop the entries whose window has passed (amortised O(1))."""
        entries = self.entries
        while entries and entries[0][0] <= now:
            self.used -= entries.popleft()[1]

    def wait_for(self, excess: int, now: float) -> float:
        """Seconds until at least ``excess`` units have left the window (inf if never)."""
        freed = 0
        for expires_at, cost in self.entries:
            freed += cost
            if freed >= excess:
                return max(0.0, expires_at - now)
        return math.inf

    def add(self, cost: int, now: float, window: float) -> None:
        """Record a grant of ``cost`` units at ``now``."""
        self.entries.append((now + window, cost))
        self.used += cost


class WindowCore:
    """Exact sliding windows for named pools plus frozen scopes; pure, time passed in."""

    __slots__ = ("frozen", "pools")

    def __init__(self) -> None:
        self.pools: dict[str, PoolLog] = {}
        self.frozen: dict[str, float] = {}

    def log(self, pool: str, window: float) -> PoolLog:
        """The pool's log, created on first use."""
        log = self.pools.get(pool)
        if log is None:
            log = self.pools[pool] = PoolLog(pool, window)
        return log

    def frozen_until(self, scopes: Iterable[str], now: float) -> float | None:
        """The latest freeze end among ``scopes`` still in force at ``now``, else None."""
        frozen = self.frozen
        if not frozen:
            return None
        latest: float | None = None
        for scope in scopes:
            until = frozen.get(scope)
            if until is not None:
                if until <= now:
                    del frozen[scope]
                elif latest is None or until > latest:
                    latest = until
        return latest

    def check(self, charges: Iterable[Charge], scopes: Iterable[str], now: float) -> Attempt:
        """Would :meth:`attempt` grant at ``now``? The same answer, nothing recorded."""
        until = self.frozen_until(scopes, now)
        if until is not None:
            return Attempt(granted=False, wait=until - now, pool=None, frozen_until=until)
        worst = -1.0
        short: str | None = None
        for charge in charges:
            log = self.log(charge.pool, charge.window)
            log.expire(now)
            excess = log.used + charge.cost - charge.cap
            if excess > 0:
                wait = log.wait_for(excess, now)
                if wait > worst:
                    worst, short = wait, charge.pool
        if short is not None:
            return Attempt(granted=False, wait=worst, pool=short, frozen_until=None)
        return GRANTED

    def attempt(self, charges: Iterable[Charge], scopes: Iterable[str], now: float) -> Attempt:
        """Grant every charge at ``now`` (all or nothing) or say how long to wait."""
        charges = tuple(charges)
        answer = self.check(charges, scopes, now)
        if answer.granted:
            pools = self.pools
            for charge in charges:
                pools[charge.pool].add(charge.cost, now, charge.window)
        return answer

    def freeze(self, scope: str, until: float) -> None:
        """Freeze ``scope`` until ``until`` (same time base as ``now``); never shortens."""
        if until > self.frozen.get(scope, -math.inf):
            self.frozen[scope] = until

    def prefill(self, pool: str, window: float, units: int, now: float) -> None:
        """Count ``units`` as granted at ``now`` (conservative start after a restart)."""
        if units > 0:
            self.log(pool, window).add(units, now, window)

    def usage(self, now: float) -> Mapping[str, int]:
        """Units now inside each pool's window."""
        out: dict[str, int] = {}
        for name, log in self.pools.items():
            log.expire(now)
            out[name] = log.used
        return out
