"""The naive client the demo runs side by side with aimax: what bots commonly do.

Every cycle it fires the whole workload at once with plain ``httpx`` and
``asyncio.gather`` (one batched tickers call, a depth call per pair, the k-lines every
fifth cycle), with no limiter. It runs against its own simulator, so the exchange's
own counters judge it: on MAX's budget it is answered 429 and banned within seconds.

    >>> import asyncio                                          # doctest: +SKIP
    >>> asyncio.run(run_naive(sim, markets, duration=30, period=1.0))  # doctest: +SKIP
    NaiveOutcome(requests=..., first_ban_after=0.8)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from aimax.exchange.simulator import MaxSimulator

__all__ = ["NaiveOutcome", "run_naive"]


@dataclass(frozen=True)
class NaiveOutcome:
    """What the naive client's simulator counted."""

    requests: int
    responses_429: int
    bans: int
    first_ban_after: float | None
    """Seconds from the start to the exchange's first ban (``None``: never banned)."""
    ran_for: float

    def as_dict(self) -> dict[str, float | int | None]:
        """Plain data for ``workload.json`` and the report's notes."""
        return {
            "requests": self.requests,
            "responses_429": self.responses_429,
            "bans": self.bans,
            "first_ban_after": self.first_ban_after,
            "ran_for": self.ran_for,
        }


async def run_naive(
    sim: MaxSimulator,
    markets: Sequence[str],
    *,
    duration: float,
    period: float,
    after_ban: float = 0.0,
    stop: asyncio.Event | None = None,
) -> NaiveOutcome:
    """Fire the workload for ``markets`` every ``period`` seconds for ``duration``
    seconds (or until ``stop``); once banned, go on for ``after_ban`` seconds only
    (the point is made, and its flood would only slow the machine down)."""
    start = time.monotonic()
    deadline = start + duration
    first_ban: float | None = None
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    markets = list(markets)
    async with httpx.AsyncClient(base_url=sim.url, limits=limits, timeout=10) as http:
        cycle = 0
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            began = time.monotonic()
            calls = [http.get("/api/v3/tickers", params={"markets[]": markets})]
            calls += [http.get("/api/v3/depth", params={"market": m, "limit": 10}) for m in markets]
            if cycle % 5 == 0:
                calls += [
                    http.get("/api/v3/k", params={"market": m, "period": 1, "limit": 60})
                    for m in markets
                ]
            await asyncio.gather(*calls, return_exceptions=True)
            cycle += 1
            if first_ban is None and sim.stats().bans_started:
                first_ban = time.monotonic() - start
                deadline = min(deadline, time.monotonic() + after_ban)
            await asyncio.sleep(max(0.0, began + period - time.monotonic()))
    stats = sim.stats()
    return NaiveOutcome(
        requests=stats.requests,
        responses_429=stats.rate_limited,
        bans=stats.bans_started,
        first_ban_after=first_ban,
        ran_for=time.monotonic() - start,
    )
