"""The curated public API: ``aimax.__all__`` lists exactly what is public."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

import aimax

SUBPACKAGES = {"errors", "ratelimit", "pools", "memory", "monitor", "report", "exchange", "demo"}


def _public_names(module: types.ModuleType) -> set[str]:
    """What a user sees: dir() less private names and submodules imported as a side effect."""
    names = set()
    for name in dir(module):
        if name.startswith("_"):
            continue
        value = getattr(module, name)
        if isinstance(value, types.ModuleType) and name not in module.__all__:
            continue  # e.g. ``aimax.ratelimit`` appears once anything imports it
        names.add(name)
    return names


def test_all_lists_exactly_the_public_names() -> None:
    assert set(aimax.__all__) - {"__version__"} == _public_names(aimax)


def test_every_lazy_name_is_exported_and_resolves_to_its_component() -> None:
    assert len(aimax.__all__) == len(set(aimax.__all__))
    for name in aimax.__all__:
        value = getattr(aimax, name)
        assert value is not None, name
        if isinstance(value, type):
            assert value.__module__.startswith("aimax."), (name, value.__module__)


def test_seed_class_names_are_public() -> None:
    for name in (
        "SystemPerformanceOptimizer",
        "ThreadPoolManager",
        "MemoryManager",
        "APIRateLimiter",
        "ResourceMonitor",
        "start_system_optimization",
    ):
        assert name in aimax.__all__


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        aimax.NoSuchThing  # noqa: B018 - the lookup itself is the test


def test_errors_all_lists_every_exception_class() -> None:
    errors = importlib.import_module("aimax.errors")
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    }
    assert set(errors.__all__) == classes


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_is_cheap_and_starts_no_thread() -> None:
    code = (
        "import sys, threading, aimax\n"
        "heavy = [m for m in ('aiohttp', 'httpx', 'matplotlib', 'redis') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "for name in aimax.__all__: getattr(aimax, name)\n"
        "extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]\n"
        "assert not extra, extra\n"
        "print('ok')\n"
    )
    assert _run(code) == "ok"
