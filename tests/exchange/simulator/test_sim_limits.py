"""The pure limit core: exact sliding window, ban that restarts on every request."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.errors import ConfigurationError
from aimax.exchange.simulator import PenaltyWindow

# (gap since the previous request, cost), with integer times so the checks are exact
requests_st = st.lists(
    st.tuples(st.integers(min_value=0, max_value=7), st.integers(min_value=1, max_value=3)),
    min_size=1,
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    requests=requests_st,
    limit=st.integers(min_value=1, max_value=8),
    window=st.integers(min_value=1, max_value=12),
    ban=st.integers(min_value=0, max_value=15),
)
def test_never_more_than_limit_in_any_window_and_no_false_refusals(
    requests: list[tuple[int, int]], limit: int, window: int, ban: int
) -> None:
    w = PenaltyWindow(limit=limit, window=float(window), ban=float(ban))
    now = 0
    accepted: list[tuple[int, int]] = []
    last_refusal: int | None = None
    for gap, cost in requests:
        now += gap
        decision = w.hit("k", float(now), cost)
        in_window = sum(c for t, c in accepted if t > now - window)
        in_ban = last_refusal is not None and now < last_refusal + ban
        if decision.allowed:
            # allowed only when not banned and the budget has room
            assert not in_ban
            assert in_window + cost <= limit
            accepted.append((now, cost))
            assert decision.used == in_window + cost
        else:
            # refused only when banned or the window is full: never conservatively
            assert in_ban or in_window + cost > limit
            assert decision.banned_until == now + ban
            assert decision.ban_started != in_ban
            assert decision.ban_extended == in_ban
            last_refusal = now
    # the exactness invariant over every window [s, s + window)
    for start, _ in accepted:
        total = sum(c for t, c in accepted if start <= t < start + window)
        assert total <= limit
    assert w.peak("k") <= limit


@settings(max_examples=100, deadline=None)
@given(
    limit=st.integers(min_value=1, max_value=50),
    window=st.integers(min_value=1, max_value=100),
)
def test_full_budget_is_usable_exactly(limit: int, window: int) -> None:
    """A burst gets exactly ``limit`` through, the next is refused; after a full
    window without requests (and the ban over) the whole budget is back."""
    w = PenaltyWindow(limit=limit, window=float(window), ban=float(window))
    results = [w.hit("ip", 0.0).allowed for _ in range(limit + 1)]
    assert results == [True] * limit + [False]
    assert w.banned_until("ip", 0.0) == float(window)
    after = float(window)  # ban ends and the burst leaves the window at the same instant
    assert [w.hit("ip", after).allowed for _ in range(limit)] == [True] * limit


@settings(max_examples=100, deadline=None)
@given(
    pokes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=20),
    ban=st.integers(min_value=10, max_value=20),
)
def test_ban_restarts_on_every_request_during_it(pokes: list[int], ban: int) -> None:
    w = PenaltyWindow(limit=1, window=1.0, ban=float(ban))
    assert w.hit("a", 0.0).allowed
    first = w.hit("a", 0.0)
    assert first.ban_started
    assert first.banned_until == ban
    now = 0
    for gap in pokes:  # every gap < ban: each poke lands inside the current ban
        now += gap
        decision = w.hit("a", float(now))
        assert not decision.allowed
        assert decision.ban_extended
        assert decision.banned_until == now + ban
        assert w.banned_until("a", float(now)) == now + ban
    # staying quiet until the last restart's end frees it
    assert w.banned_until("a", float(now + ban)) is None
    assert w.hit("a", float(now + ban)).allowed


def test_keys_are_independent() -> None:
    w = PenaltyWindow(limit=2, window=10.0, ban=5.0)
    assert w.hit("a", 0.0).allowed
    assert w.hit("a", 0.0).allowed
    assert not w.hit("a", 0.0).allowed
    assert w.hit("b", 0.0).allowed
    assert w.used("a", 0.0) == 2
    assert w.used("b", 0.0) == 1
    assert w.used("c", 0.0) == 0
    assert sorted(w.scopes()) == ["a", "b"]
    w.reset()
    assert w.scopes() == []
    assert w.hit("a", 0.0).allowed


def test_refused_requests_use_no_budget() -> None:
    w = PenaltyWindow(limit=3, window=10.0, ban=0.0)  # ban 0: refusals are plain
    for _ in range(3):
        assert w.hit("a", 0.0).allowed
    for _ in range(50):
        assert not w.hit("a", 1.0).allowed
    assert w.used("a", 1.0) == 3
    assert w.hit("a", 10.0).allowed  # exactly one window after the first three


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0, "window": 1.0, "ban": 1.0},
        {"limit": 1, "window": 0.0, "ban": 1.0},
        {"limit": 1, "window": 1.0, "ban": -1.0},
        {"limit": True, "window": 1.0, "ban": 1.0},
    ],
)
def test_bad_configuration(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        PenaltyWindow(**kwargs)  # type: ignore[arg-type]


def test_bad_cost() -> None:
    with pytest.raises(ConfigurationError, match="cost"):
        PenaltyWindow(limit=1, window=1.0, ban=1.0).hit("a", 0.0, cost=0)
