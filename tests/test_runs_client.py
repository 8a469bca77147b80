"""Client-side runs (the client executes its agent and posts results) and comparing two runs.

Latencies and tokens are posted by the client here, so every figure of the summaries and of the
comparison is computed by hand below.
"""

from __future__ import annotations

import pytest

from datasets_client import add_items, assert_error, client, new_dataset, send_spans, unique
from otlp_builders import llm_trace
from run_target import results, wait_run
from server_process import ServerProcess

ITEMS = [
    {"input": "capital of France?", "expected_output": "Paris"},
    {"input": "capital of Spain?", "expected_output": "Madrid"},
    {"input": "2+2 as JSON", "expected_output": {"answer": 4}},
    {"input": "say x", "expected_output": "x"},
    {"input": "say y", "expected_output": "y"},
]
SCORERS = ["exact_match", "levenshtein_similarity"]
LEV_A = (3 + 6 / 21) / 4  # "Madrid is the capital" vs "Madrid": 15 deletions of 21 characters


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("runs-client") / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server):
    with client(server) as c:
        yield c


@pytest.fixture(scope="module")
def two_runs(http):
    """Runs v1 and v2 of one dataset, posted by a client and completed: (dataset, items, v1, v2, trace id)."""
    name = unique("client")
    new_dataset(http, name)
    items = add_items(http, name, ITEMS)
    ids = [i["id"] for i in items]
    trace_id, spans = llm_trace(2)
    send_spans(http, spans)
    v1 = start(http, name, "v1")
    post(http, name, "v1", [{"item_id": ids[0], "output": "Pariss", "latency_ms": 999}])  # replaced below
    post(http, name, "v1", [
        {"item_id": ids[0], "output": "Paris", "latency_ms": 100, "tokens": {"input": 10, "output": 5}},
        {"item_id": ids[1], "output": "Madrid is the capital", "latency_ms": 200, "tokens": 20},
        {"item_id": ids[2], "output": {"answer": 4}, "latency_ms": 300, "trace_id": trace_id},
        {"item_id": ids[3], "error": "boom", "latency_ms": 50},
        {"item_id": ids[4], "output": "y", "latency_ms": 400},
    ])
    v2 = start(http, name, "v2")
    post(http, name, "v2", [
        {"item_id": ids[0], "output": "Lyon", "latency_ms": 100},
        {"item_id": ids[1], "output": "Madrid", "latency_ms": 100},
        {"item_id": ids[2], "output": {"answer": 4}, "latency_ms": 100},
        {"item_id": ids[3], "output": "x", "latency_ms": 100},
        {"item_id": ids[4], "error": "timeout", "latency_ms": 100},
    ])
    for run in (v1, v2):
        resp = http.post(f"/api/datasets/{name}/runs/{run['id']}/complete")
        assert resp.status_code == 202, resp.text
    return name, items, wait_run(http, name, "v1"), wait_run(http, name, "v2"), trace_id


def start(http, dataset: str, run_name: str) -> dict:
    resp = http.post(f"/api/datasets/{dataset}/runs", json={
        "name": run_name, "target": None, "scorers": SCORERS, "thresholds": {"levenshtein_similarity": 0.5},
    })
    assert resp.status_code == 202, resp.text
    run = resp.json()
    assert (run["mode"], run["status"], run["total"], run["pending"]) == ("client", "running", 5, 5)
    return run


def post(http, dataset: str, run: str, rows: list[dict]) -> dict:
    resp = http.post(f"/api/datasets/{dataset}/runs/{run}/results", json={"results": rows})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_posted_results_replace_earlier_posts(http, two_runs):
    name, items, v1, _, trace_id = two_runs
    assert (v1["status"], v1["completed"], v1["failed"], v1["scored"]) == ("completed", 4, 1, 5)
    got = {r["item_id"]: r for r in results(http, name, "v1")}
    first = got[items[0]["id"]]
    assert (first["output"], first["latency_ms"], first["tokens"]) == ("Paris", 100, {"input": 10, "output": 5, "total": 15})
    assert {s["name"]: s["value"] for s in first["scores"]} == {"exact_match": 1.0, "levenshtein_similarity": 1.0}
    failed = got[items[3]["id"]]
    assert (failed["status"], failed["error"], failed["scores"]) == ("error", "boom", [])


def test_result_with_a_stored_trace_is_scored_on_it(http, two_runs):
    name, items, _, _, trace_id = two_runs
    linked = {r["item_id"]: r for r in results(http, name, "v1")}[items[2]["id"]]
    root = http.get(f"/api/traces/{trace_id}").json()["spans"][0]["span_id"]
    assert (linked["trace_id"], linked["span_id"]) == (trace_id, root)
    assert {(s["trace_id"], s["span_id"]) for s in linked["scores"]} == {(trace_id, root)}
    on_trace = http.get(f"/api/traces/{trace_id}/scores").json()["items"]
    assert sorted(s["name"] for s in on_trace) == SCORERS


def test_summary_figures(http, two_runs):
    _, _, v1, v2, _ = two_runs
    s1 = v1["summary"]
    assert (s1["total"], s1["completed"], s1["errors"]) == (5, 4, 1)
    assert s1["latency_ms"] == {"p50": 250.0, "p95": pytest.approx(385.0), "mean": 250.0}  # of 100, 200, 300, 400
    assert s1["tokens"] == {"input": 10, "output": 5, "total": 35}
    # The one error result counts as a failure of each scorer: 3 passes of 5 results.
    assert s1["scorers"]["exact_match"] | {"mean": s1["scorers"]["exact_match"]["mean"]} == {
        "count": 4, "mean": 0.75, "min": 0.0, "max": 1.0, "pass_rate": 0.6, "threshold": None, "errors": 1}
    lev = s1["scorers"]["levenshtein_similarity"]
    assert (lev["mean"], lev["pass_rate"], lev["threshold"]) == (pytest.approx(LEV_A), 0.6, 0.5)
    s2 = v2["summary"]
    assert s2["latency_ms"]["p95"] == 100.0 and s2["tokens"] is None
    assert (s2["scorers"]["exact_match"]["mean"], s2["scorers"]["levenshtein_similarity"]["mean"]) == (0.75, 0.75)


def test_compare_regressions_first_with_deltas(http, two_runs):
    name, items, v1, v2, _ = two_runs
    ids = [i["id"] for i in items]
    pages, params = [], {"runs": "v1,v2", "limit": 2}
    while True:
        resp = http.get(f"/api/datasets/{name}/runs/compare", params=params)
        assert resp.status_code == 200, resp.text
        pages.append(resp.json())
        if not pages[-1]["next_cursor"]:
            break
        params["cursor"] = pages[-1]["next_cursor"]
    rows = [row for page in pages for row in page["items"]]
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    # France dropped on both scorers (1 -> 0: "Lyon" shares no letter with "Paris"); "say y" failed in v2.
    assert [r["item_id"] for r in rows] == [ids[0], ids[4], ids[1], ids[2], ids[3]]
    assert [r["regression"] for r in rows] == [True, True, False, False, False]
    assert [r["improvement"] for r in rows] == [False, False, True, False, True]
    assert rows[0]["score_deltas"] == {"exact_match": -1.0, "levenshtein_similarity": -1.0}
    assert rows[0]["a"]["output"] == "Paris" and rows[0]["b"]["output"] == "Lyon"
    assert rows[1]["a"]["status"] == "ok" and rows[1]["b"]["status"] == "error"
    assert rows[2]["score_deltas"] == {"exact_match": 1.0, "levenshtein_similarity": pytest.approx(15 / 21)}
    assert rows[0]["input"] == "capital of France?" and rows[0]["expected_output"] == "Paris"
    summary = pages[0]["summary"]
    assert (summary["items"], summary["regressions"], summary["improvements"], summary["unchanged"]) == (5, 2, 2, 1)
    delta = summary["delta"]
    assert delta["scorers"]["exact_match"] == {"mean": 0.0, "pass_rate": 0.0}
    assert delta["scorers"]["levenshtein_similarity"]["mean"] == pytest.approx(0.75 - LEV_A)
    assert delta["latency_ms"] == {"p50": -150.0, "p95": pytest.approx(-285.0), "mean": -150.0}
    assert (delta["errors"], delta["completed"], delta["tokens"]) == (0, 0, None)
    assert pages[0]["a"]["id"] == v1["id"] and pages[0]["b"]["id"] == v2["id"]


def test_complete_without_every_result(http):
    name = unique("client-partial")
    new_dataset(http, name)
    items = add_items(http, name, ITEMS[:3])
    run = start_plain(http, name)
    post(http, name, run["id"], [{"item_id": items[1]["id"], "output": "Madrid"}])
    done = http.post(f"/api/datasets/{name}/runs/{run['id']}/complete").json()
    assert done["status"] in ("running", "completed")
    done = wait_run(http, name, run["id"])
    assert (done["status"], done["completed"], done["failed"]) == ("completed", 1, 2)
    missing = results(http, name, run["id"], status="error")
    assert [r["item_id"] for r in missing] == [items[0]["id"], items[2]["id"]]
    assert all("no result was posted" in r["error"] for r in missing)
    late = http.post(f"/api/datasets/{name}/runs/{run['id']}/results", json={"results": [{"item_id": items[0]["id"]}]})
    assert_error(late, 409, "completed")
    assert_error(http.post(f"/api/datasets/{name}/runs/{run['id']}/complete"), 409)


def test_client_run_requests_are_checked(http):
    name = unique("client-checks")
    new_dataset(http, name)
    items = add_items(http, name, ITEMS[:1])
    run = start_plain(http, name)
    path = f"/api/datasets/{name}/runs/{run['id']}/results"
    error = assert_error(http.post(path, json={"results": [{"item_id": "nope"}]}), 400, "results[0].item_id")
    assert error["unknown_item_ids"] == ["nope"]
    assert_error(http.post(path, json={"results": [{"item_id": items[0]["id"], "trace_id": "xyz"}]}), 400, "trace_id")
    assert_error(http.post(path, json={"results": [{"item_id": items[0]["id"], "tokens": -1}]}), 400, "tokens")
    assert_error(http.post(path, json={"results": []}), 400, "results")
    assert_error(http.post(path, json={"results": [{"item_id": items[0]["id"], "latency": 3}]}), 400, "latency")
    cancelled = http.post(f"/api/datasets/{name}/runs/{run['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    assert_error(http.post(path, json={"results": [{"item_id": items[0]["id"]}]}), 409, "cancelled")


def start_plain(http, dataset: str) -> dict:
    resp = http.post(f"/api/datasets/{dataset}/runs", json={"mode": "client", "scorers": ["exact_match"]})
    assert resp.status_code == 202, resp.text
    return resp.json()


def test_results_carry_the_clients_own_scores(http):
    name = unique("client-scores")
    new_dataset(http, name)
    items = add_items(http, name, ITEMS)
    run = start(http, name, "local")  # server scorers: exact_match, levenshtein_similarity
    path = f"/api/datasets/{name}/runs/local/results"
    first = {"item_id": items[0]["id"], "output": "Paris"}
    post(http, name, "local", [{**first, "scores": [{"name": "polite", "value": 0.2}, {"name": "tone", "label": "dry"}]}])
    post(http, name, "local", [{**first, "scores": [{"name": "polite", "value": True, "explanation": "said please"}]}])
    refused = [
        ({**first, "scores": [{"name": "exact_match", "value": 1}]}, "one of the run's server scorers"),
        ({"item_id": items[1]["id"], "error": "boom", "scores": [{"name": "polite", "value": 1}]}, "error result"),
        ({**first, "scores": [{"name": "polite", "value": "high"}]}, "results[0].scores[0].value"),
        ({**first, "scores": [{"name": "polite"}]}, "neither a value nor a label"),
        ({**first, "scores": [{"name": "polite", "value": 1, "weight": 2}]}, "scores[0].weight"),
    ]
    for row, words in refused:
        assert_error(http.post(path, json={"results": [row]}), 400, words)
    post(http, name, "local", [{"item_id": items[1]["id"], "output": "Madrid"}])
    http.post(f"/api/datasets/{name}/runs/local/complete")
    done = wait_run(http, name, run["id"])
    got = {r["item_id"]: r for r in results(http, name, "local")}
    polite = [s for s in got[items[0]["id"]]["scores"] if s["name"] == "polite"]
    assert [(s["value"], s["data_type"], s["explanation"]) for s in polite] == [(1.0, "boolean", "said please")]
    assert sorted(s["name"] for s in got[items[0]["id"]]["scores"]) == ["exact_match", "levenshtein_similarity", "polite"]
    # The three items never posted became error results, each a failure of every scorer: 1 pass of 4.
    assert done["summary"]["scorers"]["polite"] | {"threshold": None} == {
        "count": 1, "mean": 1.0, "min": 1.0, "max": 1.0, "pass_rate": 0.25, "threshold": None, "errors": 3}
    assert "tone" not in done["summary"]["scorers"]  # replaced by the repost
