"""Statistics of the limiter: frozen snapshots per pool and per priority class."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ClassStatistics", "LimiterStatistics", "PoolStatistics", "wait_quantile"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PoolStatistics:
    """One pool: configured limit, what is in its window now, and its counters."""

    name: str
    limit: int
    effective_limit: int
    window: float
    in_window: int
    utilisation: float
    grants: int
    units: int
    rejections: int
    timeouts: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ClassStatistics:
    """One priority class: counters, current queue length and wait percentiles (s)."""

    name: str
    grants: int
    units: int
    rejections: int
    timeouts: int
    waiting: int
    wait_p50: float
    wait_p95: float
    wait_p99: float


@dataclass(frozen=True, kw_only=True, slots=True)
class LimiterStatistics:
    """The whole limiter: pools, classes, freezes (bans) and queue length."""

    pools: Mapping[str, PoolStatistics]
    classes: Mapping[str, ClassStatistics]
    frozen: Mapping[str, float]
    """scope -> Unix time its freeze ends, for scopes frozen now."""
    bans: int
    time_frozen: float
    """Seconds any scope has spent frozen (up to now)."""
    waiting: int
    backend: str


def wait_quantile(
    q: float, zeros: int, samples: Sequence[float], total_nonzero: int, *, ordered: bool = False
) -> float:
    """Quantile ``q`` of waits made of ``zeros`` zero waits plus nonzero ``samples``.

    ``samples`` is a (recent, bounded) sample standing for ``total_nonzero`` waits;
    ``ordered=True`` says it is sorted already (several quantiles, one sort).

        >>> wait_quantile(0.5, 3, [1.0], 1)
        0.0
        >>> wait_quantile(0.99, 3, [1.0], 1)
        1.0
    """
    total = zeros + total_nonzero
    if total == 0 or not samples:
        return 0.0
    share_zero = zeros / total
    if q <= share_zero:
        return 0.0
    values = samples if ordered else sorted(samples)
    rank = (q - share_zero) / (1.0 - share_zero)
    index = min(len(values) - 1, max(0, math.ceil(rank * len(values)) - 1))
    return values[index]
