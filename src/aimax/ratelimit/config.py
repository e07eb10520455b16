"""Configuration: pools (:class:`RateLimit`), request kinds, priorities, rate strings.

>>> parse_rate("1200/min")
(1200, 60.0)
>>> RateLimit.parse("rest_public", "20/s").window
1.0
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum
from types import MappingProxyType

from aimax._clock import as_seconds
from aimax.errors import ConfigurationError

__all__ = ["DEFAULT_RESERVE", "Priority", "RateLimit", "RequestKind", "parse_rate"]


class Priority(IntEnum):
    """Request classes, most urgent first (a lower value is served first)."""

    CANCEL = 0
    ORDER = 1
    ACCOUNT = 2
    MARKET_DATA = 3


DEFAULT_RESERVE: Mapping[Priority, float] = MappingProxyType(
    {
        Priority.CANCEL: 1.0,
        Priority.ORDER: 0.95,
        Priority.ACCOUNT: 0.90,
        Priority.MARKET_DATA: 0.85,
    }
)
"""Share of a pool's window each class may fill when a more urgent class shares the pool."""

_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+(?:\.\d+)?)?\s*([a-zA-Z]+)\s*$")


def parse_rate(text: str) -> tuple[int, float]:
    """Parse ``"1200/min"``, ``"20/s"``, ``"600/h"``, ``"5 per 10 seconds"`` into (limit, window).

    >>> parse_rate("600/h")
    (600, 3600.0)
    >>> parse_rate("5 per 10 seconds")
    (5, 10.0)
    >>> parse_rate("0/s")
    Traceback (most recent call last):
    ...
    aimax.errors.ConfigurationError: rate limit must be a positive integer, got '0/s'
    """
    if not isinstance(text, str):
        raise ConfigurationError(f"a rate must be a string like '1200/min', got {text!r}")
    match = _RATE.match(text)
    if match is None or match.group(3).lower() not in _UNITS:
        raise ConfigurationError(
            f"cannot parse rate {text!r}: expected '<count>/<unit>' like '1200/min', "
            f"'20/s', '600/h' or '5 per 10 seconds'"
        )
    limit = int(match.group(1))
    if limit <= 0:
        raise ConfigurationError(f"rate limit must be a positive integer, got {text!r}")
    multiplier = float(match.group(2)) if match.group(2) else 1.0
    window = multiplier * _UNITS[match.group(3).lower()]
    if window <= 0:
        raise ConfigurationError(f"rate window must be positive, got {text!r}")
    return limit, window


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimit:
    """A pool: at most ``limit`` units in ANY sliding window of ``window`` seconds.

    ``headroom`` (0 < h <= 1) is the fraction of ``limit`` the limiter actually uses,
    to absorb network jitter between the grant here and the count at the exchange.

        >>> RateLimit(name="rest_public", limit=1200, window=60.0, headroom=0.9).effective_limit
        1080
    """

    name: str
    limit: int
    window: float | timedelta
    headroom: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"a pool needs a non-empty name, got {self.name!r}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit <= 0:
            raise ConfigurationError(
                f"pool {self.name!r}: limit must be a positive integer, got {self.limit!r}"
            )
        object.__setattr__(self, "window", as_seconds(self.window, name=f"{self.name}.window"))
        headroom = self.headroom
        if (
            isinstance(headroom, bool)
            or not isinstance(headroom, int | float)
            or math.isnan(headroom)
            or not 0 < headroom <= 1
        ):
            raise ConfigurationError(
                f"pool {self.name!r}: headroom must be in (0, 1], got {headroom!r}"
            )

    @classmethod
    def parse(cls, name: str, rate: str, *, headroom: float = 1.0) -> RateLimit:
        """Build a pool from a rate string: ``RateLimit.parse("rest_public", "1200/min")``."""
        limit, window = parse_rate(rate)
        return cls(name=name, limit=limit, window=window, headroom=headroom)

    @property
    def seconds(self) -> float:
        """The window in seconds."""
        window = self.window
        return window.total_seconds() if isinstance(window, timedelta) else float(window)

    @property
    def effective_limit(self) -> int:
        """Units the limiter lets into one window: ``floor(limit * headroom)``, at least 1."""
        return max(1, math.floor(self.limit * self.headroom + 1e-9))

    def scaled(self, share: float) -> RateLimit:
        """This pool with its limit multiplied by ``share`` (several processes, one quota)."""
        limit = max(1, math.floor(self.limit * share + 1e-9))
        return RateLimit(name=self.name, limit=limit, window=self.seconds, headroom=self.headroom)


@dataclass(frozen=True, kw_only=True, slots=True)
class RequestKind:
    """What a request charges: ``charges`` maps pool name -> units per request.

    ``priority`` is its class; ``scope`` is what a 429 on it freezes (``"ip"`` for MAX).

        >>> RequestKind(name="order", charges={"rest_private": 1}, priority=Priority.ORDER).scope
        'ip'
    """

    name: str
    charges: Mapping[str, int] = field(default_factory=dict)
    priority: Priority = Priority.MARKET_DATA
    scope: str = "ip"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"a request kind needs a non-empty name, got {self.name!r}")
        if not isinstance(self.charges, Mapping) or not self.charges:
            raise ConfigurationError(
                f"kind {self.name!r}: charges must map at least one pool to units, "
                f"got {self.charges!r}"
            )
        for pool, units in self.charges.items():
            if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
                raise ConfigurationError(
                    f"kind {self.name!r}: units for pool {pool!r} must be a positive "
                    f"integer, got {units!r}"
                )
        object.__setattr__(self, "charges", MappingProxyType(dict(self.charges)))
        try:
            object.__setattr__(self, "priority", Priority(self.priority))
        except ValueError:
            raise ConfigurationError(
                f"kind {self.name!r}: unknown priority {self.priority!r}"
            ) from None
        if not isinstance(self.scope, str) or not self.scope:
            raise ConfigurationError(f"kind {self.name!r}: scope must be a non-empty string")
