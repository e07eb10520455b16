"""Signed endpoints over real HTTP: authentication errors, orders, balances, trades."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from _sim_signing import KEY, SECRET, Signer, make_headers, new_oid, query_params

from aimax.exchange.simulator import MaxSimulator

ORDER = "/api/v3/wallet/spot/order"


def error_code(response: httpx.Response) -> int:
    body = response.json()
    assert body["success"] is False
    return int(body["error"]["code"])


def test_info_and_accounts(signer: Signer) -> None:
    info = signer.get("/api/v3/info")
    assert info.status_code == 200, info.text
    assert {"email", "level", "m_wallet_enabled", "current_vip_level"} <= set(info.json())
    accounts = signer.get("/api/v3/wallet/spot/accounts").json()
    by_currency = {a["currency"]: a for a in accounts}
    assert Decimal(by_currency["twd"]["balance"]) == Decimal("10000000")
    assert Decimal(by_currency["btc"]["balance"]) == 2
    assert by_currency["btc"]["locked"] == "0.0"
    one = signer.get("/api/v3/wallet/spot/accounts", {"currency": "eth"}).json()
    assert [a["currency"] for a in one] == ["eth"]
    assert Decimal(one[0]["balance"]) == 20
    margin = signer.get("/api/v3/wallet/m/accounts").json()
    assert all(Decimal(a["balance"]) == 0 for a in margin)
    assert signer.get("/api/v3/wallet/futures/accounts").status_code == 400


def test_order_lifecycle(sim: MaxSimulator, signer: Signer) -> None:
    sim.set_price("btctwd", "3000000")
    oid = new_oid()
    created = signer.post(
        ORDER,
        {
            "market": "btctwd",
            "side": "buy",
            "volume": "0.01",
            "price": "2900000",
            "ord_type": "limit",
            "client_oid": oid,
        },
    )
    assert created.status_code == 200, created.text
    order = created.json()
    assert order["state"] == "wait"
    assert order["client_oid"] == oid
    assert {
        "id",
        "market",
        "side",
        "ord_type",
        "price",
        "volume",
        "remaining_volume",
        "executed_volume",
        "avg_price",
        "created_at",
        "updated_at",
        "wallet_type",
    } <= set(order)
    by_id = signer.get("/api/v3/order", {"id": order["id"]}).json()
    by_oid = signer.get("/api/v3/order", {"client_oid": oid}).json()
    assert by_id == by_oid
    assert by_id["state"] == "wait"
    opened = signer.get("/api/v3/wallet/spot/orders/open", {"market": "btctwd"}).json()
    assert [o["id"] for o in opened] == [order["id"]]
    twd = signer.get("/api/v3/wallet/spot/accounts", {"currency": "twd"}).json()[0]
    assert Decimal(twd["locked"]) == Decimal("29000")
    # the market falls through the order: it fills as a maker
    sim.set_price("btctwd", "2800000")
    done = signer.get("/api/v3/order", {"id": order["id"]}).json()
    assert done["state"] == "done"
    assert done["executed_volume"] == "0.01"
    fills = signer.get("/api/v3/order/trades", {"order_id": order["id"]}).json()
    assert sum(Decimal(f["volume"]) for f in fills) == Decimal("0.01")
    assert signer.get("/api/v3/order/trades", {"client_oid": oid}).json() == fills
    mine = signer.get("/api/v3/wallet/spot/trades", {"market": "btctwd"}).json()
    assert {f["id"] for f in fills} <= {t["id"] for t in mine}
    closed = signer.get("/api/v3/wallet/spot/orders/closed", {"market": "btctwd"}).json()
    assert order["id"] in [o["id"] for o in closed]
    history = signer.get("/api/v3/wallet/spot/orders/history", {"market": "btctwd"}).json()
    assert order["id"] in [o["id"] for o in history]
    assert signer.get("/api/v3/wallet/spot/orders/open", {"market": "btctwd"}).json() == []


def test_cancel_by_id_and_client_oid_and_bulk(signer: Signer, sim: MaxSimulator) -> None:
    sim.set_price("ethtwd", "110000")
    made = []
    for i in range(4):
        r = signer.post(
            ORDER,
            {
                "market": "ethtwd",
                "side": "buy",
                "volume": "0.01",
                "price": str(100000 + i),
                "client_oid": new_oid(),
                "group_id": 7 if i >= 2 else 8,
            },
        )
        assert r.status_code == 200, r.text
        made.append(r.json())
    by_id = signer.delete("/api/v3/order", {"id": made[0]["id"]})
    assert by_id.status_code == 200
    assert by_id.json()["state"] == "cancel"
    by_oid = signer.delete("/api/v3/order", {"client_oid": made[1]["client_oid"]})
    assert by_oid.json()["id"] == made[1]["id"]
    assert by_oid.json()["state"] == "cancel"
    again = signer.delete("/api/v3/order", {"id": made[0]["id"]})
    assert error_code(again) == 2003
    missing = signer.delete("/api/v3/order", {"id": 10**9})
    assert missing.status_code == 404
    assert error_code(missing) == 2004
    bulk = signer.delete("/api/v3/wallet/spot/orders", {"market": "ethtwd", "group_id": 7})
    assert bulk.status_code == 200
    assert sorted(r["order"]["id"] for r in bulk.json()) == [made[2]["id"], made[3]["id"]]
    assert all(r["error"] is None and r["order"]["state"] == "cancel" for r in bulk.json())
    eth = signer.get("/api/v3/wallet/spot/accounts", {"currency": "twd"}).json()[0]
    assert Decimal(eth["locked"]) == 0


def test_client_oid_uniqueness_and_length(signer: Signer, sim: MaxSimulator) -> None:
    sim.set_price("btctwd", "3000000")
    oid = new_oid()
    params = {
        "market": "btctwd",
        "side": "buy",
        "volume": "0.001",
        "price": "2000000",
        "client_oid": oid,
    }
    assert signer.post(ORDER, params).status_code == 200
    duplicate = signer.post(ORDER, params)
    assert error_code(duplicate) == 2002  # answered 200 with an error body, as MAX may
    assert duplicate.status_code == 200
    too_long = signer.post(ORDER, {**params, "client_oid": "z" * 37})
    assert error_code(too_long) == 1001
    assert signer.post(ORDER, {**params, "client_oid": "z" * 36}).status_code == 200
    opened = signer.get("/api/v3/wallet/spot/orders/open").json()
    assert sorted(o["client_oid"] for o in opened) == sorted([oid, "z" * 36])


def test_order_errors(signer: Signer, sim: MaxSimulator) -> None:
    sim.set_price("btctwd", "3000000")
    base = {"market": "btctwd", "side": "buy", "price": "3000000"}
    assert error_code(signer.post(ORDER, {**base, "volume": "100"})) == 2018
    assert error_code(signer.post(ORDER, {**base, "volume": "0.00001"})) == 2016
    assert error_code(signer.post(ORDER, {**base, "volume": "abc"})) == 1001
    assert error_code(signer.post(ORDER, {**base, "market": "zzz", "volume": "1"})) == 1001
    sim.set_market_status("btctwd", "cancel-only")
    assert error_code(signer.post(ORDER, {**base, "volume": "0.001"})) == 2002


def test_every_order_type_is_accepted(signer: Signer, sim: MaxSimulator) -> None:
    sim.set_price("btctwd", "3000000")
    kinds: list[dict[str, Any]] = [
        {"ord_type": "market"},
        {"ord_type": "limit", "price": "2500000"},
        {"ord_type": "post_only", "price": "2500000"},
        {"ord_type": "ioc_limit", "price": "3100000"},
        {"ord_type": "stop_limit", "price": "3300000", "stop_price": "3200000"},
        {"ord_type": "stop_market", "stop_price": "3200000"},
    ]
    ids = []
    for extra in kinds:
        r = signer.post(ORDER, {"market": "btctwd", "side": "buy", "volume": "0.001", **extra})
        assert r.status_code == 200, (extra, r.text)
        assert "error" not in r.json(), (extra, r.text)
        assert r.json()["ord_type"] == extra["ord_type"]
        ids.append(r.json()["id"])
    states = [signer.get("/api/v3/order", {"id": i}).json()["state"] for i in ids]
    assert states == ["done", "wait", "wait", "done", "wait", "wait"]
    sim.set_price("btctwd", "3250000")  # triggers both stops
    states = [signer.get("/api/v3/order", {"id": i}).json()["state"] for i in ids[4:]]
    assert states == ["done", "done"]


def test_margin_wallet_is_separate(sim: MaxSimulator, signer: Signer) -> None:
    sim.add_account(KEY, SECRET, {"twd": "500000"}, wallet_type="m")
    sim.set_price("btctwd", "3000000")
    r = signer.post(
        "/api/v3/wallet/m/order",
        {"market": "btctwd", "side": "buy", "volume": "0.01", "price": "2000000"},
    )
    assert r.status_code == 200
    assert r.json()["wallet_type"] == "m"
    m_twd = signer.get("/api/v3/wallet/m/accounts", {"currency": "twd"}).json()[0]
    assert Decimal(m_twd["locked"]) == 20000
    spot_twd = signer.get("/api/v3/wallet/spot/accounts", {"currency": "twd"}).json()[0]
    assert Decimal(spot_twd["locked"]) == 0
    assert signer.get("/api/v3/wallet/spot/orders/open").json() == []
    assert len(signer.get("/api/v3/wallet/m/orders/open").json()) == 1


# ------------------------------------------------------------------ authentication


def test_missing_headers_and_unknown_key(http: httpx.Client) -> None:
    r = http.get("/api/v3/info")
    assert r.status_code == 401
    assert error_code(r) == 2001
    stranger = Signer(http, key="nobody", secret="nothing")
    r = stranger.get("/api/v3/info")
    assert r.status_code == 401
    assert error_code(r) == 2008


def test_bad_signatures(http: httpx.Client) -> None:
    wrong_secret = Signer(http, key=KEY, secret="not-the-secret")
    assert error_code(wrong_secret.get("/api/v3/info")) == 2005
    nonce = int(time.time() * 1000)
    headers = make_headers(KEY, SECRET, "/api/v3/info", {}, nonce)
    upper = {**headers, "X-MAX-SIGNATURE": headers["X-MAX-SIGNATURE"].upper()}
    r = http.get("/api/v3/info", params={"nonce": nonce}, headers=upper)
    assert r.status_code == 401
    assert error_code(r) == 2005
    ok = http.get("/api/v3/info", params={"nonce": nonce}, headers=headers)
    assert ok.status_code == 200, ok.text  # the failed tries did not burn the nonce


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p, q: ("/api/v3/order", p, q), id="path-differs"),
        pytest.param(lambda p, q: (None, {**p, "limit": 5}, q), id="query-has-more"),
        pytest.param(lambda p, q: (None, p, {**q, "market": "ethtwd"}), id="query-differs"),
    ],
)
def test_get_must_send_what_was_signed(
    http: httpx.Client, tamper: Callable[..., tuple[str | None, dict[str, Any], dict[str, Any]]]
) -> None:
    path = "/api/v3/wallet/spot/orders/open"
    nonce = int(time.time() * 1000)
    params: dict[str, Any] = {"nonce": nonce, "market": "btctwd"}
    signed_path, signed, sent = tamper({"market": "btctwd"}, dict(params))
    headers = make_headers(KEY, SECRET, signed_path or path, signed, nonce)
    r = http.get(path, params=query_params(sent), headers=headers)
    assert r.status_code == 400
    assert error_code(r) == 2014


def test_post_body_must_equal_the_payload(http: httpx.Client, sim: MaxSimulator) -> None:
    nonce = int(time.time() * 1000)
    params = {"market": "btctwd", "side": "buy", "volume": "0.001", "price": "2000000"}
    headers = make_headers(KEY, SECRET, ORDER, params, nonce)
    changed = {"nonce": nonce, **params, "volume": "0.002"}
    r = http.post(ORDER, content=json.dumps(changed), headers=headers)
    assert error_code(r) == 2014
    in_query = http.post(
        ORDER,
        params=query_params({"nonce": nonce, **params}),
        content=json.dumps({"nonce": nonce, **params}),
        headers=headers,
    )
    assert error_code(in_query) == 2014
    garbage = {**headers, "X-MAX-PAYLOAD": "%%%not-base64%%%"}
    garbage["X-MAX-SIGNATURE"] = make_headers(KEY, SECRET, ORDER, params, nonce)["X-MAX-SIGNATURE"]
    assert error_code(http.post(ORDER, content=b"{}", headers=garbage)) in (2005, 2014)
    r = http.post(ORDER, content=json.dumps({"nonce": nonce, **params}), headers=headers)
    assert r.status_code == 200, r.text


def test_payload_without_nonce_is_rejected(http: httpx.Client) -> None:
    payload = base64.b64encode(json.dumps({"path": "/api/v3/info"}).encode()).decode()
    import hashlib
    import hmac

    sig = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    headers = {"X-MAX-ACCESSKEY": KEY, "X-MAX-PAYLOAD": payload, "X-MAX-SIGNATURE": sig}
    assert error_code(http.get("/api/v3/info", headers=headers)) == 2014


def test_nonce_reuse_and_window(http: httpx.Client) -> None:
    nonce = int(time.time() * 1000)
    headers = make_headers(KEY, SECRET, "/api/v3/info", {}, nonce)
    assert http.get("/api/v3/info", params={"nonce": nonce}, headers=headers).status_code == 200
    again = http.get("/api/v3/info", params={"nonce": nonce}, headers=headers)
    assert again.status_code == 400
    assert error_code(again) == 2006
    for stale in (nonce - 31_000, nonce + 31_000):
        h = make_headers(KEY, SECRET, "/api/v3/info", {}, stale)
        r = http.get("/api/v3/info", params={"nonce": stale}, headers=h)
        assert error_code(r) == 2007
    # an older nonce that is still inside the window and unused is fine
    older = nonce - 5_000
    h = make_headers(KEY, SECRET, "/api/v3/info", {}, older)
    assert http.get("/api/v3/info", params={"nonce": older}, headers=h).status_code == 200


def test_nonce_window_on_a_fake_clock(fake_sim: tuple[MaxSimulator, Any]) -> None:
    sim, clock = fake_sim
    with httpx.Client(base_url=sim.url, timeout=30) as http:
        signer = Signer(http, now_ms=lambda: int(clock.time() * 1000))
        first = signer.nonce()
        assert signer.get("/api/v3/info").status_code == 200
        clock.advance(29.0)
        h = make_headers(KEY, SECRET, "/api/v3/info", {}, first - 1)
        assert http.get("/api/v3/info", params={"nonce": first - 1}, headers=h).status_code == 200
        clock.advance(2.0)  # now 31 s later
        h = make_headers(KEY, SECRET, "/api/v3/info", {}, first - 2)
        r = http.get("/api/v3/info", params={"nonce": first - 2}, headers=h)
        assert error_code(r) == 2007


def test_off_precision_and_absurd_amounts_are_clean_1001s(
    signer: Signer, sim: MaxSimulator
) -> None:
    """Issue 15: no silent truncation, and nothing crashes the handler (5999)."""
    sim.set_price("btctwd", "3000000")  # btctwd: quote precision 1, base precision 8
    base = {"market": "btctwd", "side": "buy", "price": "2000000", "volume": "0.001"}
    cases = [
        ({"price": "1500000.65"}, "1500000.65"),
        ({"volume": "0.000100001"}, "0.000100001"),
        ({"ord_type": "stop_limit", "stop_price": "3100000.05"}, "3100000.05"),
    ]
    for change, named in cases:
        response = signer.post(ORDER, {**base, **change})
        assert response.status_code == 400, change
        body = response.json()
        assert body["success"] is False
        assert body["error"]["code"] == 1001
        assert named in body["error"]["message"]
    for absurd in ("1e400", "-1e400", "1e-400", "NaN", "Infinity", "-inf", "1E+999999999999999999"):
        for name in ("volume", "price"):
            response = signer.post(ORDER, {**base, name: absurd})
            assert response.status_code == 400, (name, absurd)
            assert error_code(response) == 1001, (name, absurd)
    assert signer.post(ORDER, {**base, "volume": "1e99999999999999999999999"}).status_code == 400
    # on-grid values are still accepted as they are
    placed = signer.post(ORDER, {**base, "price": "1500000.6"})
    assert placed.status_code == 200
    assert placed.json()["price"] == "1500000.6"
    assert sim.stats().requests >= 1  # still serving
