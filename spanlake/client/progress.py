"""Progress bars on stderr, shown only on a terminal (CI logs and notebooks' pipes stay clean).

rich is imported when a bar is made, so `import spanlake.client` stays light.
"""

from __future__ import annotations

from typing import Any


def bar(show: bool | None, *, transient: bool = False) -> Any:
    """A rich Progress on stderr: `show` None means "only on a terminal", False never, True always."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    disabled = show is False or (show is None and not console.is_terminal)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
                    console=console, transient=transient, disable=disabled)
