"""The Redis backend: one exact budget shared by many processes and hosts.

Every process that points at the same Redis and key ``prefix`` draws on one budget.
Each :meth:`RedisBackend.attempt` is ONE round trip: a Lua script (``lua/limiter.lua``,
run with ``EVALSHA``, reloaded after ``NOSCRIPT``) reads the server's clock (``TIME``),
checks the frozen scopes and every linked pool's sliding log, and either charges them
all or answers how long to wait. The rules are those of
:class:`~aimax.ratelimit.backend.LimiterBackend`, which the contract tests check on
both backends.

The synchronous calls skip redis-py's per-command machinery: the ``EVALSHA`` of each
(charges, scopes) combination is encoded once, and sent on connections this backend
keeps for itself (opened by redis-py, so TLS, AUTH and SELECT are its; spoken in
RESP2; a forked child opens its own), whose replies it parses itself. The asyncio
calls go through ``redis.asyncio``.

Keys live under ``{prefix}:`` (a hash tag, so a Redis Cluster keeps them on one
slot): ``{prefix}:pool:<name>`` is a pool's log (one element per unit), ``{prefix}:ctl``
the frozen scopes, reservations and per-pool bookkeeping; every key expires once idle
(within two windows). Needs Redis >= 5 (or Valkey): the script reads ``TIME`` before
writing, which relies on effects replication.

Faults never fail open. When Redis cannot be reached or times out, the backend runs
on a local :class:`~aimax.ratelimit._window.WindowCore` holding ``share`` of each cap
(default ``1 / expected_processes``) whose pools start full for one window (grants
made through Redis before the outage are not known locally). It warns once, reports
``degraded`` in :meth:`RedisBackend.statistics`, and probes Redis with a growing
interval (never on every call). Back on Redis it replays its local grants into the
shared logs and reserves the other processes' local shares for one window plus the
time their own probes may take (``probe_max_interval + connect_timeout +
socket_timeout``); when the server was restarted (new ``run_id``), the lost window
is blocked too. Bad URLs raise :class:`~aimax.errors.ConfigurationError`, refused
credentials and wrong replies :class:`~aimax.errors.BackendError`.

Known limit: the fallback is exact when Redis is down for every process (the usual
outage). If only one process loses Redis (a partition) while the others keep using
it, that process's local share comes on top of their budget until it is back.

    backend = RedisBackend.from_url("redis://127.0.0.1:6379/0", prefix="bot",
                                    expected_processes=4)
    limiter = APIRateLimiter.for_max(backend=backend)
    backend.statistics().degraded      # False while Redis answers
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import re
import socket
import threading
import weakref
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    InvalidResponse,
    NoScriptError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from aimax import _clock
from aimax._metrics import MetricSample
from aimax.errors import BackendError, BackendUnavailable, ConfigurationError, RequestTooLarge
from aimax.ratelimit._window import GRANTED, Attempt, Charge, WindowCore

__all__ = ["RedisBackend", "RedisBackendStatistics", "limiter_script"]

logger = logging.getLogger(__name__)

_SCHEMES: Final = ("redis", "rediss", "unix")
_US: Final = 1_000_000
_LAST_UNIX_SECOND: Final = 253_402_300_799.0  # 9999-12-31T23:59:59Z
_BLOCK: Final = 1 << 40
"""Units that fill any pool: the local fallback's pools start full for one window."""
_UNAVAILABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError)
_REFUSED: Final = (AuthenticationError, AuthorizationError)
_PASSWORD: Final = re.compile(r"^([a-z]+://[^:/@]*:)[^@]*@", re.IGNORECASE)
_QUERY_PASSWORD: Final = re.compile(r"([?&](?:ssl_)?password=)[^&]*", re.IGNORECASE)


@cache
def limiter_script() -> str:
    """The Lua source of the limiter script (read once from the package)."""
    return (
        resources.files("aimax.ratelimit")
        .joinpath("lua", "limiter.lua")
        .read_text(encoding="utf-8")
    )


@cache
def _script_sha() -> str:
    return hashlib.sha1(limiter_script().encode(), usedforsecurity=False).hexdigest()


def _redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    return _QUERY_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", url))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# ------------------------------------------------------------------ the wire (sync path)


def _error_reply(text: str) -> ResponseError:
    """An error reply as redis-py's exception class for it (e.g. NoScriptError)."""
    try:  # redis-py's own mapping (a private module: kept out of the import path)
        from redis._parsers.base import BaseParser
    except ImportError:  # pragma: no cover - every redis-py this project allows has it
        if text.startswith("NOSCRIPT"):
            return NoScriptError(text)
        return ResponseError(text)
    parse: Any = BaseParser.parse_error  # untyped in redis-py
    error: ResponseError = parse(text)
    return error


class _Incomplete(Exception):
    """The reply read so far ends before its last byte."""


def _parse(buf: bytes, pos: int) -> tuple[Any, int]:
    """One RESP value of ``buf`` at ``pos``: (value, position after it).

    Error replies come back as :class:`ResponseError` instances (redis-py's classes,
    e.g. :class:`NoScriptError`); bulk strings as bytes. Raises :class:`_Incomplete`
    when ``buf`` ends first, :class:`InvalidResponse` on bytes that are not RESP.
    """
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind = buf[pos]
    line = buf[pos + 1 : end]
    pos = end + 2
    try:
        if kind in {58, 40}:  # ':' integer, '(' big number
            return int(line), pos
        if kind in {42, 126}:  # '*' array, '~' set
            n = int(line)
            if n < 0:
                return None, pos
            items = []
            for _ in range(n):
                item, pos = _parse(buf, pos)
                items.append(item)
            return items, pos
        if kind in {36, 61, 33}:  # '$' bulk, '=' verbatim, '!' error
            n = int(line)
            if n < 0:
                return None, pos
            if len(buf) < pos + n + 2:
                raise _Incomplete
            data = buf[pos : pos + n]
            if kind == 33:
                return _error_reply(data.decode(errors="replace")), pos + n + 2
            return data, pos + n + 2
        if kind == 45:  # '-' error
            return _error_reply(line.decode(errors="replace")), pos
        if kind == 43:  # '+' status
            return line, pos
        if kind == 95:  # '_' null
            return None, pos
    except ValueError:
        pass
    raise InvalidResponse(f"Protocol error: {buf[:64]!r}")


def _read_reply(sock: socket.socket) -> Any:
    """Read one reply from ``sock``; raise it when it is an error reply."""
    buf = sock.recv(65536)
    while True:
        if not buf:
            raise RedisConnectionError("Connection closed by server.")
        if buf[0] == 58 and buf.endswith(b"\r\n"):  # ':<int>\r\n', a granted attempt
            try:
                return int(buf[1:-2])
            except ValueError:
                raise InvalidResponse(f"Protocol error: {buf[:64]!r}") from None
        try:
            value, pos = _parse(buf, 0)
        except _Incomplete:
            more = sock.recv(65536)
            if not more:
                raise RedisConnectionError("Connection closed by server.") from None
            buf += more
            continue
        if pos != len(buf):
            raise InvalidResponse(f"Protocol error: unexpected bytes after a reply: {buf!r:.200}")
        if isinstance(value, ResponseError):
            raise value
        return value


def _close_all(client: redis.Redis, conns: set[Any]) -> None:
    """Close a backend's redis-py client and its dedicated connections."""
    for conn in list(conns):
        conn.disconnect()
    client.close()


_LIVE: weakref.WeakSet[RedisBackend] = weakref.WeakSet()
_fork_hook: list[bool] = []  # registered with the first backend, not at import


def _after_fork() -> None:
    # a forked child must not talk on its parent's sockets: it opens its own
    for backend in list(_LIVE):
        backend._idle.clear()
        backend._conns.clear()


def _track(backend: RedisBackend) -> None:
    if not _fork_hook:
        _fork_hook.append(True)
        os.register_at_fork(after_in_child=_after_fork)
    _LIVE.add(backend)


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisBackendStatistics:
    """A snapshot of a :class:`RedisBackend` (see :meth:`RedisBackend.statistics`)."""

    url: str
    """The server URL, password masked."""
    prefix: str
    degraded: bool
    """True while the backend runs on its local fallback (Redis unreachable)."""
    degraded_for: float
    """Seconds spent in the current outage (0.0 when not degraded)."""
    outages: int
    """Times the backend fell back to the local limiter."""
    share: float
    """Share of each cap the local fallback grants."""
    redis_attempts: int
    """Attempts answered by Redis (one round trip each)."""
    local_attempts: int
    """Attempts answered by the local fallback."""
    local_grants: int
    script_loads: int
    """SCRIPT LOADs (once at start, again after a server restart)."""
    probes: int
    """Tries to return to Redis while degraded."""
    restarts_detected: int
    """Server restarts noticed (a new run_id, or an unknown one after an outage): the
    window the server lost was blocked."""
    last_error: str | None


@dataclass(frozen=True, slots=True)
class _Plan:
    """The precomputed EVALSHA arguments for one (charges, scopes) combination."""

    charges: tuple[Charge, ...]
    pools: tuple[str, ...]
    keys: tuple[str, ...]
    args: tuple[str | int, ...]
    local: tuple[Charge, ...]
    """The same charges with caps scaled to the local share."""
    packed: bytes
    """The whole EVALSHA command, RESP-encoded once: the hot path sends these bytes."""


def _resp(*parts: str | int) -> bytes:
    """One command in the Redis protocol (RESP2 array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RedisBackend:
    """A :class:`~aimax.ratelimit.backend.LimiterBackend` on Redis, for many processes.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or
            ``unix:///path/to/socket[?db=0]``.
        prefix: the deployment's key prefix: processes sharing a budget share it.
        expected_processes: how many processes share the budget; the local fallback
            grants ``1 / expected_processes`` of each cap unless ``fallback_share``
            is given.
        fallback_share: share (0 < share <= 1) of each cap the fallback may grant.
        socket_timeout: seconds a command may take before Redis counts as unavailable.
        connect_timeout: seconds a connection may take to open.
        probe_interval: first wait before retrying Redis once degraded; doubles up to
            ``probe_max_interval``.
        clock: monotonic seconds for the local fallback (tests pass a fake one).
        wall: Unix seconds (only to translate local freeze ends).
        client_options: extra keyword arguments for ``redis.Redis.from_url``.

    Example::

        backend = RedisBackend.from_url("redis://127.0.0.1:6379/0", prefix="bot1",
                                        expected_processes=4)
        limiter = APIRateLimiter(limits=[...], kinds=[...], backend=backend)
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "aimax",
        expected_processes: int = 1,
        fallback_share: float | None = None,
        socket_timeout: float = 1.0,
        connect_timeout: float = 1.0,
        probe_interval: float = 0.1,
        probe_max_interval: float = 2.0,
        clock: _clock.Clock | None = None,
        wall: _clock.Clock | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ConfigurationError(f"url must be a non-empty Redis URL, got {url!r}")
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in _SCHEMES:
            raise ConfigurationError(
                f"url must start with redis://, rediss:// or unix://, got {_redact(url)!r}"
            )
        if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "{}"):
            raise ConfigurationError(
                f"prefix must be a non-empty string without braces, got {prefix!r}"
            )
        if isinstance(expected_processes, bool) or not isinstance(expected_processes, int):
            raise ConfigurationError(
                f"expected_processes must be a positive integer, got {expected_processes!r}"
            )
        if expected_processes < 1:
            raise ConfigurationError(
                f"expected_processes must be a positive integer, got {expected_processes!r}"
            )
        share = 1.0 / expected_processes if fallback_share is None else fallback_share
        if (
            isinstance(share, bool)
            or not isinstance(share, int | float)
            or not 0.0 < share <= 1.0
            or math.isnan(share)
        ):
            raise ConfigurationError(f"fallback_share must be in (0, 1], got {fallback_share!r}")
        self._socket_timeout = _clock.as_seconds(socket_timeout, name="socket_timeout")
        self._connect_timeout = _clock.as_seconds(connect_timeout, name="connect_timeout")
        self._probe_interval = _clock.as_seconds(probe_interval, name="probe_interval")
        self._probe_max = _clock.as_seconds(probe_max_interval, name="probe_max_interval")
        if self._probe_max < self._probe_interval:
            raise ConfigurationError(
                f"probe_max_interval ({probe_max_interval!r}) must be at least "
                f"probe_interval ({probe_interval!r})"
            )
        self._url = url
        self.prefix = prefix
        self.share = float(share)
        self._clock: _clock.Clock = clock if clock is not None else _clock.monotonic
        self._wall: _clock.Clock = wall if wall is not None else _clock.wall
        self._options: dict[str, Any] = {
            "socket_timeout": self._socket_timeout,
            "socket_connect_timeout": self._connect_timeout,
            "health_check_interval": 0,
        }
        self._options.update(client_options or {})
        try:
            self._client: redis.Redis = redis.Redis.from_url(
                url,
                retry=Retry(NoBackoff(), 0),
                **self._options,
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"bad Redis URL {_redact(url)!r}: {exc}") from None
        self._async: dict[asyncio.AbstractEventLoop, redis.asyncio.Redis] = {}
        self._tag = f"{{{prefix}}}"
        self._ctl = f"{self._tag}:ctl"
        self._sha = _script_sha()
        self._lock = threading.Lock()
        self._plans: dict[tuple[tuple[Charge, ...], tuple[str, ...]], _Plan] = {}
        self._recent: dict[int, tuple[Sequence[Charge], Sequence[str], _Plan]] = {}
        self._pools: dict[str, tuple[float, int]] = {}  # name -> (window, largest cap)
        self._freezes: dict[str, float] = {}  # scope -> until (Unix s), as far as known
        self._run_id: str | None = None
        # degraded state
        self._degraded_since: float | None = None
        self._local: WindowCore | None = None
        self._seeded: set[str] = set()
        self._replay: deque[tuple[float, tuple[Charge, ...]]] = deque()
        self._next_probe = 0.0
        self._backoff = self._probe_interval
        self._probing = False
        # statistics
        self._outages = 0
        self._redis_attempts = 0
        self._local_attempts = 0
        self._local_grants = 0
        self._script_loads = 0
        self._probes = 0
        self._restarts = 0
        self._last_error: str | None = None
        self._closed = False
        self._grants = threading.local()
        self._idle: list[Any] = []  # dedicated connections not in use (see _send)
        self._conns: set[Any] = set()  # every dedicated connection, to close them
        self._finalizer = weakref.finalize(self, _close_all, self._client, self._conns)
        _track(self)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisBackend:
        """Connect by URL (``redis://``, ``rediss://``, ``unix://``); see the class.

        >>> RedisBackend.from_url("http://localhost")
        Traceback (most recent call last):
        ...
        aimax.errors.ConfigurationError: url must start with redis://, rediss:// or \
unix://, got 'http://localhost'
        """
        return cls(url, **options)

    # ------------------------------------------------------------------ plans

    def _plan(self, charges: Sequence[Charge], scopes: Sequence[str]) -> _Plan:
        # the limiter passes the same tuples again and again: recognise them by identity
        # (the cache holds them, so their ids cannot be reused meanwhile)
        hit = self._recent.get(id(charges))
        if hit is not None and hit[0] is charges and hit[1] is scopes:
            return hit[2]
        key = (tuple(charges), tuple(scopes))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._make_plan(*key)
        if len(self._recent) > 4096:
            self._recent.clear()
        self._recent[id(charges)] = (charges, scopes, plan)
        return plan

    def _make_plan(self, charges: tuple[Charge, ...], scopes: tuple[str, ...]) -> _Plan:
        if not charges and not scopes:
            raise ConfigurationError("an attempt needs at least one charge or scope")
        pools: list[str] = []
        for charge in charges:
            if not isinstance(charge, Charge):
                raise ConfigurationError(f"charges must be Charge objects, got {charge!r}")
            if charge.pool in pools:
                raise ConfigurationError(f"pool {charge.pool!r} charged twice in one attempt")
            if not (isinstance(charge.window, int | float) and charge.window > 0):
                raise ConfigurationError(f"window of pool {charge.pool!r} must be positive")
            if not (isinstance(charge.cap, int) and isinstance(charge.cost, int)) or (
                charge.cost < 1 or charge.cap < 1
            ):
                raise ConfigurationError(
                    f"cost and cap of pool {charge.pool!r} must be positive integers, "
                    f"got cost={charge.cost!r} cap={charge.cap!r}"
                )
            if charge.cost > charge.cap:
                raise RequestTooLarge(
                    f"a request costing {charge.cost} can never fit the cap {charge.cap} "
                    f"of pool {charge.pool!r}",
                    pool=charge.pool,
                    cost=charge.cost,
                    limit=charge.cap,
                )
            pools.append(charge.pool)
        for scope in scopes:
            if not isinstance(scope, str) or not scope:
                raise ConfigurationError(f"scopes must be non-empty strings, got {scope!r}")
        keys = (self._ctl, *(f"{self._tag}:pool:{pool}" for pool in pools))
        args: list[str | int] = ["a", len(charges), len(scopes)]
        for charge in charges:
            args += [charge.cost, charge.cap, max(1, round(charge.window * _US))]
        args += [f"f:{scope}" for scope in scopes]
        for pool in pools:
            args += [f"r:{pool}", f"e:{pool}", f"h:{pool}", f"d:{pool}", f"x:{pool}"]
        local = tuple(
            Charge(
                pool=c.pool,
                cost=c.cost,
                cap=max(0, math.floor(c.cap * self.share + 1e-9)),
                window=c.window,
            )
            for c in charges
        )
        packed = _resp("EVALSHA", self._sha, len(keys), *keys, *args)
        plan = _Plan(charges, tuple(pools), keys, tuple(args), local, packed)
        with self._lock:
            for charge in charges:
                window, cap = self._pools.get(charge.pool, (charge.window, 0))
                self._pools[charge.pool] = (window, max(cap, charge.cap))
            if len(self._plans) > 4096:
                self._plans.clear()
            self._plans[(charges, scopes)] = plan
        return plan

    def _decode(self, plan: _Plan, reply: Any, *, charged: bool = True) -> Attempt:
        if type(reply) is int:  # granted: the reply is the grant time (us)
            if charged:
                self._grants.last = (reply / _US, False)
            return GRANTED
        try:
            status, wait_us, index, extra = reply
            status = int(status)
        except (TypeError, ValueError):
            raise BackendError(
                f"the Redis limiter script answered {reply!r}, not a grant time or "
                "[status, wait, pool, until]"
            ) from None
        if status == 0:
            wait = int(wait_us) / _US
            if int(extra) > 0:
                until = int(extra) / _US
                with self._lock:
                    for scope in plan.args[3 + 3 * len(plan.pools) :]:
                        if isinstance(scope, str) and scope.startswith("f:"):
                            self._freezes[scope[2:]] = until
                return Attempt(granted=False, wait=wait, pool=None, frozen_until=until)
            pool = plan.pools[int(index) - 1] if 0 < int(index) <= len(plan.pools) else None
            return Attempt(granted=False, wait=wait, pool=pool, frozen_until=None)
        raise BackendError(f"the Redis limiter script answered status {status!r}: {reply!r}")

    # ------------------------------------------------------------------ errors

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(f"{self!r} is closed")

    def _fatal(self, exc: RedisError) -> BackendError:
        """A BackendError for errors that falling back would hide (config, protocol)."""
        where = _redact(self._url)
        if isinstance(exc, _REFUSED):
            return BackendError(f"Redis at {where} refused the connection: {_describe(exc)}")
        if isinstance(exc, InvalidResponse):
            return BackendError(
                f"the server at {where} does not speak the Redis protocol: {_describe(exc)}"
            )
        return BackendError(f"Redis at {where} answered an error: {_describe(exc)}")

    # ------------------------------------------------------------------ degraded mode

    def _go_degraded(self, exc: BaseException, now: float) -> None:
        with self._lock:
            self._last_error = _describe(exc)
            if self._degraded_since is not None:
                return
            self._degraded_since = now
            self._outages += 1
            self._local = WindowCore()
            self._seeded = set()
            self._replay.clear()
            self._backoff = self._probe_interval
            self._next_probe = now + self._probe_interval
            wall = self._wall()
            for scope, until in self._freezes.items():
                if until > wall:
                    self._local.freeze(scope, now + (until - wall))
        logger.warning(
            "Redis at %s is unavailable (%s): the rate limiter runs on a local share of "
            "%.3g of each budget until it answers again",
            _redact(self._url),
            _describe(exc),
            self.share,
        )

    def _local_attempt(self, plan: _Plan, scopes: Sequence[str]) -> Attempt:
        with self._lock:
            now = self._clock()  # read under the lock: local grants are in time order
            core = self._local
            if core is None:  # another thread just rejoined Redis: ask it at once
                return Attempt(granted=False, wait=0.0, pool=None)
            self._local_attempts += 1
            for charge in plan.local:
                if charge.pool not in self._seeded:
                    # grants made through Redis before the outage are unknown here
                    core.prefill(charge.pool, charge.window, _BLOCK, now)
                    self._seeded.add(charge.pool)
            to_probe = max(self._next_probe - now, 1e-3)
            for charge in plan.local:
                if charge.cost > charge.cap:  # never fits the local share: wait for Redis
                    return Attempt(granted=False, wait=to_probe, pool=charge.pool)
            answer = core.attempt(plan.local, scopes, now)
            if answer.granted:
                self._grants.last = (self._wall(), True)
                self._local_grants += 1
                self._replay.append((now, plan.charges))
                return answer
            if answer.frozen_until is not None:
                return Attempt(
                    granted=False,
                    wait=answer.wait,
                    pool=None,
                    frozen_until=self._wall() + answer.wait,
                )
            return Attempt(granted=False, wait=min(answer.wait, to_probe), pool=answer.pool)

    def _probe_due(self, now: float) -> bool:
        with self._lock:
            if self._degraded_since is None or self._probing or now < self._next_probe:
                return False
            self._probing = True
            self._probes += 1
            return True

    def _probe_failed(self, exc: BaseException, now: float) -> None:
        with self._lock:
            self._probing = False
            self._last_error = _describe(exc)
            self._backoff = min(self._backoff * 2, self._probe_max)
            self._next_probe = now + self._backoff

    def _rejoin_args(
        self, now: float, *, restarted: bool, replay_from: int = 0, reserve: bool = True
    ) -> tuple[list[str], list[str | int], int]:
        """Keys and ARGV of the 'r' operation, and how many local grants they replay.

        Replays the local grants (from index ``replay_from``), reserves the other
        processes' local shares (``reserve``) and, after a restart, blocks the window
        the server lost (from when this process noticed the outage, or from now).
        """
        with self._lock:
            since = self._degraded_since if self._degraded_since is not None else now
            pools = dict(self._pools)
            horizon = max((w for w, _ in pools.values()), default=0.0)
            replay = list(self._replay)
        upto = len(replay)
        per_pool: dict[str, list[tuple[int, int]]] = {name: [] for name in pools}
        for t, charges in replay[replay_from:]:
            if now - t >= horizon:
                continue
            for charge in charges:
                per_pool.setdefault(charge.pool, []).append(
                    (max(0, round((now - t) * _US)), charge.cost)
                )
        if restarted:
            age = max(0, round((now - since) * _US))
            for name, (_, cap) in pools.items():
                per_pool[name].append((age, cap))
        # the others keep granting locally until their next probe (at most
        # probe_max_interval away) has gone through (connect + one command)
        hold = self._probe_max + self._connect_timeout + self._socket_timeout
        keys = [self._ctl]
        args: list[str | int] = ["r", len(pools), round(hold * _US)]
        fields: list[str] = []
        for name, (window, cap) in pools.items():
            entries = per_pool[name]
            others = cap - math.floor(cap * self.share + 1e-9) if reserve else 0
            keys.append(f"{self._tag}:pool:{name}")
            args += [max(1, round(window * _US)), others, len(entries)]
            for age, cost in entries:
                args += [age, cost]
            fields += [f"r:{name}", f"e:{name}"]
        args += fields
        return keys, args, upto

    def _rejoined(self, run_id: str, restarted: bool, replayed: int) -> list[Any]:
        """Back on Redis. Returns the 'r' call (keys + args) for the local grants made
        while the rejoin was in flight (none: an empty list)."""
        with self._lock:
            was = self._degraded_since
            late = list(self._replay)[replayed:]
            self._degraded_since = None
            self._local = None
            self._seeded = set()
            self._replay.clear()
            self._probing = False
            self._backoff = self._probe_interval
            if restarted:
                self._restarts += 1
            self._run_id = run_id
            if late:
                self._replay.extend(late)
        tail: list[Any] = []
        if late:
            keys, args, _ = self._rejoin_args(self._clock(), restarted=False, reserve=False)
            with self._lock:
                self._replay.clear()
            tail = [*keys, *args]
            tail.insert(0, len(keys))
        if was is not None:
            logger.warning(
                "Redis at %s answers again: the rate limiter is back on the shared budget "
                "after %.3g s on its local share",
                _redact(self._url),
                self._clock() - was,
            )
        return tail

    @staticmethod
    def _parse_run_id(info: Any) -> str:
        if isinstance(info, Mapping) and isinstance(info.get("run_id"), str | bytes):
            run_id = info["run_id"]
            return run_id.decode() if isinstance(run_id, bytes) else str(run_id)
        raise BackendError(f"INFO server gave no run_id: {info!r:.200}")

    def _loaded(self, sha: Any, run_id: str) -> None:
        if isinstance(sha, bytes):
            sha = sha.decode()
        if sha != self._sha:
            raise BackendError(f"SCRIPT LOAD returned {sha!r}, expected {self._sha!r}")
        with self._lock:
            self._script_loads += 1

    def _pending_freezes(self) -> list[tuple[str, float]]:
        wall = self._wall()
        with self._lock:
            return [(s, u) for s, u in self._freezes.items() if u > wall]

    def _local_peek(self, plan: _Plan, scopes: Sequence[str], now: float) -> Attempt:
        with self._lock:
            core = self._local
            if core is None:
                return Attempt(granted=False, wait=self._probe_interval, pool=None)
            until = core.frozen_until(scopes, now)
            if until is not None:
                return Attempt(
                    granted=False,
                    wait=until - now,
                    pool=None,
                    frozen_until=self._wall() + (until - now),
                )
            worst, short = 0.0, None
            for charge in plan.local:
                log = core.pools.get(charge.pool)
                used = 0
                if log is not None:
                    log.expire(now)
                    used = log.used
                elif charge.pool not in self._seeded:
                    used = _BLOCK  # it will start full (see _local_attempt)
                excess = used + charge.cost - charge.cap
                if excess > 0:
                    wait = (
                        log.wait_for(excess, now)
                        if log is not None and charge.cost <= charge.cap
                        else math.inf
                    )
                    wait = min(wait, charge.window, max(self._next_probe - now, 1e-3))
                    if short is None or wait > worst:
                        worst, short = wait, charge.pool
            if short is None:
                return GRANTED
            return Attempt(granted=False, wait=worst, pool=short)

    def _freeze_local(self, scope: str, until: float) -> float:
        if not isinstance(scope, str) or not scope:
            raise ConfigurationError(f"scope must be a non-empty string, got {scope!r}")
        if (
            isinstance(until, bool)
            or not isinstance(until, int | float)
            or not math.isfinite(until)
            or until > _LAST_UNIX_SECOND
        ):
            raise ConfigurationError(
                f"until must be finite Unix seconds before the year 10000, got {until!r}"
            )
        until = float(until)
        with self._lock:
            if until > self._freezes.get(scope, -math.inf):
                self._freezes[scope] = until
            if self._local is not None:
                now = self._clock()
                self._local.freeze(scope, now + (until - self._wall()))
        return until

    def _usage_args(self) -> tuple[list[str], list[str | int], list[str]]:
        with self._lock:
            pools = dict(self._pools)
        names = list(pools)
        keys = [self._ctl, *(f"{self._tag}:pool:{name}" for name in names)]
        args: list[str | int] = ["u", len(names)]
        args += [max(1, round(pools[name][0] * _US)) for name in names]
        for name in names:
            args += [f"r:{name}", f"e:{name}"]
        return keys, args, names

    def _local_usage(self) -> Mapping[str, int]:
        with self._lock:
            if self._local is None:
                return {}
            usage = self._local.usage(self._clock())
            caps = {name: cap for name, (_, cap) in self._pools.items()}
        # a pool that starts full after an outage holds a huge placeholder: show the cap
        return {name: min(used, caps.get(name, used)) for name, used in usage.items()}

    @staticmethod
    def _decode_usage(reply: Any, names: list[str]) -> Mapping[str, int]:
        if not isinstance(reply, list) or len(reply) != len(names) + 1:
            raise BackendError(f"the Redis limiter script answered {reply!r} to a usage query")
        try:
            return {name: int(used) for name, used in zip(names, reply, strict=False)}
        except (TypeError, ValueError):
            raise BackendError(
                f"the Redis limiter script answered {reply!r} to a usage query"
            ) from None

    # ------------------------------------------------------------------ sync driver

    def _connection(self) -> Any:
        """A new dedicated connection (see :meth:`_send`), not yet connected."""
        pool: Any = self._client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        # RESP2: no push messages can slip in between a command and its reply
        kwargs["protocol"] = 2
        if "maint_notifications_config" in kwargs:  # redis-py >= 7: RESP3-only feature
            kwargs["maint_notifications_config"] = None
            kwargs.pop("maint_notifications_pool_handler", None)
        conn = pool.connection_class(**kwargs)
        with self._lock:
            self._conns.add(conn)
        return conn

    def _send(self, packed: bytes) -> Any:
        """Send one pre-encoded command and read its reply, on a dedicated connection.

        The hot path: a connection is taken from this backend's own idle list (not
        redis-py's pool, whose bookkeeping costs more than the server's work), the
        bytes go straight to its socket and the reply is parsed by :func:`_read_reply`.
        redis-py still opens the connection (TLS, AUTH, SELECT).
        """
        idle = self._idle
        try:
            conn = idle.pop()
        except IndexError:
            conn = self._connection()
        try:
            sock = conn._sock
            if sock is None:
                conn.connect()
                sock = conn._sock
            sock.sendall(packed)
            reply = _read_reply(sock)
        except ResponseError:
            idle.append(conn)  # an error reply: the connection is in a clean state
            raise
        except BaseException as exc:
            conn.disconnect()  # no reply read (timeout, reset): never reuse the socket
            idle.append(conn)
            if isinstance(exc, TimeoutError):
                raise RedisTimeoutError(f"Timeout reading from Redis: {exc}") from exc
            if isinstance(exc, OSError):
                raise RedisConnectionError(f"Error talking to Redis: {_describe(exc)}") from exc
            raise
        idle.append(conn)
        return reply

    def _eval(
        self, keys: Sequence[str], args: Sequence[str | int], packed: bytes | None = None
    ) -> Any:
        """One EVALSHA; loads the script first on first use and again after NOSCRIPT."""
        if self._run_id is None:
            self._load()
        if packed is None:
            packed = _resp("EVALSHA", self._sha, len(keys), *keys, *args)
        try:
            return self._send(packed)
        except NoScriptError:
            self._load()
        except RedisConnectionError as exc:
            if isinstance(exc, _REFUSED):
                raise
            self._load()  # a pooled connection may be stale (server restarted): retry once
        return self._send(packed)

    def _load(self) -> None:
        """Load the script; if the server restarted meanwhile, block the lost window."""
        client = self._client
        run_id = self._parse_run_id(client.info("server"))
        sha = client.script_load(limiter_script())
        self._loaded(sha, run_id)
        if self._run_id is not None and run_id != self._run_id:
            keys, args, upto = self._rejoin_args(self._clock(), restarted=True)
            if len(keys) > 1:
                client.evalsha(self._sha, len(keys), *keys, *args)
            tail = self._rejoined(run_id, True, upto)
            if tail:
                client.evalsha(self._sha, *tail)
        with self._lock:
            self._run_id = run_id

    def attempt(self, charges: Sequence[Charge], scopes: Sequence[str]) -> Attempt:
        """Grant all ``charges`` now, all or nothing, in one round trip (see the class)."""
        plan = self._plan(charges, scopes)
        self._check_open()
        if self._degraded_since is not None:
            return self._degraded_attempt(plan, scopes)
        try:
            reply = self._eval(plan.keys, plan.args, plan.packed)
        except _REFUSED as exc:
            raise self._fatal(exc) from exc
        except _UNAVAILABLE as exc:
            self._go_degraded(exc, self._clock())
            return self._degraded_attempt(plan, scopes)
        except RedisError as exc:
            raise self._fatal(exc) from exc
        with self._lock:
            self._redis_attempts += 1
        return self._decode(plan, reply)

    def peek(self, charges: Sequence[Charge], scopes: Sequence[str]) -> Attempt:
        """Would :meth:`attempt` grant now? Same answer, nothing charged (one round trip)."""
        plan = self._plan(charges, scopes)
        self._check_open()
        if self._degraded_since is None:
            try:
                reply = self._eval(plan.keys, ("p", *plan.args[1:]))
                return self._decode(plan, reply, charged=False)
            except _REFUSED as exc:
                raise self._fatal(exc) from exc
            except _UNAVAILABLE as exc:
                self._go_degraded(exc, self._clock())
            except RedisError as exc:
                raise self._fatal(exc) from exc
        return self._local_peek(plan, scopes, self._clock())

    def _degraded_attempt(self, plan: _Plan, scopes: Sequence[str]) -> Attempt:
        now = self._clock()
        if self._probe_due(now):
            try:
                self._rejoin_sync(now)
            except _REFUSED as exc:
                self._probe_failed(exc, now)
                raise self._fatal(exc) from exc
            except _UNAVAILABLE as exc:
                self._probe_failed(exc, self._clock())
            except RedisError as exc:
                self._probe_failed(exc, now)
                raise self._fatal(exc) from exc
            else:
                return self.attempt(plan.charges, scopes)
        return self._local_attempt(plan, scopes)

    def _rejoin_sync(self, now: float) -> None:
        client = self._client
        run_id = self._parse_run_id(client.info("server"))
        sha = client.script_load(limiter_script())
        self._loaded(sha, run_id)
        restarted = self._run_id is None or run_id != self._run_id
        keys, args, upto = self._rejoin_args(now, restarted=restarted)
        if len(keys) > 1:
            client.evalsha(self._sha, len(keys), *keys, *args)
        for scope, until in self._pending_freezes():
            client.evalsha(self._sha, 1, self._ctl, "f", f"f:{scope}", round(until * _US))
        tail = self._rejoined(run_id, restarted, upto)
        if tail:
            try:
                client.evalsha(self._sha, *tail)
            except _UNAVAILABLE as exc:  # gone again: the new fallback starts full
                self._go_degraded(exc, self._clock())

    def freeze(self, scope: str, until: float) -> None:
        """Grant nothing listing ``scope`` before ``until`` (Unix seconds), in every process."""
        self._check_open()
        until = self._freeze_local(scope, until)
        if self._degraded_since is not None:
            return  # sent to Redis when it answers again
        try:
            self._eval([self._ctl], ["f", f"f:{scope}", round(until * _US)])
        except _REFUSED as exc:
            raise self._fatal(exc) from exc
        except _UNAVAILABLE as exc:
            self._go_degraded(exc, self._clock())
        except RedisError as exc:
            raise self._fatal(exc) from exc

    def usage(self) -> Mapping[str, int]:
        """Units now inside each known pool's shared window (local ones when degraded)."""
        self._check_open()
        keys, args, names = self._usage_args()
        if self._degraded_since is not None or not names:
            return self._local_usage()
        try:
            return self._decode_usage(self._eval(keys, args), names)
        except _REFUSED as exc:
            raise self._fatal(exc) from exc
        except _UNAVAILABLE as exc:
            self._go_degraded(exc, self._clock())
            return self._local_usage()
        except RedisError as exc:
            raise self._fatal(exc) from exc

    def ping(self) -> float:
        """One PING round trip; returns its duration in seconds.

        Raises :class:`~aimax.errors.BackendUnavailable` when Redis cannot be reached.
        """
        self._check_open()
        start = self._clock()
        try:
            self._client.ping()
        except _REFUSED as exc:
            raise self._fatal(exc) from exc
        except _UNAVAILABLE as exc:
            raise BackendUnavailable(
                f"Redis at {_redact(self._url)} is unavailable: {_describe(exc)}"
            ) from exc
        except RedisError as exc:
            raise self._fatal(exc) from exc
        return self._clock() - start

    # ------------------------------------------------------------------ asyncio driver

    def _async_client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        client = self._async.get(loop)
        if client is None:
            for old in [lp for lp in self._async if lp.is_closed()]:
                self._drop_async(old)
            client = redis.asyncio.Redis.from_url(
                self._url,
                retry=AsyncRetry(NoBackoff(), 0),
                **self._options,
            )
            self._async[loop] = client
        return client

    async def _send_async(self, client: redis.asyncio.Redis, packed: bytes) -> Any:
        """The asyncio flavour of :meth:`_send`."""
        pool: Any = client.connection_pool  # redis-py leaves parts of the pool untyped
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(packed)
            return await conn.read_response()
        except ResponseError:
            raise
        except BaseException:  # includes cancellation between send and reply
            await conn.disconnect()
            raise
        finally:
            await pool.release(conn)

    async def _eval_async(
        self, keys: Sequence[str], args: Sequence[str | int], packed: bytes | None = None
    ) -> Any:
        """The asyncio flavour of :meth:`_eval`."""
        client = self._async_client()
        if self._run_id is None:
            await self._load_async(client)
        if packed is None:
            packed = _resp("EVALSHA", self._sha, len(keys), *keys, *args)
        try:
            return await self._send_async(client, packed)
        except NoScriptError:
            await self._load_async(client)
        except RedisConnectionError as exc:
            if isinstance(exc, _REFUSED):
                raise
            await self._load_async(client)
        return await self._send_async(client, packed)

    async def _load_async(self, client: redis.asyncio.Redis) -> None:
        run_id = self._parse_run_id(await client.info("server"))
        sha = await client.script_load(limiter_script())
        self._loaded(sha, run_id)
        if self._run_id is not None and run_id != self._run_id:
            keys, args, upto = self._rejoin_args(self._clock(), restarted=True)
            if len(keys) > 1:
                await client.evalsha(self._sha, len(keys), *keys, *args)
            tail = self._rejoined(run_id, True, upto)
            if tail:
                await client.evalsha(self._sha, *tail)
        with self._lock:
            self._run_id = run_id

    async def attempt_async(self, charges: Sequence[Charge], scopes: Sequence[str]) -> Attempt:
        """The asyncio flavour of :meth:`attempt` (redis.asyncio, same script)."""
        plan = self._plan(charges, scopes)
        self._check_open()
        if self._degraded_since is not None:
            return await self._degraded_attempt_async(plan, scopes)
        try:
            reply = await self._eval_async(plan.keys, plan.args, plan.packed)
        except _REFUSED as exc:
            raise self._fatal(exc) from exc
        except _UNAVAILABLE as exc:
            self._go_degraded(exc, self._clock())
            return await self._degraded_attempt_async(plan, scopes)
        except RedisError as exc:
            raise self._fatal(exc) from exc
        with self._lock:
            self._redis_attempts += 1
        return self._decode(plan, reply)

    async def peek_async(self, charges: Sequence[Charge], scopes: Sequence[str]) -> Attempt:
        """The asyncio flavour of :meth:`peek`."""
        plan = self._plan(charges, scopes)
        self._check_open()
        if self._degraded_since is None:
            try:
                reply = await self._eval_async(plan.keys, ("p", *plan.args[1:]))
                return self._decode(plan, reply, charged=False)
            except _REFUSED as exc:
                raise self._fatal(exc) from exc
            except _UNAVAILABLE as exc:
                self._go_degraded(exc, self._clock())
            except RedisError as exc:
                raise self._fatal(exc) from exc
        return self._local_peek(plan, scopes, self._clock())

    async def _degraded_attempt_async(self, plan: _Plan, scopes: Sequence[str]) -> Attempt:
        now = self._clock()
        if self._probe_due(now):
            try:
                await self._rejoin_async(now)
            except _REFUSED as exc:
                self._probe_failed(exc, now)
                raise self._fatal(exc) from exc
            except _UNAVAILABLE as exc:
                self._probe_failed(exc, self._clock())
            except RedisError as exc:
                self._probe_failed(exc, now)
                raise self._fatal(exc) from exc
            else:
                return await self.attempt_async(plan.charges, scopes)
        return self._local_attempt(plan, scopes)

    async def _rejoin_async(self, now: float) -> None:
        client = self._async_client()
        run_id = self._parse_run_id(await client.info("server"))
        sha = await client.script_load(limiter_script())
        self._loaded(sha, run_id)
        restarted = self._run_id is None or run_id != self._run_id
        keys, args, upto = self._rejoin_args(now, restarted=restarted)
        if len(keys) > 1:
            await client.evalsha(self._sha, len(keys), *keys, *args)
        for scope, until in self._pending_freezes():
            await client.evalsha(self._sha, 1, self._ctl, "f", f"f:{scope}", round(until * _US))
        tail = self._rejoined(run_id, restarted, upto)
        if tail:
            try:
                await client.evalsha(self._sha, *tail)
            except _UNAVAILABLE as exc:  # gone again: the new fallback starts full
                self._go_degraded(exc, self._clock())

    async def freeze_async(self, scope: str, until: float) -> None:
        """The asyncio flavour of :meth:`freeze`."""
        self._check_open()
        until = self._freeze_local(scope, until)
        if self._degraded_since is not None:
            return
        try:
            await self._eval_async([self._ctl], ["f", f"f:{scope}", round(until * _US)])
        except _REFUSED as exc:
            raise self._fatal(exc) from exc
        except _UNAVAILABLE as exc:
            self._go_degraded(exc, self._clock())
        except RedisError as exc:
            raise self._fatal(exc) from exc

    async def usage_async(self) -> Mapping[str, int]:
        """The asyncio flavour of :meth:`usage`."""
        self._check_open()
        keys, args, names = self._usage_args()
        if self._degraded_since is not None or not names:
            return self._local_usage()
        try:
            return self._decode_usage(await self._eval_async(keys, args), names)
        except _REFUSED as exc:
            raise self._fatal(exc) from exc
        except _UNAVAILABLE as exc:
            self._go_degraded(exc, self._clock())
            return self._local_usage()
        except RedisError as exc:
            raise self._fatal(exc) from exc

    # ------------------------------------------------------------------ lifecycle

    def _drop_async(self, loop: asyncio.AbstractEventLoop) -> None:
        """Forget the client of a loop, closing its sockets without awaiting."""
        client = self._async.pop(loop, None)
        if client is None:
            return
        pool = client.connection_pool
        conns = [
            *getattr(pool, "_available_connections", ()),
            *getattr(pool, "_in_use_connections", ()),
        ]
        for conn in conns:
            writer = getattr(conn, "_writer", None)
            if writer is None:
                continue
            transport = writer.transport
            setattr(conn, "_writer", None)  # noqa: B010 - redis-py keeps no public hook
            setattr(conn, "_reader", None)  # noqa: B010 - same
            if not loop.is_closed():
                transport.abort()
                continue
            # a closed loop cannot run the transport's close: close the socket here
            ssl_protocol = getattr(transport, "_ssl_protocol", None)
            if ssl_protocol is not None:  # rediss://: the socket is under the TLS layer
                setattr(transport, "_closed", True)  # noqa: B010 - same as below
                transport = getattr(ssl_protocol, "_transport", None)
                if transport is None:
                    continue
            raw = getattr(transport, "_sock", None)
            if raw is not None:
                raw.close()
            # the stream and transport objects then see themselves closed (no warning)
            setattr(transport, "_sock", None)  # noqa: B010 - no public hook on a dead loop
            setattr(transport, "_closing", True)  # noqa: B010 - same

    async def aclose(self) -> None:
        """Close the asyncio connections of the running loop, then everything else."""
        client = self._async.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        self.close()

    def close(self) -> None:
        """Close every connection; idempotent. From a coroutine prefer :meth:`aclose`."""
        if self._closed:
            return
        self._closed = True
        for loop in list(self._async):
            if not loop.is_closed() and not loop.is_running():
                client = self._async.pop(loop)
                loop.run_until_complete(client.aclose())
            else:
                self._drop_async(loop)
        self._finalizer()

    def __enter__(self) -> RedisBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ observability

    @property
    def last_grant_time(self) -> float | None:
        """Unix time of this thread's last grant: the Redis server's clock, or the local
        wall clock for a fallback grant (diagnostics; tests check windows with it)."""
        last: tuple[float, bool] | None = getattr(self._grants, "last", None)
        return None if last is None else last[0]

    @property
    def last_grant_local(self) -> bool | None:
        """Whether this thread's last grant came from the local fallback (None: none yet)."""
        last: tuple[float, bool] | None = getattr(self._grants, "last", None)
        return None if last is None else last[1]

    @property
    def degraded(self) -> bool:
        """True while the backend answers from its local fallback."""
        return self._degraded_since is not None

    def statistics(self) -> RedisBackendStatistics:
        """A frozen snapshot: degraded state, outages, attempts, probes, last error."""
        with self._lock:
            since = self._degraded_since
            return RedisBackendStatistics(
                url=_redact(self._url),
                prefix=self.prefix,
                degraded=since is not None,
                degraded_for=0.0 if since is None else max(0.0, self._clock() - since),
                outages=self._outages,
                share=self.share,
                redis_attempts=self._redis_attempts,
                local_attempts=self._local_attempts,
                local_grants=self._local_grants,
                script_loads=self._script_loads,
                probes=self._probes,
                restarts_detected=self._restarts,
                last_error=self._last_error,
            )

    def metric_samples(self) -> Sequence[MetricSample]:
        """``aimax_ratelimit_backend_*`` samples for the monitor."""
        stats = self.statistics()
        labels = {"backend": "redis", "prefix": stats.prefix}
        return [
            MetricSample(
                "aimax_ratelimit_backend_degraded",
                1.0 if stats.degraded else 0.0,
                labels,
                "gauge",
                "1 while the limiter runs on its local fallback share",
            ),
            MetricSample(
                "aimax_ratelimit_backend_outages_total",
                float(stats.outages),
                labels,
                "counter",
                "times the shared backend became unreachable",
            ),
            MetricSample(
                "aimax_ratelimit_backend_local_grants_total",
                float(stats.local_grants),
                labels,
                "counter",
                "grants made by the local fallback",
            ),
        ]

    def __repr__(self) -> str:
        state = "closed" if self._closed else "degraded" if self.degraded else "ok"
        return (
            f"RedisBackend(url={_redact(self._url)!r}, prefix={self.prefix!r}, {state}, "
            f"outages={self._outages}, redis_attempts={self._redis_attempts}, "
            f"local_attempts={self._local_attempts})"
        )
