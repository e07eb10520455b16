"""Alert rules and the pure state machine that evaluates them.

A rule watches every series of one metric (optionally only those with some labels),
Prometheus-style: each series has its own state ``ok -> pending -> firing -> ok``.

* ``pending`` starts at the first evaluation where the value violates the threshold;
  any evaluation that does not violate it (or has no value) sends it back to ``ok``.
* ``firing`` is entered once the violation has held for ``for_`` seconds AND at least
  ``cooldown`` seconds have passed since the previous firing of that series.
* a firing alert resolves only when the value is on the far side of ``clear``
  (hysteresis: for ``>``/``>=`` rules ``value < clear``, for ``<``/``<=`` rules
  ``value > clear``). A missing value keeps it firing.

The engine has no clock, thread or I/O: the caller passes ``now``.

    >>> rule = AlertRule(name="hot", metric="aimax_process_cpu_ratio", comparison=">",
    ...                  threshold=0.9, for_=10, clear=0.7)
    >>> engine = RuleEngine([rule])
    >>> engine.evaluate(0.0, {"aimax_process_cpu_ratio": 0.95})
    []
    >>> [e.kind for e in engine.evaluate(10.0, {"aimax_process_cpu_ratio": 0.95})]
    ['firing']
    >>> engine.evaluate(11.0, {"aimax_process_cpu_ratio": 0.8})  # above clear: still firing
    []
    >>> [e.kind for e in engine.evaluate(12.0, {"aimax_process_cpu_ratio": 0.6})]
    ['resolved']
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Literal, Protocol

from aimax._clock import as_seconds
from aimax.errors import ConfigurationError

__all__ = [
    "ActiveAlert",
    "AlertEvent",
    "AlertRule",
    "Comparison",
    "RuleEngine",
    "Severity",
    "default_rules",
]

Comparison = Literal[">", ">=", "<", "<="]
Severity = Literal["info", "warning", "critical"]
Function = Literal["value", "last", "min", "mean", "max", "p95", "slope_per_hour"]

_OPS: Mapping[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_SEVERITIES = ("info", "warning", "critical")
_FUNCTIONS = ("value", "last", "min", "mean", "max", "p95", "slope_per_hour")
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertRule:
    """One alert rule (frozen configuration).

    ``metric`` is a metric name (``process_resident_memory_bytes``); ``labels``
    restricts it to series carrying those labels. ``function`` turns the series into
    the figure compared: ``"value"`` (the current sample, default) or a reduction
    over the last ``window`` seconds (``mean``, ``max``, ``min``, ``p95``, ``last``,
    ``slope_per_hour``). ``clear`` defaults to ``threshold`` (no hysteresis);
    durations accept float seconds or ``timedelta``.

        >>> AlertRule(name="rss_growing", metric="process_resident_memory_bytes",
        ...           function="slope_per_hour", window=timedelta(minutes=30),
        ...           comparison=">", threshold=64e6, clear=16e6, for_=600).window
        1800.0
    """

    name: str
    metric: str
    comparison: Comparison = ">"
    threshold: float
    for_: float | timedelta = 0.0
    clear: float | None = None
    cooldown: float | timedelta = 0.0
    severity: Severity = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    function: Function = "value"
    window: float | timedelta = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"rule name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.metric, str) or not _NAME.match(self.metric):
            raise ConfigurationError(
                f"rule {self.name!r}: metric must be a metric name, got {self.metric!r}"
            )
        if self.comparison not in _OPS:
            raise ConfigurationError(
                f"rule {self.name!r}: comparison must be one of {sorted(_OPS)}, "
                f"got {self.comparison!r}"
            )
        threshold = _number(self.threshold, f"rule {self.name!r}: threshold")
        clear = (
            threshold if self.clear is None else _number(self.clear, f"rule {self.name!r}: clear")
        )
        above = self.comparison in (">", ">=")
        if (above and clear > threshold) or (not above and clear < threshold):
            side = "at or below" if above else "at or above"
            raise ConfigurationError(
                f"rule {self.name!r}: clear ({clear}) must be {side} the threshold ({threshold})"
            )
        if self.severity not in _SEVERITIES:
            raise ConfigurationError(
                f"rule {self.name!r}: severity must be one of {_SEVERITIES}, got {self.severity!r}"
            )
        if self.function not in _FUNCTIONS:
            raise ConfigurationError(
                f"rule {self.name!r}: function must be one of {_FUNCTIONS}, got {self.function!r}"
            )
        for_ = as_seconds(self.for_, name=f"rule {self.name!r}: for_", allow_zero=True)
        cooldown = as_seconds(self.cooldown, name=f"rule {self.name!r}: cooldown", allow_zero=True)
        window = as_seconds(self.window, name=f"rule {self.name!r}: window", allow_zero=True)
        if self.function != "value" and window <= 0:
            raise ConfigurationError(
                f"rule {self.name!r}: function {self.function!r} needs a positive window"
            )
        labels = dict(self.labels)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise ConfigurationError(f"rule {self.name!r}: labels must map str to str")
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "clear", clear)
        object.__setattr__(self, "for_", for_)
        object.__setattr__(self, "cooldown", cooldown)
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "labels", MappingProxyType(labels))

    def __hash__(self) -> int:
        return hash(
            (
                self.name,
                self.metric,
                self.comparison,
                self.threshold,
                self.clear,
                self.for_,
                self.cooldown,
                self.severity,
                self.function,
                self.window,
                tuple(sorted(self.labels.items())),
            )
        )

    def violated(self, value: float) -> bool:
        """Whether ``value`` violates the threshold."""
        return _OPS[self.comparison](value, self.threshold)

    def cleared(self, value: float) -> bool:
        """Whether ``value`` is on the far side of the clear threshold."""
        clear = float(self.clear)  # type: ignore[arg-type]  # normalised in __post_init__
        if self.comparison in (">", ">="):
            return value < clear
        return value > clear

    @property
    def for_seconds(self) -> float:
        """``for_`` as float seconds."""
        return float(self.for_)  # type: ignore[arg-type]

    @property
    def cooldown_seconds(self) -> float:
        """``cooldown`` as float seconds."""
        return float(self.cooldown)  # type: ignore[arg-type]

    @property
    def window_seconds(self) -> float:
        """``window`` as float seconds."""
        return float(self.window)  # type: ignore[arg-type]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with ``labels`` is watched by this rule."""
        return all(labels.get(k) == v for k, v in self.labels.items())


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if math.isnan(number):
        raise ConfigurationError(f"{what} must not be NaN")
    return number


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A rule started firing (``kind="firing"``) or resolved (``kind="resolved"``).

    ``at`` is the evaluation time (monotonic seconds), ``since`` when the violation
    began, ``value`` the figure compared at ``at``.
    """

    kind: Literal["firing", "resolved"]
    rule: AlertRule
    series: str
    labels: Mapping[str, str]
    value: float
    at: float
    since: float

    def message(self) -> str:
        """A one-line human description (used for logging)."""
        rule = self.rule
        verb = "FIRING" if self.kind == "firing" else "resolved"
        what = self.series if rule.function == "value" else f"{rule.function}({self.series})"
        return (
            f"[{rule.severity}] {rule.name} {verb}: {what} = {self.value:g} "
            f"({rule.comparison} {rule.threshold:g}, clear {rule.clear:g})"
        )


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    """A rule currently firing for one series (what ``check_resource_limits()`` lists)."""

    rule: AlertRule
    series: str
    labels: Mapping[str, str]
    value: float
    since: float
    fired_at: float

    @property
    def severity(self) -> Severity:
        """The rule's severity."""
        return self.rule.severity


class Reducer(Protocol):
    """What the engine needs from the history for rules with a ``function``."""

    def reduce(self, key: str, function: str, window: float, now: float) -> float | None:
        """One figure of series ``key`` over the last ``window`` seconds, or ``None``."""
        ...


class _State:
    __slots__ = ("fired_at", "firing", "labels", "last_fired", "since", "value")

    def __init__(self, labels: Mapping[str, str]) -> None:
        self.labels = labels
        self.firing = False
        self.since: float | None = None  # start of the current violation (pending/firing)
        self.fired_at = 0.0
        self.last_fired: float | None = None
        self.value = math.nan


_EMPTY: Mapping[str, str] = MappingProxyType({})
_NO_NAMES: frozenset[str] = frozenset()


class RuleEngine:
    """Evaluates rules against samples; remembers per-series state (pure).

    :meth:`evaluate` takes ``now``, the sample's values by series key, and
    optionally the labels of each key (``key -> (name, labels)``; by default keys are
    plain names) and a :class:`Reducer` (the history) for rules with a ``function``.
    """

    def __init__(self, rules: Iterable[AlertRule] = ()) -> None:
        self._rules: dict[str, AlertRule] = {}
        self._states: dict[tuple[str, str], _State] = {}
        for rule in rules:
            self.add(rule)

    @property
    def rules(self) -> Sequence[AlertRule]:
        """The rules, in the order added."""
        return tuple(self._rules.values())

    def add(self, rule: AlertRule) -> None:
        """Add a rule (a rule with the same name is replaced and its state reset)."""
        if not isinstance(rule, AlertRule):
            raise ConfigurationError(f"expected an AlertRule, got {rule!r}")
        self.remove(rule.name)
        self._rules[rule.name] = rule

    def remove(self, name: str) -> bool:
        """Remove a rule by name (its firing alerts vanish without an event)."""
        if self._rules.pop(name, None) is None:
            return False
        for state_key in [k for k in self._states if k[0] == name]:
            del self._states[state_key]
        return True

    def evaluate(
        self,
        now: float,
        values: Mapping[str, float],
        series: Mapping[str, Sequence[tuple[str, Mapping[str, str]]]] | None = None,
        reducer: Reducer | None = None,
    ) -> list[AlertEvent]:
        """Advance every rule's state to ``now``; returns the events it produced.

        ``series`` maps a metric name to its series ``(key, labels)``; when omitted,
        each key of ``values`` is taken as a plain metric name without labels.
        """
        events: list[AlertEvent] = []
        states = self._states
        # rules holding a state (pending or firing or cooling down): usually none
        tracked_rules = {name for name, _ in states} if states else _NO_NAMES
        for rule in self._rules.values():
            if series is None:
                targets: Sequence[tuple[str, Mapping[str, str]]] = (
                    ((rule.metric, _EMPTY),) if rule.metric in values else ()
                )
            else:
                targets = series.get(rule.metric, ())
            tracked = rule.name in tracked_rules
            if not targets and not tracked:
                continue
            violated = _OPS[rule.comparison]
            threshold = float(rule.threshold)
            plain = rule.function == "value"
            labelled = bool(rule.labels)
            seen: set[str] = set()
            for key, labels in targets:
                if labelled and not rule.matches(labels):
                    continue
                if plain:
                    value = values.get(key)
                elif reducer is None:
                    value = None
                else:
                    value = reducer.reduce(key, rule.function, rule.window_seconds, now)
                if tracked:
                    seen.add(key)
                elif value is None or not violated(value, threshold):
                    continue  # idle and fine: the common case, nothing to do
                self._step(rule, key, labels, value, now, events)
            if not tracked:
                continue
            # series of this rule that were not evaluated this time: no value
            for (name, key), state in list(states.items()):
                if name != rule.name or key in seen or state.firing:
                    continue
                state.since = None  # no value: a pending violation is not confirmed
                last = state.last_fired
                if last is None or now - last >= rule.cooldown_seconds:
                    del states[(name, key)]
        return events

    def _step(  # noqa: PLR0917 - private hot-path helper, called in one place
        self,
        rule: AlertRule,
        key: str,
        labels: Mapping[str, str],
        value: float | None,
        now: float,
        events: list[AlertEvent],
    ) -> None:
        state_key = (rule.name, key)
        state = self._states.get(state_key)
        if state is None:
            if value is None or not rule.violated(value):
                return
            state = self._states[state_key] = _State(labels)
        if value is not None:
            state.value = value
        if state.firing:
            if value is not None and rule.cleared(value):
                state.firing = False
                events.append(
                    AlertEvent("resolved", rule, key, labels, value, now, state.since or now)
                )
                state.since = None
            return
        if value is None or not rule.violated(value):
            state.since = None
            if state.last_fired is None:
                del self._states[state_key]
            return
        if state.since is None:
            state.since = now
        held = now - state.since >= rule.for_seconds
        cooled = state.last_fired is None or now - state.last_fired >= rule.cooldown_seconds
        if held and cooled:
            state.firing = True
            state.fired_at = now
            state.last_fired = now
            events.append(AlertEvent("firing", rule, key, labels, value, now, state.since))

    def active(self) -> list[ActiveAlert]:
        """Alerts firing now, most severe first, then oldest first."""
        out = []
        for (name, key), state in self._states.items():
            if state.firing:
                rule = self._rules[name]
                out.append(
                    ActiveAlert(
                        rule, key, state.labels, state.value, state.since or 0.0, state.fired_at
                    )
                )
        rank = {s: i for i, s in enumerate(reversed(_SEVERITIES))}
        out.sort(key=lambda a: (rank[a.rule.severity], a.fired_at, a.rule.name, a.series))
        return out

    def firing_counts(self) -> dict[str, int]:
        """How many alerts fire now, by severity."""
        counts: dict[str, int] = {}
        for (name, _), state in self._states.items():
            if state.firing:
                severity = self._rules[name].severity
                counts[severity] = counts.get(severity, 0) + 1
        return counts

    def pending(self) -> list[tuple[str, str, float]]:
        """``(rule name, series, since)`` for violations not yet firing."""
        return [
            (name, key, state.since)
            for (name, key), state in self._states.items()
            if not state.firing and state.since is not None
        ]

    def __repr__(self) -> str:
        return f"RuleEngine(rules={len(self._rules)}, firing={len(self.active())})"


_MIB = 1024 * 1024


def default_rules(
    *,
    rss_budget: int | None = None,
    cpu_ratio: float = 0.9,
    rss_growth_per_hour: float = 64 * _MIB,
    loop_lag: float | timedelta = 0.25,
    limiter_ratio: float = 0.9,
    pool_queued: float = 50.0,
) -> list[AlertRule]:
    """Rules that make sense for a trading bot (every threshold adjustable).

    * ``cpu_saturation``: process CPU >= ``cpu_ratio`` of one core for 1 min
      (CPython runs Python code on one core at a time); clears below 0.7.
    * ``rss_near_budget``: RSS >= 90 % of ``rss_budget`` for 30 s, clears below 80 %;
      without a budget: RSS >= 80 % of physical memory, clears below 70 %.
    * ``rss_growing``: RSS trend over 30 min above ``rss_growth_per_hour`` for 10 min;
      clears below a quarter of it.
    * ``event_loop_lag``: an asyncio loop's timers late by >= ``loop_lag`` for 10 s.
    * ``ratelimit_near_budget``: a limiter pool >= ``limiter_ratio`` of its window
      for 30 s (``aimax_ratelimit_utilisation_ratio``).
    * ``pool_queue_backing_up``: a thread pool's queue >= ``pool_queued`` tasks for 30 s
      (``aimax_pool_queued``).

        >>> [r.name for r in default_rules()][:2]
        ['cpu_saturation', 'rss_near_budget']
    """
    lag = as_seconds(loop_lag, name="loop_lag")
    if rss_budget is not None:
        if isinstance(rss_budget, bool) or not isinstance(rss_budget, int) or rss_budget <= 0:
            raise ConfigurationError(f"rss_budget must be a positive int, got {rss_budget!r}")
        rss_rule = AlertRule(
            name="rss_near_budget",
            metric="process_resident_memory_bytes",
            comparison=">=",
            threshold=0.9 * rss_budget,
            clear=0.8 * rss_budget,
            for_=30,
            cooldown=300,
            severity="critical",
            description="resident memory near the budget",
        )
    else:
        rss_rule = AlertRule(
            name="rss_near_budget",
            metric="aimax_process_memory_ratio",
            comparison=">=",
            threshold=0.8,
            clear=0.7,
            for_=30,
            cooldown=300,
            severity="critical",
            description="resident memory near the machine's physical memory",
        )
    return [
        AlertRule(
            name="cpu_saturation",
            metric="aimax_process_cpu_ratio",
            comparison=">=",
            threshold=cpu_ratio,
            clear=min(cpu_ratio, 0.7),
            for_=60,
            cooldown=300,
            severity="warning",
            description="the process keeps a core busy",
        ),
        rss_rule,
        AlertRule(
            name="rss_growing",
            metric="process_resident_memory_bytes",
            function="slope_per_hour",
            window=1800,
            comparison=">",
            threshold=rss_growth_per_hour,
            clear=rss_growth_per_hour / 4,
            for_=600,
            cooldown=3600,
            severity="warning",
            description="resident memory grows steadily (a leak?)",
        ),
        AlertRule(
            name="event_loop_lag",
            metric="aimax_event_loop_lag_seconds",
            comparison=">=",
            threshold=lag,
            clear=lag / 2,
            for_=10,
            cooldown=60,
            severity="warning",
            description="an asyncio loop is blocked (timers fire late)",
        ),
        AlertRule(
            name="ratelimit_near_budget",
            metric="aimax_ratelimit_utilisation_ratio",
            comparison=">=",
            threshold=limiter_ratio,
            clear=min(limiter_ratio, 0.75),
            for_=30,
            cooldown=120,
            severity="warning",
            description="a rate-limit pool is nearly full",
        ),
        AlertRule(
            name="pool_queue_backing_up",
            metric="aimax_pool_queued",
            comparison=">=",
            threshold=pool_queued,
            clear=pool_queued / 5,
            for_=30,
            cooldown=120,
            severity="warning",
            description="a thread pool's queue keeps growing",
        ),
    ]
