"""Running operations: each API operation is written once, as a generator of `Call`s, and driven
either synchronously (Client) or with await (AsyncClient), so the two clients cannot drift.

An operation yields a `Call` (or a `Sleep` between polls) and gets back the `Reply`; a failed call
is thrown into it as a `SpanlakeError`, so an operation can handle, e.g., a 409 it expects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from functools import wraps
from typing import Any, TypeVar

from spanlake.client.errors import SpanlakeError
from spanlake.client.transport import AsyncTransport, Call, Sleep, SyncTransport

T = TypeVar("T")
Op = Generator["Call | Sleep", Any, T]


class SyncDriver:
    is_async = False

    def __init__(self, transport: SyncTransport):
        self.transport = transport

    def run(self, op: Op[T]) -> T:
        send: Callable[[Any], Any] = op.send
        value: Any = None
        while True:
            try:
                step = send(value)
            except StopIteration as stop:
                return stop.value
            send, value = op.send, None
            try:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                else:
                    value = self.transport.send(step)
            except SpanlakeError as exc:
                send, value = op.throw, exc


class AsyncDriver:
    is_async = True

    def __init__(self, transport: AsyncTransport):
        self.transport = transport

    async def run(self, op: Op[T]) -> T:
        send: Callable[[Any], Any] = op.send
        value: Any = None
        while True:
            try:
                step = send(value)
            except StopIteration as stop:
                return stop.value
            send, value = op.send, None
            try:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                else:
                    value = await self.transport.send(step)
            except SpanlakeError as exc:
                send, value = op.throw, exc


Driver = SyncDriver | AsyncDriver


def operation(fn: Callable[..., Op[T]]) -> Callable[..., T]:
    """A resource method written as an operation: the sync client returns its value, the async one
    an awaitable of it."""

    @wraps(fn)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self._driver.run(fn(self, *args, **kwargs))

    return method  # type: ignore[return-value]
