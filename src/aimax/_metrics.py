"""The protocol through which components hand their figures to the monitor.

Every component keeps ``statistics()`` returning its own frozen dataclass: that is
its one description of itself. For the monitor it also offers
``metric_families()`` (:class:`FamiliesSource`): typed metric families (name, kind,
help, labelled values), as ``prometheus_client`` collectors build them. Latency-like
figures are histograms (:class:`HistogramValue`: cumulative buckets, sum, count), so
the Prometheus exposition carries ``_bucket``, ``_sum`` and ``_count`` and a stall
shows in the bucket deltas of any window.

Sources that only offer ``metric_samples()`` (:class:`MetricsSource`, flat gauge and
counter rows) are read through it.

Naming: ``aimax_<component>_<what>[_<unit>]`` in Prometheus style (``_total`` for
counters, ``_seconds`` / ``_bytes`` for units, ``_ratio`` for 0..1 ratios), labels for
the pool / class / pair::

    MetricSample("aimax_ratelimit_utilisation_ratio", 0.93, {"pool": "rest_public"})

``values_of``, ``samples_of`` and ``parse_key`` remain for the components that still
build their samples from flat keys (the limiter); the monitor no longer uses them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "FamiliesSource",
    "HistogramValue",
    "MetricFamily",
    "MetricKind",
    "MetricSample",
    "MetricsSource",
    "parse_key",
    "sample_key",
    "samples_of",
    "values_of",
]

MetricKind = Literal["gauge", "counter"]
FamilyKind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One reading: a Prometheus-style name, its value, its labels and its kind."""

    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    kind: MetricKind = "gauge"
    help: str = ""


@runtime_checkable
class MetricsSource(Protocol):
    """Anything the monitor can collect from: returns its current figures, cheaply."""

    def metric_samples(self) -> Sequence[MetricSample]:
        """The component's current figures (called once per monitor tick)."""
        ...


@dataclass(frozen=True, slots=True)
class HistogramValue:
    """A histogram's state: cumulative counts at increasing upper bounds, sum and count.

    ``bounds`` are the finite upper bounds (e.g. seconds); ``cumulative[i]`` counts
    the observations at or below ``bounds[i]``, and ``cumulative[-1]`` (one more
    entry than ``bounds``: the ``+Inf`` bucket) equals ``count``.

        >>> h = HistogramValue(bounds=(0.1, 1.0), cumulative=(2, 3, 4), sum=5.5, count=4)
        >>> h.buckets()
        [('0.1', 2), ('1.0', 3), ('+Inf', 4)]
    """

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    sum: float
    count: int

    def __post_init__(self) -> None:
        if len(self.cumulative) != len(self.bounds) + 1:
            raise ValueError(
                f"histogram needs {len(self.bounds) + 1} cumulative counts, "
                f"got {len(self.cumulative)}"
            )

    def buckets(self) -> list[tuple[str, int]]:
        """``(le, cumulative count)`` pairs as Prometheus writes them, ``+Inf`` last."""
        return [(repr(float(b)), c) for b, c in zip(self.bounds, self.cumulative, strict=False)] + [
            ("+Inf", self.count)
        ]


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """One metric: its name, kind, help and its values by label set.

    A gauge's or counter's values are floats; a histogram's are
    :class:`HistogramValue` (``name`` without the ``_bucket``/``_sum``/``_count``
    suffixes).

        >>> MetricFamily("aimax_pool_queued", "gauge", "Tasks queued.", (({"pool": "io"}, 3.0),))
        ... # doctest: +ELLIPSIS
        MetricFamily(name='aimax_pool_queued', kind='gauge', ...)
    """

    name: str
    kind: FamilyKind
    help: str
    values: tuple[tuple[Mapping[str, str], float | HistogramValue], ...] = ()


@runtime_checkable
class FamiliesSource(Protocol):
    """A source of typed metric families (read once per monitor tick)."""

    def metric_families(self) -> Sequence[MetricFamily]:
        """The component's current figures as metric families."""
        ...


def values_of(samples: Sequence[MetricSample]) -> dict[str, float]:
    """Samples by flat series key (first one of a key wins).

    >>> values_of([MetricSample("q", 3, {"pool": "io"}), MetricSample("up", 1)])
    {'q{pool="io"}': 3.0, 'up': 1.0}
    """
    out: dict[str, float] = {}
    for sample in samples:
        out.setdefault(sample_key(sample.name, sample.labels), float(sample.value))
    return out


def samples_of(
    values: Mapping[str, float], info: Mapping[str, tuple[MetricKind, str]]
) -> list[MetricSample]:
    """``metric_samples()`` from ``metric_values()``: the inverse of :func:`values_of`.

    ``info`` gives each metric name its kind and help (a name it lacks is a gauge
    without help), so a component defines its figures once, as values.

    >>> samples_of({'q{pool="io"}': 3.0}, {"q": ("gauge", "queued")})
    [MetricSample(name='q', value=3.0, labels={'pool': 'io'}, kind='gauge', help='queued')]
    """
    out = []
    for key, value in values.items():
        name, labels = parse_key(key)
        kind, help_ = info.get(name, ("gauge", ""))
        out.append(MetricSample(name, value, labels, kind, help_))
    return out


def _escape(value: str) -> str:
    # Prometheus' escaping of label values, so that any value round-trips
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def sample_key(name: str, labels: Mapping[str, str]) -> str:
    """A stable flat key for a sample, e.g. ``aimax_pool_queued{pool="io"}``.

    Labels are sorted; backslashes, double quotes and newlines in values are escaped
    as in Prometheus' text format, so :func:`parse_key` gives back exactly ``name``
    and ``labels``, whatever a pool or cache is called.
    """
    if not labels:
        return name
    inner = ",".join(f'{k}="{_escape(str(labels[k]))}"' for k in sorted(labels))
    return f"{name}{{{inner}}}"


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_ESCAPED = re.compile(r"\\(.)")
_UNESCAPE = {"n": "\n"}


def parse_key(key: str) -> tuple[str, dict[str, str]]:
    """The inverse of :func:`sample_key`: ``'m{a="1"}'`` -> ``("m", {"a": "1"})``."""
    if not key.endswith("}") or "{" not in key:
        return key, {}
    name, _, inner = key[:-1].partition("{")
    labels: dict[str, str] = {}
    for label, value in _LABEL.findall(inner):
        escaped = "\\" in value
        labels[label] = _ESCAPED.sub(_unescape, value) if escaped else value
    return name, labels


def _unescape(match: re.Match[str]) -> str:
    return _UNESCAPE.get(match[1], match[1])
