"""The report model: frozen, plain-data, JSON round-trippable.

An :class:`OptimizationReport` is what ``SystemPerformanceOptimizer.get_optimization_report()``
returns and what the renderers (terminal, JSON, HTML) draw. It holds only plain values
(``str``, ``int``, ``float``, ``bool``, ``None``, tuples and dicts of them, and the small
frozen dataclasses below), so it knows nothing of the live components: whoever builds it
copies their figures in.

Conventions:

* every time (``created_at``, a point's ``t``, an alert's ``time``) is Unix seconds
  (``aimax._clock.wall``); durations are float seconds; sizes are bytes;
* floats must be finite (JSON has no NaN); an unknown figure is ``None``;
* sequences are stored as tuples and mappings as fresh dicts, whatever was passed in;
  integral floats given for integer fields (metric samples are floats) become ``int``,
  and ints given for float fields become ``float``, so that
  ``OptimizationReport.from_dict(report.to_dict()) == report`` exactly;
* bad input raises :class:`aimax.errors.ConfigurationError` naming the field and value,
  both when a model is built directly and when it is read from a dict or JSON (then the
  message starts with the path, e.g. ``report.limiter.pools[1]``).

Example::

    >>> from aimax.report import OptimizationReport, TimeSeries
    >>> report = OptimizationReport(
    ...     title="demo", created_at=1_750_000_000.0, duration=60,
    ...     series=[TimeSeries(name="process_cpu_percent", unit="%", points=[(0, 12.5)])],
    ... )
    >>> OptimizationReport.from_json(report.to_json()) == report
    True
    >>> report.series[0].points
    ((0.0, 12.5),)
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, NoReturn, Self, TypeAlias, TypeVar

from aimax._metrics import sample_key
from aimax.errors import ConfigurationError

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
    "TimeSeries",
    "WaitRow",
]

SCHEMA = "aimax.report/1"
"""The ``schema`` tag written by :meth:`OptimizationReport.to_dict` and checked on reading."""

JsonValue: TypeAlias = (
    "str | int | float | bool | Sequence[JsonValue] | Mapping[str, JsonValue] | None"
)
"""A free-form JSON value (plan figures, ``extra`` fields, action details)."""

_REPR_LIMIT = 80
_M = TypeVar("_M")


# --------------------------------------------------------------------------- checks


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _fail(where: str, message: str, value: object) -> NoReturn:
    raise ConfigurationError(f"{where}: {message}, got {_short(value)}")


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        _fail(where, "expected a string", value)
    return value


def _int(value: object, where: str, *, minimum: int | None = 0) -> int:
    result: int
    if isinstance(value, bool):
        _fail(where, "expected an integer", value)
    if isinstance(value, numbers.Integral):
        result = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        result = int(float(value))
    else:
        _fail(where, "expected an integer", value)
    if minimum is not None and result < minimum:
        _fail(where, f"expected an integer >= {minimum}", value)
    return result


def _opt_int(value: object, where: str, *, minimum: int | None = 0) -> int | None:
    return None if value is None else _int(value, where, minimum=minimum)


def _float(value: object, where: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(where, "expected a number", value)
    try:
        result = float(value)
    except OverflowError:  # an int beyond float's range
        result = math.inf
    if not math.isfinite(result):
        _fail(where, "expected a finite number", value)
    if minimum is not None and result < minimum:
        _fail(where, f"expected a number >= {minimum:g}", value)
    return result


def _opt_float(value: object, where: str, *, minimum: float | None = None) -> float | None:
    return None if value is None else _float(value, where, minimum=minimum)


def _seq(value: object, where: str) -> tuple[object, ...]:
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Sequence):
        _fail(where, "expected a list", value)
    return tuple(value)


def _mapping(value: object, where: str) -> Mapping[object, object]:
    if not isinstance(value, Mapping):
        _fail(where, "expected an object (a mapping)", value)
    return value


def _str_tuple(value: object, where: str) -> tuple[str, ...]:
    return tuple(_str(item, f"{where}[{i}]") for i, item in enumerate(_seq(value, where)))


def _str_map(value: object, where: str) -> dict[str, str]:
    return {
        _str(key, f"{where} key"): _str(item, f"{where}[{key!r}]")
        for key, item in _mapping(value, where).items()
    }


def _int_map(value: object, where: str) -> dict[str, int]:
    return {
        _str(key, f"{where} key"): _int(item, f"{where}[{key!r}]")
        for key, item in _mapping(value, where).items()
    }


def _json(value: object, where: str) -> JsonValue:
    """Validate a free-form JSON value; sequences become tuples, mappings fresh dicts."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _float(value, where)
    if isinstance(value, Mapping):
        return _json_map(value, where)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return tuple(_json(item, f"{where}[{i}]") for i, item in enumerate(value))
    _fail(where, "expected a JSON value (str, number, bool, None, list, object)", value)


def _json_map(value: object, where: str) -> dict[str, JsonValue]:
    return {
        _str(key, f"{where} key"): _json(item, f"{where}[{key!r}]")
        for key, item in _mapping(value, where).items()
    }


def _model_tuple(value: object, where: str, cls: type[_M]) -> tuple[_M, ...]:
    items = _seq(value, where)
    for i, item in enumerate(items):
        if not isinstance(item, cls):
            _fail(f"{where}[{i}]", f"expected a {cls.__name__}", item)
    return items  # type: ignore[return-value]  # every item was checked just above


def _model(value: object, where: str, cls: type[_M]) -> _M:
    if not isinstance(value, cls):
        _fail(where, f"expected a {cls.__name__}", value)
    return value


def _opt_model(value: object, where: str, cls: type[_M]) -> _M | None:
    return None if value is None else _model(value, where, cls)


def _encode(value: object) -> Any:
    if isinstance(value, _Model):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _encode(item) for key, item in value.items()}
    return value


# ----------------------------------------------------------------------------- base


class _Model:
    """The shared plain-data behaviour: ``to_dict`` / ``from_dict`` with clear errors."""

    __slots__ = ()
    # field name -> the model class its value (or each item of its list) is made of
    _NESTED: ClassVar[Mapping[str, type[_Model]]] = {}

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """A dict of plain JSON types (lists, dicts, str, int, float, bool, None)."""
        return {f.name: _encode(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Build from :meth:`to_dict`'s output, raising ConfigurationError on bad input."""
        return cls._decode(data, cls.__name__)

    @classmethod
    def _decode(cls, data: object, where: str) -> Self:
        mapping = _mapping(data, where)
        known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(str(key) for key in mapping if key not in known)
        if unknown:
            raise ConfigurationError(f"{where}: unknown field(s) {', '.join(unknown)}")
        kwargs: dict[str, object] = {}
        for name, spec in known.items():
            if name not in mapping:
                if spec.default is MISSING and spec.default_factory is MISSING:
                    raise ConfigurationError(f"{where}: missing required field {name!r}")
                continue
            value = mapping[name]
            nested = cls._NESTED.get(name)
            if nested is not None and value is not None:
                if isinstance(value, Mapping):
                    value = nested._decode(value, f"{where}.{name}")
                else:
                    value = tuple(
                        nested._decode(item, f"{where}.{name}[{i}]")
                        for i, item in enumerate(_seq(value, f"{where}.{name}"))
                    )
            kwargs[name] = value
        try:
            return cls(**kwargs)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
        except TypeError as exc:  # a model given where a list was expected, or similar
            raise ConfigurationError(f"{where}: {exc}") from None


# ------------------------------------------------------------------------- sections


@dataclass(frozen=True, slots=True, kw_only=True)
class Percentiles(_Model):
    """p50 / p95 / p99 of a duration in seconds; ``None`` when nothing was measured."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None

    def __post_init__(self) -> None:
        for name in ("p50", "p95", "p99"):
            self._set(name, _opt_float(getattr(self, name), f"Percentiles.{name}", minimum=0))

    @property
    def empty(self) -> bool:
        """True when no percentile is known."""
        return self.p50 is None and self.p95 is None and self.p99 is None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSection(_Model):
    """The plan: named figures (any JSON value) and the warnings it raised.

    Example::

        >>> PlanSection(figures={"pairs": 50, "refresh_period_s": 12.5},
        ...             warnings=["50 pairs cannot refresh every 5 s; at most 20 can"]).figures
        {'pairs': 50, 'refresh_period_s': 12.5}
    """

    figures: Mapping[str, JsonValue] = field(default_factory=dict)
    warnings: Sequence[str] = ()

    def __post_init__(self) -> None:
        self._set("figures", _json_map(self.figures, "PlanSection.figures"))
        self._set("warnings", _str_tuple(self.warnings, "PlanSection.warnings"))


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeSeries(_Model):
    """One metric over time: ``points`` are ``(t, value)`` pairs, ``t`` in Unix seconds.

    Points are kept sorted by ``t`` (a stable sort of what was given). ``key`` names the
    series the way the monitor does (``aimax_pool_size{pool="io"}``).

    Example::

        >>> s = TimeSeries(name="aimax_pool_size", labels={"pool": "io"},
        ...                points=[(2, 4), (1, 3)])
        >>> s.key, s.points
        ('aimax_pool_size{pool="io"}', ((1.0, 3.0), (2.0, 4.0)))
    """

    name: str
    unit: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    points: Sequence[tuple[float, float]] = ()

    def __post_init__(self) -> None:
        where = "TimeSeries"
        name = _str(self.name, f"{where}.name")
        if not name:
            _fail(f"{where}.name", "expected a non-empty name", name)
        self._set("unit", _str(self.unit, f"{where}.unit"))
        self._set("labels", _str_map(self.labels, f"{where}.labels"))
        points: list[tuple[float, float]] = []
        for i, point in enumerate(_seq(self.points, f"{where}({name}).points")):
            here = f"{where}({name}).points[{i}]"
            pair = _seq(point, here)
            if len(pair) != 2:
                _fail(here, "expected a (t, value) pair", point)
            points.append((_float(pair[0], f"{here}.t"), _float(pair[1], f"{here}.value")))
        points.sort(key=lambda p: p[0])
        self._set("points", tuple(points))

    def __repr__(self) -> str:
        # a series may hold thousands of points: show how many, not all of them
        return (
            f"TimeSeries(name={self.name!r}, unit={self.unit!r}, labels={self.labels!r}, "
            f"points=<{len(self.points)} points>)"
        )

    @property
    def key(self) -> str:
        """The flat name with labels, e.g. ``aimax_ratelimit_utilisation_ratio{pool="x"}``."""
        return sample_key(self.name, self.labels)

    def values(self) -> tuple[float, ...]:
        """The values alone, in time order."""
        return tuple(v for _, v in self.points)


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitRow(_Model):
    """How long requests of one priority class waited for the limiter (seconds).

    ``count`` is the number of waits measured, ``None`` when unknown.
    """

    priority: str
    count: int | None = None
    seconds: Percentiles = field(default_factory=Percentiles)

    _NESTED: ClassVar[Mapping[str, type[_Model]]] = {"seconds": Percentiles}

    def __post_init__(self) -> None:
        self._set("priority", _str(self.priority, "WaitRow.priority"))
        self._set("count", _opt_int(self.count, "WaitRow.count"))
        self._set("seconds", _model(self.seconds, "WaitRow.seconds", Percentiles))


@dataclass(frozen=True, slots=True, kw_only=True)
class LimiterPoolRow(_Model):
    """One limiter pool: its budget (``limit`` units per ``window`` seconds) and use.

    ``utilisation`` is units in the window / limit (0..1) at report time; ``waits`` the
    wait percentiles per priority class in this pool, when known. ``limit`` and
    ``window`` are ``None`` when unknown (e.g. a report made from metric samples alone).
    """

    pool: str
    limit: float | None = None
    window: float | None = None
    granted: int = 0
    units: int = 0
    rejected: int = 0
    utilisation: float = 0.0
    waits: Sequence[WaitRow] = ()

    _NESTED: ClassVar[Mapping[str, type[_Model]]] = {"waits": WaitRow}

    def __post_init__(self) -> None:
        w = "LimiterPoolRow"
        self._set("pool", _str(self.pool, f"{w}.pool"))
        self._set("limit", _opt_float(self.limit, f"{w}.limit", minimum=0))
        self._set("window", _opt_float(self.window, f"{w}.window", minimum=0))
        for name in ("granted", "units", "rejected"):
            self._set(name, _int(getattr(self, name), f"{w}.{name}"))
        self._set("utilisation", _float(self.utilisation, f"{w}.utilisation", minimum=0))
        self._set("waits", _model_tuple(self.waits, f"{w}.waits", WaitRow))


@dataclass(frozen=True, slots=True, kw_only=True)
class BanRow(_Model):
    """A scope frozen after a 429 / 418: when, which scope, until when (Unix seconds)."""

    time: float
    scope: str
    until: float
    status: int | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        self._set("time", _float(self.time, "BanRow.time"))
        self._set("scope", _str(self.scope, "BanRow.scope"))
        self._set("until", _float(self.until, "BanRow.until"))
        self._set("status", _opt_int(self.status, "BanRow.status"))
        self._set("reason", _str(self.reason, "BanRow.reason"))


@dataclass(frozen=True, slots=True, kw_only=True)
class LimiterSection(_Model):
    """The rate limiter: per-pool rows, waits per priority (all pools), bans and 429s."""

    pools: Sequence[LimiterPoolRow] = ()
    waits: Sequence[WaitRow] = ()
    bans: int = 0
    responses_429: int = 0
    ban_events: Sequence[BanRow] = ()
    extra: Mapping[str, JsonValue] = field(default_factory=dict)

    _NESTED: ClassVar[Mapping[str, type[_Model]]] = {
        "pools": LimiterPoolRow,
        "waits": WaitRow,
        "ban_events": BanRow,
    }

    def __post_init__(self) -> None:
        w = "LimiterSection"
        self._set("pools", _model_tuple(self.pools, f"{w}.pools", LimiterPoolRow))
        self._set("waits", _model_tuple(self.waits, f"{w}.waits", WaitRow))
        self._set("bans", _int(self.bans, f"{w}.bans"))
        self._set("responses_429", _int(self.responses_429, f"{w}.responses_429"))
        self._set("ban_events", _model_tuple(self.ban_events, f"{w}.ban_events", BanRow))
        self._set("extra", _json_map(self.extra, f"{w}.extra"))


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolRow(_Model):
    """One thread pool's statistics; ``extra`` holds anything else the pool reports."""

    pool: str
    size: int = 0
    max_size: int | None = None
    active: int = 0
    queued: int = 0
    completed: int = 0
    failed: int = 0
    rejected: int = 0
    queue_wait: Percentiles = field(default_factory=Percentiles)
    run_time: Percentiles = field(default_factory=Percentiles)
    extra: Mapping[str, JsonValue] = field(default_factory=dict)

    _NESTED: ClassVar[Mapping[str, type[_Model]]] = {
        "queue_wait": Percentiles,
        "run_time": Percentiles,
    }

    def __post_init__(self) -> None:
        w = "PoolRow"
        self._set("pool", _str(self.pool, f"{w}.pool"))
        for name in ("size", "active", "queued", "completed", "failed", "rejected"):
            self._set(name, _int(getattr(self, name), f"{w}.{name}"))
        self._set("max_size", _opt_int(self.max_size, f"{w}.max_size"))
        self._set("queue_wait", _model(self.queue_wait, f"{w}.queue_wait", Percentiles))
        self._set("run_time", _model(self.run_time, f"{w}.run_time", Percentiles))
        self._set("extra", _json_map(self.extra, f"{w}.extra"))


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheRow(_Model):
    """One registered cache: its size in items and (estimated) bytes, when known."""

    name: str
    items: int | None = None
    bytes: int | None = None
    max_items: int | None = None
    evictions: int | None = None

    def __post_init__(self) -> None:
        self._set("name", _str(self.name, "CacheRow.name"))
        for name in ("items", "bytes", "max_items", "evictions"):
            self._set(name, _opt_int(getattr(self, name), f"CacheRow.{name}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class MemorySection(_Model):
    """Memory and GC figures (bytes and seconds); ``None`` when not measured.

    ``pressure_level`` is 0 (normal), 1 (high) or 2 (critical), as in the metric
    ``aimax_memory_pressure_level``; ``gc_collections`` maps generation ("0", "1", "2")
    to its collection count.
    """

    rss_bytes: int | None = None
    peak_rss_bytes: int | None = None
    uss_bytes: int | None = None
    budget_bytes: int | None = None
    pressure_level: int | None = None
    gc_collections: Mapping[str, int] = field(default_factory=dict)
    gc_pause_total_seconds: float | None = None
    gc_pause_max_seconds: float | None = None
    caches: Sequence[CacheRow] = ()
    extra: Mapping[str, JsonValue] = field(default_factory=dict)

    _NESTED: ClassVar[Mapping[str, type[_Model]]] = {"caches": CacheRow}

    def __post_init__(self) -> None:
        w = "MemorySection"
        for name in ("rss_bytes", "peak_rss_bytes", "uss_bytes", "budget_bytes"):
            self._set(name, _opt_int(getattr(self, name), f"{w}.{name}"))
        self._set("pressure_level", _opt_int(self.pressure_level, f"{w}.pressure_level"))
        self._set("gc_collections", _int_map(self.gc_collections, f"{w}.gc_collections"))
        for name in ("gc_pause_total_seconds", "gc_pause_max_seconds"):
            self._set(name, _opt_float(getattr(self, name), f"{w}.{name}", minimum=0))
        self._set("caches", _model_tuple(self.caches, f"{w}.caches", CacheRow))
        self._set("extra", _json_map(self.extra, f"{w}.extra"))


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRow(_Model):
    """An alert that fired: when, which rule, how bad, the value, and when it cleared."""

    time: float
    rule: str
    severity: str = "warning"
    value: float | None = None
    message: str = ""
    resolved_at: float | None = None

    def __post_init__(self) -> None:
        w = "AlertRow"
        self._set("time", _float(self.time, f"{w}.time"))
        self._set("rule", _str(self.rule, f"{w}.rule"))
        self._set("severity", _str(self.severity, f"{w}.severity"))
        self._set("value", _opt_float(self.value, f"{w}.value"))
        self._set("message", _str(self.message, f"{w}.message"))
        resolved = _opt_float(self.resolved_at, f"{w}.resolved_at")
        if resolved is not None and resolved < self.time:
            _fail(f"{w}.resolved_at", f"expected a time >= the alert's time {self.time}", resolved)
        self._set("resolved_at", resolved)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionRow(_Model):
    """Something the optimizer did, and why (``details``: any JSON figures)."""

    time: float
    action: str
    reason: str = ""
    details: Mapping[str, JsonValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._set("time", _float(self.time, "ActionRow.time"))
        self._set("action", _str(self.action, "ActionRow.action"))
        self._set("reason", _str(self.reason, "ActionRow.reason"))
        self._set("details", _json_map(self.details, "ActionRow.details"))


# --------------------------------------------------------------------------- report


def _reject_constant(name: str) -> NoReturn:
    raise ConfigurationError(f"report JSON: {name} is not allowed (numbers must be finite)")


@dataclass(frozen=True, slots=True, kw_only=True)
class OptimizationReport(_Model):
    """What happened during a run: the plan, the timeline, and every component's figures.

    ``created_at`` is when the report was made (Unix seconds) and ``duration`` how long
    the run it describes lasted (seconds), so the run started at :attr:`started_at`.

    Example::

        >>> r = OptimizationReport(title="run", created_at=1_750_000_060, duration=60,
        ...                        notes=["5 pairs, simulator"])
        >>> r.started_at, r.to_dict()["schema"]
        (1750000000.0, 'aimax.report/1')
    """

    title: str
    created_at: float
    duration: float = 0.0
    plan: PlanSection | None = None
    series: Sequence[TimeSeries] = ()
    limiter: LimiterSection | None = None
    pools: Sequence[PoolRow] = ()
    memory: MemorySection | None = None
    alerts: Sequence[AlertRow] = ()
    actions: Sequence[ActionRow] = ()
    notes: Sequence[str] = ()

    _NESTED: ClassVar[Mapping[str, type[_Model]]] = {
        "plan": PlanSection,
        "series": TimeSeries,
        "limiter": LimiterSection,
        "pools": PoolRow,
        "memory": MemorySection,
        "alerts": AlertRow,
        "actions": ActionRow,
    }

    def __post_init__(self) -> None:
        w = "OptimizationReport"
        self._set("title", _str(self.title, f"{w}.title"))
        self._set("created_at", _float(self.created_at, f"{w}.created_at", minimum=0))
        self._set("duration", _float(self.duration, f"{w}.duration", minimum=0))
        self._set("plan", _opt_model(self.plan, f"{w}.plan", PlanSection))
        self._set("series", _model_tuple(self.series, f"{w}.series", TimeSeries))
        self._set("limiter", _opt_model(self.limiter, f"{w}.limiter", LimiterSection))
        self._set("pools", _model_tuple(self.pools, f"{w}.pools", PoolRow))
        self._set("memory", _opt_model(self.memory, f"{w}.memory", MemorySection))
        self._set("alerts", _model_tuple(self.alerts, f"{w}.alerts", AlertRow))
        self._set("actions", _model_tuple(self.actions, f"{w}.actions", ActionRow))
        self._set("notes", _str_tuple(self.notes, f"{w}.notes"))

    @property
    def started_at(self) -> float:
        """When the run began: ``created_at - duration`` (Unix seconds)."""
        return self.created_at - self.duration

    def find_series(self, name: str, **labels: str) -> tuple[TimeSeries, ...]:
        """The series called ``name`` whose labels include ``labels``, in report order."""
        return tuple(
            s
            for s in self.series
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, with ``"schema": "aimax.report/1"`` first."""
        return {"schema": SCHEMA, **_Model.to_dict(self)}

    @classmethod
    def from_dict(cls, data: object) -> Self:
        """Read :meth:`to_dict`'s output back; ConfigurationError on malformed input."""
        mapping = dict(_mapping(data, "report"))
        schema = mapping.pop("schema", SCHEMA)
        if schema != SCHEMA:
            raise ConfigurationError(
                f"report: unsupported schema {_short(schema)}, this version reads {SCHEMA!r}"
            )
        return cls._decode(mapping, "report")

    def to_json(self, *, indent: int | None = None) -> str:
        """The report as JSON text (ASCII-only, no NaN); see :meth:`from_json`."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        """Parse :meth:`to_json`'s output; ConfigurationError if it is not a valid report."""
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            if isinstance(exc, ConfigurationError):
                raise
            raise ConfigurationError(f"report JSON is not valid JSON: {exc}") from None
        return cls.from_dict(data)
