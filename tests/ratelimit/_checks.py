"""Exactness checks shared by the limiter's tests (and the Redis backend's).

A grant of ``cost`` units at time ``t`` occupies the half-open window ``[t, t + W)``;
"exact" means the units of the grants inside ANY interval ``[s, s + W)`` never exceed
the limit. The check uses the same comparison as the limiter (``t_old + W <= t``) so
float rounding cannot report a violation the limiter did not make.
"""

from __future__ import annotations

from collections.abc import Iterable


def max_in_window(grants: Iterable[tuple[float, int]], window: float) -> int:
    """Max units granted in any sliding window of ``window`` seconds.

    ``grants`` are ``(time, cost)`` pairs in any order.

        >>> max_in_window([(0.0, 1), (0.5, 2), (1.0, 1)], 1.0)
        3
        >>> max_in_window([(0.0, 1), (0.999, 1), (1.5, 1)], 1.0)
        2
    """
    events = sorted(grants)
    best = 0
    total = 0
    start = 0
    for time, cost in events:
        total += cost
        while events[start][0] + window <= time:
            total -= events[start][1]
            start += 1
        best = max(best, total)
    return best


def worst_window(grants: Iterable[tuple[float, int]], window: float) -> tuple[int, float]:
    """``(units, start)`` of the fullest sliding window (for failure messages)."""
    events = sorted(grants)
    best, best_start = 0, events[0][0] if events else 0.0
    total = 0
    start = 0
    for time, cost in events:
        total += cost
        while events[start][0] + window <= time:
            total -= events[start][1]
            start += 1
        if total > best:
            best, best_start = total, events[start][0]
    return best, best_start


def assert_exact(grants: Iterable[tuple[float, int]], window: float, limit: int) -> int:
    """Assert no sliding window holds more than ``limit`` units; return the max seen."""
    grants = list(grants)
    units, start = worst_window(grants, window)
    assert units <= limit, (
        f"{units} units in the window starting at {start} (limit {limit}, window {window})"
    )
    return units


def units_between(grants: Iterable[tuple[float, int]], start: float, end: float) -> int:
    """Units granted in ``[start, end)``."""
    return sum(cost for time, cost in grants if start <= time < end)
