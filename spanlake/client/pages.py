"""Lazy iteration over a list route: one page is fetched when the previous one is used up.

Every list route answers `{"items": [...], "next_cursor": ...}`; `Pages` follows the cursor.
With a `Client` iterate it with `for`, with an `AsyncClient` with `async for`; `.all()` collects
everything (awaitable with an AsyncClient).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

from spanlake.client.driver import Driver, Op
from spanlake.client.transport import Call

T = TypeVar("T")
Params = list[tuple[str, str]]


def query(**values: Any) -> Params:
    """Query parameters: None dropped, lists repeated, filter trees as JSON, times as ISO-8601."""
    out: Params = []
    for key, value in values.items():
        if value is None:
            continue
        for one in value if isinstance(value, (list, tuple)) else [value]:
            out.append((key, param_text(one)))
    return out


def param_text(value: Any) -> str:
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Pages(Generic[T]):
    def __init__(self, driver: Driver, path: str, params: Params, convert: Callable[[dict[str, Any]], T],
                 page_size: int = 100):
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be from 1 to 1000, got {page_size!r}")
        self._driver = driver
        self._path = path
        self._params = params
        self._convert = convert
        self._page_size = page_size

    def page(self, cursor: str | None) -> Op[tuple[list[T], str | None]]:
        params = [*self._params, ("limit", str(self._page_size))] + ([("cursor", cursor)] if cursor else [])
        reply = yield Call("GET", self._path, params=params)
        return [self._convert(row) for row in reply.data["items"]], reply.data.get("next_cursor")

    def collect(self) -> Op[list[T]]:
        out: list[T] = []
        cursor = None
        while True:
            items, cursor = yield from self.page(cursor)
            out += items
            if not cursor:
                return out

    def all(self) -> list[T]:
        """Every row (an awaitable of them with an AsyncClient)."""
        return self._driver.run(self.collect())  # type: ignore[return-value]

    def __iter__(self) -> Iterator[T]:
        if self._driver.is_async:
            raise TypeError("pages of an AsyncClient are read with `async for` (or `await pages.all()`)")
        return self._rows()

    def _rows(self) -> Iterator[T]:
        cursor = None
        while True:
            items, cursor = self._driver.run(self.page(cursor))  # type: ignore[misc]
            yield from items
            if not cursor:
                return

    def __aiter__(self) -> AsyncIterator[T]:
        if not self._driver.is_async:
            raise TypeError("pages of a Client are read with `for`; use an AsyncClient for `async for`")
        return self._arows()

    async def _arows(self) -> AsyncIterator[T]:
        cursor = None
        while True:
            items, cursor = await self._driver.run(self.page(cursor))  # type: ignore[misc]
            for item in items:
                yield item
            if not cursor:
                return
