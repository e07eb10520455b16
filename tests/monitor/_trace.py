"""Invariants of alert traces, written independently of the engine's code."""

from __future__ import annotations

import operator
from collections.abc import Callable

from hypothesis import strategies as st

from aimax.monitor import AlertEvent, AlertRule

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}

M = "aimax_process_cpu_ratio"


def cleared(comparison: str, value: float, clear: float) -> bool:
    return value < clear if comparison in (">", ">=") else value > clear


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[AlertRule, list[tuple[float, float | None]]]:
    comparison = draw(st.sampled_from([">", ">=", "<", "<="]))
    threshold = float(draw(st.integers(-5, 5)))
    gap = float(draw(st.integers(0, 4)))
    clear = threshold - gap if comparison in (">", ">=") else threshold + gap
    rule = AlertRule(
        name="r",
        metric=M,
        comparison=comparison,
        threshold=threshold,
        clear=clear,
        for_=draw(st.sampled_from([0.0, 0.5, 1.0, 3.0, 7.5])),
        cooldown=draw(st.sampled_from([0.0, 1.0, 4.0, 20.0])),
    )
    steps = draw(
        st.lists(
            st.tuples(
                st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 5.0]),
                st.one_of(st.none(), st.integers(-10, 10).map(float)),
            ),
            min_size=1,
            max_size=50,
        )
    )
    t = 1000.0
    timeline = []
    for dt, value in steps:
        t += dt
        timeline.append((t, value))
    return rule, timeline


def check_trace(
    rule: AlertRule,
    timeline: list[tuple[float, float | None]],
    events_at: list[list[AlertEvent]],
    firing_after: list[bool],
) -> None:
    """The invariants, written independently of the engine's code."""
    violated = OPS[rule.comparison]
    threshold = rule.threshold
    clear = float(rule.clear)  # type: ignore[arg-type]
    firing = False
    last_fire: float | None = None
    run_start: float | None = None  # start of the current run of violating values
    for (now, value), events, firing_now in zip(timeline, events_at, firing_after, strict=True):
        is_violation = value is not None and violated(value, threshold)
        run_start = (now if run_start is None else run_start) if is_violation else None
        kinds = [e.kind for e in events]
        assert len(kinds) <= 1
        if kinds == ["firing"]:
            assert not firing, "fired twice without resolving"
            assert is_violation
            assert run_start is not None
            assert now - run_start >= rule.for_seconds, "fired before its duration"
            if last_fire is not None:
                assert now - last_fire >= rule.cooldown_seconds, "fired inside the cooldown"
            assert events[0].since == run_start
            firing = True
            last_fire = now
        elif kinds == ["resolved"]:
            assert firing, "resolved while not firing"
            assert value is not None
            assert cleared(rule.comparison, value, clear), "resolved before the clear threshold"
            firing = False
        # nothing happened: a firing alert must not have been clearable, and an
        # idle one must not have been due
        elif firing:
            assert value is None or not cleared(rule.comparison, value, clear)
        elif run_start is not None and now - run_start >= rule.for_seconds:
            assert last_fire is not None
            assert now - last_fire < rule.cooldown_seconds, "should have fired"
        assert firing_now == firing
