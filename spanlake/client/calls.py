"""Calling the user's code in an experiment: the task (sync or async) and local scorers.

A task is called with the item's input; a parameter named `item` also gets the whole `Item`
(a task whose only parameter is `item` gets just the item). What it returns follows the HTTP
target contract: a dict with `output` gives that output, any other value is the output itself;
token usage comes from `usage` (or `tokens`) of a returned dict: a count or
`{input_tokens|prompt_tokens, output_tokens|completion_tokens, total_tokens}`.

A local scorer is a plain function (sync or async) whose parameters are any of `input`,
`output`, `expected` (or `expected_output`), `item`, `metadata`, `trace_id`, `span_id`; it
returns a number or bool (the value), a str (a label), a dict (`value`, `label`,
`explanation`, `metadata`), or None (no score for this item).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from spanlake.client.models import Item

SCORER_ARGS = ("input", "output", "expected", "expected_output", "item", "metadata", "trace_id", "span_id")
_TOKEN_NAMES = {"input": ("input_tokens", "prompt_tokens", "input"),
                "output": ("output_tokens", "completion_tokens", "output"),
                "total": ("total_tokens", "total")}


def _parameters(fn: Callable[..., Any]) -> tuple[list[str], bool]:
    """Parameter names fn can take by keyword, and whether it takes **kwargs."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return [], True
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await an async function; run a sync one in a thread (the contextvars, so the current span, go along)."""
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None)):
        return await fn(*args, **kwargs)
    value = await asyncio.to_thread(fn, *args, **kwargs)
    return await value if inspect.isawaitable(value) else value


class Task:
    """The function under test, called per item."""

    def __init__(self, fn: Callable[..., Any]):
        if not callable(fn):
            raise TypeError(f"task must be a function (sync or async), got {type(fn).__name__}")
        self.fn = fn
        names, _ = _parameters(fn)
        self.item_only = names == ["item"]
        self.wants_item = "item" in names
        self.name = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', type(fn).__name__)}"

    async def __call__(self, item: Item) -> Any:
        if self.item_only:
            return await _call(self.fn, item=item)
        if self.wants_item:
            return await _call(self.fn, item.input, item=item)
        return await _call(self.fn, item.input)


class LocalScorer:
    """A Python scorer run by the client; its scores are posted with the result they score."""

    def __init__(self, fn: Callable[..., Any]):
        if not callable(fn):
            raise TypeError(f"a scorer is a server scorer name or a function, got {type(fn).__name__}")
        name = getattr(fn, "name", None) or getattr(fn, "__name__", None) or type(fn).__name__
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"scorer {fn!r} needs a name: define it with def (or give it a .name attribute)")
        self.fn, self.name = fn, name
        names, self.any_kwargs = _parameters(fn)
        unknown = [n for n in names if n not in SCORER_ARGS]
        if unknown and not self.any_kwargs:
            raise ValueError(f"scorer {name}: parameter {unknown[0]!r} is not one of {', '.join(SCORER_ARGS)}")
        self.args = SCORER_ARGS if self.any_kwargs else tuple(names)

    async def score(self, item: Item, output: Any, trace: tuple[str, str] | None) -> dict[str, Any] | None:
        values = {"input": item.input, "output": output, "expected": item.expected_output,
                  "expected_output": item.expected_output, "item": item, "metadata": item.metadata,
                  "trace_id": trace[0] if trace else None, "span_id": trace[1] if trace else None}
        result = await _call(self.fn, **{k: values[k] for k in self.args})
        return score_body(self.name, result)


def score_body(name: str, result: Any) -> dict[str, Any] | None:
    """A scorer's return value as a posted score, or None for "no score"."""
    if result is None:
        return None
    if isinstance(result, bool) or (isinstance(result, (int, float)) and math.isfinite(result)):
        return {"name": name, "value": result}
    if isinstance(result, str):
        return {"name": name, "label": result}
    if not isinstance(result, Mapping):
        fields = {k: getattr(result, k) for k in ("value", "label", "explanation", "metadata") if hasattr(result, k)}
        if not fields:
            raise ValueError(f"returned {type(result).__name__}; expected a number, bool, str, dict or None")
        result = fields
    body = {k: result[k] for k in ("value", "label", "explanation", "metadata") if result.get(k) is not None}
    if "value" not in body and "label" not in body:
        raise ValueError("returned neither a value nor a label")
    return {"name": name, **body}


def unpack(value: Any) -> tuple[Any, dict[str, int] | None]:
    """(output, token usage) of what the task returned."""
    if not isinstance(value, Mapping):
        return jsonable(value), None
    output = value["output"] if "output" in value else value
    return jsonable(output), tokens(value.get("usage", value.get("tokens")))


def tokens(usage: Any) -> dict[str, int] | None:
    if usage is None:
        return None
    if isinstance(usage, int) and not isinstance(usage, bool):
        return {"total": usage} if usage >= 0 else None
    if not isinstance(usage, Mapping):
        dump = getattr(usage, "model_dump", None)  # an SDK's usage object
        usage = dump() if callable(dump) else {k: getattr(usage, k) for names in _TOKEN_NAMES.values()
                                               for k in names if hasattr(usage, k)}
    out = {}
    for key, names in _TOKEN_NAMES.items():
        found = next((usage[n] for n in names if isinstance(usage.get(n), int) and not isinstance(usage.get(n), bool)
                      and usage[n] >= 0), None)
        if found is not None:
            out[key] = found
    return out or None


def jsonable(value: Any) -> Any:
    """The output as JSON the server can store: as is, an SDK object's dump, or its text."""
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        pass
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return jsonable(dump(mode="json"))
        except TypeError:
            pass
    return str(value)


def text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)
