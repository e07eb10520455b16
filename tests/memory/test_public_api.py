"""``aimax.memory.__all__`` lists exactly the public names; the docstring examples hold."""

from __future__ import annotations

import doctest
import importlib
import types

import pytest

import aimax.memory

MODULES = ["cgroup", "probe", "pressure", "registry", "caches", "gccontrol", "leaks", "manager"]


def _public(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


def test_all_matches_the_public_names() -> None:
    assert set(aimax.memory.__all__) == _public(aimax.memory)
    assert len(aimax.memory.__all__) == len(set(aimax.memory.__all__))


@pytest.mark.parametrize("name", MODULES)
def test_module_all_is_exported_by_the_package(name: str) -> None:
    module = importlib.import_module(f"aimax.memory.{name}")
    assert set(module.__all__) <= set(aimax.memory.__all__)
    for public in module.__all__:
        assert getattr(module, public) is getattr(aimax.memory, public)


def test_seed_api_is_kept() -> None:
    for method in (
        "monitor_memory",
        "force_garbage_collection",
        "register_cache",
        "cleanup_caches",
    ):
        assert callable(getattr(aimax.memory.MemoryManager, method))


@pytest.mark.parametrize("name", [*MODULES, None])
def test_docstring_examples(name: str | None) -> None:
    module = aimax.memory if name is None else importlib.import_module(f"aimax.memory.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
