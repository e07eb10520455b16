"""The HTTP driver: an aiohttp server on loopback around the pure cores.

:class:`MaxSimulator` runs either in a background thread with its own event loop
(``with MaxSimulator(cfg) as sim`` or ``sim.start()`` / ``sim.stop()``) or inside the
caller's running loop (``async with MaxSimulator(cfg) as sim``). Each request, in order:

1. is counted (per client IP, account and endpoint);
2. is charged to its limit: public calls to the client IP's pool, private calls to the
   account's pool (the IP's when the access key is unknown); a refusal is a 429 with
   ``Retry-After`` = the ban's end as an absolute Unix timestamp;
3. meets the faults: maintenance (503), injected 5xx, hangs past any client timeout,
   latency;
4. is authenticated (private calls) and handled by the exchange core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import socket
import threading
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType, TracebackType
from typing import Self

from aiohttp import web

from aimax._clock import Clock, wall
from aimax._metrics import MetricSample
from aimax.errors import ConfigurationError
from aimax.exchange.simulator.auth import (
    NonceBook,
    normalise_query,
    verify_payload,
    verify_signature,
)
from aimax.exchange.simulator.config import Latency, SimulatorConfig, as_latency
from aimax.exchange.simulator.core import KLINE_PERIODS, Account, Exchange, Rejection
from aimax.exchange.simulator.limits import LimitDecision, PenaltyWindow
from aimax.exchange.simulator.stream import StreamConfig, StreamHub

__all__ = ["MaxSimulator", "SimulatorStats"]

log = logging.getLogger(__name__)

_JSON = "application/json"
_CREATE = "POST /api/v3/wallet/{wallet_type}/order"


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorStats:
    """Counters since start (or :meth:`MaxSimulator.reset_stats`).

    Maps are read-only snapshots. ``by_endpoint`` keys are ``"GET /api/v3/depth"``
    (route templates); ``by_account`` uses account names, never keys. ``peak_public``
    / ``peak_private`` give the most requests one client / account ever had inside
    one window: with MAX's limits they never exceed the limit.
    """

    requests: int
    by_status: Mapping[int, int]
    by_client: Mapping[str, int]
    by_account: Mapping[str, int]
    by_endpoint: Mapping[str, int]
    rate_limited: int
    rate_limited_by_scope: Mapping[str, int]
    bans_started: int
    ban_extensions: int
    peak_public: Mapping[str, int]
    peak_private: Mapping[str, int]
    injected_errors: int
    injected_timeouts: int
    accepted_then_timed_out: int
    accepted_then_failed: int
    """Requests handled (an order created, a cancel applied) whose answer was then
    replaced by an injected fault (see :meth:`MaxSimulator.inject`)."""
    resets: int
    nonce_rejections: int
    """Requests refused with 2006 / 2007 (reused, stale or, in strict mode, not
    increasing nonces)."""
    nonces_out_of_order: int
    """Nonces that arrived not above the last one of their key (refused in strict
    mode, accepted otherwise): how far a client's wire order is from its nonce order."""
    maintenance_rejections: int
    auth_failures: int
    orders_created: int
    orders_cancelled: int
    fills: int


@dataclass(slots=True)
class _Counters:
    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_client: Counter[str] = field(default_factory=Counter)
    by_account: Counter[str] = field(default_factory=Counter)
    by_endpoint: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    rate_limited_by_scope: Counter[str] = field(default_factory=Counter)
    bans_started: int = 0
    ban_extensions: int = 0
    injected_errors: int = 0
    injected_timeouts: int = 0
    accepted_then_timed_out: int = 0
    accepted_then_failed: int = 0
    resets: int = 0
    nonce_rejections: int = 0
    out_of_order_base: int = 0
    maintenance_rejections: int = 0
    auth_failures: int = 0
    orders_base: tuple[int, int, int] = (0, 0, 0)


FAULTS = frozenset({"status", "hang", "reset", "empty", "truncated", "malformed"})
"""What :meth:`MaxSimulator.inject` can do to an answer."""


@dataclass(slots=True)
class _Shot:
    """One armed fault: for the next ``remaining`` requests matching ``endpoint``."""

    fault: str
    remaining: int
    endpoint: str | None = None
    after_accept: bool = False
    status: int = 500
    retry_after: float = 0.0


@dataclass(slots=True)
class _OneShots:
    """Faults armed by the test or benchmark for the next matching requests."""

    shots: list[_Shot] = field(default_factory=list)

    def take(self, endpoint: str, *, after_accept: bool) -> _Shot | None:
        """Pop one use of the first shot armed for ``endpoint`` at this stage."""
        for shot in self.shots:
            if shot.after_accept != after_accept:
                continue
            if shot.endpoint is not None and shot.endpoint != endpoint:
                continue
            shot.remaining -= 1
            if shot.remaining <= 0:
                self.shots.remove(shot)
            return shot
        return None

    def give_back(self, shot: _Shot) -> None:
        """Re-arm one use of ``shot`` (a request it could not apply to)."""
        if shot in self.shots:
            shot.remaining += 1
        else:
            shot.remaining = 1
            self.shots.insert(0, shot)


@dataclass(slots=True)
class _Request:
    now: float
    account: Account | None
    params: dict[str, object]
    wallet_type: str


Handler = Callable[[Exchange, _Request], object]


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    path: str
    private: bool
    handler: Handler
    accepts_order: bool = False


def _int_query(params: Mapping[str, object], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        result = int(str(value))
    except ValueError:
        raise Rejection(1001, f"{name} must be an integer, got {value!r}") from None
    if not low <= result <= high:
        raise Rejection(1001, f"{name} must be between {low} and {high}, got {result}")
    return result


def _bool_query(params: Mapping[str, object], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    text = str(value).lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise Rejection(1001, f"{name} must be true or false, got {value!r}")


def _timestamp(params: Mapping[str, object]) -> float | None:
    value = params.get("timestamp")
    if value is None or value == "":
        return None
    seconds = _int_query(params, "timestamp", 0, 0, 10**15)
    return seconds / 1000.0 if seconds > 100_000_000_000 else float(seconds)


def _need_account(req: _Request) -> Account:
    assert req.account is not None  # private routes are authenticated first
    return req.account


# ------------------------------------------------------------------- handlers


def _h_markets(ex: Exchange, req: _Request) -> object:
    return ex.markets_json()


def _h_currencies(ex: Exchange, req: _Request) -> object:
    return ex.currencies_json()


def _h_timestamp(ex: Exchange, req: _Request) -> object:
    return {"timestamp": int(req.now)}


def _h_tickers(ex: Exchange, req: _Request) -> object:
    markets = req.params.get("markets")
    if markets is not None and not isinstance(markets, list):
        markets = [str(markets)]
    return ex.tickers(markets, req.now)


def _h_ticker(ex: Exchange, req: _Request) -> object:
    return ex.ticker(req.params.get("market"), req.now)


def _h_depth(ex: Exchange, req: _Request) -> object:
    return ex.depth(
        req.params.get("market"),
        req.now,
        limit=_int_query(req.params, "limit", 300, 1, 300),
        sort_by_price=_bool_query(req.params, "sort_by_price", True),
    )


def _h_trades(ex: Exchange, req: _Request) -> object:
    return ex.public_trades(
        req.params.get("market"),
        req.now,
        timestamp=_timestamp(req.params),
        limit=_int_query(req.params, "limit", 50, 1, 1000),
    )


def _h_k(ex: Exchange, req: _Request) -> object:
    return ex.klines(
        req.params.get("market"),
        req.now,
        period=_int_query(req.params, "period", 1, 1, KLINE_PERIODS[-1]),
        limit=_int_query(req.params, "limit", 30, 1, 10_000),
        timestamp=_timestamp(req.params),
    )


def _h_info(ex: Exchange, req: _Request) -> object:
    return ex.info(_need_account(req))


def _h_accounts(ex: Exchange, req: _Request) -> object:
    currency = req.params.get("currency")
    return ex.accounts(
        _need_account(req), req.wallet_type, None if currency in (None, "") else str(currency)
    )


def _h_create(ex: Exchange, req: _Request) -> object:
    return ex.create_order(_need_account(req), req.wallet_type, req.params, req.now)


def _h_cancel(ex: Exchange, req: _Request) -> object:
    return ex.cancel_order(_need_account(req), req.params, req.now)


def _h_cancel_all(ex: Exchange, req: _Request) -> object:
    return ex.cancel_orders(_need_account(req), req.wallet_type, req.params, req.now)


def _h_order(ex: Exchange, req: _Request) -> object:
    return ex.get_order(_need_account(req), req.params, req.now)


def _h_order_trades(ex: Exchange, req: _Request) -> object:
    return ex.order_trades(_need_account(req), req.params, req.now)


def _h_open(ex: Exchange, req: _Request) -> object:
    return ex.open_orders(_need_account(req), req.wallet_type, req.params, req.now)


def _h_closed(ex: Exchange, req: _Request) -> object:
    return ex.closed_orders(_need_account(req), req.wallet_type, req.params, req.now)


def _h_history(ex: Exchange, req: _Request) -> object:
    return ex.order_history(_need_account(req), req.wallet_type, req.params, req.now)


def _h_my_trades(ex: Exchange, req: _Request) -> object:
    return ex.my_trades(_need_account(req), req.wallet_type, req.params, req.now)


ROUTES: tuple[_Route, ...] = (
    _Route("GET", "/api/v3/markets", False, _h_markets),
    _Route("GET", "/api/v3/currencies", False, _h_currencies),
    _Route("GET", "/api/v3/timestamp", False, _h_timestamp),
    _Route("GET", "/api/v3/tickers", False, _h_tickers),
    _Route("GET", "/api/v3/ticker", False, _h_ticker),
    _Route("GET", "/api/v3/depth", False, _h_depth),
    _Route("GET", "/api/v3/trades", False, _h_trades),
    _Route("GET", "/api/v3/k", False, _h_k),
    _Route("GET", "/api/v3/info", True, _h_info),
    _Route("GET", "/api/v3/wallet/{wallet_type}/accounts", True, _h_accounts),
    _Route("POST", "/api/v3/wallet/{wallet_type}/order", True, _h_create, accepts_order=True),
    _Route("DELETE", "/api/v3/order", True, _h_cancel),
    _Route("DELETE", "/api/v3/wallet/{wallet_type}/orders", True, _h_cancel_all),
    _Route("GET", "/api/v3/order", True, _h_order),
    _Route("GET", "/api/v3/order/trades", True, _h_order_trades),
    _Route("GET", "/api/v3/wallet/{wallet_type}/orders/open", True, _h_open),
    _Route("GET", "/api/v3/wallet/{wallet_type}/orders/closed", True, _h_closed),
    _Route("GET", "/api/v3/wallet/{wallet_type}/orders/history", True, _h_history),
    _Route("GET", "/api/v3/wallet/{wallet_type}/trades", True, _h_my_trades),
)
"""Every endpoint served: method, path template, whether it is signed, handler."""


def _error(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = json.dumps({"success": False, "error": {"code": code, "message": message}})
    return web.Response(status=status, text=body, content_type=_JSON, headers=headers)


class _Runtime:
    """The background thread's loop and stop signal (kept apart for the finaliser)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.thread: threading.Thread | None = None

    def shutdown(self, timeout: float = 10.0) -> None:
        loop, event, thread = self.loop, self.stop_event, self.thread
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.thread = None

    def stop(self) -> None:
        """The finaliser's entry: shut down with the default timeout."""
        self.shutdown()


class MaxSimulator:
    """A local MAX-compatible exchange over real HTTP on loopback.

    ::

        with MaxSimulator(SimulatorConfig.scaled(0.1)) as sim:
            sim.add_account("my-key", "my-secret", {"twd": "1000000", "btc": "1"})
            httpx.get(f"{sim.url}/api/v3/timestamp").json()   # {"timestamp": ...}

    ``clock`` is the server's wall clock (Unix seconds; a :class:`~aimax._clock.FakeClock`'s
    ``time`` makes limits, bans and nonces testable without sleeping). ``port=0`` picks
    a free port.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = wall,
        stream: StreamConfig | None = None,
    ) -> None:
        if config is None:
            config = SimulatorConfig()
        if not isinstance(config, SimulatorConfig):
            raise ConfigurationError(f"config must be a SimulatorConfig, got {config!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port < 65536:
            raise ConfigurationError(f"port must be in 0..65535, got {port!r}")
        self.config = config
        self._host = host
        self._wanted_port = port
        self._clock = clock
        self._lock = threading.RLock()
        self._exchange = Exchange(config)
        self._public = PenaltyWindow(
            limit=config.public_limit, window=config.window_s, ban=config.ban_s
        )
        self._private = PenaltyWindow(
            limit=config.private_limit, window=config.window_s, ban=config.ban_s
        )
        self._nonces = NonceBook(
            window=float(config.nonce_window),  # type: ignore[arg-type]  # normalised
            strict=config.strict_nonces,
        )
        self._rng = random.Random(config.seed ^ 0x5EED)
        self._counters = _Counters()
        self._shots = _OneShots()
        self._maintenance = config.maintenance
        self._error_rate = config.error_rate
        self._timeout_rate = config.timeout_rate
        self._latency = config.latency_model
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._runtime = _Runtime()
        self._finalizer: weakref.finalize[[], MaxSimulator] | None = None
        self._mode: str | None = None  # "thread" or "loop"
        self._accounts_made = 0
        self.stream = StreamHub(self, stream)
        """The ``/ws`` stream's hub: its faults, limits and statistics."""

    # ------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (only once started)."""
        return f"http://{self._host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>/ws``: MAX's stream protocol (only once started)."""
        return f"ws://{self._host}:{self.port}/ws"

    @property
    def port(self) -> int:
        """The bound port (only once started)."""
        if self._port is None:
            raise ConfigurationError("the simulator is not started")
        return self._port

    @property
    def running(self) -> bool:
        """True between start and stop."""
        return self._mode is not None

    def start(self) -> Self:
        """Serve from a background thread with its own event loop; returns self."""
        if self._mode is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        runtime = self._runtime

        def run() -> None:
            loop = asyncio.new_event_loop()
            runtime.loop = loop
            asyncio.set_event_loop(loop)
            try:
                try:
                    loop.run_until_complete(self._astart())
                    runtime.stop_event = asyncio.Event()
                except BaseException as exc:  # reported to start()'s caller
                    failure.append(exc)
                    return
                finally:
                    ready.set()
                loop.run_until_complete(runtime.stop_event.wait())
                loop.run_until_complete(self._astop())
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="aimax-max-simulator", daemon=True)
        runtime.thread = thread
        thread.start()
        ready.wait()
        if failure:
            thread.join()
            runtime.thread = None
            raise failure[0]
        self._mode = "thread"
        self._finalizer = weakref.finalize(self, runtime.stop)
        log.info("MAX simulator serving on %s", self.url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread. Idempotent."""
        if self._mode != "thread":
            return
        self._runtime.shutdown(timeout)
        if self._finalizer is not None:
            self._finalizer.detach()
        self._mode = None
        log.info("MAX simulator stopped")

    close = stop

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        if self._mode is None:
            await self._astart()
            self._mode = "loop"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._mode == "loop":
            await self._astop()
            self._mode = None

    async def _astart(self) -> None:
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=1 << 20)
        for route in ROUTES:
            app.router.add_route(route.method, route.path, self._make_handler(route))
        app.router.add_route("GET", "/api/status/max-api", self._status)
        app.router.add_route("GET", "/ws", self.stream.handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._wanted_port))
        except OSError:
            sock.close()
            await runner.cleanup()
            raise
        site = web.SockSite(runner, sock, backlog=1024)
        await site.start()
        self._runner = runner
        self._port = int(sock.getsockname()[1])
        self.stream.start()

    async def _astop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        await self.stream.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------- controls

    def add_account(
        self,
        access_key: str,
        secret_key: str,
        balances: Mapping[str, Decimal | str | float | int] | None = None,
        *,
        name: str | None = None,
        wallet_type: str = "spot",
    ) -> str:
        """Register an API key pair with starting ``balances``; returns the account's name.

        Adding a known key again adds the balances to it.
        """
        if not access_key or not secret_key:
            raise ConfigurationError("access_key and secret_key must be non-empty")
        with self._lock:
            if name is None:
                existing = self._exchange.account_by_key(access_key)
                if existing is not None:
                    name = existing.name
                else:
                    self._accounts_made += 1
                    name = f"account{self._accounts_made}"
            try:
                account = self._exchange.add_account(
                    name, access_key, secret_key, balances, wallet_type=wallet_type
                )
            except Rejection as exc:
                raise ConfigurationError(exc.message) from None
            return account.name

    def balances(self, name: str, wallet_type: str = "spot") -> dict[str, tuple[Decimal, Decimal]]:
        """``{currency: (available, locked)}`` of an account (by name)."""
        with self._lock:
            wallet = self._exchange.account(name).wallet(wallet_type)
            return {code: (slot[0], slot[1]) for code, slot in wallet.items()}

    def set_price(self, market: str, price: Decimal | str | float) -> None:
        """Move a market's price now (resting and stop orders it crosses execute)."""
        with self._lock:
            try:
                self._exchange.set_price(market, price, self._clock())
            except Rejection as exc:
                raise ConfigurationError(exc.message) from None

    def price(self, market: str) -> Decimal:
        """A market's current mid price."""
        with self._lock:
            try:
                return self._exchange.mid(market, self._clock())
            except Rejection as exc:
                raise ConfigurationError(exc.message) from None

    def set_market_status(self, market: str, status: str) -> None:
        """``active``, ``cancel-only`` or ``suspended``."""
        with self._lock:
            try:
                self._exchange.set_market_status(market, status)
            except Rejection as exc:
                raise ConfigurationError(exc.message) from None

    def set_maintenance(self, on: bool) -> None:
        """Maintenance mode: every API call answers 503 (the status endpoint says so)."""
        with self._lock:
            self._maintenance = bool(on)

    def set_faults(
        self,
        *,
        error_rate: float | None = None,
        timeout_rate: float | None = None,
        latency: Latency | float | tuple[float, float] | None = None,
    ) -> None:
        """Change the random faults at run time (``None`` leaves one as it is)."""
        with self._lock:
            if error_rate is not None:
                if not 0 <= error_rate <= 1:
                    raise ConfigurationError(f"error_rate must be in [0, 1], got {error_rate!r}")
                self._error_rate = float(error_rate)
            if timeout_rate is not None:
                if not 0 <= timeout_rate <= 1:
                    raise ConfigurationError(
                        f"timeout_rate must be in [0, 1], got {timeout_rate!r}"
                    )
                self._timeout_rate = float(timeout_rate)
            if latency is not None:
                self._latency = as_latency(latency)

    def inject(
        self,
        fault: str,
        *,
        count: int = 1,
        endpoint: str | None = None,
        after_accept: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Arm a fault for the next ``count`` requests to ``endpoint`` (any when ``None``).

        ``endpoint`` is a route key such as ``"POST /api/v3/wallet/{wallet_type}/order"``
        or ``"GET /api/v3/order"``. ``fault`` is one of:

        - ``"status"``: answer ``status`` (a 5xx with MAX's 5999 body, or 429 with
          ``Retry-After`` = now + ``retry_after`` seconds, default ``ban_seconds``);
        - ``"hang"``: no answer for ``hang_seconds``, then a 504;
        - ``"reset"``: the connection is closed without an answer;
        - ``"empty"``, ``"truncated"``, ``"malformed"``: HTTP ``status`` (default 200)
          with an empty body, the answer's JSON cut in half, or a body that is not JSON.

        With ``after_accept=True`` the request is handled first (an order is created,
        a cancel applied) and the fault replaces its successful answer; requests the
        exchange refuses leave the fault armed. ::

            sim.inject("truncated", endpoint="POST /api/v3/wallet/{wallet_type}/order",
                       after_accept=True)
        """
        if fault not in FAULTS:
            raise ConfigurationError(f"fault must be one of {sorted(FAULTS)}, got {fault!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigurationError(f"count must be a positive integer, got {count!r}")
        if endpoint is not None and endpoint not in {f"{r.method} {r.path}" for r in ROUTES}:
            raise ConfigurationError(f"unknown endpoint {endpoint!r}")
        if fault == "status":
            status = 500 if status is None else status
            if not (500 <= status < 600 or status == 429):
                raise ConfigurationError(f"status must be a 5xx or 429, got {status!r}")
        else:
            status = 200 if status is None else status
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status < 600:
                raise ConfigurationError(f"status must be an HTTP status, got {status!r}")
        wait = self.config.ban_s if retry_after is None else float(retry_after)
        if math.isnan(wait) or wait < 0:
            raise ConfigurationError(f"retry_after must be >= 0 seconds, got {retry_after!r}")
        shot = _Shot(fault, count, endpoint, after_accept, status, wait)
        with self._lock:
            self._shots.shots.append(shot)

    def fail_next(self, count: int = 1, *, status: int = 500) -> None:
        """The next ``count`` API requests answer ``status`` (a 5xx) with MAX's 5999 body."""
        if not 500 <= status < 600:
            raise ConfigurationError(f"status must be a 5xx, got {status!r}")
        self.inject("status", count=count, status=status)

    def hang_next(self, count: int = 1) -> None:
        """The next ``count`` API requests hang (``hang_seconds``) BEFORE being handled."""
        self.inject("hang", count=count)

    def hang_after_accept(self, count: int = 1) -> None:
        """The next ``count`` create-order requests are ACCEPTED (the order exists and
        matches), then the response hangs past any client timeout: the client must
        reconcile with ``GET /api/v3/order?client_oid=...`` instead of resending."""
        self.inject("hang", count=count, endpoint=_CREATE, after_accept=True)

    def reset_stats(self) -> None:
        """Zero every counter (limits, bans and orders are kept)."""
        with self._lock:
            ex = self._exchange
            self._counters = _Counters(
                orders_base=(ex.orders_created, ex.orders_cancelled, ex.fills),
                out_of_order_base=self._nonces.out_of_order,
            )

    def reset_limits(self) -> None:
        """Forget every budget and ban."""
        with self._lock:
            self._public.reset()
            self._private.reset()

    def stats(self) -> SimulatorStats:
        """A snapshot of the counters."""
        with self._lock:
            c = self._counters
            ex = self._exchange
            base = c.orders_base
            return SimulatorStats(
                requests=c.requests,
                by_status=MappingProxyType(dict(c.by_status)),
                by_client=MappingProxyType(dict(c.by_client)),
                by_account=MappingProxyType(dict(c.by_account)),
                by_endpoint=MappingProxyType(dict(c.by_endpoint)),
                rate_limited=c.rate_limited,
                rate_limited_by_scope=MappingProxyType(dict(c.rate_limited_by_scope)),
                bans_started=c.bans_started,
                ban_extensions=c.ban_extensions,
                peak_public=MappingProxyType(
                    {k: self._public.peak(k) for k in self._public.scopes()}
                ),
                peak_private=MappingProxyType(
                    {k: self._private.peak(k) for k in self._private.scopes()}
                ),
                injected_errors=c.injected_errors,
                injected_timeouts=c.injected_timeouts,
                accepted_then_timed_out=c.accepted_then_timed_out,
                accepted_then_failed=c.accepted_then_failed,
                resets=c.resets,
                nonce_rejections=c.nonce_rejections,
                nonces_out_of_order=self._nonces.out_of_order - c.out_of_order_base,
                maintenance_rejections=c.maintenance_rejections,
                auth_failures=c.auth_failures,
                orders_created=ex.orders_created - base[0],
                orders_cancelled=ex.orders_cancelled - base[1],
                fills=ex.fills - base[2],
            )

    statistics = stats

    def metric_samples(self) -> list[MetricSample]:
        """The counters as ``aimax_simulator_*`` samples for the monitor."""
        s = self.stats()
        out = [
            MetricSample("aimax_simulator_requests_total", s.requests, kind="counter"),
            MetricSample("aimax_simulator_rate_limited_total", s.rate_limited, kind="counter"),
            MetricSample("aimax_simulator_bans_total", s.bans_started, kind="counter"),
        ]
        out.extend(
            MetricSample(
                "aimax_simulator_responses_total", n, {"status": str(code)}, kind="counter"
            )
            for code, n in sorted(s.by_status.items())
        )
        return out

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._port is not None and self.running else "stopped"
        with self._lock:
            c = self._counters
            return (
                f"MaxSimulator({state}, markets={len(self._exchange.markets)}, "
                f"requests={c.requests}, rate_limited={c.rate_limited}, "
                f"bans={c.bans_started}, maintenance={self._maintenance})"
            )

    # ------------------------------------------------------------- serving

    def _client(self, request: web.Request) -> str:
        if self.config.trust_forwarded_for:
            forwarded = request.headers.get("X-Forwarded-For")
            if forwarded:
                return forwarded.split(",")[0].strip()
        return request.remote or "unknown"

    def _charge(self, scope_kind: str, key: str, now: float, cost: int) -> LimitDecision:
        window = self._private if scope_kind == "account" else self._public
        decision = window.hit(key, now, cost)
        if not decision.allowed:
            c = self._counters
            c.rate_limited += 1
            c.rate_limited_by_scope[f"{scope_kind}:{key}"] += 1
            if decision.ban_started:
                c.bans_started += 1
                log.info(
                    "simulator: %s %s banned until %.3f", scope_kind, key, decision.banned_until
                )
            else:
                c.ban_extensions += 1
        return decision

    async def _hang(self) -> None:
        closing = self._closing
        assert closing is not None
        hang = float(self.config.hang_seconds)  # type: ignore[arg-type]  # normalised
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), hang)

    def _make_handler(
        self, route: _Route
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        endpoint = f"{route.method} {route.path}"
        weight = self.config.endpoint_weights.get(endpoint, 1)

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, route, endpoint, weight)

        return handle

    async def _serve(
        self, request: web.Request, route: _Route, endpoint: str, weight: int
    ) -> web.StreamResponse:
        raw = await request.read() if request.can_read_body else b""
        client = self._client(request)
        hang_before = False
        before: _Shot | None = None
        delay = 0.0
        with self._lock:
            now = self._clock()
            c = self._counters
            c.requests += 1
            c.by_client[client] += 1
            c.by_endpoint[endpoint] += 1
            account: Account | None = None
            if route.private:
                key = request.headers.get("X-MAX-ACCESSKEY")
                account = self._exchange.account_by_key(key) if key else None
            # 1. limits
            decisions: list[LimitDecision] = []
            if account is not None:
                c.by_account[account.name] += 1
                decisions.append(self._charge("account", account.name, now, weight))
                if self.config.private_counts_against_ip and decisions[0].allowed:
                    decisions.append(self._charge("ip", client, now, weight))
            else:
                decisions.append(self._charge("ip", client, now, weight))
            refused = [d for d in decisions if not d.allowed]
            if refused:
                until = max(d.banned_until or now for d in refused)
                retry_at = math.ceil(until)
                c.by_status[429] += 1
                return _error(
                    429,
                    429,
                    f"too many requests: banned until {retry_at}; every request during "
                    "the ban restarts it",
                    {"Retry-After": str(retry_at)},
                )
            # 2. parse and authenticate on arrival: the nonce order is the arrival order
            prepared = self._prepare(request, route, raw, account, now)
            # 3. faults
            if self._maintenance:
                c.maintenance_rejections += 1
                c.by_status[503] += 1
                return _error(503, 5999, "the exchange is under maintenance")
            if isinstance(prepared, Rejection):
                c.by_status[prepared.status] += 1
                return web.Response(
                    status=prepared.status, text=json.dumps(prepared.body()), content_type=_JSON
                )
            before = self._shots.take(endpoint, after_accept=False)
            if before is None and self._error_rate and self._rng.random() < self._error_rate:
                before = _Shot("status", 1, status=self.config.error_status)
            if before is not None and before.fault == "hang":
                hang_before, before = True, None
            elif before is None and self._timeout_rate and self._rng.random() < self._timeout_rate:
                hang_before = True
            if hang_before:
                c.injected_timeouts += 1
            elif before is not None:
                c.injected_errors += 1
            delay = self._latency.sample(self._rng)
        if hang_before:
            await self._hang()
            with self._lock:
                self._counters.by_status[504] += 1
            return _error(504, 5999, "gateway timeout (injected)")
        if before is not None:
            return await self._faulty(request, before, None, now)
        if delay > 0:
            await asyncio.sleep(delay)
        status, payload = self._run(request, route, prepared, account)
        accepted = status == 200 and not (
            isinstance(payload, dict) and payload.get("success") is False
        )
        after: _Shot | None = None
        if accepted:
            with self._lock:
                after = self._shots.take(endpoint, after_accept=True)
                if after is not None:
                    self._counters.accepted_then_failed += 1
                    if after.fault == "hang":
                        self._counters.accepted_then_timed_out += 1
        if after is not None:
            return await self._faulty(request, after, payload, now)
        with self._lock:
            self._counters.by_status[status] += 1
        return web.Response(status=status, text=json.dumps(payload), content_type=_JSON)

    async def _faulty(
        self, request: web.Request, shot: _Shot, payload: object, now: float
    ) -> web.StreamResponse:
        """The answer ``shot`` makes of a request (``payload``: its real answer, if any)."""
        fault = shot.fault
        if fault == "hang":
            await self._hang()
            with self._lock:
                self._counters.by_status[504] += 1
            return _error(504, 5999, "gateway timeout after the request was handled (injected)")
        if fault == "reset":
            transport = request.transport
            if transport is not None:
                transport.abort()  # no answer at all: the client sees the connection drop
            with self._lock:
                self._counters.resets += 1
            return web.Response(status=500)
        with self._lock:
            self._counters.by_status[shot.status] += 1
        if fault == "status":
            if shot.status == 429:
                retry_at = math.ceil(now + shot.retry_after)
                return _error(
                    429, 429, "too many requests (injected)", {"Retry-After": str(retry_at)}
                )
            return _error(shot.status, 5999, "internal server error (injected)")
        if fault == "empty":
            body = b""
        elif fault == "truncated":
            full = json.dumps(payload if payload is not None else {"success": True}).encode()
            body = full[: max(1, len(full) // 2)]
        else:  # malformed
            body = b"<html><body>upstream answered something else</body></html>"
        return web.Response(status=shot.status, body=body, content_type=_JSON)

    def _prepare(
        self,
        request: web.Request,
        route: _Route,
        raw: bytes,
        account: Account | None,
        now: float,
    ) -> dict[str, object] | Rejection:
        """Parse the query and body and authenticate (caller holds the lock)."""
        try:
            query = normalise_query(list(request.query.items()))
            body: dict[str, object] | None = None
            if raw.strip():
                try:
                    decoded = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    raise Rejection(1001, "the body is not JSON") from None
                if not isinstance(decoded, dict):
                    raise Rejection(1001, "the body must be a JSON object")
                body = decoded
            if route.private:
                return self._authenticate(
                    request, route=route, account=account, query=query, body=body, now=now
                )
            return query
        except Rejection as exc:
            return exc

    def _run(
        self,
        request: web.Request,
        route: _Route,
        params: dict[str, object],
        account: Account | None,
    ) -> tuple[int, object]:
        """Run the handler under the lock; ``(status, json)``."""
        with self._lock:
            now = self._clock()
            try:
                req = _Request(
                    now=now,
                    account=account,
                    params=params,
                    wallet_type=request.match_info.get("wallet_type", "spot"),
                )
                return 200, route.handler(self._exchange, req)
            except Rejection as exc:
                return exc.status, exc.body()
            except Exception:  # a simulator bug: answer like MAX's 5999, keep serving
                log.exception("simulator: error handling %s %s", request.method, request.path)
                return 500, Rejection(5999, "internal server error").body()

    def _authenticate(
        self,
        request: web.Request,
        *,
        route: _Route,
        account: Account | None,
        query: dict[str, object],
        body: dict[str, object] | None,
        now: float,
    ) -> dict[str, object]:
        headers = request.headers
        key = headers.get("X-MAX-ACCESSKEY")
        payload = headers.get("X-MAX-PAYLOAD")
        signature = headers.get("X-MAX-SIGNATURE")
        try:
            if not key or not payload or not signature:
                raise Rejection(
                    2001, "X-MAX-ACCESSKEY, X-MAX-PAYLOAD and X-MAX-SIGNATURE are required", 401
                )
            if account is None:
                raise Rejection(2008, "the access key is not valid", 401)
            verify_signature(account.secret, payload, signature)
            nonce, params = verify_payload(
                payload, path=request.path, method=route.method, query=query, body=body
            )
            self._nonces.check(account.access_key, nonce, now)
        except Rejection as exc:
            self._counters.auth_failures += 1
            if exc.code in (2006, 2007):
                self._counters.nonce_rejections += 1
            raise
        return params

    async def _status(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            status = "maintenance" if self._maintenance else "online"
            now = self._clock()
        body = {"service": "max-api", "status": status, "last_changed_at": int(now)}
        return web.Response(text=json.dumps(body), content_type=_JSON)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            now = self._clock()
            c = self._counters
            c.requests += 1
            client = self._client(request)
            c.by_client[client] += 1
            c.by_endpoint["unmatched"] += 1
            decision = self._charge("ip", client, now, 1)
            if not decision.allowed:
                retry_at = math.ceil(decision.banned_until or now)
                c.by_status[429] += 1
                return _error(429, 429, "too many requests", {"Retry-After": str(retry_at)})
            c.by_status[404] += 1
        return _error(404, 1001, f"no such endpoint: {request.method} {request.path}")
