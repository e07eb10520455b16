"""CPU per order-book update, from the received bytes to the applied book.

A seeded MAX-shaped stream (200 markets, depth-50 books, ~2.4 levels per update,
with duplicates, gaps, version changes and empty snapshots; each fault followed by
the fresh snapshot a resubscription brings) is fed to every contender in one run,
interleaved in chunks with the garbage collector off while timing:

* ``json.loads`` alone: the floor every contender pays;
* ``json.loads`` + ``Decimal`` of every level: the floor for exact books;
* ``LocalBook`` (aimax, via ``OrderBooks.apply``): MAX's continuity rules included;
* a plain dict book of ``Decimal`` re-sorted on read (the naive approach), same
  continuity driver;
* a ccxt-style book: float prices in bisect-sorted lists, the layout of ccxt's
  ``OrderBookSide`` (re-implemented here: ccxt is not installed in this
  environment, so this is NOT ccxt's own code), same continuity driver.

Also measured: reading the top 10 of both sides after an update, and the memory of
200 depth-50 books (tracemalloc). Every contender's final books are checked equal to
the generator's truth.

    .venv/bin/python benchmarks/bench_orderbook.py [--quick]
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from aimax.exchange.max.book import OrderBooks

D = Decimal


# ----------------------------------------------------------------- the stream


def _levels(items: list[tuple[int, int]]) -> list[list[str]]:
    return [[f"{p / 100:.2f}", f"{v / 1000:.3f}"] for p, v in items]


def make_stream(
    n_markets: int, updates: int, seed: int
) -> tuple[list[bytes], dict[str, dict[str, dict[str, str]]]]:
    """Messages (bytes) and each market's true final book (price str -> volume str)."""
    rng = random.Random(seed)
    truth: dict[str, dict[str, dict[int, int]]] = {}
    ids: dict[str, int] = {}
    versions: dict[str, int] = {}
    out: list[bytes] = []

    def snapshot(m: str, *, empty: bool = False) -> bytes:
        book = truth[m]
        return json.dumps(
            {
                "c": "book",
                "e": "snapshot",
                "M": m,
                "a": [] if empty else _levels(sorted(book["a"].items())),
                "b": [] if empty else _levels(sorted(book["b"].items(), reverse=True)),
                "T": 0,
                "fi": ids[m],
                "li": ids[m],
                "v": versions[m],
            }
        ).encode()  # fmt: skip

    markets = [f"m{i:03d}twd" for i in range(n_markets)]
    for m in markets:
        mid = rng.randint(10_000, 10_000_000)
        truth[m] = {
            "a": {mid + 1 + i: rng.randint(1, 5000) for i in range(50)},
            "b": {mid - 1 - i: rng.randint(1, 5000) for i in range(50)},
        }
        ids[m] = rng.randint(1, 10**6)
        versions[m] = 1
        out.append(snapshot(m))
    for _ in range(updates * n_markets):
        m = markets[rng.randrange(n_markets)]
        book = truth[m]
        levels: dict[str, list[list[str]]] = {"a": [], "b": []}
        for _k in range(rng.choice((1, 2, 2, 3, 3, 4))):
            side = rng.choice("ab")
            prices = book[side]
            if rng.random() < 0.3 and len(prices) > 40:
                price = rng.choice(list(prices))
                del prices[price]
                volume = 0
            else:
                best = min(prices) if side == "a" else max(prices)
                price = best + (rng.randint(-3, 60) if side == "a" else -rng.randint(-3, 60))
                volume = rng.randint(1, 5000)
                prices[price] = volume
            levels[side].append([f"{price / 100:.2f}", f"{volume / 1000:.3f}"])
        ids[m] += 1
        message = {
            "c": "book",
            "e": "update",
            "M": m,
            "a": levels["a"],
            "b": levels["b"],
            "T": 0,
            "fi": ids[m],
            "li": ids[m],
            "v": versions[m],
        }
        roll = rng.random()
        if roll < 0.005:  # a gap: this update is lost (the truth moved on)
            ids[m] += 1  # the next one, an empty diff, shows fi > li + 1
            probe = dict(message, fi=ids[m], li=ids[m], a=[], b=[])
            out.append(json.dumps(probe).encode())
            out.append(snapshot(m))  # what the resubscription brings
            continue
        data = json.dumps(message).encode()
        out.append(data)
        if roll < 0.015:  # duplicate
            out.append(data)
        elif roll < 0.016:  # version change, then the resubscription's snapshot
            versions[m] += 1
            ids[m] += 1
            out.append(
                json.dumps(dict(message, fi=ids[m], li=ids[m], v=versions[m], a=[], b=[])).encode()
            )
            out.append(snapshot(m))
        elif roll < 0.017:  # empty snapshot, then the next real one
            out.append(snapshot(m, empty=True))
            out.append(snapshot(m))
    final = {
        m: {
            "a": {f"{p / 100:.2f}": f"{v / 1000:.3f}" for p, v in truth[m]["a"].items()},
            "b": {f"{p / 100:.2f}": f"{v / 1000:.3f}" for p, v in truth[m]["b"].items()},
        }
        for m in markets
    }
    return out, final


# ----------------------------------------------------------------- contenders


class Continuity:
    """MAX's rules for the peer books (the same decisions LocalBook makes)."""

    def __init__(self) -> None:
        self.li: dict[str, int | None] = {}
        self.v: dict[str, int] = {}

    def accept(self, m: dict[str, Any]) -> str:
        market = m["M"]
        if m["e"] == "snapshot":
            if not m["a"] and not m["b"]:
                self.li[market] = None
                return "clear"
            self.li[market] = m["li"]
            self.v[market] = m["v"]
            return "snapshot"
        li = self.li.get(market)
        if li is None:
            return "skip"
        if m["v"] != self.v[market]:
            self.li[market] = None
            return "skip"
        if m["fi"] <= li:
            return "skip"
        if m["fi"] != li + 1:
            self.li[market] = None
            return "skip"
        self.li[market] = m["li"]
        return "apply"


class SortedDictBook:
    """Dict of Decimal per side; sorted on every read."""

    def __init__(self) -> None:
        self.c = Continuity()
        self.books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}

    def feed(self, raw: bytes) -> None:
        m = json.loads(raw)
        what = self.c.accept(m)
        if what == "skip":
            return
        market = m["M"]
        if what in ("snapshot", "clear"):
            self.books[market] = ({D(p): D(v) for p, v in m["a"]}, {D(p): D(v) for p, v in m["b"]})
            return
        asks, bids = self.books[market]
        for side, levels in ((asks, m["a"]), (bids, m["b"])):
            for p, v in levels:
                vol = D(v)
                if vol:
                    side[D(p)] = vol
                else:
                    side.pop(D(p), None)

    def top(self, market: str, n: int = 10) -> tuple[list[Any], list[Any]]:
        asks, bids = self.books[market]
        return sorted(bids.items(), reverse=True)[:n], sorted(asks.items())[:n]

    def final(self, market: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        return self.books[market]


class CcxtStyleBook:
    """Float prices in bisect-sorted lists (bids stored negated), ccxt's layout."""

    def __init__(self) -> None:
        self.c = Continuity()
        self.books: dict[str, list[Any]] = {}

    @staticmethod
    def _side(levels: list[list[str]], sign: float) -> list[Any]:
        keys: list[float] = []
        rows: list[list[float]] = []
        for p, v in sorted(((float(p), float(v)) for p, v in levels), key=lambda r: sign * r[0]):
            if v:
                keys.append(sign * p)
                rows.append([p, v])
        return [keys, rows, sign]

    def feed(self, raw: bytes) -> None:
        m = json.loads(raw)
        what = self.c.accept(m)
        if what == "skip":
            return
        market = m["M"]
        if what in ("snapshot", "clear"):
            self.books[market] = [self._side(m["a"], 1.0), self._side(m["b"], -1.0)]
            return
        for side, levels in zip(self.books[market], (m["a"], m["b"]), strict=True):
            keys, rows, sign = side
            for p, v in levels:
                price = float(p)
                size = float(v)
                key = sign * price
                i = bisect.bisect_left(keys, key)
                found = i < len(keys) and keys[i] == key
                if size:
                    if found:
                        rows[i][1] = size
                    else:
                        keys.insert(i, key)
                        rows.insert(i, [price, size])
                elif found:
                    del keys[i]
                    del rows[i]

    def top(self, market: str, n: int = 10) -> tuple[list[Any], list[Any]]:
        asks, bids = self.books[market]
        return bids[1][:n], asks[1][:n]

    def final(self, market: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        asks, bids = self.books[market]

        def conv(rows: list[list[float]]) -> dict[Decimal, Decimal]:
            return {D(f"{p:.2f}"): D(f"{v:.3f}") for p, v in rows}

        return conv(asks[1]), conv(bids[1])  # fmt: skip


class AimaxBook:
    def __init__(self) -> None:
        self.books = OrderBooks()
        self._loads = json.loads

    def feed(self, raw: bytes) -> None:
        m = self._loads(raw)
        books = self.books
        if m["M"] not in books:
            books.add(m["M"])
        books.apply(m, now=0.0)

    def top(self, market: str, n: int = 10) -> tuple[list[Any], list[Any]]:
        return self.books[market].top(n)

    def final(self, market: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        b = self.books[market]
        return dict(b.asks), dict(b.bids)


class ParseOnly:
    def __init__(self) -> None:
        self.n = 0

    def feed(self, raw: bytes) -> None:
        json.loads(raw)


class ParseDecimal:
    def feed(self, raw: bytes) -> None:
        m = json.loads(raw)
        for p, v in m["a"]:
            D(p)
            D(v)
        for p, v in m["b"]:
            D(p)
            D(v)


CONTENDERS: dict[str, Callable[[], Any]] = {
    "json.loads only (floor)": ParseOnly,
    "json.loads + Decimal levels": ParseDecimal,
    "aimax LocalBook": AimaxBook,
    "sorted-dict Decimal book": SortedDictBook,
    "ccxt-style float book (re-impl.)": CcxtStyleBook,
}


def run(messages: list[bytes], final: dict[str, Any], chunk: int, repeats: int) -> dict[str, Any]:
    totals = dict.fromkeys(CONTENDERS, 0.0)
    instances: dict[str, Any] = {}
    chunks = [messages[i : i + chunk] for i in range(0, len(messages), chunk)]
    best: dict[str, float] = {}
    for _ in range(repeats):
        instances = {name: make() for name, make in CONTENDERS.items()}
        totals = dict.fromkeys(CONTENDERS, 0.0)
        gc.collect()
        gc.disable()
        try:
            for part in chunks:
                for name, inst in instances.items():
                    feed = inst.feed
                    start = time.perf_counter()
                    for raw in part:
                        feed(raw)
                    totals[name] += time.perf_counter() - start
        finally:
            gc.enable()
        for name, total in totals.items():
            best[name] = min(best.get(name, float("inf")), total)
    per_update = {name: best[name] / len(messages) * 1e6 for name in CONTENDERS}
    # correctness: every real book equals the truth
    correct: dict[str, bool] = {}
    for name, inst in instances.items():
        if not hasattr(inst, "final"):
            continue
        ok = True
        for market, want in final.items():
            asks, bids = inst.final(market)
            ok &= asks == {D(p): D(v) for p, v in want["a"].items()}
            ok &= bids == {D(p): D(v) for p, v in want["b"].items()}
        correct[name] = ok
    # top-10 reads
    top_cost: dict[str, float] = {}
    markets = list(final)
    for name, inst in instances.items():
        if not hasattr(inst, "top"):
            continue
        start = time.perf_counter()
        for _ in range(20):
            for market in markets:
                inst.top(market, 10)
        top_cost[name] = (time.perf_counter() - start) / (20 * len(markets)) * 1e6
    # memory of the books
    memory: dict[str, float] = {}
    first_snapshots = messages[: len(final)]
    for name, make in CONTENDERS.items():
        if name.startswith("json"):
            continue
        gc.collect()
        tracemalloc.start()
        inst = make()
        for raw in first_snapshots:
            inst.feed(raw)
        size, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        memory[name] = size / 2**20
        del inst
    return {
        "per_update_us": per_update,
        "correct": correct,
        "top10_us": top_cost,
        "memory_mib": memory,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller stream, one repeat")
    args = parser.parse_args()
    updates, repeats = (50, 1) if args.quick else (250, 3)
    messages, final = make_stream(200, updates, seed=16)
    result = run(messages, final, chunk=2000, repeats=repeats)
    per = result["per_update_us"]
    floor = per["json.loads only (floor)"]
    print(f"{len(messages)} messages, 200 markets, best of {repeats}, GC off while timing\n")
    header = ("contender", "us/update", "x floor", "top10 us", "MiB", "books ok")
    widths = (36, 10, 8, 9, 6, 8)
    print(
        " ".join(
            f"{h:{w}}" if i == 0 else f"{h:>{w}}"
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    for name in CONTENDERS:
        top = result["top10_us"].get(name)
        mem = result["memory_mib"].get(name)
        ok = result["correct"].get(name)
        print(
            f"{name:36} {per[name]:10.2f} {per[name] / floor:8.2f} "
            f"{'' if top is None else f'{top:9.2f}':>9} {'' if mem is None else f'{mem:6.2f}':>6} "
            f"{'' if ok is None else str(ok):>8}"
        )
    ours = per["aimax LocalBook"]
    ccxt = per["ccxt-style float book (re-impl.)"]
    sdict = per["sorted-dict Decimal book"]
    cpu_share = ours * 1e-6 * 200 * 10 * 100  # 200 markets x 10 updates/s, in % of a core
    verdict = {
        "vs_ccxt_style": ours / ccxt,
        "vs_sorted_dict": ours / sdict,
        "vs_floor": ours / floor,
        "core_percent_200x10": cpu_share,
        "top10_vs_ccxt_style": result["top10_us"]["aimax LocalBook"]
        / result["top10_us"]["ccxt-style float book (re-impl.)"],
        "all_books_correct": all(result["correct"].values()),
    }
    print(
        f"\nverdict: LocalBook {ours:.2f} us/update = {verdict['vs_floor']:.2f}x the parse floor, "
        f"{verdict['vs_ccxt_style']:.2f}x the ccxt-style float book, "
        f"{verdict['vs_sorted_dict']:.2f}x the sorted-dict book; top-10 read "
        f"{verdict['top10_vs_ccxt_style']:.2f}x ccxt-style; 200 markets x 10 updates/s = "
        f"{cpu_share:.2f} % of one core (book path only); books correct: "
        f"{verdict['all_books_correct']}"
    )
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "bench_orderbook.json").write_text(
        json.dumps(
            {"messages": len(messages), "repeats": repeats, **result, "verdict": verdict}, indent=2
        )
    )
    return 0 if verdict["all_books_correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
