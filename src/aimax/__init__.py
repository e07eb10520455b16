"""aimax-optimizer: keeps a multi-pair MAX trading bot inside its exchange quota,
its threads busy but not swamped, its memory bounded and its health visible.

Only the curated public API is exported here; nothing runs at import time.
"""

from aimax import errors
from aimax._version import __version__

__all__ = ["__version__", "errors"]
