"""Garbage-collector control: pause measurement and a low-pause GC mode.

:class:`GCPauseRecorder` measures every collection through ``gc.callbacks``
(count, total, max and percentiles per generation). :class:`GCMode` cuts pauses in
a long-running process whose state is mostly long-lived:

1. during warm-up (loading markets, history, open orders) the young generation's
   threshold is raised and full collections are held back, so the growing state is
   not scanned again and again;
2. after warm-up the young generations are collected and everything that survived
   is frozen (``gc.freeze()``): later full collections no longer scan it;
3. in steady state the young threshold stays raised (fewer, slightly larger
   young collections) and the middle one lowered, so a middle-generation
   collection stays as small as with the defaults.

Thresholds are derived from what the interpreter reports (``gc.get_threshold()``),
not assumed. :meth:`GCMode.restore` puts everything back::

    >>> import gc
    >>> before = gc.get_threshold()
    >>> mode = GCMode(GCTuning(freeze=False))
    >>> mode.begin_warmup(); frozen = mode.end_warmup()
    >>> gc.get_threshold()[0] == before[0] * 10
    True
    >>> mode.restore(); gc.get_threshold() == before
    True
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aimax.errors import ConfigurationError

__all__ = [
    "GCMode",
    "GCPauseRecorder",
    "GCStatistics",
    "GCTuning",
    "GenerationPauses",
    "derive_thresholds",
]

_log = logging.getLogger(__name__)


def _rank(q: float, n: int) -> int:
    """The index of the nearest-rank ``q`` percentile in an ascending list of ``n``."""
    return min(max(1, math.ceil(q * n)), n) - 1


@dataclass(frozen=True, slots=True)
class GenerationPauses:
    """Pauses of one generation's collections (seconds)."""

    generation: int
    count: int
    total: float
    max: float
    p50: float
    p95: float
    p99: float
    collected: int


@dataclass(frozen=True, slots=True)
class GCStatistics:
    """Every generation's pauses, and the totals."""

    generations: tuple[GenerationPauses, ...]
    collections: int
    pause_total: float
    pause_max: float
    collected: int
    uncollectable: int

    @classmethod
    def empty(cls, n_generations: int = 3) -> GCStatistics:
        """No collection observed."""
        gens = tuple(
            GenerationPauses(g, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0) for g in range(n_generations)
        )
        return cls(gens, 0, 0.0, 0.0, 0, 0)


class _GenerationLog:
    __slots__ = ("collected", "count", "max", "ordered", "recent", "total")

    def __init__(self, window: int) -> None:
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self.collected = 0
        self.recent: deque[float] = deque(maxlen=window)
        self.ordered: list[float] = []  # the same pauses, kept sorted (for percentiles)


class GCPauseRecorder:
    """Measures every garbage collection through ``gc.callbacks``.

    ``timer`` measures the pause (``time.perf_counter``: wall time; pass
    ``time.thread_time`` to measure CPU time instead). Percentiles cover the last
    ``window`` collections of each generation. The callback takes no lock (it runs
    inside the collector) and does no allocation-heavy work.

        >>> recorder = GCPauseRecorder()
        >>> with recorder:
        ...     _ = gc.collect()
        >>> recorder.statistics().generations[2].count >= 1
        True
    """

    def __init__(
        self, *, timer: Callable[[], float] = time.perf_counter, window: int = 2048
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
            raise ConfigurationError(f"window must be a positive int, got {window!r}")
        self._timer = timer
        self._window = window
        self._started: float | None = None
        self._installed = False
        self._uncollectable = 0
        self._logs = [_GenerationLog(window) for _ in range(len(gc.get_count()))]

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self._timer()
            return
        started = self._started
        if started is None:
            return
        self._started = None
        pause = self._timer() - started
        generation = int(info.get("generation", 0))
        if generation >= len(self._logs):
            return
        log = self._logs[generation]
        log.count += 1
        log.total += pause
        log.max = max(log.max, pause)
        log.collected += int(info.get("collected", 0))
        recent = log.recent
        ordered = log.ordered
        if len(recent) == recent.maxlen:  # the oldest pause leaves the window
            del ordered[bisect_left(ordered, recent[0])]
        recent.append(pause)
        insort(ordered, pause)  # a C memmove: the reader then sorts nothing
        self._uncollectable += int(info.get("uncollectable", 0))

    @property
    def installed(self) -> bool:
        """Whether the callback is in ``gc.callbacks``."""
        return self._installed

    def install(self) -> None:
        """Start measuring (idempotent)."""
        if not self._installed:
            gc.callbacks.append(self._callback)
            self._installed = True

    def uninstall(self) -> None:
        """Stop measuring and leave ``gc.callbacks`` as it was (idempotent)."""
        if self._installed:
            self._installed = False
            self._started = None
            # remove by identity: bound methods compare equal across recorders otherwise
            for i, cb in enumerate(gc.callbacks):
                if getattr(cb, "__self__", None) is self:
                    del gc.callbacks[i]
                    break

    def reset(self) -> None:
        """Forget what was measured."""
        self._logs = [_GenerationLog(self._window) for _ in self._logs]
        self._uncollectable = 0

    @staticmethod
    def _quantiles_of(log: _GenerationLog) -> tuple[float, float, float]:
        # ``ordered`` only grows or keeps its length (the callback removes one pause
        # and inserts one), so indices computed from a length read now stay valid
        # even if a collection runs (in any thread) between these lines
        ordered = log.ordered
        n = len(ordered)
        if n == 0:
            return (0.0, 0.0, 0.0)
        return (
            ordered[_rank(0.50, n)],
            ordered[_rank(0.95, n)],
            ordered[_rank(0.99, n)],
        )

    def pause_figures(self) -> list[tuple[int, int, float, float, float, float]]:
        """Per generation ``(generation, count, max, p50, p95, p99)``, built cheaply.

        What :meth:`statistics` reports, without the dataclasses (the monitor reads
        this every tick through the memory manager).
        """
        return [
            (g, log.count, log.max, *self._quantiles_of(log)) for g, log in enumerate(self._logs)
        ]

    def pause_totals(self) -> tuple[float, float]:
        """``(total pause seconds, longest pause)`` over every generation."""
        logs = self._logs
        return sum(log.total for log in logs), max((log.max for log in logs), default=0.0)

    def statistics(self) -> GCStatistics:
        """Counts, totals, maxima and p50/p95/p99 per generation."""
        gens = []
        for g, log in enumerate(self._logs):
            p50, p95, p99 = self._quantiles_of(log)
            gens.append(
                GenerationPauses(
                    generation=g,
                    count=log.count,
                    total=log.total,
                    max=log.max,
                    p50=p50,
                    p95=p95,
                    p99=p99,
                    collected=log.collected,
                )
            )
        return GCStatistics(
            generations=tuple(gens),
            collections=sum(g.count for g in gens),
            pause_total=sum(g.total for g in gens),
            pause_max=max((g.max for g in gens), default=0.0),
            collected=sum(g.collected for g in gens),
            uncollectable=self._uncollectable,
        )

    def __enter__(self) -> GCPauseRecorder:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"GCPauseRecorder(installed={self._installed}, collections={s.collections},"
            f" pause_total={s.pause_total:.6f}, pause_max={s.pause_max:.6f})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GCTuning:
    """How :class:`GCMode` derives its thresholds from the interpreter's.

    ``young_scale`` multiplies the youngest threshold and divides the middle one
    (so a middle-generation collection covers about as many objects as by default);
    ``warmup_old_scale`` multiplies the oldest threshold during warm-up only;
    ``freeze`` freezes survivors after warm-up, after collecting generations up to
    ``collect_before_freeze`` (``None``: no collection; 2 is a full, long, collection).
    """

    young_scale: float = 10.0
    warmup_old_scale: float = 100.0
    freeze: bool = True
    collect_before_freeze: Literal[0, 1, 2] | None = 1

    def __post_init__(self) -> None:
        for name in ("young_scale", "warmup_old_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1:
                raise ConfigurationError(f"{name} must be a number >= 1, got {value!r}")
        if self.collect_before_freeze not in (None, 0, 1, 2):
            raise ConfigurationError(
                f"collect_before_freeze must be None, 0, 1 or 2, got {self.collect_before_freeze!r}"
            )


def derive_thresholds(
    original: tuple[int, ...], tuning: GCTuning, *, warmup: bool
) -> tuple[int, ...]:
    """The thresholds :class:`GCMode` sets, from the interpreter's ``original`` ones.

    >>> derive_thresholds((700, 10, 10), GCTuning(), warmup=False)
    (7000, 1, 10)
    >>> derive_thresholds((700, 10, 10), GCTuning(), warmup=True)
    (7000, 1, 1000)
    """
    if not original or original[0] <= 0:
        return tuple(original)  # collection disabled: leave it so
    values = list(original)
    values[0] = max(1, round(values[0] * tuning.young_scale))
    if len(values) > 1 and values[1] > 0:
        values[1] = max(1, round(values[1] / tuning.young_scale))
    if warmup and len(values) > 2 and values[2] > 0:
        values[2] = max(1, round(values[2] * tuning.warmup_old_scale))
    return tuple(values)


_mode_lock = threading.Lock()


class GCMode:
    """The low-pause GC mode; process-wide (it sets the interpreter's GC state).

    ``begin_warmup()`` before building long-lived state, ``end_warmup()`` once it is
    built (or only ``end_warmup()``), ``restore()`` to put the interpreter back.
    """

    def __init__(self, tuning: GCTuning | None = None) -> None:
        self.tuning = tuning or GCTuning()
        self._original: tuple[int, ...] | None = None
        self._freeze_before: int | None = None
        self._phase: Literal["off", "warmup", "steady"] = "off"
        self.frozen = 0

    @property
    def phase(self) -> Literal["off", "warmup", "steady"]:
        """``off``, ``warmup`` or ``steady``."""
        return self._phase

    @property
    def original_thresholds(self) -> tuple[int, ...] | None:
        """The interpreter's thresholds before this mode changed them."""
        return self._original

    def _save(self) -> tuple[int, ...]:
        if self._original is None:
            self._original = tuple(gc.get_threshold())
        return self._original

    def begin_warmup(self) -> None:
        """Raise the young threshold and hold back full collections while state is built."""
        with _mode_lock:
            original = self._save()
            gc.set_threshold(*derive_thresholds(original, self.tuning, warmup=True))
            self._phase = "warmup"

    def end_warmup(self) -> int:
        """Collect the young generations, freeze survivors, set steady thresholds.

        Returns the number of objects frozen by this call (0 without ``freeze``).
        """
        with _mode_lock:
            original = self._save()
            frozen = 0
            if self.tuning.freeze:
                if self._freeze_before is None:
                    self._freeze_before = gc.get_freeze_count()
                if self.tuning.collect_before_freeze is not None:
                    gc.collect(self.tuning.collect_before_freeze)
                before = gc.get_freeze_count()
                gc.freeze()
                frozen = gc.get_freeze_count() - before
                self.frozen += frozen
            gc.set_threshold(*derive_thresholds(original, self.tuning, warmup=False))
            self._phase = "steady"
            _log.debug(
                "GC mode steady: thresholds %s, %d objects frozen", gc.get_threshold(), frozen
            )
            return frozen

    def restore(self) -> None:
        """Put the interpreter's thresholds back and unfreeze what this mode froze.

        Objects frozen by someone else before this mode froze anything stay frozen
        (``gc.unfreeze`` cannot tell them apart, so nothing is unfrozen then).
        """
        with _mode_lock:
            if self._original is not None:
                gc.set_threshold(*self._original)
            if self._freeze_before == 0:
                gc.unfreeze()
            elif self._freeze_before:
                _log.warning("objects were frozen before the GC mode: leaving all frozen")
            self._original = None
            self._freeze_before = None
            self._phase = "off"

    def __repr__(self) -> str:
        return f"GCMode(phase={self._phase}, frozen={self.frozen}, tuning={self.tuning!r})"
