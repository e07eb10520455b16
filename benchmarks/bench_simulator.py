"""How many requests per second the MAX simulator serves on loopback.

The server runs in its own process (so the load generator does not share its GIL);
an aiohttp client with many concurrent connections drives it for a few seconds per
endpoint. Two figures per endpoint:

* wall throughput: requests completed per second (bounded by the client too, and by
  whatever else runs on this shared machine);
* server capacity: requests per CPU-second of the server process (psutil), i.e. what
  one core can serve; the verdict is on this figure, which noise affects far less.

The peer is a bare aiohttp app answering the same ``/api/v3/timestamp`` JSON: the
floor any aiohttp-based server sits on, so the ratio is the simulator's own overhead.

    .venv/bin/python benchmarks/bench_simulator.py [--quick]

``--wire-nonces`` runs the nonce-order proof of issue 15 instead: 50 pairs' tasks
plus 8 threads (each a ``MaxClientSync``) on ONE key, at the full private budget of a
time-scaled simulator (scale 0.1: 120 requests per 6 s) for 5 windows, twice: with the
client's per-key send lane against the strict-nonce simulator (the default now), and
with the lane disabled against the lenient simulator (the client as it was). It prints
nonce rejections, nonces that arrived out of order and the private share used::

    .venv/bin/python benchmarks/bench_simulator.py --wire-nonces
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

TARGET = 1000.0  # requests per second (issue 8)
KEY, SECRET = "bench-key", "bench-secret"

SERVER_SCRIPT = r"""
import sys, time
kind = sys.argv[1]
if kind == "simulator":
    from aimax.exchange.simulator import MaxSimulator, SimulatorConfig
    cfg = SimulatorConfig(public_limit=10**9, private_limit=10**9, n_markets=24)
    sim = MaxSimulator(cfg)
    sim.add_account("bench-key", "bench-secret", {"twd": "1e12", "btc": "1e6"})
    sim.start()
    print(sim.port, flush=True)
    sys.stdin.read()
    print(sim.stats().requests, flush=True)
    sim.stop()
else:
    import asyncio, json, socket
    from aiohttp import web
    async def ts(request):
        return web.Response(text=json.dumps({"timestamp": int(time.time())}),
                            content_type="application/json")
    async def main():
        app = web.Application()
        app.router.add_get("/api/v3/timestamp", ts)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(); sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        print(sock.getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await runner.cleanup()
    asyncio.run(main())
"""


def _signed_headers(path: str, nonce: int) -> tuple[dict[str, str], dict[str, str]]:
    payload = base64.b64encode(json.dumps({"nonce": nonce, "path": path}).encode()).decode()
    sig = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    headers = {"X-MAX-ACCESSKEY": KEY, "X-MAX-PAYLOAD": payload, "X-MAX-SIGNATURE": sig}
    return headers, {"nonce": str(nonce)}


class Server:
    def __init__(self, kind: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}"
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


async def drive(url: str, path: str, *, seconds: float, concurrency: int, signed: bool) -> int:
    done = 0
    nonce = int(time.time() * 1000)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, nonce
            while time.perf_counter() < stop:
                headers: dict[str, str] = {}
                params: dict[str, str] = {}
                if signed:
                    nonce += 1
                    headers, params = _signed_headers(path.split("?", maxsplit=1)[0], nonce)
                async with session.get(url + path, headers=headers, params=params or None) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{path}: HTTP {r.status}: {await r.text()}")
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


CASES: list[tuple[str, str, str, bool]] = [
    # (label, server kind, path, signed)
    ("bare aiohttp: timestamp", "bare", "/api/v3/timestamp", False),
    ("simulator: timestamp", "simulator", "/api/v3/timestamp", False),
    ("simulator: ticker", "simulator", "/api/v3/ticker?market=btctwd", False),
    ("simulator: depth 20", "simulator", "/api/v3/depth?market=btctwd&limit=20", False),
    ("simulator: tickers (24)", "simulator", "/api/v3/tickers", False),
    ("simulator: signed info", "simulator", "/api/v3/info", True),
]


def wire_nonces(
    *, lane: bool, scale: float, windows: int, tasks: int, threads: int
) -> dict[str, Any]:
    """One run of the nonce-order proof; returns its figures."""
    import threading

    from aimax.exchange.max import MaxClient, MaxClientSync, nonce
    from aimax.exchange.simulator import MaxSimulator, SimulatorConfig
    from aimax.ratelimit import APIRateLimiter, RateLimit
    from aimax.ratelimit.max_profile import max_kinds

    config = SimulatorConfig.scaled(scale, n_markets=3, history_seconds=0, strict_nonces=lane)
    window = config.window_s
    limit = config.private_limit
    limiter = APIRateLimiter(
        [
            RateLimit(name="rest_public", limit=config.public_limit, window=window),
            RateLimit(name="rest_private", limit=round(limit * 0.95), window=window),
        ],
        [k for k in max_kinds() if k.name in ("market_data", "account", "order", "cancel")],
    )
    saved = (nonce.SendLane.acquire, nonce.SendLane.release)
    if not lane:  # the client as it was: nonce taken at signing, no turn to the wire

        async def _no_acquire(self: object) -> None:
            return None

        nonce.SendLane.acquire = _no_acquire  # type: ignore[method-assign]
        nonce.SendLane.release = lambda self: None  # type: ignore[method-assign]
    key, secret = f"wire-{lane}-key", "wire-secret"
    errors: list[str] = []
    counts: list[int] = []
    try:
        with MaxSimulator(config) as sim:
            sim.add_account(key, secret, {"twd": "1e12", "btc": "1e6"})
            start_at = time.monotonic()
            # one window of warm-up (the budget is in use when measuring starts), then
            # `windows` measured windows: at saturation at most limit x windows fit
            stop_at = start_at + (windows + 1) * window

            def private_so_far() -> int:
                return sum(sim.stats().by_account.values())

            def snapshots() -> None:
                time.sleep(window)
                counts.append(private_so_far())
                time.sleep(max(0.0, stop_at - time.monotonic()))
                counts.append(private_so_far())

            def thread_work() -> None:
                with MaxClientSync(
                    base_url=sim.url, access_key=key, secret_key=secret, limiter=limiter
                ) as c:
                    while time.monotonic() < stop_at:
                        try:
                            c.accounts(currency="twd")
                        except Exception as exc:  # counted, the run goes on
                            errors.append(type(exc).__name__)

            async def pair(c: MaxClient, market: str) -> None:
                while time.monotonic() < stop_at:
                    try:
                        o = await c.create_order(market, "sell", "0.01", "99999999")
                        await c.cancel_order(id=o.id)
                    except Exception as exc:  # counted, the run goes on
                        errors.append(type(exc).__name__)

            async def run() -> None:
                async with MaxClient(
                    base_url=sim.url, access_key=key, secret_key=secret, limiter=limiter
                ) as c:
                    await c.markets()  # enables the precision checks
                    await asyncio.gather(*(pair(c, "btctwd") for _ in range(tasks)))

            workers = [threading.Thread(target=thread_work) for _ in range(threads)]
            workers.append(threading.Thread(target=snapshots))
            for w in workers:
                w.start()
            asyncio.run(run())
            for w in workers:
                w.join(60)
            stats = sim.stats()
    finally:
        nonce.SendLane.acquire, nonce.SendLane.release = saved  # type: ignore[method-assign]
        limiter.close()
    measured = counts[1] - counts[0]
    private = sum(stats.by_account.values())
    return {
        "lane": lane,
        "strict_simulator": lane,
        "measured_windows": windows,
        "window_seconds": window,
        "private_limit": limit,
        "private_requests": private,
        "measured_requests": measured,
        "private_share": measured / (limit * windows),
        "nonce_rejections": stats.nonce_rejections,
        "nonces_out_of_order": stats.nonces_out_of_order,
        "out_of_order_share": stats.nonces_out_of_order / max(1, private),
        "http_429": stats.by_status.get(429, 0),
        "client_errors": len(errors),
    }


def main_wire_nonces(args: argparse.Namespace) -> None:
    rows = [
        wire_nonces(lane=lane, scale=0.1, windows=5, tasks=50, threads=8) for lane in (True, False)
    ]
    print("\nnonce order on the wire: 50 tasks + 8 threads, one key, full private budget")
    header = (
        f"{'client':22} {'windows':>7} {'measured':>8} {'share':>7} {'rejected':>9} "
        f"{'out of order':>13} {'429':>5} {'errors':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        name = "send lane, strict sim" if r["lane"] else "no lane, lenient sim"
        print(
            f"{name:22} {r['measured_windows']:>7} {r['measured_requests']:>8} "
            f"{r['private_share']:>6.1%} {r['nonce_rejections']:>9} "
            f"{r['nonces_out_of_order']:>6} ({r['out_of_order_share']:>4.0%}) "
            f"{r['http_429']:>5} {r['client_errors']:>7}"
        )
    delta = (rows[0]["private_share"] - rows[1]["private_share"]) * 100
    print(f"share use difference: {delta:+.1f} points")
    out = Path(__file__).parent / "results" / "wire_nonces.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": rows, "share_delta_points": delta}, indent=2))
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--wire-nonces", action="store_true", help="the nonce-order proof")
    args = parser.parse_args()
    if args.wire_nonces:
        main_wire_nonces(args)
        return
    seconds = args.seconds or (1.0 if args.quick else 3.0)
    repeats = args.repeats or (1 if args.quick else 3)

    results: dict[str, dict[str, Any]] = {}
    servers = {kind: Server(kind) for kind in ("bare", "simulator")}
    try:
        for label, kind, path, signed in CASES:
            server = servers[kind]
            walls: list[float] = []
            capacities: list[float] = []
            asyncio.run(drive(server.url, path, seconds=0.3, concurrency=4, signed=signed))
            for _ in range(repeats):
                cpu0, t0 = server.cpu(), time.perf_counter()
                n = asyncio.run(
                    drive(
                        server.url,
                        path,
                        seconds=seconds,
                        concurrency=args.concurrency,
                        signed=signed,
                    )
                )
                wall = time.perf_counter() - t0
                cpu = server.cpu() - cpu0
                walls.append(n / wall)
                capacities.append(n / cpu if cpu > 0 else float("inf"))
            results[label] = {
                "path": path,
                "signed": signed,
                "wall_rps_best": max(walls),
                "wall_rps_median": statistics.median(walls),
                "capacity_rps_best": max(capacities),
                "capacity_rps_median": statistics.median(capacities),
                "server_cpu_ms_per_request": 1000.0 / statistics.median(capacities),
                "repeats": repeats,
                "seconds": seconds,
            }
    finally:
        for server in servers.values():
            server.close()

    base = results["bare aiohttp: timestamp"]["capacity_rps_median"]
    print(
        f"\nMAX simulator throughput ({repeats} x {seconds:g} s per row, "
        f"{args.concurrency} connections, load avg {psutil.getloadavg()[0]:.1f})"
    )
    header = f"{'case':28} {'wall req/s':>11} {'req/CPU-s':>11} {'CPU ms/req':>11} {'vs bare':>8}"
    print(header)
    print("-" * len(header))
    for label, row in results.items():
        print(
            f"{label:28} {row['wall_rps_median']:>11.0f} {row['capacity_rps_median']:>11.0f} "
            f"{row['server_cpu_ms_per_request']:>11.3f} "
            f"{row['capacity_rps_median'] / base:>7.2f}x"
        )
    sim_rows = {k: v for k, v in results.items() if k.startswith("simulator")}
    worst = min(sim_rows.items(), key=lambda kv: kv[1]["capacity_rps_median"])
    verdict = "MET" if worst[1]["capacity_rps_median"] >= TARGET else "MISSED"
    print(
        f"\nverdict: target >= {TARGET:.0f} req/s per server core: {verdict} "
        f"(slowest endpoint {worst[0]!r}: {worst[1]['capacity_rps_median']:.0f} req/CPU-s; "
        f"best wall figure {max(r['wall_rps_best'] for r in sim_rows.values()):.0f} req/s "
        "with the client on the same 2 cores)"
    )
    out = Path(__file__).parent / "results" / "simulator.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps({"target_rps": TARGET, "verdict": verdict, "results": results}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
