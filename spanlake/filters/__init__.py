"""The one filter language: a JSON tree that compiles to a parameterized DuckDB predicate.

Used by span search, capture rules, batch-scoring selection and dataset capture. The
language and its exact semantics (NULLs, types, time values) are in README.md here.

    f = parse_filter({"and": [{"field": "model", "op": "eq", "value": "gpt-4o"},
                              {"field": "duration_ms", "op": "gt", "value": 2000}]})
    c = compile_filter(f)                       # alias "s" for the spans table
    con.execute(f"SELECT * FROM spans s WHERE {c.sql}", c.params)
"""

from spanlake.filters.compile import ATTRIBUTE_FORMS, AttributeSource, CompiledFilter, compile_filter, json_pointer
from spanlake.filters.model import MAX_DEPTH, MAX_LIST_VALUES, MAX_NODES, Filter, FilterError
from spanlake.filters.parse import parse_filter, parse_time
from spanlake.filters.reference import evaluate_reference

__all__ = [
    "ATTRIBUTE_FORMS",
    "AttributeSource",
    "MAX_DEPTH",
    "MAX_LIST_VALUES",
    "MAX_NODES",
    "CompiledFilter",
    "Filter",
    "FilterError",
    "compile_filter",
    "evaluate_reference",
    "json_pointer",
    "parse_filter",
    "parse_time",
]
