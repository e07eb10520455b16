"""A fixed-bucket log-linear histogram of nanosecond durations (HdrHistogram-like).

Each power of two is split into 16 linear sub-buckets, so a bucket is at most ~6 %
wide (relative error of a reported percentile at most ~3 % with mid-bucket values).
Recording is a few integer operations on a plain list (done inline on the workers'
hot path, see ``pool.py``); percentiles are computed only when asked.

    >>> h = new_histogram()
    >>> for ns in (1_000, 2_000, 3_000, 4_000):
    ...     h[bucket(ns)] += 1
    >>> 0.9 < percentile(h, 0.5) / 2_000 < 1.1
    True
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate
from operator import add

__all__ = [
    "SIZE",
    "bucket",
    "bucket_value",
    "merge_into",
    "new_histogram",
    "percentile",
    "percentiles",
]

SUB_BITS = 4
SUB = 1 << SUB_BITS  # 16 sub-buckets per octave
_SMALL = SUB * 2  # durations below 32 ns get one bucket each
MAX_BITS = 48  # ~78 hours; longer durations share the last bucket
SIZE = (MAX_BITS << SUB_BITS) + SUB


def new_histogram() -> list[int]:
    """An empty histogram."""
    return [0] * SIZE


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


def merge_into(target: list[int], source: Sequence[int]) -> None:
    """Add ``source``'s counts to ``target`` in place (the loop runs in C: the monitor
    merges every worker's histograms on each sample)."""
    target[:] = map(add, target, source)


def percentile(hist: Sequence[int], q: float) -> float:
    """The ``q``-quantile (0 < q <= 1) in ns, or NaN for an empty histogram."""
    return percentiles(hist, (q,))[0]


def percentiles(hist: Sequence[int], qs: Sequence[float]) -> list[float]:
    """Several quantiles at once (one pass to accumulate, in C; a bisection each)."""
    cumulative = list(accumulate(hist))
    total = cumulative[-1] if cumulative else 0
    if total == 0:
        return [float("nan")] * len(qs)
    # rank: ceil(q * total), at least the first sample
    return [bucket_value(bisect_left(cumulative, max(1, -int(-q * total // 1)))) for q in qs]
