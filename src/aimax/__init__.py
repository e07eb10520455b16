"""aimax-optimizer: keeps a multi-pair MAX trading bot inside its exchange quota,
its threads busy but not swamped, its memory bounded and its health visible.

The curated public API is below; each name is imported from its component on first
use (PEP 562), so ``import aimax`` stays cheap and starts nothing.

    >>> import aimax
    >>> limiter = aimax.APIRateLimiter.for_max()
    >>> limiter.acquire("market_data", pair="btctwd").kind
    'market_data'
    >>> limiter.close()
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from aimax import errors
from aimax._version import __version__

if _TYPE_CHECKING:
    from aimax.exchange.max import MaxClient, MaxClientSync
    from aimax.exchange.simulator import MaxSimulator, SimulatorConfig
    from aimax.memory import BoundedLRUCache, BoundedTTLCache, MemoryConfig, MemoryManager
    from aimax.monitor import AlertRule, ResourceMonitor
    from aimax.optimizer import (
        OptimizerConfig,
        SystemPerformanceOptimizer,
        start_system_optimization,
    )
    from aimax.planning import ExchangeBudget, PairWorkload, TradingPlan, plan_for_pairs
    from aimax.pools import AutoscalerConfig, PoolConfig, ThreadPoolManager
    from aimax.ratelimit import APIRateLimiter, Priority, RateLimit, RequestKind, parse_rate
    from aimax.report import OptimizationReport

#: public name -> the module that defines it
_LAZY = {
    "APIRateLimiter": "aimax.ratelimit",
    "Priority": "aimax.ratelimit",
    "RateLimit": "aimax.ratelimit",
    "RequestKind": "aimax.ratelimit",
    "parse_rate": "aimax.ratelimit",
    "ThreadPoolManager": "aimax.pools",
    "PoolConfig": "aimax.pools",
    "AutoscalerConfig": "aimax.pools",
    "MemoryManager": "aimax.memory",
    "MemoryConfig": "aimax.memory",
    "BoundedLRUCache": "aimax.memory",
    "BoundedTTLCache": "aimax.memory",
    "ResourceMonitor": "aimax.monitor",
    "AlertRule": "aimax.monitor",
    "SystemPerformanceOptimizer": "aimax.optimizer",
    "OptimizerConfig": "aimax.optimizer",
    "start_system_optimization": "aimax.optimizer",
    "plan_for_pairs": "aimax.planning",
    "TradingPlan": "aimax.planning",
    "PairWorkload": "aimax.planning",
    "ExchangeBudget": "aimax.planning",
    "MaxClient": "aimax.exchange.max",
    "MaxClientSync": "aimax.exchange.max",
    "MaxSimulator": "aimax.exchange.simulator",
    "SimulatorConfig": "aimax.exchange.simulator",
    "OptimizationReport": "aimax.report",
}

__all__ = [
    "APIRateLimiter",
    "AlertRule",
    "AutoscalerConfig",
    "BoundedLRUCache",
    "BoundedTTLCache",
    "ExchangeBudget",
    "MaxClient",
    "MaxClientSync",
    "MaxSimulator",
    "MemoryConfig",
    "MemoryManager",
    "OptimizationReport",
    "OptimizerConfig",
    "PairWorkload",
    "PoolConfig",
    "Priority",
    "RateLimit",
    "RequestKind",
    "ResourceMonitor",
    "SimulatorConfig",
    "SystemPerformanceOptimizer",
    "ThreadPoolManager",
    "TradingPlan",
    "__version__",
    "errors",
    "parse_rate",
    "plan_for_pairs",
    "start_system_optimization",
]


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aimax' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
