"""The ``aimax`` console script."""

from __future__ import annotations

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
