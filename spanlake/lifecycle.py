"""Start parts in order, stop them in reverse: also after a start that failed half way.

The wiring (server.py) records each part once it runs, with the call that undoes it; `stop()`
undoes them newest first, so a part never outlives what it uses. One part failing to stop does
not keep the others running: every stop is tried, the failures are logged, the first re-raised.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)

Stop = Callable[[], "Awaitable[None] | None"]


class Component(Protocol):
    """A background part: `start()` (sync or async) begins its work, `stop()` ends it."""

    def start(self) -> Awaitable[None] | None: ...

    async def stop(self) -> None: ...


C = TypeVar("C", bound=Component)


class Lifecycle:
    def __init__(self) -> None:
        self._running: list[tuple[str, Stop]] = []

    @property
    def names(self) -> list[str]:
        """What runs, in start order (logs and tests read it)."""
        return [name for name, _ in self._running]

    def started(self, name: str, stop: Stop) -> None:
        """`name` is running (opened by the caller); `stop` undoes it."""
        self._running.append((name, stop))

    async def start(self, name: str, component: C) -> C:
        """Start `component` and return it, recorded to be stopped."""
        await _maybe_await(component.start())
        self.started(name, component.stop)
        return component

    async def stop(self) -> None:
        first_error: Exception | None = None
        while self._running:
            name, stop = self._running.pop()
            try:
                await _maybe_await(stop())
            except Exception as exc:
                log.exception("stopping %s failed", name)
                first_error = first_error or exc
        if first_error is not None:
            raise first_error


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result
