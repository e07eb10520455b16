"""Garbage-collector control: pause measurement and a low-pause GC mode.

:class:`GCPauseRecorder` measures every collection through ``gc.callbacks``
(a histogram of pauses, total and max per generation; :func:`shared_recorder` is
the process's one instance). :class:`GCMode` cuts pauses in
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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aimax._metrics import HistogramValue
from aimax.errors import ConfigurationError
from aimax.pools._histogram import LogLinearHistogram
from aimax.pools.stats import LatencySummary

__all__ = [
    "GCMode",
    "GCPauseRecorder",
    "GCStatistics",
    "GCTuning",
    "GenerationPauses",
    "derive_thresholds",
    "shared_recorder",
]

_log = logging.getLogger(__name__)
_EMPTY = LatencySummary.empty()


@dataclass(frozen=True, slots=True)
class GenerationPauses:
    """Pauses of one generation's collections (seconds), since measuring began.

    ``p50``/``p95``/``p99`` come from a log-linear histogram (each within ~3 %, never
    above ``max``); ``histogram`` holds its exact cumulative counts for Prometheus.
    """

    generation: int
    count: int
    total: float
    max: float
    p50: float
    p95: float
    p99: float
    collected: int
    histogram: HistogramValue = field(default=_EMPTY.histogram, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class GCStatistics:
    """Every generation's pauses, and the totals (``pause_max``: the longest ever)."""

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


class _Generation:
    __slots__ = ("collected", "hist", "max")

    def __init__(self) -> None:
        self.hist = LogLinearHistogram()  # pauses in ns
        self.max = 0.0
        self.collected = 0


class GCPauseRecorder:
    """Measures every garbage collection through ``gc.callbacks``.

    One meaning for every figure: each pause from :meth:`install` on goes into its
    generation's log-linear histogram; ``max`` is the longest pause since then
    (never reset by a read). ``timer`` measures the pause (``time.perf_counter``:
    wall time; ``time.thread_time`` for CPU time). The callback takes no lock: the
    interpreter runs one collection at a time, and a reader copies the histogram
    (a fixed-size list) instead of iterating it in place.

    :func:`shared_recorder` is the process's one recorder, used by the memory
    manager and the monitor alike.

        >>> recorder = GCPauseRecorder()
        >>> with recorder:
        ...     _ = gc.collect()
        >>> recorder.statistics().generations[2].count >= 1
        True
    """

    def __init__(self, *, timer: Callable[[], float] = time.perf_counter) -> None:
        if not callable(timer):
            raise ConfigurationError(f"timer must be callable, got {timer!r}")
        self._timer = timer
        self._started: float | None = None
        self._installed = False
        self._users = 0
        self._users_lock = threading.Lock()
        self._uncollectable = 0
        self._gens = [_Generation() for _ in range(len(gc.get_count()))]

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
        if generation >= len(self._gens):
            return
        gen = self._gens[generation]
        gen.hist.record(round(pause * 1e9))
        gen.max = max(gen.max, pause)
        gen.collected += int(info.get("collected", 0))
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

    def acquire(self) -> None:
        """Count one more user and install (the shared recorder's lifecycle)."""
        with self._users_lock:
            self._users += 1
            self.install()

    def release(self) -> None:
        """Count one user less; uninstall when none is left (idempotent at zero)."""
        with self._users_lock:
            self._users = max(0, self._users - 1)
            if self._users == 0:
                self.uninstall()

    def reset(self) -> None:
        """Forget what was measured."""
        self._gens = [_Generation() for _ in self._gens]
        self._uncollectable = 0

    def statistics(self) -> GCStatistics:
        """Counts, totals, maxima, p50/p95/p99 and histograms per generation."""
        gens = []
        for g, gen in enumerate(self._gens):
            summary = LatencySummary.of(gen.hist.copy())
            top = gen.max
            gens.append(
                GenerationPauses(
                    generation=g,
                    count=summary.count,
                    total=summary.sum,
                    max=top,
                    p50=min(summary.p50, top) if summary.count else 0.0,
                    p95=min(summary.p95, top) if summary.count else 0.0,
                    p99=min(summary.p99, top) if summary.count else 0.0,
                    collected=gen.collected,
                    histogram=summary.histogram,
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


_SHARED: GCPauseRecorder | None = None
_SHARED_LOCK = threading.Lock()


def shared_recorder() -> GCPauseRecorder:
    """The process's one GC pause recorder (created on first use, installed by ``acquire``).

    >>> shared_recorder() is shared_recorder()
    True
    """
    global _SHARED  # noqa: PLW0603 - one recorder per process, created lazily
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = GCPauseRecorder()
        return _SHARED


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
