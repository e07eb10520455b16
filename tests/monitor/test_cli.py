"""``aimax monitor`` (the click command the lead registers)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner

from aimax.monitor.cli import command


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        yield proc
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=30)


def test_watches_another_process(sleeper: subprocess.Popen[bytes]) -> None:
    result = CliRunner().invoke(
        command, ["--pid", str(sleeper.pid), "--interval", "0.05", "--duration", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert f"pid {sleeper.pid}" in result.output
    assert "process RSS" in result.output
    assert "MiB" in result.output
    assert "samples" in result.output


def test_stops_when_the_process_exits() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    try:
        result = CliRunner().invoke(command, ["--pid", str(proc.pid), "--interval", "0.05"])
    finally:
        proc.wait(timeout=30)
    assert result.exit_code == 0, result.output
    assert f"process {proc.pid} exited" in result.output


def test_serves_prometheus_while_watching(sleeper: subprocess.Popen[bytes]) -> None:
    import threading

    scraped: list[str] = []
    failures: list[Exception] = []

    def scrape() -> None:
        # find the server the command started, then scrape it
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not scraped:
            names = [
                t.name for t in threading.enumerate() if t.name.startswith("aimax-prometheus-")
            ]
            if names:
                port = int(names[0].rsplit("-", 1)[1])
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
                except httpx.TransportError as exc:  # the command may be stopping: retry
                    failures.append(exc)
                else:
                    scraped.append(response.text)
            time.sleep(0.01)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    result = CliRunner().invoke(
        command,
        [
            "--pid",
            str(sleeper.pid),
            "--interval",
            "0.05",
            "--duration",
            "2.5",
            "--prometheus-port",
            "0",
        ],
    )
    scraper.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert "Prometheus metrics on http://127.0.0.1:" in result.output
    assert scraped, failures
    assert "process_resident_memory_bytes" in scraped[0]


def test_bad_arguments() -> None:
    runner = CliRunner()
    result = runner.invoke(command, ["--pid", str(4_194_304 + 7)])
    assert result.exit_code == 2
    assert "no process with pid" in result.output
    result = runner.invoke(command, ["--interval", "0"])
    assert result.exit_code == 2
    assert "interval" in result.output
    result = runner.invoke(command, ["--duration", "-1"])
    assert result.exit_code == 2
