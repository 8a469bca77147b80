"""Scores that evaluate a dataset item (`item_id`), and item listings sorted by them."""

from __future__ import annotations

import pytest

from datasets_client import add_items, assert_error, client, items, new_dataset, send_spans
from otlp_builders import llm_trace


@pytest.fixture(scope="module")
def http(shared_server):
    with client(shared_server) as c:
        yield c


def score(http, status=201, **body):
    resp = http.post("/api/scores", json={"name": "quality", **body})
    assert resp.status_code == status, resp.text
    return resp.json()


def test_items_added_by_hand_take_scores_and_sort_by_them(http):
    d = new_dataset(http)["id"]
    a, b, c, e = add_items(http, d, [{"input": "a", "topic": "t"}, {"input": "b"}, {"input": "c", "topic": "s"}, {"input": "e"}])
    first = score(http, item_id=a["id"], value=0.2)
    assert (first["item_id"], first["trace_id"], first["span_id"]) == (a["id"], None, None)
    score(http, item_id=b["id"], value=0.9)
    score(http, item_id=c["id"], value=0.5)
    score(http, item_id=c["id"], value=0.7, name="style")  # the evaluation is the mean of the item's scores
    again = score(http, item_id=a["id"], value=0.4)  # same identity: replaces
    assert [s["id"] for s in http.get("/api/scores", params={"item_id": a["id"]}).json()["items"]] == [again["id"]]

    ranked = items(http, d, sort="evaluation", order="desc", limit=2)
    assert [(it["input"], it["evaluation"]) for it in ranked] == [("b", 0.9), ("c", 0.6), ("a", 0.4), ("e", None)]
    ascending = items(http, d, sort="evaluation")
    assert [it["input"] for it in ascending] == ["a", "c", "b", "e"]  # unscored last either way
    assert [it["input"] for it in items(http, d, sort="timestamp")] == ["a", "b", "c", "e"]
    assert [it["input"] for it in items(http, d, sort="topic")] == ["c", "a", "b", "e"]  # empty topic last


def test_captured_items_scores_keep_their_trace(http):
    trace_id, spans = llm_trace(2)
    send_spans(http, spans)
    d = new_dataset(http)["id"]
    http.post(f"/api/datasets/{d}/capture", json={"trace_ids": [trace_id]}).raise_for_status()
    (it,) = items(http, d)
    got = score(http, item_id=it["id"], trace_id=trace_id, value=1)
    assert (got["item_id"], got["trace_id"], got["span_id"]) == (it["id"], trace_id, spans[0].span_id.hex())


def test_item_scores_are_checked(http):
    d = new_dataset(http)["id"]
    (it,) = add_items(http, d, [{"input": "x"}])
    assert_error(http.post("/api/scores", json={"name": "q", "item_id": "no-such-item", "value": 1}), 404, "no-such-item")
    assert_error(http.post("/api/scores", json={"name": "q", "item_id": it["id"], "span_id": "ab" * 8, "value": 1}), 400, "trace_id")
    assert_error(http.post("/api/scores", json={"name": "q", "value": 1}), 400, "trace_id")
    http.delete(f"/api/datasets/{d}/items/{it['id']}").raise_for_status()
    assert_error(http.post("/api/scores", json={"name": "q", "item_id": it["id"], "value": 1}), 404, it["id"])
