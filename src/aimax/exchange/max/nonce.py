"""Nonces for MAX private calls: milliseconds, strictly increasing per access key.

MAX accepts a nonce once, and only within 30 s of its own clock. A
:class:`NonceGenerator` hands out ``max(last + 1, now_ms + offset_ms)`` under a lock,
so every thread and every task sharing it gets a distinct, increasing value, and the
server-time ``offset_ms`` (measured with ``GET /api/v3/timestamp``) keeps the values
near the server's clock. Its :class:`SendLane` keeps them in that order on the wire:
the client takes the nonce and signs inside the lane and leaves it once the request is
written, so a server that refuses a nonce not above the last one never sees one.
:func:`nonce_generator_for` returns the process-wide generator of one access key, so
two clients with the same key never collide.

::

    >>> from aimax._clock import FakeClock
    >>> clock = FakeClock(wall_start=1_700_000_000.0)
    >>> nonces = NonceGenerator(wall=clock.time)
    >>> nonces.next(), nonces.next()
    (1700000000000, 1700000000001)
    >>> nonces.set_offset(5_000)
    >>> nonces.next()
    1700000005000
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import deque

from aimax import _clock
from aimax._clock import Clock
from aimax.errors import ConfigurationError

__all__ = ["NonceGenerator", "SendLane", "estimate_offset_ms", "nonce_generator_for"]


class SendLane:
    """A FIFO turn, shared by threads and event loops, from taking a nonce to writing it.

    A private request takes the lane, takes its nonce, signs, and releases the lane once
    its last byte is written (not when the answer comes), so requests of one key reach
    the wire in nonce order while their round trips overlap. Waiters on any event loop
    are woken in arrival order; cancellation while waiting passes the turn on.

    ::

        lane = SendLane()
        await lane.acquire()
        try:
            ...  # nonce, sign, write
        finally:
            lane.release()
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()
        self._turns = 0
        self._waited = 0

    async def acquire(self) -> None:
        """Wait for the lane (FIFO across threads and loops)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._turns += 1
            if not self._busy:
                self._busy = True
                return
            self._waited += 1
            future: asyncio.Future[None] = loop.create_future()
            entry = (loop, future)
            self._waiters.append(entry)
        try:
            await future
        except asyncio.CancelledError:
            with self._lock:
                try:
                    self._waiters.remove(entry)
                    queued = True
                except ValueError:
                    queued = False
            if not queued and future.done() and not future.cancelled():
                self.release()  # the turn reached us as we were cancelled: pass it on
            raise

    def release(self) -> None:
        """End the current turn; the next waiter (on whatever loop) gets the lane."""
        with self._lock:
            while self._waiters:
                loop, future = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(self._hand_over, future)
                except RuntimeError:  # that loop is closed: skip its waiter
                    continue
                return
            self._busy = False

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            self.release()  # its waiter gave up after being picked: next one
        else:
            future.set_result(None)

    @property
    def busy(self) -> bool:
        """Whether a request holds the lane now."""
        with self._lock:
            return self._busy

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"SendLane(busy={self._busy}, waiting={len(self._waiters)}, "
                f"turns={self._turns}, waited={self._waited})"
            )


class NonceGenerator:
    """Thread-safe strictly increasing millisecond nonces, corrected by a server offset."""

    def __init__(self, *, wall: Clock = _clock.wall, offset_ms: int = 0) -> None:
        self._wall = wall
        self._lock = threading.Lock()
        self._last = 0
        self._offset_ms = int(offset_ms)
        self._issued = 0
        self.lane = SendLane()
        """The send lane of this key: hold it from :meth:`next` until the request is
        written, and nonces reach the server in the order they were issued."""

    def next(self) -> int:
        """The next nonce: never equal to or below any value handed out before."""
        now_ms = int(self._wall() * 1000)
        with self._lock:
            value = max(self._last + 1, now_ms + self._offset_ms)
            self._last = value
            self._issued += 1
            return value

    def set_offset(self, offset_ms: int) -> None:
        """Use ``offset_ms`` (server minus local clock) from now on.

        A negative correction never makes nonces go down: values stay strictly
        increasing and simply catch up with the corrected clock.
        """
        if isinstance(offset_ms, bool) or not isinstance(offset_ms, int):
            raise ConfigurationError(f"offset_ms must be an integer, got {offset_ms!r}")
        with self._lock:
            self._offset_ms = offset_ms

    @property
    def offset_ms(self) -> int:
        """Server clock minus local clock, in milliseconds, as last measured."""
        with self._lock:
            return self._offset_ms

    @property
    def last(self) -> int:
        """The last nonce handed out (0 before the first)."""
        with self._lock:
            return self._last

    @property
    def issued(self) -> int:
        """How many nonces were handed out."""
        with self._lock:
            return self._issued

    def __repr__(self) -> str:
        return f"NonceGenerator(last={self.last}, offset_ms={self.offset_ms}, issued={self.issued})"


def estimate_offset_ms(server_seconds: float, sent_at: float, received_at: float) -> int:
    """Server-minus-local offset in ms from one ``/api/v3/timestamp`` round trip.

    ``sent_at`` and ``received_at`` are local Unix seconds around the call. The server
    reports whole seconds, so its clock was somewhere in ``[s, s + 1)`` when it
    answered: take the middle of that second against the middle of the round trip.

        >>> estimate_offset_ms(1000, sent_at=990.2, received_at=990.4)
        10200
    """
    server_ms = server_seconds * 1000.0
    if float(server_seconds).is_integer():
        server_ms += 500.0
    local_ms = (sent_at + received_at) / 2.0 * 1000.0
    return round(server_ms - local_ms)


_registry_lock = threading.Lock()
_registry: dict[str, NonceGenerator] = {}


def nonce_generator_for(access_key: str) -> NonceGenerator:
    """The process-wide generator for ``access_key`` (created on first use).

    The key is stored only as a SHA-256 digest.
    """
    digest = hashlib.sha256(access_key.encode("utf-8")).hexdigest()
    with _registry_lock:
        generator = _registry.get(digest)
        if generator is None:
            generator = _registry[digest] = NonceGenerator()
        return generator
