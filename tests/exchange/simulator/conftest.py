"""Fixtures for the simulator's tests (signing helpers live in ``_sim_signing``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _sim_signing import KEY, SECRET, START_BALANCES, Signer  # needs the path above

from aimax._clock import FakeClock  # after the path setup, like the line above
from aimax.exchange.simulator import MaxSimulator, SimulatorConfig  # same


@pytest.fixture
def sim() -> Iterator[MaxSimulator]:
    """A simulator in its own thread, MAX's real limits, one funded account."""
    with MaxSimulator(SimulatorConfig(n_markets=30, history_seconds=120)) as simulator:
        simulator.add_account(KEY, SECRET, START_BALANCES, name="alice")
        yield simulator


@pytest.fixture
def http(sim: MaxSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=30.0) as client:
        yield client


@pytest.fixture
def signer(http: httpx.Client) -> Signer:
    return Signer(http)


@pytest.fixture
def fake_sim() -> Iterator[tuple[MaxSimulator, FakeClock]]:
    """A simulator on a hand-driven clock, limits scaled to 20 per 2 s, 2 s bans."""
    clock = FakeClock(start=1000.0, wall_start=1_800_000_000.25)
    config = SimulatorConfig(
        public_limit=20,
        private_limit=10,
        window=2.0,
        ban_seconds=2.0,
        n_markets=5,
        history_seconds=0,
    )
    with MaxSimulator(config, clock=clock.time) as simulator:
        simulator.add_account(KEY, SECRET, START_BALANCES, name="alice")
        yield simulator, clock
