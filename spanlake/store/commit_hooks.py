"""In-memory effects that must follow a write transaction's fate, not each attempt's.

A write function may run more than once (a lake transaction that lost a commit race is re-run
from the start) or roll back. Counters and budgets it keeps in memory must then count once, or
not at all. Inside `Store.write`, `after_commit(fn)` defers fn until the attempt commits and
`after_rollback(fn)` runs fn if it does not; outside a write (a test calling the function on a
bare cursor) after_commit runs at once.

Hooks run on the writer thread right after COMMIT, before the next transaction starts, so
state they update is current for the next one. The store may also lend the attempt a `context`
(its span-key memory) that store functions reach through `context()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

Hook = Callable[[], None]


@dataclass
class _Attempt:
    on_commit: list[Hook] = field(default_factory=list)
    on_rollback: list[Hook] = field(default_factory=list)
    context: Any = None


_local = threading.local()


def after_commit(hook: Hook) -> None:
    attempt: _Attempt | None = getattr(_local, "attempt", None)
    if attempt is None:
        hook()
    else:
        attempt.on_commit.append(hook)


def after_rollback(hook: Hook) -> None:
    attempt: _Attempt | None = getattr(_local, "attempt", None)
    if attempt is not None:
        attempt.on_rollback.append(hook)


def context() -> Any:
    """What the store lent the current write attempt (None outside a write)."""
    attempt: _Attempt | None = getattr(_local, "attempt", None)
    return None if attempt is None else attempt.context


@contextmanager
def attempt(context: Any = None) -> Iterator[_Attempt]:
    """Scope of one transaction attempt on this thread; the caller runs the hooks it collected."""
    current = _Attempt(context=context)
    _local.attempt = current
    try:
        yield current
    finally:
        _local.attempt = None


def run(hooks: list[Hook]) -> None:
    for hook in hooks:
        hook()
