"""`aimax report` (the click command the lead registers): render a saved report."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from aimax.report import OptimizationReport, write_json
from aimax.report.cli import command


def test_prints_the_report_and_writes_html(
    report: OptimizationReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the report's own charts are covered in test_html; an empty chart set keeps this quick
    monkeypatch.setattr("aimax.report.htmlpage.render_charts", lambda report, max_points: [])
    source = write_json(report, tmp_path / "run.json")
    result = CliRunner().invoke(
        command, [str(source), "--html", str(tmp_path / "out" / "run.html"), "--width", "100"]
    )
    assert result.exit_code == 0, result.output
    assert "rest_public" in result.output
    assert "93.4 %" in result.output
    assert f"HTML report written to {tmp_path / 'out' / 'run.html'}" in result.output
    assert (tmp_path / "out" / "run.html").read_text(encoding="utf-8").startswith("<!DOCTYPE")


def test_quiet_and_bad_input(tmp_path: Path, empty_report: OptimizationReport) -> None:
    source = write_json(empty_report, tmp_path / "run.json")
    result = CliRunner().invoke(command, [str(source), "--quiet"])
    assert result.exit_code == 0
    assert result.output == ""
    bad = tmp_path / "bad.json"
    bad.write_text('{"title": 3, "created_at": 0}')
    result = CliRunner().invoke(command, [str(bad)])
    assert result.exit_code == 1
    assert "is not a valid aimax report" in result.output
    assert "title: expected a string" in result.output


def test_missing_matplotlib_is_a_clean_error(
    tmp_path: Path, empty_report: OptimizationReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_json(empty_report, tmp_path / "run.json")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    result = CliRunner().invoke(command, [str(source), "-q", "--html", str(tmp_path / "x.html")])
    assert result.exit_code == 1
    assert "pip install 'aimax-optimizer[report]'" in result.output
