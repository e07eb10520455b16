"""The package's curated ``__all__`` and the examples in its docstrings."""

from __future__ import annotations

import doctest
import importlib
import types

import pytest

import aimax.monitor

MODULES = ["collectors", "export", "history", "monitor", "probe", "rules", "cli"]


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(aimax.monitor).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in ("TYPE_CHECKING", "Any")
    }
    assert set(aimax.monitor.__all__) == public | aimax.monitor._LAZY
    for name in aimax.monitor.__all__:
        assert getattr(aimax.monitor, name) is not None
    with pytest.raises(AttributeError):
        aimax.monitor.nothing_here  # noqa: B018 - the attribute access is the test
    assert len(aimax.monitor.__all__) == len(set(aimax.monitor.__all__))


@pytest.mark.parametrize("name", MODULES)
def test_module_all_resolves(name: str) -> None:
    module = importlib.import_module(f"aimax.monitor.{name}")
    for attr in module.__all__:
        assert getattr(module, attr) is not None


@pytest.mark.parametrize("name", ["", *MODULES])
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module("aimax.monitor" + (f".{name}" if name else ""))
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_import_is_light_and_starts_nothing() -> None:
    import subprocess
    import sys

    code = (
        "import sys, threading, aimax.monitor\n"
        "assert 'prometheus_client' not in sys.modules\n"
        "m = aimax.monitor.ResourceMonitor()\n"
        "assert threading.active_count() == 1\n"
        "m.close()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
