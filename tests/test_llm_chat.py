"""The chat a captured LLM span keeps, for every convention, through the real server.

Each golden span (tests/chat_spans.py) goes in over OTLP, is captured by the API and by a
capture rule, and must come out as the same item: messages, tools and tool choice as input,
the response message with tool calls and finish reason as expected output.
"""

from __future__ import annotations

import pytest

from chat_spans import CASES, Case
from datasets_client import client, items, new_dataset, send_spans
from otlp_builders import new_span_id, new_trace_id, span
from server_process import ServerProcess

RULES = """
rules:
  - name: every-llm-call
    dataset: llm-calls
    when: {field: attributes.golden.case, op: exists}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("chat")
    (data / "rules.yaml").write_text(RULES)
    with ServerProcess(data / "store", "--rules", str(data / "rules.yaml")) as proc:
        yield proc


@pytest.fixture(scope="module")
def sent(server):
    """Each case sent once as its own span: {case name: span id}."""
    spans, ids = [], {}
    for case in CASES:
        span_id = new_span_id()
        ids[case.name] = span_id
        attributes = {**case.attributes, "golden.case": case.name}
        spans.append(span(new_trace_id(), span_id, "chat gpt-4o-mini", attributes=attributes, events=case.events))
    with client(server) as http:
        send_spans(http, spans)
    return ids


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_captured_item_keeps_the_chat(server, sent, case: Case):
    with client(server) as http:
        d = new_dataset(http)["id"]
        resp = http.post(f"/api/datasets/{d}/capture", json={"span_ids": [sent[case.name]]})
        assert resp.status_code == 200 and resp.json()["captured"] == 1, resp.text
        (item,) = items(http, d)
        assert item["input"] == case.input
        assert item["expected_output"] == case.output
        by_rule = {it["source_span_id"]: it for it in items(http, "llm-calls")}
        assert by_rule[sent[case.name]]["input"] == case.input
        assert by_rule[sent[case.name]]["expected_output"] == case.output


def test_non_chat_spans_keep_their_text(server):
    """A span without chat attributes is captured as before: the input/output columns' values."""
    span_id = new_span_id()
    with client(server) as http:
        send_spans(http, [span(new_trace_id(), span_id, "retrieve", attributes={"input.value": "plain", "output.value": '{"k": 1}'})])
        d = new_dataset(http)["id"]
        http.post(f"/api/datasets/{d}/capture", json={"span_ids": [span_id]}).raise_for_status()
        (item,) = items(http, d)
        assert (item["input"], item["expected_output"]) == ("plain", {"k": 1})


def test_a_chat_span_without_content_keeps_what_it_has(server):
    """Content capture off: an LLM span with a model and no messages yields no made-up chat."""
    span_id = new_span_id()
    with client(server) as http:
        send_spans(http, [span(new_trace_id(), span_id, "chat", attributes={"gen_ai.request.model": "m", "gen_ai.operation.name": "chat"})])
        d = new_dataset(http)["id"]
        http.post(f"/api/datasets/{d}/capture", json={"span_ids": [span_id]}).raise_for_status()
        (item,) = items(http, d)
        assert (item["input"], item["expected_output"]) == (None, None)
