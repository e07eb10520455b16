"""cgroup v1 / v2 / no-limit discovery on fixture trees (the probe's ``root``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimax.memory import CgroupLimits, SystemProbe, read_cgroup_limits

GiB = 2**30


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


V2_MOUNTINFO = (
    "24 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
    "31 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
)
V1_MOUNTINFO = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def _v2(root: Path, *, leaf: str = "/bots/maxbot.service") -> Path:
    write(root, "proc/self/cgroup", f"0::{leaf}\n")
    write(root, "proc/self/mountinfo", V2_MOUNTINFO)
    write(root, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    return root / "sys/fs/cgroup" / leaf.lstrip("/")


def _v1(root: Path, *, leaf: str = "/docker/abc123") -> Path:
    write(
        root, "proc/self/cgroup", f"12:pids:{leaf}\n4:memory:{leaf}\n3:cpu,cpuacct:{leaf}\n0::/\n"
    )
    write(root, "proc/self/mountinfo", V1_MOUNTINFO)
    return root / "sys/fs/cgroup/memory" / leaf.lstrip("/")


def test_v2_memory_max_and_high(tmp_path: Path) -> None:
    leaf = _v2(tmp_path)
    write(leaf, "memory.max", "2147483648\n")
    write(leaf, "memory.high", "1610612736\n")
    limits = read_cgroup_limits(tmp_path)
    assert limits == CgroupLimits(
        version=2, path=str(leaf), max_bytes=2 * GiB, high_bytes=1536 * 2**20
    )
    assert limits.effective_bytes == 1536 * 2**20


def test_v2_no_limit_reads_max_as_none(tmp_path: Path) -> None:
    leaf = _v2(tmp_path)
    write(leaf, "memory.max", "max\n")
    write(leaf, "memory.high", "max\n")
    limits = read_cgroup_limits(tmp_path)
    assert limits.version == 2
    assert limits.max_bytes is None
    assert limits.high_bytes is None
    assert limits.effective_bytes is None


def test_v2_parent_limit_applies_to_the_child(tmp_path: Path) -> None:
    leaf = _v2(tmp_path)
    write(leaf, "memory.max", "max\n")
    write(tmp_path, "sys/fs/cgroup/bots/memory.max", "1073741824\n")
    assert read_cgroup_limits(tmp_path).max_bytes == GiB


def test_v2_the_tightest_of_child_and_parent_wins(tmp_path: Path) -> None:
    leaf = _v2(tmp_path)
    write(leaf, "memory.max", str(512 * 2**20))
    write(tmp_path, "sys/fs/cgroup/bots/memory.max", str(GiB))
    assert read_cgroup_limits(tmp_path).max_bytes == 512 * 2**20


def test_v2_namespace_mount_shows_own_cgroup_at_the_mount_point(tmp_path: Path) -> None:
    # inside a container with a cgroup namespace: /proc/self/cgroup says "0::/" and
    # the mount shows the container's cgroup as its root
    write(tmp_path, "proc/self/cgroup", "0::/\n")
    write(
        tmp_path,
        "proc/self/mountinfo",
        "31 24 0:26 /../../kubepods/pod1 /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n",
    )
    write(tmp_path, "sys/fs/cgroup/memory.max", "268435456\n")
    limits = read_cgroup_limits(tmp_path)
    assert (limits.version, limits.max_bytes) == (2, 256 * 2**20)


def test_v1_limit_in_bytes(tmp_path: Path) -> None:
    leaf = _v1(tmp_path)
    write(leaf, "memory.limit_in_bytes", "536870912\n")
    write(tmp_path, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
    limits = read_cgroup_limits(tmp_path)
    assert limits == CgroupLimits(version=1, path=str(leaf), max_bytes=512 * 2**20, high_bytes=None)


def test_v1_no_limit_is_the_huge_number(tmp_path: Path) -> None:
    leaf = _v1(tmp_path)
    write(leaf, "memory.limit_in_bytes", "9223372036854771712\n")
    limits = read_cgroup_limits(tmp_path)
    assert limits.version == 1
    assert limits.effective_bytes is None


def test_v1_container_mount_root_equals_the_cgroup_path(tmp_path: Path) -> None:
    # docker without a cgroup namespace: mount root /docker/abc, files at the mount point
    write(tmp_path, "proc/self/cgroup", "4:memory:/docker/abc\n")
    write(
        tmp_path,
        "proc/self/mountinfo",
        "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
    )
    write(tmp_path, "sys/fs/cgroup/memory/memory.limit_in_bytes", "1073741824\n")
    assert read_cgroup_limits(tmp_path).max_bytes == GiB


def test_hybrid_host_prefers_the_v1_memory_controller(tmp_path: Path) -> None:
    leaf = _v1(tmp_path)  # also has "0::/" and a cgroup2 mount without memory
    write(leaf, "memory.limit_in_bytes", "104857600\n")
    write(tmp_path, "sys/fs/cgroup/unified/cgroup.controllers", "\n")
    assert read_cgroup_limits(tmp_path).version == 1


def test_escaped_mount_point(tmp_path: Path) -> None:
    write(tmp_path, "proc/self/cgroup", "0::/a\n")
    write(tmp_path, "proc/self/mountinfo", "31 24 0:26 / /my\\040cgroup rw - cgroup2 cgroup2 rw\n")
    write(tmp_path, "my cgroup/a/memory.max", "1000\n")
    assert read_cgroup_limits(tmp_path).max_bytes == 1000


@pytest.mark.parametrize(
    "files",
    [
        {},  # no /proc at all (not Linux, or a bare fixture)
        {"proc/self/cgroup": "0::/x\n", "proc/self/mountinfo": ""},  # no cgroup mount
        {"proc/self/cgroup": "", "proc/self/mountinfo": V2_MOUNTINFO},  # no membership
    ],
)
def test_no_cgroup_means_no_limit(tmp_path: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        write(tmp_path, relative, text)
    assert read_cgroup_limits(tmp_path) == CgroupLimits.none()


def test_garbage_limit_file_is_ignored(tmp_path: Path) -> None:
    leaf = _v2(tmp_path)
    write(leaf, "memory.max", "lots\n")
    limits = read_cgroup_limits(tmp_path)
    assert limits.version == 2
    assert limits.max_bytes is None


def test_system_probe_reads_the_fixture_tree(tmp_path: Path) -> None:
    leaf = _v2(tmp_path)
    write(leaf, "memory.max", str(GiB))
    write(tmp_path, "proc/self/statm", "1000 250 30 1 0 200 0\n")
    write(tmp_path, "proc/meminfo", "MemTotal:       4194304 kB\nMemFree: 1 kB\n")
    probe = SystemProbe(root=tmp_path)
    assert probe.rss() == 250 * __import__("os").sysconf("SC_PAGE_SIZE")
    assert probe.physical() == 4 * GiB
    assert probe.cgroup().max_bytes == GiB
    assert str(tmp_path) in repr(probe)


def test_system_probe_on_this_machine() -> None:
    probe = SystemProbe()
    rss = probe.rss()
    assert 1_000_000 < rss < probe.physical()
    uss = probe.uss()
    assert uss is None or 0 < uss <= rss * 2
    free = probe.malloc_free()
    assert free is None or free >= 0
    assert isinstance(probe.trim(), bool)
    limits = probe.cgroup()
    assert limits.effective_bytes is None or limits.effective_bytes > 0
