"""ThreadPoolManager: named, isolated pools created on first use, plus the autoscaler.

    >>> from aimax.pools import ThreadPoolManager
    >>> with ThreadPoolManager() as manager:
    ...     manager.submit_task("strategy", sum, [1, 2, 3]).result()
    ...     manager.get_pool_stats("strategy").completed
    6
    1

Each name (``market_data``, ``strategy``, ``orders``, ``io``, ``default``, or any
name given a :class:`~aimax.pools.PoolConfig`) gets its own pool, queue, policy and
statistics, so a flood of market-data requests cannot starve order placement.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from types import MappingProxyType, TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from aimax._clock import Clock, monotonic
from aimax.errors import ConfigurationError, PoolClosed
from aimax.pools.autoscaler import ConcurrencyController, Observation, ScalingDecision
from aimax.pools.config import DEFAULT_POOL_CONFIGS, PoolConfig
from aimax.pools.pool import ResizablePool
from aimax.pools.stats import ManagerStatistics, PoolShutdown, PoolStatistics, ShutdownReport

__all__ = ["ThreadPoolManager"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class _AutoscaleThread:
    """The thin driver: every ``interval`` seconds, feed each controller and resize."""

    def __init__(self, manager: ThreadPoolManager, interval: float) -> None:
        self._stop = threading.Event()
        ref = weakref.ref(manager)
        stop = self._stop

        def loop() -> None:
            while not stop.wait(interval):
                target = ref()
                if target is None:
                    return
                try:
                    target.autoscale_once()
                except Exception:  # keep scaling the other pools; say what broke
                    log.exception("autoscaler tick failed")
                del target

        self.thread = threading.Thread(target=loop, name="aimax-pools-autoscaler", daemon=True)
        self.thread.start()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait and self.thread is not threading.current_thread():
            self.thread.join()


_live_drivers: weakref.WeakSet[_AutoscaleThread] = weakref.WeakSet()
_exit_hook: list[bool] = []


def _stop_drivers_at_exit() -> None:
    for driver in list(_live_drivers):
        driver.stop(wait=False)


def _track_driver(driver: _AutoscaleThread) -> None:
    _live_drivers.add(driver)
    if not _exit_hook:  # registered with the first driver, never at import time
        _exit_hook.append(True)
        atexit.register(_stop_drivers_at_exit)


class ThreadPoolManager:
    """Named thread pools, isolated from each other, with statistics and autoscaling.

    ``configs`` adds or overrides per-name :class:`~aimax.pools.PoolConfig` on top of
    :data:`~aimax.pools.DEFAULT_POOL_CONFIGS`. Pools are created by
    :meth:`get_pool` on first use; no thread starts before a task needs one. Pools
    whose config has ``autoscale`` are steered by one background thread (started
    with the first such pool, stopped by :meth:`shutdown_all`); pass
    ``autoscale_thread=False`` to drive :meth:`autoscale_once` yourself.

        >>> import asyncio
        >>> from aimax.pools import ThreadPoolManager
        >>> manager = ThreadPoolManager()
        >>> asyncio.run(manager.run("io", divmod, 7, 2))
        (3, 1)
        >>> manager.shutdown_all().clean
        True
    """

    def __init__(
        self,
        configs: Mapping[str, PoolConfig] | None = None,
        *,
        clock: Clock = monotonic,
        autoscale_thread: bool = True,
    ) -> None:
        merged = dict(DEFAULT_POOL_CONFIGS)
        for name, config in (configs or {}).items():
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"pool name must be a non-empty string, got {name!r}")
            if not isinstance(config, PoolConfig):
                raise ConfigurationError(
                    f"config of pool {name!r} must be a PoolConfig, got {config!r}"
                )
            merged[name] = config
        self._configs: Mapping[str, PoolConfig] = MappingProxyType(merged)
        self._clock = clock
        self._autoscale_thread = autoscale_thread
        self._lock = threading.Lock()
        self._pools: dict[str, ResizablePool] = {}
        self._controllers: dict[str, ConcurrencyController] = {}
        self._driver: _AutoscaleThread | None = None
        self._losses: dict[str, int] = {}
        self._closed = False

    # ---------------------------------------------------------------------- pools

    @property
    def configs(self) -> Mapping[str, PoolConfig]:
        """The per-name configuration (read-only)."""
        return self._configs

    def get_pool(self, name: str = "default") -> ResizablePool:
        """The pool called ``name``, created on first use from its configuration.

        Raises :class:`~aimax.errors.ConfigurationError` for a name without one and
        :class:`~aimax.errors.PoolClosed` after :meth:`shutdown_all`.
        """
        pool = self._pools.get(name)
        if pool is not None:
            return pool
        with self._lock:
            if self._closed:
                raise PoolClosed(f"the pool manager is shut down (pool {name!r})", pool=name)
            pool = self._pools.get(name)
            if pool is not None:
                return pool
            config = self._configs.get(name)
            if config is None:
                raise ConfigurationError(
                    f"unknown pool {name!r}; configured: {', '.join(sorted(self._configs))}"
                )
            pool = ResizablePool(name, config)
            if config.autoscale is not None:
                self._controllers[name] = ConcurrencyController(
                    config.autoscale,
                    initial=pool.target,
                    min_size=max(1, config.min_size),
                    max_size=config.max_size,
                )
                if self._autoscale_thread and self._driver is None:
                    self._driver = _AutoscaleThread(self, config.autoscale.seconds("interval"))
                    _track_driver(self._driver)
            self._pools[name] = pool
            return pool

    def submit_task(
        self, pool: str, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in the pool called ``pool``; return its future."""
        found = self._pools.get(pool)
        return (found or self.get_pool(pool)).submit(fn, *args, **kwargs)

    async def run(self, pool: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` run in the pool called ``pool``.

        The event loop is never blocked: a full queue is waited for asynchronously
        (or raises :class:`~aimax.errors.PoolFull` under "reject"). Cancelling the
        awaiting task cancels the pool task if it has not started yet.
        """
        future = await self.get_pool(pool).submit_async(fn, *args, **kwargs)
        return await asyncio.wrap_future(future)

    def resize(self, pool: str, size: int) -> None:
        """Set a pool's target size (see :meth:`ResizablePool.resize`)."""
        self.get_pool(pool).resize(size)

    # ----------------------------------------------------------------- statistics

    @overload
    def get_pool_stats(self, name: str) -> PoolStatistics: ...
    @overload
    def get_pool_stats(self, name: None = None) -> dict[str, PoolStatistics]: ...
    def get_pool_stats(self, name: str | None = None) -> PoolStatistics | dict[str, PoolStatistics]:
        """One pool's statistics, or (no name) every created pool's, by name."""
        if name is not None:
            return self.get_pool(name).statistics()
        return {n: p.statistics() for n, p in list(self._pools.items())}

    def statistics(self) -> ManagerStatistics:
        """Every created pool's statistics and the manager's state."""
        return ManagerStatistics(pools=MappingProxyType(self.get_pool_stats()), closed=self._closed)

    # ----------------------------------------------------------------- autoscaling

    def report_loss(self, pool: str, reason: str = "loss") -> None:
        """Tell the pool's autoscaler about a loss (a timeout, an error, a 429).

        The next decision cuts the pool's size multiplicatively (at most once per
        cooldown). Pools without an autoscaler only count it.
        """
        self.get_pool(pool)
        with self._lock:
            self._losses[pool] = self._losses.get(pool, 0) + 1
            controller = self._controllers.get(pool)
            if controller is not None:
                controller.report_loss(self._clock(), reason)

    def losses(self, pool: str) -> int:
        """How many losses were reported for ``pool``."""
        return self._losses.get(pool, 0)

    def autoscale_once(self, now: float | None = None) -> list[ScalingDecision]:
        """One autoscaler step for every autoscaled pool; returns the new decisions."""
        now = self._clock() if now is None else now
        fresh: list[ScalingDecision] = []
        with self._lock:
            controllers = list(self._controllers.items())
        for name, controller in controllers:
            pool = self._pools[name]
            if pool.closed:
                continue
            c = pool.statistics()
            seen = controller.decision_count
            with self._lock:
                limit = controller.update(
                    now,
                    Observation(
                        submitted=c.submitted,
                        finished=c.finished,
                        failed=c.failed,
                        run_seconds=c.run_time.sum,
                        queued=c.queued,
                        active=c.active,
                    ),
                )
            if limit != pool.target:
                with contextlib.suppress(PoolClosed):
                    pool.resize(limit)
            made = controller.decision_count - seen
            if made:
                fresh.extend(list(controller.decisions)[-made:])
        return fresh

    def decisions(self, pool: str) -> tuple[ScalingDecision, ...]:
        """The recent autoscaling decisions of ``pool`` (oldest first)."""
        controller = self._controllers.get(pool)
        return () if controller is None else tuple(controller.decisions)

    def controller(self, pool: str) -> ConcurrencyController | None:
        """The autoscaler controller of ``pool`` (None when it has none)."""
        self.get_pool(pool)
        return self._controllers.get(pool)

    # ------------------------------------------------------------------- shutdown

    def shutdown_all(
        self,
        wait: bool = True,
        timeout: float | None = None,
        *,
        drain: bool | None = None,
    ) -> ShutdownReport:
        """Shut every pool down: drain (default) or cancel, join, and report.

        All pools stop accepting tasks at once; with ``wait`` the call then waits up
        to ``timeout`` seconds in total for them to drain; queued tasks left at the
        timeout are cancelled and named in the report, as are tasks still running.
        ``drain=False`` (the default when ``wait`` is false) cancels the queues at
        once. Idempotent: a later call reports only what it did itself.
        """
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
        ):
            raise ConfigurationError(f"timeout must be None or seconds >= 0, got {timeout!r}")
        drain = wait if drain is None else drain
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            driver, self._driver = self._driver, None
        if driver is not None:
            driver.stop(wait=True)
            _live_drivers.discard(driver)
        started = [(pool, pool._begin_shutdown(drain=drain)) for pool in pools]
        reports: list[PoolShutdown] = [
            pool._finish_shutdown(begun, wait=wait, deadline=deadline) for pool, begun in started
        ]
        return ShutdownReport(pools=tuple(reports))

    def close(self) -> None:
        """Shut down, draining every pool (idempotent)."""
        self.shutdown_all(wait=True)

    def __enter__(self) -> ThreadPoolManager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown_all(wait=True)

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{name}: {pool.size}/{pool.target} q={pool.statistics().queued}"
            for name, pool in list(self._pools.items())
        )
        state = " closed" if self._closed else ""
        return f"<ThreadPoolManager{state} pools=[{parts}]>"
