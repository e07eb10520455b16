"""The examples in the report package's docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "aimax.report",
    "aimax.report.model",
    "aimax.report.builder",
    "aimax.report.samples",
    "aimax.report.terminal",
    "aimax.report.files",
    "aimax.report.htmlpage",
    "aimax.report.charts",
    "aimax.report._series",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no example"
