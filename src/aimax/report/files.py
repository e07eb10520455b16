"""Writing reports to files (JSON, HTML) atomically, and reading JSON back."""

from __future__ import annotations

import os
from pathlib import Path

from aimax.errors import ConfigurationError
from aimax.report.model import OptimizationReport

__all__ = ["read_json", "write_html", "write_json"]


def _write_atomically(path: str | os.PathLike[str], text: str, *, errors: str = "strict") -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename.

    A reader never sees a half-written report. Missing parent folders are created.
    ``errors`` is the encoder's policy for unencodable text (lone surrogates).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", errors=errors)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def write_json(
    report: OptimizationReport, path: str | os.PathLike[str], *, indent: int | None = 2
) -> Path:
    """Write the report as JSON (see :meth:`OptimizationReport.to_json`); returns the path.

    Example::

        >>> import pathlib, tempfile
        >>> from aimax.report import OptimizationReport, read_json, write_json
        >>> r = OptimizationReport(title="run", created_at=1_750_000_000)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     read_json(write_json(r, pathlib.Path(tmp) / "report.json")) == r
        True
    """
    if not isinstance(report, OptimizationReport):
        raise ConfigurationError(f"expected an OptimizationReport, got {type(report).__name__}")
    return _write_atomically(path, report.to_json(indent=indent) + "\n")


def read_json(path: str | os.PathLike[str]) -> OptimizationReport:
    """Read a report written by :func:`write_json` (ConfigurationError if malformed)."""
    return OptimizationReport.from_json(Path(path).read_bytes())


def write_html(
    report: OptimizationReport,
    path: str | os.PathLike[str],
    *,
    max_points: int = 1000,
    charts_note: str | None = None,
) -> Path:
    """Write the report as ONE self-contained HTML file (see :func:`render_html`).

    The file needs no network and no JavaScript to view: inline CSS, charts as inline
    SVG. Raises ``RuntimeError`` naming ``pip install 'aimax-optimizer[report]'`` when
    matplotlib is missing, unless ``charts_note`` is given (then the charts are left
    out, each showing that note).

    Example::

        >>> import pathlib, tempfile
        >>> from aimax.report import OptimizationReport, write_html
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = write_html(OptimizationReport(title="run", created_at=1_750_000_000),
        ...                       pathlib.Path(tmp) / "report.html")
        ...     path.read_text().startswith("<!DOCTYPE html>")
        True
    """
    from aimax.report.htmlpage import render_html

    if not isinstance(report, OptimizationReport):
        raise ConfigurationError(f"expected an OptimizationReport, got {type(report).__name__}")
    page = render_html(report, max_points=max_points, charts_note=charts_note)
    return _write_atomically(path, page, errors="replace")
