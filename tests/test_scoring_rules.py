"""Scoring rules on real OTLP traffic: exactly which traces and spans get scored, by whom, and when.

A rule with `score: [...]` queues its matches in the ingest transaction; the scoring engine
scores them in the background with `source: rule` and `metadata.rule`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from otlp_builders import new_span_id, new_trace_id, span
from scoring_endpoints import ScoringEndpoints, send
from spanlake.capture.rules import sampled_in

SPAN_RULES = """
rules:
  - name: tool-spans
    when: {field: name, op: eq, value: tool}
    score: [no_errors, output_not_empty]
  - name: half-of-chats
    when: {field: name, op: eq, value: chat}
    sample: 0.5
    score: [latency]
  - name: capped
    when: {field: name, op: eq, value: capped-op}
    score: [no_errors, latency]
    max_per_hour: 6                  # scorer calls: 3 matches of 2 scorers
  - name: capture-and-score
    dataset: errors
    when: {field: status, op: eq, value: error}
    score: [no_errors]
"""
FAST_ENGINE = {"scoring": {"rule_dispatch_seconds": 0.2, "poll_seconds": 0.2, "linger_seconds": 0.05, "lease_seconds": 3}}


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def config_file(tmp_path: Path, scorers: list[dict[str, Any]] | None = None) -> Path:
    return write(tmp_path / "spanlake.yaml", json.dumps({**FAST_ENGINE, "scorers": scorers or []}))


def rule_scores(server, **params: Any) -> list[dict[str, Any]]:
    resp = httpx.get(f"{server.http_url}/api/scores", params={"source": "rule", "limit": 1000, **params}, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def rules_by_name(server) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in httpx.get(f"{server.http_url}/api/rules", timeout=30).json()["items"]}


def wait_until(check, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached after {timeout}s; last: {value!r}")
        time.sleep(0.1)


def settled(server, **matched: int) -> dict[str, dict[str, Any]]:
    """The rules once no scoring rule owes a scorer call (and each rule named has matched that many)."""
    def check():
        rules = rules_by_name(server)
        scoring = [r["scoring"] for r in rules.values() if "scoring" in r]
        # Counters are since start: after a restart, scored + failed may exceed queued.
        done = all(r["backlog"] == 0 and r["queued"] <= r["scored"] + r["failed"] for r in scoring)
        done = done and all(rules[name]["scoring"]["matched"] >= n for name, n in matched.items())
        return rules if done else None
    return wait_until(check, timeout=90, what="scoring rules settled")


def by_rule(scores: list[dict[str, Any]]) -> dict[str, set[tuple[str, str, str]]]:
    out: dict[str, set[tuple[str, str, str]]] = {}
    for s in scores:
        out.setdefault(s["metadata"]["rule"], set()).add((s["name"], s["trace_id"], s["span_id"]))
    return out


def test_span_rules_score_exactly_their_matches_and_the_sample_survives_a_restart(make_server, tmp_path):
    server = make_server("--rules", str(write(tmp_path / "rules.yaml", SPAN_RULES)), "--config", str(config_file(tmp_path)))
    expected: dict[str, set[tuple[str, str, str]]] = {"tool-spans": set(), "half-of-chats": set(), "capture-and-score": set()}
    chats: list[str] = []

    def traffic(n: int) -> list[Any]:
        spans = []
        for i in range(n):
            trace_id, root = new_trace_id(), new_span_id()
            spans.append(span(trace_id, root, "agent", attributes={"output.value": "done"}))
            tool, chat, failed = new_span_id(), new_span_id(), new_span_id()
            spans.append(span(trace_id, tool, "tool", parent=root, attributes={"output.value": "42"}))
            spans.append(span(trace_id, chat, "chat", parent=root))
            spans.append(span(trace_id, failed, "other", parent=root, error=True))
            expected["tool-spans"] |= {("no_errors", trace_id, tool), ("output_not_empty", trace_id, tool)}
            chats.append(chat)
            if sampled_in("half-of-chats", chat, 0.5):
                expected["half-of-chats"].add(("latency", trace_id, chat))
            expected["capture-and-score"].add(("no_errors", trace_id, failed))
        return spans

    send(server, traffic(20))
    assert server.stop() == 0  # whatever is queued or half-scored is finished after the restart
    server.restart()
    send(server, traffic(20))
    trace_id = new_trace_id()
    send(server, [span(trace_id, new_span_id(), "capped-op") for _ in range(5)])
    rules = settled(server)

    got = by_rule(rule_scores(server))
    assert got["tool-spans"] == expected["tool-spans"]
    assert got["half-of-chats"] == expected["half-of-chats"]  # the documented hash, before and after the restart
    assert 0.25 < len(expected["half-of-chats"]) / len(chats) < 0.75
    assert got["capture-and-score"] == expected["capture-and-score"]
    assert len(got["capped"]) == 6 and {name for name, _, _ in got["capped"]} == {"no_errors", "latency"}
    assert len({span_id for _, _, span_id in got["capped"]}) == 3  # whole matches: both scorers or none
    # Agent spans matched no rule: never scored.
    assert set(got) == {"tool-spans", "half-of-chats", "capped", "capture-and-score"}

    one = next(s for s in rule_scores(server, name="output_not_empty"))
    assert (one["source"], one["scorer"], one["value"], one["data_type"]) == ("rule", "output_not_empty", 1.0, "boolean")
    job = httpx.get(f"{server.http_url}/api/scores/batches/{one['batch_id']}").json()  # the rule's job, like a batch
    assert (job["rule"], job["scorer"], job["status"]) == ("tool-spans", "output_not_empty", "completed")
    failed = [s for s in rule_scores(server) if s["metadata"]["rule"] == "capture-and-score"]
    assert all(s["value"] == 0.0 for s in failed)  # the scored span has status ERROR
    items = httpx.get(f"{server.http_url}/api/datasets/errors/items", params={"limit": 100}).json()["items"]
    assert len(items) == 40  # the same rule also captured

    capped = rules["capped"]["scoring"]
    # Counters are since start: the restart reset them, so only the second half shows.
    assert (capped["matched"], capped["over_budget"], capped["queued"], capped["scored"], capped["failed"]) == (5, 2, 6, 6, 0)
    half = rules["half-of-chats"]["scoring"]
    assert half["matched"] == 20 and half["sampled_out"] == 20 - half["queued"]
    assert rules["tool-spans"]["score"] == ["no_errors", "output_not_empty"]
    assert rules["tool-spans"]["dataset"] is None


TRACE_RULES = """
rules:
  - name: judge-support
    scope: trace
    when: {field: service, op: eq, value: support-agent}
    score: [slow]
"""


@pytest.fixture
def endpoints():
    with ScoringEndpoints(slow_seconds=0.3) as ep:
        yield ep


def test_a_kill_mid_scoring_neither_loses_nor_repeats_a_trace(make_server, tmp_path, endpoints):
    slow = {"name": "slow", "type": "http", "concurrency": 1, "params": {"url": f"{endpoints.url}/score/slow"}}
    server = make_server(
        "--rules", str(write(tmp_path / "rules.yaml", TRACE_RULES)), "--config", str(config_file(tmp_path, [slow])),
        "--trace-quiet-seconds", "0.5",
    )
    support, other = [], []
    for i in range(12):
        trace_id, root = new_trace_id(), new_span_id()
        send(server, [span(trace_id, root, "answer", attributes={"input.value": f"q{i}"})],
             service="support-agent" if i % 3 else "billing")
        (support if i % 3 else other).append(trace_id)

    def committed() -> set[str]:
        return {s["trace_id"] for s in rule_scores(server, name="slow")}

    wait_until(lambda: len(committed()) >= 2, what="two traces scored")
    before = committed()
    server.kill()  # mid-scoring: queued matches, a running job, a call in flight
    assert len(before) < len(support)
    server.restart()
    wait_until(lambda: committed() == set(support), what="every support trace scored")
    time.sleep(1.0)
    scores = rule_scores(server, name="slow")
    assert Counter(s["trace_id"] for s in scores) == Counter({t: 1 for t in support})
    assert all(s["metadata"]["rule"] == "judge-support" and s["span_id"] for s in scores)
    # A call whose score was committed before the kill is never made again; none for other services.
    assert {t: endpoints.started[t] for t in before} == {t: 1 for t in before}
    assert not any(endpoints.started[t] for t in other)


def test_budget_and_recent_failures_of_a_trace_rule(make_server, tmp_path, endpoints):
    fast = {"name": "checker", "type": "http", "max_attempts": 1, "params": {"url": f"{endpoints.url}/score/fast"}}
    rules = """
rules:
  - name: judged
    scope: trace
    when: {field: name, op: eq, value: answer}
    score: [checker]
    max_per_hour: 4
"""
    server = make_server("--rules", str(write(tmp_path / "rules.yaml", rules)), "--config", str(config_file(tmp_path, [fast])),
                         "--trace-quiet-seconds", "0.5")
    traces = sorted(new_trace_id() for _ in range(7))
    allowed = traces[:4]  # over budget, the first matches by trace id go through
    # One request: the traces go quiet together and are judged together.
    send(server, [span(t, new_span_id(), "answer", attributes={"input.value": "REJECT" if t == traces[0] else "fine"})
                  for t in traces])
    state = settled(server, judged=7)["judged"]["scoring"]
    assert (state["matched"], state["over_budget"], state["queued"], state["scored"], state["failed"]) == (7, 3, 4, 3, 1)
    assert {s["trace_id"] for s in rule_scores(server, name="checker")} == set(allowed[1:])
    failure = state["recent_failures"][0]
    assert (failure["trace_id"], failure["span_id"], failure["scorer"]) == (traces[0], None, "checker")
    assert "400" in failure["error"]


def test_hot_reload_adds_a_scoring_rule_and_refuses_an_unknown_scorer(make_server, tmp_path):
    path = write(tmp_path / "rules.yaml", "rules: []\n")
    server = make_server("--rules", str(path), "--config", str(config_file(tmp_path)))
    trace_id = new_trace_id()
    before = new_span_id()
    send(server, [span(trace_id, before, "op")])
    path.write_text("rules:\n  - {name: all-ops, when: {field: name, op: eq, value: op}, score: [no_errors]}\n")
    wait_until(lambda: "all-ops" in rules_by_name(server), what="rule loaded")
    after = new_span_id()
    send(server, [span(trace_id, after, "op")])
    settled(server)
    assert {s["span_id"] for s in rule_scores(server)} == {after}  # only the span sent after the reload

    path.write_text("rules:\n  - {name: all-ops, when: {field: name, op: eq, value: op}, score: [nope, exact_match]}\n")
    body = wait_until(lambda: httpx.get(f"{server.http_url}/api/rules").json()["reload_error"] and
                      httpx.get(f"{server.http_url}/api/rules").json(), what="reload refused")
    problems = " ".join(body["reload_error"]["problems"])
    assert "unknown scorer 'nope'" in problems and "'exact_match' cannot score a span" in problems
    assert [r["name"] for r in body["items"]] == ["all-ops"]


def test_backfill_scores_stored_traces_once(make_server, tmp_path):
    server = make_server("--config", str(config_file(tmp_path)))
    old = time.time_ns() - 3600 * 10**9
    targets, traces = [], []
    for i in range(5):
        trace_id, root = new_trace_id(), new_span_id()
        send(server, [span(trace_id, root, "refund", start_ns=old + i), span(trace_id, new_span_id(), "x", parent=root, start_ns=old + i)])
        targets.append(root)
        traces.append(trace_id)
    # One trace already carries the score (an earlier batch): backfill leaves it alone.
    resp = httpx.post(f"{server.http_url}/api/scores/batch", json={"scorer": "no_errors", "trace_ids": traces[:1]})
    assert resp.status_code == 202
    wait_until(lambda: httpx.get(f"{server.http_url}/api/scores/batches/{resp.json()['batch_id']}").json()["status"] == "completed")
    rule = {"scope": "trace", "when": {"field": "name", "op": "eq", "value": "refund"}, "score": ["no_errors"]}

    def backfill() -> dict[str, Any]:
        r = httpx.post(f"{server.http_url}/api/rules/refund-check/backfill", json={"since": (old - 10**9) / 1e9, "rule": rule}, timeout=60)
        assert r.status_code == 200, r.text
        return json.loads(r.text.strip().splitlines()[-1])

    first = backfill()
    assert first["done"] and (first["matched"], first["queued"], first["already_scored"]) == (5, 4, 1)
    again = backfill()  # at once: the first backfill's targets are still queued or being scored
    assert (again["queued"], again["already_scored"]) == (0, 5)
    wait_until(lambda: len(rule_scores(server)) == 4, what="backfilled scores")
    assert {s["trace_id"] for s in rule_scores(server)} == set(traces[1:])
    assert {s["span_id"] for s in rule_scores(server)} == set(targets[1:])  # on each trace's root span
    assert backfill()["queued"] == 0

    bad = httpx.post(f"{server.http_url}/api/rules/x/backfill", json={"since": 0, "rule": {**rule, "score": ["nope"]}})
    assert bad.status_code == 400 and "unknown scorer 'nope'" in bad.json()["error"]["message"]

    rules = write(tmp_path / "r.yaml", "rules:\n  - {name: chk, when: {field: name, op: eq, value: x}, score: [latency]}\n")
    result = subprocess.run(
        [sys.executable, "-m", "spanlake", "rules", "backfill", str(rules), "--since", "2020-01-01", "--url", server.http_url],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "queued 5 scorer calls" in result.stdout
    wait_until(lambda: len(rule_scores(server, name="latency")) == 5, what="CLI backfill scored")


def test_rules_check_knows_the_configs_scorers(tmp_path):
    rules = write(tmp_path / "r.yaml", """
rules:
  - name: judge
    scope: trace
    when: {field: service, op: eq, value: support-agent}
    score: [helpfulness, no_errors]
    max_per_hour: 500
""")
    check = [sys.executable, "-m", "spanlake", "rules", "check", str(rules)]
    result = subprocess.run(check, capture_output=True, text=True)
    assert result.returncode == 1
    assert "rules[0] (judge).score[0]: unknown scorer 'helpfulness'" in result.stderr
    config = write(tmp_path / "c.yaml", json.dumps(
        {"scorers": [{"name": "helpfulness", "type": "http", "params": {"url": "http://127.0.0.1:9/score"}}]}))
    result = subprocess.run([*check, "--config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "judge: scope=trace score=helpfulness,no_errors" in result.stdout
    wrong = write(tmp_path / "w.yaml", "rules:\n  - {name: w, when: {field: name, op: eq, value: x}, score: [exact_match], topic: t}\n")
    result = subprocess.run([sys.executable, "-m", "spanlake", "rules", "check", str(wrong)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "score[0]: scorer 'exact_match' cannot score a span" in result.stderr
    assert "rules[0] (w).topic: only applies to rules with a dataset" in result.stderr


def test_server_refuses_a_rule_naming_an_unknown_scorer(make_server, tmp_path):
    bad = write(tmp_path / "bad.yaml", "rules:\n  - {name: x, when: {field: name, op: eq, value: 1}, score: [nope]}\n")
    server = make_server("--rules", str(bad), start=False)
    with pytest.raises(RuntimeError, match="unknown scorer 'nope'"):
        server.start(timeout=20)
