"""Client rules of issue 15: the time sync never queues behind market data; amounts
finer than the market's precision are refused before anything is sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from aimax import errors
from aimax.exchange.max import MaxClient
from aimax.exchange.simulator import MaxSimulator, SimulatorConfig
from aimax.ratelimit import APIRateLimiter

KEY, SECRET = "rules-key", "rules-secret"


@pytest.fixture
def sim() -> Iterator[MaxSimulator]:
    config = SimulatorConfig(n_markets=3, history_seconds=0, strict_nonces=True)
    with MaxSimulator(config) as simulator:
        simulator.add_account(KEY, SECRET, {"twd": "100000000", "btc": "10"})
        yield simulator


async def test_first_signed_call_does_not_wait_behind_market_data(sim: MaxSimulator) -> None:
    """The public budget is spent (market data would wait about a minute): the first
    signed call, and the time sync it triggers, go through at once."""
    limiter = APIRateLimiter.for_max(warm_start=0.0)
    spent = 0
    while True:
        try:
            limiter.try_acquire("market_data")
        except errors.WouldBlock:
            break
        spent += 1
    assert spent > 100
    async with MaxClient(
        base_url=sim.url, access_key=KEY, secret_key=SECRET, limiter=limiter
    ) as client:
        info = await asyncio.wait_for(client.info(), timeout=20)
        assert info is not None
        assert client.statistics().time_syncs == 1
        with pytest.raises(errors.WouldBlock):  # market data is still out of budget
            limiter.try_acquire("market_data")
    limiter.close()
    assert sim.stats().by_endpoint.get("GET /api/v3/timestamp") == 1


async def test_off_precision_amounts_are_refused_before_sending(sim: MaxSimulator) -> None:
    async with MaxClient(base_url=sim.url, access_key=KEY, secret_key=SECRET) as client:
        btctwd = await client.market("btctwd")
        sent = client.statistics().requests
        fine_price = "1500000." + "6" * (btctwd.quote_unit_precision + 1)
        with pytest.raises(errors.ConfigurationError, match="price") as price:
            await client.create_order("btctwd", "buy", "0.001", fine_price)
        assert fine_price in str(price.value)
        fine_volume = "0." + "0" * btctwd.base_unit_precision + "1"
        with pytest.raises(errors.ConfigurationError, match="volume") as volume:
            await client.create_order("btctwd", "sell", fine_volume, "9999999")
        assert fine_volume in str(volume.value)
        assert client.statistics().requests == sent  # nothing was sent
        # trailing zeros beyond the precision are not extra decimals
        order = await client.create_order("btctwd", "sell", "0.0100000000000", "99999999.000000000")
        assert order.state == "wait"
    assert sim.stats().orders_created == 1
