"""The ``aimax`` command."""

from __future__ import annotations

import click

from aimax._version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="aimax")
def main() -> None:
    """aimax: rate limiting, thread pools, memory and monitoring for MAX trading bots."""
