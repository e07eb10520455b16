"""The pure exchange core: books, orders, balances, k-lines (time passed in)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.exchange.simulator import Exchange, Rejection, SimulatorConfig

T0 = 1_800_000_000.0
D = Decimal


def make(**kw: object) -> Exchange:
    cfg = SimulatorConfig(n_markets=5, history_seconds=0, **kw)  # type: ignore[arg-type]
    return Exchange(cfg)


def funded(ex: Exchange, name: str = "a", **balances: str) -> object:
    return ex.add_account(
        name, f"key-{name}", f"secret-{name}", balances or {"twd": "1e7", "btc": "5"}
    )


def order(ex: Exchange, acct: object, now: float = T0, **params: object) -> dict[str, object]:
    params.setdefault("market", "btctwd")
    return ex.create_order(acct, "spot", params, now)  # type: ignore[arg-type]


def test_catalogue_has_real_pairs_and_scales_to_hundreds() -> None:
    ex = Exchange(SimulatorConfig(n_markets=31, history_seconds=0))
    ids = [m["id"] for m in ex.markets_json()]
    for pair in ("btctwd", "ethtwd", "usdttwd", "btcusdt", "ethusdt", "ethbtc"):
        assert pair in ids
    big = Exchange(SimulatorConfig(n_markets=400, history_seconds=0))
    ids = [m["id"] for m in big.markets_json()]
    assert len(ids) == len(set(ids)) == 400
    currencies = {c["currency"] for c in big.currencies_json()}
    for m in big.markets_json():
        assert m["base_unit"] in currencies
        assert m["quote_unit"] in currencies
        assert m["status"] == "active"
    # every generated market can be quoted
    for market in ids[-5:]:
        t = big.ticker(market, T0)
        assert D(str(t["sell"])) > D(str(t["buy"])) > 0


def test_limit_buy_rests_then_fills_when_the_price_falls() -> None:
    ex = make(maker_fee="0.001")
    a = funded(ex)
    ex.set_price("btctwd", "3000000", T0)
    placed = order(
        ex, a, side="buy", volume="0.01", price="2900000", ord_type="limit", client_oid="x1"
    )
    assert placed["state"] == "wait"
    assert placed["executed_volume"] == "0.0"
    assert ex.accounts(a, "spot", "twd")[0]["locked"] == "29000.0"  # type: ignore[arg-type]
    ex.set_price("btctwd", "2850000", T0 + 1)
    got = ex.get_order(a, {"client_oid": "x1"}, T0 + 1)  # type: ignore[arg-type]
    assert got["state"] == "done"
    assert got["executed_volume"] == "0.01"
    assert got["avg_price"] == "2900000.0"
    twd = ex.accounts(a, "spot", "twd")[0]  # type: ignore[arg-type]
    btc = ex.accounts(a, "spot", "btc")[0]  # type: ignore[arg-type]
    assert D(str(twd["balance"])) == D("1e7") - D(29000)
    assert twd["locked"] == "0.0"
    assert D(str(btc["balance"])) == D(5) + D("0.01") * (1 - D("0.001"))
    trades = ex.order_trades(a, {"order_id": placed["id"]}, T0 + 1)  # type: ignore[arg-type]
    # filled out of the synthetic levels the move crossed, all at the order's price
    assert got["trades_count"] == len(trades) >= 1
    assert {(t["liquidity"], t["price"], t["fee_currency"]) for t in trades} == {
        ("maker", "2900000.0", "btc")
    }
    assert sum(D(str(t["volume"])) for t in trades) == D("0.01")
    assert sum(D(str(t["fee"])) for t in trades) == D("0.00001")


def test_crossing_limit_buy_takes_the_book_at_its_prices() -> None:
    ex = make(taker_fee="0")
    a = funded(ex)
    ex.set_price("btctwd", "3000000", T0)
    depth = ex.depth("btctwd", T0, sort_by_price=False)
    asks = [(D(p), D(v)) for p, v in depth["asks"]]  # type: ignore[union-attr, misc]
    want = asks[0][1] + asks[1][1]
    limit = asks[1][0]
    placed = order(ex, a, side="buy", volume=str(want), price=str(limit))
    got = ex.get_order(a, {"id": placed["id"]}, T0)  # type: ignore[arg-type]
    assert got["state"] == "done"
    assert D(str(got["executed_volume"])) == want
    spent = asks[0][0] * asks[0][1] + asks[1][0] * asks[1][1]
    twd = ex.accounts(a, "spot", "twd")[0]  # type: ignore[arg-type]
    assert D(str(twd["balance"])) == D("1e7") - spent  # the unused lock came back
    after = ex.depth("btctwd", T0, sort_by_price=False)
    assert D(after["asks"][0][0]) == asks[2][0]  # type: ignore[index]


def test_market_ioc_and_post_only() -> None:
    ex = make()
    a = funded(ex)
    ex.set_price("btctwd", "3000000", T0)
    sold = order(ex, a, side="sell", volume="0.001", ord_type="market")
    assert ex.get_order(a, {"id": sold["id"]}, T0)["state"] == "done"  # type: ignore[arg-type]
    # a post-only buy above the best ask would take: cancelled, nothing executed
    po = order(ex, a, side="buy", volume="0.001", price="3100000", ord_type="post_only")
    got = ex.get_order(a, {"id": po["id"]}, T0)  # type: ignore[arg-type]
    assert got["state"] == "cancel"
    assert got["executed_volume"] == "0.0"
    # an IOC far below the market: nothing to take, cancelled at once
    ioc = order(ex, a, side="buy", volume="0.001", price="1000000", ord_type="ioc_limit")
    assert ex.get_order(a, {"id": ioc["id"]}, T0)["state"] == "cancel"  # type: ignore[arg-type]
    # a huge market buy takes the whole synthetic ask side and cancels the rest
    big = order(ex, a, side="buy", volume="3", ord_type="market")
    got = ex.get_order(a, {"id": big["id"]}, T0)  # type: ignore[arg-type]
    assert got["state"] == "cancel"
    assert D(str(got["executed_volume"])) > 0
    assert D(str(got["remaining_volume"])) > 0
    assert ex.accounts(a, "spot", "twd")[0]["locked"] == "0.0"  # type: ignore[arg-type]


def test_stop_orders_wait_then_trigger() -> None:
    ex = make()
    a = funded(ex)
    ex.set_price("btctwd", "3000000", T0)
    stop = order(ex, a, side="sell", volume="0.01", ord_type="stop_market", stop_price="2950000")
    assert ex.get_order(a, {"id": stop["id"]}, T0)["state"] == "wait"  # type: ignore[arg-type]
    assert [o["id"] for o in ex.open_orders(a, "spot", {}, T0)] == [stop["id"]]  # type: ignore[arg-type]
    ex.set_price("btctwd", "2940000", T0 + 1)
    assert ex.get_order(a, {"id": stop["id"]}, T0 + 1)["state"] == "done"  # type: ignore[arg-type]
    sl = order(
        ex,
        a,
        side="buy",
        volume="0.01",
        price="3200000",
        ord_type="stop_limit",
        stop_price="3100000",
    )
    ex.set_price("btctwd", "3150000", T0 + 2)
    got = ex.get_order(a, {"id": sl["id"]}, T0 + 2)  # type: ignore[arg-type]
    assert got["state"] == "done"
    assert D(str(got["avg_price"])) <= D(3200000)


def test_users_trade_with_each_other_first() -> None:
    ex = make(maker_fee="0", taker_fee="0")
    a = funded(ex, "a")
    b = funded(ex, "b")
    ex.set_price("btctwd", "3000000", T0)
    book = ex.depth("btctwd", T0, sort_by_price=False)
    best_ask = D(book["asks"][0][0])  # type: ignore[index]
    inside = best_ask - D("0.1")
    rest = order(ex, a, side="sell", volume="0.002", price=str(inside))
    took = order(ex, b, side="buy", volume="0.002", price=str(best_ask))
    ga = ex.get_order(a, {"id": rest["id"]}, T0)  # type: ignore[arg-type]
    gb = ex.get_order(b, {"id": took["id"]}, T0)  # type: ignore[arg-type]
    assert ga["state"] == gb["state"] == "done"
    assert ga["avg_price"] == gb["avg_price"] == str(inside)
    ta = ex.my_trades(a, "spot", {}, T0)  # type: ignore[arg-type]
    tb = ex.my_trades(b, "spot", {}, T0)  # type: ignore[arg-type]
    assert ta[0]["id"] == tb[0]["id"]
    assert (ta[0]["liquidity"], tb[0]["liquidity"]) == ("maker", "taker")
    assert ex.totals("btc") == D(10)
    assert ex.totals("twd") == D("2e7")


def test_rejections() -> None:
    ex = make()
    a = funded(ex, twd="1000")
    ex.set_price("btctwd", "3000000", T0)
    cases = [
        ({"side": "buy", "volume": "0.01", "price": "3000000"}, 2018),
        ({"side": "buy", "volume": "0.00001", "price": "3000000"}, 2016),
        ({"side": "hold", "volume": "0.01", "price": "1"}, 1001),
        ({"side": "buy", "volume": "-1", "price": "1"}, 1001),
        ({"side": "buy", "volume": "0.01"}, 1001),  # a limit needs a price
        ({"side": "buy", "volume": "0.01", "price": "1", "ord_type": "fok"}, 1001),
        ({"side": "buy", "volume": "0.01", "ord_type": "stop_market"}, 1001),
        ({"side": "buy", "volume": "0.01", "price": "1", "client_oid": "x" * 37}, 1001),
        ({"market": "nosuch", "side": "buy", "volume": "1", "price": "1"}, 1001),
    ]
    for params, code in cases:
        with pytest.raises(Rejection) as info:
            order(ex, a, **params)
        assert info.value.code == code, params
    with pytest.raises(Rejection) as info:
        ex.get_order(a, {"id": 999}, T0)  # type: ignore[arg-type]
    assert (info.value.code, info.value.status) == (2004, 404)
    with pytest.raises(Rejection) as info:
        ex.get_order(a, {}, T0)  # type: ignore[arg-type]
    assert info.value.code == 1001


def test_client_oid_is_unique_per_account_for_its_ttl() -> None:
    ex = make(client_oid_ttl=100.0)
    a = funded(ex, "a")
    b = funded(ex, "b")
    ex.set_price("btctwd", "3000000", T0)
    first = order(ex, a, side="buy", volume="0.001", price="2000000", client_oid="same")
    with pytest.raises(Rejection) as info:
        order(ex, a, side="buy", volume="0.001", price="2000000", client_oid="same")
    assert info.value.code == 2002
    order(ex, b, side="buy", volume="0.001", price="2000000", client_oid="same")  # other account
    ex.cancel_order(a, {"client_oid": "same"}, T0)  # type: ignore[arg-type]
    with pytest.raises(Rejection):  # still taken after cancel, within the TTL
        order(ex, a, side="buy", volume="0.001", price="2000000", client_oid="same", now=T0 + 99)
    again = order(
        ex, a, side="buy", volume="0.001", price="2000000", client_oid="same", now=T0 + 100
    )
    assert again["id"] != first["id"]
    assert ex.get_order(a, {"client_oid": "same"}, T0 + 100)["id"] == again["id"]  # type: ignore[arg-type]


def test_cancel_and_bulk_cancel_release_funds() -> None:
    ex = make()
    a = funded(ex)
    ex.set_price("btctwd", "3000000", T0)
    ids = [
        order(ex, a, side="buy", volume="0.001", price=str(2_000_000 + i), group_id=1 + i % 2)["id"]
        for i in range(4)
    ]
    sell = order(ex, a, side="sell", volume="0.001", price="4000000")
    cancelled = ex.cancel_order(a, {"id": ids[0]}, T0)  # type: ignore[arg-type]
    assert cancelled["state"] == "cancel"
    with pytest.raises(Rejection) as info:
        ex.cancel_order(a, {"id": ids[0]}, T0)  # type: ignore[arg-type]
    assert info.value.code == 2003
    by_group = ex.cancel_orders(a, "spot", {"group_id": 2}, T0)  # type: ignore[arg-type]
    assert {r["order"]["id"] for r in by_group} == {ids[1], ids[3]}  # type: ignore[index]
    assert all(r["error"] is None for r in by_group)
    rest = ex.cancel_orders(a, "spot", {"market": "btctwd", "side": "buy"}, T0)  # type: ignore[arg-type]
    assert [r["order"]["id"] for r in rest] == [ids[2]]  # type: ignore[index]
    assert [o["id"] for o in ex.open_orders(a, "spot", {}, T0)] == [sell["id"]]  # type: ignore[arg-type]
    assert ex.accounts(a, "spot", "twd")[0]["locked"] == "0.0"  # type: ignore[arg-type]
    assert ex.accounts(a, "spot", "btc")[0]["locked"] == "0.001"  # type: ignore[arg-type]
    closed = ex.closed_orders(a, "spot", {"limit": 2}, T0)  # type: ignore[arg-type]
    assert [o["id"] for o in closed] == [ids[3], ids[2]]  # newest first
    history = ex.order_history(a, "spot", {"from_id": ids[1]}, T0)  # type: ignore[arg-type]
    assert [o["id"] for o in history] == [*ids[1:], sell["id"]]


def test_klines_are_built_from_the_trades() -> None:
    ex = make()
    base = 1_800_000_040.0  # 40 s into a minute
    for i, price in enumerate(["3000000", "3010000", "2990000", "3005000"]):
        ex.set_price("btctwd", price, base + i)
    trades = ex.public_trades("btctwd", base + 4, limit=1000)
    minute = int(base // 60) * 60
    in_minute = [
        t for t in trades if minute * 1000 <= int(str(t["created_at"])) < (minute + 60) * 1000
    ]
    rows = ex.klines("btctwd", base + 4, period=1, limit=5)
    row = next(r for r in rows if r[0] == minute)
    prices = [float(str(t["price"])) for t in reversed(in_minute)]
    assert row[1:5] == [prices[0], max(prices), min(prices), prices[-1]]
    assert row[5] == pytest.approx(sum(float(str(t["volume"])) for t in in_minute))
    # a coarser period aggregates the same trades
    five = ex.klines("btctwd", base + 4, period=5, limit=1)
    assert five[-1][2] >= row[2]
    assert five[-1][3] <= row[3]
    assert five[-1][4] == row[4]
    with pytest.raises(Rejection):
        ex.klines("btctwd", base, period=7)


def test_prices_walk_with_time_and_the_seed() -> None:
    one, two, other = make(seed=1), make(seed=1), make(seed=2)
    walks = [
        [str(e.ticker("ethtwd", T0 + s)["last"]) for s in range(0, 60, 5)]
        for e in (one, two, other)
    ]
    assert walks[0] == walks[1]
    assert walks[0] != walks[2]
    assert len(set(walks[0])) > 1


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("order"),
            st.sampled_from(["a", "b"]),
            st.sampled_from(["buy", "sell"]),
            st.sampled_from(
                ["limit", "market", "ioc_limit", "post_only", "stop_limit", "stop_market"]
            ),
            st.integers(min_value=-40, max_value=40),  # price offset, per mille
            st.integers(min_value=1, max_value=30),  # volume in min lots
        ),
        st.tuples(st.just("move"), st.integers(min_value=-30, max_value=30)),
        st.tuples(st.just("cancel"), st.sampled_from(["a", "b"])),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=5)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=ops)
def test_balances_never_go_negative_and_locks_match_open_orders(
    ops: list[tuple[object, ...]],
) -> None:
    ex = make()
    accounts = {n: funded(ex, n, twd="200000", btc="0.05") for n in ("a", "b")}
    now = T0
    rejected_codes: set[int] = set()
    ex.set_price("btctwd", "3000000", now)
    for op in ops:
        if op[0] == "order":
            _, who, side, kind, offset, lots = op
            mid = ex.mid("btctwd", now)
            price = (mid * (1 + D(int(offset)) / 1000)).quantize(D("0.1"))  # type: ignore[call-overload]
            params: dict[str, object] = {
                "side": side,
                "volume": str(D("0.0001") * lots),
                "ord_type": kind,
            }  # type: ignore[operator]
            if kind in ("limit", "ioc_limit", "post_only", "stop_limit"):
                params["price"] = str(price)
            if kind.startswith("stop_"):  # type: ignore[union-attr]
                params["stop_price"] = str(price)
            try:
                order(ex, accounts[str(who)], now, **params)
            except Rejection as exc:
                rejected_codes.add(exc.code)
        elif op[0] == "move":
            mid = ex.mid("btctwd", now)
            ex.set_price("btctwd", mid * (1 + D(int(op[1])) / 1000), now)  # type: ignore[call-overload]
        elif op[0] == "cancel":
            ex.cancel_orders(accounts[str(op[1])], "spot", {}, now)  # type: ignore[arg-type]
        else:
            now += float(op[1])  # type: ignore[arg-type]
        for name in ("a", "b"):
            acct = ex.account(name)
            locked = {"twd": D(0), "btc": D(0)}
            for o in acct.orders.values():
                assert o.locked >= 0
                if o.is_open:
                    locked["twd" if o.side == "buy" else "btc"] += o.locked
                else:
                    assert o.locked == 0
            for currency in ("twd", "btc"):
                available, held = acct.slot("spot", currency)
                assert available >= 0, (name, currency, available)
                assert held >= 0, (name, currency, held)
                assert held == locked[currency]
            opened = sum(o.is_open for o in acct.orders.values())
            assert acct.open_counts.get("btctwd", 0) == opened
    # only business rejections (too small, insufficient, no liquidity), never bad params
    assert rejected_codes <= {2016, 2018, 2002}


def test_too_many_open_orders() -> None:
    ex = make(max_open_orders=3)
    a = funded(ex)
    ex.set_price("btctwd", "3000000", T0)
    ids = [order(ex, a, side="buy", volume="0.001", price="2000000")["id"] for _ in range(3)]
    with pytest.raises(Rejection) as info:
        order(ex, a, side="buy", volume="0.001", price="2000000")
    assert info.value.code == 2034
    order(ex, a, market="ethtwd", side="buy", volume="0.01", price="50000")  # per market
    ex.cancel_order(a, {"id": ids[0]}, T0)  # type: ignore[arg-type]
    order(ex, a, side="buy", volume="0.001", price="2000000")


def test_a_sell_walking_the_book_cascades_stops_safely() -> None:
    ex = make(maker_fee="0", taker_fee="0")
    a = funded(ex, "a", btc="5", twd="0")
    b = funded(ex, "b", btc="5", twd="0")
    ex.set_price("btctwd", "3000000", T0)
    bids = ex.depth("btctwd", T0, sort_by_price=False)["bids"]
    levels = [(D(p), D(v)) for p, v in bids]  # type: ignore[union-attr, misc]
    # two sell stops just under the first and second bid levels
    s1 = order(
        ex, b, side="sell", volume="0.002", ord_type="stop_market", stop_price=str(levels[1][0])
    )
    s2 = order(
        ex, b, side="sell", volume="0.002", ord_type="stop_market", stop_price=str(levels[3][0])
    )
    # a market sell big enough to reach the fourth level triggers both, in the middle of its walk
    want = sum(v for _, v in levels[:3]) + levels[3][1] / 2
    big = order(ex, a, side="sell", volume=str(want), ord_type="market")
    got = [ex.get_order(acct, {"id": o["id"]}, T0) for acct, o in ((a, big), (b, s1), (b, s2))]  # type: ignore[arg-type]
    assert [g["state"] for g in got] == ["done", "done", "done"]
    sold = sum(D(str(g["executed_volume"])) for g in got)
    assert sold == want + D("0.004")
    # every unit sold came out of the book exactly once
    after = {D(p): D(v) for p, v in ex.depth("btctwd", T0, sort_by_price=False)["bids"]}  # type: ignore[union-attr, misc]
    taken = sum(v for p, v in levels) - sum(after.get(p, D(0)) for p, _ in levels)
    assert taken == sold
    assert ex.totals("btc") == D(10) - sold


def test_ticker_has_vol_in_quote_and_currencies_send_strings() -> None:
    """Issue 15: MAX v3's ticker fields, and ``min_borrow_amount`` as a string."""
    ex = make()
    for price in ("3000000", "3000010", "2999990"):
        ex.set_price("btctwd", price, T0)
    t = ex.ticker("btctwd", T0)
    assert {
        "market", "at", "buy", "buy_vol", "sell", "sell_vol", "open", "low", "high",
        "last", "vol", "vol_in_btc", "vol_in_quote",
    } <= set(t)  # fmt: skip
    trades = ex.public_trades("btctwd", T0, limit=1000)
    turnover = sum(D(str(x["price"])) * D(str(x["volume"])) for x in trades)
    assert isinstance(t["vol_in_quote"], str)
    assert turnover > 0
    assert abs(D(t["vol_in_quote"]) - turnover) <= D("0.1")  # summed price * volume
    vol = D(str(t["vol"]))
    assert vol * D("2999990") <= D(t["vol_in_quote"]) <= vol * D("3000010")
    assert all(isinstance(c["min_borrow_amount"], str) for c in ex.currencies_json())
    assert all(D(str(c["min_borrow_amount"])) >= 0 for c in ex.currencies_json())


def test_off_precision_price_or_volume_is_rejected_not_truncated() -> None:
    """Issue 15: btctwd has quote precision 1 and base precision 8."""
    ex = make()
    a = funded(ex)
    ex.set_price("btctwd", "3000000", T0)
    for params, named in [
        ({"side": "buy", "volume": "0.01", "price": "1500000.65"}, "1500000.65"),
        ({"side": "sell", "volume": "0.01", "price": "3500000.01"}, "3500000.01"),
        ({"side": "buy", "volume": "0.010000001", "price": "1500000"}, "0.010000001"),
        ({"side": "buy", "volume": "0.01", "price": "0.01"}, "0.01"),
    ]:
        with pytest.raises(Rejection) as info:
            order(ex, a, **params)
        assert (info.value.code, info.value.status) == (1001, 400), params
        assert named in info.value.message
        assert info.value.body()["error"]["code"] == 1001  # type: ignore[index]
    assert ex.open_orders(a, "spot", {}, T0) == []  # type: ignore[arg-type]
    placed = order(ex, a, side="buy", volume="0.01000000", price="1500000.60")
    assert (placed["price"], placed["volume"]) == ("1500000.6", "0.01")


@pytest.mark.parametrize(
    "absurd", ["1e400", "-1e400", "1e-400", "NaN", "sNaN", "inf", "-Infinity", "9" * 60, 1e300]
)
def test_absurd_amounts_are_clean_rejections(absurd: object) -> None:
    """Issue 15: ``volume="1e400"`` used to raise InvalidOperation out of the handler."""
    ex = make()
    a = funded(ex)
    ex.set_price("btctwd", "3000000", T0)
    for name in ("volume", "price", "stop_price"):
        params: dict[str, object] = {"side": "buy", "volume": "0.01", "price": "1500000"}
        params["ord_type"] = "stop_limit"
        params["stop_price"] = "3100000"
        params[name] = absurd
        with pytest.raises(Rejection) as info:
            order(ex, a, **params)
        assert info.value.code == 1001, (name, absurd)


def test_memory_stays_bounded_and_recent_orders_stay_findable() -> None:
    """Issue 15: public trades, closed orders, fills and client_oids are bounded."""
    horizon, step, rounds = 3600.0, 10.0, 1500
    ex = make(
        public_trades_kept=50,
        closed_order_horizon=horizon,
        client_oid_ttl=600.0,
        volatility=0.0,
        price_tick=5.0,
    )
    a = funded(ex, twd="1e12", btc="1e6")
    now = T0
    ex.set_price("btctwd", "3000000", now)
    resting = order(ex, a, now, side="buy", volume="0.001", price="1000000", client_oid="keep")
    # an open order with a fill older than the horizon: it and its fill stay
    ask = D(str(ex.ticker("btctwd", now)["sell"]))
    partial = order(ex, a, now, side="buy", volume="1000", price=str(ask))
    ex.set_price("btctwd", "3500000", now)  # the market leaves it behind
    assert ex.get_order(a, {"id": partial["id"]}, now)["state"] == "wait"  # type: ignore[arg-type]
    bound = 2 * int(horizon / step) + 10
    for i in range(rounds):
        now += step
        order(ex, a, now, side="buy", volume="0.001", ord_type="market", client_oid=f"m{i}")
        placed = order(ex, a, now, side="buy", volume="0.001", price="1000000", client_oid=f"c{i}")
        ex.cancel_order(a, {"id": placed["id"]}, now)  # type: ignore[arg-type]
        if i % 100 == 0:
            assert len(a.orders) <= bound  # type: ignore[attr-defined]
    assert len(ex.public_trades("btctwd", now, limit=1000)) == 50
    for market in ex.markets:
        assert len(ex.public_trades(market, now, limit=1000)) <= 50
    assert len(a.orders) <= bound  # type: ignore[attr-defined]
    assert len(a.fills) + len(a.old_fills) <= 2 * bound  # type: ignore[attr-defined]
    assert len(a.client_oids) <= bound  # type: ignore[attr-defined]
    assert len(a.closed) <= bound  # type: ignore[attr-defined]
    assert len(ex._orders) <= bound
    # open orders are never dropped, nor their fills
    assert ex.get_order(a, {"id": resting["id"]}, now)["state"] == "wait"  # type: ignore[arg-type]
    assert ex.get_order(a, {"client_oid": "keep"}, now)["id"] == resting["id"]  # type: ignore[arg-type]
    assert ex.order_trades(a, {"order_id": partial["id"]}, now)  # type: ignore[arg-type]
    mine = ex.my_trades(a, "spot", {"limit": 1000, "order_by": "asc"}, now)  # type: ignore[arg-type]
    assert mine[0]["order_id"] == partial["id"]
    # a recent closed order is still there, by id and by client_oid, with its fills
    last = f"m{rounds - 1}"
    recent = ex.get_order(a, {"client_oid": last}, now)  # type: ignore[arg-type]
    assert recent["state"] == "done"
    assert ex.order_trades(a, {"order_id": recent["id"]}, now)  # type: ignore[arg-type]
    closed = ex.closed_orders(a, "spot", {"limit": 5}, now)  # type: ignore[arg-type]
    assert closed[0]["state"] == "cancel"
    # one older than the horizon is gone
    with pytest.raises(Rejection) as info:
        ex.get_order(a, {"client_oid": "m0"}, now)  # type: ignore[arg-type]
    assert info.value.code == 2004
    # and its client_oid is free again (ttl passed)
    again = order(ex, a, now, side="buy", volume="0.001", price="1000000", client_oid="m0")
    assert again["state"] == "wait"


def test_memory_bounds_have_max_like_defaults() -> None:
    cfg = SimulatorConfig()
    assert cfg.public_trades_kept == 1000
    assert cfg.closed_order_horizon == 86_400.0
    with pytest.raises(Exception, match="public_trades_kept"):
        SimulatorConfig(public_trades_kept=0)
    with pytest.raises(Exception, match="closed_order_horizon"):
        SimulatorConfig(closed_order_horizon=-1)
