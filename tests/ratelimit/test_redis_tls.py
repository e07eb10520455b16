"""RedisBackend over ``rediss://`` (TLS), end to end.

The private test server speaks no TLS, so each test puts a small TLS-terminating
proxy in front of it (certificates from ``trustme``). The sync driver writes to and
reads from redis-py's TLS socket itself (``_send`` / ``_read_reply``); the asyncio
driver goes through ``redis.asyncio``: both are checked here against the real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import select
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import trustme
from cryptography.hazmat.primitives import serialization

from aimax._redisserver import RedisServer
from aimax.errors import BackendUnavailable, RateLimited, WouldBlock
from aimax.ratelimit import APIRateLimiter, Priority, RateLimit, RequestKind
from aimax.ratelimit._window import Charge
from aimax.ratelimit.redis_backend import RedisBackend

pytestmark = pytest.mark.redis

_ids = itertools.count()


def unique_prefix() -> str:
    return f"tls{next(_ids)}"


class TLSProxy:
    """Terminates TLS on 127.0.0.1:<port> and forwards the bytes to a plain server.

    One thread accepts; one thread per connection does the handshake, then pumps both
    ways (a select loop: an SSL socket is never read and written from two threads).
    ``chunk`` splits what the server sends into records of at most that many bytes,
    so the client sees each reply arrive in pieces. ``stop`` joins every thread.
    """

    def __init__(self, upstream_port: int, context: ssl.SSLContext, *, chunk: int = 0) -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self._context = context
        self._chunk = chunk
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.handshakes = 0
        self.failed_handshakes: list[str] = []
        self.errors: list[BaseException] = []
        self._live: set[ssl.SSLSocket] = set()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen()
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if not self._stop.is_set():
                    self.errors.append(exc)
                return
            self._spawn(self._serve, raw)

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(5.0)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small records: no Nagle
        try:
            tls = self._context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        except OSError as exc:  # pragma: no cover - wrapping a fresh socket
            raw.close()
            self.errors.append(exc)
            return
        with tls:
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError) as exc:  # the client refused our certificate
                with self._lock:
                    self.failed_handshakes.append(f"{type(exc).__name__}: {exc}")
                return
            with self._lock:
                self.handshakes += 1
                self._live.add(tls)
            try:
                with socket.create_connection(self._upstream, timeout=5.0) as up:
                    up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self._pump(tls, up)
            except (ssl.SSLError, OSError):
                pass  # a side went away mid-stream: the connection just ends
            except BaseException as exc:  # pragma: no cover - reported by stop()
                self.errors.append(exc)
            finally:
                with self._lock:
                    self._live.discard(tls)

    def _pump(self, tls: ssl.SSLSocket, up: socket.socket) -> None:
        tls.settimeout(0.5)  # a partial record completes quickly
        while not self._stop.is_set():
            ready: list[socket.socket]
            if tls.pending():
                ready = [tls]
            else:
                ready, _, _ = select.select([tls, up], [], [], 0.05)
            if tls in ready:
                try:
                    data = tls.recv(65536)
                except TimeoutError:  # a non-data record only (e.g. a ticket ack)
                    data = None
                if data is not None:
                    if not data:
                        return
                    up.sendall(data)
            if up in ready:
                data = up.recv(65536)
                if not data:
                    return
                step = self._chunk or len(data)
                for start in range(0, len(data), step):
                    tls.sendall(data[start : start + step])  # one TLS record each

    def drop_connections(self) -> int:
        """Cut every open TLS connection (as a server restart or a load balancer would)."""
        with self._lock:
            live = list(self._live)
        for tls in live:
            with contextlib.suppress(OSError):  # already closing
                tls.shutdown(socket.SHUT_RDWR)
        return len(live)

    def open_connections(self, *, settle: float = 5.0) -> int:
        """TLS connections still open, once those the clients closed have ended."""
        deadline = time.monotonic() + settle
        while True:
            with self._lock:
                live = len(self._live)
            if not live or time.monotonic() > deadline:
                return live
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._listener.close()
        while True:
            with self._lock:
                alive = [t for t in self._threads if t.is_alive()]
            if not alive:
                break
            for thread in alive:
                thread.join(timeout=10.0)
                assert not thread.is_alive(), "a proxy thread did not stop"
        assert not self.errors, self.errors


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def make_proxy(
    ca: trustme.CA, redis_url: str, redis_server: RedisServer
) -> Iterator[Callable[..., TLSProxy]]:
    """TLS proxies in front of the (flushed) session server; all stopped at teardown."""
    proxies: list[TLSProxy] = []

    def make(
        *,
        chunk: int = 0,
        hostnames: tuple[str, ...] = ("127.0.0.1", "localhost"),
        client_ca: trustme.CA | None = None,
    ) -> TLSProxy:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*hostnames).configure_cert(context)
        if client_ca is not None:  # mutual TLS: clients must show a certificate of it
            client_ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        proxy = TLSProxy(redis_server.port, context, chunk=chunk)
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            proxy.stop()  # joins every thread of the proxy


@pytest.fixture
def make_backend() -> Iterator[Callable[..., RedisBackend]]:
    made: list[RedisBackend] = []

    def make(url: str, **options: object) -> RedisBackend:
        options.setdefault("prefix", unique_prefix())
        backend = RedisBackend.from_url(url, **options)
        made.append(backend)
        return backend

    try:
        yield make
    finally:
        for backend in made:
            backend.close()


def tls_url(proxy: TLSProxy, ca_file: str) -> str:
    return f"rediss://127.0.0.1:{proxy.port}/0?ssl_ca_certs={ca_file}"


def pool_len(client: redis.Redis, backend: RedisBackend, pool: str) -> int:
    """Units in a pool's shared log, read on the plain server (not through the proxy)."""
    return int(client.llen(f"{{{backend.prefix}}}:pool:{pool}"))


LIMITS = [
    RateLimit(name="ip", limit=5, window=60.0),
    RateLimit(name="acct", limit=40, window=60.0),
]
KINDS = [
    RequestKind(name="market", charges={"ip": 1}, priority=Priority.MARKET_DATA),
    RequestKind(name="account", charges={"acct": 1}, priority=Priority.ORDER),
]


def dedicated_sockets(backend: RedisBackend) -> list[object]:
    return [conn._sock for conn in backend._conns]


# ------------------------------------------------------------------------ sync


@pytest.mark.parametrize("chunk", [0, 1], ids=["whole", "byte-records"])
def test_sync_limiter_over_tls_is_exact_and_reloads_the_script(
    chunk: int,
    make_proxy: Callable[..., TLSProxy],
    make_backend: Callable[..., RedisBackend],
    ca_file: str,
    redis_client: redis.Redis,
) -> None:
    proxy = make_proxy(chunk=chunk)
    backend = make_backend(tls_url(proxy, ca_file))
    limiter = APIRateLimiter(LIMITS, KINDS, backend=backend)
    try:
        outcomes: list[str | None] = []
        for _ in range(8):
            try:
                limiter.try_acquire("market")
                outcomes.append("granted")
            except WouldBlock as exc:
                outcomes.append(exc.pool)
        assert outcomes == ["granted"] * 5 + ["ip"] * 3  # exactly `limit` in the window
        with pytest.raises(RateLimited):
            limiter.acquire("market", timeout=10.0)  # the window is 60 s: at once
        for _ in range(30):
            limiter.acquire("account")
        # the figures come back from the server, through the proxy and from the plain port
        assert backend.usage() == {"ip": 5, "acct": 30}
        assert limiter.usage() == {"ip": 5, "acct": 30}
        assert pool_len(redis_client, backend, "ip") == 5
        assert pool_len(redis_client, backend, "acct") == 30
        stats = backend.statistics()
        assert (stats.degraded, stats.outages, stats.last_error) == (False, 0, None)
        assert stats.redis_attempts >= 39
        assert stats.script_loads == 1
        # the hot path really talks on redis-py's TLS sockets, and reuses them
        sockets = dedicated_sockets(backend)
        assert len(sockets) == 1  # one thread: one dedicated connection
        assert isinstance(sockets[0], ssl.SSLSocket)
        assert proxy.handshakes == 2  # + redis-py's client (INFO, SCRIPT LOAD)
        assert not proxy.failed_handshakes

        # NOSCRIPT over TLS: flush on the plain server, the backend reloads and goes on
        redis_client.script_flush()
        for _ in range(10):
            limiter.acquire("account")
        with pytest.raises(WouldBlock):
            limiter.try_acquire("market")
        stats = backend.statistics()
        assert stats.script_loads == 2
        assert stats.restarts_detected == 0  # same server: nothing blocked
        assert not stats.degraded
        assert backend.usage() == {"ip": 5, "acct": 40}
        with pytest.raises(WouldBlock):
            limiter.try_acquire("account")
        assert pool_len(redis_client, backend, "acct") == 40

        # TLS connections cut under the backend: it opens new ones, no fallback
        assert proxy.drop_connections() == 2
        with pytest.raises(WouldBlock):
            limiter.try_acquire("market")
        assert backend.usage() == {"ip": 5, "acct": 40}
        stats = backend.statistics()
        assert (stats.degraded, stats.restarts_detected) == (False, 0)
        assert proxy.handshakes == 4
        assert backend.ping() >= 0.0
    finally:
        limiter.close()


# ------------------------------------------------------------------------ async


@pytest.mark.parametrize("chunk", [0, 1], ids=["whole", "byte-records"])
async def test_async_limiter_over_tls_is_exact_and_reloads_the_script(
    chunk: int,
    make_proxy: Callable[..., TLSProxy],
    make_backend: Callable[..., RedisBackend],
    ca_file: str,
    redis_client: redis.Redis,
) -> None:
    proxy = make_proxy(chunk=chunk)
    backend = make_backend(tls_url(proxy, ca_file))
    limiter = APIRateLimiter(LIMITS, KINDS, backend=backend)
    try:

        async def one() -> str | None:
            try:
                await limiter.acquire_async("market", timeout=10.0)
            except RateLimited as exc:  # the window is 60 s: refused at once
                return exc.pool
            return "granted"

        outcomes = await asyncio.gather(*(one() for _ in range(8)))  # all at once
        assert sorted(outcomes, key=str) == ["granted"] * 5 + ["ip"] * 3
        for _ in range(30):
            await limiter.acquire_async("account")
        assert (await backend.usage_async()) == {"ip": 5, "acct": 30}
        assert pool_len(redis_client, backend, "ip") == 5
        assert pool_len(redis_client, backend, "acct") == 30
        stats = backend.statistics()
        assert (stats.degraded, stats.outages, stats.script_loads) == (False, 0, 1)
        assert not dedicated_sockets(backend)  # the asyncio driver only: redis.asyncio

        redis_client.script_flush()
        for _ in range(10):
            await limiter.acquire_async("account")
        with pytest.raises(RateLimited):
            await limiter.acquire_async("account", timeout=10.0)  # 60 s away: at once
        stats = backend.statistics()
        assert (stats.script_loads, stats.restarts_detected, stats.degraded) == (2, 0, False)
        assert (await backend.usage_async()) == {"ip": 5, "acct": 40}
        assert pool_len(redis_client, backend, "acct") == 40

        # TLS connections cut under the backend: it opens new ones, no fallback
        opened = proxy.handshakes
        assert proxy.drop_connections() == opened
        with pytest.raises(RateLimited):
            await limiter.acquire_async("market", timeout=10.0)
        assert (await backend.usage_async()) == {"ip": 5, "acct": 40}
        stats = backend.statistics()
        assert (stats.degraded, stats.restarts_detected) == (False, 0)
        assert proxy.handshakes > opened
        assert not proxy.failed_handshakes
    finally:
        limiter.close()
        await backend.aclose()


# ------------------------------------------------------------------------ bad certificate


@pytest.fixture
def untrusted_ca_file(tmp_path: Path) -> str:
    """A CA that did not sign the proxy's certificate."""
    path = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(params=["untrusted-ca", "wrong-host"])
def bad_certificate(
    request: pytest.FixtureRequest,
    make_proxy: Callable[..., TLSProxy],
    ca_file: str,
    untrusted_ca_file: str,
) -> tuple[TLSProxy, str]:
    """A proxy and a CA file with which the client must refuse the proxy's certificate."""
    if request.param == "untrusted-ca":
        return make_proxy(), untrusted_ca_file
    # signed by the trusted CA, but for another host: redis-py checks the hostname
    return make_proxy(hostnames=("redis.example.com",)), ca_file


def test_a_bad_certificate_falls_back_closed_without_leaking_secrets(
    bad_certificate: tuple[TLSProxy, str],
    make_backend: Callable[..., RedisBackend],
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy, trusted = bad_certificate
    url = f"rediss://someone:t0psecret@127.0.0.1:{proxy.port}/0?ssl_ca_certs={trusted}"
    backend = make_backend(url, expected_processes=2, probe_max_interval=1000.0)
    plan = [Charge(pool="p", cost=1, cap=10, window=60.0)]
    with caplog.at_level(logging.WARNING, logger="aimax.ratelimit.redis_backend"):
        answer = backend.attempt(plan, [])
    # the handshake failure is an unreachable Redis: the local share, full for a window
    assert not answer.granted
    assert answer.pool == "p"
    stats = backend.statistics()
    assert stats.degraded
    assert stats.outages == 1
    assert stats.redis_attempts == 0
    assert stats.last_error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in stats.last_error
    assert "t0psecret" not in stats.last_error
    assert "t0psecret" not in stats.url
    assert "t0psecret" not in repr(backend)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in messages[0]
    assert "t0psecret" not in messages[0]
    with pytest.raises(BackendUnavailable) as info:  # not a raw ssl error
        backend.ping()
    assert "t0psecret" not in str(info.value)
    assert proxy.handshakes == 0
    assert proxy.failed_handshakes  # the proxy saw the client abort the handshake


async def test_an_untrusted_certificate_falls_back_closed_async(
    make_proxy: Callable[..., TLSProxy],
    make_backend: Callable[..., RedisBackend],
    untrusted_ca_file: str,
) -> None:
    proxy = make_proxy()
    url = f"rediss://127.0.0.1:{proxy.port}/0?ssl_ca_certs={untrusted_ca_file}"
    backend = make_backend(url, probe_max_interval=1000.0)
    try:
        answer = await backend.attempt_async([Charge(pool="p", cost=1, cap=10, window=60.0)], [])
        assert not answer.granted
        stats = backend.statistics()
        assert stats.degraded
        assert stats.last_error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in stats.last_error
        assert proxy.handshakes == 0
    finally:
        await backend.aclose()


# ------------------------------------------------------------------------ threads


def test_threads_acquiring_at_once_over_tls_account_for_every_grant(
    make_proxy: Callable[..., TLSProxy],
    make_backend: Callable[..., RedisBackend],
    ca_file: str,
    redis_client: redis.Redis,
) -> None:
    proxy = make_proxy()
    backend = make_backend(tls_url(proxy, ca_file))
    limits = [
        RateLimit(name="ip", limit=60, window=60.0),
        RateLimit(name="acct", limit=20, window=60.0),
    ]
    # one class: a lower class may only fill its reserve share of a shared pool
    kinds = [
        RequestKind(name="market", charges={"ip": 1}, priority=Priority.ORDER),
        RequestKind(name="order", charges={"ip": 1, "acct": 2}, priority=Priority.ORDER),
    ]
    limiter = APIRateLimiter(limits, kinds, backend=backend)
    assert limiter.cap("ip", Priority.ORDER) == 60
    threads_n, rounds = 8, 20
    start = threading.Barrier(threads_n)
    granted = {"market": 0, "order": 0}
    refused = {"market": 0, "order": 0}
    errors: list[BaseException] = []
    full: set[str | None] = set()
    lock = threading.Lock()

    def take(kind: str, *, blocking: bool) -> bool:
        try:
            if blocking:  # waits its turn; refused only when the pool is full (60 s away)
                limiter.acquire(kind, timeout=10.0)
            else:  # may also be refused while earlier waiters are queued
                limiter.try_acquire(kind)
        except RateLimited as exc:
            with lock:
                refused[kind] += 1
                if blocking:
                    full.add(exc.pool)
            return False
        with lock:
            granted[kind] += 1
        return True

    def work(index: int) -> None:
        try:
            start.wait(timeout=30.0)
            for i in range(rounds):
                take("order" if (i + index) % 3 == 0 else "market", blocking=i % 2 == 0)
            while take("market", blocking=True):  # until ip is full for this thread too
                pass
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60.0)
        assert not any(w.is_alive() for w in workers)
        assert not errors, errors
        assert refused["market"] >= threads_n  # each thread ended on a full ip pool
        assert full <= {"ip", "acct"}
        expected = {"ip": granted["market"] + granted["order"], "acct": 2 * granted["order"]}
        assert backend.usage() == expected  # every grant accounted for, on the server
        assert pool_len(redis_client, backend, "ip") == expected["ip"]
        assert pool_len(redis_client, backend, "acct") == expected["acct"]
        assert expected["ip"] == 60  # exactly the limit: none lost, none over
        assert expected["acct"] <= 20  # never exceeded
        stats = backend.statistics()
        assert not stats.degraded
        assert stats.outages == 0
        sockets = dedicated_sockets(backend)
        assert 1 <= len(sockets) <= threads_n
        assert all(isinstance(s, ssl.SSLSocket) for s in sockets)
        assert len(backend._idle) == len(backend._conns)  # every connection came back
        # every TLS connection opened is still in use: the dedicated ones, and redis-py's
        # pool (each thread that found the script not yet loaded loaded it)
        client_conns = backend._client.connection_pool._created_connections
        assert proxy.handshakes == len(sockets) + client_conns
        assert client_conns <= threads_n
        assert not proxy.failed_handshakes
    finally:
        limiter.close()


# ------------------------------------------------------------------------ client certificate


async def test_a_client_certificate_with_an_encrypted_key_works_and_its_password_is_masked(
    make_proxy: Callable[..., TLSProxy],
    make_backend: Callable[..., RedisBackend],
    ca_file: str,
    tmp_path: Path,
) -> None:
    client_ca = trustme.CA()
    leaf = client_ca.issue_cert("aimax-client@example.com")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    key_file = tmp_path / "client.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"k3ypass"),
        )
    )
    cert_file = tmp_path / "client.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    proxy = make_proxy(client_ca=client_ca)
    url = (
        f"{tls_url(proxy, ca_file)}&ssl_certfile={cert_file}&ssl_keyfile={key_file}"
        "&ssl_password=k3ypass"
    )
    backend = make_backend(url)
    plan = [Charge(pool="p", cost=1, cap=2, window=60.0)]
    try:
        assert backend.attempt(plan, []).granted  # the dedicated connection shows it too
        assert (await backend.attempt_async(plan, [])).granted
        assert not backend.attempt(plan, []).granted
        assert backend.usage() == {"p": 2}
        assert proxy.handshakes >= 3  # redis-py's client, the dedicated one, redis.asyncio's
        assert not proxy.failed_handshakes
        for text in (repr(backend), backend.statistics().url):
            assert "k3ypass" not in text
            assert "ssl_password=***" in text
    finally:
        await backend.aclose()

    # without the certificate the proxy refuses the client: the fallback, masked again
    bare = make_backend(url.replace(f"&ssl_certfile={cert_file}&ssl_keyfile={key_file}", ""))
    with pytest.raises(BackendUnavailable) as info:
        bare.ping()
    assert "k3ypass" not in str(info.value)
    assert not bare.attempt(plan, []).granted
    assert bare.degraded
    assert proxy.failed_handshakes


def test_async_tls_clients_of_closed_loops_are_closed_without_warnings(
    make_proxy: Callable[..., TLSProxy],
    make_backend: Callable[..., RedisBackend],
    ca_file: str,
) -> None:
    proxy = make_proxy()
    backend = make_backend(tls_url(proxy, ca_file))

    async def one() -> bool:
        return (
            await backend.attempt_async([Charge(pool="p", cost=1, cap=9, window=60.0)], [])
        ).granted

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # each new loop drops the client of the closed one; close() drops the last
        assert [asyncio.run(one()) for _ in range(3)] == [True] * 3
        assert len(backend._async) == 1
        backend.close()
        assert backend._async == {}
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert proxy.handshakes >= 3
    assert proxy.open_connections() == 0  # the sockets under the TLS layer were closed
