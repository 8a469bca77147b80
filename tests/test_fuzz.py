"""Short fuzz runs: decoders and parsers only ever succeed or raise their documented error.

The long runs are `python bench/fuzz.py` (same targets, many more examples).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_targets as ft

SHORT = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SHORT
@given(st.binary(max_size=2048) | ft.mutated_bytes())
def test_protobuf_decoder(body: bytes) -> None:
    ft.target_decode_protobuf(body)


@SHORT
@given(st.binary(max_size=512) | ft.json_values.map(lambda v: __import__("json").dumps(v).encode()) | ft.mutated_json())
def test_json_decoder(body: bytes) -> None:
    ft.target_decode_json(body)


@SHORT
@given(ft.filter_trees)
def test_filter_compiler(tree) -> None:
    ft.target_filter(tree)


@SHORT
@given(ft.rules_documents())
def test_rules_parser(text: str) -> None:
    ft.target_rules(text)


def test_findings_stay_fixed() -> None:
    """Inputs found by fuzzing (regressions): each must keep failing cleanly."""
    for body in (b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x02\x0a\x00" * 3):
        ft.target_decode_protobuf(body)
    for body in (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": null}]}]}]}', b"[]", b'"x"', b"1e999"):
        ft.target_decode_json(body)
    for tree in ({"not": []}, {"and": {}}, {"field": "attributes.", "op": "eq", "value": 1}, {"field": "regex", "op": "regex", "value": "("}):
        ft.target_filter(tree)
