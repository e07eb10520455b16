"""The pure core: budgets and pressure levels with hysteresis (fake time, hypothesis)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.errors import ConfigurationError
from aimax.memory import LevelChange, MemoryBudget, PressureLevel, PressureThresholds
from aimax.memory import PressureTracker as Tracker

N, E, C = PressureLevel.NORMAL, PressureLevel.ELEVATED, PressureLevel.CRITICAL


def _tracker(hold: float = 0.0) -> Tracker:
    return Tracker(PressureThresholds(elevated=0.8, critical=0.95, hysteresis=0.05, min_hold=hold))


# ------------------------------------------------------------------------ budgets


def test_budget_bytes_and_fraction_resolve() -> None:
    assert MemoryBudget.of(1000).resolve(limit=10) == 1000
    assert MemoryBudget.of(0.25).resolve(limit=1000) == 250
    assert MemoryBudget.of(1.0).resolve(limit=1000) == 1000
    assert MemoryBudget.of(MemoryBudget(bytes=5)).bytes == 5


@pytest.mark.parametrize("bad", [0, -1, 0.0, -0.5, 1.5, 2.0, 1e9, float("nan"), True, "1G", None])
def test_bad_budgets_raise_configuration_error_naming_the_value(bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        MemoryBudget.of(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value) or str(bad) in str(info.value)


def test_budget_needs_exactly_one_form() -> None:
    with pytest.raises(ConfigurationError):
        MemoryBudget()
    with pytest.raises(ConfigurationError):
        MemoryBudget(bytes=10, fraction=0.5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"elevated": 0.9, "critical": 0.9},
        {"elevated": 0.0},
        {"critical": 3.0},
        {"hysteresis": -0.1},
        {"hysteresis": 0.85},
        {"min_hold": -1},
        {"elevated": "0.8"},
    ],
)
def test_bad_thresholds(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        PressureThresholds(**kwargs)  # type: ignore[arg-type]


def test_min_hold_accepts_timedelta() -> None:
    assert PressureThresholds(min_hold=timedelta(seconds=3)).hold_seconds == 3.0


# ------------------------------------------------------------------------ examples


def test_rises_at_once_and_falls_only_below_threshold_minus_hysteresis() -> None:
    t = _tracker()
    assert t.update(used=79, budget=100, now=0) is None
    change = t.update(used=80, budget=100, now=1)
    assert change == LevelChange(N, E, 0.8, 80, 100, 1)
    assert change.rising
    assert t.update(used=76, budget=100, now=2) is None  # 0.76 >= 0.75: stays
    assert t.update(used=96, budget=100, now=3).level is C  # type: ignore[union-attr]
    assert t.update(used=91, budget=100, now=4) is None  # 0.91 >= 0.90: stays critical
    fall = t.update(used=89, budget=100, now=5)
    assert fall is not None
    assert (fall.previous, fall.level, fall.rising) == (C, E, False)
    assert t.update(used=10, budget=100, now=6).level is N  # type: ignore[union-attr]
    assert t.changes == 4


def test_jumps_straight_to_critical_and_straight_back_to_normal() -> None:
    t = _tracker()
    assert t.update(used=99, budget=100, now=0).level is C  # type: ignore[union-attr]
    assert t.update(used=1, budget=100, now=1).level is N  # type: ignore[union-attr]


def test_min_hold_delays_the_fall_not_the_rise() -> None:
    t = _tracker(hold=10.0)
    t.update(used=85, budget=100, now=100.0)
    assert t.level is E
    assert t.update(used=10, budget=100, now=105.0) is None
    assert t.update(used=99, budget=100, now=106.0).level is C  # type: ignore[union-attr]
    assert t.update(used=10, budget=100, now=115.9) is None
    assert t.update(used=10, budget=100, now=116.0).level is N  # type: ignore[union-attr]


def test_cleared_is_below_the_elevated_clear_ratio() -> None:
    t = _tracker()
    assert not t.cleared(0.75)
    assert t.cleared(0.7499)


def test_zero_budget_is_rejected() -> None:
    with pytest.raises(ConfigurationError):
        _tracker().update(used=1, budget=0, now=0)


# ------------------------------------------------------------------------ properties

thresholds_st = st.builds(
    lambda e, gap, h, hold: PressureThresholds(
        elevated=e, critical=min(2.0, e + gap), hysteresis=min(h, e / 2), min_hold=hold
    ),
    e=st.floats(0.3, 0.95),
    gap=st.floats(0.01, 0.5),
    h=st.floats(0.0, 0.2),
    hold=st.sampled_from([0.0, 1.0, 5.0]),
)
readings_st = st.lists(st.tuples(st.floats(0.0, 1.5), st.floats(0.0, 3.0)), min_size=1, max_size=60)


def _run(
    th: PressureThresholds, readings: list[tuple[float, float]]
) -> list[tuple[float, float, PressureLevel, LevelChange | None]]:
    """Feed (ratio, time step) readings at budget 10_000 from now=1000 (a fake clock)."""
    tracker = Tracker(th)
    now = 1000.0
    out = []
    for ratio, step in readings:
        now += step
        used = round(ratio * 10_000)
        change = tracker.update(used=used, budget=10_000, now=now)
        out.append((used / 10_000, now, tracker.level, change))
    return out


@settings(max_examples=100, deadline=None)
@given(thresholds_st, readings_st)
def test_rises_are_immediate(th: PressureThresholds, readings: list[tuple[float, float]]) -> None:
    for ratio, _, level, _ in _run(th, readings):
        if ratio >= th.critical:
            assert level is C
        elif ratio >= th.elevated:
            assert level >= E


@settings(max_examples=100, deadline=None)
@given(thresholds_st, readings_st)
def test_a_fall_needs_the_hysteresis_band_and_the_hold(
    th: PressureThresholds, readings: list[tuple[float, float]]
) -> None:
    last_change_at: float | None = None
    for ratio, now, level, change in _run(th, readings):
        if change is not None and not change.rising:
            assert ratio < th.clear_ratio(change.previous)
            # it falls to the level usage justifies (with hysteresis), never below it
            assert ratio < th.clear_ratio(PressureLevel(level + 1))
            if level > N:
                assert ratio >= th.clear_ratio(level)
            if last_change_at is not None:
                assert now - last_change_at >= th.hold_seconds
        if change is not None:
            last_change_at = now
        assert change is None or change.level is level


@settings(max_examples=100, deadline=None)
@given(
    thresholds_st,
    st.floats(0.0, 1.3),
    st.lists(st.tuples(st.floats(0.0, 0.999), st.floats(0.0, 3.0)), min_size=1, max_size=60),
)
def test_no_flapping_inside_a_band_narrower_than_the_hysteresis(
    th: PressureThresholds, low: float, offsets: list[tuple[float, float]]
) -> None:
    # every reading lies in [low, low + h): the level may only ever go up
    width = th.hysteresis
    readings = [(low + off * width, step) for off, step in offsets]
    levels = [level for _, _, level, _ in _run(th, readings)]
    assert levels == sorted(levels)


@settings(max_examples=100, deadline=None)
@given(thresholds_st, readings_st)
def test_level_is_a_function_of_history_not_of_time_alone(
    th: PressureThresholds, readings: list[tuple[float, float]]
) -> None:
    # replaying the same readings at the same times gives the same levels (pure core)
    assert [x[2] for x in _run(th, readings)] == [x[2] for x in _run(th, readings)]
