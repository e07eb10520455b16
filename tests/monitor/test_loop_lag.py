"""Event-loop lag measured by a probe task on a real asyncio loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aimax.errors import ConfigurationError
from aimax.monitor import LoopLagProbe, ResourceMonitor

from .conftest import FakeProbe

KEY = 'aimax_event_loop_lag_seconds{loop="main"}'


async def test_a_blocked_loop_shows_lag() -> None:
    monitor = ResourceMonitor(interval=1.0, probe=FakeProbe(), gc=False)
    probe = monitor.watch_loop(name="main", period=0.01)
    assert monitor.watch_loop() is probe  # the same loop is watched once
    while probe.wakeups < 2:
        await asyncio.sleep(0.01)
    monitor.collect_metrics()  # resets the window
    time.sleep(0.2)  # block the loop on purpose: this is the lag being measured
    blocked = monitor.collect_metrics()
    # the probe is overdue by at least the block minus one period, however slow the machine
    assert blocked[KEY] >= 0.2 - 0.01
    wakeups = probe.wakeups
    while probe.wakeups < wakeups + 2:
        await asyncio.sleep(0.01)
    after = monitor.collect_metrics()
    assert after[KEY] >= 0.0
    assert monitor.statistics().loops == ("main",)
    assert monitor.unwatch_loop(asyncio.get_running_loop())
    assert not monitor.unwatch_loop(asyncio.get_running_loop())
    await asyncio.sleep(0)  # let the cancellation land
    monitor.close()


async def test_nothing_is_reported_before_the_first_measurement() -> None:
    probe = LoopLagProbe(asyncio.get_running_loop(), name="x", period=10.0)
    assert probe.metric_samples() == []
    probe.start()
    await asyncio.sleep(0)
    assert probe.metric_samples() == []  # not overdue yet: absent, not zero
    probe.stop()
    probe.stop()
    await asyncio.sleep(0)


def test_watching_a_loop_in_another_thread() -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-loop")
    thread.start()
    monitor = ResourceMonitor(interval=1.0, probe=FakeProbe(), gc=False)
    try:
        probe = monitor.watch_loop(loop, name="main", period=0.005)
        deadline = time.monotonic() + 30
        while probe.wakeups < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert probe.wakeups >= 3
        assert KEY in monitor.collect_metrics().values
        probe.stop()  # cancel the probe task before the loop goes away
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.run_until_complete(asyncio.sleep(0.01))  # let the cancellation land
        loop.close()
    # a closed loop is dropped by the next sample, without an error
    snapshot = monitor.collect_metrics()
    assert KEY not in snapshot.values
    assert monitor.statistics().loops == ()
    assert not any(k.startswith("source:loop") for k in snapshot.failures)
    with pytest.raises(ConfigurationError, match="closed"):
        monitor.watch_loop(loop)
    monitor.close()


def test_watch_loop_needs_a_loop() -> None:
    with (
        ResourceMonitor(probe=FakeProbe(), gc=False) as monitor,
        pytest.raises(ConfigurationError, match="running loop"),
    ):
        monitor.watch_loop()
