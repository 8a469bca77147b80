"""Validate a filter (dict, or JSON text) into the frozen tree of `model.py`.

Every rejection is a FilterError whose path names the spot inside the filter, because the
filter usually comes from a YAML rules file or an API query string the user must go fix.
Values are normalized here (ids lowercased, enum names, times to naive UTC) so the compiler
and the reference evaluator see exactly the same thing.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any

from spanlake.filters.model import (
    ALL_OPS,
    COLUMN_FIELDS,
    ENUMS,
    ID_LENGTHS,
    MAX_DEPTH,
    MAX_LIST_VALUES,
    MAX_NODES,
    OPS_BY_KIND,
    ORDER_OPS,
    PREFIX_FIELDS,
    PRESENCE_OPS,
    TEXT_OPS,
    And,
    Field,
    FieldKind,
    Filter,
    FilterError,
    Leaf,
    Not,
    Or,
)
from spanlake.store.scratch import re2_error

MAX_PATTERN_CHARS = 10_000
_MISSING = object()
_LEAF_KEYS = frozenset({"field", "op", "value"})
_NODE_KEYS = ("and", "or", "not")
_HEX = frozenset("0123456789abcdef")
_EPOCH = datetime(1970, 1, 1)
# Spans keep their times at nanosecond precision (TIMESTAMP_NS), which spans 1677-09-21 to
# 2262-04-11. DuckDB cannot compare a bound outside that with them (a conversion error, so a
# 500), and no span lies out there, so such a time is refused as the bad input it is.
TIME_MIN = datetime(1677, 9, 22)
TIME_MAX = datetime(2262, 4, 11)

_KIND_HELP: dict[FieldKind, str] = {
    "text": "a text field",
    "id": "an id field",
    "enum": "an enum field",
    "number": "a numeric field",
    "time": "a time field",
    "bool": "a boolean field",
    "attribute": "an attribute",
    "score": "a score",
}


def parse_filter(obj: Any, *, path: str = "") -> Filter:
    """Validate `obj` (a dict, JSON text, or an already parsed Filter) into a Filter tree.

    `path` prefixes error paths, so a caller embedding filters can say `rules[2].when.and[0].op`.
    """
    if isinstance(obj, (Leaf, And, Or, Not)):
        return obj
    if isinstance(obj, (str, bytes)):
        try:
            obj = json.loads(obj)
        except RecursionError:
            raise FilterError(path or "filter", f"nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as e:
            raise FilterError(path or "filter", f"not valid JSON ({e})") from None
    return _Parser(path).node(obj, path, 1)


def _join(path: str, part: str) -> str:
    if part.startswith("["):
        return path + part
    return f"{path}.{part}" if path else part


def _err(path: str, message: str) -> FilterError:
    return FilterError(path or "filter", message)


def _describe(v: Any) -> str:
    """Name a bad value the way the user wrote it: JSON type plus a short repr."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {json.dumps(v)}"
    if isinstance(v, (int, float)):
        return f"number {v!r}"
    if isinstance(v, str):
        return f"string {v[:60]!r}" + ("..." if len(v) > 60 else "")
    if isinstance(v, (list, tuple)):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


class _Parser:
    def __init__(self, root: str) -> None:
        self.root = root
        self.nodes = 0

    def node(self, obj: Any, path: str, depth: int) -> Filter:
        if depth > MAX_DEPTH:
            raise _err(path, f"nested deeper than {MAX_DEPTH} levels")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _err(path, f"filter has more than {MAX_NODES} nodes")
        if not isinstance(obj, dict):
            raise _err(path, f"expected an object (a {{field, op, value}} leaf or and/or/not), got {_describe(obj)}")
        if not obj:
            raise _err(path, "empty object; expected a {field, op, value} leaf or one of and/or/not")
        node_keys = [k for k in _NODE_KEYS if k in obj]
        unknown = sorted(str(k) for k in obj if k not in _LEAF_KEYS and k not in _NODE_KEYS)
        if unknown:
            raise _err(_join(path, unknown[0]), "unknown key; expected field/op/value, or one of and/or/not")
        if node_keys and len(obj) > len(node_keys):
            raise _err(path, f"mixes {node_keys[0]!r} with field/op/value; put the leaf inside the {node_keys[0]!r} list")
        if len(node_keys) > 1:
            raise _err(path, f"has both {node_keys[0]!r} and {node_keys[1]!r}; nest them, one per object")
        if not node_keys:
            return self.leaf(obj, path)
        key = node_keys[0]
        sub = _join(path, key)
        if key == "not":
            return Not(self.node(obj["not"], sub, depth + 1))
        items = obj[key]
        if not isinstance(items, list):
            raise _err(sub, f"expected a list of filters, got {_describe(items)}")
        if not items:
            raise _err(sub, f"empty list; {key!r} needs at least one filter")
        children = tuple(self.node(c, f"{sub}[{i}]", depth + 1) for i, c in enumerate(items))
        return And(children) if key == "and" else Or(children)

    def leaf(self, obj: dict, path: str) -> Leaf:
        for key in ("field", "op"):
            if key not in obj:
                raise _err(_join(path, key), "missing; a leaf needs field, op and (usually) value")
        field = parse_field(obj["field"], _join(path, "field"))
        op = obj["op"]
        op_path = _join(path, "op")
        if not isinstance(op, str) or op not in ALL_OPS:
            raise _err(op_path, f"unknown op {op!r}; expected one of {', '.join(sorted(ALL_OPS))}")
        allowed = OPS_BY_KIND[field.kind]
        if op not in allowed:
            raise _err(
                op_path,
                f"op {op!r} does not apply to {field.name!r} ({_KIND_HELP[field.kind]}); "
                f"use one of {', '.join(sorted(allowed))}",
            )
        value = _value(field, op, obj.get("value", _MISSING), _join(path, "value"))
        return Leaf(field, op, value)


def parse_field(name: Any, path: str) -> Field:
    if not isinstance(name, str):
        raise _err(path, f"expected a field name, got {_describe(name)}")
    _check_unicode(name, path)
    if name in COLUMN_FIELDS:
        kind, column = COLUMN_FIELDS[name]
        return Field(name, kind, column)
    prefix, dot, key = name.partition(".")
    if prefix in PREFIX_FIELDS and dot:
        if not key:
            raise _err(path, f"{name!r} needs a key after the dot, e.g. '{prefix}.gen_ai.request.model'")
        kind, column = PREFIX_FIELDS[prefix]
        return Field(name, kind, column, key)
    hint = difflib.get_close_matches(name, [*COLUMN_FIELDS, "attributes.", "resource.", "score."], n=1)
    did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise _err(
        path,
        f"unknown field {name!r}{did_you_mean}; expected one of {', '.join(COLUMN_FIELDS)}, "
        "attributes.<key>, resource.<key>, score.<name>",
    )


def _value(field: Field, op: str, raw: Any, path: str) -> Any:
    if op in PRESENCE_OPS:
        if raw is not _MISSING and raw is not None:
            raise _err(path, f"{op!r} takes no value, got {_describe(raw)}")
        return None
    if raw is _MISSING:
        raise _err(path, f"missing; {op!r} needs a value")
    if raw is None:
        raise _err(path, f"null is not a value for {op!r}; use 'exists' or 'not_exists' to test presence")
    if op in ("in", "nin"):
        if not isinstance(raw, (list, tuple)):
            raise _err(path, f"expected a list for {op!r}, got {_describe(raw)}")
        if len(raw) > MAX_LIST_VALUES:
            raise _err(path, f"list has {len(raw)} values; at most {MAX_LIST_VALUES} are allowed")
        return tuple(_scalar(field, op, v, f"{path}[{i}]") for i, v in enumerate(raw))
    if op in TEXT_OPS:
        if not isinstance(raw, str):
            raise _err(path, f"expected a string for {op!r}, got {_describe(raw)}")
        _check_unicode(raw, path)
        if op == "regex":
            problem = regex_error(raw)
            if problem:
                raise _err(path, f"invalid regex {raw[:60]!r}: {problem}")
        return raw
    if op in ORDER_OPS and field.kind in ("attribute", "score"):
        return _number(raw, path, f"a number for {op!r} on {field.name!r}")
    return _scalar(field, op, raw, path)


def _scalar(field: Field, op: str, v: Any, path: str) -> Any:
    kind = field.kind
    if kind == "text":
        if isinstance(v, str):
            return _check_unicode(v, path)
        raise _err(path, f"expected a string for {field.name!r}, got {_describe(v)}")
    if kind == "id":
        size = ID_LENGTHS[field.name]
        if isinstance(v, str) and len(v) == size and set(v.lower()) <= _HEX:
            return v.lower()
        raise _err(path, f"expected {size} hex characters for {field.name!r}, got {_describe(v)}")
    if kind == "enum":
        return _enum(field.name, v, path)
    if kind == "number":
        return _number(v, path, f"a number for {field.name!r}")
    if kind == "time":
        try:
            return parse_time(v)
        except (TypeError, ValueError, OverflowError) as e:
            raise _err(path, f"expected an ISO-8601 time or epoch seconds/ms/us/ns for {field.name!r}: {e}") from None
    if kind == "bool":
        if isinstance(v, bool):
            return v
        raise _err(path, f"expected true or false for {field.name!r}, got {_describe(v)}")
    # attribute / score: the value's JSON type picks the comparison (see README).
    if isinstance(v, str):
        return _check_unicode(v, path)
    if isinstance(v, bool):
        return v
    return _number(v, path, f"a string, number or boolean for {op!r} on {field.name!r}")


def _check_unicode(v: str, path: str) -> str:
    # json.loads lets lone surrogates through; DuckDB cannot bind them and fails mid-query.
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise _err(path, f"{_describe(v)} is not valid Unicode (it has a lone surrogate)") from None
    return v


def _number(v: Any, path: str, expected: str) -> int | float:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return v
    raise _err(path, f"expected {expected}, got {_describe(v)}")


def _enum(name: str, v: Any, path: str) -> str:
    names, prefix = ENUMS[name]
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(names):
        return names[v]
    if isinstance(v, str):
        upper = v.strip().upper()
        upper = upper[len(prefix):] if upper.startswith(prefix) else upper
        if upper in names:
            return upper
    choices = ", ".join(n.lower() for n in names)
    raise _err(path, f"expected one of {choices} (or {prefix}* names, or 0-{len(names) - 1}) for {name!r}, got {_describe(v)}")


def parse_time(v: Any) -> datetime:
    """A naive-UTC datetime from an ISO-8601 string, an epoch number or a datetime.

    Epoch magnitude picks the unit: |x| < 1e11 seconds (until year 5138), < 1e14 ms,
    < 1e17 microseconds, otherwise nanoseconds. Precision stops at microseconds.
    """
    if isinstance(v, datetime):
        dt = v
    elif isinstance(v, str):
        dt = datetime.fromisoformat(v.strip())  # 3.11: accepts 'Z', offsets, dates, >6 digit fractions
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        dt = _from_epoch(v)
    else:
        raise TypeError(f"got {_describe(v)}")
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    if not TIME_MIN <= dt <= TIME_MAX:
        raise ValueError(f"{dt.isoformat()} is outside the times spans can have ({TIME_MIN.date()} to {TIME_MAX.date()})")
    return dt


def _from_epoch(x: int | float) -> datetime:
    if not math.isfinite(x):
        raise ValueError(f"got {x!r}")
    size = abs(x)
    if size < 1e11:
        micros = x * 1_000_000 if isinstance(x, int) else round(x * 1e6)
    elif size < 1e14:
        micros = x * 1_000 if isinstance(x, int) else round(x * 1e3)
    elif size < 1e17:
        micros = x if isinstance(x, int) else round(x)
    else:
        micros = x // 1_000 if isinstance(x, int) else round(x / 1e3)
    return _EPOCH + timedelta(microseconds=micros)


@functools.lru_cache(maxsize=512)
def regex_error(pattern: str) -> str | None:
    """Why DuckDB's RE2 refuses `pattern`, or None when it compiles."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"longer than {MAX_PATTERN_CHARS} characters"
    return re2_error(pattern)
