"""MAX's request limits as a pure core: an exact sliding log plus a restarting ban.

No threads, no I/O: time is passed in as ``now`` (Unix seconds). The HTTP layer asks
:meth:`PenaltyWindow.hit` once per request and answers 429 when it says no.

Rules (what MAX publishes, modelled exactly):

* at most ``limit`` units are accepted per key in ANY window of ``window`` seconds
  (a sliding log: an accepted request at ``t`` stops counting at ``t + window``);
* a request that would exceed it is refused and starts a ban until ``now + ban``;
* every request made during a ban is refused and restarts the ban from its own time;
* a refused request never uses budget.

::

    >>> w = PenaltyWindow(limit=2, window=10.0, ban=5.0)
    >>> [w.hit("ip", now).allowed for now in (0.0, 1.0, 2.0)]
    [True, True, False]
    >>> w.hit("ip", 4.0).banned_until          # a request during the ban restarts it
    9.0
    >>> w.hit("ip", 10.0).allowed               # ban over, and 0.0 left the window
    True
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from aimax.errors import ConfigurationError

__all__ = ["LimitDecision", "PenaltyWindow"]


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """What :meth:`PenaltyWindow.hit` decided.

    ``banned_until`` (Unix seconds) is set when refused; ``ban_started`` tells a new
    ban from a restarted one (``ban_extended``). ``used`` is the units in the window
    after the decision.
    """

    allowed: bool
    used: int
    banned_until: float | None = None
    ban_started: bool = False
    ban_extended: bool = False


class _Scope:
    __slots__ = ("banned_until", "log", "peak", "used")

    def __init__(self) -> None:
        self.log: deque[tuple[float, int]] = deque()
        self.used = 0
        self.banned_until = float("-inf")
        self.peak = 0


class PenaltyWindow:
    """Per-key sliding-log limit with a ban that restarts on every request during it."""

    def __init__(self, *, limit: int, window: float, ban: float) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ConfigurationError(f"limit must be a positive integer, got {limit!r}")
        if not window > 0:
            raise ConfigurationError(f"window must be a positive duration, got {window!r}")
        if not ban >= 0:
            raise ConfigurationError(f"ban must be a duration >= 0, got {ban!r}")
        self.limit = limit
        self.window = float(window)
        self.ban = float(ban)
        self._scopes: dict[str, _Scope] = {}

    def _evict(self, scope: _Scope, now: float) -> None:
        horizon = now - self.window
        log = scope.log
        while log and log[0][0] <= horizon:
            scope.used -= log.popleft()[1]

    def hit(self, key: str, now: float, cost: int = 1) -> LimitDecision:
        """Charge one request of ``cost`` units to ``key`` at ``now``; decide."""
        if cost <= 0:
            raise ConfigurationError(f"cost must be a positive integer, got {cost!r}")
        scope = self._scopes.get(key)
        if scope is None:
            scope = self._scopes[key] = _Scope()
        self._evict(scope, now)
        if now < scope.banned_until:
            scope.banned_until = max(scope.banned_until, now + self.ban)
            return LimitDecision(False, scope.used, scope.banned_until, ban_extended=True)
        if scope.used + cost > self.limit:
            scope.banned_until = now + self.ban
            return LimitDecision(False, scope.used, scope.banned_until, ban_started=True)
        scope.log.append((now, cost))
        scope.used += cost
        scope.peak = max(scope.peak, scope.used)
        return LimitDecision(True, scope.used)

    def used(self, key: str, now: float) -> int:
        """Units of ``key`` in the window ending at ``now``."""
        scope = self._scopes.get(key)
        if scope is None:
            return 0
        self._evict(scope, now)
        return scope.used

    def banned_until(self, key: str, now: float) -> float | None:
        """End of ``key``'s ban, or ``None`` when it is not banned at ``now``."""
        scope = self._scopes.get(key)
        if scope is None or now >= scope.banned_until:
            return None
        return scope.banned_until

    def peak(self, key: str) -> int:
        """The most units ``key`` ever had in one window."""
        scope = self._scopes.get(key)
        return 0 if scope is None else scope.peak

    def scopes(self) -> list[str]:
        """Every key seen so far."""
        return list(self._scopes)

    def reset(self) -> None:
        """Forget every key (budgets and bans)."""
        self._scopes.clear()

    def __repr__(self) -> str:
        return (
            f"PenaltyWindow(limit={self.limit}, window={self.window}, ban={self.ban}, "
            f"keys={len(self._scopes)})"
        )
