"""Pure helpers on (t, value) points: unit guessing and peak-keeping downsampling."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["downsample_minmax", "unit_for_metric"]

_SUFFIX_UNITS = (
    ("_bytes", "bytes"),
    ("_seconds", "s"),
    ("_ratio", "ratio"),
    ("_percent", "%"),
)
_NAME_UNITS = {
    "aimax_pool_size": "threads",
    "aimax_pool_active": "threads",
    "aimax_pool_queued": "tasks",
    "aimax_memory_pressure_level": "level",
}


def unit_for_metric(name: str) -> str:
    """The unit a Prometheus-style metric name implies (``bytes``, ``s``, ``ratio``, ``%``),
    or a known aimax gauge's (``threads``, ``tasks``); ``""`` if none.

    >>> unit_for_metric("aimax_memory_rss_bytes"), unit_for_metric("aimax_pool_size")
    ('bytes', 'threads')
    """
    if name in _NAME_UNITS:
        return _NAME_UNITS[name]
    for suffix, unit in _SUFFIX_UNITS:
        if name.endswith(suffix):
            return unit
    return ""


def downsample_minmax(
    points: Sequence[tuple[float, float]], max_points: int
) -> list[tuple[float, float]]:
    """At most ``max_points`` points that keep every bucket's minimum and maximum.

    The points (sorted by time) are cut into ``max_points // 2`` buckets of equal count;
    each bucket keeps its lowest and highest point in time order, so peaks and dips
    survive plotting. Fewer points than ``max_points`` are returned unchanged.

        >>> pts = [(float(t), float(t % 7)) for t in range(100)]
        >>> small = downsample_minmax(pts, 10)
        >>> len(small) <= 10, max(v for _, v in small)
        (True, 6.0)
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    n = len(points)
    if n <= max_points:
        return list(points)
    buckets = max_points // 2
    out: list[tuple[float, float]] = []
    for b in range(buckets):
        lo = b * n // buckets
        hi = (b + 1) * n // buckets
        chunk = points[lo:hi]
        i_min = min(range(len(chunk)), key=lambda i: chunk[i][1])
        i_max = max(range(len(chunk)), key=lambda i: chunk[i][1])
        out.extend(chunk[i] for i in sorted({i_min, i_max}))
    return out
