"""The limiter's backend seam, and the in-memory backend.

A backend holds the shared budget: one exact sliding log per pool plus the frozen
scopes. The limiter (``APIRateLimiter``) keeps priorities, FIFO order and waiting
local; it asks the backend only "grant these charges now, all or nothing, or tell me
how long to wait". That question is ONE call, :meth:`LimiterBackend.attempt`, so a
Redis backend answers it with ONE Lua script round trip.

Rules every backend follows (the contract tests check them):

- ``attempt(charges, scopes)``:
  1. If any of ``scopes`` is frozen at the backend's ``now``, nothing is granted:
     ``Attempt(granted=False, wait=until - now, pool=None, frozen_until=until)`` with
     ``until`` the latest freeze end among those scopes (Unix seconds).
  2. Otherwise, per charge, drop the pool's entries that left the window (an entry
     granted at ``t`` counts while ``now < t + window``; the window is half-open) and
     compute ``excess = used + cost - cap``. If any excess is positive, nothing is
     granted: ``wait`` is, for the worst pool, the seconds until enough of its oldest
     entries expire to cover the excess; ``pool`` names that pool.
  3. Otherwise every charge is recorded at ``now`` (``cost`` units in ``pool``, expiring
     at ``now + window``) and ``GRANTED`` (``granted=True, wait=0.0``) is returned.
  The limiter guarantees: pools appear at most once per call, ``1 <= cost <= cap``,
  ``window > 0``, and one pool name always comes with the same ``window``.
- ``freeze(scope, until)``: nothing listing ``scope`` is granted before ``until``
  (Unix seconds). A freeze never shortens an existing one.
- ``usage()``: units now inside each known pool's window.
- ``close()``: idempotent.
- Time: the backend reads its own clock (the Redis backend uses the server's
  ``TIME`` so every process agrees); ``wait`` is relative seconds, ``frozen_until``
  absolute Unix seconds.

    >>> backend = MemoryBackend()
    >>> charge = Charge(pool="rest_public", cost=1, cap=2, window=60.0)
    >>> [backend.attempt([charge], ["ip"]).granted for _ in range(3)]
    [True, True, False]
    >>> backend.usage()["rest_public"]
    2
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from aimax import _clock
from aimax.ratelimit._window import GRANTED, Attempt, Charge, WindowCore

__all__ = ["GRANTED", "Attempt", "Charge", "LimiterBackend", "MemoryBackend"]


@runtime_checkable
class LimiterBackend(Protocol):
    """Where the budget lives: the in-memory one here, or Redis for several processes."""

    def attempt(self, charges: Sequence[Charge], scopes: Sequence[str]) -> Attempt:
        """Grant all ``charges`` now (all or nothing) unless a scope is frozen."""
        ...

    async def attempt_async(self, charges: Sequence[Charge], scopes: Sequence[str]) -> Attempt:
        """The asyncio flavour of :meth:`attempt` (same rules)."""
        ...

    def freeze(self, scope: str, until: float) -> None:
        """Grant nothing of ``scope`` before ``until`` (Unix seconds); never shortens."""
        ...

    async def freeze_async(self, scope: str, until: float) -> None:
        """The asyncio flavour of :meth:`freeze`."""
        ...

    def usage(self) -> Mapping[str, int]:
        """Units now inside each known pool's window."""
        ...

    def close(self) -> None:
        """Release connections; idempotent."""
        ...


class MemoryBackend:
    """The in-process backend: a :class:`WindowCore` behind a lock.

    ``clock`` is monotonic seconds (the sliding windows); ``wall`` Unix seconds (only to
    translate freeze ends, which the outside world states in Unix time). Several
    limiters in one process may share one instance.
    """

    def __init__(
        self,
        *,
        clock: _clock.Clock | None = None,
        wall: _clock.Clock | None = None,
    ) -> None:
        self._clock: Callable[[], float] = clock if clock is not None else _clock.monotonic
        self._wall: Callable[[], float] = wall if wall is not None else _clock.wall
        self._core = WindowCore()
        self._lock = threading.Lock()
        self._closed = False

    def attempt(self, charges: Sequence[Charge], scopes: Sequence[str]) -> Attempt:
        """See :class:`LimiterBackend`."""
        with self._lock:
            answer = self._core.attempt(charges, scopes, self._clock())
        if answer.frozen_until is None:
            return answer
        # the core works in the monotonic base; report the freeze end in Unix seconds
        return Attempt(
            granted=False,
            wait=answer.wait,
            pool=None,
            frozen_until=self._wall() + answer.wait,
        )

    async def attempt_async(self, charges: Sequence[Charge], scopes: Sequence[str]) -> Attempt:
        """See :class:`LimiterBackend` (no I/O here, so it just calls :meth:`attempt`)."""
        return self.attempt(charges, scopes)

    def peek(self, charges: Sequence[Charge], scopes: Sequence[str]) -> Attempt:
        """Would :meth:`attempt` grant now? The same answer, nothing charged.

        Optional for backends: the limiter uses it, when present, for
        ``can_make_request`` (else it reads :meth:`usage`).
        """
        with self._lock:
            answer = self._core.check(charges, scopes, self._clock())
        if answer.frozen_until is None:
            return answer
        return Attempt(
            granted=False, wait=answer.wait, pool=None, frozen_until=self._wall() + answer.wait
        )

    def freeze(self, scope: str, until: float) -> None:
        """See :class:`LimiterBackend`."""
        with self._lock:
            now = self._clock()
            self._core.freeze(scope, now + (until - self._wall()))

    async def freeze_async(self, scope: str, until: float) -> None:
        """See :class:`LimiterBackend`."""
        self.freeze(scope, until)

    def usage(self) -> Mapping[str, int]:
        """See :class:`LimiterBackend`."""
        with self._lock:
            return self._core.usage(self._clock())

    def close(self) -> None:
        """Nothing to release; idempotent."""
        self._closed = True

    def __repr__(self) -> str:
        with self._lock:
            usage = dict(self._core.usage(self._clock()))
        return f"MemoryBackend(usage={usage!r})"
