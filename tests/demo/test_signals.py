"""SIGINT and SIGTERM end ``aimax demo`` cleanly: the report for what ran, exit
130 / 143, and no process of the run left behind (real signals, real processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from aimax.demo.stop import StopRequest


class _Run:
    """``python -m aimax demo ...`` in its own session, its output read line by line."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aimax", "demo", *args, "--output", "r"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "100"},
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 120) -> None:
        def seen() -> bool:
            return sum(text in line for line in self.lines) >= count

        with self._seen:
            self._seen.wait_for(lambda: seen() or self.proc.poll() is not None, timeout)
            assert seen(), self.lines

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def finish(self, timeout: float = 120) -> int:
        _, self.stderr = self.proc.communicate(timeout=timeout)
        self._reader.join(timeout)
        return self.proc.returncode


def _gone(procs: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_and_writes_its_report(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    run = _Run(tmp_path, "--pairs", "3", "--duration", "120", "--period", "0.5", "--scale", "0.1")
    run.wait_for("requests; budget", count=2)  # a line at the start, one 5 s later
    started = time.monotonic()
    run.proc.send_signal(sig)
    assert run.finish() == code, run.stderr
    assert time.monotonic() - started < 60  # long before the 120 s duration
    assert "Traceback" not in run.stderr, run.stderr
    assert f"interrupted by {sig.name}" in "".join(run.lines)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert any(f"interrupted by {sig.name}" in note for note in report["notes"])
    assert (tmp_path / "r" / "report.html").is_file()
    workload = json.loads((tmp_path / "r" / "workload.json").read_text())
    assert workload["depth_calls"] >= 3


@pytest.mark.slow
@pytest.mark.parametrize("to_group", [False, True], ids=["sigterm-parent", "sigint-group"])
def test_a_signal_stops_every_process_of_a_sharded_run(tmp_path: Path, to_group: bool) -> None:
    run = _Run(
        tmp_path,
        *("--pairs", "4", "--processes", "2", "--duration", "120"),
        *("--period", "0.5", "--scale", "0.1"),
    )
    run.wait_for("over 2 processes")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the Redis server and both shards are up
        family = run.descendants()
        if len(family) >= 3:
            break
        time.sleep(0.2)
    assert len(family) >= 3, family
    run.wait_for("exchange served")  # a progress line: the shards are sending
    if to_group:  # what a terminal's Ctrl-C does: the whole process group
        os.killpg(run.proc.pid, signal.SIGINT)
        expected = 130
    else:
        run.proc.send_signal(signal.SIGTERM)
        expected = 143
    assert run.finish() == expected, run.stderr
    assert not _gone(family), "left behind after the run"
    assert "Traceback" not in run.stderr, run.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["interrupted"] == ("SIGINT" if to_group else "SIGTERM")
    assert summary["missing_shards"] == []
    for shard in (0, 1):  # each shard wrote the report of what it ran
        report = json.loads((tmp_path / "r" / f"shard-{shard}" / "report.json").read_text())
        assert any("interrupted by" in note for note in report["notes"])


def test_stop_request_runs_callbacks_once_and_keeps_the_first_signal() -> None:
    stop = StopRequest()
    calls: list[str] = []
    remove = stop.on_request(lambda: calls.append("a"))
    stop.on_request(lambda: calls.append("b"))
    remove()
    stop.request(signal.SIGINT)
    stop.request(signal.SIGTERM)
    assert calls == ["b"]
    assert stop.signal_name == "SIGINT"
    assert stop.exit_code == 130
    stop.on_request(lambda: calls.append("late"))  # already asked: called at once
    assert calls == ["b", "late"]


def test_handlers_are_restored_after_the_block() -> None:
    before = signal.getsignal(signal.SIGTERM)
    stop = StopRequest()
    with stop.handling_signals():
        assert signal.getsignal(signal.SIGTERM) != before
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) == before
    assert stop.signal_name == "SIGTERM"
