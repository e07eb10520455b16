"""The pure core: the request plans, the priority queues and the decision rules.

No threads, no I/O, no clock: time is passed in as ``now``. The sync and asyncio
drivers in :mod:`aimax.ratelimit.limiter` call exactly these rules under their lock
and differ only in how they wait; the property tests drive them with a fake clock.

Rules:

- Classes (:class:`~aimax.ratelimit.config.Priority`) are served most urgent first,
  FIFO inside a class. Only a class's head waiter may try, and only when no more
  urgent class's head is waiting on one of its pools: the pool that head was short
  of at its last try (all its pools before its first try; none while it waits out a
  freeze). So a low class never takes the units a blocked high one is waiting for,
  yet it is not starved while the high one waits for another pool (an order waiting
  for the order pool does not stop market data using the IP pool).
- A new arrival may try at once under the same condition (its class queue empty and
  no more urgent head waiting on its pools); otherwise it queues.
- Reserved headroom lives in the ``cap`` of each charge (a lower class may fill only
  its share of a pool's window), so a high class finds room while a low one saturates.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

from aimax.ratelimit._window import Attempt, Charge, PoolLog, WindowCore

__all__ = ["NOT_ELIGIBLE", "Grant", "LocalCore", "Plan", "Scheduler", "Waiter"]

NOT_ELIGIBLE = Attempt(granted=False, wait=math.inf, pool=None, frozen_until=None)
"""Answer to a waiter that may not try yet (not its class's head, or a more urgent
class is waiting on one of its pools): it waits to be woken."""


class Grant(NamedTuple):
    """A granted request: its kind, cost multiplier, pair, grant time and wait.

    ``at`` is the limiter's clock reading when the units were taken (monotonic
    seconds); ``waited`` the seconds the caller spent queued.
    """

    kind: str
    cost: int
    pair: str | None
    at: float
    waited: float


class Tally:
    """What was granted and refused for one (kind, cost), whatever the pair.

    Every plan of that kind and cost counts into the same tally, so statistics read
    a few tallies (kinds x costs), not one plan per pair, and a plan evicted from
    the cache leaves nothing behind to keep. ``charges`` are the kind's own pools
    and units (not the per-pair pools).
    """

    __slots__ = ("charges", "cost", "grants", "priority", "rejections", "timeouts", "waited_grants")

    def __init__(self, *, priority: int, cost: int, charges: tuple[tuple[str, int], ...]) -> None:
        self.priority = priority
        self.cost = cost
        self.charges = charges
        self.grants = 0
        self.waited_grants = 0
        self.rejections = 0
        self.timeouts = 0


class Plan:
    """A precomputed charge plan for one (kind, cost, pair): what to take from where."""

    __slots__ = (
        "charges",
        "cost",
        "items",
        "kind",
        "one",
        "pair",
        "pools",
        "priority",
        "scopes",
        "tally",
    )

    def __init__(
        self,
        *,
        kind: str,
        priority: int,
        cost: int,
        pair: str | None,
        charges: tuple[Charge, ...],
        scopes: tuple[str, ...],
        logs: tuple[PoolLog, ...] | None = None,
        tally: Tally | None = None,
    ) -> None:
        self.kind = kind
        self.priority = priority
        self.cost = cost
        self.pair = pair
        self.charges = charges
        self.scopes = scopes
        self.pools = tuple(charge.pool for charge in charges)
        # (log, cost, cap, window) per charge, for the local fast path
        self.items: tuple[tuple[PoolLog, int, int, float], ...] = (
            tuple(
                (log, charge.cost, charge.cap, charge.window)
                for log, charge in zip(logs, charges, strict=True)
            )
            if logs is not None
            else ()
        )
        self.one = self.items[0] if len(self.items) == 1 else None
        self.tally = (
            tally
            if tally is not None
            else Tally(
                priority=priority, cost=cost, charges=tuple((c.pool, c.cost) for c in charges)
            )
        )

    def __repr__(self) -> str:
        return f"Plan(kind={self.kind!r}, cost={self.cost}, pair={self.pair!r})"


class Waiter:
    """One queued request. The driver fills ``cond`` (threads) or ``loop``/``future``."""

    __slots__ = (
        "blocks",
        "cond",
        "future",
        "loop",
        "parked",
        "plan",
        "priority",
        "queued",
        "retry_at",
        "since",
    )

    def __init__(self, plan: Plan, since: float) -> None:
        self.plan = plan
        self.blocks: tuple[str, ...] = plan.pools  # pools less urgent classes must leave
        self.priority = plan.priority
        self.since = since
        self.queued = False
        self.retry_at = since  # when its last refusal said it may try again (clock time)
        self.parked = False  # waiting to be woken (not on a timer of its own)
        self.cond: Any = None
        self.loop: Any = None
        self.future: Any = None


class Scheduler:
    """Priority classes of FIFO queues; each class head says which pools it waits on."""

    __slots__ = ("n", "queues")

    def __init__(self, classes: int = 4) -> None:
        self.queues: list[deque[Waiter]] = [deque() for _ in range(classes)]
        self.n = 0

    def _blocked(self, priority: int, pools: tuple[str, ...]) -> bool:
        queues = self.queues
        for urgent in range(priority):
            queue = queues[urgent]
            if queue:
                for pool in queue[0].blocks:
                    if pool in pools:
                        return True
        return False

    def blocker(self, waiter: Waiter) -> Waiter | None:
        """The queued waiter that keeps ``waiter`` from trying (None if it may try)."""
        queue = self.queues[waiter.priority]
        if queue and queue[0] is not waiter:
            return queue[0]
        pools = waiter.plan.pools
        for urgent in range(waiter.priority):
            other = self.queues[urgent]
            if other and any(pool in pools for pool in other[0].blocks):
                return other[0]
        return None

    def can_pass(self, plan: Plan) -> bool:
        """May a new arrival of ``plan`` try now, ahead of nobody it must respect?"""
        if self.n == 0:
            return True
        return not self.queues[plan.priority] and not self._blocked(plan.priority, plan.pools)

    def eligible(self, waiter: Waiter) -> bool:
        """May this queued waiter try now?"""
        queue = self.queues[waiter.priority]
        return (
            bool(queue)
            and queue[0] is waiter
            and not self._blocked(waiter.priority, waiter.plan.pools)
        )

    @staticmethod
    def note(waiter: Waiter, answer: Attempt) -> None:
        """Record what a refused waiter waits on (the pools it keeps from lower classes)."""
        if answer.frozen_until is not None:
            waiter.blocks = ()  # its whole scope is frozen: nothing to protect
        elif answer.pool is not None:
            waiter.blocks = (answer.pool,)
        else:
            waiter.blocks = waiter.plan.pools

    def enqueue(self, waiter: Waiter) -> None:
        """Queue ``waiter`` at the back of its class."""
        self.queues[waiter.priority].append(waiter)
        waiter.blocks = waiter.plan.pools
        waiter.queued = True
        self.n += 1

    def remove(self, waiter: Waiter) -> None:
        """Take ``waiter`` out of its queue (granted, timed out or cancelled)."""
        if not waiter.queued:
            return
        queue = self.queues[waiter.priority]
        if queue[0] is waiter:
            queue.popleft()
        else:
            queue.remove(waiter)
        waiter.queued = False
        self.n -= 1

    def heads(self) -> Iterator[Waiter]:
        """The waiters that may try now (at most one per class)."""
        for queue in self.queues:
            if queue and self.eligible(queue[0]):
                yield queue[0]

    def waiting(self, priority: int) -> int:
        """How many waiters class ``priority`` has."""
        return len(self.queues[priority])

    def all_waiters(self) -> Iterator[Waiter]:
        """Every queued waiter, most urgent class first."""
        for queue in self.queues:
            yield from queue


class LocalCore:
    """Budget (:class:`WindowCore`) plus queues (:class:`Scheduler`): the local limiter.

    >>> from aimax.ratelimit._window import Charge
    >>> core = LocalCore()
    >>> plan = core.plan(kind="k", priority=3, cost=1, pair=None,
    ...                  charges=(Charge("p", 1, 1, 10.0),), scopes=("ip",))
    >>> core.arrive(plan, 0.0).granted
    True
    >>> w = Waiter(plan, since=1.0)
    >>> core.sched.enqueue(w)
    >>> core.step(w, 1.0).wait
    9.0
    >>> core.step(w, 10.0).granted, w.queued
    (True, False)
    """

    __slots__ = ("sched", "window")

    def __init__(self, classes: int = 4) -> None:
        self.window = WindowCore()
        self.sched = Scheduler(classes)

    def plan(
        self,
        *,
        kind: str,
        priority: int,
        cost: int,
        pair: str | None,
        charges: tuple[Charge, ...],
        scopes: tuple[str, ...],
        tally: Tally | None = None,
    ) -> Plan:
        """A plan whose fast-path items point at this core's pool logs."""
        logs = tuple(self.window.log(charge.pool, charge.window) for charge in charges)
        return Plan(
            kind=kind,
            priority=priority,
            cost=cost,
            pair=pair,
            charges=charges,
            scopes=scopes,
            logs=logs,
            tally=tally,
        )

    def arrive(self, plan: Plan, now: float) -> Attempt:
        """A new request: granted now, or NOT_ELIGIBLE / a wait (the caller queues it)."""
        if not self.sched.can_pass(plan):
            return NOT_ELIGIBLE
        return self.window.attempt(plan.charges, plan.scopes, now)

    def step(self, waiter: Waiter, now: float) -> Attempt:
        """A queued waiter's try: granted (and dequeued), a wait, or NOT_ELIGIBLE.

        After a refusal the waiter may block fewer pools than before: the caller
        wakes the heads that became eligible (as after a grant)."""
        if not self.sched.eligible(waiter):
            return NOT_ELIGIBLE
        answer = self.window.attempt(waiter.plan.charges, waiter.plan.scopes, now)
        if answer.granted:
            self.sched.remove(waiter)
        else:
            self.sched.note(waiter, answer)
        return answer

    def peek(self, plan: Plan, now: float) -> Attempt:
        """Would ``plan`` pass now, ignoring the queues? Nothing is recorded."""
        return self.window.check(plan.charges, plan.scopes, now)
