"""The tracemalloc leak finder (off by default; stops only what it started)."""

from __future__ import annotations

import tracemalloc

import pytest

from aimax.errors import ConfigurationError, MemoryManagerError
from aimax.memory import FakeProbe, LeakFinder, MemoryManager

_held: list[bytes] = []


def _leaky_site(n: int) -> None:
    for _ in range(n):
        _held.append(bytes(2000))  # the growing site


def test_top_growth_names_the_growing_line() -> None:
    finder = LeakFinder()
    assert not tracemalloc.is_tracing()
    with finder:
        _leaky_site(200)
        growth = finder.top_growth(limit=5)
        finder.rebase()
        assert all(site.size_diff < 400_000 for site in finder.top_growth(limit=5))
        assert finder.snapshot() is not None
    _held.clear()
    assert not tracemalloc.is_tracing()
    top = growth[0]
    assert top.filename.endswith("test_leaks.py")
    assert top.size_diff >= 200 * 2000
    assert top.count_diff >= 200
    assert top.site.endswith(f":{top.lineno}")


def test_leaves_tracing_started_elsewhere_running() -> None:
    tracemalloc.start()
    try:
        finder = LeakFinder()
        finder.start()
        finder.stop()
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


def test_needs_start_first_and_good_arguments() -> None:
    finder = LeakFinder()
    with pytest.raises(MemoryManagerError):
        finder.top_growth()
    with pytest.raises(MemoryManagerError):
        finder.snapshot()
    with pytest.raises(ConfigurationError):
        LeakFinder(frames=0)
    with finder, pytest.raises(ConfigurationError):
        finder.top_growth(limit=0)


def test_manager_leak_finder_is_off_by_default_and_stopped_by_close() -> None:
    manager = MemoryManager(budget=2**30, probe=FakeProbe())
    assert not manager.leak_finder.tracing
    manager.start_leak_finder()
    _leaky_site(50)
    assert manager.top_growth(limit=3)
    manager.close()
    _held.clear()
    assert not tracemalloc.is_tracing()
