"""The ``aimax`` console script."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

import aimax
from aimax.cli import main


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert aimax.__version__ in result.output


def test_help_lists_the_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "aimax" in result.output


def test_console_script_runs_in_a_subprocess() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "aimax", "--version"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert aimax.__version__ in out.stdout


def test_plan_prints_the_warning_and_the_largest_n() -> None:
    result = CliRunner().invoke(main, ["plan", "--pairs", "500", "--period", "5"])
    assert result.exit_code == 0, result.output
    assert "cannot be refreshed every 5s" in " ".join(result.output.split())
    assert "at most 78 pairs" in " ".join(result.output.split())
    assert "would serve it: streaming" in " ".join(result.output.split())


def test_plan_and_the_optimizer_give_one_answer() -> None:
    """The issue's case: `aimax plan --pairs 20 --period 2` and the optimizer once
    disagreed (14.4 req/s and 23 pairs against 19 req/s and 30)."""
    import json

    from aimax.optimizer import SystemPerformanceOptimizer

    result = CliRunner().invoke(main, ["plan", "--pairs", "20", "--period", "2", "--json"])
    assert result.exit_code == 0, result.output
    cli = json.loads(result.output)
    with SystemPerformanceOptimizer() as opt:
        ours = opt.optimize_for_trading_pairs(20, refresh_period=2.0).as_dict()
    for key in ("public_rate", "private_rate", "max_pairs_at_period", "sustainable_period"):
        assert cli[key] == ours[key], key
    assert cli["cache_items_per_pair"] == ours["cache_items_per_pair"]
    assert cli["public_rate"] == 19.0
    assert cli["max_pairs_at_period"] == 30


def test_plan_json_round_trips_the_plan() -> None:
    import json

    from aimax.planning import plan_for_pairs

    result = CliRunner().invoke(main, ["plan", "-n", "50", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == plan_for_pairs(50, cpu_count=os.cpu_count() or 1).as_dict()


def test_plan_rejects_zero_pairs() -> None:
    result = CliRunner().invoke(main, ["plan", "--pairs", "0"])
    assert result.exit_code == 2
    assert "--pairs" in result.output


def _aimax(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aimax", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=120,
    )


def _one_line_error(out: subprocess.CompletedProcess[str], *words: str) -> None:
    assert out.returncode == 1, out
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_simulate_on_a_busy_port_is_one_line() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = _aimax("simulate", "--port", str(port))
    _one_line_error(out, f"127.0.0.1:{port}", "in use")


def test_simulate_on_an_address_not_of_this_host_is_one_line() -> None:
    out = _aimax("simulate", "--host", "8.8.8.8")
    _one_line_error(out, "8.8.8.8", "cannot listen")


def test_demo_into_an_unwritable_directory_is_one_line(tmp_path: object) -> None:
    out = _aimax("demo", "--output", "/proc/nope", "--duration", "1")
    _one_line_error(out, "/proc/nope")


def test_demo_with_a_bad_redis_url_is_one_line() -> None:
    out = _aimax("demo", "--pairs", "2", "--processes", "2", "--redis", "notaurl")
    _one_line_error(out, "'notaurl'", "redis://")


def test_a_redis_password_never_reaches_the_message() -> None:
    out = _aimax("demo", "--pairs", "2", "--processes", "2", "--redis", "http://:hunter2@db/0")
    _one_line_error(out, "***")
    assert "hunter2" not in out.stderr
