"""APIRateLimiter: the sync and asyncio drivers around the pure core.

Threads and coroutines draw on ONE budget: both drivers run the same rules
(:mod:`aimax.ratelimit._core`) under one lock and differ only in how they wait.
A thread waits on its own ``Condition`` with a computed timeout (the exact moment
enough units leave the window); a coroutine awaits a future that its loop's single
timer resolves at that moment. A waiter that may not try yet (a more urgent class is
waiting on its pools, or it is not its class's head) sleeps until it is woken.

    >>> from aimax._clock import FakeClock
    >>> clock = FakeClock()
    >>> limiter = APIRateLimiter(
    ...     limits=[RateLimit(name="api", limit=2, window=1.0)],
    ...     kinds=[RequestKind(name="get", charges={"api": 1})],
    ...     clock=clock, wall=clock.time,
    ... )
    >>> limiter.acquire("get").waited, limiter.try_acquire("get").waited
    (0.0, 0.0)
    >>> limiter.can_make_request("get")
    False
    >>> clock.advance(1.0)
    >>> limiter.make_request("get")
    True
    >>> limiter.close()
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import threading
import weakref
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar, cast

from aimax import _clock
from aimax._metrics import MetricKind, MetricSample, sample_key, samples_of
from aimax.errors import (
    Banned,
    ConfigurationError,
    LimiterClosed,
    RateLimited,
    RequestTooLarge,
    WouldBlock,
)
from aimax.ratelimit._core import NOT_ELIGIBLE, Grant, LocalCore, Plan, Tally, Waiter
from aimax.ratelimit._window import Attempt, Charge
from aimax.ratelimit.backend import LimiterBackend
from aimax.ratelimit.config import DEFAULT_RESERVE, Priority, RateLimit, RequestKind
from aimax.ratelimit.feedback import BAN_STATUSES, BanEvent, header, parse_retry_after
from aimax.ratelimit.stats import (
    ClassStatistics,
    LimiterStatistics,
    PoolStatistics,
    wait_quantile,
)

__all__ = ["APIRateLimiter", "Grant", "LimitContext", "LimiterClosed"]

logger = logging.getLogger(__name__)


F = TypeVar("F", bound=Callable[..., Any])

# Grant(...) through tuple.__new__ skips NamedTuple's Python-level __new__ (hot path)
_new_grant = cast(
    "Callable[[type[Grant], tuple[str, int, str | None, float, float]], Grant]", tuple.__new__
)
_MIN_SLEEP = 1e-6
_WAIT_SAMPLES = 4096
_PRIORITIES = tuple(int(p) for p in Priority)  # 0, 1, ...: list indices too
_MAX_PLANS = 4096
_WARM_START_MAX_WINDOW = 60.0  # warm_start pre-fills windows up to a minute only


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _LoopTimer:
    """The ONE timer of an event loop: wakes each armed waiter of that loop on time."""

    __slots__ = ("at", "clock", "due", "handle", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Callable[[], float]) -> None:
        # weak: the limiter keys its timers by loop in a WeakKeyDictionary
        self.loop = weakref.ref(loop)
        self.clock = clock
        self.due: dict[Waiter, float] = {}
        self.handle: asyncio.TimerHandle | None = None
        self.at = math.inf

    def schedule(self, waiter: Waiter, at: float) -> None:
        self.due[waiter] = at
        if self.handle is None or at < self.at:
            self._arm(at)

    def discard(self, waiter: Waiter) -> None:
        self.due.pop(waiter, None)
        if not self.due and self.handle is not None:
            self.handle.cancel()
            self.handle = None
            self.at = math.inf

    def _arm(self, at: float) -> None:
        if self.handle is not None:
            self.handle.cancel()
        self.at = at
        loop = self.loop()
        if loop is None:  # pragma: no cover - a waiter keeps its loop alive
            self.handle = None
            return
        self.handle = loop.call_later(max(0.0, at - self.clock()), self._fire)

    def _fire(self) -> None:
        self.handle = None
        self.at = math.inf
        now = self.clock()
        later = math.inf
        for waiter, at in list(self.due.items()):
            if at <= now:
                del self.due[waiter]
                if waiter.future is not None:
                    _resolve(waiter.future)
            elif at < later:
                later = at
        if later < math.inf:
            self._arm(later)


class LimitContext:
    """``with limiter.limit(kind): ...`` or ``async with limiter.limit(kind): ...``."""

    __slots__ = ("_cost", "_kind", "_limiter", "_pair", "_timeout", "grant")

    def __init__(
        self,
        limiter: APIRateLimiter,
        kind: str | RequestKind,
        cost: int | None,
        pair: str | None,
        timeout: float | timedelta | None,
    ) -> None:
        self._limiter = limiter
        self._kind = kind
        self._cost = cost
        self._pair = pair
        self._timeout = timeout
        self.grant: Grant | None = None

    def __enter__(self) -> Grant:
        self.grant = self._limiter.acquire(
            self._kind, cost=self._cost, pair=self._pair, timeout=self._timeout
        )
        return self.grant

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def __aenter__(self) -> Grant:
        self.grant = await self._limiter.acquire_async(
            self._kind, cost=self._cost, pair=self._pair, timeout=self._timeout
        )
        return self.grant

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def _count(tallies: Iterable[Tally]) -> tuple[dict[str, list[int]], dict[int, list[int]]]:
    """Per pool [grants, units, rejections, timeouts] and per class the same plus the
    grants that did not wait, summed over ``tallies``."""
    pool_counts: dict[str, list[int]] = {}
    class_counts = {p: [0, 0, 0, 0, 0] for p in _PRIORITIES}
    for tally in tallies:
        grants, rejections, timeouts = tally.grants, tally.rejections, tally.timeouts
        if not (grants or rejections or timeouts):
            continue  # a kind never used
        for pool, units in tally.charges:
            row = pool_counts.get(pool)
            if row is None:
                pool_counts[pool] = [grants, grants * units, rejections, timeouts]
            else:
                row[0] += grants
                row[1] += grants * units
                row[2] += rejections
                row[3] += timeouts
        crow = class_counts[tally.priority]
        crow[0] += grants
        crow[1] += grants * tally.cost
        crow[2] += rejections
        crow[3] += timeouts
        crow[4] += grants - tally.waited_grants
    return pool_counts, class_counts


_INFO: dict[str, tuple[MetricKind, str]] = {
    "aimax_ratelimit_utilisation_ratio": ("gauge", "units in the window / pool limit"),
    "aimax_ratelimit_granted_total": ("counter", "requests granted"),
    "aimax_ratelimit_units_total": ("counter", "units granted"),
    "aimax_ratelimit_rejected_total": ("counter", "requests refused or timed out"),
    "aimax_ratelimit_wait_seconds": ("gauge", "time granted requests waited, by quantile"),
    "aimax_ratelimit_banned": ("gauge", "1 while a 429/418 freeze is on"),
    "aimax_ratelimit_bans_total": ("counter", "429/418 answers that froze a scope"),
}
"""Kind and help of every metric the limiter reports (``metric_values``)."""


class _MetricKeys:
    """The limiter's series keys, built once (``metric_values`` runs every tick)."""

    __slots__ = ("classes", "pools")

    def __init__(self, limits: Mapping[str, RateLimit], priorities: Iterable[Priority]) -> None:
        self.pools = [
            (
                name,
                limit.limit,
                tuple(sample_key(metric, {"pool": name}) for metric in tuple(_INFO)[:4]),
            )
            for name, limit in limits.items()
        ]
        self.classes = [
            (
                int(priority),
                tuple(
                    sample_key(
                        "aimax_ratelimit_wait_seconds",
                        {"priority": priority.name.lower(), "quantile": q},
                    )
                    for q in ("0.5", "0.95", "0.99")
                ),
            )
            for priority in priorities
        ]


class _ClassWaits:
    __slots__ = ("ordered", "samples", "total")

    def __init__(self) -> None:
        self.samples: deque[float] = deque(maxlen=_WAIT_SAMPLES)
        self.ordered: list[float] = []  # the same waits, kept sorted (for quantiles)
        self.total = 0

    def add(self, waited: float) -> None:
        """One more nonzero wait (limiter lock held; only on grants that waited)."""
        samples = self.samples
        ordered = self.ordered
        if len(samples) == _WAIT_SAMPLES:  # the oldest wait leaves the sample
            del ordered[bisect_left(ordered, samples[0])]
        samples.append(waited)
        insort(ordered, waited)
        self.total += 1


class APIRateLimiter:
    """Exact, weighted, prioritised rate limiting for threads and asyncio, one budget.

    ``limits`` are the pools; ``kinds`` what each request charges and its priority
    class. ``reserve`` maps a class to the share of a pool's window it may fill when a
    more urgent class also charges that pool (the most urgent class of a pool may fill
    all of it). ``warm_start`` treats that fraction of every pool whose window is at
    most a minute as already used at start, for one window: the exchange may still
    count a previous process's requests, so a restarted bot does not burst. Longer
    windows (MAX's hourly and daily connection pools) are not pre-filled: a guess
    would stall them for hours. ``max_ban`` caps any freeze a 429 asks for; a missing
    or unusable ``Retry-After`` freezes for ``default_ban``. ``pair_share``
    caps what one pair may take of a pool's window. ``backend`` holds the budget
    elsewhere (Redis); by default it lives in this process.

        >>> limiter = APIRateLimiter.for_max()
        >>> with limiter.limit("order", pair="btctwd") as grant:
        ...     grant.kind
        'order'
        >>> limiter.close()
    """

    def __init__(
        self,
        limits: Iterable[RateLimit],
        kinds: Iterable[RequestKind] | None = None,
        *,
        clock: _clock.Clock | None = None,
        wall: _clock.Clock | None = None,
        backend: LimiterBackend | None = None,
        reserve: Mapping[Priority, float] | None = None,
        warm_start: float = 0.0,
        pair_share: float | None = None,
        default_ban: float | timedelta = 60.0,
        max_ban: float | timedelta = 3600.0,
        default_kind: str | None = None,
    ) -> None:
        self._clock: Callable[[], float] = clock if clock is not None else _clock.monotonic
        self._wall: Callable[[], float] = wall if wall is not None else _clock.wall
        self._limits: dict[str, RateLimit] = {}
        for limit in limits:
            if not isinstance(limit, RateLimit):
                raise ConfigurationError(f"limits must be RateLimit objects, got {limit!r}")
            if limit.name in self._limits:
                raise ConfigurationError(f"pool {limit.name!r} is given twice")
            self._limits[limit.name] = limit
        if not self._limits:
            raise ConfigurationError("an APIRateLimiter needs at least one RateLimit")
        if kinds is None:
            kinds = [
                RequestKind(name=name, charges={name: 1}, priority=Priority.MARKET_DATA)
                for name in self._limits
            ]
        self._kinds: dict[str, RequestKind] = {}
        for kind in kinds:
            if not isinstance(kind, RequestKind):
                raise ConfigurationError(f"kinds must be RequestKind objects, got {kind!r}")
            if kind.name in self._kinds:
                raise ConfigurationError(f"request kind {kind.name!r} is given twice")
            for pool in kind.charges:
                if pool not in self._limits:
                    raise ConfigurationError(
                        f"kind {kind.name!r} charges unknown pool {pool!r} "
                        f"(pools: {sorted(self._limits)})"
                    )
            self._kinds[kind.name] = kind
        if not self._kinds:
            raise ConfigurationError("an APIRateLimiter needs at least one RequestKind")
        self._reserve = self._check_reserve(reserve)
        self._warm_start = _fraction(warm_start, "warm_start", allow_zero=True)
        self._pair_share = (
            None if pair_share is None else _fraction(pair_share, "pair_share", allow_zero=False)
        )
        self._default_ban = _clock.as_seconds(default_ban, name="default_ban")
        self._max_ban = _clock.as_seconds(max_ban, name="max_ban")
        if self._default_ban > self._max_ban:
            raise ConfigurationError(
                f"default_ban ({self._default_ban:g} s) must not exceed max_ban "
                f"({self._max_ban:g} s)"
            )
        if default_kind is None:
            default_kind = next(iter(self._kinds))
        elif default_kind not in self._kinds:
            raise ConfigurationError(f"default_kind {default_kind!r} is not a known kind")
        self._default_kind = default_kind
        # cap per (pool, class): the most urgent class charging a pool may fill it all
        self._caps: dict[tuple[str, int], int] = {}
        for pool, limit in self._limits.items():
            classes = sorted({k.priority for k in self._kinds.values() if pool in k.charges})
            for priority in Priority:
                share = 1.0 if not classes or priority <= classes[0] else self._reserve[priority]
                self._caps[pool, int(priority)] = max(
                    1, math.floor(limit.effective_limit * share + 1e-9)
                )
        self._lock = threading.Lock()
        self._core = LocalCore(len(Priority))
        self._backend = backend
        self._remote = backend is not None
        self._closed = False
        self._bans = 0
        self._frozen_spans: list[tuple[float, float]] = []  # (start, end) monotonic, merged
        self._frozen_wall: dict[str, float] = {}  # scope -> Unix end
        self._ban_listeners: list[Callable[[BanEvent], None]] = []
        self._credits: dict[Plan, int] = {}
        self._waits = [_ClassWaits() for _ in Priority]
        self._timers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopTimer] = (
            weakref.WeakKeyDictionary()
        )
        self._plans: dict[tuple[str, int, str | None], Plan] = {}
        self._fast: dict[str, Plan] = {}
        # the counters, per (kind, cost): shared by that kind's plans for every pair
        self._tallies: dict[tuple[str, int], Tally] = {}
        self._metric_keys: _MetricKeys | None = None
        for name in self._kinds:
            self._fast[name] = self._plan(name, None, None)
        now = self._clock()
        if self._warm_start and not self._remote:
            for limit in self._limits.values():
                if limit.seconds > _WARM_START_MAX_WINDOW:
                    continue
                units = math.floor(limit.effective_limit * self._warm_start + 1e-9)
                self._core.window.prefill(limit.name, limit.seconds, units, now)
        self._created = now
        # 0 while the lock-free fast path applies: no waiters, no freeze, local, open
        self._slow = self._remote

    # ------------------------------------------------------------------ construction

    @staticmethod
    def _check_reserve(reserve: Mapping[Priority, float] | None) -> dict[int, float]:
        merged = dict(DEFAULT_RESERVE)
        if reserve is not None:
            for key, value in reserve.items():
                try:
                    priority = Priority(key)
                except ValueError:
                    raise ConfigurationError(f"reserve: unknown priority {key!r}") from None
                merged[priority] = _fraction(value, f"reserve[{priority.name}]", allow_zero=False)
        return {int(p): share for p, share in merged.items()}

    @classmethod
    def for_max(
        cls,
        share: float = 1.0,
        *,
        headroom: float = 0.95,
        warm_start: float = 0.5,
        private_counts_against_ip: bool = False,
        pair_share: float | None = None,
        reserve: Mapping[Priority, float] | None = None,
        clock: _clock.Clock | None = None,
        wall: _clock.Clock | None = None,
        backend: LimiterBackend | None = None,
        default_ban: float | timedelta = 60.0,
        max_ban: float | timedelta = 3600.0,
    ) -> APIRateLimiter:
        """The MAX profile: its documented pools and kinds (see :mod:`.max_profile`).

        ``share`` is this process's part of the IP/account quota (0.5 for two bots).
        """
        from aimax.ratelimit.max_profile import max_kinds, max_limits

        share = _fraction(share, "share", allow_zero=False)
        return cls(
            max_limits(share=share, headroom=headroom),
            max_kinds(private_counts_against_ip=private_counts_against_ip),
            clock=clock,
            wall=wall,
            backend=backend,
            reserve=reserve,
            warm_start=warm_start,
            pair_share=pair_share,
            default_ban=default_ban,
            max_ban=max_ban,
            default_kind="market_data",
        )

    def _kind_of(self, kind: str | RequestKind) -> RequestKind:
        if isinstance(kind, RequestKind):
            known = self._kinds.get(kind.name)
            if known is None or known != kind:
                raise ConfigurationError(f"request kind {kind.name!r} is not one of this limiter's")
            return known
        found = self._kinds.get(kind) if isinstance(kind, str) else None
        if found is None:
            raise ConfigurationError(
                f"unknown request kind {kind!r} (known: {sorted(self._kinds)})"
            )
        return found

    def _plan(self, kind: str | RequestKind, cost: int | None, pair: str | None) -> Plan:
        spec = self._kind_of(kind)
        if cost is None:
            cost = 1
        elif isinstance(cost, bool) or not isinstance(cost, int) or cost <= 0:
            raise ConfigurationError(f"cost must be a positive integer, got {cost!r}")
        if pair is not None and (not isinstance(pair, str) or not pair):
            raise ConfigurationError(f"pair must be a non-empty string, got {pair!r}")
        key = (spec.name, cost, pair)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        priority = int(spec.priority)
        charges: list[Charge] = []
        for pool, units in spec.charges.items():
            limit = self._limits[pool]
            total = units * cost
            cap = self._caps[pool, priority]
            if total > cap:
                raise RequestTooLarge(
                    f"kind {spec.name!r} with cost {cost} takes {total} units of pool "
                    f"{pool!r}, more than the {cap} its class may ever hold (limit "
                    f"{limit.limit}): it could never be granted",
                    pool=pool,
                    cost=total,
                    limit=cap,
                )
            charges.append(Charge(pool=pool, cost=total, cap=cap, window=limit.seconds))
            if pair is not None and self._pair_share is not None:
                pair_cap = min(
                    cap, max(1, math.floor(limit.effective_limit * self._pair_share + 1e-9))
                )
                if total > pair_cap:
                    raise RequestTooLarge(
                        f"kind {spec.name!r} with cost {cost} takes {total} units of pool "
                        f"{pool!r}, more than the {pair_cap} one pair may hold",
                        pool=f"{pool}[{pair}]",
                        cost=total,
                        limit=pair_cap,
                    )
                charges.append(
                    Charge(pool=f"{pool}[{pair}]", cost=total, cap=pair_cap, window=limit.seconds)
                )
        with self._lock:
            plan = self._plans.get(key)
            if plan is None:
                if len(self._plans) >= _MAX_PLANS:
                    self._evict_plans()
                tally = self._tallies.get((spec.name, cost))
                if tally is None:
                    own = tuple((pool, units * cost) for pool, units in spec.charges.items())
                    tally = Tally(priority=priority, cost=cost, charges=own)
                    self._tallies[spec.name, cost] = tally
                plan = self._core.plan(
                    kind=spec.name,
                    priority=priority,
                    cost=cost,
                    pair=pair,
                    charges=tuple(charges),
                    scopes=(spec.scope,),
                    tally=tally,
                )
                self._plans[key] = plan
        return plan

    def _evict_plans(self) -> None:
        # lock held: keep the default plans, drop the others (their counts live on in
        # the tallies they share)
        keep = set(map(id, self._fast.values()))
        for key, plan in list(self._plans.items()):
            if id(plan) not in keep:
                del self._plans[key]

    # ----------------------------------------------------------------- acquire (sync)

    def acquire(
        self,
        kind: str | RequestKind,
        *,
        cost: int | None = None,
        pair: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> Grant:
        """Take a slot for ``kind`` (``cost`` times its charges), waiting if needed.

        Raises :class:`~aimax.errors.RateLimited` when no slot comes within
        ``timeout`` seconds (at once if the wait is known to be longer),
        :class:`~aimax.errors.Banned` when a freeze lasts beyond it.

            >>> limiter = APIRateLimiter.for_max()
            >>> limiter.acquire("cancel").kind
            'cancel'
            >>> limiter.close()
        """
        plan = (
            self._fast.get(kind) if (cost is None and pair is None and type(kind) is str) else None
        )
        if plan is None:
            plan = self._plan(kind, cost, pair)
        if timeout is not None:
            timeout = _clock.as_seconds(timeout, name="timeout", allow_zero=True, allow_inf=True)
        with self._lock:
            now = self._clock()
            if not self._slow:
                grant = self._grant_now_locked(plan, now)
                if grant is not None:
                    return grant
            return self._acquire_locked(plan, now, self._deadline(timeout, now), blocking=True)

    def _grant_now_locked(self, plan: Plan, now: float) -> Grant | None:
        """The fast path (lock held, nobody waiting): grant ``plan`` now if every pool
        has room, else None. One pool, the common case, is kept flat."""
        one = plan.one
        if one is not None:
            log, units, cap, window = one
            entries = log.entries
            if entries and entries[0][0] <= now:
                log.expire(now)
            if log.used + units > cap:
                return None
            entries.append((now + window, units))
            log.used += units
        else:
            for log, units, cap, _ in plan.items:
                entries = log.entries
                if entries and entries[0][0] <= now:
                    log.expire(now)
                if log.used + units > cap:
                    return None
            for log, units, _, window in plan.items:
                log.entries.append((now + window, units))
                log.used += units
        plan.tally.grants += 1
        return _new_grant(Grant, (plan.kind, plan.cost, plan.pair, now, 0.0))

    def try_acquire(
        self, kind: str | RequestKind, *, cost: int | None = None, pair: str | None = None
    ) -> Grant:
        """Take a slot now or raise :class:`~aimax.errors.WouldBlock` (or ``Banned``).

        >>> limiter = APIRateLimiter.for_max()
        >>> limiter.try_acquire("account").waited
        0.0
        >>> limiter.close()
        """
        plan = (
            self._fast.get(kind) if (cost is None and pair is None and type(kind) is str) else None
        )
        if plan is None:
            plan = self._plan(kind, cost, pair)
        with self._lock:
            now = self._clock()
            return self._acquire_locked(plan, now, now, blocking=False)

    @staticmethod
    def _deadline(timeout: float | timedelta | None, now: float) -> float:
        if timeout is None:
            return math.inf
        return now + _clock.as_seconds(timeout, name="timeout", allow_zero=True, allow_inf=True)

    def _granted(self, plan: Plan, now: float, since: float) -> Grant:
        # lock held
        plan.tally.grants += 1
        waited = now - since
        if waited > 0.0:
            plan.tally.waited_grants += 1
            self._waits[plan.priority].add(waited)
        return _new_grant(Grant, (plan.kind, plan.cost, plan.pair, now, waited))

    def _attempt_locked(self, plan: Plan, now: float) -> Attempt:
        """One try for ``plan`` at ``now`` (lock held; released around a remote call)."""
        window = self._core.window
        if not self._remote:
            return window.attempt(plan.charges, plan.scopes, now)
        until = window.frozen_until(plan.scopes, now)
        if until is not None:
            return Attempt(granted=False, wait=until - now, pool=None, frozen_until=until)
        backend = cast(LimiterBackend, self._backend)
        self._lock.release()
        try:
            return backend.attempt(plan.charges, plan.scopes)
        finally:
            self._lock.acquire()

    def _step_locked(self, waiter: Waiter, now: float) -> Attempt:
        sched = self._core.sched
        if not sched.eligible(waiter):
            return NOT_ELIGIBLE
        answer = self._attempt_locked(waiter.plan, now)
        if answer.granted:
            sched.remove(waiter)
        elif waiter.queued:
            sched.note(waiter, answer)
        self._wake_heads()  # the next head, or lower classes it no longer blocks
        return answer

    def _acquire_locked(self, plan: Plan, now: float, deadline: float, *, blocking: bool) -> Grant:
        """The slow path (lock held): queue, wait for the turn and the slot, or fail."""
        if self._closed:
            raise LimiterClosed("the rate limiter is closed")
        sched = self._core.sched
        if not blocking:
            if sched.can_pass(plan):
                answer = self._attempt_locked(plan, now)
                if answer.granted:
                    self._refresh_slow()
                    return self._granted(plan, now, now)
            else:
                answer = self._peek(plan, now)
                if answer.granted:  # free units, but earlier waiters come first
                    answer = Attempt(granted=False, wait=0.0, pool=plan.pools[0])
            plan.tally.rejections += 1
            raise self._failure(plan, answer, now, would_block=True)
        since = now
        if self._remote and sched.can_pass(plan):
            # uncontended over a remote backend: one round trip, no queue entry
            answer = self._attempt_locked(plan, now)
            now = self._clock()  # after the round trip: when the caller may send
            if answer.granted:
                return self._granted(plan, now, since)
            if answer.frozen_until is not None and now + answer.wait > deadline:
                plan.tally.timeouts += 1
                raise self._failure(plan, answer, now, would_block=False)
        waiter = Waiter(plan, since)
        waiter.cond = threading.Condition(self._lock)
        sched.enqueue(waiter)
        self._slow = True
        try:
            while True:
                answer = self._step_locked(waiter, now)
                if self._remote:
                    now = self._clock()  # the lock was released for the round trip
                if answer.granted:
                    self._refresh_slow()
                    return self._granted(plan, now, waiter.since)
                wake_at = self._plan_wait(waiter, answer, now, deadline)
                waiter.parked = answer is NOT_ELIGIBLE
                if wake_at == math.inf:
                    waiter.cond.wait()
                else:
                    waiter.cond.wait(max(_MIN_SLEEP, wake_at - now))
                waiter.parked = False
                if self._closed:
                    raise LimiterClosed("the rate limiter was closed while waiting")
                now = self._clock()
        except BaseException:
            if waiter.queued:
                sched.remove(waiter)
                self._wake_heads()
            self._refresh_slow()
            raise

    def _plan_wait(self, waiter: Waiter, answer: Attempt, now: float, deadline: float) -> float:
        """When to wake next (clock time); raises when the deadline cannot be met."""
        if answer is NOT_ELIGIBLE:
            if now >= deadline:
                waiter.plan.tally.timeouts += 1
                raise self._queued_timeout(waiter, now)
            return deadline
        retry_at = now + max(answer.wait, _MIN_SLEEP)
        if retry_at > deadline:
            waiter.plan.tally.timeouts += 1
            raise self._failure(waiter.plan, answer, now, would_block=False)
        waiter.retry_at = retry_at
        return retry_at

    def _queued_timeout(self, waiter: Waiter, now: float) -> RateLimited:
        """The timeout of a waiter that never got its turn: name what it waited behind."""
        own = self._peek(waiter.plan, now)
        blocker = self._core.sched.blocker(waiter)
        if blocker is None or not own.granted:
            return self._timeout(waiter.plan, own, now)
        # its own pools have room: it waits for the request ahead to be granted first,
        # which cannot happen before that request's own next try
        pool = next((p for p in blocker.blocks if p in waiter.plan.pools), waiter.plan.pools[0])
        latest, seen = blocker.retry_at, {id(waiter)}
        ahead: Waiter | None = blocker
        while ahead is not None and id(ahead) not in seen:  # that one may wait too
            seen.add(id(ahead))
            latest = max(latest, ahead.retry_at)
            ahead = self._core.sched.blocker(ahead)
        retry = max(0.0, latest - now)
        return RateLimited(
            f"no slot for {waiter.plan.kind!r} within the timeout: queued behind an "
            f"earlier {blocker.plan.kind!r} request waiting for pool {pool!r} "
            f"(its next try in {retry:.3f} s)",
            retry_after=retry,
            pool=pool,
        )

    def _peek(self, plan: Plan, now: float) -> Attempt:
        if self._remote:
            until = self._core.window.frozen_until(plan.scopes, now)
            if until is not None:
                return Attempt(granted=False, wait=until - now, pool=None, frozen_until=until)
            return Attempt(granted=True, wait=0.0)
        return self._core.peek(plan, now)

    def _failure(self, plan: Plan, answer: Attempt, now: float, *, would_block: bool) -> Exception:
        if answer.frozen_until is not None:
            until = self._wall() + answer.wait
            return Banned(
                f"{plan.kind!r} is frozen by the exchange for {answer.wait:.3f} s more",
                until=until,
                retry_after=answer.wait,
                scope=plan.scopes[0],
                pool=None,
            )
        retry = 0.0 if answer.wait == math.inf else max(0.0, answer.wait)
        if would_block:
            return WouldBlock(
                f"no slot now for {plan.kind!r} (pool {answer.pool!r}, free in {retry:.3f} s)",
                retry_after=retry,
                pool=answer.pool,
            )
        return self._timeout(plan, answer, now)

    @staticmethod
    def _timeout(plan: Plan, answer: Attempt, now: float) -> RateLimited:
        retry = 0.0 if answer.wait == math.inf else max(0.0, answer.wait)
        return RateLimited(
            f"no slot for {plan.kind!r} within the timeout (pool {answer.pool!r}, "
            f"free in {retry:.3f} s at the earliest)",
            retry_after=retry,
            pool=answer.pool,
        )

    def _wake_heads(self) -> None:
        """Wake the parked waiters that may try now (lock held)."""
        for head in self._core.sched.heads():
            if head.parked:
                head.parked = False
                self._wake(head)

    @staticmethod
    def _wake(waiter: Waiter) -> None:
        if waiter.cond is not None:
            waiter.cond.notify()
        elif waiter.future is not None:
            try:
                waiter.loop.call_soon_threadsafe(_resolve, waiter.future)
            except RuntimeError:  # the waiter's loop is closed: nobody to wake
                logger.debug("cannot wake a waiter: its event loop is closed")

    def _refresh_slow(self) -> None:
        # lock held; drop finished freezes so the fast path comes back after a ban
        frozen = self._core.window.frozen
        if frozen:
            now = self._clock()
            for scope in [s for s, until in frozen.items() if until <= now]:
                del frozen[scope]
        self._slow = bool(self._remote or self._closed or self._core.sched.n or frozen)

    # ---------------------------------------------------------------- acquire (async)

    async def acquire_async(
        self,
        kind: str | RequestKind,
        *,
        cost: int | None = None,
        pair: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> Grant:
        """The asyncio flavour of :meth:`acquire`: same budget, same queues.

        Cancelling the awaiting task leaves the queue and the accounting exact.
        """
        plan = (
            self._fast.get(kind) if (cost is None and pair is None and type(kind) is str) else None
        )
        if plan is None:
            plan = self._plan(kind, cost, pair)
        if timeout is not None:
            timeout = _clock.as_seconds(timeout, name="timeout", allow_zero=True, allow_inf=True)
        with self._lock:
            now = self._clock()
            if not self._slow:
                grant = self._grant_now_locked(plan, now)
                if grant is not None:
                    return grant
            if self._closed:
                raise LimiterClosed("the rate limiter is closed")
            deadline = self._deadline(timeout, now)
            loop = asyncio.get_running_loop()
            waiter = Waiter(plan, now)
            waiter.loop = loop
            self._core.sched.enqueue(waiter)
            self._slow = True
            timer = self._timers.get(loop)
            if timer is None:
                timer = self._timers[loop] = _LoopTimer(loop, self._clock)
        try:
            while True:
                if self._remote:
                    answer = await self._step_remote_async(waiter)
                with self._lock:
                    now = self._clock()
                    if self._closed:
                        raise LimiterClosed("the rate limiter was closed while waiting")
                    if not self._remote:
                        answer = self._step_locked(waiter, now)
                    if answer.granted:
                        self._refresh_slow()
                        return self._granted(plan, now, waiter.since)
                    wake_at = self._plan_wait(waiter, answer, now, deadline)
                    future: asyncio.Future[None] = loop.create_future()
                    waiter.future = future
                    waiter.parked = answer is NOT_ELIGIBLE
                if wake_at != math.inf:
                    timer.schedule(waiter, wake_at)
                try:
                    await future
                finally:
                    timer.discard(waiter)
                    waiter.future = None
        except BaseException:
            with self._lock:
                if waiter.queued:
                    self._core.sched.remove(waiter)
                    self._wake_heads()
                self._refresh_slow()
            raise

    async def _step_remote_async(self, waiter: Waiter) -> Attempt:
        with self._lock:
            now = self._clock()
            if not self._core.sched.eligible(waiter):
                return NOT_ELIGIBLE
            until = self._core.window.frozen_until(waiter.plan.scopes, now)
            if until is not None:
                return Attempt(granted=False, wait=until - now, pool=None, frozen_until=until)
        backend = cast(LimiterBackend, self._backend)
        answer = await backend.attempt_async(waiter.plan.charges, waiter.plan.scopes)
        with self._lock:
            if answer.granted:
                self._core.sched.remove(waiter)
            elif waiter.queued:
                self._core.sched.note(waiter, answer)
            self._wake_heads()
        return answer

    # ------------------------------------------------------------ Pythonic sugar

    def limit(
        self,
        kind: str | RequestKind,
        *,
        cost: int | None = None,
        pair: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> LimitContext:
        """A context manager for ``with`` and ``async with`` that takes a slot on entry.

        >>> limiter = APIRateLimiter.for_max()
        >>> with limiter.limit("market_data", pair="btctwd"):
        ...     pass
        >>> limiter.close()
        """
        return LimitContext(self, kind, cost, pair, timeout)

    def limited(
        self, kind: str | RequestKind, *, cost: int | None = None, timeout: float | None = None
    ) -> Callable[[F], F]:
        """Decorate a function (sync or ``async def``) to take a slot before each call.

        >>> limiter = APIRateLimiter.for_max()
        >>> @limiter.limited("account")
        ... def balances() -> str:
        ...     return "ok"
        >>> balances()
        'ok'
        >>> limiter.close()
        """
        self._plan(kind, cost, None)  # validate now, not at the first call

        def decorate(func: F) -> F:
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    await self.acquire_async(kind, cost=cost, timeout=timeout)
                    return await func(*args, **kwargs)

                return cast(F, async_wrapper)

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                self.acquire(kind, cost=cost, timeout=timeout)
                return func(*args, **kwargs)

            return cast(F, wrapper)

        return decorate

    # ------------------------------------------------------------------- seed API

    def can_make_request(
        self,
        kind: str | RequestKind | None = None,
        *,
        cost: int | None = None,
        pair: str | None = None,
    ) -> bool:
        """Would a request of ``kind`` pass now? Takes nothing (seed API).

        Over a remote backend this asks the backend (its optional ``peek(charges,
        scopes)``, else its ``usage()``: one round trip); another process may still take
        the slot before this one uses it.
        """
        plan = self._plan(kind if kind is not None else self._default_kind, cost, pair)
        with self._lock:
            if self._credits.get(plan):
                return True
            if self._closed or not self._core.sched.can_pass(plan):
                return False
            answer = self._peek(plan, self._clock())
            if not answer.granted or not self._remote:
                return answer.granted
        backend = cast(LimiterBackend, self._backend)
        peek = getattr(backend, "peek", None)  # optional: a backend may answer exactly
        if callable(peek):
            return bool(peek(plan.charges, plan.scopes).granted)
        usage = backend.usage()
        return all(usage.get(c.pool, 0) + c.cost <= c.cap for c in plan.charges)

    def make_request(
        self,
        kind: str | RequestKind | None = None,
        *,
        cost: int | None = None,
        pair: str | None = None,
    ) -> bool:
        """Record a request of ``kind`` if a slot is free now (seed API).

        Uses the slot a previous :meth:`wait_for_slot` reserved, if any; otherwise takes
        one without waiting. Returns False (and records nothing) when none is free.
        """
        plan = self._plan(kind if kind is not None else self._default_kind, cost, pair)
        with self._lock:
            credits = self._credits.get(plan, 0)
            if credits:
                if credits == 1:
                    del self._credits[plan]
                else:
                    self._credits[plan] = credits - 1
                return True
        try:
            self.try_acquire(plan.kind, cost=plan.cost, pair=plan.pair)
        except (WouldBlock, Banned):
            return False
        return True

    def wait_for_slot(
        self,
        kind: str | RequestKind | None = None,
        *,
        timeout: float | timedelta | None = None,
        cost: int | None = None,
        pair: str | None = None,
    ) -> bool:
        """Wait until a slot of ``kind`` is free and reserve it (seed API).

        The next :meth:`make_request` of the same kind uses the reserved slot, so the
        seed pattern ``wait_for_slot(); make_request()`` charges once and cannot lose
        the slot to another thread. Returns False on timeout (or a longer ban).
        """
        plan = self._plan(kind if kind is not None else self._default_kind, cost, pair)
        try:
            self.acquire(plan.kind, cost=plan.cost, pair=plan.pair, timeout=timeout)
        except RateLimited:
            return False
        with self._lock:
            self._credits[plan] = self._credits.get(plan, 0) + 1
        return True

    def get_stats(self) -> dict[str, Any]:
        """The statistics as plain dicts (seed API); see :meth:`statistics`."""
        stats = self.statistics()
        return {
            "pools": {name: _asdict(p) for name, p in stats.pools.items()},
            "classes": {name: _asdict(c) for name, c in stats.classes.items()},
            "frozen": dict(stats.frozen),
            "bans": stats.bans,
            "time_frozen": stats.time_frozen,
            "waiting": stats.waiting,
            "backend": stats.backend,
        }

    # ------------------------------------------------------------- server feedback

    def add_ban_listener(self, callback: Callable[[BanEvent], None]) -> None:
        """Call ``callback(BanEvent)`` whenever a scope gets frozen."""
        with self._lock:
            self._ban_listeners.append(callback)

    def on_response(
        self,
        status: int | str,
        headers: Mapping[str, str] | None = None,
        *,
        kind: str | RequestKind | None = None,
    ) -> BanEvent | None:
        """Feed a response back: 429 / 418 freeze the scope until ``Retry-After``.

        ``Retry-After`` may be an absolute Unix timestamp (MAX), seconds, or an HTTP
        date; missing, unusable or already past (clock skew: the 429 says we ARE
        banned), the freeze lasts ``default_ban`` seconds. A freeze longer than
        ``max_ban`` (default one hour) is capped to it with an error in the log, so a
        wrong header can never lock out cancels for days. ``status`` may be an int or a
        numeric string. Without ``kind`` every scope is frozen. Returns the
        :class:`BanEvent`, or None.

            >>> limiter = APIRateLimiter.for_max()
            >>> event = limiter.on_response(429, {"Retry-After": "30"}, kind="order")
            >>> event.scope, round(event.retry_after)
            ('ip', 30)
            >>> limiter.can_make_request("order")
            False
            >>> limiter.close()
        """
        code = _status_code(status)
        if code not in BAN_STATUSES:
            return None
        status = code
        if kind is not None:
            scopes = [self._kind_of(kind).scope]
            kind_name: str | None = self._kind_of(kind).name
        else:
            scopes = sorted({k.scope for k in self._kinds.values()})
            kind_name = None
        wall_now = self._wall()
        until = parse_retry_after(
            header(headers, "Retry-After"), now=wall_now, default=self._default_ban
        )
        if until <= wall_now:
            # The exchange said 429, so we ARE banned: a Retry-After already past by our
            # clock means the clocks disagree, not that the ban is over. Sending now
            # would restart the penalty, so freeze for the default ban instead.
            logger.warning(
                "HTTP %d with a Retry-After %.3f s in the past (clock skew?): freezing "
                "for the default %.1f s",
                status,
                wall_now - until,
                self._default_ban,
            )
            until = wall_now + self._default_ban
        elif until - wall_now > self._max_ban:
            # A freeze this long would refuse even cancels for hours (and, over Redis,
            # every restarted process too): cap it, loudly.
            logger.error(
                "HTTP %d with Retry-After %r asks for a %.0f s freeze, beyond max_ban: "
                "freezing for %.0f s instead",
                status,
                header(headers, "Retry-After"),
                until - wall_now,
                self._max_ban,
            )
            until = wall_now + self._max_ban
        events = []
        with self._lock:
            now = self._clock()
            mono_until = now + (until - wall_now)
            for scope in scopes:
                self._core.window.freeze(scope, mono_until)
                self._frozen_wall[scope] = max(self._frozen_wall.get(scope, 0.0), until)
            self._bans += 1
            self._add_frozen_span(now, mono_until)
            self._slow = True
            listeners = list(self._ban_listeners)
            for scope in scopes:
                events.append(
                    BanEvent(
                        scope=scope,
                        until=until,
                        retry_after=until - wall_now,
                        status=status,
                        kind=kind_name,
                    )
                )
        logger.warning(
            "HTTP %d: freezing scope(s) %s for %.1f s (until Unix %.3f)",
            status,
            ",".join(scopes),
            until - wall_now,
            until,
        )
        if self._backend is not None:
            for scope in scopes:
                self._backend.freeze(scope, until)
        for event in events:
            for callback in listeners:
                try:
                    callback(event)
                except Exception:
                    logger.exception("ban listener %r failed", callback)
        return events[0]

    def _add_frozen_span(self, start: float, end: float) -> None:
        spans = self._frozen_spans
        if spans and start <= spans[-1][1]:
            last = spans[-1]
            spans[-1] = (last[0], max(last[1], end))
        else:
            spans.append((start, end))
            if len(spans) > 1024:
                # fold old spans into one total-preserving span far in the past
                total = sum(e - s for s, e in spans[:-1])
                spans[:-1] = [(-total - 1e12, -1e12)]

    # --------------------------------------------------------------- observability

    def statistics(self) -> LimiterStatistics:
        """A frozen snapshot: per pool and per class counters, waits, freezes."""
        with self._lock:
            now = self._clock()
            wall_now = self._wall()
            tallies = list(self._tallies.values())
            usage = dict(self._core.window.usage(now)) if not self._remote else {}
            waiting = [self._core.sched.waiting(int(p)) for p in Priority]
            frozen = {s: u for s, u in self._frozen_wall.items() if u > wall_now}
            time_frozen = sum(max(0.0, min(end, now) - start) for start, end in self._frozen_spans)
            bans = self._bans
        if self._remote:
            usage = self._remote_usage()
        pool_counts, class_counts = _count(tallies)
        pools: dict[str, PoolStatistics] = {}
        for name, limit in self._limits.items():
            row = pool_counts.get(name, [0, 0, 0, 0])
            used = usage.get(name, 0)
            pools[name] = PoolStatistics(
                name=name,
                limit=limit.limit,
                effective_limit=limit.effective_limit,
                window=limit.seconds,
                in_window=used,
                utilisation=used / limit.limit,
                grants=row[0],
                units=row[1],
                rejections=row[2],
                timeouts=row[3],
            )
        classes: dict[str, ClassStatistics] = {}
        quantiles = self._class_quantiles([class_counts[p][4] for p in _PRIORITIES])
        for priority in Priority:
            crow = class_counts[int(priority)]
            p50, p95, p99 = quantiles[int(priority)]
            classes[priority.name.lower()] = ClassStatistics(
                name=priority.name.lower(),
                grants=crow[0],
                units=crow[1],
                rejections=crow[2],
                timeouts=crow[3],
                waiting=waiting[int(priority)],
                wait_p50=p50,
                wait_p95=p95,
                wait_p99=p99,
            )
        return LimiterStatistics(
            pools=pools,
            classes=classes,
            frozen=frozen,
            bans=bans,
            time_frozen=time_frozen,
            waiting=sum(waiting),
            backend=type(self._backend).__name__ if self._backend is not None else "local",
        )

    def _class_quantiles(self, zeros: Sequence[int]) -> list[tuple[float, float, float]]:
        """p50, p95, p99 of each class's waits, ``zeros[p]`` grants having waited for nothing."""
        out: list[tuple[float, float, float]] = []
        with self._lock:  # the waits are kept sorted: three look-ups per class, no sort
            for waits, zero in zip(self._waits, zeros, strict=True):
                ordered, total = waits.ordered, waits.total
                out.append(
                    (
                        wait_quantile(0.50, zero, ordered, total, ordered=True),
                        wait_quantile(0.95, zero, ordered, total, ordered=True),
                        wait_quantile(0.99, zero, ordered, total, ordered=True),
                    )
                )
        return out

    def metric_values(self) -> dict[str, float]:
        """The figures of :meth:`metric_samples` by series key, without sample objects."""
        keys = self._metric_keys
        if keys is None:
            keys = self._metric_keys = _MetricKeys(self._limits, Priority)
        with self._lock:
            now = self._clock()
            wall_now = self._wall()
            tallies = list(self._tallies.values())
            usage = self._core.window.usage(now) if not self._remote else {}
            banned = any(u > wall_now for u in self._frozen_wall.values())
            bans = self._bans
        if self._remote:
            usage = self._remote_usage()
        pool_counts, class_counts = _count(tallies)
        out: dict[str, float] = {}
        empty = (0, 0, 0, 0)
        for name, limit, (k_util, k_granted, k_units, k_rejected) in keys.pools:
            row = pool_counts.get(name, empty)
            out[k_util] = usage.get(name, 0) / limit
            out[k_granted] = float(row[0])
            out[k_units] = float(row[1])
            out[k_rejected] = float(row[2] + row[3])
        quantiles = self._class_quantiles([class_counts[p][4] for p in _PRIORITIES])
        for priority, class_keys in keys.classes:
            for key, value in zip(class_keys, quantiles[priority], strict=True):
                out[key] = value
        out["aimax_ratelimit_banned"] = 1.0 if banned else 0.0
        out["aimax_ratelimit_bans_total"] = float(bans)
        return out

    def _remote_usage(self) -> dict[str, int]:
        try:
            return dict(cast(LimiterBackend, self._backend).usage())
        except Exception:
            logger.exception("could not read the backend's usage")
            return {}

    def metric_samples(self) -> Sequence[MetricSample]:
        """The monitor's view, with the metric names of the project's contract."""
        return samples_of(self.metric_values(), _INFO)

    def usage(self) -> Mapping[str, int]:
        """Units now inside each pool's window."""
        if self._remote:
            return cast(LimiterBackend, self._backend).usage()
        with self._lock:
            return dict(self._core.window.usage(self._clock()))

    @property
    def pools(self) -> Mapping[str, RateLimit]:
        """The configured pools by name."""
        return dict(self._limits)

    @property
    def kinds(self) -> Mapping[str, RequestKind]:
        """The configured request kinds by name."""
        return dict(self._kinds)

    def cap(self, pool: str, priority: Priority) -> int:
        """Units class ``priority`` may fill in ``pool``'s window."""
        if pool not in self._limits:
            raise ConfigurationError(f"unknown pool {pool!r}")
        return self._caps[pool, int(Priority(priority))]

    # -------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Wake every waiter with :class:`LimiterClosed`; idempotent.

        A backend passed in is not closed (its owner closes it).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._slow = True
            for waiter in list(self._core.sched.all_waiters()):
                self._wake(waiter)

    def __enter__(self) -> APIRateLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> APIRateLimiter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        with self._lock:
            now = self._clock()
            usage = dict(self._core.window.usage(now)) if not self._remote else {}
            waiting = self._core.sched.n
            frozen = sorted(s for s, u in self._core.window.frozen.items() if u > now)
        parts = ", ".join(
            f"{name}={usage.get(name, '?')}/{limit.effective_limit}"
            for name, limit in self._limits.items()
        )
        state = "closed" if self._closed else "open"
        return (
            f"APIRateLimiter({parts}, waiting={waiting}, frozen={frozen}, "
            f"backend={'local' if self._backend is None else type(self._backend).__name__}, "
            f"{state})"
        )


def _status_code(status: object) -> int | None:
    """An HTTP status given as int or numeric string (``429``, ``"429"``), else None."""
    if isinstance(status, bool):
        return None
    if isinstance(status, int):
        return status
    if isinstance(status, str) and status.strip().isdigit():
        return int(status.strip())
    return None


def _fraction(value: float, name: str, *, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigurationError(f"{name} must be a number in (0, 1], got {value!r}")
    low_ok = value >= 0 if allow_zero else value > 0
    if not low_ok or value > 1:
        bounds = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigurationError(f"{name} must be in {bounds}, got {value!r}")
    return float(value)


def _asdict(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}
