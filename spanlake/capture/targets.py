"""What a capture rule's matches become: the items' options, and the rules' datasets.

Item creation itself is the datasets store's bulk capture (`capture_picks`); this module finds
the rules' datasets and options.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import duckdb

from spanlake.capture.rules import Rule
from spanlake.datasets.capture import parse_span_field
from spanlake.store.dataset_capture import CaptureOptions, CaptureTarget
from spanlake.store.datasets import get_or_create_datasets


def rule_options(rule: Rule) -> CaptureOptions:
    if rule.dataset is None:  # a scoring-only rule makes no items: no values to compute
        return CaptureOptions(input_field=None, expected_output_field=None)  # type: ignore[arg-type]
    return CaptureOptions(
        input_field=parse_span_field(rule.input, "input"),
        expected_output_field=parse_span_field(rule.expected_output, "expected_output") if rule.expected_output else None,
        topic=rule.topic,
        tags=rule.tags,
        metadata=json.dumps({"rule": rule.name}),
    )


def rule_targets(
    cur: duckdb.DuckDBPyConnection, rules: Mapping[int, Rule], options: Sequence[CaptureOptions]
) -> list[CaptureTarget]:
    """Capture targets for rules by index (with their options, by the same index); their datasets
    found in one query, missing ones created."""
    ids = get_or_create_datasets(cur, sorted({rule.dataset for rule in rules.values()}))
    return [CaptureTarget(index, ids[rule.dataset], options[index]) for index, rule in rules.items()]
