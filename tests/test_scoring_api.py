"""Batch scoring against a real server with configured scorers and real outside endpoints.

The http and llm_judge scorers call tests/scoring_endpoints.py, served on 127.0.0.1 in this
process; it counts calls per trace, which is how "not scored twice" is checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from scoring_endpoints import ScoringEndpoints, make_trace, send, wait_batch
from server_process import ServerProcess

TESTS_DIR = str(Path(__file__).parent)
PROMPT = "trace={{trace_id}}\nQuestion: {{input}}\nAnswer: {{output}}\nGrade 0..1 as JSON."


@pytest.fixture(scope="module")
def endpoints():
    with ScoringEndpoints(slow_seconds=0.6) as ep:
        yield ep


@pytest.fixture(scope="module")
def server(endpoints, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scoring-api")
    judge = {"model": "judge-1", "base_url": f"{endpoints.url}/v1", "prompt": PROMPT}
    config = {
        "scorers": [
            {"name": "fast_latency", "type": "latency", "params": {"threshold_ms": 150}},
            {"name": "says_paris", "type": "contains", "params": {"value": "paris"}},
            {"name": "cites", "type": "regex", "params": {"pattern": r"\[\d+\]"}},
            {"name": "city_json", "type": "json_output", "params": {"schema": {"type": "object", "required": ["city"]}}},
            {"name": "http_slow", "type": "http", "concurrency": 2, "params": {"url": f"{endpoints.url}/score/slow"}},
            {"name": "http_fast", "type": "http", "concurrency": 4, "max_attempts": 3,
             "params": {"url": f"{endpoints.url}/score/fast", "headers": {"X-Token": "s3cret"}}},
            {"name": "judge", "type": "llm_judge", "concurrency": 8, "timeout_s": 1, "max_attempts": 3, "params": judge},
            {"name": "judge_label", "type": "llm_judge", "params": {**judge, "mode": "label", "labels": {"pass": 1, "fail": 0}}},
            {"name": "span_count", "type": "scoring_endpoints:spans_counter", "params": {"min": 2}},
        ]
    }
    path = tmp / "spanlake.yaml"
    path.write_text(json.dumps(config))
    with ServerProcess(tmp / "data", "--config", str(path), env={"PYTHONPATH": TESTS_DIR}) as srv:
        yield srv


def batch(server, **body) -> httpx.Response:
    return httpx.post(f"{server.http_url}/api/scores/batch", json=body, timeout=30)


def scores_of(server, trace_id: str, name: str | None = None) -> list[dict]:
    resp = httpx.get(f"{server.http_url}/api/traces/{trace_id}/scores", params={"name": name} if name else {}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def run(server, scorer: str, trace_ids: list[str], timeout: float = 30) -> dict:
    resp = batch(server, scorer=scorer, trace_ids=trace_ids)
    assert resp.status_code == 202, resp.text
    return wait_batch(server, resp.json()["batch_id"], timeout=timeout)


def test_scorers_listing(server):
    items = {s["name"]: s for s in httpx.get(f"{server.http_url}/api/scorers").json()["items"]}
    for builtin in ("no_errors", "latency", "token_usage", "output_not_empty", "json_output"):
        assert items[builtin]["ready"] and items[builtin]["origin"] == "builtin" and items[builtin]["description"]
    assert items["regex"]["ready"] is False and "scorers:" in items["regex"]["hint"]
    assert items["cites"]["params"] == {"pattern": r"\[\d+\]"} and items["cites"]["origin"] == "config"
    assert items["judge"]["parameters"]["required"] == ["model"] and items["judge"]["concurrency"] == 8
    assert items["http_fast"]["params"]["headers"] == "***"  # secrets stay in the config file


def test_builtin_and_configured_code_scorers(server):
    good_id, good = make_trace("Capital of France? [1]", '{"city": "Paris"}', duration_ms=100)
    bad_id, bad = make_trace("Capital of Spain?", "Lisbon, I think", error=True, duration_ms=400, children=3)
    send(server, good + bad)
    ids = [good_id, bad_id]
    expected = {
        "no_errors": (1.0, 0.0),
        "latency": (0.1, 0.4),
        "token_usage": (30.0, 45.0),
        "output_not_empty": (1.0, 1.0),
        "json_output": (1.0, 0.0),
        "fast_latency": (1.0, 0.0),
        "says_paris": (1.0, 0.0),
        "cites": (0.0, 0.0),  # regex on the output by default
        "city_json": (1.0, 0.0),
        "span_count": (3.0, 4.0),
    }
    batch_ids = {}
    for name in expected:
        resp = batch(server, scorer=name, trace_ids=ids)
        assert resp.status_code == 202, resp.text
        batch_ids[name] = resp.json()["batch_id"]
    for name, (want_good, want_bad) in expected.items():
        done = wait_batch(server, batch_ids[name])
        assert (done["status"], done["completed"], done["failed"]) == ("completed", 2, 0), done
        (g,) = scores_of(server, good_id, name)
        (b,) = scores_of(server, bad_id, name)
        assert (g["value"], b["value"]) == pytest.approx((want_good, want_bad)), name
        assert g["source"] == "eval" and g["scorer"] == name and g["batch_id"] == batch_ids[name]
    (score,) = scores_of(server, bad_id, "no_errors")
    assert score["data_type"] == "boolean" and "ERROR" in score["explanation"]
    root = next(s for s in bad if not s.parent_span_id)
    assert score["span_id"] == root.span_id.hex()  # whole trace: the root span is the scored span


def test_202_comes_before_any_scoring(server, endpoints):
    traces = [make_trace(f"slow question {i}") for i in range(4)]
    send(server, [s for _, spans in traces for s in spans])
    ids = [t for t, _ in traces]
    resp = batch(server, scorer="http_slow", trace_ids=ids)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "accepted" and body["trace_count"] == 4 and body["unknown_trace_ids"] == []
    # Each call takes 0.6 s at the endpoint: nothing can be scored yet.
    assert sum(endpoints.answered[t] for t in ids) == 0
    state = httpx.get(f"{server.http_url}/api/scores/batches/{body['batch_id']}").json()
    assert state["status"] in ("pending", "running") and state["completed"] == 0
    assert all(scores_of(server, t, "http_slow") == [] for t in ids)
    done = wait_batch(server, body["batch_id"])
    assert (done["status"], done["completed"], done["failed"]) == ("completed", 4, 0)
    for t in ids:
        (score,) = scores_of(server, t, "http_slow")
        assert score["value"] == 3 and score["label"] == "spans" and score["explanation"] == "3 spans"
        assert endpoints.started[t] == 1


def test_one_failing_trace_does_not_stop_the_others(server, endpoints):
    traces = [make_trace(text) for text in ("fine 1", "REJECT me", "FLAKY once", "fine 2", "fine 3")]
    send(server, [s for _, spans in traces for s in spans])
    ids = [t for t, _ in traces]
    done = run(server, "http_fast", ids)
    assert (done["status"], done["completed"], done["failed"], done["pending"]) == ("completed", 4, 1, 0)
    (error,) = done["errors"]
    assert error["trace_id"] == ids[1] and "400" in error["error"] and error["attempts"] == 1
    assert scores_of(server, ids[1], "http_fast") == []
    assert endpoints.started[ids[2]] == 2  # the 503 was retried, and scored once
    assert [s["value"] for s in scores_of(server, ids[2], "http_fast")] == [3]
    assert all(len(scores_of(server, t, "http_fast")) == 1 for t in (ids[0], ids[3], ids[4]))


def test_llm_judge_slow_rate_limited_and_garbage_answers(server, endpoints):
    inputs = ["plain", "SLOW to answer", "RATE limited", "OOPS overloaded", "GARBAGE answer", "STUCK forever"]
    traces = [make_trace(text) for text in inputs]
    send(server, [s for _, spans in traces for s in spans])
    ids = dict(zip(inputs, (t for t, _ in traces)))
    done = run(server, "judge", list(ids.values()), timeout=40)
    assert (done["status"], done["completed"], done["failed"]) == ("completed", 4, 2), done
    for text in ("plain", "SLOW to answer", "RATE limited", "OOPS overloaded"):
        (score,) = scores_of(server, ids[text], "judge")
        assert score["value"] == 0.75 and score["explanation"] == "mostly right"
        assert score["metadata"]["model"] == "judge-1"
    assert endpoints.started[ids["RATE limited"]] == 2  # 429, then after Retry-After: 1 s, an answer
    assert endpoints.started[ids["OOPS overloaded"]] == 3
    errors = {e["trace_id"]: e for e in done["errors"]}
    assert "no score" in errors[ids["GARBAGE answer"]]["error"] and "Hard to say" in errors[ids["GARBAGE answer"]]["error"]
    assert endpoints.started[ids["GARBAGE answer"]] == 1  # a bad answer is not retried
    stuck = errors[ids["STUCK forever"]]
    assert "gave up after 3 attempts" in stuck["error"] and "within 1s" in stuck["error"]


def test_llm_judge_labels(server):
    (pass_id, pass_spans), (fail_id, fail_spans) = make_trace("LABEL-PASS"), make_trace("LABEL-FAIL")
    send(server, pass_spans + fail_spans)
    done = run(server, "judge_label", [pass_id, fail_id])
    assert done["completed"] == 2, done
    (ok,) = scores_of(server, pass_id, "judge_label")
    (ko,) = scores_of(server, fail_id, "judge_label")
    assert (ok["value"], ok["label"]) == (1.0, "pass")
    assert (ko["value"], ko["label"], ko["explanation"]) == (0.0, "fail", "wrong city")


def test_filter_targets_sample_and_unknown_ids(server):
    from scoring_endpoints import make_trace as mk

    service = "svc-" + make_trace()[0][:8]
    traces = [mk(f"q{i}") for i in range(24)]
    send(server, [s for _, spans in traces for s in spans], service=service)
    ids = [t for t, _ in traces]
    where = {"field": "service", "op": "eq", "value": service}

    resp = batch(server, scorer="no_errors", filter=where, limit=10)
    assert resp.status_code == 202 and resp.json()["trace_count"] == 10
    # Sampling is by trace id: the filter (SQL) and an id list (Python) pick the same traces.
    by_filter = batch(server, scorer="output_not_empty", filter=where, limit=1000, sample=0.5).json()
    by_ids = batch(server, scorer="token_usage", trace_ids=ids, sample=0.5).json()
    assert 0 < by_filter["trace_count"] == by_ids["trace_count"] < 24
    wait_batch(server, by_filter["batch_id"])
    wait_batch(server, by_ids["batch_id"])
    picked_filter = {s["trace_id"] for s in list_all(server, batch_id=by_filter["batch_id"])}
    picked_ids = {s["trace_id"] for s in list_all(server, batch_id=by_ids["batch_id"])}
    assert picked_filter == picked_ids and len(picked_ids) == by_ids["trace_count"]

    child = traces[0][1][1]
    unknown_trace = "f" * 32
    resp = batch(
        server, scorer="latency",
        targets=[{"trace_id": ids[0], "span_id": child.span_id.hex()}, {"trace_id": ids[1], "span_id": "e" * 16},
                 {"trace_id": unknown_trace, "span_id": "e" * 16}],
    )
    assert resp.status_code == 202 and resp.json()["unknown_trace_ids"] == [unknown_trace]
    done = wait_batch(server, resp.json()["batch_id"])
    assert (done["completed"], done["failed"]) == (1, 1) and "is not in trace" in done["errors"][0]["error"]
    (span_score,) = httpx.get(
        f"{server.http_url}/api/traces/{ids[0]}/spans/{child.span_id.hex()}/scores", params={"name": "latency"}
    ).json()["items"]
    assert span_score["value"] == pytest.approx(0.010) and span_score["span_id"] == child.span_id.hex()


def list_all(server, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        page = httpx.get(f"{server.http_url}/api/scores", params={**params, "limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


@pytest.mark.parametrize(
    "body,status,code",
    [
        ({"scorer": "nope", "trace_ids": ["a" * 32]}, 404, "unknown_scorer"),
        ({"scorer": "regex", "trace_ids": ["a" * 32]}, 404, "unknown_scorer"),  # a type that needs params
        ({"scorer": "no_errors"}, 400, "bad_request"),
        ({"scorer": "no_errors", "trace_ids": ["a" * 32], "filter": {}}, 400, "bad_request"),
        ({"scorer": "no_errors", "trace_ids": ["xyz"]}, 400, "bad_request"),
        ({"scorer": "no_errors", "trace_ids": ["a" * 32], "sample": 0}, 400, "bad_request"),
        ({"scorer": "no_errors", "filter": {"field": "colour", "op": "eq", "value": 1}}, 400, "invalid_filter"),
        ({"scorer": "no_errors", "trace_ids": ["a" * 32, "b" * 32]}, 404, "traces_not_found"),
    ],
)
def test_batch_request_validation(server, body, status, code):
    resp = batch(server, **body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code and resp.json()["error"]["message"]
    if code == "traces_not_found":
        assert resp.json()["error"]["unknown_trace_ids"] == ["a" * 32, "b" * 32]
