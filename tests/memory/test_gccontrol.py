"""GC pause recording and the low-pause GC mode (each test leaves the interpreter as it was)."""

from __future__ import annotations

import gc
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aimax.errors import ConfigurationError
from aimax.memory import GCMode, GCPauseRecorder, GCTuning, derive_thresholds


def test_recorder_counts_every_generation_and_uninstalls() -> None:
    before = list(gc.callbacks)
    recorder = GCPauseRecorder()
    with recorder:
        assert recorder.installed
        for generation in (0, 1, 2, 2):
            gc.collect(generation)
    assert gc.callbacks == before
    assert not recorder.installed
    stats = recorder.statistics()
    counts = [g.count for g in stats.generations]
    assert counts[0] >= 1
    assert counts[1] >= 1
    assert counts[2] >= 2
    assert stats.collections == sum(counts)
    assert stats.pause_total == pytest.approx(sum(g.total for g in stats.generations))
    assert stats.pause_max == max(g.max for g in stats.generations)
    gc.collect()
    assert recorder.statistics().collections == stats.collections  # no longer measuring
    recorder.reset()
    assert recorder.statistics().collections == 0
    assert "installed=False" in repr(recorder)


def test_recorder_percentiles_from_a_scripted_timer() -> None:
    ticks = iter([0.0, 0.001, 1.0, 1.003, 2.0, 2.010, 3.0, 3.002])
    recorder = GCPauseRecorder(timer=lambda: next(ticks))
    for _ in range(4):
        recorder._callback("start", {"generation": 2})
        recorder._callback("stop", {"generation": 2, "collected": 5, "uncollectable": 0})
    g2 = recorder.statistics().generations[2]
    assert g2.count == 4
    assert g2.collected == 20
    assert g2.max == pytest.approx(0.010)
    assert g2.total == pytest.approx(0.016)
    # histogram quantiles: within the ~3 % of a bucket, never above the longest pause
    assert g2.p50 == pytest.approx(0.002, rel=0.04)
    assert g2.p95 == pytest.approx(0.010, rel=0.04)
    assert g2.p99 <= g2.max
    assert g2.histogram.count == 4
    assert g2.histogram.sum == pytest.approx(0.016)


def test_max_is_the_longest_pause_ever_and_reads_do_not_reset_it() -> None:
    values = iter([0.0, 5.0, 10.0, 10.5])
    recorder = GCPauseRecorder(timer=lambda: next(values))
    for _ in range(2):
        recorder._callback("start", {"generation": 0})
        recorder._callback("stop", {"generation": 0})
        first = recorder.statistics().generations[0].max
    assert first == 5.0
    assert recorder.statistics().generations[0].max == 5.0
    with pytest.raises(ConfigurationError):
        GCPauseRecorder(timer=3)  # type: ignore[arg-type]


def test_the_shared_recorder_is_installed_once_for_all_its_users() -> None:
    from aimax.memory.gccontrol import shared_recorder

    recorder = shared_recorder()
    before = len(gc.callbacks)
    recorder.acquire()
    recorder.acquire()
    assert len(gc.callbacks) <= before + 1
    recorder.release()
    assert recorder.installed
    recorder.release()
    assert len(gc.callbacks) <= before


def test_two_recorders_are_independent() -> None:
    a, b = GCPauseRecorder(), GCPauseRecorder(timer=time.thread_time)
    with a, b:
        gc.collect()
    assert a.statistics().generations[2].count >= 1
    assert b.statistics().generations[2].count >= 1


def test_thresholds_are_derived_from_the_interpreters() -> None:
    tuning = GCTuning(young_scale=4, warmup_old_scale=10)
    assert derive_thresholds((700, 10, 10), tuning, warmup=False) == (2800, 2, 10)
    assert derive_thresholds((2000, 10, 10), tuning, warmup=True) == (8000, 2, 100)
    assert derive_thresholds((2000, 10, 0), tuning, warmup=True) == (8000, 2, 0)
    assert derive_thresholds((0, 10, 10), tuning, warmup=True) == (0, 10, 10)  # GC disabled


def test_mode_sets_and_restores_thresholds_and_freeze() -> None:
    original = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    keep = [[i] for i in range(1000)]  # some long-lived state
    mode = GCMode()
    mode.begin_warmup()
    assert gc.get_threshold() == derive_thresholds(original, mode.tuning, warmup=True)
    frozen = mode.end_warmup()
    assert frozen >= len(keep)
    assert 0 < gc.get_freeze_count() <= frozen  # frozen objects may still die by refcount
    assert gc.get_threshold() == derive_thresholds(original, mode.tuning, warmup=False)
    assert mode.phase == "steady"
    assert mode.original_thresholds == original
    mode.restore()
    assert gc.get_threshold() == original
    assert gc.get_freeze_count() == 0
    assert mode.phase == "off"
    mode.restore()  # idempotent
    assert gc.get_threshold() == original


def test_mode_without_freeze_freezes_nothing() -> None:
    mode = GCMode(GCTuning(freeze=False))
    assert mode.end_warmup() == 0
    assert gc.get_freeze_count() == 0
    mode.restore()


def test_mode_leaves_someone_elses_freeze_alone() -> None:
    gc.freeze()
    theirs = gc.get_freeze_count()
    try:
        mode = GCMode()
        mode.end_warmup()
        mode.restore()
        assert gc.get_freeze_count() >= theirs
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"young_scale": 0.5},
        {"warmup_old_scale": 0},
        {"collect_before_freeze": 3},
        {"young_scale": "x"},
    ],
)
def test_bad_tuning(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        GCTuning(**kwargs)  # type: ignore[arg-type]


def test_low_pause_mode_does_fewer_full_collections_on_a_growing_heap() -> None:
    # Counts, not times: building long-lived state under the warm-up thresholds
    # triggers fewer collections of every generation than under the defaults.
    def build() -> list[int]:
        recorder = GCPauseRecorder()
        with recorder:
            state = [[i] for i in range(150_000)]
        del state
        return [g.count for g in recorder.statistics().generations]

    default = build()
    mode = GCMode()
    mode.begin_warmup()
    try:
        tuned = build()
    finally:
        mode.restore()
    assert tuned[0] < default[0]
    assert tuned[2] <= default[2]
    assert sum(tuned) < sum(default)


def test_statistics_while_other_threads_collect() -> None:
    recorder = GCPauseRecorder()
    errors: list[BaseException] = []
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            junk = [[i] for i in range(2000)]
            del junk
            gc.collect(0)

    def read() -> None:
        try:
            for _ in range(500):
                recorder.statistics()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with recorder:
        threads = [threading.Thread(target=churn) for _ in range(2)]
        readers = [threading.Thread(target=read) for _ in range(2)]
        for t in threads + readers:
            t.start()
        for t in readers:
            t.join(60)
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors
    assert recorder.statistics().generations[0].count > 0


@given(st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=120))
def test_percentiles_are_those_of_the_histogram_rules(pauses: list[float]) -> None:
    """Each percentile is the middle of the bucket of the nearest-rank pause (capped at max)."""
    import math

    from aimax.pools import _histogram as h

    stamps = iter([x for pause in pauses for x in (0.0, pause)])
    recorder = GCPauseRecorder(timer=lambda: next(stamps))
    for _ in pauses:
        recorder._callback("start", {"generation": 1})
        recorder._callback("stop", {"generation": 1})
    ordered = sorted(round(p * 1e9) for p in pauses)
    g1 = recorder.statistics().generations[1]
    for q, got in ((0.5, g1.p50), (0.95, g1.p95), (0.99, g1.p99)):
        ranked = ordered[max(1, math.ceil(q * len(ordered))) - 1]
        assert got == min(h.bucket_value(h.bucket(ranked)) / 1e9, max(pauses))
    assert g1.count == len(pauses)
