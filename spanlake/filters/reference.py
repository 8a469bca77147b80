"""A pure-Python evaluator with the same semantics as the compiled SQL.

It exists so property tests can check the SQL compiler against an independent, readable
statement of the rules, and so small in-process checks need no DuckDB. It mirrors DuckDB's
primitives where they are unusual: GLOB works on UTF-8 bytes, and JSON numbers turn into
text the way DuckDB's JSON writer prints them. Regexes run on Python's `re`, which agrees
with DuckDB's RE2 on the common syntax (not, e.g., on `$` before a trailing newline).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any, Callable

from spanlake.filters.model import And, Filter, Leaf, Not, Or
from spanlake.filters.parse import parse_filter, parse_time

_NEGATED = {"ne": "eq", "nin": "in", "not_exists": "exists"}
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def evaluate_reference(
    f: Filter | dict | str,
    span: Mapping[str, Any],
    scores: Iterable[Mapping[str, Any]] = (),
    *,
    score_scope: str = "span",
) -> bool:
    """Does `span` (a spans-table row as a dict) match `f`, given the `scores` rows?

    JSON columns may be JSON text (as stored) or already-decoded dicts. `score_scope` is as
    for compile_filter.
    """
    if score_scope not in ("span", "trace"):
        raise ValueError(f"score_scope must be span or trace, got {score_scope!r}")
    return _Reference(span, list(scores), score_scope).eval(parse_filter(f))


class _Reference:
    def __init__(self, span: Mapping[str, Any], scores: list[Mapping[str, Any]], score_scope: str) -> None:
        self.span, self.scores, self.score_scope = span, scores, score_scope

    def eval(self, f: Filter) -> bool:
        if isinstance(f, And):
            return all(self.eval(c) for c in f.children)
        if isinstance(f, Or):
            return any(self.eval(c) for c in f.children)
        if isinstance(f, Not):
            return not self.eval(f.child)
        if f.field.kind == "score":
            return self.score(f)
        if f.op in _NEGATED:
            return not self.leaf(Leaf(f.field, _NEGATED[f.op], f.value))
        return self.leaf(f)

    def leaf(self, leaf: Leaf) -> bool:
        kind, op, value = leaf.field.kind, leaf.op, leaf.value
        if kind == "bool":
            return (not self.span.get("parent_span_id")) == value
        if kind == "attribute":
            return _attribute(leaf, self.span)
        actual = self.span.get(leaf.field.column)
        if op == "exists" or actual is None:
            return actual is not None
        if kind == "time":
            actual = parse_time(actual)
        if op == "eq":
            return actual == value
        if op == "in":
            return actual in value
        if op in _ORDER:
            return _ORDER[op](actual, value)
        return _text_op(op, actual, value)

    def score(self, leaf: Leaf) -> bool:
        """Some score of that name on this span (or in this trace) passes; not_exists: none exists."""
        trace_id, span_id = self.span.get("trace_id"), self.span.get("span_id")
        mine = [
            sc
            for sc in self.scores
            if trace_id is not None
            and sc.get("trace_id") == trace_id
            and (self.score_scope == "trace" or (span_id is not None and sc.get("span_id") == span_id))
            and sc.get("name") == leaf.field.key
        ]
        if leaf.op in ("exists", "not_exists"):
            return bool(mine) == (leaf.op == "exists")
        return any(_score_passes(leaf.op, leaf.value, sc) for sc in mine)


def _score_passes(op: str, value: Any, sc: Mapping[str, Any]) -> bool:
    number, label = sc.get("value"), sc.get("label")
    if op in ("eq", "ne", "in", "nin"):
        values = value if op in ("in", "nin") else (value,)
        hit = any(
            (label == v) if isinstance(v, str) else (number is not None and float(number) == float(v)) for v in values
        )
        return hit if op in ("eq", "in") else not hit
    if op in _ORDER:
        return number is not None and _ORDER[op](float(number), float(value))
    return label is not None and _text_op(op, label, value)


def _attribute(leaf: Leaf, span: Mapping[str, Any]) -> bool:
    doc = span.get(leaf.field.column)
    if isinstance(doc, (str, bytes)):
        doc = json.loads(doc)
    raw = doc.get(leaf.field.key) if isinstance(doc, dict) else None
    op, value = leaf.op, leaf.value
    if op == "exists" or raw is None:  # JSON null counts as absent
        return raw is not None
    number = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
    if op in ("eq", "in"):
        values = value if op == "in" else (value,)
        return any(_same(raw, number, v) for v in values)
    if op in _ORDER:
        return number is not None and _ORDER[op](number, float(value))
    return _text_op(op, json_text(raw), value)


def _same(raw: Any, number: float | None, v: Any) -> bool:
    """eq on an attribute: the filter value's JSON type picks the comparison."""
    if isinstance(v, bool):
        return isinstance(raw, bool) and raw == v
    if isinstance(v, str):
        return json_text(raw) == v
    return number is not None and number == float(v)


def _text_op(op: str, actual: str, pattern: str) -> bool:
    if op == "contains":
        return pattern in actual
    if op == "glob":
        compiled = glob_regex(pattern)
        return compiled is not None and compiled.fullmatch(actual.encode()) is not None
    if op == "regex":
        return re.search(pattern, actual) is not None
    raise AssertionError(f"unhandled op {op!r}")


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[bytes] | None:
    """DuckDB's GLOB as a bytes regex, or None for a pattern that can never match.

    DuckDB matches bytes: `?` is one byte, `*` any bytes (newlines too), `\\x` a literal x,
    `[abc]` / `[a-c]` / `[!abc]` a byte class where a leading `]` is literal. An unclosed
    class or a trailing backslash matches nothing.
    """
    src, out, i = pattern.encode(), [b"(?s)"], 0
    while i < len(src):
        c = src[i : i + 1]
        if c == b"*":
            out.append(b".*")
        elif c == b"?":
            out.append(b".")
        elif c == b"\\":
            i += 1
            if i == len(src):
                return None
            out.append(re.escape(src[i : i + 1]))
        elif c == b"[":
            cls, i = _glob_class(src, i + 1)
            if cls is None:
                return None
            out.append(cls)
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile(b"".join(out))


def _glob_class(src: bytes, i: int) -> tuple[bytes | None, int]:
    """Parse a `[...]` class starting after `[`; returns (regex, index after `]`)."""
    invert = src[i : i + 1] == b"!"
    i += invert
    start, members = i, []
    while i < len(src):
        if src[i : i + 1] == b"]" and i > start:
            if not members:  # every range was backwards: matches nothing (or anything if inverted)
                return (b"." if invert else b"(?!)"), i + 1
            body = b"".join(members)
            return (b"[^" if invert else b"[") + body + b"]", i + 1
        if i + 1 == len(src):
            break
        if src[i + 1 : i + 2] == b"-":
            if i + 2 == len(src):
                break
            lo, hi = src[i], src[i + 2]
            if lo <= hi:
                members.append(_byte(lo) + b"-" + _byte(hi))
            i += 3
        else:
            members.append(_byte(src[i]))
            i += 1
    return None, i


def _byte(b: int) -> bytes:
    return b"\\x%02x" % b


def json_text(v: Any) -> str:
    """An attribute value as DuckDB's json_extract_string prints it."""
    if isinstance(v, str):
        return v
    return _json_write(v)


def _json_write(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float_text(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _json_write(x) for k, x in v.items()) + "}"
    return "[" + ",".join(_json_write(x) for x in v) + "]"


def _float_text(x: float) -> str:
    """Shortest round-trip digits; plain notation for 1e-6 <= |x| < 1e21, else `1.5e21`."""
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    d = Decimal(repr(x))
    if 1e-6 <= abs(x) < 1e21:
        s = format(d, "f")
        return s if "." in s else s + ".0"
    sign, digits, exp = d.normalize().as_tuple()
    exp = int(exp)  # finite input, so never the 'n'/'F' markers
    mantissa = "".join(map(str, digits))
    mantissa = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
    return ("-" if sign else "") + f"{mantissa}e{exp + len(digits) - 1}"
