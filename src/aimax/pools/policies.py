"""What a pool does when its bounded queue is full: small strategy objects.

A policy answers one question, :meth:`RejectionPolicy.on_full`, with a verdict; the
pool's drivers carry it out (a thread blocks on a condition, a coroutine awaits
without blocking its loop). Three are provided:

* :class:`BlockPolicy` (``"block"``): wait for room, up to ``timeout`` seconds, then
  raise :class:`~aimax.errors.PoolFull`;
* :class:`RejectPolicy` (``"reject"``): raise :class:`~aimax.errors.PoolFull` at once;
* :class:`CallerRunsPolicy` (``"caller_runs"``): run the task in the submitting
  thread, which slows the producer down (an asyncio caller waits for room instead,
  since running the task on the event loop would block it).

    >>> parse_policy("block:2.5")
    BlockPolicy(timeout=2.5)
    >>> parse_policy("reject").on_full("orders", 100)
    Reject(reason='queue of pool orders is full (100 queued)')
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable

from aimax._clock import as_seconds
from aimax.errors import ConfigurationError

__all__ = [
    "BlockPolicy",
    "CallerRunsPolicy",
    "Reject",
    "RejectPolicy",
    "RejectionPolicy",
    "RunInCaller",
    "Verdict",
    "Wait",
    "parse_policy",
]


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait for room in the queue for at most ``timeout`` seconds (``None``: forever)."""

    timeout: float | None


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the task: the pool raises :class:`~aimax.errors.PoolFull` with ``reason``."""

    reason: str


@dataclass(frozen=True, slots=True)
class RunInCaller:
    """Run the task in the submitting thread (its future is already done on return)."""


Verdict = Wait | Reject | RunInCaller


@runtime_checkable
class RejectionPolicy(Protocol):
    """Decides what happens to a task submitted while the pool's queue is full."""

    name: str

    def on_full(self, pool: str, queued: int) -> Verdict:
        """The verdict for one task arriving at pool ``pool`` with ``queued`` waiting."""
        ...


@dataclass(frozen=True, slots=True, init=False)
class BlockPolicy:
    """Block the submitter until there is room, at most ``timeout`` seconds (None: forever).

    >>> BlockPolicy(timeout=0.5).on_full("io", 8)
    Wait(timeout=0.5)
    """

    timeout: float | None
    name = "block"

    def __init__(self, timeout: float | timedelta | None = None) -> None:
        seconds = None if timeout is None else as_seconds(timeout, name="block timeout")
        object.__setattr__(self, "timeout", seconds)

    def on_full(self, pool: str, queued: int) -> Verdict:
        return Wait(self.timeout)


@dataclass(frozen=True, slots=True)
class RejectPolicy:
    """Refuse at once with :class:`~aimax.errors.PoolFull`."""

    name = "reject"

    def on_full(self, pool: str, queued: int) -> Verdict:
        return Reject(f"queue of pool {pool} is full ({queued} queued)")


@dataclass(frozen=True, slots=True)
class CallerRunsPolicy:
    """Run the task in the caller's thread: natural back-pressure on the producer."""

    name = "caller_runs"

    def on_full(self, pool: str, queued: int) -> Verdict:
        return RunInCaller()


_NAMES = ("block", "reject", "caller_runs")


def parse_policy(spec: str | RejectionPolicy) -> RejectionPolicy:
    """A policy from its name: ``"block"``, ``"block:<seconds>"``, ``"reject"``, ``"caller_runs"``.

    A policy object is returned unchanged; anything else raises
    :class:`~aimax.errors.ConfigurationError` naming the bad value.
    """
    if isinstance(spec, str):
        name, _, arg = spec.strip().lower().replace("-", "_").partition(":")
        if name == "block":
            if not arg:
                return BlockPolicy()
            try:
                seconds = float(arg)
            except ValueError:
                raise ConfigurationError(
                    f"block policy timeout must be a number of seconds, got {arg!r}"
                ) from None
            return BlockPolicy(seconds)
        if arg:
            raise ConfigurationError(f"policy {name!r} takes no argument, got {spec!r}")
        if name == "reject":
            return RejectPolicy()
        if name in ("caller_runs", "callerruns", "caller"):
            return CallerRunsPolicy()
        raise ConfigurationError(f"unknown rejection policy {spec!r}; known: {', '.join(_NAMES)}")
    if isinstance(spec, RejectionPolicy):
        return spec
    raise ConfigurationError(f"unknown rejection policy {spec!r}; known: {', '.join(_NAMES)}")
