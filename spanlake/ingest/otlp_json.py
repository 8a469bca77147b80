"""OTLP/JSON ExportTraceServiceRequest -> SpanRows, walking the parsed dicts directly.

OTLP/JSON is the proto3 JSON mapping with OTLP's own twists
(https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): trace/span ids are hex
(not base64), enums are integers, and 64-bit integers may be numbers or decimal strings.
Like the proto3 mapping we also accept snake_case field names and enum names, and ignore
unknown fields. Walking dicts avoids building protobuf messages only to read them back.

Wrong shapes raise DecodeError naming the JSON path; invalid ids reject just that span.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from spanlake.ingest.spanrows import (
    INT64_MAX,
    KIND_NAMES,
    STATUS_NAMES,
    Decoded,
    DecodeError,
    SpanRows,
    dumps,
)

# AnyValue nesting limit: the protobuf runtime stops near 50 levels, orjson.dumps at 254;
# anything deeper than this is an attack or a bug, not telemetry.
MAX_DEPTH = 64
UINT64_MAX = 2**64 - 1
INT64_MIN = -(2**63)

_KINDS = {**{n: n for n in KIND_NAMES}, **{f"SPAN_KIND_{n}": n for n in KIND_NAMES}}
_STATUSES = {**{n: n for n in STATUS_NAMES}, **{f"STATUS_CODE_{n}": n for n in STATUS_NAMES}}

# AnyValue field -> tag; both spellings the proto3 JSON mapping allows.
_ANY_FIELDS: dict[str, str] = {}
for _snake in ("string", "bool", "int", "double", "array", "kvlist", "bytes"):
    _ANY_FIELDS[f"{_snake}Value"] = _snake
    _ANY_FIELDS[f"{_snake}_value"] = _snake


class _Bad(Exception):
    """A shape error below a span or resource; the caller prefixes the JSON path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem


def decode_json_document(body: bytes) -> Decoded:
    """Parse and walk an OTLP/JSON body (see module docstring)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError("OTLP/JSON request must be a JSON object with a 'resourceSpans' list")
    resource_spans = _get(doc, "resourceSpans", "resource_spans")
    if resource_spans is not None and type(resource_spans) is not list:
        raise DecodeError(f"resourceSpans: expected a list, got {_show(resource_spans)}")
    out = SpanRows()
    for ri, rs in enumerate(resource_spans or ()):
        where = f"resourceSpans[{ri}]"
        try:
            _resource_spans(out, _obj(rs, ""))
        except _Bad as exc:
            raise DecodeError(f"{where}{exc.path}: {exc.problem}") from None
    return out.result()


def _resource_spans(out: SpanRows, rs: dict) -> None:
    resource = _obj(rs.get("resource"), ".resource")
    try:
        resource_attrs = _attrs(resource.get("attributes"), 0)
    except _Bad as exc:
        raise _Bad(".resource" + exc.path, exc.problem) from None
    resource_json = dumps(resource_attrs)
    resource_dropped = _uint(_get(resource, "droppedAttributesCount", "dropped_attributes_count"), ".resource.droppedAttributesCount")
    scopes = _list(_get(rs, "scopeSpans", "scope_spans"), ".scopeSpans")
    for si, ss in enumerate(scopes):
        try:
            ss = _obj(ss, "")
            scope = _obj(ss.get("scope"), ".scope")
            out.start_scope(
                resource_attrs,
                resource_json,
                resource_dropped,
                _str(scope.get("name"), ".scope.name"),
                _str(scope.get("version"), ".scope.version"),
                _attrs(scope.get("attributes"), 0, ".scope"),
                _uint(_get(scope, "droppedAttributesCount", "dropped_attributes_count"), ".scope.droppedAttributesCount"),
            )
            spans = _list(ss.get("spans"), ".spans")
        except _Bad as exc:
            raise _Bad(f".scopeSpans[{si}]{exc.path}", exc.problem) from None
        for pi, span in enumerate(spans):
            try:
                _span(out, pi, _obj(span, ""))
            except _Bad as exc:
                raise _Bad(f".scopeSpans[{si}].spans[{pi}]{exc.path}", exc.problem) from None


def _span(out: SpanRows, index: int, span: dict) -> None:
    trace_id = _get(span, "traceId", "trace_id")
    span_id = _get(span, "spanId", "span_id")
    parent = _get(span, "parentSpanId", "parent_span_id")
    if parent == "" or parent == "0000000000000000":
        parent = None  # a root span; some converters (Jaeger, Zipkin) write zeros
    start = _uint(_get(span, "startTimeUnixNano", "start_time_unix_nano"), ".startTimeUnixNano")
    end = _uint(_get(span, "endTimeUnixNano", "end_time_unix_nano"), ".endTimeUnixNano")
    problem = (
        _id_problem(trace_id, 16, "trace_id", ".traceId")
        or _id_problem(span_id, 8, "span_id", ".spanId")
        or (_id_problem(parent, 8, "parent_span_id", ".parentSpanId") if parent is not None else None)
    )
    if problem is None and (start > INT64_MAX or end > INT64_MAX):
        which = "start_time_unix_nano" if start > INT64_MAX else "end_time_unix_nano"
        problem = f"{which} is beyond year 2262 and cannot be stored"
    if problem is not None:
        out.reject(index, problem)
        return
    status = _obj(span.get("status"), ".status")
    out.add(
        trace_id.lower(),
        span_id.lower(),
        parent.lower() if parent is not None else None,
        _str(_get(span, "traceState", "trace_state"), ".traceState"),
        _str(span.get("name"), ".name"),
        _enum(span.get("kind"), _KINDS, KIND_NAMES, ".kind"),
        _enum(status.get("code"), _STATUSES, STATUS_NAMES, ".status.code"),
        _str(status.get("message"), ".status.message"),
        start,
        end,
        _uint(span.get("flags"), ".flags"),
        _attrs(span.get("attributes"), 0),
        _events(span.get("events")),
        _links(span.get("links")),
        _uint(_get(span, "droppedAttributesCount", "dropped_attributes_count"), ".droppedAttributesCount"),
        _uint(_get(span, "droppedEventsCount", "dropped_events_count"), ".droppedEventsCount"),
        _uint(_get(span, "droppedLinksCount", "dropped_links_count"), ".droppedLinksCount"),
    )


def _id_problem(value: Any, size: int, name: str, path: str) -> str | None:
    """Why a hex id is unusable, or None. A non-string is a shape error, not a bad id."""
    if type(value) is not str:
        if value is None:
            return f"{name} is missing"
        raise _Bad(path, f"expected a hex string, got {_show(value)}")
    if len(value) != 2 * size:
        hint = " (OTLP/JSON ids are hex, not base64)" if len(value) == (size + 2) // 3 * 4 else ""
        return f"{name} must be {2 * size} hex characters, got {len(value)}{hint}"
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return f"{name} must be hex, got {value!r}"
    if len(raw) != size:  # fromhex skips whitespace
        return f"{name} must be hex, got {value!r}"
    if not any(raw):
        return f"{name} must not be all zeros"
    return None


def _attrs(items: Any, depth: int, path: str = "", label: str = "attributes") -> dict[str, Any]:
    """List of {"key", "value": AnyValue} -> dict (last duplicate key wins)."""
    out: dict[str, Any] = {}
    if items is None:
        return out
    if type(items) is not list:
        raise _Bad(f"{path}.{label}", f"expected a list of key/value objects, got {_show(items)}")
    for i, kv in enumerate(items):
        if type(kv) is not dict:
            raise _Bad(f"{path}.{label}[{i}]", f"expected a key/value object, got {_show(kv)}")
        key = kv.get("key")
        value = kv.get("value")
        if type(key) is not str:
            if key is not None:
                raise _Bad(f"{path}.{label}[{i}].key", f"expected a string, got {_show(key)}")
            key = ""
        if type(value) is dict:
            text = value.get("stringValue")
            if type(text) is str:
                out[key] = text
                continue
        try:
            out[key] = _any(value, depth)
        except _Bad as exc:
            raise _Bad(f"{path}.{label}[{i}].value{exc.path}", exc.problem) from None
    return out


def _any(value: Any, depth: int) -> Any:
    """AnyValue object -> JSON-ready Python value (bytes stay base64 text, normalised)."""
    if value is None:
        return None
    if type(value) is not dict:
        raise _Bad("", f"expected an AnyValue object, got {_show(value)}")
    if depth > MAX_DEPTH:
        raise _Bad("", f"values nested deeper than {MAX_DEPTH} levels")
    for field, v in value.items():
        tag = _ANY_FIELDS.get(field)
        if tag is None or v is None:
            continue  # unknown field, or an explicit null (= unset)
        if tag == "string":
            return _str(v, f".{field}")
        if tag == "int":
            return _int64(v, f".{field}")
        if tag == "double":
            return _double(v, f".{field}")
        if tag == "bool":
            if type(v) is not bool:
                raise _Bad(f".{field}", f"expected true or false, got {_show(v)}")
            return v
        if tag == "bytes":
            return _base64(v, f".{field}")
        values = _obj(v, f".{field}").get("values")
        if tag == "array":
            if values is None:
                return []
            if type(values) is not list:
                raise _Bad(f".{field}.values", f"expected a list, got {_show(values)}")
            out = []
            for i, item in enumerate(values):
                try:
                    out.append(_any(item, depth + 1))
                except _Bad as exc:
                    raise _Bad(f".{field}.values[{i}]{exc.path}", exc.problem) from None
            return out
        return _attrs(values, depth + 1, f".{field}", "values")
    return None


def _events(items: Any) -> list | None:
    items = _list(items, ".events")
    if not items:
        return None
    out = []
    for i, e in enumerate(items):
        try:
            e = _obj(e, "")
            event = {
                "name": _str(e.get("name"), ".name"),
                "time_unix_nano": _uint(_get(e, "timeUnixNano", "time_unix_nano"), ".timeUnixNano"),
                "attributes": _attrs(e.get("attributes"), 0),
            }
            dropped = _uint(_get(e, "droppedAttributesCount", "dropped_attributes_count"), ".droppedAttributesCount")
        except _Bad as exc:
            raise _Bad(f".events[{i}]{exc.path}", exc.problem) from None
        if dropped:
            event["dropped_attributes_count"] = dropped
        out.append(event)
    return out


def _links(items: Any) -> list | None:
    items = _list(items, ".links")
    if not items:
        return None
    out = []
    for i, link in enumerate(items):
        try:
            link = _obj(link, "")
            item = {
                "trace_id": _str(_get(link, "traceId", "trace_id"), ".traceId").lower(),
                "span_id": _str(_get(link, "spanId", "span_id"), ".spanId").lower(),
                "trace_state": _str(_get(link, "traceState", "trace_state"), ".traceState"),
                "attributes": _attrs(link.get("attributes"), 0),
            }
            flags = _uint(link.get("flags"), ".flags")
            dropped = _uint(_get(link, "droppedAttributesCount", "dropped_attributes_count"), ".droppedAttributesCount")
        except _Bad as exc:
            raise _Bad(f".links[{i}]{exc.path}", exc.problem) from None
        if flags:
            item["flags"] = flags
        if dropped:
            item["dropped_attributes_count"] = dropped
        out.append(item)
    return out


# --- scalar readers: None (absent or null) means the proto3 default -------------------------


def _get(d: dict, camel: str, snake: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


def _obj(value: Any, path: str) -> dict:
    if value is None:
        return {}
    if type(value) is not dict:
        raise _Bad(path, f"expected an object, got {_show(value)}")
    return value


def _list(value: Any, path: str) -> list:
    if value is None:
        return []
    if type(value) is not list:
        raise _Bad(path, f"expected a list, got {_show(value)}")
    return value


def _str(value: Any, path: str) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise _Bad(path, f"expected a string, got {_show(value)}")
    return value


def _integer(value: Any, path: str, low: int, high: int, what: str) -> int:
    """Integer from a JSON number or decimal string (proto3 JSON writes 64-bit ints as strings)."""
    if value is None:
        return 0
    kind = type(value)
    if kind is int:
        number = value
    elif kind is str and _is_decimal(value):
        number = int(value)
    elif kind is float and value.is_integer():
        number = int(value)
    else:
        raise _Bad(path, f"expected {what}, got {_show(value)}")
    if not low <= number <= high:
        raise _Bad(path, f"{number} is out of range for {what}")
    return number


def _is_decimal(text: str) -> bool:
    text = text.strip()
    return (text[1:] if text[:1] in ("+", "-") else text).isdecimal()


def _uint(value: Any, path: str) -> int:
    if type(value) is int and 0 <= value <= UINT64_MAX:
        return value  # the common case, without the generic checks
    return _integer(value, path, 0, UINT64_MAX, "an unsigned 64-bit integer")


def _int64(value: Any, path: str) -> int:
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:
        return value
    return _integer(value, path, INT64_MIN, INT64_MAX, "a signed 64-bit integer")


def _double(value: Any, path: str) -> float:
    """Number, or a string: a decimal, "NaN", "Infinity" or "-Infinity" (proto3 JSON)."""
    kind = type(value)
    if kind is float:
        return value
    if kind is int or kind is str:
        try:
            return float(value)
        except (ValueError, OverflowError):
            pass
    raise _Bad(path, f"expected a number, got {_show(value)}")


def _base64(value: Any, path: str) -> str:
    """Base64 in either alphabet, padded or not (proto3 JSON), normalised to standard padded."""
    if type(value) is not str:
        raise _Bad(path, f"expected a base64 string, got {_show(value)}")
    text = value.replace("-", "+").replace("_", "/").rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Bad(path, f"expected a base64 string, got {_show(value)}") from None
    return base64.b64encode(raw).decode("ascii")


def _enum(value: Any, names: dict[str, str], by_number: tuple[str, ...], path: str) -> str:
    """Enum as a number (OTLP/JSON) or, leniently, its name; unknown numbers mean unset."""
    if value is None:
        return by_number[0]
    if type(value) is int:
        return by_number[value] if 0 <= value < len(by_number) else by_number[0]
    if type(value) is str:
        name = names.get(value.upper())
        if name is not None:
            return name
        if value.isdecimal():
            return _enum(int(value), names, by_number, path)
    raise _Bad(path, f"expected one of {', '.join(by_number)} (or its number), got {_show(value)}")


def _show(value: Any) -> str:
    """A short rendering of an offending value for error messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
