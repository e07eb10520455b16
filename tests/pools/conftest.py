"""Fixtures of the pool tests: no worker thread may outlive its test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest


class Gate:
    """Tasks that park until released, counting how many run at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.started = 0
        self.order: list[int] = []

    def task(self, value: int = 0) -> int:
        with self._lock:
            self.running += 1
            self.started += 1
            self.peak = max(self.peak, self.running)
            self.order.append(value)
        try:
            if not self.release.wait(30.0):
                raise TimeoutError("gate never opened")
            return value
        finally:
            with self._lock:
                self.running -= 1

    def counted(self, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            with self._lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
            try:
                fn()
            finally:
                with self._lock:
                    self.running -= 1

        return run


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` until true or ``timeout`` (synchronisation, not a timing check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


def aimax_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("aimax-pool")]


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    """Every test shuts its pools down: afterwards no aimax worker thread is alive."""
    yield
    assert wait_until(lambda: not aimax_threads(), timeout=20.0), aimax_threads()


@pytest.fixture
def gate() -> Iterator[Gate]:
    """A Gate that is opened at teardown, so parked tasks never outlive the test."""
    g = Gate()
    try:
        yield g
    finally:
        g.release.set()


@pytest.fixture
def until() -> Callable[..., bool]:
    """The ``wait_until`` helper, as a fixture."""
    return wait_until


@pytest.fixture
def new_gate() -> Iterator[Callable[[], Gate]]:
    """A factory of Gates, all opened at teardown."""
    made: list[Gate] = []

    def make() -> Gate:
        made.append(Gate())
        return made[-1]

    try:
        yield make
    finally:
        for g in made:
            g.release.set()
