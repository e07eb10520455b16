"""History of samples: a bounded raw ring plus downsampled long-term buckets (pure).

No threads, no I/O, no clock: the caller passes ``now``. Memory is fixed by the
configuration: ``ring_size`` raw points per series, and ``retention / bucket``
buckets (min, max, sum, count) per series, all in preallocated ``array('d')``
columns; at most ``max_series`` series are kept, and a series that has had no value
for longer than both the ring and the retention is dropped. So a monitor running for
days uses the same memory as after its first ``retention``.

    >>> h = History(HistoryConfig(ring_size=10, bucket=60))
    >>> for t in range(5):
    ...     refused = h.record(float(t), {"x": float(t)})
    >>> s = h.summary("x", window=None, now=4.0)
    >>> (s.count, s.min, s.mean, s.max, s.trend_per_hour)
    (5, 0.0, 2.0, 4.0, 3600.0)
"""

from __future__ import annotations

import functools
import math
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from math import isnan
from typing import Concatenate, Literal, ParamSpec, TypeVar

from aimax._clock import as_seconds
from aimax.errors import ConfigurationError

__all__ = [
    "Bucket",
    "History",
    "HistoryConfig",
    "MetricSummary",
    "Reduction",
    "percentile",
    "slope",
]

_NAN = math.nan

Reduction = Literal["last", "min", "mean", "max", "p95", "slope_per_hour"]
REDUCTIONS: tuple[str, ...] = ("last", "min", "mean", "max", "p95", "slope_per_hour")


@dataclass(frozen=True, kw_only=True, slots=True)
class HistoryConfig:
    """How much history to keep.

    ``ring_size`` raw samples per series (900 = 15 minutes at 1 Hz); long-term
    buckets of ``bucket`` seconds (1 minute) kept for ``retention`` (24 hours);
    at most ``max_series`` distinct series (new ones beyond it are not recorded).
    """

    ring_size: int = 900
    bucket: float | timedelta = 60.0
    retention: float | timedelta = timedelta(hours=24)
    max_series: int = 1000

    def __post_init__(self) -> None:
        if isinstance(self.ring_size, bool) or not isinstance(self.ring_size, int):
            raise ConfigurationError(f"ring_size must be an integer, got {self.ring_size!r}")
        if self.ring_size < 2:
            raise ConfigurationError(f"ring_size must be at least 2, got {self.ring_size}")
        if isinstance(self.max_series, bool) or not isinstance(self.max_series, int):
            raise ConfigurationError(f"max_series must be an integer, got {self.max_series!r}")
        if self.max_series < 1:
            raise ConfigurationError(f"max_series must be positive, got {self.max_series}")
        bucket = as_seconds(self.bucket, name="bucket")
        retention = as_seconds(self.retention, name="retention")
        if retention < bucket:
            raise ConfigurationError(
                f"retention ({retention}s) must be at least one bucket ({bucket}s)"
            )
        object.__setattr__(self, "bucket", bucket)
        object.__setattr__(self, "retention", retention)

    @property
    def bucket_seconds(self) -> float:
        """``bucket`` as float seconds."""
        return float(self.bucket)  # type: ignore[arg-type]  # normalised in __post_init__

    @property
    def bucket_count(self) -> int:
        """How many long-term buckets each series keeps."""
        return max(1, math.ceil(float(self.retention) / self.bucket_seconds))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Bucket:
    """One downsampled period of one series: ``[start, start + length)``."""

    start: float
    min: float
    mean: float
    max: float
    count: int


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """Statistics of one series over a window.

    ``trend_per_hour`` is the least-squares slope (units per hour), ``None`` with
    fewer than two points. ``approximate`` is True when long-term buckets were used:
    then the window is widened to whole buckets (it may start up to one bucket
    early), min, max, mean and count are exact over those buckets, ``p95`` is taken
    over the bucket means (weighted by their counts) and the trend is fitted to them.
    """

    key: str
    count: int
    min: float
    mean: float
    max: float
    p95: float
    last: float
    trend_per_hour: float | None
    start: float
    end: float
    approximate: bool = False

    def as_dict(self) -> dict[str, float | int | str | bool | None]:
        """A JSON-ready mapping."""
        return {
            "key": self.key,
            "count": self.count,
            "min": self.min,
            "mean": self.mean,
            "max": self.max,
            "p95": self.p95,
            "last": self.last,
            "trend_per_hour": self.trend_per_hour,
            "start": self.start,
            "end": self.end,
            "approximate": self.approximate,
        }


def _total(points: list[float]) -> float:
    """The exact sum; NaN when a point is NaN or when +inf and -inf both occur."""
    try:
        return math.fsum(points)
    except ValueError:  # -inf + inf
        return _NAN


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` with linear interpolation.

    The same definition as ``statistics.quantiles(..., method="inclusive")`` and
    numpy's default.

        >>> percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.95)
        4.8
    """
    if not values:
        raise ConfigurationError("percentile of no values")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    frac = pos - low
    return ordered[low] + (ordered[high] - ordered[low]) * frac


def _weighted_percentile(pairs: list[tuple[float, float]], q: float) -> float:
    ordered = sorted(pairs)
    total = sum(w for _, w in ordered)
    target = q * total
    cumulative = 0.0
    for value, weight in ordered:
        cumulative += weight
        if cumulative >= target:
            return value
    return ordered[-1][0]


def slope(points: Iterable[tuple[float, float, float]]) -> float | None:
    """Weighted least-squares slope (per second) of ``(t, value, weight)`` points.

    ``None`` when there are fewer than two distinct times.

        >>> slope([(0.0, 1.0, 1.0), (10.0, 3.0, 1.0)])
        0.2
    """
    pts = list(points)
    if len(pts) < 2:
        return None
    t0 = pts[0][0]
    sw = swt = swv = 0.0
    for t, v, w in pts:
        sw += w
        swt += w * (t - t0)
        swv += w * v
    if sw <= 0:
        return None
    mt = swt / sw
    mv = swv / sw
    num = den = 0.0
    for t, v, w in pts:
        dt = t - t0 - mt
        num += w * dt * (v - mv)
        den += w * dt * dt
    if den <= 0:
        return None
    return num / den


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(
    method: Callable[Concatenate[History, _P], _R],
) -> Callable[Concatenate[History, _P], _R]:
    @functools.wraps(method)
    def wrapper(self: History, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class _Column:
    __slots__ = ("counts", "last_bucket", "maxs", "mins", "ring", "sums")

    def __init__(self, ring_size: int, buckets: int) -> None:
        self.ring = array("d", [_NAN]) * ring_size
        self.mins = array("d", [_NAN]) * buckets
        self.maxs = array("d", [_NAN]) * buckets
        self.sums = array("d", [0.0]) * buckets
        self.counts = array("d", [0.0]) * buckets
        self.last_bucket = -1


@dataclass(slots=True)
class _Cache:
    entries: dict[tuple[str, str, float], tuple[int, float | None]] = field(default_factory=dict)


class History:
    """Bounded history of many series recorded at the same instants (pure: no clock).

    :meth:`record` takes ``now`` and a mapping ``series key -> value``; a series
    missing from a call simply has no point at that instant (no made-up zero).
    Every public method holds an internal lock, so a reader (a report, a dashboard)
    may read while the monitor's sampler records.
    """

    def __init__(self, config: HistoryConfig | None = None) -> None:
        self._lock = threading.RLock()
        self.config = config or HistoryConfig()
        self._n = self.config.ring_size
        self._b = self.config.bucket_count
        self._length = self.config.bucket_seconds
        self._times = array("d", [_NAN]) * self._n
        self._bucket_ids = array("d", [_NAN]) * self._b
        self._columns: dict[str, _Column] = {}
        self._seq = 0  # samples recorded so far
        self._open: int | None = None  # id of the open bucket
        self._open_seq = 0  # seq of the first sample of the open bucket
        self._last_time = -math.inf
        self.dropped_series = 0
        self._cache = _Cache()
        # the keys of the previous record() when they were every series held (None: the
        # fast path is off; an empty list would match a sample without any value)
        self._order: list[str] | None = None
        self._rings: list[array[float]] = []

    # ------------------------------------------------------------------ recording

    @_locked
    def record(self, now: float, values: Mapping[str, float]) -> list[str]:
        """Record one sample; returns keys refused because ``max_series`` was reached.

        ``now`` must not go backward.
        """
        if now < self._last_time:
            raise ConfigurationError(f"history time went backward: {now} < {self._last_time}")
        self._last_time = now
        bucket_id = math.floor(now / self._length)
        if self._open is None:
            self._open = bucket_id
            self._open_seq = self._seq
        elif bucket_id != self._open:
            self._close_bucket()
            self._open = bucket_id
            self._open_seq = self._seq
        pos = self._seq % self._n
        self._times[pos] = now
        refused: list[str] = []
        # fast path: the same series in the same order as last time (the usual case)
        order = list(values)
        if order == self._order:
            for ring, value in zip(self._rings, values.values(), strict=True):
                ring[pos] = value
            self._seq += 1
            return refused
        columns = self._columns
        if columns.keys() != values.keys():
            for key in columns.keys() - values.keys():
                columns[key].ring[pos] = _NAN
        for key, value in values.items():
            column = columns.get(key)
            if column is None:
                if len(columns) >= self.config.max_series:
                    refused.append(key)
                    continue
                column = columns[key] = _Column(self._n, self._b)
            column.ring[pos] = value
        self.dropped_series += len(refused)
        self._seq += 1
        if not refused and len(order) == len(columns):
            self._order = order
            self._rings = [columns[key].ring for key in order]
        else:
            self._order = None
            self._rings = []
        return refused

    def _ring_indices(self, first_seq: int) -> list[int]:
        first = max(first_seq, self._seq - self._n)
        return [s % self._n for s in range(first, self._seq)]

    def _close_bucket(self) -> None:
        assert self._open is not None
        bucket_id = self._open
        slot = bucket_id % self._b
        self._bucket_ids[slot] = float(bucket_id)
        first = max(self._open_seq, self._seq - self._n)
        count = self._seq - first
        horizon = bucket_id - max(self._b, math.ceil(self._n / max(1, count)))
        # the bucket's points are one or two contiguous runs of the ring: slice in C
        start = first % self._n
        end = start + count
        runs = [(start, end)] if end <= self._n else [(start, self._n), (0, end - self._n)]
        stale: list[str] = []
        for key, column in self._columns.items():
            ring = column.ring
            points = ring[runs[0][0] : runs[0][1]].tolist()  # one boxing pass, then C loops
            if len(runs) > 1:
                points += ring[runs[1][0] : runs[1][1]].tolist()
            total = _total(points)
            if isnan(total):  # some instants had no value: keep the others
                points = [v for v in points if not isnan(v)]
                total = _total(points)
            if points:
                column.mins[slot] = min(points)
                column.maxs[slot] = max(points)
                column.sums[slot] = total
                column.counts[slot] = float(len(points))
                column.last_bucket = bucket_id
            else:
                column.mins[slot] = _NAN
                column.maxs[slot] = _NAN
                column.sums[slot] = 0.0
                column.counts[slot] = 0.0
                if column.last_bucket < horizon:
                    stale.append(key)
        for key in stale:
            del self._columns[key]
        if stale:
            self._order = None
            self._rings = []
        self._cache.entries.clear()

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Samples recorded so far (not only those still held)."""
        return self._seq

    @_locked
    def keys(self) -> list[str]:
        """The series held, sorted."""
        return sorted(self._columns)

    def __iter__(self) -> Iterator[str]:
        """The series keys held, sorted (a snapshot: safe while recording goes on)."""
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in self._columns

    @_locked
    def points(self, key: str, *, since: float = -math.inf) -> list[tuple[float, float]]:
        """Raw ``(time, value)`` points of ``key`` still in the ring, oldest first."""
        column = self._columns.get(key)
        if column is None:
            return []
        out: list[tuple[float, float]] = []
        ring = column.ring
        times = self._times
        n = self._n
        # newest first, stopping at ``since``: cost follows the window, not the ring
        for seq in range(self._seq - 1, max(-1, self._seq - n - 1), -1):
            i = seq % n
            t = times[i]
            if t < since:
                break
            v = ring[i]
            if not isnan(v):
                out.append((t, v))
        out.reverse()
        return out

    def _iter_buckets(self, column: _Column, first_id: int) -> Iterator[tuple[int, int]]:
        if self._open is None:
            return
        last_id = self._open - 1
        first_id = max(first_id, self._open - self._b)
        for bucket_id in range(first_id, last_id + 1):
            slot = bucket_id % self._b
            if self._bucket_ids[slot] == bucket_id and column.counts[slot] > 0:
                yield bucket_id, slot

    @_locked
    def buckets(self, key: str, *, since: float = -math.inf) -> list[Bucket]:
        """Closed long-term buckets of ``key`` starting at or after ``since``, oldest first."""
        column = self._columns.get(key)
        if column is None or self._open is None:
            return []
        first_id = self._open - self._b if since == -math.inf else math.floor(since / self._length)
        return [
            Bucket(
                start=bucket_id * self._length,
                min=column.mins[slot],
                mean=column.sums[slot] / column.counts[slot],
                max=column.maxs[slot],
                count=int(column.counts[slot]),
            )
            for bucket_id, slot in self._iter_buckets(column, first_id)
        ]

    @_locked
    def oldest_raw_time(self) -> float | None:
        """Time of the oldest sample still in the raw ring."""
        if self._seq == 0:
            return None
        return self._times[max(0, self._seq - self._n) % self._n]

    @_locked
    def summary(
        self, key: str, *, window: float | timedelta | None, now: float
    ) -> MetricSummary | None:
        """Statistics of ``key`` over ``[now - window, now]`` (``None``: all raw points).

        Uses raw points when the ring covers the window, else the closed long-term
        buckets plus the raw points of the open bucket (``approximate=True``).
        Returns ``None`` when the series has no point in the window.
        """
        column = self._columns.get(key)
        if column is None:
            return None
        if window is None:
            return self._raw_summary(key, -math.inf)
        start = now - as_seconds(window, name="window")
        oldest = self.oldest_raw_time()
        if oldest is not None and (start >= oldest or self._seq <= self._n):
            return self._raw_summary(key, start)
        return self._bucket_summary(key, column, start)

    def _raw_summary(self, key: str, start: float) -> MetricSummary | None:
        pts = self.points(key, since=start)
        if not pts:
            return None
        values = [v for _, v in pts]
        trend = slope((t, v, 1.0) for t, v in pts)
        return MetricSummary(
            key=key,
            count=len(values),
            min=min(values),
            mean=math.fsum(values) / len(values),
            max=max(values),
            p95=percentile(values, 0.95),
            last=values[-1],
            trend_per_hour=None if trend is None else trend * 3600.0,
            start=pts[0][0],
            end=pts[-1][0],
        )

    def _bucket_summary(self, key: str, column: _Column, start: float) -> MetricSummary | None:
        first_id = math.floor(start / self._length)
        weighted: list[tuple[float, float]] = []
        trend_points: list[tuple[float, float, float]] = []
        lo = math.inf
        hi = -math.inf
        total = 0.0
        count = 0.0
        first_time = math.inf
        for bucket_id, slot in self._iter_buckets(column, first_id):
            n = column.counts[slot]
            mean = column.sums[slot] / n
            lo = min(lo, column.mins[slot])
            hi = max(hi, column.maxs[slot])
            total += column.sums[slot]
            count += n
            weighted.append((mean, n))
            trend_points.append(((bucket_id + 0.5) * self._length, mean, n))
            first_time = min(first_time, bucket_id * self._length)
        ring = column.ring
        last = _NAN
        end = -math.inf
        for i in self._ring_indices(self._open_seq):
            v = ring[i]
            if isnan(v):
                continue
            t = self._times[i]
            lo = min(lo, v)
            hi = max(hi, v)
            total += v
            count += 1
            weighted.append((v, 1.0))
            trend_points.append((t, v, 1.0))
            first_time = min(first_time, t)
            last = v
            end = t
        if count == 0:
            return None
        if isnan(last):  # no raw point in the open bucket: the last closed bucket's mean
            last = weighted[-1][0]
            end = trend_points[-1][0]
        trend = slope(trend_points)
        return MetricSummary(
            key=key,
            count=int(count),
            min=lo,
            mean=total / count,
            max=hi,
            p95=_weighted_percentile(weighted, 0.95),
            last=last,
            trend_per_hour=None if trend is None else trend * 3600.0,
            start=first_time,
            end=end,
            approximate=True,
        )

    @_locked
    def summaries(
        self, *, window: float | timedelta | None, now: float
    ) -> dict[str, MetricSummary]:
        """:meth:`summary` of every series that has points in the window."""
        out: dict[str, MetricSummary] = {}
        for key in self.keys():
            summary = self.summary(key, window=window, now=now)
            if summary is not None:
                out[key] = summary
        return out

    @_locked
    def reduce(self, key: str, function: str, window: float, now: float) -> float | None:
        """One figure of ``key`` over the last ``window`` seconds, for alert rules.

        ``function`` is one of ``last``, ``min``, ``mean``, ``max``, ``p95``,
        ``slope_per_hour``. Windows of two buckets or more read only closed buckets
        and are cached until the next bucket closes (so a 30-minute trend rule costs
        nothing per tick). ``slope_per_hour`` needs data spanning at least half the
        window, else ``None`` (not enough evidence).
        """
        if function not in REDUCTIONS:
            raise ConfigurationError(f"unknown reduction {function!r}; use one of {REDUCTIONS}")
        column = self._columns.get(key)
        if column is None:
            return None
        long = window >= 2 * self._length
        if long:
            cache_key = (key, function, window)
            open_id = self._open if self._open is not None else -1
            cached = self._cache.entries.get(cache_key)
            if cached is not None and cached[0] == open_id:
                return cached[1]
            result = self._reduce_buckets(column, function, window, now)
            self._cache.entries[cache_key] = (open_id, result)
            return result
        summary = self._raw_summary(key, now - window)
        return None if summary is None else _pick(summary, function, window)

    def _reduce_buckets(
        self, column: _Column, function: str, window: float, now: float
    ) -> float | None:
        first_id = math.floor((now - window) / self._length)
        chosen = list(self._iter_buckets(column, first_id))
        if not chosen:
            return None
        counts = [column.counts[s] for _, s in chosen]
        means = [column.sums[s] / column.counts[s] for _, s in chosen]
        if function == "last":
            return means[-1]
        if function == "min":
            return min(column.mins[s] for _, s in chosen)
        if function == "max":
            return max(column.maxs[s] for _, s in chosen)
        if function == "mean":
            return sum(column.sums[s] for _, s in chosen) / sum(counts)
        if function == "p95":
            return _weighted_percentile(list(zip(means, counts, strict=True)), 0.95)
        span = (chosen[-1][0] - chosen[0][0] + 1) * self._length
        if span < window / 2:
            return None
        trend = slope(
            ((b + 0.5) * self._length, m, c)
            for (b, _), m, c in zip(chosen, means, counts, strict=True)
        )
        return None if trend is None else trend * 3600.0

    @_locked
    def memory_bytes(self) -> int:
        """Bytes held by the preallocated arrays (the part that scales with series)."""
        per_column = (self._n + 4 * self._b) * 8
        return len(self._columns) * per_column + (self._n + self._b) * 8

    def __repr__(self) -> str:
        return (
            f"History(series={len(self._columns)}, samples={self._seq}, "
            f"ring={self._n}, buckets={self._b}x{self._length:g}s)"
        )


def _pick(summary: MetricSummary, function: str, window: float) -> float | None:
    if function == "last":
        return summary.last
    if function == "min":
        return summary.min
    if function == "max":
        return summary.max
    if function == "mean":
        return summary.mean
    if function == "p95":
        return summary.p95
    if summary.end - summary.start < window / 2:
        return None
    return summary.trend_per_hour
