"""Fixtures of the monitor tests: a fake probe, a fake clock, and a thread-leak check."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping

import pytest

from aimax.monitor import ProbeReading


class FakeProbe:
    """A probe whose figures the test sets; ``fail`` makes whole reads raise."""

    def __init__(self, values: Mapping[str, float] | None = None) -> None:
        self.values: dict[str, float] = dict(values or {})
        self.failures: dict[str, str] = {}
        self.fail: BaseException | None = None
        self.reads = 0
        self.lock = threading.Lock()

    def set(self, **values: float) -> None:
        with self.lock:
            self.values.update(values)

    def read(self) -> ProbeReading:
        with self.lock:
            self.reads += 1
            if self.fail is not None:
                raise self.fail
            return ProbeReading(dict(self.values), dict(self.failures))


@pytest.fixture
def fake_probe() -> FakeProbe:
    return FakeProbe({"process_resident_memory_bytes": 100e6, "aimax_process_cpu_ratio": 5.0})


def _aimax_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("aimax-")}


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Every test must stop the threads it started (sampler, HTTP server)."""
    before = _aimax_threads()
    yield
    deadline = time.monotonic() + 10.0
    while (_aimax_threads() - before) and time.monotonic() < deadline:
        time.sleep(0.01)  # a stopped thread may need a moment to be reaped
    left = _aimax_threads() - before
    assert not left, f"threads left behind: {sorted(t.name for t in left)}"
