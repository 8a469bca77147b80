"""Fuzz targets shared by the short runs in tests/test_fuzz.py and the long runs in bench/fuzz.py.

Each target takes one generated input and must either succeed or raise the one documented
error type of that parser. Anything else (another exception, a hang, a crash) is a finding.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
from hypothesis import strategies as st

from otlp_builders import llm_trace, request, to_otlp_json
from spanlake.capture.rules import RulesError, parse_rules
from spanlake.filters import FilterError
from spanlake.ingest.decode import DecodeError, decode_json, decode_protobuf
from spanlake.store.filter_sql import compile_filter
from spanlake.store.schema import MIGRATIONS

_, _SPANS = llm_trace(3)
VALID_PROTOBUF = request(_SPANS).SerializeToString()
VALID_JSON = to_otlp_json(request(_SPANS))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)

FIELDS = [
    "trace_id", "span_id", "name", "kind", "status", "service", "duration_ms", "start_time", "is_root", "model",
    "input", "input_tokens", "attributes.a.b", "resource.service.name", "score.quality", "nope", "attributes.", "",
]
OPS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "glob", "regex", "exists", "not_exists", "explode"]

leaves = st.fixed_dictionaries(
    {"field": st.sampled_from(FIELDS) | st.text(max_size=10), "op": st.sampled_from(OPS)},
    optional={"value": json_values | st.sampled_from(["(", "[a-", "*", "2026-01-01T00:00:00Z", "ERROR", "0" * 32])},
)
filter_trees = st.recursive(
    leaves | json_values,
    lambda children: st.dictionaries(st.sampled_from(["and", "or", "not", "field"]), children | st.lists(children, max_size=3), min_size=1, max_size=2),
    max_leaves=12,
)


@st.composite
def mutated_bytes(draw: st.DrawFn, base: bytes = VALID_PROTOBUF) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        choice = draw(st.integers(0, 2))
        if choice == 0:
            data[position] = draw(st.integers(0, 255))
        elif choice == 1:
            del data[position : position + draw(st.integers(1, 16))]
        else:
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@st.composite
def mutated_json(draw: st.DrawFn) -> bytes:
    """The valid OTLP/JSON document with a few nodes replaced by arbitrary JSON values."""
    doc: Any = json.loads(json.dumps(VALID_JSON))
    for _ in range(draw(st.integers(1, 4))):
        node, key = doc, None
        path = []
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)) if isinstance(node, dict) else st.integers(0, len(node) - 1))
            path.append((node, key))
            node = node[key]
        if path:
            parent, key = path[-1]
            parent[key] = draw(json_values)
    return json.dumps(doc).encode()


def target_decode_protobuf(body: bytes) -> None:
    try:
        decode_protobuf(body)
    except DecodeError:
        pass


def target_decode_json(body: bytes) -> None:
    try:
        decode_json(body)
    except DecodeError:
        pass


_CON: duckdb.DuckDBPyConnection | None = None


def _connection() -> duckdb.DuckDBPyConnection:
    global _CON
    if _CON is None:
        _CON = duckdb.connect()
        for statements in MIGRATIONS:
            for statement in statements:
                _CON.execute(statement)
    return _CON


def target_filter(tree: Any) -> None:
    """A filter is refused with FilterError, or compiles to SQL that DuckDB runs without error."""
    try:
        compiled = compile_filter(tree)
    except FilterError:
        return
    _connection().execute(f"SELECT count(*) FROM spans s WHERE {compiled.sql}", compiled.params).fetchall()


def target_rules(text: str) -> None:
    try:
        parse_rules(text, "fuzz.yaml")
    except RulesError:
        pass


def rules_documents() -> st.SearchStrategy[str]:
    """YAML-ish text: real rules structures with junk mixed in, and raw text."""
    rule = st.fixed_dictionaries(
        {"name": st.text(max_size=8), "dataset": json_values, "when": filter_trees},
        optional={"scope": st.sampled_from(["span", "trace", "x"]), "sample": json_values, "max_per_hour": json_values,
                  "tags": json_values, "input": json_values, "capture_spans": filter_trees, "extra": json_values},
    )
    structured = st.fixed_dictionaries({"rules": st.lists(rule, max_size=3) | json_values}).map(json.dumps)
    return structured | st.text(max_size=200)
