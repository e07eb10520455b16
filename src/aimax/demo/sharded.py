"""``aimax demo --processes K``: the pairs sharded over K processes that share one
MAX budget through Redis (the given URL, or a private server started for the run).

The parent starts the simulator (one exchange, one IP budget for everyone) and, if
needed, Redis; each child runs the ordinary single-process demo on its share of the
pairs with a Redis-backed limiter and writes its own report under ``shard-<i>/``.
The parent checks the exchange's own count: no 429 means the shared budget held.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.process
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any, cast

import httpx
from rich.console import Console
from rich.table import Table

from aimax._redisserver import RedisServer
from aimax.demo.runner import (
    DEMO_ACCESS_KEY,
    DEMO_BALANCES,
    DEMO_SECRET_KEY,
    DemoConfig,
    DemoResult,
    masked_url,
    shard_config,
    simulator_config,
)
from aimax.demo.stop import StopRequest
from aimax.errors import AimaxError
from aimax.exchange.simulator import MaxSimulator

__all__ = ["run_sharded"]


def _watch_parent(stop: StopRequest) -> threading.Thread | None:
    """Ask the child to stop if its parent dies (even by SIGKILL): no orphan shard."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return None

    def watch() -> None:
        while not stop.requested:
            parent.join(0.5)
            if not parent.is_alive():
                stop.request(signal.SIGTERM)

    thread = threading.Thread(target=watch, name="aimax-demo-parent-watch", daemon=True)
    thread.start()
    return thread


def _child(config: DemoConfig, results: multiprocessing.Queue[object]) -> None:
    from aimax.demo.runner import run_demo

    stop = StopRequest()
    with stop.handling_signals():
        watcher = _watch_parent(stop)
        results.put(("ready", config.shard, None))
        try:
            result = run_demo(config, console=Console(quiet=True), stop=stop)
        except (AimaxError, KeyboardInterrupt) as exc:  # a one-line reason, no traceback
            results.put(("error", config.shard, str(exc) or type(exc).__name__))
            sys.exit(1)
        except BaseException as exc:  # a bug: tell the parent, keep the traceback
            results.put(("error", config.shard, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            stop.request()  # ends the watcher
            if watcher is not None:
                watcher.join()
        results.put(("ok", config.shard, result))


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with RedisServer() as server:
        yield server.url


class _Shards:
    """The shard processes: started, signalled once each is ready, reaped."""

    def __init__(self, procs: list[multiprocessing.process.BaseProcess]) -> None:
        self.procs = procs
        self.ready: set[int] = set()
        self.signalled: set[int] = set()
        self.stopping = False
        self.outcomes: dict[int, DemoResult] = {}
        self.errors: list[str] = []
        self.done: set[int] = set()

    def start(self) -> None:
        for proc in self.procs:
            proc.start()

    def terminate_ready(self) -> None:
        """SIGTERM every ready shard not yet told (a shard not ready yet is told when
        it is: its handler must be in place to write its report)."""
        self.stopping = True
        for i in sorted(self.ready - self.signalled):
            proc = self.procs[i]
            self.signalled.add(i)
            if proc.pid is not None and proc.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)

    def mark_ready(self, shard: int) -> None:
        self.ready.add(shard)
        if self.stopping:
            self.terminate_ready()

    def record(self, status: str, shard: int, payload: Any) -> None:
        """One message from a shard: ready, its result, or its one-line error."""
        if status == "ready":
            self.mark_ready(shard)
            return
        self.done.add(shard)
        if status == "ok":
            self.outcomes[shard] = payload
        else:
            self.errors.append(f"shard {shard}: {payload}")

    def collect(
        self,
        results: multiprocessing.Queue[object],
        *,
        sim: MaxSimulator,
        console: Console,
        stop: StopRequest,
        duration: float,
    ) -> None:
        """Read the shards' messages until each has answered, died or run out of time."""
        start = time.monotonic()
        deadline = start + duration + 120
        last_line = start
        while len(self.done) < len(self.procs):
            now = time.monotonic()
            if stop.requested:
                deadline = min(deadline, now + 30)
            if now >= deadline:
                left = sorted(set(range(len(self.procs))) - self.done)
                self.errors.append(f"shards {left} did not answer")
                return
            try:
                self.record(*cast(tuple[str, int, Any], results.get(timeout=0.25)))
                continue
            except queue.Empty:
                pass
            dead = [
                i for i, p in enumerate(self.procs) if i not in self.done and p.exitcode is not None
            ]
            if dead:  # a shard that died may have answered just before: read once more
                with contextlib.suppress(queue.Empty):
                    while True:
                        self.record(*cast(tuple[str, int, Any], results.get(timeout=0.5)))
                for i in dead:
                    if i not in self.done:
                        self.done.add(i)
                        self.errors.append(
                            f"shard {i} exited with code {self.procs[i].exitcode} "
                            "before it could report"
                        )
            if now - last_line >= 5.0:
                last_line = now
                stats = sim.stats()
                console.print(
                    f"[{now - start:5.1f}s] exchange served {stats.requests} "
                    f"requests, {stats.rate_limited} answered 429",
                    highlight=False,
                )

    def reap(self, timeout: float) -> list[str]:
        """Join every shard; kill (and say so) the ones still alive after ``timeout``."""
        problems: list[str] = []
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            if proc.pid is None:
                continue
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
                problems.append(f"{proc.name} did not stop and was killed")
        return problems


def run_sharded(
    config: DemoConfig, *, console: Console | None = None, stop: StopRequest | None = None
) -> DemoResult:
    """Run ``config.processes`` shards; returns the combined result.

    When ``stop`` is requested every shard gets SIGTERM, writes its report for what
    ran and returns; the simulator and a private Redis server stop with the run.
    """
    console = console or Console()
    stop = stop or StopRequest()
    config.output.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    sim_config = simulator_config(config)
    with MaxSimulator(sim_config) as sim, _redis(config.redis_url) as redis_url:
        sim.add_account(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_BALANCES)
        listed = httpx.get(f"{sim.url}/api/v3/markets", timeout=10).json()
        markets = [m["id"] for m in listed if m.get("status") == "active"][: config.pairs]
        shards = [markets[i :: config.processes] for i in range(config.processes)]
        results: multiprocessing.Queue[object] = ctx.Queue()
        base = replace(config, redis_url=redis_url)
        group = _Shards(
            [
                ctx.Process(
                    target=_child,
                    args=(shard_config(base, i, shard, sim.url), results),
                    name=f"aimax-demo-shard-{i}",
                )
                for i, shard in enumerate(shards)
            ]
        )
        console.print(
            f"[bold]aimax demo[/bold]: {config.pairs} pairs over {config.processes} processes, "
            f"one budget through Redis at {masked_url(redis_url)}"
        )
        storm = threading.Timer(
            config.duration / 3, lambda: sim.inject("status", status=429, count=10)
        )
        try:
            if "429-storm" in config.faults:
                storm.start()
            group.start()
            remove = stop.on_request(group.terminate_ready)
            try:
                group.collect(
                    results, sim=sim, console=console, stop=stop, duration=config.duration
                )
            finally:
                remove()
        finally:
            storm.cancel()
            group.terminate_ready()  # whatever happened above, no shard outlives the run
            group.errors += group.reap(timeout=30)
            results.close()
        stats = sim.stats()
    outcomes, errors = group.outcomes, group.errors
    missing = sorted(set(range(len(group.procs))) - set(outcomes))
    if (errors or missing) and not stop.requested:
        raise AimaxError(
            "sharded demo failed: " + "; ".join(errors or [f"no result from shards {missing}"])
        )
    table = Table(title=f"{config.processes} processes, one budget")
    for column in ("shard", "pairs", "requests", "429s", "bans", "plan period", "measured"):
        table.add_column(column, justify="right")
    ordered = tuple(outcomes[i] for i in sorted(outcomes))
    if stop.requested:
        console.print(
            f"[yellow]interrupted by {stop.signal_name or 'a stop request'}[/yellow]: "
            f"{len(ordered)} of {len(group.procs)} shards wrote their report"
        )
    for i, r in enumerate(ordered):
        table.add_row(
            str(i),
            str(r.pairs),
            str(r.requests),
            str(r.responses_429),
            str(r.bans),
            f"{r.plan_period:.2f}s",
            "-" if r.measured_period is None else f"{r.measured_period:.2f}s",
        )
    console.print(table)
    peak = max(stats.peak_public.values(), default=0)
    console.print(
        f"exchange: {stats.requests} requests, {stats.rate_limited} answered 429, "
        f"peak {peak} public requests in one window (limit {sim_config.public_limit})"
    )
    summary = {
        "processes": config.processes,
        "pairs": config.pairs,
        "exchange_requests": stats.requests,
        "exchange_429": stats.rate_limited,
        "peak_public_in_window": peak,
        "public_limit": sim_config.public_limit,
        "shards": [str(r.json_path) for r in ordered],
        "missing_shards": missing,
        "interrupted": stop.signal_name if stop.requested else None,
        "errors": errors,
    }
    summary_path = config.output / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    for r in ordered:
        console.print(f"[bold]report:[/bold] {r.html_path}")
    return DemoResult(
        json_path=summary_path,
        html_path=ordered[0].html_path if ordered else summary_path,
        pairs=config.pairs,
        requests=sum(r.requests for r in ordered),
        responses_429=stats.rate_limited,
        bans=stats.bans_started,
        counters={"shards": len(ordered)},
        plan_period=max((r.plan_period for r in ordered), default=0.0),
        measured_period=max((r.measured_period or 0.0 for r in ordered), default=0.0) or None,
        shards=ordered,
        interrupted=stop.signal_name if stop.requested else None,
    )
