"""MAX request signing written from the documented steps (never imported from the
client), for the simulator's tests:

1. ``params = {"nonce": <unix ms>, ...request params}``
2. ``payload = base64(json({...params, "path": path}))`` -> ``X-MAX-PAYLOAD``
3. ``X-MAX-SIGNATURE = hex(hmac_sha256(secret, payload))`` (lowercase)
4. GET sends ``params`` as the query string (``markets[]=a&markets[]=b``), POST and
   DELETE as the JSON body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

KEY = "test-access-key-0001"
SECRET = "test-secret-key-0001"
START_BALANCES = {"twd": "10000000", "btc": "2", "eth": "20", "usdt": "50000"}


def make_headers(
    key: str, secret: str, path: str, params: Mapping[str, Any], nonce: int
) -> dict[str, str]:
    """Steps 1-3 of MAX's signing."""
    to_sign = {"nonce": nonce, **params, "path": path}
    payload = base64.b64encode(json.dumps(to_sign).encode()).decode()
    signature = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return {
        "X-MAX-ACCESSKEY": key,
        "X-MAX-PAYLOAD": payload,
        "X-MAX-SIGNATURE": signature,
        "Content-Type": "application/json",
    }


def query_params(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Step 4 for GET: arrays as ``k[]=v`` pairs."""
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, list):
            out.extend((f"{key}[]", str(v)) for v in value)
        else:
            out.append((key, str(value)))
    return out


class Signer:
    """Sends signed requests to a simulator; nonces strictly increasing."""

    def __init__(
        self,
        client: httpx.Client,
        key: str = KEY,
        secret: str = SECRET,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.client = client
        self.key = key
        self.secret = secret
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self._last = 0

    def nonce(self) -> int:
        with self._lock:
            now = self._now_ms() if self._now_ms else int(time.time() * 1000)
            self._last = max(now, self._last + 1)
            return self._last

    def get(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> httpx.Response:
        nonce = self.nonce()
        signed = {"nonce": nonce, **(params or {})}
        headers = make_headers(self.key, self.secret, path, params or {}, nonce)
        return self.client.get(path, params=query_params(signed), headers=headers, **kw)

    def send(
        self, method: str, path: str, params: Mapping[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        nonce = self.nonce()
        body = {"nonce": nonce, **(params or {})}
        headers = make_headers(self.key, self.secret, path, params or {}, nonce)
        return self.client.request(method, path, content=json.dumps(body), headers=headers, **kw)

    def post(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> httpx.Response:
        return self.send("POST", path, params, **kw)

    def delete(
        self, path: str, params: Mapping[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        return self.send("DELETE", path, params, **kw)


_oid = itertools.count(1)


def new_oid() -> str:
    return f"test-oid-{next(_oid):08d}"
