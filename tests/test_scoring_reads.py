"""Manual scores and every score read route, on the shared server (only our own traces)."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from scoring_endpoints import make_trace, send, wait_batch


@pytest.fixture(scope="module")
def traces(shared_server):
    """Two traces of our own: (trace_id, root span id, child span id) each."""
    out = []
    spans = []
    for error in (False, True):
        trace_id, trace_spans = make_trace(error=error)
        out.append((trace_id, trace_spans[0].span_id.hex(), trace_spans[1].span_id.hex()))
        spans += trace_spans
    send(shared_server, spans)
    return out


def url(server, path: str) -> str:
    return f"{server.http_url}{path}"


def post_score(server, **body) -> httpx.Response:
    return httpx.post(url(server, "/api/scores"), json=body, timeout=10)


def test_manual_scores_are_checked_and_replace(shared_server, traces):
    (trace_id, root, child), _ = traces
    first = post_score(shared_server, trace_id=trace_id, name="helpful", value=0.9, source="annotation", scorer="alice")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["span_id"] == root and body["data_type"] == "numeric" and body["source"] == "annotation"
    assert set(body) >= {"id", "trace_id", "span_id", "name", "value", "label", "data_type", "source", "scorer",
                         "explanation", "created_at"}
    # Same (name, trace, span, source, scorer): replaced, not added.
    again = post_score(shared_server, trace_id=trace_id, name="helpful", value=0.4, source="annotation", scorer="alice",
                       explanation="on second thought")
    assert again.status_code == 201
    items = httpx.get(url(shared_server, f"/api/traces/{trace_id}/scores"), params={"name": "helpful"}).json()["items"]
    assert [(s["value"], s["explanation"]) for s in items] == [(0.4, "on second thought")]

    flag = post_score(shared_server, trace_id=trace_id, span_id=child, name="pii", value=True, metadata={"by": "regex"})
    assert flag.status_code == 201 and flag.json()["data_type"] == "boolean" and flag.json()["value"] == 1.0
    tag = post_score(shared_server, trace_id=trace_id, span_id=child, name="topic", label="billing")
    assert tag.json()["data_type"] == "categorical" and tag.json()["value"] is None
    span_items = httpx.get(url(shared_server, f"/api/traces/{trace_id}/spans/{child}/scores")).json()
    assert {s["name"] for s in span_items["items"]} == {"pii", "topic"} and span_items["span_id"] == child


@pytest.mark.parametrize(
    "body,status",
    [
        ({"trace_id": "ab" * 16, "name": "x", "value": 1}, 404),  # a trace the store never saw
        ({"trace_id": None, "name": "x", "value": 1}, 400),
        ({"trace_id": "TRACE", "name": "x", "value": 1}, 400),
        ({"name": "x", "value": "high"}, 400),
        ({"name": "x", "value": 1, "source": "eval"}, 400),  # eval scores come from batches
        ({"name": "x"}, 400),  # neither value nor label
        ({"name": "x", "value": 10**400}, 400),
        ({"name": "x", "value": 1, "colour": "red"}, 400),
    ],
)
def test_manual_score_refusals(shared_server, traces, body, status):
    body = {"trace_id": traces[0][0], **body}
    resp = post_score(shared_server, **body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] and resp.json()["error"]["message"]


def test_unknown_span_is_refused(shared_server, traces):
    resp = post_score(shared_server, trace_id=traces[0][0], span_id="e" * 16, name="x", value=1)
    assert resp.status_code == 404 and "span" in resp.json()["error"]["message"]


def test_score_listing_filters_and_pages(shared_server, traces):
    (t1, _, _), (t2, _, _) = traces
    for i, value in enumerate((0.1, 0.5, 0.9)):
        assert post_score(shared_server, trace_id=t2, name=f"grade{i}", value=value, scorer="reads-test").status_code == 201
    get = lambda **p: httpx.get(url(shared_server, "/api/scores"), params=p).json()  # noqa: E731
    assert {s["name"] for s in get(trace_id=t2, scorer="reads-test")["items"]} == {"grade0", "grade1", "grade2"}
    assert [s["value"] for s in get(trace_id=t2, scorer="reads-test", min_value=0.3, max_value=0.6)["items"]] == [0.5]
    assert get(trace_id=t2, source="annotation")["items"] == []
    seen, cursor = [], None
    while True:
        page = get(trace_id=t2, scorer="reads-test", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 3
    for bad in ({"min_value": "lots"}, {"source": "robot"}, {"trace_id": "x"}, {"cursor": "!!"}, {"limit": 0}):
        resp = httpx.get(url(shared_server, "/api/scores"), params=bad)
        assert resp.status_code == 400, (bad, resp.text)
    assert httpx.get(url(shared_server, f"/api/traces/{'ab' * 16}/scores")).status_code == 404
    assert httpx.get(url(shared_server, f"/api/traces/{t1}/spans/{'e' * 16}/scores")).status_code == 404


def test_batch_reads_and_scorer_results(shared_server, traces):
    ids = [t for t, _, _ in traces]
    resp = httpx.post(url(shared_server, "/api/scores/batch"), json={"scorer": "no_errors", "trace_ids": ids})
    assert resp.status_code == 202 and resp.headers["location"].endswith(resp.json()["batch_id"])
    batch_id = resp.json()["batch_id"]
    done = wait_batch(shared_server, batch_id)
    assert done["scorer"] == "no_errors" and done["total"] == 2 and done["finished_at"]

    listed = httpx.get(url(shared_server, "/api/scores/batches"), params={"scorer": "no_errors", "limit": 1000}).json()
    assert batch_id in {b["batch_id"] for b in listed["items"]}
    statuses = httpx.get(url(shared_server, "/api/scores/batches"), params={"status": "completed", "limit": 1}).json()
    assert len(statuses["items"]) == 1 and statuses["items"][0]["status"] == "completed"
    assert httpx.get(url(shared_server, "/api/scores/batches"), params={"status": "odd"}).status_code == 400
    assert httpx.get(url(shared_server, "/api/scores/batches/nope")).status_code == 404

    results = httpx.get(url(shared_server, "/api/scorers/no_errors/results"), params={"batch_id": batch_id}).json()
    assert results["scorer"] == "no_errors"
    stats = results["stats"]
    assert (stats["count"], stats["mean"], stats["pass_rate"]) == (2, 0.5, 0.5)
    assert sum(b["count"] for b in stats["histogram"]) == 2
    assert {(s["trace_id"], s["value"]) for s in results["items"]} == {(ids[0], 1.0), (ids[1], 0.0)}
    assert all(s["trace_url"] == f"/api/traces/{s['trace_id']}" for s in results["items"])
    threshold = httpx.get(
        url(shared_server, "/api/scorers/no_errors/results"), params={"batch_id": batch_id, "pass_threshold": 2}
    ).json()
    assert threshold["stats"]["pass_rate"] == 0.0
    assert httpx.get(url(shared_server, "/api/scorers/never-heard-of-it/results")).status_code == 404

    # Scores are visible to trace listings and to `score.<name>` filters.
    where = json.dumps({"and": [{"field": "score.no_errors", "op": "eq", "value": 0},
                                {"field": "trace_id", "op": "in", "value": ids}]})
    page = httpx.get(url(shared_server, "/api/traces"), params={"filter": where}).json()
    assert [t["trace_id"] for t in page["items"]] == [ids[1]]
    assert page["items"][0]["scores"]["no_errors"] == 0.0


def test_cli_score_waits_for_the_batch(shared_server, traces, tmp_path):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# our traces\n" + "\n".join(t for t, _, _ in traces) + "\n")
    cmd = [sys.executable, "-m", "spanlake", "score", "output_not_empty", "--trace-ids", str(ids_file),
           "--wait", "--url", shared_server.http_url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    batch_id = done.stdout.strip()
    assert "2 scored, 0 failed" in done.stderr
    batch = httpx.get(url(shared_server, f"/api/scores/batches/{batch_id}")).json()
    assert batch["status"] == "completed" and batch["completed"] == 2

    where = json.dumps({"field": "trace_id", "op": "eq", "value": traces[0][0]})
    started = subprocess.run(
        [sys.executable, "-m", "spanlake", "score", "latency", "--filter", where, "--url", shared_server.http_url],
        capture_output=True, text=True, timeout=60,
    )
    assert started.returncode == 0 and "1 trace(s) to score" in started.stderr
    wait_batch(shared_server, started.stdout.strip())

    refused = subprocess.run(
        [sys.executable, "-m", "spanlake", "score", "nope", "--trace-ids", str(ids_file), "--url", shared_server.http_url],
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode == 1 and refused.stderr.startswith("spanlake: error:") and "nope" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
