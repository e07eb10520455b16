"""The pure signing checks: payload decoding and consistency, nonce book, signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest
from _sim_signing import KEY, SECRET, START_BALANCES, make_headers
from hypothesis import given, settings
from hypothesis import strategies as st

from aimax.exchange.simulator import MaxSimulator, NonceBook, Rejection, SimulatorConfig
from aimax.exchange.simulator.auth import normalise_query, verify_payload, verify_signature


def b64(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def test_signature_is_lowercase_hex_hmac_sha256() -> None:
    # a fixed vector computed from the documented steps
    payload = b64({"nonce": 1700000000000, "path": "/api/v3/info"})
    assert payload == "eyJub25jZSI6IDE3MDAwMDAwMDAwMDAsICJwYXRoIjogIi9hcGkvdjMvaW5mbyJ9"
    good = hmac.new(b"secret", payload.encode(), hashlib.sha256).hexdigest()
    verify_signature(b"secret", payload, good)
    for bad in (good.upper(), good[:-1], "", good + "0"):
        with pytest.raises(Rejection) as info:
            verify_signature(b"secret", payload, bad)
        assert (info.value.code, info.value.status) == (2005, 401)


def test_query_arrays_and_duplicates() -> None:
    assert normalise_query([("markets[]", "a"), ("markets[]", "b"), ("nonce", "1")]) == {
        "markets": ["a", "b"],
        "nonce": "1",
    }
    with pytest.raises(Rejection):
        normalise_query([("limit", "1"), ("limit", "2")])


def test_get_payload_matches_the_query_string() -> None:
    signed = {"nonce": 5, "markets": ["a", "b"], "limit": 10, "path": "/api/v3/x"}
    query = normalise_query(
        [("nonce", "5"), ("markets[]", "a"), ("markets[]", "b"), ("limit", "10")]
    )
    nonce, params = verify_payload(
        b64(signed), path="/api/v3/x", method="GET", query=query, body=None
    )
    assert nonce == 5
    assert params == {"markets": ["a", "b"], "limit": 10}
    # the payload may also spell the array key with brackets
    signed2 = {"nonce": 5, "markets[]": ["a", "b"], "limit": 10, "path": "/api/v3/x"}
    verify_payload(b64(signed2), path="/api/v3/x", method="GET", query=query, body=None)
    for wrong in (
        {**signed, "path": "/api/v3/y"},
        {**signed, "limit": 11},
        {k: v for k, v in signed.items() if k != "limit"},
        {**signed, "markets": ["b", "a"]},
    ):
        with pytest.raises(Rejection) as info:
            verify_payload(b64(wrong), path="/api/v3/x", method="GET", query=query, body=None)
        assert info.value.code == 2014


def test_body_payload_must_be_identical() -> None:
    body = {"nonce": 9, "market": "btctwd", "volume": "0.1"}
    signed = {**body, "path": "/p"}
    nonce, params = verify_payload(b64(signed), path="/p", method="POST", query={}, body=body)
    assert (nonce, params) == (9, {"market": "btctwd", "volume": "0.1"})
    for wrong_body in ({**body, "volume": 0.1}, {**body, "extra": 1}, {"nonce": 9}):
        with pytest.raises(Rejection):
            verify_payload(b64(signed), path="/p", method="POST", query={}, body=wrong_body)
    with pytest.raises(Rejection):  # params in the query of a POST
        verify_payload(b64(signed), path="/p", method="POST", query={"market": "x"}, body=body)
    with pytest.raises(Rejection):  # a DELETE without its JSON body
        verify_payload(b64(signed), path="/p", method="DELETE", query={"nonce": "9"}, body=None)
    with pytest.raises(Rejection):  # a GET with a body
        verify_payload(b64(signed), path="/p", method="GET", query={}, body=body)


@pytest.mark.parametrize(
    "header",
    [
        "!!!",
        base64.b64encode(b"not json").decode(),
        b64([1, 2]),
        b64({"path": "/p"}),
        b64({"path": "/p", "nonce": "abc"}),
        b64({"path": "/p", "nonce": True}),
    ],
)
def test_malformed_payloads(header: str) -> None:
    with pytest.raises(Rejection) as info:
        verify_payload(header, path="/p", method="GET", query={}, body=None)
    assert info.value.code == 2014


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=20_000),  # ms the server clock moves
            st.integers(min_value=-40_000, max_value=40_000),  # nonce offset from the clock
        ),
        min_size=1,
        max_size=80,
    )
)
def test_each_nonce_once_and_only_within_the_window(steps: list[tuple[int, int]]) -> None:
    book = NonceBook(window=30.0)
    now_ms = 1_800_000_000_000
    used: set[int] = set()
    for advance, offset in steps:
        now_ms += advance
        nonce = now_ms + offset
        # quantise so repeats actually happen
        nonce -= nonce % 1000
        if abs(nonce - now_ms) > 30_000:
            expected: int | None = 2007
        elif nonce in used:
            expected = 2006
        else:
            expected = None
        if expected is None:
            book.check("k", nonce, now_ms / 1000)
            used.add(nonce)
        else:
            with pytest.raises(Rejection) as info:
                book.check("k", nonce, now_ms / 1000)
            assert info.value.code == expected
    other = NonceBook(window=30.0)
    other.check("a", now_ms, now_ms / 1000)
    other.check("b", now_ms, now_ms / 1000)  # keys have their own nonces


def test_strict_nonces_refuse_a_nonce_not_above_the_last() -> None:
    """Strict mode (as MAX may be): any nonce not greater than the key's last one is
    refused with 2006; the lenient mode accepts any unused nonce in the window."""
    now_ms = int(time.time() * 1000)
    answers: dict[bool, list[int]] = {}
    for strict in (True, False):
        config = SimulatorConfig(n_markets=2, history_seconds=0, strict_nonces=strict)
        with MaxSimulator(config) as sim, httpx.Client(base_url=sim.url) as http:
            sim.add_account(KEY, SECRET, START_BALANCES)
            codes = []
            for nonce in (now_ms + 2, now_ms + 1, now_ms + 3, now_ms + 3):
                headers = make_headers(KEY, SECRET, "/api/v3/info", {}, nonce)
                reply = http.get("/api/v3/info", params={"nonce": nonce}, headers=headers)
                codes.append(reply.json().get("error", {}).get("code", 0))
            answers[strict] = codes
            assert sim.stats().nonce_rejections == sum(1 for c in codes if c)
            assert sim.stats().nonces_out_of_order == 1  # counted, refused only if strict
    assert answers[True] == [0, 2006, 0, 2006]
    assert answers[False] == [0, 0, 0, 2006]
