"""Readings of the process's memory, through one replaceable seam.

:class:`MemoryProbe` is the protocol the manager reads through; :class:`SystemProbe`
reads the real figures on Linux (and falls back to psutil elsewhere);
:class:`FakeProbe` is a hand-set probe for tests and simulations.

=================  ============================================  ==============
reading            source                                        cost
=================  ============================================  ==============
``rss()``          ``/proc/self/statm`` (psutil elsewhere)       one tiny read
``uss()``          psutil ``memory_full_info()`` (smaps walk)    expensive
``cgroup()``       the process's own cgroup v2 / v1 limit files  a few reads
``physical()``     ``/proc/meminfo`` ``MemTotal`` (sysconf)      one read
``malloc_free()``  glibc ``mallinfo2()`` free-held bytes         cheap, glibc
``trim()``         glibc ``malloc_trim(0)``                      an action
=================  ============================================  ==============

Every path is read under ``root`` (default ``/``) so tests point the probe at a
fixture tree::

    >>> probe = SystemProbe()
    >>> probe.rss() > 0
    True
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from aimax.memory.cgroup import CgroupLimits, read_cgroup_limits

if TYPE_CHECKING:
    from aimax.monitor.probe import SystemProbe as ProcessProbe

__all__ = ["FakeProbe", "MemoryProbe", "SystemProbe", "glibc_malloc_free", "glibc_malloc_trim"]

_log = logging.getLogger(__name__)


@runtime_checkable
class MemoryProbe(Protocol):
    """Where the memory manager gets its figures (and its one OS action, ``trim``)."""

    def rss(self) -> int:
        """Resident set size of this process in bytes (cheap: read every tick)."""
        ...

    def uss(self) -> int | None:
        """Unique set size in bytes (expensive: read rarely), ``None`` if unknown."""
        ...

    def cgroup(self) -> CgroupLimits:
        """The memory limits of the process's own cgroup."""
        ...

    def physical(self) -> int:
        """Physical memory of the machine in bytes."""
        ...

    def malloc_free(self) -> int | None:
        """Bytes the C allocator holds free (not returned to the OS), ``None`` if unknown."""
        ...

    def trim(self) -> bool:
        """Ask the C allocator to give free memory back (``malloc_trim(0)``).

        Returns whether anything was released (``False`` where unsupported).
        """
        ...


# --------------------------------------------------------------------------- glibc


class _Mallinfo2(ctypes.Structure):
    # glibc >= 2.33: every field is a size_t (mallinfo's ints overflow above 2 GiB).
    _fields_ = [
        ("arena", ctypes.c_size_t),
        ("ordblks", ctypes.c_size_t),
        ("smblks", ctypes.c_size_t),
        ("hblks", ctypes.c_size_t),
        ("hblkhd", ctypes.c_size_t),
        ("usmblks", ctypes.c_size_t),
        ("fsmblks", ctypes.c_size_t),
        ("uordblks", ctypes.c_size_t),
        ("fordblks", ctypes.c_size_t),
        ("keepcost", ctypes.c_size_t),
    ]


class _Libc:
    """glibc's ``mallinfo2`` and ``malloc_trim``, looked up once, lazily (never at import)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self.mallinfo2: Callable[[], _Mallinfo2] | None = None
        self.malloc_trim: Callable[[int], int] | None = None

    def load(self) -> _Libc:
        with self._lock:
            if self._loaded:
                return self
            self._loaded = True
            if not sys.platform.startswith("linux"):
                return self
            name = ctypes.util.find_library("c") or "libc.so.6"
            try:
                libc = ctypes.CDLL(name)
            except OSError:
                _log.debug("no C library at %r: malloc statistics unavailable", name)
                return self
            func = getattr(libc, "mallinfo2", None)
            if func is not None:
                func.restype = _Mallinfo2
                func.argtypes = []
                self.mallinfo2 = func
            func = getattr(libc, "malloc_trim", None)
            if func is not None:
                func.restype = ctypes.c_int
                func.argtypes = [ctypes.c_size_t]
                self.malloc_trim = func
            return self


_LIBC = _Libc()


def glibc_malloc_free() -> int | None:
    """Bytes glibc holds free (``fordblks + fsmblks`` of ``mallinfo2()``), else ``None``.

    ``None`` off glibc (musl, macOS) or on glibc older than 2.33.

        >>> value = glibc_malloc_free()
        >>> value is None or value >= 0
        True
    """
    mallinfo2 = _LIBC.load().mallinfo2
    if mallinfo2 is None:
        return None
    info = mallinfo2()
    return int(info.fordblks) + int(info.fsmblks)


def glibc_malloc_trim() -> bool:
    """Call glibc ``malloc_trim(0)``; ``True`` if memory was released, ``False`` elsewhere."""
    malloc_trim = _LIBC.load().malloc_trim
    if malloc_trim is None:
        return False
    return bool(malloc_trim(0))


# --------------------------------------------------------------------------- probes


class SystemProbe:
    """The real probe: reads ``/proc`` and the cgroup files under ``root``.

    ``root`` is ``/`` in production; tests point it at a fixture tree holding
    ``proc/self/statm``, ``proc/self/cgroup``, ``proc/self/mountinfo``,
    ``proc/meminfo`` and the cgroup files. glibc figures (``malloc_free``, ``trim``)
    always concern the running process, whatever ``root`` is.

        >>> probe = SystemProbe()
        >>> probe.physical() > 0
        True
    """

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self._root = Path(root)
        self._real_proc = str(self._root) == "/"
        self._page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._process: ProcessProbe | None = None  # the monitor's probe, for this pid
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        """The directory every ``/proc`` and ``/sys`` path is read under."""
        return self._root

    def _proc(self, *parts: str) -> Path:
        return self._root.joinpath("proc", *parts)

    def rss(self) -> int:
        """RSS of this process: through the process probe the monitor uses (psutil).

        Under a fixture ``root``, from its ``proc/self/statm``.
        """
        if not self._real_proc:
            fields = self._proc("self", "statm").read_text().split()
            return int(fields[1]) * self._page_size
        with self._lock:
            process = self._process
            if process is None or process.pid != os.getpid():  # first use, or forked
                from aimax.monitor.probe import SystemProbe as ProbeClass

                process = self._process = ProbeClass()
        return process.rss()

    def close(self) -> None:
        """Release the process probe (idempotent)."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.close()

    def uss(self) -> int | None:
        """USS through psutil (walks ``/proc/self/smaps``: slow on big processes)."""
        import psutil

        try:
            return int(psutil.Process().memory_full_info().uss)
        except (psutil.Error, AttributeError, OSError):
            return None

    def cgroup(self) -> CgroupLimits:
        """The limits of this process's own cgroup (v2 preferred for a pure v2 host)."""
        return read_cgroup_limits(self._root)

    def physical(self) -> int:
        """``MemTotal`` from ``/proc/meminfo``, else ``sysconf`` pages x page size."""
        with contextlib.suppress(OSError, ValueError):
            for line in self._proc("meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    parts = line.split()
                    scale = 1024 if len(parts) > 2 and parts[2].lower() == "kb" else 1
                    return int(parts[1]) * scale
        if hasattr(os, "sysconf"):
            with contextlib.suppress(ValueError, OSError):
                return int(os.sysconf("SC_PHYS_PAGES")) * int(self._page_size)
        import psutil

        return int(psutil.virtual_memory().total)

    def malloc_free(self) -> int | None:
        """glibc free-held bytes (``mallinfo2``), ``None`` where unavailable."""
        return glibc_malloc_free()

    def trim(self) -> bool:
        """glibc ``malloc_trim(0)``; a no-op returning ``False`` elsewhere."""
        return glibc_malloc_trim()

    def __repr__(self) -> str:
        return f"SystemProbe(root={str(self._root)!r})"


@dataclass(kw_only=True)
class FakeProbe:
    """A hand-set probe for tests and simulations: change the fields, the manager reads them.

    ``trim()`` counts its calls and, when ``trim_releases`` is set, moves that many
    bytes out of ``rss_bytes`` and ``malloc_free_bytes``.

        >>> probe = FakeProbe(rss_bytes=100, physical_bytes=1000)
        >>> probe.rss_bytes = 250
        >>> probe.rss()
        250
    """

    rss_bytes: int = 0
    uss_bytes: int | None = None
    physical_bytes: int = 8 * 2**30
    limits: CgroupLimits = field(default_factory=CgroupLimits.none)
    malloc_free_bytes: int | None = None
    trim_releases: int = 0
    rss_reads: int = 0
    uss_reads: int = 0
    trims: int = 0

    def rss(self) -> int:
        self.rss_reads += 1
        return self.rss_bytes

    def uss(self) -> int | None:
        self.uss_reads += 1
        return self.uss_bytes

    def cgroup(self) -> CgroupLimits:
        return self.limits

    def physical(self) -> int:
        return self.physical_bytes

    def malloc_free(self) -> int | None:
        return self.malloc_free_bytes

    def trim(self) -> bool:
        self.trims += 1
        released = min(self.trim_releases, self.malloc_free_bytes or 0)
        if released <= 0:
            return False
        self.rss_bytes -= released
        if self.malloc_free_bytes is not None:
            self.malloc_free_bytes -= released
        return True
