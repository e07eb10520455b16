"""Frozen configuration of a pool and of its (optional) autoscaler.

>>> cfg = PoolConfig(max_size=8, queue_size=100, policy="reject")
>>> cfg.policy
RejectPolicy()
>>> PoolConfig(max_size=0)
Traceback (most recent call last):
...
aimax.errors.ConfigurationError: max_size must be a positive integer, got 0
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from aimax._clock import as_seconds
from aimax.errors import ConfigurationError
from aimax.pools.policies import BlockPolicy, RejectionPolicy, parse_policy

__all__ = ["DEFAULT_POOL_CONFIGS", "POOL_NAMES", "AutoscalerConfig", "PoolConfig"]


def _positive_int(value: object, name: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        kind = "non-negative" if allow_zero else "positive"
        raise ConfigurationError(f"{name} must be a {kind} integer, got {value!r}")
    return value


def _fraction(value: object, name: str, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low < value <= high:
        raise ConfigurationError(f"{name} must be a number in ({low}, {high}], got {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True, slots=True)
class AutoscalerConfig:
    """How a pool's autoscaler steers its size (see :mod:`aimax.pools.autoscaler`).

    Every window is a duration in seconds (or a ``timedelta``), never a sample count,
    so the controller behaves the same at 5 tasks per second as at 500.

    - ``interval``: how often the driver asks the controller for a decision.
    - ``short_window`` / ``long_window``: time constants of the short-term latency,
      arrival-rate and concurrency averages and of the long-term latency baseline.
    - ``tolerance``: how much the short-term latency may exceed the long-term one
      before the pool's own added concurrency is blamed (Gradient2's RTT tolerance).
    - ``min_gradient``: the strongest multiplicative cut one congestion decision makes.
    - ``headroom``: spare concurrency over Little's-law demand (arrival rate x latency).
    - ``drain_time``: size the pool to clear the current backlog within this long.
    - ``shrink_window``: time constant of shrinking toward a lower demand.
    - ``loss_factor`` / ``loss_cooldown``: multiplicative cut on a loss signal
      (timeout, errors, a 429 reported through ``report_loss``), at most once per
      cooldown.
    - ``error_threshold``: a short-window task failure rate at or above this counts as
      a loss (``None``: task failures never do).
    - ``rate_budget``: tasks per second the downstream allows (e.g. the exchange's
      request budget); caps the size at ``rate_budget x latency x (1 + headroom)``,
      Little's law, so no concurrency is bought that the budget could not use.
    """

    interval: float | timedelta = 0.2
    short_window: float | timedelta = 1.0
    long_window: float | timedelta = 10.0
    tolerance: float = 2.0
    min_gradient: float = 0.5
    headroom: float = 0.25
    drain_time: float | timedelta = 1.0
    shrink_window: float | timedelta = 3.0
    loss_factor: float = 0.7
    loss_cooldown: float | timedelta = 1.0
    error_threshold: float | None = 0.5
    rate_budget: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "interval",
            "short_window",
            "long_window",
            "drain_time",
            "shrink_window",
            "loss_cooldown",
        ):
            object.__setattr__(self, name, as_seconds(getattr(self, name), name=name))
        if self.seconds("long_window") < self.seconds("short_window"):
            raise ConfigurationError(
                f"long_window ({self.long_window}) must not be shorter than "
                f"short_window ({self.short_window})"
            )
        if (
            isinstance(self.tolerance, bool)
            or not isinstance(self.tolerance, int | float)
            or not 1.0 <= self.tolerance < float("inf")
        ):
            raise ConfigurationError(f"tolerance must be a number >= 1, got {self.tolerance!r}")
        _fraction(self.min_gradient, "min_gradient", low=0.0, high=1.0)
        _fraction(self.loss_factor, "loss_factor", low=0.0, high=1.0)
        if self.loss_factor >= 1.0 or self.min_gradient >= 1.0:
            raise ConfigurationError(
                f"loss_factor and min_gradient must cut (be < 1), got "
                f"{self.loss_factor!r} and {self.min_gradient!r}"
            )
        if (
            isinstance(self.headroom, bool)
            or not isinstance(self.headroom, int | float)
            or not 0.0 <= self.headroom <= 10.0
        ):
            raise ConfigurationError(f"headroom must be a number in [0, 10], got {self.headroom!r}")
        if self.error_threshold is not None:
            _fraction(self.error_threshold, "error_threshold", low=0.0, high=1.0)
        if self.rate_budget is not None and (
            isinstance(self.rate_budget, bool)
            or not isinstance(self.rate_budget, int | float)
            or not 0.0 < self.rate_budget < float("inf")
        ):
            raise ConfigurationError(
                f"rate_budget must be a positive number of tasks per second, "
                f"got {self.rate_budget!r}"
            )

    def seconds(self, name: str) -> float:
        """A duration field as float seconds (they are normalised at construction)."""
        value = getattr(self, name)
        return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(frozen=True, kw_only=True, slots=True)
class PoolConfig:
    """One pool's fixed settings.

    - ``max_size``: the most worker threads the pool may ever run (>= 1).
    - ``min_size``: idle workers are never retired below this many (>= 0).
    - ``size``: the initial target size (default ``max_size``); ``resize`` changes it.
      Workers are started on demand up to the target, never at construction.
    - ``queue_size``: bound of the queue of waiting tasks (>= 1).
    - ``policy``: what a submit does when the queue is full: a
      :class:`~aimax.pools.policies.RejectionPolicy` or its name (``"block"``,
      ``"block:<seconds>"``, ``"reject"``, ``"caller_runs"``).
    - ``keep_alive``: an idle worker above ``min_size`` retires after this long.
    - ``autoscale``: an :class:`AutoscalerConfig` to let the size follow the load.
    """

    max_size: int = 8
    min_size: int = 0
    size: int | None = None
    queue_size: int = 1000
    policy: RejectionPolicy | str = field(default_factory=BlockPolicy)
    keep_alive: float | timedelta = 60.0
    autoscale: AutoscalerConfig | None = None
    thread_name_prefix: str | None = None

    def __post_init__(self) -> None:
        _positive_int(self.max_size, "max_size")
        _positive_int(self.min_size, "min_size", allow_zero=True)
        _positive_int(self.queue_size, "queue_size")
        if self.min_size > self.max_size:
            raise ConfigurationError(
                f"min_size ({self.min_size}) must not exceed max_size ({self.max_size})"
            )
        if self.size is not None:
            _positive_int(self.size, "size")
            if not max(self.min_size, 1) <= self.size <= self.max_size:
                raise ConfigurationError(
                    f"size must lie in [max(min_size, 1), max_size] = "
                    f"[{max(self.min_size, 1)}, {self.max_size}], got {self.size}"
                )
        object.__setattr__(self, "policy", parse_policy(self.policy))
        object.__setattr__(self, "keep_alive", as_seconds(self.keep_alive, name="keep_alive"))
        if self.autoscale is not None and not isinstance(self.autoscale, AutoscalerConfig):
            raise ConfigurationError(
                f"autoscale must be an AutoscalerConfig or None, got {self.autoscale!r}"
            )

    @property
    def initial_size(self) -> int:
        """The target size a new pool starts with."""
        return self.max_size if self.size is None else self.size

    @property
    def keep_alive_seconds(self) -> float:
        """``keep_alive`` as float seconds."""
        value = self.keep_alive
        return value.total_seconds() if isinstance(value, timedelta) else float(value)

    @property
    def rejection_policy(self) -> RejectionPolicy:
        """``policy`` as a policy object (names are parsed at construction)."""
        return parse_policy(self.policy)


def _defaults() -> Mapping[str, PoolConfig]:
    cpus = os.cpu_count() or 1
    return MappingProxyType(
        {
            # REST polling: I/O bound; stale requests are worth less than fresh ones.
            "market_data": PoolConfig(max_size=16, size=8, queue_size=1000, policy="reject"),
            # indicators and signals: CPU bound; a full queue slows the producer down.
            "strategy": PoolConfig(max_size=cpus, queue_size=256, policy="caller_runs"),
            # orders are never dropped silently: wait for room, then fail loudly.
            "orders": PoolConfig(max_size=4, queue_size=100, policy=BlockPolicy(5.0)),
            # file / database writes and other blocking I/O.
            "io": PoolConfig(max_size=32, size=8, queue_size=1000, policy="block"),
            "default": PoolConfig(max_size=min(32, cpus + 4), queue_size=1000, policy="block"),
        }
    )


DEFAULT_POOL_CONFIGS: Mapping[str, PoolConfig] = _defaults()
"""Per-name defaults of :class:`~aimax.pools.ThreadPoolManager` (read-only)."""

POOL_NAMES: tuple[str, ...] = tuple(DEFAULT_POOL_CONFIGS)
"""The standard pool names: market_data, strategy, orders, io, default."""
