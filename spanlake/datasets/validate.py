"""Checking what clients send about datasets and items, with messages that name the field.

Every string that reaches the store passes through here: DuckDB cannot bind text with lone
UTF-16 surrogates, and names, topics and tags are shown in listings and file names, so control
characters are refused there too.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson

from spanlake.datasets.errors import Invalid
from spanlake.store.dataset_items import NewItem
from spanlake.store.ids import uuid7

MAX_NAME = 200
MAX_DESCRIPTION = 10_000
MAX_TOPIC = 200
MAX_TAG = 100
MAX_TAGS = 64

ITEM_FIELDS = ("input", "expected_output", "metadata", "topic", "tags", "source_trace_id", "source_span_id")
# Fields our own exports carry; accepted and ignored so an export imports back as is.
EXPORT_ONLY_FIELDS = frozenset({"id", "dataset_id", "created_at", "updated_at", "valid_from", "valid_to", "score", "evaluation"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_HEX = re.compile(r"[0-9a-fA-F]+\Z")


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text(value: Any, path: str, *, max_len: int, control_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{path} must be a string, got {_type(value)}")
    if len(value) > max_len:
        raise Invalid(f"{path} is {len(value)} characters long; the limit is {max_len}")
    if not _encodable(value) or (not control_ok and _CONTROL.search(value)):
        raise Invalid(f"{path} contains control or invalid unicode characters")
    return value


def dataset_name(value: Any, path: str = "name") -> str:
    name = text(value, path, max_len=MAX_NAME)
    if not name.strip():
        raise Invalid(f"{path} must not be empty")
    if name != name.strip():
        raise Invalid(f"{path} must not start or end with whitespace, got {name!r}")
    if "/" in name:
        raise Invalid(f"{path} must not contain '/' (names appear in URL paths), got {name!r}")
    if _UUID.match(name):
        raise Invalid(f"{path} must not look like a dataset id (a UUID), got {name!r}")
    return name


def description(value: Any, path: str = "description") -> str | None:
    return None if value is None else text(value, path, max_len=MAX_DESCRIPTION, control_ok=True)


def metadata(value: Any, path: str = "metadata") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{path} must be a JSON object, got {_type(value)}")
    json_text(value, path)
    return value


def topic(value: Any, path: str = "topic") -> str | None:
    if value is None or value == "":
        return None
    return text(value, path, max_len=MAX_TOPIC)


def tags(value: Any, path: str = "tags") -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise Invalid(f"{path} must be a list of strings, got {_type(value)}")
    if len(value) > MAX_TAGS:
        raise Invalid(f"{path} has {len(value)} tags; the limit is {MAX_TAGS}")
    out: list[str] = []
    for n, tag in enumerate(value):
        tag = text(tag, f"{path}[{n}]", max_len=MAX_TAG)
        if not tag.strip():
            raise Invalid(f"{path}[{n}] must not be empty")
        if tag not in out:
            out.append(tag)
    return tuple(out)


def json_text(value: Any, path: str) -> str:
    """Any JSON value as compact JSON text the store accepts.

    Values reach here from `parse_json` (orjson), which refuses NaN and lone surrogates, so
    orjson's writing NaN as null never changes data; integers past 64 bits are refused here.
    """
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise Invalid(f"{path} is not storable JSON: {exc}") from None


def parse_json(data: bytes | str, what: str = "the request body") -> Any:
    """Strict JSON: no NaN/Infinity, valid UTF-8 only (DuckDB's JSON refuses both)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"{what} is not valid JSON: {exc}") from None


def hex_id(value: Any, path: str, length: int) -> str:
    if not isinstance(value, str) or len(value) != length or not _HEX.match(value) or set(value) == {"0"}:
        raise Invalid(f"{path} must be {length} hex characters (not all zero), got {value!r}")
    return value.lower()


def item(obj: Any, path: str = "") -> NewItem:
    """A new item from its JSON object (`input` required; export-only fields ignored).

    `path` prefixes field names in messages (`items[3]`); empty for import rows, whose number
    is reported beside the reason.
    """
    def at(key: str) -> str:
        return f"{path}.{key}" if path else key

    if not isinstance(obj, dict):
        raise Invalid(f"{path or 'the row'} must be a JSON object, got {_type(obj)}")
    unknown = sorted(k for k in obj if k not in ITEM_FIELDS and k not in EXPORT_ONLY_FIELDS)
    if unknown:
        raise Invalid(f"{at(unknown[0])} is not an item field; expected one of {', '.join(ITEM_FIELDS)}")
    if obj.get("input") is None:
        raise Invalid(f"{at('input')} is required (any JSON value but null)")
    expected = obj.get("expected_output")
    trace = obj.get("source_trace_id")
    span = obj.get("source_span_id")
    return NewItem(
        id=uuid7(),
        input=json_text(obj["input"], at("input")),
        expected_output=None if expected is None else json_text(expected, at("expected_output")),
        metadata=json_text(metadata(obj.get("metadata"), at("metadata")), at("metadata")),
        topic=topic(obj.get("topic"), at("topic")),
        tags=tags(obj.get("tags"), at("tags")),
        source_trace_id=None if trace is None else hex_id(trace, at("source_trace_id"), 32),
        source_span_id=None if span is None else hex_id(span, at("source_span_id"), 16),
    )


def instant(raw: str, path: str = "as_of") -> dt.datetime:
    """An ISO-8601 instant as naive UTC (no offset means UTC)."""
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except (ValueError, AttributeError):
        raise Invalid(f"{path} must be an ISO-8601 time such as 2025-01-31T12:00:00Z, got {raw!r}") from None
    if value.tzinfo is not None:
        try:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise Invalid(f"{path} is out of range, got {raw!r}") from None
    return value


def _type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )
