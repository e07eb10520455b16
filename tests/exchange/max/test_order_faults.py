"""Orders are never placed twice: the fault matrix of issue 15, through the simulator.

Every cell arms one fault on the create (after the exchange accepted the order, or
before it handled it) and one way for the reconcile to fail, against a strict-nonce
simulator over real HTTP. The oracle is the simulator's own order book, read with a
separate fault-free client: for every cell exactly one order with the cell's
``client_oid`` exists, the caller holds it or ``OrderStateUnknown`` carrying that
``client_oid``, and the documented retry (the same order with the same
``client_oid``) returns that one order without placing another.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from decimal import Decimal

import pytest

from aimax import errors
from aimax.exchange.max import MaxClient, Order
from aimax.exchange.simulator import MaxSimulator, SimulatorConfig
from aimax.ratelimit import APIRateLimiter

KEY, SECRET = "fault-matrix-key", "fault-matrix-secret"
CREATE = "POST /api/v3/wallet/{wallet_type}/order"
LOOKUP = "GET /api/v3/order"
CANCEL = "DELETE /api/v3/order"
TIMEOUT = 0.4
ATTEMPTS = 2

# (fault, status, after_accept): what happens to the create's answer
CREATE_FAULTS = [
    ("status", 500, True),
    ("status", 502, True),
    ("status", 503, True),
    ("status", 504, True),
    ("hang", None, True),
    ("reset", None, True),
    ("empty", None, True),
    ("truncated", None, True),
    ("malformed", None, True),
    ("status", 503, False),  # refused before handling: no order until the retry
    ("hang", None, False),
]
RECONCILE = ["answers", "429", "no_budget", "timeout"]


class BudgetCut:
    """A real limiter whose "account" requests (the look-ups) get no budget once an
    order has been granted, as if the private budget were spent: ``RateLimited``."""

    def __init__(self, inner: APIRateLimiter) -> None:
        self.inner = inner
        self.armed = False
        self.cut = False

    async def acquire_async(
        self,
        kind: str,
        *,
        cost: int | None = None,
        pair: str | None = None,
        timeout: float | None = None,
    ) -> object:
        if self.cut and kind == "account":
            raise errors.RateLimited("no budget for the look-up (test)", retry_after=1.0)
        granted = await self.inner.acquire_async(kind, cost=cost, pair=pair, timeout=timeout)
        if self.armed and kind == "order":
            self.cut = True
        return granted

    def on_response(
        self, status: int, headers: Mapping[str, str], *, kind: str | None = None
    ) -> object:
        return self.inner.on_response(status, headers, kind=kind)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def sim() -> Iterator[MaxSimulator]:
    config = SimulatorConfig(
        n_markets=3, history_seconds=0, hang_seconds=TIMEOUT * 2, strict_nonces=True
    )
    with MaxSimulator(config) as simulator:
        simulator.add_account(KEY, SECRET, {"twd": "100000000", "btc": "50"}, name="matrix")
        yield simulator


async def _orders_with(sim: MaxSimulator, client_oid: str) -> list[str]:
    """The oracle: ids of the simulator's open orders holding ``client_oid``."""
    async with MaxClient(base_url=sim.url, access_key=KEY, secret_key=SECRET) as c:
        orders = await c.open_orders("btctwd", limit=1000)
    return [str(o.id) for o in orders if o.client_oid == client_oid]


_cells = list(itertools.product(CREATE_FAULTS, RECONCILE))


@pytest.mark.parametrize(
    ("create_fault", "reconcile"),
    _cells,
    ids=[f"{f}-{s}-{'after' if a else 'before'}-{r}" for (f, s, a), r in _cells],
)
async def test_fault_matrix_cell(
    sim: MaxSimulator, create_fault: tuple[str, int | None, bool], reconcile: str
) -> None:
    fault, status, after_accept = create_fault
    limiter = BudgetCut(APIRateLimiter.for_max(warm_start=0.0))
    client = MaxClient(
        base_url=sim.url,
        access_key=KEY,
        secret_key=SECRET,
        limiter=limiter,
        timeout=TIMEOUT,
        reconcile_attempts=ATTEMPTS,
        reconcile_delay=0.01,
        completion_guard=False,
    )
    async with client:
        await client.sync_time()  # so the cut below only hits the look-ups
        created_before = sim.stats().orders_created
        sim.inject(fault, endpoint=CREATE, after_accept=after_accept, status=status)
        if reconcile == "429":
            sim.inject("status", endpoint=LOOKUP, status=429, retry_after=0.0)
        elif reconcile == "timeout":
            sim.inject("hang", endpoint=LOOKUP, count=ATTEMPTS)
        elif reconcile == "no_budget":
            limiter.armed = True
        outcome: object
        try:
            outcome = await client.create_order("btctwd", "sell", "0.01", "99999999")
        except errors.OrderStateUnknown as exc:
            outcome = exc
        limiter.armed = limiter.cut = False
        if isinstance(outcome, errors.OrderStateUnknown):
            oid = outcome.client_oid
            # nothing that means "not sent" and nothing without the client_oid
            assert not after_accept or reconcile != "answers", outcome
        else:
            assert isinstance(outcome, Order)
            assert reconcile == "answers", outcome
            assert after_accept, outcome
            assert outcome.state == "wait"
            oid = outcome.client_oid or ""
        assert oid
        if after_accept:
            assert await _orders_with(sim, oid) != []
        # the documented retry: the same order, the same client_oid
        again = await client.create_order("btctwd", "sell", "0.01", "99999999", client_oid=oid)
        assert again.client_oid == oid
        assert again.volume == Decimal("0.01")
        # a second retry changes nothing either
        third = await client.create_order("btctwd", "sell", "0.01", "99999999", client_oid=oid)
        assert third.id == again.id
    held = await _orders_with(sim, oid)
    assert held == [str(again.id)]  # exactly one order, the one the caller holds
    assert sim.stats().orders_created - created_before == 1
    assert not isinstance(outcome, Exception) or outcome.client_oid == oid


@pytest.mark.parametrize("fault", ["status", "hang", "reset", "empty", "malformed"])
async def test_a_lost_cancel_answer_is_confirmed_by_a_look_up(
    sim: MaxSimulator, fault: str
) -> None:
    limiter = APIRateLimiter.for_max(warm_start=0.0)
    async with MaxClient(
        base_url=sim.url,
        access_key=KEY,
        secret_key=SECRET,
        limiter=limiter,
        timeout=TIMEOUT,
        reconcile_attempts=ATTEMPTS,
        reconcile_delay=0.01,
        completion_guard=False,
    ) as client:
        order = await client.create_order("btctwd", "sell", "0.01", "99999999")
        cancelled_before = sim.stats().orders_cancelled
        status = 503 if fault == "status" else None
        sim.inject(fault, endpoint=CANCEL, after_accept=True, status=status)
        result = await client.cancel_order(client_oid=order.client_oid)
        assert result.accepted
        assert result.order is not None
        assert result.order.state == "cancel"
        assert result.order.id == order.id
    assert sim.stats().orders_cancelled - cancelled_before == 1
    assert await _orders_with(sim, order.client_oid or "") == []


async def test_a_cancel_whose_look_up_is_banned_raises_order_state_unknown(
    sim: MaxSimulator,
) -> None:
    async with MaxClient(
        base_url=sim.url,
        access_key=KEY,
        secret_key=SECRET,
        limiter=APIRateLimiter.for_max(warm_start=0.0),
        timeout=TIMEOUT,
        reconcile_attempts=ATTEMPTS,
        reconcile_delay=0.01,
        completion_guard=False,
    ) as client:
        order = await client.create_order("btctwd", "sell", "0.01", "99999999")
        sim.inject("empty", endpoint=CANCEL, after_accept=True)
        sim.inject("status", endpoint=LOOKUP, status=429, retry_after=0.0)
        with pytest.raises(errors.OrderStateUnknown) as unknown:
            await client.cancel_order(id=order.id)
        # cancelled by id and never looked up: no client_oid is known; the id is named
        assert unknown.value.client_oid == ""
        assert str(order.id) in str(unknown.value)
    assert await _orders_with(sim, order.client_oid or "") == []  # the cancel was applied
