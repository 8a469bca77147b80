"""Datasets, items, capture, import and export: parameters, bodies and replies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from spanlake.api.shapes.common import Body, Instant, Paging, Query, Returned, SpanId, TraceId
from spanlake.api.contract import KeepBlank, Prefixed
from spanlake.datasets import validate
from spanlake.datasets.export import FORMATS, parse_format
from spanlake.validation import check, refuse

MAX_ITEMS_PER_CALL = 10_000


# Queries ---------------------------------------------------------------------------------------


class DatasetListQuery(Paging):
    search: Annotated[str | None, validate.checked_text(validate.MAX_NAME)] = Field(None, description="Case-insensitive substring of the name")


class AsOfQuery(Query):
    as_of: Instant | None = Field(None, description="ISO-8601 instant: read items as they were then (default: now)")


class ItemListQuery(Paging, AsOfQuery):
    topic: Annotated[str | None, KeepBlank(), validate.checked_text(validate.MAX_TOPIC)] = Field(
        None, description="Only this topic (empty: items without one)")
    tag: list[Annotated[str, validate.checked_text(validate.MAX_TAG)]] = Field(
        default_factory=list, description="Only items with this tag (repeat for all of several)")
    source_trace_id: TraceId | None = Field(None, description="Only items captured from this trace")
    source_span_id: SpanId | None = Field(None, description="Only items captured from this span")
    search: Annotated[str | None, validate.checked_text(1000)] = Field(
        None, description="Only items whose input, expected output or metadata (as JSON text) contain this, any case")
    metadata: Annotated[dict[str, list[str]], Prefixed()] = Field(
        default_factory=dict, alias="metadata.<key>",
        description="Only items whose metadata value at <key> is this (a string, or other JSON as its text: 1, "
                    "true); repeat for any of several. Other unknown parameters are refused")
    sort: str = Field("created_at", description="created_at (default; also called timestamp), topic (empty last), "
                      "evaluation (the items' evaluations, see DatasetItem; unscored last) or score:<name> (mean "
                      "score of that name on the source span; unscored last)")
    order: Literal["asc", "desc"] = Field("asc", description="asc (default) or desc")


class ExportQuery(AsOfQuery):
    format: Annotated[Literal[tuple(FORMATS)], check(lambda v, p: parse_format(v))] = Field(  # type: ignore[valid-type]
        "jsonl", description="jsonl (default), csv, openai (chat fine-tuning) or parquet; any case")
    report: bool = Field(False, description="with format=openai: answer JSON, how many items make examples and "
                         "why each skipped one does not, instead of the file")


class ImportQuery(Query):
    dry_run: bool = Field(False, description="Only validate")


# Bodies ----------------------------------------------------------------------------------------


class NewDataset(Body):
    name: validate.Name
    description: validate.Description = None
    metadata: validate.Metadata = None


class DatasetPatch(Body):
    name: validate.Name = None  # type: ignore[assignment]
    description: validate.Description = None
    metadata: validate.Metadata = None


class NewItems(Body):
    items: list[validate.ItemIn] = Field(min_length=1, max_length=MAX_ITEMS_PER_CALL)


class ItemPatch(Body):
    """The fields sent are changed; an item's id stays."""

    input: validate.RequiredJson = None
    expected_output: validate.AnyJson = None
    metadata: validate.Metadata = None
    topic: validate.Topic = None
    tags: validate.Tags = None

    @model_validator(mode="after")
    def _something(self) -> "ItemPatch":
        if not self.model_fields_set:
            raise refuse(f"nothing to change; send any of {', '.join(type(self).model_fields)}")
        return self


class BulkSet(Body):
    topic: validate.Topic = None
    tags: validate.Tags = None


class BulkItems(Body):
    ids: list[Annotated[str, Field(max_length=100)]] = Field(min_length=1, max_length=MAX_ITEMS_PER_CALL)
    set: BulkSet | None = None
    add_tags: validate.Tags = None
    remove_tags: validate.Tags = None
    delete: Literal[True] | None = None

    @model_validator(mode="after")
    def _one_action(self) -> "BulkItems":
        updates = [k for k in ("set", "add_tags", "remove_tags") if getattr(self, k) is not None]
        if self.delete and updates:
            raise refuse("a bulk request either deletes or updates, not both")
        if not self.delete and not updates:
            raise refuse("say what to do: set {topic, tags}, add_tags, remove_tags, or delete: true")
        return self


# Replies ---------------------------------------------------------------------------------------


class Dataset(Returned):
    id: str
    name: str
    description: str | None
    metadata: dict[str, Any]
    item_count: int = Field(description="current items")
    created_at: Instant
    updated_at: Instant = Field(description="last change to the dataset or its items")


class DatasetItem(Returned):
    id: str
    dataset_id: str
    input: Any
    expected_output: Any
    metadata: dict[str, Any]
    topic: str | None
    tags: list[str]
    source_trace_id: str | None
    source_span_id: str | None
    created_at: Instant
    updated_at: Instant = Field(description="when this version opened")
    created_by: str | None = Field(None, description="name of the API key that wrote it (never the key)")
    valid_from: Instant
    valid_to: Instant | None = Field(description="when this version closed")
    score: float | None = Field(None, description="mean score, when sorted by sort=score:<name> or sort=evaluation")
    evaluation: float | None = Field(
        None, description="mean of every numeric score of the item: those posted for it (`item_id`) and those on its "
                          "source span (its trace when it has no span); null when unscored; in listings")


class CreatedItems(Returned):
    items: list[DatasetItem]


class DatasetVersion(Returned):
    version: Instant = Field(description="pass as as_of to read this state")
    added: int
    updated: int
    deleted: int
    item_count: int = Field(description="items right after this change")


class DatasetMembership(Returned):
    dataset_id: str
    dataset_name: str
    item_id: str
    captured_at: Instant


class CaptureResult(Returned):
    captured: int
    duplicates: int = Field(description="spans already in the dataset (no-op)")
    matched: int
    unknown_span_ids: list[str]
    unknown_trace_ids: list[str]


class BulkResult(Returned):
    updated: int | None = None
    deleted: int | None = None
    unknown_ids: list[str]


class Imported(Returned):
    imported: int


class ImportChecked(Returned):
    imported: int
    valid: int
    dry_run: bool


class SkippedItem(Returned):
    item_id: str
    reason: str


class OpenAIReport(Returned):
    format: str
    as_of: str | None = None
    total: int
    exported: int
    skipped: int
    skipped_items: list[SkippedItem]
