"""ReportBuilder: collects a run's timeline and events, then makes the frozen report."""

from __future__ import annotations

import logging
import math
import numbers
import threading
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence

from aimax import _clock
from aimax._metrics import MetricSample, sample_key
from aimax.errors import ConfigurationError
from aimax.report._series import unit_for_metric
from aimax.report.model import (
    ActionRow,
    AlertRow,
    JsonValue,
    LimiterSection,
    MemorySection,
    OptimizationReport,
    PlanSection,
    PoolRow,
    TimeSeries,
)

__all__ = ["ReportBuilder"]

logger = logging.getLogger(__name__)


class _Buffer:
    """One series in O(cap) memory: equal-count buckets whose width doubles when full."""

    __slots__ = ("cap", "labels", "name", "pending_n", "pending_t", "pending_v", "points",
                 "stride", "unit")  # fmt: skip

    def __init__(self, name: str, labels: dict[str, str], unit: str, cap: int) -> None:
        self.name = name
        self.labels = labels
        self.unit = unit
        self.cap = cap
        self.points: list[tuple[float, float]] = []
        self.stride = 1  # raw samples per stored point
        # the bucket being filled, as running sums (never a list of raw samples)
        self.pending_n = 0
        self.pending_t = 0.0
        self.pending_v = 0.0

    def add(self, t: float, value: float) -> None:
        self.pending_n += 1
        self.pending_t += t
        self.pending_v += value
        if self.pending_n < self.stride:
            return
        self.points.append(self._pending_mean())
        self.pending_n, self.pending_t, self.pending_v = 0, 0.0, 0.0
        if len(self.points) >= self.cap:
            # halve: average neighbours; an odd last point is a whole bucket and stays
            pairs = [_mean(self.points[i : i + 2]) for i in range(0, len(self.points) - 1, 2)]
            if len(self.points) % 2:
                pairs.append(self.points[-1])
            self.points = pairs
            self.stride *= 2

    def _pending_mean(self) -> tuple[float, float]:
        return (self.pending_t / self.pending_n, self.pending_v / self.pending_n)

    def stored(self) -> int:
        return len(self.points) + (self.pending_n > 0)

    def snapshot(self) -> TimeSeries:
        points = list(self.points)
        if self.pending_n:
            points.append(self._pending_mean())
        return TimeSeries(name=self.name, unit=self.unit, labels=self.labels, points=points)


def _mean(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    n = len(points)
    return (sum(t for t, _ in points) / n, sum(v for _, v in points) / n)


class ReportBuilder:
    """Accumulates time-series points, actions, alerts and notes during a run.

    Thread-safe (the monitor's thread and the optimizer may both feed it). Memory is
    bounded:

    * at most ``max_points`` stored points per series: when a series fills up, each
      pair of neighbouring points is averaged (halving it) and from then on every
      stored point is the mean of twice as many raw samples, so a series always covers
      the whole run at an even resolution (a 1 s sampler with ``max_points=1000``
      keeps a point per 4 s after an hour). Averaging smooths short spikes; the peak
      figures belong in the sections (``MemorySection.peak_rss_bytes``);
    * at most ``max_series`` series: samples of further series are dropped, counted,
      and said in a note of the built report;
    * at most ``max_events`` actions and as many alerts: the oldest are dropped first,
      counted, and said in a note.

    Non-finite values (NaN, inf) are skipped and counted (a report holds finite numbers).
    Times are Unix seconds read from ``wall`` once per call unless ``t`` is given.

    Example::

        >>> from aimax._clock import FakeClock
        >>> clock = FakeClock(wall_start=1_750_000_000.0)
        >>> b = ReportBuilder(title="demo", wall=clock.time)
        >>> b.add_point("aimax_pool_size", 4, labels={"pool": "io"})
        >>> clock.advance(10)
        >>> _ = b.add_action("resize_pool", "queue backed up", details={"pool": "io", "to": 8})
        >>> report = b.build()
        >>> report.duration, report.series[0].unit, report.actions[0].action
        (10.0, 'threads', 'resize_pool')
    """

    def __init__(
        self,
        *,
        title: str = "aimax run",
        max_points: int = 1000,
        max_series: int = 200,
        max_events: int = 1000,
        wall: _clock.Clock = _clock.wall,
        started_at: float | None = None,
    ) -> None:
        if not isinstance(title, str):
            raise ConfigurationError(f"title must be a string, got {title!r}")
        for name, value, low in (
            ("max_points", max_points, 4),
            ("max_series", max_series, 1),
            ("max_events", max_events, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigurationError(f"{name} must be an integer >= {low}, got {value!r}")
        self._title = title
        self._max_points = max_points
        self._max_series = max_series
        self._wall = wall
        self._lock = threading.Lock()
        self._series: dict[str, _Buffer] = {}
        self._actions: deque[ActionRow] = deque(maxlen=max_events)
        self._alerts: deque[AlertRow] = deque(maxlen=max_events)
        self._notes: deque[str] = deque(maxlen=max_events)
        self._dropped_series = 0
        self._dropped_points = 0
        self._dropped_events = 0
        self._started_at = float(wall() if started_at is None else started_at)

    def __repr__(self) -> str:
        with self._lock:
            points = sum(b.stored() for b in self._series.values())
            return (
                f"<ReportBuilder title={self._title!r} series={len(self._series)} "
                f"points={points} actions={len(self._actions)} alerts={len(self._alerts)}>"
            )

    @property
    def started_at(self) -> float:
        """When the run began (Unix seconds): the builder's creation unless given."""
        return self._started_at

    # ------------------------------------------------------------------ time series

    def add_point(
        self,
        name: str,
        value: float,
        *,
        t: float | None = None,
        labels: Mapping[str, str] | None = None,
        unit: str | None = None,
    ) -> None:
        """Add one reading of the series ``name{labels}`` (unit guessed from the name)."""
        now = self._wall() if t is None else t
        with self._lock:
            self._add(name, dict(labels or {}), unit, now, value)

    def add_samples(
        self,
        samples: Iterable[MetricSample],
        *,
        t: float | None = None,
        names: Collection[str] | None = None,
    ) -> None:
        """Add a batch of monitor readings taken at one time ``t`` (default: now).

        ``names``, when given, keeps only the samples so named (e.g. the series the
        charts draw: :data:`aimax.report.charts.CHART_SERIES`, plus your own).
        """
        now = self._wall() if t is None else t
        with self._lock:
            for sample in samples:
                if names is None or sample.name in names:
                    self._add(sample.name, dict(sample.labels), None, now, sample.value)

    def _add(
        self, name: str, labels: dict[str, str], unit: str | None, t: object, value: object
    ) -> None:
        numbers_: list[float] = []
        for what, number in (("t", t), ("value", value)):
            if isinstance(number, bool) or not isinstance(number, numbers.Real):
                raise ConfigurationError(
                    f"{what} of series {name!r} must be a number, got {number!r}"
                )
            numbers_.append(float(number))
        t, value = numbers_
        if not (math.isfinite(value) and math.isfinite(t)):
            self._dropped_points += 1
            return
        key = sample_key(name, labels)
        buffer = self._series.get(key)
        if buffer is None:
            if len(self._series) >= self._max_series:
                if not self._dropped_series:
                    logger.warning(
                        "report builder keeps at most %d series; dropping %s and any further",
                        self._max_series,
                        key,
                    )
                self._dropped_series += 1
                return
            if not name:
                raise ConfigurationError("a series needs a non-empty name")
            guessed = unit_for_metric(name) if unit is None else unit
            buffer = self._series[key] = _Buffer(name, labels, guessed, self._max_points)
        buffer.add(t, value)

    def series(self) -> tuple[TimeSeries, ...]:
        """A snapshot of every series so far, in the order they first appeared."""
        with self._lock:
            return tuple(b.snapshot() for b in self._series.values())

    # ----------------------------------------------------------------------- events

    def add_action(
        self,
        action: str,
        reason: str = "",
        *,
        t: float | None = None,
        details: Mapping[str, JsonValue] | None = None,
    ) -> ActionRow:
        """Record something the optimizer did and why; returns the row."""
        row = ActionRow(
            time=self._wall() if t is None else t,
            action=action,
            reason=reason,
            details=details or {},
        )
        with self._lock:
            if len(self._actions) == self._actions.maxlen:
                self._dropped_events += 1
            self._actions.append(row)
        return row

    def add_alert(
        self,
        rule: str,
        *,
        severity: str = "warning",
        value: float | None = None,
        message: str = "",
        t: float | None = None,
        resolved_at: float | None = None,
    ) -> AlertRow:
        """Record an alert that fired (see :meth:`resolve_alert` for when it clears)."""
        row = AlertRow(
            time=self._wall() if t is None else t,
            rule=rule,
            severity=severity,
            value=value,
            message=message,
            resolved_at=resolved_at,
        )
        with self._lock:
            if len(self._alerts) == self._alerts.maxlen:
                self._dropped_events += 1
            self._alerts.append(row)
        return row

    def resolve_alert(self, rule: str, *, t: float | None = None) -> bool:
        """Mark the latest unresolved alert of ``rule`` resolved; False if there is none."""
        now = self._wall() if t is None else t
        with self._lock:
            for i in range(len(self._alerts) - 1, -1, -1):
                row = self._alerts[i]
                if row.rule == rule and row.resolved_at is None:
                    self._alerts[i] = AlertRow(
                        time=row.time,
                        rule=row.rule,
                        severity=row.severity,
                        value=row.value,
                        message=row.message,
                        resolved_at=max(now, row.time),
                    )
                    return True
        return False

    def add_note(self, text: str) -> None:
        """Add a free-form line to the report's notes."""
        if not isinstance(text, str):
            raise ConfigurationError(f"a note must be a string, got {text!r}")
        with self._lock:
            self._notes.append(text)

    # ------------------------------------------------------------------------ build

    def build(
        self,
        *,
        plan: PlanSection | None = None,
        limiter: LimiterSection | None = None,
        pools: Sequence[PoolRow] = (),
        memory: MemorySection | None = None,
        alerts: Sequence[AlertRow] = (),
        notes: Sequence[str] = (),
        created_at: float | None = None,
        title: str | None = None,
    ) -> OptimizationReport:
        """The frozen report of everything so far plus the given sections.

        ``alerts`` are added to the ones recorded here (sorted by time); ``created_at``
        defaults to now, and the duration is the time since :attr:`started_at`.
        """
        now = self._wall() if created_at is None else created_at
        with self._lock:
            series = tuple(b.snapshot() for b in self._series.values())
            actions = tuple(self._actions)
            all_alerts = sorted([*self._alerts, *alerts], key=lambda a: a.time)
            all_notes = [*self._notes, *notes]
            if self._dropped_series:
                all_notes.append(
                    f"{self._dropped_series} samples of series beyond the first "
                    f"{self._max_series} were not kept"
                )
            if self._dropped_points:
                all_notes.append(f"{self._dropped_points} non-finite readings were skipped")
            if self._dropped_events:
                all_notes.append(f"{self._dropped_events} oldest actions/alerts were dropped")
        return OptimizationReport(
            title=self._title if title is None else title,
            created_at=now,
            duration=max(0.0, now - self._started_at),
            plan=plan,
            series=series,
            limiter=limiter,
            pools=pools,
            memory=memory,
            alerts=all_alerts,
            actions=actions,
            notes=all_notes,
        )
