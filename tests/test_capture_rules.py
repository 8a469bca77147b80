"""Capture rules on real OTLP traffic: exactly which spans land in which dataset, and when."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from datasets_client import add_items, client, new_dataset
from otlp_builders import llm_trace, new_span_id, new_trace_id, request, span
from spanlake.capture.rules import sampled_in

RULES = """
rules:
  - name: slow-gpt4o
    dataset: slow-calls
    when:
      and:
        - {field: model, op: eq, value: gpt-4o}
        - {field: duration_ms, op: gt, value: 2000}
    topic: latency
    tags: [slow]
  - name: errors
    dataset: errors
    when: {field: status, op: eq, value: error}
    input: attributes.gen_ai.prompt.0.content
    expected_output: null
  - name: half-of-llm
    dataset: sampled
    when: {field: span_type, op: eq, value: llm}
    sample: 0.5
  - name: capped
    dataset: capped
    when: {field: name, op: eq, value: capped-op}
    max_per_hour: 3
  - name: disabled
    dataset: never
    enabled: false
    when: {field: name, op: exists}
"""


def send(server, spans, service="svc") -> None:
    resp = httpx.post(
        f"{server.http_url}/v1/traces",
        content=request(spans, service=service).SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text


def items(server, dataset: str) -> list[dict]:
    resp = httpx.get(f"{server.http_url}/api/datasets/{dataset}/items", params={"limit": 1000}, timeout=30)
    if resp.status_code == 404:
        return []
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def rules_counters(server) -> dict[str, dict]:
    body = httpx.get(f"{server.http_url}/api/rules").json()
    return {r["name"]: r["counters"] for r in body["items"]}


def write_rules(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def traffic():
    """Traces with known properties: slow gpt-4o calls, fast ones, errors, other models."""
    now = time.time_ns()
    slow, errors, other = [], [], []
    spans = []
    for i in range(40):
        trace_id, trace_spans = llm_trace(3, model="gpt-4o" if i % 2 == 0 else "claude-3", start_ns=now + i * 10**6, error=(i % 5 == 0))
        child = trace_spans[1]
        if i % 4 == 0:
            child.end_time_unix_nano = child.start_time_unix_nano + 2500 * 10**6
        for s in trace_spans[1:]:
            model = "gpt-4o" if i % 2 == 0 else "claude-3"
            long = s.end_time_unix_nano - s.start_time_unix_nano > 2000 * 10**6
            (slow if model == "gpt-4o" and long else other).append(s.span_id.hex())
        if i % 5 == 0:
            errors.append(trace_spans[1].span_id.hex())
        spans.extend(trace_spans)
    llm_span_ids = [s.span_id.hex() for s in spans if s.name.startswith("chat")]
    return spans, set(slow), set(errors), llm_span_ids


def test_span_rules_capture_exactly_the_matching_spans(make_server, tmp_path, traffic):
    spans, slow, errors, llm_ids = traffic
    rules = write_rules(tmp_path / "rules.yaml", RULES)
    server = make_server("--rules", str(rules))
    for i in range(0, len(spans), 30):
        send(server, spans[i : i + 30])

    slow_items = items(server, "slow-calls")
    assert {it["source_span_id"] for it in slow_items} == slow
    assert all(it["topic"] == "latency" and it["tags"] == ["slow"] for it in slow_items)
    assert slow_items[0]["input"] == {"messages": [{"role": "user", "content": "question 0"}]}  # the span's chat
    assert slow_items[0]["expected_output"] == {"role": "assistant", "content": "answer 0"}

    error_items = items(server, "errors")
    assert {it["source_span_id"] for it in error_items} == errors
    assert all(it["input"] == "question 0" and it["expected_output"] is None for it in error_items)

    sampled = {it["source_span_id"] for it in items(server, "sampled")}
    expected = {s for s in llm_ids if sampled_in("half-of-llm", s, 0.5)}
    assert sampled == expected  # deterministic: the same decision as the documented hash
    assert 0.3 < len(sampled) / len(llm_ids) < 0.7

    assert items(server, "never") == []
    counters = rules_counters(server)
    assert counters["slow-gpt4o"]["captured"] == len(slow)
    assert counters["half-of-llm"]["matched"] == len(llm_ids)
    assert counters["half-of-llm"]["sampled_out"] == len(llm_ids) - len(expected)
    assert counters["errors"]["evaluated"] == len(spans)

    # Re-sending the same spans (an exporter retry) captures nothing twice.
    send(server, spans[:30])
    assert len(items(server, "slow-calls")) == len(slow)


def test_sampling_is_identical_on_another_server(make_server, tmp_path, traffic):
    spans, _, _, _ = traffic
    rules = write_rules(tmp_path / "rules.yaml", RULES)
    picked = []
    for _ in range(2):
        server = make_server("--rules", str(rules))
        send(server, spans)
        picked.append({it["source_span_id"] for it in items(server, "sampled")})
        server.stop()
    assert picked[0] == picked[1] and picked[0]


def test_max_per_hour_caps_captures(make_server, tmp_path):
    server = make_server("--rules", str(write_rules(tmp_path / "r.yaml", RULES)))
    trace_id = new_trace_id()
    send(server, [span(trace_id, new_span_id(), "capped-op") for _ in range(5)])
    send(server, [span(trace_id, new_span_id(), "capped-op") for _ in range(2)])
    assert len(items(server, "capped")) == 3
    assert rules_counters(server)["capped"]["rate_limited"] == 4
    # A rule out of budget beside one that captures, in one load: the other rule still captures.
    error_span = span(trace_id, new_span_id(), "capped-op", error=True)
    send(server, [span(trace_id, new_span_id(), "capped-op"), error_span])
    assert [i["source_span_id"] for i in items(server, "errors")] == [error_span.span_id.hex()]
    assert len(items(server, "capped")) == 3
    assert rules_counters(server)["capped"]["rate_limited"] == 6


BY_NAME_RULE = """
  - name: by-name
    dataset: by-name
    when: {field: name, op: eq, value: mixed-op}
"""
UNSCORED_RULE = """
  - name: unscored
    dataset: unscored
    when:
      and:
        - {field: name, op: eq, value: mixed-op}
        - {not: {field: score.quality, op: exists}}
"""


@pytest.mark.parametrize("rules", [["by-name"], ["by-name", "unscored"]], ids=["early", "in-transaction"])
def test_a_request_mixing_retried_and_new_spans_captures_only_the_new(make_server, tmp_path, rules):
    """Rules are evaluated on the request before dedup; only spans the commit adds may count.

    A rule that reads the scores table makes the stage evaluate inside the transaction instead
    of on the early evaluator: both paths must see the same spans.
    """
    text = "rules:" + "".join({"by-name": BY_NAME_RULE, "unscored": UNSCORED_RULE}[r] for r in rules)
    server = make_server("--rules", str(write_rules(tmp_path / "r.yaml", text)))
    trace_id = new_trace_id()
    first = [span(trace_id, new_span_id(), "mixed-op") for _ in range(4)]
    send(server, first)
    second = [span(trace_id, new_span_id(), "mixed-op") for _ in range(3)]
    send(server, first[:2] + second + [second[0]])  # two retries, three new, one new twice

    expected = {s.span_id.hex() for s in first + second}
    counters = rules_counters(server)
    for rule in rules:
        captured = [it["source_span_id"] for it in items(server, rule)]
        assert sorted(captured) == sorted(expected), rule
        assert (counters[rule]["evaluated"], counters[rule]["matched"], counters[rule]["captured"]) == (7, 7, 7)


TRACE_RULES = """
rules:
  - name: agent-errors
    dataset: failed-runs
    scope: trace
    when: {field: status, op: eq, value: error}
  - name: tool-calls-of-slow-traces
    dataset: tool-calls
    scope: trace
    root_only: true
    when: {field: duration_ms, op: gt, value: 50}
    capture_spans: {field: name, op: eq, value: tool}
"""


def _trace_with_late_error(start_ns: int):
    trace_id, root = new_trace_id(), new_span_id()
    first = [span(trace_id, root, "agent", start_ns=start_ns, duration_ms=100)]
    late = [
        span(trace_id, new_span_id(), "tool", parent=root, start_ns=start_ns + 10**6, duration_ms=5),
        span(trace_id, new_span_id(), "chat", parent=root, start_ns=start_ns + 2 * 10**6, error=True),
    ]
    return trace_id, root, first, late


def test_trace_scope_waits_for_quiet_then_captures_root_or_chosen_spans(make_server, tmp_path):
    server = make_server("--rules", str(write_rules(tmp_path / "r.yaml", TRACE_RULES)), "--trace-quiet-seconds", "1.5")
    trace_id, root, first, late = _trace_with_late_error(time.time_ns())
    send(server, first)
    send(server, late)  # the error arrives in a later request: only the whole trace matches
    assert items(server, "failed-runs") == []  # not quiet yet
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not items(server, "failed-runs"):
        time.sleep(0.25)
    got = items(server, "failed-runs")
    assert [it["source_span_id"] for it in got] == [root]
    tools = items(server, "tool-calls")
    assert [it["source_trace_id"] for it in tools] == [trace_id]
    assert tools[0]["source_span_id"] == late[0].span_id.hex()


def test_trace_scope_pending_state_survives_a_restart(make_server, tmp_path):
    rules = write_rules(tmp_path / "r.yaml", TRACE_RULES)
    server = make_server("--rules", str(rules), "--trace-quiet-seconds", "3")
    trace_id, root, first, late = _trace_with_late_error(time.time_ns())
    send(server, first + late)
    assert server.stop() == 0  # before the trace is quiet
    server.restart()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not items(server, "failed-runs"):
        time.sleep(0.25)
    assert [it["source_span_id"] for it in items(server, "failed-runs")] == [root]
    time.sleep(1.0)
    assert len(items(server, "failed-runs")) == 1  # judged once, not again after the restart


def test_hot_reload_of_a_good_and_a_broken_file(make_server, tmp_path):
    path = write_rules(tmp_path / "r.yaml", "rules: []\n")
    server = make_server("--rules", str(path))
    trace_id = new_trace_id()
    send(server, [span(trace_id, new_span_id(), "before-reload")])
    path.write_text("rules:\n  - {name: all, dataset: everything, when: {field: name, op: glob, value: '*'}}\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "all" not in rules_counters(server):
        time.sleep(0.1)
    send(server, [span(trace_id, new_span_id(), "after-reload")])
    assert [it["input"] for it in items(server, "everything")] != []
    names = {it["source_span_id"] for it in items(server, "everything")}
    assert len(names) == 1  # only the span sent after the reload

    path.write_text("rules:\n  - {name: broken, dataset: x, when: {field: nope, op: eq, value: 1}}\n")
    deadline = time.monotonic() + 10
    body = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.http_url}/api/rules").json()
        if body["reload_error"]:
            break
        time.sleep(0.1)
    assert "nope" in " ".join(body["reload_error"]["problems"])
    assert [r["name"] for r in body["items"]] == ["all"]  # the old rules stay in force
    send(server, [span(trace_id, new_span_id(), "after-broken")])
    assert len(items(server, "everything")) == 2


def test_backfill_over_stored_spans_with_dedup(make_server, tmp_path):
    server = make_server()
    old = time.time_ns() - 3600 * 10**9
    trace_id = new_trace_id()
    targets = [span(trace_id, new_span_id(), "refund", start_ns=old + i) for i in range(5)]
    send(server, targets + [span(trace_id, new_span_id(), "other", start_ns=old)])
    rule = {"dataset": "refunds", "when": {"field": "name", "op": "eq", "value": "refund"}}
    for expected_captured in (5, 0):
        resp = httpx.post(
            f"{server.http_url}/api/rules/refunds/backfill",
            json={"since": (old - 10**9) / 1e9, "rule": rule},
            timeout=60,
        )
        assert resp.status_code == 200, resp.text
        last = json.loads(resp.text.strip().splitlines()[-1])
        assert last["done"] and last["captured"] == expected_captured
    assert {it["source_span_id"] for it in items(server, "refunds")} == {s.span_id.hex() for s in targets}
    assert httpx.post(f"{server.http_url}/api/rules/nope/backfill", json={"since": 0}).status_code == 404
    assert httpx.post(f"{server.http_url}/api/rules/x/backfill", json={}).status_code == 400
    # Found by schemathesis: an explicit null since was a 500.
    assert httpx.post(f"{server.http_url}/api/rules/x/backfill", json={"since": None, "rule": rule}).status_code == 400


def test_backfill_cli(make_server, tmp_path):
    server = make_server()
    trace_id = new_trace_id()
    send(server, [span(trace_id, new_span_id(), "refund") for _ in range(3)])
    rules = write_rules(tmp_path / "r.yaml", "rules:\n  - {name: refunds, dataset: refunds, when: {field: name, op: eq, value: refund}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "spanlake", "rules", "backfill", str(rules), "--since", "2020-01-01", "--url", server.http_url],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "captured 3" in result.stdout
    assert len(items(server, "refunds")) == 3


def test_rules_check_cli(tmp_path):
    good = write_rules(tmp_path / "good.yaml", RULES)
    result = subprocess.run([sys.executable, "-m", "spanlake", "rules", "check", str(good)], capture_output=True, text=True)
    assert result.returncode == 0 and "5 rule(s), no errors" in result.stdout
    bad = write_rules(
        tmp_path / "bad.yaml",
        "rules:\n  - name: r1\n    dataset: d\n    when: {and: [{field: model, op: eq, value: x}, {field: model, op: explode, value: 1}]}\n"
        "  - name: r2\n    sample: 7\n    when: {field: status, op: eq, value: error}\n",
    )
    result = subprocess.run([sys.executable, "-m", "spanlake", "rules", "check", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "rules[0] (r1).when.and[1].op: unknown op 'explode'" in result.stderr
    assert "rules[1] (r2).dataset" in result.stderr and "rules[1] (r2).sample" in result.stderr


def test_server_refuses_to_start_with_a_broken_rules_file(make_server, tmp_path):
    bad = write_rules(tmp_path / "bad.yaml", "rules:\n  - {name: x, dataset: d, when: {field: nope, op: eq, value: 1}}\n")
    server = make_server("--rules", str(bad), start=False)
    with pytest.raises(RuntimeError, match="nope"):
        server.start(timeout=20)


@pytest.mark.parametrize(
    ("clock_ahead_minutes", "restart"),
    [(0, False), (50, False), (50, True)],
    ids=["same-clock", "client-50-min-ahead", "client-50-min-ahead-after-a-restart"],
)
def test_an_item_added_with_its_source_ids_before_the_span_arrives_is_not_captured_again(
    make_server, tmp_path, clock_ahead_minutes, restart
):
    """An item added by hand (or imported) before its span arrives counts in the rules' dedup,
    also when the client's clock runs ahead of the server (within the hour of tolerance), and
    after a restart, when the writer's memory of such items is rebuilt from the store."""
    server = make_server("--rules", str(write_rules(tmp_path / "r.yaml", "rules:" + BY_NAME_RULE)))
    start_ns = time.time_ns() + clock_ahead_minutes * 60 * 10**9
    trace_id, span_id = new_trace_id(), new_span_id()
    with client(server) as http:
        new_dataset(http, "by-name")
        add_items(http, "by-name", [{"input": "by hand", "source_trace_id": trace_id, "source_span_id": span_id}])
    if restart:
        assert server.stop() == 0
        server.restart()
    other = new_span_id()
    send(server, [span(trace_id, span_id, "mixed-op", start_ns=start_ns), span(trace_id, other, "mixed-op", start_ns=start_ns)])
    captured = items(server, "by-name")
    assert sorted(it["source_span_id"] for it in captured) == sorted([span_id, other])
    assert [it["input"] for it in captured if it["source_span_id"] == span_id] == ["by hand"]
    assert rules_counters(server)["by-name"]["duplicates"] == 1
