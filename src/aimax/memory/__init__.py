"""Memory: a budget that knows the container, caches that shrink in order, GC pauses cut.

:class:`MemoryManager` reads memory through a replaceable probe, turns readings
into pressure levels with hysteresis, shrinks registered caches (held weakly)
lowest priority first, measures GC pauses and offers a low-pause GC mode::

    >>> from aimax.memory import MemoryManager, BoundedLRUCache
    >>> with MemoryManager(budget=0.5) as manager:
    ...     quotes = BoundedLRUCache(max_items=10_000, name="quotes", manager=manager)
    ...     status = manager.monitor_memory()
"""

from aimax.memory.caches import (
    BoundedCacheStatistics,
    BoundedLRUCache,
    BoundedTTLCache,
    CacheOwner,
    estimate_size,
)
from aimax.memory.cgroup import CgroupLimits, read_cgroup_limits
from aimax.memory.gccontrol import (
    GCMode,
    GCPauseRecorder,
    GCStatistics,
    GCTuning,
    GenerationPauses,
    derive_thresholds,
    shared_recorder,
)
from aimax.memory.leaks import AllocationGrowth, LeakFinder
from aimax.memory.manager import (
    CleanupReport,
    GCResult,
    LevelListener,
    MemoryConfig,
    MemoryManager,
    MemoryStatistics,
    MemoryStatus,
)
from aimax.memory.pressure import (
    LevelChange,
    MemoryBudget,
    PressureLevel,
    PressureThresholds,
    PressureTracker,
)
from aimax.memory.probe import (
    FakeProbe,
    MemoryProbe,
    SystemProbe,
    glibc_malloc_free,
    glibc_malloc_trim,
)
from aimax.memory.registry import CacheInfo, CacheRegistry, CacheShrink, ShrinkFunc, default_shrink

__all__ = [
    "AllocationGrowth",
    "BoundedCacheStatistics",
    "BoundedLRUCache",
    "BoundedTTLCache",
    "CacheInfo",
    "CacheOwner",
    "CacheRegistry",
    "CacheShrink",
    "CgroupLimits",
    "CleanupReport",
    "FakeProbe",
    "GCMode",
    "GCPauseRecorder",
    "GCResult",
    "GCStatistics",
    "GCTuning",
    "GenerationPauses",
    "LeakFinder",
    "LevelChange",
    "LevelListener",
    "MemoryBudget",
    "MemoryConfig",
    "MemoryManager",
    "MemoryProbe",
    "MemoryStatistics",
    "MemoryStatus",
    "PressureLevel",
    "PressureThresholds",
    "PressureTracker",
    "ShrinkFunc",
    "SystemProbe",
    "default_shrink",
    "derive_thresholds",
    "estimate_size",
    "glibc_malloc_free",
    "glibc_malloc_trim",
    "read_cgroup_limits",
    "shared_recorder",
]
