"""The bad inputs tests/test_bad_input_walk.py sends, by route trait and by route.

A case names what the answer's message must mention (the field, parameter or id at fault), never
its exact wording: the messages are the server's to improve.

Cases come from three places:
- a route's path parameters (`path_cases`), its documented query parameters (`QUERY_CASES`; the
  names in `FREE_TEXT` accept any text) and, for a JSON object body, `json_body_cases`;
- `route_cases`, what only that route can get wrong (a field's type, a rule, a page's parameters);
- `NO_INPUT`, the routes that read nothing from the request, each said on purpose.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KEY = "walk-key"
RULE = "walk-rule"
SCORER = "no_errors"
DATASET = "walk"
OTHER_DATASET = "walk-other"
JSON_LIMIT = 16 * 1024 * 1024  # spanlake.api.body.DEFAULT_JSON_LIMIT
IMPORT_LIMIT = 64 * 1024 * 1024  # spanlake.api.dataset_transfer.IMPORT_LIMIT
OTLP_LIMIT = 64 * 1024 * 1024  # the max_message_bytes setting's default
UNKNOWN_TRACE = "0af7651916cd43dd8448eb211c80319c"  # valid hex, never sent
UNKNOWN_SPAN = "b7ad6b7169203331"

# Span times are TIMESTAMP_NS (1677-09-22 to 2262-04-11); a bound past them is refused.
FAR_FUTURE_FILTER = {"field": "start_time", "op": "lt", "value": "5000-01-01"}
DEEP_JSON = "[" * 3000  # deeper than Python's json module can recurse

VALID = object()  # the route's own valid body (see valid_body)
NO_BODY = object()


@dataclass(frozen=True)
class Bad:
    """One bad request (a valid one with one thing changed) and what its answer must say."""

    label: str
    status: int
    names: str  # the error message must contain this (case-insensitive)
    code: str | None = None  # the error code, when a specific one is the contract
    path: Mapping[str, str] = field(default_factory=dict)  # path parameters to replace
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = VALID
    content: bytes | None = None  # raw body bytes (then `json` is ignored)
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    declared_length: int | None = None  # send headers claiming this many bytes, and one byte
    method: str | None = None  # another method than the route's
    form: Mapping[str, str] | None = None  # an urlencoded form body (page forms)


@dataclass
class Seeded:
    """Ids of what the server holds, to fill path templates and bodies."""

    trace_id: str = ""
    span_id: str = ""
    item_id: str = ""
    other_item_id: str = ""
    batch_id: str = ""
    run: str = "head"
    done_run: str = "base"

    def fill(self, template: str) -> dict[str, str]:
        name = RULE if template.startswith("/api/rules/") else SCORER if template.startswith("/api/scorers/") else DATASET
        return {
            "trace_id": self.trace_id, "span_id": self.span_id, "dataset": DATASET, "item_id": self.item_id,
            "run_id": self.run, "batch_id": self.batch_id, "name": name, "path": "app.css",
        }


# Routes whose handler reads nothing from the request: no path or query parameter, no body.
# Each still gets the wrong-method case (and /api ones the unknown-parameter case).
NO_INPUT = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"),
    ("GET", "/api/whoami"), ("GET", "/api/rules"), ("GET", "/api/scorers"),
    ("GET", "/rules"),
    ("GET", "/scores/batches"),  # `polling` is a flag: any value means yes
    ("GET", "/login"),  # `next` is made safe (a local path or /), never refused
}

# Query parameters whose every value is valid: they only narrow what is listed.
FREE_TEXT = {"service", "name", "scorer", "batch_id"}


def _query(name: str, value: str, names: str | None = None, label: str = "") -> Bad:
    return Bad(label or f"{name}={value[:20]!r}", 400, names or name, params={name: value})


def _cursor_of(state: Any) -> str:
    """A well-formed cursor that no listing wrote: base64url of this JSON (or JSON text)."""
    text = state if isinstance(state, str) else json.dumps(state)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


QUERY_CASES: dict[str, list[Bad]] = {
    "limit": [_query("limit", "0"), _query("limit", "abc"), _query("limit", "1001")],
    "cursor": [
        _query("cursor", "%%%not-base64"),
        _query("cursor", _cursor_of({"zz": [1, 2]}), label="cursor of another listing"),
        _query("cursor", _cursor_of(DEEP_JSON), label="cursor nested too deep"),
    ],
    "filter": [
        _query("filter", "{not json", label="filter not JSON"),
        _query("filter", json.dumps({"field": "nope", "op": "eq", "value": 1}), names="nope", label="filter unknown field"),
        _query("filter", json.dumps({"field": "duration_ms", "op": "gt", "value": "slow"}), names="value",
               label="filter wrong value type"),
        _query("filter", json.dumps(FAR_FUTURE_FILTER), names="start_time", label="filter time past span times"),
        _query("filter", DEEP_JSON, label="filter nested too deep"),
    ],
    "since": [_query("since", "yesterday"), _query("since", "0001-01-01")],
    "until": [_query("until", "2026-13-45"), _query("until", "5000-01-01")],
    "as_of": [_query("as_of", "last tuesday"), _query("as_of", "0001-01-01T00:00:00+01:00")],
    "trace_id": [_query("trace_id", "xyz")],
    "span_id": [_query("span_id", "0000000000000000")],
    "source_trace_id": [_query("source_trace_id", "12")],
    "source_span_id": [_query("source_span_id", "g" * 16)],
    "item_id": [_query("item_id", "x" * 101)],
    "min_value": [_query("min_value", "abc")],
    "max_value": [_query("max_value", "nan")],
    "pass_threshold": [_query("pass_threshold", "high")],
    "bins": [_query("bins", "0"), _query("bins", "many")],
    "worst": [_query("worst", "-1")],
    "status": [_query("status", "bogus")],
    "source": [_query("source", "robot")],
    "format": [_query("format", "xml")],
    "dry_run": [_query("dry_run", "maybe")],
    "report": [_query("report", "maybe")],
    "summary": [_query("summary", "maybe")],
    "sort": [_query("sort", "bogus"), _query("sort", "score:", names="sort")],
    "order": [_query("order", "sideways")],
    "runs": [_query("runs", "only-one"), _query("runs", "a,b,c")],
    "search": [_query("search", "x" * 1001)],
    "topic": [_query("topic", "t" * 201)],
    "tag": [_query("tag", "t" * 101)],
    "metadata.<key>": [Bad("metadata. without a key", 400, "metadata.", params={"metadata.": "v"})],
}


def path_cases(name: str, template: str) -> list[Bad]:
    """Bad values of one path parameter: malformed ids, and well-formed ones naming nothing."""
    if name == "trace_id":
        return [
            Bad("trace id not hex", 400, "trace_id", path={name: "not-a-trace-id"}),
            Bad("trace id all zero", 400, "trace_id", path={name: "0" * 32}),
        ]
    if name == "span_id":
        return [
            Bad("span id too short", 400, "span_id", path={name: "b7ad6b71"}),
            Bad("span id not hex", 400, "span_id", path={name: "z" * 16}),
        ]
    if name == "name" and template.startswith(("/api/rules/", "/api/scorers/")):
        return [Bad("unknown name", 404, "no-such-name", path={name: "no-such-name"})]
    if name in ("dataset", "name"):  # a dataset's id or name
        unknown = Bad("unknown dataset", 404, "no-such-dataset", path={name: "no-such-dataset"})
        too_long = Bad("dataset name too long", 400, "dataset", path={name: "d" * 201})
        return [unknown, too_long] if name == "dataset" else [unknown]  # pages name the dataset in their own words
    if name in ("item_id", "run_id", "batch_id"):
        return [Bad(f"unknown {name}", 404, "no-such-id", path={name: "no-such-id"})]
    if name == "path":  # static files
        return [
            Bad("unknown static file", 404, "not found", path={name: "nope.css"}),
            Bad("path out of the static folder", 404, "not found", path={name: "..%2F..%2Fpyproject.toml"}),
        ]
    return []


def json_body_cases(valid: dict[str, Any]) -> list[Bad]:
    """What every JSON-body route must refuse, whatever its fields (`valid`: a body it accepts)."""
    return [
        Bad("malformed JSON", 400, "JSON", content=b'{"name": ', content_type="application/json"),
        Bad("empty body", 400, "empty", content=b"", content_type="application/json"),
        Bad("JSON nested too deep", 400, "JSON", content=DEEP_JSON.encode(), content_type="application/json"),
        Bad("array instead of object", 400, "object", json=[valid]),
        Bad("unknown field", 400, "bogus_field", json={**valid, "bogus_field": 1}),
        Bad("wrong content type", 415, "content-type", code="unsupported_media_type", content_type="text/csv"),
        Bad("oversized body", 413, "limit", code="too_large", declared_length=JSON_LIMIT + 1),
    ]


def valid_body(method: str, template: str, seeded: Seeded) -> Any:
    """A body the route accepts; each case changes one thing of it (None: the route takes no body)."""
    t, s, item = seeded.trace_id, seeded.span_id, seeded.item_id
    return {
        ("POST", "/api/datasets"): {"name": "walk-created"},
        ("PATCH", "/api/datasets/{dataset}"): {"description": "changed"},
        ("POST", "/api/datasets/{dataset}/items"): {"items": [{"input": "added"}]},
        ("POST", "/api/datasets/{dataset}/items/bulk"): {"ids": [item], "set": {"topic": "changed"}},
        ("PATCH", "/api/datasets/{dataset}/items/{item_id}"): {"topic": "changed"},
        ("POST", "/api/datasets/{dataset}/capture"): {"span_ids": [s]},
        ("POST", "/api/datasets/{dataset}/runs"): {"mode": "client", "name": "walk-run"},
        ("POST", "/api/datasets/{dataset}/runs/{run_id}/results"): {"results": [{"item_id": item, "output": "x"}]},
        ("POST", "/api/rules/{name}/backfill"): {"since": "2020-01-01T00:00:00Z"},
        ("POST", "/api/scores/batch"): {"scorer": SCORER, "trace_ids": [t]},
        ("POST", "/api/scores"): {"name": "walk-score", "trace_id": t, "value": 1},
        ("POST", "/api/datasets/{dataset}/import"): [{"input": "imported"}],
    }.get((method, template))


def valid_query(method: str, template: str) -> dict[str, str]:
    """Query parameters the route requires; each case's own parameters go on top."""
    if template == "/api/datasets/{dataset}/runs/compare":
        return {"runs": "base,head"}
    return {}


def _otlp_cases(resources: str, scopes: str, records: str, time_field: str) -> list[Bad]:
    """OTLP/HTTP refusals of one signal (`resourceSpans`... or `resourceLogs`...)."""
    valid = json.dumps({resources: []}).encode()
    bad_time = json.dumps({resources: [{scopes: [{records: [{time_field: "soon"}]}]}]}).encode()
    return [
        Bad("malformed protobuf", 400, "protobuf", content=b"\x0a\xff\xff\xff\x0f", content_type="application/x-protobuf"),
        Bad("malformed OTLP/JSON", 400, "JSON", content=b'{"resourceSpans": [', content_type="application/json"),
        Bad("OTLP/JSON array", 400, "object", content=b"[]", content_type="application/json"),
        Bad("OTLP/JSON list of the wrong type", 400, resources, content=json.dumps({resources: {}}).encode(),
            content_type="application/json"),
        Bad("OTLP/JSON time not a number", 400, time_field, content=bad_time, content_type="application/json"),
        Bad("unsupported content type", 415, "content-type", content=valid, content_type="text/plain"),
        Bad("not gzip", 400, "gzip", content=b"plain", content_type="application/json", headers={"content-encoding": "gzip"}),
        Bad("unknown content encoding", 415, "br", content=valid, content_type="application/json",
            headers={"content-encoding": "br"}),
        Bad("oversized protobuf", 413, "limit", declared_length=OTLP_LIMIT + 1, content_type="application/x-protobuf"),
    ]


def _backfill(**rule: Any) -> dict[str, Any]:
    """A backfill body carrying a rule definition (a `when` that matches nothing unless given)."""
    return {"since": "2020-01-01T00:00:00Z", "rule": {"when": {"field": "name", "op": "eq", "value": "x"}, **rule}}


def route_cases(seeded: Seeded) -> dict[tuple[str, str], list[Bad]]:
    """What only one route can get wrong: its fields, and the parameters of pages."""
    t, s, item, other = seeded.trace_id, seeded.span_id, seeded.item_id, seeded.other_item_id
    bad_filter = {"field": "nope", "op": "eq", "value": 1}
    # Cursors with their listing's keys but numbers no listing writes (DuckDB and datetime refuse them).
    huge_t = _query("cursor", _cursor_of({"snap": "2026-01-01T00:00:00", "t": 10**30, "id": "a", "trace": "a", "span": "b"}),
                    label="cursor time past 64 bits")
    far_at = _query("cursor", _cursor_of({"at": 2**62, "k": [1, "x"], "s": "created_at:asc"}),
                    label="cursor instant past year 9999")
    traces_page = [
        huge_t,
        _query("limit", "0"), _query("cursor", "%%%"), _query("filter", "{", label="filter not JSON"),
        _query("filter", json.dumps(bad_filter), names="nope", label="filter unknown field"),
        _query("filter", json.dumps(FAR_FUTURE_FILTER), names="start_time", label="filter time past span times"),
        _query("filter", DEEP_JSON, label="filter nested too deep"),
        _query("min_duration", "slow", names="Min duration"),
        Bad("score comparison", 400, "score", params={"score": "x", "score_op": "eq", "score_value": "1"}),
    ]
    return {
        ("POST", "/v1/traces"): _otlp_cases("resourceSpans", "scopeSpans", "spans", "startTimeUnixNano"),
        ("POST", "/v1/logs"): _otlp_cases("resourceLogs", "scopeLogs", "logRecords", "timeUnixNano"),
        ("GET", "/api/traces"): [huge_t],
        ("GET", "/api/spans"): [huge_t],
        ("GET", "/api/datasets/{dataset}/items"): [far_at],
        ("POST", "/api/datasets"): [
            Bad("name missing", 400, "name", json={"description": "no name"}),
            Bad("name not a string", 400, "name", json={"name": 5}),
            Bad("name blank", 400, "name", json={"name": "  "}),
            Bad("metadata not an object", 400, "metadata", json={"name": "walk-x", "metadata": "owner"}),
            Bad("description not a string", 400, "description", json={"name": "walk-x", "description": ["a"]}),
            Bad("name taken", 409, DATASET, json={"name": DATASET}),
        ],
        ("PATCH", "/api/datasets/{dataset}"): [
            Bad("name not a string", 400, "name", json={"name": 7}),
            Bad("metadata a list", 400, "metadata", json={"metadata": []}),
            Bad("rename onto another dataset", 409, OTHER_DATASET, json={"name": OTHER_DATASET}),
        ],
        ("POST", "/api/datasets/{dataset}/items"): [
            Bad("items not a list", 400, "items", json={"items": {"input": "x"}}),
            Bad("items empty", 400, "items", json={"items": []}),
            Bad("item not an object", 400, "items[0]", json={"items": [5]}),
            Bad("second item bad", 400, "items[1]", json={"items": [{"input": "ok"}, {"input": "x", "tags": "t"}]}),
            Bad("item unknown field", 400, "bogus_field", json={"items": [{"input": "x", "bogus_field": 1}]}),
            Bad("item source span id bad", 400, "source_span_id", json={"items": [{"input": "x", "source_span_id": "zz"}]}),
        ],
        ("POST", "/api/datasets/{dataset}/items/bulk"): [
            Bad("ids not a list", 400, "ids", json={"ids": item, "delete": True}),
            Bad("id not a string", 400, "ids[0]", json={"ids": [5], "delete": True}),
            Bad("delete not true", 400, "delete", json={"ids": [item], "delete": "yes"}),
            Bad("set a field bulk cannot set", 400, "set.input", json={"ids": [item], "set": {"input": "x"}}),
            Bad("set topic not a string", 400, "topic", json={"ids": [item], "set": {"topic": 5}}),
            Bad("add_tags not a list", 400, "add_tags", json={"ids": [item], "add_tags": "t"}),
            Bad("nothing to do", 400, "delete", json={"ids": [item]}),
        ],
        ("PATCH", "/api/datasets/{dataset}/items/{item_id}"): [
            Bad("nothing to change", 400, "nothing", json={}),
            Bad("input null", 400, "input", json={"input": None}),
            Bad("tags not a list", 400, "tags", json={"tags": "a,b"}),
            Bad("metadata not an object", 400, "metadata", json={"metadata": 5}),
            Bad("topic too long", 400, "topic", json={"topic": "t" * 201}),
            Bad("id field", 400, "id", json={"id": "other"}),
        ],
        ("POST", "/api/datasets/{dataset}/capture"): [
            Bad("span_ids not a list", 400, "span_ids", json={"span_ids": s}),
            Bad("span id not hex", 400, "span_ids", json={"span_ids": ["zz"]}),
            Bad("two selections", 400, "span_ids", json={"span_ids": [s], "trace_ids": [t]}),
            Bad("no selection", 400, "span_ids", json={}),
            Bad("filter unknown field", 400, "nope", json={"filter": bad_filter}),
            Bad("filter time past span times", 400, "start_time", json={"filter": FAR_FUTURE_FILTER}),
            Bad("filter limit zero", 400, "limit", json={"filter": {"field": "trace_id", "op": "eq", "value": t}, "limit": 0}),
        ],
        ("POST", "/api/datasets/{dataset}/import"): [
            Bad("wrong content type", 415, "content-type", content=b'[{"input": "x"}]', content_type="application/x-protobuf"),
            Bad("no content type", 415, "content-type", content=b'[{"input": "x"}]'),
            Bad("malformed JSON", 400, "JSON", content=b'[{"input": ', content_type="application/json"),
            Bad("JSON object instead of array", 400, "array", content=b'{"input": "x"}', content_type="application/json"),
            # A file with bad rows: 422 listing every bad row by number, and nothing imported.
            Bad("second row bad", 422, "row 2", code="invalid_rows", content=b'[{"input": "ok"}, {"input": "x", "tags": 5}]',
                content_type="application/json"),
            Bad("unknown field", 422, "bogus_field", code="invalid_rows", content=b'[{"input": "x", "bogus_field": 1}]',
                content_type="application/json"),
            Bad("bad JSON line", 422, "row 2", code="invalid_rows", content=b'{"input": "ok"}\n{"input": \n',
                content_type="application/x-ndjson"),
            Bad("CSV without input column", 400, "input", content=b"question,answer\nq,a\n", content_type="text/csv"),
            Bad("not parquet", 400, "parquet", content=b"PAR1 not really", content_type="application/vnd.apache.parquet"),
            Bad("oversized", 413, "limit", code="too_large", declared_length=IMPORT_LIMIT + 1, content_type="application/json"),
        ],
        ("GET", "/api/datasets/{dataset}/export"): [
            Bad("report without openai format", 400, "format", params={"report": "true", "format": "jsonl"}),
        ],
        ("POST", "/api/datasets/{dataset}/runs"): [
            Bad("mode unknown", 400, "mode", json={"mode": "sideways"}),
            Bad("concurrency a string", 400, "concurrency", json={"mode": "client", "concurrency": "4"}),
            Bad("target url not http", 400, "url", json={"target": {"url": "ftp://example.com/x"}}),
            Bad("target on a client run", 400, "target", json={"mode": "client", "target": {"url": "http://example.com"}}),
            Bad("unknown scorer", 400, "no-such-scorer", json={"mode": "client", "scorers": ["no-such-scorer"]}),
            Bad("as_of a number", 400, "as_of", json={"mode": "client", "as_of": 5}),
            Bad("name taken", 409, "head", json={"mode": "client", "name": "head"}),
        ],
        ("POST", "/api/datasets/{dataset}/runs/{run_id}/results"): [
            Bad("results not a list", 400, "results", json={"results": {"item_id": item}}),
            Bad("unknown item", 400, "no-such-item", json={"results": [{"item_id": "no-such-item", "output": "x"}]}),
            Bad("latency a string", 400, "latency_ms", json={"results": [{"item_id": item, "latency_ms": "fast"}]}),
            Bad("second result bad", 400, "results[1]",
                json={"results": [{"item_id": item, "output": "x"}, {"item_id": other, "scores": "good"}]}),
            Bad("run already completed", 409, "base", path={"run_id": "base"}),
        ],
        ("POST", "/api/datasets/{dataset}/runs/{run_id}/complete"): [
            Bad("run already completed", 409, "base", path={"run_id": "base"}, json=NO_BODY),
        ],
        ("POST", "/api/datasets/{dataset}/runs/{run_id}/cancel"): [
            Bad("run already completed", 409, "base", path={"run_id": "base"}, json=NO_BODY),
        ],
        ("POST", "/api/rules/{name}/backfill"): [
            Bad("since missing", 400, "since", json={"until": "2020-01-02T00:00:00Z"}),
            Bad("since not a time", 400, "since", json={"since": "yesterday"}),
            Bad("until before since", 400, "until", json={"since": "2021-01-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"}),
            Bad("since before span times", 400, "since", json={"since": "0001-01-01"}),
            Bad("until past span times", 400, "until", json={"since": "2020-01-01T00:00:00Z", "until": "5000-01-01"}),
            Bad("window_spans too small", 400, "window_spans", json={"since": "2020-01-01T00:00:00Z", "window_spans": 5}),
            Bad("rule with a bad filter", 400, "nope", json=_backfill(dataset="walk-backfilled", when=bad_filter)),
            Bad("rule not an object", 400, "rule", json={"since": "2020-01-01T00:00:00Z", "rule": ["x"]}),
            Bad("rule scoring with an unknown scorer", 400, "no-such-scorer", json=_backfill(score=["no-such-scorer"])),
            Bad("rule scope unknown", 400, "scope", json=_backfill(dataset="d", scope="galaxy")),
            Bad("rule sample out of range", 400, "sample", json=_backfill(dataset="d", sample=5)),
            Bad("rule with neither dataset nor score", 400, "dataset", json=_backfill()),
            Bad("rule with an unknown key", 400, "datset", json=_backfill(datset="d")),
        ],
        ("POST", "/api/scores/batch"): [
            Bad("unknown scorer", 404, "no-such-scorer", code="unknown_scorer",
                json={"scorer": "no-such-scorer", "trace_ids": [t]}),
            Bad("scorer missing", 400, "scorer", json={"trace_ids": [t]}),
            Bad("trace id not hex", 400, "zz", json={"scorer": SCORER, "trace_ids": ["zz"]}),
            Bad("no selection", 400, "trace_ids", json={"scorer": SCORER}),
            Bad("filter unknown field", 400, "nope", json={"scorer": SCORER, "filter": bad_filter}),
            Bad("filter time past span times", 400, "start_time", json={"scorer": SCORER, "filter": FAR_FUTURE_FILTER}),
            Bad("sample out of range", 400, "sample", json={"scorer": SCORER, "trace_ids": [t], "sample": 2}),
            Bad("target not an object", 400, "targets[0]", json={"scorer": SCORER, "targets": [t]}),
            Bad("target span id not hex", 400, "targets[0].span_id",
                json={"scorer": SCORER, "targets": [{"trace_id": t, "span_id": "x"}]}),
            Bad("target unknown field", 400, "spanId", json={"scorer": SCORER, "targets": [{"trace_id": t, "spanId": s}]}),
        ],
        ("POST", "/api/scores"): [
            Bad("name missing", 400, "name", json={"trace_id": t, "value": 1}),
            Bad("value a string", 400, "value", json={"name": "n", "trace_id": t, "value": "high"}),
            Bad("trace id not hex", 400, "trace_id", json={"name": "n", "trace_id": "zz", "value": 1}),
            Bad("unknown trace", 404, UNKNOWN_TRACE, json={"name": "n", "trace_id": UNKNOWN_TRACE, "value": 1}),
            Bad("unknown span", 404, UNKNOWN_SPAN, json={"name": "n", "trace_id": t, "span_id": UNKNOWN_SPAN, "value": 1}),
            Bad("metadata a list", 400, "metadata", json={"name": "n", "trace_id": t, "value": 1, "metadata": []}),
            Bad("source not manual", 400, "source", json={"name": "n", "trace_id": t, "value": 1, "source": "eval"}),
            # JSON the store cannot hold: refused before anything is written.
            Bad("NaN in metadata", 400, "NaN", content=b'{"name": "n", "trace_id": "%s", "value": 1, "metadata": {"x": NaN}}'
                % t.encode(), content_type="application/json"),
            Bad("number out of range", 400, "1e400", content=b'{"name": "n", "trace_id": "%s", "value": 1e400}' % t.encode(),
                content_type="application/json"),
            Bad("lone surrogate in metadata", 400, "metadata",
                json={"name": "n", "trace_id": t, "value": 1, "metadata": {"x": "\ud800"}}),
            Bad("lone surrogate in label", 400, "label", json={"name": "n", "trace_id": t, "value": 1, "label": "\ud800"}),
            Bad("lone surrogate in name", 400, "name", json={"name": "n\ud800", "trace_id": t, "value": 1}),
            Bad("integer past 64 bits in metadata", 400, "metadata",
                json={"name": "n", "trace_id": t, "value": 1, "metadata": {"x": 2**70}}),
        ],
        # Pages: the same parsing as their /api twins, errors shown on the page.
        ("GET", "/"): traces_page,
        ("GET", "/traces"): traces_page,
        ("GET", "/traces/{trace_id}"): [_query("span", "zz")],
        ("GET", "/datasets"): [_query("cursor", "%%%"), _query("q", "x" * 201)],
        ("GET", "/datasets/{name}"): [
            _query("sort", "bogus", names="sort"), _query("order", "sideways"), _query("as_of", "never"),
            _query("limit", "0"), _query("cursor", "%%%"), far_at,
        ],
        ("GET", "/datasets/{dataset}/runs"): [_query("limit", "abc"), _query("cursor", "%%%")],
        ("GET", "/datasets/{dataset}/runs/compare"): [
            _query("base", "head", names="head", label="only a base run"),
            Bad("unknown run", 404, "no-such-run", params={"base": "head", "head": "no-such-run"}),
        ],
        ("GET", "/datasets/{dataset}/runs/{run_id}"): [_query("status", "bogus"), _query("cursor", "%%%")],
        ("GET", "/scores"): [_query("pass_threshold", "high"), _query("trace_ids", "zz"), _query("bins", "0")],
        ("GET", "/scores/summary"): [_query("worst", "99"), _query("min_value", "x")],
        ("POST", "/login"): [
            Bad("form without its CSRF token", 403, "expired", form={"key": KEY}),
            Bad("wrong key", 401, "not valid", form={"key": "wrong", "csrf_token": "t"}, headers={"cookie": "spanlake_csrf=t"}),
        ],
        ("POST", "/logout"): [Bad("form without its CSRF token", 403, "expired", form={})],
    }
