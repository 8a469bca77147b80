"""The compiled fast path of the protobuf decoder (spanlake/ingest/_otlp_native.c) against the
Python decoder, which is the reference.

The fast path may decline a request (None: the Python decoder takes it), but when it answers,
its table must equal the reference's exactly, and whatever the bytes it must not crash.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from spanlake.ingest import native, semconv
from spanlake.ingest.decode import DecodeError, decode_protobuf, decode_protobuf_python
from test_decode import _text, _values, av

pytestmark = pytest.mark.skipif(not native.available(), reason="the C fast path is not built")

T0 = 1_700_000_000_000_000_000


def test_fast_path_is_built_where_the_suite_runs() -> None:
    """The README's install builds it (gcc and the Python headers are there): losing it silently
    would make ingest ~4x more expensive in CPU, so CI says so."""
    assert native.available()


def test_columns_follow_the_schema() -> None:
    from spanlake.ingest import _otlp_native
    from spanlake.store.schema import SPAN_SCHEMA

    assert tuple(_otlp_native.COLUMNS) == tuple(SPAN_SCHEMA.names)


def bench_load() -> Any:
    """bench/otlp_load.py: the LLM-agent requests the ingest benchmark sends."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import otlp_load

    return otlp_load


def check_same(body: bytes) -> bool:
    """Both decoders agree; True when the fast path answered (False: it declined)."""
    fast = native.decode_table(body)
    try:
        reference = decode_protobuf_python(body)
    except DecodeError:
        assert fast is None, "the fast path accepted a request the reference refuses"
        return False
    if fast is None:
        return False
    fast.validate(full=True)
    assert reference.rejected == 0
    if not fast.equals(reference.spans):
        for name in fast.schema.names:
            ours, theirs = fast.column(name).to_pylist(), reference.spans.column(name).to_pylist()
            assert ours == theirs, name
    assert fast.equals(reference.spans)
    assert decode_protobuf(body).spans.equals(reference.spans)
    return True


# --- generated requests ---------------------------------------------------------------------

SEMCONV_KEYS = sorted(
    semconv.TRIGGER_KEYS
    | {f"{p}{i}{s}" for p, r, c in semconv.INPUT_MESSAGE_LISTS + semconv.OUTPUT_MESSAGE_LISTS for i in (0, 1, 2) for s in (r, c)}
)
token_texts = st.sampled_from(["12", " 7 ", "\t3\n", "x1", "", "0099", "1" * 19, "-4", "1.5", "\x1c42\x1f"])
kinds = st.sampled_from(["LLM", "Chain", "tool", "", "ÄGENT", "chat", "Embeddings", "execute_tool", "other"])
attr_values = _values | token_texts | kinds | st.none() | st.floats()
attributes = st.dictionaries(st.sampled_from(SEMCONV_KEYS) | _text, attr_values, max_size=8)


@st.composite
def spans(draw: Any) -> Span:
    span = Span(
        trace_id=draw(st.binary(min_size=16, max_size=16).filter(any)),
        span_id=draw(st.binary(min_size=8, max_size=8).filter(any)),
        parent_span_id=draw(st.sampled_from([b"", bytes(8), b"\x01" * 8])),
        trace_state=draw(st.sampled_from(["", "a=1"])),
        name=draw(_text),
        kind=draw(st.integers(0, 5)),
        start_time_unix_nano=T0 + draw(st.integers(0, 10**9)),
        end_time_unix_nano=T0 + draw(st.integers(0, 2 * 10**9)),
        flags=draw(st.integers(0, 2**32 - 1)),
        dropped_attributes_count=draw(st.integers(0, 3)),
        dropped_events_count=draw(st.integers(0, 1)),
        dropped_links_count=draw(st.integers(0, 1)),
        status=Status(code=draw(st.integers(0, 2)), message=draw(st.sampled_from(["", "boom", "é\n"]))),
    )
    for key, value in draw(attributes).items():
        span.attributes.add(key=key, value=av(value))
    for _ in range(draw(st.integers(0, 2))):
        event = span.events.add(name=draw(_text), time_unix_nano=draw(st.integers(0, 2**64 - 1)))
        event.dropped_attributes_count = draw(st.integers(0, 2))
        for key, value in draw(st.dictionaries(_text, _values, max_size=3)).items():
            event.attributes.add(key=key, value=av(value))
    for _ in range(draw(st.integers(0, 2))):
        link = span.links.add(
            trace_id=draw(st.binary(max_size=16)),
            span_id=draw(st.binary(max_size=8)),
            trace_state=draw(st.sampled_from(["", "k=v"])),
            flags=draw(st.integers(0, 3)),
            dropped_attributes_count=draw(st.integers(0, 1)),
        )
        for key, value in draw(st.dictionaries(_text, _values, max_size=2)).items():
            link.attributes.add(key=key, value=av(value))
    return span


@st.composite
def requests(draw: Any) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        rs = request.resource_spans.add()
        for key, value in draw(st.dictionaries(st.just("service.name") | _text, _values | st.none(), max_size=3)).items():
            rs.resource.attributes.add(key=key, value=av(value))
        rs.resource.dropped_attributes_count = draw(st.integers(0, 1))
        for _ in range(draw(st.integers(0, 2))):
            ss = rs.scope_spans.add()
            ss.scope.name = draw(st.sampled_from(["", "openai", "agent"]))
            ss.scope.version = draw(st.sampled_from(["", "1.2"]))
            ss.scope.dropped_attributes_count = draw(st.integers(0, 1))
            for key, value in draw(st.dictionaries(_text, _values, max_size=2)).items():
                ss.scope.attributes.add(key=key, value=av(value))
            ss.spans.extend(draw(st.lists(spans(), max_size=3)))
    return request


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests())
def test_generated_requests_decode_the_same(request: ExportTraceServiceRequest) -> None:
    answered = check_same(request.SerializeToString())
    # Nothing generated asks for the reference (no bad ids, no duplicate keys) except non-ASCII
    # text where Python would case-fold (span kinds) or strip Unicode spaces (token counts).
    assert answered or _has_non_ascii_kind_or_token(request)


def _has_non_ascii_kind_or_token(request: ExportTraceServiceRequest) -> bool:
    keys = set(
        semconv.KIND_KEYS
        + ("gen_ai.operation.name",)
        + semconv.INPUT_TOKEN_KEYS
        + semconv.OUTPUT_TOKEN_KEYS
        + semconv.TOTAL_TOKEN_KEYS
    )
    return any(
        # Any bytes value, empty ones too: the fast path leaves a token held as bytes to Python.
        kv.key in keys and (not kv.value.string_value.isascii() or kv.value.WhichOneof("value") == "bytes_value")
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
        for kv in s.attributes
    )


def test_the_bench_load_takes_the_fast_path() -> None:
    for template in bench_load().build_pool(8, seed=5):
        assert check_same(template.render_now())


# --- what the fast path hands back ------------------------------------------------------------


def one_span_request(**fields: Any) -> ExportTraceServiceRequest:
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, start_time_unix_nano=T0, end_time_unix_nano=T0 + 5)
    for key, value in fields.items():
        if key == "attributes":
            span.attributes.extend(value)
        else:
            setattr(span, key, value)
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])


@pytest.mark.parametrize(
    "request_",
    [
        one_span_request(trace_id=b"\x01" * 15),  # rejected span: partial success message
        one_span_request(span_id=bytes(8)),
        one_span_request(kind=9),  # out-of-range enum
        one_span_request(attributes=[KeyValue(key="a", value=AnyValue(int_value=1))] * 2),  # duplicate key
        one_span_request(  # a duplicate in a list long enough for the hash check
            attributes=[KeyValue(key=f"k{i % 39}", value=AnyValue(int_value=i)) for i in range(40)]
        ),
        one_span_request(start_time_unix_nano=2**63),
    ],
    ids=["short-trace-id", "zero-span-id", "kind-9", "duplicate-key", "duplicate-in-40", "time-beyond-int64"],
)
def test_what_it_does_not_reproduce_goes_to_the_reference(request_: ExportTraceServiceRequest) -> None:
    body = request_.SerializeToString()
    assert native.decode_table(body) is None
    assert decode_protobuf(body) == decode_protobuf_python(body)


def test_long_attribute_lists_take_the_fast_path() -> None:
    keys = [KeyValue(key=f"attribute.{i}", value=AnyValue(int_value=i)) for i in range(300)]
    assert check_same(one_span_request(attributes=keys).SerializeToString())


def test_fields_in_any_order_and_unknown_fields() -> None:
    """Protobuf lets fields come in any order and skips unknown ones; hand-written wire bytes."""

    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    span = field(1, b"\x01" * 16) + field(2, b"\x02" * 8) + field(5, b"n") + bytes([99 << 3 & 0x7F | 0x80, 99 >> 4, 7])
    scope_spans = field(2, span) + field(1, field(1, b"lib"))  # the scope after its spans
    resource = field(1, field(1, b"service.name") + field(2, field(1, b"svc")))
    body = field(1, field(2, scope_spans) + field(1, resource))
    assert check_same(body)
    table = native.decode_table(body)
    assert table.column("scope_name").to_pylist() == ["lib"]
    assert table.column("service_name").to_pylist() == ["svc"]


def test_mutated_bytes_never_crash_and_never_disagree() -> None:
    """Random byte edits of a realistic request: the fast path may decline, never diverge."""
    body = bench_load().build_pool(1, seed=9)[0].render_now()
    rng = random.Random(77)
    answered = 0
    for _ in range(3000):
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(mutated))
            choice = rng.random()
            if choice < 0.6:
                mutated[position] = rng.randrange(256)
            elif choice < 0.8:
                del mutated[position : position + rng.randint(1, 8)]
            else:
                mutated[position:position] = rng.randbytes(rng.randint(1, 4))
        answered += check_same(bytes(mutated))
    assert answered > 100  # most single-byte edits inside text leave a valid request


def test_spanlake_python_decoder_turns_the_fast_path_off() -> None:
    """The operator's switch (README, Operations): set at start, read once at import."""
    probe = "from spanlake.ingest import decode; print(decode._USE_NATIVE)"
    env = {**os.environ, "SPANLAKE_PYTHON_DECODER": "1"}
    off = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    env["SPANLAKE_PYTHON_DECODER"] = "0"
    on = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert (off.stdout.strip(), on.stdout.strip()) == ("False", "True")
