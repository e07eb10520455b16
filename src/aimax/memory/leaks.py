"""A leak finder on demand: tracemalloc snapshots and the top growing allocation sites.

Off by default: tracing slows allocation several times over. Start it, let the
suspect workload run, then ask which source lines hold more memory than at the
start. ``stop()`` only stops tracing that this finder started::

    >>> finder = LeakFinder()
    >>> finder.start()
    >>> leak = [bytearray(1000) for _ in range(100)]
    >>> growth = finder.top_growth(limit=3)
    >>> finder.stop()
    >>> any(site.size_diff > 50_000 for site in growth)
    True
"""

from __future__ import annotations

import threading
import tracemalloc
from dataclasses import dataclass

from aimax.errors import ConfigurationError, MemoryManagerError

__all__ = ["AllocationGrowth", "LeakFinder"]

_IGNORED = (
    tracemalloc.__file__,
    "<frozen importlib._bootstrap>",
    "<frozen importlib._bootstrap_external>",
    "<unknown>",
)


@dataclass(frozen=True, slots=True)
class AllocationGrowth:
    """One allocation site and how much more it holds than at the baseline."""

    filename: str
    lineno: int
    size: int
    size_diff: int
    count: int
    count_diff: int

    @property
    def site(self) -> str:
        """``file:line``."""
        return f"{self.filename}:{self.lineno}"


class LeakFinder:
    """Takes tracemalloc snapshots and compares them with a baseline.

    ``frames`` is how many stack frames tracemalloc keeps per allocation (1 is
    cheapest). Thread-safe; a context manager.
    """

    def __init__(self, *, frames: int = 1) -> None:
        if isinstance(frames, bool) or not isinstance(frames, int) or frames <= 0:
            raise ConfigurationError(f"frames must be a positive int, got {frames!r}")
        self._frames = frames
        self._lock = threading.Lock()
        self._started_here = False
        self._baseline: tracemalloc.Snapshot | None = None

    @property
    def tracing(self) -> bool:
        """Whether tracemalloc is tracing (started here or elsewhere)."""
        return tracemalloc.is_tracing()

    def start(self) -> None:
        """Start tracing (if not already) and take the baseline snapshot."""
        with self._lock:
            if not tracemalloc.is_tracing():
                tracemalloc.start(self._frames)
                self._started_here = True
            self._baseline = self._take()

    def _take(self) -> tracemalloc.Snapshot:
        snapshot = tracemalloc.take_snapshot()
        return snapshot.filter_traces(
            [tracemalloc.Filter(inclusive=False, filename_pattern=name) for name in _IGNORED]
        )

    def snapshot(self) -> tracemalloc.Snapshot:
        """A filtered snapshot now (tracing must be on)."""
        with self._lock:
            if not tracemalloc.is_tracing():
                raise MemoryManagerError("the leak finder is not running: call start() first")
            return self._take()

    def rebase(self) -> None:
        """Make now the baseline the next comparisons start from."""
        with self._lock:
            if not tracemalloc.is_tracing():
                raise MemoryManagerError("the leak finder is not running: call start() first")
            self._baseline = self._take()

    def top_growth(self, *, limit: int = 10) -> list[AllocationGrowth]:
        """The ``limit`` source lines whose held memory grew most since the baseline."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ConfigurationError(f"limit must be a positive int, got {limit!r}")
        with self._lock:
            if self._baseline is None or not tracemalloc.is_tracing():
                raise MemoryManagerError("the leak finder is not running: call start() first")
            now = self._take()
            stats = now.compare_to(self._baseline, "lineno")
        growing = [s for s in stats if s.size_diff > 0]
        growing.sort(key=lambda s: s.size_diff, reverse=True)
        result = []
        for stat in growing[:limit]:
            frame = stat.traceback[0]
            result.append(
                AllocationGrowth(
                    filename=frame.filename,
                    lineno=frame.lineno,
                    size=stat.size,
                    size_diff=stat.size_diff,
                    count=stat.count,
                    count_diff=stat.count_diff,
                )
            )
        return result

    def stop(self) -> None:
        """Stop tracing if this finder started it; forget the baseline (idempotent)."""
        with self._lock:
            if self._started_here and tracemalloc.is_tracing():
                tracemalloc.stop()
            self._started_here = False
            self._baseline = None

    def __enter__(self) -> LeakFinder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LeakFinder(tracing={self.tracing}, started_here={self._started_here})"
