"""Traces as the API shows them: spans ordered parents before children.

The spans come from the store (store/trace_reads.py) by start time; this module only orders them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import duckdb

from spanlake.store import trace_reads


def get_trace_spans(cur: duckdb.DuckDBPyConnection, trace_id: str) -> list[dict[str, Any]] | None:
    """All spans of a trace ordered parents first; None when the store never saw the trace."""
    spans = trace_reads.trace_spans(cur, trace_id)
    return None if spans is None else order_parents_first(spans)


def load_traces(cur: duckdb.DuckDBPyConnection, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Spans of many traces, each list ordered parents first; unknown ids are absent."""
    return {trace_id: order_parents_first(spans) for trace_id, spans in trace_reads.spans_of_traces(cur, trace_ids).items()}


def order_parents_first(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth-first from the roots, siblings by start time; spans whose parent is missing count as roots."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:  # already sorted by start time
        parent = span["parent_span_id"]
        children[parent if parent in ids else None].append(span)
    ordered: list[dict[str, Any]] = []
    stack = list(reversed(children[None]))
    seen: set[str] = set()
    while stack:
        span = stack.pop()
        if span["span_id"] in seen:
            continue
        seen.add(span["span_id"])
        ordered.append(span)
        stack.extend(reversed(children.get(span["span_id"], [])))
    # A cycle of parent ids (a broken client) leaves spans unreached: keep them, at the end.
    ordered.extend(s for s in spans if s["span_id"] not in seen)
    return ordered
