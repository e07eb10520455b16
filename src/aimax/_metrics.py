"""The small protocol through which components hand their figures to the monitor.

Every component (the limiter, the pool manager, the memory manager, the client)
keeps ``statistics()`` returning its own frozen dataclass for people, and also
offers ``metric_samples()`` returning flat :class:`MetricSample` rows for machines:
the monitor's history, alert rules and the Prometheus exporter read only these, so
no component needs to know about the monitor and the monitor needs no adapter per
component.

A source may also offer ``metric_values()`` (:class:`MetricValuesSource`): the same
figures as a mapping ``series key -> value`` (keys as :func:`sample_key` builds
them). The monitor then calls ``metric_values()`` at every tick, which builds no
sample objects, and ``metric_samples()`` only when a key it has not seen before
appears (to learn that series' name, labels, kind and help). Both must describe the
same series with the same values; :func:`values_of` is the reference.

Naming: ``aimax_<component>_<what>[_<unit>]`` in Prometheus style (``_total`` for
counters, ``_seconds`` / ``_bytes`` for units), labels for the pool / class / pair::

    MetricSample("aimax_ratelimit_utilisation_ratio", 0.93, {"pool": "rest_public"})
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "MetricKind",
    "MetricSample",
    "MetricValuesSource",
    "MetricsSource",
    "parse_key",
    "sample_key",
    "samples_of",
    "values_of",
]

MetricKind = Literal["gauge", "counter"]


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


@runtime_checkable
class MetricValuesSource(MetricsSource, Protocol):
    """A source with the fast path: its figures by series key, no sample objects."""

    def metric_values(self) -> Mapping[str, float]:
        """``{sample_key(s.name, s.labels): s.value for s in metric_samples()}``, cheaply."""
        ...


def values_of(samples: Sequence[MetricSample]) -> dict[str, float]:
    """What ``metric_values()`` must return for these samples (first one of a key wins).

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
