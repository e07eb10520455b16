"""``aimax report``: show a saved JSON report, or turn it into the HTML page.

The lead registers :data:`command` in ``aimax.cli``::

    aimax report run.json                     # print it as rich tables
    aimax report run.json --html run.html     # and write the self-contained page
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from aimax.errors import ConfigurationError
from aimax.report.files import read_json, write_html
from aimax.report.terminal import render_terminal

__all__ = ["command"]


@click.command(name="report")
@click.argument("report_json", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report as one self-contained HTML file here.",
)
@click.option("--quiet", "-q", is_flag=True, help="Do not print the report to the terminal.")
@click.option("--width", type=click.IntRange(min=60), default=None, help="Terminal width.")
def command(report_json: Path, html_path: Path | None, quiet: bool, width: int | None) -> None:
    """Show REPORT_JSON (written by `aimax demo` or write_json) and optionally write HTML."""
    try:
        report = read_json(report_json)
    except ConfigurationError as exc:
        raise click.ClickException(f"{report_json} is not a valid aimax report: {exc}") from None
    if not quiet:
        render_terminal(report, Console(width=width))
    if html_path is not None:
        try:
            written = write_html(report, html_path)
        except RuntimeError as exc:  # matplotlib missing: the message says what to install
            raise click.ClickException(str(exc)) from None
        click.echo(f"HTML report written to {written}")
