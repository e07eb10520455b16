"""A resizable thread pool with a bounded queue, a rejection policy and statistics.

Written from scratch rather than around :class:`concurrent.futures.ThreadPoolExecutor`
(which never shrinks and queues without bound), but it hands out ordinary
:class:`concurrent.futures.Future` objects (instances of a subclass that only tells
the pool when one is cancelled), so ``result()``, ``add_done_callback``,
``concurrent.futures.wait`` and ``asyncio.wrap_future`` all work as usual.

    >>> from aimax.pools import PoolConfig, ResizablePool
    >>> with ResizablePool("demo", PoolConfig(max_size=4)) as pool:
    ...     pool.submit(pow, 2, 10).result()
    1024

A submit is one lock, one tuple and one put on a ``SimpleQueue``. A worker takes the
pool's lock when a task starts (to count it active) and when it ends, to count it
and record its queue wait and run time in the pool's two log-linear histograms.
Every counter lives under that one lock; percentiles are computed when read.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from aimax.errors import ConfigurationError, PoolClosed, PoolFull
from aimax.pools._histogram import LogLinearHistogram
from aimax.pools.config import PoolConfig
from aimax.pools.policies import Reject, RunInCaller, Wait
from aimax.pools.stats import LatencySummary, PoolShutdown, PoolStatistics, TaskRef

__all__ = ["ResizablePool"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_PENDING = "PENDING"

# (future, fn, args, kwargs, submitted at [ns]); None is a wake-up sentinel.
_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any], int]

_live_pools: weakref.WeakSet[ResizablePool] = weakref.WeakSet()
_atexit_registered = False
_atexit_lock = threading.Lock()


def _shutdown_at_exit() -> None:
    for pool in list(_live_pools):
        with contextlib.suppress(Exception):  # never let one pool stop the others' exit
            pool.shutdown(wait=False, drain=False)


def _register_pool(pool: ResizablePool) -> None:
    global _atexit_registered  # noqa: PLW0603 - one process-wide exit hook, registered once
    with _atexit_lock:
        _live_pools.add(pool)
        if not _atexit_registered:
            atexit.register(_shutdown_at_exit)
            _atexit_registered = True


def _task_name(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None:
        inner = getattr(fn, "func", None)  # functools.partial
        if inner is not None:
            return f"partial({_task_name(inner)})"
        return type(fn).__name__
    return str(name)


class _PoolFuture(Future[Any]):
    """A standard Future that tells its pool when it is cancelled while pending."""

    _aimax_pool: ResizablePool
    _aimax_marked = False  # set on the instance by the one cancel() call that counts

    def cancel(self) -> bool:
        with self._condition:
            mine = self._state == _PENDING and not self._aimax_marked
            if mine:
                self._aimax_marked = True
        # outside the lock, so done-callbacks never run while we hold it
        cancelled = super().cancel()
        if mine and cancelled:
            self._aimax_pool._note_cancel()
        return cancelled


class _Worker:
    """One worker thread and the task it runs now (``current``, set under the pool's lock)."""

    __slots__ = ("current", "thread")

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.current: _Item | None = None


class _Expired:
    """Marker: an idle worker's keep-alive ran out."""


_EXPIRED = _Expired()


class ResizablePool:
    """A named thread pool whose size can change at run time.

    ``resize(n)`` takes effect at once when growing (workers start for the backlog
    right away; later submits start more up to ``n``) and as soon as workers go idle
    when shrinking (a running task is never interrupted). Idle workers above
    ``min_size`` retire after ``keep_alive`` seconds. The queue holds at most
    ``queue_size`` tasks; beyond that the pool's policy decides (block, reject,
    caller-runs).

        >>> from aimax.pools import PoolConfig, ResizablePool
        >>> pool = ResizablePool("io", PoolConfig(max_size=8, size=2))
        >>> pool.resize(6)
        >>> [f.result() for f in [pool.submit(abs, -i) for i in range(3)]]
        [0, 1, 2]
        >>> pool.statistics().completed
        3
        >>> pool.shutdown().clean
        True
    """

    def __init__(
        self,
        name: str,
        config: PoolConfig | None = None,
        *,
        clock_ns: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"pool name must be a non-empty string, got {name!r}")
        config = PoolConfig() if config is None else config
        if not isinstance(config, PoolConfig):
            raise ConfigurationError(f"config must be a PoolConfig, got {config!r}")
        self._name = name
        self._config = config
        self._policy = config.rejection_policy
        self._min = config.min_size
        self._max = config.max_size
        self._capacity = config.queue_size
        self._keep_alive = config.keep_alive_seconds
        self._prefix = config.thread_name_prefix or f"aimax-pool-{name}"
        if not callable(clock_ns):
            raise ConfigurationError(f"clock_ns must be callable, got {clock_ns!r}")
        self._now_ns = clock_ns

        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._queue: SimpleQueue[_Item | None] = SimpleQueue()
        self._put = self._queue.put
        self._qsize = self._queue.qsize

        self._target = config.initial_size
        self._size = 0  # live workers, including ones being started
        self._peak = 0
        # one entry per worker blocked in queue.get: deque append/pop are atomic, so
        # going idle and waking cost no lock
        self._idle: deque[None] = deque()
        self._ghosts = 0  # entries in the queue that are not waiting tasks
        self._sentinels = 0  # of which wake-up sentinels (None)
        self._blocked = 0  # submitters waiting for room (threads and coroutines)
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._workers: set[_Worker] = set()
        self._threads: set[threading.Thread] = set()
        self._serial = 0

        # every counter and both histograms are guarded by the lock
        self._submitted = 0
        self._rejected = 0
        self._cancelled = 0
        self._caller_runs = 0
        self._active = 0  # running now, in a worker or in a caller
        self._completed = 0
        self._failed = 0
        self._wait_hist = LogLinearHistogram()
        self._run_hist = LogLinearHistogram()

        self._future_cls: type[Future[Any]] = type(
            f"{type(self).__name__}Future", (_PoolFuture,), {"_aimax_pool": self}
        )
        _register_pool(self)

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        """The pool's name."""
        return self._name

    @property
    def config(self) -> PoolConfig:
        """The pool's (frozen) configuration."""
        return self._config

    @property
    def size(self) -> int:
        """Live worker threads."""
        return self._size

    @property
    def target(self) -> int:
        """The size the pool is steering to (set by ``resize``)."""
        return self._target

    @property
    def idle(self) -> int:
        """Workers waiting for a task."""
        return len(self._idle)

    @property
    def closed(self) -> bool:
        """True once ``shutdown`` was called."""
        return self._closed

    # ---------------------------------------------------------------------- submit

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)``; return its :class:`~concurrent.futures.Future`.

        Raises :class:`~aimax.errors.PoolClosed` after shutdown and, when the queue is
        full, follows the pool's policy (:class:`~aimax.errors.PoolFull` on reject or
        on a block that timed out; under caller-runs the returned future is done).
        """
        future: Future[T] = self._future_cls()
        item = (future, fn, args, kwargs, self._now_ns())
        spawn = caller = False
        with self._lock:
            if self._closed:
                raise PoolClosed(f"pool {self._name} is shut down", pool=self._name)
            self._submitted += 1
            if self._qsize() - self._ghosts < self._capacity:
                self._put(item)
                if len(self._idle) < self._qsize() and self._size < self._target:
                    spawn = self._reserve_worker_locked()
            else:
                verdict = self._policy.on_full(self._name, self._qsize() - self._ghosts)
                if isinstance(verdict, Wait):
                    spawn = self._wait_and_put_locked(item, verdict.timeout)
                elif isinstance(verdict, RunInCaller):
                    self._caller_runs += 1
                    self._active += 1
                    caller = True
                else:
                    self._rejected += 1
                    reason = verdict.reason if isinstance(verdict, Reject) else str(verdict)
                    raise PoolFull(reason, pool=self._name)
        if spawn:
            self._start_worker()
        elif caller:
            self._run_in_caller(item)
        return future

    def _wait_and_put_locked(self, item: _Item, timeout: float | None) -> bool:
        """Block (lock held) until there is room, then enqueue; return "spawn a worker"."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._blocked += 1
        try:
            while self._qsize() - self._ghosts >= self._capacity and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._rejected += 1
                    raise PoolFull(
                        f"queue of pool {self._name} still full after waiting {timeout} s "
                        f"({self._qsize() - self._ghosts} queued)",
                        pool=self._name,
                    )
                self._space.wait(remaining)
        finally:
            self._blocked -= 1
        if self._closed:
            self._rejected += 1
            raise PoolClosed(
                f"pool {self._name} was shut down while waiting for room", pool=self._name
            )
        self._put(item)
        if len(self._idle) < self._qsize() and self._size < self._target:
            return self._reserve_worker_locked()
        return False

    def _run_in_caller(self, item: _Item) -> None:
        future, fn, args, kwargs, submitted = item
        start = self._now_ns()
        running = future.set_running_or_notify_cancel()
        result: Any = None
        error: BaseException | None = None
        if running:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                error = exc
        self._finished(submitted, start, self._now_ns(), failed=error is not None)
        if error is not None:
            future.set_exception(error)
        elif running:
            future.set_result(result)

    def _finished(
        self, submitted: int, start: int, end: int, *, failed: bool, worker: _Worker | None = None
    ) -> None:
        """Count a task that ran and record its two durations (before its future completes)."""
        with self._lock:
            if worker is not None:
                worker.current = None
            self._active -= 1
            if failed:
                self._failed += 1
            else:
                self._completed += 1
            self._wait_hist.record(start - submitted)
            self._run_hist.record(end - start)

    async def submit_async(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Like :meth:`submit`, but waits for room without blocking the event loop.

        A full queue under "block" (with its timeout) or "caller_runs" makes the
        coroutine wait for room (running the task on the loop would block it);
        "reject" raises :class:`~aimax.errors.PoolFull`.
        """
        future: Future[T] = self._future_cls()
        item = (future, fn, args, kwargs, self._now_ns())
        loop = asyncio.get_running_loop()
        counted = False
        deadline: float | None = None
        while True:
            spawn = False
            with self._lock:
                if self._closed:
                    if counted:
                        self._rejected += 1
                    raise PoolClosed(f"pool {self._name} is shut down", pool=self._name)
                if not counted:
                    self._submitted += 1
                    counted = True
                if self._qsize() - self._ghosts < self._capacity:
                    self._put(item)
                    if len(self._idle) < self._qsize() and self._size < self._target:
                        spawn = self._reserve_worker_locked()
                    waiter = None
                else:
                    verdict = self._policy.on_full(self._name, self._qsize() - self._ghosts)
                    if isinstance(verdict, Reject):
                        self._rejected += 1
                        raise PoolFull(verdict.reason, pool=self._name)
                    timeout = verdict.timeout if isinstance(verdict, Wait) else None
                    if deadline is None and timeout is not None:
                        deadline = loop.time() + timeout
                    if deadline is not None and loop.time() >= deadline:
                        self._rejected += 1
                        raise PoolFull(
                            f"queue of pool {self._name} still full after waiting {timeout} s",
                            pool=self._name,
                        )
                    waiter = loop.create_future()
                    self._async_waiters.append((loop, waiter))
                    self._blocked += 1
            if spawn:
                self._start_worker()
            if waiter is None:
                return future
            try:
                remaining = None if deadline is None else max(0.0, deadline - loop.time())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), remaining)
            except asyncio.CancelledError:
                with self._lock:
                    self._cancelled += 1  # counted as submitted: the caller gave up on it
                raise
            finally:
                with self._lock, contextlib.suppress(ValueError):
                    self._async_waiters.remove((loop, waiter))
                    self._blocked -= 1

    # --------------------------------------------------------------------- workers

    def _reserve_worker_locked(self) -> bool:
        self._size += 1
        self._peak = max(self._peak, self._size)
        return True

    def _start_worker(self) -> None:
        worker = _Worker()
        with self._lock:
            self._serial += 1
            serial = self._serial
            self._workers.add(worker)
            self._threads = {t for t in self._threads if t.is_alive()}
        thread = threading.Thread(
            target=self._work, args=(worker,), name=f"{self._prefix}-{serial}", daemon=True
        )
        worker.thread = thread
        with self._lock:
            self._threads.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._retire_locked(worker)
                self._threads.discard(thread)
            raise

    def _retire_locked(self, worker: _Worker) -> None:
        self._size -= 1
        self._workers.discard(worker)

    def _wake_locked(self, workers: int) -> None:
        """Make sure ``workers`` wake-up sentinels are in the queue (lock held)."""
        for _ in range(workers - self._sentinels):
            self._sentinels += 1
            self._ghosts += 1
            self._put(None)

    def _wake_space_waiter(self) -> None:
        with self._lock:
            waiters = self._take_space_waiters_locked()
        _release(waiters)

    def _take_space_waiters_locked(
        self,
    ) -> list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]:
        """Wake one blocked thread; hand back the coroutines waiting for room (lock held)."""
        self._space.notify()
        waiters, self._async_waiters = self._async_waiters, []
        self._blocked -= len(waiters)
        return waiters

    def _work(self, w: _Worker) -> None:
        lock = self._lock
        idle = self._idle
        item: _Item | _Expired | None
        try:
            while True:
                if self._size > self._target:  # a hint, checked again under the lock
                    with lock:
                        if self._size <= self._target:
                            continue
                        self._retire_locked(w)
                        self._wake_locked(min(len(idle), self._size - self._target))
                        return
                if self._queue.qsize() > 0:  # work waiting: take it without going idle
                    try:
                        item = self._queue.get(False)
                    except Empty:
                        continue
                    self._handle(w, item)
                    continue
                # count myself idle first, then look at `closed`: a shutdown sets
                # `closed` first, then wakes every idle worker it counts
                idle.append(None)
                if self._closed and self._queue.empty():
                    idle.pop()
                    with lock:
                        if self._qsize() - self._ghosts > 0:
                            continue  # tasks arrived just before the close: run them
                        self._retire_locked(w)
                        self._wake_locked(len(idle))  # it may have taken their sentinel
                    return
                try:
                    item = self._queue.get(True, self._keep_alive)
                except Empty:
                    item = _EXPIRED
                idle.pop()
                if item is _EXPIRED:
                    with lock:
                        if self._size > self._min and self._qsize() - self._ghosts <= 0:
                            self._retire_locked(w)
                            return
                    continue
                assert not isinstance(item, _Expired)
                self._handle(w, item)
                item = None
        except BaseException:  # pragma: no cover - only if the bookkeeping itself breaks
            log.exception("worker of pool %s died", self._name)
            with lock:
                if w in self._workers:
                    self._retire_locked(w)
            raise

    def _handle(self, w: _Worker, item: _Item | None) -> None:
        """Run a task taken from the queue, or consume a wake-up sentinel (``None``)."""
        if item is None:  # a wake-up sentinel: the loop re-checks shrink / shutdown
            with self._lock:
                self._ghosts -= 1
                self._sentinels -= 1
            return
        self._run_task(w, item)

    def _run_task(self, w: _Worker, item: _Item) -> None:
        """Run one task taken from the queue and count it (a cancelled one is a ghost)."""
        future, fn, args, kwargs, submitted = item
        if not future.set_running_or_notify_cancel():
            with self._lock:
                self._ghosts -= 1  # it was counted as cancelled when cancelled
            return
        start = self._now_ns()
        with self._lock:
            self._active += 1
            w.current = item
            waiters = self._take_space_waiters_locked() if self._blocked else []
        _release(waiters)  # a slot in the queue just freed up
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            # counted before its future completes: whoever sees the result sees the count
            self._finished(submitted, start, self._now_ns(), failed=True, worker=w)
            future.set_exception(exc)
            del exc
        else:
            self._finished(submitted, start, self._now_ns(), failed=False, worker=w)
            future.set_result(result)

    def _note_cancel(self) -> None:
        """A pending future of this pool was cancelled (it stays in the queue as a ghost)."""
        with self._lock:
            self._cancelled += 1
            self._ghosts += 1
        if self._blocked:
            self._wake_space_waiter()

    # ---------------------------------------------------------------------- resize

    def resize(self, size: int) -> None:
        """Set the target number of workers (``max(min_size, 1) <= size <= max_size``).

        Growing starts workers for the current backlog at once; shrinking retires idle
        workers at once and busy ones as soon as their current task returns.
        """
        low = max(self._min, 1)
        if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= self._max:
            raise ConfigurationError(
                f"size of pool {self._name} must be an integer in [{low}, {self._max}], "
                f"got {size!r}"
            )
        spawn = 0
        with self._lock:
            if self._closed:
                raise PoolClosed(f"pool {self._name} is shut down", pool=self._name)
            self._target = size
            if size > self._size:
                backlog = self._qsize() - self._ghosts - len(self._idle)
                spawn = max(0, min(size - self._size, backlog))
                for _ in range(spawn):
                    self._reserve_worker_locked()
            elif size < self._size:
                self._wake_locked(min(len(self._idle), self._size - size))
        for _ in range(spawn):
            self._start_worker()

    # ------------------------------------------------------------------ statistics

    def statistics(self) -> PoolStatistics:
        """A frozen snapshot of the pool's counts, sizes and latency distributions.

        The counts are read under the pool's lock; the percentiles are computed from
        the two histograms now.
        """
        with self._lock:
            queue_wait = LatencySummary.of(self._wait_hist)
            run_time = LatencySummary.of(self._run_hist)
            return PoolStatistics(
                name=self._name,
                submitted=self._submitted,
                completed=self._completed,
                failed=self._failed,
                cancelled=self._cancelled,
                rejected=self._rejected,
                caller_runs=self._caller_runs,
                active=self._active,
                queued=max(0, self._qsize() - self._ghosts),
                size=self._size,
                target=self._target,
                min_size=self._min,
                max_size=self._max,
                peak_size=self._peak,
                queue_capacity=self._capacity,
                policy=self._policy.name,
                closed=self._closed,
                queue_wait=queue_wait,
                run_time=run_time,
            )

    # -------------------------------------------------------------------- shutdown

    def shutdown(
        self,
        wait: bool = True,
        timeout: float | None = None,
        *,
        drain: bool | None = None,
    ) -> PoolShutdown:
        """Stop accepting tasks; run (``drain``) or cancel what is queued; report.

        ``drain`` defaults to ``wait``. With ``wait`` the call joins the workers, up to
        ``timeout`` seconds: queued tasks still waiting then are cancelled and named in
        the report, as are tasks still running (a thread cannot be interrupted; its
        worker exits when the task returns). Idempotent: a second call reports only
        what it did itself.
        """
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or math.isnan(timeout)
            or timeout < 0
        ):
            raise ConfigurationError(f"timeout must be None or seconds >= 0, got {timeout!r}")
        drain = wait if drain is None else drain
        deadline = None if timeout is None else time.monotonic() + timeout
        started = self._begin_shutdown(drain=drain)
        return self._finish_shutdown(started, wait=wait, deadline=deadline)

    def _begin_shutdown(self, *, drain: bool) -> tuple[bool, int, list[TaskRef]]:
        """Close to new tasks, wake everyone; cancel the queue unless draining."""
        before = self._finished_count()
        with self._lock:
            already = self._closed
            self._closed = True
            self._space.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
            self._blocked -= len(waiters)
            self._wake_locked(len(self._idle))
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_set_done, waiter)
        _live_pools.discard(self)
        cancelled = [] if drain else self._cancel_queued()
        return already, before, cancelled

    def _finish_shutdown(
        self, started: tuple[bool, int, list[TaskRef]], *, wait: bool, deadline: float | None
    ) -> PoolShutdown:
        """Join the workers by ``deadline`` (when ``wait``), cancel leftovers, report."""
        already, before, cancelled = started
        timed_out = False
        if wait:
            timed_out = not self._join(deadline)
            if timed_out:
                cancelled += self._cancel_queued()
                self._join(time.monotonic() + 0.05)  # let idle workers see the empty queue
        with self._lock:
            running = [w.current for w in self._workers if w.current is not None]
            threads = sum(
                1 for t in self._threads if t.is_alive() and t is not threading.current_thread()
            )
            queued = max(0, self._qsize() - self._ghosts)
        report = PoolShutdown(
            pool=self._name,
            drained=self._finished_count() - before,
            cancelled=tuple(cancelled),
            still_running=tuple(TaskRef(self._name, _task_name(i[1]), i[0]) for i in running),
            still_queued=queued,
            threads_alive=threads,
            timed_out=timed_out,
            already_closed=already,
        )
        if cancelled or running:
            log.warning(
                "pool %s shut down with %d task(s) cancelled and %d still running",
                self._name,
                len(cancelled),
                len(running),
            )
        return report

    def _finished_count(self) -> int:
        with self._lock:
            return self._completed + self._failed

    def _cancel_queued(self) -> list[TaskRef]:
        refs: list[TaskRef] = []
        took_sentinels = False
        while True:
            try:
                item = self._queue.get(False)
            except Empty:
                break
            if item is None:
                with self._lock:
                    self._ghosts -= 1
                    self._sentinels -= 1
                took_sentinels = True
                continue
            future = item[0]
            by_owner = future.cancelled()  # cancelled earlier by its owner: counted then
            future.cancel()  # nobody else holds it now, so this always succeeds
            with self._lock:
                self._ghosts -= 1  # cancel() made it a ghost (or it already was one)
            if not by_owner:
                refs.append(TaskRef(self._name, _task_name(item[1]), future))
        if took_sentinels:
            with self._lock:
                self._wake_locked(len(self._idle))  # those sentinels were meant for someone
        return refs

    def _join(self, deadline: float | None) -> bool:
        """Join every worker thread by ``deadline``; True when none is left alive."""
        me = threading.current_thread()
        while True:
            with self._lock:
                threads = [t for t in self._threads if t.is_alive() and t is not me]
            if not threads:
                return True
            for thread in threads:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                thread.join(remaining)

    def close(self) -> None:
        """Shut down, draining the queue and joining the workers (idempotent)."""
        self.shutdown(wait=True)

    def __enter__(self) -> ResizablePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True)

    def __repr__(self) -> str:
        return (
            f"<ResizablePool {self._name!r} size={self._size} target={self._target} "
            f"[{self._min}..{self._max}] queued={max(0, self._qsize() - self._ghosts)}"
            f"/{self._capacity} policy={self._policy.name}"
            f"{' closed' if self._closed else ''}>"
        )


def _set_done(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _release(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
    """Wake coroutines that waited for room in the queue (outside the pool's lock)."""
    for loop, waiter in waiters:
        with contextlib.suppress(RuntimeError):  # that loop is closed: its waiter is gone
            loop.call_soon_threadsafe(_set_done, waiter)
