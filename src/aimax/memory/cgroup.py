"""The memory limit of the process's own cgroup (v2 or v1), read from files.

The cgroup is found the way the kernel describes it: ``/proc/self/cgroup`` names
the process's cgroup path in each hierarchy, ``/proc/self/mountinfo`` says where
that hierarchy is mounted (and which part of it the mount shows, which matters in
containers). The limit is the smallest one from the process's cgroup up to the
mount point, since every ancestor's limit applies too.

- cgroup v2: ``memory.max`` (hard limit) and ``memory.high`` (throttling point),
  ``max`` meaning none.
- cgroup v1: ``memory.limit_in_bytes``; "no limit" is a huge number (2**63 rounded
  to the page), treated as none.

On a hybrid host (v1 controllers beside an empty v2 hierarchy), the v1 memory
controller wins, because that is the one enforcing limits.

Everything is read under ``root`` so tests use fixture trees::

    >>> limits = read_cgroup_limits("/nonexistent")
    >>> limits.version is None and limits.effective_bytes is None
    True
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

__all__ = ["CgroupLimits", "read_cgroup_limits"]

UNLIMITED_THRESHOLD = 2**62
"""Any limit at or above this many bytes means "no limit" (v1 writes ~2**63)."""

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupLimits:
    """The memory limits found for the process's cgroup.

    ``max_bytes`` is the hard limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``),
    ``high_bytes`` the v2 throttling point (``memory.high``); ``None`` means no limit.
    ``path`` is the cgroup directory that was read (``None`` if none was found).
    """

    version: Literal[1, 2] | None
    path: str | None
    max_bytes: int | None
    high_bytes: int | None

    @classmethod
    def none(cls) -> CgroupLimits:
        """No cgroup found (or no limit set anywhere)."""
        return cls(version=None, path=None, max_bytes=None, high_bytes=None)

    @property
    def effective_bytes(self) -> int | None:
        """The tightest of the limits (``memory.high`` counts: the kernel throttles there)."""
        values = [v for v in (self.max_bytes, self.high_bytes) if v is not None]
        return min(values) if values else None


def _unescape(path: str) -> str:
    """mountinfo escapes spaces, tabs, newlines and backslashes as ``\\ooo``."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), path)


@dataclass(frozen=True, slots=True)
class _Mount:
    root: str  # the part of the hierarchy the mount shows
    mount_point: str
    fstype: str
    super_options: frozenset[str]


def _mounts(text: str) -> list[_Mount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        tail = right.split()
        if len(fields) < 5 or not tail:
            continue
        options = frozenset(tail[2].split(",")) if len(tail) > 2 else frozenset()
        mounts.append(_Mount(_unescape(fields[3]), _unescape(fields[4]), tail[0], options))
    return mounts


def _memberships(text: str) -> dict[str, str]:
    """``hierarchy-key -> cgroup path``: ``"memory"`` for v1's memory line, ``""`` for v2."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy_id, controllers, path = parts
        if hierarchy_id == "0" and controllers == "":
            found[""] = path
        elif "memory" in controllers.split(","):
            found["memory"] = path
    return found


def _read_limit(path: Path) -> int | Literal["missing"] | None:
    """A limit file: bytes, ``None`` for no limit, ``"missing"`` when unreadable."""
    try:
        text = path.read_text().strip()
    except OSError:
        return "missing"
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return "missing"
    return None if value >= UNLIMITED_THRESHOLD else value


def _chain(root: Path, mount: _Mount, cgroup_path: str) -> list[Path]:
    """The cgroup's directory and its ancestors up to the mount point, leaf first."""
    base = root / mount.mount_point.lstrip("/")
    cg = PurePosixPath(cgroup_path)
    mount_root = PurePosixPath(mount.root)
    try:
        relative = cg.relative_to(mount_root)
    except ValueError:
        # A cgroup namespace: the mount shows our own cgroup as its root.
        relative = PurePosixPath(".")
    parts = [p for p in relative.parts if p not in (".", "/")]
    leaf = base.joinpath(*parts) if parts else base
    if not leaf.is_dir():
        # e.g. a container whose mount shows only its own cgroup at the mount point
        leaf = base
        parts = []
    chain = [leaf]
    for i in range(len(parts) - 1, -1, -1):
        chain.append(base.joinpath(*parts[:i]) if i else base)
    return chain


def _min_limit(chain: list[Path], filename: str) -> int | None:
    smallest: int | None = None
    for directory in chain:
        value = _read_limit(directory / filename)
        if isinstance(value, int) and (smallest is None or value < smallest):
            smallest = value
    return smallest


def read_cgroup_limits(root: str | os.PathLike[str] = "/") -> CgroupLimits:
    """Find the memory limits of this process's cgroup, reading files under ``root``.

    Never raises for a missing or odd file: it returns :meth:`CgroupLimits.none` (or
    ``None`` fields) instead, since no container limit is a normal situation.
    """
    base = Path(root)
    try:
        membership = _memberships((base / "proc/self/cgroup").read_text())
        mounts = _mounts((base / "proc/self/mountinfo").read_text())
    except OSError:
        return CgroupLimits.none()

    if "memory" in membership:
        for mount in mounts:
            if mount.fstype == "cgroup" and "memory" in mount.super_options:
                chain = _chain(base, mount, membership["memory"])
                return CgroupLimits(
                    version=1,
                    path=str(chain[0]),
                    max_bytes=_min_limit(chain, "memory.limit_in_bytes"),
                    high_bytes=None,
                )
    if "" in membership:
        for mount in mounts:
            if mount.fstype == "cgroup2":
                chain = _chain(base, mount, membership[""])
                with contextlib.suppress(OSError):
                    controllers = (chain[-1] / "cgroup.controllers").read_text().split()
                    if "memory" not in controllers and not (chain[0] / "memory.max").exists():
                        continue
                return CgroupLimits(
                    version=2,
                    path=str(chain[0]),
                    max_bytes=_min_limit(chain, "memory.max"),
                    high_bytes=_min_limit(chain, "memory.high"),
                )
    return CgroupLimits.none()
