"""Map MAX answers to :mod:`aimax.errors` exceptions (pure: ``now`` is passed in).

MAX reports errors as ``{"success": false, "error": {"code": 2005, "message": ...}}``,
sometimes with HTTP 200 (order placement), so every body is checked. A 429 (or 418)
means a ban until ``Retry-After``, which MAX gives as an absolute Unix timestamp;
delays in seconds and HTTP dates are accepted too.

    >>> exc = exception_for(400, {"error": {"code": 2005, "message": "bad sig"}},
    ...                     path="/api/v3/info", headers={}, now=0.0)
    >>> type(exc).__name__, exc.code, exc.status
    ('AuthenticationError', 2005, 400)
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping
from typing import Any

from aimax.errors import (
    AuthenticationError,
    BadRequest,
    ExchangeBanned,
    ExchangeError,
    InsufficientFunds,
    NonceError,
    OrderError,
    OrderNotFound,
    ServerError,
)

__all__ = ["CODE_CLASSES", "DEFAULT_BAN_SECONDS", "exception_for", "parse_retry_after"]

CODE_CLASSES: Mapping[int, type[ExchangeError]] = {
    1001: BadRequest,
    2014: BadRequest,
    2001: AuthenticationError,
    2005: AuthenticationError,
    2008: AuthenticationError,
    2006: NonceError,
    2007: NonceError,
    2002: OrderError,
    2003: OrderError,
    2016: OrderError,
    2023: OrderError,
    2034: OrderError,
    2004: OrderNotFound,
    2018: InsufficientFunds,
    5999: ServerError,
}
"""MAX's documented error codes and the exception each one raises."""

DEFAULT_BAN_SECONDS = 60.0
"""Assumed ban length when a 429 carries no usable ``Retry-After``."""

_ABSOLUTE_AFTER = 1_000_000_000.0  # a Retry-After number above this is a Unix timestamp


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """``Retry-After`` as an absolute Unix time, or ``None`` when absent/unreadable.

    >>> parse_retry_after("1700000060", now=1700000000.0)
    1700000060.0
    >>> parse_retry_after("30", now=1700000000.0)
    1700000030.0
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        return parsed.timestamp()
    if math.isnan(number) or math.isinf(number) or number < 0:
        return None
    return number if number >= _ABSOLUTE_AFTER else now + number


def _error_fields(body: object) -> tuple[int | None, str] | None:
    """``(code, message)`` when ``body`` carries a MAX error, else ``None``."""
    if not isinstance(body, Mapping):
        return None
    error: Any = body.get("error")
    if error is None or error is False:
        if body.get("success") is False:
            return None, str(body.get("message") or "request failed")
        return None
    if isinstance(error, Mapping):
        code = error.get("code")
        message = error.get("message")
        return (
            int(code) if isinstance(code, int | str) and str(code).isdigit() else None,
            str(message) if message is not None else "",
        )
    return None, str(error)


def exception_for(
    status: int,
    body: object,
    *,
    path: str,
    headers: Mapping[str, str],
    now: float,
) -> ExchangeError | None:
    """The exception for one HTTP answer, or ``None`` when it is a success.

    ``body`` is the parsed JSON (or ``None`` when the body was not JSON); ``now`` the
    current Unix time (for the ban's ``retry_after``). Headers are only read for
    ``Retry-After``; nothing from them reaches the exception.
    """
    fields = _error_fields(body)
    code, message = fields if fields is not None else (None, "")
    if status in (429, 418):
        until = parse_retry_after(headers.get("Retry-After"), now=now)
        if until is None:
            until = now + DEFAULT_BAN_SECONDS
        text = message or f"rate limit exceeded (HTTP {status})"
        return ExchangeBanned(
            f"{text}; banned until {until:.3f} (Unix time)",
            until=until,
            retry_after=max(0.0, until - now),
            scope="exchange",
            status=status,
            path=path,
            code=code,
        )
    if fields is None and 200 <= status < 300:
        return None
    if code is not None and code in CODE_CLASSES:
        return CODE_CLASSES[code](message, code=code, status=status, path=path)
    text = message or f"HTTP {status} from {path}"
    if status >= 500:
        return ServerError(text, code=code, status=status, path=path)
    if status in (401, 403):
        return AuthenticationError(text, code=code, status=status, path=path)
    if 400 <= status < 500:
        return BadRequest(text, code=code, status=status, path=path)
    return ExchangeError(text, code=code, status=status, path=path)
