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

The hot path is kept as lean as the standard executor's: a submit is one lock, one
tuple and one put on a C ``SimpleQueue``; a worker keeps its own counters and a list
of packed latency buckets (written by it alone), and touches the shared lock only
when it goes idle, retires, or every few hundred tasks to fold that list into the
pool's histograms. Reading statistics folds what is left (counted in C), and the
histograms keep their percentiles up to date, so a monitor polling every second
pays for what happened since its last look, not for the pool's size or age.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
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
from typing import Any, NamedTuple, ParamSpec, TypeVar

from aimax._metrics import MetricKind, MetricSample, sample_key, samples_of
from aimax.errors import ConfigurationError, PoolClosed, PoolFull
from aimax.pools import _histogram
from aimax.pools.config import PoolConfig
from aimax.pools.policies import Reject, RunInCaller, Wait
from aimax.pools.stats import LatencySummary, PoolShutdown, PoolStatistics, TaskRef

__all__ = ["PoolCounters", "ResizablePool"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_now_ns = time.perf_counter_ns
_FOLD = 256  # a worker folds its packed latency buckets into the pool's every _FOLD tasks
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
    """One worker's own counters: written by its thread only, read by statistics."""

    __slots__ = (
        "completed",
        "current",
        "failed",
        "pending",
        "run_ns",
        "thread",
        "wait_ns",
    )

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.current: _Item | None = None
        self.completed = 0
        self.failed = 0
        self.wait_ns = 0
        self.run_ns = 0
        # (wait bucket << PACK_BITS | run bucket) per finished task, until folded into
        # the pool's histograms (by this worker every _FOLD tasks, or by a reader)
        self.pending: list[int] = []


class PoolCounters:
    """Cumulative scalar counters of a pool, cheap to read (for the autoscaler)."""

    __slots__ = ("active", "failed", "finished", "queued", "run_seconds", "size", "submitted")

    def __init__(
        self,
        *,
        submitted: int,
        finished: int,
        failed: int,
        run_seconds: float,
        queued: int,
        active: int,
        size: int,
    ) -> None:
        self.submitted = submitted
        self.finished = finished
        self.failed = failed
        self.run_seconds = run_seconds
        self.queued = queued
        self.active = active
        self.size = size


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

    def __init__(self, name: str, config: PoolConfig | None = None) -> None:
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

        # counters guarded by the lock
        self._submitted = 0
        self._rejected = 0
        self._cancelled = 0
        self._caller_runs = 0
        self._caller_active = 0
        # folded from retired workers and caller-run tasks, guarded by the lock
        self._done = _Worker()
        # every task's latency buckets once folded from the workers, guarded by the lock
        self._wait_hist = _histogram.Histogram()
        self._run_hist = _histogram.Histogram()

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
        item = (future, fn, args, kwargs, _now_ns())
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
                    self._caller_active += 1
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
        start = _now_ns()
        running = future.set_running_or_notify_cancel()
        result: Any = None
        error: BaseException | None = None
        if running:
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                error = exc
        end = _now_ns()
        done = self._done
        with self._lock:  # counted before the future completes, as on the workers
            self._caller_active -= 1
            if error is not None:
                done.failed += 1
            else:
                done.completed += 1
            done.wait_ns += start - submitted
            done.run_ns += end - start
            self._wait_hist.add(_histogram.bucket(start - submitted))
            self._run_hist.add(_histogram.bucket(end - start))
        if error is not None:
            future.set_exception(error)
        elif running:
            future.set_result(result)

    async def submit_async(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Like :meth:`submit`, but waits for room without blocking the event loop.

        A full queue under "block" (with its timeout) or "caller_runs" makes the
        coroutine wait for room (running the task on the loop would block it);
        "reject" raises :class:`~aimax.errors.PoolFull`.
        """
        future: Future[T] = self._future_cls()
        item = (future, fn, args, kwargs, _now_ns())
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
        done = self._done
        done.completed += worker.completed
        done.failed += worker.failed
        done.wait_ns += worker.wait_ns
        done.run_ns += worker.run_ns
        self._fold_locked(worker)

    def _fold_locked(self, worker: _Worker) -> None:
        """Move a worker's pending latency buckets into the pool's histograms."""
        _histogram.drain(worker.pending, self._wait_hist, self._run_hist)

    def _fold(self, worker: _Worker) -> None:
        with self._lock:
            self._fold_locked(worker)

    def _wake_locked(self, workers: int) -> None:
        """Make sure ``workers`` wake-up sentinels are in the queue (lock held)."""
        for _ in range(workers - self._sentinels):
            self._sentinels += 1
            self._ghosts += 1
            self._put(None)

    def _wake_space_waiter(self) -> None:
        with self._lock:
            self._space.notify()
            waiters, self._async_waiters = self._async_waiters, []
            self._blocked -= len(waiters)
        for loop, waiter in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its waiter is gone
                loop.call_soon_threadsafe(_set_done, waiter)

    def _work(self, w: _Worker) -> None:
        lock = self._lock
        get = self._queue.get
        qsize = self._qsize
        now = _now_ns
        keep_alive = self._keep_alive
        idle = self._idle
        idle_append = idle.append
        idle_pop = idle.pop
        pending = w.pending
        pending_append = pending.append
        item: _Item | _Expired | None
        try:
            while True:
                if self._size > self._target:
                    with lock:
                        if self._size > self._target:
                            self._retire_locked(w)
                            self._wake_locked(min(len(idle), self._size - self._target))
                            return
                if qsize() > 0:
                    try:
                        item = get(False)
                    except Empty:
                        continue
                else:
                    # count myself idle first, then look at `closed`: a shutdown sets
                    # `closed` first, then wakes every idle worker it counts
                    idle_append(None)
                    if self._closed:
                        idle_pop()
                        with lock:
                            if self._qsize() - self._ghosts > 0:
                                continue  # tasks arrived just before the close: run them
                            self._retire_locked(w)
                            self._wake_locked(len(idle))  # it may have taken their sentinel
                        return
                    try:
                        item = get(True, keep_alive)
                    except Empty:
                        item = _EXPIRED
                    idle_pop()
                    if item is _EXPIRED:
                        with lock:
                            if self._size > self._min and self._qsize() - self._ghosts <= 0:
                                self._retire_locked(w)
                                return
                        continue
                if item is None:  # a wake-up sentinel: re-check shrink / shutdown
                    with lock:
                        self._ghosts -= 1
                        self._sentinels -= 1
                    continue
                if self._blocked:
                    self._wake_space_waiter()
                future = item[0]  # type: ignore[index]
                w.current = item  # type: ignore[assignment]
                if not future.set_running_or_notify_cancel():
                    with lock:
                        self._ghosts -= 1  # it was counted as cancelled when cancelled
                    w.current = item = future = None
                    continue
                _, fn, args, kwargs, submitted = item  # type: ignore[misc]
                start = now()
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    end = now()
                    error: BaseException | None = exc
                else:
                    end = now()
                    error = None
                # the task is counted before its future completes: whoever sees the
                # result also sees it in the statistics
                # _histogram.pack(wait, run), inlined: the buckets of both durations
                ns = start - submitted
                w.wait_ns += ns
                if ns < 32:
                    packed = max(ns, 0) << 10
                else:
                    bits = ns.bit_length()
                    packed = ((bits << 4) | ((ns >> (bits - 5)) & 15) if bits <= 48 else 783) << 10
                ns = end - start
                w.run_ns += ns
                if ns < 32:
                    packed |= max(ns, 0)
                else:
                    bits = ns.bit_length()
                    packed |= (bits << 4) | ((ns >> (bits - 5)) & 15) if bits <= 48 else 783
                pending_append(packed)
                if len(pending) >= _FOLD:
                    self._fold(w)
                if error is None:
                    w.completed += 1
                    w.current = item = fn = args = kwargs = None
                    future.set_result(result)
                else:
                    w.failed += 1
                    w.current = item = fn = args = kwargs = None
                    future.set_exception(error)
                result = error = future = None
        except BaseException:  # pragma: no cover - only if the bookkeeping itself breaks
            log.exception("worker of pool %s died", self._name)
            with lock:
                if w in self._workers:
                    self._retire_locked(w)
            raise

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

    def counters(self) -> PoolCounters:
        """Cumulative scalar counters (no percentiles): cheap enough to poll often."""
        with self._lock:
            workers = list(self._workers)
            done = self._done
            finished = done.completed + done.failed
            failed = done.failed
            run_ns = done.run_ns
            submitted = self._submitted
            queued = self._qsize() - self._ghosts
            active = self._caller_active
            size = self._size
        for w in workers:
            finished += w.completed + w.failed
            failed += w.failed
            run_ns += w.run_ns
            if w.current is not None:
                active += 1
        return PoolCounters(
            submitted=submitted,
            finished=finished,
            failed=failed,
            run_seconds=run_ns / 1e9,
            queued=max(0, queued),
            active=active,
            size=size,
        )

    def _figures(self) -> _Figures:
        """Every figure of :meth:`statistics`, as plain numbers (cheap to build)."""
        with self._lock:
            workers = list(self._workers)
            _histogram.drain_all([w.pending for w in workers], self._wait_hist, self._run_hist)
            measured = self._wait_hist.total
            wait_pct = self._wait_hist.quantiles()
            run_pct = self._run_hist.quantiles()
            done = self._done
            completed, failed = done.completed, done.failed
            wait_ns, run_ns = done.wait_ns, done.run_ns
            submitted, rejected, cancelled = self._submitted, self._rejected, self._cancelled
            caller_runs, active = self._caller_runs, self._caller_active
            queued = max(0, self._qsize() - self._ghosts)
            size, target, peak, closed = self._size, self._target, self._peak, self._closed
        for w in workers:
            if w.current is not None:
                active += 1
            completed += w.completed
            failed += w.failed
            wait_ns += w.wait_ns
            run_ns += w.run_ns
        return _Figures(
            submitted,
            completed,
            failed,
            cancelled,
            rejected,
            caller_runs,
            active,
            queued,
            size,
            target,
            peak,
            closed,
            measured,
            wait_ns,
            run_ns,
            wait_pct,
            run_pct,
        )

    def statistics(self) -> PoolStatistics:
        """A frozen snapshot of the pool's counts, sizes and latency percentiles."""
        f = self._figures()
        return PoolStatistics(
            name=self._name,
            submitted=f.submitted,
            completed=f.completed,
            failed=f.failed,
            cancelled=f.cancelled,
            rejected=f.rejected,
            caller_runs=f.caller_runs,
            active=f.active,
            queued=f.queued,
            size=f.size,
            target=f.target,
            min_size=self._min,
            max_size=self._max,
            peak_size=f.peak,
            queue_capacity=self._capacity,
            policy=self._policy.name,
            closed=f.closed,
            queue_wait=_summary(f.measured, f.wait_pct, f.wait_ns),
            run_time=_summary(f.measured, f.run_pct, f.run_ns),
        )

    def metric_samples(self) -> list[MetricSample]:
        """This pool's figures under the names the monitor expects."""
        return samples_of(self.metric_values(), _INFO)

    def metric_values(self) -> dict[str, float]:
        """The figures of :meth:`metric_samples` by series key, without sample objects."""
        f = self._figures()
        k = _keys(self._name)
        out = {
            k[0]: float(f.size),
            k[1]: float(f.active),
            k[2]: float(f.queued),
            k[3]: float(f.completed),
            k[4]: float(f.failed),
            k[5]: float(f.rejected),
        }
        if f.measured:  # tasks measured: the same divisions as _summary's
            wait, run = f.wait_pct, f.run_pct
            out[k[6]], out[k[7]], out[k[8]] = wait[0] / 1e9, wait[1] / 1e9, wait[2] / 1e9
            out[k[9]], out[k[10]], out[k[11]] = run[0] / 1e9, run[1] / 1e9, run[2] / 1e9
        return out

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
        before = self.counters().finished
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
            drained=self.counters().finished - before,
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


class _Figures(NamedTuple):
    """Every figure of a pool at one instant, as plain numbers (cheap to build)."""

    submitted: int
    completed: int
    failed: int
    cancelled: int
    rejected: int
    caller_runs: int
    active: int
    queued: int
    size: int
    target: int
    peak: int
    closed: bool
    measured: int  # tasks whose latencies are in the histograms
    wait_ns: int
    run_ns: int
    wait_pct: list[float]  # p50, p95, p99 in ns
    run_pct: list[float]


def _summary(count: int, pct: list[float], total_ns: int) -> LatencySummary:
    if count == 0:
        return LatencySummary.empty()
    p50, p95, p99 = pct
    return LatencySummary(
        count=count, mean=total_ns / count / 1e9, p50=p50 / 1e9, p95=p95 / 1e9, p99=p99 / 1e9
    )


_INFO: dict[str, tuple[MetricKind, str]] = {
    "aimax_pool_size": ("gauge", "live worker threads"),
    "aimax_pool_active": ("gauge", "tasks running"),
    "aimax_pool_queued": ("gauge", "tasks queued"),
    "aimax_pool_completed_total": ("counter", "tasks done"),
    "aimax_pool_failed_total": ("counter", "tasks that raised"),
    "aimax_pool_rejected_total": ("counter", "tasks refused"),
    "aimax_pool_queue_wait_seconds": ("gauge", "time tasks waited in the queue, by quantile"),
    "aimax_pool_run_seconds": ("gauge", "time tasks ran, by quantile"),
}
"""Kind and help of every metric a pool reports (:meth:`ResizablePool.metric_values`)."""
_SCALARS = tuple(_INFO)[:6]
_LATENCIES = tuple(_INFO)[6:]


@functools.lru_cache(maxsize=1024)
def _keys(pool: str) -> tuple[str, ...]:
    """One pool's series keys, in ``metric_values``' order (built once per name)."""
    keys = [sample_key(name, {"pool": pool}) for name in _SCALARS]
    for name in _LATENCIES:
        keys += [sample_key(name, {"pool": pool, "quantile": q}) for q in ("0.5", "0.95", "0.99")]
    return tuple(keys)
