"""Named, resizable thread pools with back-pressure, autoscaling and statistics.

    >>> from aimax.pools import ThreadPoolManager
    >>> with ThreadPoolManager() as manager:
    ...     manager.submit_task("io", len, "abc").result()
    3

See :class:`ThreadPoolManager` (named pools: market_data, strategy, orders, io,
default), :class:`ResizablePool` (one pool), :class:`PoolConfig` /
:class:`AutoscalerConfig` (frozen settings), the rejection policies, and
:class:`ConcurrencyController` (the pure autoscaling core).
"""

from aimax.pools.autoscaler import ConcurrencyController, Observation, ScalingDecision
from aimax.pools.config import DEFAULT_POOL_CONFIGS, POOL_NAMES, AutoscalerConfig, PoolConfig
from aimax.pools.manager import ThreadPoolManager
from aimax.pools.policies import (
    BlockPolicy,
    CallerRunsPolicy,
    Reject,
    RejectionPolicy,
    RejectPolicy,
    RunInCaller,
    Verdict,
    Wait,
    parse_policy,
)
from aimax.pools.pool import ResizablePool
from aimax.pools.stats import (
    LatencySummary,
    ManagerStatistics,
    PoolShutdown,
    PoolStatistics,
    ShutdownReport,
    TaskRef,
)

__all__ = [
    "DEFAULT_POOL_CONFIGS",
    "POOL_NAMES",
    "AutoscalerConfig",
    "BlockPolicy",
    "CallerRunsPolicy",
    "ConcurrencyController",
    "LatencySummary",
    "ManagerStatistics",
    "Observation",
    "PoolConfig",
    "PoolShutdown",
    "PoolStatistics",
    "Reject",
    "RejectPolicy",
    "RejectionPolicy",
    "ResizablePool",
    "RunInCaller",
    "ScalingDecision",
    "ShutdownReport",
    "TaskRef",
    "ThreadPoolManager",
    "Verdict",
    "Wait",
    "parse_policy",
]
