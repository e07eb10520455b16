"""Memory benchmark: GC pauses with default GC vs the manager's GC mode, and a budget run.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--quick] [--repeats N]``

1. GC run (issue 6 target: worst pause >= 3x smaller, total GC time >= 30 % smaller,
   peak RSS at most 5 % higher). A market-data bot: warm-up builds ~300,000
   long-lived objects of bot state (orders with their tags and metadata), then
   200,000 JSON depth updates are parsed and applied to per-market books, with a
   window of recent updates and a trickle of new fills kept. ``default`` runs it
   under the interpreter's GC settings; ``managed`` under
   ``MemoryManager.begin_warmup()`` / ``end_warmup()`` (young threshold up, full
   collections held during warm-up, then ``gc.freeze()``). Pauses are measured
   through ``gc.callbacks`` in wall time (what the bot feels) and thread CPU time
   (what the collector did; immune to this shared machine's preemption). Each
   repeat is a fresh interpreter (peak RSS is a per-process high-water mark);
   modes alternate; medians are reported.

2. Budget run: a workload keeps filling three registered caches (bounded at far
   more than the budget) with depth snapshots, raw payloads and candles under a
   budget of baseline + 96 MiB until 1 GiB is written (10x the headroom),
   checking memory every 1 MiB written; a sampler thread and
   the process's peak RSS (``ru_maxrss``) judge whether RSS stayed within the
   budget + 5 % for the whole run.

Writes ``benchmarks/results/memory.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "memory.json"
MiB = 2**20


# --------------------------------------------------------------------------- workers


def _messages(n_distinct: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n_distinct):
        market = f"m{i % 20:02d}usdt"
        base = 100.0 + (i % 20) * 1000.0
        update = {
            "c": "book",
            "e": "update",
            "M": market,
            "T": 1_700_000_000_000 + i,
            "a": [[f"{base + rng.random() * 50:.2f}", f"{rng.random():.4f}"] for _ in range(5)],
            "b": [[f"{base - rng.random() * 50:.2f}", f"{rng.random():.4f}"] for _ in range(5)],
        }
        out.append(json.dumps(update))
    return out


class Order:
    """A piece of long-lived bot state: 3 GC-tracked objects (itself, its meta dict, fills)."""

    def __init__(self, i: int) -> None:
        self.id = i
        self.market = f"m{i % 20:02d}usdt"
        self.price = 100.0 + i % 997
        self.volume = 0.01 * (i % 13 + 1)
        self.side = "buy" if i % 2 else "sell"
        self.meta = {"client_oid": f"oid-{i}", "state": "wait", "fills": []}


def _gc_worker(mode: str, n_updates: int, n_state: int) -> dict[str, Any]:
    from aimax.memory import GCPauseRecorder, MemoryConfig, MemoryManager

    messages = _messages(5000, seed=42)
    gc.collect()
    manager = None
    if mode == "managed":
        manager = MemoryManager(budget=0.9, config=MemoryConfig(uss_interval=None))
    wall = GCPauseRecorder(timer=time.perf_counter)
    cpu = GCPauseRecorder(timer=time.thread_time)
    objects_before = len(gc.get_objects())
    wall.install()
    cpu.install()
    started = time.perf_counter()

    # warm-up: the bot loads its state
    if manager is not None:
        manager.begin_warmup()
    state: dict[int, Order] = {}
    for i in range(n_state // 3):
        state[i] = Order(i)
    long_lived = len(gc.get_objects()) - objects_before
    frozen = manager.end_warmup() if manager is not None else 0
    warm_wall, warm_cpu = wall.statistics(), cpu.statistics()
    wall.reset()
    cpu.reset()
    warm_elapsed = time.perf_counter() - started

    # steady state: parse depth updates and apply them
    books: dict[str, dict[str, str]] = {}
    recent: deque[dict[str, Any]] = deque(maxlen=1000)
    fills = 0
    for i in range(n_updates):
        update = json.loads(messages[i % len(messages)])
        book = books.setdefault(update["M"], {})
        for price, volume in update["a"]:
            if volume == "0.0000":
                book.pop(price, None)
            else:
                book[price] = volume
        recent.append(update)
        if i % 100 == 0:
            state[n_state + i] = Order(i)
            fills += 1
    elapsed = time.perf_counter() - started
    wall.uninstall()
    cpu.uninstall()
    w, c = wall.statistics(), cpu.statistics()  # the steady phase only
    if manager is not None:
        manager.close()
    return {
        "mode": mode,
        "python": sys.version.split()[0],
        "thresholds_default": list(gc.get_threshold()),
        "long_lived_objects": long_lived,
        "frozen": frozen,
        "updates": n_updates,
        "elapsed_s": elapsed,
        "warmup_elapsed_s": warm_elapsed,
        "gc_total_wall_s": warm_wall.pause_total + w.pause_total,
        "gc_max_wall_s": max(warm_wall.pause_max, w.pause_max),
        "gc_total_cpu_s": warm_cpu.pause_total + c.pause_total,
        "gc_max_cpu_s": max(warm_cpu.pause_max, c.pause_max),
        "warmup_gc_total_wall_s": warm_wall.pause_total,
        "warmup_gc_max_wall_s": warm_wall.pause_max,
        "steady_gc_total_wall_s": w.pause_total,
        "steady_gc_max_wall_s": w.pause_max,
        "steady_gc_total_cpu_s": c.pause_total,
        "steady_gc_max_cpu_s": c.pause_max,
        "steady_collections": [g.count for g in w.generations],
        "collections": [
            a.count + b.count for a, b in zip(warm_wall.generations, w.generations, strict=True)
        ],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "books": len(books),
        "fills": fills,
    }


def _budget_worker(write_bytes: int, headroom: int) -> dict[str, Any]:
    from aimax.memory import (
        BoundedLRUCache,
        MemoryConfig,
        MemoryManager,
        PressureThresholds,
        SystemProbe,
    )

    probe = SystemProbe()
    messages = _messages(2000, seed=7)
    rng = random.Random(3)
    gc.collect()
    probe.trim()
    baseline = probe.rss()
    budget = baseline + headroom
    config = MemoryConfig(
        thresholds=PressureThresholds(elevated=0.85, critical=0.95, hysteresis=0.05, min_hold=1.0),
        shrink_fraction=0.25,
        trim_threshold=4 * MiB,
        gc_cooldown=2.0,
        uss_interval=None,
    )
    samples: list[int] = []
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(0.002):
            samples.append(probe.rss())

    with MemoryManager(budget=budget, config=config, probe=probe) as manager:
        levels: list[str] = []
        manager.add_level_listener(lambda change: levels.append(change.level.name))
        # each cache alone could hold several budgets' worth
        snapshots = BoundedLRUCache[int, Any](
            max_bytes=1024 * MiB, name="depth_snapshots", manager=manager, priority=0
        )
        payloads = BoundedLRUCache[int, bytes](
            max_bytes=1024 * MiB, name="raw_payloads", manager=manager, priority=3
        )
        candles = BoundedLRUCache[int, list[float]](
            max_bytes=1024 * MiB, name="candles", manager=manager, priority=9
        )
        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        written = 0
        since_check = 0
        i = 0
        started = time.perf_counter()
        while written < write_bytes:
            kind = i % 4
            if kind == 0:
                value: Any = json.loads(messages[i % len(messages)])
                snapshots[i] = value
                size = 1500
            elif kind in (1, 2):
                payloads[i] = rng.randbytes(8192)
                size = 8192
            else:
                candles[i] = [float(i + k) for k in range(64)]
                size = 64 * 32
            written += size
            since_check += size
            if since_check >= MiB:
                manager.monitor_memory()
                since_check = 0
            i += 1
        elapsed = time.perf_counter() - started
        stop.set()
        thread.join()
        stats = manager.statistics()
        return {
            "seconds": elapsed,
            "baseline_bytes": baseline,
            "budget_bytes": budget,
            "written_bytes": written,
            "inserts": i,
            "sampled_peak_bytes": max(samples) if samples else 0,
            "samples": len(samples),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "checks": stats.checks,
            "cleanups": stats.cleanups,
            "items_freed": stats.items_freed,
            "trims": stats.trims,
            "forced_collections": stats.forced_collections,
            "level_changes": stats.level_changes,
            "levels_seen": sorted(set(levels)),
            "caches": {
                c.name: {"items": c.items, "bytes": c.bytes, "shrinks": c.shrinks}
                for c in stats.caches
            },
        }


# --------------------------------------------------------------------------- driver


def _spawn(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter budget run")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--worker", choices=["default", "managed", "budget"], help=argparse.SUPPRESS
    )
    parser.add_argument("--updates", type=int, default=200_000)
    parser.add_argument("--state", type=int, default=300_000)
    parser.add_argument(
        "--write-mib", type=int, default=None, help="budget run: MiB written (1024; quick 384)"
    )
    args = parser.parse_args()

    if args.worker in ("default", "managed"):
        print(json.dumps(_gc_worker(args.worker, args.updates, args.state)))
        return 0
    if args.worker == "budget":
        print(json.dumps(_budget_worker(args.write_mib * MiB, 96 * MiB)))
        return 0

    repeats = args.repeats or (2 if args.quick else 5)
    write_mib = args.write_mib or (384 if args.quick else 1024)
    common = ["--updates", str(args.updates), "--state", str(args.state)]
    runs: dict[str, list[dict[str, Any]]] = {"default": [], "managed": []}
    for r in range(repeats):
        order = ("default", "managed") if r % 2 == 0 else ("managed", "default")
        for mode in order:
            runs[mode].append(_spawn(["--worker", mode, *common]))
            print(f"  run {r + 1}/{repeats} {mode}: done", file=sys.stderr)
    budget = _spawn(["--worker", "budget", "--write-mib", str(write_mib)])

    d, m = runs["default"], runs["managed"]
    rows = []
    for key, label, scale, unit in [
        ("gc_total_wall_s", "total GC pause (wall)", 1e3, "ms"),
        ("gc_max_wall_s", "worst pause (wall)", 1e3, "ms"),
        ("gc_total_cpu_s", "total GC time (CPU)", 1e3, "ms"),
        ("gc_max_cpu_s", "worst pause (CPU)", 1e3, "ms"),
        ("warmup_gc_total_wall_s", "  warm-up phase: total (wall)", 1e3, "ms"),
        ("warmup_gc_max_wall_s", "  warm-up phase: worst (wall)", 1e3, "ms"),
        ("steady_gc_total_wall_s", "  parse phase: total (wall)", 1e3, "ms"),
        ("steady_gc_max_wall_s", "  parse phase: worst (wall)", 1e3, "ms"),
        ("steady_gc_max_cpu_s", "  parse phase: worst (CPU)", 1e3, "ms"),
        ("peak_rss_bytes", "peak RSS", 1 / MiB, "MiB"),
        ("elapsed_s", "run time", 1, "s"),
    ]:
        dv, mv = _median(d, key), _median(m, key)
        ratio = dv / mv if mv else float("inf")
        rows.append((label, dv * scale, mv * scale, unit, ratio))

    print()
    print(
        f"GC run: {args.state:,} objects of state (measured {d[0]['long_lived_objects']:,}"
        f" tracked), {args.updates:,} JSON depth updates, Python {d[0]['python']},"
        f" default thresholds {tuple(d[0]['thresholds_default'])}, median of {repeats}"
    )
    print(f"{'figure':34} {'default':>10} {'managed':>10}  {'default/managed':>15}")
    for label, dv, mv, unit, ratio in rows:
        print(f"{label:34} {dv:>8.1f}{unit:>2} {mv:>8.1f}{unit:>2}  {ratio:>14.2f}x")
    dc = [int(statistics.median(r["collections"][g] for r in d)) for g in range(3)]
    mc = [int(statistics.median(r["collections"][g] for r in m)) for g in range(3)]
    print(f"{'collections gen0/1/2':34} {'/'.join(map(str, dc)):>10} {'/'.join(map(str, mc)):>10}")
    ds = [int(statistics.median(r["steady_collections"][g] for r in d)) for g in range(3)]
    ms = [int(statistics.median(r["steady_collections"][g] for r in m)) for g in range(3)]
    print(
        f"{'  parse phase: gen0/1/2':34} {'/'.join(map(str, ds)):>10} {'/'.join(map(str, ms)):>10}"
    )
    print(f"{'objects frozen after warm-up':34} {0:>10} {int(_median(m, 'frozen')):>10,}")
    print(
        "per-run worst pause (wall, ms):"
        f" default {[round(r['gc_max_wall_s'] * 1e3, 1) for r in d]},"
        f" managed {[round(r['gc_max_wall_s'] * 1e3, 1) for r in m]}"
    )

    worst_x = _median(d, "gc_max_wall_s") / max(1e-9, _median(m, "gc_max_wall_s"))
    worst_cpu_x = _median(d, "gc_max_cpu_s") / max(1e-9, _median(m, "gc_max_cpu_s"))
    total_cut = 1 - _median(m, "gc_total_wall_s") / max(1e-9, _median(d, "gc_total_wall_s"))
    total_cpu_cut = 1 - _median(m, "gc_total_cpu_s") / max(1e-9, _median(d, "gc_total_cpu_s"))
    rss_rise = _median(m, "peak_rss_bytes") / _median(d, "peak_rss_bytes") - 1
    gc_ok = worst_x >= 3 and total_cut >= 0.30 and rss_rise <= 0.05
    print(
        f"VERDICT GC: worst pause {worst_x:.1f}x smaller (CPU {worst_cpu_x:.1f}x; target >= 3x),"
        f" total GC time {total_cut:.0%} smaller (CPU {total_cpu_cut:.0%}; target >= 30 %),"
        f" peak RSS {rss_rise:+.1%} (target <= +5 %): {'MET' if gc_ok else 'MISSED'}"
    )

    b = budget
    limit = b["budget_bytes"] * 1.05
    worst = max(b["peak_rss_bytes"], b["sampled_peak_bytes"])
    budget_ok = worst <= limit
    print()
    print(
        f"Budget run: {b['seconds']:.1f} s, {b['written_bytes'] / MiB:,.0f} MiB written into 3"
        f" registered caches ({b['inserts']:,} inserts), budget {b['budget_bytes'] / MiB:.1f} MiB"
        f" (baseline {b['baseline_bytes'] / MiB:.1f} + 96)"
    )
    print(
        f"  peak RSS (ru_maxrss) {b['peak_rss_bytes'] / MiB:.1f} MiB, sampled peak"
        f" {b['sampled_peak_bytes'] / MiB:.1f} MiB over {b['samples']:,} samples;"
        f" {worst / b['budget_bytes']:.1%} of budget"
    )
    print(
        f"  checks {b['checks']:,}, cleanups {b['cleanups']:,}, items freed"
        f" {b['items_freed']:,}, trims {b['trims']:,}, forced GCs"
        f" {b['forced_collections']}, level changes {b['level_changes']} {b['levels_seen']}"
    )
    for name, c in b["caches"].items():
        print(
            f"  cache {name:16} items {c['items']:>7,} bytes {c['bytes'] or 0:>12,}"
            f" shrinks {c['shrinks']:,}"
        )
    print(
        f"VERDICT budget: peak {worst / MiB:.1f} MiB vs budget + 5 % = {limit / MiB:.1f} MiB:"
        f" {'MET' if budget_ok else 'MISSED'}"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "gc": {"default": d, "managed": m},
                "gc_summary": {
                    "worst_pause_ratio_wall": worst_x,
                    "worst_pause_ratio_cpu": worst_cpu_x,
                    "total_gc_cut_wall": total_cut,
                    "total_gc_cut_cpu": total_cpu_cut,
                    "peak_rss_rise": rss_rise,
                    "met": gc_ok,
                },
                "budget": b | {"met": budget_ok},
                "repeats": repeats,
                "cpu_count": os.cpu_count(),
            },
            indent=2,
        )
    )
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
