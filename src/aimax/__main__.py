"""``python -m aimax`` runs the ``aimax`` command."""

from aimax.cli import main

main()
