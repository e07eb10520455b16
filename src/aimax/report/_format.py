"""Human formatting shared by the terminal and HTML renderers (pure, plain strings)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from aimax.report.model import JsonValue, TimeSeries

__all__ = [
    "SPARK",
    "fmt_bytes",
    "fmt_count",
    "fmt_datetime",
    "fmt_duration",
    "fmt_figure",
    "fmt_json",
    "fmt_number",
    "fmt_percent",
    "fmt_seconds",
    "fmt_time",
    "fmt_unit_value",
    "series_summary",
    "sparkline",
]

DASH = "-"
SPARK = "▁▂▃▄▅▆▇█"


def fmt_bytes(value: float | None) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if value is None:
        return DASH
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def fmt_seconds(value: float | None) -> str:
    """A short duration: ``0.0123`` -> ``12.3 ms``, ``2.5`` -> ``2.50 s``."""
    if value is None:
        return DASH
    if value == 0:
        return "0 s"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def fmt_duration(value: float) -> str:
    """A run length: ``3725`` -> ``1h 2m 5s``."""
    total = round(value)
    if total < 60:
        return f"{value:.1f} s"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes}m {seconds}s" if hours else f"{minutes}m {seconds}s"


def fmt_count(value: int | None) -> str:
    """``12345`` -> ``12,345``."""
    return DASH if value is None else f"{value:,}"


def fmt_number(value: float | None) -> str:
    """Integral floats without decimals, others with up to 4 significant digits."""
    if value is None:
        return DASH
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def fmt_percent(ratio: float | None) -> str:
    """``0.934`` -> ``93.4 %``."""
    return DASH if ratio is None else f"{ratio * 100:.1f} %"


def fmt_unit_value(value: float | None, unit: str) -> str:
    """A value in a series' unit (``bytes``, ``s``, ``ratio``, ``%`` or anything else)."""
    if value is None:
        return DASH
    if unit == "bytes":
        return fmt_bytes(value)
    if unit == "s":
        return fmt_seconds(value)
    if unit == "ratio":
        return fmt_percent(value)
    if unit == "%":
        return f"{value:.1f} %"
    text = fmt_number(value)
    return f"{text} {unit}" if unit else text


def fmt_time(t: float, started_at: float) -> str:
    """``14:02:03 +12.0s``: UTC clock time and the offset from the run's start."""
    try:
        clock = datetime.fromtimestamp(t, tz=UTC).strftime("%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        clock = f"{t:.0f}"
    return f"{clock} {t - started_at:+.1f}s"


def fmt_datetime(t: float) -> str:
    """``2026-11-28 14:02:03 UTC``."""
    try:
        return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{t:.0f} (Unix seconds)"


def fmt_json(value: JsonValue) -> str:
    """A plan figure or extra value: numbers formatted, the rest as compact JSON."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return fmt_number(value)
    if isinstance(value, str):
        return value
    plain = _plain(value)
    return json.dumps(plain, ensure_ascii=False, separators=(", ", ": "))


def fmt_figure(name: str, value: JsonValue) -> str:
    """A named figure: ``*_bytes`` as sizes, ``*_utilisation`` / ``*_ratio`` as percent."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if name.endswith("_bytes"):
            return fmt_bytes(value)
        if name.endswith(("_utilisation", "_utilization", "_ratio")):
            return fmt_percent(value)
    return fmt_json(value)


def _plain(value: JsonValue) -> object:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """A unicode sparkline of at most ``width`` cells (bucket means)."""
    if not values:
        return ""
    n = len(values)
    cells = min(width, n)
    means = []
    for c in range(cells):
        chunk = values[c * n // cells : (c + 1) * n // cells]
        means.append(sum(chunk) / len(chunk))
    low, high = min(means), max(means)
    if math.isclose(low, high):
        return SPARK[0] * cells
    scale = (len(SPARK) - 1) / (high - low)
    return "".join(SPARK[round((m - low) * scale)] for m in means)


def series_summary(series: TimeSeries) -> tuple[float, float, float, float] | None:
    """(min, mean, max, last) of a series' values, or None when it is empty."""
    values = series.values()
    if not values:
        return None
    return (min(values), math.fsum(values) / len(values), max(values), values[-1])
