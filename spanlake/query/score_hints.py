"""Which scores a filter's matches must carry, so a search can start from the small scores table.

A `score.<name>` leaf compiles to an EXISTS over scores, which DuckDB checks for every span the
scan reads. When every match must carry some score, the scored traces' time range (from the
scores and trace_index tables) bounds the spans scan, and zone maps skip everything else.
"""

from __future__ import annotations

from spanlake.filters.model import And, Filter, Leaf, Not, Or


def required_score_names(f: Filter) -> frozenset[str]:
    """Score names that every span matching `f` carries (empty when none is certain)."""
    if isinstance(f, Leaf):
        if f.field.kind == "score" and f.op != "not_exists" and f.field.key:
            return frozenset({f.field.key})
        return frozenset()
    if isinstance(f, And):
        names: frozenset[str] = frozenset()
        for child in f.children:
            names |= required_score_names(child)
        return names
    if isinstance(f, Or):
        sets = [required_score_names(child) for child in f.children]
        return frozenset.intersection(*sets) if sets else frozenset()
    if isinstance(f, Not):
        return frozenset()
    return frozenset()
