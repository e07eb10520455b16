"""MAX REST v3 client: signing, nonces, endpoints, typed results, error mapping.

:class:`MaxClient` (asyncio, httpx) and :class:`MaxClientSync` (the blocking facade)
route every request through an :class:`aimax.ratelimit.APIRateLimiter` (plus a
:class:`CompletionGuard` that keeps the exchange's own window under the limit despite
latency jitter) and feed every answer back to it::

    from aimax.exchange.max import MaxClient

    async with MaxClient(base_url="https://max-api.maicoin.com",
                         access_key=key, secret_key=secret) as client:
        books = await client.tickers(["btctwd", "ethtwd"])
        order = await client.create_order("btctwd", "buy", "0.001", "1500000")
"""

from aimax.exchange.max.book import BookEvent, BookState, LocalBook, OrderBooks
from aimax.exchange.max.client import (
    DEFAULT_BASE_URL,
    ClientStatistics,
    MaxClient,
    OrderStateUnknown,
    RateLimiterLike,
)
from aimax.exchange.max.endpoints import Call, CancelResult, Endpoints, new_client_oid
from aimax.exchange.max.errormap import exception_for, parse_retry_after
from aimax.exchange.max.guard import CompletionGuard, InFlightWindow, guard_for
from aimax.exchange.max.models import (
    Account,
    Currency,
    KLine,
    Market,
    Order,
    OrderBook,
    PriceLevel,
    PublicTrade,
    Ticker,
    Trade,
    UserInfo,
)
from aimax.exchange.max.nonce import NonceGenerator, nonce_generator_for
from aimax.exchange.max.signing import SignedRequest, hmac_signature, sign_request
from aimax.exchange.max.stream import (
    DEFAULT_STREAM_URL,
    MaxStream,
    StreamSettings,
    StreamStatistics,
)
from aimax.exchange.max.sync import MaxClientSync

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_STREAM_URL",
    "Account",
    "BookEvent",
    "BookState",
    "Call",
    "CancelResult",
    "ClientStatistics",
    "CompletionGuard",
    "Currency",
    "Endpoints",
    "InFlightWindow",
    "KLine",
    "LocalBook",
    "Market",
    "MaxClient",
    "MaxClientSync",
    "MaxStream",
    "NonceGenerator",
    "Order",
    "OrderBook",
    "OrderBooks",
    "OrderStateUnknown",
    "PriceLevel",
    "PublicTrade",
    "RateLimiterLike",
    "SignedRequest",
    "StreamSettings",
    "StreamStatistics",
    "Ticker",
    "Trade",
    "UserInfo",
    "exception_for",
    "guard_for",
    "hmac_signature",
    "new_client_oid",
    "nonce_generator_for",
    "parse_retry_after",
    "sign_request",
]
