"""The package version, read by the build backend and by ``aimax --version``."""

__version__ = "0.1.0.dev0"
