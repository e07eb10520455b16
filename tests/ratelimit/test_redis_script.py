"""The Lua limiter script, run directly on the real server.

The script's upper-case operations take the time from the caller, so hypothesis can
drive it with a fake clock and compare every answer with the pure core
(:class:`WindowCore`), which is what the in-memory backend runs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimax.ratelimit._window import Charge, WindowCore
from aimax.ratelimit.redis_backend import limiter_script

pytestmark = pytest.mark.redis

_prefixes = itertools.count()


@dataclass
class Script:
    """Calls the limiter script with a fixed time (us) under a fresh key prefix."""

    client: redis.Redis
    sha: str
    tag: str

    def key(self, pool: str) -> str:
        return f"{self.tag}:pool:{pool}"

    @property
    def ctl(self) -> str:
        return f"{self.tag}:ctl"

    def attempt(
        self, charges: list[tuple[str, int, int, int]], scopes: list[str], now: int
    ) -> list[int]:
        keys = [self.ctl, *(self.key(p) for p, *_ in charges)]
        args: list[str | int] = ["A", len(charges), len(scopes)]
        for _, cost, cap, window in charges:
            args += [cost, cap, window]
        args += [f"f:{s}" for s in scopes]
        for p, *_ in charges:
            args += [f"r:{p}", f"e:{p}", f"h:{p}", f"d:{p}", f"x:{p}"]
        reply = self.client.evalsha(self.sha, len(keys), *keys, *args, now)
        if isinstance(reply, int):  # granted: the grant time alone
            return [1, 0, 0, reply]
        return [int(x) for x in reply]

    def freeze(self, scope: str, until: int, now: int) -> int:
        return int(self.client.evalsha(self.sha, 1, self.ctl, "F", f"f:{scope}", until, now))

    def usage(self, pools: list[tuple[str, int]], now: int) -> list[int]:
        keys = [self.ctl, *(self.key(p) for p, _ in pools)]
        args: list[str | int] = ["U", len(pools), *(w for _, w in pools)]
        for p, _ in pools:
            args += [f"r:{p}", f"e:{p}"]
        return [int(x) for x in self.client.evalsha(self.sha, len(keys), *keys, *args, now)]

    def rejoin(
        self,
        pools: list[tuple[str, int, int, list[tuple[int, int]]]],
        hold: int,
        now: int,
    ) -> int:
        keys = [self.ctl, *(self.key(p) for p, *_ in pools)]
        args: list[str | int] = ["R", len(pools), hold]
        for _, window, reserve, entries in pools:
            args += [window, reserve, len(entries)]
            for age, cost in entries:
                args += [age, cost]
        for p, *_ in pools:
            args += [f"r:{p}", f"e:{p}"]
        return int(self.client.evalsha(self.sha, len(keys), *keys, *args, now))


@pytest.fixture
def script(redis_client: redis.Redis) -> Script:
    sha = redis_client.script_load(limiter_script())
    return Script(redis_client, sha, "{t0}")


def fresh(script: Script) -> Script:
    return Script(script.client, script.sha, f"{{t{next(_prefixes)}}}")


T0 = 1_800_000_000_000_000  # a fake "now" in microseconds
WINDOWS = {"p": 30_000_000, "q": 45_000_000}  # us; long, so real key TTLs never bite
LIMITS = {"p": 10, "q": 6}


# --------------------------------------------------------------------------- basics


def test_grants_until_the_cap_then_says_how_long_to_wait(script: Script) -> None:
    plan = [("p", 2, 5, 1_000_000)]
    assert script.attempt(plan, [], T0)[0] == 1
    assert script.attempt(plan, [], T0 + 100)[0] == 1
    status, wait, pool, _ = script.attempt(plan, [], T0 + 200)
    # 4 used + 2 > 5: the first entry (2 units, at T0) must leave: at T0 + 1 s
    assert (status, wait, pool) == (0, 1_000_000 - 200, 1)
    assert script.attempt(plan, [], T0 + 1_000_000)[0] == 1


def test_window_is_half_open(script: Script) -> None:
    # A long window: the keys' real TTLs (two windows of wall time) must not expire
    # them between the calls, whatever the fake microsecond clock says.
    w = WINDOWS["p"]
    plan = [("p", 1, 1, w)]
    assert script.attempt(plan, [], T0)[0] == 1
    assert script.attempt(plan, [], T0 + w - 1)[:2] == [0, 1]
    assert script.attempt(plan, [], T0 + w)[0] == 1


def test_linked_pools_are_all_or_nothing(script: Script) -> None:
    assert script.attempt([("q", 3, 3, 1_000_000)], [], T0)[0] == 1
    status, _, pool, _ = script.attempt([("p", 1, 5, 1_000_000), ("q", 1, 3, 1_000_000)], [], T0)
    assert (status, pool) == (0, 2)
    assert script.usage([("p", 1_000_000), ("q", 1_000_000)], T0)[:2] == [0, 3]


def test_a_refused_attempt_leaves_every_log_as_it_was(script: Script) -> None:
    plan = [("p", 1, 10, 1_000_000), ("q", 2, 3, 1_000_000)]
    assert script.attempt(plan, [], T0)[0] == 1  # bookkeeping written: later ones are quick
    # p has room and is charged first, then q is short: p's unit must be taken back
    assert script.attempt(plan, [], T0 + 10) == [0, 1_000_000 - 10, 2, 0]
    assert script.client.llen(script.key("p")) == 1
    assert script.client.llen(script.key("q")) == 2
    assert script.usage([("p", 1_000_000), ("q", 1_000_000)], T0 + 20)[:2] == [1, 2]
    assert script.attempt([("p", 9, 10, 1_000_000)], [], T0 + 20)[0] == 1


def test_an_expired_freeze_or_reservation_leaves_nothing_behind(script: Script) -> None:
    w = 1_000_000
    script.rejoin([("p", w, 2, [])], 0, T0)  # reserves 2 until T0 + w
    assert script.freeze("ip", T0 + 500, T0) == T0 + 500
    assert script.attempt([("p", 3, 5, w)], ["ip"], T0 + 500)[0] == 1
    assert script.attempt([("p", 1, 5, w)], ["ip"], T0 + 600)[:3] == [0, w - 600, 1]
    # the reservation ends at T0 + w: its 2 units are free again, the 3 granted stay
    assert script.attempt([("p", 2, 5, w)], ["ip"], T0 + w)[0] == 1
    assert script.usage([("p", w)], T0 + w)[0] == 5


def test_granted_reply_carries_the_grant_time(script: Script) -> None:
    assert script.attempt([("p", 1, 1, 10)], [], T0 + 7) == [1, 0, 0, T0 + 7]


def test_keys_expire_within_two_windows_of_the_last_grant(script: Script) -> None:
    assert script.attempt([("p", 1, 5, 3_000_000)], [], T0)[0] == 1
    ttl = script.client.pttl(script.key("p"))
    assert 5_000 < ttl <= 6_002
    assert 0 < script.client.pttl(script.ctl) <= 6_002
    # within the window the TTL is not set again (no call spent on it)...
    script.client.pexpire(script.key("p"), 4_000)
    assert script.attempt([("p", 1, 5, 3_000_000)], [], T0 + 2_999_999)[0] == 1
    assert script.client.pttl(script.key("p")) <= 4_000
    # ...and once a window has passed it is (the key outlives every live unit)
    assert script.attempt([("p", 1, 5, 3_000_000)], [], T0 + 3_000_000)[0] == 1
    assert script.client.pttl(script.key("p")) > 5_000


def test_freeze_blocks_its_scopes_and_never_shortens(script: Script) -> None:
    assert script.freeze("ip", T0 + 5_000_000, T0) == T0 + 5_000_000
    assert script.freeze("ip", T0 + 1_000_000, T0) == T0 + 5_000_000  # kept
    assert script.freeze("old", T0 - 1, T0) == 0  # already over: ignored
    assert script.attempt([("p", 1, 5, 10**6)], ["acct", "ip"], T0 + 1) == [
        0,
        5_000_000 - 1,
        0,
        T0 + 5_000_000,
    ]
    assert script.attempt([("p", 1, 5, 10**6)], ["acct"], T0 + 1)[0] == 1
    assert script.attempt([("p", 1, 5, 10**6)], ["ip"], T0 + 5_000_000)[0] == 1
    ttl = script.client.pttl(script.ctl)
    assert 0 < ttl <= 5_002


def test_walks_past_the_first_page_of_the_log(script: Script) -> None:
    # 30 unit entries (more than one head page): a cost-25 request with cap 30
    # must wait for the 25th oldest entry to leave.
    for i in range(30):
        assert script.attempt([("p", 1, 30, 1_000_000)], [], T0 + i)[0] == 1
    status, wait, _, _ = script.attempt([("p", 25, 30, 1_000_000)], [], T0 + 100)
    assert (status, wait) == (0, 1_000_000 + 24 - 100)
    # expiring 20 entries at once trims across pages
    assert script.usage([("p", 1_000_000)], T0 + 1_000_019)[0] == 10
    assert script.attempt([("p", 20, 30, 1_000_000)], [], T0 + 1_000_019)[0] == 1
    assert script.client.llen(script.key("p")) == 30  # 20 expired units trimmed


def test_unknown_operation_is_an_error(script: Script) -> None:
    with pytest.raises(redis.ResponseError, match="unknown operation"):
        script.client.evalsha(script.sha, 1, script.ctl, "z")


# --------------------------------------------------------------------------- rejoin


def test_rejoin_replays_local_grants_in_time_order(script: Script) -> None:
    w = 1_000_000
    assert script.attempt([("p", 2, 10, w)], [], T0)[0] == 1
    script.rejoin([("p", w, 0, [(300_000, 3), (900_000, 1), (2_000_000, 5)])], 0, T0 + 500_000)
    # kept: 2 (at T0), 1 (at T0-400ms), 3 (at T0+200ms); the 5 is older than a window
    assert script.usage([("p", w)], T0 + 500_000)[0] == 6
    assert script.usage([("p", w)], T0 + 600_000)[0] == 5  # the T0-400ms entry left
    assert script.usage([("p", w)], T0 + 1_000_000)[0] == 3
    assert script.usage([("p", w)], T0 + 1_200_000)[0] == 0
    # the rebuilt log keeps working: running sums are consistent
    assert script.attempt([("p", 7, 10, w)], [], T0 + 1_000_000)[0] == 1
    assert script.attempt([("p", 1, 10, w)], [], T0 + 1_000_001)[0] == 0


def test_rejoin_reserves_the_others_share_once(script: Script) -> None:
    w, hold = 1_000_000, 500_000
    script.rejoin([("p", w, 6, [])], hold, T0)
    script.rejoin([("p", w, 6, [])], hold, T0 + 100)  # in force already: not stacked
    assert script.usage([("p", w)], T0 + 200)[0] == 6
    assert script.attempt([("p", 4, 10, w)], [], T0 + 200)[0] == 1
    status, wait, _, _ = script.attempt([("p", 1, 10, w)], [], T0 + 300)
    # the 4 granted units leave (T0 + 200 + w) before the reservation ends
    assert (status, wait) == (0, w + 200 - 300)
    # a low class (cap 5) needs the reservation gone: it ends at T0 + hold + w
    status, wait, _, _ = script.attempt([("p", 1, 5, w)], [], T0 + 300)
    assert (status, wait) == (0, hold + w - 300)
    assert script.attempt([("p", 1, 10, w)], [], T0 + hold + w)[0] == 1


# --------------------------------------------------------------------------- property


@st.composite
def programs(draw: st.DrawFn) -> list[tuple[str, object]]:
    steps: list[tuple[str, object]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=40))):
        kind = draw(st.sampled_from(["attempt", "attempt", "attempt", "advance", "freeze"]))
        if kind == "advance":
            steps.append(("advance", draw(st.integers(min_value=0, max_value=20_000_000))))
        elif kind == "freeze":
            scope = draw(st.sampled_from(["ip", "acct"]))
            # a freeze sets a real TTL of its fake length on the control key: keep the
            # live ones long enough (>= 3 s) that no key expires during an example
            offset = draw(st.one_of(st.integers(-1_000_000, 0), st.integers(3_000_000, 10**7)))
            steps.append(("freeze", (scope, offset)))
        else:
            pools = draw(st.sampled_from([["p"], ["q"], ["p", "q"], ["q", "p"]]))
            charges = []
            for pool in pools:
                cap = draw(st.integers(min_value=1, max_value=LIMITS[pool]))
                cost = draw(st.integers(min_value=1, max_value=cap))
                charges.append((pool, cost, cap, WINDOWS[pool]))
            scopes = draw(st.sampled_from([[], ["ip"], ["acct"], ["ip", "acct"]]))
            steps.append(("attempt", (charges, scopes)))
    return steps


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(program=programs())
def test_script_answers_exactly_like_the_pure_core(
    script: Script, program: list[tuple[str, object]]
) -> None:
    lua = fresh(script)
    core = WindowCore()
    now = T0
    for kind, arg in program:
        if kind == "advance":
            assert isinstance(arg, int)
            now += arg
        elif kind == "freeze":
            scope, offset = arg  # type: ignore[misc]
            lua.freeze(scope, now + offset, now)
            if offset > 0:
                core.freeze(scope, float(now + offset))
        else:
            charges, scopes = arg  # type: ignore[misc]
            want = core.attempt(
                [Charge(pool=p, cost=c, cap=k, window=float(w)) for p, c, k, w in charges],
                scopes,
                float(now),
            )
            status, wait, index, extra = lua.attempt(charges, scopes, now)
            assert bool(status) == want.granted
            if want.granted:
                assert extra == now
            elif want.frozen_until is not None:
                assert (wait, index, extra) == (want.wait, 0, want.frozen_until)
            else:
                assert wait == want.wait
                assert charges[index - 1][0] == want.pool
        got = lua.usage([(p, WINDOWS[p]) for p in WINDOWS], now)
        expected = core.usage(float(now))
        assert got[:2] == [expected.get(p, 0) for p in WINDOWS]


def test_a_request_that_needs_the_reservation_gone_waits_for_its_end(script: Script) -> None:
    w, hold = 1_000_000, 250_000
    script.rejoin([("p", w, 6, [])], hold, T0)
    # nothing is in the log: only the end of the reservation can make room for 5
    assert script.attempt([("p", 5, 10, w)], [], T0 + 10) == [0, hold + w - 10, 1, 0]
    assert script.client.llen(script.key("p")) == 0  # the optimistic charge was undone
    assert script.attempt([("p", 5, 10, w)], [], T0 + hold + w)[0] == 1
