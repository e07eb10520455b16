"""A local MAX-compatible exchange that punishes mistakes the way MAX does.

Real HTTP on loopback (aiohttp), MAX v3's endpoints and JSON shapes, signature,
payload and nonce checks with MAX's error codes, balances and orders that rest and
fill, and MAX's limits enforced exactly (429 with an absolute ``Retry-After``, a ban
that restarts on every request made during it). Faults can be injected::

    from aimax.exchange.simulator import MaxSimulator, SimulatorConfig

    with MaxSimulator(SimulatorConfig.scaled(0.1, n_markets=50)) as sim:
        sim.add_account("key", "secret", {"twd": "1000000"})
        ...  # point a client at sim.url

The pure cores (:class:`Exchange`, :class:`PenaltyWindow`, :class:`NonceBook`) take
time as ``now`` and hold no threads.
"""

from aimax.exchange.simulator.auth import NonceBook
from aimax.exchange.simulator.config import Latency, SimulatorConfig
from aimax.exchange.simulator.core import Exchange, Rejection
from aimax.exchange.simulator.limits import LimitDecision, PenaltyWindow
from aimax.exchange.simulator.server import MaxSimulator, SimulatorStats

__all__ = [
    "Exchange",
    "Latency",
    "LimitDecision",
    "MaxSimulator",
    "NonceBook",
    "PenaltyWindow",
    "Rejection",
    "SimulatorConfig",
    "SimulatorStats",
]
