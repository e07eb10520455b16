"""Fixtures of the memory tests, and a guard on interpreter-wide state.

Every test here runs under ``_interpreter_state_guard``: GC thresholds, the frozen
generation, ``gc.callbacks``, whether the GC is enabled and whether tracemalloc
traces must be the same after the test as before (other components' tests run
in the same process). A test that leaks such state fails, and the state is put
back so the next test starts clean.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from aimax._clock import FakeClock
from aimax.memory import FakeProbe, MemoryConfig, MemoryManager, PressureThresholds


def _ours(now: list[object], before: list[object]) -> list[object]:
    """GC callbacks added by aimax (hypothesis installs its own once, for good)."""
    return [
        cb
        for cb in now
        if cb not in before and type(getattr(cb, "__self__", None)).__module__.startswith("aimax")
    ]


@pytest.fixture(autouse=True)
def _interpreter_state_guard() -> Iterator[None]:
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    callbacks = list(gc.callbacks)
    enabled = gc.isenabled()
    tracing = tracemalloc.is_tracing()
    threads = set(threading.enumerate())
    yield
    leaked = {
        "thresholds": gc.get_threshold() != thresholds,
        "frozen": gc.get_freeze_count() != frozen,
        "callbacks": bool(_ours(gc.callbacks, callbacks)),
        "enabled": gc.isenabled() != enabled,
        "tracemalloc": tracemalloc.is_tracing() != tracing,
    }
    # put everything back before failing, so one bad test does not poison the rest
    gc.set_threshold(*thresholds)
    if gc.get_freeze_count() != frozen and frozen == 0:
        gc.unfreeze()
    for callback in _ours(gc.callbacks, callbacks):
        gc.callbacks.remove(callback)
    (gc.enable if enabled else gc.disable)()
    if tracemalloc.is_tracing() and not tracing:
        tracemalloc.stop()
    extra = [
        t for t in threading.enumerate() if t not in threads and t.name.startswith("aimax-memory")
    ]
    for thread in extra:
        thread.join(5.0)
    left = [t.name for t in extra if t.is_alive()]
    assert not any(leaked.values()), f"test leaked interpreter state: {leaked}"
    assert not left, f"test left threads running: {left}"


MiB = 2**20


@pytest.fixture
def probe() -> FakeProbe:
    """A fake probe: 1 GiB physical, no cgroup limit, 100 MiB RSS."""
    return FakeProbe(rss_bytes=100 * MiB, physical_bytes=1024 * MiB)


@pytest.fixture
def no_hold() -> MemoryConfig:
    """Levels fall as soon as usage drops (no minimum hold), short cooldowns."""
    return MemoryConfig(
        thresholds=PressureThresholds(elevated=0.8, critical=0.95, hysteresis=0.05, min_hold=0),
        gc_cooldown=10.0,
        trim_threshold=8 * MiB,
        uss_interval=None,
    )


@pytest.fixture
def manager(
    probe: FakeProbe, no_hold: MemoryConfig, fake_clock: FakeClock
) -> Iterator[MemoryManager]:
    """A manager with a 200 MiB budget over the fake probe and clock."""
    with MemoryManager(budget=200 * MiB, config=no_hold, probe=probe, clock=fake_clock) as m:
        yield m
