"""The MAX exchange profile: its documented pools and a kind for every v3 endpoint.

Pools (``MAX_API.md``): REST public 1200/min per IP, REST private 1200/min per
account, WebSocket messages 20/s and 200/min per connection, WebSocket connections
600/h and 1440/day per IP. A 429 bans the IP, so every REST kind freezes scope
``"ip"``.

    >>> max_kind_for("GET", "/api/v3/tickers?markets[]=btctwd")
    'market_data'
    >>> max_kind_for("POST", "/api/v3/wallet/spot/order")
    'order'
    >>> max_kind_for("DELETE", "/api/v3/wallet/m/orders")
    'cancel'
"""

from __future__ import annotations

import re

from aimax.errors import ConfigurationError
from aimax.ratelimit.config import Priority, RateLimit, RequestKind

__all__ = [
    "MAX_ENDPOINTS",
    "MAX_KINDS",
    "MAX_POOLS",
    "max_kind_for",
    "max_kinds",
    "max_limits",
]

MAX_POOLS: tuple[tuple[str, int, float], ...] = (
    ("rest_public", 1200, 60.0),
    ("rest_private", 1200, 60.0),
    ("ws_message_second", 20, 1.0),
    ("ws_message_minute", 200, 60.0),
    ("ws_connect_hour", 600, 3600.0),
    ("ws_connect_day", 1440, 86400.0),
)
"""(pool, limit, window seconds) as MAX documents them."""

MAX_KINDS = ("market_data", "account", "order", "cancel", "ws_message", "ws_connect")
"""The kind names the MAX client uses."""

_WALLET = r"(?:spot|m)"
MAX_ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    # public
    ("GET", r"/api/v3/markets", "market_data"),
    ("GET", r"/api/v3/currencies", "market_data"),
    ("GET", r"/api/v3/timestamp", "market_data"),
    ("GET", r"/api/v3/tickers", "market_data"),
    ("GET", r"/api/v3/ticker", "market_data"),
    ("GET", r"/api/v3/depth", "market_data"),
    ("GET", r"/api/v3/trades", "market_data"),
    ("GET", r"/api/v3/k", "market_data"),
    # private queries
    ("GET", r"/api/v3/info", "account"),
    ("GET", rf"/api/v3/wallet/{_WALLET}/accounts", "account"),
    ("GET", r"/api/v3/order", "account"),
    ("GET", r"/api/v3/order/trades", "account"),
    ("GET", rf"/api/v3/wallet/{_WALLET}/orders/open", "account"),
    ("GET", rf"/api/v3/wallet/{_WALLET}/orders/closed", "account"),
    ("GET", rf"/api/v3/wallet/{_WALLET}/orders/history", "account"),
    ("GET", rf"/api/v3/wallet/{_WALLET}/trades", "account"),
    # orders
    ("POST", rf"/api/v3/wallet/{_WALLET}/order", "order"),
    ("DELETE", r"/api/v3/order", "cancel"),
    ("DELETE", rf"/api/v3/wallet/{_WALLET}/orders", "cancel"),
)
"""(method, path regex, kind) for every v3 endpoint in MAX_API.md."""

_COMPILED = tuple(
    (method, re.compile(pattern + r"/?"), kind) for method, pattern, kind in MAX_ENDPOINTS
)


def max_kind_for(method: str, path: str) -> str:
    """The limiter kind of a MAX v3 request (query string and full URL allowed).

    Unknown v3 paths are classed conservatively: GET under ``/wallet/`` or
    ``/order`` is ``account``, other GETs ``market_data``; POST/PUT ``order``;
    DELETE ``cancel``. A path outside ``/api/v3/`` raises ConfigurationError.
    """
    if not isinstance(method, str) or not isinstance(path, str):
        raise ConfigurationError(f"method and path must be strings, got {method!r}, {path!r}")
    verb = method.strip().upper()
    clean = path.split("?", 1)[0].split("#", 1)[0]
    start = clean.find("/api/v3/")
    if start < 0:
        raise ConfigurationError(f"not a MAX v3 path: {path!r}")
    clean = clean[start:]
    for endpoint_method, pattern, kind in _COMPILED:
        if endpoint_method == verb and pattern.fullmatch(clean):
            return kind
    if verb == "GET":
        return "account" if ("/wallet/" in clean or "/order" in clean) else "market_data"
    if verb in {"POST", "PUT", "PATCH"}:
        return "order"
    if verb == "DELETE":
        return "cancel"
    raise ConfigurationError(f"unsupported HTTP method {method!r} for {path!r}")


def max_limits(*, share: float = 1.0, headroom: float = 0.95) -> list[RateLimit]:
    """MAX's pools, each limit times ``share`` (this process's part of the quota)."""
    return [
        RateLimit(name=name, limit=limit, window=window, headroom=headroom).scaled(share)
        for name, limit, window in MAX_POOLS
    ]


def max_kinds(*, private_counts_against_ip: bool = False) -> list[RequestKind]:
    """MAX's request kinds. MAX does not document whether private calls also count
    against the per-IP budget; ``private_counts_against_ip`` models that they do."""
    private: dict[str, int] = {"rest_private": 1}
    if private_counts_against_ip:
        private["rest_public"] = 1
    return [
        RequestKind(name="market_data", charges={"rest_public": 1}, priority=Priority.MARKET_DATA),
        RequestKind(name="account", charges=private, priority=Priority.ACCOUNT),
        RequestKind(name="order", charges=private, priority=Priority.ORDER),
        RequestKind(name="cancel", charges=private, priority=Priority.CANCEL),
        RequestKind(
            name="ws_message",
            charges={"ws_message_second": 1, "ws_message_minute": 1},
            priority=Priority.MARKET_DATA,
            scope="ws",
        ),
        RequestKind(
            name="ws_connect",
            charges={"ws_connect_hour": 1, "ws_connect_day": 1},
            priority=Priority.MARKET_DATA,
        ),
    ]
