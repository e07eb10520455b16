"""The exception tree: one base, context carried as attributes."""

from __future__ import annotations

import pytest

from aimax import errors


@pytest.mark.parametrize("name", errors.__all__)
def test_every_exception_derives_from_the_base(name: str) -> None:
    assert issubclass(getattr(errors, name), errors.AimaxError)


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="limit"):
        raise errors.ConfigurationError("limit must be positive, got 0")


def test_rate_limited_carries_retry_after_and_pool() -> None:
    exc = errors.WouldBlock("no slot", retry_after=0.25, pool="rest_public")
    assert isinstance(exc, errors.RateLimited)
    assert (exc.retry_after, exc.pool) == (0.25, "rest_public")


def test_banned_is_rate_limited_and_carries_until() -> None:
    exc = errors.Banned("banned", until=1_750_000_100.0, retry_after=100.0, scope="ip")
    assert isinstance(exc, errors.RateLimited)
    assert (exc.until, exc.retry_after, exc.scope) == (1_750_000_100.0, 100.0, "ip")


def test_exchange_error_carries_code_message_status() -> None:
    exc = errors.NonceError("nonce used", code=2006, status=400, path="/api/v3/info")
    assert (exc.code, exc.message, exc.status, exc.path) == (
        2006,
        "nonce used",
        400,
        "/api/v3/info",
    )
    assert "2006" in str(exc)


def test_exchange_banned_is_both_an_exchange_error_and_banned() -> None:
    exc = errors.ExchangeBanned("429", until=5.0, retry_after=3.0, scope="ip")
    assert isinstance(exc, errors.ExchangeError)
    assert isinstance(exc, errors.Banned)
    assert (exc.status, exc.until, exc.retry_after) == (429, 5.0, 3.0)


def test_pool_errors_name_the_pool() -> None:
    assert errors.PoolFull("full", pool="orders").pool == "orders"
    assert errors.PoolClosed("closed", pool="io").pool == "io"


def test_request_too_large_is_a_configuration_error() -> None:
    exc = errors.RequestTooLarge("too big", pool="p", cost=10, limit=5)
    assert isinstance(exc, errors.ConfigurationError)
    assert (exc.pool, exc.cost, exc.limit) == ("p", 10, 5)


def test_process_not_found_names_the_pid() -> None:
    exc = errors.ProcessNotFound("gone", pid=4242)
    assert exc.pid == 4242
    assert isinstance(exc, errors.MonitorError)
