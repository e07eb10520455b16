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
    # budget: 1200 x 0.9 x 0.8 / 60 = 14.4 req/s -> 61 / 14.4 = 4.236 s per cycle
    plan = plan_for_pairs(50, refresh_period=5.0)
    assert plan.public_per_cycle == pytest.approx(61.0)
    assert plan.public_rate == pytest.approx(14.4)
    assert plan.sustainable_period == pytest.approx(61 / 14.4)
    assert plan.feasible
    assert plan.refresh_period == 5.0
    assert plan.ticker_calls_per_cycle == 1
    assert plan.public_per_pair == pytest.approx(14.4 / 50)
    # market data pool: 61/5 req/s x 0.15 s x 1.5 = 2.745 -> 3
    assert plan.pool_sizes["market_data"] == 3
    assert plan.pool_sizes["orders"] >= 2
    assert not plan.warnings


def test_infeasible_plan_warns_with_the_largest_serviceable_n() -> None:
    plan = plan_for_pairs(500, refresh_period=5.0)
    assert not plan.feasible
    assert plan.refresh_period == plan.sustainable_period > 5.0
    # 14.4 req/s x 5 s = 72 req per cycle: 1.2 n + ceil(n / 100) <= 72 -> n = 59
    assert plan.max_pairs_at_period == 59
    assert "500 pairs" in plan.warnings[0]
    assert "at most 59 pairs" in plan.warnings[0]


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


def test_cache_items_from_memory_budget() -> None:
    plan = plan_for_pairs(10, memory_budget_bytes=1_000_000, cache_fraction=0.5)
    assert plan.cache_budget_bytes == 500_000
    assert plan.cache_items_per_pair == 500_000 // (10 * 256)


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
