"""MAX REST v3 request signing (pure: no I/O, no clock).

MAX documents the steps as:

1. ``params = {"nonce": <unix milliseconds>, ...request params}``
2. ``to_sign = {...params, "path": "/api/v3/..."}``, serialised as JSON and base64
   encoded: that string is the ``X-MAX-PAYLOAD`` header;
3. ``X-MAX-SIGNATURE`` is the lowercase hex HMAC-SHA256 of the payload string, keyed
   with the secret;
4. a GET sends ``params`` as the query string (arrays as ``markets[]=a&markets[]=b``);
   POST and DELETE send ``params`` as the JSON body.

One compact JSON encoding serves both the payload and the body, so the body is byte
for byte the signed JSON without its trailing ``"path"`` member: what is sent is
exactly what was signed (the server checks ``payload - path == params sent``).

::

    >>> signed = sign_request("secret", "/api/v3/info", {"a": "1"}, nonce=1700000000000)
    >>> signed.signed
    b'{"nonce":1700000000000,"a":"1","path":"/api/v3/info"}'
    >>> signed.body
    b'{"nonce":1700000000000,"a":"1"}'
    >>> len(signed.signature), signed.signature == signed.signature.lower()
    (64, True)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aimax.errors import ConfigurationError

__all__ = [
    "ParamValue",
    "SignedRequest",
    "encode_json",
    "encode_query",
    "hmac_signature",
    "sign_request",
]

ParamValue = str | int | bool | Sequence[str]
"""What a request parameter may hold: strings (prices and volumes are sent as decimal
strings), integers, booleans, or a list of strings (sent as ``key[]=`` in a query)."""


def encode_json(obj: Mapping[str, object]) -> bytes:
    """The one JSON encoding used for both the payload and the body (compact, ASCII)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def hmac_signature(secret: str | bytes, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of the payload string, keyed with the secret."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, payload.encode("ascii"), hashlib.sha256).hexdigest()


def encode_query(params: Mapping[str, ParamValue]) -> list[tuple[str, str]]:
    """Query-string pairs for ``params``: lists become repeated ``key[]=`` pairs.

    >>> encode_query({"markets": ["btctwd", "ethtwd"], "limit": 5})
    [('markets[]', 'btctwd'), ('markets[]', 'ethtwd'), ('limit', '5')]
    """
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int):
            pairs.append((key, str(value)))
        else:
            pairs.extend((f"{key}[]", str(item)) for item in value)
    return pairs


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a signed call sends: the params (with the nonce), the JSON body, the headers.

    The access key and secret are deliberately not stored here.
    """

    path: str
    nonce: int
    params: Mapping[str, ParamValue]
    """The request params with ``nonce`` first (sent as the query string of a GET)."""
    signed: bytes
    """The JSON that was base64-encoded into the payload (params, then ``path``)."""
    body: bytes
    """The JSON of ``params`` (sent as a POST/DELETE body): ``signed`` less ``path``."""
    payload: str
    signature: str

    def headers(self, access_key: str) -> dict[str, str]:
        """The MAX authentication headers for this request."""
        return {
            "X-MAX-ACCESSKEY": access_key,
            "X-MAX-PAYLOAD": self.payload,
            "X-MAX-SIGNATURE": self.signature,
            "Content-Type": "application/json",
        }


def sign_request(
    secret: str | bytes,
    path: str,
    params: Mapping[str, ParamValue],
    *,
    nonce: int,
) -> SignedRequest:
    """Sign one private call as MAX documents it (see the module docstring).

    ``params`` must not contain ``nonce`` or ``path`` themselves: they are added here.
    """
    if not path.startswith("/"):
        raise ConfigurationError(f"path must start with '/', got {path!r}")
    if isinstance(nonce, bool) or not isinstance(nonce, int) or nonce <= 0:
        raise ConfigurationError(f"nonce must be a positive integer, got {nonce!r}")
    for reserved in ("nonce", "path"):
        if reserved in params:
            raise ConfigurationError(f"params must not contain {reserved!r}: it is added here")
    with_nonce: dict[str, ParamValue] = {"nonce": nonce}
    for key, value in params.items():
        with_nonce[key] = value if isinstance(value, str | int | bool) else list(value)
    to_sign: dict[str, object] = {**with_nonce, "path": path}
    signed = encode_json(to_sign)
    payload = base64.b64encode(signed).decode("ascii")
    return SignedRequest(
        path=path,
        nonce=nonce,
        params=with_nonce,
        signed=signed,
        body=encode_json(with_nonce),
        payload=payload,
        signature=hmac_signature(secret, payload),
    )
