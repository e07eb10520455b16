"""Server feedback: which statuses freeze a scope, and until when (``Retry-After``).

MAX sends ``Retry-After`` as an absolute Unix timestamp; RFC 9110 allows a number of
seconds or an HTTP date. All three are accepted:

    >>> parse_retry_after("1750000060", now=1_750_000_000.0, default=60.0)
    1750000060.0
    >>> parse_retry_after("30", now=1_750_000_000.0, default=60.0)
    1750000030.0
    >>> parse_retry_after("Sun, 15 Jun 2025 15:07:10 GMT", now=1_750_000_000.0, default=60.0)
    1750000030.0
    >>> parse_retry_after(None, now=1_750_000_000.0, default=60.0)
    1750000060.0
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["BAN_STATUSES", "BanEvent", "header", "parse_retry_after"]

logger = logging.getLogger(__name__)

BAN_STATUSES = frozenset({418, 429})
"""HTTP statuses that freeze a scope (429 Too Many Requests, 418 as some exchanges use)."""

_ABSOLUTE_AFTER = 1_000_000_000.0  # a number this large is a Unix timestamp, not a delay
_MILLISECONDS_AFTER = 100_000_000_000.0  # and this large, Unix milliseconds


@dataclass(frozen=True, kw_only=True, slots=True)
class BanEvent:
    """A scope was frozen: nothing of it is granted before ``until`` (Unix seconds)."""

    scope: str
    until: float
    retry_after: float
    status: int
    kind: str | None = None


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup on any mapping (dict, httpx.Headers, ...)."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, item in headers.items():
        if key.lower() == lowered:
            return item
    return None


def parse_retry_after(value: str | float | None, *, now: float, default: float) -> float:
    """The Unix time a ``Retry-After`` value points to (``now + default`` if unusable).

    Numbers of at least 1e9 are absolute Unix seconds (MAX), at least 1e11 Unix
    milliseconds; smaller numbers are seconds from ``now``; other text is tried as an
    HTTP date. A value in the past gives ``now`` (no freeze).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return now + default
    number: float | None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            number = None
    if number is not None:
        if math.isnan(number) or math.isinf(number) or number < 0:
            logger.warning("unusable Retry-After %r: freezing for %.1f s", value, default)
            return now + default
        if number >= _MILLISECONDS_AFTER:
            return max(now, number / 1000.0)
        if number >= _ABSOLUTE_AFTER:
            return max(now, number)
        return now + number
    try:
        when = parsedate_to_datetime(str(value).strip())
    except (TypeError, ValueError, IndexError):
        logger.warning("unparsable Retry-After %r: freezing for %.1f s", value, default)
        return now + default
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    return max(now, when.timestamp())
