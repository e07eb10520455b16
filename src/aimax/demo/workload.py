"""The multi-pair bot workload: what a real bot on MAX does, through aimax.

Per refresh cycle (the optimizer's ``refresh_period``, which alerts may stretch):

- one batched ``GET /api/v3/tickers`` per 100 pairs (never one call per pair);
- per pair: ``GET /api/v3/depth`` every cycle and ``GET /api/v3/k`` every
  ``klines_every`` cycles, kept in bounded caches the memory manager can shrink;
- an indicator (EMA crossover and RSI over the k-line closes) computed in the
  ``strategy`` thread pool, off the event loop;
- now and then a resting limit order far from the price, cancelled a cycle later
  (orders and cancels take the limiter's urgent classes).

Every request goes through the client, hence through the limiter, which the
optimizer owns. Counts of what happened are kept in :class:`WorkloadCounters`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any, TypeVar

from aimax.errors import AimaxError, ExchangeBanned, ExchangeError, RateLimited
from aimax.exchange.max import KLine, MaxClient, OrderBook
from aimax.memory import BoundedLRUCache
from aimax.optimizer import SystemPerformanceOptimizer
from aimax.planning import PairWorkload, TradingPlan

__all__ = ["WorkloadCounters", "book_features", "indicators", "run_workload"]

logger = logging.getLogger(__name__)

TICKER_BATCH = 100
RING = 4096
"""How many recent periods and order round trips the counters keep."""
T = TypeVar("T")


@dataclass
class WorkloadCounters:
    """What the workload did (plain counters; the event loop is single-threaded)."""

    cycles: int = 0
    ticker_calls: int = 0
    depth_calls: int = 0
    kline_calls: int = 0
    indicators: int = 0
    orders: int = 0
    cancels: int = 0
    errors: int = 0
    bans: int = 0
    errors_by_type: dict[str, int] = field(default_factory=dict)
    order_admission_p99: float | None = None
    """p99 of the limiter's admission wait for orders and cancels (the client's)."""
    cycle_periods: deque[float] = field(default_factory=lambda: deque(maxlen=RING))
    """The last :data:`RING` pair-cycle periods (a ring: memory stays flat)."""
    order_waits: deque[float] = field(default_factory=lambda: deque(maxlen=RING))
    """The last :data:`RING` order/cancel round trips, limiter wait included."""

    def error(self, exc: BaseException) -> None:
        """Count an error by its type."""
        self.errors += 1
        name = type(exc).__name__
        self.errors_by_type[name] = self.errors_by_type.get(name, 0) + 1
        if isinstance(exc, ExchangeBanned):
            self.bans += 1

    @property
    def measured_period(self) -> float | None:
        """Median time between the starts of consecutive cycles of one pair (over the
        last :data:`RING` cycles)."""
        if not self.cycle_periods:
            return None
        ordered = sorted(self.cycle_periods)
        return ordered[len(ordered) // 2]

    @property
    def order_wait_p99(self) -> float | None:
        """p99 of the recent order and cancel round trips (limiter wait included)."""
        if not self.order_waits:
            return None
        ordered = sorted(self.order_waits)
        return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def _ema(values: Sequence[float], span: int) -> float:
    alpha = 2 / (span + 1)
    ema = values[0]
    for v in values[1:]:
        ema = alpha * v + (1 - alpha) * ema
    return ema


def indicators(closes: Sequence[float]) -> dict[str, float]:
    """EMA(12), EMA(26), their difference and RSI(14) of ``closes`` (CPU work)."""
    if len(closes) < 2:
        return {"ema_fast": math.nan, "ema_slow": math.nan, "macd": math.nan, "rsi": math.nan}
    fast, slow = _ema(closes, 12), _ema(closes, 26)
    gains = losses = 0.0
    window = closes[-15:]
    for a, b in itertools.pairwise(window):
        change = b - a
        if change > 0:
            gains += change
        else:
            losses -= change
    rsi = 100.0 if losses == 0 else 100 - 100 / (1 + gains / losses)
    return {"ema_fast": fast, "ema_slow": slow, "macd": fast - slow, "rsi": rsi}


def book_features(book: OrderBook) -> dict[str, float]:
    """Mid price, spread (in bp) and top-of-book imbalance of an order book."""
    if not book.bids or not book.asks:
        return {"mid": math.nan, "spread_bp": math.nan, "imbalance": math.nan}
    # best levels by price, whatever order the exchange lists them in
    bid = max(book.bids, key=lambda level: level.price)
    ask = min(book.asks, key=lambda level: level.price)
    mid = (float(bid.price) + float(ask.price)) / 2
    volume = float(bid.volume) + float(ask.volume)
    return {
        "mid": mid,
        "spread_bp": (float(ask.price) - float(bid.price)) / mid * 1e4 if mid else math.nan,
        "imbalance": (float(bid.volume) - float(ask.volume)) / volume if volume else 0.0,
    }


class _Bot:
    def __init__(
        self,
        client: MaxClient,
        optimizer: SystemPerformanceOptimizer,
        markets: Sequence[str],
        *,
        trade: bool,
        order_probability: float,
        klines_every: int,
        seed: int,
    ) -> None:
        self.client = client
        self.optimizer = optimizer
        self.markets = list(markets)
        self.trade = trade
        self.order_probability = order_probability
        self.klines_every = max(1, klines_every)
        self.rng = random.Random(seed)
        self.counters = WorkloadCounters()
        # one book and one candle list a pair, as deep as the plan says the strategy
        # keeps (the requests ask for that much): the caches hold the plan's rows
        plan = optimizer.plan
        self.book_levels = plan_workload(plan).book_levels
        self.kline_history = plan_workload(plan).kline_history
        pairs = max(1, len(self.markets))
        self.books: BoundedLRUCache[str, object] = BoundedLRUCache(
            max_items=pairs, name="demo_books", manager=optimizer.memory, priority=10
        )
        self.candles: BoundedLRUCache[str, list[KLine]] = BoundedLRUCache(
            max_items=pairs, name="demo_klines", manager=optimizer.memory, priority=20
        )
        self.prices: dict[str, Decimal] = {}
        self.min_volume: dict[str, Decimal] = {}
        self.price_tick: dict[str, Decimal] = {}

    async def _guard(self, what: str, call: Awaitable[T]) -> T | None:
        try:
            return await call
        except (ExchangeError, RateLimited) as exc:
            self.counters.error(exc)
            logger.debug("%s failed: %s", what, exc)
        except AimaxError as exc:
            self.counters.error(exc)
            logger.warning("%s failed: %s", what, exc)
        return None

    async def tickers(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            start = time.monotonic()
            for i in range(0, len(self.markets), TICKER_BATCH):
                batch = self.markets[i : i + TICKER_BATCH]
                result = await self._guard("tickers", self.client.tickers(batch))
                self.counters.ticker_calls += 1
                for ticker in result or ():
                    if ticker.last is not None:
                        self.prices[ticker.market] = ticker.last
            await _sleep_until(start + self.optimizer.refresh_period, deadline)

    async def pair(self, market: str, offset: float, deadline: float) -> None:
        await asyncio.sleep(offset)  # spread the pairs over the cycle
        cycle = 0
        last_start: float | None = None
        resting: str | None = None
        while time.monotonic() < deadline:
            start = time.monotonic()
            if last_start is not None:
                self.counters.cycle_periods.append(start - last_start)
            last_start = start
            book = await self._guard("depth", self.client.depth(market, limit=self.book_levels))
            self.counters.depth_calls += 1
            if book is not None:
                self.books[market] = book
                await self.optimizer.pools.run("market_data", book_features, book)
            if cycle % self.klines_every == 0:
                candles = await self._guard(
                    "k", self.client.k(market, period=1, limit=self.kline_history)
                )
                self.counters.kline_calls += 1
                if candles:
                    self.candles[market] = candles
            closes = [float(c.close) for c in self.candles.get(market) or ()]
            if closes:
                await self.optimizer.pools.run("strategy", indicators, closes)
                self.counters.indicators += 1
            if self.trade:
                if resting is not None:
                    t0 = time.monotonic()
                    await self._guard("cancel", self.client.cancel_order(client_oid=resting))
                    self.counters.order_waits.append(time.monotonic() - t0)
                    self.counters.cancels += 1
                    resting = None
                elif self.rng.random() < self.order_probability and market in self.prices:
                    resting = await self._order(market)
            self.counters.cycles += 1
            cycle += 1
            await _sleep_until(start + self.optimizer.refresh_period, deadline)

    async def _order(self, market: str) -> str | None:
        volume = self.min_volume.get(market)
        if volume is None:
            return None
        tick = self.price_tick.get(market, Decimal("0.01"))
        price = (self.prices[market] * Decimal("0.9")).quantize(tick, rounding=ROUND_DOWN)
        if price <= 0:  # a price below one tick of the market: nothing sensible to bid
            return None
        t0 = time.monotonic()
        order = await self._guard(
            "order", self.client.create_order(market, "buy", volume, price, ord_type="limit")
        )
        self.counters.order_waits.append(time.monotonic() - t0)
        self.counters.orders += 1
        return getattr(order, "client_oid", None)


def plan_workload(plan: TradingPlan | None) -> PairWorkload:
    """The per-pair workload the plan was made for (the default one without a plan)."""
    return plan.workload if plan is not None and plan.workload is not None else PairWorkload()


async def _sleep_until(when: float, deadline: float) -> None:
    delay = min(when, deadline) - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def run_workload(
    client: MaxClient,
    optimizer: SystemPerformanceOptimizer,
    markets: Sequence[str],
    *,
    duration: float,
    trade: bool = True,
    order_probability: float = 0.1,
    klines_every: int = 5,
    seed: int = 0,
    stop: asyncio.Event | None = None,
) -> WorkloadCounters:
    """Run the bot on ``markets`` for ``duration`` seconds, or until ``stop`` is set
    (then every pair task is cancelled where it waits); returns what it did."""
    bot = _Bot(
        client,
        optimizer,
        markets,
        trade=trade,
        order_probability=order_probability,
        klines_every=klines_every,
        seed=seed,
    )
    if trade:
        known = {m.id: m for m in await client.markets()}
        bot.min_volume = {
            m: known[m].min_base_amount * 2
            for m in markets
            if m in known and known[m].min_base_amount
        }
        bot.price_tick = {
            m: Decimal(1).scaleb(-known[m].quote_unit_precision) for m in markets if m in known
        }
    deadline = time.monotonic() + duration
    period = optimizer.refresh_period
    n = max(1, len(markets))
    optimizer.monitor.watch_loop(asyncio.get_running_loop())
    tasks = [asyncio.create_task(bot.tickers(deadline))]
    tasks += [
        asyncio.create_task(bot.pair(market, period * i / n, deadline))
        for i, market in enumerate(markets)
    ]
    work = asyncio.gather(*tasks)
    # a cancelled gather ends with CancelledError as its exception: mark it seen
    work.add_done_callback(lambda f: f.cancelled() or f.exception())
    waiter = asyncio.create_task(stop.wait()) if stop is not None else None
    try:
        if waiter is None:
            await work
        else:
            either: set[asyncio.Future[Any]] = {work, waiter}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if work.done():
                work.result()  # the workload's own failure, if any
    finally:
        work.cancel()  # cancels every task; the gather ends cancelled, not failed
        for task in tasks:
            task.cancel()
        if waiter is not None:
            waiter.cancel()
        # let every task finish unwinding (a request in flight, a limiter wait)
        await asyncio.gather(*tasks, return_exceptions=True)
        optimizer.monitor.unwatch_loop(asyncio.get_running_loop())
    return bot.counters
