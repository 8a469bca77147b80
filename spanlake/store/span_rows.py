"""How a stored span row becomes the JSON the API returns: one select list, one converter."""

from __future__ import annotations

import json
from typing import Any

from spanlake.clock import iso_from_ns

# JSON columns come back as text; the converter parses them so clients get objects.
_JSON_FIELDS = ("attributes", "resource_attributes", "scope_attributes", "events", "links", "dropped_counts")

SPAN_SELECT = """
    s.trace_id, s.span_id, s.parent_span_id, s.trace_state, s.name, s.kind, s.status, s.status_message,
    epoch_ns(s.start_time) AS start_ns, epoch_ns(s.end_time) AS end_ns, s.duration_ms,
    s.service_name, s.scope_name, s.scope_version, s.span_type, s.model, s.input, s.output,
    s.input_tokens, s.output_tokens, s.total_tokens, s.session_id, s.user_id,
    s.attributes::VARCHAR AS attributes, s.resource_attributes::VARCHAR AS resource_attributes,
    s.scope_attributes::VARCHAR AS scope_attributes, s.events::VARCHAR AS events,
    s.links::VARCHAR AS links, s.dropped_counts::VARCHAR AS dropped_counts, s.flags
"""

SPAN_SELECT_NAMES = tuple(
    part.strip().split(" AS ")[-1].split(".")[-1] for part in SPAN_SELECT.replace("\n", " ").split(",")
)


def span_from_row(row: tuple[Any, ...]) -> dict[str, Any]:
    span = dict(zip(SPAN_SELECT_NAMES, row))
    start_ns = span.pop("start_ns")
    end_ns = span.pop("end_ns")
    span["start_time"] = iso_from_ns(start_ns)
    span["end_time"] = iso_from_ns(end_ns)
    span["start_time_unix_nano"] = str(start_ns) if start_ns is not None else None
    span["end_time_unix_nano"] = str(end_ns) if end_ns is not None else None
    span["service"] = span.pop("service_name")
    for name in _JSON_FIELDS:
        text = span.get(name)
        span[name] = json.loads(text) if text is not None else None
    return span
