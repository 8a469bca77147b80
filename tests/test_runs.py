"""Dataset runs against a real server and a real HTTP target (tests/run_target.py).

Figures are computed by hand from the items below: which answers match, the edit distances,
the token counts. Latencies measured by the server are only bounded (a SLOW item sleeps 0.3 s).
"""

from __future__ import annotations

import json
import re

import pytest

from datasets_client import add_items, assert_error, client, new_dataset, unique
from run_target import RunTarget, results, wait_run
from server_process import ServerProcess

SCORERS = ["exact_match", "contains_expected", "levenshtein_similarity", "json_equal"]
ITEMS = [
    {"input": "capital of France?", "expected_output": "Paris"},
    {"input": "capital of Spain?", "expected_output": "Madrid"},
    {"input": "2+2 as JSON", "expected_output": {"answer": 4}},
    {"input": "FAIL please", "expected_output": "x"},
    {"input": "SLOW question", "expected_output": "SLOW question"},
]
ANSWERS = {
    "capital of France?": {"output": "Paris", "usage": {"input_tokens": 10, "output_tokens": 2}},
    "capital of Spain?": "Madrid is the capital",  # plain text: the whole body is the output
    "2+2 as JSON": {"output": {"answer": 4}, "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
}


@pytest.fixture(scope="module")
def target():
    with RunTarget(slow_seconds=0.3, answers=ANSWERS) as t:
        yield t


@pytest.fixture(scope="module")
def server(tmp_path_factory, target):
    tmp = tmp_path_factory.mktemp("runs")
    config = tmp / "spanlake.yaml"
    config.write_text(json.dumps({
        "runs": {"trace_wait_seconds": 0.2, "poll_seconds": 0.2},
        "pricing": {"test-model": {"input": 1.0, "output": 2.0}},  # USD per million tokens
    }))
    with ServerProcess(tmp / "data", "--config", str(config)) as srv:
        target.spanlake_url = srv.http_url
        yield srv


@pytest.fixture(scope="module")
def http(server):
    with client(server) as c:
        yield c


@pytest.fixture(scope="module")
def finished_run(http, target):
    """One server-side run over ITEMS, finished: (dataset name, run, items)."""
    name = unique("runs")
    new_dataset(http, name)
    items = add_items(http, name, ITEMS)
    resp = http.post(f"/api/datasets/{name}/runs", json={
        "name": "baseline", "target": {"url": target.url, "headers": {"X-Token": "s3cret"}},
        "scorers": SCORERS, "concurrency": 3, "metadata": {"git": "abc123", "model": "test-model"},
    })
    assert resp.status_code == 202, resp.text
    accepted = resp.json()
    assert accepted["status"] in ("pending", "running") and accepted["total"] == 5
    assert accepted["target"]["headers"] == {"X-Token": "***"}  # secrets are never shown
    return name, wait_run(http, name, accepted["id"]), items


def test_server_run_results(http, target, finished_run):
    name, run, items = finished_run
    assert (run["status"], run["total"], run["completed"], run["failed"], run["pending"]) == ("completed", 5, 4, 1, 0)
    assert run["scored"] == 5 and run["metadata"] == {"git": "abc123", "model": "test-model"}
    got = {r["item_id"]: r for r in results(http, name, run["id"])}
    assert [r["item_id"] for r in results(http, name, run["id"])] == [i["id"] for i in items]  # item order
    france, spain, json_item, failing, slow = (got[i["id"]] for i in items)
    assert (france["output"], france["tokens"]) == ("Paris", {"input": 10, "output": 2, "total": 12})
    assert spain["output"] == "Madrid is the capital" and spain["tokens"] is None
    assert json_item["output"] == {"answer": 4} and json_item["tokens"] == {"input": 5, "output": 2, "total": 7}
    assert failing["status"] == "error" and "500" in failing["error"] and failing["scores"] == []
    assert slow["output"] == "SLOW question" and slow["latency_ms"] >= 300
    assert france["input"] == "capital of France?" and json_item["expected_output"] == {"answer": 4}
    # Each call carried its own W3C trace context, recorded on the result.
    for item in items:
        [header] = target.traceparents[item["id"]]
        trace_id, parent = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", header).groups()
        assert got[item["id"]]["trace_id"] == trace_id
    assert len({got[i["id"]]["trace_id"] for i in items}) == 5
    sent = target.headers[-1]
    assert sent["x-token"] == "s3cret" and sent["content-type"] == "application/json"


def test_server_run_scores(http, finished_run):
    name, run, items = finished_run
    got = {r["item_id"]: {s["name"]: s for s in r["scores"]} for r in results(http, name, run["id"])}
    france, spain, json_item, _, slow = (got[i["id"]] for i in items)
    values = {n: [france[n]["value"], spain[n]["value"], json_item[n]["value"], slow[n]["value"]] for n in SCORERS}
    assert values["exact_match"] == [1.0, 0.0, 1.0, 1.0]
    assert values["contains_expected"] == [1.0, 1.0, 1.0, 1.0]
    assert values["json_equal"] == [1.0, 0.0, 1.0, 1.0]
    # "Madrid is the capital" -> "Madrid": delete 15 of 21 characters.
    assert values["levenshtein_similarity"] == pytest.approx([1.0, 1 - 15 / 21, 1.0, 1.0])
    # No stored trace for these results: scores are kept by run result, with no trace id.
    assert all(s["trace_id"] is None and s["span_id"] is None for s in france.values())


def test_server_run_summary(http, finished_run):
    name, run, _ = finished_run
    summary = run["summary"]
    assert (summary["total"], summary["completed"], summary["errors"], summary["pending"]) == (5, 4, 1, 0)
    assert summary["tokens"] == {"input": 15, "output": 4, "total": 19}
    stats = summary["scorers"]
    # The FAIL item's error counts as a failure of every scorer: 3 of 5 pass exact_match, not 3 of 4.
    assert (stats["exact_match"]["mean"], stats["exact_match"]["pass_rate"], stats["exact_match"]["count"]) == (0.75, 0.6, 4)
    assert stats["contains_expected"]["pass_rate"] == 0.8 and stats["exact_match"]["errors"] == 1
    assert summary["errors_count_as_failures"] is True and "failure of every scorer" in summary["note"]
    # Priced from the config's table: 15 input and 4 output tokens at 1 and 2 USD per million.
    assert summary["cost"]["total"] == pytest.approx((15 * 1.0 + 4 * 2.0) / 1e6)
    assert (summary["cost"]["model"], summary["cost"]["currency"]) == ("test-model", "USD")
    assert stats["levenshtein_similarity"]["mean"] == pytest.approx((3 + 6 / 21) / 4)
    assert stats["levenshtein_similarity"]["pass_rate"] is None  # numeric, and the run set no threshold
    latency = summary["latency_ms"]
    assert latency["p50"] < 250 <= latency["p95"]  # 3 fast answers and one 300 ms one: p95 interpolates near it
    listed = http.get(f"/api/datasets/{name}/runs").json()["items"]
    assert [r["name"] for r in listed] == ["baseline"] and "summary" not in listed[0]
    assert http.get(f"/api/datasets/{name}/runs/baseline").json()["id"] == run["id"]  # by name too


def test_failed_results_filter_and_scores_api(http, finished_run):
    name, run, items = finished_run
    errors = results(http, name, run["id"], status="error")
    assert [r["item_id"] for r in errors] == [items[3]["id"]]
    page = http.get("/api/scores", params={"name": "exact_match", "limit": 1000}).json()["items"]
    assert sum(1 for s in page if s["run_id"] == run["id"]) == 4
    stats = http.get("/api/scorers/exact_match/results").json()
    assert stats["stats"]["count"] >= 4 and all("trace_url" in s for s in stats["items"])


def test_target_spans_link_result_to_its_trace(http, target, finished_run):
    name = unique("runs-otlp")
    new_dataset(http, name)
    [item] = add_items(http, name, [{"input": "TRACE me", "expected_output": "TRACE me"}])
    resp = http.post(f"/api/datasets/{name}/runs", json={"target": {"url": target.url}, "scorers": ["exact_match", "no_errors"]})
    run = wait_run(http, name, resp.json()["id"])
    assert run["status"] == "completed", run
    [result] = results(http, name, run["id"])
    trace_id, span_id = target.exported[item["id"]]
    assert (result["trace_id"], result["span_id"]) == (trace_id, span_id)
    scores = {s["name"]: s for s in result["scores"]}
    assert scores["exact_match"]["value"] == 1.0 and scores["no_errors"]["value"] == 1.0
    assert (scores["exact_match"]["trace_id"], scores["exact_match"]["span_id"]) == (trace_id, span_id)
    on_trace = http.get(f"/api/traces/{trace_id}/scores").json()["items"]
    assert {s["name"] for s in on_trace} == {"exact_match", "no_errors"}
    assert all(s["run_id"] == run["id"] for s in on_trace)
    # Score filters find the linked trace; finished_run's scores without a trace change nothing.
    flt = {"field": "score.exact_match", "op": "gte", "value": 0}
    for path in ("/api/traces", "/api/spans"):
        resp = http.get(path, params={"filter": json.dumps(flt), "limit": 1000})
        assert resp.status_code == 200, resp.text
        assert [t["trace_id"] for t in resp.json()["items"]] == [trace_id]


def test_run_requests_are_checked(http, target, finished_run):
    name, run, _ = finished_run
    runs = f"/api/datasets/{name}/runs"
    assert_error(http.post(runs, json={"name": "baseline", "target": {"url": target.url}}), 409, "baseline")
    assert_error(http.post(runs, json={"target": {"url": "ftp://x"}}), 400, "target.url")
    assert_error(http.post(runs, json={"target": {"url": target.url}, "scorers": ["nope"]}), 400, "scorers[0]")
    assert_error(http.post(runs, json={"target": {"url": target.url}, "concurrency": 0}), 400, "concurrency")
    assert_error(http.post(runs, json={"target": {"url": target.url, "headers": {"traceparent": "x"}}}), 400, "traceparent")
    assert_error(http.post(runs, json={"mode": "client", "target": {"url": target.url}}), 400, "client")
    assert_error(http.post(runs, json={"scorers": ["exact_match"], "thresholds": {"latency": 1}}), 400, "thresholds.latency")
    assert_error(http.post(runs, json={"nme": "x"}), 400, "nme")
    assert_error(http.post("/api/datasets/nope/runs", json={"target": {"url": target.url}}), 404, "nope")
    assert_error(http.get(f"{runs}/nope"), 404, "nope")
    assert_error(http.get(f"{runs}/{run['id']}/results", params={"status": "weird"}), 400, "status")
    assert_error(http.post(f"{runs}/{run['id']}/results", json={"results": [{"item_id": "x"}]}), 409, "server")
    assert_error(http.post(f"{runs}/{run['id']}/cancel"), 409, "completed")
    assert_error(http.get(f"{runs}/compare", params={"runs": "baseline"}), 400, "runs")


def test_results_carry_their_cost(http, finished_run):
    name, run, items = finished_run
    got = {r["item_id"]: r["cost"] for r in results(http, name, run["id"])}
    assert got[items[0]["id"]] == pytest.approx((10 + 2 * 2) / 1e6)  # 10 in, 2 out
    assert got[items[2]["id"]] == pytest.approx((5 + 2 * 2) / 1e6)
    assert got[items[1]["id"]] is None  # the target reported no tokens


def test_a_run_without_a_priced_model_has_no_cost(http, target):
    name = unique("unpriced")
    new_dataset(http, name)
    add_items(http, name, ITEMS[:1])
    run = http.post(f"/api/datasets/{name}/runs", json={"target": {"url": target.url}, "metadata": {"model": "other"}}).json()
    done = wait_run(http, name, run["id"])
    assert done["summary"]["cost"] is None
    assert [r["cost"] for r in results(http, name, run["id"])] == [None]


def test_delete_a_run_with_its_results_and_scores(http, target):
    name = unique("delete-run")
    new_dataset(http, name)
    add_items(http, name, [{"input": "SLOW one", "expected_output": "SLOW one"}, ITEMS[0]])
    resp = http.post(f"/api/datasets/{name}/runs", json={"name": "doomed", "target": {"url": target.url}, "scorers": ["exact_match"]})
    run = resp.json()
    assert_error(http.delete(f"/api/datasets/{name}/runs/doomed"), 409, "cancel it first")
    done = wait_run(http, name, run["id"])
    score_ids = {s["id"] for r in results(http, name, run["id"]) for s in r["scores"]}
    assert len(score_ids) == 2
    kept = add_items(http, name, [{"input": "other"}])  # the dataset and its items stay

    assert http.delete(f"/api/datasets/{name}/runs/doomed").status_code == 204
    assert_error(http.get(f"/api/datasets/{name}/runs/{done['id']}"), 404, "not found")
    assert_error(http.get(f"/api/datasets/{name}/runs/{done['id']}/results"), 404)
    left = {s["id"] for s in http.get("/api/scores", params={"scorer": "exact_match", "limit": 1000}).json()["items"]}
    assert not score_ids & left
    assert http.get(f"/api/datasets/{name}/runs").json()["items"] == []
    assert kept[0]["id"] in {i["id"] for i in http.get(f"/api/datasets/{name}/items").json()["items"]}
    assert_error(http.delete(f"/api/datasets/{name}/runs/doomed"), 404)
