"""Glue between pydantic models and our own checks and messages.

Request shapes are pydantic models (types, bounds, required and unknown fields); checks a schema
cannot say (a dataset name rule, a filter that must parse) stay small functions `fn(value, path)`
that raise `Invalid` with a message naming the field, attached to a field with `check(fn)`.
`describe` turns a ValidationError into one message in the same style, with the field's full
path (`items[3].topic`), so every caller (API, imports) reports a problem the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, BeforeValidator, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError

from spanlake.datasets.errors import Invalid

_OURS = "spanlake"


def refuse(message: str) -> PydanticCustomError:
    """An error for a model validator to raise; its message is kept as written."""
    return PydanticCustomError(_OURS, "{message}", {"message": message})


def check(fn: Callable[[Any, str], Any]) -> BeforeValidator:
    """Run `fn(value, field_name)` before pydantic's own checks; its Invalid becomes a field error."""

    def run(value: Any, info: ValidationInfo) -> Any:
        try:
            return fn(value, info.field_name or "value")
        except Invalid as exc:
            raise refuse(exc.message) from None

    return BeforeValidator(run)


def path_of(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_in(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in get_args(tp):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _fields_at(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str]:
    """The field names a client may send at `loc` (for an unknown-field message); an index keeps
    the model its list holds."""
    current = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, str):
            field = current.model_fields.get(part)
            current = _model_in(field.annotation) if field else None
    return [f.alias or name for name, f in current.model_fields.items()] if current else []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def describe(exc: ValidationError, model: type[BaseModel] | None = None, prefix: str = "") -> str:
    """The first problem as one message that names the field by its full path."""
    error = exc.errors(include_url=False)[0]
    loc = tuple(error["loc"])
    path = path_of(loc)
    if prefix:
        path = f"{prefix}.{path}" if path and not path.startswith("[") else prefix + path
    kind = error["type"]
    if kind == _OURS:
        message = error["ctx"]["message"]
        # A check names its field ("tags[1] must not be empty"): put the full path in its place.
        name = next((part for part in reversed(loc) if isinstance(part, str)), None)
        if name is not None and message.startswith(name):
            return path + message[len(name):]
        return f"{path}: {message}" if path else message
    if kind == "missing":
        return f"{path} is required"
    if kind == "extra_forbidden":
        expected = _fields_at(model, loc[:-1])
        return f"{path}: unknown field" + (f"; expected {', '.join(expected)}" if expected else "")
    given = error.get("input")
    got = f", got {_short(given)}" if isinstance(given, (str, int, float, bool)) or given is None else ""
    return f"{path}: {error['msg']}{got}" if path else f"{error['msg']}{got}"


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, prefix: str = "") -> M:
    """`data` as `model`, or Invalid naming the first problem (a model passes through)."""
    if isinstance(data, model):
        return data
    if isinstance(data, dict) and model.model_config.get("extra") == "forbid":
        # Named here as well as by pydantic, which refuses a key it cannot read as text (a lone
        # surrogate) before it can call it unknown.
        known = _fields_at(model, ())
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
            raise Invalid(f"{where}: unknown field; expected {', '.join(known)}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Invalid(describe(exc, model, prefix)) from None
