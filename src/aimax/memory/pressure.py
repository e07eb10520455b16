"""The pure core: a memory budget and pressure levels with hysteresis.

No I/O, no threads, no clock: readings and time are passed in. A level rises at
once when usage crosses its threshold; it falls only when usage has dropped below
the threshold minus ``hysteresis`` *and* the level has been held at least
``min_hold`` seconds, so it does not flap around a threshold::

    >>> tracker = PressureTracker(PressureThresholds(elevated=0.8, critical=0.95,
    ...                                              hysteresis=0.05, min_hold=0))
    >>> tracker.update(used=81, budget=100, now=0.0).level
    <PressureLevel.ELEVATED: 1>
    >>> tracker.update(used=77, budget=100, now=1.0) is None   # inside the band: stays
    True
    >>> tracker.update(used=74, budget=100, now=2.0).level
    <PressureLevel.NORMAL: 0>
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from enum import IntEnum

from aimax._clock import as_seconds
from aimax.errors import ConfigurationError

__all__ = [
    "LevelChange",
    "MemoryBudget",
    "PressureLevel",
    "PressureThresholds",
    "PressureTracker",
]


class PressureLevel(IntEnum):
    """How close the process is to its budget (the metric value is the int)."""

    NORMAL = 0
    ELEVATED = 1
    CRITICAL = 2


def _fraction(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigurationError(f"{name} must be a number in (0, 1], got {value!r}")
    if not 0 < value <= 1:
        raise ConfigurationError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class MemoryBudget:
    """How many bytes the process may use: explicit bytes, or a fraction of the limit.

    The effective limit is ``min(cgroup limit, physical memory)``.

        >>> MemoryBudget.of(512 * 2**20).resolve(limit=8 * 2**30)
        536870912
        >>> MemoryBudget.of(0.5).resolve(limit=1000)
        500
        >>> MemoryBudget.of(0)
        Traceback (most recent call last):
        ...
        aimax.errors.ConfigurationError: budget must be a positive number of bytes, got 0
    """

    bytes: int | None = None
    fraction: float | None = None

    def __post_init__(self) -> None:
        if (self.bytes is None) == (self.fraction is None):
            raise ConfigurationError("a MemoryBudget takes exactly one of bytes or fraction")
        if self.bytes is not None and (
            isinstance(self.bytes, bool) or not isinstance(self.bytes, int) or self.bytes <= 0
        ):
            raise ConfigurationError(
                f"budget must be a positive number of bytes, got {self.bytes!r}"
            )
        if self.fraction is not None:
            _fraction(self.fraction, "budget fraction")

    @classmethod
    def of(cls, value: int | float | MemoryBudget) -> MemoryBudget:
        """An int is bytes; a float in (0, 1] is a fraction of the effective limit."""
        if isinstance(value, MemoryBudget):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(
                f"budget must be bytes (int) or a fraction in (0, 1] (float), got {value!r}"
            )
        if isinstance(value, int):
            return cls(bytes=value)
        if math.isfinite(value) and value > 1 and value.is_integer():
            raise ConfigurationError(
                f"a float budget is a fraction in (0, 1], got {value!r}; pass bytes as an int"
            )
        return cls(fraction=_fraction(value, "budget fraction"))

    def resolve(self, *, limit: int) -> int:
        """The budget in bytes, given the effective limit in bytes."""
        if self.bytes is not None:
            return self.bytes
        assert self.fraction is not None
        return max(1, int(limit * self.fraction))

    def __str__(self) -> str:
        if self.bytes is not None:
            return f"{self.bytes} bytes"
        return f"{self.fraction:g} of the limit"


@dataclass(frozen=True, slots=True, kw_only=True)
class PressureThresholds:
    """Usage ratios (used / budget) at which each level starts, and the hysteresis.

    A level is left only below ``threshold - hysteresis`` and after ``min_hold``
    seconds (float or ``timedelta``) at that level.
    """

    elevated: float = 0.85
    critical: float = 0.95
    hysteresis: float = 0.05
    min_hold: float | timedelta = field(default=5.0)

    def __post_init__(self) -> None:
        for name in ("elevated", "critical"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"{name} threshold must be a number, got {value!r}")
            if not 0 < value <= 2:
                raise ConfigurationError(f"{name} threshold must be in (0, 2], got {value!r}")
        if not self.elevated < self.critical:
            raise ConfigurationError(
                f"elevated ({self.elevated!r}) must be below critical ({self.critical!r})"
            )
        h = self.hysteresis
        if isinstance(h, bool) or not isinstance(h, int | float) or not 0 <= h < self.elevated:
            raise ConfigurationError(
                f"hysteresis must be in [0, elevated={self.elevated!r}), got {h!r}"
            )
        object.__setattr__(
            self, "min_hold", as_seconds(self.min_hold, name="min_hold", allow_zero=True)
        )

    @property
    def hold_seconds(self) -> float:
        """``min_hold`` as float seconds."""
        assert isinstance(self.min_hold, float)
        return self.min_hold

    def threshold(self, level: PressureLevel) -> float:
        """The ratio at which ``level`` starts (0 for NORMAL)."""
        if level is PressureLevel.CRITICAL:
            return self.critical
        if level is PressureLevel.ELEVATED:
            return self.elevated
        return 0.0

    def clear_ratio(self, level: PressureLevel) -> float:
        """Usage must drop below this ratio for ``level`` to be left."""
        return self.threshold(level) - self.hysteresis

    def classify(self, ratio: float) -> PressureLevel:
        """The level for ``ratio`` without hysteresis (what a rise goes to)."""
        if ratio >= self.critical:
            return PressureLevel.CRITICAL
        if ratio >= self.elevated:
            return PressureLevel.ELEVATED
        return PressureLevel.NORMAL

    def settle(self, ratio: float, current: PressureLevel) -> PressureLevel:
        """The level ``current`` may fall to at ``ratio`` (``current`` if it must stay)."""
        level = PressureLevel.NORMAL
        for candidate in (PressureLevel.ELEVATED, PressureLevel.CRITICAL):
            if candidate <= current and ratio >= self.clear_ratio(candidate):
                level = candidate
        return level


@dataclass(frozen=True, slots=True)
class LevelChange:
    """A change of pressure level, handed to level listeners."""

    previous: PressureLevel
    level: PressureLevel
    ratio: float
    used: int
    budget: int
    at: float

    @property
    def rising(self) -> bool:
        """Whether pressure went up."""
        return self.level > self.previous


class PressureTracker:
    """The level state machine: feed it readings, it says when the level changes.

    Pure: ``update`` takes the reading and ``now``; nothing else is read.
    """

    def __init__(self, thresholds: PressureThresholds | None = None) -> None:
        self.thresholds = thresholds or PressureThresholds()
        self.level = PressureLevel.NORMAL
        self.since: float | None = None
        self.ratio = 0.0
        self.changes = 0

    def update(self, *, used: int, budget: int, now: float) -> LevelChange | None:
        """Account for a reading; return the change if the level changed, else ``None``."""
        if budget <= 0:
            raise ConfigurationError(f"budget must be positive, got {budget!r}")
        ratio = used / budget
        self.ratio = ratio
        previous = self.level
        rise = self.thresholds.classify(ratio)
        if rise > previous:
            new = rise
        else:
            new = self.thresholds.settle(ratio, previous)
            held = self.since is None or now - self.since >= self.thresholds.hold_seconds
            if new < previous and not held:
                new = previous
        if self.since is None:
            self.since = now
        if new == previous:
            return None
        self.level = new
        self.since = now
        self.changes += 1
        return LevelChange(previous, new, ratio, used, budget, now)

    def cleared(self, ratio: float) -> bool:
        """Whether ``ratio`` is low enough to leave every raised level (cleanup target)."""
        return ratio < self.thresholds.clear_ratio(PressureLevel.ELEVATED)

    def __repr__(self) -> str:
        return f"PressureTracker(level={self.level.name}, ratio={self.ratio:.3f})"
