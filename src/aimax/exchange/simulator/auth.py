"""MAX's request signing, checked the way the exchange does it (pure: ``now`` passed in).

The documented steps, verified in this order:

1. ``X-MAX-ACCESSKEY``, ``X-MAX-PAYLOAD`` and ``X-MAX-SIGNATURE`` must all be there
   (2001), and the key must belong to an account (2008);
2. ``X-MAX-SIGNATURE`` must be the lowercase hex HMAC-SHA256 of the payload header
   under the account's secret (2005);
3. the payload must be base64 JSON holding ``nonce`` and ``path``, ``path`` must be
   the request's path, and the other members must be exactly the parameters sent:
   the query string for GET (``markets[]=a&markets[]=b`` is ``"markets": [...]``),
   the JSON body for POST and DELETE (2014);
4. the nonce (milliseconds) must be within ``nonce_window`` of the server's clock
   (2007) and never used before by that key (2006).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import json
from collections.abc import Mapping, Sequence

from aimax.exchange.simulator.core import Rejection

__all__ = ["NonceBook", "normalise_query", "verify_payload", "verify_signature"]


def verify_signature(secret: bytes, payload: str, signature: str) -> None:
    """Raise 2005 unless ``signature`` is the lowercase hex HMAC-SHA256 of ``payload``."""
    expected = hmac.new(secret, payload.encode("ascii", "replace"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Rejection(2005, "signature is incorrect", 401)


def normalise_query(pairs: Sequence[tuple[str, str]]) -> dict[str, object]:
    """Query pairs as a params dict: ``k[]`` keys collect into lists under ``k``."""
    out: dict[str, object] = {}
    for key, value in pairs:
        if key.endswith("[]"):
            bucket = out.setdefault(key[:-2], [])
            if not isinstance(bucket, list):
                raise Rejection(2014, f"parameter {key[:-2]} given both as a scalar and a list")
            bucket.append(value)
        else:
            if key in out:
                raise Rejection(2014, f"parameter {key} given twice")
            out[key] = value
    return out


def _as_query_value(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [_as_query_value(v) for v in value]
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def verify_payload(
    payload_header: str,
    *,
    path: str,
    method: str,
    query: Mapping[str, object],
    body: Mapping[str, object] | None,
) -> tuple[int, dict[str, object]]:
    """Decode the payload, check it against what was sent; return ``(nonce, params)``.

    ``params`` are the request's parameters (without ``nonce`` and ``path``).
    """
    try:
        decoded = json.loads(base64.b64decode(payload_header, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Rejection(2014, "payload is not base64-encoded JSON", 400) from None
    if not isinstance(decoded, dict):
        raise Rejection(2014, "payload must be a JSON object", 400)
    if decoded.get("path") != path:
        raise Rejection(2014, f"payload path does not match the request path {path}", 400)
    nonce = decoded.get("nonce")
    if isinstance(nonce, str) and nonce.isdigit():
        nonce = int(nonce)
    if isinstance(nonce, bool) or not isinstance(nonce, int):
        raise Rejection(2014, "payload has no integer nonce", 400)
    signed = {k.removesuffix("[]"): v for k, v in decoded.items() if k != "path"}
    if body is not None:
        body = {k.removesuffix("[]"): v for k, v in body.items()}
    if method == "GET":
        if body is not None:
            raise Rejection(2014, "GET parameters belong in the query string", 400)
        sent = dict(query)
        signed_as_sent = {k: _as_query_value(v) for k, v in signed.items()}
        if signed_as_sent != sent:
            raise Rejection(2014, "the query string differs from the signed payload", 400)
    else:
        if query or body is None:
            raise Rejection(2014, f"{method} parameters belong in the JSON body", 400)
        if dict(body) != signed:
            raise Rejection(2014, "the JSON body differs from the signed payload", 400)
    params = {k: v for k, v in signed.items() if k != "nonce"}
    return nonce, params


class NonceBook:
    """Nonces seen per access key: each usable once, within ``window`` of the server clock.

    ``strict=True`` also refuses (2006) a nonce not greater than the last one accepted
    for the key, as a widely used MAX client says MAX does: then the order in which
    requests arrive must be the order of their nonces.

    ::

        >>> book = NonceBook(window=30.0)
        >>> book.check("key", 1_000_000, now=1000.0)
        >>> book.check("key", 1_000_000, now=1000.5)
        Traceback (most recent call last):
        ...
        aimax.exchange.simulator.core.Rejection: MAX error 2006: nonce 1000000 was already used
        >>> strict = NonceBook(window=30.0, strict=True)
        >>> strict.check("key", 1_000_002, now=1000.0)
        >>> strict.check("key", 1_000_001, now=1000.0)
        Traceback (most recent call last):
        ...
        aimax.exchange.simulator.core.Rejection: MAX error 2006: nonce 1000001 is not above 1000002
    """

    def __init__(self, *, window: float, strict: bool = False) -> None:
        self.window_ms = int(window * 1000)
        self.strict = bool(strict)
        self._last: dict[str, int] = {}
        self.out_of_order = 0
        """Nonces that arrived not above their key's last one (refused when strict)."""
        self._seen: dict[str, set[int]] = {}
        self._heaps: dict[str, list[int]] = {}

    def check(self, key: str, nonce: int, now: float) -> None:
        """Accept ``nonce`` for ``key`` at ``now`` (seconds) or raise 2007 / 2006."""
        now_ms = int(now * 1000)
        if abs(nonce - now_ms) > self.window_ms:
            raise Rejection(
                2007, f"nonce {nonce} is not within {self.window_ms} ms of {now_ms}", 400
            )
        seen = self._seen.setdefault(key, set())
        heap = self._heaps.setdefault(key, [])
        # forget nonces that can no longer pass the window check (oldest first)
        horizon = now_ms - self.window_ms
        while heap and heap[0] < horizon:
            seen.discard(heapq.heappop(heap))
        if nonce in seen:
            raise Rejection(2006, f"nonce {nonce} was already used", 400)
        last = self._last.get(key, 0)
        if nonce <= last:
            self.out_of_order += 1
        if self.strict and nonce <= last:
            raise Rejection(2006, f"nonce {nonce} is not above {last}", 400)
        self._last[key] = max(last, nonce)
        seen.add(nonce)
        heapq.heappush(heap, nonce)
