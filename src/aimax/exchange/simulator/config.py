"""The simulator's configuration: limits, time scale, faults, markets.

Everything is a frozen keyword-only dataclass validated at construction, so a bad
value fails at once with a :class:`~aimax.errors.ConfigurationError` naming it::

    >>> cfg = SimulatorConfig.scaled(0.1)          # 120 requests per 6 s, 6 s bans
    >>> cfg.public_limit, cfg.window, cfg.ban_seconds
    (120, 6.0, 6.0)
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

from aimax._clock import as_seconds
from aimax.errors import ConfigurationError

__all__ = ["Latency", "SimulatorConfig", "as_latency"]

LatencyKind = Literal["none", "constant", "uniform", "lognormal"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """A distribution of extra server-side delay added to each response (seconds).

    Build one with :meth:`constant`, :meth:`uniform` or :meth:`lognormal`; ``cap``
    bounds every sample::

        >>> Latency.uniform(0.001, 0.003).sample(random.Random(1)) <= 0.003
        True
    """

    kind: LatencyKind = "none"
    a: float = 0.0
    b: float = 0.0
    cap: float = 10.0

    def __post_init__(self) -> None:
        for name in ("a", "b", "cap"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or math.isnan(value) or value < 0:
                raise ConfigurationError(f"Latency.{name} must be a number >= 0, got {value!r}")
        if self.kind == "uniform" and self.b < self.a:
            raise ConfigurationError(f"Latency.uniform needs low <= high, got {self.a}, {self.b}")
        if self.kind not in ("none", "constant", "uniform", "lognormal"):
            raise ConfigurationError(f"unknown latency kind {self.kind!r}")

    @classmethod
    def constant(cls, seconds: float | timedelta) -> Latency:
        """Always ``seconds``."""
        return cls(kind="constant", a=as_seconds(seconds, name="latency", allow_zero=True))

    @classmethod
    def uniform(cls, low: float | timedelta, high: float | timedelta) -> Latency:
        """Uniform between ``low`` and ``high`` seconds."""
        return cls(
            kind="uniform",
            a=as_seconds(low, name="latency low", allow_zero=True),
            b=as_seconds(high, name="latency high", allow_zero=True),
        )

    @classmethod
    def lognormal(
        cls, median: float | timedelta, sigma: float = 0.5, cap: float | timedelta = 10.0
    ) -> Latency:
        """Log-normal with the given ``median`` (seconds) and shape ``sigma``: a long tail."""
        return cls(
            kind="lognormal",
            a=as_seconds(median, name="latency median"),
            b=float(sigma),
            cap=as_seconds(cap, name="latency cap"),
        )

    def sample(self, rng: random.Random) -> float:
        """One delay in seconds (0 for ``none``)."""
        if self.kind == "none":
            return 0.0
        if self.kind == "constant":
            value = self.a
        elif self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        else:
            value = self.a * math.exp(self.b * rng.gauss(0.0, 1.0))
        return min(value, self.cap)


def as_latency(value: object) -> Latency:
    """A :class:`Latency` from itself, a number of seconds (constant) or a ``(low, high)``
    pair (uniform)."""
    if isinstance(value, Latency):
        return value
    if isinstance(value, int | float | timedelta) and not isinstance(value, bool):
        return Latency.constant(value)
    if isinstance(value, tuple) and len(value) == 2:
        return Latency.uniform(value[0], value[1])
    raise ConfigurationError(
        f"latency must be a Latency, seconds or a (low, high) pair, got {value!r}"
    )


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return value


def _fraction(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not 0.0 <= value <= 1.0
    ):
        raise ConfigurationError(f"{name} must be a fraction in [0, 1], got {value!r}")
    return float(value)


def _decimal(name: str, value: object) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ConfigurationError(f"{name} must be a decimal number, got {value!r}") from None
    if not result.is_finite() or result < 0:
        raise ConfigurationError(f"{name} must be a finite number >= 0, got {value!r}")
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorConfig:
    """How the simulated MAX behaves.

    Limits (MAX's published ones by default): ``public_limit`` requests per ``window``
    seconds per client IP, ``private_limit`` per ``window`` per account. A request
    over the limit gets HTTP 429 with ``Retry-After`` = the ban's end as an absolute
    Unix timestamp (whole seconds, rounded up); every request sent during a ban
    restarts it (``ban_seconds`` long). ``private_counts_against_ip`` also charges
    private calls to the caller's IP pool; ``endpoint_weights`` maps ``"GET
    /api/v3/depth"``-style keys to a cost (default 1). ``trust_forwarded_for`` takes
    the client identity from the first ``X-Forwarded-For`` item when present (lets one
    test process act as many IPs on loopback).

    Faults: ``latency`` (a :class:`Latency`; a number means constant seconds, a
    ``(low, high)`` pair uniform), ``error_rate`` (fraction answered 5xx
    with MAX's 5999 body), ``timeout_rate`` (fraction that hang for ``hang_seconds``
    and then get a 504, long past any sane client timeout), ``maintenance`` (every
    API call answers 503). ``seed`` makes prices, books and faults reproducible.

    Market data: ``n_markets`` (>= 1; beyond the built-in catalogue of real MAX pairs,
    synthetic pairs are generated), ``price_tick`` (seconds per random-walk step),
    ``volatility`` (per-step log-return deviation), ``book_levels`` per side,
    ``history_seconds`` of trades generated before a market's first use (so k-lines
    have bars at once), ``maker_fee`` / ``taker_fee``, ``max_open_orders`` per account
    and market, ``nonce_window`` (MAX: 30 s), ``strict_nonces`` (refuse a nonce not
    greater than the last one of its key with 2006, as MAX may: off by default because
    several processes sharing one key cannot keep their nonces in wire order),
    ``client_oid_ttl`` (MAX: 24 h),
    ``order_error_status`` (HTTP status of order rejections; MAX answers some with 200
    and an error body).

    Memory: ``public_trades_kept`` public trades per market (MAX's ``/trades`` returns
    at most 1000), and closed (``done``/``cancel``) orders with their fills are
    forgotten ``closed_order_horizon`` after they closed (MAX's own query horizon:
    24 h); open orders are always kept.
    """

    public_limit: int = 1200
    private_limit: int = 1200
    window: float | timedelta = 60.0
    ban_seconds: float | timedelta = 60.0
    private_counts_against_ip: bool = False
    endpoint_weights: Mapping[str, int] = field(default_factory=dict)
    trust_forwarded_for: bool = True
    latency: Latency | float | tuple[float, float] = field(default_factory=Latency)
    error_rate: float = 0.0
    error_status: int = 500
    timeout_rate: float = 0.0
    hang_seconds: float | timedelta = 30.0
    maintenance: bool = False
    seed: int = 0
    n_markets: int = 24
    price_tick: float | timedelta = 1.0
    volatility: float = 0.0008
    book_levels: int = 20
    history_seconds: float | timedelta = 600.0
    maker_fee: Decimal | str | float = Decimal("0.00045")
    taker_fee: Decimal | str | float = Decimal("0.0015")
    max_open_orders: int = 200
    nonce_window: float | timedelta = 30.0
    strict_nonces: bool = False
    client_oid_ttl: float | timedelta = 86_400.0
    order_error_status: int = 200
    public_trades_kept: int = 1000
    closed_order_horizon: float | timedelta = 86_400.0

    def __post_init__(self) -> None:
        _positive_int("public_limit", self.public_limit)
        _positive_int("private_limit", self.private_limit)
        _positive_int("n_markets", self.n_markets)
        _positive_int("book_levels", self.book_levels)
        _positive_int("max_open_orders", self.max_open_orders)
        _positive_int("public_trades_kept", self.public_trades_kept)
        object.__setattr__(
            self,
            "closed_order_horizon",
            as_seconds(self.closed_order_horizon, name="closed_order_horizon"),
        )
        object.__setattr__(self, "window", as_seconds(self.window, name="window"))
        object.__setattr__(
            self, "ban_seconds", as_seconds(self.ban_seconds, name="ban_seconds", allow_zero=True)
        )
        object.__setattr__(self, "hang_seconds", as_seconds(self.hang_seconds, name="hang_seconds"))
        object.__setattr__(self, "price_tick", as_seconds(self.price_tick, name="price_tick"))
        object.__setattr__(
            self,
            "history_seconds",
            as_seconds(self.history_seconds, name="history_seconds", allow_zero=True),
        )
        object.__setattr__(self, "nonce_window", as_seconds(self.nonce_window, name="nonce_window"))
        object.__setattr__(
            self, "client_oid_ttl", as_seconds(self.client_oid_ttl, name="client_oid_ttl")
        )
        _fraction("error_rate", self.error_rate)
        _fraction("timeout_rate", self.timeout_rate)
        object.__setattr__(self, "latency", as_latency(self.latency))
        if not (isinstance(self.volatility, int | float) and 0 <= self.volatility < 1):
            raise ConfigurationError(f"volatility must be in [0, 1), got {self.volatility!r}")
        for name in ("error_status", "order_error_status"):
            status = getattr(self, name)
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status < 600:
                raise ConfigurationError(f"{name} must be an HTTP status, got {status!r}")
        if not 500 <= self.error_status < 600:
            raise ConfigurationError(f"error_status must be a 5xx, got {self.error_status!r}")
        object.__setattr__(self, "maker_fee", _decimal("maker_fee", self.maker_fee))
        object.__setattr__(self, "taker_fee", _decimal("taker_fee", self.taker_fee))
        weights = dict(self.endpoint_weights)
        for key, weight in weights.items():
            _positive_int(f"endpoint_weights[{key!r}]", weight)
        object.__setattr__(self, "endpoint_weights", weights)
        if not isinstance(self.strict_nonces, bool):
            raise ConfigurationError(f"strict_nonces must be a bool, got {self.strict_nonces!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigurationError(f"seed must be an integer, got {self.seed!r}")

    # The attributes are normalised to float seconds in __post_init__; these typed
    # accessors spare callers a cast.
    @property
    def latency_model(self) -> Latency:
        """``latency`` as a :class:`Latency`."""
        return as_latency(self.latency)

    @property
    def window_s(self) -> float:
        """``window`` in seconds."""
        return float(self.window)  # type: ignore[arg-type]  # normalised in __post_init__

    @property
    def ban_s(self) -> float:
        """``ban_seconds`` in seconds."""
        return float(self.ban_seconds)  # type: ignore[arg-type]  # normalised

    @classmethod
    def scaled(cls, scale: float, **overrides: object) -> SimulatorConfig:
        """MAX's limits with time (and budgets) scaled by ``scale``.

        ``scaled(0.1)`` gives 120 requests per 6 s per IP and per account and 6 s bans:
        the same shape as MAX's 1200/min, ten times faster to exercise in a test.
        ``overrides`` are other :class:`SimulatorConfig` fields.
        """
        if (
            isinstance(scale, bool)
            or not isinstance(scale, int | float)
            or not 0 < scale <= 1000
            or math.isnan(scale)
        ):
            raise ConfigurationError(f"scale must be a number in (0, 1000], got {scale!r}")
        base = cls()
        values: dict[str, object] = {
            "public_limit": max(1, round(base.public_limit * scale)),
            "private_limit": max(1, round(base.private_limit * scale)),
            "window": base.window_s * scale,
            "ban_seconds": base.ban_s * scale,
        }
        values.update(overrides)
        return replace(base, **values)  # type: ignore[arg-type]  # keys are field names
