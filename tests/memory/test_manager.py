"""MemoryManager over a fake probe and a fake clock: budgets, levels, cleanup, GC, figures."""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax._clock import FakeClock
from aimax.errors import ConfigurationError, MemoryManagerError
from aimax.memory import (
    BoundedLRUCache,
    CgroupLimits,
    FakeProbe,
    LevelChange,
    MemoryConfig,
    MemoryManager,
    PressureLevel,
    PressureThresholds,
    PressureTracker,
)

MiB = 2**20
N, E, C = PressureLevel.NORMAL, PressureLevel.ELEVATED, PressureLevel.CRITICAL


@dataclass(kw_only=True)
class ModelProbe(FakeProbe):
    """RSS = base + bytes of the caches it watches (bytes freed show up at once)."""

    base: int = 0
    per_item: int = MiB

    def __post_init__(self) -> None:
        self.watched: list[weakref.ReferenceType[BoundedLRUCache[int, int]]] = []

    def rss(self) -> int:
        self.rss_reads += 1
        return self.base + sum(len(c) * self.per_item for r in self.watched if (c := r()))


def _cache(
    manager: MemoryManager, probe: ModelProbe, name: str, n: int, priority: int
) -> BoundedLRUCache[int, int]:
    cache = BoundedLRUCache[int, int](
        max_items=10_000, name=name, manager=manager, priority=priority
    )
    for i in range(n):
        cache[i] = i
    probe.watched.append(weakref.ref(cache))
    return cache


# ------------------------------------------------------------------------ budget


def test_fraction_budget_uses_min_of_cgroup_limit_and_physical(fake_clock: FakeClock) -> None:
    probe = FakeProbe(
        physical_bytes=8 * 1024 * MiB,
        limits=CgroupLimits(version=2, path="/x", max_bytes=1024 * MiB, high_bytes=None),
    )
    with MemoryManager(budget=0.5, probe=probe, clock=fake_clock) as m:
        assert m.budget_bytes == 512 * MiB
        assert m.statistics().limit_bytes == 1024 * MiB
        probe.limits = CgroupLimits.none()
        assert m.refresh_limits() == 4 * 1024 * MiB  # no cgroup: half of physical


def test_limits_are_re_read_every_limit_refresh(fake_clock: FakeClock) -> None:
    probe = FakeProbe(physical_bytes=1000 * MiB)
    cfg = MemoryConfig(limit_refresh=60.0, uss_interval=None)
    with MemoryManager(budget=0.5, probe=probe, clock=fake_clock, config=cfg) as m:
        probe.limits = CgroupLimits(version=1, path="/x", max_bytes=100 * MiB, high_bytes=None)
        m.monitor_memory()
        assert m.budget_bytes == 500 * MiB
        fake_clock.advance(60)
        assert m.monitor_memory().budget_bytes == 50 * MiB


def test_explicit_budget_and_config_budget() -> None:
    probe = FakeProbe()
    with MemoryManager(probe=probe, config=MemoryConfig(budget=123 * MiB)) as m:
        assert m.budget_bytes == 123 * MiB
    with MemoryManager(77 * MiB, probe=probe, config=MemoryConfig(budget=123 * MiB)) as m:
        assert m.budget_bytes == 77 * MiB


@pytest.mark.parametrize("bad", [0, -5, 0.0, 1.01, 3.0, -0.2])
def test_bad_budget_raises(bad: float) -> None:
    with pytest.raises(ConfigurationError, match="budget"):
        MemoryManager(budget=bad, probe=FakeProbe())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shrink_fraction": 0},
        {"shrink_fraction": 1.5},
        {"max_rounds_per_priority": 0},
        {"trim_threshold": -1},
        {"gc_cooldown": -1},
        {"check_interval": 0},
        {"budget": 0},
    ],
)
def test_bad_config_raises(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        MemoryConfig(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ levels


def test_levels_and_listeners(manager: MemoryManager, probe: FakeProbe) -> None:
    seen: list[LevelChange] = []
    remove = manager.add_level_listener(seen.append)
    assert manager.monitor_memory().level is N  # 100 of 200 MiB
    probe.rss_bytes = 170 * MiB
    status = manager.monitor_memory()
    assert status.level is E
    assert status.change is not None
    probe.rss_bytes = 156 * MiB  # 0.78: inside the hysteresis band
    assert manager.monitor_memory().level is E
    probe.rss_bytes = 100 * MiB
    assert manager.monitor_memory().level is N
    assert [(c.previous, c.level) for c in seen] == [(N, E), (E, N)]
    remove()
    probe.rss_bytes = 199 * MiB
    manager.monitor_memory()
    assert len(seen) == 2
    assert manager.statistics().level_changes == 3


def test_a_failing_listener_does_not_stop_the_others(
    manager: MemoryManager, probe: FakeProbe, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[PressureLevel] = []

    def broken(change: LevelChange) -> None:
        raise RuntimeError("listener bug")

    manager.add_level_listener(broken)
    manager.add_level_listener(lambda c: seen.append(c.level))
    probe.rss_bytes = 199 * MiB
    with caplog.at_level(logging.ERROR):
        manager.monitor_memory()
    assert seen == [C]
    assert "listener" in caplog.text
    with pytest.raises(ConfigurationError):
        manager.add_level_listener(42)  # type: ignore[arg-type]


def test_uss_only_on_request_or_every_interval(fake_clock: FakeClock) -> None:
    probe = FakeProbe(uss_bytes=5 * MiB)
    cfg = MemoryConfig(uss_interval=300.0)
    with MemoryManager(budget=100 * MiB, probe=probe, clock=fake_clock, config=cfg) as m:
        for _ in range(10):
            m.monitor_memory()
            fake_clock.advance(10)
        assert probe.uss_reads == 1
        assert m.monitor_memory(uss=True).uss_bytes == 5 * MiB
        assert probe.uss_reads == 2
        fake_clock.advance(300)
        m.monitor_memory()
        assert probe.uss_reads == 3
        assert probe.rss_reads == 12


# ------------------------------------------------------------------------ cleanup


def _model_manager(fake_clock: FakeClock, **cfg: object) -> tuple[MemoryManager, ModelProbe]:
    probe = ModelProbe(base=20 * MiB, physical_bytes=1024 * MiB)
    config = MemoryConfig(
        thresholds=PressureThresholds(elevated=0.8, critical=0.95, hysteresis=0.05, min_hold=0),
        shrink_fraction=0.5,
        uss_interval=None,
        **cfg,  # type: ignore[arg-type]
    )
    return MemoryManager(budget=100 * MiB, probe=probe, clock=fake_clock, config=config), probe


def test_pressure_shrinks_lowest_priority_first_until_it_clears(fake_clock: FakeClock) -> None:
    manager, probe = _model_manager(fake_clock)
    with manager:
        state = _cache(manager, probe, "state", 30, priority=10)
        quotes = _cache(manager, probe, "quotes", 20, priority=0)
        trades = _cache(manager, probe, "trades", 20, priority=5)
        # rss = 20 + 70 = 90 of 100 MiB: elevated; the level clears below 75 MiB.
        # quotes halves: 20 -> 10 (rss 80), 10 -> 5 (75: not below), 5 -> 2 (72): cleared
        status = manager.monitor_memory()
        report = status.cleanup
        assert report is not None
        assert report.caches == ("quotes", "quotes", "quotes")
        assert (len(quotes), len(trades), len(state)) == (2, 20, 30)
        assert report.cleared
        assert report.rss_after == 72 * MiB
        assert report.ratio_before == pytest.approx(0.9)
        assert status.level is N


def test_cleanup_sequence_is_priority_order_with_rounds(fake_clock: FakeClock) -> None:
    manager, probe = _model_manager(fake_clock)
    with manager:
        state = _cache(manager, probe, "state", 40, priority=10)
        quotes = _cache(manager, probe, "quotes", 8, priority=0)
        trades = _cache(manager, probe, "trades", 30, priority=5)
        assert probe.rss() == 98 * MiB  # critical
        status = manager.monitor_memory()
        report = status.cleanup
        assert report is not None
        # quotes halves 8->4->2->1->0 (4 rounds max, stops when nothing is freed),
        # then trades 30->15 makes rss 20+40+15+... below 75 MiB: state never touched
        assert report.caches[0] == "quotes"
        assert "state" not in report.caches
        assert report.caches[-1] == "trades"
        assert report.cleared
        assert report.rss_after < 75 * MiB
        assert len(state) == 40
        assert report.freed_items == (8 - len(quotes)) + (30 - len(trades))
        assert status.level is N  # re-evaluated after the cleanup (no min_hold here)
        stats = manager.statistics()
        assert stats.cleanups == 1
        assert stats.items_freed == report.freed_items


def test_high_priority_caches_are_touched_last_and_only_if_needed(fake_clock: FakeClock) -> None:
    manager, probe = _model_manager(fake_clock, max_rounds_per_priority=1)
    with manager:
        low = _cache(manager, probe, "low", 10, priority=0)
        high = _cache(manager, probe, "high", 68, priority=9)
        report = manager.cleanup_caches()  # rss 98: one round of low (-5) is not enough
        assert report.caches == ("low", "high")
        assert (len(low), len(high)) == (5, 34)
        assert report.cleared


def test_cleanup_at_normal_pressure_does_nothing_unless_forced(manager: MemoryManager) -> None:
    quotes = BoundedLRUCache[int, int](max_items=100, name="quotes", manager=manager)
    for i in range(40):
        quotes[i] = i
    report = manager.cleanup_caches()
    assert report.steps == ()
    assert report.freed_items == 0
    assert report.cleared
    report = manager.cleanup_caches(0.25, force=True)
    assert report.caches == ("quotes",)
    assert report.freed_items == 10
    assert len(quotes) == 30
    assert report.freed_bytes is not None
    assert report.freed_bytes > 0
    manager.cleanup_caches(1.0, force=True)
    assert len(quotes) == 0
    for bad in (0, 1.5, -1, "half"):
        with pytest.raises(ConfigurationError):
            manager.cleanup_caches(bad, force=True)  # type: ignore[arg-type]


def test_dropped_cache_leaves_the_manager(manager: MemoryManager) -> None:
    cache = BoundedLRUCache[int, int](max_items=10, name="tmp", manager=manager)
    assert [c.name for c in manager.statistics().caches] == ["tmp"]
    del cache
    gc.collect()
    assert manager.statistics().caches == ()
    assert manager.cleanup_caches(force=True).steps == ()


def test_when_caches_are_not_enough_a_collection_then_a_trim(fake_clock: FakeClock) -> None:
    probe = FakeProbe(rss_bytes=99 * MiB, malloc_free_bytes=40 * MiB, trim_releases=30 * MiB)
    cfg = MemoryConfig(
        thresholds=PressureThresholds(min_hold=0),
        trim_threshold=16 * MiB,
        uss_interval=None,
    )
    with MemoryManager(budget=100 * MiB, probe=probe, clock=fake_clock, config=cfg) as m:
        report = m.cleanup_caches()
        assert report.steps == ()
        assert report.gc is not None
        assert report.gc.performed
        assert report.gc.trimmed
        assert probe.trims == 1
        assert report.rss_after == 69 * MiB
        assert report.cleared
        # the next one within the cooldown does not collect again
        probe.rss_bytes = 99 * MiB
        again = m.cleanup_caches()
        assert again.gc is not None
        assert not again.gc.performed
        assert again.gc.retry_in == pytest.approx(30.0)
        assert m.statistics().forced_collections == 1


def test_high_rss_with_much_glibc_free_memory_is_trimmed_first(fake_clock: FakeClock) -> None:
    probe = FakeProbe(rss_bytes=70 * MiB, malloc_free_bytes=20 * MiB, trim_releases=15 * MiB)
    cfg = MemoryConfig(
        thresholds=PressureThresholds(elevated=0.8, critical=0.95, hysteresis=0.05, min_hold=0),
        trim_threshold=8 * MiB,
        uss_interval=None,
    )
    with MemoryManager(budget=100 * MiB, probe=probe, clock=fake_clock, config=cfg) as m:
        status = m.monitor_memory()  # 70 %: below elevated, no trim
        assert (status.rss_bytes, status.level, probe.trims) == (70 * MiB, N, 0)
        probe.rss_bytes, probe.malloc_free_bytes = 90 * MiB, 20 * MiB
        status = m.monitor_memory()  # 90 % with 20 MiB free in glibc: trim, then judge
        assert probe.trims == 1
        assert (status.rss_bytes, status.level, status.cleanup) == (75 * MiB, N, None)
        assert status.ratio == pytest.approx(0.75)
        assert m.statistics().trims == 1


def _two_caches(
    m: MemoryManager,
) -> tuple[BoundedLRUCache[int, bytes], BoundedLRUCache[int, bytes]]:
    low = BoundedLRUCache[int, bytes](max_items=1000, name="low", manager=m, priority=0)
    high = BoundedLRUCache[int, bytes](max_items=1000, name="high", manager=m, priority=9)
    for i in range(40):  # ~40 MiB estimated in each
        low[i] = bytes(MiB)
        high[i] = bytes(MiB)
    return low, high


def test_shrinking_stops_once_the_estimates_cover_the_excess(fake_clock: FakeClock) -> None:
    # RSS that does not drop when caches free memory (fragmented allocator): the
    # manager stops once the caches' own byte estimates cover the excess, instead
    # of wiping every cache in search of an RSS drop that will not come
    probe = FakeProbe(rss_bytes=90 * MiB)
    cfg = MemoryConfig(
        thresholds=PressureThresholds(elevated=0.8, critical=0.95, hysteresis=0.05, min_hold=0),
        shrink_fraction=0.25,
        uss_interval=None,
        gc_cooldown=0.0,
    )
    with MemoryManager(budget=100 * MiB, probe=probe, clock=fake_clock, config=cfg) as m:
        low, high = _two_caches(m)
        report = m.cleanup_caches()  # excess: 90 - 75 = 15 MiB
        assert report.caches == ("low", "low")  # 10 then 8 MiB: 18 >= 15
        assert (len(low), len(high)) == (22, 40)
        assert report.freed_bytes is not None
        assert report.freed_bytes >= 15 * MiB
        assert report.covered
        assert not report.cleared  # RSS itself did not drop: said so
        assert report.gc is None  # the estimates covered it: no forced collection


def test_elevated_does_not_shrink_again_until_rss_grows_past_the_slack(
    fake_clock: FakeClock,
) -> None:
    probe = FakeProbe(rss_bytes=90 * MiB)
    cfg = MemoryConfig(
        thresholds=PressureThresholds(elevated=0.8, critical=0.95, hysteresis=0.05, min_hold=5),
        shrink_fraction=0.25,
        max_rounds_per_priority=20,
        uss_interval=None,
        rearm_slack=0.02,
    )
    with MemoryManager(budget=100 * MiB, probe=probe, clock=fake_clock, config=cfg) as m:
        low, high = _two_caches(m)
        first = m.monitor_memory()
        assert first.cleanup is not None
        assert first.cleanup.covered
        assert len(low) == 22
        for _ in range(5):  # the freed memory is being reused: RSS flat, no new shrink
            fake_clock.advance(1)
            status = m.monitor_memory()
            assert status.level is E
            assert status.cleanup is None
        probe.rss_bytes = 92 * MiB + 1  # grew beyond mark + 2 % of the budget
        assert m.monitor_memory().cleanup is not None
        assert len(low) < 22
        before = len(low)
        assert len(high) == 40
        probe.rss_bytes = 96 * MiB  # critical: always acts (excess 21 MiB)
        report = m.monitor_memory().cleanup
        assert report is not None
        assert len(low) < before
        names = list(report.caches)
        assert names[0] == "low"
        assert names == sorted(names, key=["low", "high"].index)  # low rounds first
        assert report.covered


# ------------------------------------------------------------------------ GC


def test_force_gc_reports_and_respects_the_cooldown(
    manager: MemoryManager, fake_clock: FakeClock, probe: FakeProbe
) -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    gc.disable()  # so that no automatic collection takes the garbage first
    try:
        for _ in range(100):
            Node()  # cyclic garbage
        result = manager.force_garbage_collection()
    finally:
        gc.enable()
    assert result.performed
    assert result.collected >= 100
    assert result.pause >= 0
    assert result.rss_before == result.rss_after == probe.rss_bytes
    skipped = manager.force_garbage_collection()
    assert not skipped.performed
    assert skipped.retry_in == pytest.approx(10.0)
    fake_clock.advance(9.9)
    assert not manager.force_garbage_collection().performed
    fake_clock.advance(0.1)
    assert manager.force_garbage_collection().performed
    assert manager.force_garbage_collection(ignore_cooldown=True).performed
    assert manager.force_garbage_collection(0, ignore_cooldown=True).generation == 0
    with pytest.raises(ConfigurationError):
        manager.force_garbage_collection(3)
    assert manager.statistics().forced_collections == 4


def test_trim_only_above_the_threshold(manager: MemoryManager, probe: FakeProbe) -> None:
    probe.malloc_free_bytes = 1 * MiB  # threshold is 8 MiB
    assert manager.trim_memory() is False
    assert probe.trims == 0
    probe.malloc_free_bytes = 9 * MiB
    assert manager.trim_memory() is True
    assert probe.trims == 1
    probe.malloc_free_bytes = None  # not glibc
    assert manager.trim_memory() is False
    manager.trim_memory(force=True)
    assert probe.trims == 2
    assert manager.statistics().trims == 2


def test_gc_pauses_are_measured_per_generation(manager: MemoryManager) -> None:
    before = manager.statistics().gc
    gc.collect(0)
    gc.collect(2)
    after = manager.statistics().gc
    assert after.generations[0].count >= before.generations[0].count + 1
    assert after.generations[2].count >= before.generations[2].count + 1
    g2 = after.generations[2]
    assert 0 <= g2.p50 <= g2.p95 <= g2.p99 <= g2.max <= g2.total


def test_warmup_mode_ends_by_itself_after_warmup_seconds(fake_clock: FakeClock) -> None:
    original = gc.get_threshold()
    cfg = MemoryConfig(warmup=30.0, uss_interval=None)
    with MemoryManager(budget=100 * MiB, probe=FakeProbe(), clock=fake_clock, config=cfg) as m:
        m.begin_warmup()
        assert m.gc_mode.phase == "warmup"
        assert gc.get_threshold()[0] == original[0] * 10
        fake_clock.advance(29)
        m.monitor_memory()
        assert m.gc_mode.phase == "warmup"
        fake_clock.advance(1)
        m.monitor_memory()
        assert m.gc_mode.phase == "steady"
        assert m.statistics().gc_mode == "steady"
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == original  # close() restored the interpreter
    assert gc.get_freeze_count() == 0


# ------------------------------------------------------------------------ figures


def test_metric_families_use_the_contract_names(manager: MemoryManager, probe: FakeProbe) -> None:
    from aimax.monitor import families_of

    quotes = BoundedLRUCache[int, bytes](max_items=10, name="quotes", manager=manager)
    quotes[1] = b"x" * 1000
    probe.rss_bytes = 190 * MiB
    manager.monitor_memory()
    families = {f.name: f for f in families_of(manager.statistics())}
    for required in [
        "aimax_memory_budget_bytes",
        "aimax_memory_pressure_level",
        "aimax_memory_usage_ratio",
        "aimax_memory_cache_items",
        "aimax_memory_cache_bytes",
    ]:
        assert required in families
    # RSS is the monitor's process_resident_memory_bytes; GC figures are the monitor's too
    assert "aimax_memory_rss_bytes" not in families
    assert not any(name.startswith("aimax_gc_") for name in families)
    assert families["aimax_memory_budget_bytes"].values == (({}, 200 * MiB),)
    assert families["aimax_memory_pressure_level"].values[0][1] in (1, 2)
    [(labels, items)] = families["aimax_memory_cache_items"].values
    assert labels == {"cache": "quotes"}
    assert isinstance(items, int)
    assert items <= 1
    assert families["aimax_memory_cleanups_total"].kind == "counter"


def test_statistics_and_repr_show_the_same_state(manager: MemoryManager, probe: FakeProbe) -> None:
    probe.rss_bytes = 180 * MiB
    manager.monitor_memory()
    stats = manager.statistics()
    assert stats.rss_bytes <= 180 * MiB
    assert stats.budget_bytes == 200 * MiB
    text = repr(manager)
    assert f"level={stats.level.name}" in text
    assert "budget=209715200" in text
    with pytest.raises(AttributeError):
        stats.rss_bytes = 0  # type: ignore[misc]


# ------------------------------------------------------------------------ lifecycle


def test_close_is_idempotent_and_closed_manager_refuses_work(probe: FakeProbe) -> None:
    callbacks = len(gc.callbacks)
    m = MemoryManager(budget=100 * MiB, probe=probe)
    assert len(gc.callbacks) == callbacks + 1
    m.close()
    m.close()
    assert len(gc.callbacks) == callbacks
    with pytest.raises(MemoryManagerError):
        m.monitor_memory()
    with pytest.raises(MemoryManagerError):
        m.register_cache("x", BoundedLRUCache[int, int](max_items=1))
    assert m.statistics().budget_bytes == 100 * MiB  # still answers with its last figures


def test_background_check_runs_and_stops() -> None:
    probe = FakeProbe(rss_bytes=10 * MiB)
    with MemoryManager(budget=100 * MiB, probe=probe, config=MemoryConfig(uss_interval=None)) as m:
        assert not m.running
        m.start(interval=0.01)
        m.start(interval=0.01)  # idempotent
        assert m.running
        deadline = time.monotonic() + 30
        while m.statistics().checks < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert m.statistics().checks >= 3
        m.stop()
        assert not m.running
        m.start(interval=0.01)
        assert m.running
    assert not m.running
    assert not [t for t in threading.enumerate() if t.name == "aimax-memory-check"]


def test_background_thread_stops_when_the_manager_is_dropped() -> None:
    m = MemoryManager(budget=100 * MiB, probe=FakeProbe(), config=MemoryConfig(uss_interval=None))
    m.start(interval=0.01)
    thread = next(t for t in threading.enumerate() if t.name == "aimax-memory-check")
    del m
    gc.collect()
    thread.join(30)
    assert not thread.is_alive()


def test_cleanup_from_many_threads_is_serialised(fake_clock: FakeClock) -> None:
    manager, probe = _model_manager(fake_clock)
    with manager:
        caches = [_cache(manager, probe, f"c{i}", 20, priority=i) for i in range(4)]
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(20):
                    manager.cleanup_caches(0.1, force=True)
                    manager.monitor_memory()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert all(len(c) < 20 for c in caches)


def test_reentrant_cleanup_from_a_shrink_function_is_refused(manager: MemoryManager) -> None:
    class Blob:
        pass

    seen: list[BaseException] = []

    def shrink(cache: Blob, fraction: float) -> int:
        try:
            manager.cleanup_caches(force=True)
        except MemoryManagerError as exc:
            seen.append(exc)
        return 0

    blob = Blob()
    manager.register_cache("blob", blob, shrink=shrink)
    manager.cleanup_caches(force=True)
    assert len(seen) == 1


def test_process_exits_cleanly_with_the_check_thread_running() -> None:
    code = (
        "from aimax.memory import MemoryManager\n"
        "m = MemoryManager(budget=2**30)\n"
        "m.begin_warmup()\n"
        "m.start(interval=0.01)\n"
        "print('started', m.running)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "started True"
    assert "Traceback" not in out.stderr


readings = st.lists(
    st.tuples(st.integers(0, 260), st.floats(0.0, 4.0, allow_nan=False)), min_size=1, max_size=40
)


@settings(max_examples=40, deadline=None)
@given(readings)
def test_manager_levels_follow_the_pure_core_on_a_fake_probe(
    steps: list[tuple[int, float]],
) -> None:
    clock = FakeClock(start=1000.0)
    probe = FakeProbe(rss_bytes=0)
    thresholds = PressureThresholds(elevated=0.8, critical=0.95, hysteresis=0.05, min_hold=2.0)
    config = MemoryConfig(
        thresholds=thresholds, auto_cleanup=False, uss_interval=None, measure_gc=False
    )
    reference = PressureTracker(thresholds)
    seen: list[LevelChange] = []
    expected: list[LevelChange] = []
    with MemoryManager(budget=200 * MiB, probe=probe, clock=clock, config=config) as m:
        m.add_level_listener(seen.append)
        for mib, step in steps:
            clock.advance(step)
            probe.rss_bytes = mib * MiB
            status = m.monitor_memory()
            change = reference.update(used=mib * MiB, budget=200 * MiB, now=clock())
            if change is not None:
                expected.append(change)
            assert status.level is reference.level
            assert status.change == change
    assert seen == expected
