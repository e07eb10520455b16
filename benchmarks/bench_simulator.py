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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
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
