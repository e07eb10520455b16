"""A pure concurrency controller for one pool: Gradient2-style, time-based windows.

No threads, no clock: :meth:`ConcurrencyController.update` is given ``now`` and the
pool's cumulative counters, and answers with the size the pool should have. The
manager's autoscale thread is the thin driver that feeds it and applies its answer.

How it decides, each time it is asked (in this order):

1. **Loss** (a timeout, a 429 reported by the limiter through ``report_loss``, or a
   task failure rate at or above ``error_threshold``): multiplicative cut,
   ``limit x loss_factor``, at most once per ``loss_cooldown``.
2. **Latency gradient** (Gradient2): ``gradient = tolerance x long_rtt / short_rtt``
   over exponentially weighted windows whose time constants are seconds. When the
   short-term run time exceeds the tolerated baseline, two cases are told apart:
   the pool itself raised its concurrency in the meantime (short-term concurrency
   above the long-term one): its own load is the cause, so the limit is cut by the
   gradient (never below ``min_gradient`` per decision) and growth pauses for a
   short window; or it did not (the downstream became slower on its own, such as a
   REST endpoint answering in 100 ms instead of 20 ms): cutting would only starve
   the pool, so the baseline is re-based on the new latency instead.
3. **Demand** (Little's law, which also plays Gradient2's "queue size" growth term):
   ``arrival rate x short_rtt x (1 + headroom)`` workers keep up with the arrivals,
   plus ``queued x short_rtt / drain_time`` to clear the backlog. Growth to the
   demand is immediate; shrinking toward it is smoothed over ``shrink_window``.
4. **Budget cap** (Little's law again): with a ``rate_budget`` (tasks per second the
   downstream allows), more than ``rate_budget x short_rtt x (1 + headroom)`` workers
   could never be kept busy within the budget, so the limit never exceeds that.

Every change (and every re-basing) is recorded as a :class:`ScalingDecision` with
its reason.

    >>> from aimax.pools.config import AutoscalerConfig
    >>> c = ConcurrencyController(AutoscalerConfig(), initial=4, min_size=1, max_size=64)
    >>> c.update(0.0, Observation(submitted=0, finished=0, run_seconds=0.0))
    4
    >>> # 100 tasks/s arriving, each running 100 ms: about 10 busy workers are needed
    >>> for step in range(1, 21):
    ...     now = step * 0.2
    ...     n = int(100 * now)
    ...     limit = c.update(now, Observation(submitted=n, finished=n, run_seconds=n * 0.1))
    >>> 10 <= limit <= 14
    True
    >>> c.decisions[-1].reason
    'demand'
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from aimax.errors import ConfigurationError
from aimax.pools.config import AutoscalerConfig

__all__ = ["ConcurrencyController", "Observation", "Reason", "ScalingDecision"]

Reason = Literal["loss", "congestion", "rebase", "demand", "backlog", "idle", "cap"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Observation:
    """A pool's cumulative counters at one instant (the controller takes differences).

    ``submitted`` tasks handed to the pool so far; ``finished`` tasks that ran to an
    end; ``failed`` of those, the ones that raised; ``run_seconds`` their total run
    time; ``queued`` / ``active`` the current queue length and running tasks.
    """

    submitted: int
    finished: int
    run_seconds: float
    failed: int = 0
    queued: int = 0
    active: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class ScalingDecision:
    """One decision: when, from which limit to which, why, and the figures behind it."""

    at: float
    old: int
    new: int
    reason: Reason
    detail: str
    short_rtt: float | None
    long_rtt: float | None
    arrival_rate: float
    queued: int
    cap: int | None


def _alpha(dt: float, tau: float) -> float:
    """The weight of a new reading after ``dt`` seconds in an EWMA of time constant tau."""
    return 1.0 - math.exp(-dt / tau)


class ConcurrencyController:
    """Decides a pool's size from its counters; pure (time is passed in as ``now``).

    ``update(now, observation)`` returns the new limit (an int within
    ``[min_size, max_size]``); ``report_loss(now, reason)`` registers a loss signal
    that the next update acts on; ``decisions`` holds the most recent decisions.
    """

    def __init__(
        self,
        config: AutoscalerConfig,
        *,
        initial: int,
        min_size: int,
        max_size: int,
        history: int = 256,
    ) -> None:
        if not 1 <= min_size <= max_size or not min_size <= initial <= max_size:
            raise ConfigurationError(
                f"need 1 <= min_size <= initial <= max_size, got "
                f"min_size={min_size}, initial={initial}, max_size={max_size}"
            )
        self.config = config
        self._short = config.seconds("short_window")
        self._long = config.seconds("long_window")
        self._drain = config.seconds("drain_time")
        self._shrink = config.seconds("shrink_window")
        self._cooldown = config.seconds("loss_cooldown")
        self.min_size = min_size
        self.max_size = max_size
        self._estimate = float(initial)
        self._limit = initial
        self._last: tuple[float, Observation] | None = None
        self._last_rtt_at: float | None = None
        self.short_rtt: float | None = None
        self.long_rtt: float | None = None
        self.arrival_rate = 0.0
        self._conc_short: float | None = None
        self._conc_long: float | None = None
        self._error_rate = 0.0
        self._pending_loss: str | None = None
        self._last_cut: float | None = None
        self._hold_growth_until = -math.inf
        self._settle_until = -math.inf
        self.decisions: deque[ScalingDecision] = deque(maxlen=history)
        self.decision_count = 0

    @property
    def limit(self) -> int:
        """The current limit (the size the pool should have)."""
        return self._limit

    def report_loss(self, now: float, reason: str = "loss") -> None:
        """Register a loss signal (``"timeout"``, ``"429"``, ``"error"``...)."""
        self._pending_loss = reason or "loss"

    def update(self, now: float, obs: Observation) -> int:
        """Take the pool's counters at ``now``; return the limit it should run with."""
        if self._last is None:
            self._last = (now, obs)
            return self._limit
        last_now, prev = self._last
        dt = now - last_now
        if dt <= 0:
            return self._limit
        self._last = (now, obs)
        cfg = self.config
        a_short = _alpha(dt, self._short)
        a_long = _alpha(dt, self._long)

        arrivals = max(0, obs.submitted - prev.submitted)
        done = max(0, obs.finished - prev.finished)
        failed = max(0, obs.failed - prev.failed)
        self.arrival_rate += a_short * (arrivals / dt - self.arrival_rate)
        active = float(obs.active)
        if self._conc_short is None or self._conc_long is None:
            self._conc_short = self._conc_long = active
        else:
            self._conc_short += a_short * (active - self._conc_short)
            self._conc_long += a_long * (active - self._conc_long)
        if done:
            rtt = max(0.0, obs.run_seconds - prev.run_seconds) / done
            since = dt if self._last_rtt_at is None else now - self._last_rtt_at
            self._last_rtt_at = now
            if self.short_rtt is None or self.long_rtt is None:
                self.short_rtt = self.long_rtt = rtt
            else:
                self.short_rtt += _alpha(since, self._short) * (rtt - self.short_rtt)
                if self.short_rtt <= cfg.tolerance * self.long_rtt:
                    # the baseline only learns from tolerated latencies; a higher level
                    # becomes the baseline by an explicit re-basing (see below), so
                    # self-inflicted queueing cannot creep into it
                    self.long_rtt += _alpha(since, self._long) * (rtt - self.long_rtt)
            self._error_rate += _alpha(since, self._short) * (failed / done - self._error_rate)
            if cfg.error_threshold is not None and self._error_rate >= cfg.error_threshold:
                self._pending_loss = self._pending_loss or "errors"

        old = self._limit
        queued = max(0, obs.queued)
        cap = self._cap()

        # 1. loss: multiplicative decrease, once per cooldown
        if self._pending_loss is not None:
            signal = self._pending_loss
            if self._last_cut is None or now - self._last_cut >= self._cooldown:
                self._pending_loss = None
                self._last_cut = now
                self._hold_growth_until = now + self._short
                self._estimate = max(float(self.min_size), old * cfg.loss_factor)
                return self._apply(
                    now,
                    old,
                    "loss",
                    f"loss signal {signal!r}: x{cfg.loss_factor}",
                    queued=queued,
                    cap=cap,
                )
            self._pending_loss = None  # within the cooldown: already cut for this episode

        # 2. the latency gradient
        if self.short_rtt is not None and self.long_rtt is not None and self.short_rtt > 0:
            gradient = cfg.tolerance * self.long_rtt / self.short_rtt
            if gradient < 1.0:
                # The pool's own doing when it raised its concurrency and the latency rose
                # no more than the concurrency did: by Little's law it bought latency, not
                # throughput. A downstream that slowed down on its own shows a latency
                # rise beyond any concurrency change (throughput falls).
                conc_ratio = (self._conc_short + 0.5) / (self._conc_long + 0.5)
                rtt_ratio = self.short_rtt / self.long_rtt if self.long_rtt > 0 else math.inf
                raised = conc_ratio > 1.1
                explained = rtt_ratio <= conc_ratio * 1.25
                cut = max(cfg.min_gradient, gradient)
                if now < self._settle_until:
                    pass  # just re-based: the short window is still catching up
                elif raised and explained:
                    if math.ceil(old * cut - 1e-9) < old:
                        # let the latency settle before growing or re-basing again
                        self._hold_growth_until = now + 2.0 * self._short
                        self._estimate = max(float(self.min_size), old * cut)
                        return self._apply(
                            now,
                            old,
                            "congestion",
                            f"run time {self.short_rtt * 1e3:.1f} ms vs baseline "
                            f"{self.long_rtt * 1e3:.1f} ms after raising concurrency: "
                            f"x{cut:.2f}",
                            queued=queued,
                            cap=cap,
                        )
                elif now >= self._hold_growth_until:
                    before = self.long_rtt
                    self.long_rtt = self.short_rtt
                    self._settle_until = now + self._short
                    self._record(
                        now,
                        old,
                        old,
                        "rebase",
                        f"run time moved {before * 1e3:.1f} -> {self.short_rtt * 1e3:.1f} ms "
                        f"while throughput fell or concurrency held: the downstream slowed "
                        f"on its own, so new baseline, no cut",
                        queued=queued,
                        cap=cap,
                    )

        # 3. demand from Little's law, plus the backlog
        if self.short_rtt is not None and self.long_rtt is not None:
            # latency beyond the tolerated baseline is the pool's own queueing downstream:
            # it is not a reason to buy more concurrency
            rtt = min(self.short_rtt, cfg.tolerance * self.long_rtt)
            steady = self.arrival_rate * rtt * (1.0 + cfg.headroom)
            backlog = queued * rtt / self._drain
        else:  # no run time measured yet: grow by sqrt(limit) while tasks wait
            steady = self._estimate
            backlog = math.sqrt(old) if queued else 0.0
        want = steady + backlog
        if want > self._estimate:
            if now < self._hold_growth_until:
                return old
            self._estimate = min(want, max(2.0 * old, old + 4.0))  # at most double per step
            known = self.short_rtt is not None
            reason: Reason = (
                "backlog" if backlog > 0 and (not known or backlog >= steady) else "demand"
            )
            detail = (
                f"arrivals {self.arrival_rate:.1f}/s x run time "
                f"{(self.short_rtt or 0.0) * 1e3:.1f} ms, {queued} queued"
            )
        else:
            self._estimate += _alpha(dt, self._shrink) * (want - self._estimate)
            reason = "idle"
            detail = (
                f"demand {want:.1f} below limit (arrivals {self.arrival_rate:.1f}/s, "
                f"{queued} queued)"
            )
        return self._apply(now, old, reason, detail, queued=queued, cap=cap)

    def _cap(self) -> int | None:
        budget = self.config.rate_budget
        if budget is None or self.short_rtt is None:
            return None
        return max(1, math.ceil(budget * self.short_rtt * (1.0 + self.config.headroom) - 1e-9))

    def _apply(
        self, now: float, old: int, reason: Reason, detail: str, *, queued: int, cap: int | None
    ) -> int:
        estimate = min(float(self.max_size), max(float(self.min_size), self._estimate))
        if cap is not None and estimate > cap:
            estimate = float(max(self.min_size, cap))
            reason = "cap"
            detail = (
                f"{detail}; capped by Little's law: budget {self.config.rate_budget}/s x "
                f"{(self.short_rtt or 0.0) * 1e3:.1f} ms"
            )
        self._estimate = estimate
        new = max(self.min_size, min(self.max_size, math.ceil(estimate - 1e-9)))
        if new != old:
            self._limit = new
            self._record(now, old, new, reason, detail, queued=queued, cap=cap)
        return self._limit

    def _record(
        self,
        now: float,
        old: int,
        new: int,
        reason: Reason,
        detail: str,
        *,
        queued: int,
        cap: int | None,
    ) -> None:
        self.decision_count += 1
        self.decisions.append(
            ScalingDecision(
                at=now,
                old=old,
                new=new,
                reason=reason,
                detail=detail,
                short_rtt=self.short_rtt,
                long_rtt=self.long_rtt,
                arrival_rate=self.arrival_rate,
                queued=queued,
                cap=cap,
            )
        )

    def __repr__(self) -> str:
        rtt = "?" if self.short_rtt is None else f"{self.short_rtt * 1e3:.1f}ms"
        return (
            f"<ConcurrencyController limit={self._limit} [{self.min_size}..{self.max_size}] "
            f"rate={self.arrival_rate:.1f}/s rtt={rtt}>"
        )
