"""Capturing stored spans into datasets: by span ids, trace ids, filter; fields; dedup; membership."""

from __future__ import annotations

import json
import time

import duckdb
import pytest

from datasets_client import assert_error, client, items, new_dataset, send_spans
from otlp_builders import llm_trace, new_span_id, new_trace_id, span


@pytest.fixture(scope="module")
def http(shared_server):
    with client(shared_server) as c:
        yield c


def capture(http, dataset, body, status=200):
    resp = http.post(f"/api/datasets/{dataset}/capture", json=body)
    assert resp.status_code == status, resp.text
    return resp.json()


def test_capture_span_ids_keeps_chat_messages_and_dedups(http):
    trace_id, spans = llm_trace(3)
    send_spans(http, spans)
    d = new_dataset(http)["id"]
    llm_span = spans[1].span_id.hex()
    missing = new_span_id()
    result = capture(http, d, {"span_ids": [llm_span, missing], "topic": "chat", "tags": ["prod"], "metadata": {"from": "test"}})
    assert result == {"captured": 1, "duplicates": 0, "matched": 1, "unknown_span_ids": [missing], "unknown_trace_ids": []}
    (item,) = items(http, d)
    assert item["input"] == {"messages": [{"role": "user", "content": "question 0"}]}  # the chat, not JSON text
    assert item["expected_output"] == {"role": "assistant", "content": "answer 0"}
    assert (item["source_trace_id"], item["source_span_id"]) == (trace_id, llm_span)
    assert (item["topic"], item["tags"], item["metadata"]) == ("chat", ["prod"], {"from": "test"})

    again = capture(http, d, {"span_ids": [llm_span, spans[2].span_id.hex()]})
    assert (again["captured"], again["duplicates"]) == (1, 1)
    assert len(items(http, d)) == 2
    memberships = http.get(f"/api/traces/{trace_id}/spans/{llm_span}/datasets").json()["items"]
    assert [(m["dataset_id"], m["item_id"]) for m in memberships] == [(d, item["id"])]
    other = new_dataset(http)
    capture(http, other["id"], {"span_ids": [llm_span]})
    names = {m["dataset_name"] for m in http.get(f"/api/traces/{trace_id}/spans/{llm_span}/datasets").json()["items"]}
    assert other["name"] in names and len(names) == 2
    # Once the item is deleted the span is no longer in the dataset and can be captured again.
    http.delete(f"/api/datasets/{d}/items/{item['id']}")
    assert capture(http, d, {"span_ids": [llm_span]})["captured"] == 1


def test_concurrent_captures_of_one_span_make_one_item(http, shared_server):
    from concurrent.futures import ThreadPoolExecutor

    trace_id, spans = llm_trace(2)
    send_spans(http, spans)
    d = new_dataset(http)["id"]
    ids = [s.span_id.hex() for s in spans]

    def once(_):
        with client(shared_server) as c:
            return capture(c, d, {"span_ids": ids})

    results = list(ThreadPoolExecutor(6).map(once, range(6)))
    assert sum(r["captured"] for r in results) == 2
    assert sum(r["duplicates"] for r in results) == 10
    assert len(items(http, d)) == 2


def test_capture_trace_roots_or_filtered_spans(http):
    trace_a, spans_a = llm_trace(3)
    trace_b, spans_b = llm_trace(2, model="claude")
    send_spans(http, spans_a + spans_b)
    unknown = new_trace_id()
    d = new_dataset(http)["id"]
    result = capture(http, d, {"trace_ids": [trace_a, trace_b, unknown]})
    assert (result["captured"], result["unknown_trace_ids"]) == (2, [unknown])
    assert {i["source_span_id"] for i in items(http, d)} == {spans_a[0].span_id.hex(), spans_b[0].span_id.hex()}
    assert {i["input"] for i in items(http, d)} == {"hello"}

    d2 = new_dataset(http)["id"]
    result = capture(http, d2, {"trace_ids": [trace_a, trace_b], "span_filter": {"field": "model", "op": "eq", "value": "gpt-4o"}})
    assert result["captured"] == 2 and result["unknown_trace_ids"] == []
    assert {i["source_trace_id"] for i in items(http, d2)} == {trace_a}


def test_capture_by_filter_newest_first_with_limit(http):
    marker = f"svc-{time.time_ns()}"
    now = time.time_ns()
    sent = []
    for n in range(4):
        trace_id = new_trace_id()
        s = span(trace_id, new_span_id(), f"step {n}", start_ns=now + n * 1_000_000, attributes={"input.value": f"in {n}"})
        sent.append(s)
    send_spans(http, sent, service=marker)
    d = new_dataset(http)["id"]
    result = capture(http, d, {"filter": {"field": "service", "op": "eq", "value": marker}, "limit": 3, "expected_output": None})
    assert (result["captured"], result["matched"]) == (3, 3)
    got = items(http, d)
    assert [i["input"] for i in got] == ["in 1", "in 2", "in 3"]  # the newest three, listed in span order
    assert all(i["expected_output"] is None for i in got)
    assert capture(http, d, {"filter": {"field": "service", "op": "eq", "value": marker}})["duplicates"] == 3


def test_capture_from_named_fields(http):
    trace_id = new_trace_id()
    prompt = json.dumps([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    s = span(trace_id, new_span_id(), "llm", attributes={"llm.prompt": prompt, "answer": "yo", "score.n": 7, "plain": "{not json"})
    send_spans(http, [s])
    d = new_dataset(http)["id"]
    capture(http, d, {"span_ids": [s.span_id.hex()], "input": "attributes.llm.prompt", "expected_output": "attributes.answer"})
    (item,) = items(http, d)
    assert item["input"] == json.loads(prompt)
    assert item["expected_output"] == "yo"
    d2 = new_dataset(http)["id"]
    capture(http, d2, {"span_ids": [s.span_id.hex()], "input": "attributes.plain", "expected_output": "attributes.score.n"})
    (item,) = items(http, d2)
    assert (item["input"], item["expected_output"]) == ("{not json", 7)
    d3 = new_dataset(http)["id"]
    capture(http, d3, {"span_ids": [s.span_id.hex()], "input": "name", "expected_output": "duration_ms"})
    assert items(http, d3)[0]["input"] == "llm"


@pytest.mark.parametrize(
    "body,words",
    [
        ({}, ["exactly one"]),
        ({"span_ids": ["ab" * 8], "trace_ids": ["ab" * 16]}, ["exactly one"]),
        ({"span_ids": ["xyz"]}, ["span_ids[0]"]),
        ({"filter": {"field": "nope", "op": "eq", "value": 1}}, ["filter"]),
        ({"filter": {"field": "model", "op": "eq", "value": "x"}, "limit": 0}, ["limit"]),
        ({"span_ids": ["ab" * 8], "input": "attributes."}, ["input"]),
        ({"span_ids": ["ab" * 8], "input": "colour"}, ["colour"]),
        ({"span_ids": ["ab" * 8], "limit": 3}, ["limit"]),
        ({"trace_ids": ["ab" * 16], "span_filter": {"op": "eq"}}, ["span_filter"]),
        ({"span_ids": ["ab" * 8], "shape": 1}, ["shape"]),
    ],
)
def test_bad_capture_requests(http, body, words):
    d = new_dataset(http)["id"]
    assert_error(http.post(f"/api/datasets/{d}/capture", json=body), 400, *words)


def test_capture_into_missing_dataset_is_404(http):
    assert_error(http.post("/api/datasets/not-there/capture", json={"span_ids": ["ab" * 8]}), 404)


def test_sort_by_score_of_source_span(http):
    traces = [llm_trace(2) for _ in range(3)]
    send_spans(http, [s for _, spans in traces for s in spans])
    d = new_dataset(http)["id"]
    capture(http, d, {"trace_ids": [t for t, _ in traces]})
    for (trace_id, spans), values in zip(traces, [(0.5, 0.9), (0.1,), ()]):
        for n, value in enumerate(values):
            body = {"trace_id": trace_id, "span_id": spans[0].span_id.hex(), "name": "accuracy", "value": value, "scorer": f"s{n}"}
            assert http.post("/api/scores", json=body).status_code == 201
    best_first = items(http, d, sort="score:accuracy", order="desc", limit=1)
    assert [i["source_trace_id"] for i in best_first] == [traces[0][0], traces[1][0], traces[2][0]]
    assert [i["score"] for i in best_first] == [pytest.approx(0.7), pytest.approx(0.1), None]  # unscored last
    assert [i["source_trace_id"] for i in items(http, d, sort="score:accuracy")] == [traces[1][0], traces[0][0], traces[2][0]]


def test_sort_by_evaluation_and_timestamp(http):
    """evaluation: the mean of every score name on the source span, unscored last; timestamp = created_at."""
    traces = [llm_trace(1) for _ in range(3)]
    send_spans(http, [s for _, spans in traces for s in spans])
    d = new_dataset(http)["id"]
    capture(http, d, {"trace_ids": [t for t, _ in traces]})
    for (trace_id, spans), scores in zip(traces, [{"accuracy": 0.2, "helpful": 1.0}, {"accuracy": 0.3}, {}]):
        for name, value in scores.items():
            body = {"trace_id": trace_id, "span_id": spans[0].span_id.hex(), "name": name, "value": value}
            assert http.post("/api/scores", json=body).status_code == 201
    by_eval = items(http, d, sort="evaluation", limit=1)
    assert [i["source_trace_id"] for i in by_eval] == [traces[1][0], traces[0][0], traces[2][0]]
    assert [i["evaluation"] for i in by_eval] == [pytest.approx(0.3), pytest.approx(0.6), None]
    desc = items(http, d, sort="evaluation", order="desc")
    assert [i["source_trace_id"] for i in desc] == [traces[0][0], traces[1][0], traces[2][0]]  # unscored still last
    # Every listing carries the evaluation, whatever the order.
    by_time = items(http, d, sort="timestamp", limit=1)
    assert [i["id"] for i in by_time] == [i["id"] for i in items(http, d)]
    assert sorted(i["evaluation"] or 0 for i in by_time) == [0, pytest.approx(0.3), pytest.approx(0.6)]
    assert_error(http.get(f"/api/datasets/{d}/items", params={"sort": "colour"}), 400, "evaluation")


def test_capture_core_on_a_span_relation(tmp_path):
    """The bulk function capture rules call inside the ingest transaction, on `_new_spans`."""
    from spanlake.store.filter_sql import compile_filter
    from spanlake.store.dataset_capture import CaptureOptions, SpanField, capture_spans
    from spanlake.store import chat_functions
    from spanlake.store.datasets import get_or_create_dataset
    from spanlake.store.migrate import migrate

    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    chat_functions.register(con)  # as the store's own connections do
    migrate(con)
    con.execute(
        "CREATE TEMP TABLE _new_spans AS SELECT * FROM spans WHERE false"
    )
    con.execute(
        "INSERT INTO _new_spans (trace_id, span_id, name, model, start_time, input, output, attributes) VALUES "
        "('t1', 's1', 'a', 'gpt-4o', TIMESTAMP '2025-01-01 00:00:01', '[{\"role\":\"user\",\"content\":\"q\"}]', 'out', '{\"k\": \"v\"}'), "
        "('t1', 's2', 'b', 'other', TIMESTAMP '2025-01-01 00:00:02', 'in', NULL, '{}'), "
        "('t2', 's3', 'c', 'gpt-4o', TIMESTAMP '2025-01-01 00:00:00', '{\"q\": 1}', '42', '{}')"
    )
    con.begin()
    dataset_id = get_or_create_dataset(con, "rules-target")
    assert get_or_create_dataset(con, "rules-target") == dataset_id
    rule = compile_filter({"field": "model", "op": "eq", "value": "gpt-4o"})
    options = CaptureOptions(expected_output_field=SpanField("output"), topic="rule", tags=("auto",))
    first = capture_spans(con, dataset_id, "_new_spans", where=rule.sql, params=rule.params, options=options)
    second = capture_spans(con, dataset_id, "_new_spans", where=rule.sql, params=rule.params, options=options)
    con.commit()
    assert (first.captured, first.duplicates, second.captured, second.duplicates) == (2, 0, 0, 2)
    rows = con.execute(
        "SELECT source_span_id, input::VARCHAR, expected_output::VARCHAR, topic, tags, change FROM dataset_items ORDER BY id"
    ).fetchall()
    assert rows == [
        ("s3", '{"q": 1}', '"42"', "rule", ["auto"], "added"),  # ids follow span start order
        ("s1", '[{"role":"user","content":"q"}]', '"out"', "rule", ["auto"], "added"),
    ]
    with pytest.raises(ValueError):
        capture_spans(con, dataset_id, "spans; DROP TABLE spans")
