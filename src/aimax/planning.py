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
- cache sizes from what the strategy keeps per pair (k-line history, book levels,
  recent trades), checked against the memory budget;
- when the wanted period cannot be served, what would serve it: fewer pairs, a
  longer period, or market data on the stream (REST then carries k-lines only).

The default :class:`ExchangeBudget` is the one :meth:`ExchangeBudget.for_max` reads
from the MAX limiter profile, so ``aimax plan``, the optimizer and the demo plan on
one budget (19 market-data requests per second).

>>> plan = plan_for_pairs(50, refresh_period=5.0)
>>> plan.feasible, round(plan.sustainable_period, 2)
(True, 3.21)
>>> plan_for_pairs(500, refresh_period=5.0).max_pairs_at_period < 500
True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from aimax._clock import as_seconds
from aimax.errors import ConfigurationError

if TYPE_CHECKING:
    from aimax.ratelimit import APIRateLimiter

__all__ = ["DEFAULT_HEADROOM", "ExchangeBudget", "PairWorkload", "TradingPlan", "plan_for_pairs"]

DEFAULT_HEADROOM = 0.95
"""The fraction of each MAX pool the optimizer's limiter uses (and plans on)."""

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
    headroom: float = 0.95
    share: float = 1.0
    market_data_share: float = 1.0
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

    @classmethod
    def from_limiter(cls, limiter: APIRateLimiter, *, processes: int = 1) -> ExchangeBudget:
        """The budget ``limiter`` enforces on MAX's REST pools, this process's
        ``1/processes`` part of it (the one place a plan's budget comes from).

        >>> from aimax.ratelimit import APIRateLimiter
        >>> ExchangeBudget.from_limiter(APIRateLimiter.for_max()) == ExchangeBudget()
        True
        """
        from aimax.ratelimit import Priority

        _positive_int("processes", processes)
        pools = limiter.pools
        public, private = pools["rest_public"], pools["rest_private"]

        def share_of(pool: str, priority: Priority) -> float:
            limit = pools[pool]
            usable = limit.limit * limit.headroom
            return min(1.0, max(1e-9, limiter.cap(pool, priority) / usable))

        return cls(
            public_limit=public.limit,
            public_window=public.window,
            private_limit=private.limit,
            private_window=private.window,
            headroom=public.headroom,
            # the limiter's limits already carry its ``share``; with a shared (Redis)
            # budget this process plans for its part of it
            share=1.0 / processes,
            market_data_share=round(share_of("rest_public", Priority.MARKET_DATA), 12),
            account_share=round(share_of("rest_private", Priority.ACCOUNT), 12),
        )

    @classmethod
    def for_max(cls, *, share: float = 1.0, processes: int = 1) -> ExchangeBudget:
        """The budget of :meth:`APIRateLimiter.for_max` with the optimizer's default
        headroom: what ``aimax plan`` plans on.

        >>> round(ExchangeBudget.for_max().public_rate, 2)
        19.0
        """
        from aimax.ratelimit import APIRateLimiter

        limiter = APIRateLimiter.for_max(share=share, headroom=DEFAULT_HEADROOM)
        try:
            return cls.from_limiter(limiter, processes=processes)
        finally:
            limiter.close()

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
    cycle. What the strategy keeps per pair sizes the caches: ``kline_history``
    candles, ``book_levels`` levels a side, ``trade_history`` recent trades, each
    row about ``cache_bytes_per_item`` bytes once parsed.
    """

    ticker: float = 1.0
    depth: float = 1.0
    klines: float = 0.2
    trades: float = 0.0
    account: float = 0.05
    orders: float = 0.02
    cancels: float = 0.02
    strategy_cpu_seconds: float = 0.002
    kline_history: int = 60
    book_levels: int = 10
    trade_history: int = 0
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
        for name in ("kline_history", "book_levels", "trade_history"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigurationError(f"{name} must be an integer >= 0, got {value!r}")
        _positive_int("cache_bytes_per_item", self.cache_bytes_per_item)

    @property
    def rows_per_pair(self) -> int:
        """Rows one pair's caches hold: candles, both sides' levels, trades."""
        return max(1, self.kline_history + 2 * self.book_levels + self.trade_history)

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
    """Rows one pair's caches hold (what the strategy keeps, not a share of RAM)."""
    cache_budget_bytes: int
    """What the caches of ``n_pairs`` pairs need, in bytes."""
    streaming_period: float = 0.0
    """The fastest period with books and tickers on the stream (REST: k-lines, private)."""
    suggestions: tuple[str, ...] = field(default=())
    """When not feasible: what would serve the request."""
    workload: PairWorkload | None = None
    """The per-pair workload planned for."""
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
            "streaming_period": self.streaming_period,
            "suggestions": list(self.suggestions),
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


def _suggestions(
    n: int, wanted: float, sustainable: float, max_pairs: int, streaming: float
) -> list[str]:
    """What would serve ``n`` pairs at ``wanted`` seconds, when REST alone cannot."""
    out = []
    if max_pairs > 0:
        out.append(f"fewer pairs: at most {max_pairs} at {wanted:g}s")
    else:
        out.append(f"fewer pairs: not even one pair fits a {wanted:g}s period on REST")
    out.append(f"a longer period: {sustainable:.2f}s or more for {n} pairs")
    if streaming <= wanted:
        out.append(
            f"streaming: books and tickers on the WebSocket leave REST k-lines and "
            f"private calls, which {n} pairs fit every {wanted:g}s "
            f"(fastest {streaming:.2f}s)"
        )
    else:
        out.append(
            f"streaming: books and tickers on the WebSocket bring it to {streaming:.2f}s; "
            "fewer k-line calls a cycle would go further"
        )
    return out


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
    cache_items = work.rows_per_pair
    cache_bytes = n * cache_items * work.cache_bytes_per_item
    cache_room = int(mem * cache_share)
    streamed = dataclasses.replace(work, ticker=0.0, depth=0.0, trades=0.0)
    streaming = _sustainable_period(n, streamed, money)

    warnings: list[str] = []
    suggestions: list[str] = []
    if not feasible:
        warnings.append(
            f"{n} pairs cannot be refreshed every {wanted:g}s on this budget: they need at "
            f"least {sustainable:.2f}s; at {wanted:g}s at most {max_pairs} pairs can be served "
            f"(running at {period:.2f}s instead)"
        )
        suggestions = _suggestions(n, wanted, sustainable, max_pairs, streaming)
    if cache_bytes > cache_room:
        warnings.append(
            f"the caches of {n} pairs need {cache_bytes:,} bytes ({cache_items} rows of "
            f"{work.cache_bytes_per_item} bytes a pair), more than the {cache_room:,} bytes "
            f"({cache_share:.0%}) of the memory budget: keep less history per pair"
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
            f"{work.kline_history} candles + 2 x {work.book_levels} book levels + "
            f"{work.trade_history} trades a pair, at {work.cache_bytes_per_item} bytes a row"
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
        streaming_period=streaming,
        suggestions=tuple(suggestions),
        workload=work,
        warnings=tuple(warnings),
        reasons=reasons,
    )
