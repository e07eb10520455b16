"""``aimax.pools.__all__`` lists exactly the package's public names."""

from __future__ import annotations

import subprocess
import sys
import types

import aimax.pools


def test_all_matches_the_public_names() -> None:
    public = {
        name
        for name, value in vars(aimax.pools).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(aimax.pools.__all__) == public
    assert len(aimax.pools.__all__) == len(set(aimax.pools.__all__))


def test_importing_starts_no_thread_and_registers_nothing_heavy() -> None:
    code = (
        "import threading, aimax.pools\n"
        "m = aimax.pools.ThreadPoolManager()\n"
        "m.get_pool('io')\n"
        "extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]\n"
        "assert not extra, extra\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_interpreter_exit_with_a_busy_pool_does_not_hang() -> None:
    code = (
        "import time, aimax.pools\n"
        "m = aimax.pools.ThreadPoolManager()\n"
        "for _ in range(50): m.submit_task('io', time.sleep, 0.01)\n"
        "m.submit_task('io', time.sleep, 0.01).result()\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
