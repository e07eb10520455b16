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
    assert "at most 59 pairs" in " ".join(result.output.split())


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
