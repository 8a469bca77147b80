"""The `spanlake` command line: `main` parses and runs one command (see main.py)."""

from spanlake.cli.main import main

__all__ = ["main"]
