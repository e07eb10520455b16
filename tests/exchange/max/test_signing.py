"""Signing: fixed test vectors computed independently from MAX's documented steps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimax.errors import ConfigurationError
from aimax.exchange.max.signing import encode_query, hmac_signature, sign_request

KEY = "vec-access-key"
SECRET = "vec-secret-0123456789abcdef"
NONCE = 1_700_000_000_123


def _documented(secret: str, path: str, params_json_without_braces: str) -> tuple[str, str]:
    """The documented steps, written out by hand: JSON text -> base64 -> HMAC-SHA256 hex."""
    # 1-2: {"nonce": ..., ...params, "path": ...} serialised as JSON (compact separators)
    inner = f'"nonce":{NONCE}'
    if params_json_without_braces:
        inner += "," + params_json_without_braces
    to_sign = "{" + inner + f',"path":"{path}"' + "}"
    # 3: base64 of the JSON text is the X-MAX-PAYLOAD header
    payload = base64.b64encode(to_sign.encode()).decode()
    # 4: lowercase hex HMAC-SHA256(secret, payload)
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return payload, signature


@pytest.mark.parametrize(
    ("path", "params", "params_text"),
    [
        ("/api/v3/info", {}, ""),
        ("/api/v3/wallet/spot/accounts", {"currency": "btc"}, '"currency":"btc"'),
        (
            "/api/v3/wallet/spot/order",
            {
                "market": "btctwd",
                "side": "buy",
                "volume": "0.01",
                "price": "1500000",
                "ord_type": "limit",
                "client_oid": "vec-1",
            },
            '"market":"btctwd","side":"buy","volume":"0.01","price":"1500000",'
            '"ord_type":"limit","client_oid":"vec-1"',
        ),
        ("/api/v3/order", {"id": 42}, '"id":42'),
        ("/api/v3/x", {"markets": ["btctwd", "ethtwd"]}, '"markets":["btctwd","ethtwd"]'),
    ],
)
def test_signature_matches_the_documented_computation(
    path: str, params: dict[str, object], params_text: str
) -> None:
    payload, signature = _documented(SECRET, path, params_text)
    signed = sign_request(SECRET, path, params, nonce=NONCE)  # type: ignore[arg-type]
    assert signed.payload == payload
    assert signed.signature == signature
    assert signed.signature == signed.signature.lower()
    assert len(signed.signature) == 64
    headers = signed.headers(KEY)
    assert headers["X-MAX-ACCESSKEY"] == KEY
    assert headers["X-MAX-PAYLOAD"] == payload
    assert headers["X-MAX-SIGNATURE"] == signature
    # the body is the signed JSON less its path member, byte for byte
    assert signed.signed == base64.b64decode(payload)
    path_member = f',"path":"{path}"'.encode()
    assert signed.signed == signed.body[:-1] + path_member + b"}"


def test_fixed_vector_constant() -> None:
    # One vector pinned as a constant (computed once with the hand-written steps above),
    # so an accidental change of the JSON encoding cannot pass silently.
    signed = sign_request(SECRET, "/api/v3/info", {}, nonce=NONCE)
    assert signed.payload == "eyJub25jZSI6MTcwMDAwMDAwMDEyMywicGF0aCI6Ii9hcGkvdjMvaW5mbyJ9"
    assert signed.signature == "08915952a59b79852a6c0cfd048ca960a1477f7c5f0ec07fb79072dbd896966a"
    assert _documented(SECRET, "/api/v3/info", "")[1] == signed.signature
    assert hmac_signature(SECRET, signed.payload) == signed.signature
    assert hmac_signature(SECRET.encode(), signed.payload) == signed.signature


def test_get_query_carries_the_signed_params() -> None:
    signed = sign_request(SECRET, "/api/v3/x", {"markets": ["a1", "b2"], "limit": 5}, nonce=NONCE)
    pairs = encode_query(signed.params)
    assert pairs == [
        ("nonce", str(NONCE)),
        ("markets[]", "a1"),
        ("markets[]", "b2"),
        ("limit", "5"),
    ]


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="path"):
        sign_request(SECRET, "api/v3/info", {}, nonce=NONCE)
    with pytest.raises(ConfigurationError, match="nonce"):
        sign_request(SECRET, "/api/v3/info", {}, nonce=0)
    with pytest.raises(ConfigurationError, match="nonce"):
        sign_request(SECRET, "/api/v3/info", {"nonce": 1}, nonce=NONCE)
    with pytest.raises(ConfigurationError, match="path"):
        sign_request(SECRET, "/api/v3/info", {"path": "/x"}, nonce=NONCE)


_keys = st.sampled_from(["market", "side", "volume", "price", "limit", "x_y", "client_oid"])
_values = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.integers(min_value=0, max_value=10**12),
    st.lists(st.text(alphabet="abcxyz0123", min_size=1, max_size=6), min_size=1, max_size=4),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(params=st.dictionaries(_keys, _values, max_size=5), nonce=st.integers(1, 2**53))
def test_roundtrip_property(params: dict[str, object], nonce: int) -> None:
    """Whatever the params: payload decodes to params+nonce+path, the body to params+nonce,
    the signature verifies, and the GET query string decodes back to the same values."""
    signed = sign_request(SECRET, "/api/v3/p", params, nonce=nonce)  # type: ignore[arg-type]
    decoded = json.loads(base64.b64decode(signed.payload))
    assert decoded == {"nonce": nonce, **params, "path": "/api/v3/p"}
    assert json.loads(signed.body) == {"nonce": nonce, **params}
    expected = hmac.new(SECRET.encode(), signed.payload.encode(), hashlib.sha256).hexdigest()
    assert signed.signature == expected
    from urllib.parse import urlencode

    query = parse_qsl(urlencode(encode_query(signed.params)), keep_blank_values=True)
    rebuilt: dict[str, object] = {}
    for key, value in query:
        if key.endswith("[]"):
            rebuilt.setdefault(key[:-2], []).append(value)  # type: ignore[union-attr]
        else:
            rebuilt[key] = value
    assert rebuilt == {
        k: v if isinstance(v, list) else str(v) for k, v in {"nonce": nonce, **params}.items()
    }
