"""The one error a command raises for the user."""

from __future__ import annotations


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit code 1, no traceback."""
