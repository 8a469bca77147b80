"""Trace listing and span search over real ingested traces: fields, filters, params, stable paging."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from otlp_builders import llm_trace, new_span_id, request
from server_process import ServerProcess

HOUR_NS = 3600 * 10**9


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A server with a known set of traces: times one minute apart, two services, two models."""
    server = ServerProcess(tmp_path_factory.mktemp("query")).start()
    now = time.time_ns()
    traces = []
    for i in range(12):
        model = "gpt-4o" if i % 2 == 0 else "claude-3"
        trace_id, spans = llm_trace(4, model=model, start_ns=now - (i + 1) * 60 * 10**9, error=(i % 3 == 0))
        # Make every other gpt-4o call slow.
        if i % 4 == 0:
            spans[1].end_time_unix_nano = spans[1].start_time_unix_nano + 3000 * 10**6
        service = "checkout" if i < 6 else "search"
        httpx.post(
            f"{server.http_url}/v1/traces",
            content=request(spans, service=service).SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        ).raise_for_status()
        traces.append({"trace_id": trace_id, "i": i, "model": model, "service": service})
    server.wait_loaded()
    yield server, traces, now
    server.stop()


def get(server, path: str, **params) -> httpx.Response:
    return httpx.get(f"{server.http_url}{path}", params={k: v for k, v in params.items() if v is not None}, timeout=30)


def test_trace_list_newest_first_with_summary_fields(seeded):
    server, traces, _ = seeded
    body = get(server, "/api/traces", limit=100).json()
    ids = [t["trace_id"] for t in body["items"]]
    assert ids == [t["trace_id"] for t in traces]  # i=0 is the newest
    first = body["items"][0]
    assert first["name"] == "agent.run"
    assert first["service"] == "checkout"
    assert first["span_count"] == 4
    assert first["error_count"] == 1  # i=0 has error=True on one span
    assert first["total_tokens"] == (10 + 5) + (11 + 5) + (12 + 5)
    assert first["duration_ms"] >= 3000  # the slow child ends after the root
    assert first["scores"] == {}
    assert body["next_cursor"] is None


def test_trace_filter_matches_when_any_span_matches(seeded):
    server, traces, _ = seeded
    flt = {
        "and": [
            {"field": "attributes.gen_ai.request.model", "op": "eq", "value": "gpt-4o"},
            {"field": "duration_ms", "op": "gt", "value": 2000},
        ]
    }
    items = get(server, "/api/traces", filter=json.dumps(flt)).json()["items"]
    assert [t["trace_id"] for t in items] == [t["trace_id"] for t in traces if t["i"] % 4 == 0]


def test_trace_list_service_name_and_time_params(seeded):
    server, traces, now = seeded
    items = get(server, "/api/traces", service="search").json()["items"]
    assert {t["trace_id"] for t in items} == {t["trace_id"] for t in traces if t["service"] == "search"}
    assert get(server, "/api/traces", name="no-such-root").json()["items"] == []
    since = (now - int(3.5 * 60 * 10**9)) / 1e9  # epoch seconds: the 3 newest traces
    items = get(server, "/api/traces", since=str(since)).json()["items"]
    assert [t["trace_id"] for t in items] == [t["trace_id"] for t in traces[:3]]
    until_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((now - int(10.5 * 60 * 10**9)) / 1e9))
    items = get(server, "/api/traces", until=until_iso).json()["items"]
    assert [t["trace_id"] for t in items] == [t["trace_id"] for t in traces[10:]]


def test_span_search_with_filter(seeded):
    server, traces, _ = seeded
    flt = {"and": [{"field": "model", "op": "eq", "value": "claude-3"}, {"field": "status", "op": "eq", "value": "error"}]}
    items = get(server, "/api/spans", filter=json.dumps(flt), limit=1000).json()["items"]
    expected = {t["trace_id"] for t in traces if t["model"] == "claude-3" and t["i"] % 3 == 0}
    assert {s["trace_id"] for s in items} == expected
    assert all(s["status"] == "ERROR" and s["model"] == "claude-3" for s in items)
    starts = [int(s["start_time_unix_nano"]) for s in items]
    assert starts == sorted(starts, reverse=True)


def test_one_span_route(seeded):
    server, traces, _ = seeded
    trace = get(server, f"/api/traces/{traces[0]['trace_id']}").json()
    child = trace["spans"][1]
    got = get(server, f"/api/traces/{traces[0]['trace_id']}/spans/{child['span_id']}")
    assert got.status_code == 200 and got.json() == child
    missing = get(server, f"/api/traces/{traces[0]['trace_id']}/spans/{new_span_id()}")
    assert missing.status_code == 404
    assert get(server, f"/api/traces/{traces[0]['trace_id']}/spans/nothex").status_code == 400


@pytest.mark.parametrize(
    "params,fragment",
    [
        ({"filter": "{not json"}, "not valid JSON"),
        ({"filter": json.dumps({"and": [{"field": "name", "op": "eq", "value": "x"}, {"field": "name", "op": "explode", "value": 1}]})}, "and[1].op"),
        ({"filter": json.dumps({"field": "nope", "op": "eq", "value": 1})}, "unknown field"),
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"since": "yesterday-ish"}, "since"),
        ({"cursor": "!!!"}, "cursor"),
    ],
)
def test_bad_params_are_400_with_a_message(seeded, params, fragment):
    server, _, _ = seeded
    for path in ("/api/traces", "/api/spans"):
        resp = get(server, path, **params)
        assert resp.status_code == 400, resp.text
        assert fragment in resp.json()["error"]["message"]


def test_pagination_is_stable_while_spans_arrive(seeded):
    """Page with limit 5 while new traces (newer and older) keep arriving: no duplicates, no gaps."""
    server, traces, now = seeded
    before = [t["trace_id"] for t in get(server, "/api/traces", limit=1000).json()["items"]]
    seen: list[str] = []
    cursor = None
    extra = 0
    while True:
        body = get(server, "/api/traces", limit=5, cursor=cursor).json()
        seen.extend(t["trace_id"] for t in body["items"])
        # New traces between pages: one newer than everything, one in the middle of the range.
        for start in (time.time_ns(), now - int(5.5 * 60 * 10**9)):
            _, spans = llm_trace(2, start_ns=start)
            httpx.post(
                f"{server.http_url}/v1/traces",
                content=request(spans, service="late").SerializeToString(),
                headers={"content-type": "application/x-protobuf"},
            ).raise_for_status()
            extra += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == before
    # Spans search pages the same way.
    spans_before = [s["span_id"] for s in get(server, "/api/spans", limit=1000, service="checkout").json()["items"]]
    seen_spans: list[str] = []
    cursor = None
    while True:
        body = get(server, "/api/spans", limit=7, cursor=cursor, service="checkout").json()
        seen_spans.extend(s["span_id"] for s in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen_spans == spans_before and len(set(seen_spans)) == len(seen_spans) == 24


def test_score_filters_on_traces_and_spans(seeded):
    """score.<name> finds the traces (and spans) carrying such a score; not_exists finds the rest."""
    server, traces, _ = seeded
    scored = {traces[0]["trace_id"]: 0.9, traces[3]["trace_id"]: 0.2, traces[7]["trace_id"]: 0.7}
    for trace_id, value in scored.items():
        resp = httpx.post(
            f"{server.http_url}/api/scores",
            json={"trace_id": trace_id, "name": "quality", "value": value, "source": "api"},
        )
        assert resp.status_code == 201, resp.text

    def trace_ids(flt) -> list[str]:
        return [t["trace_id"] for t in get(server, "/api/traces", filter=json.dumps(flt), limit=100).json()["items"]]

    assert set(trace_ids({"field": "score.quality", "op": "gte", "value": 0.5})) == {traces[0]["trace_id"], traces[7]["trace_id"]}
    assert trace_ids({"field": "score.quality", "op": "exists"}) == [t for t in (x["trace_id"] for x in traces) if t in scored]
    seeded_ids = {t["trace_id"] for t in traces}  # other tests of this module add traces too
    missing = trace_ids({"field": "score.quality", "op": "not_exists"})
    assert set(missing) & seeded_ids == seeded_ids - set(scored)
    either = trace_ids({"or": [{"field": "score.quality", "op": "lt", "value": 0.5}, {"field": "service", "op": "eq", "value": "search"}]})
    assert set(either) & seeded_ids == {traces[3]["trace_id"]} | {t["trace_id"] for t in traces if t["service"] == "search"}
    assert trace_ids({"field": "score.no-such-score", "op": "exists"}) == []
    summary = next(t for t in get(server, "/api/traces", limit=100).json()["items"] if t["trace_id"] == traces[0]["trace_id"])
    assert summary["scores"] == {"quality": 0.9}
    spans = get(server, "/api/spans", filter=json.dumps({"field": "score.quality", "op": "gt", "value": 0.5})).json()["items"]
    assert {s["trace_id"] for s in spans} == {traces[0]["trace_id"], traces[7]["trace_id"]}
    assert all(s["parent_span_id"] is None for s in spans)  # a trace score sits on the root span


def test_required_score_names():
    from spanlake.filters import parse_filter
    from spanlake.query.score_hints import required_score_names

    def names(tree) -> set[str]:
        return set(required_score_names(parse_filter(tree)))

    q = {"field": "score.q", "op": "gt", "value": 0}
    r = {"field": "score.r", "op": "exists"}
    other = {"field": "name", "op": "eq", "value": "x"}
    assert names(q) == {"q"}
    assert names({"and": [q, r, other]}) == {"q", "r"}
    assert names({"or": [q, r]}) == set()
    assert names({"or": [{"and": [q, r]}, q]}) == {"q"}
    assert names({"or": [q, other]}) == set()
    assert names({"not": q}) == set()
    assert names({"field": "score.q", "op": "not_exists"}) == set()
