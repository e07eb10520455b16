"""Capacity planning for N trading pairs: the arithmetic behind
``SystemPerformanceOptimizer.optimize_for_trading_pairs``.

Pure: no I/O, no threads, no clock. Given the exchange budget, the workload of one
pair per refresh cycle, the machine and an observed request latency, it answers:

- the request budget per pair: a fixed budget divided among pairs (it shrinks as n
  grows, it never grows with n);
- the fastest refresh period the budget sustains for n pairs, and whether the wanted
  period is achievable; if not, the largest n that is;
- which batch endpoints replace per-pair calls (``GET /api/v3/tickers``);
- pool sizes from Little's law (concurrency = arrival rate x latency);
- cache sizes from the memory budget.

>>> plan = plan_for_pairs(50, refresh_period=5.0)
>>> plan.feasible, round(plan.sustainable_period, 2)
(True, 5.0)
>>> plan_for_pairs(500, refresh_period=5.0).max_pairs_at_period < 500
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from aimax._clock import as_seconds
from aimax.errors import ConfigurationError

__all__ = ["ExchangeBudget", "PairWorkload", "TradingPlan", "plan_for_pairs"]

_MAX_PAIRS_SEARCHED = 1_000_000_000
"""``max_pairs_at_period`` is capped here (a workload that light is never the limit)."""


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise ConfigurationError(f"{name} must not be negative, got {value!r}")
    return float(value)


def _fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ConfigurationError(f"{name} must be a fraction in (0, 1], got {value!r}")
    return float(value)


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class ExchangeBudget:
    """The request budget the plan divides, as the limiter will enforce it.

    ``public_limit`` per ``public_window`` is MAX's per-IP REST budget,
    ``private_limit`` per ``private_window`` the per-account one. ``headroom`` is the
    fraction of each the limiter actually uses, ``share`` this process's share (for K
    processes on one IP/account without Redis, 1/K), and ``market_data_share`` /
    ``account_share`` the fraction of a pool's window the market-data and account
    priority classes may fill (the rest is reserved for orders and cancels).
    ``ticker_batch_size`` is how many markets one ``GET /api/v3/tickers`` call asks for.
    """

    public_limit: int = 1200
    public_window: float | timedelta = 60.0
    private_limit: int = 1200
    private_window: float | timedelta = 60.0
    headroom: float = 0.9
    share: float = 1.0
    market_data_share: float = 0.8
    account_share: float = 0.9
    ticker_batch_size: int = 100

    def __post_init__(self) -> None:
        _positive_int("public_limit", self.public_limit)
        _positive_int("private_limit", self.private_limit)
        object.__setattr__(
            self, "public_window", as_seconds(self.public_window, name="public_window")
        )
        object.__setattr__(
            self, "private_window", as_seconds(self.private_window, name="private_window")
        )
        for name in ("headroom", "share", "market_data_share", "account_share"):
            _fraction(name, getattr(self, name))
        _positive_int("ticker_batch_size", self.ticker_batch_size)

    @property
    def public_rate(self) -> float:
        """Market-data requests per second this process may send on the per-IP budget."""
        window = float(self.public_window)  # type: ignore[arg-type]  # seconds after __post_init__
        return self.public_limit * self.headroom * self.share * self.market_data_share / window

    @property
    def private_rate(self) -> float:
        """Private requests per second this process may send on the per-account budget."""
        window = float(self.private_window)  # type: ignore[arg-type]  # seconds after __post_init__
        return self.private_limit * self.headroom * self.share * self.account_share / window


@dataclass(frozen=True, kw_only=True)
class PairWorkload:
    """What one trading pair asks per refresh cycle (requests may be fractional:
    0.2 k-line calls per cycle means one every five cycles).

    ``ticker`` calls are batchable (``GET /api/v3/tickers``); ``depth``, ``klines``
    and ``trades`` are per pair on MAX. ``account``, ``orders`` and ``cancels`` are
    private calls. ``strategy_cpu_seconds`` is the CPU one pair's strategy needs per
    cycle, ``cache_bytes_per_item`` the estimated size of one cached row (k-line,
    trade or book level).
    """

    ticker: float = 1.0
    depth: float = 1.0
    klines: float = 0.2
    trades: float = 0.0
    account: float = 0.05
    orders: float = 0.02
    cancels: float = 0.02
    strategy_cpu_seconds: float = 0.002
    cache_bytes_per_item: int = 256

    def __post_init__(self) -> None:
        for name in (
            "ticker",
            "depth",
            "klines",
            "trades",
            "account",
            "orders",
            "cancels",
            "strategy_cpu_seconds",
        ):
            _non_negative(name, getattr(self, name))
        _positive_int("cache_bytes_per_item", self.cache_bytes_per_item)

    @property
    def private_per_cycle(self) -> float:
        """Private requests one pair makes per cycle."""
        return self.account + self.orders + self.cancels


@dataclass(frozen=True, kw_only=True)
class TradingPlan:
    """The plan for ``n_pairs``: budgets, refresh period, batching, pools and caches.

    All rates are requests per second; periods are seconds.
    """

    n_pairs: int
    wanted_period: float
    sustainable_period: float
    """The fastest refresh period the budget sustains for ``n_pairs`` (>= 0)."""
    refresh_period: float
    """The period to run at: ``max(wanted_period, sustainable_period)``."""
    feasible: bool
    max_pairs_at_period: int
    """The largest number of pairs served at ``wanted_period``."""
    public_rate: float
    private_rate: float
    public_per_pair: float
    private_per_pair: float
    public_per_cycle: float
    private_per_cycle: float
    public_utilisation: float
    """Share of the market-data budget the plan uses at ``refresh_period``."""
    ticker_calls_per_cycle: int
    batch_endpoints: tuple[str, ...]
    pool_sizes: Mapping[str, int]
    cache_items_per_pair: int
    cache_budget_bytes: int
    warnings: tuple[str, ...] = field(default=())
    reasons: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Plain data (JSON-serialisable) for reports."""
        return {
            "n_pairs": self.n_pairs,
            "wanted_period": self.wanted_period,
            "sustainable_period": self.sustainable_period,
            "refresh_period": self.refresh_period,
            "feasible": self.feasible,
            "max_pairs_at_period": self.max_pairs_at_period,
            "public_rate": self.public_rate,
            "private_rate": self.private_rate,
            "public_per_pair": self.public_per_pair,
            "private_per_pair": self.private_per_pair,
            "public_per_cycle": self.public_per_cycle,
            "private_per_cycle": self.private_per_cycle,
            "public_utilisation": self.public_utilisation,
            "ticker_calls_per_cycle": self.ticker_calls_per_cycle,
            "batch_endpoints": list(self.batch_endpoints),
            "pool_sizes": dict(self.pool_sizes),
            "cache_items_per_pair": self.cache_items_per_pair,
            "cache_budget_bytes": self.cache_budget_bytes,
            "warnings": list(self.warnings),
            "reasons": dict(self.reasons),
        }


def _ticker_calls(n: int, workload: PairWorkload, budget: ExchangeBudget) -> int:
    if workload.ticker == 0 or n == 0:
        return 0
    return math.ceil(n / budget.ticker_batch_size) * math.ceil(workload.ticker)


def _public_per_cycle(n: int, workload: PairWorkload, budget: ExchangeBudget) -> float:
    per_pair = workload.depth + workload.klines + workload.trades
    return n * per_pair + _ticker_calls(n, workload, budget)


def _sustainable_period(n: int, workload: PairWorkload, budget: ExchangeBudget) -> float:
    public = _public_per_cycle(n, workload, budget) / budget.public_rate
    private = n * workload.private_per_cycle / budget.private_rate
    return max(public, private)


def _max_pairs(period: float, workload: PairWorkload, budget: ExchangeBudget) -> int:
    """Largest n with sustainable_period(n) <= period (monotone in n: binary search)."""
    if _sustainable_period(1, workload, budget) > period:
        return 0
    lo, hi = 1, 2
    while hi < _MAX_PAIRS_SEARCHED and _sustainable_period(hi, workload, budget) <= period:
        lo, hi = hi, hi * 2
    if hi >= _MAX_PAIRS_SEARCHED and _sustainable_period(hi, workload, budget) <= period:
        return _MAX_PAIRS_SEARCHED
    while hi - lo > 1:  # invariant: lo fits, hi does not
        mid = (lo + hi) // 2
        if _sustainable_period(mid, workload, budget) <= period:
            lo = mid
        else:
            hi = mid
    return lo


def _little(rate: float, latency: float, margin: float, cap: int) -> int:
    return max(1, min(cap, math.ceil(rate * latency * margin)))


def plan_for_pairs(
    n_pairs: int,
    *,
    refresh_period: float | timedelta = 5.0,
    workload: PairWorkload | None = None,
    budget: ExchangeBudget | None = None,
    latency: float | timedelta = 0.15,
    cpu_count: int = 2,
    memory_budget_bytes: int = 512 * 1024 * 1024,
    cache_fraction: float = 0.25,
    max_pool_size: int = 64,
    margin: float = 1.5,
) -> TradingPlan:
    """Plan ``n_pairs`` pairs refreshed every ``refresh_period`` seconds.

    ``latency`` is the observed (or expected) time of one REST round trip, used for
    Little's law; ``margin`` (>= 1) the spare concurrency on top of it.

    >>> plan_for_pairs(200, refresh_period=2.0).feasible
    False
    """
    n = _positive_int("n_pairs", n_pairs)
    wanted = as_seconds(refresh_period, name="refresh_period")
    work = workload or PairWorkload()
    money = budget or ExchangeBudget()
    rtt = as_seconds(latency, name="latency")
    cpus = _positive_int("cpu_count", cpu_count)
    mem = _positive_int("memory_budget_bytes", memory_budget_bytes)
    cache_share = _fraction("cache_fraction", cache_fraction)
    cap = _positive_int("max_pool_size", max_pool_size)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin >= 1:
        raise ConfigurationError(f"margin must be a number >= 1, got {margin!r}")

    sustainable = _sustainable_period(n, work, money)
    period = max(wanted, sustainable)
    feasible = sustainable <= wanted
    max_pairs = _max_pairs(wanted, work, money)
    public_cycle = _public_per_cycle(n, work, money)
    private_cycle = n * work.private_per_cycle
    tickers = _ticker_calls(n, work, money)

    public_rate_used = public_cycle / period
    private_rate_used = private_cycle / period
    order_rate = n * (work.orders + work.cancels) / period
    strategy_load = n * work.strategy_cpu_seconds / period  # busy cores needed
    pools = {
        "market_data": _little(public_rate_used, rtt, margin, cap),
        "orders": max(2, _little(order_rate, rtt, margin, cap)),
        "io": _little(private_rate_used, rtt, margin, cap),
        "strategy": max(1, min(cpus, math.ceil(strategy_load * margin))),
    }
    cache_bytes = int(mem * cache_share)
    cache_items = max(1, cache_bytes // (n * work.cache_bytes_per_item))

    warnings: list[str] = []
    if not feasible:
        warnings.append(
            f"{n} pairs cannot be refreshed every {wanted:g}s on this budget: they need at "
            f"least {sustainable:.2f}s; at {wanted:g}s at most {max_pairs} pairs can be served "
            f"(running at {period:.2f}s instead)"
        )
    batch = (
        (
            f"GET /api/v3/tickers with markets[]: {tickers} call(s) per cycle of up to "
            f"{money.ticker_batch_size} markets instead of {math.ceil(n * work.ticker)} "
            "GET /api/v3/ticker calls",
        )
        if tickers
        else ()
    )
    reasons = {
        "refresh_period": (
            f"public demand {public_cycle:.1f} req/cycle at {money.public_rate:.2f} req/s and "
            f"private demand {private_cycle:.2f} req/cycle at {money.private_rate:.2f} req/s "
            f"need >= {sustainable:.3f}s per cycle"
        ),
        "market_data": (
            f"Little's law: {public_rate_used:.2f} req/s x {rtt:.3f}s x margin {margin:g}"
        ),
        "orders": f"Little's law on {order_rate:.3f} orders+cancels/s, at least 2 so a "
        "cancel never queues behind a create",
        "io": f"Little's law: {private_rate_used:.2f} private req/s x {rtt:.3f}s",
        "strategy": f"{strategy_load:.3f} busy cores needed, capped at {cpus} CPUs",
        "cache_items_per_pair": (
            f"{cache_share:.0%} of {mem} bytes over {n} pairs at "
            f"{work.cache_bytes_per_item} bytes per item"
        ),
    }
    return TradingPlan(
        n_pairs=n,
        wanted_period=wanted,
        sustainable_period=sustainable,
        refresh_period=period,
        feasible=feasible,
        max_pairs_at_period=max_pairs,
        public_rate=money.public_rate,
        private_rate=money.private_rate,
        public_per_pair=money.public_rate / n,
        private_per_pair=money.private_rate / n,
        public_per_cycle=public_cycle,
        private_per_cycle=private_cycle,
        public_utilisation=public_rate_used / money.public_rate,
        ticker_calls_per_cycle=tickers,
        batch_endpoints=batch,
        pool_sizes=pools,
        cache_items_per_pair=cache_items,
        cache_budget_bytes=cache_bytes,
        warnings=tuple(warnings),
        reasons=reasons,
    )
