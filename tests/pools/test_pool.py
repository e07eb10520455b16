"""ResizablePool with real threads: results, errors, cancellation, policies, resize,
keep-alive, shutdown, and statistics that add up."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import wait as wait_all
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.errors import ConfigurationError, PoolClosed, PoolError, PoolFull
from aimax.pools import PoolConfig, PoolStatistics, ResizablePool

Until = Callable[..., bool]
Gate = Any


def assert_adds_up(s: PoolStatistics) -> None:
    assert s.submitted == s.accounted, s
    assert s.submitted == (
        s.completed + s.failed + s.cancelled + s.rejected + s.active + s.queued
    ), s


def test_results_are_standard_futures() -> None:
    with ResizablePool("t", PoolConfig(max_size=3)) as pool:
        futures = [pool.submit(pow, 2, i) for i in range(50)]
        assert all(isinstance(f, Future) for f in futures)
        assert [f.result(timeout=30) for f in futures] == [2**i for i in range(50)]
        assert pool.submit(dict, a=1).result(timeout=30) == {"a": 1}
        s = pool.statistics()
    assert s.completed == 51
    assert s.failed == s.cancelled == s.rejected == s.active == s.queued == 0
    assert s.run_time.count == 51
    assert s.queue_wait.count == 51
    assert 1 <= s.peak_size <= 3
    assert s.success_rate == 1.0
    assert_adds_up(s)


def test_exceptions_stay_on_their_futures_and_are_counted() -> None:
    def boom(i: int) -> int:
        if i % 3 == 0:
            raise ValueError(f"bad {i}")
        return i

    with ResizablePool("t", PoolConfig(max_size=4)) as pool:
        futures = [pool.submit(boom, i) for i in range(30)]
        wait_all(futures, timeout=30)
        errors = [f.exception() for f in futures]
        s = pool.statistics()
    assert [str(e) for e in errors if e is not None] == [f"bad {i}" for i in range(0, 30, 3)]
    assert all(isinstance(e, ValueError) for e in errors if e is not None)
    assert s.failed == 10
    assert s.completed == 20
    assert s.success_rate == pytest.approx(20 / 30)
    assert_adds_up(s)


def test_cancelled_queued_tasks_never_run_and_are_counted(gate: Gate, until: Until) -> None:
    ran: list[int] = []
    with ResizablePool("t", PoolConfig(max_size=1, size=1)) as pool:
        blocker = pool.submit(gate.task)
        assert until(lambda: gate.started == 1)
        queued = [pool.submit(ran.append, i) for i in range(10)]
        for f in queued[::2]:
            assert f.cancel()
        assert not blocker.cancel()  # running: cannot be cancelled
        s = pool.statistics()
        assert s.cancelled == 5
        assert s.queued == 5
        assert s.active == 1
        assert_adds_up(s)
        gate.release.set()
        wait_all(queued, timeout=30)
    assert ran == [1, 3, 5, 7, 9]
    for f in queued[::2]:
        with pytest.raises(CancelledError):
            f.result()
    s = pool.statistics()
    assert (s.completed, s.cancelled, s.queued) == (6, 5, 0)
    assert_adds_up(s)


def test_statistics_add_up_with_every_kind_of_task_parked(gate: Gate, until: Until) -> None:
    config = PoolConfig(max_size=2, size=2, queue_size=4, policy="reject")
    with ResizablePool("t", config) as pool:
        pool.submit(abs, -1).result(timeout=30)
        failing = pool.submit(int, "x")
        assert isinstance(failing.exception(timeout=30), ValueError)
        running = [pool.submit(gate.task, i) for i in range(2)]
        assert until(lambda: gate.started == 2)
        queued = [pool.submit(gate.task, 10 + i) for i in range(4)]
        queued[0].cancel()
        pool.submit(gate.task)  # the cancelled one freed a place
        with pytest.raises(PoolFull):
            pool.submit(gate.task)
        s = pool.statistics()
        assert (s.submitted, s.completed, s.failed, s.cancelled, s.rejected) == (10, 1, 1, 1, 1)
        assert (s.active, s.queued) == (2, 4)
        assert_adds_up(s)
        gate.release.set()
        wait_all(running + queued, timeout=30)
    s = pool.statistics()
    assert (s.completed, s.active, s.queued) == (1 + 2 + 3 + 1, 0, 0)
    assert_adds_up(s)


def test_reject_policy_raises_pool_full_naming_the_pool(gate: Gate, until: Until) -> None:
    with ResizablePool("orders", PoolConfig(max_size=1, queue_size=2, policy="reject")) as pool:
        pool.submit(gate.task)
        assert until(lambda: gate.started == 1)
        pool.submit(gate.task)
        pool.submit(gate.task)
        with pytest.raises(PoolFull) as info:
            pool.submit(gate.task)
        assert info.value.pool == "orders"
        assert "orders" in str(info.value)
        assert isinstance(info.value, PoolError)
        gate.release.set()
    s = pool.statistics()
    assert (s.rejected, s.completed) == (1, 3)
    assert_adds_up(s)


def test_block_policy_times_out_with_pool_full(gate: Gate, until: Until) -> None:
    config = PoolConfig(max_size=1, queue_size=1, policy="block:0.05")
    with ResizablePool("t", config) as pool:
        pool.submit(gate.task)
        assert until(lambda: gate.started == 1)
        pool.submit(gate.task)
        with pytest.raises(PoolFull, match="still full"):
            pool.submit(gate.task)
        gate.release.set()
    s = pool.statistics()
    assert (s.rejected, s.completed) == (1, 2)
    assert_adds_up(s)


def test_block_policy_waits_for_room_then_enqueues(gate: Gate, until: Until) -> None:
    config = PoolConfig(max_size=1, queue_size=1, policy="block")
    with ResizablePool("t", config) as pool:
        pool.submit(gate.task, 1)
        assert until(lambda: gate.started == 1)
        pool.submit(gate.task, 2)
        submitted: list[Future[int]] = []
        submitter = threading.Thread(target=lambda: submitted.append(pool.submit(gate.task, 3)))
        submitter.start()
        assert until(lambda: pool._blocked == 1)
        assert not submitted  # still blocked: the queue is full
        gate.release.set()
        submitter.join(30)
        assert submitted
        assert submitted[0].result(timeout=30) == 3
    assert gate.order == [1, 2, 3]
    assert pool.statistics().rejected == 0


def test_caller_runs_policy_runs_in_the_submitting_thread(gate: Gate, until: Until) -> None:
    config = PoolConfig(max_size=1, queue_size=1, policy="caller_runs")
    with ResizablePool("t", config) as pool:
        pool.submit(gate.task)
        assert until(lambda: gate.started == 1)
        pool.submit(gate.task)
        here = pool.submit(threading.get_ident)
        assert here.done()
        assert here.result() == threading.get_ident()
        failing = pool.submit(int, "nope")
        assert isinstance(failing.exception(), ValueError)
        s = pool.statistics()
        assert (s.caller_runs, s.completed, s.failed) == (2, 1, 1)
        assert_adds_up(s)
        gate.release.set()
    assert pool.statistics().completed == 3


def test_resize_up_under_load_starts_workers_at_once(gate: Gate, until: Until) -> None:
    with ResizablePool("t", PoolConfig(max_size=8, size=2)) as pool:
        futures = [pool.submit(gate.task, i) for i in range(12)]
        assert until(lambda: gate.started == 2)
        assert pool.statistics().queued == 10
        pool.resize(6)
        assert until(lambda: gate.started == 6)
        s = pool.statistics()
        assert (s.size, s.target, s.active, s.queued) == (6, 6, 6, 6)
        assert_adds_up(s)
        gate.release.set()
        assert [f.result(timeout=30) for f in futures] == list(range(12))
    assert gate.peak == 6
    assert pool.statistics().peak_size == 6


def test_resize_down_under_load_takes_effect_as_workers_finish(
    until: Until, new_gate: Callable[[], Gate]
) -> None:
    first = new_gate()
    second = new_gate()
    with ResizablePool("t", PoolConfig(max_size=8, size=6)) as pool:
        busy = [pool.submit(first.task) for _ in range(6)]
        assert until(lambda: first.started == 6)
        later = [pool.submit(second.task, i) for i in range(10)]
        pool.resize(2)
        assert pool.statistics().size == 6  # running tasks are never interrupted
        first.release.set()
        wait_all(busy, timeout=30)
        assert until(lambda: pool.size == 2)
        assert until(lambda: second.started == 2)
        second.release.set()
        assert [f.result(timeout=30) for f in later] == list(range(10))
    # after the shrink, never more than 2 of the later tasks ran at once
    assert second.peak <= 2


def test_shrinking_an_idle_pool_retires_workers_now(gate: Gate, until: Until) -> None:
    with ResizablePool("t", PoolConfig(max_size=6)) as pool:
        futures = [pool.submit(gate.task) for _ in range(6)]
        assert until(lambda: gate.started == 6)
        gate.release.set()
        wait_all(futures, timeout=30)
        assert until(lambda: pool.idle == 6)
        pool.resize(1)
        assert until(lambda: pool.size == 1)
        assert pool.submit(abs, -5).result(timeout=30) == 5


def test_idle_workers_retire_after_keep_alive_down_to_min_size(gate: Gate, until: Until) -> None:
    config = PoolConfig(max_size=5, min_size=2, keep_alive=0.05)
    with ResizablePool("t", config) as pool:
        futures = [pool.submit(gate.task) for _ in range(5)]
        assert until(lambda: gate.started == 5)
        gate.release.set()
        wait_all(futures, timeout=30)
        assert until(lambda: pool.size == 2)
        assert pool.statistics().peak_size == 5
        assert pool.submit(abs, -1).result(timeout=30) == 1
    assert pool.statistics().completed == 6


def test_shutdown_drains_the_queue_by_default(gate: Gate, until: Until) -> None:
    pool = ResizablePool("t", PoolConfig(max_size=2))
    futures = [pool.submit(gate.task, i) for i in range(8)]
    assert until(lambda: gate.started == 2)
    threading.Timer(0.05, gate.release.set).start()
    report = pool.shutdown(wait=True)
    assert [f.result(timeout=0) for f in futures] == list(range(8))
    assert report.cancelled == ()
    assert report.drained == 8
    assert report.threads_alive == 0
    assert report.clean
    with pytest.raises(PoolClosed):
        pool.submit(abs, 1)


def test_shutdown_without_draining_cancels_and_names_the_queue(gate: Gate, until: Until) -> None:
    def named_task() -> None:
        gate.task()

    pool = ResizablePool("io", PoolConfig(max_size=1))
    running = pool.submit(gate.task)
    assert until(lambda: gate.started == 1)
    queued = [pool.submit(named_task) for _ in range(3)]
    owner_cancelled = pool.submit(named_task)
    owner_cancelled.cancel()
    threading.Timer(0.05, gate.release.set).start()
    report = pool.shutdown(wait=True, drain=False)
    assert len(report.cancelled) == 3  # the owner's own cancel is not the shutdown's
    assert {ref.name for ref in report.cancelled} == {named_task.__qualname__}
    assert {ref.pool for ref in report.cancelled} == {"io"}
    assert all(f.cancelled() for f in queued)
    assert [ref.future for ref in report.cancelled] == queued
    assert running.result(timeout=0) == 0
    assert report.threads_alive == 0
    assert not report.clean
    s = pool.statistics()
    assert (s.cancelled, s.completed, s.queued, s.active) == (4, 1, 0, 0)
    assert_adds_up(s)


def test_shutdown_timeout_cancels_leftovers_and_reports_running(gate: Gate, until: Until) -> None:
    pool = ResizablePool("t", PoolConfig(max_size=1))
    running = pool.submit(gate.task, 1)
    assert until(lambda: gate.started == 1)
    queued = [pool.submit(gate.task, 2) for _ in range(3)]
    report = pool.shutdown(wait=True, timeout=0.05)
    assert report.timed_out
    assert len(report.cancelled) == 3
    assert all(f.cancelled() for f in queued)
    assert [ref.future for ref in report.still_running] == [running]
    assert report.threads_alive == 1
    gate.release.set()
    assert running.result(timeout=30) == 1
    again = pool.shutdown(wait=True)  # idempotent: joins the last worker, cancels nothing
    assert again.already_closed
    assert again.cancelled == ()
    assert again.threads_alive == 0
    assert_adds_up(pool.statistics())


def test_shutdown_wakes_blocked_submitters_with_pool_closed(gate: Gate, until: Until) -> None:
    pool = ResizablePool("t", PoolConfig(max_size=1, queue_size=1, policy="block"))
    pool.submit(gate.task)
    assert until(lambda: gate.started == 1)
    pool.submit(gate.task)
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            pool.submit(gate.task)
        except PoolClosed as exc:
            errors.append(exc)

    thread = threading.Thread(target=submit)
    thread.start()
    assert until(lambda: pool._blocked == 1)
    gate.release.set()
    pool.shutdown(wait=True, drain=False)
    thread.join(30)
    # either it got in before the shutdown (and was cancelled or run) or was told why not
    s = pool.statistics()
    assert len(errors) + s.submitted - s.rejected == 3
    assert_adds_up(s)


def test_shutdown_is_idempotent_and_leaves_no_thread() -> None:
    pool = ResizablePool("t", PoolConfig(max_size=3))
    for f in [pool.submit(abs, -i) for i in range(20)]:
        f.result(timeout=30)
    first = pool.shutdown()
    second = pool.shutdown()
    assert first.clean
    assert second.clean
    assert second.already_closed
    assert not [t for t in threading.enumerate() if t.name.startswith("aimax-pool-t")]


def test_task_submitting_to_its_own_pool_and_shutdown_from_a_task() -> None:
    pool = ResizablePool("t", PoolConfig(max_size=2))

    def outer() -> int:
        return pool.submit(abs, -7).result(timeout=30) + 1

    assert pool.submit(outer).result(timeout=30) == 8
    report = pool.submit(pool.shutdown, wait=True).result(timeout=30)
    assert report.threads_alive in {0, 1}  # the calling worker may not have exited yet
    assert pool.shutdown().threads_alive == 0


@pytest.mark.parametrize(
    ("size", "match"),
    [(0, "size"), (9, "size"), (-1, "size"), (2.5, "size"), (True, "size")],
)
def test_resize_rejects_bad_sizes(size: object, match: str) -> None:
    with ResizablePool("t", PoolConfig(max_size=8)) as pool:
        with pytest.raises(ConfigurationError, match=match):
            pool.resize(size)  # type: ignore[arg-type]
        assert pool.target == 8


def test_resize_below_min_size_is_refused() -> None:
    with (
        ResizablePool("t", PoolConfig(max_size=8, min_size=3)) as pool,
        pytest.raises(ConfigurationError, match=r"\[3, 8\]"),
    ):
        pool.resize(2)


def test_bad_names_configs_and_timeouts_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        ResizablePool("", PoolConfig())
    with pytest.raises(ConfigurationError):
        ResizablePool("t", {"max_size": 2})  # type: ignore[arg-type]
    with ResizablePool("t") as pool:
        with pytest.raises(ConfigurationError, match="timeout"):
            pool.shutdown(timeout=-1)
        assert "ResizablePool 't'" in repr(pool)


def test_concurrent_submitters_statistics_add_up_exactly(until: Until) -> None:
    config = PoolConfig(max_size=4, queue_size=50, policy="reject")
    pool = ResizablePool("t", config)
    outcomes: list[str] = []
    lock = threading.Lock()

    def work(i: int) -> int:
        if i % 7 == 0:
            raise RuntimeError(i)
        return i

    def producer(base: int) -> None:
        mine = []
        for i in range(base, base + 300):
            try:
                f = pool.submit(work, i)
            except PoolFull:
                mine.append("rejected")
                continue
            if i % 11 == 0 and f.cancel():
                mine.append("cancelled")
            else:
                mine.append("future")
        with lock:
            outcomes.extend(mine)

    threads = [threading.Thread(target=producer, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    pool.shutdown(wait=True)
    s = pool.statistics()
    assert s.submitted == 1200 == len(outcomes)
    assert s.rejected == outcomes.count("rejected")
    assert s.cancelled == outcomes.count("cancelled")
    assert s.active == s.queued == 0
    assert s.completed + s.failed == outcomes.count("future")
    assert_adds_up(s)
    assert s.peak_size <= 4


def test_statistics_percentiles_are_ordered_and_bracket_the_mean() -> None:
    barrier_free: list[Future[int]] = []
    with ResizablePool("t", PoolConfig(max_size=2)) as pool:
        barrier_free += [pool.submit(sum, range(i * 100)) for i in range(200)]
        wait_all(barrier_free, timeout=30)
        s = pool.statistics()
    for summary in (s.run_time, s.queue_wait):
        assert summary.count == 200
        assert 0 <= summary.p50 <= summary.p95 <= summary.p99
        assert summary.mean >= 0
    assert "run p95" in str(s)


@pytest.mark.parametrize(
    ("wait_ns", "run_ns"),
    [(0, 0), (7, 31), (32, 33), (1_500, 2_000_000), (3 * 2**40, 5), (2**49, 2**60)],
)
def test_worker_records_the_buckets_of_both_durations(wait_ns: int, run_ns: int) -> None:
    # a scripted nanosecond clock: submit, start, end, then constant
    from aimax.pools import _histogram

    stamps = iter([1_000, 1_000 + wait_ns, 1_000 + wait_ns + run_ns])
    last = [1_000 + wait_ns + run_ns]

    def fake_ns() -> int:
        for value in stamps:
            last[0] = value
            return value
        return last[0]

    with ResizablePool("scripted", PoolConfig(max_size=1), clock_ns=fake_ns) as pool:
        pool.submit(int).result()
        s = pool.statistics()
    expected_wait = _histogram.bucket_value(_histogram.bucket(wait_ns)) / 1e9
    expected_run = _histogram.bucket_value(_histogram.bucket(run_ns)) / 1e9
    assert s.queue_wait.count == s.run_time.count == 1
    assert s.queue_wait.p50 == s.queue_wait.p99 == expected_wait
    assert s.run_time.p50 == s.run_time.p99 == expected_run
    assert s.queue_wait.mean == wait_ns / 1e9
    assert s.run_time.mean == run_ns / 1e9


def test_statistics_count_every_task_across_folds_and_retirements() -> None:
    # more tasks than a worker keeps unfolded, spread over workers that then retire
    pool = ResizablePool("folds", PoolConfig(min_size=0, max_size=4, keep_alive=0.05))
    futures = [pool.submit(int) for _ in range(3000)]
    wait_all(futures)
    first = pool.statistics()
    assert first.completed == 3000
    assert first.queue_wait.count == first.run_time.count == 3000
    pool.resize(1)
    futures = [pool.submit(int) for _ in range(10)]
    wait_all(futures)
    pool.shutdown()
    s = pool.statistics()
    assert s.completed == 3010
    assert s.queue_wait.count == s.run_time.count == 3010
    assert s.run_time.p50 <= s.run_time.p95 <= s.run_time.p99


def test_a_task_is_counted_before_its_result_is_seen() -> None:
    """Whoever gets a result (or an exception) finds the task in the statistics: a
    done-callback, which runs inside set_result on the worker, already sees it."""
    seen: list[tuple[int, int, int]] = []

    def look(_: Future[object]) -> None:
        s = pool.statistics()
        seen.append((s.completed, s.failed, s.run_time.count))

    with ResizablePool("counted", PoolConfig(max_size=2)) as pool:
        for i in range(1, 41):
            future = pool.submit(pow, 2, i) if i % 7 else pool.submit(int, "x")
            future.add_done_callback(look)
            wait_all([future])
    assert len(seen) == 40
    for i, (completed, failed, measured) in enumerate(seen, start=1):
        assert completed + failed >= i
        assert measured >= i


def test_a_caller_run_task_is_counted_before_its_result_is_seen() -> None:
    release = threading.Event()
    config = PoolConfig(max_size=1, queue_size=1, policy="caller_runs")
    with ResizablePool("caller", config) as pool:
        busy = pool.submit(release.wait)  # the one worker
        queued = pool.submit(int)  # the one queue slot
        ran_here = pool.submit(threading.get_ident)
        assert ran_here.result() == threading.get_ident()
        s = pool.statistics()
        assert s.caller_runs == 1
        assert s.completed == 1
        assert s.run_time.count == 1
        release.set()
        busy.result()
        queued.result()


class _TaskClock:
    """A nanosecond clock that only tasks move (each task advances it by its duration)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0

    def __call__(self) -> int:
        with self._lock:
            return self.now

    def advance(self, ns: int) -> None:
        with self._lock:
            self.now += ns


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**36), min_size=1, max_size=60))
def test_quantiles_read_equal_a_fresh_computation(durations: list[int]) -> None:
    # one worker, held by a gate until every task is queued at clock 0: task i then
    # waits exactly sum(durations[:i]) and runs durations[i] (the gate task: 0 and 0)
    from aimax.pools import _histogram

    clock = _TaskClock()
    gate = threading.Event()
    with ResizablePool("prop", PoolConfig(max_size=1, size=1), clock_ns=clock) as pool:
        first = pool.submit(gate.wait, 30)
        futures = [pool.submit(clock.advance, ns) for ns in durations]
        gate.set()
        wait_all([first, *futures], timeout=30)
        s = pool.statistics()
    waits = [0, *itertools.accumulate([0, *durations[:-1]])]
    runs = [0, *durations]

    def fresh(values: list[int]) -> list[float]:
        ordered = sorted(values)
        ranks = [max(1, math.ceil(q * len(ordered))) for q in (0.5, 0.95, 0.99)]
        return [_histogram.bucket_value(_histogram.bucket(ordered[r - 1])) / 1e9 for r in ranks]

    for summary, values in ((s.queue_wait, waits), (s.run_time, runs)):
        assert summary.count == len(values)
        assert [summary.p50, summary.p95, summary.p99] == fresh(values)
        assert summary.sum == sum(values) / 1e9
        edges = _histogram.EDGES_NS
        assert summary.histogram.bounds == tuple(e / 1e9 for e in edges)
        assert list(summary.histogram.cumulative) == [
            *(sum(1 for v in values if v < e) for e in edges),
            len(values),
        ]
    assert s.completed == len(durations) + 1
