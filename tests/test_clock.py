"""The clock seam and its fake."""

from __future__ import annotations

import asyncio
import math
import threading
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aimax._clock import FakeClock, as_seconds
from aimax.errors import ConfigurationError


def test_fake_clock_advances_monotonic_and_wall_together() -> None:
    clock = FakeClock(start=10.0, wall_start=1_000.0)
    clock.advance(timedelta(milliseconds=1500))
    assert clock() == 11.5
    assert clock.time() == 1_001.5


def test_fake_clock_refuses_to_go_back() -> None:
    clock = FakeClock(start=10.0)
    with pytest.raises(ConfigurationError, match="cannot go back"):
        clock.set(9.0)
    with pytest.raises(ConfigurationError, match="seconds"):
        clock.advance(-1)


def test_fake_sleepers_record_and_advance() -> None:
    clock = FakeClock()
    clock.sleep(0.5)
    asyncio.run(clock.async_sleep(0.25))
    assert clock.sleeps == [0.5, 0.25]
    assert clock() == 0.75


def test_fake_clock_is_thread_safe() -> None:
    clock = FakeClock()

    def work() -> None:
        for _ in range(1000):
            clock.advance(0.001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert math.isclose(clock(), 4.0)


@given(st.floats(min_value=1e-3, max_value=1e9, allow_nan=False))
def test_as_seconds_accepts_positive_floats_and_timedeltas(value: float) -> None:
    assert as_seconds(value, name="x") == value
    assert math.isclose(
        as_seconds(timedelta(seconds=value), name="x"), value, rel_tol=1e-6, abs_tol=1e-6
    )


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "1s", None, True])
def test_as_seconds_rejects_bad_values_naming_them(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="window"):
        as_seconds(bad, name="window")  # type: ignore[arg-type]


def test_as_seconds_zero_and_inf_when_allowed() -> None:
    assert as_seconds(0, name="t", allow_zero=True) == 0.0
    assert as_seconds(float("inf"), name="t", allow_inf=True) == math.inf
