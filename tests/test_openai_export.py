"""`format=openai` exports: rows OpenAI's chat fine-tuning accepts, tool calls included;
items that cannot make one are skipped, counted, and explained with `report=true`."""

from __future__ import annotations

import pytest

from chat_spans import CASES, CALL, OPENLLMETRY_TOOL_CALL, TOOL
from datasets_client import add_items, assert_error, client, new_dataset, send_spans
from openai_finetune_rules import assert_valid_file, problems
from otlp_builders import new_span_id, new_trace_id, span


@pytest.fixture(scope="module")
def http(shared_server):
    with client(shared_server) as c:
        yield c


def export(http, dataset, **params):
    resp = http.get(f"/api/datasets/{dataset}/export", params={"format": "openai", **params})
    assert resp.status_code == 200, resp.text
    return resp


def test_captured_chats_export_as_valid_function_calling_rows(http):
    spans, ids = [], {}
    for case in CASES:
        ids[case.name] = new_span_id()
        spans.append(span(new_trace_id(), ids[case.name], "chat", attributes=case.attributes, events=case.events))
    send_spans(http, spans)
    d = new_dataset(http)["id"]
    http.post(f"/api/datasets/{d}/capture", json={"span_ids": list(ids.values())}).raise_for_status()

    resp = export(http, d)
    rows = assert_valid_file(resp.text)
    assert len(rows) == len(CASES) and resp.headers["X-Spanlake-Skipped-Items"] == "0"
    for row in rows:  # every convention's span teaches the same tool round trip
        roles = [m["role"] for m in row["messages"]]
        assert roles in (["system", "user", "assistant", "tool", "assistant"], ["user", "assistant"])
        assert row.get("tools", [TOOL]) == [TOOL]
        assert all("finish_reason" not in m for m in row["messages"])
    assert sum("tools" in row for row in rows) == sum("tools" in case.input for case in CASES)
    # The span: OpenLLMetry's tool-call-only reply keeps its call.
    call_only = [r for r in rows if len(r["messages"]) == 2]
    assert len(call_only) == 1 and call_only[0]["messages"][-1] == {"role": "assistant", "tool_calls": [CALL]}
    assert call_only[0]["tools"] == OPENLLMETRY_TOOL_CALL.input["tools"]
    round_trip = [r for r in rows if len(r["messages"]) == 5][0]["messages"]
    assert round_trip[3]["tool_call_id"] == round_trip[2]["tool_calls"][0]["id"]


BAD = [
    ({"input": "q"}, "no expected output"),
    ({"input": "q", "expected_output": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "not json"}}]}}, "arguments"),
    ({"input": {"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "x", "tool_call_id": "nope"}]},
      "expected_output": "a"}, "tool_call_id"),
    ({"input": [{"role": "critic", "content": "q"}], "expected_output": "a"}, "role 'critic'"),
    ({"input": "q", "expected_output": {"role": "assistant", "content": {"k": 1}}}, "content must be text"),
]


def test_invalid_items_are_skipped_counted_and_explained(http):
    d = new_dataset(http)["id"]
    good = add_items(http, d, [
        {"input": "2+2?", "expected_output": "4"},
        {"input": {"messages": [{"role": "user", "content": "weather?"}], "tools": [TOOL], "tool_choice": "auto"},
         "expected_output": {"role": "assistant", "content": None, "tool_calls": [CALL], "finish_reason": "tool_calls"}},
    ])
    bad = add_items(http, d, [item for item, _ in BAD])

    resp = export(http, d)
    rows = assert_valid_file(resp.text)
    assert len(rows) == len(good) and resp.headers["X-Spanlake-Skipped-Items"] == str(len(BAD))
    assert "tool_choice" not in rows[1] and rows[1]["tools"] == [TOOL]

    report = export(http, d, report="true").json()
    assert (report["total"], report["exported"], report["skipped"]) == (len(good) + len(BAD), len(good), len(BAD))
    reasons = {r["item_id"]: r["reason"] for r in report["skipped_items"]}
    assert set(reasons) == {it["id"] for it in bad}
    for it, (_, words) in zip(bad, BAD):
        assert words in reasons[it["id"]], reasons[it["id"]]


def test_report_goes_with_openai_only(http):
    d = new_dataset(http)["id"]
    resp = http.get(f"/api/datasets/{d}/export", params={"format": "csv", "report": "true"})
    assert_error(resp, 400, "report")
    assert_error(http.get(f"/api/datasets/{d}/export", params={"format": "openai", "report": "maybe"}), 400, "report")


def test_the_validator_catches_what_openai_refuses():
    """The test oracle itself must fail on rows OpenAI rejects."""
    assert problems({"messages": [{"role": "user", "content": "q"}]}) == ["no assistant message"]
    assert problems({"messages": [{"role": "assistant", "content": "a", "finish_reason": "stop"}]})
    assert problems({"messages": [{"role": "tool", "content": "x", "tool_call_id": "c"}, {"role": "assistant", "content": "a"}]})
    assert problems({"messages": [{"role": "assistant", "content": "a"}], "tool_choice": "auto"})
