"""The parsed filter tree and the catalogue of fields and ops it may name.

Parsing produces these frozen objects once; the SQL compiler and the Python reference
evaluator both walk them, so the two cannot disagree about what a filter *is*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Union

# Hostile or runaway filters must not blow the stack or build megabyte SQL.
MAX_DEPTH = 32
MAX_NODES = 1000
MAX_LIST_VALUES = 10_000

FieldKind = Literal["text", "id", "enum", "number", "time", "bool", "attribute", "score"]

# field name as users write it -> (kind, column in the spans table)
COLUMN_FIELDS: dict[str, tuple[FieldKind, str]] = {
    "trace_id": ("id", "trace_id"),
    "span_id": ("id", "span_id"),
    "parent_span_id": ("id", "parent_span_id"),
    "name": ("text", "name"),
    "kind": ("enum", "kind"),
    "status": ("enum", "status"),
    "service": ("text", "service_name"),
    "duration_ms": ("number", "duration_ms"),
    "start_time": ("time", "start_time"),
    "end_time": ("time", "end_time"),
    "is_root": ("bool", "parent_span_id"),
    "model": ("text", "model"),
    "input": ("text", "input"),
    "output": ("text", "output"),
    "input_tokens": ("number", "input_tokens"),
    "output_tokens": ("number", "output_tokens"),
    "total_tokens": ("number", "total_tokens"),
    "session_id": ("text", "session_id"),
    "user_id": ("text", "user_id"),
    "span_type": ("text", "span_type"),
}

# prefix as users write it -> (kind, column); everything after the first dot is the key.
PREFIX_FIELDS: dict[str, tuple[FieldKind, str]] = {
    "attributes": ("attribute", "attributes"),
    "resource": ("attribute", "resource_attributes"),
    "score": ("score", ""),
}

ID_LENGTHS = {"trace_id": 32, "span_id": 16, "parent_span_id": 16}

EQUALITY_OPS = frozenset({"eq", "ne", "in", "nin"})
ORDER_OPS = frozenset({"gt", "gte", "lt", "lte"})
TEXT_OPS = frozenset({"contains", "glob", "regex"})
PRESENCE_OPS = frozenset({"exists", "not_exists"})
ALL_OPS = EQUALITY_OPS | ORDER_OPS | TEXT_OPS | PRESENCE_OPS

OPS_BY_KIND: dict[FieldKind, frozenset[str]] = {
    "text": EQUALITY_OPS | TEXT_OPS | PRESENCE_OPS,
    "id": EQUALITY_OPS | TEXT_OPS | PRESENCE_OPS,
    "enum": EQUALITY_OPS | PRESENCE_OPS,
    "number": EQUALITY_OPS | ORDER_OPS | PRESENCE_OPS,
    "time": EQUALITY_OPS | ORDER_OPS | PRESENCE_OPS,
    "bool": frozenset({"eq", "ne"}),
    "attribute": ALL_OPS,
    "score": ALL_OPS,
}

# Stored forms are the OTLP enum names without their prefix; index = OTLP integer value.
SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")
ENUMS: dict[str, tuple[tuple[str, ...], str]] = {
    "kind": (SPAN_KINDS, "SPAN_KIND_"),
    "status": (STATUS_CODES, "STATUS_CODE_"),
}


class FilterError(ValueError):
    """A filter that cannot be used; `path` locates the offending part, e.g. `and[1].op`.

    The root itself is called `filter` (or whatever prefix the caller passed to
    `parse_filter(..., path=...)`, e.g. `rules[2].when`).
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # survive pickling (process pools)
        return (FilterError, (self.path, self.message))


@dataclass(frozen=True)
class Field:
    name: str  # as written, e.g. "attributes.gen_ai.request.model"
    kind: FieldKind
    column: str  # SQL column in the spans table ("" for score)
    key: str | None = None  # attribute key or score name


@dataclass(frozen=True)
class Leaf:
    field: Field
    op: str
    # Normalized: ids lowercased, enums upper short form, times naive-UTC datetimes,
    # in/nin lists as tuples, None for exists/not_exists.
    value: Any = None


@dataclass(frozen=True)
class And:
    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    child: Filter


Filter = Union[Leaf, And, Or, Not]
