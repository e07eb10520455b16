"""The curated public API: ``aimax.__all__`` lists exactly what is public."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import aimax


def _public_names(module: types.ModuleType) -> set[str]:
    """Names a user sees on the module, less subpackages that got imported as a side effect."""
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType) and name not in module.__all__:
            # e.g. ``aimax.ratelimit`` appears once anything imports it
            continue
        names.add(name)
    return names


def test_all_lists_exactly_the_public_names() -> None:
    assert set(aimax.__all__) - {"__version__"} == _public_names(aimax)


def test_all_has_no_duplicates_and_everything_resolves() -> None:
    assert len(aimax.__all__) == len(set(aimax.__all__))
    for name in aimax.__all__:
        assert getattr(aimax, name) is not None, name


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


def test_import_starts_no_thread() -> None:
    code = (
        "import threading, aimax\n"
        "for name in aimax.__all__: getattr(aimax, name)\n"
        "extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]\n"
        "assert not extra, extra\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
