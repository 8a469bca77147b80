"""Requests refused up front: comparison scorers on traces, and dataset memberships of spans the
store does not hold; memberships page with `limit`."""

from __future__ import annotations

import pytest

from datasets_client import assert_error, client, list_all, new_dataset, send_spans
from otlp_builders import llm_trace, new_span_id, new_trace_id


@pytest.fixture(scope="module")
def http(shared_server):
    with client(shared_server) as c:
        yield c


@pytest.mark.parametrize("scorer", ["exact_match", "contains_expected", "levenshtein_similarity", "json_equal"])
def test_a_batch_with_a_scorer_that_needs_an_expected_output_is_refused_at_once(http, scorer):
    trace_id, spans = llm_trace(2)
    send_spans(http, spans)
    resp = http.post("/api/scores/batch", json={"scorer": scorer, "trace_ids": [trace_id]})
    assert_error(resp, 400, scorer, "expected output", "dataset run")
    assert http.get(f"/api/traces/{trace_id}/scores").json()["items"] == []


def test_scorers_say_whether_they_need_an_expected_output(http):
    listed = {s["name"]: s for s in http.get("/api/scorers").json()["items"]}
    assert listed["exact_match"]["needs_expected_output"] is True
    assert listed["no_errors"]["needs_expected_output"] is False
    trace_id, spans = llm_trace(2)
    send_spans(http, spans)
    assert http.post("/api/scores/batch", json={"scorer": "no_errors", "trace_ids": [trace_id]}).status_code == 202


def test_span_memberships_404_for_unknown_spans_and_page_with_limit(http):
    trace_id, spans = llm_trace(2)
    send_spans(http, spans)
    span_id = spans[1].span_id.hex()
    assert_error(http.get(f"/api/traces/{trace_id}/spans/{new_span_id()}/datasets"), 404, "not found")
    assert_error(http.get(f"/api/traces/{new_trace_id()}/spans/{span_id}/datasets"), 404, "not found")
    assert http.get(f"/api/traces/{trace_id}/spans/{span_id}/datasets").json() == {"items": [], "next_cursor": None}

    names = []
    for _ in range(3):
        d = new_dataset(http)
        names.append(d["name"])
        http.post(f"/api/datasets/{d['id']}/capture", json={"span_ids": [span_id]}).raise_for_status()
    first = http.get(f"/api/traces/{trace_id}/spans/{span_id}/datasets", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    every = list_all(http, f"/api/traces/{trace_id}/spans/{span_id}/datasets", limit=1)
    assert [m["dataset_name"] for m in every] == sorted(names)
