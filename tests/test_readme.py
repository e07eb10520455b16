"""The README's Python examples run as written (blocks fenced ```python; ```py blocks,
which need outside services, are only compiled)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(python|py)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(kind: str) -> list[str]:
    return [
        code for lang, code in BLOCK.findall(README.read_text(encoding="utf-8")) if lang == kind
    ]


@pytest.mark.parametrize("code", _blocks("python"), ids=lambda c: c.splitlines()[0][:40])
def test_readme_example_runs(code: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("code", _blocks("py"))
def test_readme_fragment_compiles(code: str) -> None:
    compile(code, "README.md", "exec")


def test_readme_has_examples_of_the_five_classes() -> None:
    text = "\n".join(_blocks("python"))
    for name in (
        "APIRateLimiter",
        "ThreadPoolManager",
        "MemoryManager",
        "ResourceMonitor",
        "SystemPerformanceOptimizer",
    ):
        assert name in text
