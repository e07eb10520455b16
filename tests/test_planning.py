"""The N-pair planner's arithmetic."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.errors import ConfigurationError
from aimax.planning import _MAX_PAIRS_SEARCHED, ExchangeBudget, PairWorkload, plan_for_pairs

pairs = st.integers(min_value=1, max_value=2000)
periods = st.floats(min_value=0.05, max_value=600, allow_nan=False)
workloads = st.builds(
    PairWorkload,
    ticker=st.sampled_from([0.0, 1.0, 2.0]),
    depth=st.floats(min_value=0, max_value=3),
    klines=st.floats(min_value=0, max_value=1),
    trades=st.floats(min_value=0, max_value=1),
    account=st.floats(min_value=0, max_value=0.5),
    orders=st.floats(min_value=0, max_value=0.5),
    cancels=st.floats(min_value=0, max_value=0.5),
).filter(lambda w: w.ticker + w.depth + w.klines + w.trades + w.private_per_cycle > 0)


def test_hand_computed_plan_for_50_pairs() -> None:
    # public: 50 x (depth 1 + klines 0.2) + 1 batched tickers call = 61 per cycle
    # budget: 1200 x 0.95 (headroom) x 1.0 (market data may fill the public pool) / 60
    # = 19 req/s -> 61 / 19 = 3.21 s per cycle
    plan = plan_for_pairs(50, refresh_period=5.0)
    assert plan.public_per_cycle == pytest.approx(61.0)
    assert plan.public_rate == pytest.approx(19.0)
    assert plan.sustainable_period == pytest.approx(61 / 19.0)
    assert plan.feasible
    assert plan.refresh_period == 5.0
    assert plan.ticker_calls_per_cycle == 1
    assert plan.public_per_pair == pytest.approx(19.0 / 50)
    # market data pool: 61/5 req/s x 0.15 s x 1.5 = 2.745 -> 3
    assert plan.pool_sizes["market_data"] == 3
    assert plan.pool_sizes["orders"] >= 2
    assert not plan.warnings


def test_infeasible_plan_warns_with_the_largest_serviceable_n() -> None:
    plan = plan_for_pairs(500, refresh_period=5.0)
    assert not plan.feasible
    assert plan.refresh_period == plan.sustainable_period > 5.0
    # 19 req/s x 5 s = 95 req per cycle: 1.2 n + ceil(n / 100) <= 95 -> n = 78
    assert plan.max_pairs_at_period == 78
    assert "500 pairs" in plan.warnings[0]
    assert "at most 78 pairs" in plan.warnings[0]


@settings(max_examples=200, deadline=None)
@given(n=pairs, period=periods, workload=workloads)
def test_max_pairs_is_the_exact_boundary(n: int, period: float, workload: PairWorkload) -> None:
    plan = plan_for_pairs(n, refresh_period=period, workload=workload)
    best = plan.max_pairs_at_period
    if best >= 1:
        assert plan_for_pairs(best, refresh_period=period, workload=workload).feasible
    if best < _MAX_PAIRS_SEARCHED:
        assert not plan_for_pairs(best + 1, refresh_period=period, workload=workload).feasible
    assert plan.feasible == (n <= best)


@settings(max_examples=200, deadline=None)
@given(n=pairs, period=periods, workload=workloads)
def test_budget_is_divided_never_grown(n: int, period: float, workload: PairWorkload) -> None:
    plan = plan_for_pairs(n, refresh_period=period, workload=workload)
    bigger = plan_for_pairs(n + 1, refresh_period=period, workload=workload)
    assert plan.public_per_pair * n == pytest.approx(plan.public_rate)
    assert bigger.public_per_pair < plan.public_per_pair
    assert bigger.sustainable_period >= plan.sustainable_period
    # the plan never spends more than the budget it was given
    assert plan.public_per_cycle / plan.refresh_period <= plan.public_rate * (1 + 1e-9)
    assert plan.private_per_cycle / plan.refresh_period <= plan.private_rate * (1 + 1e-9)
    assert plan.refresh_period >= plan.wanted_period


@given(n=pairs)
def test_batched_tickers_cost_one_call_per_hundred_pairs(n: int) -> None:
    plan = plan_for_pairs(n, workload=PairWorkload(ticker=1, depth=0, klines=0))
    assert plan.ticker_calls_per_cycle == math.ceil(n / 100)
    assert plan.batch_endpoints


def test_share_for_several_processes_scales_the_budget() -> None:
    one = plan_for_pairs(100, budget=ExchangeBudget(share=1.0))
    quarter = plan_for_pairs(100, budget=ExchangeBudget(share=0.25))
    assert quarter.public_rate == pytest.approx(one.public_rate / 4)
    assert quarter.sustainable_period == pytest.approx(one.sustainable_period * 4)


def test_strategy_pool_capped_by_cpus() -> None:
    heavy = PairWorkload(strategy_cpu_seconds=1.0)
    assert plan_for_pairs(100, workload=heavy, cpu_count=4).pool_sizes["strategy"] == 4


def test_cache_rows_are_what_the_strategy_keeps_not_a_share_of_ram() -> None:
    work = PairWorkload(kline_history=100, book_levels=20, trade_history=50)
    small = plan_for_pairs(10, workload=work, memory_budget_bytes=10**6)
    large = plan_for_pairs(10, workload=work, memory_budget_bytes=10**12)
    assert small.cache_items_per_pair == large.cache_items_per_pair == 100 + 2 * 20 + 50
    assert large.cache_budget_bytes == 10 * 190 * 256
    assert not large.warnings


def test_caches_larger_than_the_memory_budget_warn() -> None:
    plan = plan_for_pairs(1000, memory_budget_bytes=1_000_000, cache_fraction=0.5)
    assert plan.cache_budget_bytes == 1000 * 80 * 256
    assert any("more than the 500,000 bytes" in w for w in plan.warnings)


def test_an_infeasible_request_says_what_would_serve_it() -> None:
    budget = ExchangeBudget()
    plan = plan_for_pairs(100_000, refresh_period=5.0, budget=budget)
    assert not plan.feasible
    fewer, longer, streaming = plan.suggestions
    assert fewer.startswith(f"fewer pairs: at most {plan.max_pairs_at_period} at 5s")
    assert longer.startswith(f"a longer period: {plan.sustainable_period:.2f}s")
    # on the stream REST keeps the k-lines (0.2 a cycle) and the private calls
    expected = max(100_000 * 0.2 / budget.public_rate, 100_000 * 0.09 / budget.private_rate)
    assert plan.streaming_period == pytest.approx(expected)
    assert "streaming" in streaming
    assert f"{expected:.2f}s" in streaming


def test_streaming_is_named_when_it_serves_the_wanted_period() -> None:
    plan = plan_for_pairs(100, refresh_period=1.5)
    assert not plan.feasible  # 121 REST calls a cycle at 19/s: 6.4 s
    assert plan.streaming_period == pytest.approx(20 / 19)  # the k-lines alone
    assert "fit every 1.5s" in plan.suggestions[-1]


def test_a_feasible_plan_suggests_nothing() -> None:
    assert plan_for_pairs(5).suggestions == ()


def test_the_default_budget_is_the_max_limiters() -> None:
    from aimax.ratelimit import APIRateLimiter

    limiter = APIRateLimiter.for_max(headroom=0.95)
    try:
        assert ExchangeBudget.from_limiter(limiter) == ExchangeBudget()
        halves = ExchangeBudget.from_limiter(limiter, processes=2)
    finally:
        limiter.close()
    assert ExchangeBudget().public_rate == pytest.approx(1200 * 0.95 / 60)
    assert halves.public_rate == pytest.approx(ExchangeBudget().public_rate / 2)
    assert ExchangeBudget.for_max() == ExchangeBudget()


def test_plan_as_dict_is_plain_data() -> None:
    import json

    data = plan_for_pairs(5).as_dict()
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_pairs": 0}, "n_pairs"),
        ({"n_pairs": -3}, "n_pairs"),
        ({"n_pairs": 5, "refresh_period": 0}, "refresh_period"),
        ({"n_pairs": 5, "cpu_count": 0}, "cpu_count"),
        ({"n_pairs": 5, "cache_fraction": 1.5}, "cache_fraction"),
        ({"n_pairs": 5, "margin": 0.5}, "margin"),
    ],
)
def test_bad_input_is_named(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        plan_for_pairs(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"public_limit": 0}, "public_limit"),
        ({"headroom": 0}, "headroom"),
        ({"share": 2}, "share"),
        ({"public_window": -1}, "public_window"),
    ],
)
def test_bad_budget_is_named(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        ExchangeBudget(**kwargs)  # type: ignore[arg-type]


def test_bad_workload_is_named() -> None:
    with pytest.raises(ConfigurationError, match="depth"):
        PairWorkload(depth=-1)
