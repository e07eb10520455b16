"""A sparse log-linear histogram of nanosecond durations (HdrHistogram-like).

Each power of two is split into 16 linear sub-buckets, so a bucket is at most ~6 %
wide (relative error of a reported percentile at most ~3 % with mid-bucket values).
Workers do not touch a shared histogram: each appends one packed int per task (the
wait bucket and the run bucket, see :func:`pack`) to a list it owns, and whoever
holds the pool's lock moves those lists into the pool's two :class:`Histogram`
objects with :func:`drain`, counting in C. A :class:`Histogram` keeps its p50, p95
and p99 up to date as counts arrive, so reading them costs nothing. The functions on
plain mappings (:func:`new_histogram`, :func:`percentiles`) serve small cases.

    >>> h = new_histogram()
    >>> for ns in (1_000, 2_000, 3_000, 4_000):
    ...     h[bucket(ns)] += 1
    >>> 0.9 < percentile(h, 0.5) / 2_000 < 1.1
    True
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import accumulate, repeat
from operator import and_, itemgetter, rshift
from typing import Any

__all__ = [
    "PACK_BITS",
    "SIZE",
    "Histogram",
    "bucket",
    "bucket_value",
    "drain",
    "merge_into",
    "new_histogram",
    "pack",
    "percentile",
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

_second = itemgetter(1)


def new_histogram() -> Counter[int]:
    """An empty histogram (bucket index -> count)."""
    return Counter()


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


class Histogram:
    """Dense bucket counts that follow a few quantiles as counts arrive (the owner locks).

    ``tracked`` quantiles (p50, p95, p99 by default) are kept up to date by
    :meth:`add` / :meth:`update`: each remembers its bucket and how many durations
    lie below it, and moves a bucket or two when counts arrive, so reading them costs
    nothing however many buckets are hit. Other quantiles take one pass in C over
    the range of buckets hit.
    """

    __slots__ = ("_marks", "counts", "high", "low", "total", "tracked")

    def __init__(self, tracked: Sequence[float] = (0.50, 0.95, 0.99)) -> None:
        self.counts = [0] * SIZE
        self.low = SIZE  # first bucket hit (none yet)
        self.high = -1  # last bucket hit
        self.total = 0
        self.tracked = tuple(tracked)
        # per tracked quantile: [q, bucket, durations in the buckets below it]
        self._marks: list[list[Any]] = [[q, 0, 0] for q in self.tracked]

    def add(self, index: int, count: int = 1) -> None:
        """Count ``count`` durations in bucket ``index``."""
        self.counts[index] += count
        for mark in self._marks:
            if index < mark[1]:
                mark[2] += count
        self.total += count
        self.low = min(self.low, index)
        self.high = max(self.high, index)
        self._settle()

    def update(self, counts: Mapping[int, int]) -> None:
        """Add a mapping of bucket -> count (a :class:`~collections.Counter`)."""
        if not counts:
            return
        dense = self.counts
        marks = self._marks
        added = 0
        for index, count in counts.items():
            dense[index] += count
            added += count
            for mark in marks:
                if index < mark[1]:
                    mark[2] += count
        self.total += added
        self.low = min(self.low, *counts)
        self.high = max(self.high, *counts)
        self._settle()

    def _settle(self) -> None:
        """Move each tracked quantile to the first bucket whose cumulative count
        reaches its rank, ceil(q * total) (as :func:`percentiles` defines it)."""
        dense = self.counts
        total = self.total
        for mark in self._marks:
            q, index, below = mark
            rank = max(1, -int(-q * total // 1))
            while below >= rank:  # counts arrived below it: step down
                index -= 1
                below -= dense[index]
            while below + dense[index] < rank:  # not reached yet: step up
                below += dense[index]
                index += 1
            mark[1] = index
            mark[2] = below

    def percentiles(self, qs: Sequence[float]) -> list[float]:
        """Several quantiles (0 < q <= 1) in ns: NaN each when nothing was counted."""
        total = self.total
        if total <= 0:
            return [float("nan")] * len(qs)
        if tuple(qs) == self.tracked:
            return [bucket_value(mark[1]) for mark in self._marks]
        low = self.low
        cumulative = list(accumulate(self.counts[low : self.high + 1]))
        return [
            bucket_value(low + bisect_left(cumulative, max(1, -int(-q * total // 1)))) for q in qs
        ]


def drain(pending: list[int], wait: Histogram, run: Histogram) -> int:
    """Move the packed pairs in ``pending`` into ``wait`` and ``run``; returns how many.

    Safe while ``pending``'s owner appends to it: the slice and the deletion are each
    atomic and the owner only appends at the end, so an entry is either moved now or
    left for the next drain, never lost or counted twice. Two drains of one list must
    not run at once (the pool drains under its lock).
    """
    n = len(pending)
    if n == 0:
        return 0
    batch = pending[:n]
    del pending[:n]
    # Counter() of an iterable counts in C; map/rshift/and_ run in C too: the Python
    # loop is over the distinct buckets only
    wait.update(Counter(map(rshift, batch, repeat(PACK_BITS, n))))
    run.update(Counter(map(and_, batch, repeat(_MASK, n))))
    return n


def merge_into(target: Counter[int], source: Mapping[int, int]) -> None:
    """Add ``source``'s counts to ``target`` in place."""
    target.update(source)


def percentile(hist: Mapping[int, int], q: float) -> float:
    """The ``q``-quantile (0 < q <= 1) in ns, or NaN for an empty histogram."""
    return percentiles(hist, (q,))[0]


def percentiles(hist: Mapping[int, int], qs: Sequence[float]) -> list[float]:
    """Several quantiles at once: one sort of the buckets hit, a bisection each."""
    items = sorted(hist.items())
    cumulative = list(accumulate(map(_second, items)))
    total = cumulative[-1] if cumulative else 0
    if total <= 0:
        return [float("nan")] * len(qs)
    # a bucket with a zero count never ends the bisection: its cumulative equals the
    # one before it, which then reaches the rank first
    # rank: ceil(q * total), at least the first sample
    return [
        bucket_value(items[bisect_left(cumulative, max(1, -int(-q * total // 1)))][0]) for q in qs
    ]
