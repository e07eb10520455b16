"""The multi-pair demo behind ``aimax demo``: a bot's workload against the local MAX
simulator (or the real MAX, public endpoints only) under the optimizer, with a live
dashboard and HTML/JSON reports.

    >>> from aimax.demo import DemoConfig, run_demo        # doctest: +SKIP
    >>> run_demo(DemoConfig(pairs=5, duration=20)).html_path  # doctest: +SKIP
    PosixPath('aimax-report/report.html')
"""

from aimax.demo.runner import DemoConfig, DemoResult, run_demo, scaled_max_limiter
from aimax.demo.workload import WorkloadCounters, book_features, indicators, run_workload

__all__ = [
    "DemoConfig",
    "DemoResult",
    "WorkloadCounters",
    "book_features",
    "indicators",
    "run_demo",
    "run_workload",
    "scaled_max_limiter",
]
