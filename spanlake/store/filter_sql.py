"""Compile a Filter (spanlake/filters/: the language) to one parameterized DuckDB boolean expression.

It lives in the store because it writes the store's SQL dialect. Other packages may compile a
filter and hand the CompiledFilter to store functions; only those put its SQL into statements.

The SQL must run both on the stored `spans` table (JSON columns) and on a just-decoded Arrow
batch registered in DuckDB (the same columns as VARCHAR), so it sticks to functions that
accept JSON text either way. Every value and every attribute key is a bound `?` parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from spanlake.filters.model import And, Filter, Leaf, Not, Or
from spanlake.filters.parse import parse_filter

Frag = tuple[str, list[Any]]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_INT64 = 2**63 - 1
_COMPARE = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# A negative op is NOT of its positive twin with "unknown" counted as no match, so a span
# without the attribute is `ne` anything and `nin` any list. Score leaves differ: they ask
# whether some score passes, so only `not_exists` is a complement there (see README).
_NEGATED = {"ne": "eq", "nin": "in", "not_exists": "exists"}
SCORE_SCOPES = ("span", "trace")
_FALSE: Frag = ("(false)", [])

# How an attribute leaf reads a value: (column SQL, JSON pointer, form) -> SQL and its params.
AttributeSource = Callable[[str, str, str], Frag]

# The forms a leaf reads an attribute in, as SQL over {col} with the pointer as the one `?`.
ATTRIBUTE_FORMS = {
    "text": "json_extract_string({col}, ?)",
    "number": "TRY_CAST(CAST(json_extract({col}, ?) AS VARCHAR) AS DOUBLE)",
    "raw": "CAST(json_extract({col}, ?) AS VARCHAR)",
}


def extract_inline(col: str, ptr: str, form: str) -> Frag:
    """The default AttributeSource: extract the value where the leaf uses it."""
    return ATTRIBUTE_FORMS[form].format(col=col), [ptr]


@dataclass(frozen=True)
class CompiledFilter:
    """`sql` is a boolean expression over the spans alias with `?` placeholders for `params`.

    In a WHERE clause use it as is. It may evaluate to NULL where the answer is "no" (that
    keeps plain comparisons pushable into scans); to SELECT it as a value use `value_sql`.
    `uses_scores` says the SQL reads the `scores` table, which must then be reachable.
    """

    sql: str
    params: list[Any] = field(default_factory=list)
    uses_scores: bool = False

    @property
    def value_sql(self) -> str:
        """The predicate as a never-NULL boolean, for a SELECT list."""
        return f"coalesce({self.sql}, false)"


def compile_filter(
    f: Filter | dict | str,
    *,
    alias: str = "s",
    scores_table: str = "scores",
    score_scope: str = "span",
    attribute_source: AttributeSource = extract_inline,
) -> CompiledFilter:
    """Compile a parsed Filter (or a raw dict / JSON text, parsed first) to SQL over `alias`.

    score_scope "span" reads the scores of the span itself; "trace" reads every score of the
    span's trace, for listings that select traces ("the trace has no such score").
    attribute_source decides where attribute values come from (see extract_inline).
    """
    tree = parse_filter(f)
    for what, name in (("alias", alias), ("scores_table", scores_table)):
        if not _IDENT.match(name):
            raise ValueError(f"{what} must be a plain SQL identifier, got {name!r}")
    if score_scope not in SCORE_SCOPES:
        raise ValueError(f"score_scope must be one of {', '.join(SCORE_SCOPES)}, got {score_scope!r}")
    compiler = _Compiler(alias, scores_table, score_scope, attribute_source)
    sql, params = compiler.node(tree)
    return CompiledFilter(sql, params, compiler.uses_scores)


def json_pointer(key: str) -> str:
    """A JSON Pointer (RFC 6901) for one flat key.

    Pointers need no quoting, unlike `$."key"` paths, where DuckDB reads a key of `*` as a
    wildcard and cannot express the empty key.
    """
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _bind_number(v: int | float) -> int | float:
    # Python ints past int64 would bind as HUGEINT; a double compares the same way.
    return float(v) if isinstance(v, int) and abs(v) > _INT64 else v


def _placeholders(n: int) -> str:
    return ", ".join("?" * n)


def _any_of(candidates: list[Frag | None]) -> Frag:
    frags = [f for f in candidates if f is not None]
    if not frags:
        return _FALSE
    if len(frags) == 1:
        return frags[0]
    return "(" + " OR ".join(s for s, _ in frags) + ")", [p for _, ps in frags for p in ps]


class _Compiler:
    def __init__(self, alias: str, scores_table: str, score_scope: str, attribute_source: AttributeSource) -> None:
        self.attribute_source = attribute_source
        self.alias = alias
        self.scores_table = scores_table
        self.score_scope = score_scope
        self.score_alias = "sc" if alias != "sc" else "sc2"
        self.uses_scores = False

    def node(self, f: Filter) -> Frag:
        if isinstance(f, (And, Or)):
            parts = [self.node(c) for c in f.children]
            joiner = " AND " if isinstance(f, And) else " OR "
            return "(" + joiner.join(s for s, _ in parts) + ")", [p for _, ps in parts for p in ps]
        if isinstance(f, Not):
            sql, params = self.node(f.child)
            return f"(NOT coalesce({sql}, false))", params
        if f.op in _NEGATED and f.field.kind != "score":
            sql, params = self.leaf(Leaf(f.field, _NEGATED[f.op], f.value))
            return f"(NOT coalesce({sql}, false))", params
        return self.leaf(f)

    def leaf(self, leaf: Leaf) -> Frag:
        kind = leaf.field.kind
        if kind == "attribute":
            return self.attribute(leaf)
        if kind == "score":
            self.uses_scores = True
            return self.score(leaf)
        col = f"{self.alias}.{leaf.field.column}"
        if kind == "bool":  # is_root; an empty parent id is treated like a missing one
            sql = f"(coalesce({col}, '') = '')"
            return (sql, []) if leaf.value else (f"(NOT {sql})", [])
        value = leaf.value
        if kind == "number":
            value = tuple(map(_bind_number, value)) if isinstance(value, tuple) else _bind_number(value)
        return _apply(leaf.op, col, [], value)

    def attribute(self, leaf: Leaf) -> Frag:
        # Text forms come from json_extract_string (numbers and booleans as their JSON text);
        # numeric forms only from JSON numbers. Inline, that is one JSON parse per leaf and row;
        # a shared attribute_source extracts each (column, key, form) once per row instead.
        col, ptr = f"{self.alias}.{leaf.field.column}", json_pointer(leaf.field.key or "")

        def read(form: str) -> Frag:
            return self.attribute_source(col, ptr, form)

        op, value = leaf.op, leaf.value
        if op == "exists":
            text, params = read("text")
            return f"({text} IS NOT NULL)", params
        if op in ("eq", "in"):
            values = value if op == "in" else (value,)
            strings = [v for v in values if isinstance(v, str)]
            bools = ["true" if v else "false" for v in values if isinstance(v, bool)]
            numbers = [float(v) for v in values if not isinstance(v, (str, bool))]
            return _any_of(
                [
                    _apply("in", *read("text"), tuple(strings)) if strings else None,
                    _apply("in", *read("number"), tuple(numbers)) if numbers else None,
                    _apply("in", *read("raw"), tuple(bools)) if bools else None,
                ]
            )
        if op in ("gt", "gte", "lt", "lte"):
            return _apply(op, *read("number"), float(value))
        return _apply(op, *read("text"), value)

    def score(self, leaf: Leaf) -> Frag:
        """Does some score of that name (on this span, or in this trace) pass the test?"""
        sc, s = self.score_alias, self.alias
        same_span = f" AND {sc}.span_id = {s}.span_id" if self.score_scope == "span" else ""
        head = (
            f"EXISTS (SELECT 1 FROM {self.scores_table} {sc} WHERE {sc}.trace_id = {s}.trace_id"
            f"{same_span} AND {sc}.name = ?"
        )
        op, value = leaf.op, leaf.value
        if op in ("exists", "not_exists"):
            return (f"({head}))" if op == "exists" else f"(NOT {head}))"), [leaf.field.key]
        if op in ("eq", "ne", "in", "nin"):
            values = value if op in ("in", "nin") else (value,)
            labels = tuple(v for v in values if isinstance(v, str))
            numbers = tuple(float(v) for v in values if not isinstance(v, str))
            cond = _any_of(
                [
                    _apply("in", f"{sc}.label", [], labels) if labels else None,
                    _apply("in", f"{sc}.value", [], numbers) if numbers else None,
                ]
            )
            if op in ("ne", "nin"):  # per score: a missing value or label is "not equal"
                cond = f"(NOT coalesce({cond[0]}, false))", cond[1]
        elif op in ("gt", "gte", "lt", "lte"):
            cond = _apply(op, f"{sc}.value", [], float(value))
        else:
            cond = _apply(op, f"{sc}.label", [], value)
        return f"({head} AND {cond[0]}))", [leaf.field.key, *cond[1]]


def _apply(op: str, expr: str, expr_params: list[Any], value: Any) -> Frag:
    """`expr <op> value` for a positive op; expr_params are the expr's own placeholders."""
    if op == "exists":
        return f"({expr} IS NOT NULL)", list(expr_params)
    if op == "in":
        if not value:
            return _FALSE
        if len(value) == 1:
            return f"({expr} = ?)", [*expr_params, value[0]]
        return f"({expr} IN ({_placeholders(len(value))}))", [*expr_params, *value]
    if op in _COMPARE:
        return f"({expr} {_COMPARE[op]} ?)", [*expr_params, value]
    if op == "contains":
        return f"contains({expr}, ?)", [*expr_params, value]
    if op == "glob":
        return f"({expr} GLOB ?)", [*expr_params, value]
    if op == "regex":
        return f"regexp_matches({expr}, ?)", [*expr_params, value]
    raise AssertionError(f"unhandled op {op!r}")  # parse_filter admits no other op

