"""Property tests of the pure core under a fake clock (time jumps event to event)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimax.ratelimit._core import LocalCore, Plan
from aimax.ratelimit._window import Charge, WindowCore

from ._checks import assert_exact, max_in_window, units_between
from ._sim import Request, Simulation

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEAVY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# two linked pools: A (20 units / 10 s), B (8 units / 3 s)
POOLS = {"A": (20, 10.0), "B": (8, 3.0)}
SHARES = (1.0, 0.9, 0.8, 0.6)  # cap share of classes 0..3 (0 = most urgent)
POOL_SETS = (("A",), ("B",), ("A", "B"))


def cap(pool: str, priority: int) -> int:
    return max(1, math.floor(POOLS[pool][0] * SHARES[priority]))


def make_plan(core: LocalCore, priority: int, pools: tuple[str, ...], cost: int) -> Plan:
    charges = tuple(
        Charge(pool=p, cost=min(cost, cap(p, priority)), cap=cap(p, priority), window=POOLS[p][1])
        for p in pools
    )
    return core.plan(
        kind=f"c{priority}",
        priority=priority,
        cost=cost,
        pair=None,
        charges=charges,
        scopes=("ip",),
    )


request_specs = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=2.0),  # gap since the previous arrival
        st.integers(min_value=0, max_value=3),  # class
        st.integers(min_value=0, max_value=2),  # pool set
        st.integers(min_value=1, max_value=4),  # cost
        st.one_of(st.none(), st.floats(min_value=0.0, max_value=15.0)),  # timeout
        st.one_of(st.none(), st.floats(min_value=0.0, max_value=15.0)),  # cancel after
    ),
    min_size=1,
    max_size=120,
)


def build(specs: list[tuple[float, int, int, int, float | None, float | None]]):
    core = LocalCore()
    requests = []
    now = 0.0
    for tag, (gap, priority, pool_set, cost, timeout, cancel) in enumerate(specs):
        now += gap
        plan = make_plan(core, priority, POOL_SETS[pool_set], cost)
        requests.append(Request(now, plan, timeout=timeout, cancel_after=cancel, tag=tag))
    return core, requests


@SETTINGS
@given(request_specs)
def test_random_traffic_never_exceeds_any_pool_in_any_window(specs) -> None:
    core, requests = build(specs)
    outcomes = Simulation(core).run(requests)
    for pool, (limit, window) in POOLS.items():
        grants = [
            (o.granted_at, c.cost)
            for o in outcomes
            if o.granted_at is not None
            for c in o.request.plan.charges
            if c.pool == pool
        ]
        assert_exact(grants, window, limit)


@SETTINGS
@given(request_specs)
def test_each_grant_respects_its_class_cap(specs) -> None:
    """At a class-c grant, the pool's window holds at most class c's cap (the reserve)."""
    core, requests = build(specs)
    outcomes = Simulation(core).run(requests)
    granted = sorted(
        (o for o in outcomes if o.granted_at is not None), key=lambda o: o.granted_at or 0.0
    )
    for index, outcome in enumerate(granted):
        t = outcome.granted_at
        assert t is not None
        for charge in outcome.request.plan.charges:
            window = POOLS[charge.pool][1]
            in_window = sum(
                c.cost
                for other in granted[: index + 1]
                if other.granted_at is not None and other.granted_at + window > t
                for c in other.request.plan.charges
                if c.pool == charge.pool
            )
            assert in_window <= charge.cap


@SETTINGS
@given(request_specs)
def test_everyone_who_stays_is_served_in_fifo_order_per_class(specs) -> None:
    """No lost wake-up, no starvation: every request that does not leave gets its slot,
    and within a class grants follow arrival order."""
    core, requests = build(specs)
    outcomes = Simulation(core).run(requests)
    for outcome in outcomes:
        assert (outcome.granted_at is None) != (outcome.left_at is None), outcome
    assert core.sched.n == 0
    for priority in range(4):
        times = [
            o.granted_at
            for o in outcomes
            if o.request.plan.priority == priority and o.granted_at is not None
        ]
        assert times == sorted(times)


@HEAVY
@given(
    costs=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=8),
    priority=st.integers(min_value=0, max_value=3),
    windows=st.integers(min_value=2, max_value=5),
)
def test_saturating_demand_reaches_99_percent_of_its_budget(
    costs: list[int], priority: int, windows: int
) -> None:
    core = LocalCore()
    limit, window = 800, 60.0  # every class cap >= 480: (cap - 4) / cap > 99 %
    cls_cap = math.floor(limit * SHARES[priority])
    horizon = windows * window
    plans = {
        c: core.plan(
            kind="k",
            priority=priority,
            cost=c,
            pair=None,
            charges=(Charge(pool="P", cost=c, cap=cls_cap, window=window),),
            scopes=("ip",),
        )
        for c in set(costs)
    }
    demand = cls_cap * (windows + 1)
    requests, total, i = [], 0, 0
    while total < demand:  # everything arrives at once: a saturating backlog
        cost = costs[i % len(costs)]
        requests.append(Request(0.0, plans[cost], tag=i))
        total, i = total + cost, i + 1
    outcomes = Simulation(core).run(requests, until=horizon)
    grants = [(o.granted_at, o.request.plan.cost) for o in outcomes if o.granted_at is not None]
    assert max_in_window(grants, window) <= cls_cap
    granted = units_between(grants, 0.0, horizon)
    assert granted >= 0.99 * cls_cap * windows, (granted, cls_cap * windows)


@HEAVY
@given(
    arrivals=st.lists(st.floats(min_value=0.0, max_value=600.0), min_size=1, max_size=6),
    high=st.integers(min_value=0, max_value=2),
    cost=st.integers(min_value=1, max_value=3),
)
def test_high_class_granted_within_one_slot_while_low_class_saturates(
    arrivals: list[float], high: int, cost: int
) -> None:
    core = LocalCore()
    limit, window = 120, 60.0
    slot = window / limit
    low_cap = math.floor(limit * SHARES[3])
    high_cap = math.floor(limit * SHARES[high])
    low = core.plan(
        kind="low",
        priority=3,
        cost=1,
        pair=None,
        charges=(Charge(pool="P", cost=1, cap=low_cap, window=window),),
        scopes=("ip",),
    )
    urgent = core.plan(
        kind="high",
        priority=high,
        cost=cost,
        pair=None,
        charges=(Charge(pool="P", cost=cost, cap=high_cap, window=window),),
        scopes=("ip",),
    )
    # the low class keeps a backlog for the whole run
    requests = [Request(0.0, low, tag=i) for i in range(low_cap * 12)]
    # high requests spaced a window apart so their demand fits the reserve
    times = sorted({round(a, 3) for a in arrivals})
    spaced: list[float] = []
    for t in times:
        if not spaced or t >= spaced[-1] + window:
            spaced.append(t)
    requests += [Request(t, urgent, tag=-1) for t in spaced]
    outcomes = Simulation(core).run(requests, until=11 * window)
    low_grants = [
        (o.granted_at, 1) for o in outcomes if o.request.tag >= 0 and o.granted_at is not None
    ]
    for outcome in outcomes:
        if outcome.request.tag == -1:
            assert outcome.granted_at is not None
            assert outcome.granted_at - outcome.request.at <= slot + 1e-9
    # and the low class really was saturating: it filled its share every window
    assert units_between(low_grants, 0.0, 10 * window) >= 0.99 * low_cap * 10


@SETTINGS
@given(
    ops=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=1.5),
            st.lists(st.sampled_from(["A", "B", "C"]), min_size=1, max_size=3, unique=True),
            st.integers(min_value=1, max_value=4),
        ),
        max_size=150,
    )
)
def test_window_core_is_all_or_nothing_and_its_wait_is_exact(ops) -> None:
    """Grants are atomic across pools; a refused request passes exactly after ``wait``."""
    core = WindowCore()
    spec = {"A": (10, 5.0), "B": (4, 1.0), "C": (7, 2.5)}
    now = 0.0
    grants: dict[str, list[tuple[float, int]]] = {p: [] for p in spec}
    for gap, pools, cost in ops:
        now += gap
        charges = [Charge(pool=p, cost=cost, cap=spec[p][0], window=spec[p][1]) for p in pools]
        before = dict(core.usage(now))
        answer = core.attempt(charges, (), now)
        after = dict(core.usage(now))
        if answer.granted:
            for p in pools:
                grants[p].append((now, cost))
                assert after[p] == before.get(p, 0) + cost
        else:
            assert {p: n for p, n in after.items() if n} == {
                p: n for p, n in before.items() if n
            }  # nothing taken from any pool
            assert answer.wait > 0
            assert answer.pool in pools
            later = now + answer.wait
            # a request refused now passes at now + wait (nothing else happens meanwhile)
            clone = _clone(core)
            assert clone.attempt(charges, (), later).granted
            if answer.wait > 1e-9:
                clone2 = _clone(core)
                assert not clone2.attempt(charges, (), now + answer.wait * 0.999).granted
    for p, (limit, window) in spec.items():
        assert_exact(grants[p], window, limit)


def _clone(core: WindowCore) -> WindowCore:
    from collections import deque

    copy = WindowCore()
    for name, log in core.pools.items():
        new = copy.log(name, log.window)
        new.entries = deque(log.entries)
        new.used = log.used
    copy.frozen = dict(core.frozen)
    return copy


@SETTINGS
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=2.0),  # gap
            st.sampled_from(["ip", "ws"]),  # scope of the request or of the freeze
            st.one_of(st.none(), st.floats(min_value=0.0, max_value=5.0)),  # freeze length
        ),
        max_size=100,
    )
)
def test_nothing_of_a_frozen_scope_is_granted_and_freezes_never_shorten(ops) -> None:
    core = WindowCore()
    now = 0.0
    frozen: dict[str, float] = {}
    for gap, scope, freeze in ops:
        now += gap
        if freeze is not None:
            core.freeze(scope, now + freeze)
            frozen[scope] = max(frozen.get(scope, -1.0), now + freeze)
            continue
        answer = core.attempt([Charge(pool="p", cost=1, cap=10_000, window=1.0)], [scope], now)
        if frozen.get(scope, -1.0) > now:
            assert not answer.granted
            assert answer.frozen_until == frozen[scope]
            assert answer.wait == pytest.approx(frozen[scope] - now)
        else:
            assert answer.granted


@HEAVY
@given(
    order_cost=st.integers(min_value=1, max_value=3),
    data_cost=st.integers(min_value=1, max_value=3),
    windows=st.integers(min_value=3, max_value=6),
)
def test_a_class_waiting_on_another_pool_does_not_starve_a_lower_one(
    order_cost: int, data_cost: int, windows: int
) -> None:
    """Orders saturate their own pool (and also charge the IP pool); market data, which
    charges only the IP pool, still gets everything the IP pool has left for it."""
    core = LocalCore()
    window = 10.0
    ip_cap_data, ip_cap_order, order_cap = 850, 950, 60
    order = core.plan(
        kind="order",
        priority=1,
        cost=order_cost,
        pair=None,
        charges=(
            Charge(pool="ip", cost=order_cost, cap=ip_cap_order, window=window),
            Charge(pool="orders", cost=order_cost, cap=order_cap, window=window),
        ),
        scopes=("ip",),
    )
    data = core.plan(
        kind="data",
        priority=3,
        cost=data_cost,
        pair=None,
        charges=(Charge(pool="ip", cost=data_cost, cap=ip_cap_data, window=window),),
        scopes=("ip",),
    )
    requests = [Request(0.0, order, tag=1) for _ in range(order_cap * (windows + 1))]
    requests += [Request(0.0, data, tag=3) for _ in range(ip_cap_data * (windows + 1))]
    horizon = windows * window
    outcomes = Simulation(core).run(requests, until=horizon)
    orders = [
        (o.granted_at, order_cost)
        for o in outcomes
        if o.request.tag == 1 and o.granted_at is not None
    ]
    datas = [
        (o.granted_at, data_cost)
        for o in outcomes
        if o.request.tag == 3 and o.granted_at is not None
    ]
    assert max_in_window(orders + datas, window) <= ip_cap_order
    order_units = units_between(orders, 0.0, horizon)
    data_units = units_between(datas, 0.0, horizon)
    assert order_units >= 0.95 * order_cap * windows  # orders get their whole pool
    # market data gets what its share of the IP pool leaves after the orders' units
    available = (ip_cap_data - order_cap) * windows
    assert data_units >= 0.99 * available, (data_units, available)
