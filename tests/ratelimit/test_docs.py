"""The docstring examples of the ratelimit package run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "aimax.ratelimit",
    "aimax.ratelimit._core",
    "aimax.ratelimit._window",
    "aimax.ratelimit.backend",
    "aimax.ratelimit.config",
    "aimax.ratelimit.feedback",
    "aimax.ratelimit.limiter",
    "aimax.ratelimit.max_profile",
    "aimax.ratelimit.stats",
    "tests.ratelimit._checks",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError:  # tests/ not importable as a package under importlib mode
        from . import _checks as module  # type: ignore[no-redef]
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
