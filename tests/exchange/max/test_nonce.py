"""Nonces: strictly increasing per key whatever the clock does, across threads and tasks."""

from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax._clock import FakeClock
from aimax.errors import ConfigurationError
from aimax.exchange.max.nonce import NonceGenerator, estimate_offset_ms, nonce_generator_for


class _ScriptedWall:
    """A wall clock that returns scripted readings (it may jump back, like NTP steps)."""

    def __init__(self, readings: list[float]) -> None:
        self.readings = readings
        self.i = 0

    def __call__(self) -> float:
        value = self.readings[min(self.i, len(self.readings) - 1)]
        self.i += 1
        return value


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=1.6e9, max_value=1.8e9, allow_nan=False),
            st.integers(min_value=-60_000, max_value=60_000) | st.none(),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_strictly_increasing_whatever_the_clock_and_offset_do(
    steps: list[tuple[float, int | None]],
) -> None:
    wall = _ScriptedWall([t for t, _ in steps])
    gen = NonceGenerator(wall=wall)
    seen: list[int] = []
    for reading, offset in steps:
        if offset is not None:
            gen.set_offset(offset)
        value = gen.next()
        # never below the corrected clock, never at or below the previous value
        assert value >= int(reading * 1000) + gen.offset_ms
        if seen:
            assert value > seen[-1]
        seen.append(value)
    assert gen.last == seen[-1]
    assert gen.issued == len(seen)


def test_tracks_the_corrected_clock(fake_clock: FakeClock) -> None:
    gen = NonceGenerator(wall=fake_clock.time)
    start = int(fake_clock.time() * 1000)
    assert gen.next() == start
    fake_clock.advance(2.0)
    assert gen.next() == start + 2000
    gen.set_offset(-1500)
    assert gen.next() == start + 2001  # behind the last one: last + 1, never down
    fake_clock.advance(10.0)
    assert gen.next() == start + 12000 - 1500
    with pytest.raises(ConfigurationError):
        gen.set_offset(1.5)  # type: ignore[arg-type]
    assert "offset_ms=-1500" in repr(gen)


def test_unique_and_ordered_across_threads() -> None:
    gen = NonceGenerator()
    per_thread: dict[int, list[int]] = {}
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        per_thread[i] = [gen.next() for _ in range(3000)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [n for values in per_thread.values() for n in values]
    assert len(everything) == len(set(everything)) == 24_000
    for values in per_thread.values():
        assert values == sorted(values)
        assert len(set(values)) == len(values)


async def test_unique_across_tasks_and_threads_together() -> None:
    gen = nonce_generator_for("shared-key-for-test")
    assert nonce_generator_for("shared-key-for-test") is gen  # one per key
    assert nonce_generator_for("another-key") is not gen

    async def task() -> list[int]:
        out = []
        for _ in range(200):
            out.append(gen.next())
            await asyncio.sleep(0)
        return out

    def thread_work(out: list[int]) -> None:
        out.extend(gen.next() for _ in range(2000))

    thread_out: list[list[int]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=thread_work, args=(o,)) for o in thread_out]
    for t in threads:
        t.start()
    task_out = await asyncio.gather(*(task() for _ in range(20)))
    for t in threads:
        t.join()
    everything = [n for o in thread_out for n in o] + [n for o in task_out for n in o]
    assert len(everything) == len(set(everything)) == 4 * 2000 + 20 * 200
    assert "shared-key-for-test" not in repr(gen)


def test_estimate_offset() -> None:
    # server whole seconds: the middle of the reported second vs the middle of the trip
    assert estimate_offset_ms(1000, sent_at=1000.0, received_at=1000.0) == 500
    assert estimate_offset_ms(1000, sent_at=1010.0, received_at=1010.2) == -9600
    assert estimate_offset_ms(1000.25, sent_at=1000.25, received_at=1000.25) == 0
