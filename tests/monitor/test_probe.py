"""SystemProbe on real processes: this one, a child by pid, and one that exits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from aimax.errors import ConfigurationError, ProcessNotFound
from aimax.monitor import ResourceMonitor, SystemProbe
from aimax.monitor.probe import CTX_VOLUNTARY, PROBE_METRICS

LINUX = sys.platform.startswith("linux")


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A child that allocates ~20 MB, opens a few files, then waits on stdin."""
    code = (
        "import sys, tempfile\n"
        "blob = bytearray(20 * 1024 * 1024)\n"
        "files = [tempfile.TemporaryFile() for _ in range(5)]\n"
        "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


def test_reads_every_figure_of_this_process() -> None:
    with SystemProbe() as probe:
        probe.read()
        # percentages need a clock tick (10 ms) between two readings
        deadline = time.monotonic() + 30
        reading = probe.read()
        while "aimax_system_cpu_ratio" not in reading.values and time.monotonic() < deadline:
            time.sleep(0.005)
            reading = probe.read()
    assert reading.failures == {}
    values = reading.values
    me = psutil.Process()
    assert values["aimax_process_threads"] == me.num_threads()
    assert values["process_resident_memory_bytes"] > 1_000_000
    assert values["process_open_fds"] >= 3
    assert values["process_start_time_seconds"] == pytest.approx(me.create_time(), abs=1.0)
    assert 0 <= values["aimax_system_memory_ratio"] <= 1
    assert 0 <= values["aimax_system_cpu_ratio"] <= 1
    assert values["aimax_process_cpu_ratio"] >= 0
    assert values[CTX_VOLUNTARY] >= 0
    names = {k.split("{")[0] for k in values}
    assert names == set(PROBE_METRICS)


def test_rss_agrees_with_a_fresh_psutil_reading() -> None:
    with SystemProbe() as probe:
        rss = probe.rss()
        reading = probe.read().values["process_resident_memory_bytes"]
    assert rss == pytest.approx(psutil.Process().memory_info().rss, rel=0.2)
    assert reading == pytest.approx(rss, rel=0.2)


def test_a_failing_field_degrades_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = SystemProbe()
    monkeypatch.setattr(probe._process, "num_fds", _denied_call)
    reading = probe.read()
    probe.close()
    assert "process_open_fds" not in reading.values
    assert "AccessDenied" in reading.failures["process_open_fds"]
    assert set(reading.failures) == {"process_open_fds"}
    assert reading.values["process_resident_memory_bytes"] > 0


def _denied(values: dict[str, float]) -> None:
    raise psutil.AccessDenied(os.getpid())


def _denied_call() -> int:
    raise psutil.AccessDenied(os.getpid())


@pytest.mark.parametrize("own_probe", [True, False], ids=["pid", "probe"])
def test_watching_a_child_process_by_pid(child: subprocess.Popen[bytes], own_probe: bool) -> None:
    if own_probe:
        monitor = ResourceMonitor(interval=0.05, pid=child.pid)
    else:
        monitor = ResourceMonitor(interval=0.05, probe=SystemProbe(child.pid))
    assert monitor.pid == child.pid
    first = monitor.collect_metrics()
    time.sleep(0.05)  # two readings to get a CPU percentage (not for correctness)
    second = monitor.collect_metrics()
    assert second.failures == {}, second.failures
    child_ps = psutil.Process(child.pid)
    assert second["process_resident_memory_bytes"] >= 20 * 1024 * 1024
    assert second["process_open_fds"] >= 8  # stdio + 5 temporary files
    assert second["aimax_process_threads"] == child_ps.num_threads()
    assert second["process_start_time_seconds"] == pytest.approx(child_ps.create_time(), abs=1)
    assert "aimax_process_cpu_ratio" not in first.values  # needs two readings
    assert second["aimax_process_cpu_ratio"] >= 0
    # no GC figures for another process: they would be this process's
    assert not any(k.startswith("aimax_gc") for k in second.values)
    assert second["aimax_monitor_up"] == 1.0
    # the child exits: its figures degrade, the system ones go on, nothing raises
    assert child.stdin is not None
    child.stdin.close()
    child.wait(timeout=30)
    gone = monitor.collect_metrics()
    assert gone["aimax_monitor_up"] == 0.0
    assert "is gone" in gone.failures["process_resident_memory_bytes"]
    assert "process_resident_memory_bytes" not in gone.values
    assert "aimax_system_memory_ratio" in gone.values
    again = monitor.collect_metrics()
    assert "is gone" in again.failures["process_open_fds"]
    monitor.close()
    if not own_probe:
        monitor._probe.close()  # type: ignore[attr-defined]  # a probe passed in is the caller's


def test_a_pid_that_does_not_exist() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    with pytest.raises(ProcessNotFound, match=str(proc.pid)) as info:
        SystemProbe(proc.pid)
    assert info.value.pid == proc.pid
    with pytest.raises(ConfigurationError, match="pid"):
        SystemProbe(-1)


def test_closed_probe_reports_instead_of_raising() -> None:
    probe = SystemProbe()
    probe.close()
    probe.close()
    reading = probe.read()
    assert reading.values == {}
    assert reading.failures["process_resident_memory_bytes"] == "probe is closed"
    assert "SystemProbe(" in repr(probe)


@pytest.mark.skipif(not LINUX, reason="the /proc path exists on Linux only")
def test_threads_of_this_process_follow_threads_starting_and_ending() -> None:
    import threading

    probe = SystemProbe()
    release = threading.Event()
    try:
        before = probe.read().values["aimax_process_threads"]
        assert before == psutil.Process().num_threads()
        threads = [threading.Thread(target=release.wait) for _ in range(3)]
        for thread in threads:
            thread.start()
        during = probe.read().values["aimax_process_threads"]
        # other tests' background threads may start or end meanwhile: compare with
        # psutil's count taken at the same moment, and expect at least our three
        assert during == psutil.Process().num_threads()
        assert during >= before + 3
    finally:
        release.set()
        for thread in threads:
            thread.join()
    after = probe.read().values["aimax_process_threads"]
    assert after == psutil.Process().num_threads()
    assert after < during  # our three threads ended
    probe.close()


@pytest.mark.parametrize("position", [0, 3, -1])
def test_a_failure_mid_read_keeps_every_other_figure_exact(
    monkeypatch: pytest.MonkeyPatch, position: int
) -> None:
    """One reader failing in the middle: the readers after it still run, once each."""
    probe = SystemProbe()
    probe.read()
    time.sleep(0.05)  # a few clock ticks: the CPU percentages have a value next time
    calls: list[str] = []
    readers = []
    for names, reader in probe._readers:

        def counted(
            values: dict[str, float], reader: object = reader, name: str = names[0]
        ) -> None:
            calls.append(name)
            reader(values)  # type: ignore[operator]

        readers.append((names, counted))
    broken = readers[position][0]
    readers[position] = (broken, _denied)
    monkeypatch.setattr(probe, "_readers", readers)
    reading = probe.read()
    probe.close()
    assert set(reading.failures) == set(broken)
    others = [names[0] for names, _ in readers if names != broken]
    assert sorted(calls) == sorted(others)  # none skipped, none run twice
    for name in PROBE_METRICS:
        if name not in broken and name != "aimax_process_context_switches_total":
            assert name in reading.values, name
