"""Checking what clients send about datasets and items, with messages that name the field.

Every string that reaches the store passes through here: DuckDB cannot bind text with lone
UTF-16 surrogates, and names, topics and tags are shown in listings and file names, so control
characters are refused there too.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from spanlake.datasets.errors import Invalid
from spanlake.store.dataset_items import NewItem
from spanlake.store.ids import uuid7
from spanlake.validation import check, describe

MAX_NAME = 200
MAX_DESCRIPTION = 10_000
MAX_TOPIC = 200
MAX_TAG = 100
MAX_TAGS = 64

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


def present_json(value: Any, path: str) -> Any:
    """A JSON value other than null that the store can hold."""
    if value is None:
        raise Invalid(f"{path} is required (any JSON value but null)")
    json_text(value, path)
    return value


def optional_json(value: Any, path: str) -> Any:
    if value is not None:
        json_text(value, path)
    return value


def checked_text(max_len: int, *, control_ok: bool = False) -> Any:
    """A field check: `text`'s rules (length, encodable, no control characters) when a value is given."""
    return check(lambda v, p: v if v is None else text(v, p, max_len=max_len, control_ok=control_ok))


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME, description="unique; no '/'"), check(dataset_name)]
Description = Annotated[str | None, Field(max_length=MAX_DESCRIPTION), check(description)]
Metadata = Annotated[dict[str, Any] | None, check(metadata)]
Topic = Annotated[str | None, Field(max_length=MAX_TOPIC), check(topic)]
Tags = Annotated[list[str] | None, Field(max_length=MAX_TAGS), check(lambda v, p: None if v is None else list(tags(v, p)))]
AnyJson = Annotated[Any, check(optional_json)]
RequiredJson = Annotated[Any, Field(description="any JSON value but null"), check(present_json)]


def hex_field(length: int) -> Any:
    """An optional id of `length` hex characters (not all zero), stored lowercase."""
    return Annotated[str | None, Field(pattern=f"^[0-9a-fA-F]{{{length}}}$"),
                     check(lambda v, p: None if v is None else hex_id(v, p, length))]


class ItemIn(BaseModel):
    """A new item (`input` required). Fields our exports carry are accepted and ignored, so an
    export imports back as is."""

    model_config = ConfigDict(extra="forbid")

    input: RequiredJson
    expected_output: AnyJson = None
    metadata: Metadata = None
    topic: Topic = None
    tags: Tags = None
    source_trace_id: hex_field(32) = None  # type: ignore[valid-type]
    source_span_id: hex_field(16) = None  # type: ignore[valid-type]

    @model_validator(mode="before")
    @classmethod
    def _drop_export_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and not EXPORT_ONLY_FIELDS.isdisjoint(data):
            return {k: v for k, v in data.items() if k not in EXPORT_ONLY_FIELDS}
        return data

    def new_item(self) -> NewItem:
        return NewItem(
            id=uuid7(),
            input=json_text(self.input, "input"),
            expected_output=None if self.expected_output is None else json_text(self.expected_output, "expected_output"),
            metadata=json_text(self.metadata or {}, "metadata"),
            topic=self.topic or None,
            tags=tuple(self.tags or ()),
            source_trace_id=self.source_trace_id,
            source_span_id=self.source_span_id,
        )


ITEM_FIELDS = tuple(ItemIn.model_fields)


def item(obj: Any, path: str = "") -> NewItem:
    """A new item from its JSON object, for imports; `path` prefixes field names in messages
    (empty for import rows, whose number is reported beside the reason)."""
    if not isinstance(obj, dict):
        raise Invalid(f"{path or 'the row'} must be a JSON object, got {_type(obj)}")
    try:
        return ItemIn.model_validate(obj).new_item()
    except ValidationError as exc:
        raise Invalid(describe(exc, ItemIn, path)) from None


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
