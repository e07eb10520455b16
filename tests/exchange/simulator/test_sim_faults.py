"""Fault injection: maintenance, 5xx, hangs, latency, accepted-then-timed-out orders."""

from __future__ import annotations

import json
import random
import threading
import time

import httpx
import pytest
from _sim_signing import KEY, SECRET, Signer, new_oid

from aimax.errors import ConfigurationError
from aimax.exchange.simulator import Latency, MaxSimulator, SimulatorConfig

ORDER = "/api/v3/wallet/spot/order"


def test_maintenance_mode(sim: MaxSimulator, http: httpx.Client) -> None:
    sim.set_maintenance(True)
    r = http.get("/api/v3/timestamp")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == 5999
    assert http.get("/api/status/max-api").json()["status"] == "maintenance"
    sim.set_maintenance(False)
    assert http.get("/api/v3/timestamp").status_code == 200
    assert sim.stats().maintenance_rejections == 1


def test_fail_next_and_error_rate(sim: MaxSimulator, http: httpx.Client) -> None:
    sim.fail_next(2, status=502)
    codes = [http.get("/api/v3/timestamp").status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    sim.set_faults(error_rate=1.0)
    assert http.get("/api/v3/markets").status_code == 500
    sim.set_faults(error_rate=0.3)
    codes = [http.get("/api/v3/timestamp").status_code for _ in range(200)]
    failures = codes.count(500)
    assert 20 <= failures <= 110  # 30 % of 200 with a wide margin (seeded, but not a constant)
    assert set(codes) == {200, 500}
    assert sim.stats().injected_errors == 2 + 1 + failures
    with pytest.raises(ConfigurationError):
        sim.set_faults(error_rate=1.5)
    with pytest.raises(ConfigurationError):
        sim.fail_next(1, status=404)


def test_hang_next_times_the_client_out() -> None:
    config = SimulatorConfig(n_markets=3, history_seconds=0, hang_seconds=20.0)
    with MaxSimulator(config) as sim, httpx.Client(base_url=sim.url, timeout=0.5) as http:
        sim.hang_next()
        with pytest.raises(httpx.TimeoutException):
            http.get("/api/v3/timestamp")
        assert http.get("/api/v3/timestamp").status_code == 200
        assert sim.stats().injected_timeouts == 1
    # stop() did not wait out the 20 s hang (it ends hangs at once); nothing left running
    assert not any(t.name == "aimax-max-simulator" for t in threading.enumerate())


def test_a_create_that_times_out_after_acceptance_can_be_reconciled() -> None:
    config = SimulatorConfig(n_markets=3, history_seconds=0, hang_seconds=20.0)
    with MaxSimulator(config) as sim, httpx.Client(base_url=sim.url, timeout=0.5) as http:
        sim.add_account(KEY, SECRET, {"twd": "1000000"})
        sim.set_price("btctwd", "3000000")
        signer = Signer(http)
        oid = new_oid()
        sim.hang_after_accept()
        # a rejected create (too small) is not "accepted": it answers at once, shot kept
        small = signer.post(
            ORDER, {"market": "btctwd", "side": "buy", "volume": "0.00001", "price": "2000000"}
        )
        assert small.json()["error"]["code"] == 2016
        with pytest.raises(httpx.TimeoutException):
            signer.post(
                ORDER,
                {
                    "market": "btctwd",
                    "side": "buy",
                    "volume": "0.01",
                    "price": "2000000",
                    "client_oid": oid,
                },
            )
        found = signer.get("/api/v3/order", {"client_oid": oid})
        assert found.status_code == 200
        assert found.json()["client_oid"] == oid
        assert found.json()["state"] == "wait"
        # sending it again would be a duplicate: the exchange refuses it
        again = signer.post(
            ORDER,
            {
                "market": "btctwd",
                "side": "buy",
                "volume": "0.01",
                "price": "2000000",
                "client_oid": oid,
            },
        )
        assert again.json()["error"]["code"] == 2002
        stats = sim.stats()
        assert stats.accepted_then_timed_out == 1
        assert stats.orders_created == 1


def test_timeout_rate_hangs_some_requests() -> None:
    config = SimulatorConfig(n_markets=3, history_seconds=0, timeout_rate=0.5, hang_seconds=0.05)
    with MaxSimulator(config) as sim, httpx.Client(base_url=sim.url, timeout=30) as http:
        codes = [http.get("/api/v3/timestamp").status_code for _ in range(20)]
    assert set(codes) == {200, 504}
    assert sim.stats().injected_timeouts == codes.count(504)


def test_latency_distributions() -> None:
    rng = random.Random(3)
    assert Latency().sample(rng) == 0.0
    assert Latency.constant(0.25).sample(rng) == 0.25
    samples = [Latency.uniform(0.1, 0.2).sample(rng) for _ in range(500)]
    assert min(samples) >= 0.1
    assert max(samples) <= 0.2
    tail = [Latency.lognormal(0.01, 1.0, cap=0.5).sample(rng) for _ in range(2000)]
    tail.sort()
    assert tail[1000] == pytest.approx(0.01, rel=0.25)  # the median
    assert max(tail) <= 0.5
    assert tail[-20] > 5 * tail[1000]  # a long tail
    with pytest.raises(ConfigurationError):
        Latency.uniform(0.2, 0.1)
    with pytest.raises(ConfigurationError):
        Latency.constant(-1.0)


def test_latency_is_applied(sim: MaxSimulator, http: httpx.Client) -> None:
    sim.set_faults(latency=Latency.constant(0.05))
    import time

    start = time.monotonic()
    for _ in range(4):
        assert http.get("/api/v3/timestamp").status_code == 200
    # a lower bound only (never "took < X"): 4 sequential requests, each delayed 50 ms
    assert time.monotonic() - start >= 0.2


def _create(signer: Signer, oid: str) -> httpx.Response:
    return signer.post(
        ORDER,
        {
            "market": "btctwd",
            "side": "sell",
            "volume": "0.01",
            "price": "9999999",
            "client_oid": oid,
        },
    )


@pytest.mark.parametrize("fault", ["empty", "truncated", "malformed", "status", "reset"])
def test_a_fault_after_accept_replaces_the_answer_of_a_created_order(
    sim: MaxSimulator, signer: Signer, fault: str
) -> None:
    endpoint = "POST /api/v3/wallet/{wallet_type}/order"
    sim.inject(
        fault, endpoint=endpoint, after_accept=True, status=503 if fault == "status" else None
    )
    oid = new_oid()
    if fault == "reset":
        with pytest.raises(httpx.TransportError):
            _create(signer, oid)
    else:
        reply = _create(signer, oid)
        if fault == "empty":
            assert (reply.status_code, reply.content) == (200, b"")
        elif fault == "truncated":
            assert reply.status_code == 200
            assert reply.content.startswith(b"{")
            with pytest.raises(json.JSONDecodeError):
                reply.json()
        elif fault == "malformed":
            assert reply.status_code == 200
            with pytest.raises(json.JSONDecodeError):
                reply.json()
        else:
            assert reply.status_code == 503
            assert reply.json()["error"]["code"] == 5999
    found = signer.get("/api/v3/order", {"client_oid": oid})
    assert found.json()["client_oid"] == oid  # the order exists all the same
    assert _create(signer, new_oid()).status_code == 200  # the shot was used up
    stats = sim.stats()
    assert stats.accepted_then_failed == 1
    assert stats.orders_created == 2


def test_injected_429_and_endpoint_filters(sim: MaxSimulator, signer: Signer) -> None:
    sim.inject("status", endpoint="GET /api/v3/order", status=429, retry_after=5.0)
    assert signer.get("/api/v3/wallet/spot/accounts").status_code == 200  # other endpoint
    refused = signer.get("/api/v3/order", {"client_oid": "x"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= int(time.time()) + 4
    assert signer.get("/api/v3/order", {"client_oid": "x"}).status_code == 404
    # a refused create does not use up an after-accept shot
    sim.inject("empty", endpoint="POST /api/v3/wallet/{wallet_type}/order", after_accept=True)
    too_big = signer.post(
        ORDER, {"market": "btctwd", "side": "sell", "volume": "100000", "price": "9999999"}
    )
    assert too_big.json()["error"]["code"] == 2018
    assert _create(signer, new_oid()).content == b""


def test_inject_validates_its_arguments(sim: MaxSimulator) -> None:
    with pytest.raises(ConfigurationError, match="fault"):
        sim.inject("explode")
    with pytest.raises(ConfigurationError, match="endpoint"):
        sim.inject("empty", endpoint="GET /api/v3/nothing")
    with pytest.raises(ConfigurationError, match="status"):
        sim.inject("status", status=404)
    with pytest.raises(ConfigurationError, match="count"):
        sim.inject("hang", count=0)
    with pytest.raises(ConfigurationError, match="retry_after"):
        sim.inject("status", status=429, retry_after=-1)
