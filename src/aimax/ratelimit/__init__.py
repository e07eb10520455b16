"""APIRateLimiter: exact, weighted, prioritised rate limiting for threads and asyncio.

>>> from aimax.ratelimit import APIRateLimiter
>>> limiter = APIRateLimiter.for_max(share=0.5)
>>> limiter.acquire("order", pair="btctwd").kind
'order'
>>> limiter.close()
"""

from aimax.ratelimit._core import Grant
from aimax.ratelimit.backend import GRANTED, Attempt, Charge, LimiterBackend, MemoryBackend
from aimax.ratelimit.config import DEFAULT_RESERVE, Priority, RateLimit, RequestKind, parse_rate
from aimax.ratelimit.feedback import BanEvent, parse_retry_after
from aimax.ratelimit.limiter import APIRateLimiter, LimitContext, LimiterClosed
from aimax.ratelimit.max_profile import max_kind_for
from aimax.ratelimit.stats import ClassStatistics, LimiterStatistics, PoolStatistics

__all__ = [
    "DEFAULT_RESERVE",
    "GRANTED",
    "APIRateLimiter",
    "Attempt",
    "BanEvent",
    "Charge",
    "ClassStatistics",
    "Grant",
    "LimitContext",
    "LimiterBackend",
    "LimiterClosed",
    "LimiterStatistics",
    "MemoryBackend",
    "PoolStatistics",
    "Priority",
    "RateLimit",
    "RequestKind",
    "max_kind_for",
    "parse_rate",
    "parse_retry_after",
]
