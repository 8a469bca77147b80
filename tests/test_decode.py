"""Unit tests of the OTLP decoder (spanlake.ingest.decode) and the LLM convention mapping.

Pure functions, so no server: build requests with the protobuf classes, decode them through
both encodings, and check the Arrow rows.
"""

from __future__ import annotations

import base64
import json
import pickle
import random
from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from spanlake.ingest.decode import DecodeError, Decoded, decode_json, decode_message, decode_protobuf
from spanlake.ingest.semconv import LLM_COLUMNS
from spanlake.store.schema import SPAN_SCHEMA

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"
PARENT = "00f067aa0ba902b7"
T0 = 1_700_000_000_123_456_789


# --- builders ------------------------------------------------------------------------------


def av(value: Any) -> AnyValue:
    """Python value -> AnyValue (bytes stay bytes, dicts become kvlists)."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[av(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=kvs(value)))
    return AnyValue(string_value=value)


def kvs(mapping: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=av(v)) for k, v in mapping.items()]


def make_span(
    trace_id: str = TRACE,
    span_id: str = SPAN,
    parent: str = "",
    name: str = "op",
    attributes: dict[str, Any] | None = None,
    **fields: Any,
) -> Span:
    fields.setdefault("start_time_unix_nano", T0)
    fields.setdefault("end_time_unix_nano", T0 + 1_500_000)
    return Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent),
        name=name,
        attributes=kvs(attributes or {}),
        **fields,
    )


def make_request(
    *spans: Span,
    resource: dict[str, Any] | None = None,
    scope_name: str = "my.scope",
    scope_version: str = "1.0",
    scope_attributes: dict[str, Any] | None = None,
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(kvs({"service.name": "svc"} if resource is None else resource))
    ss = rs.scope_spans.add()
    ss.scope.name = scope_name
    ss.scope.version = scope_version
    ss.scope.attributes.extend(kvs(scope_attributes or {}))
    ss.spans.extend(spans)
    return request


def to_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """What an OTLP/JSON exporter sends: proto3 JSON, but hex ids and integer enums."""
    doc = json_format.MessageToDict(request, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for item in [span] + span.get("links", []):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in item:
                            item[key] = base64.b64decode(item[key]).hex()
    return json.dumps(doc).encode()


def both(request: ExportTraceServiceRequest) -> list[Decoded]:
    """Decode through both encodings; they must agree exactly."""
    from_pb = decode_protobuf(request.SerializeToString())
    from_json = decode_json(to_otlp_json(request))
    assert from_pb.spans.schema == SPAN_SCHEMA
    assert from_json.spans.equals(from_pb.spans), (pylist(from_json.spans), pylist(from_pb.spans))
    assert (from_json.rejected, from_json.error_message) == (from_pb.rejected, from_pb.error_message)
    return [from_pb, from_json]


def pylist(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as dicts, times as integer nanoseconds (datetime cannot hold nanoseconds)."""
    for name in ("start_time", "end_time"):
        table = table.set_column(table.schema.get_field_index(name), name, table.column(name).cast(pa.int64()))
    return table.to_pylist()


def rows(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    return pylist(both(request)[0].spans)


def one(*spans: Span, **kw: Any) -> dict[str, Any]:
    (row,) = rows(make_request(*spans, **kw))
    return row


def json_request(*spans: dict[str, Any], resource_attrs: list | None = None) -> bytes:
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": resource_attrs or []},
                "scopeSpans": [{"scope": {"name": "s"}, "spans": list(spans)}],
            }
        ]
    }
    return json.dumps(doc).encode()


def json_span(**fields: Any) -> dict[str, Any]:
    span = {"traceId": TRACE, "spanId": SPAN, "name": "op", "startTimeUnixNano": str(T0), "endTimeUnixNano": str(T0 + 10)}
    span.update(fields)
    return span


# --- core fields -----------------------------------------------------------------------------


def test_core_fields() -> None:
    row = one(
        make_span(
            parent=PARENT,
            name="GET /x",
            kind=Span.SPAN_KIND_SERVER,
            trace_state="vendor=1",
            flags=0x101,
            status=Status(code=Status.STATUS_CODE_ERROR, message="boom"),
            end_time_unix_nano=T0 + 2_500_000,
        )
    )
    assert row["trace_id"] == TRACE
    assert row["span_id"] == SPAN
    assert row["parent_span_id"] == PARENT
    assert row["name"] == "GET /x"
    assert row["kind"] == "SERVER"
    assert row["status"] == "ERROR"
    assert row["status_message"] == "boom"
    assert row["trace_state"] == "vendor=1"
    assert row["flags"] == 0x101
    assert row["duration_ms"] == 2.5
    assert row["service_name"] == "svc"
    assert row["scope_name"] == "my.scope"
    assert row["scope_version"] == "1.0"
    assert row["dropped_counts"] is None
    assert row["events"] == "[]"
    assert row["links"] == "[]"


def test_ids_are_lowercase_hex_and_empty_parent_is_null() -> None:
    row = one(make_span(trace_id=TRACE.upper(), span_id=SPAN.upper()))
    assert (row["trace_id"], row["span_id"], row["parent_span_id"]) == (TRACE, SPAN, None)


def test_all_zero_parent_means_root() -> None:
    assert one(make_span(parent="0" * 16))["parent_span_id"] is None


@pytest.mark.parametrize(
    ("number", "name"),
    [(0, "UNSPECIFIED"), (1, "INTERNAL"), (2, "SERVER"), (3, "CLIENT"), (4, "PRODUCER"), (5, "CONSUMER"), (42, "UNSPECIFIED")],
)
def test_kinds(number: int, name: str) -> None:
    assert one(make_span(kind=number))["kind"] == name


@pytest.mark.parametrize(("number", "name"), [(0, "UNSET"), (1, "OK"), (2, "ERROR"), (7, "UNSET")])
def test_statuses(number: int, name: str) -> None:
    row = one(make_span(status=Status(code=number)))
    assert row["status"] == name
    assert row["status_message"] is None


def test_times_are_naive_utc_nanoseconds() -> None:
    table = both(make_request(make_span()))[0].spans
    assert table.schema.field("start_time").type == pa.timestamp("ns")  # no tz: UTC by convention
    assert table.column("start_time").cast(pa.int64()).to_pylist() == [T0]  # nanoseconds kept
    assert table.column("end_time").cast(pa.int64()).to_pylist() == [T0 + 1_500_000]
    whole_us = both(make_request(make_span(start_time_unix_nano=1_700_000_000_123_456_000)))[0].spans
    assert whole_us.column("start_time").to_pylist() == [datetime(2023, 11, 14, 22, 13, 20, 123456)]


def test_end_before_start_is_kept_with_negative_duration() -> None:
    assert one(make_span(end_time_unix_nano=T0 - 1_000_000))["duration_ms"] == -1.0


def test_resource_and_scope() -> None:
    row = one(
        make_span(),
        resource={"service.name": "checkout", "host.name": "h1", "k8s.pod.uid": 7},
        scope_name="",
        scope_version="",
        scope_attributes={"lib": "x"},
    )
    assert row["service_name"] == "checkout"
    assert json.loads(row["resource_attributes"]) == {"service.name": "checkout", "host.name": "h1", "k8s.pod.uid": 7}
    assert row["scope_name"] is None and row["scope_version"] is None
    assert json.loads(row["scope_attributes"]) == {"lib": "x"}


def test_service_name_missing_or_not_a_string() -> None:
    assert one(make_span(), resource={})["service_name"] is None
    assert one(make_span(), resource={"service.name": 12})["service_name"] == "12"


def test_many_resources_and_scopes_keep_their_own_context() -> None:
    request = ExportTraceServiceRequest()
    for r in range(3):
        rs = request.resource_spans.add()
        rs.resource.attributes.extend(kvs({"service.name": f"svc{r}"}))
        rs.scope_spans.add()  # an empty scope: no rows, no confusion
        for s in range(2):
            ss = rs.scope_spans.add()
            ss.scope.name = f"scope{r}{s}"
            ss.spans.extend(make_span(span_id=f"{r}{s}{i}".rjust(16, "1")) for i in range(s + 1))
    out = rows(request)
    assert [(row["service_name"], row["scope_name"]) for row in out] == [
        (f"svc{r}", f"scope{r}{s}") for r in range(3) for s in range(2) for _ in range(s + 1)
    ]


def test_empty_request_gives_empty_table_of_the_schema() -> None:
    for decoded in (decode_protobuf(b""), decode_json(b"{}"), decode_json(b'{"resourceSpans": []}')):
        assert decoded.spans.num_rows == 0
        assert decoded.spans.schema == SPAN_SCHEMA
        assert (decoded.rejected, decoded.error_message) == (0, "")


# --- attributes ------------------------------------------------------------------------------


def test_attribute_value_types() -> None:
    attributes = {
        "s": "text",
        "empty": "",
        "t": True,
        "f": False,
        "i": 42,
        "zero": 0,
        "big": 2**63 - 1,
        "neg": -(2**63),
        "d": 1.5,
        "arr": ["a", 1, 2.5, False, ["nested"]],
        "kv": {"x": 1, "y": {"z": "deep"}, "arr": []},
        "bytes": b"\x00\xffhello",
        "unset": None,
    }
    row = one(make_span(attributes=attributes))
    decoded = json.loads(row["attributes"])
    expected = dict(attributes, bytes=base64.b64encode(b"\x00\xffhello").decode())
    assert decoded == expected
    assert list(decoded) == list(attributes)  # key order as sent
    assert '"big":9223372036854775807' in row["attributes"]  # int64 as a JSON number, exact


def test_attribute_keys_are_kept_flat_and_duplicates_last_wins() -> None:
    span = make_span(attributes={"gen_ai.request.model": "gpt-4o", "a.b.c": 1})
    span.attributes.extend(kvs({"a.b.c": 2}))
    assert json.loads(one(span)["attributes"]) == {"gen_ai.request.model": "gpt-4o", "a.b.c": 2}


def test_non_finite_doubles_become_null() -> None:
    row = one(make_span(attributes={"nan": float("nan"), "inf": float("inf")}))
    assert json.loads(row["attributes"]) == {"nan": None, "inf": None}


def test_unicode_text_round_trips() -> None:
    row = one(make_span(name="héllo ✓", attributes={"emoji": "🙂", "quote": 'a "b" \\ c\n'}))
    assert row["name"] == "héllo ✓"
    assert json.loads(row["attributes"]) == {"emoji": "🙂", "quote": 'a "b" \\ c\n'}


# --- events, links, dropped counts ---------------------------------------------------------


def test_events() -> None:
    span = make_span()
    span.events.add(name="exception", time_unix_nano=T0 + 5, attributes=kvs({"exception.type": "ValueError"}))
    span.events.add(name="bare", time_unix_nano=T0 + 6, dropped_attributes_count=2)
    assert json.loads(one(span)["events"]) == [
        {"name": "exception", "time_unix_nano": T0 + 5, "attributes": {"exception.type": "ValueError"}},
        {"name": "bare", "time_unix_nano": T0 + 6, "attributes": {}, "dropped_attributes_count": 2},
    ]


def test_links() -> None:
    span = make_span()
    span.links.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(PARENT), trace_state="a=b", attributes=kvs({"k": 1}))
    span.links.add(trace_id=bytes.fromhex("ab" * 16), span_id=bytes.fromhex("cd" * 8), flags=1, dropped_attributes_count=3)
    assert json.loads(one(span)["links"]) == [
        {"trace_id": TRACE, "span_id": PARENT, "trace_state": "a=b", "attributes": {"k": 1}},
        {"trace_id": "ab" * 16, "span_id": "cd" * 8, "trace_state": "", "attributes": {}, "flags": 1, "dropped_attributes_count": 3},
    ]


def test_dropped_counts_only_non_zero() -> None:
    row = one(make_span(dropped_attributes_count=3, dropped_links_count=1))
    assert json.loads(row["dropped_counts"]) == {"attributes": 3, "links": 1}
    request = make_request(make_span(dropped_events_count=2))
    request.resource_spans[0].resource.dropped_attributes_count = 4
    request.resource_spans[0].scope_spans[0].scope.dropped_attributes_count = 5
    (row,) = rows(request)
    assert json.loads(row["dropped_counts"]) == {"resource_attributes": 4, "scope_attributes": 5, "events": 2}


# --- per-span rejection (partial success) --------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"trace_id": b"\x01" * 15}, "trace_id must be 16 bytes, got 15"),
        ({"trace_id": b""}, "trace_id must be 16 bytes, got 0"),
        ({"trace_id": bytes(16)}, "trace_id must not be all zeros"),
        ({"span_id": b"\x01" * 9}, "span_id must be 8 bytes, got 9"),
        ({"span_id": bytes(8)}, "span_id must not be all zeros"),
        ({"parent_span_id": b"\x01" * 4}, "parent_span_id must be empty or 8 bytes, got 4"),
        ({"start_time_unix_nano": 2**63}, "start_time_unix_nano is beyond year 2262"),
        ({"end_time_unix_nano": 2**64 - 1}, "end_time_unix_nano is beyond year 2262"),
    ],
)
def test_invalid_span_is_rejected_alone(fields: dict[str, Any], reason: str) -> None:
    bad = make_span()
    for key, value in fields.items():
        setattr(bad, key, value)
    request = make_request(make_span(span_id="1" * 16), bad, make_span(span_id="3" * 16), scope_name="x")
    decoded = decode_protobuf(request.SerializeToString())
    assert decoded.spans.column("span_id").to_pylist() == ["1" * 16, "3" * 16]
    assert decoded.rejected == 1
    assert decoded.error_message.startswith(f"1 span rejected: span 1 of scope 'x': {reason}")


def test_json_id_rejections() -> None:
    cases = {
        "traceId": ("abc", "trace_id must be 32 hex characters, got 3"),
        "spanId": ("zz" * 8, "span_id must be hex"),
        "parentSpanId": ("12 34 56 78", "parent_span_id must be 16 hex characters"),
    }
    for field, (value, reason) in cases.items():
        body = json_request(json_span(spanId="1" * 16), json_span(**{field: value}))
        decoded = decode_json(body)
        assert decoded.spans.num_rows == 1
        assert decoded.rejected == 1
        assert reason in decoded.error_message
    # Padded fromhex input of the right length still is not an id.
    decoded = decode_json(json_request(json_span(traceId=" " + TRACE[1:])))
    assert decoded.rejected == 1 and "trace_id must be hex" in decoded.error_message
    decoded = decode_json(json_request(json_span(spanId=None, traceId="")))
    assert decoded.rejected == 1 and "trace_id must be 32 hex characters, got 0" in decoded.error_message


def test_base64_ids_in_json_get_a_hint() -> None:
    b64 = base64.b64encode(bytes.fromhex(TRACE)).decode()
    decoded = decode_json(json_request(json_span(traceId=b64)))
    assert decoded.rejected == 1
    assert "hex, not base64" in decoded.error_message


def test_error_message_lists_a_few_reasons() -> None:
    spans = [make_span(trace_id="00" * 16) for _ in range(8)]
    decoded = decode_protobuf(make_request(*spans, scope_name="x").SerializeToString())
    assert decoded.rejected == 8
    assert decoded.spans.num_rows == 0
    assert decoded.error_message.startswith("8 spans rejected: span 0 of scope 'x': trace_id must not be all zeros; span 1")
    assert decoded.error_message.count("of scope") == 5 and decoded.error_message.endswith("; ...")


# --- LLM semantic conventions --------------------------------------------------------------

LLM_NONE = dict.fromkeys(
    ("span_type", "model", "input", "output", "input_tokens", "output_tokens", "total_tokens", "session_id", "user_id")
)


def llm(attributes: dict[str, Any]) -> dict[str, Any]:
    row = one(make_span(attributes=attributes))
    return {key: row[key] for key in LLM_NONE}


def test_llm_columns_sit_where_the_row_tuple_puts_them() -> None:
    names = SPAN_SCHEMA.names
    start = names.index("span_type")
    assert tuple(names[start : start + len(LLM_COLUMNS)]) == LLM_COLUMNS
    assert names[start - 3 : start] == ["service_name", "scope_name", "scope_version"]


def test_structured_input_value_becomes_json_text() -> None:
    got = llm({"input.value": {"question": "q", "k": 3}, "output.value": ["a", "b"]})
    assert json.loads(got["input"]) == {"question": "q", "k": 3}
    assert json.loads(got["output"]) == ["a", "b"]


def test_plain_span_has_no_llm_fields() -> None:
    assert llm({"http.method": "GET"}) == LLM_NONE


def test_otel_genai() -> None:
    assert llm(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
            "gen_ai.prompt": "Hi?",
            "gen_ai.completion": "Hello!",
            "gen_ai.conversation.id": "conv-1",
        }
    ) == dict(
        span_type="llm",
        model="gpt-4o",
        input="Hi?",
        output="Hello!",
        input_tokens=100,
        output_tokens=20,
        total_tokens=120,
        session_id="conv-1",
        user_id=None,
    )


def test_otel_genai_older_token_names_and_response_model_only() -> None:
    got = llm({"gen_ai.response.model": "m-2", "gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 3})
    assert (got["model"], got["span_type"], got["input_tokens"], got["output_tokens"], got["total_tokens"]) == ("m-2", "llm", 7, 3, 10)


def test_otel_genai_structured_messages() -> None:
    messages = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    got = llm({"gen_ai.input.messages": json.dumps(messages), "gen_ai.output.messages": [{"role": "assistant"}]})
    assert json.loads(got["input"]) == messages  # a JSON string is kept as sent
    assert json.loads(got["output"]) == [{"role": "assistant"}]  # an AnyValue array becomes JSON text
    # The newer structured attribute wins over the older flat one.
    assert llm({"gen_ai.prompt": "old", "gen_ai.input.messages": "[]"})["input"] == "[]"


@pytest.mark.parametrize(
    ("operation", "span_type"),
    [
        ("chat", "llm"),
        ("text_completion", "llm"),
        ("generate_content", "llm"),
        ("embeddings", "embedding"),
        ("execute_tool", "tool"),
        ("invoke_agent", "agent"),
        ("create_agent", "agent"),
        ("Rerank", "rerank"),
    ],
)
def test_genai_operation_name_to_span_type(operation: str, span_type: str) -> None:
    assert llm({"gen_ai.operation.name": operation})["span_type"] == span_type


def test_openinference() -> None:
    assert llm(
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "claude-3-5-sonnet",
            "input.value": '{"messages": []}',
            "output.value": "done",
            "llm.token_count.prompt": 11,
            "llm.token_count.completion": 4,
            "llm.token_count.total": 16,
            "session.id": "s-1",
            "user.id": "u-1",
        }
    ) == dict(
        span_type="llm",
        model="claude-3-5-sonnet",
        input='{"messages": []}',
        output="done",
        input_tokens=11,
        output_tokens=4,
        total_tokens=16,  # an explicit total wins over the sum
        session_id="s-1",
        user_id="u-1",
    )


def test_openinference_flattened_messages_beat_raw_value() -> None:
    got = llm(
        {
            "input.value": '{"raw": "request"}',
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "Be brief.",
            "llm.input_messages.1.message.role": "user",
            "llm.input_messages.1.message.content": "Hi",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "Hello",
        }
    )
    assert json.loads(got["input"]) == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert json.loads(got["output"]) == [{"role": "assistant", "content": "Hello"}]


@pytest.mark.parametrize("kind", ["CHAIN", "TOOL", "AGENT", "RETRIEVER", "EMBEDDING", "RERANKER", "GUARDRAIL"])
def test_openinference_span_kinds_lowercased(kind: str) -> None:
    assert llm({"openinference.span.kind": kind})["span_type"] == kind.lower()


def test_openllmetry() -> None:
    assert llm(
        {
            "traceloop.span.kind": "workflow",
            "traceloop.entity.input": '{"q": 1}',
            "traceloop.entity.output": '{"a": 2}',
            "traceloop.association.properties.session_id": "sess",
            "traceloop.association.properties.user_id": "usr",
        }
    ) == dict(LLM_NONE, span_type="workflow", input='{"q": 1}', output='{"a": 2}', session_id="sess", user_id="usr")


def test_openllmetry_indexed_prompts_in_index_order() -> None:
    attributes = {
        # Sent out of order on purpose: the column follows the indices.
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "What is 2+2?",
        "gen_ai.prompt.0.content": "You are a calculator.",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "4",
        "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.prompt_tokens": 20,
        "gen_ai.usage.completion_tokens": 1,
        "llm.usage.total_tokens": 21,
        "llm.request.type": "chat",
    }
    got = llm(attributes)
    assert json.loads(got["input"]) == [
        {"role": "system", "content": "You are a calculator."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert json.loads(got["output"]) == [{"role": "assistant", "content": "4"}]
    assert (got["span_type"], got["model"], got["total_tokens"]) == ("llm", "gpt-4o-mini", 21)


def test_indexed_messages_with_missing_role_or_content() -> None:
    got = llm({"gen_ai.prompt.0.content": "only content", "gen_ai.prompt.1.role": "user"})
    assert json.loads(got["input"]) == [{"role": None, "content": "only content"}, {"role": "user", "content": None}]


def test_token_counts_from_odd_types_and_partial_totals() -> None:
    got = llm({"gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": 3.0})
    assert (got["input_tokens"], got["output_tokens"], got["total_tokens"]) == (12, 3, 15)
    got = llm({"gen_ai.usage.output_tokens": 5})
    assert (got["input_tokens"], got["output_tokens"], got["total_tokens"]) == (None, 5, 5)
    got = llm({"gen_ai.usage.input_tokens": "lots", "llm.token_count.prompt": 9, "gen_ai.usage.output_tokens": True})
    assert (got["input_tokens"], got["output_tokens"], got["total_tokens"]) == (9, None, 9)
    got = llm({"llm.usage.total_tokens": 50})
    assert (got["input_tokens"], got["total_tokens"]) == (None, 50)


def test_precedence_between_conventions() -> None:
    got = llm(
        {
            "openinference.span.kind": "AGENT",
            "traceloop.span.kind": "task",
            "gen_ai.operation.name": "chat",
            "llm.model_name": "b",
            "gen_ai.request.model": "a",
            "session.id": "oi",
            "gen_ai.conversation.id": "genai",
            "user.id": 5,
        }
    )
    assert (got["span_type"], got["model"], got["session_id"], got["user_id"]) == ("agent", "a", "oi", "5")
    assert llm({"traceloop.span.kind": "Task", "gen_ai.operation.name": "chat"})["span_type"] == "task"
    assert llm({"llm.model_name": "m"})["span_type"] == "llm"  # a model and no kind: an LLM call
    assert llm({"embedding.model_name": "e", "openinference.span.kind": "EMBEDDING"})["model"] == "e"


# --- OTLP/JSON specifics -------------------------------------------------------------------


def test_json_matches_protobuf_for_a_rich_request() -> None:
    span = make_span(
        parent=PARENT,
        kind=Span.SPAN_KIND_CLIENT,
        status=Status(code=Status.STATUS_CODE_OK),
        attributes={"s": "x", "i": 2**62, "d": 0.25, "b": True, "arr": [1, "a"], "kv": {"k": [b"\x01"]}, "raw": b"\xfe"},
        dropped_attributes_count=1,
        flags=1,
    )
    span.events.add(name="e", time_unix_nano=T0, attributes=kvs({"x": None}))
    span.links.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(PARENT), attributes=kvs({"y": 1.5}))
    span.parent_span_id = b""
    both(make_request(span, make_span(span_id="2" * 16, trace_id="00" * 16), resource={"service.name": "a", "n": 1}))


def test_json_lenient_forms() -> None:
    span = {
        "trace_id": TRACE.upper(),
        "span_id": SPAN,
        "parent_span_id": "",
        "name": "n",
        "kind": "SPAN_KIND_PRODUCER",
        "start_time_unix_nano": T0,  # a number, not a string
        "end_time_unix_nano": str(T0 + 1_000_000),
        "status": {"code": "STATUS_CODE_ERROR", "message": "m"},
        "attributes": [
            {"key": "i", "value": {"int_value": "-5"}},
            {"key": "d", "value": {"doubleValue": "Infinity"}},
            {"key": "d2", "value": {"doubleValue": 3}},
            {"key": "b64", "value": {"bytesValue": "_-8"}},  # url-safe alphabet, no padding
            {"key": "s", "value": {"string_value": "snake"}},
            {"key": "unknown", "value": {"futureValue": 1}},
            {"key": "nullv", "value": None},
            {"key": "kv", "value": {"kvlist_value": {"values": [{"key": "a", "value": {"bool_value": False}}]}}},
            {"key": "arr", "value": {"arrayValue": {}}},
        ],
        "events": [{"name": "e", "time_unix_nano": "5", "dropped_attributes_count": 1}],
        "links": [{"trace_id": TRACE, "span_id": SPAN, "trace_state": "t"}],
        "dropped_links_count": 2,
    }
    doc = {"resource_spans": [{"resource": {}, "scope_spans": [{"spans": [span]}]}]}
    (row,) = pylist(decode_json(json.dumps(doc).encode()).spans)
    assert (row["trace_id"], row["parent_span_id"], row["kind"], row["status"], row["duration_ms"]) == (TRACE, None, "PRODUCER", "ERROR", 1.0)
    assert json.loads(row["attributes"]) == {
        "i": -5,
        "d": None,
        "d2": 3.0,
        "b64": base64.b64encode(b"\xff\xef").decode(),
        "s": "snake",
        "unknown": None,
        "nullv": None,
        "kv": {"a": False},
        "arr": [],
    }
    assert row["scope_name"] is None and row["service_name"] is None
    assert json.loads(row["events"]) == [{"name": "e", "time_unix_nano": 5, "attributes": {}, "dropped_attributes_count": 1}]
    assert json.loads(row["links"]) == [{"trace_id": TRACE, "span_id": SPAN, "trace_state": "t", "attributes": {}}]
    assert json.loads(row["dropped_counts"]) == {"links": 2}


@pytest.mark.parametrize(("kind", "expected"), [("SERVER", "SERVER"), ("span_kind_client", "CLIENT"), ("3", "CLIENT"), (9, "UNSPECIFIED")])
def test_json_enum_spellings(kind: Any, expected: str) -> None:
    (row,) = pylist(decode_json(json_request(json_span(kind=kind))).spans)
    assert row["kind"] == expected


def test_json_ignores_unknown_fields() -> None:
    body = json_request(json_span(somethingNew={"x": 1}, flags=None))
    assert decode_json(body).spans.num_rows == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "invalid JSON"),
        (b"{not json", "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        (b"[]", "must be a JSON object"),
        (b'"resourceSpans"', "must be a JSON object"),
        (b'{"resourceSpans": {}}', "resourceSpans: expected a list"),
        (b'{"resourceSpans": [1]}', "resourceSpans[0]: expected an object"),
        (b'{"resourceSpans": [{"scopeSpans": "x"}]}', "resourceSpans[0].scopeSpans: expected a list"),
        (b'{"resourceSpans": [{"resource": {"attributes": [{"key": 1}]}}]}', "resourceSpans[0].resource.attributes[0].key: expected a string"),
        (b'{"resourceSpans": [{"scopeSpans": [{"scope": {"name": 5}}]}]}', "resourceSpans[0].scopeSpans[0].scope.name: expected a string"),
        (b'{"resourceSpans": [{"scopeSpans": [{"spans": [[]]}]}]}', "resourceSpans[0].scopeSpans[0].spans[0]: expected an object"),
    ],
)
def test_json_malformed_requests(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=None) as info:
        decode_json(body)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"startTimeUnixNano": "soon"}, ".startTimeUnixNano: expected an unsigned 64-bit integer, got 'soon'"),
        ({"startTimeUnixNano": -1}, ".startTimeUnixNano: -1 is out of range"),
        ({"endTimeUnixNano": str(2**64)}, ".endTimeUnixNano: 18446744073709551616 is out of range"),
        ({"startTimeUnixNano": True}, ".startTimeUnixNano: expected an unsigned"),
        ({"traceId": 123}, ".traceId: expected a hex string"),
        ({"kind": "SPAN_KIND_SIDEWAYS"}, ".kind: expected one of UNSPECIFIED"),
        ({"kind": 1.5}, ".kind: expected one of"),
        ({"status": []}, ".status: expected an object"),
        ({"status": {"code": "BAD"}}, ".status.code: expected one of UNSET, OK, ERROR"),
        ({"name": 1}, ".name: expected a string"),
        ({"attributes": {}}, ".attributes: expected a list"),
        ({"attributes": ["x"]}, ".attributes[0]: expected a key/value object"),
        ({"attributes": [{"key": "k", "value": "v"}]}, ".attributes[0].value: expected an AnyValue object"),
        ({"attributes": [{"key": "k", "value": {"intValue": "1.5"}}]}, ".attributes[0].value.intValue: expected a signed 64-bit integer"),
        ({"attributes": [{"key": "k", "value": {"intValue": str(2**63)}}]}, ".attributes[0].value.intValue: 9223372036854775808 is out of range"),
        ({"attributes": [{"key": "k", "value": {"boolValue": "true"}}]}, ".attributes[0].value.boolValue: expected true or false"),
        ({"attributes": [{"key": "k", "value": {"doubleValue": "fast"}}]}, ".attributes[0].value.doubleValue: expected a number"),
        ({"attributes": [{"key": "k", "value": {"bytesValue": "@@@"}}]}, ".attributes[0].value.bytesValue: expected a base64 string"),
        ({"attributes": [{"key": "k", "value": {"stringValue": 5}}]}, ".attributes[0].value.stringValue: expected a string"),
        (
            {"attributes": [{"key": "k", "value": {"arrayValue": {"values": [{}, {"intValue": []}]}}}]},
            ".attributes[0].value.arrayValue.values[1].intValue: expected a signed 64-bit integer",
        ),
        (
            {"attributes": [{"key": "k", "value": {"kvlistValue": {"values": [{"key": "a", "value": 3}]}}}]},
            ".attributes[0].value.kvlistValue.values[0].value: expected an AnyValue object",
        ),
        ({"attributes": [{"key": "k", "value": {"arrayValue": []}}]}, ".attributes[0].value.arrayValue: expected an object"),
        ({"events": [{"name": "e", "timeUnixNano": "x"}]}, ".events[0].timeUnixNano: expected an unsigned"),
        ({"events": {}}, ".events: expected a list"),
        ({"links": [{"traceId": 5}]}, ".links[0].traceId: expected a string"),
        ({"droppedAttributesCount": "many"}, ".droppedAttributesCount: expected an unsigned"),
    ],
)
def test_json_wrong_shapes_name_the_path(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_json(json_request(json_span(**fields)))
    assert str(info.value).startswith("resourceSpans[0].scopeSpans[0].spans[0]")
    assert message in str(info.value)


@pytest.mark.parametrize(("levels", "message"), [(100, "nested deeper than 64 levels"), (2000, "invalid JSON")])
def test_json_too_deep_nesting_is_refused(levels: int, message: str) -> None:
    value = '{"arrayValue": {"values": [' * levels + '{"stringValue": "x"}' + "]}}" * levels
    template = json_request(json_span(attributes=[{"key": "k", "value": "HERE"}]))
    with pytest.raises(DecodeError, match=message):
        decode_json(template.replace(b'"HERE"', value.encode()))


# --- protobuf specifics --------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b"\x0a\x05\x01", b"\x0a\x02\x12\x00\x0a", bytes(range(256))])
def test_protobuf_malformed_bytes(body: bytes) -> None:
    with pytest.raises(DecodeError, match="malformed OTLP protobuf request"):
        decode_protobuf(body)


def test_protobuf_invalid_utf8_string_is_refused() -> None:
    body = make_request(make_span(name="ÿ")).SerializeToString()
    body = body.replace("ÿ".encode(), b"\xff\xfe")
    with pytest.raises(DecodeError):
        decode_protobuf(body)


def test_protobuf_deep_nesting_is_refused() -> None:
    request = make_request(make_span())
    value = request.resource_spans[0].scope_spans[0].spans[0].attributes.add(key="deep").value
    for _ in range(60):  # built in place: copying a message this deep fails too
        value = value.array_value.values.add()
    value.string_value = "leaf"
    with pytest.raises(DecodeError, match="MaxDepth"):
        decode_protobuf(request.SerializeToString())


def test_decode_message_for_already_parsed_requests() -> None:
    request = make_request(make_span())
    assert decode_message(request).spans.equals(decode_protobuf(request.SerializeToString()).spans)


def test_decoded_pickles_for_process_pools() -> None:
    decoded = decode_protobuf(make_request(make_span(), make_span(trace_id="00" * 16)).SerializeToString())
    copy = pickle.loads(pickle.dumps(decoded))
    assert copy.spans.equals(decoded.spans) and copy.rejected == 1 and copy.error_message == decoded.error_message
    error = pickle.loads(pickle.dumps(DecodeError("x")))
    assert isinstance(error, DecodeError) and str(error) == "x"


# --- properties ----------------------------------------------------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
_scalars = (
    _text
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.binary(max_size=10)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


def _as_json(value: Any) -> Any:
    """What the attributes column should hold for a value: bytes as base64 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value


@settings(max_examples=150, deadline=None)
@given(attributes=st.dictionaries(_text, _values, max_size=6), name=_text)
def test_any_attribute_values_round_trip_through_both_encodings(attributes: dict[str, Any], name: str) -> None:
    row = one(make_span(name=name, attributes=attributes))
    assert row["name"] == name
    assert json.loads(row["attributes"]) == _as_json(attributes)


# --- robustness: nothing but DecodeError, whatever the bytes -------------------------------


def _realistic_request() -> ExportTraceServiceRequest:
    span = make_span(
        parent=PARENT,
        attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.prompt.0.content": "hi", "n": 1, "l": [1.5, {"k": b"x"}]},
        status=Status(code=2, message="e"),
    )
    span.events.add(name="e", time_unix_nano=T0, attributes=kvs({"a": "b"}))
    span.links.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(SPAN))
    return make_request(span, make_span(span_id="1" * 16))


def test_mutated_protobuf_never_raises_anything_else() -> None:
    body = _realistic_request().SerializeToString()
    rng = random.Random(1234)
    for _ in range(3000):
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            pos = rng.randrange(len(mutated))
            if op < 0.5:
                mutated[pos] = rng.randrange(256)
            elif op < 0.75:
                del mutated[pos : pos + rng.randint(1, 8)]
            else:
                mutated[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        try:
            decoded = decode_protobuf(bytes(mutated))
        except DecodeError:
            continue
        assert decoded.spans.schema == SPAN_SCHEMA


def _mutate_json(value: Any, rng: random.Random) -> Any:
    """Replace one random node of a JSON document by a value of another type."""
    replacements = [None, 0, -1, 2**70, 1.5, "", "x", "NaN", True, [], {}, [None], {"stringValue": 1}]
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        return {**value, key: _mutate_json(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = rng.randrange(len(value))
        return value[:i] + [_mutate_json(value[i], rng)] + value[i + 1 :]
    return rng.choice(replacements)


def test_mutated_json_never_raises_anything_else() -> None:
    doc = json.loads(to_otlp_json(_realistic_request()))
    rng = random.Random(99)
    for _ in range(3000):
        try:
            decoded = decode_json(json.dumps(_mutate_json(doc, rng)).encode())
        except DecodeError:
            continue
        assert decoded.spans.schema == SPAN_SCHEMA
