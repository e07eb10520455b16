"""SIGINT and SIGTERM turned into a request to stop the run, so the demo ends the
workload, writes the report for what ran and exits with 130 / 143.

The first signal asks the run to stop; a second SIGINT (an impatient Ctrl-C) forces
it with ``KeyboardInterrupt`` (``finally`` blocks still stop servers and children).
Nothing is installed until :meth:`StopRequest.handling_signals` is entered, and the
previous handlers come back when it is left.

    >>> stop = StopRequest()
    >>> stop.requested, stop.exit_code
    (False, 0)
    >>> stop.request(15)
    >>> stop.requested, stop.exit_code
    (True, 143)
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["StopRequest"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """A one-shot "please stop" that signal handlers, threads and loops can share."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        self.signum: int | None = None
        """The signal that asked for the stop (``None``: not asked, or asked in code)."""

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self._event.is_set()

    @property
    def exit_code(self) -> int:
        """128 + the signal number once a signal asked for the stop, else 0."""
        return 0 if self.signum is None else 128 + self.signum

    @property
    def signal_name(self) -> str | None:
        """``"SIGINT"`` / ``"SIGTERM"`` once a signal asked for the stop."""
        return None if self.signum is None else signal.Signals(self.signum).name

    def request(self, signum: int | None = None) -> None:
        """Ask for the stop (idempotent: the first caller's signal is kept)."""
        with self._lock:
            if self._event.is_set():
                return
            self.signum = signum
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def on_request(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (no arguments) when the stop is asked for, at once if it
        already was; returns a function that unregisters it."""
        with self._lock:
            already = self._event.is_set()
            if not already:
                self._callbacks.append(callback)
        if already:
            callback()

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return remove

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the stop is asked for or ``timeout`` passes; True if asked."""
        return self._event.wait(timeout)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        self.request(signum)

    @contextlib.contextmanager
    def handling_signals(self) -> Iterator[StopRequest]:
        """Route SIGINT and SIGTERM to :meth:`request` inside the block (main thread
        only; elsewhere the block runs without handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in _SIGNALS}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __repr__(self) -> str:
        state = f"requested by {self.signal_name or 'code'}" if self.requested else "not requested"
        return f"StopRequest({state})"
