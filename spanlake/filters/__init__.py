"""The one filter language: a JSON tree, parsed and validated here.

Used by span search, capture rules, batch-scoring selection and dataset capture. The
language and its exact semantics (NULLs, types, time values) are in README.md here. Its SQL
is the store's: `spanlake.store.filter_sql.compile_filter` turns a parsed filter into one
parameterized DuckDB predicate that only store functions put into statements.

    f = parse_filter({"and": [{"field": "model", "op": "eq", "value": "gpt-4o"},
                              {"field": "duration_ms", "op": "gt", "value": 2000}]})
"""

from spanlake.filters.model import MAX_DEPTH, MAX_LIST_VALUES, MAX_NODES, Filter, FilterError
from spanlake.filters.parse import parse_filter, parse_time
from spanlake.filters.reference import evaluate_reference

__all__ = [
    "MAX_DEPTH",
    "MAX_LIST_VALUES",
    "MAX_NODES",
    "Filter",
    "FilterError",
    "evaluate_reference",
    "parse_filter",
    "parse_time",
]
