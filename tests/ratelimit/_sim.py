"""A discrete-event driver for the pure core under a fake clock.

It waits exactly as the real drivers do (a waiter that may try retries after the
returned ``wait``; one that may not sleeps until woken when a waiter leaves; a
deadline removes it), but time jumps from event to event instead of passing.
"""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field

from aimax.ratelimit._core import NOT_ELIGIBLE, LocalCore, Plan, Waiter


@dataclass
class Request:
    at: float
    plan: Plan
    timeout: float | None = None  # leaves the queue after this many seconds (timeout)
    cancel_after: float | None = None  # leaves the queue after this (task cancelled)
    tag: int = 0


@dataclass
class Outcome:
    request: Request
    granted_at: float | None = None
    left_at: float | None = None  # timed out or cancelled


@dataclass
class Simulation:
    core: LocalCore
    outcomes: list[Outcome] = field(default_factory=list)
    steps: int = 0

    def run(self, requests: list[Request], until: float = math.inf) -> list[Outcome]:
        seq = itertools.count()
        heap: list[tuple[float, int, str, object]] = []
        for request in requests:
            heapq.heappush(heap, (request.at, next(seq), "arrive", request))
        waiting: dict[Waiter, Outcome] = {}
        tokens: dict[Waiter, int] = {}

        def wake_heads(now: float) -> None:
            for head in self.core.sched.heads():
                if head.parked:
                    head.parked = False
                    tokens[head] = next(seq)
                    heapq.heappush(heap, (now, tokens[head], "step", head))

        def step(waiter: Waiter, now: float) -> None:
            self.steps += 1
            answer = self.core.step(waiter, now)
            outcome = waiting[waiter]
            if answer.granted:
                outcome.granted_at = now
                del waiting[waiter]
                wake_heads(now)
            elif answer is NOT_ELIGIBLE:
                waiter.parked = True
            else:
                waiter.parked = False
                tokens[waiter] = next(seq)
                heapq.heappush(heap, (now + answer.wait, tokens[waiter], "step", waiter))
                wake_heads(now)  # it may now block fewer pools than before

        while heap:
            now, token, what, item = heapq.heappop(heap)
            if now > until:
                break
            if what == "arrive":
                assert isinstance(item, Request)
                outcome = Outcome(item)
                self.outcomes.append(outcome)
                answer = self.core.arrive(item.plan, now)
                if answer.granted:
                    outcome.granted_at = now
                    continue
                waiter = Waiter(item.plan, now)
                self.core.sched.enqueue(waiter)
                waiting[waiter] = outcome
                leave = min(
                    x if x is not None else math.inf for x in (item.timeout, item.cancel_after)
                )
                if leave < math.inf:
                    heapq.heappush(heap, (now + leave, next(seq), "leave", waiter))
                step(waiter, now)
            elif what == "step":
                assert isinstance(item, Waiter)
                if item.queued and tokens.get(item) == token:
                    step(item, now)
            else:  # leave
                assert isinstance(item, Waiter)
                if item.queued:
                    self.core.sched.remove(item)
                    waiting.pop(item).left_at = now
                    wake_heads(now)
        return self.outcomes
