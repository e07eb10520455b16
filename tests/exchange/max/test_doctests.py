"""The examples in the modules' docstrings run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["signing", "nonce", "errormap", "models", "endpoints", "guard"])
def test_module_examples(name: str) -> None:
    module = importlib.import_module(f"aimax.exchange.max.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
