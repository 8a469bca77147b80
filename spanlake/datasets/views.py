"""The JSON the API returns for datasets, items, versions and memberships."""

from __future__ import annotations

from typing import Any

from spanlake.clock import iso_from_datetime


def dataset_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "metadata": row["metadata"],
        "item_count": row["item_count"],
        "created_at": iso_from_datetime(row["created_at"]),
        "updated_at": iso_from_datetime(row["updated_at"]),
    }


def item_json(row: dict[str, Any]) -> dict[str, Any]:
    """An item version; `updated_at` is when this version opened, `valid_to` when it closed (null while current)."""
    out = {
        "id": row["id"],
        "dataset_id": row["dataset_id"],
        "input": row["input"],
        "expected_output": row["expected_output"],
        "metadata": row["metadata"],
        "topic": row["topic"],
        "tags": row["tags"],
        "source_trace_id": row["source_trace_id"],
        "source_span_id": row["source_span_id"],
        "created_at": iso_from_datetime(row["created_at"]),
        "updated_at": iso_from_datetime(row["valid_from"]),
        "valid_from": iso_from_datetime(row["valid_from"]),
        "valid_to": iso_from_datetime(row["valid_to"]),
        "created_by": row.get("created_by"),  # the key that wrote this version (null: rules, no keys)
    }
    if "score" in row:
        out["score"] = row["score"]
    if "evaluation" in row:
        out["evaluation"] = row["evaluation"]
    return out


def version_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": iso_from_datetime(row["at"]),
        "added": row["added"],
        "updated": row["updated"],
        "deleted": row["deleted"],
        "item_count": row["item_count"],
    }


def membership_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset_id": row["id"],
        "dataset_name": row["name"],
        "item_id": row["item_id"],
        "captured_at": iso_from_datetime(row["captured_at"]),
    }
