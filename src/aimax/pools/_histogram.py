"""A sparse log-linear histogram of nanosecond durations (HdrHistogram-like).

Each power of two is split into 16 linear sub-buckets, so a bucket is at most ~6 %
wide (relative error of a reported percentile at most ~3 % with mid-bucket values).
Workers do not touch a shared histogram: each appends one packed int per task (the
wait bucket and the run bucket, see :func:`pack`) to a list it owns, and whoever
holds the pool's lock moves those lists into the pool's two :class:`Histogram`
objects with :func:`drain`, counting in C. A :class:`Histogram` keeps dense counts
and the range of buckets hit, so its percentiles are one C pass over that range
(a few hundred buckets at most), not over the ~800 possible ones. The functions on
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
    """Dense bucket counts, with a total per octave (lock-free: the owner locks).

    A quantile is found in two short cumulative passes (in C): over the octaves hit,
    then over the 16 buckets of the octave holding it; never over every bucket.
    """

    __slots__ = ("counts", "high", "low", "octaves", "total")

    def __init__(self) -> None:
        self.counts = [0] * SIZE
        self.octaves = [0] * (SIZE >> SUB_BITS)  # counts summed per 16 buckets
        self.low = SIZE >> SUB_BITS  # first octave hit (none yet)
        self.high = -1  # last octave hit
        self.total = 0

    def add(self, index: int, count: int = 1) -> None:
        """Count ``count`` durations in bucket ``index``."""
        self.counts[index] += count
        octave = index >> SUB_BITS
        self.octaves[octave] += count
        self.total += count
        self.low = min(self.low, octave)
        self.high = max(self.high, octave)

    def update(self, counts: Mapping[int, int]) -> None:
        """Add a mapping of bucket -> count (a :class:`~collections.Counter`)."""
        dense = self.counts
        octaves = self.octaves
        low, high = self.low, self.high
        for index, count in counts.items():
            dense[index] += count
            octave = index >> SUB_BITS
            octaves[octave] += count
            low = min(low, octave)
            high = max(high, octave)
            self.total += count
        self.low, self.high = low, high

    def percentiles(self, qs: Sequence[float]) -> list[float]:
        """Several quantiles (0 < q <= 1) in ns: NaN each when nothing was counted."""
        total = self.total
        if total <= 0:
            return [float("nan")] * len(qs)
        low = self.low
        by_octave = list(accumulate(self.octaves[low : self.high + 1]))
        out = []
        for q in qs:
            rank = max(1, -int(-q * total // 1))  # ceil(q * total), at least the first
            i = bisect_left(by_octave, rank)
            before = by_octave[i - 1] if i else 0
            first = (low + i) << SUB_BITS
            within = list(accumulate(self.counts[first : first + SUB]))
            out.append(bucket_value(first + bisect_left(within, rank - before)))
        return out


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
