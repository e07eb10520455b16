"""A log-linear histogram of nanosecond durations (HdrHistogram-like).

Each power of two is split into 16 linear sub-buckets, so a bucket is at most ~6 %
wide: a quantile read as its bucket's middle is within ~3 % of the true value. The
histogram is a plain object: its owner serialises access (a pool records under its
lock). Quantiles are computed when read, from the counts.

Every power of two of nanoseconds is a bucket edge, so the cumulative counts at
:data:`EDGES_NS` (powers of four, 1.024 us to 68.7 s) are exact: they are what the
Prometheus exposition's ``_bucket{le=...}`` series carry.

    >>> h = LogLinearHistogram()
    >>> for ns in (1_000, 2_000, 3_000, 4_000):
    ...     h.record(ns)
    >>> 0.9 < h.quantile(0.5) / 2_000 < 1.1
    True
    >>> h.count, h.sum_ns
    (4, 10000)
"""

from __future__ import annotations

from bisect import bisect_left
from itertools import accumulate

__all__ = [
    "EDGES_NS",
    "LogLinearHistogram",
    "bucket",
    "bucket_value",
]

SUB_BITS = 4
SUB = 1 << SUB_BITS  # 16 sub-buckets per octave
_SMALL = SUB * 2  # durations below 32 ns get one bucket each
MAX_BITS = 48  # ~78 hours; longer durations share the last bucket
SIZE = (MAX_BITS << SUB_BITS) + SUB

EDGES_NS: tuple[int, ...] = tuple(1 << k for k in range(10, 37, 2))
"""Exported bucket bounds (ns): 2**10 .. 2**36, each a bucket edge of the histogram."""


def bucket(ns: int) -> int:
    """The bucket index of a duration in nanoseconds (negative counts as 0)."""
    if ns < _SMALL:
        return max(ns, 0)
    bits = ns.bit_length()
    if bits > MAX_BITS:
        return SIZE - 1
    return (bits << SUB_BITS) | ((ns >> (bits - SUB_BITS - 1)) & (SUB - 1))


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


_EDGE_BUCKETS = tuple(bucket(edge) for edge in EDGES_NS)  # first bucket at or above each edge


class LogLinearHistogram:
    """Counts of durations by log-linear bucket, their number and their sum (ns).

    The counts are a fixed-size list (one slot per bucket), so memory stays bounded
    and a copy taken while another thread records is a list of the same length.
    Not locked: the owner serialises :meth:`record` and the reads.
    """

    __slots__ = ("count", "counts", "sum_ns")

    def __init__(self) -> None:
        self.counts = [0] * SIZE
        self.count = 0
        self.sum_ns = 0

    def record(self, ns: int) -> None:
        """Count one duration of ``ns`` nanoseconds (negative counts as 0)."""
        self.counts[bucket(ns)] += 1
        self.count += 1
        self.sum_ns += max(ns, 0)

    def quantiles(self, qs: tuple[float, ...]) -> list[float]:
        """The quantiles ``qs`` (0 < q <= 1) in ns; NaN each when nothing was counted.

        A quantile is the middle of the first bucket whose cumulative count reaches
        ceil(q * count).
        """
        return self.read(qs)[0]

    def quantile(self, q: float) -> float:
        """One quantile in ns (see :meth:`quantiles`)."""
        return self.quantiles((q,))[0]

    def cumulative(self) -> tuple[int, ...]:
        """Durations below each of :data:`EDGES_NS`, cumulative, then all of them (+Inf).

        Exact: every edge is a bucket boundary.
        """
        return self.read(())[1]

    def read(self, qs: tuple[float, ...]) -> tuple[list[float], tuple[int, ...]]:
        """:meth:`quantiles` and :meth:`cumulative` from one pass over the counts."""
        running = list(accumulate(self.counts))
        total = running[-1]
        below = (*(running[edge - 1] for edge in _EDGE_BUCKETS), total)
        if total == 0:
            return [float("nan")] * len(qs), below
        return [bucket_value(bisect_left(running, _rank(q, total))) for q in qs], below

    def copy(self) -> LogLinearHistogram:
        """An independent copy; ``count`` is taken from the copied counts.

        Safe while another thread records (the list keeps its length); the copy's
        ``sum_ns`` may then miss the one duration being recorded.
        """
        other = LogLinearHistogram()
        other.counts = list(self.counts)
        other.count = sum(other.counts)
        other.sum_ns = self.sum_ns
        return other
