"""One exception tree for the whole library.

Every exception raised on purpose by aimax derives from :class:`AimaxError`, and
carries the context needed to act on it as attributes (the pool, the pair, how long
to wait, the exchange's error code) as well as in its message. Secrets (API keys and
secrets) never appear in any of them.

::

    AimaxError
    ├── ConfigurationError (ValueError)    bad limits, sizes, fractions, durations,
    │   │                                  unknown pools, kinds, policies, metrics
    │   └── RequestTooLarge                a cost that can never fit its pool
    ├── RateLimitError
    │   ├── RateLimited                    no slot in time; .retry_after, .pool
    │   │   ├── WouldBlock                 a non-blocking acquire found no slot now
    │   │   └── Banned                     the scope is frozen by a 429; .until, .scope
    │   ├── LimiterClosed                  the limiter was closed while (or before) waiting
    │   └── BackendError                   the shared (Redis) backend failed or answered
    │       │                              something it should not have
    │       └── BackendUnavailable         it cannot be reached (the limiter falls back)
    ├── PoolError                          .pool
    │   ├── PoolFull                       the bounded queue is full (policy "reject",
    │   │                                  or "block" that timed out)
    │   └── PoolClosed                     submit after shutdown
    ├── MemoryManagerError
    ├── MonitorError
    │   ├── ProbeError                     a reading failed; .metric
    │   └── ProcessNotFound                no process with that pid; .pid
    └── ExchangeError                      .code, .message, .status (MAX's error body)
        ├── TransportError                 no usable HTTP answer (timeout, reset)
        │   └── OrderStateUnknown          a create got no answer and was not found by
        │                                  its client_oid; .client_oid (never resent)
        ├── BadRequest                     1001, 2014 and other 4xx
        ├── AuthenticationError            2001, 2005, 2008, missing credentials
        ├── NonceError                     2006, 2007
        ├── OrderError                     2002, 2003, 2016, 2023, 2034
        │   ├── OrderNotFound              2004
        │   └── InsufficientFunds          2018
        ├── ExchangeBanned (also Banned)   HTTP 429 / 418 from the exchange
        └── ServerError                    5999 and HTTP 5xx
"""

from __future__ import annotations

__all__ = [
    "AimaxError",
    "AuthenticationError",
    "BackendError",
    "BackendUnavailable",
    "BadRequest",
    "Banned",
    "ConfigurationError",
    "ExchangeBanned",
    "ExchangeError",
    "InsufficientFunds",
    "LimiterClosed",
    "MemoryManagerError",
    "MonitorError",
    "NonceError",
    "OrderError",
    "OrderNotFound",
    "OrderStateUnknown",
    "PoolClosed",
    "PoolError",
    "PoolFull",
    "ProbeError",
    "ProcessNotFound",
    "RateLimitError",
    "RateLimited",
    "RequestTooLarge",
    "ServerError",
    "TransportError",
    "WouldBlock",
]


class AimaxError(Exception):
    """Base of every exception aimax raises on purpose."""


# --------------------------------------------------------------------- configuration


class ConfigurationError(AimaxError, ValueError):
    """A bad value was given to aimax: the message names it.

    Example::

        >>> from aimax.errors import ConfigurationError
        >>> raise ConfigurationError("limit must be a positive integer, got 0")
        Traceback (most recent call last):
        ...
        aimax.errors.ConfigurationError: limit must be a positive integer, got 0
    """


class RequestTooLarge(ConfigurationError):
    """A request costs more than its pool's whole limit, so it could never be granted.

    Raised at once rather than letting the caller wait forever.
    """

    def __init__(self, message: str, *, pool: str, cost: float, limit: float) -> None:
        super().__init__(message)
        self.pool = pool
        self.cost = cost
        self.limit = limit


# ------------------------------------------------------------------------ rate limits


class RateLimitError(AimaxError):
    """Base of the rate limiter's errors."""


class RateLimited(RateLimitError):
    """No slot could be granted in time.

    ``retry_after`` is the number of seconds after which the request could pass (as
    far as the limiter knows now); ``pool`` names the pool that was short.
    """

    def __init__(self, message: str, *, retry_after: float, pool: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.pool = pool


class WouldBlock(RateLimited):
    """A non-blocking acquire (``try_acquire``, ``blocking=False``) found no slot now."""


class Banned(RateLimited):
    """The scope is frozen after a 429 / 418 until ``until`` (a Unix timestamp).

    Nothing of that scope is sent before then: MAX restarts the penalty on every
    request made during it.
    """

    def __init__(
        self,
        message: str,
        *,
        until: float,
        retry_after: float,
        scope: str | None = None,
        pool: str | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after, pool=pool)
        self.until = until
        self.scope = scope


class LimiterClosed(RateLimitError):
    """The limiter was closed while (or before) waiting for a slot."""


class BackendError(RateLimitError):
    """The shared limiter backend (Redis) failed or gave an answer it should not."""


class BackendUnavailable(BackendError):
    """The shared backend cannot be reached; the limiter runs on its local fallback."""


# ---------------------------------------------------------------------------- pools


class PoolError(AimaxError):
    """Base of the thread pools' errors; ``pool`` names the pool."""

    def __init__(self, message: str, *, pool: str) -> None:
        super().__init__(message)
        self.pool = pool


class PoolFull(PoolError):
    """The pool's bounded queue is full and its policy rejects (or blocking timed out)."""


class PoolClosed(PoolError):
    """The pool (or the manager) has been shut down."""


# --------------------------------------------------------------------------- memory


class MemoryManagerError(AimaxError):
    """A memory-manager operation failed (not a bad value: that is ConfigurationError)."""


# -------------------------------------------------------------------------- monitor


class MonitorError(AimaxError):
    """Base of the resource monitor's errors."""


class ProbeError(MonitorError):
    """A reading could not be taken; ``metric`` names it."""

    def __init__(self, message: str, *, metric: str) -> None:
        super().__init__(message)
        self.metric = metric


class ProcessNotFound(MonitorError, ConfigurationError):
    """There is no process with that ``pid`` (or it has exited)."""

    def __init__(self, message: str, *, pid: int) -> None:
        super().__init__(message)
        self.pid = pid


# ------------------------------------------------------------------------- exchange


class ExchangeError(AimaxError):
    """The exchange answered with an error, or could not be asked.

    ``code`` and ``message`` are MAX's (``{"error": {"code": 2005, "message": ...}}``)
    when it sent them, ``status`` the HTTP status (``None`` when no answer came).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        path: str | None = None,
    ) -> None:
        # Exception.__init__ directly: ExchangeBanned also derives from Banned, whose
        # __init__ wants arguments this one does not take.
        Exception.__init__(self, message if code is None else f"MAX error {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.path = path


class TransportError(ExchangeError):
    """No usable HTTP answer: connection refused, reset, or timed out.

    For an order, the request may or may not have reached the exchange: reconcile
    with ``get_order(client_oid=...)`` before sending it again.
    """


class OrderStateUnknown(TransportError):
    """A create_order got no answer and reconciliation could not find the order.

    It was NOT sent again. ``client_oid`` identifies it: ask ``get_order(client_oid=...)``
    later, or resend with the same ``client_oid`` (MAX rejects a duplicate, so the
    order can never be placed twice).
    """

    def __init__(self, message: str, *, client_oid: str, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.client_oid = client_oid


class BadRequest(ExchangeError):
    """The exchange rejected the request's parameters (1001, 2014, other 4xx)."""


class AuthenticationError(ExchangeError):
    """Credentials are missing, wrong or rejected (2001, 2005, 2008)."""


class NonceError(ExchangeError):
    """The nonce was reused (2006) or out of the server's window (2007)."""


class OrderError(ExchangeError):
    """An order could not be created or cancelled (2002, 2003, 2016, 2023, 2034)."""


class OrderNotFound(OrderError):
    """No such order (2004)."""


class InsufficientFunds(OrderError):
    """The account does not hold enough for the order (2018)."""


class ExchangeBanned(ExchangeError, Banned):
    """The exchange answered 429 (or 418): the IP or account is banned until ``until``."""

    def __init__(
        self,
        message: str,
        *,
        until: float,
        retry_after: float,
        scope: str | None = None,
        status: int | None = 429,
        path: str | None = None,
        code: int | None = None,
    ) -> None:
        ExchangeError.__init__(self, message, code=code, status=status, path=path)
        self.retry_after = retry_after
        self.pool = None
        self.until = until
        self.scope = scope


class ServerError(ExchangeError):
    """The exchange failed on its side (5999, HTTP 5xx, maintenance)."""
