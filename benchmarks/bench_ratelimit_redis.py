"""The Redis backend side by side with its floor and its peers, in ONE process run.

One private loopback server (``aimax._redisserver.RedisServer``), one process, every
contender measured round-robin in each repetition so they share the machine's noise:

  ping            redis-py ``PING``: one round trip, no script
  bare EVALSHA    redis-py ``EVALSHA`` of ``return 1``: the floor of a scripted
                  limiter (one round trip) that the verdict compares with
  raw EVALSHA     the same ``EVALSHA`` as pre-encoded bytes on a plain socket, one
                  ``recv`` for the reply: the round trip without any client library
                  (shown for reference, not in the verdict)
  ours: limiter   ``APIRateLimiter.acquire`` of a kind charging TWO linked pools,
                  on ``RedisBackend`` (what a bot calls)
  ours: backend   ``RedisBackend.attempt`` with the same two charges (the seam alone)
  limits          ``limits`` moving window on ``RedisStorage``, one pool
  pyrate-limiter  ``pyrate-limiter`` ``RedisBucket``, one pool

Limits are set so no call ever waits: this measures the cost of one acquire. Round
trips per acquire are counted twice: client side (``sendall`` calls on any socket,
counted only while round trips are measured, so the timed runs carry no counting
hook) and server side, from ``INFO commandstats`` (calls of the commands a client
sends; the commands a Lua script runs inside the server are listed separately and not
counted as trips). The server-side time per call is the scripts' own time (a script's
figure already includes the commands it runs).

    .venv/bin/python benchmarks/bench_ratelimit_redis.py [--quick]

Writes ``benchmarks/results/ratelimit_redis.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from aimax._redisserver import RedisServer
from aimax.ratelimit import APIRateLimiter, Priority, RateLimit, RequestKind
from aimax.ratelimit._window import Charge
from aimax.ratelimit.redis_backend import RedisBackend

BIG = 1_000_000_000  # a limit that never binds

# commands a client sends (a round trip each); everything else seen in commandstats
# during a run was executed by a Lua script inside the server
CLIENT_COMMANDS = {"ping", "evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "multi", "exec"}

# --------------------------------------------------------------------- round trips

_packets = 0


@contextmanager
def counting_sends() -> Iterator[None]:
    """Count ``sendall`` calls on every socket (one per command sent) while inside."""
    original = socket.socket.sendall

    def counting(self: socket.socket, data: Any, *args: Any) -> None:
        global _packets  # noqa: PLW0603 - the benchmark's one process-wide counter
        _packets += 1
        original(self, data, *args)

    socket.socket.sendall = counting  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        socket.socket.sendall = original  # type: ignore[method-assign]


# --------------------------------------------------------------------- contenders


def make_contenders(url: str) -> tuple[dict[str, Callable[[], object]], list[Callable[[], None]]]:
    closers: list[Callable[[], None]] = []
    calls: dict[str, Callable[[], object]] = {}

    client = redis.Redis.from_url(url)
    closers.append(client.close)
    calls["ping"] = client.ping
    sha = client.script_load("return 1")
    calls["bare EVALSHA"] = lambda: client.evalsha(sha, 0)

    raw_conn: Any = client.connection_pool.make_connection()
    raw_conn.connect()
    closers.append(raw_conn.disconnect)
    raw_sock = raw_conn._sock
    raw_packed = b"*3\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n0\r\n" % sha.encode()

    def raw_evalsha() -> int:
        raw_sock.sendall(raw_packed)
        return int(raw_sock.recv(64)[1:-2])  # ':1\r\n'

    calls["raw EVALSHA (socket)"] = raw_evalsha

    backend = RedisBackend.from_url(url, prefix="bench-ours")
    closers.append(backend.close)
    limiter = APIRateLimiter(
        [
            RateLimit(name="ip", limit=BIG, window=60.0),
            RateLimit(name="acct", limit=BIG, window=60.0),
        ],
        [RequestKind(name="order", charges={"ip": 1, "acct": 1}, priority=Priority.ORDER)],
        backend=backend,
    )
    closers.append(limiter.close)
    acquire = limiter.acquire
    calls["ours: limiter (2 pools)"] = lambda: acquire("order")

    seam = RedisBackend.from_url(url, prefix="bench-seam")
    closers.append(seam.close)
    charges = (Charge("ip", 1, BIG, 60.0), Charge("acct", 1, BIG, 60.0))
    scopes = ("ip",)
    attempt = seam.attempt
    calls["ours: backend (2 pools)"] = lambda: attempt(charges, scopes)

    try:
        from limits import parse
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        storage = RedisStorage(url)
        moving = MovingWindowRateLimiter(storage)
        item = parse(f"{BIG}/minute")
        calls["limits moving window (1 pool)"] = lambda: moving.hit(item, "bench")
    except ImportError:  # pragma: no cover - the bench extra is missing
        print("limits is not installed: skipped", file=sys.stderr)

    try:
        from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

        pyrate_client = redis.Redis.from_url(url)
        closers.append(pyrate_client.close)
        bucket = RedisBucket.init([Rate(BIG, Duration.MINUTE)], pyrate_client, "bench-pyrate")
        pyrate = Limiter(bucket)
        closers.insert(0, getattr(pyrate, "close", lambda: None))
        calls["pyrate-limiter RedisBucket (1 pool)"] = lambda: pyrate.try_acquire("bench")
    except ImportError:  # pragma: no cover - the bench extra is missing
        print("pyrate-limiter is not installed: skipped", file=sys.stderr)
    return calls, closers


# --------------------------------------------------------------------- measuring


def commandstats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def server_usec(client: redis.Redis) -> int:
    """Microseconds the server spent in the commands clients sent (a script's time
    includes the commands it runs, which are not added again)."""
    stats = client.info("commandstats")
    return sum(
        int(v["usec"]) for k, v in stats.items() if k.removeprefix("cmdstat_") in CLIENT_COMMANDS
    )


def measure_trips(
    name: str, call: Callable[[], object], observer: redis.Redis, n: int
) -> dict[str, Any]:
    """Round trips per call: client packets and server-side commandstats."""
    for _ in range(20):  # warm up: scripts loaded, connections open
        call()
    before = commandstats(observer)
    usec = server_usec(observer)
    with counting_sends():
        packets = _packets
        for _ in range(n):
            call()
        sent = _packets - packets
    usec = server_usec(observer) - usec
    after = commandstats(observer)
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    delta.pop("info", None)  # the observer's own INFO calls
    delta = {k: v for k, v in delta.items() if v}
    client_side = sum(v for k, v in delta.items() if k in CLIENT_COMMANDS)
    inside = {k: round(v / n, 2) for k, v in delta.items() if k not in CLIENT_COMMANDS}
    return {
        "name": name,
        "packets_per_call": sent / n,
        "server_us_per_call": usec / n,
        "round_trips_per_call": client_side / n,
        "client_commands": {k: v / n for k, v in delta.items() if k in CLIENT_COMMANDS},
        "script_commands_per_call": inside,
    }


def time_calls(call: Callable[[], object], n: int) -> float:
    """Mean seconds per call over ``n`` calls."""
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    opts = parser.parse_args()
    n, reps = (200, 15) if opts.quick else (200, 80)

    with RedisServer() as server:
        observer = redis.Redis.from_url(server.url)
        calls, closers = make_contenders(server.url)
        try:
            trips = [measure_trips(name, call, observer, 500) for name, call in calls.items()]
            samples: dict[str, list[float]] = {name: [] for name in calls}
            order = list(calls.items())
            for rep in range(reps):
                # rotate the order each round: nobody always runs right after another
                k = rep % len(order)
                for name, call in order[k:] + order[:k]:
                    samples[name].append(time_calls(call, n))
        finally:
            for close in closers:
                close()
            observer.close()

    bare = samples["bare EVALSHA"]
    rows = []
    for trip in trips:
        name = trip["name"]
        best = min(samples[name])
        median = statistics.median(samples[name])
        # the same round's batches ran side by side: their ratio cancels slow drifts
        paired = [mine / floor for mine, floor in zip(samples[name], bare, strict=True)]
        rows.append(
            {
                **trip,
                "best_us": best * 1e6,
                "median_us": median * 1e6,
                "ratio_best_vs_bare_evalsha": best / min(bare),
                "ratio_median_vs_bare_evalsha": statistics.median(paired),
            }
        )

    print(f"\nRedis limiter, one loopback server, {reps} rounds x {n} calls (round-robin)\n")
    header = (
        f"{'contender':38} {'best µs':>8} {'median µs':>10} {'x EVALSHA':>10} "
        f"{'best x':>7} {'trips':>6} {'server µs':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['name']:38} {row['best_us']:8.1f} {row['median_us']:10.1f} "
            f"{row['ratio_median_vs_bare_evalsha']:10.3f} {row['ratio_best_vs_bare_evalsha']:7.3f} "
            f"{row['round_trips_per_call']:6.2f} {row['server_us_per_call']:10.1f}"
        )
    print(
        "\nx EVALSHA: median over rounds of (batch mean / bare EVALSHA batch mean of the same "
        "round); best x: best batch / best bare batch; server µs: time inside the server"
    )
    print("\nserver-side commands per call run inside scripts:")
    for row in rows:
        if row["script_commands_per_call"]:
            print(f"  {row['name']:38} {row['script_commands_per_call']}")

    ours = next(r for r in rows if r["name"].startswith("ours: limiter"))
    seam = next(r for r in rows if r["name"].startswith("ours: backend"))
    raw = next(r for r in rows if r["name"].startswith("raw EVALSHA"))
    one_trip = ours["round_trips_per_call"] == 1.0 and ours["packets_per_call"] == 1.0
    ratio = ours["ratio_median_vs_bare_evalsha"]
    verdict = (
        f"VERDICT: {'PASS' if one_trip and ratio <= 1.10 else 'MISS'}: our acquire (2 linked "
        f"pools) makes {ours['round_trips_per_call']:.2f} round trip(s) and costs "
        f"{ratio:.3f}x a bare EVALSHA (median; best {ours['ratio_best_vs_bare_evalsha']:.3f}x; "
        f"the backend alone {seam['ratio_median_vs_bare_evalsha']:.3f}x); "
        "target: exactly 1 round trip and <= 1.10x"
    )
    note = (
        f"for reference: the raw-socket EVALSHA costs {raw['ratio_median_vs_bare_evalsha']:.3f}x "
        f"the bare one; our acquire costs {ours['median_us'] / raw['median_us']:.2f}x it "
        f"(median batches: {ours['median_us']:.1f} vs {raw['median_us']:.1f} µs)"
    )
    print("\n" + verdict)
    print(note)

    out = Path(__file__).parent / "results" / "ratelimit_redis.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "ratelimit_redis",
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "calls_per_round": n,
                "rounds": reps,
                "rows": rows,
                "verdict": verdict,
                "note": note,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
