"""Fixtures for the MAX client tests.

``fake_max`` is a small MAX-like aiohttp server of our own on loopback, running in
its own thread and event loop (so blocking facade calls from the test thread work
too). It checks signatures and payload consistency the documented way, rejects
reused nonces (2006), records every request, and lets a test script answers per
route (status, JSON, headers, delay). ``RecordingLimiter`` stands in for the
limiter where a test inspects what the client asked of it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

ACCESS_KEY = "test-access-key-AK"
SECRET_KEY = "test-secret-key-S3CR3T-do-not-log"


@dataclass
class Recorded:
    method: str
    path: str
    query: list[tuple[str, str]]
    raw_query: str
    body: bytes
    headers: dict[str, str]
    nonce: int | None = None


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Handler = Callable[[Recorded], Reply]


class FakeMax:
    """A scripted MAX-like server: signature checks + recorded requests + canned replies."""

    Reply = Reply
    access_key = ACCESS_KEY
    secret_key = SECRET_KEY

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: dict[tuple[str, str], Handler] = {}
        self.used_nonces: set[int] = set()
        self.secret = SECRET_KEY.encode()
        self.server_time = None  # type: int | None
        self.lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    # ----------------------------------------------------------- scripting

    def route(self, method: str, path: str, handler: Handler | Reply | Any) -> None:
        if isinstance(handler, Reply):
            reply = handler
            self.routes[(method, path)] = lambda _r: reply
        elif callable(handler):
            self.routes[(method, path)] = handler
        else:
            body = handler
            self.routes[(method, path)] = lambda _r: Reply(body=body)

    @staticmethod
    def err(code: int, message: str = "error", status: int = 400, **headers: str) -> Reply:
        return Reply(
            status=status,
            body={"success": False, "error": {"code": code, "message": message}},
            headers=dict(headers),
        )

    def calls(self, method: str, path: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------- serving

    def _verify(self, rec: Recorded) -> Reply | None:
        headers = rec.headers
        if "X-MAX-ACCESSKEY" not in headers:
            return None  # public
        if headers["X-MAX-ACCESSKEY"] != ACCESS_KEY:
            return _err(2008, "invalid access key", 401)
        payload = headers.get("X-MAX-PAYLOAD", "")
        expected = hmac.new(self.secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-MAX-SIGNATURE", "")):
            return _err(2005, "bad signature", 401)
        decoded = json.loads(base64.b64decode(payload))
        if decoded.get("path") != rec.path:
            return _err(2014, "path mismatch", 400)
        params = {k: v for k, v in decoded.items() if k != "path"}
        if rec.method == "GET":
            sent: dict[str, Any] = {}
            for key, value in rec.query:
                if key.endswith("[]"):
                    sent.setdefault(key[:-2], []).append(value)
                else:
                    sent[key] = value
            as_text = {
                k: [str(x) for x in v] if isinstance(v, list) else _text(v)
                for k, v in params.items()
            }
            if as_text != sent:
                return _err(2014, "query differs from payload", 400)
        elif json.loads(rec.body or b"{}") != params:
            return _err(2014, "body differs from payload", 400)
        nonce = int(params["nonce"])
        rec.nonce = nonce
        with self.lock:
            if nonce in self.used_nonces:
                return _err(2006, "nonce already used", 400)
            self.used_nonces.add(nonce)
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        rec = Recorded(
            method=request.method,
            path=request.path,
            query=list(request.rel_url.query.items()),
            raw_query=request.rel_url.raw_query_string,
            body=body,
            headers=dict(request.headers),
        )
        with self.lock:
            self.requests.append(rec)
        reply = self._verify(rec)
        if reply is None:
            handler = self.routes.get((request.method, request.path))
            reply = handler(rec) if handler is not None else _err(1001, "no such route", 404)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(
            status=reply.status,
            body=json.dumps(reply.body).encode(),
            headers={"Content-Type": "application/json", **reply.headers},
        )

    def start(self) -> FakeMax:
        self._thread.start()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

        async def boot() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            await site.start()

        asyncio.run_coroutine_threadsafe(boot(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _err(code: int, message: str, status: int) -> Reply:
    return Reply(
        status=status, body={"success": False, "error": {"code": code, "message": message}}
    )


class RecordingLimiter:
    """Grants at once and records every acquire and every response fed back."""

    def __init__(self) -> None:
        self.acquired: list[tuple[str, str | None]] = []
        self.responses: list[tuple[int, str | None, str | None]] = []
        self.lock = threading.Lock()
        self.closed = False

    async def acquire_async(
        self,
        kind: str,
        *,
        cost: int | None = None,
        pair: str | None = None,
        timeout: float | None = None,
    ) -> object:
        with self.lock:
            self.acquired.append((kind, pair))
        return None

    def on_response(
        self, status: int, headers: Mapping[str, str], *, kind: str | None = None
    ) -> object:
        with self.lock:
            self.responses.append((status, headers.get("Retry-After"), kind))
        return None

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_max() -> Iterator[FakeMax]:
    server = FakeMax().start()
    server.route("GET", "/api/v3/timestamp", lambda _r: Reply(body={"timestamp": _now_s()}))
    try:
        yield server
    finally:
        server.stop()


def _now_s() -> int:
    import time

    return int(time.time())


@pytest.fixture
def limiter() -> RecordingLimiter:
    return RecordingLimiter()


@pytest.fixture(autouse=True)
def _no_thread_left_behind() -> Iterator[None]:
    """Every test must stop what it started (sync facades, servers, simulators)."""
    before = set(threading.enumerate())
    yield
    import time

    deadline = time.monotonic() + 10.0
    while True:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not extra, [t.name for t in extra]
