"""The optimizer's report: a frozen plain-data model and its renderers.

* :class:`OptimizationReport` and its sections: frozen dataclasses of plain values that
  round-trip exactly through :meth:`~OptimizationReport.to_dict` /
  :meth:`~OptimizationReport.from_dict` and JSON;
* :class:`ReportBuilder`: collects time series, actions, alerts and notes during a run
  with bounded memory, then builds the report;
* :func:`sections_from_samples`: the limiter, pool and memory sections from the standard
  metric samples every component publishes (no component imported);
* renderers: :func:`render_terminal` (rich), :func:`write_json` / :func:`read_json`, and
  :func:`write_html` / :func:`render_html` (one self-contained file, charts as inline
  SVG drawn with matplotlib: the optional extra ``pip install 'aimax-optimizer[report]'``).

Example::

    >>> from aimax.report import OptimizationReport, ReportBuilder, TimeSeries
    >>> builder = ReportBuilder(title="demo", started_at=1_750_000_000.0)
    >>> builder.add_point("process_cpu_percent", 12.0, t=1_750_000_001.0)
    >>> report = builder.build(created_at=1_750_000_060.0)
    >>> OptimizationReport.from_json(report.to_json()) == report
    True
"""

from aimax.report.builder import ReportBuilder
from aimax.report.files import read_json, write_html, write_json
from aimax.report.htmlpage import render_html
from aimax.report.model import (
    SCHEMA,
    ActionRow,
    AlertRow,
    BanRow,
    CacheRow,
    JsonValue,
    LimiterPoolRow,
    LimiterSection,
    MemorySection,
    OptimizationReport,
    Percentiles,
    PlanSection,
    PoolRow,
    TimeSeries,
    WaitRow,
)
from aimax.report.samples import SampledSections, sections_from_samples
from aimax.report.terminal import render_terminal, terminal_view

__all__ = [
    "SCHEMA",
    "ActionRow",
    "AlertRow",
    "BanRow",
    "CacheRow",
    "JsonValue",
    "LimiterPoolRow",
    "LimiterSection",
    "MemorySection",
    "OptimizationReport",
    "Percentiles",
    "PlanSection",
    "PoolRow",
    "ReportBuilder",
    "SampledSections",
    "TimeSeries",
    "WaitRow",
    "read_json",
    "render_html",
    "render_terminal",
    "sections_from_samples",
    "terminal_view",
    "write_html",
    "write_json",
]
