"""The pure autoscaling controller, driven by a fake clock and a fluid model of a pool.

Time is passed in as ``now``; nothing sleeps. Hypothesis varies the tick spacing,
the arrival rate (5/s to 500/s) and the latency to show the windows are in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax._clock import FakeClock
from aimax.errors import ConfigurationError
from aimax.pools import AutoscalerConfig, ConcurrencyController, Observation

SETTINGS = settings(max_examples=40, deadline=None)


@dataclass
class FluidPool:
    """Arrivals at ``rate``/s; tasks take ``latency(now, in_flight)`` s; ``limit`` workers."""

    controller: ConcurrencyController
    rate: float
    latency: object  # Callable[[float, float], float]
    queue: float = 0.0
    submitted: float = 0.0
    finished: float = 0.0
    run: float = 0.0
    active: float = 1.0
    limits: list[int] = field(default_factory=list)
    queues: list[float] = field(default_factory=list)

    def step(self, now: float, dt: float) -> int:
        limit = self.controller.limit
        w = self.latency(now, min(float(limit), max(self.active, 1.0)))  # type: ignore[operator]
        arrivals = self.rate * dt
        done = min(limit / w * dt, self.queue + arrivals)
        self.queue += arrivals - done
        self.submitted += arrivals
        self.finished += done
        self.run += done * w
        self.active = min(float(limit), done / dt * w)
        new = self.controller.update(
            now,
            Observation(
                submitted=int(self.submitted),
                finished=int(self.finished),
                run_seconds=self.run * int(self.finished) / max(self.finished, 1e-9),
                queued=int(self.queue),
                active=round(self.active),
            ),
        )
        self.limits.append(new)
        self.queues.append(self.queue)
        return new


def drive(
    pool: FluidPool, clock: FakeClock, seconds: float, ticks: list[float] | None = None
) -> None:
    """Advance ``clock`` by ``seconds`` in steps (cycled from ``ticks``), feeding the pool."""
    steps = ticks or [0.2]
    end = clock() + seconds
    i = 0
    while clock() < end:
        dt = steps[i % len(steps)]
        i += 1
        clock.advance(dt)
        pool.step(clock(), dt)


def controller(**kw: object) -> ConcurrencyController:
    config = AutoscalerConfig(**kw)  # type: ignore[arg-type]
    return ConcurrencyController(config, initial=2, min_size=1, max_size=64)


@SETTINGS
@given(
    rate=st.floats(5.0, 500.0),
    latency=st.floats(0.005, 0.25),
    ticks=st.lists(st.floats(0.02, 0.5), min_size=1, max_size=5),
)
def test_converges_to_littles_law_demand_whatever_the_rate_and_tick(
    rate: float, latency: float, ticks: list[float]
) -> None:
    need = rate * latency
    if not 1.0 <= need <= 40.0:
        return  # outside what a 1..64 pool can show
    clock = FakeClock(start=1000.0)
    pool = FluidPool(controller(), rate, lambda now, n: latency)
    drive(pool, clock, 40.0, ticks)
    final = pool.limits[-1]
    assert final >= math.floor(need), (need, final)
    assert final <= math.ceil(need * 1.25 * 1.2) + 2, (need, final)
    assert pool.queue <= rate * 1.0  # the backlog drained to under a second of arrivals


@SETTINGS
@given(
    events=st.lists(
        st.tuples(
            st.floats(0.0, 3.0),  # dt
            st.integers(0, 500),  # arrivals
            st.integers(0, 500),  # finished
            st.floats(0.0, 50.0),  # run seconds
            st.integers(0, 5000),  # queued
            st.integers(0, 80),  # active
            st.booleans(),  # loss
        ),
        max_size=60,
    ),
    budget=st.none() | st.floats(1.0, 1000.0),
)
def test_limit_always_within_bounds_and_budget_cap(
    events: list[tuple[float, int, int, float, int, int, bool]], budget: float | None
) -> None:
    c = ConcurrencyController(
        AutoscalerConfig(rate_budget=budget), initial=3, min_size=2, max_size=40
    )
    clock = FakeClock(start=5.0)
    sub = fin = 0
    run = 0.0
    for dt, arrivals, finished, run_s, queued, active, loss in events:
        clock.advance(dt)
        sub += arrivals
        fin += finished
        run += run_s
        if loss:
            c.report_loss(clock(), "429")
        old = c.limit
        limit = c.update(
            clock(),
            Observation(submitted=sub, finished=fin, run_seconds=run, queued=queued, active=active),
        )
        assert 2 <= limit <= 40
        cap = c._cap()
        if cap is not None:
            assert limit <= max(2, cap, old)  # never raised above the budget's cap
            if limit > old:
                assert limit <= max(2, cap)
    for d in c.decisions:
        assert d.reason in {"loss", "congestion", "rebase", "demand", "backlog", "idle", "cap"}
        assert (d.old == d.new) == (d.reason == "rebase")
        assert d.detail


@SETTINGS
@given(factor=st.floats(0.3, 0.9), start=st.integers(4, 60), dt=st.floats(0.05, 0.9))
def test_loss_cuts_multiplicatively_once_per_cooldown(factor: float, start: int, dt: float) -> None:
    c = ConcurrencyController(
        AutoscalerConfig(loss_factor=factor, loss_cooldown=1.0),
        initial=start,
        min_size=1,
        max_size=64,
    )
    clock = FakeClock(start=0.0)
    steady = Observation(submitted=0, finished=0, run_seconds=0.0, queued=0, active=start)
    c.update(clock(), steady)
    c.report_loss(clock(), "timeout")
    clock.advance(dt)
    after = c.update(clock(), steady)
    assert after == max(1, math.ceil(start * factor - 1e-9))
    assert after == start or c.decisions[-1].reason == "loss"
    # a second loss inside the cooldown does not cut again
    c.report_loss(clock(), "429")
    clock.advance(min(dt, 0.5) / 2)
    assert c.update(clock(), steady) >= after


def test_a_429_reported_by_the_limiter_is_named_in_the_decision() -> None:
    c = ConcurrencyController(AutoscalerConfig(), initial=20, min_size=1, max_size=64)
    obs = Observation(submitted=0, finished=0, run_seconds=0.0, active=20)
    c.update(0.0, obs)
    c.report_loss(0.0, "429")
    assert c.update(0.2, obs) == 14
    decision = c.decisions[-1]
    assert (decision.old, decision.new, decision.reason) == (20, 14, "loss")
    assert "429" in decision.detail


def test_task_errors_count_as_loss_above_the_threshold() -> None:
    c = ConcurrencyController(
        AutoscalerConfig(error_threshold=0.5), initial=10, min_size=1, max_size=64
    )
    c.update(0.0, Observation(submitted=0, finished=0, run_seconds=0.0, active=10))
    limit = c.update(
        1.0, Observation(submitted=100, finished=100, failed=90, run_seconds=1.0, active=10)
    )
    assert limit == 7
    assert c.decisions[-1].reason == "loss"
    assert "errors" in c.decisions[-1].detail


@SETTINGS
@given(rate=st.floats(50.0, 300.0), tick=st.floats(0.05, 0.4))
def test_a_latency_step_the_pool_did_not_cause_is_followed_not_cut(
    rate: float, tick: float
) -> None:
    """20 ms -> 100 ms -> 20 ms at a steady rate: the size follows the demand up and down."""
    clock = FakeClock(start=0.0)

    def latency(now: float, n: float) -> float:
        return 0.1 if 20.0 <= now < 40.0 else 0.02

    pool = FluidPool(controller(), rate, latency)
    drive(pool, clock, 20.0, [tick])
    low = pool.limits[-1]
    assert low >= math.floor(rate * 0.02)
    before = len(pool.limits)
    drive(pool, clock, 20.0, [tick])
    high = pool.limits[-1]
    assert high >= math.floor(rate * 0.1)
    assert pool.queue <= rate * 1.0
    assert max(pool.queues[before + int(10 / tick) :]) <= rate * 1.0  # drained within 10 s
    reasons = [d.reason for d in pool.controller.decisions if d.at >= 20.0]
    assert "rebase" in reasons
    drive(pool, clock, 20.0, [tick])
    assert pool.limits[-1] < high  # shrank back as demand fell
    assert pool.limits[-1] <= math.ceil(rate * 0.02 * 1.25 * 1.5) + 2


def test_latency_bought_by_added_concurrency_is_cut_by_the_gradient() -> None:
    """A downstream that saturates at 4 in flight (200/s): a burst makes the pool grow past
    that knee, latency rises in step with concurrency, and the gradient cuts it back."""
    clock = FakeClock(start=0.0)

    def latency(now: float, n: float) -> float:
        return 0.02 * max(1.0, n / 4.0)

    pool = FluidPool(controller(), 150.0, latency)
    drive(pool, clock, 20.0)
    assert not any(d.reason == "congestion" for d in pool.controller.decisions)
    pool.queue += 600  # a burst
    drive(pool, clock, 20.0)
    reasons = [d.reason for d in pool.controller.decisions if d.at > 20.0]
    assert "backlog" in reasons
    assert "congestion" in reasons
    first_cut = reasons.index("congestion")
    assert "backlog" in reasons[:first_cut]  # it grew first, then was cut
    assert pool.queue <= 150.0  # the burst was worked off
    assert pool.limits[-1] <= 12


@SETTINGS
@given(budget=st.floats(5.0, 200.0), latency=st.floats(0.01, 0.3))
def test_littles_law_cap_never_buys_unusable_concurrency(budget: float, latency: float) -> None:
    c = controller(rate_budget=budget)
    clock = FakeClock(start=0.0)
    # demand far above the budget: 1000 arrivals/s, a big queue
    pool = FluidPool(c, 1000.0, lambda now, n: latency)
    drive(pool, clock, 10.0)
    cap = max(1, math.ceil(budget * latency * 1.25))
    assert max(pool.limits[5:]) <= max(cap, 2)
    assert "cap" in {d.reason for d in c.decisions} or cap >= 64 or pool.limits[-1] == cap


def test_time_based_windows_same_answer_at_fine_and_coarse_ticks() -> None:
    results = []
    for tick in (0.05, 0.5):
        clock = FakeClock(start=0.0)
        pool = FluidPool(controller(), 200.0, lambda now, n: 0.05)
        drive(pool, clock, 30.0, [tick])
        results.append(pool.limits[-1])
    assert abs(results[0] - results[1]) <= 2, results


def test_no_time_passed_changes_nothing_and_first_update_only_learns() -> None:
    c = controller()
    obs = Observation(submitted=10, finished=5, run_seconds=1.0, queued=100)
    assert c.update(3.0, obs) == 2
    assert c.update(3.0, obs) == 2
    assert c.update(2.0, obs) == 2
    assert not c.decisions
    assert "ConcurrencyController limit=2" in repr(c)


def test_sqrt_growth_while_no_latency_is_known_yet() -> None:
    c = ConcurrencyController(AutoscalerConfig(), initial=4, min_size=1, max_size=64)
    c.update(0.0, Observation(submitted=0, finished=0, run_seconds=0.0))
    assert c.update(0.2, Observation(submitted=50, finished=0, run_seconds=0.0, queued=50)) == 6
    assert c.decisions[-1].reason == "backlog"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"interval": 0}, "interval"),
        ({"short_window": -1}, "short_window"),
        ({"short_window": 5, "long_window": 1}, "long_window"),
        ({"tolerance": 0.5}, "tolerance"),
        ({"min_gradient": 1.0}, "cut"),
        ({"loss_factor": 0}, "loss_factor"),
        ({"headroom": -0.1}, "headroom"),
        ({"error_threshold": 0}, "error_threshold"),
        ({"rate_budget": 0}, "rate_budget"),
        ({"rate_budget": True}, "rate_budget"),
    ],
)
def test_bad_autoscaler_config_is_refused(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        AutoscalerConfig(**kw)  # type: ignore[arg-type]


def test_durations_accept_timedelta() -> None:
    cfg = AutoscalerConfig(short_window=timedelta(milliseconds=500), long_window=timedelta(1))
    assert cfg.seconds("short_window") == 0.5
    assert cfg.short_window == 0.5
    assert cfg.seconds("long_window") == 86400.0


def test_controller_refuses_inconsistent_bounds() -> None:
    with pytest.raises(ConfigurationError):
        ConcurrencyController(AutoscalerConfig(), initial=1, min_size=2, max_size=4)
    with pytest.raises(ConfigurationError):
        ConcurrencyController(AutoscalerConfig(), initial=1, min_size=0, max_size=4)
