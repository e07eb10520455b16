"""MemoryManager: keeps the process inside a memory budget, and GC pauses small.

It reads memory through a :class:`~aimax.memory.probe.MemoryProbe`, turns the
readings into pressure levels (:mod:`aimax.memory.pressure`, pure), and under
pressure relieves it in this order: registered caches shrink by a fraction, lowest
priority first, until the level clears (never a blanket wipe); then a full
collection (with a cooldown); then ``malloc_trim`` when glibc holds more than
``trim_threshold`` bytes free. Listeners hear every level change.

Nothing runs on its own until :meth:`MemoryManager.start` starts the background
check (a daemon thread, stopped by :meth:`~MemoryManager.close` and at exit)::

    >>> from aimax.memory import FakeProbe, MemoryManager
    >>> probe = FakeProbe(rss_bytes=50 * 2**20)
    >>> with MemoryManager(budget=100 * 2**20, probe=probe) as manager:
    ...     manager.monitor_memory().level.name
    'NORMAL'
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from aimax._clock import Clock, as_seconds, monotonic
from aimax.errors import ConfigurationError, MemoryManagerError
from aimax.memory.cgroup import CgroupLimits
from aimax.memory.gccontrol import (
    GCMode,
    GCPauseRecorder,
    GCStatistics,
    GCTuning,
    shared_recorder,
)
from aimax.memory.leaks import AllocationGrowth, LeakFinder
from aimax.memory.pressure import (
    LevelChange,
    MemoryBudget,
    PressureLevel,
    PressureThresholds,
    PressureTracker,
)
from aimax.memory.probe import MemoryProbe, SystemProbe
from aimax.memory.registry import CacheInfo, CacheRegistry, CacheShrink, ShrinkFunc

__all__ = [
    "CleanupReport",
    "GCResult",
    "LevelListener",
    "MemoryConfig",
    "MemoryManager",
    "MemoryStatistics",
    "MemoryStatus",
]

_log = logging.getLogger(__name__)

LevelListener = Callable[[LevelChange], None]


def _opt_seconds(value: float | timedelta | None, name: str) -> float | None:
    return None if value is None else as_seconds(value, name=name)


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryConfig:
    """How the manager budgets, relieves pressure and handles the GC.

    ``budget``: bytes (int), a fraction in (0, 1] of min(cgroup limit, physical
    memory) (float), or a :class:`MemoryBudget`. Durations take float seconds or
    ``timedelta``.

    Usage is RSS (what the OOM killer sees). When RSS reaches the elevated threshold
    while glibc holds more than ``trim_threshold`` bytes free, ``malloc_trim`` runs
    before anything else. A cleanup stops shrinking once the caches' own byte
    estimates cover the excess, even if RSS has not dropped (freed memory is reused
    by the next allocations before RSS grows); while RSS stays within
    ``rearm_slack`` (a fraction of the budget) of where such a cleanup left it, an
    elevated level does not shrink again. Critical always does.
    """

    budget: int | float | MemoryBudget = 0.8
    thresholds: PressureThresholds = field(default_factory=PressureThresholds)
    shrink_fraction: float = 0.25
    max_rounds_per_priority: int = 4
    auto_cleanup: bool = True
    gc_cooldown: float | timedelta = 30.0
    trim_threshold: int = 32 * 2**20
    rearm_slack: float = 0.02
    uss_interval: float | timedelta | None = 600.0
    limit_refresh: float | timedelta = 60.0
    check_interval: float | timedelta = 1.0
    measure_gc: bool = True
    gc_mode: GCTuning = field(default_factory=GCTuning)
    warmup: float | timedelta | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", MemoryBudget.of(self.budget))
        f = self.shrink_fraction
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 < f <= 1:
            raise ConfigurationError(f"shrink_fraction must be in (0, 1], got {f!r}")
        r = self.max_rounds_per_priority
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ConfigurationError(f"max_rounds_per_priority must be a positive int, got {r!r}")
        a = self.rearm_slack
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0 <= a < 1:
            raise ConfigurationError(f"rearm_slack must be in [0, 1), got {a!r}")
        t = self.trim_threshold
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise ConfigurationError(f"trim_threshold must be a non-negative int, got {t!r}")
        object.__setattr__(
            self, "gc_cooldown", as_seconds(self.gc_cooldown, name="gc_cooldown", allow_zero=True)
        )
        object.__setattr__(self, "uss_interval", _opt_seconds(self.uss_interval, "uss_interval"))
        object.__setattr__(
            self, "limit_refresh", as_seconds(self.limit_refresh, name="limit_refresh")
        )
        object.__setattr__(
            self, "check_interval", as_seconds(self.check_interval, name="check_interval")
        )
        object.__setattr__(self, "warmup", _opt_seconds(self.warmup, "warmup"))


def _secs(value: float | timedelta | None) -> float:
    assert isinstance(value, float)
    return value


@dataclass(frozen=True, slots=True)
class GCResult:
    """What :meth:`MemoryManager.force_garbage_collection` did.

    ``performed`` is ``False`` when the cooldown held it back (``retry_in`` says for
    how long); ``pause`` is in seconds; ``trimmed`` says whether ``malloc_trim`` ran.
    """

    performed: bool
    generation: int
    collected: int
    pause: float
    rss_before: int
    rss_after: int
    trimmed: bool
    retry_in: float = 0.0

    @property
    def rss_freed(self) -> int:
        """RSS given back (negative if RSS grew meanwhile)."""
        return self.rss_before - self.rss_after


@dataclass(frozen=True, slots=True)
class CleanupReport:
    """What a cleanup (on demand or under pressure) did, cache by cache.

    ``ratio`` is RSS / budget; ``cleared`` whether RSS ended below the clearing
    ratio; ``covered`` whether the caches' estimates of what they freed cover the
    excess (freed memory the allocators will reuse before RSS grows).
    """

    steps: tuple[CacheShrink, ...]
    freed_items: int
    freed_bytes: int | None
    rss_before: int
    rss_after: int
    ratio_before: float
    ratio_after: float
    cleared: bool
    covered: bool
    gc: GCResult | None
    trims: int

    @property
    def caches(self) -> tuple[str, ...]:
        """The caches shrunk, in the order they were shrunk (repeats are rounds)."""
        return tuple(step.name for step in self.steps)


@dataclass(frozen=True, slots=True)
class MemoryStatus:
    """One reading and what came of it (returned by :meth:`MemoryManager.monitor_memory`)."""

    at: float
    rss_bytes: int
    uss_bytes: int | None
    budget_bytes: int
    limit_bytes: int
    cgroup: CgroupLimits
    physical_bytes: int
    malloc_free_bytes: int | None
    ratio: float
    level: PressureLevel
    change: LevelChange | None
    cleanup: CleanupReport | None


@dataclass(frozen=True, slots=True)
class MemoryStatistics:
    """The manager's live state and counters."""

    rss_bytes: int
    uss_bytes: int | None
    budget_bytes: int
    limit_bytes: int
    cgroup_limit_bytes: int | None
    physical_bytes: int
    malloc_free_bytes: int | None
    level: PressureLevel
    ratio: float
    checks: int
    level_changes: int
    cleanups: int
    items_freed: int
    forced_collections: int
    trims: int
    caches: tuple[CacheInfo, ...]
    gc: GCStatistics
    gc_mode: str
    running: bool


def _check_loop(
    manager_ref: weakref.ReferenceType[MemoryManager], stop: threading.Event, interval: float
) -> None:
    """The background check; holds the manager only weakly between ticks."""
    while not stop.wait(interval):
        manager = manager_ref()
        if manager is None:
            return
        try:
            manager.monitor_memory()
        except Exception:
            _log.exception("memory check failed")
        del manager


class MemoryManager:
    """Budget, pressure levels, cache registry and GC control for one process.

    Seed API: :meth:`monitor_memory`, :meth:`force_garbage_collection`,
    :meth:`register_cache`, :meth:`cleanup_caches`.

    ``budget`` (bytes as int, fraction as float, or :class:`MemoryBudget`) overrides
    ``config.budget``; ``probe`` is where readings come from (:class:`SystemProbe`
    by default); ``clock`` gives monotonic seconds for cooldowns and intervals.

        >>> from aimax.memory import BoundedLRUCache, FakeProbe
        >>> probe = FakeProbe(rss_bytes=0)
        >>> manager = MemoryManager(budget=1000, probe=probe,
        ...                         config=MemoryConfig(trim_threshold=0))
        >>> quotes = BoundedLRUCache(max_items=100, name="quotes", manager=manager)
        >>> for i in range(100): quotes[i] = i
        >>> probe.rss_bytes = 990
        >>> manager.monitor_memory().level.name
        'CRITICAL'
        >>> len(quotes) < 100          # shrunk (rss did not drop here, so by rounds)
        True
        >>> manager.close()
    """

    def __init__(
        self,
        budget: int | float | MemoryBudget | None = None,
        *,
        config: MemoryConfig | None = None,
        probe: MemoryProbe | None = None,
        clock: Clock = monotonic,
    ) -> None:
        cfg = config or MemoryConfig()
        self._budget = MemoryBudget.of(budget) if budget is not None else cfg.budget
        assert isinstance(self._budget, MemoryBudget)
        self.config = cfg
        # a probe made here is closed by close(); one passed in belongs to the caller
        self._owned_probe: SystemProbe | None = None
        if probe is None:
            probe = self._owned_probe = SystemProbe()
        self._probe: MemoryProbe = probe
        self._clock = clock
        self._lock = threading.RLock()
        self._relief_lock = threading.RLock()
        self._registry = CacheRegistry()
        self._tracker = PressureTracker(cfg.thresholds)
        self._listeners: list[LevelListener] = []
        self._recorder = shared_recorder()  # the process's one recorder
        self._measures_gc = cfg.measure_gc
        self._gc_mode = GCMode(cfg.gc_mode)
        self._leaks = LeakFinder()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._warmup_started: float | None = None

        self._cgroup = CgroupLimits.none()
        self._physical = 0
        self._limit = 0
        self._budget_bytes = 0
        self._limits_read_at: float | None = None
        self._rss = 0
        self._relief_mark: int | None = None
        self._uss: int | None = None
        self._uss_at: float | None = None
        self._malloc_free: int | None = None
        self._checks = 0
        self._cleanups = 0
        self._items_freed = 0
        self._forced = 0
        self._trims = 0
        self._last_gc: float | None = None
        self._relieving = False

        self._refresh_limits(self._clock())
        if cfg.measure_gc:
            self._recorder.acquire()
        self._finalizer = weakref.finalize(
            self,
            MemoryManager._finalize,
            self._stop,
            self._recorder if cfg.measure_gc else None,
            self._gc_mode,
            self._leaks,
        )

    @staticmethod
    def _finalize(
        stop: threading.Event, recorder: GCPauseRecorder | None, mode: GCMode, leaks: LeakFinder
    ) -> None:
        stop.set()
        if recorder is not None:
            recorder.release()
        mode.restore()
        leaks.stop()

    # ------------------------------------------------------------------ readings

    @property
    def probe(self) -> MemoryProbe:
        """Where readings come from."""
        return self._probe

    @property
    def registry(self) -> CacheRegistry:
        """The cache registry (weak references, shrink order)."""
        return self._registry

    @property
    def level(self) -> PressureLevel:
        """The current pressure level."""
        return self._tracker.level

    @property
    def budget_bytes(self) -> int:
        """The budget in bytes (re-resolved when the limits are re-read)."""
        return self._budget_bytes

    @property
    def budget(self) -> MemoryBudget:
        """The budget as configured (bytes or fraction)."""
        assert isinstance(self._budget, MemoryBudget)
        return self._budget

    def _refresh_limits(self, now: float) -> None:
        cgroup = self._probe.cgroup()
        physical = int(self._probe.physical())
        limit = physical
        if cgroup.effective_bytes is not None and cgroup.effective_bytes > 0:
            limit = min(limit, cgroup.effective_bytes)
        with self._lock:
            self._cgroup = cgroup
            self._physical = physical
            self._limit = limit
            self._budget_bytes = self.budget.resolve(limit=limit)
            self._limits_read_at = now
        if self._budget_bytes > limit:
            _log.warning(
                "memory budget %d bytes is above the effective limit %d bytes",
                self._budget_bytes,
                limit,
            )

    def refresh_limits(self) -> int:
        """Re-read the cgroup limit and physical memory now; returns the budget in bytes."""
        self._refresh_limits(self._clock())
        return self._budget_bytes

    def monitor_memory(self, *, uss: bool = False) -> MemoryStatus:
        """Take a reading, update the pressure level, and relieve pressure if needed.

        Reads RSS (cheap); USS only when ``uss=True`` or every ``uss_interval``.
        Under pressure with ``auto_cleanup``, shrinks caches (see
        :meth:`cleanup_caches`). Level listeners are called on a change.
        """
        self._check_open()
        now = self._clock()
        if self._limits_read_at is None or now - self._limits_read_at >= _secs(
            self.config.limit_refresh
        ):
            self._refresh_limits(now)
        rss = int(self._probe.rss())
        uss_value = self._uss
        interval = self.config.uss_interval
        if uss or (
            isinstance(interval, float) and (self._uss_at is None or now - self._uss_at >= interval)
        ):
            uss_value = self._probe.uss()
            self._uss_at = now
        malloc_free = self._probe.malloc_free()
        if (
            malloc_free is not None
            and malloc_free >= self.config.trim_threshold
            and rss >= self._budget_bytes * self.config.thresholds.elevated
        ):
            # RSS is high but partly free heap: hand that back before judging usage
            self._trim()
            rss = int(self._probe.rss())
            malloc_free = self._probe.malloc_free()
        with self._lock:
            self._rss, self._uss, self._malloc_free = rss, uss_value, malloc_free
            self._checks += 1
            change = self._tracker.update(used=rss, budget=self._budget_bytes, now=now)
            level = self._tracker.level
            if level is PressureLevel.NORMAL:
                self._relief_mark = None
        if change is not None:
            self._notify(change)
        cleanup = None
        if (
            level > PressureLevel.NORMAL
            and self.config.auto_cleanup
            and not self._relieving
            and not self._recently_relieved(rss, level)
        ):
            cleanup = self._relieve(self.config.shrink_fraction, force=False)
            rss = cleanup.rss_after
            with self._lock:
                self._relief_mark = rss if cleanup.covered and not cleanup.cleared else None
                later = self._tracker.update(used=rss, budget=self._budget_bytes, now=now)
                level = self._tracker.level
            if later is not None:
                self._notify(later)
                change = later
        self._maybe_end_warmup(now)
        with self._lock:
            return MemoryStatus(
                at=now,
                rss_bytes=rss,
                uss_bytes=uss_value,
                budget_bytes=self._budget_bytes,
                limit_bytes=self._limit,
                cgroup=self._cgroup,
                physical_bytes=self._physical,
                malloc_free_bytes=malloc_free,
                ratio=rss / self._budget_bytes,
                level=level,
                change=change,
                cleanup=cleanup,
            )

    # ------------------------------------------------------------------ listeners

    def add_level_listener(self, callback: LevelListener) -> Callable[[], None]:
        """Call ``callback(LevelChange)`` on every level change; returns a remover."""
        if not callable(callback):
            raise ConfigurationError(f"level listener must be callable, got {callback!r}")
        with self._lock:
            self._listeners.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return remove

    def _notify(self, change: LevelChange) -> None:
        log = _log.warning if change.rising else _log.info
        log(
            "memory pressure %s -> %s (%.1f%% of %d bytes)",
            change.previous.name,
            change.level.name,
            change.ratio * 100,
            change.budget,
        )
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(change)
            except Exception:
                _log.exception("memory level listener %r failed", listener)

    # ------------------------------------------------------------------ caches

    def register_cache(
        self,
        name: str,
        cache: object,
        *,
        priority: int = 0,
        shrink: ShrinkFunc | None = None,
        weak: bool = True,
    ) -> None:
        """Register ``cache`` to be shrunk under pressure (lower ``priority`` first).

        Held through a weak reference: when the cache is garbage-collected it leaves
        the registry. ``shrink(cache, fraction)`` overrides the default policy.
        """
        self._check_open()
        self._registry.register(name, cache, priority=priority, shrink=shrink, weak=weak)

    def unregister_cache(self, name: str) -> bool:
        """Forget a cache; ``True`` if it was registered."""
        return self._registry.unregister(name)

    def cleanup_caches(
        self, fraction: float | None = None, *, force: bool = False
    ) -> CleanupReport:
        """Shrink registered caches in priority order; return what was freed.

        Without ``force``: while usage is above the level-clearing ratio, shrink by
        ``fraction`` (default ``config.shrink_fraction``), lowest priority first,
        up to ``max_rounds_per_priority`` rounds per priority, re-reading memory
        after each round; then a collection (cooldown permitting) if still needed.
        At normal usage nothing is shrunk. With ``force=True``: every cache shrinks
        once by ``fraction`` whatever the pressure (``fraction=1.0`` empties them).
        """
        self._check_open()
        if fraction is None:
            fraction = self.config.shrink_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ConfigurationError(f"fraction must be a number in (0, 1], got {fraction!r}")
        if not 0 < fraction <= 1:
            raise ConfigurationError(f"fraction must be in (0, 1], got {fraction!r}")
        return self._relieve(float(fraction), force=force)

    def _recently_relieved(self, rss: int, level: PressureLevel) -> bool:
        """An elevated level whose last cleanup freed enough (by estimate), and RSS has
        not grown since: the freed memory is still being reused, do not shrink again."""
        mark = self._relief_mark
        if mark is None or level is not PressureLevel.ELEVATED:
            return False
        return rss <= mark + self.config.rearm_slack * self._budget_bytes

    def _reading(self) -> tuple[int, float]:
        """``(rss, rss / budget)`` now."""
        rss = int(self._probe.rss())
        return rss, rss / self._budget_bytes

    def _trim(self) -> bool:
        released = self._probe.trim()
        with self._lock:
            self._trims += 1
        return released

    def _trim_if_worth_it(self) -> bool:
        free = self._probe.malloc_free()
        if free is None or free < self.config.trim_threshold:
            return False
        released = self._trim()
        _log.debug("malloc_trim with %d bytes free in glibc: released=%s", free, released)
        return True

    def _relieve(self, fraction: float, *, force: bool) -> CleanupReport:
        with self._relief_lock:  # one cleanup at a time; other threads wait their turn
            if self._relieving:
                raise MemoryManagerError("cleanup_caches() called again from inside a cleanup")
            self._relieving = True
            try:
                return self._relieve_locked(fraction, force=force)
            finally:
                self._relieving = False

    def _relieve_locked(self, fraction: float, *, force: bool) -> CleanupReport:
        tracker = self._tracker
        rss_before, ratio_before = self._reading()
        rss, ratio = rss_before, ratio_before
        # bytes to free to clear the level; memory freed into the allocators is
        # reused before RSS grows, so once the caches' own estimates say that much
        # was freed, shrinking stops even if RSS has not dropped (fragmentation)
        needed = rss_before - tracker.thresholds.clear_ratio(PressureLevel.ELEVATED) * (
            self._budget_bytes
        )
        estimated = 0
        steps: list[CacheShrink] = []
        trims = 0
        gc_result: GCResult | None = None
        if force:
            for name in self._registry.names():
                step = self._registry.shrink(name, fraction)
                if step is not None:
                    steps.append(step)
            trims += self._trim_if_worth_it()
            rss, ratio = self._reading()
        elif not tracker.cleared(ratio):
            for priority in self._registry.priorities():
                for _ in range(self.config.max_rounds_per_priority):
                    freed = 0
                    for name in self._registry.names_at(priority):
                        step = self._registry.shrink(name, fraction)
                        if step is not None:
                            steps.append(step)
                            freed += step.freed_items
                            estimated += step.freed_bytes or 0
                    trims += self._trim_if_worth_it()
                    rss, ratio = self._reading()
                    if tracker.cleared(ratio) or freed == 0 or estimated >= needed:
                        break
                if tracker.cleared(ratio) or estimated >= needed:
                    break
            if not tracker.cleared(ratio) and estimated < needed:
                gc_result = self.force_garbage_collection()
                if gc_result.performed:
                    trims += gc_result.trimmed
                    rss, ratio = self._reading()
        freed_items = sum(s.freed_items for s in steps)
        byte_figures = [s.freed_bytes for s in steps]
        freed_bytes = (
            sum(b for b in byte_figures if b is not None)
            if any(b is not None for b in byte_figures)
            else None
        )
        with self._lock:
            self._cleanups += 1 if steps or gc_result is not None else 0
            self._items_freed += freed_items
            self._rss = rss
        if steps:
            _log.info(
                "memory cleanup: %d items freed from %d shrinks, rss %d -> %d bytes",
                freed_items,
                len(steps),
                rss_before,
                rss,
            )
        return CleanupReport(
            steps=tuple(steps),
            freed_items=freed_items,
            freed_bytes=freed_bytes,
            rss_before=rss_before,
            rss_after=rss,
            ratio_before=ratio_before,
            ratio_after=ratio,
            cleared=tracker.cleared(ratio),
            covered=tracker.cleared(ratio) or estimated >= needed,
            gc=gc_result,
            trims=trims,
        )

    # ------------------------------------------------------------------ GC control

    def force_garbage_collection(
        self, generation: int = 2, *, ignore_cooldown: bool = False
    ) -> GCResult:
        """Run ``gc.collect(generation)`` unless within ``gc_cooldown`` of the last one.

        Then ``malloc_trim`` if glibc holds more than ``trim_threshold`` bytes free.
        Returns what was collected, the pause (seconds) and RSS before and after.
        """
        self._check_open()
        if generation not in range(len(gc.get_count())):
            raise ConfigurationError(f"generation must be 0, 1 or 2, got {generation!r}")
        now = self._clock()
        cooldown = _secs(self.config.gc_cooldown)
        with self._lock:
            last = self._last_gc
            if not ignore_cooldown and last is not None and now - last < cooldown:
                return GCResult(
                    performed=False,
                    generation=generation,
                    collected=0,
                    pause=0.0,
                    rss_before=self._rss,
                    rss_after=self._rss,
                    trimmed=False,
                    retry_in=cooldown - (now - last),
                )
            self._last_gc = now
            self._forced += 1
        rss_before = int(self._probe.rss())
        started = time.perf_counter()
        collected = gc.collect(generation)
        pause = time.perf_counter() - started
        trimmed = self._trim_if_worth_it()
        rss_after = int(self._probe.rss())
        with self._lock:
            self._rss = rss_after
        return GCResult(
            performed=True,
            generation=generation,
            collected=collected,
            pause=pause,
            rss_before=rss_before,
            rss_after=rss_after,
            trimmed=trimmed,
        )

    def trim_memory(self, *, force: bool = False) -> bool:
        """``malloc_trim(0)`` if glibc holds more than ``trim_threshold`` free (or ``force``).

        Returns whether a trim was attempted (always ``False`` off glibc).
        """
        self._check_open()
        if force:
            attempted = self._probe.malloc_free() is not None
            return self._trim() or attempted
        return self._trim_if_worth_it()

    @property
    def gc_mode(self) -> GCMode:
        """The low-pause GC mode (off until :meth:`begin_warmup` / :meth:`end_warmup`)."""
        return self._gc_mode

    def begin_warmup(self) -> None:
        """Enter the GC mode's warm-up phase (young threshold up, full collections held).

        With ``config.warmup`` set, :meth:`monitor_memory` ends warm-up by itself
        that many seconds later.
        """
        self._check_open()
        self._gc_mode.begin_warmup()
        self._warmup_started = self._clock()

    def end_warmup(self) -> int:
        """Freeze what survived warm-up and set the steady low-pause thresholds.

        Returns the number of objects frozen.
        """
        self._check_open()
        self._warmup_started = None
        return self._gc_mode.end_warmup()

    def _maybe_end_warmup(self, now: float) -> None:
        warmup = self.config.warmup
        started = self._warmup_started
        if (
            isinstance(warmup, float)
            and started is not None
            and self._gc_mode.phase == "warmup"
            and now - started >= warmup
        ):
            frozen = self.end_warmup()
            _log.info("warm-up over: %d objects frozen", frozen)

    def restore_gc(self) -> None:
        """Undo the GC mode (thresholds back, unfreeze what it froze)."""
        self._gc_mode.restore()
        self._warmup_started = None

    # ------------------------------------------------------------------ leaks

    @property
    def leak_finder(self) -> LeakFinder:
        """The tracemalloc leak finder (off until started; stopped by :meth:`close`)."""
        return self._leaks

    def start_leak_finder(self) -> None:
        """Start tracemalloc (slows allocation markedly) and take the baseline."""
        self._check_open()
        self._leaks.start()

    def top_growth(self, *, limit: int = 10) -> list[AllocationGrowth]:
        """The allocation sites that grew most since :meth:`start_leak_finder`."""
        return self._leaks.top_growth(limit=limit)

    def stop_leak_finder(self) -> None:
        """Stop tracemalloc if the finder started it."""
        self._leaks.stop()

    # ------------------------------------------------------------------ figures

    def statistics(self) -> MemoryStatistics:
        """The live state: last readings, level, counters, caches and GC pauses."""
        caches = self._registry.infos()
        gc_stats = self._recorder.statistics()
        with self._lock:
            return MemoryStatistics(
                rss_bytes=self._rss,
                uss_bytes=self._uss,
                budget_bytes=self._budget_bytes,
                limit_bytes=self._limit,
                cgroup_limit_bytes=self._cgroup.effective_bytes,
                physical_bytes=self._physical,
                malloc_free_bytes=self._malloc_free,
                level=self._tracker.level,
                ratio=self._tracker.ratio,
                checks=self._checks,
                level_changes=self._tracker.changes,
                cleanups=self._cleanups,
                items_freed=self._items_freed,
                forced_collections=self._forced,
                trims=self._trims,
                caches=caches,
                gc=gc_stats,
                gc_mode=self._gc_mode.phase,
                running=self.running,
            )

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        """Whether the background check thread is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self, interval: float | timedelta | None = None) -> None:
        """Start the background check every ``interval`` (default ``config.check_interval``).

        A daemon thread; stopped by :meth:`stop`, :meth:`close`, garbage collection of
        the manager, and interpreter exit. Idempotent.
        """
        self._check_open()
        seconds = (
            _secs(self.config.check_interval)
            if interval is None
            else as_seconds(interval, name="interval")
        )
        with self._lock:
            if self.running:
                return
            self._stop = threading.Event()
            self._finalizer.detach()
            self._finalizer = weakref.finalize(
                self,
                MemoryManager._finalize,
                self._stop,
                self._recorder if self._measures_gc else None,
                self._gc_mode,
                self._leaks,
            )
            self._thread = threading.Thread(
                target=_check_loop,
                args=(weakref.ref(self), self._stop, seconds),
                name="aimax-memory-check",
                daemon=True,
            )
            self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the background check and wait for it (idempotent)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def close(self) -> None:
        """Stop the thread, remove the GC callback, undo the GC mode, stop the leak finder.

        Idempotent. Registered caches are left as they are.
        """
        if self._closed:
            return
        self.stop()
        self._closed = True
        self._finalizer()
        if self._owned_probe is not None:
            self._owned_probe.close()

    def _check_open(self) -> None:
        if self._closed:
            raise MemoryManagerError("the memory manager is closed")

    def __enter__(self) -> MemoryManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"MemoryManager(level={self._tracker.level.name}, rss={self._rss},"
                f" budget={self._budget_bytes}, ratio={self._tracker.ratio:.3f},"
                f" caches={len(self._registry)}, cleanups={self._cleanups},"
                f" gc_mode={self._gc_mode.phase}, running={self.running})"
            )
