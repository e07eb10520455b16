"""The examples in the pools package's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "aimax.pools",
    "aimax.pools.autoscaler",
    "aimax.pools.config",
    "aimax.pools.manager",
    "aimax.pools.policies",
    "aimax.pools.pool",
    "aimax.pools._histogram",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
