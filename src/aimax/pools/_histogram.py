"""A log-linear histogram of nanosecond durations (HdrHistogram-like).

Each power of two is split into 16 linear sub-buckets, so a bucket is at most ~6 %
wide (relative error of a reported percentile at most ~3 % with mid-bucket values).
Workers do not touch a shared histogram: each appends one packed int per task (the
wait bucket and the run bucket, see :func:`pack`) to a list it owns, and whoever
holds the pool's lock moves those lists into the pool's two :class:`Histogram`
objects with :func:`drain`, counting in C. A :class:`Histogram` keeps its p50, p95
and p99 up to date as counts arrive, so reading them costs nothing.
:func:`percentiles` is the definition they follow, on any bucket -> count mapping.

    >>> h = Histogram()
    >>> for ns in (1_000, 2_000, 3_000, 4_000):
    ...     h.add(bucket(ns))
    >>> 0.9 < h.quantiles()[0] / 2_000 < 1.1
    True
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate, repeat
from operator import and_, itemgetter, rshift

__all__ = [
    "PACK_BITS",
    "QUANTILES",
    "SIZE",
    "Histogram",
    "bucket",
    "bucket_value",
    "drain",
    "drain_all",
    "pack",
    "percentiles",
]

SUB_BITS = 4
SUB = 1 << SUB_BITS  # 16 sub-buckets per octave
_SMALL = SUB * 2  # durations below 32 ns get one bucket each
MAX_BITS = 48  # ~78 hours; longer durations share the last bucket
SIZE = (MAX_BITS << SUB_BITS) + SUB
PACK_BITS = 10  # SIZE <= 1 << PACK_BITS: a (wait, run) pair of buckets packs into one int
_MASK = (1 << PACK_BITS) - 1
assert SIZE <= 1 << PACK_BITS
QUANTILES = (0.50, 0.95, 0.99)
"""The quantiles a :class:`Histogram` follows."""

_second = itemgetter(1)


def bucket(ns: int) -> int:
    """The bucket index of a duration in nanoseconds (negative counts as 0)."""
    if ns < _SMALL:
        return max(ns, 0)
    bits = ns.bit_length()
    if bits > MAX_BITS:
        return SIZE - 1
    return (bits << SUB_BITS) | ((ns >> (bits - SUB_BITS - 1)) & (SUB - 1))


def pack(wait_ns: int, run_ns: int) -> int:
    """One task's two durations as one int (the pool's workers inline this)."""
    return (bucket(wait_ns) << PACK_BITS) | bucket(run_ns)


def bucket_value(index: int) -> float:
    """A representative duration (ns) of a bucket: its middle."""
    if index < _SMALL:
        return float(index)
    bits = index >> SUB_BITS
    sub = index & (SUB - 1)
    shift = bits - SUB_BITS - 1
    low = (SUB + sub) << shift
    return low + ((1 << shift) - 1) / 2.0


def _rank(q: float, total: int) -> int:
    """ceil(q * total), at least the first duration."""
    return max(1, -int(-q * total // 1))


def percentiles(hist: Mapping[int, int], qs: Sequence[float]) -> list[float]:
    """Quantiles (0 < q <= 1, in ns) of a bucket -> count mapping; NaN when empty.

    A quantile is the value of the first bucket whose cumulative count reaches
    ceil(q * total).
    """
    items = sorted(hist.items())
    cumulative = list(accumulate(map(_second, items)))
    total = cumulative[-1] if cumulative else 0
    if total <= 0:
        return [float("nan")] * len(qs)
    # a bucket with a zero count never ends the bisection: its cumulative equals the
    # one before it, which then reaches the rank first
    return [bucket_value(items[bisect_left(cumulative, _rank(q, total))][0]) for q in qs]


class Histogram:
    """Dense bucket counts that follow :data:`QUANTILES` as counts arrive (the owner locks).

    Each quantile remembers its bucket and how many durations lie below it, and
    moves a bucket or two when counts arrive (:meth:`add`, :meth:`add_all`,
    :meth:`update`), so :meth:`quantiles` costs nothing however many buckets are hit.
    The result is the same as :func:`percentiles` of the counts.
    """

    __slots__ = ("_at", "_below", "_values", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * SIZE
        self.total = 0
        # per quantile: its bucket, and how many durations lie in the buckets below it
        self._at = [0] * len(QUANTILES)
        self._below = [0] * len(QUANTILES)
        self._values = [float("nan")] * len(QUANTILES)  # the quantiles' buckets, in ns

    def add(self, index: int, count: int = 1) -> None:
        """Count ``count`` durations in bucket ``index``."""
        self.update({index: count})

    def add_all(self, indices: Sequence[int]) -> None:
        """Count one duration in each bucket of ``indices`` (repeats count again).

        For a few durations at a time (a pool read between two samples): no mapping
        is built, and the quantiles' "below" counts are corrected in C.
        """
        if not indices:
            return
        dense = self.counts
        for index in indices:
            dense[index] += 1
        self.total += len(indices)
        below = self._below
        for i, at in enumerate(self._at):
            below[i] += sum(map(at.__gt__, indices))
        self._settle()

    def update(self, counts: Mapping[int, int]) -> None:
        """Add a mapping of bucket -> count (a :class:`~collections.Counter`)."""
        dense = self.counts
        at, below = self._at, self._below
        for index, count in counts.items():
            dense[index] += count
            self.total += count
            for i, mark in enumerate(at):
                if index < mark:
                    below[i] += count
        self._settle()

    def _settle(self) -> None:
        """Move each quantile to the first bucket whose cumulative count reaches its rank."""
        total = self.total
        if total == 0:
            return
        dense, at, below, values = self.counts, self._at, self._below, self._values
        for i, q in enumerate(QUANTILES):
            index, count, rank = at[i], below[i], _rank(q, total)
            while count >= rank:  # counts arrived below it: step down
                index -= 1
                count -= dense[index]
            while count + dense[index] < rank:  # not reached yet: step up
                count += dense[index]
                index += 1
            at[i], below[i], values[i] = index, count, _VALUES[index]

    def quantiles(self) -> list[float]:
        """p50, p95, p99 in ns (:data:`QUANTILES`), NaN each when nothing was counted."""
        return list(self._values)


# every bucket's value, looked up by Histogram (32..79 are never a bucket: NaN)
_VALUES = tuple(
    bucket_value(i) if i < _SMALL or i >> SUB_BITS > SUB_BITS else float("nan") for i in range(SIZE)
)
_SMALL_BATCH = 32  # up to this many durations, Histogram.add_all beats counting first


def drain(pending: list[int], wait: Histogram, run: Histogram) -> int:
    """Move the packed pairs in ``pending`` into ``wait`` and ``run``; returns how many.

    Safe while ``pending``'s owner appends to it: the slice and the deletion are each
    atomic and the owner only appends at the end, so an entry is either moved now or
    left for the next drain, never lost or counted twice. Two drains of one list must
    not run at once (the pool drains under its lock).
    """
    return drain_all((pending,), wait, run)


def drain_all(pendings: Iterable[list[int]], wait: Histogram, run: Histogram) -> int:
    """:func:`drain` of several lists at once (one count for all of them)."""
    batch: list[int] = []
    for pending in pendings:
        n = len(pending)
        if n:
            batch += pending[:n]
            del pending[:n]
    n = len(batch)
    # map/rshift/and_ run in C; a large batch is counted in C too (Counter), so the
    # Python loop is over the distinct buckets only
    waits = map(rshift, batch, repeat(PACK_BITS, n))
    runs = map(and_, batch, repeat(_MASK, n))
    if n <= _SMALL_BATCH:
        wait.add_all(list(waits))
        run.add_all(list(runs))
    else:
        wait.update(Counter(waits))
        run.update(Counter(runs))
    return n
