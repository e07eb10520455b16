"""Error mapping: MAX codes and HTTP statuses to aimax.errors classes, Retry-After forms."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aimax import errors
from aimax.exchange.max.errormap import (
    CODE_CLASSES,
    DEFAULT_BAN_SECONDS,
    exception_for,
    parse_retry_after,
)

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1001, errors.BadRequest),
        (2014, errors.BadRequest),
        (2001, errors.AuthenticationError),
        (2005, errors.AuthenticationError),
        (2008, errors.AuthenticationError),
        (2006, errors.NonceError),
        (2007, errors.NonceError),
        (2002, errors.OrderError),
        (2003, errors.OrderError),
        (2016, errors.OrderError),
        (2023, errors.OrderError),
        (2034, errors.OrderError),
        (2004, errors.OrderNotFound),
        (2018, errors.InsufficientFunds),
        (5999, errors.ServerError),
    ],
)
@pytest.mark.parametrize("status", [200, 400, 401, 404, 500])
def test_codes_map_to_classes_with_their_context(
    code: int, cls: type[errors.ExchangeError], status: int
) -> None:
    body = {"success": False, "error": {"code": code, "message": "what MAX said"}}
    exc = exception_for(status, body, path="/api/v3/p", headers={}, now=NOW)
    assert type(exc) is cls
    assert exc.code == code
    assert exc.message == "what MAX said"
    assert exc.status == status
    assert exc.path == "/api/v3/p"
    assert str(code) in str(exc)


def test_every_documented_code_is_mapped() -> None:
    assert set(CODE_CLASSES) == {
        1001, 2001, 2002, 2003, 2004, 2005, 2006, 2007, 2008, 2014, 2016, 2018, 2023, 2034, 5999,
    }  # fmt: skip


def test_success_and_200_with_error_body() -> None:
    assert exception_for(200, [{"id": 1}], path="/p", headers={}, now=NOW) is None
    assert exception_for(200, {"success": True}, path="/p", headers={}, now=NOW) is None
    assert exception_for(200, {"error": None, "id": 3}, path="/p", headers={}, now=NOW) is None
    exc = exception_for(
        200, {"error": {"code": 2018, "message": "no money"}}, path="/p", headers={}, now=NOW
    )
    assert isinstance(exc, errors.InsufficientFunds)
    exc = exception_for(200, {"success": False}, path="/p", headers={}, now=NOW)
    assert type(exc) is errors.ExchangeError


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (500, errors.ServerError),
        (503, errors.ServerError),
        (401, errors.AuthenticationError),
        (403, errors.AuthenticationError),
        (404, errors.BadRequest),
        (422, errors.BadRequest),
    ],
)
def test_statuses_without_a_code(status: int, cls: type[errors.ExchangeError]) -> None:
    exc = exception_for(status, None, path="/p", headers={}, now=NOW)
    assert type(exc) is cls
    assert exc.status == status
    assert exc.code is None


def test_unknown_code_falls_back_on_status() -> None:
    body = {"error": {"code": 9999, "message": "new"}}
    assert type(exception_for(400, body, path="/p", headers={}, now=NOW)) is errors.BadRequest
    assert type(exception_for(200, body, path="/p", headers={}, now=NOW)) is errors.ExchangeError


def test_429_absolute_retry_after_is_a_ban() -> None:
    until = NOW + 37
    exc = exception_for(429, None, path="/p", headers={"Retry-After": str(int(until))}, now=NOW)
    assert isinstance(exc, errors.ExchangeBanned)
    assert isinstance(exc, errors.Banned)
    assert exc.until == until
    assert exc.retry_after == pytest.approx(37)
    assert exc.status == 429


def test_418_and_missing_retry_after() -> None:
    exc = exception_for(418, None, path="/p", headers={}, now=NOW)
    assert isinstance(exc, errors.ExchangeBanned)
    assert exc.until == NOW + DEFAULT_BAN_SECONDS


def test_retry_after_forms() -> None:
    assert parse_retry_after(None, now=NOW) is None
    assert parse_retry_after("  ", now=NOW) is None
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after("-5", now=NOW) is None
    assert parse_retry_after("30", now=NOW) == NOW + 30
    assert parse_retry_after("1750000100", now=NOW) == 1_750_000_100
    date = email.utils.formatdate(NOW + 120, usegmt=True)
    assert parse_retry_after(date, now=NOW) == pytest.approx(NOW + 120)


@given(delay=st.integers(min_value=0, max_value=10**6))
def test_retry_after_seconds_and_absolute_agree(delay: int) -> None:
    """The same moment written as a delay or as an absolute timestamp parses the same."""
    assert parse_retry_after(str(delay), now=NOW) == parse_retry_after(
        str(int(NOW) + delay), now=NOW
    )
