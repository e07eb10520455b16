"""MAX's limits over real HTTP: exact budgets, 429 with an absolute Retry-After, bans
that restart on every request made during them."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import aiohttp
import httpx
from _sim_signing import KEY, SECRET, Signer

from aimax._clock import FakeClock
from aimax.exchange.simulator import MaxSimulator, SimulatorConfig


def test_naive_burst_gets_429_with_absolute_retry_after() -> None:
    """A client with no limiter, on the real clock, MAX's shape scaled to 30 per 3 s."""
    config = SimulatorConfig(public_limit=30, window=3.0, ban_seconds=3.0, n_markets=3)
    with MaxSimulator(config) as sim, httpx.Client(base_url=sim.url, timeout=30) as http:
        statuses = []
        retry_after = []
        sent_at = []
        for _ in range(45):
            sent_at.append(time.time())
            r = http.get("/api/v3/timestamp")
            statuses.append(r.status_code)
            if r.status_code == 429:
                retry_after.append(int(r.headers["Retry-After"]))
                assert r.json()["success"] is False
        assert 429 in statuses
        first = statuses.index(429)
        assert first >= 30  # the whole budget passed first (more only if the burst outlived 3 s)
        assert statuses[first:] == [429] * (45 - first)  # the ban holds while it keeps sending
        # an absolute Unix timestamp (not a delay): about now + ban, rounded up
        last_sent = sent_at[-1]
        assert retry_after[-1] >= math.floor(last_sent + 3.0)
        assert retry_after[-1] <= math.ceil(time.time() + 3.0)
        assert retry_after == sorted(retry_after)  # each request restarts (extends) it
        stats = sim.stats()
        assert stats.bans_started == 1
        assert stats.ban_extensions == 45 - first - 1
        assert stats.rate_limited == 45 - first
        assert stats.peak_public["127.0.0.1"] <= 30


def test_ban_restarts_on_a_fake_clock(fake_sim: tuple[MaxSimulator, FakeClock]) -> None:
    """20 public requests per 2 s, 2 s bans; time moves only when the test says so."""
    sim, clock = fake_sim
    with httpx.Client(base_url=sim.url, timeout=30) as http:
        ok = [http.get("/api/v3/timestamp").status_code for _ in range(20)]
        assert ok == [200] * 20  # the whole budget, exactly
        r = http.get("/api/v3/timestamp")
        assert r.status_code == 429
        t0 = clock.time()
        assert r.headers["Retry-After"] == str(math.ceil(t0 + 2.0))
        # keep poking every 1.5 s: each poke restarts the 2 s ban
        for _ in range(4):
            clock.advance(1.5)
            r = http.get("/api/v3/timestamp")
            assert r.status_code == 429
            assert r.headers["Retry-After"] == str(math.ceil(clock.time() + 2.0))
        # go quiet for the announced time: free again, with a fresh budget
        clock.set(clock() + (int(r.headers["Retry-After"]) - clock.time()))
        assert http.get("/api/v3/timestamp").status_code == 200
        stats = sim.stats()
        assert (stats.bans_started, stats.ban_extensions, stats.rate_limited) == (1, 4, 5)


def test_window_slides_exactly_on_a_fake_clock(
    fake_sim: tuple[MaxSimulator, FakeClock],
) -> None:
    sim, clock = fake_sim
    with httpx.Client(base_url=sim.url, timeout=30) as http:
        for _ in range(10):
            assert http.get("/api/v3/timestamp").status_code == 200
        clock.advance(1.0)
        for _ in range(10):
            assert http.get("/api/v3/timestamp").status_code == 200
        clock.advance(0.999)  # the first ten are still inside the 2 s window
        assert http.get("/api/v3/timestamp").status_code == 429
    assert sim.stats().peak_public["127.0.0.1"] == 20


def test_each_ip_and_each_account_has_its_own_budget(
    fake_sim: tuple[MaxSimulator, FakeClock],
) -> None:
    sim, clock = fake_sim
    sim.add_account("bob-key", "bob-secret", {"twd": "1000"}, name="bob")
    with httpx.Client(base_url=sim.url, timeout=30) as http:
        ms = lambda: int(clock.time() * 1000)  # noqa: E731  # a one-line clock adapter
        alice = Signer(http, KEY, SECRET, now_ms=ms)
        bob = Signer(http, "bob-key", "bob-secret", now_ms=ms)
        # private: 10 per 2 s per account, not shared with the IP's public budget
        assert [alice.get("/api/v3/info").status_code for _ in range(10)] == [200] * 10
        r = alice.get("/api/v3/info")
        assert r.status_code == 429
        assert bob.get("/api/v3/info").status_code == 200
        assert http.get("/api/v3/timestamp").status_code == 200
        # public: per IP (X-Forwarded-For stands for the client address on loopback)
        for ip in ("10.0.0.1", "10.0.0.2"):
            codes = [
                http.get("/api/v3/timestamp", headers={"X-Forwarded-For": ip}).status_code
                for _ in range(21)
            ]
            assert codes == [200] * 20 + [429]
    stats = sim.stats()
    assert stats.by_account == {"alice": 11, "bob": 1}
    assert stats.rate_limited_by_scope == {
        "account:alice": 1,
        "ip:10.0.0.1": 1,
        "ip:10.0.0.2": 1,
    }
    assert stats.peak_private == {"alice": 10, "bob": 1}


def test_endpoint_weights_and_private_charged_to_ip_when_configured() -> None:
    clock = FakeClock(start=0.0, wall_start=1_800_000_000.0)
    config = SimulatorConfig(
        public_limit=10,
        private_limit=100,
        window=60.0,
        n_markets=3,
        history_seconds=0,
        endpoint_weights={"GET /api/v3/depth": 4},
        private_counts_against_ip=True,
    )
    with (
        MaxSimulator(config, clock=clock.time) as sim,
        httpx.Client(base_url=sim.url, timeout=30) as http,
    ):
        sim.add_account(KEY, SECRET)
        signer = Signer(http, now_ms=lambda: int(clock.time() * 1000))
        assert http.get("/api/v3/depth", params={"market": "btctwd"}).status_code == 200
        assert http.get("/api/v3/depth", params={"market": "btctwd"}).status_code == 200
        assert signer.get("/api/v3/info").status_code == 200  # 4 + 4 + 1 of the IP's 10
        assert http.get("/api/v3/timestamp").status_code == 200
        assert http.get("/api/v3/timestamp").status_code == 429


async def test_concurrent_naive_clients_never_exceed_the_limit() -> None:
    """Many tasks at once through real sockets: exactly the limit passes per window."""
    config = SimulatorConfig(public_limit=50, window=60.0, ban_seconds=60.0, n_markets=3)
    async with MaxSimulator(config) as sim, aiohttp.ClientSession() as session:

        async def one() -> int:
            async with session.get(f"{sim.url}/api/v3/timestamp") as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*(one() for _ in range(200)))
    assert statuses.count(200) == 50
    assert statuses.count(429) == 150
    stats: Any = sim.stats()
    assert stats.requests == 200
    assert stats.bans_started == 1


def test_real_threads_never_exceed_the_limit() -> None:
    """8 threads, each with its own connection, 40 requests each, against a limit of 100."""
    import threading

    config = SimulatorConfig(public_limit=100, window=60.0, ban_seconds=60.0, n_markets=3)
    statuses: list[int] = []
    lock = threading.Lock()
    with MaxSimulator(config) as sim:

        def hammer() -> None:
            with httpx.Client(base_url=sim.url, timeout=30) as http:
                got = [http.get("/api/v3/timestamp").status_code for _ in range(40)]
            with lock:
                statuses.extend(got)

        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stats = sim.stats()
    assert len(statuses) == 320
    assert statuses.count(200) == 100
    assert statuses.count(429) == 220
    assert stats.peak_public == {"127.0.0.1": 100}
