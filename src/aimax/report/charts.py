"""The report's charts as inline SVG, drawn with matplotlib (the optional ``report`` extra).

matplotlib is imported lazily, only here, and only through ``matplotlib.figure.Figure``
(the SVG canvas): pyplot and its global figure registry are never touched, so drawing
is safe inside a running application. Each chart is its own figure, saved as SVG with
text kept as ``<text>`` (searchable, small), every ``id`` prefixed by the chart's id so
several charts can live in one HTML document, and no XML prolog or namespace URL (the
HTML parser supplies the SVG namespace).

Long series are thinned to at most ``max_points`` points per line with a min/max
downsampling that keeps peaks, so a 3600-point series draws as fast as a 1000-point one.

Drawing sets two matplotlib settings (``svg.fonttype``, ``svg.hashsalt``) through
``matplotlib.rc_context`` and silences the "Glyph missing from font" warning (the
browser draws text, not matplotlib) through ``warnings.catch_warnings``; both are
restored afterwards but are process-wide while a chart is being saved, so do not draw
reports from two threads at once while another thread changes matplotlib settings.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aimax.errors import ConfigurationError
from aimax.report._format import fmt_count, fmt_seconds
from aimax.report._series import downsample_minmax
from aimax.report.model import OptimizationReport, TimeSeries, WaitRow

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "CHART_SERIES",
    "CHART_TITLES",
    "CPU_SERIES",
    "POOL_SIZE_SERIES",
    "RSS_SERIES",
    "UTILISATION_SERIES",
    "Chart",
    "charts_unavailable",
    "is_unused_stream_series",
    "render_charts",
    "undrawn_charts",
]

CPU_SERIES = ("aimax_process_cpu_percent", "process_cpu_percent")
"""Series names read as CPU use (percent of one core), first found wins."""
RSS_SERIES = ("process_resident_memory_bytes", "aimax_memory_rss_bytes")
"""Series names read as resident memory (bytes), first found wins."""
UTILISATION_SERIES = "aimax_ratelimit_utilisation_ratio"
"""Budget use per limiter pool (label ``pool``), a 0..1 ratio."""
POOL_SIZE_SERIES = "aimax_pool_size"
"""Thread pool sizes (label ``pool``)."""

CHART_SERIES = frozenset({*CPU_SERIES, *RSS_SERIES, UTILISATION_SERIES, POOL_SIZE_SERIES})
"""Every series name the charts read (wait percentiles come from the limiter section)."""

CHART_TITLES = {
    "cpu-rss": "CPU and RSS over time",
    "budget": "Budget use per pool over time",
    "waits": "Wait-time percentiles per priority",
    "pool-sizes": "Pool sizes over time",
}
"""The charts of the HTML report, by id, in order."""

MAX_LINES = 12
INSTALL_HINT = "pip install 'aimax-optimizer[report]'"


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    """One chart: its id and title, and either its inline ``svg`` or a ``note`` why not."""

    id: str
    title: str
    svg: str | None
    note: str | None = None


def _matplotlib() -> tuple[type[Figure], Callable[..., Any]]:
    try:
        from matplotlib import rc_context
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise RuntimeError(
            "the HTML report draws its charts with matplotlib, which is not installed: "
            f"run `{INSTALL_HINT}` (or `pip install matplotlib`)"
        ) from exc
    return Figure, rc_context


def charts_unavailable() -> str | None:
    """Why the charts cannot be drawn here (matplotlib missing), or None if they can.

    Callers that must always leave a report (the demo) check this first and fall back
    to :func:`undrawn_charts`, a report without pictures, instead of a traceback.
    """
    try:
        _matplotlib()
    except RuntimeError as exc:
        return str(exc)
    return None


def undrawn_charts(why: str) -> list[Chart]:
    """The report's charts, each with ``why`` as its note and no picture."""
    return [
        Chart(id=chart_id, title=title, svg=None, note=why)
        for chart_id, title in CHART_TITLES.items()
    ]


def _label(text: str) -> str:
    """A label matplotlib shows literally: no mathtext, no hidden '_' legend entries."""
    if not text:
        return "(no name)"
    text = text.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


_ID = re.compile(r'\bid="([^"]*)"')
_HREF = re.compile(r'xlink:href="#([^"]*)"')
_URL = re.compile(r"url\(#([^)]*)\)")
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')


def _clean_svg(svg: str, chart_id: str) -> str:
    """Inline-ready SVG: no prolog, no namespace URLs, ids unique to this chart."""
    svg = svg[svg.index("<svg") :]
    svg = _NAMESPACES.sub("", svg)
    prefix = f"aimax-{chart_id}-"
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = _HREF.sub(lambda m: f'xlink:href="#{prefix}{m.group(1)}"', svg)
    svg = _URL.sub(lambda m: f"url(#{prefix}{m.group(1)})", svg)
    # the root element: a plain id, a role and an accessible name
    head_end = svg.index(">")
    head = svg[:head_end]
    head = re.sub(r'\s+id="[^"]*"', "", head)
    head = re.sub(r'\s+(width|height)="[^"]*"', "", head)
    title = CHART_TITLES.get(chart_id, chart_id)
    return (
        f'{head} id="aimax-{chart_id}" role="img" aria-label="{title}"'
        f' preserveAspectRatio="xMidYMid meet">'
        f"<title>{title}</title>{svg[head_end + 1 :]}"
    )


def _origin(report: OptimizationReport) -> float:
    firsts = [s.points[0][0] for s in report.series if s.points]
    return min([report.started_at, *firsts]) if firsts else report.started_at


def _xy(
    series: TimeSeries, origin: float, max_points: int, scale: float = 1.0
) -> tuple[list[float], list[float]]:
    points = downsample_minmax(series.points, max_points)
    return [t - origin for t, _ in points], [v * scale for _, v in points]


def _first_named(report: OptimizationReport, names: Sequence[str]) -> list[TimeSeries]:
    for name in names:
        found = [s for s in report.find_series(name) if s.points]
        if found:
            return found
    return []


def _line_label(series: TimeSeries, key: str) -> str:
    if key in series.labels:
        return series.labels[key]
    return ", ".join(f"{k}={v}" for k, v in sorted(series.labels.items())) or series.name


class _Drawer:
    def __init__(self, report: OptimizationReport, max_points: int) -> None:
        self.report = report
        self.max_points = max_points
        self.origin = _origin(report)
        self.figure_cls, self.rc_context = _matplotlib()

    def _figure(self) -> tuple[Figure, Axes]:
        # fixed margins: constrained layout would cost ~40 % of the drawing time
        fig = self.figure_cls(figsize=(9.0, 3.4), dpi=100)
        fig.subplots_adjust(left=0.08, right=0.91, top=0.9, bottom=0.15)
        ax = fig.add_subplot()
        ax.grid(True, alpha=0.3)
        return fig, ax

    def _svg(self, fig: Figure, chart_id: str) -> str:
        buffer = io.StringIO()
        with (
            self.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"aimax-{chart_id}"}),
            warnings.catch_warnings(),
        ):
            # text stays <text>: the browser draws glyphs the bundled font lacks (CJK)
            warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
            fig.savefig(
                buffer,
                format="svg",
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
            )
        return _clean_svg(buffer.getvalue(), chart_id)

    def _lines(
        self, ax: Axes, series: Sequence[TimeSeries], key: str, scale: float, steps: bool
    ) -> int:
        shown = list(series)[:MAX_LINES]
        for s in shown:
            x, y = self._xy(s, scale)
            ax.plot(
                x,
                y,
                label=_label(_line_label(s, key)),
                linewidth=1.3,
                drawstyle="steps-post" if steps else "default",
            )
        return len(series) - len(shown)

    def _xy(self, s: TimeSeries, scale: float = 1.0) -> tuple[list[float], list[float]]:
        return _xy(s, self.origin, self.max_points, scale)

    def _finish(
        self, fig: Figure, chart_id: str, hidden: int, extra_note: str | None = None
    ) -> Chart:
        # the title is the figure's caption in the page, not repeated in the picture
        notes = [f"{hidden} more series not drawn"] if hidden else []
        if extra_note:
            notes.append(extra_note)
        note = "; ".join(notes) or None
        return Chart(
            id=chart_id, title=CHART_TITLES[chart_id], svg=self._svg(fig, chart_id), note=note
        )

    def cpu_rss(self) -> Chart:
        chart_id = "cpu-rss"
        cpu = _first_named(self.report, CPU_SERIES)
        rss = _first_named(self.report, RSS_SERIES)
        if not cpu and not rss:
            return _no_data(chart_id, f"no CPU ({CPU_SERIES[0]}) or RSS ({RSS_SERIES[0]}) samples")
        fig, ax = self._figure()
        handles = []
        for s in cpu[:MAX_LINES]:
            x, y = self._xy(s)
            name = "CPU %" if len(cpu) == 1 else f"CPU % {_line_label(s, '')}"
            handles += ax.plot(x, y, color="tab:blue", linewidth=1.3, label=_label(name))
        ax.set_ylabel("CPU (%)")
        ax.set_xlabel("seconds since start")
        if rss:
            ax2 = ax.twinx()
            for s in rss[:MAX_LINES]:
                x, y = self._xy(s, 1 / (1024 * 1024))
                name = "RSS (MiB)" if len(rss) == 1 else f"RSS (MiB) {_line_label(s, '')}"
                handles += ax2.plot(x, y, color="tab:orange", linewidth=1.3, label=_label(name))
            ax2.set_ylabel("RSS (MiB)")
            ax2.set_ylim(bottom=0)  # from zero: 49 -> 68 MiB must not read as a leak
        ax.set_ylim(bottom=0)
        _legend(ax, handles)
        hidden = max(0, len(cpu) - MAX_LINES) + max(0, len(rss) - MAX_LINES)
        return self._finish(fig, chart_id, hidden)

    def budget(self) -> Chart:
        chart_id = "budget"
        found = [s for s in self.report.find_series(UTILISATION_SERIES) if s.points]
        series = [s for s in found if not is_unused_stream_series(s)]
        if not series:
            return _no_data(chart_id, f"no {UTILISATION_SERIES} samples")
        fig, ax = self._figure()
        hidden = self._lines(ax, series, "pool", 100.0, steps=False)
        ax.axhline(100.0, color="tab:red", linestyle="--", linewidth=1, label="limit")
        self._markers(ax)
        ax.set_ylabel("budget used (%)")
        ax.set_xlabel("seconds since start")
        ax.set_ylim(0, max(ax.get_ylim()[1], 105.0))  # the 100 % line always shows
        _legend(ax)
        unused = len(found) - len(series)
        note = f"{unused} unused stream pool(s) at 0 % not drawn" if unused else None
        return self._finish(fig, chart_id, hidden, note)

    def _markers(self, ax: Axes) -> None:
        """Bans, alerts and pool resizes as vertical lines on the shared time axis."""
        report = self.report
        kinds: list[tuple[str, str, str, list[float]]] = [
            (
                "ban",
                "tab:red",
                "-",
                [b.time for b in (report.limiter.ban_events if report.limiter else ())],
            ),
            ("alert", "tab:orange", ":", [a.time for a in report.alerts]),
            (
                "pool resize",
                "tab:gray",
                "--",
                [a.time for a in report.actions if a.action == "resize_pool"],
            ),
        ]
        for label, color, style, times in kinds:
            for i, t in enumerate(times[:50]):
                ax.axvline(
                    t - self.origin,
                    color=color,
                    linestyle=style,
                    linewidth=0.9,
                    alpha=0.8,
                    label=label if i == 0 else None,
                )

    def waits(self) -> Chart:
        chart_id = "waits"
        lim = self.report.limiter
        rows: list[tuple[str, WaitRow]] = []
        if lim is not None:
            rows = [(w.priority, w) for w in lim.waits]
            if not rows:
                rows = [(f"{p.pool}/{w.priority}", w) for p in lim.pools for w in p.waits]
        rows = [(label, w) for label, w in rows if not w.seconds.empty]
        if not rows:
            return _no_data(chart_id, "no wait percentiles recorded")
        rows = rows[: MAX_LINES * 2]
        quantiles = ("p50", "p95", "p99")
        if all(not getattr(w.seconds, q) for _, w in rows for q in quantiles):
            counts = ", ".join(f"{label} {fmt_count(w.count)}" for label, w in rows)
            return _no_data(chart_id, f"every grant was immediate, no wait to draw ({counts})")
        fig, ax = self._figure()
        width = 0.26
        from matplotlib.transforms import blended_transform_factory

        on_axis = blended_transform_factory(ax.transData, ax.transAxes)
        colors = ("tab:blue", "tab:orange", "tab:green")
        for offset, quantile, color in zip((-width, 0.0, width), quantiles, colors, strict=True):
            seconds = [getattr(w.seconds, quantile) for _, w in rows]
            drawn = [(i + offset, v) for i, v in enumerate(seconds) if v]  # a bar per wait > 0
            bars = ax.bar(
                [x for x, _ in drawn],
                [max(v * 1000, 1e-3) for _, v in drawn],  # below 1 µs: drawn at 1 µs
                width=width,
                label=quantile,
                color=color,
            )
            ax.bar_label(bars, labels=[fmt_seconds(v) for _, v in drawn], fontsize=7, padding=1)
            for i, v in enumerate(seconds):  # a zero wait is no bar: a "0" on the axis
                if v == 0:
                    ax.text(
                        i + offset,
                        0.01,
                        "0",
                        transform=on_axis,
                        ha="center",
                        fontsize=7,
                        color=color,
                    )
        ax.set_yscale("log")
        # plain tick labels: the default log labels are mathtext, slow to lay out
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_seconds(v / 1000)))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_axisbelow(True)
        ax.margins(y=0.12)  # room for the bar labels
        ticks = [f"{_label(label)}\n(n={fmt_count(w.count)})" for label, w in rows]
        ax.set_xticks(range(len(rows)), ticks, fontsize=8)
        ax.set_ylabel("wait (log scale)")
        ax.set_xlabel("priority class (n = grants)")
        _legend(ax)
        return self._finish(fig, chart_id, 0, "a class with no wait shows 0, not a bar")

    def pool_sizes(self) -> Chart:
        chart_id = "pool-sizes"
        series = [s for s in self.report.find_series(POOL_SIZE_SERIES) if s.points]
        if not series:
            return _no_data(chart_id, f"no {POOL_SIZE_SERIES} samples")
        fig, ax = self._figure()
        hidden = self._lines(ax, series, "pool", 1.0, steps=True)
        ax.set_ylabel("threads")
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("seconds since start")
        ax.set_ylim(0, max(ax.get_ylim()[1], 1.0))  # idle pools: 0..1, not 0..0.05
        self._markers(ax)
        _legend(ax)
        return self._finish(fig, chart_id, hidden)


def _legend(ax: Axes, handles: Sequence[Any] | None = None) -> None:
    """The legend in a row above the plot, never over the data."""
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    if not handles:
        return
    ncol = min(len(handles), 5)
    ax.legend(
        handles=list(handles),
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=ncol,
        fontsize=8,
        frameon=False,
        borderaxespad=0.2,
    )
    rows = -(-len(handles) // ncol)
    ax.figure.subplots_adjust(top=max(0.6, 0.9 - 0.07 * (rows - 1)))


def is_unused_stream_series(series: TimeSeries) -> bool:
    """A ``ws_*`` limiter pool that stayed at zero the whole run (nothing streamed):
    drawn, it is only noise."""
    pool = series.labels.get("pool", "")
    return pool.startswith("ws_") and all(v == 0 for v in series.values())


def _no_data(chart_id: str, why: str) -> Chart:
    return Chart(id=chart_id, title=CHART_TITLES[chart_id], svg=None, note=f"No data: {why}.")


def render_charts(report: OptimizationReport, *, max_points: int = 1000) -> list[Chart]:
    """The four charts of :data:`CHART_TITLES`, in order; empty ones carry a "No data" note.

    Raises ``RuntimeError`` (naming ``pip install 'aimax-optimizer[report]'``) when
    matplotlib is not installed.

    Example::

        >>> from aimax.report import OptimizationReport
        >>> charts = render_charts(OptimizationReport(title="t", created_at=0))
        >>> [c.note for c in charts][1]
        'No data: no aimax_ratelimit_utilisation_ratio samples.'
    """
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 10:
        raise ConfigurationError(f"max_points must be an integer >= 10, got {max_points!r}")
    drawer = _Drawer(report, max_points)
    return [drawer.cpu_rss(), drawer.budget(), drawer.waits(), drawer.pool_sizes()]
