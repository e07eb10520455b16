"""RedisBackend beyond the shared contract: one budget across instances, keys, errors,
the local fallback and the way back to Redis (real private servers throughout)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing as mp
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import InvalidResponse, NoScriptError, ResponseError

from aimax._clock import FakeClock
from aimax._metrics import MetricSample
from aimax._redisserver import RedisServer, find_server_binary, free_port
from aimax.errors import (
    BackendError,
    BackendUnavailable,
    ConfigurationError,
    RequestTooLarge,
    WouldBlock,
)
from aimax.ratelimit import APIRateLimiter, Priority, RateLimit, RequestKind
from aimax.ratelimit._window import Charge
from aimax.ratelimit.redis_backend import (
    RedisBackend,
    RedisBackendStatistics,
    _read_reply,
    limiter_script,
)

pytestmark = pytest.mark.redis

_ids = itertools.count()


def unique_prefix() -> str:
    return f"rb{next(_ids)}"


@pytest.fixture
def make_backend(redis_url: str) -> Iterator[Callable[..., RedisBackend]]:
    made: list[RedisBackend] = []

    def make(url: str = redis_url, **options: object) -> RedisBackend:
        options.setdefault("prefix", unique_prefix())
        backend = RedisBackend.from_url(url, **options)  # type: ignore[arg-type]
        made.append(backend)
        return backend

    try:
        yield make
    finally:
        for backend in made:
            backend.close()


def charge(pool: str = "p", cost: int = 1, cap: int = 5, window: float = 60.0) -> Charge:
    return Charge(pool=pool, cost=cost, cap=cap, window=window)


# ------------------------------------------------------------------------ sharing


def test_instances_with_one_prefix_share_one_budget(
    make_backend: Callable[..., RedisBackend],
) -> None:
    a = make_backend(prefix="shared")
    b = make_backend(prefix="shared")
    other = make_backend(prefix="other")
    assert a.attempt([charge(cap=3)], []).granted
    assert b.attempt([charge(cap=3)], []).granted
    assert a.attempt([charge(cap=3)], []).granted
    answer = b.attempt([charge(cap=3)], [])
    assert (answer.granted, answer.pool) == (False, "p")
    assert other.attempt([charge(cap=3)], []).granted  # another deployment
    a.freeze("ip", time.time() + 20.0)
    assert b.attempt([charge("q")], ["ip"]).frozen_until is not None


# the commands the script runs inside the server (INFO commandstats counts them too)
SCRIPT_COMMANDS = {"time", "hmget", "hget", "hset", "lrange", "ltrim", "rpush", "pexpire"}
SCRIPT_COMMANDS |= {"pttl", "del"}


def round_trips(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> int:
    """Commands sent by clients between two INFO commandstats (INFO itself excluded)."""
    total = 0
    for key, row in after.items():
        name = key.removeprefix("cmdstat_")
        if name in SCRIPT_COMMANDS or name == "info":
            continue
        total += row["calls"] - before.get(key, {}).get("calls", 0)
    return total


def test_one_round_trip_per_attempt(
    make_backend: Callable[..., RedisBackend], redis_client: redis.Redis
) -> None:
    backend = make_backend()
    backend.attempt([charge("p"), charge("q")], ["ip"])  # loads the script
    before = redis_client.info("commandstats")
    for _ in range(20):
        backend.attempt([charge("p", cap=100), charge("q", cap=100)], ["ip"])
    after = redis_client.info("commandstats")
    assert round_trips(before, after) == 20
    assert after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"] == 20


def test_a_common_attempt_runs_time_one_hmget_and_one_rpush_per_pool(
    make_backend: Callable[..., RedisBackend], redis_client: redis.Redis
) -> None:
    backend = make_backend()
    charges = [charge("p", cap=100), charge("q", cap=100)]
    assert backend.attempt(charges, ["ip"]).granted  # reads the empty logs, sets TTLs
    before = redis_client.info("commandstats")
    for _ in range(10):
        assert backend.attempt(charges, ["ip"]).granted
    after = redis_client.info("commandstats")
    ran = {
        key.removeprefix("cmdstat_"): row["calls"] - before.get(key, {}).get("calls", 0)
        for key, row in after.items()
    }
    inside = {name: n for name, n in ran.items() if n and name not in {"info", "evalsha"}}
    assert inside == {"time": 10, "hmget": 10, "rpush": 20}
    assert backend.usage() == {"p": 11, "q": 11}


def _child_attempts(backend: RedisBackend, n: int) -> None:
    for _ in range(n):
        if not backend.attempt([charge(cap=10_000)], []).granted or backend.degraded:
            raise SystemExit(1)


def test_a_forked_child_talks_on_its_own_connections(
    make_backend: Callable[..., RedisBackend],
) -> None:
    backend = make_backend()
    assert backend.attempt([charge(cap=10_000)], []).granted  # a connection is open
    # parent and child attempt at the same time: on one shared socket their replies
    # would cross (wrong answers, protocol errors or timeouts)
    child = mp.get_context("fork").Process(target=_child_attempts, args=(backend, 300))
    child.start()
    for _ in range(300):
        assert backend.attempt([charge(cap=10_000)], []).granted
    child.join(30)
    assert child.exitcode == 0
    assert not backend.degraded
    assert backend.usage()["p"] == 601


class ChunkedSocket:
    """Hands out ``data`` at most ``size`` bytes per recv, then b"" (closed)."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data = data
        self.size = size

    def recv(self, n: int) -> bytes:
        chunk = self.data[: min(n, self.size)]
        self.data = self.data[len(chunk) :]
        return chunk


@pytest.mark.parametrize("size", [1, 2, 5, 65536])
def test_replies_are_read_whole_however_they_are_split(size: int) -> None:
    def read(data: bytes) -> object:
        return _read_reply(ChunkedSocket(data, size))  # type: ignore[arg-type]

    assert read(b":1764346000123456\r\n") == 1764346000123456
    assert read(b"*4\r\n:0\r\n:250\r\n:2\r\n:-3\r\n") == [0, 250, 2, -3]
    assert read(b"$10\r\nnot a list\r\n") == b"not a list"
    assert read(b"*3\r\n$-1\r\n*0\r\n$0\r\n\r\n") == [None, [], b""]
    assert read(b"+OK\r\n") == b"OK"
    with pytest.raises(NoScriptError):
        read(b"-NOSCRIPT No matching script.\r\n")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        read(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
    with pytest.raises(InvalidResponse):
        read(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    if size > 12:  # both in one recv: a second reply to one command is an error
        with pytest.raises(InvalidResponse):
            read(b":12\r\n:13\r\n")
    with pytest.raises(redis.ConnectionError):
        read(b"*2\r\n:1\r\n")  # the server closed the connection mid-reply


def test_keys_are_prefixed_and_expire_when_idle(
    make_backend: Callable[..., RedisBackend], redis_client: redis.Redis
) -> None:
    backend = make_backend(prefix="deploy")
    backend.attempt([charge("rest_public", window=5.0)], [])
    backend.freeze("ip", time.time() + 3.0)
    keys = sorted(k.decode() for k in redis_client.keys("*"))
    assert keys == ["{deploy}:ctl", "{deploy}:pool:rest_public"]
    for key in keys:
        assert 0 < redis_client.pttl(key) <= 10_002  # two windows


def test_the_script_is_reloaded_after_script_flush(
    make_backend: Callable[..., RedisBackend], redis_client: redis.Redis
) -> None:
    backend = make_backend()
    assert backend.attempt([charge()], []).granted
    loads = backend.statistics().script_loads
    redis_client.script_flush()
    assert backend.attempt([charge()], []).granted
    assert backend.statistics().script_loads == loads + 1
    assert backend.statistics().restarts_detected == 0  # same server: nothing blocked
    assert backend.usage()["p"] == 2


def test_grant_time_is_the_servers(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend()
    assert backend.last_grant_time is None
    assert backend.last_grant_local is None
    before = time.time()
    backend.attempt([charge()], [])
    after = time.time()
    at = backend.last_grant_time
    assert at is not None
    assert before - 1.0 <= at <= after + 1.0  # same host: the clocks agree
    assert backend.last_grant_local is False


async def test_async_and_sync_share_the_budget(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend()
    assert (await backend.attempt_async([charge(cap=2)], [])).granted
    assert backend.attempt([charge(cap=2)], []).granted
    assert not (await backend.attempt_async([charge(cap=2)], [])).granted
    assert (await backend.usage_async()) == {"p": 2}
    await backend.aclose()
    assert "closed" in repr(backend)


@pytest.fixture
def unix_socket_server(tmp_path: Path) -> Iterator[str]:
    """A private server listening on a unix socket only."""
    path = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [
            find_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(path),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10.0
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        yield f"unix://{path}?db=0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_works_over_a_unix_socket(
    unix_socket_server: str, make_backend: Callable[..., RedisBackend]
) -> None:
    backend = make_backend(unix_socket_server)
    assert [backend.attempt([charge(cap=2)], []).granted for _ in range(3)] == [True, True, False]
    assert backend.usage() == {"p": 2}


# ------------------------------------------------------------------------ the limiter


def test_api_rate_limiter_runs_on_the_redis_backend(
    make_backend: Callable[..., RedisBackend],
) -> None:
    prefix = unique_prefix()
    limits = [
        RateLimit(name="ip", limit=6, window=60.0),
        RateLimit(name="acct", limit=4, window=60.0),
    ]
    kinds = [
        RequestKind(name="market", charges={"ip": 1}, priority=Priority.MARKET_DATA),
        RequestKind(name="order", charges={"ip": 1, "acct": 2}, priority=Priority.ORDER),
    ]
    first = APIRateLimiter(limits, kinds, backend=make_backend(prefix=prefix))
    second = APIRateLimiter(limits, kinds, backend=make_backend(prefix=prefix))
    try:
        first.acquire("order")
        second.acquire("order")
        with pytest.raises(WouldBlock):
            second.try_acquire("order")  # acct (4) is full for both
        assert not second.can_make_request("order")  # asks Redis (RedisBackend.peek)
        assert second.can_make_request("market")
        second.acquire("market")
        watcher = make_backend(prefix=prefix)
        assert watcher.usage() == {}  # a fresh instance knows no pools yet
        assert not watcher.peek([charge("acct", cost=1, cap=4)], []).granted
        assert watcher.peek([charge("ip", cost=1, cap=6)], []).granted
        assert watcher.usage() == {"acct": 4, "ip": 3}
    finally:
        first.close()
        second.close()


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://127.0.0.1:6379",
        "127.0.0.1:6379",
        "redis://:s3cret@127.0.0.1:notaport/0",
        "redis://127.0.0.1:6379/0?socket_timeout=soon&password=s3cret",
    ],
)
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisBackend.from_url(url)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    "options",
    [
        {"prefix": ""},
        {"prefix": "a{b}"},
        {"expected_processes": 0},
        {"expected_processes": 1.5},
        {"fallback_share": 0.0},
        {"fallback_share": 1.5},
        {"probe_interval": 0},
        {"probe_interval": 3.0, "probe_max_interval": 1.0},
        {"socket_timeout": -1},
    ],
)
def test_bad_options_are_configuration_errors(redis_url: str, options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RedisBackend.from_url(redis_url, **options)  # type: ignore[arg-type]


def test_bad_charges_are_refused_before_any_io(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend()
    with pytest.raises(RequestTooLarge):
        backend.attempt([charge(cost=6, cap=5)], [])
    with pytest.raises(ConfigurationError):
        backend.attempt([charge(cost=0)], [])
    with pytest.raises(ConfigurationError):
        backend.attempt([charge("p"), charge("p")], [])
    with pytest.raises(ConfigurationError):
        backend.attempt([], [])
    with pytest.raises(ConfigurationError):
        backend.freeze("", time.time())


def test_refused_credentials_are_a_backend_error_not_a_fallback(
    redis_server: RedisServer, make_backend: Callable[..., RedisBackend]
) -> None:
    url = f"redis://someone:t0psecret@127.0.0.1:{redis_server.port}/0"
    backend = make_backend(url)
    with pytest.raises(BackendError) as info:
        backend.attempt([charge()], [])
    assert "t0psecret" not in str(info.value)
    assert "t0psecret" not in repr(backend)
    assert not backend.degraded


@pytest.fixture
def not_redis() -> Iterator[int]:
    """A TCP server that answers like a web server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


def test_a_server_that_is_not_redis_is_a_backend_error(
    not_redis: int, make_backend: Callable[..., RedisBackend]
) -> None:
    backend = make_backend(f"redis://127.0.0.1:{not_redis}/0")
    with pytest.raises(BackendError, match="Redis"):
        backend.attempt([charge()], [])


def test_a_wrong_script_reply_is_a_backend_error(
    make_backend: Callable[..., RedisBackend], redis_client: redis.Redis
) -> None:
    backend = make_backend()
    assert backend.attempt([charge()], []).granted  # the real script is loaded
    # point the backend at other scripts (plans made from now on use their sha)
    backend._sha = redis_client.script_load("return 'not a list'")
    with pytest.raises(BackendError, match="not a list"):
        backend.attempt([charge("q")], [])
    backend._sha = redis_client.script_load("return {7, 0, 0, 0}")
    with pytest.raises(BackendError, match="status 7"):
        backend.attempt([charge("r")], [])


def test_a_key_of_the_wrong_type_is_a_backend_error(
    make_backend: Callable[..., RedisBackend], redis_client: redis.Redis
) -> None:
    backend = make_backend(prefix="clash")
    redis_client.set("{clash}:pool:p", "a string")
    with pytest.raises(BackendError, match="WRONGTYPE"):
        backend.attempt([charge()], [])


def test_a_closed_backend_refuses_work(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend()
    backend.close()
    with pytest.raises(BackendError, match="closed"):
        backend.attempt([charge()], [])


# ------------------------------------------------------------------------ fallback


@pytest.fixture
def dead_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def test_unreachable_redis_falls_back_to_a_conservative_local_share(
    dead_url: str,
    make_backend: Callable[..., RedisBackend],
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(start=50.0)
    backend = make_backend(
        dead_url, expected_processes=4, clock=clock, wall=clock.time, probe_max_interval=1000.0
    )
    plan = [charge("p", cap=20, window=10.0)]
    with caplog.at_level(logging.WARNING, logger="aimax.ratelimit.redis_backend"):
        first = backend.attempt(plan, [])
        # never fails open: the pool counts as full for one window after the outage
        assert not first.granted
        assert first.pool == "p"
        assert 0 < first.wait <= 10.0
        stats = backend.statistics()
        assert stats.degraded
        assert stats.outages == 1
        assert stats.last_error is not None
        assert "Connection" in stats.last_error
        clock.advance(10.0)
        grants = [backend.attempt(plan, []).granted for _ in range(8)]
    assert grants == [True] * 5 + [False] * 3  # floor(20 / 4)
    assert backend.last_grant_local is True
    assert backend.last_grant_time == pytest.approx(clock.time())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "local share" in warnings[0].getMessage()
    assert backend.usage() == {"p": 5}
    with pytest.raises(BackendUnavailable):
        backend.ping()
    samples = {s.name: s for s in backend.metric_samples()}
    assert samples["aimax_ratelimit_backend_degraded"].value == 1.0
    assert all(isinstance(s, MetricSample) for s in samples.values())
    assert "degraded" in repr(backend)


def test_a_request_larger_than_the_local_share_waits_for_redis(
    dead_url: str, make_backend: Callable[..., RedisBackend]
) -> None:
    clock = FakeClock(start=0.0)
    backend = make_backend(dead_url, expected_processes=4, clock=clock, wall=clock.time)
    answer = backend.attempt([charge("p", cost=6, cap=20)], [])
    assert not answer.granted
    assert answer.wait <= 0.1 + 1e-9  # until the next probe


def test_probes_back_off_instead_of_hammering(
    dead_url: str, make_backend: Callable[..., RedisBackend]
) -> None:
    clock = FakeClock(start=0.0)
    backend = make_backend(
        dead_url, clock=clock, wall=clock.time, probe_interval=0.1, probe_max_interval=1.6
    )
    for _ in range(1000):  # ten fake seconds of attempts, one every 10 ms
        backend.attempt([charge()], [])
        clock.advance(0.01)
    probes = backend.statistics().probes
    # due at 0.1, 0.3, 0.7, 1.5, 3.1, then every 1.6 s: 4.7, 6.3, 7.9, 9.5
    assert 8 <= probes <= 10
    assert backend.statistics().local_attempts == 1000


def test_freezes_hold_in_the_fallback(
    dead_url: str, make_backend: Callable[..., RedisBackend]
) -> None:
    clock = FakeClock(start=0.0)
    backend = make_backend(dead_url, clock=clock, wall=clock.time, probe_max_interval=100.0)
    backend.freeze("ip", clock.time() + 30.0)
    answer = backend.attempt([charge()], ["ip"])
    assert answer.frozen_until == pytest.approx(clock.time() + 30.0)
    clock.advance(60.0)
    assert backend.attempt([charge()], ["ip"]).granted


def test_back_on_redis_after_a_restart_with_the_outage_accounted(
    redis_server_factory: Callable[[], RedisServer],
    make_backend: Callable[..., RedisBackend],
) -> None:
    server = redis_server_factory()
    clock = FakeClock(start=0.0)
    backend = make_backend(
        server.url,
        expected_processes=2,
        clock=clock,
        wall=clock.time,
        probe_interval=0.5,
        probe_max_interval=0.5,
    )
    plan = [charge("p", cap=10, window=5.0)]
    assert backend.attempt(plan, []).granted  # learns the server's run_id
    server.stop()
    assert not backend.attempt(plan, []).granted  # degraded: full for one window
    assert backend.degraded
    clock.advance(5.0)  # the blackout is over; the probe is due but fails
    assert [backend.attempt(plan, []).granted for _ in range(6)] == [True] * 5 + [False]
    assert backend.degraded
    server.start()  # a new run_id: the old server's window is lost
    clock.advance(1.0)
    answer = backend.attempt(plan, [])  # probes, rejoins, then asks Redis
    stats = backend.statistics()
    assert not stats.degraded
    assert stats.restarts_detected == 1
    assert stats.local_grants == 5
    # on Redis: the 5 local grants (1 s old) + the other process's reserved share (5)
    assert not answer.granted
    assert backend.usage() == {"p": 10}
    client = redis.Redis.from_url(server.url)
    try:
        assert client.llen(f"{{{backend.prefix}}}:pool:p") == 5
        assert client.hget(f"{{{backend.prefix}}}:ctl", "r:p") == b"5"
    finally:
        client.close()


async def test_async_fallback_and_return(
    redis_server_factory: Callable[[], RedisServer],
    make_backend: Callable[..., RedisBackend],
) -> None:
    server = redis_server_factory()
    clock = FakeClock(start=0.0)
    backend = make_backend(
        server.url, clock=clock, wall=clock.time, probe_interval=0.5, probe_max_interval=0.5
    )
    plan = [charge("p", cap=10, window=5.0)]
    assert (await backend.attempt_async(plan, [])).granted
    server.stop()
    assert not (await backend.attempt_async(plan, [])).granted
    assert backend.degraded
    server.start()
    clock.advance(1.0)
    await backend.attempt_async(plan, [])
    assert not backend.degraded
    assert backend.statistics().restarts_detected == 1
    await backend.aclose()


def test_statistics_is_a_frozen_snapshot(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend(expected_processes=3)
    backend.attempt([charge()], [])
    stats = backend.statistics()
    assert isinstance(stats, RedisBackendStatistics)
    assert stats.redis_attempts == 1
    assert stats.share == pytest.approx(1 / 3)
    assert not stats.degraded
    with pytest.raises(AttributeError):
        stats.degraded = True  # type: ignore[misc]
    assert f"prefix={backend.prefix!r}" in repr(backend)


def test_script_ships_with_the_package() -> None:
    source = limiter_script()
    assert "redis.call('TIME')" in source
    assert source.count("EVALSHA") >= 1


def test_async_clients_of_closed_loops_are_dropped(
    make_backend: Callable[..., RedisBackend],
) -> None:
    backend = make_backend()

    async def one() -> bool:
        return (await backend.attempt_async([charge()], [])).granted

    for _ in range(3):
        assert asyncio.run(one())
    assert len(backend._async) == 1  # only the last loop's client is kept
    backend.close()
    assert backend._async == {}


def test_module_all_lists_the_public_names() -> None:
    import aimax.ratelimit.redis_backend as module

    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }
    assert set(module.__all__) == public


async def test_api_rate_limiter_async_on_the_redis_backend(
    make_backend: Callable[..., RedisBackend],
) -> None:
    backend = make_backend()
    limiter = APIRateLimiter(
        [RateLimit(name="ip", limit=3, window=60.0)],
        [RequestKind(name="market", charges={"ip": 1}, priority=Priority.MARKET_DATA)],
        backend=backend,
    )
    try:
        for _ in range(3):
            await limiter.acquire_async("market")
        with pytest.raises(WouldBlock):
            limiter.try_acquire("market")
        assert (await backend.usage_async()) == {"ip": 3}
    finally:
        limiter.close()
        await backend.aclose()
